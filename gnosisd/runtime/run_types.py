"""The small types of a daemon run: its options, its summary, the market-feed protocol, and the
simulated clock a run starts on."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

from gnosisd.core.calendar import Session
from gnosisd.core.clock import SimClock, datetime_to_ns, ns_to_datetime
from gnosisd.core.enums import TradingState


@dataclass
class RunSummary:
    """What a run did, printed at the end and used by tests."""

    sessions: list[date] = field(default_factory=list)
    contexts: int = 0
    ideas: int = 0
    intents: int = 0
    approved: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    broker_rejected: Counter[str] = field(default_factory=Counter)
    fills: int = 0
    closes: Counter[str] = field(default_factory=Counter)
    strategies: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    stage_errors: Counter[str] = field(default_factory=Counter)  # contained analytics failures
    start_equity: Decimal = Decimal(0)
    end_equity: Decimal = Decimal(0)
    realized_pnl: Decimal = Decimal(0)
    commissions: Decimal = Decimal(0)
    open_positions: int = 0
    final_state: str = TradingState.ACTIVE.value
    stopped_by_signal: bool = False
    bus: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass
class RunOptions:
    symbols: list[str]
    sessions: list[Session]
    seed: int = 7
    speed: float = 0.0  # 0: as fast as possible; N: N simulated seconds per wall second
    execute: bool = True  # False: dry run, ideas are journaled but no order is sent
    start_prices: dict[str, float] | None = None
    stop_at_ny: tuple[int, int] | None = None  # (hour, minute) New York: end the session early
    decide_once: bool = False  # the daily job: one decision at the last chain of the session
    handle_signals: bool = True


class MarketFeed(Protocol):
    """A source of market events by session (the simulated market, a replay of history)."""

    def session_events(self, session: Session) -> Iterator[tuple[int, Any]]:
        """Yield (ts_ns, event) in time order for one session; sessions come in calendar order."""
        ...

    def settlement_price(self, symbol: str) -> float:
        """The underlying's closing price once its session's events are consumed."""
        ...


def sim_clock_for(options: RunOptions) -> SimClock:
    """The simulated clock of a run, at the first session's open."""
    first_open = options.sessions[0].open if options.sessions else ns_to_datetime(0)
    return SimClock(datetime_to_ns(first_open))
