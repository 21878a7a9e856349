"""Volatility engine: realised vol, 30-day ATM implied vol, IV rank/percentile, term slope.

Keeps one ATM IV per New York trading day; `history()` hands it to the runtime to persist and pass
back at restart. Formulas and units are in docs/engines.md.
"""

from __future__ import annotations

import math
from collections import deque
from datetime import date
from itertools import pairwise

import numpy as np

from gnosisd.bus.events import Bar, ChainSnapshot, EngineSnapshot
from gnosisd.core.clock import NEW_YORK, ns_to_datetime
from gnosisd.core.config import VolatilityConfig

NAME = "volatility"
BARS_PER_YEAR = 252 * 390  # 1-minute bars: 252 sessions × 390 regular-session minutes
TARGET_DAYS = 30.0
SHORT_DAYS = 7.0
LONG_DAYS = 60.0
MIN_HISTORY_DAYS = 5


def ny_day(ts_ns: int) -> date:
    """The New York calendar date of a UTC timestamp (the trading-day key of the IV history)."""
    return ns_to_datetime(ts_ns).astimezone(NEW_YORK).date()


def realized_vol(closes: list[tuple[date, float]]) -> float:
    """Annualised close-to-close vol of 1-minute bars: sd(log r) · √(252·390) (Hull ch. 15).

    Returns between bars of different New York days (the overnight gap) are left out; NaN with
    fewer than 2 returns.
    """
    r = [
        math.log(c1 / c0)
        for (d0, c0), (d1, c1) in pairwise(closes)
        if d0 == d1 and c0 > 0 and c1 > 0
    ]
    if len(r) < 2:
        return math.nan
    return float(np.std(r, ddof=1)) * math.sqrt(BARS_PER_YEAR)


def atm_term_structure(chain: ChainSnapshot) -> list[tuple[float, float]]:
    """(T in years, ATM IV) per live expiry, ascending T.

    ATM IV of an expiry: the strike nearest spot among rows with a usable IV, mean of its call and
    put IVs (whichever are usable).
    """
    ok = np.isfinite(chain.iv) & (chain.iv > 0) & (chain.t_years > 0)
    out: list[tuple[float, float]] = []
    for e in np.unique(chain.expiry_idx[ok]):
        rows = ok & (chain.expiry_idx == e)
        k = chain.strike[rows]
        nearest = k[int(np.argmin(np.abs(k - chain.spot)))]
        at = rows & (chain.strike == nearest)
        out.append((float(np.mean(chain.t_years[at])), float(np.mean(chain.iv[at]))))
    out.sort()
    return out


def iv_at(term: list[tuple[float, float]], days: float) -> float:
    """ATM IV at `days` calendar days: linear in total variance σ²T between the two bracketing
    expiries (flat beyond the first/last expiry), as in the Cboe VIX white paper; NaN if empty.
    """
    if not term:
        return math.nan
    t = days / 365.0
    if t <= term[0][0]:
        return term[0][1]
    if t >= term[-1][0]:
        return term[-1][1]
    for (t1, s1), (t2, s2) in pairwise(term):
        if t1 <= t <= t2:
            if t2 == t1:
                return (s1 + s2) / 2.0
            w = s1 * s1 * t1 + (s2 * s2 * t2 - s1 * s1 * t1) * (t - t1) / (t2 - t1)
            if w > 0:
                return math.sqrt(w / t)
            return s1 + (s2 - s1) * (t - t1) / (t2 - t1)
    return math.nan  # unreachable with a sorted term structure


def iv_rank_percentile(values: list[float], current: float) -> tuple[float, float]:
    """IV rank (cur - min)/(max - min) and percentile (share of values < cur), both in [0, 1].

    `values` include the current value; with fewer than 2 distinct values both are 0.5.
    """
    lo, hi = min(values), max(values)
    if len(set(values)) < 2 or hi <= lo:
        return 0.5, 0.5
    rank = min(max((current - lo) / (hi - lo), 0.0), 1.0)
    pct = sum(1 for v in values if v < current) / len(values)
    return rank, pct


