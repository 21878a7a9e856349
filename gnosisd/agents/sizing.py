"""Position sizing: Kelly fraction × confidence, the per-trade cap and the portfolio cap, in contracts.

f = p − (1 − p)/b (Kelly, "A New Interpretation of Information Rate", 1956; Thorp, "The Kelly
Criterion in Blackjack, Sports Betting and the Stock Market", 2006), clamped to ±kelly_clamp and
multiplied by the context's confidence, is the fraction of equity put at risk (max loss).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from gnosisd.core.enums import Regime, StrategyType
from gnosisd.core.money import ZERO
from gnosisd.core.views import Position

KellyOverrides = Mapping[tuple[StrategyType, Regime], float]


def kelly_fraction(p: float, b: float) -> float:
    """Kelly fraction of a bet won with probability p paying b per unit lost (b = inf: f = p)."""
    if not (0.0 <= p <= 1.0) or math.isnan(b) or b < 0:
        raise ValueError(f"kelly_fraction needs p in [0, 1] and b >= 0, got p={p}, b={b}")
    if p == 0.0:
        return -math.inf
    if b == 0.0:
        return -math.inf if p < 1.0 else 1.0
    if math.isinf(b):
        return p
    return p - (1.0 - p) / b


def open_risk(positions: Iterable[Position]) -> Decimal:
    """Total max loss (dollars, >= 0) of open positions across every symbol."""
    return sum((-min(p.max_loss, ZERO) for p in positions), ZERO)


@dataclass(frozen=True, slots=True)
class Sizing:
    """The size of one idea and what limited it.

    fraction: Kelly clamped and times confidence (the share of equity the idea may risk).
    budget: dollars of max loss allowed = min(fraction, per-trade cap) × equity, within the room
    left under the portfolio cap. limit: "kelly", "trade_cap" or "portfolio_cap".
    """

    quantity: int
    kelly: float
    fraction: float
    budget: Decimal
    limit: str


def size(
    per_contract_risk: Decimal,
    kelly: float,
    confidence: float,
    equity: Decimal,
    max_trade_risk_pct: Decimal,
    *,
    clamp: float = 0.25,
    room: Decimal | None = None,
) -> Sizing:
    """Whole contracts whose max loss (`per_contract_risk` dollars each, > 0) fits every cap."""
    if per_contract_risk <= 0:
        raise ValueError(f"per-contract risk must be positive, got {per_contract_risk}")
    f = min(max(kelly, -clamp), clamp) * min(max(confidence, 0.0), 1.0)
    kelly_budget = Decimal(repr(round(f, 8))) * equity if f > 0 else ZERO
    trade_cap = max_trade_risk_pct * equity
    budget, limit = kelly_budget, "kelly"
    if trade_cap < budget:
        budget, limit = trade_cap, "trade_cap"
    if room is not None and room < budget:
        budget, limit = max(room, ZERO), "portfolio_cap"
    qty = int(budget // per_contract_risk) if budget > 0 else 0
    return Sizing(qty, kelly, f, budget, limit)
