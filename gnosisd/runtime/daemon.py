"""The daemon: wires feeds, bus, engines, composer, agents, risk guard, broker and journal.

Every component is a synchronous core; this module only adds the bus subscriptions, one consumer
task per (component, topic), supervision in one TaskGroup, signals and an orderly shutdown.
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
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol

import structlog

from gnosisd.agents.composer import Composer
from gnosisd.agents.positions import PositionManager, expiry_window
from gnosisd.agents.trade_agent import TradeAgent
from gnosisd.broker.ledger import Ledger
from gnosisd.broker.sim import SimBroker
from gnosisd.bus.bus import Bus, Subscription, consume
from gnosisd.bus.events import (
    Bar,
    ChainSnapshot,
    EngineSnapshot,
    NewsItem,
    OrderFilled,
    OrderUpdated,
    PortfolioMarked,
    Quote,
    RiskDecided,
    SessionClosed,
    SessionStarted,
    ShutdownRequested,
    SubmitOrder,
    Trade,
    TradingStateChanged,
)
from gnosisd.bus.records import MarketContext, TradeIdea
from gnosisd.bus.topics import Topic
from gnosisd.core.calendar import Session, TradingCalendar
from gnosisd.core.clock import NEW_YORK, Clock, LiveClock, SimClock, datetime_to_ns, ns_to_datetime
from gnosisd.core.config import Settings
from gnosisd.core.enums import OrderStatus, PositionEffect, RiskReason, TradingState
from gnosisd.core.errors import InvariantViolation
from gnosisd.engines.hedge import HedgeEngine
from gnosisd.engines.liquidity import LiquidityEngine
from gnosisd.engines.sentiment import SentimentEngine
from gnosisd.engines.volatility import HistoryItem, VolatilityEngine
from gnosisd.feeds.sim import SimMarket
from gnosisd.feeds.validate import MarketDataValidator
from gnosisd.risk.guard import RiskGuard
from gnosisd.risk.killswitch import HALT_STATE
from gnosisd.runtime.live import AlpacaConnection, LiveSource
from gnosisd.runtime.logging import audit_logger
from gnosisd.runtime.market_state import MarketState
from gnosisd.runtime.metrics import MetricsServer, Telemetry, registry_for
from gnosisd.runtime.records import decision_record, fill_record, update_record
from gnosisd.runtime.status import StatusWriter, status_path
from gnosisd.runtime.systemd import SystemdNotifier
from gnosisd.runtime.watchdog import Watchdog, WatchdogMonitor
from gnosisd.store.journal import Journal
from gnosisd.store.ledger_state import LiveBooks, LiveBooksStore
from gnosisd.store.state import StateStore

log = structlog.get_logger("gnosisd.daemon")
IV_HISTORY_STATE = "iv_history"
KILL_POLL_SECONDS = 0.25  # how often a running daemon looks at the kill file and the halt document
ENGINE_NAMES = ("hedge", "liquidity", "sentiment", "volatility")
OPERATOR_RESUME = "operator resume"  # reason of the release by `gnosisd resume` (_kill_watch)


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


class _SymbolAnalytics:
    """Engines and composer of one symbol."""

    def __init__(
        self,
        symbol: str,
        settings: Settings,
        history: list[HistoryItem],
        returns: list[HistoryItem],
    ) -> None:
        self.hedge = HedgeEngine(symbol, settings.hedge)
        self.liquidity = LiquidityEngine(symbol, settings.liquidity)
        self.sentiment = SentimentEngine(symbol, settings.sentiment)
        self.volatility = VolatilityEngine(symbol, settings.volatility, history, returns)
        self.composer = Composer(symbol, settings.trade_agent, settings.volatility)
        self.pending: dict[int, set[str]] = {}


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
            s: _SymbolAnalytics(
                s,
                settings,
                _parse_history(histories.get(s, [])),
                _parse_history(histories.get(f"{s}:returns", [])),
            )
            for s in options.symbols
        }
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
        self.journal = Journal(settings.runtime.runs_dir)
        self.audit = audit_logger()
        self.notifier = SystemdNotifier()
        self.summary = RunSummary()
        self._stop = asyncio.Event()
        self._last_decision: dict[str, int] = {}
        self._ideas_by_id: dict[str, TradeIdea] = {}
        self._pending_orders: dict[str, RiskDecided] = {}
        self._contexts: dict[str, MarketContext] = {}
        self._settlement: dict[str, float] = {}
        self._equity_at: dict[str, Decimal] = {}  # equity the guard saw, for the orders journal
        self._background: set[asyncio.Task[None]] = set()
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
        tasks = [tg.create_task(self.status.run()), tg.create_task(self._kill_watch())]
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
        """Latch HALTED now and persist it (safe from a signal handler); the next opening order
        is refused at once, the transition is published on the bus in a moment."""
        if self.guard.halt_latched:
            return
        now_ns = self.clock.now_ns()
        self.guard.latch_halt(reason, now_ns)
        self.state_store.save(
            HALT_STATE, {"reason": reason, "halted_at": ns_to_datetime(now_ns).isoformat()}
        )
        task = asyncio.get_running_loop().create_task(self._publish_state_changes())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _restore_halt(self) -> None:
        """A latched halt (halt document or kill file) survives restarts until `gnosisd resume`."""
        doc = self.state_store.load(HALT_STATE)
        if doc is not None:
            self.guard.latch_halt(f"latched: {doc.get('reason', 'halt')}", self.clock.now_ns())
            await self._publish_state_changes()
        elif self.settings.risk.kill_file.exists():
            self.request_halt(f"kill file {self.settings.risk.kill_file}")

    async def _kill_watch(self) -> None:
        """Poll the kill file and the halt document (a stat each), so both reach a running
        daemon: a new kill file latches the halt, removing both (`gnosisd resume`) releases it."""
        kill_file = self.settings.risk.kill_file
        halt_doc = self.state_store.path(HALT_STATE)
        while True:
            await asyncio.sleep(KILL_POLL_SECONDS)
            if not self.guard.halt_latched:
                if kill_file.exists():
                    self.request_halt(f"kill file {kill_file}")
            elif not kill_file.exists() and not halt_doc.exists():
                self.guard.release_halt(OPERATOR_RESUME, self.clock.now_ns())
                await self._publish_state_changes()

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
        subs = self._subscribe()
        try:
            async with asyncio.TaskGroup() as tg:
                consumers = [tg.create_task(consume(sub, handler)) for sub, handler in subs]
                watchdog = tg.create_task(self._watchdog())
                observers = self._start_observers(tg)
                if self.live is not None:
                    await self.live.start(tg)  # waits for trade_updates before READY=1
                await self._restore_halt()
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
            self._flush_pending_orders()
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
        return [
            (
                b.subscribe(Topic.QUOTES, "engines.quotes"),
                contain("engines.quotes", self._on_quote),
            ),
            (
                b.subscribe(Topic.TRADES, "engines.trades"),
                contain("engines.trades", self._on_trade),
            ),
            (b.subscribe(Topic.NEWS, "engines.news"), contain("engines.news", self._on_news)),
            (b.subscribe(Topic.BARS, "engines.bars"), contain("engines.bars", self._on_bar)),
            (b.subscribe(Topic.CHAINS, "broker.marks"), self._broker_on_chain),
            (
                b.subscribe(Topic.CHAINS, "engines.chains"),
                contain("engines.chains", self._on_chain),
            ),
            (b.subscribe(Topic.CHAINS, "positions.chains"), self._positions_on_chain),
            (b.subscribe(Topic.ENGINES, "composer"), contain("composer", self._on_engine)),
            (b.subscribe(Topic.CONTEXT, "agent"), contain("agent", self._on_context)),
            (b.subscribe(Topic.IDEAS, "journal.ideas"), self._journal_idea),
            (b.subscribe(Topic.INTENTS, "risk.intents"), self._on_intent),
            (b.subscribe(Topic.DECISIONS, "broker.decisions"), self._on_decision),
            (b.subscribe(Topic.DECISIONS, "journal.decisions"), self._journal_decision),
            (b.subscribe(Topic.ORDER_UPDATES, "journal.updates"), self._on_order_update),
            (b.subscribe(Topic.FILLS, "journal.fills"), self._on_fill),
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
                await self._decide_all(force=True)
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

    # ------------------------------------------------------------------ engines and composer
    async def _on_quote(self, event: object) -> None:
        assert isinstance(event, Quote)
        analytics = self.analytics.get(event.symbol)
        if (
            analytics is None
        ):  # an option quote (OCC symbol): freshness only, marks come from chains
            self.market.touch(event.symbol, event.ts_ns)
            return
        self.market.set_spot(event.symbol, (event.bid + event.ask) / 2, event.ts_ns)
        snap = analytics.liquidity.update(event)
        if snap is not None:
            await self.bus.publish(Topic.ENGINES, snap)

    def _on_trade(self, event: object) -> None:
        assert isinstance(event, Trade)
        self.market.touch(event.symbol, event.ts_ns)
        analytics = self.analytics.get(event.symbol)
        if analytics is not None:
            analytics.liquidity.update(event)  # effective spread and signed volume

    async def _on_news(self, event: object) -> None:
        assert isinstance(event, NewsItem)
        for symbol in event.symbols:
            analytics = self.analytics.get(symbol.upper())
            if analytics is not None and (snap := analytics.sentiment.update(event)) is not None:
                await self.bus.publish(Topic.ENGINES, snap)

    async def _on_bar(self, event: object) -> None:
        assert isinstance(event, Bar)
        self.market.touch(event.symbol, event.ts_ns)
        a = self.analytics[event.symbol]
        for engine in (a.liquidity, a.sentiment, a.volatility):
            snap = engine.update(event)
            if snap is not None:
                await self.bus.publish(Topic.ENGINES, snap)

    async def _on_chain(self, event: object) -> None:
        assert isinstance(event, ChainSnapshot)
        self.market.set_chain(event)
        a = self.analytics[event.underlying]
        a.pending[event.ts_ns] = set(ENGINE_NAMES)
        for engine in (a.hedge, a.liquidity, a.sentiment, a.volatility):
            snap = engine.update(event)
            if snap is None:
                a.pending[event.ts_ns].discard(_engine_name(engine))
            else:
                await self.bus.publish(Topic.ENGINES, snap)
        if not a.pending[event.ts_ns]:
            del a.pending[event.ts_ns]
            await self._compose(event.underlying, event.ts_ns)

    async def _on_engine(self, event: object) -> None:
        assert isinstance(event, EngineSnapshot)
        a = self.analytics[event.symbol]
        a.composer.update(event)
        waiting = a.pending.get(event.ts_ns)
        if waiting is None:
            return
        waiting.discard(event.engine)
        if not waiting:
            del a.pending[event.ts_ns]
            await self._compose(event.symbol, event.ts_ns)

    async def _compose(self, symbol: str, ts_ns: int) -> None:
        context = self.analytics[symbol].composer.compose(ts_ns)
        if context is not None:
            await self.bus.publish(Topic.CONTEXT, context)

    # ------------------------------------------------------------------ agent and positions
    async def _on_context(self, event: object) -> None:
        assert isinstance(event, MarketContext)
        self._contexts[event.symbol] = event
        self.summary.contexts += 1
        self.journal.write("context", event.symbol, event.as_of, event.model_dump(mode="json"))
        if self.options.decide_once:
            return
        ts_ns = datetime_to_ns(event.as_of)
        last = self._last_decision.get(event.symbol)
        interval_ns = self.settings.runtime.decision_interval_minutes * 60 * 10**9
        if last is not None and ts_ns - last < interval_ns:
            return
        self._last_decision[event.symbol] = ts_ns
        await self._decide(event)

    async def _decide_all(self, force: bool) -> None:
        for symbol in self.options.symbols:
            context = self._contexts.get(symbol)
            if context is not None:
                await self._decide(context)
        await self.bus.join()

    async def _decide(self, context: MarketContext) -> None:
        chain = self.market.chain(context.symbol)
        if chain is None:
            return
        ts_ns = datetime_to_ns(context.as_of)
        ideas = self.agent.propose(
            context, chain, self.ledger.equity(), ts_ns, open_positions=self.ledger.positions()
        )
        limit = self.settings.trade_agent.max_ideas_per_decision
        sent = 0
        for idea in ideas:
            await self.bus.publish(Topic.IDEAS, idea)
            if not self.options.execute or sent >= limit or idea.quantity <= 0:
                continue
            self._ideas_by_id[idea.id] = idea
            await self.bus.publish(Topic.INTENTS, self.agent.to_intent(idea, ts_ns))
            sent += 1

    def _journal_idea(self, event: object) -> None:
        assert isinstance(event, TradeIdea)
        self.summary.ideas += 1
        context = self._contexts.get(event.symbol)
        extra = None
        if context is not None:
            # Top-level context summary: the runbook's `.context.iv_rank` query reads trade lines.
            extra = {
                "context": {
                    "iv_rank": context.iv_rank,
                    "regime": context.regime.value,
                    "direction": context.direction.value,
                    "confidence": context.confidence,
                }
            }
        self.journal.write("trade", event.symbol, event.as_of, event.model_dump(mode="json"), extra)

    async def _positions_on_chain(self, event: object) -> None:
        assert isinstance(event, ChainSnapshot)
        if not self.options.execute:
            return
        held = self.ledger.positions()
        window = expiry_window(self.calendar, self.settings.expiry, event.ts_ns) if held else None
        intents = self.positions.evaluate(held, event, event.ts_ns, window)
        if self.positions.high_water_changed:
            self.save_books()  # trailing stops keep their reference across a restart
        for flag in self.positions.pop_pin_flags():
            self.audit.warning(
                "pin risk",
                position_id=flag.position_id,
                underlying=flag.underlying,
                symbols=list(flag.symbols),
                day=flag.day.isoformat(),
                minutes_to_close=round(flag.minutes_to_close, 1),
                note=flag.note,
            )
        for intent in intents:
            await self.bus.publish(Topic.INTENTS, intent)

    # ------------------------------------------------------------------ risk guard
    async def _on_intent(self, event: object) -> None:
        assert isinstance(event, SubmitOrder)
        self.summary.intents += 1
        self.audit.info(
            "order intent",
            intent_id=event.intent_id,
            underlying=event.underlying,
            effect=event.effect.value,
            strategy_type=event.strategy_type,
            quantity=event.quantity,
            limit_price=str(event.limit_price),
            legs=[leg.symbol for leg in event.legs],
            exit_reason=event.exit_reason,
        )
        self._equity_at[event.intent_id] = self.ledger.equity()
        if (
            self.live is not None
            and self.live.stream_down()
            and event.effect is PositionEffect.OPEN
        ):
            decision = RiskDecided(
                intent=event,
                ts_ns=self.clock.now_ns(),
                approved=False,
                reason=RiskReason.BROKER_UNAVAILABLE,
                detail="the broker's trade_updates stream is down: no new opening orders",
                max_loss=Decimal(0),
                trading_state=self.guard.state,
            )
        else:
            decision = self.guard.check(event, self.ledger, self.market, self.clock.now_ns())
        self.audit.info(
            "risk decision",
            intent_id=event.intent_id,
            approved=decision.approved,
            reason=decision.reason.value,
            detail=decision.detail,
            max_loss=str(decision.max_loss),
            trading_state=decision.trading_state.value,
        )
        if decision.approved:
            self.summary.approved += 1
        else:
            self.summary.rejected[decision.reason.value] += 1
            if event.effect is PositionEffect.CLOSE and event.position_id is not None:
                self.positions.clear_pending(event.position_id)
        await self.bus.publish(Topic.DECISIONS, decision)
        await self._publish_state_changes()

    # ------------------------------------------------------------------ broker
    async def _on_decision(self, event: object) -> None:
        assert isinstance(event, RiskDecided)
        if not event.approved:
            return
        intent = event.intent
        chain = self.market.chain(intent.underlying)
        to_alpaca = self.live is not None and self.live.broker is not None
        broker = "alpaca" if to_alpaca else "sim"
        self.audit.info("order submitted", intent_id=intent.intent_id, broker=broker)
        if to_alpaca and chain is not None:
            assert self.live is not None
            idea = self._ideas_by_id.get(intent.idea_id or "")
            rules = idea.exit_rules.model_dump() if idea is not None else None
            record = decision_record(event, self._equity_at.get(intent.intent_id))
            await self.live.submit(intent, chain, rules, record)  # events come back on the bus
            return
        if chain is None:
            results: list[OrderUpdated | OrderFilled] = [
                OrderUpdated(
                    order_id=f"{broker}-{intent.intent_id}",
                    intent_id=intent.intent_id,
                    underlying=intent.underlying,
                    ts_ns=self.clock.now_ns(),
                    status=OrderStatus.REJECTED,
                    message="no option chain for the underlying yet",
                )
            ]
        else:
            results = list(self.broker.submit(intent, chain, self.clock.now_ns()))
        for result in results:
            if isinstance(result, OrderFilled):
                if result.effect is PositionEffect.OPEN and intent.idea_id in self._ideas_by_id:
                    idea = self._ideas_by_id[intent.idea_id]
                    self.ledger.set_exit_rules(result.position_id, idea.exit_rules.model_dump())
                await self.bus.publish(Topic.FILLS, result)
            else:
                await self.bus.publish(Topic.ORDER_UPDATES, result)

    async def _broker_on_chain(self, event: object) -> None:
        assert isinstance(event, ChainSnapshot)
        self.ledger.mark(event)
        await self.bus.publish(
            Topic.CONTROL,
            PortfolioMarked(event.ts_ns, self.ledger.equity(), self.ledger.session_pnl()),
        )

    # ------------------------------------------------------------------ journal of orders
    def _journal_decision(self, event: object) -> None:
        assert isinstance(event, RiskDecided)
        if event.approved:
            self._pending_orders[event.intent.intent_id] = event
            return
        self._write_order(event, None)

    def _on_order_update(self, event: object) -> None:
        assert isinstance(event, OrderUpdated)
        level = "info" if event.status is not OrderStatus.REJECTED else "error"
        if event.status is OrderStatus.REJECTED:
            self.summary.broker_rejected[event.message.split(":")[0]] += 1
            self.audit.error(
                "Order placement failed",
                intent_id=event.intent_id,
                order_id=event.order_id,
                status=event.status.value,
                message=event.message,
            )
        else:
            getattr(self.audit, level)(
                "broker acknowledged",
                intent_id=event.intent_id,
                order_id=event.order_id,
                status=event.status.value,
            )
        decision = self._pending_orders.pop(event.intent_id, None)
        if decision is not None and event.status in (
            OrderStatus.REJECTED,
            OrderStatus.CANCELED,
            OrderStatus.EXPIRED,
        ):
            if decision.intent.position_id is not None:
                self.positions.clear_pending(decision.intent.position_id)
            self._write_order(decision, update_record(event))
        elif decision is not None:
            self._pending_orders[event.intent_id] = decision

    def _on_fill(self, event: object) -> None:
        assert isinstance(event, OrderFilled)
        self.guard.on_fill(event)  # the re-entry throttle counts fills
        self.summary.fills += 1
        self.audit.info(
            "order filled",
            intent_id=event.intent_id,
            order_id=event.order_id,
            effect=event.effect.value,
            quantity=event.quantity,
            net_price=str(event.net_price),
            commission=str(event.commission),
            position_id=event.position_id,
            exit_reason=event.exit_reason,
        )
        gross = sum((abs(leg.price) for leg in event.legs), Decimal(0))
        if gross > 0 and event.slippage > Decimal("0.01") * gross * event.quantity * 100:
            log.warning(
                "Slippage exceeds 1%", intent_id=event.intent_id, slippage=str(event.slippage)
            )
        if event.effect is PositionEffect.CLOSE:
            self.summary.closes[event.exit_reason or "manual"] += 1
            self.positions.clear_pending(event.position_id)
        self.save_books()  # the simulated broker booked it in _on_decision (Alpaca: already saved)
        decision = self._pending_orders.pop(event.intent_id, None)
        if decision is not None:
            if decision.intent.strategy_type and event.effect is PositionEffect.OPEN:
                self.summary.strategies[decision.intent.strategy_type] += 1
            self._write_order(decision, fill_record(event))

    def _write_order(self, decision: RiskDecided, result: dict[str, Any] | None) -> None:
        record = decision_record(decision, self._equity_at.pop(decision.intent.intent_id, None))
        record["broker_result"] = result
        if result is not None and result.get("status") == OrderStatus.REJECTED.value:
            record["error_message"] = result.get("message")
        else:
            record["error_message"] = None if decision.approved else decision.detail
        self.journal.write(
            "order", decision.intent.underlying, ns_to_datetime(decision.ts_ns), record
        )

    def journal_adopted(
        self, intent: SubmitOrder, record: dict[str, Any] | None, result: dict[str, Any]
    ) -> None:
        """Journal the outcome of an order adopted after a restart (its decision was made, and
        saved, by the previous run)."""
        line: dict[str, Any] = {"intent_id": intent.intent_id, **(record or {})}
        line["broker_result"] = result
        line["error_message"] = (
            result.get("message") if result.get("status") == OrderStatus.REJECTED.value else None
        )
        line["adopted_after_restart"] = True
        self.journal.write("order", intent.underlying, ns_to_datetime(self.clock.now_ns()), line)

    def _flush_pending_orders(self) -> None:
        for decision in self._pending_orders.values():
            self._write_order(
                decision, {"status": "pending", "message": "no broker answer at stop"}
            )
        self._pending_orders.clear()

    # ------------------------------------------------------------------ control
    async def _on_control(self, event: object) -> None:
        if isinstance(event, SessionStarted):
            # The ledger snapshots equity for the session's P&L before any check of the new day.
            self.ledger.start_session(event.day)
            self.save_books()
            self.journal.close_before(event.day)
            if self.live is not None:  # overnight exercises and assignments
                self.live.sync_option_activities("session start")
        elif isinstance(event, PortfolioMarked):
            self.guard.on_mark(event.session_pnl, self.ledger, self.market, event.ts_ns)
            await self._publish_state_changes()
        elif isinstance(event, SessionClosed):
            held = self.ledger.positions()
            for settled in self.ledger.settle_expired(event.day, event.settlement):
                if settled.closed:
                    self.summary.closes["expired"] += 1
                self.audit.info(
                    "position settled at expiry",
                    position_id=settled.position_id,
                    symbols=list(settled.symbols),
                    settlement_price=str(settled.settlement_price),
                    cash_flow=str(settled.cash_flow),
                    realized_pnl=str(settled.realized_pnl),
                    closed=settled.closed,
                )
            if self.live is not None:
                self.live.note_settled(event.day, held, event.settlement)
                self.live.sync_option_activities("session close")
            self.journal.flush()
            self._save_state()
            log.info(
                "session closed",
                day=event.day.isoformat(),
                equity=str(self.ledger.equity()),
                session_pnl=str(self.ledger.session_pnl()),
            )
        elif isinstance(event, TradingStateChanged):
            log.warning("trading state changed", state=event.state.value, reason=event.reason)
            self.audit.warning(
                "trading state changed",
                state=event.state.value,
                reason=event.reason,
            )
            await self._on_trading_state(event)
        elif isinstance(event, ShutdownRequested):
            self.request_stop(event.reason)

    async def _on_trading_state(self, event: TradingStateChanged) -> None:
        """Halt policy (docs/risk.md): on HALTED cancel working orders, set the broker-side
        suspension when configured, and with `flatten` close every position; stop on ACTIVE."""
        execution = self.settings.execution
        if event.state is TradingState.HALTED:
            if self.live is not None:
                await self.live.cancel_all(f"halted: {event.reason}")
                if execution.alpaca_suspend_on_halt and self.guard.halt_latched:
                    self.live.suspend_at_broker(True, event.reason)
            if execution.halt_policy == "flatten" and self.positions.flattening is None:
                self.positions.start_flatten(event.reason)
                self.audit.warning(
                    "flattening open positions",
                    reason=event.reason,
                    positions=[p.position_id for p in self.ledger.positions()],
                )
                await self._flatten_now()
        elif event.state is TradingState.ACTIVE:
            if self.positions.flattening is not None:
                self.positions.stop_flatten()
                self.audit.info("flattening stopped", reason=event.reason)
            if (
                self.live is not None
                and execution.alpaca_suspend_on_halt
                and execution.alpaca_unsuspend_on_resume
                and event.reason == OPERATOR_RESUME
            ):
                self.live.suspend_at_broker(False, event.reason)

    async def _flatten_now(self) -> None:
        """Closing orders at once for every position whose underlying has a chain (the rest
        close on their next chain, `_positions_on_chain`)."""
        if not self.options.execute:
            return
        now_ns = self.clock.now_ns()
        for symbol in self.options.symbols:
            chain = self.market.chain(symbol)
            if chain is None:
                continue
            for intent in self.positions.evaluate(self.ledger.positions(), chain, now_ns):
                await self.bus.publish(Topic.INTENTS, intent)

    async def _publish_state_changes(self) -> None:
        for change in self.guard.pop_state_changes():
            await self.bus.publish(Topic.CONTROL, change)

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


def sim_clock_for(options: RunOptions) -> SimClock:
    """The simulated clock of a run, at the first session's open."""
    first_open = options.sessions[0].open if options.sessions else ns_to_datetime(0)
    return SimClock(datetime_to_ns(first_open))


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


def _engine_name(engine: object) -> str:
    return {
        HedgeEngine: "hedge",
        LiquidityEngine: "liquidity",
        SentimentEngine: "sentiment",
        VolatilityEngine: "volatility",
    }[type(engine)]


def _parse_history(raw: Any) -> list[HistoryItem]:
    """Stored [date, value] or [date, value, source] points; anything else is skipped."""
    out: list[HistoryItem] = []
    if isinstance(raw, list):
        for item in raw:
            if isinstance(item, list | tuple) and len(item) == 2:
                out.append((date.fromisoformat(str(item[0])), float(item[1])))
            elif isinstance(item, list | tuple) and len(item) == 3:
                out.append((date.fromisoformat(str(item[0])), float(item[1]), str(item[2])))
    return out
