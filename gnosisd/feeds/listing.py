"""Listed contracts of the simulated chain: SPY-like expiries from the XNYS calendar and strike grids.

Expiries: dailies for the next sessions, Friday weeklies, third-Friday monthlies; an expiry that falls
on an exchange holiday moves to the previous session (OCC practice, e.g. Good Friday).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

import numpy as np
import numpy.typing as npt

from gnosisd.core.calendar import CALENDAR_END, TradingCalendar
from gnosisd.core.clock import NEW_YORK, datetime_to_ns
from gnosisd.core.enums import OptionType
from gnosisd.core.occ import occ_symbol

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

_LAST_CALENDAR_DAY = date.fromisoformat(CALENDAR_END)
_FRIDAY = 4


def _previous_session_or_self(day: date, cal: TradingCalendar) -> date:
    d = day
    while not cal.is_session(d):
        d -= timedelta(days=1)
    return d


def third_friday(year: int, month: int) -> date:
    """The third Friday of a month (standard monthly equity option expiration)."""
    first = date(year, month, 1)
    offset = (_FRIDAY - first.weekday()) % 7
    return first + timedelta(days=offset + 14)


def listed_expiries(
    day: date,
    cal: TradingCalendar,
    *,
    daily_sessions: int = 5,
    weekly_weeks: int = 8,
    monthly_months: int = 6,
) -> list[date]:
    """Return the expiries listed on session `day`, ascending, each an XNYS session >= `day`.

    Dailies: `day` and the following sessions (`daily_sessions` in all); weeklies: every Friday up to
    `weekly_weeks` weeks ahead; monthlies: the third Friday of the next `monthly_months` months.
    """
    found: set[date] = set()
    d = day
    while len(found) < daily_sessions and d <= _LAST_CALENDAR_DAY:
        if cal.is_session(d):
            found.add(d)
        d += timedelta(days=1)
    horizon_w = day + timedelta(weeks=weekly_weeks)
    friday = day + timedelta(days=(_FRIDAY - day.weekday()) % 7)
    candidates: list[date] = []
    while friday <= horizon_w:
        candidates.append(friday)
        friday += timedelta(days=7)
    y, m = day.year, day.month
    for _ in range(monthly_months + 1):
        candidates.append(third_friday(y, m))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    for cand in candidates:
        if cand > _LAST_CALENDAR_DAY:
            continue
        adjusted = _previous_session_or_self(cand, cal)
        if adjusted >= day:
            found.add(adjusted)
    return sorted(found)


def expiry_close_ns(expiry: date) -> int:
    """UTC ns of the 16:00 New York close of the expiry date (the t_years reference)."""
    return datetime_to_ns(datetime.combine(expiry, time(16, 0), tzinfo=NEW_YORK))


def _strike_steps_cents(spot: float) -> tuple[int, int]:
    """Fine and coarse strike increments in cents for a price level ($1/$5 for SPY-like prices)."""
    if spot >= 100.0:
        return 100, 500
    if spot >= 25.0:
        return 50, 250
    return 50, 100


def strike_grid_cents(spot: float, t_years: float) -> IntArray:
    """Strikes in cents: fine steps near the money, coarse steps out to about ±25%.

    The bands scale with √T so that short expiries list fewer far strikes; long expiries keep the
    fine steps within ±3% only (keeps the chain near 2,500 contracts for SPY).
    """
    fine, coarse = _strike_steps_cents(spot)
    root_t = math.sqrt(max(t_years, 1.0 / 365.0))
    fine_band = min(0.07, max(0.025, 0.3 * root_t))
    if t_years > 60.0 / 365.0:
        fine_band = 0.03
    coarse_band = min(0.25, max(0.05, 0.75 * root_t))
    spot_c = spot * 100.0
    lo_f = math.ceil(spot_c * (1 - fine_band) / fine) * fine
    hi_f = math.floor(spot_c * (1 + fine_band) / fine) * fine
    lo_c = math.ceil(spot_c * (1 - coarse_band) / coarse) * coarse
    hi_c = math.floor(spot_c * (1 + coarse_band) / coarse) * coarse
    fine_k = np.arange(lo_f, hi_f + 1, fine, dtype=np.int64)
    coarse_k = np.arange(lo_c, hi_c + 1, coarse, dtype=np.int64)
    return np.unique(np.concatenate([fine_k, coarse_k[coarse_k > 0]]))


@dataclass(frozen=True, slots=True)
class ChainGrid:
    """The contracts listed for one underlying on one session (fixed for the day), column-wise."""

    underlying: str
    day: date
    expiries: tuple[date, ...]
    expiry_close_ns: IntArray  # per expiry
    symbols: tuple[str, ...]
    is_call: BoolArray
    strike: FloatArray
    expiry_idx: IntArray
    open_interest: IntArray
    daily_volume: FloatArray  # expected full-session volume per contract


def _open_interest_and_volume(
    spot: float,
    strike: FloatArray,
    is_call: BoolArray,
    t_years: FloatArray,
    is_monthly: BoolArray,
    is_today: BoolArray,
    oi_scale: float,
    rng: np.random.Generator,
) -> tuple[IntArray, FloatArray]:
    # Moneyness in rough standard deviations (a fixed 18% vol is enough for a popularity profile).
    sd = np.log(strike / spot) / (0.18 * np.sqrt(np.maximum(t_years, 5.0 / 365.0)))
    near = np.exp(-0.5 * (sd / 1.3) ** 2) + 0.02
    cents = np.rint(strike * 100.0).astype(np.int64)
    roundness = np.where(cents % 1000 == 0, 2.5, np.where(cents % 500 == 0, 1.7, 1.0))
    put_tilt = np.where(~is_call & (strike < spot), 1.3, 1.0)  # index puts carry hedging OI
    expiry_w = np.where(is_monthly, 3.0, np.where(t_years < 8.0 / 365.0, 0.7, 1.2))
    noise = rng.lognormal(0.0, 0.5, size=strike.shape)
    oi = np.floor(oi_scale * near * roundness * put_tilt * expiry_w * noise).astype(np.int64)
    turnover = np.where(is_today, 3.0, np.where(t_years < 8.0 / 365.0, 0.6, 0.12))
    activity = np.exp(-0.5 * (sd / 0.8) ** 2) + 0.05
    vol_noise = rng.lognormal(0.0, 0.4, size=strike.shape)
    volume = oi_scale * 0.5 * near * roundness * turnover * activity * vol_noise + oi * 0.02
    return oi, np.asarray(volume, dtype=np.float64)


def build_grid(
    underlying: str,
    day: date,
    spot: float,
    cal: TradingCalendar,
    rng: np.random.Generator,
    *,
    oi_scale: float = 20_000.0,
) -> ChainGrid:
    """List the session's contracts around `spot` with OCC symbols, open interest and volume."""
    expiries = listed_expiries(day, cal)
    close_ns = np.array([expiry_close_ns(e) for e in expiries], dtype=np.int64)
    day_close = expiry_close_ns(day)
    monthly = {_previous_session_or_self(third_friday(e.year, e.month), cal) for e in expiries}
    syms: list[str] = []
    calls: list[bool] = []
    strikes_c: list[int] = []
    idx: list[int] = []
    for i, exp in enumerate(expiries):
        t_close = (int(close_ns[i]) - day_close) / (365.0 * 86_400e9) + 1.0 / 365.0
        grid = strike_grid_cents(spot, t_close)
        for is_call, kind in ((False, OptionType.PUT), (True, OptionType.CALL)):
            for k in grid.tolist():
                syms.append(occ_symbol(underlying, exp, kind, Decimal(k) / 100))
                calls.append(is_call)
                strikes_c.append(k)
                idx.append(i)
    strike = np.asarray(strikes_c, dtype=np.float64) / 100.0
    is_call_arr = np.asarray(calls, dtype=np.bool_)
    expiry_idx = np.asarray(idx, dtype=np.int64)
    t_open = (close_ns[expiry_idx] - day_close) / (365.0 * 86_400e9) + 1.0 / 365.0
    is_monthly = np.asarray([expiries[i] in monthly for i in idx], dtype=np.bool_)
    is_today = expiry_idx == 0 if expiries and expiries[0] == day else np.zeros_like(is_call_arr)
    oi, volume = _open_interest_and_volume(
        spot, strike, is_call_arr, t_open, is_monthly, is_today, oi_scale, rng
    )
    return ChainGrid(
        underlying=underlying,
        day=day,
        expiries=tuple(expiries),
        expiry_close_ns=close_ns,
        symbols=tuple(syms),
        is_call=is_call_arr,
        strike=strike,
        expiry_idx=expiry_idx,
        open_interest=oi,
        daily_volume=volume,
    )
