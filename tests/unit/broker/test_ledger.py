"""The ledger: exact cash, marks, equity, session P&L, closes and settlement at intrinsic value."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import pytest

from gnosisd.broker.ledger import Ledger
from gnosisd.bus.events import LegFill, OrderFilled, SubmitOrder
from gnosisd.core.enums import OptionType, Side
from gnosisd.core.occ import occ_symbol
from tests.unit.broker.chains import EXPIRY, TS, chain, close_of, leg, order, sym

C, P = OptionType.CALL, OptionType.PUT
BUY, SELL = Side.BUY, Side.SELL
START = Decimal("100000")


def fill_of(intent: SubmitOrder, prices: list[str], commission: str) -> OrderFilled:
    """A fill of `intent` with the given per-leg prices; net = Σ ±ratio × price."""
    px = [Decimal(p) for p in prices]
    net = sum(
        (
            (lg.ratio if lg.side is BUY else -lg.ratio) * p
            for lg, p in zip(intent.legs, px, strict=True)
        ),
        Decimal(0),
    )
    return OrderFilled(
        order_id=f"sim-{intent.intent_id}",
        intent_id=intent.intent_id,
        underlying=intent.underlying,
        ts_ns=TS,
        effect=intent.effect,
        quantity=intent.quantity,
        net_price=net,
        commission=Decimal(commission),
        legs=tuple(
            LegFill(symbol=lg.symbol, side=lg.side, quantity=lg.ratio * intent.quantity, price=p)
            for lg, p in zip(intent.legs, px, strict=True)
        ),
        position_id=intent.position_id or intent.intent_id,
    )


CALL_DEBIT = order("cd", (leg(BUY, C, 450), leg(SELL, C, 455)), "2.20", 2, "call_debit_spread")
PUT_CREDIT = order("pc", (leg(SELL, P, 450), leg(BUY, P, 445)), "-1.50", 1, "put_credit_spread")


@pytest.fixture
def ledger() -> Ledger:
    book = Ledger(START)
    book.start_session(date(2025, 6, 2))
    book.apply_fill(
        fill_of(CALL_DEBIT, ["6.10", "3.90"], "2.60"), CALL_DEBIT, {"stop_loss_pct": 0.5}
    )
    return book


def test_open_debits_cash_and_records_the_position_from_the_payoff(ledger: Ledger) -> None:
    assert ledger.cash() == START - Decimal("440") - Decimal("2.60")
    (pos,) = ledger.positions()
    assert pos.position_id == "cd"
    assert pos.strategy_type == "call_debit_spread"
    assert pos.quantity == 2
    assert [(lg.symbol, lg.ratio, lg.is_call) for lg in pos.legs] == [
        (sym(C, 450), 1, True),
        (sym(C, 455), -1, True),
    ]
    assert pos.entry_net_price == Decimal("2.20")
    assert pos.max_loss == Decimal("-440")
    assert pos.max_profit == Decimal("560")  # (5 - 2.20) × 100 × 2
    assert pos.exit_rules == {"stop_loss_pct": 0.5}
    assert ledger.commissions_paid() == Decimal("2.60")


def test_opening_changes_equity_only_by_the_commission(ledger: Ledger) -> None:
    assert ledger.equity() == START - Decimal("2.60")
    assert ledger.session_pnl() == Decimal("-2.60")


def test_marks_positions_to_the_chain_mids(ledger: Ledger) -> None:
    ledger.mark(chain({sym(C, 450): (7.00, 7.20), sym(C, 455): (4.30, 4.50)}))  # 7.10 - 4.40
    (pos,) = ledger.positions()
    assert pos.mark_net_price == Decimal("2.70")
    assert pos.unrealized_pnl == Decimal("100")  # 0.50 × 100 × 2
    assert ledger.equity() == ledger.cash() + Decimal("540")
    assert ledger.session_pnl() == Decimal("97.40")


def test_mark_keeps_the_previous_mark_for_unquoted_legs_and_other_underlyings(
    ledger: Ledger,
) -> None:
    ledger.mark(chain({sym(C, 450): (7.00, 7.20)}))  # only the long leg quoted
    assert ledger.positions()[0].mark_net_price == Decimal("7.10") - Decimal("3.90")
    qqq = occ_symbol("QQQ", EXPIRY, C, Decimal(450))
    ledger.mark(chain({qqq: (1.0, 1.2)}, underlying="QQQ"))
    assert ledger.positions()[0].mark_net_price == Decimal("3.20")


def test_session_pnl_restarts_at_each_session(ledger: Ledger) -> None:
    ledger.mark(chain({sym(C, 450): (7.00, 7.20), sym(C, 455): (4.30, 4.50)}))
    assert ledger.session_pnl() == Decimal("97.40")
    ledger.start_session(date(2025, 6, 3))
    assert ledger.session_day == date(2025, 6, 3)
    assert ledger.session_pnl() == Decimal("0")
    ledger.mark(chain({sym(C, 450): (6.00, 6.20), sym(C, 455): (4.00, 4.20)}))  # 6.10 - 4.10
    assert ledger.session_pnl() == Decimal("-140")  # (2.00 - 2.70) × 200


def test_cash_plus_position_value_changes_only_by_pnl_and_commissions(ledger: Ledger) -> None:
    ledger.mark(chain({sym(C, 450): (7.00, 7.20), sym(C, 455): (4.30, 4.50)}))
    before = ledger.equity()
    unrealized = ledger.positions()[0].unrealized_pnl
    closing = close_of("close", CALL_DEBIT, "-2.50")
    ledger.apply_fill(fill_of(closing, ["7.05", "4.45"], "2.60"), closing)  # sold for 2.60
    assert ledger.positions() == []
    assert ledger.realized_pnl() == Decimal("80")  # (2.60 - 2.20) × 200
    # The close realised 80 of the 100 marked: equity moves by -20 and the commission.
    assert ledger.equity() - before == ledger.realized_pnl() - unrealized - Decimal("2.60")
    assert ledger.equity() == START + ledger.realized_pnl() - ledger.commissions_paid()


def test_partial_close_realises_pnl_on_the_closed_part(ledger: Ledger) -> None:
    closing = close_of("close", CALL_DEBIT, "-2.50", quantity=1)
    ledger.apply_fill(fill_of(closing, ["7.05", "4.45"], "1.30"), closing)
    (pos,) = ledger.positions()
    assert pos.quantity == 1
    assert pos.max_loss == Decimal("-220")
    assert ledger.realized_pnl() == Decimal("40")


def test_applying_the_same_fill_twice_books_it_once(ledger: Ledger) -> None:
    cash = ledger.cash()
    ledger.apply_fill(fill_of(CALL_DEBIT, ["6.10", "3.90"], "2.60"), CALL_DEBIT)
    assert ledger.cash() == cash
    assert len(ledger.positions()) == 1


def test_set_exit_rules_replaces_the_rules_of_an_open_position(ledger: Ledger) -> None:
    ledger.set_exit_rules("cd", {"profit_target_pct": 0.5, "max_days_held": 21.0})
    assert ledger.positions()[0].exit_rules == {"profit_target_pct": 0.5, "max_days_held": 21.0}
    with pytest.raises(KeyError):
        ledger.set_exit_rules("nope", {})


def test_credit_spread_holds_its_width_as_collateral() -> None:
    book = Ledger(START)
    book.apply_fill(fill_of(PUT_CREDIT, ["5.20", "3.70"], "1.30"), PUT_CREDIT)
    assert book.cash() == START + Decimal("150") - Decimal("1.30")
    assert book.reserved() == Decimal("500")
    assert book.buying_power() == book.cash() - Decimal("500")
    assert book.positions()[0].max_loss == Decimal("-350")


def test_settles_expired_debit_spread_at_intrinsic_value(ledger: Ledger) -> None:
    cash = ledger.cash()
    (s,) = ledger.settle_expired(EXPIRY, {"SPY": 453.0})
    assert s.value_per_share == Decimal("3")  # 453 - 450, the 455 call expires worthless
    assert s.cash_flow == Decimal("600")
    assert s.realized_pnl == Decimal("160")  # (3 - 2.20) × 200
    assert s.closed
    assert ledger.positions() == []
    assert ledger.cash() == cash + Decimal("600")
    assert ledger.equity() == START - Decimal("2.60") + Decimal("160")


def test_settles_expired_credit_spread_at_intrinsic_value() -> None:
    book = Ledger(START)
    book.apply_fill(fill_of(PUT_CREDIT, ["5.20", "3.70"], "1.30"), PUT_CREDIT)
    cash = book.cash()
    (s,) = book.settle_expired(EXPIRY, {"SPY": Decimal("447")})
    assert s.value_per_share == Decimal("-3")  # short 450 put is 3 in the money
    assert book.cash() == cash - Decimal("300")
    assert book.realized_pnl() == Decimal("-150")  # 1.50 credit - 3.00 paid
    assert book.reserved() == Decimal("0")


def test_settlement_leaves_unexpired_positions_alone(ledger: Ledger) -> None:
    assert ledger.settle_expired(EXPIRY - timedelta(days=1), {}) == []
    assert len(ledger.positions()) == 1


def test_settlement_needs_a_price_for_each_expiring_underlying(ledger: Ledger) -> None:
    with pytest.raises(ValueError, match="no settlement price for SPY"):
        ledger.settle_expired(EXPIRY, {"QQQ": 400.0})


def test_settles_only_the_expired_front_leg_of_a_calendar() -> None:
    back = EXPIRY + timedelta(days=28)
    long_back = replace(
        leg(BUY, C, 450), symbol=occ_symbol("SPY", back, C, Decimal(450)), expiry=back
    )
    cal = order("cal", (leg(SELL, C, 450), long_back), "1.00")
    book = Ledger(START)
    book.apply_fill(fill_of(cal, ["5.00", "6.00"], "1.30"), cal)
    (s,) = book.settle_expired(EXPIRY, {"SPY": 455.0})
    assert (s.closed, s.value_per_share, s.cash_flow) == (False, Decimal("-5"), Decimal("-500"))
    (pos,) = book.positions()
    assert [lg.symbol for lg in pos.legs] == [long_back.symbol]
    assert pos.entry_net_price == Decimal("6.00")  # 1.00 paid + 5.00 paid at settlement


def _calendar_book(front_strike: int, back_strike: int, prices: list[str]) -> Ledger:
    back = EXPIRY + timedelta(days=28)
    long_back = replace(
        leg(BUY, C, back_strike),
        symbol=occ_symbol("SPY", back, C, Decimal(back_strike)),
        expiry=back,
    )
    cal = order("cal", (leg(SELL, C, front_strike), long_back), "0", 2, "call_diagonal")
    book = Ledger(START)
    book.apply_fill(fill_of(cal, prices, "2.60"), cal)
    return book


def test_calendar_risks_its_debit_has_no_fixed_max_profit_and_reserves_nothing() -> None:
    book = _calendar_book(450, 450, ["5.00", "7.50"])  # 2.50 debit × 2
    (pos,) = book.positions()
    assert pos.max_loss == Decimal("-500.00")
    assert pos.max_profit is None  # depends on the back month's vol at the front expiry
    assert book.reserved() == 0
    assert book.buying_power() == book.cash()


def test_inverted_diagonal_reserves_the_strike_gap_beyond_its_debit() -> None:
    # Short front 450 call, long back 460 call for 1.00: above 460 the loss is 1.00 + 10.
    book = _calendar_book(450, 460, ["5.00", "6.00"])
    (pos,) = book.positions()
    assert pos.max_loss == Decimal("-2200.00")
    assert book.reserved() == Decimal("2000.00")
