"""Latched halts (kill switch, SIGUSR1, `gnosisd halt`): they outlive sessions until released."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from gnosisd.core.calendar import TradingCalendar
from gnosisd.core.config import RiskConfig
from gnosisd.core.enums import RiskReason, TradingState
from gnosisd.risk.guard import RiskGuard
from gnosisd.risk.killswitch import KillSwitch, remove_kill_file, write_kill_file
from gnosisd.risk.state import TradingStateMachine
from tests.unit.risk.fakes import (
    NOW,
    FakeMarket,
    FakePortfolio,
    S,
    closing,
    holding,
    put_credit_spread,
)

CAL = TradingCalendar()
DAY = 86_400 * S


def make_guard(tmp_path: Path) -> RiskGuard:
    cfg = RiskConfig.model_validate({"kill_file": tmp_path / "KILL"})
    return RiskGuard(cfg, CAL, broker_is_live=False)


def test_a_latched_halt_survives_a_new_session_until_resume() -> None:
    sm = TradingStateMachine(CAL)
    assert sm.halt("SIGUSR1", NOW, latched=True)
    assert sm.roll(NOW + DAY)  # the next New York date would lift a session halt
    assert sm.state is TradingState.HALTED
    assert sm.latched
    sm.resume("operator resume", NOW + DAY)
    assert [c.state for c in sm.pop_changes()] == [TradingState.HALTED, TradingState.ACTIVE]
    assert not sm.latched


def test_a_session_halt_still_lifts_on_the_next_session() -> None:
    sm = TradingStateMachine(CAL)
    assert sm.halt("daily loss limit", NOW)
    sm.roll(NOW + DAY)
    assert sm.state is TradingState.ACTIVE
    assert not sm.latched


def test_latching_an_existing_session_halt_keeps_it_across_sessions() -> None:
    sm = TradingStateMachine(CAL)
    sm.halt("daily loss limit", NOW)
    assert not sm.halt("kill file", NOW + S, latched=True)
    sm.roll(NOW + DAY)
    assert sm.state is TradingState.HALTED
    assert sm.reason == "kill file"


def test_latched_guard_rejects_opens_next_day_but_passes_closes(tmp_path: Path) -> None:
    guard = make_guard(tmp_path)
    book, market = holding(closing()), FakeMarket({"SPY": NOW + DAY - 5 * S})
    guard.latch_halt("SIGUSR1", NOW)
    changes = guard.pop_state_changes()
    assert [(c.state, c.reason) for c in changes] == [(TradingState.HALTED, "SIGUSR1")]
    d = guard.check(put_credit_spread(), book, market, NOW + DAY)
    assert not d.approved
    assert d.reason is RiskReason.KILL_SWITCH
    assert d.trading_state is TradingState.HALTED
    assert guard.check(closing(), book, market, NOW + DAY).approved


def test_release_clears_the_runtime_kill_and_the_latch(tmp_path: Path) -> None:
    guard = make_guard(tmp_path)
    book, market = FakePortfolio(), FakeMarket({"SPY": NOW - 5 * S})
    guard.latch_halt("gnosisd halt", NOW)
    guard.release_halt("operator resume", NOW + S)
    assert not guard.halt_latched
    assert guard.state is TradingState.ACTIVE
    assert guard.kill_switch.active() is None
    assert guard.check(put_credit_spread(), book, market, NOW + 2 * S).approved
    states = [c.state for c in guard.pop_state_changes()]
    assert states == [TradingState.HALTED, TradingState.ACTIVE]


def test_kill_file_is_written_with_reason_and_utc_time_and_activates_the_switch(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state" / "KILL"
    switch = KillSwitch(kill_file=path)
    at = datetime(2026, 11, 24, 10, 0, tzinfo=timezone(timedelta(hours=-5)))
    write_kill_file(path, "broker outage", at)
    assert path.read_text() == "halted_at=2026-11-24T15:00:00+00:00\nreason=broker outage\n"
    assert switch.active() == f"kill file {path} exists"
    assert list(path.parent.iterdir()) == [path]  # no temp file left behind
    assert remove_kill_file(path)
    assert not remove_kill_file(path)
    assert switch.active() is None


def test_kill_file_needs_an_aware_time(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        write_kill_file(tmp_path / "KILL", "x", datetime(2026, 11, 24, 10, 0))
    assert not (tmp_path / "KILL").exists()
