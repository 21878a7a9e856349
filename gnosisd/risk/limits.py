"""Pure limit checks: order validation, the guard's own max-loss recomputation, the rate window.

Max loss comes from `quant.profile.structure_max_loss` (exactly `structure_bounds(...).max_loss`,
the bounds the trade agent sizes with) on the intent's legs (with their expiries) and limit price,
never from numbers the agent attached.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from gnosisd.bus.events import SubmitOrder
from gnosisd.core.enums import OptionType, PositionEffect, RiskReason, Side
from gnosisd.core.errors import InvalidSymbolError
from gnosisd.core.money import CONTRACT_MULTIPLIER, ZERO
from gnosisd.core.occ import parse_occ
from gnosisd.quant.profile import ExpiryLeg, structure_max_loss

NS_PER_MINUTE = 60 * 1_000_000_000

# The guard sees the same few hundred symbols all day: parse each once (the result is frozen).
_parse_occ = lru_cache(maxsize=8192)(parse_occ)


@dataclass(frozen=True, slots=True)
class OrderRisk:
    """Validation outcome: `reason` is APPROVED when the order is well formed.

    `max_loss` is total dollars (per-share loss × 100 × quantity, <= 0), None if unbounded.
    """

    reason: RiskReason
    detail: str
    max_loss: Decimal | None


def payoff_legs(intent: SubmitOrder) -> list[ExpiryLeg]:
    """The intent's legs as signed legs with their expiries (+ratio bought, -ratio sold)."""
    return [
        ExpiryLeg(
            is_call=leg.option_type is OptionType.CALL,
            strike=leg.strike,
            ratio=leg.ratio if leg.side is Side.BUY else -leg.ratio,
            expiry=leg.expiry,
        )
        for leg in intent.legs
    ]


def _leg_problem(intent: SubmitOrder) -> str | None:
    seen: set[str] = set()
    for leg in intent.legs:
        if leg.symbol in seen:
            return f"leg {leg.symbol} appears twice"
        seen.add(leg.symbol)
        if leg.ratio <= 0:
            return f"leg {leg.symbol} has ratio {leg.ratio}; ratios must be >= 1"
        if not leg.strike.is_finite() or leg.strike <= 0:
            return f"leg {leg.symbol} has strike {leg.strike}; strikes must be positive"
        try:
            contract = _parse_occ(leg.symbol)
        except InvalidSymbolError as exc:
            return str(exc)
        # The payoff is computed from the leg fields, the broker trades the symbol: they must agree.
        if (
            contract.underlying != intent.underlying.upper()
            or contract.strike != leg.strike
            or contract.expiry != leg.expiry
            or contract.option_type is not leg.option_type
        ):
            return (
                f"leg {leg.symbol} does not match its fields ({intent.underlying} {leg.expiry} "
                f"{leg.option_type} {leg.strike})"
            )
    return None


def assess_order(intent: SubmitOrder) -> OrderRisk:
    """Validate an intent and recompute its max loss from its legs and limit price."""
    if not intent.legs:
        return OrderRisk(RiskReason.INVALID_ORDER, "order has no legs", None)
    if intent.quantity <= 0:
        return OrderRisk(RiskReason.ZERO_QUANTITY, f"quantity is {intent.quantity}", None)
    if not intent.limit_price.is_finite():
        return OrderRisk(
            RiskReason.INVALID_ORDER, f"limit price {intent.limit_price} is not finite", None
        )
    problem = _leg_problem(intent)
    if problem is not None:
        return OrderRisk(RiskReason.INVALID_ORDER, problem, None)
    if intent.effect is PositionEffect.CLOSE and not intent.position_id:
        return OrderRisk(RiskReason.INVALID_ORDER, "closing order names no position_id", None)
    max_loss = structure_max_loss(payoff_legs(intent), intent.limit_price)
    if max_loss is None:
        return OrderRisk(RiskReason.APPROVED, "unbounded max loss", None)
    total = max_loss * CONTRACT_MULTIPLIER * intent.quantity
    return OrderRisk(RiskReason.APPROVED, "", min(total, ZERO))


class RateWindow:
    """Counts approved orders in a trailing window of clock time (ns)."""

    def __init__(self, max_orders: int, window_ns: int = NS_PER_MINUTE) -> None:
        self._max = max_orders
        self._window = window_ns
        self._stamps: deque[int] = deque()

    def count(self, now_ns: int) -> int:
        """Approved orders with a timestamp in (now - window, now]."""
        while self._stamps and self._stamps[0] <= now_ns - self._window:
            self._stamps.popleft()
        return len(self._stamps)

    def full(self, now_ns: int) -> bool:
        return self.count(now_ns) >= self._max

    def record(self, now_ns: int) -> None:
        self._stamps.append(now_ns)
