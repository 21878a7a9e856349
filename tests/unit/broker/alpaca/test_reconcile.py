"""Start-up reconciliation core: our orders by client_order_id, external ones left alone,
positions compared per OCC symbol, anything unexplained a problem that names itself."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from gnosisd.broker.alpaca.orders import client_order_id
from gnosisd.broker.alpaca.reconcile import (
    BrokerSnapshot,
    is_ours,
    parse_positions,
    reconcile,
)
from gnosisd.broker.alpaca.wire import WireOrder, parse_order

C500 = "SPY261218C00500000"
C505 = "SPY261218C00505000"
P490 = "SPY261218P00490000"


def _order(oid: str, cid: str, status: str = "new", leg_ids: tuple[str, ...] = ()) -> WireOrder:
    raw: dict[str, Any] = {"id": oid, "client_order_id": cid, "status": status}
    if leg_ids:
        raw["legs"] = [{"id": lid, "symbol": C500} for lid in leg_ids]
    return parse_order(raw)


def _snap(
    positions: Mapping[str, int] | None = None,
    open_orders: tuple[WireOrder, ...] = (),
    recent: tuple[WireOrder, ...] = (),
    fills: tuple[Mapping[str, Any], ...] = (),
) -> BrokerSnapshot:
    return BrokerSnapshot(positions or {}, open_orders, recent, fills, Decimal(99), Decimal(100))


def test_client_order_ids_of_gnosisd_are_recognised_and_others_are_not() -> None:
    assert is_ours(client_order_id("open-SPY-1-iron_condor", 3))
    assert is_ours(client_order_id("x" * 200, 1))  # hashed form
    assert not is_ours("manual-order-1")
    assert not is_ours("gn-without-attempt")


def test_matching_books_reconcile_and_external_orders_and_positions_are_only_tagged() -> None:
    ours = _order("o1", client_order_id("open-a", 1))
    theirs = _order("o2", "manual-1")
    result = reconcile(
        _snap({C500: 2, C505: -2, P490: 5}, (ours, theirs)),
        held={C500: 1, C505: -1},
        in_flight={C500: 1, C505: -1},  # our working order already filled one unit
        known_intents=["open-a"],
        working_intents=["open-a"],
    )
    assert result.ok, result.problems
    assert [o.id for o in result.external_orders] == ["o2"]
    assert result.external_positions == {P490: 5}
    assert result.our_open_orders == (client_order_id("open-a", 1),)
    assert _snap().session_pnl == Decimal(-1)


def test_a_quantity_difference_in_a_symbol_we_hold_is_a_problem() -> None:
    result = reconcile(
        _snap({C500: 1}),
        held={C500: 2, C505: -2},
        in_flight={},
        known_intents=[],
        working_intents=[],
    )
    assert not result.ok
    assert result.problems == (
        f"{C500}: gnosisd holds +2, the broker +1",
        f"{C505}: gnosisd holds -2, the broker +0",
    )
    assert result.reason().startswith("reconciliation failed: SPY261218C00500000")


def test_our_open_order_missing_from_the_saved_state_is_a_problem() -> None:
    lost = _order("o1", client_order_id("open-lost", 2))
    done = _order("o2", client_order_id("open-done", 1))
    result = reconcile(
        _snap({}, (lost, done)),
        held={},
        in_flight={},
        known_intents=["open-done"],
        working_intents=[],
    )
    assert len(result.problems) == 2
    assert "not in the saved state" in result.problems[0]
    assert "records as finished" in result.problems[1]


def test_fills_are_mapped_through_leg_order_ids_to_their_client_order_id() -> None:
    ours = _order("p1", client_order_id("open-a", 1), "filled", leg_ids=("l1", "l2"))
    unknown = _order("p2", client_order_id("open-lost", 1), "filled")
    ext = _order("p3", "manual", "filled")
    fills = (
        {"id": "f1", "order_id": "l1", "symbol": C500},
        {"id": "f2", "order_id": "p2", "symbol": C505},
        {"id": "f3", "order_id": "p3", "symbol": P490},
        {"id": "f4", "order_id": "nowhere", "symbol": "QQQ261218C00400000"},
        {"id": "f5", "order_id": "nowhere", "symbol": C500},
    )
    result = reconcile(
        _snap({C500: 1}, recent=(ours, unknown, ext), fills=fills),
        held={C500: 1},
        in_flight={},
        known_intents=["open-a"],
        working_intents=[],
    )
    assert result.external_fills == 2  # f3 (not ours) and f4 (unknown order, symbol not held)
    assert result.problems == (
        f"fill of gnosisd order {client_order_id('open-lost', 1)} is not in the saved state",
        f"fill f5 in {C500}, which gnosisd holds, is of an order the broker did not list",
    )


def test_positions_are_signed_by_qty_or_side() -> None:
    raw = [
        {"symbol": C500, "qty": "3", "side": "long"},
        {"symbol": C505, "qty": "-2", "side": "short"},
        {"symbol": P490, "qty": "4", "side": "short"},
        {"symbol": "SPY", "qty": "0", "side": "long"},
    ]
    assert parse_positions(raw) == {C500: 3, C505: -2, P490: -4}
