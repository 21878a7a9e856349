"""Live mode: the Alpaca feed (and optionally the Alpaca broker) on the wall clock.

No lockstep: the feed publishes as data arrives, a calendar timer publishes SessionStarted /
SessionClosed, and the Alpaca broker's events come back through the bus (docs/alpaca.md).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING

import structlog

from gnosisd.broker.alpaca.broker import AlpacaBroker
from gnosisd.broker.alpaca.config import AlpacaCredentials, AlpacaEndpoints
from gnosisd.broker.base import BrokerEvent
from gnosisd.bus.events import (
    ChainSnapshot,
    OrderFilled,
    SessionClosed,
    SessionStarted,
    SubmitOrder,
)
from gnosisd.bus.topics import Topic
from gnosisd.core.enums import PositionEffect
from gnosisd.feeds.alpaca import AlpacaFeed, AlpacaFeedConfig

if TYPE_CHECKING:
    from gnosisd.runtime.daemon import Daemon

log = structlog.get_logger("gnosisd.live")
STREAM_UP_WAIT_S = 10.0
CALENDAR_POLL_S = 30.0  # the calendar timer re-checks at least this often


@dataclass(frozen=True)
class AlpacaConnection:
    """Where and as whom to reach Alpaca; `broker` False keeps the simulated broker."""

    endpoints: AlpacaEndpoints
    credentials: AlpacaCredentials
    broker: bool = True


class LiveSource:
    """The live-mode pieces of a Daemon: Alpaca feed, Alpaca broker, calendar timer."""

    def __init__(self, daemon: Daemon, connection: AlpacaConnection) -> None:
        self.daemon = daemon
        d = daemon
        e = connection.endpoints
        config = AlpacaFeedConfig(
            symbols=tuple(d.options.symbols),
            api_key=connection.credentials.api_key,
            secret_key=connection.credentials.secret_key,
            trading_url=e.trading_url,
            data_url=e.data_url,
            data_stream_url=e.data_stream_url,
            chain_refresh_s=d.settings.runtime.chain_refresh_minutes * 60.0,
        )
        self.feed = AlpacaFeed(
            config, d.bus.publish, d.clock, validator=d.validator, expect_data=self.session_open
        )
        self.broker: AlpacaBroker | None = None
        if connection.broker:
            self.broker = AlpacaBroker(
                e,
                connection.credentials,
                self._on_broker_event,
                d.clock,
                commission_per_contract=Decimal(str(d.settings.execution.commission_per_contract)),
            )
        # Approved intents sent to Alpaca, with the exit rules of their idea (ledger booking).
        self._sent: dict[str, tuple[SubmitOrder, dict[str, float] | None]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._session_day: date | None = (
            None  # the date of the session announced and not yet closed
        )

    @property
    def is_live(self) -> bool:
        return self.broker is not None and self.broker.is_live

    def session_open(self) -> bool:
        """Whether the regular session is open now (market data is expected)."""
        return self.daemon.calendar.is_open(self.daemon.clock.now())

    # ------------------------------------------------------------------ lifecycle
    async def start(self, tg: asyncio.TaskGroup) -> None:
        """Start the feed, the broker's trade_updates and the calendar timer; wait for the stream."""
        self._tasks.append(tg.create_task(self.feed.run()))
        self._tasks.append(tg.create_task(self._calendar()))
        if self.broker is not None:
            self._tasks.append(tg.create_task(self.broker.run()))
            if not await self.broker.wait_stream_up(STREAM_UP_WAIT_S):
                log.error(
                    "trade_updates not connected at start: opening orders are refused until it is"
                )

    async def run(self) -> None:
        """Wait for a stop request (the feed and broker run as tasks)."""
        await self.daemon.stop_requested()

    async def stop(self) -> None:
        """Cancel working orders and stop the broker, then stop the feed and the timer."""
        if self.broker is not None:
            await self.broker.aclose(
                cancel_working=True, within_s=self.daemon.settings.runtime.shutdown_timeout_seconds
            )
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks)
        dropped = self.daemon.summary.dropped
        for reason, n in self.feed.dropped.items():  # includes structural drops (`malformed`)
            dropped[reason] = max(dropped[reason], n)

    # ------------------------------------------------------------------ calendar
    async def _calendar(self) -> None:
        """Publish SessionStarted at the open and SessionClosed at the close, by the wall clock."""
        d = self.daemon
        while True:
            now = d.clock.now()
            day = d.calendar.session_day(now)
            wait_s = CALENDAR_POLL_S
            if d.calendar.is_session(day):
                session = d.calendar.session(day)
                if self._session_day is None and session.open <= now < session.close:
                    self._session_day = day
                    d.summary.sessions.append(day)
                    await d.bus.publish(Topic.CONTROL, SessionStarted(d.clock.now_ns(), day))
                    log.info("session started", day=day.isoformat())
                elif self._session_day is not None and now >= session.close:
                    await self._close_session()
                if now < session.open:
                    wait_s = min(wait_s, (session.open - now).total_seconds())
                elif now < session.close:
                    wait_s = min(wait_s, (session.close - now).total_seconds())
            elif self._session_day is not None:
                await self._close_session()
            await asyncio.sleep(max(0.05, wait_s))

    async def _close_session(self) -> None:
        d = self.daemon
        day = self._session_day
        if day is None:
            return
        self._session_day = None
        settlement = {s: spot for s in d.options.symbols if (spot := d.market.spot(s)) is not None}
        await d.bus.publish(Topic.CONTROL, SessionClosed(d.clock.now_ns(), day, settlement))

    # ------------------------------------------------------------------ orders
    def stream_down(self) -> bool:
        """True when orders go to Alpaca and trade_updates is down (no new opening orders)."""
        return self.broker is not None and not self.broker.stream_up

    async def submit(
        self, intent: SubmitOrder, chain: ChainSnapshot, exit_rules: dict[str, float] | None
    ) -> None:
        """Send an approved intent to Alpaca; its events come back through the bus."""
        assert self.broker is not None
        self._sent[intent.intent_id] = (intent, exit_rules)
        await self.broker.submit(intent, chain, self.daemon.clock.now_ns())
        await self.pin()

    async def cancel_all(self, reason: str) -> None:
        if self.broker is not None:
            await self.broker.cancel_all(reason)

    async def _on_broker_event(self, event: BrokerEvent) -> None:
        d = self.daemon
        if isinstance(event, OrderFilled):
            sent = self._sent.get(event.intent_id)
            if sent is None:
                log.error("fill of an unknown intent not booked", intent_id=event.intent_id)
            else:
                intent, rules = sent
                rules = rules if event.effect is PositionEffect.OPEN else None
                d.ledger.apply_fill(event, intent, rules)
            await d.bus.publish(Topic.FILLS, event)
            await self.pin()
        else:
            await d.bus.publish(Topic.ORDER_UPDATES, event)

    async def pin(self) -> None:
        """Stream quotes for the legs of open positions and working orders."""
        symbols = {leg.symbol for p in self.daemon.ledger.positions() for leg in p.legs}
        if self.broker is not None:
            for intent_id in self.broker.working():
                sent = self._sent.get(intent_id)
                if sent is not None:
                    symbols.update(leg.symbol for leg in sent[0].legs)
        await self.feed.pin_option_symbols(sorted(symbols))
