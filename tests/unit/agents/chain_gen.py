"""Option chains with a volatility smile and a term structure, priced by BSM, for agent tests."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal

import numpy as np

from gnosisd.bus.events import ChainSnapshot
from gnosisd.core.enums import OptionType
from gnosisd.core.occ import occ_symbol
from gnosisd.quant import bsm
from gnosisd.testing.chains import DEFAULT_AS_OF_NS, _years_to_close

TODAY = date(2025, 6, 2)  # New York date of DEFAULT_AS_OF_NS


def smile_chain(
    spot: float = 500.0,
    atm_iv: float = 0.2,
    skew: float = -0.1,
    term_slope: float = 0.0,
    r: float = 0.045,
    q: float = 0.013,
    spread_pct: float = 0.04,
    dtes: Sequence[int] = (3, 10, 17, 24, 31, 45, 59, 87),
    strike_step: float | None = None,
    open_interest: int = 1_000,
    underlying: str = "SPY",
) -> ChainSnapshot:
    """Calls and puts on every (expiry, strike) within ±25% of spot.

    IV = atm_iv × (1 + term_slope × (T − 30/365)) + skew × ln(K/S) (floored at 3%); bid/ask = theo
    ∓ max(0.005, theo × spread_pct / 2) to the cent, bid floored at 0.
    """
    step = strike_step or (5.0 if spot >= 100 else 1.0)
    lo = math.floor(spot * 0.75 / step) * step
    hi = math.ceil(spot * 1.25 / step) * step
    ks = [float(k) for k in np.arange(max(lo, step), hi + step / 2, step)]
    exps = [TODAY + timedelta(days=d) for d in sorted(set(dtes))]
    symbols: list[str] = []
    calls: list[bool] = []
    strikes: list[float] = []
    e_idx: list[int] = []
    t: list[float] = []
    for j, e in enumerate(exps):
        ty = _years_to_close(DEFAULT_AS_OF_NS, e)
        for k in ks:
            for call in (True, False):
                kind = OptionType.CALL if call else OptionType.PUT
                symbols.append(occ_symbol(underlying, e, kind, Decimal(repr(k))))
                calls.append(call)
                strikes.append(k)
                e_idx.append(j)
                t.append(ty)
    c = np.array(calls, dtype=np.bool_)
    k_arr = np.array(strikes)
    t_arr = np.array(t)
    iv = atm_iv * (1.0 + term_slope * (t_arr - 30.0 / 365.0)) + skew * np.log(k_arr / spot)
    iv = np.maximum(iv, 0.03)
    theo = bsm.price(c, spot, k_arr, t_arr, r, q, iv)
    g = bsm.greeks(c, spot, k_arr, t_arr, r, q, iv)
    half = np.maximum(0.005, theo * spread_pct / 2.0)
    bid = np.round(np.maximum(theo - half, 0.0), 2)
    ask = np.maximum(np.round(theo + half, 2), bid + 0.01)
    n = len(symbols)
    return ChainSnapshot(
        underlying=underlying,
        ts_ns=DEFAULT_AS_OF_NS,
        spot=spot,
        rate=r,
        div_yield=q,
        symbols=tuple(symbols),
        is_call=c,
        strike=k_arr,
        expiries=tuple(exps),
        expiry_idx=np.array(e_idx, dtype=np.int64),
        t_years=t_arr,
        bid=bid.astype(np.float64),
        ask=ask.astype(np.float64),
        iv=iv.astype(np.float64),
        delta=np.asarray(g.delta, dtype=np.float64),
        gamma=np.asarray(g.gamma, dtype=np.float64),
        vega=np.asarray(g.vega, dtype=np.float64),
        theta=np.asarray(g.theta, dtype=np.float64),
        open_interest=np.full(n, open_interest, dtype=np.int64),
        volume=np.full(n, 100, dtype=np.int64),
    )
