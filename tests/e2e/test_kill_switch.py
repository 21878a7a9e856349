"""The kill switch reaches a running daemon: SIGUSR1 halts, the halt is latched across restarts
until `gnosisd resume`, and closes still pass while opening orders are refused."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

pytestmark = pytest.mark.slow
OPENING_REJECTS = {"kill_switch", "trading_halted"}
RUN = [sys.executable, "-m", "gnosisd.cli", "run"]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("GNOSIS_", "ALPACA_"))}


def _gnosisd(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gnosisd.cli", *args],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _audit(cwd: Path, day: str) -> list[dict[str, Any]]:
    path = cwd / "logs" / f"audit_{day}.log"
    return [orjson.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []


def _decisions(lines: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(effect, decision) for each risk decision, the effect taken from its order intent."""
    effects = {x["intent_id"]: x["effect"] for x in lines if x["event"] == "order intent"}
    return [(effects[x["intent_id"]], x) for x in lines if x["event"] == "risk decision"]


def _halted_index(lines: list[dict[str, Any]]) -> int | None:
    for i, x in enumerate(lines):
        if x["event"] == "trading state changed" and x["state"] == "halted":
            return i
    return None


def _decided_after_halt(cwd: Path) -> bool:
    lines = _audit(cwd, "20261123")
    halted = _halted_index(lines)
    return halted is not None and any(x["event"] == "risk decision" for x in lines[halted:])


def _assert_opens_refused_closes_pass(decisions: list[tuple[str, dict[str, Any]]]) -> None:
    for effect, d in decisions:
        if effect == "open":
            assert not d["approved"], d
            assert d["reason"] in OPENING_REJECTS, d
        else:
            assert d["reason"] not in OPENING_REJECTS, d


def test_sigusr1_halts_a_running_daemon_and_the_halt_outlives_restarts_until_resume(
    tmp_path: Path,
) -> None:
    proc = subprocess.Popen(
        [*RUN, "--speed", "200", "--sessions", "2", "--start-date", "2026-11-23"],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        contexts = tmp_path / "runs" / "2026-11-23" / "SPY_context.jsonl"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (
            contexts.exists() and contexts.stat().st_size > 0
        ):
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.05)
        assert contexts.exists(), "the daemon never wrote a context line"
        proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and _halted_index(_audit(tmp_path, "20261123")) is None:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.05)
        # Wait for the next decision after the halt (one every 30 simulated minutes, ~9 s here).
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not _decided_after_halt(tmp_path):
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "final state     halted" in out
    first = _audit(tmp_path, "20261123")
    halted_at = _halted_index(first)
    assert halted_at is not None, "the audit log has no halted state change"
    assert first[halted_at]["reason"] == "SIGUSR1"
    after = [(e, d) for e, d in _decisions(first) if first.index(d) > halted_at]
    assert any(effect == "open" for effect, _ in after)
    _assert_opens_refused_closes_pass(after)
    assert (tmp_path / "state" / "halt.json").exists()

    # A restart in the same state directory starts HALTED: every opening order is refused.
    second = _gnosisd(tmp_path, "run", "--start-date", "2026-11-25")
    assert second.returncode == 0, second.stderr
    assert "final state     halted" in second.stdout
    lines = _audit(tmp_path, "20261125")
    assert _halted_index(lines) is not None
    decisions = _decisions(lines)
    assert any(effect == "open" for effect, _ in decisions)
    _assert_opens_refused_closes_pass(decisions)

    resumed = _gnosisd(tmp_path, "resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "latched halt: cleared" in resumed.stdout
    assert not (tmp_path / "state" / "halt.json").exists()

    third = _gnosisd(tmp_path, "run", "--start-date", "2026-11-30")
    assert third.returncode == 0, third.stderr
    assert "final state     active" in third.stdout
    assert any(d["approved"] and e == "open" for e, d in _decisions(_audit(tmp_path, "20261130")))


def test_gnosisd_halt_before_a_run_refuses_every_opening_order(tmp_path: Path) -> None:
    halted = _gnosisd(tmp_path, "halt", "--reason", "pre-open check failed")
    assert halted.returncode == 0, halted.stderr
    assert "state/KILL" in halted.stdout
    run = _gnosisd(tmp_path, "run", "--start-date", "2026-11-24")
    assert run.returncode == 0, run.stderr
    decisions = _decisions(_audit(tmp_path, "20261124"))
    assert any(effect == "open" for effect, _ in decisions)
    _assert_opens_refused_closes_pass(decisions)
    assert "final state     halted" in run.stdout
