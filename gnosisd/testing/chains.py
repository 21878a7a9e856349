"""Hand-made, internally consistent option chains for tests (closed-form BSM prices and greeks).

Prices and greeks: gnosisd.quant.bsm (Black-Scholes-Merton with dividend yield q, Haug ch. 1-2).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import numpy as np

from gnosisd.bus.events import ChainSnapshot
from gnosisd.core.clock import NEW_YORK, datetime_to_ns
from gnosisd.core.enums import OptionType
from gnosisd.core.occ import occ_symbol, parse_occ
from gnosisd.quant import bsm

# Monday 2025-06-02 11:00 New York (15:00 UTC): a regular session.
DEFAULT_AS_OF_NS = datetime_to_ns(datetime(2025, 6, 2, 15, 0, tzinfo=UTC))
_SECONDS_PER_YEAR = 365.0 * 86_400.0


def ns_at_new_york(day: date, hour: int = 11, minute: int = 0) -> int:
    """UTC ns of a New York wall-clock time (handy for moving a test chain forward in time)."""
    return datetime_to_ns(datetime.combine(day, time(hour, minute), tzinfo=NEW_YORK))


def default_expiries(as_of_ns: int, weeks: Sequence[int] = (1, 2, 3, 4, 6, 7, 8)) -> list[date]:
    """Fridays `weeks` weeks after the as-of's New York date."""
    today = datetime.fromtimestamp(as_of_ns / 1e9, tz=UTC).astimezone(NEW_YORK).date()
    friday = today + timedelta(days=(4 - today.weekday()) % 7)
    return [friday + timedelta(weeks=w - 1 if friday > today else w) for w in weeks]


def _years_to_close(as_of_ns: int, expiry: date) -> float:
    close = datetime.combine(expiry, time(16, 0), tzinfo=NEW_YORK)
    seconds = (datetime_to_ns(close) - as_of_ns) / 1e9
    return max(seconds, 60.0) / _SECONDS_PER_YEAR


def make_chain(
    underlying: str = "SPY",
    spot: float = 500.0,
    as_of_ns: int = DEFAULT_AS_OF_NS,
    expiries: Sequence[date] | None = None,
    strikes: Sequence[float] | None = None,
    iv: float = 0.2,
    r: float = 0.045,
    q: float = 0.0,
    spread_pct: float = 0.04,
    open_interest: int = 1_000,
    volume: int = 200,
    skew: float = 0.0,
    term_slope: float = 0.0,
) -> ChainSnapshot:
    """Build a chain of calls and puts on every (expiry, strike) with BSM mids and a quoted spread.

    bid/ask = theo ∓ max(0.005, theo × spread_pct / 2) rounded to the cent, bid floored at 0, so
    far out-of-the-money contracts quote a zero bid (an illiquid spread), as real chains do.
    """
    exps = sorted(expiries) if expiries is not None else default_expiries(as_of_ns)
    if strikes is None:
        step = 5.0 if spot >= 100 else 1.0
        lo, hi = math.floor(spot * 0.8 / step) * step, math.ceil(spot * 1.2 / step) * step
        strikes = list(np.arange(lo, hi + step / 2, step))
    ks = sorted(float(k) for k in strikes)

    symbols: list[str] = []
    is_call: list[bool] = []
    strike: list[float] = []
    e_idx: list[int] = []
    t: list[float] = []
    for j, e in enumerate(exps):
        ty = _years_to_close(as_of_ns, e)
        for k in ks:
            for call in (True, False):
                otype = OptionType.CALL if call else OptionType.PUT
                symbols.append(occ_symbol(underlying, e, otype, Decimal(repr(k))))
                is_call.append(call)
                strike.append(k)
                e_idx.append(j)
                t.append(ty)

    c = np.array(is_call, dtype=np.bool_)
    k_arr = np.array(strike, dtype=np.float64)
    t_arr = np.array(t, dtype=np.float64)
    if skew or term_slope:
        # A smile and a term structure: iv × (1 + term_slope × (T − 30/365)) + skew × ln(K/S),
        # floored at 3%.
        smile = iv * (1.0 + term_slope * (t_arr - 30.0 / 365.0)) + skew * np.log(k_arr / spot)
        sig = np.maximum(smile, 0.03)
    else:
        sig = np.full(len(symbols), iv, dtype=np.float64)
    theo = bsm.price(c, spot, k_arr, t_arr, r, q, sig)
    g = bsm.greeks(c, spot, k_arr, t_arr, r, q, sig)

    half = np.maximum(0.005, theo * spread_pct / 2.0)
    bid = np.round(np.maximum(theo - half, 0.0), 2).astype(np.float64)
    ask = np.maximum(np.round(theo + half, 2), bid + 0.01).astype(np.float64)
    n = len(symbols)
    return ChainSnapshot(
        underlying=underlying,
        ts_ns=as_of_ns,
        spot=spot,
        rate=r,
        div_yield=q,
        symbols=tuple(symbols),
        is_call=c,
        strike=k_arr,
        expiries=tuple(exps),
        expiry_idx=np.array(e_idx, dtype=np.int64),
        t_years=t_arr,
        bid=bid,
        ask=ask,
        iv=sig,
        delta=np.asarray(g.delta, dtype=np.float64),
        gamma=np.asarray(g.gamma, dtype=np.float64),
        vega=np.asarray(g.vega, dtype=np.float64),
        theta=np.asarray(g.theta, dtype=np.float64),
        open_interest=np.full(n, open_interest, dtype=np.int64),
        volume=np.full(n, volume, dtype=np.int64),
    )