class VolatilityEngine:
    """Realised and implied volatility of one symbol, with a persisted daily ATM IV history."""

    def __init__(
        self,
        symbol: str,
        cfg: VolatilityConfig,
        history: list[tuple[date, float]] | None = None,
    ) -> None:
        self.symbol = symbol
        self.cfg = cfg
        self._bars: deque[tuple[date, float]] = deque(maxlen=cfg.realized_window + 1)
        self._daily: dict[date, float] = {}
        for day, iv in history or []:
            if math.isfinite(iv) and iv > 0:
                self._daily[day] = float(iv)
        self._trim()
        self._spot = math.nan
        self._spot_ts = -1
        self._atm_iv = math.nan
        self._term_slope = math.nan
        self._chain_spot = math.nan

    def history(self) -> list[tuple[date, float]]:
        """Daily ATM IV (last value of each New York day), oldest first, at most lookback_days."""
        return sorted(self._daily.items())

    def update(self, event: object) -> EngineSnapshot | None:
        """Fold in a Bar or ChainSnapshot of this symbol; emit once any vol is known."""
        if isinstance(event, Bar) and event.symbol == self.symbol:
            self._bars.append((ny_day(event.ts_ns), event.close))
            self._set_spot(event.close, event.ts_ns)
        elif isinstance(event, ChainSnapshot) and event.underlying == self.symbol:
            self._read_chain(event)
        else:
            return None
        m = self.metrics()
        if math.isnan(m["realized_vol"]) and math.isnan(m["atm_iv"]):
            return None
        return EngineSnapshot(
            engine=NAME, symbol=self.symbol, ts_ns=event.ts_ns, metrics=m, flags=self.flags(m)
        )

    def _set_spot(self, spot: float, ts_ns: int) -> None:
        if ts_ns >= self._spot_ts and spot > 0:
            self._spot, self._spot_ts = spot, ts_ns

    def _read_chain(self, chain: ChainSnapshot) -> None:
        self._set_spot(chain.spot, chain.ts_ns)
        term = atm_term_structure(chain)
        atm = iv_at(term, TARGET_DAYS)
        if not (math.isfinite(atm) and atm > 0):
            return  # an unusable chain leaves the previous implied figures in place
        self._atm_iv = atm
        self._chain_spot = chain.spot
        self._term_slope = (
            iv_at(term, LONG_DAYS) - iv_at(term, SHORT_DAYS) if len(term) >= 2 else math.nan
        )
        self._daily[ny_day(chain.ts_ns)] = atm
        self._trim()

    def _trim(self) -> None:
        days = sorted(self._daily)
        for d in days[: max(len(days) - self.cfg.lookback_days, 0)]:
            del self._daily[d]

    def metrics(self) -> dict[str, float]:
        """realized_vol, atm_iv, iv_rank, iv_percentile, term_slope, expected_move, spot."""
        rank = pct = math.nan
        if math.isfinite(self._atm_iv) and self._daily:
            rank, pct = iv_rank_percentile(list(self._daily.values()), self._atm_iv)
        return {
            "realized_vol": realized_vol(list(self._bars)),
            "atm_iv": self._atm_iv,
            "iv_rank": rank,
            "iv_percentile": pct,
            "term_slope": self._term_slope,
            # 1 s.d. move over 30 calendar days implied by the ATM IV (Hull ch. 15, σ√T).
            "expected_move": self._chain_spot * self._atm_iv * math.sqrt(TARGET_DAYS / 365.0),
            "spot": self._spot,
        }

    def flags(self, m: dict[str, float]) -> tuple[str, ...]:
        """short_history under 5 days of IV history; high_iv when iv_rank >= iv_rank_threshold
        (not raised on a short history, whose rank means little)."""
        if len(self._daily) < MIN_HISTORY_DAYS:
            return ("short_history",)
        if m["iv_rank"] >= self.cfg.iv_rank_threshold:
            return ("high_iv",)
        return ()
