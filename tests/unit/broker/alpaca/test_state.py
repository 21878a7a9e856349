"""The order state machine: snapshots in, one ACCEPTED / PARTIALLY_FILLED / fill / end out."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from gnosisd.broker.alpaca.policy import ExecutionPolicy, Ladder, price_ladder
from gnosisd.broker.alpaca.state import Execution, OrderBook
from gnosisd.broker.alpaca.wire import parse_order
from gnosisd.bus.events import OrderFilled, OrderUpdated
from gnosisd.core.enums import OrderStatus
from tests.integration.alpaca.support import C500, C505, call_spread, chain


def execution(quantity: int = 2) -> tuple[OrderBook, Execution]:
    intent = call_spread(quantity=quantity)
    lad = price_ladder(intent, chain(), ExecutionPolicy())
    assert isinstance(lad, Ladder)
    ex = Execution(intent, lad, 0, Decimal("0.65"))
    book = OrderBook()
    book.add(ex)
    book.register(ex, ex.new_attempt(lad.prices[0]))
    return book, ex


def snap(
    status: str,
    filled: int = 0,
    legs: tuple[str, str] | None = None,
    cid: str = "gn-open-spread-1-1",
    oid: str = "o-1",
    **extra: Any,
) -> Any:
    leg_json = [
        {
            "symbol": C500,
            "side": "buy",
            "filled_qty": str(filled),
            "filled_avg_price": legs[0] if legs else None,
        },
        {
            "symbol": C505,
            "side": "sell",
            "filled_qty": str(filled),
            "filled_avg_price": legs[1] if legs else None,
        },
    ]
    return parse_order(
        {
            "id": oid,
            "client_order_id": cid,
            "status": status,
            "order_class": "mleg",
            "symbol": "",
            "side": "",
            "qty": "2",
            "filled_qty": str(filled),
            "legs": leg_json,
            **extra,
        }
    )


def kinds(events: list[Any]) -> list[str]:
    return [e.status.value if isinstance(e, OrderUpdated) else "fill" for e in events]


def test_snapshots_applied_twice_or_out_of_order_change_nothing() -> None:
    book, _ = execution()
    assert kinds(book.apply(snap("new"), 1)) == ["accepted"]
    assert kinds(book.apply(snap("accepted"), 2)) == []
    assert kinds(book.apply(snap("partially_filled", 1, ("4.1", "2.0")), 3)) == ["partially_filled"]
    assert kinds(book.apply(snap("partially_filled", 1, ("4.1", "2.0")), 4)) == []
    assert kinds(book.apply(snap("new"), 5)) == []  # stale: fills never go backwards
    events = book.apply(snap("filled", 2, ("4.1", "2.0")), 6)
    assert kinds(events) == ["fill"]
    assert kinds(book.apply(snap("filled", 2, ("4.1", "2.0")), 7)) == []


def test_fill_event_has_vwap_leg_prices_signed_net_and_commission() -> None:
    book, _ = execution()
    accepted, fill = book.apply(snap("filled", 2, ("4.12", "2.02")), 9)
    assert isinstance(accepted, OrderUpdated) and accepted.status is OrderStatus.ACCEPTED
    assert isinstance(fill, OrderFilled)
    assert fill.net_price == Decimal("2.10") and fill.quantity == 2
    assert fill.commission == Decimal("2.60")
    assert fill.slippage == Decimal("10.00")  # (2.10 - 2.05) x 100 x 2


def test_cancel_we_asked_for_is_a_walk_step_but_a_foreign_cancel_ends_the_intent() -> None:
    book, ex = execution()
    book.apply(snap("new"), 1)
    assert ex.current is not None
    ex.current.cancel_requested = True
    assert kinds(book.apply(snap("canceled"), 2)) == [] and not ex.done
    second = ex.new_attempt(Decimal("2.10"))
    book.register(ex, second)
    events = book.apply(snap("canceled", cid=second.client_order_id, oid="o-2"), 3)
    assert kinds(events) == ["canceled"] and ex.final_status is OrderStatus.CANCELED


def test_rejection_and_expiry_end_the_intent_with_their_status() -> None:
    book, _ = execution()
    assert kinds(book.apply(snap("rejected"), 1)) == ["rejected"]
    book2, ex2 = execution()
    book2.apply(snap("new"), 1)
    events = book2.apply(snap("expired", 1, ("4.1", "2.0")), 2)
    assert kinds(events) == ["partially_filled", "fill", "expired"]
    assert events[-1].message == "filled 1 of 2; alpaca order o-1 expired"
    assert ex2.final_status is OrderStatus.EXPIRED


def test_replacement_order_is_adopted_through_replaces() -> None:
    book, ex = execution()
    book.apply(snap("new"), 1)
    assert kinds(book.apply(snap("replaced"), 2)) == []
    events = book.apply(
        snap("filled", 2, ("4.1", "2.0"), cid="someone-elses-id", oid="o-9", replaces="o-1"), 3
    )
    assert kinds(events) == ["fill"] and len(ex.attempts) == 2


def test_unknown_orders_are_external_and_cause_nothing() -> None:
    book, _ = execution()
    assert book.apply(snap("filled", 2, ("1", "1"), cid="manual", oid="o-x"), 1) == []
    assert book.external == {"o-x"}
