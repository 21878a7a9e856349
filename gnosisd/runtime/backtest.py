"""Backtest runner: the daemon's own components (engines, composer, agent, positions, guard, sim
broker, journal) on the simulated clock, fed by the sim market or a replay, as fast as possible.
It adds only bookkeeping: an equity point per session close and one record per position.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from gnosisd.agents.trade_agent import TradeAgent
from gnosisd.broker.ledger import Ledger, Settlement
from gnosisd.broker.sim import SimBroker
from gnosisd.bus.events import ChainSnapshot, OrderFilled, SessionClosed, SubmitOrder
from gnosisd.bus.records import MarketContext, TradeIdea
from gnosisd.core.calendar import CALENDAR_END, CALENDAR_START, Session, TradingCalendar
from gnosisd.core.clock import NEW_YORK, SimClock, ns_to_datetime
from gnosisd.core.config import Settings
from gnosisd.core.enums import PositionEffect, Regime, StrategyType
from gnosisd.core.errors import ConfigError
from gnosisd.core.money import ZERO
from gnosisd.engines.volatility import HistoryItem
from gnosisd.feeds.replay import ReplayData, ReplayFeed
from gnosisd.runtime.analytics import SymbolAnalytics
from gnosisd.runtime.daemon import Daemon, MarketFeed, RunOptions, RunSummary, sim_clock_for
from gnosisd.store.journal import Journal

FeedKind = Literal["sim", "replay"]
KellyTable = Mapping[tuple[StrategyType, Regime], float]  # f per (strategy, regime)
PER_SYMBOL_SECTIONS = ("hedge", "liquidity", "sentiment", "volatility", "trade_agent")


@dataclass
class TradeRecord:
    """One position from its opening fill to its close or expiry (money in exact dollars)."""

    position_id: str
    symbol: str
    strategy: str
    idea_id: str | None
    opened: datetime
    quantity: int
    max_loss: Decimal  # at the fill, total dollars, <= 0
    regime: str | None = None
    confidence: float | None = None
    closed: date | None = None
    exit_reason: str | None = None
    realized: Decimal = ZERO  # trading P&L before commissions
    commissions: Decimal = ZERO
    slippage: Decimal = ZERO

    @property
    def net(self) -> Decimal:
        return self.realized - self.commissions

    def to_json(self) -> dict[str, Any]:
        return {
            "position_id": self.position_id,
            "symbol": self.symbol,
            "strategy": self.strategy,
            "regime": self.regime,
            "confidence": self.confidence,
            "opened": self.opened.isoformat(),
            "closed": None if self.closed is None else self.closed.isoformat(),
            "exit_reason": self.exit_reason,
            "quantity": self.quantity,
            "max_loss": float(self.max_loss),
            "realized": float(self.realized),
            "commissions": float(self.commissions),
            "slippage": float(self.slippage),
            "net": float(self.net),
        }


@dataclass(frozen=True, slots=True)
class EquityPoint:
    """Portfolio at a session's close (after expiries settled)."""

    day: date
    equity: Decimal
    cash: Decimal
    realized: Decimal
    commissions: Decimal
    open_positions: int


class RecordingLedger(Ledger):
    """The ledger, also keeping a TradeRecord per position from the fills and settlements."""

    def __init__(self, initial_cash: Decimal) -> None:
        super().__init__(initial_cash)
        self.trades: dict[str, TradeRecord] = {}
        self._recorded: set[str] = set()

    def apply_fill(
        self,
        fill: OrderFilled,
        intent: SubmitOrder,
        exit_rules: Mapping[str, float] | None = None,
    ) -> None:
        before = self.realized_pnl()
        super().apply_fill(fill, intent, exit_rules)
        if fill.order_id in self._recorded:
            return
        self._recorded.add(fill.order_id)
        pid = fill.position_id
        if fill.effect is PositionEffect.OPEN:
            view = self.position(pid)
            self.trades[pid] = TradeRecord(
                position_id=pid,
                symbol=intent.underlying,
                strategy=intent.strategy_type or "custom",
                idea_id=intent.idea_id,
                opened=ns_to_datetime(fill.ts_ns),
                quantity=fill.quantity,
                max_loss=ZERO if view is None else view.max_loss,
            )
        rec = self.trades.get(pid)
        if rec is None:  # a close of a position opened before the recording began
            return
        rec.commissions += fill.commission
        rec.slippage += fill.slippage
        if fill.effect is PositionEffect.CLOSE:
            rec.realized += self.realized_pnl() - before
            if self.position(pid) is None:
                rec.closed = ns_to_datetime(fill.ts_ns).astimezone(NEW_YORK).date()
                rec.exit_reason = fill.exit_reason or "manual"

    def settle_expired(
        self, day: date, settlement_prices: Mapping[str, float | Decimal]
    ) -> list[Settlement]:
        out = super().settle_expired(day, settlement_prices)
        for s in out:
            rec = self.trades.get(s.position_id)
            if rec is not None:
                rec.realized += s.realized_pnl
                if s.closed:
                    rec.closed, rec.exit_reason = day, "expired"
        return out


