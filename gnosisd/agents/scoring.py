"""Ranking score of a candidate: expected value per unit of risk under the context's view, leg
liquidity, and fit of the structure's greeks to the view (docs/strategies.md, "Ranking")."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gnosisd.bus.events import ChainSnapshot
from gnosisd.bus.records import MarketContext
from gnosisd.core.config import TradeAgentConfig
from gnosisd.core.enums import Direction
from gnosisd.quant.profile import Lognormal

_DELTA_REF = 0.5  # an at-the-money option: a structure with |delta| >= 0.5 is fully directional


def direction_sign(direction: Direction) -> int:
    return 1 if direction is Direction.BULLISH else -1 if direction is Direction.BEARISH else 0


def atm_row(chain: ChainSnapshot, expiry_idx: int, is_call: bool = True) -> int | None:
    """Row of the strike nearest the forward in one expiry with a usable IV, of one type."""
    m = (chain.expiry_idx == expiry_idx) & (chain.is_call == is_call)
    m &= np.isfinite(chain.iv) & (chain.iv > 0)
    rows = np.flatnonzero(m)
    if rows.size == 0:
        return None
    t = float(chain.t_years[rows[0]])
    fwd = chain.spot * math.exp((chain.rate - chain.div_yield) * max(t, 0.0))
    return int(rows[int(np.argmin(np.abs(chain.strike[rows] - fwd)))])


def atm_iv(chain: ChainSnapshot, expiry_idx: int) -> float | None:
    """ATM implied vol of one expiry: mean of the call and put IV at the strike nearest the forward."""
    ivs = [
        float(chain.iv[r])
        for c in (True, False)
        if (r := atm_row(chain, expiry_idx, c)) is not None
    ]
    return sum(ivs) / len(ivs) if ivs else None


def view_distribution(
    context: MarketContext,
    chain: ChainSnapshot,
    sigma: float,
    t: float,
    cfg: TradeAgentConfig,
    vol_view: int,
) -> Lognormal:
    """The chain-implied lognormal with the context's view on it.

    Median moved by d × confidence × view_strength standard deviations (d = +1 bullish, −1 bearish,
    0 neutral); vol scaled by (1 + v × vol_view), v the vol view of `routing.vol_view`.
    """
    drift = direction_sign(context.direction) * context.confidence * cfg.view_strength
    sig = sigma * (1.0 + vol_view * cfg.vol_view)
    return Lognormal.implied(chain.spot, chain.rate, chain.div_yield, sig, t, drift)


def liquidity(spreads: Sequence[float], max_spread_pct: float) -> float:
    """Mean over legs of 1 − spread% / max_spread_pct, clipped to [0, 1]."""
    vals = [min(max(1.0 - s / max_spread_pct, 0.0), 1.0) for s in spreads]
    return sum(vals) / len(vals) if vals else 0.0


def fit(
    net_delta: float, net_vega: float, atm_vega: float, direction: Direction, vview: int
) -> float:
    """How the structure's greeks match the view, in [0, 1]: the mean of a delta and a vega term.

    delta: x = clip(Δ / 0.5, −1, 1); directional views score (1 + d·x)/2, a neutral view 1 − |x|.
    vega: y = clip(vega / ATM vega, −1, 1); a vol view v ≠ 0 scores (1 + v·y)/2, none 0.5.
    """
    x = min(max(net_delta / _DELTA_REF, -1.0), 1.0)
    d = direction_sign(direction)
    delta_fit = (1.0 + d * x) / 2.0 if d else 1.0 - abs(x)
    if vview and atm_vega > 0:
        y = min(max(net_vega / atm_vega, -1.0), 1.0)
        vega_fit = (1.0 + vview * y) / 2.0
    else:
        vega_fit = 0.5
    return 0.5 * (delta_fit + vega_fit)


@dataclass(frozen=True, slots=True)
class ScoreParts:
    ev_per_risk: float
    liquidity: float
    fit: float

    def score(self, cfg: TradeAgentConfig) -> float:
        """ev_per_risk + score_liquidity_weight × liquidity + score_fit_weight × fit."""
        return round(
            self.ev_per_risk
            + cfg.score_liquidity_weight * self.liquidity
            + cfg.score_fit_weight * self.fit,
            6,
        )

    def as_dict(self) -> dict[str, float]:
        return {
            "ev_per_risk": round(self.ev_per_risk, 6),
            "liquidity": round(self.liquidity, 6),
            "fit": round(self.fit, 6),
        }
