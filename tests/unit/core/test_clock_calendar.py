from datetime import UTC, date, datetime

import pytest

from gnosisd.core.calendar import TradingCalendar
from gnosisd.core.clock import NEW_YORK, SimClock, datetime_to_ns, ns_to_datetime
from gnosisd.core.errors import InvariantViolation


def test_sim_clock_fires_timers_in_time_order_at_their_own_time():
    clock = SimClock(0)
    fired: list[tuple[str, int, int]] = []
    clock.set_timer(30, lambda at: fired.append(("b", at, clock.now_ns())))
    clock.set_timer(10, lambda at: fired.append(("a", at, clock.now_ns())))
    clock.set_timer(99, lambda at: fired.append(("c", at, clock.now_ns())))
    clock.advance_to(50)
    assert fired == [("a", 10, 10), ("b", 30, 30)]
    assert clock.now_ns() == 50
    with pytest.raises(InvariantViolation):
        clock.advance_to(40)


def test_ns_conversions_are_timezone_aware_and_round_trip():
    dt = datetime(2026, 11, 27, 14, 30, 0, 123456, tzinfo=UTC)
    assert ns_to_datetime(datetime_to_ns(dt)) == dt
    with pytest.raises(ValueError, match="naive"):
        datetime_to_ns(datetime(2026, 11, 27, 14, 30))


def test_calendar_knows_holidays_and_early_closes():
    cal = TradingCalendar()
    assert not cal.is_session(date(2026, 11, 26))  # Thanksgiving
    black_friday = cal.session(date(2026, 11, 27))
    assert black_friday.early_close
    assert black_friday.close.astimezone(NEW_YORK).hour == 13
    normal = cal.session(date(2026, 11, 30))
    assert not normal.early_close
    assert (
        normal.open.astimezone(NEW_YORK).hour == 9 and normal.open.astimezone(NEW_YORK).minute == 30
    )
    assert cal.next_session(date(2026, 11, 25)).day == date(2026, 11, 27)
    with pytest.raises(ValueError, match="not an XNYS trading session"):
        cal.session(date(2026, 11, 26))


def test_session_day_is_the_new_york_date():
    cal = TradingCalendar()
    # 02:00 UTC on the 28th is still the 27th in New York.
    assert cal.session_day(datetime(2026, 11, 28, 2, 0, tzinfo=UTC)) == date(2026, 11, 27)
