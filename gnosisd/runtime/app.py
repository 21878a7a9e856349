"""Entry points used by the CLI: set up logging, run the daemon on uvloop, print the summary."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import structlog

from gnosisd.core.calendar import Session, TradingCalendar
from gnosisd.core.clock import Clock, LiveClock
from gnosisd.core.config import Settings
from gnosisd.runtime.backtest import KellyTable, apply_symbol_overrides
from gnosisd.runtime.daemon import Daemon, RunOptions, RunSummary, sim_clock_for
from gnosisd.runtime.live import AlpacaConnection
from gnosisd.runtime.logging import configure_logging, register_secrets, shutdown_logging

T = TypeVar("T")
log = structlog.get_logger("gnosisd.app")


def run_event_loop(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` on uvloop where available (the daemon's production loop), else asyncio's."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on every supported platform
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def _setup(settings: Settings, clock: Clock) -> None:
    configure_logging(
        settings.runtime.log_level,
        settings.runtime.logs_dir,
        clock,
        retention_days=settings.runtime.log_retention_days,
    )
    secrets = [
        s.get_secret_value()
        for s in (settings.alpaca.api_key, settings.alpaca.secret_key)
        if s is not None
    ]
    register_secrets(*secrets)


@dataclass(frozen=True)
class SymbolOverrides:
    """The optimiser's per-symbol hyperparameters: Settings per symbol and Kelly tables."""

    settings: Mapping[str, Settings] = field(default_factory=dict)
    kelly: Mapping[str, KellyTable] = field(default_factory=dict)


def _run(
    settings: Settings,
    calendar: TradingCalendar,
    options: RunOptions,
    on_done: Callable[[RunSummary], None] | None = None,
    overrides: SymbolOverrides | None = None,
    alpaca: AlpacaConnection | None = None,
) -> RunSummary:
    # Logging first: loggers bound while constructing the daemon must see the configuration.
    clock: Clock = LiveClock() if alpaca is not None else sim_clock_for(options)
    _setup(settings, clock)
    daemon = Daemon(settings, options, calendar, clock, alpaca=alpaca)
    if overrides is not None and (overrides.settings or overrides.kelly):
        apply_symbol_overrides(daemon, settings, overrides.settings, overrides.kelly)
        log.info(
            "hyperparameters applied",
            symbols=sorted({*overrides.settings, *overrides.kelly}),
        )
    try:
        log.info(
            "gnosisd starting",
            symbols=options.symbols,
            sessions=[s.day.isoformat() for s in options.sessions],
            feed="alpaca" if alpaca is not None else "sim",
            broker="alpaca" if alpaca is not None and alpaca.broker else "sim",
            alpaca_mode=alpaca.endpoints.mode if alpaca is not None else None,
            execute=options.execute,
        )
        summary = run_event_loop(daemon.run())
        log.info("gnosisd stopped", final_state=summary.final_state, fills=summary.fills)
        if on_done is not None:
            on_done(summary)
        return summary
    finally:
        shutdown_logging()


def run_daemon(
    settings: Settings,
    calendar: TradingCalendar,
    *,
    symbols: list[str],
    sessions: list[Session],
    seed: int,
    speed: float,
    overrides: SymbolOverrides | None = None,
) -> int:
    """`gnosisd run`: the daemon over `sessions` of the simulated market; print the summary."""
    options = RunOptions(symbols=symbols, sessions=sessions, seed=seed, speed=speed)
    summary = _run(settings, calendar, options, overrides=overrides)
    sys.stdout.write(format_summary(summary, settings))
    return 0


def run_live_daemon(
    settings: Settings,
    calendar: TradingCalendar,
    *,
    symbols: list[str],
    alpaca: AlpacaConnection,
    overrides: SymbolOverrides | None = None,
) -> int:
    """`gnosisd run --feed alpaca`: the daemon on Alpaca's data (and broker) until SIGTERM/SIGINT."""
    options = RunOptions(symbols=symbols, sessions=[])
    summary = _run(settings, calendar, options, overrides=overrides, alpaca=alpaca)
    sys.stdout.write(format_summary(summary, settings))
    return 0


def run_paper(
    settings: Settings,
    calendar: TradingCalendar,
    *,
    symbol: str,
    session: Session,
    seed: int,
    execute: bool,
    underlying_price: float | None,
    overrides: SymbolOverrides | None = None,
) -> int:
    """`gnosisd paper`: the runbook's daily job, one decision at 15:30 New York (dry run by default)."""
    options = RunOptions(
        symbols=[symbol],
        sessions=[session],
        seed=seed,
        execute=execute,
        start_prices={symbol: underlying_price} if underlying_price else None,
        stop_at_ny=(15, 30),
        decide_once=True,
    )

    def complete(summary: RunSummary) -> None:
        log.info(
            f"{symbol} paper trading complete",
            day=session.day.isoformat(),
            ideas=summary.ideas,
            orders_approved=summary.approved,
            execute=execute,
            output_dir=str(settings.runtime.runs_dir / session.day.isoformat()),
        )

    daemon_summary = _run(settings, calendar, options, complete, overrides)
    sys.stdout.write(format_summary(daemon_summary, settings))
    sys.stdout.write(f"{symbol} paper trading complete ({'executed' if execute else 'dry run'})\n")
    return 0


def format_summary(s: RunSummary, settings: Settings) -> str:
    """A short human summary of a run."""
    days = ", ".join(d.isoformat() for d in s.sessions) or "none"
    pnl = s.end_equity - s.start_equity
    lines = [
        "",
        "gnosisd run summary",
        f"  sessions        {days}",
        f"  contexts        {s.contexts}",
        f"  ideas           {s.ideas}"
        + (
            f"  ({', '.join(f'{k} {v}' for k, v in sorted(s.strategies.items()))} opened)"
            if s.strategies
            else ""
        ),
        f"  orders          {s.intents} intents: {s.approved} approved, "
        f"{sum(s.rejected.values())} rejected by the risk guard",
    ]
    for reason, n in sorted(s.rejected.items()):
        lines.append(f"    rejected      {reason}: {n}")
    for reason, n in sorted(s.broker_rejected.items()):
        lines.append(f"    broker reject {reason}: {n}")
    lines += [
        f"  fills           {s.fills}"
        + (
            f"  (closes: {', '.join(f'{k} {v}' for k, v in sorted(s.closes.items()))})"
            if s.closes
            else ""
        ),
        f"  P&L             {pnl:+,.2f} USD (realised {s.realized_pnl:+,.2f}, "
        f"commissions {s.commissions:,.2f})",
        f"  equity          {s.start_equity:,.2f} -> {s.end_equity:,.2f} USD",
        f"  open positions  {s.open_positions}",
        f"  final state     {s.final_state}"
        + ("  (stopped by signal)" if s.stopped_by_signal else ""),
    ]
    published = sum(t["published"] for t in s.bus.values())
    conflated = sum(t["conflated"] for t in s.bus.values())
    lines.append(f"  bus             {published:,} events published, {conflated:,} conflated")
    if s.stage_errors:
        lines.append(
            "  errors          "
            + ", ".join(f"{k} {v}" for k, v in sorted(s.stage_errors.items()))
            + " analytics updates failed (see logs/errors_*.log)"
        )
    if s.dropped:
        lines.append(
            "  dropped data    " + ", ".join(f"{k} {v}" for k, v in sorted(s.dropped.items()))
        )
    lines.append(
        f"  journal         {settings.runtime.runs_dir}/  logs {settings.runtime.logs_dir}/"
    )
    return "\n".join(lines) + "\n"
