"""One injected clock: LiveClock for the daemon, SimClock whose advance_to() fires timers in order.

Domain code never calls datetime.now() or time.time(); it asks the clock. Times are UTC inside.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from gnosisd.core.errors import InvariantViolation

NEW_YORK = ZoneInfo("America/New_York")
NS_PER_S = 1_000_000_000


def ns_to_datetime(ns: int) -> datetime:
    """Convert UTC nanoseconds since the epoch to an aware UTC datetime (microsecond precision)."""
    return datetime.fromtimestamp(ns / NS_PER_S, tz=UTC)


def datetime_to_ns(dt: datetime) -> int:
    """Convert an aware datetime to UTC nanoseconds since the epoch; naive datetimes are refused."""
    if dt.tzinfo is None:
        raise ValueError(f"naive datetime {dt!r}: gnosisd needs timezone-aware times")
    delta = dt.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * NS_PER_S + delta.microseconds * 1000


class Clock(Protocol):
    """What domain code may ask of time."""

    def now_ns(self) -> int: ...

    def now(self) -> datetime: ...


class LiveClock:
    """Wall-clock time in UTC."""

    def now_ns(self) -> int:
        return time.time_ns()

    def now(self) -> datetime:
        return ns_to_datetime(self.now_ns())


class SimClock:
    """A simulated clock: time moves only through advance_to(), which fires due timers in order."""

    def __init__(self, start_ns: int) -> None:
        self._now = start_ns
        self._timers: list[tuple[int, int, Callable[[int], None]]] = []
        self._seq = itertools.count()

    def now_ns(self) -> int:
        return self._now

    def now(self) -> datetime:
        return ns_to_datetime(self._now)

    def set_timer(self, at_ns: int, callback: Callable[[int], None]) -> None:
        """Call `callback(at_ns)` when the clock reaches `at_ns`."""
        heapq.heappush(self._timers, (at_ns, next(self._seq), callback))

    def advance_to(self, ns: int) -> None:
        """Move time forward to `ns`, firing every timer due on the way at its own time."""
        if ns < self._now:
            raise InvariantViolation(f"SimClock cannot go backwards: {ns} < {self._now}")
        while self._timers and self._timers[0][0] <= ns:
            at, _, cb = heapq.heappop(self._timers)
            self._now = max(self._now, at)
            cb(at)
        self._now = ns
