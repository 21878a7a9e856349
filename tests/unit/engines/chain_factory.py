"""Hand-built option chains and bars for the engine tests, with an independent scalar BSM."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np

from gnosisd.bus.events import Bar, ChainSnapshot
from gnosisd.core.clock import datetime_to_ns
from gnosisd.core.enums import OptionType
from gnosisd.core.occ import occ_symbol

# 2025-03-10 10:30 New York (EDT) is a Monday session.
T0 = datetime(2025, 3, 10, 14, 30, tzinfo=UTC)
T0_NS = datetime_to_ns(T0)
MINUTE_NS = 60 * 1_000_000_000


def n_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def n_pdf(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def d1(s: float, k: float, t: float, r: float, q: float, sigma: float) -> float:
    return (math.log(s / k) + (r - q + 0.5 * sigma * sigma) * t) / (sigma * math.sqrt(t))


def delta(call: bool, s: float, k: float, t: float, r: float, q: float, sigma: float) -> float:
    x = d1(s, k, t, r, q, sigma)
    return math.exp(-q * t) * (n_cdf(x) if call else n_cdf(x) - 1.0)


def gamma(s: float, k: float, t: float, r: float, q: float, sigma: float) -> float:
    x = d1(s, k, t, r, q, sigma)
    return math.exp(-q * t) * n_pdf(x) / (s * sigma * math.sqrt(t))


@dataclass(frozen=True)
class Row:
    call: bool
    strike: float
    days: float  # calendar days to expiry
    iv: float = 0.2
    oi: int = 1000
    volume: int = 0
    bid: float = 1.0
    ask: float = 1.1
    gamma: float | None = None  # None: BSM gamma at the chain's spot


def make_chain(
    rows: list[Row],
    spot: float = 100.0,
    ts_ns: int = T0_NS,
    rate: float = 0.0,
    div_yield: float = 0.0,
    underlying: str = "SPY",
) -> ChainSnapshot:
    today = date(2025, 3, 10)
    expiries = sorted({today + timedelta(days=round(r.days)) for r in rows})
    t = [r.days / 365.0 for r in rows]
    gam = [
        r.gamma if r.gamma is not None else gamma(spot, r.strike, ti, rate, div_yield, r.iv)
        for r, ti in zip(rows, t, strict=True)
    ]
    dl = [
        delta(r.call, spot, r.strike, ti, rate, div_yield, r.iv)
        for r, ti in zip(rows, t, strict=True)
    ]
    exp_of = [today + timedelta(days=round(r.days)) for r in rows]
    syms = tuple(
        occ_symbol(
            underlying,
            e,
            OptionType.CALL if r.call else OptionType.PUT,
            Decimal(str(r.strike)),
        )
        for r, e in zip(rows, exp_of, strict=True)
    )
    f = np.float64
    return ChainSnapshot(
        underlying=underlying,
        ts_ns=ts_ns,
        spot=spot,
        rate=rate,
        div_yield=div_yield,
        symbols=syms,
        is_call=np.array([r.call for r in rows], dtype=np.bool_),
        strike=np.array([r.strike for r in rows], dtype=f),
        expiries=tuple(expiries),
        expiry_idx=np.array([expiries.index(e) for e in exp_of], dtype=np.int64),
        t_years=np.array(t, dtype=f),
        bid=np.array([r.bid for r in rows], dtype=f),
        ask=np.array([r.ask for r in rows], dtype=f),
        iv=np.array([r.iv for r in rows], dtype=f),
        delta=np.array(dl, dtype=f),
        gamma=np.array(gam, dtype=f),
        vega=np.zeros(len(rows), dtype=f),
        theta=np.zeros(len(rows), dtype=f),
        open_interest=np.array([r.oi for r in rows], dtype=np.int64),
        volume=np.array([r.volume for r in rows], dtype=np.int64),
    )


def bar(
    close: float, i: int = 0, volume: float = 1000.0, symbol: str = "SPY", start_ns: int = T0_NS
) -> Bar:
    """The i-th 1-minute bar after `start_ns`, flat at `close`."""
    return Bar(
        symbol=symbol,
        ts_ns=start_ns + i * MINUTE_NS,
        open=close,
        high=close,
        low=close,
        close=close,
        volume=volume,
    )
