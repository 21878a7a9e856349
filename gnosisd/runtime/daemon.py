"""The daemon: wires feeds, bus, engines, composer, agents, risk guard, broker and journal.

Every component is a synchronous core; this module only adds the bus subscriptions, one consumer
task per (component, topic), supervision in one TaskGroup, signals and an orderly shutdown. The
handlers live with their stage: `runtime/analytics.py` (engines and composers),
`runtime/decisions.py` (trade agent, position manager), `runtime/order_flow.py` (risk guard,
broker, orders journal) and `runtime/control.py` (halt, halt policy, session start and close).
In simulated mode the feed drives a SimClock and waits for the bus to drain after each event
(lockstep), so a run is deterministic for a seed and as fast as the machine allows. In live mode
(`runtime/live.py`) the Alpaca feed and broker run on the wall clock instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import signal
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import structlog

from gnosisd.agents.positions import PositionManager
from gnosisd.agents.trade_agent import TradeAgent
from gnosisd.broker.ledger import Ledger
from gnosisd.broker.sim import SimBroker
from gnosisd.bus.bus import Bus, Subscription, consume
from gnosisd.bus.events import (
    Bar,
    ChainSnapshot,
    NewsItem,
    Quote,
    SessionClosed,
    SessionStarted,
    SubmitOrder,
    Trade,
)
from gnosisd.bus.topics import Topic
from gnosisd.core import native
from gnosisd.core.calendar import Session, TradingCalendar
from gnosisd.core.clock import NEW_YORK, Clock, LiveClock, SimClock, datetime_to_ns
from gnosisd.core.config import Settings
from gnosisd.core.errors import InvariantViolation
from gnosisd.feeds.sim import SimMarket
from gnosisd.feeds.validate import MarketDataValidator
from gnosisd.risk.guard import RiskGuard
from gnosisd.runtime.analytics import AnalyticsStage, SymbolAnalytics, parse_history
from gnosisd.runtime.control import KILL_POLL_SECONDS, OPERATOR_RESUME, TradingControl
from gnosisd.runtime.decisions import DecisionStage
from gnosisd.runtime.live import AlpacaConnection, LiveSource
from gnosisd.runtime.logging import audit_logger
from gnosisd.runtime.market_state import MarketState
from gnosisd.runtime.metrics import MetricsServer, Telemetry, registry_for
from gnosisd.runtime.order_flow import OrderFlow
from gnosisd.runtime.run_types import MarketFeed, RunOptions, RunSummary, sim_clock_for
from gnosisd.runtime.status import StatusWriter, status_path
from gnosisd.runtime.systemd import SystemdNotifier
from gnosisd.runtime.watchdog import Watchdog, WatchdogMonitor
from gnosisd.store.journal import Journal, JournalKind
from gnosisd.store.ledger_state import LiveBooks, LiveBooksStore
from gnosisd.store.state import StateStore

__all__ = [  # the run types and control constants are imported from here too
    "IV_HISTORY_STATE",
    "KILL_POLL_SECONDS",
    "OPERATOR_RESUME",
    "Daemon",
    "MarketFeed",
    "RunOptions",
    "RunSummary",
    "sim_clock_for",
]

log = structlog.get_logger("gnosisd.daemon")
IV_HISTORY_STATE = "iv_history"


class Daemon:
    """One gnosisd process: the simulated market and broker, or Alpaca (`alpaca`) on a live clock."""

    def __init__(
        self,
        settings: Settings,
        options: RunOptions,
        calendar: TradingCalendar,
        clock: Clock | None = None,
        feed: MarketFeed | None = None,
        alpaca: AlpacaConnection | None = None,
    ) -> None:
        self.settings = settings
        self.options = options
        self.calendar = calendar
        self.clock: Clock = clock or (LiveClock() if alpaca else sim_clock_for(options))
        self._feed_override = feed
        self.bus = Bus()
        self.market = MarketState()
        self.validator = MarketDataValidator(known_symbols=set(options.symbols))
        self.state_store = StateStore(settings.runtime.state_dir)
        histories: dict[str, Any] = self.state_store.load(IV_HISTORY_STATE) or {}
        self.analytics = {
            s: SymbolAnalytics(
                s,
                settings,
                parse_history(histories.get(s, [])),
                parse_history(histories.get(f"{s}:returns", [])),
            )
            for s in options.symbols
        }
        # The stages' bus handlers; they read the daemon's collaborators at call time.
        self.analytics_stage = AnalyticsStage(self.bus, self.market, self.analytics)
        self.order_flow = OrderFlow(self)
        self.decisions = DecisionStage(self, self.order_flow.ideas_by_id)
        self.control = TradingControl(self)
        slippage = settings.execution.slippage_pct
        self.agent = TradeAgent(
            settings.trade_agent, settings.liquidity, settings.risk.max_trade_risk_pct, slippage
        )
        self.positions = PositionManager(slippage)
        # On the live clock the books are written through and restored at start (docs/alpaca.md);
        # a simulated run is self-contained and always starts from initial_cash.
        self.books = LiveBooksStore(self.state_store) if alpaca is not None else None
        restored = self._load_books()
        if restored is not None and restored.ledger is not None:
            self.ledger = Ledger.from_state(restored.ledger)
            self.positions.restore_high_water(restored.high_water)
        else:
            self.ledger = Ledger(Decimal(str(settings.execution.initial_cash)))
        self.broker = SimBroker(settings.execution, self.ledger)
        self.live = (
            LiveSource(
                self,
                alpaca,
                restored.sent if restored is not None else None,
                restored.activities if restored is not None else None,
            )
            if alpaca is not None
            else None
        )
        self.guard = RiskGuard.from_settings(
            settings,
            calendar,
            broker_is_live=self.live is not None and self.live.is_live,
            env=os.environ,
        )
        rt = settings.runtime
        sync: tuple[JournalKind, ...] = ("order",) if rt.journal_fsync == "orders" else ()
        self.journal = Journal(rt.runs_dir, sync_kinds=sync)
        self.audit = audit_logger()
        self.notifier = SystemdNotifier()
        self.summary = RunSummary()
        self._stop = asyncio.Event()
        self._settlement: dict[str, float] = {}
        self._init_observability()

    def _load_books(self) -> LiveBooks | None:
        if self.books is None:
            return None
        try:
            books = self.books.load()
        except ValueError as exc:
            path = self.state_store.path("ledger")
            raise InvariantViolation(
                f"{path} cannot be read ({exc}): restore it from a backup, or move it away to "
                "start from initial_cash with every broker position treated as external"
            ) from exc
        if books is not None and books.ledger is not None:
            try:
                Ledger.from_state(books.ledger)
            except ValueError as exc:
                raise InvariantViolation(f"{self.state_store.path('ledger')}: {exc}") from exc
            log.info(
                "books restored",
                positions=len(books.ledger.get("holdings", [])),
                cash=books.ledger.get("cash"),
                session_day=books.ledger.get("session_day"),
                pending=sorted(i for i, s in books.sent.items() if not s.done),
            )
        return books

    def save_books(self) -> None:
        """Write the ledger and the intents sent to the broker through (live clock only)."""
        if self.books is None:
            return
        live = self.live
        books = LiveBooks(
            self.ledger.to_state(),
            live.sent if live is not None else {},
            live.activity_book.to_state() if live is not None else None,
            self.positions.high_water_state(),
        )
        self.books.save(books, self.clock.now_ns())

    # ------------------------------------------------------------------ observability
    def _init_observability(self) -> None:
        """Telemetry from the bus, /metrics, the status file and the watchdog (operations.md)."""
        rt = self.settings.runtime
        self.telemetry = Telemetry(
            bus=self.bus,
            clock=self.clock,
            portfolio=self.ledger,
            chains=self.market,
            trading_state=lambda: self.guard.state,
            dropped=self.validator.counts,
            symbols=list(self.options.symbols),
        )
        self.metrics: MetricsServer | None = None
        if rt.metrics_port is not None:
            self.metrics = MetricsServer(
                registry_for(self.telemetry), rt.metrics_host, rt.metrics_port
            )
        feed = "sim" if self._feed_override is None else type(self._feed_override).__name__
        broker = "sim"
        if self.live is not None:
            feed = "alpaca"
            broker = "alpaca" if self.live.broker is not None else "sim"
        self.status = StatusWriter(
            status_path(rt),
            self.telemetry,
            mode={"feed": feed, "broker": broker, "execute": str(self.options.execute).lower()},
            stale_after_s=rt.stale_stream_seconds,
        )
        self.watchdog = Watchdog(
            self.notifier,
            self.telemetry,
            WatchdogMonitor(
                stall_after_s=rt.watchdog_seconds, stale_after_s=rt.stale_stream_seconds
            ),
            streams=self.options.symbols,
        )

    def _start_observers(self, tg: asyncio.TaskGroup) -> list[asyncio.Task[None]]:
        tasks = [tg.create_task(self.status.run()), tg.create_task(self.control.kill_watch())]
        if self.metrics is not None:
            tasks.append(tg.create_task(self.metrics.serve()))
        return tasks

    # ------------------------------------------------------------------ lifecycle
    def request_stop(self, reason: str = "signal") -> None:
        """Ask the daemon to stop (idempotent; safe from a signal handler)."""
        if not self._stop.is_set():
            log.info("shutdown requested", reason=reason)
            self.summary.stopped_by_signal = reason != "end_of_data"
            self._stop.set()

    def request_halt(self, reason: str) -> None:
        """Latch HALTED now and persist it (safe from a signal handler); see `TradingControl`."""
        self.control.request_halt(reason)

    async def _publish_state_changes(self) -> None:
        await self.control.publish_state_changes()

    async def stop_requested(self) -> None:
        """Return once a stop was requested."""
        await self._stop.wait()

    async def run(self) -> RunSummary:
        """Run the configured sessions; return the summary. Never raises on expected failures."""
        loop = asyncio.get_running_loop()
        if self.options.handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.request_stop, sig.name)
            loop.add_signal_handler(signal.SIGUSR1, self.request_halt, "SIGUSR1")
        self.summary.start_equity = self.ledger.equity()
        log.info("risk guard modules", mode=str(native.status()))
        subs = self._subscribe()
        try:
            async with asyncio.TaskGroup() as tg:
                consumers = [tg.create_task(consume(sub, handler)) for sub, handler in subs]
                watchdog = tg.create_task(self._watchdog())
                observers = self._start_observers(tg)
                if self.live is not None:
                    await self.live.start(tg)  # waits for trade_updates before READY=1
                await self.control.restore_halt()
                self.notifier.notify("READY=1")
                market = "Alpaca" if self.live is not None else "the simulated market"
                self.notifier.notify(f"STATUS=trading on {market}")
                try:
                    await (self.live.run() if self.live is not None else self._feed())
                finally:
                    watchdog.cancel()  # no WATCHDOG=1 after STOPPING=1
                    self.notifier.notify("STOPPING=1")
                    if self.live is not None:
                        await self.live.stop()  # cancel working orders, then stop the feed
                    # Drain what is in flight under the shutdown deadline, then stop consumers.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(
                            self.bus.join(), self.settings.runtime.shutdown_timeout_seconds
                        )
                    for task in (*consumers, watchdog, *observers):
                        task.cancel()
        finally:
            if self.options.handle_signals:
                for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
                    loop.remove_signal_handler(sig)
            self.order_flow.flush_pending()
            self._save_state()
            self.journal.close()
            self.status.write(running=False)
        self._finish_summary()
        return self.summary

    async def _watchdog(self) -> None:
        await self.watchdog.run()  # pings systemd only while healthy (runtime/watchdog.py)

    def _subscribe(self) -> list[tuple[Subscription, Callable[[object], Any]]]:
        b = self.bus
        # Analytics stages are contained: an error in one update is logged and counted, that
        # update is dropped, and no order can come of it. Order, risk and ledger stages are
        # crash-only: an exception there ends the process and systemd restarts it.
        contain = self._contained
        a, d, o = self.analytics_stage, self.decisions, self.order_flow
        return [
            (b.subscribe(Topic.QUOTES, "engines.quotes"), contain("engines.quotes", a.on_quote)),
            (b.subscribe(Topic.TRADES, "engines.trades"), contain("engines.trades", a.on_trade)),
            (b.subscribe(Topic.NEWS, "engines.news"), contain("engines.news", a.on_news)),
            (b.subscribe(Topic.BARS, "engines.bars"), contain("engines.bars", a.on_bar)),
            (b.subscribe(Topic.CHAINS, "broker.marks"), o.mark_on_chain),
            (b.subscribe(Topic.CHAINS, "engines.chains"), contain("engines.chains", a.on_chain)),
            (b.subscribe(Topic.CHAINS, "positions.chains"), self._positions_on_chain),
            (b.subscribe(Topic.ENGINES, "composer"), contain("composer", a.on_engine)),
            (b.subscribe(Topic.CONTEXT, "agent"), contain("agent", d.on_context)),
            (b.subscribe(Topic.IDEAS, "journal.ideas"), d.journal_idea),
            (b.subscribe(Topic.INTENTS, "risk.intents"), o.on_intent),
            (b.subscribe(Topic.DECISIONS, "broker.decisions"), o.on_decision),
            (b.subscribe(Topic.DECISIONS, "journal.decisions"), o.journal_decision),
            (b.subscribe(Topic.ORDER_UPDATES, "journal.updates"), o.on_order_update),
            (b.subscribe(Topic.FILLS, "journal.fills"), o.on_fill),
            (b.subscribe(Topic.CONTROL, "control"), self._on_control),
            *self.telemetry.subscriptions(),
        ]

    def _contained(
        self, stage: str, handler: Callable[[object], Any]
    ) -> Callable[[object], Awaitable[None]]:
        """Wrap an analytics handler: log, count and drop an update that raises."""

        async def run(event: object) -> None:
            try:
                result = handler(event)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                self.summary.stage_errors[stage] += 1
                log.exception("analytics update failed", stage=stage, kind=type(event).__name__)

        return run

    # ------------------------------------------------------------------ feed
    def make_feed(self) -> MarketFeed:
        """The market feed of this run: the seeded simulated market unless one was injected."""
        if self._feed_override is not None:
            return self._feed_override
        return SimMarket(
            self.options.symbols,
            seed=self.options.seed,
            chain_refresh_minutes=self.settings.runtime.chain_refresh_minutes,
            start_prices=self.options.start_prices,
            calendar=self.calendar,
            emit_news=True,
        )

    async def _feed(self) -> None:
        """Publish the market, session by session, in lockstep with the consumers."""
        market = self.make_feed()
        speed = self.options.speed
        assert isinstance(self.clock, SimClock), "the simulated market runs on a SimClock"
        for session in self.options.sessions:
            if self._stop.is_set():
                break
            self.clock.advance_to(max(self.clock.now_ns(), datetime_to_ns(session.open)))
            self.summary.sessions.append(session.day)
            await self._publish(Topic.CONTROL, SessionStarted(self.clock.now_ns(), session.day))
            log.info(
                "session started", day=session.day.isoformat(), early_close=session.early_close
            )
            stop_ns = self._stop_ns(session)
            last_ts = self.clock.now_ns()
            for ts_ns, event in self._events(market, session):
                if self._stop.is_set() or ts_ns > stop_ns:
                    break
                if speed > 0 and ts_ns > last_ts:
                    # Pace the simulated market, but wake at once on a stop request.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), (ts_ns - last_ts) / 1e9 / speed)
                    if self._stop.is_set():
                        break
                last_ts = ts_ns
                self.clock.advance_to(max(ts_ns, self.clock.now_ns()))
                reason = self.validator.check(event, self.clock.now_ns())
                if reason is not None:
                    self.summary.dropped[reason] += 1
                    log.warning("market data dropped", reason=reason, kind=type(event).__name__)
                    continue
                await self._publish(_topic_of(event), event)
            if self._stop.is_set():
                break
            if self.options.decide_once:
                await self.decisions.decide_all()
            close_ns = max(self.clock.now_ns(), min(stop_ns, datetime_to_ns(session.close)))
            self.clock.advance_to(close_ns)
            settlement = {s: market.settlement_price(s) for s in self.options.symbols}
            self._settlement = settlement
            await self._publish(
                Topic.CONTROL, SessionClosed(self.clock.now_ns(), session.day, settlement)
            )
        self.request_stop("end_of_data")

    def _events(self, market: MarketFeed, session: Session) -> Iterator[tuple[int, object]]:
        yield from market.session_events(session)

    def _stop_ns(self, session: Session) -> int:
        if self.options.stop_at_ny is None:
            return datetime_to_ns(session.close)
        h, m = self.options.stop_at_ny
        local = datetime(
            session.day.year, session.day.month, session.day.day, h, m, tzinfo=NEW_YORK
        )
        return min(datetime_to_ns(local), datetime_to_ns(session.close))

    async def _publish(self, topic: Topic, event: object) -> None:
        await self.bus.publish(topic, event)
        await self.bus.join()  # lockstep: the simulated market waits for the daemon

    # ------------------------------------------------------------------ stage seams
    # Bus handlers that subclasses (backtests, tests) override keep a method on the daemon.
    async def _positions_on_chain(self, event: object) -> None:
        await self.decisions.positions_on_chain(event)

    async def _on_control(self, event: object) -> None:
        await self.control.on_control(event)

    def journal_adopted(
        self, intent: SubmitOrder, record: dict[str, Any] | None, result: dict[str, Any]
    ) -> None:
        """Journal the outcome of an order adopted after a restart (`runtime/live.py`)."""
        self.order_flow.journal_adopted(intent, record, result)

    # ------------------------------------------------------------------ state
    def _save_state(self) -> None:
        # IV history (with each point's source: observed or a proxy) and the GARCH return window.
        histories: dict[str, list[tuple[str, float, str]]] = {}
        for s, a in self.analytics.items():
            histories[s] = [(d.isoformat(), v, src) for d, v, src in a.volatility.history_records()]
            histories[f"{s}:returns"] = [
                (d.isoformat(), v, src) for d, v, src in a.volatility.returns_history()
            ]
        self.state_store.save(IV_HISTORY_STATE, histories)
        self.save_books()

    def _finish_summary(self) -> None:
        s = self.summary
        s.end_equity = self.ledger.equity()
        s.realized_pnl = self.ledger.realized_pnl()
        s.commissions = self.ledger.commissions_paid()
        s.open_positions = len(self.ledger.positions())
        s.final_state = self.guard.state.value
        s.bus = {
            t.value: {
                "published": st.published,
                "delivered": st.delivered,
                "conflated": st.conflated,
            }
            for t, st in self.bus.stats.items()
        }
        for reason, n in self.validator.counts.items():
            s.dropped[reason] = max(s.dropped[reason], n)


def _topic_of(event: object) -> Topic:
    if isinstance(event, Quote):
        return Topic.QUOTES
    if isinstance(event, Trade):
        return Topic.TRADES
    if isinstance(event, Bar):
        return Topic.BARS
    if isinstance(event, ChainSnapshot):
        return Topic.CHAINS
    if isinstance(event, NewsItem):
        return Topic.NEWS
    raise TypeError(f"the feed produced an unknown event type {type(event).__name__}")
