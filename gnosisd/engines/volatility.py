"""Volatility engine: realised-vol estimators, 30-day ATM IV, IV rank/percentile, GARCH(1,1), VRP.

Keeps one ATM IV per New York trading day (each point tagged with its source, topped up from a
bundled proxy when short) and a bounded window of daily returns for the GARCH forecast.
Formulas, units and the regime rule are in docs/engines.md.
"""

from __future__ import annotations

import hashlib
import math
from collections import deque
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from itertools import pairwise

import numpy as np
import numpy.typing as npt

from gnosisd.bus.events import Bar, ChainSnapshot, EngineSnapshot
from gnosisd.core.clock import NEW_YORK, datetime_to_ns, ns_to_datetime
from gnosisd.core.config import VolatilityConfig
from gnosisd.engines.estimators import BarVolEstimators
from gnosisd.engines.garch import (
    PROXY_IV_SOURCE,
    PROXY_RETURN_SOURCE,
    GarchForecast,
    bundled_iv_proxy,
    bundled_return_proxy,
    garch_forecast,
)
from gnosisd.quant.chain import ChainAnalytics, analyze_chain

NAME = "volatility"
BARS_PER_YEAR = 252 * 390  # 1-minute bars: 252 sessions × 390 regular-session minutes
TARGET_DAYS = 30.0
SHORT_DAYS = 7.0
LONG_DAYS = 60.0
MIN_HISTORY_DAYS = 5
MIN_GARCH_RETURNS = 100
PREVIOUS_SESSION_DAYS = 7  # the IV change compares with an observed day at most this far back
MS_NS = 1_000_000
OBSERVED = "observed"  # source tag of an ATM IV the engine read from a chain, or a real return
BROKER = "broker"  # source tag of an ATM IV solved from the broker's historical option bars

HistoryItem = tuple[date, float] | tuple[date, float, str]

# GARCH fits already made in this process, keyed by a digest of the exact return window and the
# horizon: the fit is a deterministic function of them, so the same window seen again (optimisation
# trials and walk-forward folds replaying the same sessions) reuses the fit. Oldest entry goes first.
_GARCH_FITS: dict[tuple[bytes, int], GarchForecast | None] = {}
MAX_CACHED_FITS = 4096


