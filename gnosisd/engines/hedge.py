"""Hedge engine: dealer gamma, vanna and charm exposure, gamma-flip level and call/put walls.

Updates on each ChainSnapshot of its symbol (SqueezeMetrics, "Gamma Exposure", 2017). Formulas,
units and the dealer sign convention are in docs/engines.md.
"""

from __future__ import annotations

import math

import numpy as np

from gnosisd.bus.events import ChainSnapshot, EngineSnapshot, FloatArray
from gnosisd.core.config import HedgeConfig
from gnosisd.quant import bsm

NAME = "hedge"
MULTIPLIER = 100.0  # shares per listed equity option contract
FLIP_GRID_HALF_WIDTH = 0.10  # the gamma-flip search covers spot ±10%
FLIP_GRID_POINTS = 401
DAYS_PER_YEAR = 365.0


def dealer_sign(is_call: np.ndarray, convention: str) -> FloatArray:
    """Dealer position sign per contract: +1 dealer long, -1 dealer short."""
    if convention == "short_all":
        return np.full(is_call.shape, -1.0)
    # "short_puts_long_calls": customers sell calls (overwriting) and buy puts (protection).
    return np.where(is_call, 1.0, -1.0)


def gex_at(
    spot: FloatArray | float,
    sign: FloatArray,
    oi: FloatArray,
    strike: FloatArray,
    t: FloatArray,
    r: float,
    q: float,
    sigma: FloatArray,
) -> FloatArray:
    """Total dealer GEX ($ per 1% move) re-priced at each spot of a grid (column vector)."""
    s = np.asarray(spot, dtype=np.float64).reshape(-1, 1)
    g = bsm.gamma(s, strike, t, r, q, sigma)
    out: FloatArray = np.sum(sign * g * oi * MULTIPLIER * s * s * 0.01, axis=1)
    return out


def find_flip(grid: FloatArray, values: FloatArray, spot: float) -> float:
    """Spot where `values` changes sign on `grid` (linear interpolation), nearest to spot."""
    best = math.nan
    for i in range(len(grid) - 1):
        a, b = float(values[i]), float(values[i + 1])
        if a == 0.0:
            x = float(grid[i])
        elif a * b < 0.0:
            x = float(grid[i]) + (float(grid[i + 1]) - float(grid[i])) * a / (a - b)
        else:
            continue
        if math.isnan(best) or abs(x - spot) < abs(best - spot):
            best = x
    return best


def _wall(strike: FloatArray, weight: FloatArray) -> float:
    """Strike with the largest gamma·OI summed over expiries; NaN if nothing weighs."""
    if strike.size == 0:
        return math.nan
    uniq, inv = np.unique(strike, return_inverse=True)
    totals = np.bincount(inv, weights=weight, minlength=uniq.size)
    if not np.any(totals > 0):
        return math.nan
    return float(uniq[int(np.argmax(totals))])


class HedgeEngine:
    """Dealer positioning from one symbol's option chain."""

    def __init__(self, symbol: str, cfg: HedgeConfig) -> None:
        self.symbol = symbol
        self.cfg = cfg

    def update(self, event: object) -> EngineSnapshot | None:
        """Recompute on a ChainSnapshot of this symbol; ignore every other event."""
        if not isinstance(event, ChainSnapshot) or event.underlying != self.symbol:
            return None
        metrics = self.compute(event)
        return EngineSnapshot(
            engine=NAME,
            symbol=self.symbol,
            ts_ns=event.ts_ns,
            metrics=metrics,
            flags=self.flags(metrics),
        )

    def compute(self, chain: ChainSnapshot) -> dict[str, float]:
        """Metrics of one chain: gex, vanna_exposure, charm_exposure, gamma_flip, walls, spot."""
        spot = float(chain.spot)
        r, q = float(chain.rate), float(chain.div_yield)
        oi = chain.open_interest.astype(np.float64)
        sign = dealer_sign(chain.is_call, self.cfg.dealer_convention)
        gamma = np.nan_to_num(chain.gamma, nan=0.0)
        gex = float(np.sum(sign * gamma * oi * MULTIPLIER * spot * spot * 0.01))

        # Vanna and charm need a vol and a live expiry; rows without them contribute nothing.
        ok = (
            np.isfinite(chain.iv)
            & (chain.iv > 0)
            & np.isfinite(chain.t_years)
            & (chain.t_years > 0)
            & (chain.strike > 0)
            & (oi > 0)
        )
        vanna_exp = charm_exp = 0.0
        flip = math.nan
        if spot > 0 and np.any(ok):
            k, t, iv, s_ok, oi_ok = (
                chain.strike[ok],
                chain.t_years[ok],
                chain.iv[ok],
                sign[ok],
                oi[ok],
            )
            g = bsm.greeks(chain.is_call[ok], spot, k, t, r, q, iv)
            vanna, charm = g.vanna, g.charm
            vanna_exp = float(np.sum(s_ok * vanna * oi_ok * MULTIPLIER * spot * 0.01))
            charm_exp = float(np.sum(s_ok * charm * oi_ok * MULTIPLIER * spot / DAYS_PER_YEAR))
            grid = np.linspace(
                spot * (1 - FLIP_GRID_HALF_WIDTH),
                spot * (1 + FLIP_GRID_HALF_WIDTH),
                FLIP_GRID_POINTS,
            )
            flip = find_flip(grid, gex_at(grid, s_ok, oi_ok, k, t, r, q, iv), spot)

        weight = gamma * oi
        calls = chain.is_call
        return {
            "gex": gex,
            "vanna_exposure": vanna_exp,
            "charm_exposure": charm_exp,
            "gamma_flip": flip,
            "call_wall": _wall(chain.strike[calls], weight[calls]),
            "put_wall": _wall(chain.strike[~calls], weight[~calls]),
            "spot": spot,
        }

    def flags(self, m: dict[str, float]) -> tuple[str, ...]:
        """positive_gamma / negative_gamma, gamma_squeeze (large negative GEX), vanna_flow."""
        out: list[str] = []
        gex = m["gex"]
        if gex > 0:
            out.append("positive_gamma")
        elif gex < 0:
            out.append("negative_gamma")
            if abs(gex) >= self.cfg.gamma_squeeze_threshold:
                out.append("gamma_squeeze")
        if abs(m["vanna_exposure"]) >= self.cfg.vanna_flow_threshold:
            out.append("vanna_flow")
        return tuple(out)


__all__ = ["NAME", "HedgeEngine", "dealer_sign", "gex_at"]