class _RunJournal(Journal):
    """The daemon's journal, fsynced once at the end: a backtest is rerun, not recovered, and the
    daemon's per-session flush fsyncs every file of every day so far (quadratic over a long run)."""

    def flush(self) -> None:
        return None


class _NullJournal(Journal):
    """Optimisation trials: count journal lines, write none (the trades are recorded in memory)."""

    def write(
        self,
        kind: Any,
        symbol: str,
        as_of: datetime,
        payload: Mapping[str, Any],
        extra: Mapping[str, Any] | None = None,
    ) -> Path:
        self.lines_written += 1
        return self.runs_dir

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None


def make_agent(settings: Settings, own: Settings, kelly: KellyTable | None) -> TradeAgent:
    """A trade agent with `own`'s per-symbol sections and the global risk and execution keys,
    sizing with the Kelly table refined from a backtest when there is one."""
    return TradeAgent(
        own.trade_agent,
        own.liquidity,
        settings.risk.max_trade_risk_pct,
        settings.execution.slippage_pct,
        kelly_overrides=dict(kelly or {}),
    )


class _SymbolAgents(TradeAgent):
    """One TradeAgent per symbol (per-symbol hyperparameters), behind the daemon's single agent."""

    def __init__(self, base: TradeAgent, agents: Mapping[str, TradeAgent]) -> None:
        # A copy of the daemon's agent answers for symbols without their own (no re-construction:
        # the constructor's arguments belong to the trade-agent module).
        self.__dict__.update(base.__dict__)
        self._agents = dict(agents)

    def propose(self, context: MarketContext, *args: Any, **kwargs: Any) -> list[TradeIdea]:
        agent = self._agents.get(context.symbol)
        if agent is None:
            return super().propose(context, *args, **kwargs)
        ideas = agent.propose(context, *args, **kwargs)
        self.last_rejections = agent.last_rejections
        return ideas

    def to_intent(self, idea: TradeIdea, *args: Any, **kwargs: Any) -> SubmitOrder:
        agent = self._agents.get(idea.symbol)
        if agent is None:
            return super().to_intent(idea, *args, **kwargs)
        return agent.to_intent(idea, *args, **kwargs)


def apply_symbol_overrides(
    daemon: Daemon, settings: Settings, per: Mapping[str, Settings], kelly: Mapping[str, KellyTable]
) -> None:
    """Engines, composer and trade agent of each symbol from its own settings and Kelly table.

    Used by backtests and by `gnosisd run/paper --params FILE` (the optimiser's hyperparameters).
    """
    agents: dict[str, TradeAgent] = {}
    for symbol in daemon.options.symbols:
        if symbol not in per and symbol not in kelly:
            continue
        st = per.get(symbol, settings)
        if symbol in per:
            vol = daemon.analytics[symbol].volatility  # keep what the daemon loaded
            history: list[HistoryItem] = list(vol.history_records())
            returns: list[HistoryItem] = list(vol.returns_history())
            daemon.analytics[symbol] = SymbolAnalytics(symbol, st, history, returns)
        agents[symbol] = make_agent(settings, st, kelly.get(symbol))
    if agents:
        daemon.agent = _SymbolAgents(daemon.agent, agents)


# Called at each session close with (point, sessions done); returning True stops the run there.
SessionCallback = Callable[[EquityPoint, int], bool | None]


