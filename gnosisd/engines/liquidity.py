"""Liquidity engine: underlying relative spread, Amihud illiquidity, near-the-money option spreads.

Quotes only update state; a snapshot is emitted on each Bar and ChainSnapshot. See docs/engines.md.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from gnosisd.bus.events import Bar, ChainSnapshot, EngineSnapshot, Quote
from gnosisd.core.config import LiquidityConfig

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


class LiquidityEngine:
    """How cheaply one symbol and its near-the-money options can be traded."""

    def __init__(self, symbol: str, cfg: LiquidityConfig) -> None:
        self.symbol = symbol
        self.cfg = cfg
        self._closes: deque[float] = deque(maxlen=cfg.lookback + 1)
        self._volumes: deque[float] = deque(maxlen=cfg.lookback + 1)
        self._rel_spread = math.nan
        self._option_spread = math.nan
        self._atm_oi = math.nan

    def update(self, event: object) -> EngineSnapshot | None:
        """Fold in a Quote (no output), a Bar or a ChainSnapshot (snapshot out) of this symbol."""
        if isinstance(event, Quote):
            if event.symbol == self.symbol:
                self._rel_spread = relative_spread(event.bid, event.ask)
            return None
        if isinstance(event, Bar):
            if event.symbol != self.symbol:
                return None
            self._closes.append(event.close)
            self._volumes.append(event.volume)
            return self._snapshot(event.ts_ns)
        if isinstance(event, ChainSnapshot):
            if event.underlying != self.symbol:
                return None
            self._read_chain(event)
            return self._snapshot(event.ts_ns)
        return None

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
        """rel_spread, amihud, option_spread_pct, atm_open_interest and score (1 = most liquid)."""
        m = {
            "rel_spread": self._rel_spread,
            "amihud": amihud(list(self._closes), list(self._volumes)),
            "option_spread_pct": self._option_spread,
            "atm_open_interest": self._atm_oi,
        }
        m["score"] = self.score(m)
        return m

    def score(self, m: dict[str, float]) -> float:
        """Mean of the known component scores in [0, 1]; NaN if none is known yet."""
        parts: list[float] = []
        if math.isfinite(m["rel_spread"]):
            parts.append(_clip01(1.0 - m["rel_spread"] / self.cfg.thin_threshold))
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
