"""Broker-side halt (`suspend_trade`) and exercise/assignment/expiry activities, through the real
alpaca-py client against the fake Alpaca server."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from structlog.testing import capture_logs

from gnosisd.broker.alpaca.activities import ActivityKind, OptionActivityBook, book_activity
from gnosisd.broker.ledger import Ledger
from gnosisd.bus.events import LegFill, OrderFilled
from gnosisd.core.enums import PositionEffect, Side
from gnosisd.testing.fake_alpaca import FakeAlpaca, HttpFault
from tests.integration.alpaca.conftest import BrokerFactory
from tests.integration.alpaca.support import C500, C505, EXPIRY, P490, TS, call_spread

CONFIG = "/v2/account/configurations"


def _patches(fake: FakeAlpaca) -> int:
    return sum(1 for m, p in fake.requests if m == "PATCH" and p == CONFIG)


def _ledger_with_spread(quantity: int = 2) -> Ledger:
    """Long C500 / short C505 at 2.05 debit, `quantity` units, as position pos-1."""
    ledger = Ledger(Decimal(100_000))
    intent = call_spread(quantity=quantity)
    fill = OrderFilled(
        order_id="o-1",
        intent_id=intent.intent_id,
        underlying="SPY",
        ts_ns=TS,
        effect=PositionEffect.OPEN,
        quantity=quantity,
        net_price=Decimal("2.05"),
        commission=Decimal(0),
        legs=(
            LegFill(C500, Side.BUY, quantity, Decimal("4.10")),
            LegFill(C505, Side.SELL, quantity, Decimal("2.05")),
        ),
        position_id="pos-1",
    )
    ledger.apply_fill(fill, intent, {"profit_target_pct": 0.5})
    return ledger


# ------------------------------------------------------------------ suspend_trade
async def test_suspension_sets_suspend_trade_on_the_account(
    fake: FakeAlpaca, make_broker: BrokerFactory
) -> None:
    broker, _ = await make_broker()
    assert fake.configuration["suspend_trade"] is False
    assert await broker.set_trade_suspension(True, retry_s=0.01)
    assert fake.configuration["suspend_trade"] is True
    assert fake.configuration["pdt_check"] == "entry"  # only suspend_trade was sent
    assert await broker.set_trade_suspension(False, retry_s=0.01)
    assert fake.configuration["suspend_trade"] is False
    assert _patches(fake) == 2


async def test_suspension_retries_a_server_error_and_a_dropped_connection(
    fake: FakeAlpaca, make_broker: BrokerFactory
) -> None:
    broker, _ = await make_broker()
    fake.add_fault(HttpFault("PATCH", CONFIG, status=500))
    fake.add_fault(HttpFault("PATCH", CONFIG, drop=True))
    assert await broker.set_trade_suspension(True, retry_s=0.01)
    assert fake.configuration["suspend_trade"] is True
    assert _patches(fake) == 3


async def test_suspension_that_never_succeeds_returns_false_and_logs_critical(
    fake: FakeAlpaca, make_broker: BrokerFactory
) -> None:
    broker, _ = await make_broker()
    fake.add_fault(HttpFault("PATCH", CONFIG, status=503, times=10))
    with capture_logs() as logs:
        assert not await broker.set_trade_suspension(True, tries=3, retry_s=0.01)
    assert fake.configuration["suspend_trade"] is False
    assert _patches(fake) == 3
    assert [x["log_level"] for x in logs if "NOT set" in x["event"]] == ["critical"]


# ------------------------------------------------------------------ activities
async def test_only_option_activities_are_read_and_malformed_ones_skipped(
    fake: FakeAlpaca, make_broker: BrokerFactory
) -> None:
    broker, _ = await make_broker()
    fake.activities.append({"id": "x1", "activity_type": "DIV", "symbol": "SPY", "qty": "1"})
    assignment = fake.add_option_activity("OPASN", C505, 2, day=EXPIRY)
    fake.add_option_activity("OPEXP", "NOT-AN-OCC", 1)
    expiry = fake.add_option_activity("OPEXP", P490, 3, day=EXPIRY)
    activities = await broker.option_activities()
    assert [(a.activity_id, a.kind, a.contracts) for a in activities] == [
        (assignment["id"], ActivityKind.ASSIGNMENT, 2),
        (expiry["id"], ActivityKind.EXPIRY, 3),
    ]
    assert activities[0].contract.strike == Decimal(505)
    assert activities[0].day == EXPIRY
    assert broker.counters["malformed_activities"] == 1


async def test_assignment_of_a_short_leg_leaves_the_long_leg_and_is_booked_once(
    fake: FakeAlpaca, make_broker: BrokerFactory
) -> None:
    broker, _ = await make_broker()
    fake.add_option_activity("OPASN", C505, 2, day=date(2026, 12, 10))
    (activity,) = await broker.option_activities()
    ledger = _ledger_with_spread()
    cash = ledger.cash()
    book = OptionActivityBook()
    outcome = book_activity(book, ledger, activity, Decimal("512"))
    assert outcome.status == "booked"
    assert outcome.delivered_shares == -200  # a short call assigned: 200 shares delivered
    (position,) = ledger.positions()
    assert position.position_id == "pos-1"
    assert [leg.symbol for leg in position.legs] == [C500]
    # The short leg left at intrinsic: −1 × (512 − 505) × 100 × 2.
    assert ledger.cash() == cash - Decimal(1400)
    assert position.entry_net_price == Decimal("2.05") + Decimal(7)
    # Idempotent by activity id, also across a restart of the book.
    again = OptionActivityBook.from_state(book.to_state())
    assert book_activity(again, ledger, activity, Decimal("512")).status == "duplicate"
    assert ledger.cash() == cash - Decimal(1400)


async def test_partial_assignment_splits_the_position(
    fake: FakeAlpaca, make_broker: BrokerFactory
) -> None:
    broker, _ = await make_broker()
    fake.add_option_activity("OPASN", C505, 1)
    (activity,) = await broker.option_activities()
    ledger = _ledger_with_spread(quantity=3)
    outcome = book_activity(OptionActivityBook(), ledger, activity, Decimal("500"))
    (settled,) = outcome.settlements
    positions = {p.position_id: p for p in ledger.positions()}
    assert positions["pos-1"].quantity == 2
    assert len(positions["pos-1"].legs) == 2
    assert settled.position_id != "pos-1" and settled.position_id.startswith("pos-1.opasn-")
    split = positions[settled.position_id]
    assert split.quantity == 1 and [leg.symbol for leg in split.legs] == [C500]
    assert settled.cash_flow == 0  # out of the money at 500: no intrinsic


async def test_exercise_of_the_long_leg_settles_the_whole_position_when_a_naked_short_remains(
    fake: FakeAlpaca, make_broker: BrokerFactory
) -> None:
    broker, _ = await make_broker()
    fake.add_option_activity("OPEXC", C500, 2)
    (activity,) = await broker.option_activities()
    ledger = _ledger_with_spread()
    outcome = book_activity(OptionActivityBook(), ledger, activity, Decimal("503"))
    assert outcome.delivered_shares == 200  # a long call exercised: 200 shares received
    assert ledger.positions() == []
    assert outcome.settlements[-1].closed
    # 3 a share for the long call, nothing for the short: realised (3 − 2.05) × 200.
    assert ledger.realized_pnl() == Decimal("190")


async def test_assignment_after_the_close_settlement_is_recognised_and_unknown_ones_are_not(
    fake: FakeAlpaca, make_broker: BrokerFactory
) -> None:
    broker, _ = await make_broker()
    fake.add_option_activity("OPASN", C505, 2, day=EXPIRY)
    fake.add_option_activity("OPEXP", C500, 2, day=EXPIRY)
    fake.add_option_activity("OPASN", P490, 1, day=EXPIRY)
    assigned, expired, unknown = await broker.option_activities()
    ledger = _ledger_with_spread()
    ledger.settle_expired(EXPIRY, {"SPY": Decimal("507")})  # what the daemon does at the close
    assert ledger.positions() == []
    cash = ledger.cash()
    book = OptionActivityBook()
    book.note_settled(C505, -2, EXPIRY, Decimal(-2))
    book.note_settled(C500, 2, EXPIRY, Decimal(7))
    first = book_activity(book, ledger, assigned, None)
    assert (first.status, first.delivered_shares) == ("settled_at_close", -200)
    second = book_activity(book, ledger, expired, None)
    assert second.status == "settled_at_close" and second.delivered_shares == 0
    assert "reconcile" in second.note  # the ledger booked intrinsic, the broker says worthless
    third = book_activity(book, ledger, unknown, None)
    assert third.status == "not_ours"
    assert ledger.cash() == cash  # nothing re-booked