class BacktestDaemon(Daemon):
    """The Daemon with a recording ledger, an equity point per session and optional per-symbol
    settings; `journal=False` keeps nothing on disk (optimisation trials)."""

    def __init__(
        self,
        settings: Settings,
        options: RunOptions,
        calendar: TradingCalendar,
        clock: SimClock | None = None,
        feed: MarketFeed | None = None,
        *,
        symbol_settings: Mapping[str, Settings] | None = None,
        kelly: Mapping[str, KellyTable] | None = None,
        journal: bool = True,
        on_session: SessionCallback | None = None,
    ) -> None:
        super().__init__(settings, options, calendar, clock, feed)
        self.ledger = RecordingLedger(Decimal(str(settings.execution.initial_cash)))
        self.broker = SimBroker(settings.execution, self.ledger)
        self._keep_files = journal
        self.journal.close()  # nothing written yet: swap in the backtest's journal
        runs = settings.runtime.runs_dir
        self.journal = _RunJournal(runs) if journal else _NullJournal(runs)
        if symbol_settings or kelly:
            apply_symbol_overrides(self, settings, symbol_settings or {}, kelly or {})
        self.on_session = on_session
        self.equity_curve: list[EquityPoint] = []
        self.notes: list[str] = []  # what the results should say about how the run was made

    async def _on_control(self, event: object) -> None:
        await super()._on_control(event)
        if isinstance(event, SessionClosed):
            ledger = self.ledger
            point = EquityPoint(
                day=event.day,
                equity=ledger.equity(),
                cash=ledger.cash(),
                realized=ledger.realized_pnl(),
                commissions=ledger.commissions_paid(),
                open_positions=len(ledger.positions()),
            )
            self.equity_curve.append(point)
            if self.on_session is not None and self.on_session(point, len(self.equity_curve)):
                self.request_stop("stopped by the session callback")

    def _save_state(self) -> None:
        if self._keep_files:
            super()._save_state()

    def trades(self) -> list[TradeRecord]:
        """Every position opened in the run, with the regime and confidence of its idea."""
        assert isinstance(self.ledger, RecordingLedger)
        out = list(self.ledger.trades.values())
        for rec in out:
            idea = self.order_flow.ideas_by_id.get(rec.idea_id or "")
            if idea is not None:
                rec.regime = None if idea.regime is None else idea.regime.value
                rec.confidence = idea.confidence
        return out


@dataclass
class BacktestRequest:
    """What to backtest; `data` is required for the replay feed."""

    start: date
    end: date
    symbols: list[str]
    seed: int = 7
    feed: FeedKind = "sim"
    data: ReplayData | None = None
    journal: bool = True
    symbol_overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    progress: bool | None = None  # None: a progress bar only when stderr is a terminal
    on_session: SessionCallback | None = None
    chain_cache: dict[tuple[str, int], ChainSnapshot] | None = None  # shared by repeated runs
    kelly: Mapping[str, KellyTable] = field(default_factory=dict)  # per symbol, for sizing


@dataclass
class BacktestResult:
    summary: RunSummary
    sessions: list[Session]
    start_equity: Decimal
    equity_curve: list[EquityPoint]
    trades: list[TradeRecord]
    feed: FeedKind
    data_source: str
    chains: str
    pruned: bool = False
    notes: list[str] = field(default_factory=list)


def apply_overrides(settings: Settings, overrides: Mapping[str, Any]) -> Settings:
    """Settings with dotted-key overrides (`trade_agent.long_delta: 0.4`) applied and validated."""
    if not overrides:
        return settings
    data = settings.model_dump()
    for key, value in overrides.items():
        parts = key.split(".")
        node = data
        for part in parts[:-1]:
            sub = node.get(part)
            if not isinstance(sub, dict):
                raise ConfigError(f"hyperparameter {key}: {part} is not a configuration section")
            node = sub
        if parts[-1] not in node:
            raise ConfigError(f"hyperparameter {key}: no such configuration key")
        node[parts[-1]] = value
    try:
        return Settings(**data)
    except Exception as exc:  # pydantic's ValidationError: report as a configuration error
        raise ConfigError(f"hyperparameters {dict(overrides)} are invalid: {exc}") from None


def symbol_settings(
    settings: Settings, overrides: Mapping[str, Mapping[str, Any]]
) -> dict[str, Settings]:
    """Per-symbol Settings; only the per-symbol sections may be overridden."""
    out: dict[str, Settings] = {}
    for symbol, keys in overrides.items():
        bad = [k for k in keys if k.split(".", 1)[0] not in PER_SYMBOL_SECTIONS]
        if bad:
            raise ConfigError(
                f"hyperparameters for {symbol}: {', '.join(bad)} are not per-symbol keys "
                f"(allowed sections: {', '.join(PER_SYMBOL_SECTIONS)})"
            )
        out[symbol] = apply_overrides(settings, keys)
    return out


