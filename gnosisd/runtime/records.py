"""Journal payloads for orders: the risk decision with its intent, and the broker's result."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from gnosisd.bus.events import OrderFilled, OrderUpdated, RiskDecided
from gnosisd.core.clock import ns_to_datetime


def decision_record(decision: RiskDecided, equity: Decimal | None = None) -> dict[str, Any]:
    """The `order` object of an orders-journal line, before the broker result is attached.

    `equity` is the portfolio equity the guard saw when it decided (for review of the caps).
    """
    intent = decision.intent
    return {
        "intent_id": intent.intent_id,
        "idea_id": intent.idea_id,
        "position_id": intent.position_id,
        "effect": intent.effect.value,
        "strategy_type": intent.strategy_type,
        "exit_reason": intent.exit_reason,
        "quantity": intent.quantity,
        "limit_price": float(intent.limit_price),
        "legs": [
            {
                "symbol": leg.symbol,
                "side": leg.side.value,
                "ratio": leg.ratio,
                "option_type": leg.option_type.value,
                "strike": float(leg.strike),
                "expiry": leg.expiry.isoformat(),
                "quantity": leg.ratio * intent.quantity,
            }
            for leg in intent.legs
        ],
        "risk": {
            "approved": decision.approved,
            "reason": decision.reason.value,
            "detail": decision.detail,
            "max_loss": float(decision.max_loss),
            "trading_state": decision.trading_state.value,
            "equity": None if equity is None else float(equity),
            "decided_at": ns_to_datetime(decision.ts_ns).isoformat(),
        },
    }


def fill_record(fill: OrderFilled) -> dict[str, Any]:
    return {
        "status": "filled",
        "order_id": fill.order_id,
        "filled_at": ns_to_datetime(fill.ts_ns).isoformat(),
        "quantity": fill.quantity,
        "net_price": float(fill.net_price),
        "commission": float(fill.commission),
        "slippage": float(fill.slippage),
        "position_id": fill.position_id,
        "legs": [
            {
                "symbol": f.symbol,
                "side": f.side.value,
                "quantity": f.quantity,
                "price": float(f.price),
            }
            for f in fill.legs
        ],
    }


def update_record(update: OrderUpdated) -> dict[str, Any]:
    return {
        "status": update.status.value,
        "order_id": update.order_id,
        "at": ns_to_datetime(update.ts_ns).isoformat(),
        "message": update.message,
    }
