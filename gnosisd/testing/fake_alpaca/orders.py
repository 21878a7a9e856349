"""The fake Alpaca order book: orders (simple and mleg), fills, cancels, positions, trade_updates.

Order and trade_update JSON mirror what alpaca-py 0.44 parses (alpaca/trading/models.py Order,
TradeUpdate); mleg orders leave the top-level symbol, side and asset_id empty and nest their legs.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

OPEN_STATUSES = frozenset(
    {"new", "accepted", "pending_new", "partially_filled", "pending_cancel", "pending_replace"}
)


def iso(ns: int) -> str:
    """RFC 3339 UTC with microseconds, as Alpaca's REST and trading stream send times."""
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def dec_text(value: Decimal) -> str:
    return format(value.normalize(), "f") if value == value.to_integral_value() else str(value)


@dataclass(eq=False)
class FakeLeg:
    symbol: str
    side: str  # buy | sell
    ratio: int
    position_intent: str | None
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    client_order_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    filled_qty: int = 0
    filled_value: Decimal = Decimal(0)  # Σ qty × price, for the average

    @property
    def sign(self) -> int:
        return 1 if self.side == "buy" else -1

    def avg_price(self) -> Decimal | None:
        return None if self.filled_qty == 0 else self.filled_value / self.filled_qty


@dataclass(eq=False)
class FakeOrder:
    """One order in the fake book; a simple order is kept as one leg with ratio 1."""

    client_order_id: str
    mleg: bool
    qty: int
    limit_price: Decimal | None  # as sent: signed net for mleg (debit > 0), positive for simple
    order_type: str
    legs: list[FakeLeg]
    created_ns: int
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    status: str = "accepted"
    filled_qty: int = 0
    updated_ns: int = 0
    filled_ns: int | None = None
    canceled_ns: int | None = None
    expired_ns: int | None = None
    failed_ns: int | None = None
    replaces: str | None = None
    replaced_by: str | None = None

    @property
    def remaining(self) -> int:
        return self.qty - self.filled_qty

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def net_limit(self) -> Decimal | None:
        """The limit as a signed net price per unit (debit > 0), whatever the order class."""
        if self.limit_price is None:
            return None
        if self.mleg:
            return self.limit_price
        return self.limit_price * self.legs[0].sign

    def avg_net_price(self) -> Decimal | None:
        prices = [leg.avg_price() for leg in self.legs]
        if any(p is None for p in prices):
            return None
        return sum(
            (leg.sign * leg.ratio * p for leg, p in zip(self.legs, prices, strict=True) if p),
            Decimal(0),
        )

    def to_json(self) -> dict[str, Any]:
        """The order as Alpaca's REST API and trade_updates send it."""
        base = self._common(self.id, self.client_order_id)
        base.update(
            order_class="mleg" if self.mleg else "simple",
            order_type=self.order_type,
            type=self.order_type,
            qty=str(self.qty),
            filled_qty=str(self.filled_qty),
            limit_price=None if self.limit_price is None else dec_text(self.limit_price),
            replaces=self.replaces,
            replaced_by=self.replaced_by,
        )
        if self.mleg:
            avg = self.avg_net_price()
            base.update(
                symbol="",
                side="",
                asset_id="",
                asset_class="",
                position_intent="",
                filled_avg_price=None if avg is None else dec_text(avg),
                legs=[self._leg_json(leg) for leg in self.legs],
            )
        else:
            leg = self.legs[0]
            avg = leg.avg_price()
            base.update(
                symbol=leg.symbol,
                side=leg.side,
                asset_id=str(uuid.uuid5(uuid.NAMESPACE_OID, leg.symbol)),
                asset_class="us_option",
                position_intent=leg.position_intent,
                filled_avg_price=None if avg is None else dec_text(avg),
                legs=None,
            )
        return base

    def _common(self, order_id: str, client_order_id: str) -> dict[str, Any]:
        def opt(ns: int | None) -> str | None:
            return None if ns is None else iso(ns)

        return {
            "id": order_id,
            "client_order_id": client_order_id,
            "created_at": iso(self.created_ns),
            "updated_at": iso(self.updated_ns or self.created_ns),
            "submitted_at": iso(self.created_ns),
            "filled_at": opt(self.filled_ns),
            "expired_at": opt(self.expired_ns),
            "canceled_at": opt(self.canceled_ns),
            "failed_at": opt(self.failed_ns),
            "replaced_at": None,
            "time_in_force": "day",
            "status": self.status,
            "extended_hours": False,
            "notional": None,
            "stop_price": None,
        }

    def _leg_json(self, leg: FakeLeg) -> dict[str, Any]:
        out = self._common(leg.id, leg.client_order_id)
        avg = leg.avg_price()
        out.update(
            order_class="mleg",
            symbol=leg.symbol,
            side=leg.side,
            asset_id=str(uuid.uuid5(uuid.NAMESPACE_OID, leg.symbol)),
            asset_class="us_option",
            position_intent=leg.position_intent,
            ratio_qty=str(leg.ratio),
            qty=str(leg.ratio * self.qty),
            filled_qty=str(leg.filled_qty),
            filled_avg_price=None if avg is None else dec_text(avg),
            limit_price=None,
            legs=None,
        )
        return out


