"""Liquidity engine: quoted and effective spread, Amihud illiquidity, Kyle's lambda, tick-rule
order-flow imbalance and near-the-money option spreads and open interest; a score and a thin flag.

Quotes and trades only update state; a snapshot is emitted on each Bar and ChainSnapshot. Every
window is a fixed-size ring buffer (O(1) memory per update). See docs/engines.md.
"""

from __future__ import annotations

import math

import numpy as np

from gnosisd.bus.events import Bar, ChainSnapshot, EngineSnapshot, Quote, Trade
from gnosisd.core.config import LiquidityConfig
from gnosisd.engines.estimators import RollingMean, RollingRegression

NAME = "liquidity"
NEAR_MONEY = 0.05  # |K/S - 1| <= 5% counts as near the money
NEAR_DAYS = 60.0  # ... in expiries up to 60 calendar days out (all expiries if none qualifies)


def relative_spread(bid: float, ask: float) -> float:
    """(ask - bid) / mid; NaN for a one-sided, crossed or non-positive quote."""
    if not (bid > 0 and ask >= bid and math.isfinite(ask)):
        return math.nan
    return (ask - bid) / ((ask + bid) / 2.0)


def amihud(closes: list[float], volumes: list[float]) -> float:
    """Amihud (2002) illiquidity: mean over bars of |r_t| / (close_t · volume_t), in 1/$.

    r_t = close_t / close_{t-1} - 1; bars with no dollar volume are skipped; NaN if none is left.
    """
    ratios = [
        abs(closes[i] / closes[i - 1] - 1.0) / (closes[i] * volumes[i])
        for i in range(1, len(closes))
        if closes[i - 1] > 0 and closes[i] * volumes[i] > 0
    ]
    return sum(ratios) / len(ratios) if ratios else math.nan


def tick_sign(price: float, last_price: float, last_sign: int) -> int:
    """Tick rule (Lee & Ready, J. Finance 46, 1991): +1 on an uptick, −1 on a downtick, the previous
    sign on a zero tick (0 before any price change)."""
    if price > last_price:
        return 1
    if price < last_price:
        return -1
    return last_sign


