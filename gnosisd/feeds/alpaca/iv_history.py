"""Past daily 30-day ATM implied vols from Alpaca's historical daily bars (blocking REST calls).

Per past session d with a daily stock close S_d: the two standard monthly expiries (third Friday,
the previous session on a holiday) that bracket d + 30 days, the near one at least 7 days out; at
each, the strike nearest S_d on the standard listing grid; the call's and put's daily closes
inverted with gnosisd.quant.iv (European BSM, T from d's 16:00 New York close to the expiry's),
averaged per expiry and interpolated to 30 days in total variance σ²T. A session without both
expiries' prices gets no point (the engine falls back to its proxy). docs/engines.md has the rest.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Protocol

import numpy as np
import structlog
from alpaca.data.enums import Adjustment, DataFeed
from alpaca.data.historical.option import OptionHistoricalDataClient
from alpaca.data.historical.stock import StockHistoricalDataClient
from alpaca.data.requests import OptionBarsRequest, StockBarsRequest
from alpaca.data.timeframe import TimeFrame

from gnosisd.core.calendar import TradingCalendar
from gnosisd.core.clock import NEW_YORK, datetime_to_ns
from gnosisd.core.enums import OptionType
from gnosisd.core.occ import occ_symbol
from gnosisd.feeds.alpaca.feed import AlpacaFeedConfig, _harden
from gnosisd.feeds.listing import expiry_close_ns, third_friday
from gnosisd.feeds.surface import NS_PER_YEAR
from gnosisd.quant.iv import implied_vol

log = structlog.get_logger("gnosisd.feeds.alpaca.iv_history")

TARGET_DAYS = 30
MIN_NEAR_DAYS = 7  # the near expiry must be at least this many calendar days after the session
MIN_IV, MAX_IV = 0.01, 5.0  # a daily point outside these bounds is bad data, not a vol


@dataclass(frozen=True, slots=True)
class IVHistoryQuery:
    """Pricing inputs and request bounds of one backfill (per underlying)."""

    rate: float = 0.045
    div_yields: Mapping[str, float] = field(default_factory=dict)
    stock_feed: str = "iex"
    max_requests: int = 12  # REST calls per underlying: 1 for stock bars, the rest option bars
    symbols_per_request: int = 100


@dataclass(frozen=True, slots=True)
class _Leg:
    """One contract priced on one session: which expiry slot (0 near, 1 far) and kind."""

    day: date
    slot: int
    symbol: str
    expiry: date
    strike: float
    is_call: bool


def strike_step(price: float) -> Decimal:
    """The standard listing increment at a price: $2.50 below $25, $5 to $200, $10 above.

    Finer grids (SPY's $1) list these strikes too, so the nearest one exists on most chains.
    """
    if price < 25.0:
        return Decimal("2.5")
    return Decimal(5) if price < 200.0 else Decimal(10)


def nearest_strike(price: float) -> Decimal:
    """The strike nearest `price` on the standard grid (`strike_step`), at least one step."""
    step = strike_step(price)
    k = (Decimal(str(price)) / step).to_integral_value() * step
    return max(k, step)


def bracketing_expiries(day: date, cal: TradingCalendar) -> tuple[date, date]:
    """The monthly expiries just before and after day + 30 (near one >= MIN_NEAR_DAYS away)."""
    target = day + timedelta(days=TARGET_DAYS)
    months = [
        (day.year + (day.month - 1 + i) // 12, (day.month - 1 + i) % 12 + 1) for i in range(4)
    ]
    expiries = []
    for y, m in months:
        e = third_friday(y, m)
        while not cal.is_session(e):  # Good Friday and the like: the previous session
            e -= timedelta(days=1)
        if (e - day).days >= MIN_NEAR_DAYS:
            expiries.append(e)
    near = [e for e in expiries if e <= target]
    far = [e for e in expiries if e > target]
    return (near[-1] if near else far[0]), far[0] if near else far[1]


def _session_close_ns(day: date) -> int:
    return datetime_to_ns(datetime.combine(day, time(16, 0), tzinfo=NEW_YORK))


def _bar_day(raw: Any) -> date | None:
    """The New York date of a daily bar's timestamp (Alpaca stamps daily bars at midnight ET)."""
    if not isinstance(raw, str):
        return None
    try:
        stamp = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.astimezone(NEW_YORK).date()


def _closes(bars: Any) -> dict[date, float]:
    """Positive finite daily closes by New York date from a raw bar list."""
    out: dict[date, float] = {}
    for bar in bars if isinstance(bars, list) else []:
        if not isinstance(bar, dict):
            continue
        day, raw = _bar_day(bar.get("t")), bar.get("c")
        c = float(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) else math.nan
        if day is not None and math.isfinite(c) and c > 0:
            out[day] = c
    return out


def interpolate_30d(t1: float, v1: float, t2: float, v2: float) -> float:
    """ATM IV at 30 days from two expiries: linear in total variance σ²T (Cboe VIX white paper),
    flat outside [t1, t2]; one finite vol alone is returned as it is."""
    if not math.isfinite(v1):
        return v2
    if not math.isfinite(v2):
        return v1
    t = TARGET_DAYS / 365.0
    if t <= t1 or t2 <= t1:
        return v1
    if t >= t2:
        return v2
    w = v1 * v1 * t1 + (v2 * v2 * t2 - v1 * v1 * t1) * (t - t1) / (t2 - t1)
    return math.sqrt(w / t) if w > 0 else math.nan


class IVHistorySource:
    """Fetches daily stock and option bars and turns them into daily ATM IVs; blocking."""

    def __init__(
        self,
        options: OptionHistoricalDataClient,
        stocks: StockHistoricalDataClient,
        query: IVHistoryQuery,
        calendar: TradingCalendar | None = None,
    ) -> None:
        self._options = options
        self._stocks = stocks
        self.query = query
        self._cal = calendar or TradingCalendar()
        self.requests = 0  # REST calls made (each bounded by its `limit`)

    def close(self) -> None:
        """Close the REST clients' connection pools."""
        for client in (self._options, self._stocks):
            session = getattr(client, "_session", None)
            if session is not None:
                session.close()

    def fetch(
        self, underlying: str, start: date, end: date, skip: Iterable[date] = ()
    ) -> list[tuple[date, float]]:
        """(session, 30-day ATM IV) for the sessions in [start, end) not in `skip`, newest first
        within the request budget; sessions without usable prices are left out."""
        self.requests = 0
        closes = self._stock_closes(underlying, start, end)
        skipped = set(skip)
        days = sorted((d for d in closes if start <= d < end and d not in skipped), reverse=True)
        legs = [leg for d in days for leg in self._legs(underlying, d, closes[d])]
        prices = self._option_closes(legs)
        return self._implied(underlying, legs, prices, closes)

    def _stock_closes(self, underlying: str, start: date, end: date) -> dict[date, float]:
        req = StockBarsRequest(
            symbol_or_symbols=[underlying],
            timeframe=TimeFrame.Day,
            start=datetime.combine(start, time(0), tzinfo=NEW_YORK),
            end=datetime.combine(end, time(0), tzinfo=NEW_YORK),
            adjustment=Adjustment.RAW,  # strikes are in the prices of their day
            feed=DataFeed(self.query.stock_feed),
            limit=(end - start).days + 5,
        )
        self.requests += 1
        raw: Any = self._stocks.get_stock_bars(req)
        return _closes(raw.get(underlying) if isinstance(raw, dict) else None)

    def _legs(self, underlying: str, day: date, spot: float) -> list[_Leg]:
        strike = nearest_strike(spot)
        out = []
        for slot, expiry in enumerate(bracketing_expiries(day, self._cal)):
            for kind in (OptionType.CALL, OptionType.PUT):
                symbol = occ_symbol(underlying, expiry, kind, strike)
                is_call = kind is OptionType.CALL
                out.append(_Leg(day, slot, symbol, expiry, float(strike), is_call))
        return out

    def _option_closes(self, legs: Sequence[_Leg]) -> dict[str, dict[date, float]]:
        """Daily closes of every contract the legs need, newest sessions first, in batches of
        `symbols_per_request` over the sessions each batch needs; stops at the request budget or
        at the first failed request (the sessions fetched so far are kept)."""
        needed: dict[str, tuple[date, date]] = {}
        for leg in legs:
            lo, hi = needed.get(leg.symbol, (leg.day, leg.day))
            needed[leg.symbol] = (min(lo, leg.day), max(hi, leg.day))
        symbols = sorted(needed, key=lambda s: needed[s][1], reverse=True)
        out: dict[str, dict[date, float]] = {}
        size = self.query.symbols_per_request
        for i in range(0, len(symbols), size):
            if self.requests >= self.query.max_requests:
                log.info("iv backfill request budget spent", left=len(symbols) - i)
                break
            batch = symbols[i : i + size]
            lo = min(needed[s][0] for s in batch)
            hi = max(needed[s][1] for s in batch)
            req = OptionBarsRequest(
                symbol_or_symbols=batch,
                timeframe=TimeFrame.Day,
                start=datetime.combine(lo, time(0), tzinfo=NEW_YORK),
                end=datetime.combine(hi + timedelta(days=1), time(0), tzinfo=NEW_YORK),
                limit=len(batch) * ((hi - lo).days + 2),
            )
            self.requests += 1
            try:
                raw: Any = self._options.get_option_bars(req)
            except Exception as exc:  # keep what came so far; stop asking a failing broker
                log.warning("option bars request failed", error=repr(exc), left=len(symbols) - i)
                break
            for symbol in batch:
                out[symbol] = _closes(raw.get(symbol) if isinstance(raw, dict) else None)
        return out

    def _implied(
        self,
        underlying: str,
        legs: Sequence[_Leg],
        prices: Mapping[str, Mapping[date, float]],
        closes: Mapping[date, float],
    ) -> list[tuple[date, float]]:
        """Invert every leg's close in one vectorised call, then combine per session."""
        n = len(legs)
        price, spot, strike, t, call = (np.full(n, np.nan) for _ in range(5))
        for i, leg in enumerate(legs):
            price[i] = prices.get(leg.symbol, {}).get(leg.day, math.nan)
            spot[i] = closes[leg.day]
            strike[i] = leg.strike
            t[i] = (expiry_close_ns(leg.expiry) - _session_close_ns(leg.day)) / NS_PER_YEAR
            call[i] = leg.is_call
        q = self.query.div_yields.get(underlying, 0.0)
        iv = implied_vol(call.astype(np.bool_), price, spot, strike, t, self.query.rate, q)
        slots: dict[date, list[list[float]]] = {}
        times: dict[tuple[date, int], float] = {}
        for i, leg in enumerate(legs):
            day_slots = slots.setdefault(leg.day, [[], []])
            times[(leg.day, leg.slot)] = float(t[i])
            if math.isfinite(iv[i]):
                day_slots[leg.slot].append(float(iv[i]))
        out = []
        for day, (near, far) in slots.items():
            if not (near and far):
                continue  # both expiries or nothing: one alone is not a 30-day figure
            v = interpolate_30d(
                times[(day, 0)], sum(near) / len(near), times[(day, 1)], sum(far) / len(far)
            )
            if MIN_IV <= v <= MAX_IV:
                out.append((day, v))
        return out


def source_for(config: AlpacaFeedConfig) -> IVHistorySource:
    """An IVHistorySource on the feed's REST endpoints and credentials, hardened like the chains'."""
    c = config
    options = OptionHistoricalDataClient(
        c.api_key, c.secret_key, raw_data=True, url_override=c.data_url
    )
    stocks = StockHistoricalDataClient(
        c.api_key, c.secret_key, raw_data=True, url_override=c.data_url
    )
    for client in (options, stocks):
        _harden(client, c.rest_timeout_s, c.rest_retries, c.rest_retry_wait_s)
    query = IVHistoryQuery(rate=c.query.rate, div_yields=c.div_yields, stock_feed=c.stock_feed)
    return IVHistorySource(options, stocks, query)


class IVHistoryTarget(Protocol):
    """What the backfill writes to (a VolatilityEngine): the window it wants, and a merge."""

    def broker_backfill_window(self, today: date) -> tuple[date, date, frozenset[date]] | None:
        """[start, end) of sessions worth fetching and the days already held; None: nothing."""
        ...

    def merge_broker_history(self, points: Sequence[tuple[date, float]]) -> int:
        """Take broker-derived daily ATM IVs; return how many were used."""
        ...


async def backfill_iv_history(
    make_source: Callable[[], IVHistorySource],
    targets: Mapping[str, IVHistoryTarget],
    today: date,
) -> dict[str, int]:
    """Fetch past ATM IVs off the event loop for every target that wants some and merge them on
    the loop. Never raises: a failure is logged and leaves that target on its proxy history.
    Return the points merged per underlying."""
    merged: dict[str, int] = {}
    wanted = {u: w for u, t in targets.items() if (w := t.broker_backfill_window(today))}
    if not wanted:
        return merged
    try:
        source = make_source()
    except Exception as exc:  # a client that cannot be built is a misconfiguration, not a crash
        log.warning("iv backfill from broker bars not started", error=repr(exc))
        return merged
    try:
        for underlying, (start, end, held) in wanted.items():
            try:
                points = await asyncio.to_thread(source.fetch, underlying, start, end, held)
                merged[underlying] = targets[underlying].merge_broker_history(points)
            except Exception as exc:  # REST down, 4xx/5xx, bad payloads: keep the proxy
                log.warning(
                    "iv backfill from broker bars failed", underlying=underlying, error=repr(exc)
                )
                continue
            log.info(
                "iv history backfilled from broker bars",
                underlying=underlying,
                points=merged[underlying],
                requests=source.requests,
            )
    finally:
        source.close()
    return merged