def quoted_chain(
    quotes: Mapping[str, tuple[float, float]],
    *,
    underlying: str = "SPY",
    spot: float = 500.0,
    ts_ns: int = DEFAULT_AS_OF_NS,
    open_interest: int = 0,
) -> ChainSnapshot:
    """A small chain of exactly the contracts in `quotes` ({OCC symbol: (bid, ask)}), with a flat
    0.2 vol, T = 0.1 y and zero greeks: for broker and ledger tests that only read quotes."""
    symbols = tuple(quotes)
    contracts = [parse_occ(s) for s in symbols]
    expiries = tuple(sorted({c.expiry for c in contracts}))
    n = len(symbols)
    f = np.zeros(n, dtype=np.float64)
    return ChainSnapshot(
        underlying=underlying,
        ts_ns=ts_ns,
        spot=spot,
        rate=0.04,
        div_yield=0.0,
        symbols=symbols,
        is_call=np.array([c.option_type is OptionType.CALL for c in contracts], dtype=np.bool_),
        strike=np.array([float(c.strike) for c in contracts], dtype=np.float64),
        expiries=expiries,
        expiry_idx=np.array([expiries.index(c.expiry) for c in contracts], dtype=np.int64),
        t_years=f + 0.1,
        bid=np.array([q[0] for q in quotes.values()], dtype=np.float64),
        ask=np.array([q[1] for q in quotes.values()], dtype=np.float64),
        iv=f + 0.2,
        delta=f.copy(),
        gamma=f.copy(),
        vega=f.copy(),
        theta=f.copy(),
        open_interest=np.full(n, open_interest, dtype=np.int64),
        volume=np.zeros(n, dtype=np.int64),
    )


def with_quotes(chain: ChainSnapshot, updates: Mapping[str, Mapping[str, float]]) -> ChainSnapshot:
    """Return a copy of `chain` with some rows' bid, ask, open_interest or volume replaced.

    `updates` maps an OCC symbol to e.g. {"bid": 0.0, "ask": 2.0, "open_interest": 0}.
    """
    cols = {
        name: np.array(getattr(chain, name), copy=True)
        for name in ("bid", "ask", "open_interest", "volume", "delta", "iv")
    }
    for symbol, fields in updates.items():
        i = chain.row(symbol)
        for name, value in fields.items():
            if name not in cols:
                raise ValueError(f"with_quotes cannot change {name!r}; allowed: {sorted(cols)}")
            cols[name][i] = value
    return replace(
        chain,
        bid=cols["bid"],
        ask=cols["ask"],
        open_interest=cols["open_interest"],
        volume=cols["volume"],
        delta=cols["delta"],
        iv=cols["iv"],
    )


def symbol_for(chain: ChainSnapshot, expiry: date, option_type: OptionType, strike: float) -> str:
    """The OCC symbol of a listed contract of `chain` (KeyError if it is not listed)."""
    symbol = occ_symbol(chain.underlying, expiry, option_type, Decimal(repr(float(strike))))
    chain.row(symbol)
    return symbol
