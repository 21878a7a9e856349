"""Trading state per New York session: ACTIVE, REDUCING (closes only) or HALTED (no new risk).

A halt lasts for the rest of the session; the first check on a new New York date resumes trading,
unless the halt is latched (kill switch, SIGUSR1, `gnosisd halt`): that one lasts until resume().
REDUCING never overrides HALTED; every transition is recorded for the bus and the audit log.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from gnosisd.bus.events import TradingStateChanged
from gnosisd.core.calendar import TradingCalendar
from gnosisd.core.clock import NEW_YORK, datetime_to_ns, ns_to_datetime
from gnosisd.core.enums import TradingState


class TradingStateMachine:
    """Owns the trading state and the session it belongs to; records every transition."""

    def __init__(self, calendar: TradingCalendar) -> None:
        self._calendar = calendar
        self._state = TradingState.ACTIVE
        self._reason = ""
        self._day: date | None = None
        self._day_start_ns = self._day_end_ns = 0  # [start, end) of _day in ns (New York midnights)
        self._latched = False
        self._changes: list[TradingStateChanged] = []

    @property
    def state(self) -> TradingState:
        return self._state

    @property
    def reason(self) -> str:
        """Why the state is what it is (empty while ACTIVE)."""
        return self._reason

    @property
    def latched(self) -> bool:
        """True while a latched halt holds (no new session lifts it; only resume() does)."""
        return self._latched

    @property
    def session_day(self) -> date | None:
        """The New York date of the session the state belongs to (None before the first tick)."""
        return self._day

    def roll(self, now_ns: int) -> bool:
        """Enter the session of `now_ns`; a new New York date lifts a halt (True if a new day)."""
        if self._day_start_ns <= now_ns < self._day_end_ns:
            return False  # still the same New York date: the common case, on every check
        day = self._calendar.session_day(ns_to_datetime(now_ns))
        if self._day is None:
            self._enter(day)
            return False
        if day <= self._day:
            return False
        self._enter(day)
        if self._state is TradingState.HALTED and not self._latched:
            self._set(TradingState.ACTIVE, f"new session {day}", now_ns)
        return True

    def _enter(self, day: date) -> None:
        self._day = day
        start = datetime.combine(day, time(0), tzinfo=NEW_YORK)
        self._day_start_ns = datetime_to_ns(start)
        self._day_end_ns = datetime_to_ns(start + timedelta(days=1))

    def halt(self, reason: str, now_ns: int, *, latched: bool = False) -> bool:
        """Halt new risk for the rest of the session (or until resume() when `latched`).

        Return False if already halted (a latched request still latches an existing halt).
        """
        self.roll(now_ns)
        if latched:
            self._latched = True
        if self._state is TradingState.HALTED:
            if latched:
                self._reason = reason
            return False
        self._set(TradingState.HALTED, reason, now_ns)
        return True

    def reduce_only(self, reason: str, now_ns: int) -> bool:
        """Let only risk-reducing (closing) orders through until resume(); survives new sessions.

        Never overrides a halt: return False (and change nothing) unless the state was ACTIVE.
        """
        self.roll(now_ns)
        if self._state is not TradingState.ACTIVE:
            return False
        self._set(TradingState.REDUCING, reason, now_ns)
        return True

    def end_reducing(self, reason: str, now_ns: int) -> bool:
        """REDUCING → ACTIVE when its cause is gone; any other state (a halt) is left alone."""
        self.roll(now_ns)
        if self._state is not TradingState.REDUCING:
            return False
        self._set(TradingState.ACTIVE, reason, now_ns)
        return True

    def resume(self, reason: str, now_ns: int) -> None:
        """Operator override: back to ACTIVE now (also releases a latched halt)."""
        self.roll(now_ns)
        self._latched = False
        if self._state is not TradingState.ACTIVE:
            self._set(TradingState.ACTIVE, reason, now_ns)

    def pop_changes(self) -> list[TradingStateChanged]:
        """Transitions since the last call, oldest first (the runtime publishes them)."""
        out, self._changes = self._changes, []
        return out

    def _set(self, state: TradingState, reason: str, now_ns: int) -> None:
        self._state = state
        self._reason = "" if state is TradingState.ACTIVE else reason
        self._changes.append(TradingStateChanged(ts_ns=now_ns, state=state, reason=reason))