class OrderRequestError(ValueError):
    """An order request the fake refuses with HTTP 422 (status, code, message)."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def parse_order_request(body: Any, now_ns: int, known: Callable[[str], bool]) -> FakeOrder:
    """Validate a POST /v2/orders body like Alpaca does (the parts gnosisd relies on)."""
    if not isinstance(body, dict):
        raise OrderRequestError(422, 40010000, "request body must be a JSON object")
    order_type = str(body.get("type", ""))
    if order_type not in ("limit", "market"):
        raise OrderRequestError(422, 40010000, f"order type {order_type!r} is not supported")
    if body.get("time_in_force") != "day":
        raise OrderRequestError(422, 40010000, "options orders must be time_in_force=day")
    try:
        qty_f = float(body.get("qty", 0))
    except (TypeError, ValueError):
        raise OrderRequestError(422, 40010000, "qty must be a number") from None
    if qty_f <= 0 or qty_f != int(qty_f):
        raise OrderRequestError(422, 40010000, "qty must be a positive whole number of contracts")
    limit = body.get("limit_price")
    limit_price = None if limit is None else Decimal(repr(float(limit)))
    if order_type == "limit" and limit_price is None:
        raise OrderRequestError(422, 40010000, "limit_price is required for limit orders")
    client_order_id = str(body.get("client_order_id") or uuid.uuid4())
    if len(client_order_id) > 128:
        raise OrderRequestError(422, 40010000, "client_order_id must be at most 128 characters")
    if body.get("order_class") == "mleg":
        raw_legs = body.get("legs")
        if not isinstance(raw_legs, list) or not 2 <= len(raw_legs) <= 4:
            raise OrderRequestError(422, 40010000, "mleg orders need 2 to 4 legs")
        legs = [_leg(raw) for raw in raw_legs]
        if len({leg.symbol for leg in legs}) != len(legs):
            raise OrderRequestError(422, 40010000, "legs must have unique symbols")
        mleg = True
    else:
        if body.get("legs"):
            raise OrderRequestError(422, 40010000, "legs need order_class=mleg")
        legs = [_leg({**body, "ratio_qty": 1})]
        if limit_price is not None and limit_price <= 0:
            raise OrderRequestError(422, 40010000, "limit_price must be positive")
        mleg = False
    for leg in legs:
        if not known(leg.symbol):
            raise OrderRequestError(422, 40010000, f"asset {leg.symbol} not found")
    return FakeOrder(
        client_order_id=client_order_id,
        mleg=mleg,
        qty=int(qty_f),
        limit_price=limit_price,
        order_type=order_type,
        legs=legs,
        created_ns=now_ns,
        updated_ns=now_ns,
    )


def _leg(raw: Any) -> FakeLeg:
    if not isinstance(raw, dict) or not raw.get("symbol"):
        raise OrderRequestError(422, 40010000, "every leg needs a symbol")
    intent = raw.get("position_intent")
    side = raw.get("side")
    if side is None and isinstance(intent, str):
        side = intent.split("_", 1)[0]
    if side not in ("buy", "sell"):
        raise OrderRequestError(422, 40010000, f"leg {raw.get('symbol')} needs a side")
    ratio_f = float(raw.get("ratio_qty", 1))
    if ratio_f <= 0 or ratio_f != int(ratio_f):
        raise OrderRequestError(422, 40010000, "ratio_qty must be a positive whole number")
    return FakeLeg(
        symbol=str(raw["symbol"]),
        side=str(side),
        ratio=int(ratio_f),
        position_intent=None if intent is None else str(intent),
    )


@dataclass(slots=True)
class FakePosition:
    symbol: str
    qty: int = 0  # signed: short positions are negative
    cost: Decimal = Decimal(0)  # Σ signed qty × price of the open quantity

    def to_json(self) -> dict[str, Any]:
        avg = abs(self.cost / self.qty) if self.qty else Decimal(0)
        basis = self.cost * 100
        return {
            "asset_id": str(uuid.uuid5(uuid.NAMESPACE_OID, self.symbol)),
            "symbol": self.symbol,
            "exchange": "",
            "asset_class": "us_option",
            "avg_entry_price": dec_text(avg),
            "qty": str(self.qty),
            "qty_available": str(self.qty),
            "side": "long" if self.qty > 0 else "short",
            "cost_basis": dec_text(basis),
            "market_value": dec_text(basis),
            "unrealized_pl": "0",
        }

    def apply(self, signed_qty: int, price: Decimal) -> None:
        if self.qty == 0 or (self.qty > 0) == (signed_qty > 0):
            self.cost += signed_qty * price
        else:  # reducing: keep the average entry price of what remains
            avg = self.cost / self.qty
            self.cost += signed_qty * avg
        self.qty += signed_qty
        if self.qty == 0:
            self.cost = Decimal(0)
