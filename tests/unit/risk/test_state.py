"""Trading state: halts last for the New York session; REDUCING survives sessions."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from gnosisd.core.calendar import TradingCalendar
from gnosisd.core.clock import datetime_to_ns
from gnosisd.core.enums import TradingState
from gnosisd.risk.state import TradingStateMachine

NY = ZoneInfo("America/New_York")


def ny(day: int, hour: int, minute: int = 0) -> int:
    return datetime_to_ns(datetime(2025, 6, day, hour, minute, tzinfo=NY))


def test_halt_lifts_at_new_york_midnight_not_utc_midnight() -> None:
    sm = TradingStateMachine(TradingCalendar())
    assert sm.halt("daily loss limit", ny(2, 15))
    assert not sm.halt("again", ny(2, 15, 30))  # already halted
    sm.roll(ny(2, 21))  # 01:00 UTC on June 3, still June 2 in New York
    assert sm.state is TradingState.HALTED
    assert sm.roll(ny(3, 0, 1))
    assert sm.state is TradingState.ACTIVE
    assert sm.reason == ""


def test_reduce_only_survives_a_new_session_until_resumed() -> None:
    sm = TradingStateMachine(TradingCalendar())
    sm.reduce_only("broker degraded", ny(2, 10))
    sm.roll(ny(3, 10))
    assert sm.state is TradingState.REDUCING
    sm.resume("operator", ny(3, 11))
    assert sm.state is TradingState.ACTIVE
    assert [c.state for c in sm.pop_changes()] == [TradingState.REDUCING, TradingState.ACTIVE]
