"""Ledger persistence: an exact round-trip, today's P&L kept across a same-day restart, the
broker's session P&L taken when it is worse, and the saved intents record (store.ledger_state)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from gnosisd.broker.alpaca.activities import OptionActivityBook
from gnosisd.broker.ledger import Ledger
from gnosisd.core.enums import OptionType, Side
from gnosisd.store.ledger_state import LiveBooks, LiveBooksStore, SentIntent
from gnosisd.store.state import StateStore
from tests.unit.broker.chains import TS, chain, leg, order, sym
from tests.unit.broker.test_ledger import CALL_DEBIT, PUT_CREDIT, START, fill_of

C, P = OptionType.CALL, OptionType.PUT
DAY = date(2025, 6, 2)


def _book() -> Ledger:
    book = Ledger(START)
    book.start_session(DAY)
    book.apply_fill(
        fill_of(CALL_DEBIT, ["6.10", "3.90"], "2.60"), CALL_DEBIT, {"stop_loss_pct": 0.5}
    )
    book.apply_fill(fill_of(PUT_CREDIT, ["3.30", "1.80"], "1.30"), PUT_CREDIT)
    book.mark(chain({sym(C, 450): (6.0, 6.4), sym(C, 455): (3.7, 3.9)}))
    return book


def test_state_round_trips_cash_positions_marks_pnl_and_booked_fills_exactly() -> None:
    book = _book()
    doc = book.to_state()
    again = Ledger.from_state(doc)
    assert again.to_state() == doc
    assert again.cash() == book.cash()
    assert again.equity() == book.equity()
    assert again.session_pnl() == book.session_pnl()
    assert again.realized_pnl() == book.realized_pnl()
    assert again.commissions_paid() == book.commissions_paid()
    assert again.positions() == book.positions()
    assert again.session_day == DAY
    # A fill booked before the restart is not booked again after it.
    again.apply_fill(fill_of(CALL_DEBIT, ["6.10", "3.90"], "2.60"), CALL_DEBIT)
    assert again.cash() == book.cash()
    assert again.applied(f"sim-{CALL_DEBIT.intent_id}")


def test_state_survives_json_through_the_state_store(tmp_path: Path) -> None:
    book = _book()
    store = StateStore(tmp_path)
    store.save("ledger", book.to_state())
    loaded = store.load("ledger")
    assert loaded is not None
    assert Ledger.from_state(loaded).to_state() == book.to_state()


def test_restart_in_the_same_session_keeps_the_session_start_equity() -> None:
    book = _book()
    pnl = book.session_pnl()
    assert pnl != 0
    again = Ledger.from_state(book.to_state())
    again.start_session(DAY)  # the live calendar announces the session again after a restart
    assert again.session_pnl() == pnl
    again.start_session(date(2025, 6, 3))  # the next day starts from the equity then
    assert again.session_pnl() == 0


def test_session_pnl_is_the_worse_of_the_ledger_and_the_broker() -> None:
    book = _book()
    own = book.session_pnl()
    book.observe_broker_pnl(own - Decimal(500))
    assert book.session_pnl() == own - Decimal(500)
    assert book.own_session_pnl() == own
    book.observe_broker_pnl(own + Decimal(500))
    assert book.session_pnl() == own
    book.observe_broker_pnl(Decimal(-9999))
    book.start_session(date(2025, 6, 3))  # read at start-up, before the calendar's SessionStarted
    assert book.session_pnl() == Decimal(-9999)
    book.observe_broker_pnl(None)
    assert book.session_pnl() == 0


@pytest.mark.parametrize(
    ("key", "value"),
    [("version", 99), ("cash", "not money"), ("holdings", [{"position_id": "x"}])],
)
def test_a_malformed_state_is_refused_with_a_value_error(key: str, value: object) -> None:
    doc = _book().to_state()
    doc[key] = value
    with pytest.raises(ValueError, match="ledger state"):
        Ledger.from_state(doc)


def test_saved_intents_round_trip_and_old_done_ones_are_dropped(tmp_path: Path) -> None:
    store = LiveBooksStore(StateStore(tmp_path))
    assert store.load() is None
    pending = order("open-a", (leg(Side.BUY, C, 450), leg(Side.SELL, C, 455)), "2.2", 2, "cds")
    old = order("open-old", (leg(Side.BUY, P, 440),), "1.05", 1, "long_put")
    sent = {
        "open-a": SentIntent(pending, {"take_profit_pct": 0.5}),
        "open-old": SentIntent(old, None, done=True),
    }
    store.save(LiveBooks(_book().to_state(), sent), now_ns=TS + 10 * 24 * 3600 * 10**9)
    books = store.load()
    assert books is not None
    assert list(books.sent) == ["open-a"]
    assert books.sent["open-a"].intent == pending
    assert books.sent["open-a"].exit_rules == {"take_profit_pct": 0.5}
    assert books.sent["open-a"].done is False
    assert books.ledger == _book().to_state()


def test_activities_and_high_water_marks_are_saved_in_the_ledgers_document(tmp_path: Path) -> None:
    activities = OptionActivityBook()
    activities.mark_booked("act-1")
    activities.note_settled(sym(C, 450), 2, DAY, Decimal("1.25"))
    store = LiveBooksStore(StateStore(tmp_path))
    marks = {"pos-1": "0.35", "pos-2": "-1.10"}
    store.save(LiveBooks(_book().to_state(), {}, activities.to_state(), marks), now_ns=TS)
    books = store.load()
    assert books is not None and books.activities is not None
    assert books.high_water == marks  # trailing-stop references, exact
    restored = OptionActivityBook.from_state(books.activities)
    assert restored.booked("act-1") and not restored.booked("act-2")
    assert restored.to_state() == activities.to_state()
    assert books.ledger == _book().to_state()
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".json"] == ["ledger.json"]
