"""Halt policy through the daemon on the simulated market: `flatten` closes every open position
after a halt (closes pass the guard while halted), `cancel_only` keeps them."""

from __future__ import annotations

from pathlib import Path

from gnosisd.runtime.daemon import Daemon
from tests.e2e.conftest import log_lines, make_settings, run_daemon


class HaltOnFirstPosition(Daemon):
    """Latch a halt (as SIGUSR1 does) on the first chain after a position is open."""

    halted_with: int = 0

    async def _positions_on_chain(self, event: object) -> None:
        if not self.guard.halt_latched and self.ledger.positions():
            self.halted_with = len(self.ledger.positions())
            self.request_halt("operator test")
            await self._publish_state_changes()
        await super()._positions_on_chain(event)


async def test_flatten_closes_every_open_position_after_a_halt(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, execution={"halt_policy": "flatten"})
    summary, daemon = await run_daemon(settings, daemon_cls=HaltOnFirstPosition)
    assert isinstance(daemon, HaltOnFirstPosition)
    assert daemon.halted_with >= 1
    assert summary.final_state == "halted"
    assert summary.closes["halt"] == daemon.halted_with
    assert summary.open_positions == 0
    audit = log_lines(settings.runtime.logs_dir, "audit")
    flatten = [x for x in audit if x["event"] == "flattening open positions"]
    assert len(flatten) == 1 and flatten[0]["reason"] == "operator test"
    closes = {
        x["intent_id"] for x in audit if x["event"] == "order intent" and x["exit_reason"] == "halt"
    }
    decided = [x for x in audit if x["event"] == "risk decision" and x["intent_id"] in closes]
    assert decided and all(x["approved"] and x["trading_state"] == "halted" for x in decided)


async def test_cancel_only_keeps_open_positions_after_a_halt(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, execution={"halt_policy": "cancel_only"})
    summary, daemon = await run_daemon(settings, daemon_cls=HaltOnFirstPosition)
    assert isinstance(daemon, HaltOnFirstPosition)
    assert daemon.halted_with >= 1
    assert summary.final_state == "halted"
    assert summary.closes["halt"] == 0
    assert summary.open_positions >= 1
    audit = log_lines(settings.runtime.logs_dir, "audit")
    assert not [x for x in audit if x["event"] == "flattening open positions"]
