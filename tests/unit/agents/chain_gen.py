"""Option chains with a volatility smile and a term structure, priced by BSM, for agent tests."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, timedelta

import numpy as np

from gnosisd.bus.events import ChainSnapshot
from gnosisd.testing.chains import DEFAULT_AS_OF_NS, make_chain

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
    return make_chain(
        underlying,
        spot,
        DEFAULT_AS_OF_NS,
        expiries=[TODAY + timedelta(days=d) for d in sorted(set(dtes))],
        strikes=[float(k) for k in np.arange(max(lo, step), hi + step / 2, step)],
        iv=atm_iv,
        r=r,
        q=q,
        spread_pct=spread_pct,
        open_interest=open_interest,
        volume=100,
        skew=skew,
        term_slope=term_slope,
    )
