"""Translate an approved SubmitOrder into one Alpaca limit order: mleg for 2-4 legs, simple for one.

Every attempt of an intent has a deterministic client_order_id (intent id + attempt number), so a
retry or a restart finds the order it already placed instead of placing a second one.
"""

from __future__ import annotations

import hashlib
import math
from decimal import ROUND_FLOOR, Decimal
from functools import reduce

from alpaca.trading.enums import OrderClass, OrderSide, PositionIntent, TimeInForce
from alpaca.trading.requests import LimitOrderRequest, OptionLegRequest

from gnosisd.bus.events import SubmitOrder
from gnosisd.core.enums import PositionEffect, Side

CLIENT_ID_PREFIX = "gn"
MAX_CLIENT_ID = 128  # Alpaca's limit on client_order_id
TICK = Decimal("0.01")


def client_order_id(intent_id: str, attempt: int) -> str:
    """The client_order_id of attempt `attempt` (1, 2, ...) of an intent: `gn-<intent>-<n>`.

    Intent ids too long for Alpaca's 128 characters are replaced by a SHA-256 prefix.
    """
    if attempt < 1:
        raise ValueError(f"attempt numbers start at 1, got {attempt}")
    cid = f"{CLIENT_ID_PREFIX}-{intent_id}-{attempt}"
    if len(cid) <= MAX_CLIENT_ID:
        return cid
    digest = hashlib.sha256(intent_id.encode()).hexdigest()[:40]
    return f"{CLIENT_ID_PREFIX}-h{digest}-{attempt}"


def order_problem(intent: SubmitOrder) -> str | None:
    """Why `intent` cannot be sent as one Alpaca order (None if it can). Never legged."""
    n = len(intent.legs)
    if n == 0:
        return "order has no legs"
    if n > 4:
        return f"{n} legs: Alpaca multi-leg orders take 2 to 4 legs and gnosisd never legs in"
    if len({leg.symbol for leg in intent.legs}) != n:
        return "legs must have distinct symbols"
    if intent.quantity <= 0:
        return f"quantity is {intent.quantity}"
    if any(leg.ratio <= 0 for leg in intent.legs):
        return "every leg ratio must be a positive integer"
    if n == 1 and intent.legs[0].ratio != 1:
        return f"a single-leg order needs ratio 1, got {intent.legs[0].ratio}"
    if not intent.limit_price.is_finite():
        return f"limit price {intent.limit_price} is not finite"
    if n == 1 and intent.limit_price == 0:
        return "a single-leg limit price must not be zero"
    return None


def ratio_scale(intent: SubmitOrder) -> int:
    """GCD of the leg ratios: Alpaca wants ratios in lowest terms, the order quantity scaled up."""
    return reduce(math.gcd, (leg.ratio for leg in intent.legs))


def floor_tick(price: Decimal, tick: Decimal = TICK) -> Decimal:
    """Round a signed net price down to the tick: a lower debit or a larger credit, never worse."""
    return (price / tick).to_integral_value(rounding=ROUND_FLOOR) * tick


def position_intent(effect: PositionEffect, side: Side) -> PositionIntent:
    if effect is PositionEffect.OPEN:
        return PositionIntent.BUY_TO_OPEN if side is Side.BUY else PositionIntent.SELL_TO_OPEN
    return PositionIntent.BUY_TO_CLOSE if side is Side.BUY else PositionIntent.SELL_TO_CLOSE


def order_request(
    intent: SubmitOrder, net_price: Decimal, quantity: int, client_id: str
) -> LimitOrderRequest:
    """One limit order for `quantity` units of the intent at the signed net `net_price` per unit.

    Multi-leg: order class mleg, qty = units × g, leg ratios / g (g = GCD of ratios), limit =
    net / g (debit > 0, credit < 0, Alpaca's convention too). Single leg: side from the leg,
    limit = |net|.
    """
    if len(intent.legs) == 1:
        leg = intent.legs[0]
        return LimitOrderRequest(
            symbol=leg.symbol,
            qty=quantity,
            side=OrderSide.BUY if leg.side is Side.BUY else OrderSide.SELL,
            time_in_force=TimeInForce.DAY,
            limit_price=float(abs(net_price)),
            client_order_id=client_id,
            position_intent=position_intent(intent.effect, leg.side),
        )
    g = ratio_scale(intent)
    legs = [
        OptionLegRequest(
            symbol=leg.symbol,
            ratio_qty=leg.ratio // g,
            side=OrderSide.BUY if leg.side is Side.BUY else OrderSide.SELL,
            position_intent=position_intent(intent.effect, leg.side),
        )
        for leg in intent.legs
    ]
    return LimitOrderRequest(
        qty=quantity * g,
        order_class=OrderClass.MLEG,
        time_in_force=TimeInForce.DAY,
        limit_price=float(floor_tick(net_price / g)),
        client_order_id=client_id,
        legs=legs,
    )
