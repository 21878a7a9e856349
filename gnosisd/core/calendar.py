"""The XNYS trading calendar (exchange-calendars): sessions, holidays, early closes, in New York time."""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import exchange_calendars as xcals
import pandas as pd

from gnosisd.core.clock import NEW_YORK

CALENDAR_START = "2000-01-03"
CALENDAR_END = "2028-12-29"  # exchange-calendars needs an explicit end

# exchange-calendars 4.13 trips a pandas 3.1 deprecation inside its own code; keep the console clean.
warnings.filterwarnings(
    "ignore", message="Series.values returning an ndarray that drops timezone information"
)


@dataclass(frozen=True, slots=True)
class Session:
    """One trading session: its New York date and its UTC open and close."""

    day: date
    open: datetime
    close: datetime

    @property
    def early_close(self) -> bool:
        return self.close.astimezone(NEW_YORK).hour < 16


@functools.cache
def _xnys() -> xcals.ExchangeCalendar:
    return xcals.get_calendar("XNYS", start=CALENDAR_START, end=CALENDAR_END)


class TradingCalendar:
    """XNYS sessions; all answers are aware datetimes (UTC) or New York dates."""

    def __init__(self) -> None:
        self._cal = _xnys()

    def is_session(self, day: date) -> bool:
        return bool(self._cal.is_session(pd.Timestamp(day)))

    def session(self, day: date) -> Session:
        """Return the session on `day`; raise ValueError if the exchange is closed that day."""
        ts = pd.Timestamp(day)
        if not self._cal.is_session(ts):
            raise ValueError(f"{day} is not an XNYS trading session")
        o = self._cal.session_open(ts).to_pydatetime()
        c = self._cal.session_close(ts).to_pydatetime()
        return Session(day=day, open=o, close=c)

    def sessions(self, start: date, end: date) -> list[Session]:
        """Every session from `start` to `end` inclusive."""
        labels = self._cal.sessions_in_range(pd.Timestamp(start), pd.Timestamp(end))
        return [self.session(ts.date()) for ts in labels]

    def next_session(self, day: date) -> Session:
        """The first session strictly after `day`."""
        d = day + timedelta(days=1)
        while not self.is_session(d):
            d += timedelta(days=1)
        return self.session(d)

    def session_day(self, at: datetime) -> date:
        """The New York calendar date of `at`: the key for per-session limits."""
        return at.astimezone(NEW_YORK).date()

    def is_open(self, at: datetime) -> bool:
        """Whether the regular session is open at `at`."""
        day = self.session_day(at)
        if not self.is_session(day):
            return False
        s = self.session(day)
        return s.open <= at < s.close
