"""Independent reference maths for the guard's property tests, straight from the chain arrays."""

from __future__ import annotations

from gnosisd.bus.events import ChainSnapshot, SubmitOrder
from gnosisd.core.enums import Side


def _rows(chain: ChainSnapshot) -> dict[str, int]:
    return {sym: i for i, sym in enumerate(chain.symbols)}


def reference_band(
    intent: SubmitOrder, chain: ChainSnapshot, tol: float, pct: float
) -> tuple[float, float]:
    """[far − slack, natural + slack] of one unit, per share (see risk/collar.py's docstring)."""
    rows = _rows(chain)
    low = high = 0.0
    for lg in intent.legs:
        i = rows[lg.symbol]
        bid, ask = float(chain.bid[i]), float(chain.ask[i])
        slack = lg.ratio * (tol + pct * (bid + ask) / 2)
        if lg.side is Side.BUY:
            low += lg.ratio * bid - slack
            high += lg.ratio * ask + slack
        else:
            low -= lg.ratio * ask + slack
            high -= lg.ratio * bid - slack
    return low, high


def signed_greeks(
    legs: list[tuple[str, int]], chain: ChainSnapshot
) -> tuple[float, float, float, float]:
    """Dollar (delta, gamma per 1%, vega per vol point, theta per day) of (symbol, contracts)."""
    rows = _rows(chain)
    s = chain.spot
    d = g = v = t = 0.0
    for sym, n in legs:
        i = rows[sym]
        d += float(chain.delta[i]) * 100 * n * s
        g += float(chain.gamma[i]) * 100 * n * s * s / 100
        v += float(chain.vega[i]) * 100 * n / 100
        t += float(chain.theta[i]) * 100 * n / 365
    return d, g, v, t


def reference_greeks(
    intent: SubmitOrder, chain: ChainSnapshot
) -> tuple[float, float, float, float]:
    legs = [
        (lg.symbol, lg.ratio * intent.quantity * (1 if lg.side is Side.BUY else -1))
        for lg in intent.legs
    ]
    return signed_greeks(legs, chain)