def backtest_sessions(
    request: BacktestRequest, calendar: TradingCalendar, feed: ReplayFeed | None
) -> list[Session]:
    if request.end < request.start:
        raise ConfigError(f"--to {request.end} is before --from {request.start}")
    first, last = date.fromisoformat(CALENDAR_START), date.fromisoformat(CALENDAR_END)
    if request.start < first or request.end > last:
        raise ConfigError(
            f"--from {request.start} --to {request.end}: the XNYS calendar covers {first} to {last}"
        )
    sessions = (
        feed.sessions(request.start, request.end)
        if feed is not None
        else calendar.sessions(request.start, request.end)
    )
    if not sessions:
        where = "with data" if feed is not None else ""
        raise ConfigError(f"no XNYS session {where} from {request.start} to {request.end}".strip())
    return sessions


def plan(
    settings: Settings, request: BacktestRequest, calendar: TradingCalendar
) -> tuple[ReplayFeed | None, RunOptions]:
    """The feed (None: the daemon's own sim market) and run options of `request`."""
    feed: ReplayFeed | None = None
    if request.feed == "replay":
        if request.data is None:
            raise ConfigError("--feed replay needs --data PATH (CSV/Parquet bars) or arch:sp500")
        feed = ReplayFeed(
            request.data,
            request.symbols,
            seed=request.seed,
            calendar=calendar,
            chain_refresh_minutes=settings.runtime.chain_refresh_minutes,
            chain_cache=request.chain_cache,
        )
    sessions = backtest_sessions(request, calendar, feed)
    options = RunOptions(
        symbols=request.symbols, sessions=sessions, seed=request.seed, handle_signals=False
    )
    return feed, options


def make_daemon(
    settings: Settings,
    request: BacktestRequest,
    calendar: TradingCalendar,
    planned: tuple[ReplayFeed | None, RunOptions] | None = None,
    clock: SimClock | None = None,
) -> BacktestDaemon:
    """The BacktestDaemon of `request` (configure logging before: the daemon binds loggers)."""
    feed, options = planned or plan(settings, request, calendar)
    settings, note = without_lookahead(settings, options.sessions[0].day)
    daemon = BacktestDaemon(
        settings,
        options,
        calendar,
        clock or sim_clock_for(options),
        feed,
        symbol_settings=symbol_settings(settings, request.symbol_overrides),
        kelly=request.kelly,
        journal=request.journal,
        on_session=request.on_session,
    )
    daemon.notes = [note] if note else []
    return daemon


def without_lookahead(settings: Settings, first_day: date) -> tuple[Settings, str | None]:
    """Settings that use no data dated after the backtest's first session.

    The volatility engine tops up a short IV history from the bundled VIX proxy, taking its latest
    points; when the proxy reaches past `first_day` that would be the future, so the backfill is
    turned off for such a backtest (IV rank then builds up from the backtest's own chains).
    """
    from gnosisd.engines.garch import bundled_iv_proxy

    vol = settings.volatility
    if getattr(vol, "iv_backfill", "none") == "none":
        return settings, None
    proxy = bundled_iv_proxy("SPY")
    if not proxy or proxy[-1][0] < first_day:
        return settings, None
    return (
        apply_overrides(settings, {"volatility.iv_backfill": "none"}),
        f"volatility.iv_backfill off: the bundled VIX proxy runs to {proxy[-1][0]}, after the "
        f"first session {first_day} (no lookahead)",
    )


def _progress(request: BacktestRequest, total: int) -> tuple[SessionCallback | None, Any]:
    show = request.progress if request.progress is not None else sys.stderr.isatty()
    user = request.on_session
    if not show:
        return user, None
    from tqdm import tqdm

    bar = tqdm(total=total, unit="session", file=sys.stderr, desc="backtest", leave=False)

    def on_session(point: EquityPoint, done: int) -> bool | None:
        bar.update(1)
        bar.set_postfix_str(f"{point.day} equity {point.equity:,.0f}", refresh=False)
        return None if user is None else user(point, done)

    return on_session, bar


async def run_backtest_async(
    settings: Settings, request: BacktestRequest, calendar: TradingCalendar
) -> BacktestResult:
    """Run one backtest in the running event loop (logging is the caller's business)."""
    return await run_daemon_async(make_daemon(settings, request, calendar), request)


async def run_daemon_async(daemon: BacktestDaemon, request: BacktestRequest) -> BacktestResult:
    """Run a BacktestDaemon made by make_daemon and collect its result."""
    callback, bar = _progress(request, len(daemon.options.sessions))
    daemon.on_session = callback
    try:
        summary = await daemon.run()
    finally:
        if bar is not None:
            bar.close()
    data = request.data
    return BacktestResult(
        summary=summary,
        sessions=daemon.options.sessions,
        start_equity=summary.start_equity,
        equity_curve=daemon.equity_curve,
        trades=daemon.trades(),
        feed=request.feed,
        data_source=(
            f"simulated market, seed {request.seed}"
            if request.feed == "sim" or data is None
            else data.source
        ),
        chains=(
            "simulated (the sim market's own chains)"
            if request.feed == "sim" or data is None
            else f"MODEL chains: BSM on the sim IV surface anchored on {data.anchor}"
        ),
        pruned=summary.stopped_by_signal,
        notes=list(daemon.notes),
    )


