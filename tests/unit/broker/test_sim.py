"""The sim broker: one multi-leg fill at mid ± slippage, commissions, funds and limit checks."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from gnosisd.broker.ledger import Ledger
from gnosisd.broker.sim import SimBroker
from gnosisd.bus.events import OrderFilled, OrderUpdated
from gnosisd.core.config import ExecutionConfig
from gnosisd.core.enums import OptionType, OrderStatus, PositionEffect, Side
from gnosisd.core.money import to_money, to_price
from tests.unit.broker.chains import TS, chain, close_of, leg, order, sym

C, P = OptionType.CALL, OptionType.PUT
BUY, SELL = Side.BUY, Side.SELL
SLIP = Decimal("0.01")
QUOTES = {
    sym(P, 445): (3.60, 3.80),  # mid 3.70
    sym(P, 450): (5.10, 5.30),  # mid 5.20
    sym(C, 450): (6.00, 6.20),  # mid 6.10
    sym(C, 455): (3.90, 4.10),  # mid 4.00
    sym(C, 460): (2.40, 2.60),  # mid 2.50
}
PUT_CREDIT = (leg(SELL, P, 450), leg(BUY, P, 445))
CALL_DEBIT = (leg(BUY, C, 450), leg(SELL, C, 455))


def make(cash: str = "100000") -> SimBroker:
    cfg = ExecutionConfig(slippage_pct=float(SLIP), commission_per_contract=0.65)
    return SimBroker(cfg, Ledger(Decimal(cash)))


def rejection(events: list[OrderUpdated | OrderFilled]) -> str:
    """The message of a lone REJECTED update (fails if the events are anything else)."""
    assert len(events) == 1
    (update,) = events
    assert isinstance(update, OrderUpdated)
    assert update.status is OrderStatus.REJECTED
    return update.message


def buy_px(mid: str) -> Decimal:
    return to_price(Decimal(mid) * (1 + SLIP))


def sell_px(mid: str) -> Decimal:
    return to_price(Decimal(mid) * (1 - SLIP))


def test_fills_credit_spread_at_mid_moved_against_us_by_slippage() -> None:
    broker = make()
    events = broker.submit(order("i-1", PUT_CREDIT, "-1.40", quantity=3), chain(QUOTES), TS)
    assert [type(e) for e in events] == [OrderUpdated, OrderFilled]
    accepted, fill = events
    assert isinstance(accepted, OrderUpdated)
    assert isinstance(fill, OrderFilled)
    assert accepted.status is OrderStatus.ACCEPTED
    assert accepted.order_id == fill.order_id == "sim-i-1"
    expected_net = buy_px("3.70") - sell_px("5.20")  # 3.737 - 5.148
    assert fill.net_price == expected_net == Decimal("-1.411")
    assert [(lf.symbol, lf.side, lf.quantity, lf.price) for lf in fill.legs] == [
        (sym(P, 450), SELL, 3, Decimal("5.148")),
        (sym(P, 445), BUY, 3, Decimal("3.737")),
    ]
    assert fill.slippage == to_money((expected_net - Decimal("-1.50")) * 100 * 3)  # 26.70
    assert fill.commission == Decimal("3.90")  # 0.65 × 2 legs × 3
    assert fill.position_id == "i-1"
    assert fill.effect is PositionEffect.OPEN


def test_commission_counts_every_contract_of_every_leg_by_ratio() -> None:
    butterfly = (leg(BUY, C, 450), leg(SELL, C, 455, ratio=2), leg(BUY, C, 460))
    events = make().submit(order("fly", butterfly, "1.00", quantity=2), chain(QUOTES), TS)
    fill = events[-1]
    assert isinstance(fill, OrderFilled)
    assert fill.commission == Decimal("0.65") * 4 * 2
    expected = buy_px("6.10") - 2 * sell_px("4.00") + buy_px("2.50")
    assert fill.net_price == expected
    assert [lf.quantity for lf in fill.legs] == [2, 4, 2]


def test_cancels_order_whose_fill_would_be_worse_than_its_limit() -> None:
    broker = make()
    net = buy_px("6.10") - sell_px("4.00")  # 2.201 debit
    events = broker.submit(order("i-1", CALL_DEBIT, "2.20"), chain(QUOTES), TS)
    assert [e.status for e in events if isinstance(e, OrderUpdated)] == [
        OrderStatus.ACCEPTED,
        OrderStatus.CANCELED,
    ]
    assert isinstance(events[1], OrderUpdated)
    assert events[1].message.startswith("limit not marketable")
    assert broker.ledger.positions() == []
    assert broker.ledger.cash() == Decimal("100000")
    filled = broker.submit(order("i-2", CALL_DEBIT, str(net)), chain(QUOTES), TS)
    assert isinstance(filled[-1], OrderFilled)


def test_rejects_debit_spread_without_enough_cash_with_exact_message() -> None:
    broker = make(cash="1000")
    events = broker.submit(order("i-1", CALL_DEBIT, "3.00", quantity=5), chain(QUOTES), TS)
    # debit (6.161 - 3.96) × 100 × 5 = 1,100.50 plus commission 0.65 × 2 × 5 = 6.50
    assert rejection(events) == "Insufficient funds: need $1,107.00, have $1,000.00"


def test_rejects_credit_spread_whose_max_loss_exceeds_cash_with_exact_message() -> None:
    broker = make(cash="1000")
    events = broker.submit(order("i-1", PUT_CREDIT, "-1.00", quantity=3), chain(QUOTES), TS)
    # max loss at the fill: (5 - 1.411) × 100 × 3 = 1,076.70, plus commission 3.90
    assert rejection(events) == "Insufficient funds: need $1,080.60, have $1,000.00"


def test_credit_spread_collateral_reduces_buying_power_for_the_next_order() -> None:
    broker = make(cash="1500")
    first = broker.submit(order("i-1", PUT_CREDIT, "-1.00", quantity=3), chain(QUOTES), TS)
    assert isinstance(first[-1], OrderFilled)
    # cash 1500 + 423.30 credit - 3.90 = 1919.40; collateral 500 × 3 = 1500 -> 419.40 free
    assert broker.ledger.cash() == Decimal("1919.40")
    assert broker.ledger.buying_power() == Decimal("419.40")
    second = broker.submit(order("i-2", PUT_CREDIT, "-1.00", quantity=3), chain(QUOTES), TS)
    assert rejection(second) == "Insufficient funds: need $1,080.60, have $419.40"


def test_rejects_leg_that_is_not_in_the_chain() -> None:
    missing = (leg(BUY, C, 470),)
    events = make().submit(order("i-1", missing, "5.00"), chain(QUOTES), TS)
    assert rejection(events) == f"leg {sym(C, 470)} is not in the SPY chain"


def test_rejects_leg_without_a_usable_quote() -> None:
    quotes = {**QUOTES, sym(C, 460): (0.0, 0.0)}
    events = make().submit(order("i-1", (leg(BUY, C, 460),), "5.00"), chain(quotes), TS)
    assert "no usable quote" in rejection(events)


def test_rejects_undefined_risk_open() -> None:
    events = make().submit(order("i-1", (leg(SELL, C, 460),), "-2.00"), chain(QUOTES), TS)
    assert "undefined risk" in rejection(events)


def test_the_same_intent_cannot_be_submitted_twice() -> None:
    broker = make()
    broker.submit(order("i-1", CALL_DEBIT, "3.00"), chain(QUOTES), TS)
    again = broker.submit(order("i-1", CALL_DEBIT, "3.00"), chain(QUOTES), TS)
    assert rejection(again) == "duplicate order sim-i-1"
    assert len(broker.ledger.positions()) == 1


def test_closing_realises_pnl_and_removes_the_position() -> None:
    broker = make()
    opened = order("i-1", PUT_CREDIT, "-1.40", quantity=2)
    broker.submit(opened, chain(QUOTES), TS)
    later = {sym(P, 450): (2.00, 2.20), sym(P, 445): (1.20, 1.40)}  # mids 2.10, 1.30
    events = broker.submit(close_of("c-1", opened, "1.00"), chain(later), TS + 1)
    fill = events[-1]
    assert isinstance(fill, OrderFilled)
    close_net = buy_px("2.10") - sell_px("1.30")  # 2.121 - 1.287 = 0.834
    assert fill.net_price == close_net
    assert fill.effect is PositionEffect.CLOSE
    assert fill.position_id == "i-1"
    assert broker.ledger.positions() == []
    assert broker.ledger.realized_pnl() == (Decimal("1.411") - close_net) * 100 * 2
    assert broker.ledger.commissions_paid() == Decimal("2.60") * 2
    assert broker.ledger.cash() == Decimal("100000") + broker.ledger.realized_pnl() - Decimal(
        "5.20"
    )


def test_partial_close_keeps_the_rest_of_the_position() -> None:
    broker = make()
    opened = order("i-1", CALL_DEBIT, "3.00", quantity=3)
    broker.submit(opened, chain(QUOTES), TS)
    broker.submit(close_of("c-1", opened, "-1.00", quantity=1), chain(QUOTES), TS + 1)
    (pos,) = broker.ledger.positions()
    assert pos.quantity == 2
    assert pos.max_loss == -pos.entry_net_price * 100 * 2


@pytest.mark.parametrize(
    ("position_id", "quantity", "flip", "needle"),
    [
        ("nope", 1, True, "is not open"),
        ("i-1", 5, True, "holds 1"),
        ("i-1", 1, False, "do not reverse"),
    ],
)
def test_rejects_close_that_does_not_match_an_open_position(
    position_id: str, quantity: int, flip: bool, needle: str
) -> None:
    broker = make()
    opened = order("i-1", CALL_DEBIT, "3.00")
    broker.submit(opened, chain(QUOTES), TS)
    bad = close_of("c-1", opened, "0", quantity=quantity)
    bad = replace(bad, position_id=position_id, legs=bad.legs if flip else opened.legs)
    events = broker.submit(bad, chain(QUOTES), TS)
    assert needle in rejection(events)
    assert len(broker.ledger.positions()) == 1


def test_sim_broker_is_not_live() -> None:
    assert make().is_live is False