class LiquidityEngine:
    """How cheaply one symbol and its near-the-money options can be traded."""

    def __init__(self, symbol: str, cfg: LiquidityConfig) -> None:
        self.symbol = symbol
        self.cfg = cfg
        self._rel_spread = math.nan
        self._mid = math.nan
        self._eff = RollingMean(cfg.trade_window)  # 2|P − M| / M per trade
        self._last_price = math.nan
        self._last_sign = 0
        self._bucket_signed = 0.0  # tick-rule signed volume of the trades since the last bar
        self._bucket_volume = 0.0
        self._prev_close = math.nan
        self._amihud = RollingMean(cfg.lookback)
        self._kyle = RollingRegression(cfg.lookback)  # ΔP on signed volume, per bar
        self._ofi_signed = RollingMean(cfg.lookback)
        self._ofi_volume = RollingMean(cfg.lookback)
        self._option_spread = math.nan
        self._atm_oi = math.nan

    def update(self, event: object) -> EngineSnapshot | None:
        """Fold in a Quote or Trade (no output), a Bar or a ChainSnapshot (snapshot out)."""
        if isinstance(event, Quote):
            if event.symbol == self.symbol:
                self._rel_spread = relative_spread(event.bid, event.ask)
                if math.isfinite(self._rel_spread):
                    self._mid = (event.bid + event.ask) / 2.0
            return None
        if isinstance(event, Trade):
            if event.symbol == self.symbol:
                self._on_trade(event)
            return None
        if isinstance(event, Bar):
            if event.symbol != self.symbol:
                return None
            self._on_bar(event)
            return self._snapshot(event.ts_ns)
        if isinstance(event, ChainSnapshot):
            if event.underlying != self.symbol:
                return None
            self._read_chain(event)
            return self._snapshot(event.ts_ns)
        return None

    def _on_trade(self, t: Trade) -> None:
        if not (t.price > 0 and t.size >= 0):
            return
        if self._mid > 0:
            # Effective spread (Hasbrouck, Empirical Market Microstructure, 2007, §3.3): 2|P − M|/M
            self._eff.push(2.0 * abs(t.price - self._mid) / self._mid)
        if math.isfinite(self._last_price):
            self._last_sign = tick_sign(t.price, self._last_price, self._last_sign)
        self._last_price = t.price
        self._bucket_signed += self._last_sign * t.size
        self._bucket_volume += t.size

    def _on_bar(self, b: Bar) -> None:
        prev = self._prev_close
        if self._bucket_volume > 0:
            signed, volume = self._bucket_signed, self._bucket_volume
        else:
            # No trades seen for this bar: the bar-level tick rule signs its whole volume.
            step = b.close - prev if math.isfinite(prev) else 0.0
            signed, volume = math.copysign(b.volume, step) if step != 0 else 0.0, b.volume
        self._bucket_signed = self._bucket_volume = 0.0
        if volume > 0:
            self._ofi_signed.push(signed)
            self._ofi_volume.push(volume)
        if math.isfinite(prev) and prev > 0 and b.close > 0:
            if b.close * b.volume > 0:
                self._amihud.push(abs(b.close / prev - 1.0) / (b.close * b.volume))
            # Kyle (Econometrica 53, 1985): ΔP_t = λ · signed volume_t + ε_t, per bar
            self._kyle.push(signed, b.close - prev)
        if b.close > 0:
            self._prev_close = b.close

    def _read_chain(self, chain: ChainSnapshot) -> None:
        if chain.spot <= 0 or len(chain) == 0:
            self._option_spread = self._atm_oi = math.nan
            return
        near = np.abs(chain.strike / chain.spot - 1.0) <= NEAR_MONEY
        live = chain.t_years > 0
        dated = near & live & (chain.t_years <= NEAR_DAYS / 365.0)
        rows = dated if np.any(dated) else near & live
        bid, ask = chain.bid[rows], chain.ask[rows]
        quoted = (bid > 0) & (ask >= bid) & np.isfinite(ask)
        if np.any(quoted):
            b, a = bid[quoted], ask[quoted]
            self._option_spread = float(np.median((a - b) / ((a + b) / 2.0)))
        else:
            self._option_spread = math.nan
        self._atm_oi = float(np.sum(chain.open_interest[rows]))

    def metrics(self) -> dict[str, float]:
        """Spreads, Amihud, Kyle's lambda, order-flow imbalance, option liquidity and score."""
        vol_total = self._ofi_volume.total
        m = {
            "rel_spread": self._rel_spread,
            "effective_spread": self._eff.mean(),
            "amihud": self._amihud.mean(),
            "kyle_lambda": self._kyle.slope(),
            "order_flow_imbalance": (
                self._ofi_signed.total / vol_total if vol_total > 0 else math.nan
            ),
            "option_spread_pct": self._option_spread,
            "atm_open_interest": self._atm_oi,
        }
        m["score"] = self.score(m)
        return m

    def score(self, m: dict[str, float]) -> float:
        """Mean of the known component scores in [0, 1]; NaN if none is known yet."""
        parts: list[float] = []
        for key in ("rel_spread", "effective_spread"):
            if math.isfinite(m[key]):
                parts.append(_clip01(1.0 - m[key] / self.cfg.thin_threshold))
        if math.isfinite(m["option_spread_pct"]):
            parts.append(_clip01(1.0 - m["option_spread_pct"] / self.cfg.max_spread_pct))
        if math.isfinite(m["atm_open_interest"]):
            oi, floor = m["atm_open_interest"], float(self.cfg.min_open_interest)
            parts.append(1.0 if floor == 0 else oi / (oi + floor))
        return sum(parts) / len(parts) if parts else math.nan

    def flags(self, m: dict[str, float]) -> tuple[str, ...]:
        """ "thin" when a known measure breaches its limit (NaN measures never raise it)."""
        thin = (
            m["rel_spread"] > self.cfg.thin_threshold
            or m["effective_spread"] > self.cfg.thin_threshold
            or m["option_spread_pct"] > self.cfg.max_spread_pct
            or m["atm_open_interest"] < self.cfg.min_open_interest
        )
        return ("thin",) if thin else ()

    def _snapshot(self, ts_ns: int) -> EngineSnapshot:
        m = self.metrics()
        return EngineSnapshot(
            engine=NAME, symbol=self.symbol, ts_ns=ts_ns, metrics=m, flags=self.flags(m)
        )


def _clip01(x: float) -> float:
    return min(max(x, 0.0), 1.0)


__all__ = ["NAME", "LiquidityEngine", "amihud", "relative_spread", "tick_sign"]
