"""Trading control: the halt (latched by a signal, the kill file or the halt document, released
by `gnosisd resume`), the halt policy on trading-state changes, and session start and close."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import structlog

from gnosisd.bus.events import (
    PortfolioMarked,
    SessionClosed,
    SessionStarted,
    ShutdownRequested,
    TradingStateChanged,
)
from gnosisd.bus.topics import Topic
from gnosisd.core.clock import ns_to_datetime
from gnosisd.core.enums import TradingState
from gnosisd.risk.killswitch import HALT_STATE

if TYPE_CHECKING:
    from gnosisd.runtime.daemon import Daemon

log = structlog.get_logger("gnosisd.daemon")
KILL_POLL_SECONDS = 0.25  # how often a running daemon looks at the kill file and the halt document
OPERATOR_RESUME = "operator resume"  # reason of the release by `gnosisd resume` (kill_watch)


class TradingControl:
    """The control topic's handler and the halt latch of one daemon.

    It reads the daemon's ledger and journal at each call: a backtest swaps them in after the
    daemon is built.
    """

    def __init__(self, daemon: Daemon) -> None:
        self._d = daemon
        self._background: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ halt
    def request_halt(self, reason: str) -> None:
        """Latch HALTED now and persist it (safe from a signal handler); the next opening order
        is refused at once, the transition is published on the bus in a moment."""
        d = self._d
        if d.guard.halt_latched:
            return
        now_ns = d.clock.now_ns()
        d.guard.latch_halt(reason, now_ns)
        d.state_store.save(
            HALT_STATE, {"reason": reason, "halted_at": ns_to_datetime(now_ns).isoformat()}
        )
        task = asyncio.get_running_loop().create_task(self.publish_state_changes())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def restore_halt(self) -> None:
        """A latched halt (halt document or kill file) survives restarts until `gnosisd resume`."""
        d = self._d
        doc = d.state_store.load(HALT_STATE)
        if doc is not None:
            d.guard.latch_halt(f"latched: {doc.get('reason', 'halt')}", d.clock.now_ns())
            await self.publish_state_changes()
        elif d.settings.risk.kill_file.exists():
            self.request_halt(f"kill file {d.settings.risk.kill_file}")

    async def kill_watch(self) -> None:
        """Poll the kill file and the halt document (a stat each), so both reach a running
        daemon: a new kill file latches the halt, removing both (`gnosisd resume`) releases it."""
        d = self._d
        kill_file = d.settings.risk.kill_file
        halt_doc = d.state_store.path(HALT_STATE)
        while True:
            await asyncio.sleep(KILL_POLL_SECONDS)
            if not d.guard.halt_latched:
                if kill_file.exists():
                    self.request_halt(f"kill file {kill_file}")
            elif not kill_file.exists() and not halt_doc.exists():
                still = await d.live.recheck() if d.live is not None else None
                if still is not None:
                    self._refuse_resume(still)
                    continue
                d.guard.release_halt(OPERATOR_RESUME, d.clock.now_ns())
                await self.publish_state_changes()

    def _refuse_resume(self, reason: str) -> None:
        """Keep the latched halt (it was never released) and save it again with the reason, so
        `gnosisd status` shows it and the operator can fix the books and resume again."""
        d = self._d
        log.critical("resume refused: the books still disagree with the broker", reason=reason)
        d.audit.error("resume refused", reason=reason)
        now = ns_to_datetime(d.clock.now_ns()).isoformat()
        d.state_store.save(HALT_STATE, {"reason": f"resume refused: {reason}", "halted_at": now})

    async def publish_state_changes(self) -> None:
        """Publish the guard's trading-state transitions on the control topic."""
        for change in self._d.guard.pop_state_changes():
            await self._d.bus.publish(Topic.CONTROL, change)

    # ------------------------------------------------------------------ control topic
    async def on_control(self, event: object) -> None:
        d = self._d
        if isinstance(event, SessionStarted):
            # The ledger snapshots equity for the session's P&L before any check of the new day.
            d.ledger.start_session(event.day)
            d.save_books()
            d.journal.close_before(event.day)
            if d.live is not None:  # overnight exercises and assignments
                d.live.sync_option_activities("session start")
        elif isinstance(event, PortfolioMarked):
            d.guard.on_mark(event.session_pnl, d.ledger, d.market, event.ts_ns)
            await self.publish_state_changes()
        elif isinstance(event, SessionClosed):
            self._on_session_closed(event)
        elif isinstance(event, TradingStateChanged):
            log.warning("trading state changed", state=event.state.value, reason=event.reason)
            d.audit.warning(
                "trading state changed",
                state=event.state.value,
                reason=event.reason,
            )
            await self.on_trading_state(event)
        elif isinstance(event, ShutdownRequested):
            d.request_stop(event.reason)

    def _on_session_closed(self, event: SessionClosed) -> None:
        d = self._d
        held = d.ledger.positions()
        for settled in d.ledger.settle_expired(event.day, event.settlement):
            if settled.closed:
                d.summary.closes["expired"] += 1
            d.audit.info(
                "position settled at expiry",
                position_id=settled.position_id,
                symbols=list(settled.symbols),
                settlement_price=str(settled.settlement_price),
                cash_flow=str(settled.cash_flow),
                realized_pnl=str(settled.realized_pnl),
                closed=settled.closed,
            )
        if d.live is not None:
            d.live.note_settled(event.day, held, event.settlement)
            d.live.sync_option_activities("session close")
        d.journal.flush()
        d._save_state()  # a backtest overrides it (no files for optimisation trials)
        log.info(
            "session closed",
            day=event.day.isoformat(),
            equity=str(d.ledger.equity()),
            session_pnl=str(d.ledger.session_pnl()),
        )

    async def on_trading_state(self, event: TradingStateChanged) -> None:
        """Halt policy (docs/risk.md): on HALTED cancel working orders, set the broker-side
        suspension when configured, and with `flatten` close every position; stop on ACTIVE."""
        d = self._d
        execution = d.settings.execution
        if event.state is TradingState.HALTED:
            if d.live is not None:
                await d.live.cancel_all(f"halted: {event.reason}")
                if execution.alpaca_suspend_on_halt and d.guard.halt_latched:
                    d.live.suspend_at_broker(True, event.reason)
            if execution.halt_policy == "flatten" and d.positions.flattening is None:
                d.positions.start_flatten(event.reason)
                d.audit.warning(
                    "flattening open positions",
                    reason=event.reason,
                    positions=[p.position_id for p in d.ledger.positions()],
                )
                await self.flatten_now()
        elif event.state is TradingState.ACTIVE:
            if d.positions.flattening is not None:
                d.positions.stop_flatten()
                d.audit.info("flattening stopped", reason=event.reason)
            if (
                d.live is not None
                and execution.alpaca_suspend_on_halt
                and execution.alpaca_unsuspend_on_resume
                and event.reason == OPERATOR_RESUME
            ):
                d.live.suspend_at_broker(False, event.reason)

    async def flatten_now(self) -> None:
        """Closing orders at once for every position whose underlying has a chain (the rest
        close on their next chain, `DecisionStage.positions_on_chain`)."""
        d = self._d
        if not d.options.execute:
            return
        now_ns = d.clock.now_ns()
        for symbol in d.options.symbols:
            chain = d.market.chain(symbol)
            if chain is None:
                continue
            for intent in d.positions.evaluate(d.ledger.positions(), chain, now_ns):
                await d.bus.publish(Topic.INTENTS, intent)
