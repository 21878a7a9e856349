"""Boundary models for what Alpaca sends about orders (REST order JSON and trade_updates).

alpaca-py runs with raw_data=True so that money stays exact (its TradeUpdate.price/qty are floats)
and so that a status Alpaca adds later is a logged value, not a validation crash. Unknown fields
are ignored on purpose: this is an external API that grows.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

# Alpaca order statuses after which an order never fills again.
TERMINAL = frozenset({"filled", "canceled", "expired", "rejected", "replaced", "done_for_day"})
# Statuses meaning the broker has the order (the intent counts as accepted).
WORKING = frozenset(
    {
        "new",
        "accepted",
        "pending_new",
        "accepted_for_bidding",
        "partially_filled",
        "pending_cancel",
        "pending_replace",
        "held",
        "calculated",
        "stopped",
        "suspended",
        "pending_review",
    }
)


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _empty_is_none(cls, v: Any) -> Any:
        return None if v == "" else v


class WireLeg(_Wire):
    id: str | None = None
    symbol: str
    side: str | None = None
    ratio_qty: Decimal | None = None
    filled_qty: Decimal = Decimal(0)
    filled_avg_price: Decimal | None = None
    status: str | None = None


class WireOrder(_Wire):
    """An order as REST returns it and as trade_updates carry it (cumulative fill state)."""

    id: str
    client_order_id: str
    status: str
    order_class: str | None = None
    symbol: str | None = None
    side: str | None = None
    qty: Decimal | None = None
    filled_qty: Decimal = Decimal(0)
    filled_avg_price: Decimal | None = None
    limit_price: Decimal | None = None
    legs: list[WireLeg] | None = None
    replaces: str | None = None
    replaced_by: str | None = None
    updated_at: datetime | None = None


class WireTradeUpdate(_Wire):
    event: str
    order: WireOrder
    timestamp: datetime | None = None
    execution_id: str | None = None
    price: Decimal | None = None
    qty: Decimal | None = None


class WireError(ValueError):
    """A message from Alpaca that does not have the shape gnosisd relies on."""


def parse_order(raw: Any) -> WireOrder:
    """Validate an order dict from REST; raise WireError naming what is wrong."""
    try:
        return WireOrder.model_validate(raw)
    except ValidationError as exc:
        raise WireError(f"order JSON from Alpaca is malformed: {_first(exc)}") from None


def parse_trade_update(raw: Any) -> WireTradeUpdate | None:
    """Validate a trading-stream message; None for streams other than trade_updates."""
    if not isinstance(raw, dict):
        raise WireError(f"trading stream message is not an object: {type(raw).__name__}")
    if raw.get("stream") != "trade_updates":
        return None
    try:
        return WireTradeUpdate.model_validate(raw.get("data"))
    except ValidationError as exc:
        raise WireError(f"trade_update from Alpaca is malformed: {_first(exc)}") from None


def _first(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    return f"{loc}: {err['msg']}"
