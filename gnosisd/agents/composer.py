"""Composer: folds the latest engine snapshots of one symbol into a MarketContext.

Direction from the sentiment flags (momentum, news, put/call) weighted by the dealer-gamma regime,
confidence cut by thin liquidity, regime from IV rank / IV expansion / squeeze / momentum. Rules and
numbers are in docs/engines.md.
"""

from __future__ import annotations

import math

from gnosisd.agents.exits import Family, exit_rules_for
from gnosisd.bus.events import EngineSnapshot
from gnosisd.bus.records import MarketContext
from gnosisd.core.clock import ns_to_datetime
from gnosisd.core.config import TradeAgentConfig, VolatilityConfig
from gnosisd.core.enums import Direction, Regime

HEDGE, LIQUIDITY, SENTIMENT, VOLATILITY = "hedge", "liquidity", "sentiment", "volatility"
REQUIRED = (HEDGE, VOLATILITY, SENTIMENT)
ENGINE_ORDER = (HEDGE, LIQUIDITY, SENTIMENT, VOLATILITY)


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def _unit(x: float | None) -> float | None:
    return None if x is None else min(max(x, 0.0), 1.0)


class Composer:
    """Latest snapshot per engine for one symbol, and the context they imply."""

    def __init__(
        self, symbol: str, trade_agent_cfg: TradeAgentConfig, vol_cfg: VolatilityConfig
    ) -> None:
        self.symbol = symbol
        self.trade_cfg = trade_agent_cfg
        self.vol_cfg = vol_cfg
        self._latest: dict[str, EngineSnapshot] = {}

    def update(self, snapshot: EngineSnapshot) -> None:
        """Keep the snapshot as its engine's latest (other symbols are ignored)."""
        if snapshot.symbol == self.symbol:
            self._latest[snapshot.engine] = snapshot

    def ready(self) -> bool:
        return all(name in self._latest for name in REQUIRED)

    def compose(self, ts_ns: int) -> MarketContext | None:
        """The context at `ts_ns`; None until hedge, volatility and sentiment have reported."""
        if not self.ready():
            return None
        spot = self._spot()
        if spot is None:
            return None
        hedge, vol, sent = (self._latest[n] for n in REQUIRED)
        liq = self._latest.get(LIQUIDITY)
        direction, confidence = self._direction(hedge, sent, liq)
        regime = self._regime(hedge, vol, sent)
        if regime is Regime.VOL_EXPANSION:
            family = Family.VOLATILITY
        elif direction is Direction.NEUTRAL:
            family = Family.INCOME
        else:
            family = Family.DIRECTIONAL
        vm = vol.metrics
        return MarketContext(
            symbol=self.symbol,
            as_of=ns_to_datetime(ts_ns),
            spot=spot,
            direction=direction,
            confidence=confidence,
            regime=regime,
            iv_rank=_unit(_finite(vm.get("iv_rank"))),
            iv_percentile=_unit(_finite(vm.get("iv_percentile"))),
            atm_iv=_finite(vm.get("atm_iv")),
            realized_vol=_finite(vm.get("realized_vol")),
            expected_move=_finite(vm.get("expected_move")),
            exit_rules=exit_rules_for(
                family,
                confidence,
                target_scale=self.trade_cfg.exit_profit_target_scale,
                stop_scale=self.trade_cfg.exit_stop_scale,
            ),
            engines={
                name: {k: v for k, v in self._latest[name].metrics.items() if math.isfinite(v)}
                for name in ENGINE_ORDER
                if name in self._latest
            },
            flags=self._flags(),
        )

    def _spot(self) -> float | None:
        """The most recent finite, positive `spot` metric among the engines."""
        best: tuple[int, float] | None = None
        for snap in self._latest.values():
            s = _finite(snap.metrics.get("spot"))
            if s is not None and s > 0 and (best is None or snap.ts_ns >= best[0]):
                best = (snap.ts_ns, s)
        return None if best is None else best[1]

    def _direction(
        self, hedge: EngineSnapshot, sent: EngineSnapshot, liq: EngineSnapshot | None
    ) -> tuple[Direction, float]:
        """Sentiment flag sets the view; the gamma regime and liquidity scale its confidence.

        Negative dealer gamma amplifies moves (supports a directional view, weakens a range view);
        positive gamma dampens them. A directional view whose confidence falls below
        trade_agent.min_confidence becomes neutral.
        """
        score = _finite(sent.metrics.get("score")) or 0.0
        strength = min(abs(score), 1.0)
        neg = "negative_gamma" in hedge.flags
        pos = "positive_gamma" in hedge.flags
        thin = (
            1.0 if liq is None or "thin" not in liq.flags else self.trade_cfg.composer_thin_factor
        )
        view = Direction.NEUTRAL
        if "bullish" in sent.flags:
            view = Direction.BULLISH
        elif "bearish" in sent.flags:
            view = Direction.BEARISH
        if view is not Direction.NEUTRAL:
            tilt = 1.0 + self.trade_cfg.composer_gamma_tilt * (neg - pos)
            conf = min(strength * tilt * thin, 1.0)
            if conf >= self.trade_cfg.min_confidence:
                return view, conf
        tilt = 1.0 + self.trade_cfg.composer_gamma_tilt * (pos - neg)
        return Direction.NEUTRAL, min((1.0 - strength) * tilt * thin, 1.0)

    def _regime(self, hedge: EngineSnapshot, vol: EngineSnapshot, sent: EngineSnapshot) -> Regime:
        rank = _finite(vol.metrics.get("iv_rank"))
        high_iv = "high_iv" in vol.flags or (
            rank is not None
            and rank >= self.vol_cfg.iv_rank_threshold
            and "short_history" not in vol.flags
        )
        # Volatility regimes come from the volatility engine only: dealer gamma (the squeeze flag)
        # tilts directional confidence instead; with dollar thresholds far below an index ETF's
        # typical gamma exposure it would otherwise label every context vol_expansion.
        if high_iv or "vol_expansion" in vol.flags:
            return Regime.VOL_EXPANSION
        mom = _finite(sent.metrics.get("momentum")) or 0.0
        if mom >= self.trade_cfg.composer_trend_momentum:
            return Regime.TREND_UP
        if mom <= -self.trade_cfg.composer_trend_momentum:
            return Regime.TREND_DOWN
        return Regime.RANGE

    def _flags(self) -> list[str]:
        out: list[str] = []
        for name in ENGINE_ORDER:
            snap = self._latest.get(name)
            for f in snap.flags if snap is not None else ():
                if f not in out:
                    out.append(f)
        return out