def run_backtest(
    settings: Settings, request: BacktestRequest, calendar: TradingCalendar
) -> BacktestResult:
    """Run one backtest on a fresh event loop (uvloop where available)."""
    from gnosisd.runtime.app import run_event_loop

    return run_event_loop(run_backtest_async(settings, request, calendar))


def prepare_output_dir(output_dir: Path) -> None:
    """Refuse a non-empty output directory: a backtest's journal must start empty to be exact."""
    if output_dir.exists() and (not output_dir.is_dir() or any(output_dir.iterdir())):
        raise ConfigError(
            f"--output-dir {output_dir} is not empty; delete it or choose another directory "
            "(a backtest never appends to an earlier run)"
        )
    output_dir.mkdir(parents=True, exist_ok=True)


def backtest_settings(settings: Settings, output_dir: Path) -> Settings:
    """Every file of the run under `output_dir`: runs/, logs/, state/ (fresh IV history, kill file)."""
    return apply_overrides(
        settings,
        {
            "runtime.runs_dir": output_dir / "runs",
            "runtime.logs_dir": output_dir / "logs",
            "runtime.state_dir": output_dir / "state",
            "runtime.checkpoints_dir": output_dir / "logs" / "checkpoints",
            "risk.kill_file": output_dir / "state" / "KILL",
            # A backtest never touches a live daemon's status file or metrics port.
            "runtime.status_file": None,
            "runtime.metrics_port": None,
        },
    )


def run_backtest_command(
    settings: Settings,
    calendar: TradingCalendar,
    request: BacktestRequest,
    output_dir: Path,
    extra: Mapping[str, Any] | None = None,
) -> int:
    """`gnosisd backtest`: run, print the table, write results.json, equity.png and the journal."""
    import orjson

    from gnosisd.runtime.app import run_event_loop
    from gnosisd.runtime.logging import configure_logging, shutdown_logging
    from gnosisd.runtime.performance import format_table, metrics, results_document, write_chart

    prepare_output_dir(output_dir)
    settings = backtest_settings(settings, output_dir)
    planned = plan(settings, request, calendar)
    clock = sim_clock_for(planned[1])
    configure_logging(settings.runtime.log_level, settings.runtime.logs_dir, clock)
    try:
        daemon = make_daemon(settings, request, calendar, planned, clock)
        result = run_event_loop(run_daemon_async(daemon, request))
    finally:
        shutdown_logging()
    doc = results_document(
        result, {"symbols": request.symbols, "seed": request.seed, **(extra or {})}
    )
    (output_dir / "results.json").write_bytes(
        orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS) + b"\n"
    )
    days = f"{result.sessions[0].day} .. {result.sessions[-1].day}"
    title = f"gnosisd backtest {','.join(request.symbols)} {days} ({request.feed} feed)"
    write_chart(result, output_dir / "equity.png", title)
    out = sys.stdout
    out.write(format_table(metrics(result), title))
    out.write(f"  data      {result.data_source}\n  chains    {result.chains}\n")
    for note in result.notes:
        out.write(f"  note      {note}\n")
    out.write(f"  output    {output_dir}/results.json, equity.png, runs/ (journal), logs/\n")
    return 0


def run_quiet(
    settings: Settings, request: BacktestRequest, calendar: TradingCalendar, workdir: Path
) -> BacktestResult:
    """One backtest with every file under `workdir` and no log output at all (optimisation runs:
    thousands of throwaway runs; their results are the return value)."""
    import logging

    import structlog

    from gnosisd.runtime.app import run_event_loop

    settings = backtest_settings(settings, workdir)
    previous = structlog.get_config()
    structlog.configure(
        processors=[_drop_event],
        wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL),
        logger_factory=structlog.ReturnLoggerFactory(),
        cache_logger_on_first_use=False,
    )
    try:
        daemon = make_daemon(settings, request, calendar)
        return run_event_loop(run_daemon_async(daemon, request))
    finally:
        structlog.configure(**previous)


def _drop_event(*_: object) -> Any:
    import structlog

    raise structlog.DropEvent