def cached_garch_forecast(
    returns: npt.NDArray[np.float64], horizon_days: int
) -> GarchForecast | None:
    """`garch_forecast(returns, horizon_days)`, reusing an earlier fit of the same window."""
    r = np.ascontiguousarray(returns, dtype=np.float64)
    key = (hashlib.blake2b(r.tobytes(), digest_size=20).digest(), horizon_days)
    if key in _GARCH_FITS:
        return _GARCH_FITS[key]
    fit = garch_forecast(r, horizon_days)
    if len(_GARCH_FITS) >= MAX_CACHED_FITS:
        del _GARCH_FITS[next(iter(_GARCH_FITS))]
    _GARCH_FITS[key] = fit
    return fit


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
    put IVs (whichever are usable). One pass over the chain (sorted by expiry, then |K − S|).
    """
    ok = np.isfinite(chain.iv) & (chain.iv > 0) & (chain.t_years > 0)
    if not np.any(ok):
        return []
    e = chain.expiry_idx[ok]
    dist = np.abs(chain.strike[ok] - chain.spot)
    k, t, iv = chain.strike[ok], chain.t_years[ok], chain.iv[ok]
    order = np.lexsort((dist, e))
    e, dist, k, t, iv = e[order], dist[order], k[order], t[order], iv[order]
    first = np.flatnonzero(np.r_[True, e[1:] != e[:-1]])  # nearest row of each expiry
    out: list[tuple[float, float]] = []
    bounds = [*first.tolist(), len(e)]
    for a, b in pairwise(bounds):
        nearest = k[a]
        rows = slice(a, b)
        at = k[rows] == nearest
        out.append((float(np.mean(t[rows][at])), float(np.mean(iv[rows][at]))))
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
    """Realised and implied volatility of one symbol, with a persisted daily ATM IV history.

    `history` items are (date, iv) or (date, iv, source); the 2-element form (what older state
    files hold) is read as observed. With `cfg.iv_backfill` "bundled" or "broker" a history shorter
    than `lookback_days` is topped up at construction with proxy points dated before its oldest
    point, and the GARCH window with proxy daily returns; with "broker" the live runtime may later
    merge points solved from the broker's option bars (`merge_broker_history`, docs/engines.md).
    """

    def __init__(
        self,
        symbol: str,
        cfg: VolatilityConfig,
        history: Sequence[HistoryItem] | None = None,
        returns: Sequence[HistoryItem] | None = None,
    ) -> None:
        self.symbol = symbol
        self.cfg = cfg
        self._est = BarVolEstimators(cfg.realized_window, BARS_PER_YEAR)
        self._daily: dict[date, tuple[float, str]] = {}
        for item in history or []:
            day, iv = item[0], float(item[1])
            source = str(item[2]) if len(item) > 2 else OBSERVED
            if math.isfinite(iv) and iv > 0:
                self._daily[day] = (iv, source)
        self._returns: deque[tuple[date, float, str]] = deque(maxlen=cfg.garch_window)
        for item in sorted(returns or [], key=lambda x: x[0]):
            r = float(item[1])
            if math.isfinite(r):
                self._returns.append((item[0], r, str(item[2]) if len(item) > 2 else OBSERVED))
        self._day_bounds = (0, 0)  # [start, end) ns of the New York day of the last bar
        self._bar_day = date.min
        self._implied: dict[str, float] = {}  # metrics that change only on chains / new days
        self._proxy_days = 0
        if cfg.iv_backfill != "none":
            self._backfill()
        self._trim()
        self._spot = math.nan
        self._spot_ts = -1
        self._atm_iv = math.nan
        self._term_slope = math.nan
        self._chain_spot = math.nan
        self._analytics: ChainAnalytics | None = None
        self._smile: dict[str, float] = {}
        self._today: date | None = None
        self._prev_iv = math.nan  # last observed ATM IV of an earlier session
        self._day_close: tuple[date, float] | None = None  # latest bar close of the current day
        self._prev_close: tuple[date, float] | None = None  # close of the previous session
        self._fit_day: date | None = None
        self._garch: GarchForecast | None = None
        self._refresh_implied()

    # ------------------------------------------------------------------ history
    def backfill(self) -> int:
        """Top up the IV history to `lookback_days` and the return window to `garch_window` from
        the bundled proxies, using only points dated before the oldest point held; return how
        many IV points were added."""
        added = self._backfill()
        self._refresh_implied()
        return added

    def _backfill(self) -> int:
        added = 0
        need = self.cfg.lookback_days - len(self._daily)
        if need > 0:
            oldest = min(self._daily) if self._daily else date.max
            proxy = [(d, v) for d, v in bundled_iv_proxy(self.symbol) if d < oldest][-need:]
            for d, v in proxy:
                self._daily[d] = (v, PROXY_IV_SOURCE)
            added = len(proxy)
        room = self.cfg.garch_window - len(self._returns)
        if room > 0:
            first = self._returns[0][0] if self._returns else date.max
            older = [(d, r) for d, r in bundled_return_proxy(self.symbol) if d < first][-room:]
            for d, r in reversed(older):
                self._returns.appendleft((d, r, PROXY_RETURN_SOURCE))
        return added

    def broker_backfill_window(self, today: date) -> tuple[date, date, frozenset[date]] | None:
        """Calendar window [start, today) worth fetching from the broker's bars, and the days
        already held as observed or broker points; None unless `iv_backfill` is "broker" and
        fewer than `lookback_days` such points are held."""
        if self.cfg.iv_backfill != "broker":
            return None
        held = frozenset(d for d, (_, s) in self._daily.items() if s in (OBSERVED, BROKER))
        if len(held) >= self.cfg.lookback_days:
            return None
        # lookback_days sessions span about 365/252 as many calendar days, plus holidays.
        start = today - timedelta(days=math.ceil(self.cfg.lookback_days * 365 / 252) + 7)
        return start, today, held

    def merge_broker_history(self, points: Sequence[tuple[date, float]]) -> int:
        """Take daily ATM IVs solved from the broker's bars, tagged "broker": each fills a missing
        day or replaces a proxy point, never an observed one. The history is then trimmed to
        `lookback_days` and topped up from the proxy if still short; return the points taken."""
        taken = 0
        for day, iv in points:
            held = self._daily.get(day)
            if held is not None and held[1] == OBSERVED:
                continue
            if math.isfinite(iv) and iv > 0:
                self._daily[day] = (float(iv), BROKER)
                taken += 1
        self._trim()
        if self.cfg.iv_backfill != "none":
            self._backfill()
            self._trim()
        self._refresh_implied()
        return taken

    def history(self) -> list[tuple[date, float]]:
        """Daily ATM IV (last value of each New York day), oldest first, at most lookback_days."""
        return [(d, v) for d, (v, _) in sorted(self._daily.items())]

    def history_records(self) -> list[tuple[date, float, str]]:
        """Like `history()` with each point's source: "observed", "broker" or a proxy tag."""
        return [(d, v, s) for d, (v, s) in sorted(self._daily.items())]

    def returns_history(self) -> list[tuple[date, float, str]]:
        """The GARCH window: (session date, daily log return, source), oldest first."""
        return list(self._returns)

    def _trim(self) -> None:
        days = sorted(self._daily)
        for d in days[: max(len(days) - self.cfg.lookback_days, 0)]:
            del self._daily[d]

    # ------------------------------------------------------------------ events
    def update(self, event: object) -> EngineSnapshot | None:
        """Fold in a Bar or ChainSnapshot of this symbol; emit once any vol is known.

        A bar costs O(1): the implied figures (IV rank/percentile, GARCH, smile) are recomputed
        only when a chain or a new session changes them and are reused on the bars in between.
        """
        if isinstance(event, Bar) and event.symbol == self.symbol:
            day = self._day_of_bar(event.ts_ns)
            if self._today is None or day > self._today:
                self._new_day(day)
            self._est.push(day, event.open, event.high, event.low, event.close)
            if event.close > 0:
                self._day_close = (day, event.close)
            self._set_spot(event.close, event.ts_ns)
        elif isinstance(event, ChainSnapshot) and event.underlying == self.symbol:
            self._new_day(ny_day(event.ts_ns))
            self._read_chain(event)
            self._refresh_implied()
        else:
            return None
        m = self.metrics()
        if math.isnan(m["realized_vol"]) and math.isnan(m["atm_iv"]):
            return None
        return EngineSnapshot(
            engine=NAME, symbol=self.symbol, ts_ns=event.ts_ns, metrics=m, flags=self.flags(m)
        )

    def _day_of_bar(self, ts_ns: int) -> date:
        """`ny_day(ts_ns)`, answered from the cached bounds of the current New York day; within a
        millisecond of midnight it defers to `ny_day` (which rounds to the microsecond)."""
        start, end = self._day_bounds
        if start + MS_NS <= ts_ns < end - MS_NS:
            return self._bar_day
        day = ny_day(ts_ns)
        midnight = datetime.combine(day, time(0), tzinfo=NEW_YORK)
        next_midnight = datetime.combine(day + timedelta(days=1), time(0), tzinfo=NEW_YORK)
        self._day_bounds = (datetime_to_ns(midnight), datetime_to_ns(next_midnight))
        self._bar_day = day
        return day

    def _new_day(self, day: date) -> None:
        """On the first event of a New York day: close the last session's return, refit GARCH."""
        if self._today is not None and day <= self._today:
            return
        if self._day_close is not None and self._day_close[0] < day:
            if self._prev_close is not None and self._prev_close[1] > 0:
                r = math.log(self._day_close[1] / self._prev_close[1])
                self._returns.append((self._day_close[0], r, OBSERVED))
            self._prev_close = self._day_close
        self._today = day
        self._prev_iv = self._last_observed_before(day)
        self._refit(day)
        self._refresh_implied()

    def _last_observed_before(self, day: date) -> float:
        """The latest observed ATM IV of an earlier day at most PREVIOUS_SESSION_DAYS back (a
        stale or untagged old point is no "last session")."""
        for d in sorted(self._daily, reverse=True):
            v, src = self._daily[d]
            if d < day and src == OBSERVED:
                return v if (day - d).days <= PREVIOUS_SESSION_DAYS else math.nan
        return math.nan

    def _refit(self, day: date) -> None:
        """Fit GARCH(1,1) on the return window at most once per session (deterministic)."""
        if self._fit_day == day:
            return
        self._fit_day = day
        if len(self._returns) < MIN_GARCH_RETURNS:
            self._garch = None
            return
        returns = np.fromiter((r for _, r, _ in self._returns), dtype=np.float64)
        self._garch = cached_garch_forecast(returns, horizon_days=round(TARGET_DAYS * 252 / 365))

    def _set_spot(self, spot: float, ts_ns: int) -> None:
        if ts_ns >= self._spot_ts and spot > 0:
            self._spot, self._spot_ts = spot, ts_ns

    def _analyze(self, chain: ChainSnapshot) -> ChainAnalytics | None:
        """Smile analytics of the chain (gnosisd.quant.chain): the chain's own IVs where it has
        usable ones, else IVs solved from the mid quotes; warm-started from the last fit."""
        usable = np.isfinite(chain.iv) & (chain.iv > 0)
        iv = chain.iv if np.any(usable) else None
        prev = self._analytics
        try:
            with np.errstate(all="ignore"):
                return analyze_chain(chain, iv=iv, previous=prev)
        except (ValueError, FloatingPointError, np.linalg.LinAlgError):
            return None

    def _read_chain(self, chain: ChainSnapshot) -> None:
        self._set_spot(chain.spot, chain.ts_ns)
        analytics = self._analyze(chain) if len(chain) else None
        if analytics is not None and math.isfinite(analytics.atm_iv_30d):
            self._analytics = analytics
            atm, slope = analytics.atm_iv_30d, analytics.term_slope
            self._smile = {
                "atm_iv_7d": analytics.atm_iv_7d,
                "atm_iv_60d": analytics.atm_iv_60d,
                "rr25": analytics.rr25_30d,
                "bf25": analytics.bf25_30d,
                "straddle_move": analytics.expected_move_front,
            }
        else:  # nearest-strike ATM IV of the chain's own column (no smile figures)
            term = atm_term_structure(chain)
            atm = iv_at(term, TARGET_DAYS)
            slope = iv_at(term, LONG_DAYS) - iv_at(term, SHORT_DAYS) if len(term) >= 2 else math.nan
            self._smile = {}
        if not (math.isfinite(atm) and atm > 0):
            return  # an unusable chain leaves the previous implied figures in place
        self._atm_iv = atm
        self._chain_spot = chain.spot
        self._term_slope = slope if len(chain.expiries) >= 2 else math.nan
        self._daily[ny_day(chain.ts_ns)] = (atm, OBSERVED)
        self._trim()

    # ------------------------------------------------------------------ outputs
    def _refresh_implied(self) -> None:
        """Recompute the metrics that depend only on the IV history, the last chain and the GARCH
        fit (called when one of them changes: a chain, a new session, a backfill)."""
        rank = pct = math.nan
        if math.isfinite(self._atm_iv) and self._daily:
            values = [v for v, _ in self._daily.values()]
            rank, pct = iv_rank_percentile(values, self._atm_iv)
        garch = self._garch.vol if self._garch is not None else math.nan
        self._proxy_days = sum(1 for _, s in self._daily.values() if s not in (OBSERVED, BROKER))
        smile = self._smile
        self._implied = {
            "atm_iv": self._atm_iv,
            "iv_rank": rank,
            "iv_percentile": pct,
            "iv_change": self._atm_iv / self._prev_iv - 1.0,
            "iv_history_days": float(len(self._daily)),
            "iv_history_proxy_days": float(self._proxy_days),
            "term_slope": self._term_slope,
            "atm_iv_7d": smile.get("atm_iv_7d", math.nan),
            "atm_iv_60d": smile.get("atm_iv_60d", math.nan),
            "rr25": smile.get("rr25", math.nan),
            "bf25": smile.get("bf25", math.nan),
            "straddle_move": smile.get("straddle_move", math.nan),
            # 1 s.d. move over 30 calendar days implied by the ATM IV (Hull ch. 15, σ√T).
            "expected_move": self._chain_spot * self._atm_iv * math.sqrt(TARGET_DAYS / 365.0),
            "garch_vol": garch,
            "garch_persistence": (self._garch.persistence if self._garch is not None else math.nan),
            "vrp": self._atm_iv - garch,
        }

    def metrics(self) -> dict[str, float]:
        """Realised vols, atm_iv, iv rank/percentile, term_slope, expected_move, GARCH, VRP, spot.

        O(1): the four estimators are running sums; the rest is the cached implied block.
        """
        est = self._est
        m = {
            "realized_vol": est.close_to_close(),
            "rv_parkinson": est.parkinson(),
            "rv_garman_klass": est.garman_klass(),
            "rv_yang_zhang": est.yang_zhang(),
        }
        m.update(self._implied)
        m["spot"] = self._spot
        return m

    def flags(self, m: dict[str, float]) -> tuple[str, ...]:
        """History quality, high_iv, and the vol regime (crush / expansion / compression)."""
        out: list[str] = []
        short = len(self._daily) < MIN_HISTORY_DAYS
        if short:
            out.append("short_history")
        if m["iv_history_proxy_days"] > 0:
            out.append("proxy_history")
        if not short and m["iv_rank"] >= self.cfg.iv_rank_threshold:
            out.append("high_iv")
        change = m["iv_change"]
        if change <= -self.cfg.crush_change:
            out.append("vol_crush")
        elif change >= self.cfg.expansion_change:
            out.append("vol_expansion")
        elif (
            not short
            and m["iv_rank"] <= self.cfg.compression_rank
            and m["rv_yang_zhang"] < m["atm_iv"]
        ):
            out.append("vol_compression")
        return tuple(out)


__all__ = [
    "BROKER",
    "NAME",
    "OBSERVED",
    "VolatilityEngine",
    "atm_term_structure",
    "cached_garch_forecast",
    "iv_at",
    "iv_rank_percentile",
    "ny_day",
    "realized_vol",
]
