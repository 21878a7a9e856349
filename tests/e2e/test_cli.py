"""The gnosisd command as an operator runs it: subprocesses, signals, exit codes, outputs."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GNOSIS_", "ALPACA_"))}
    env.update(extra)
    return env


def gnosisd(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gnosisd.cli", *args],
        cwd=cwd,
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_config_check_prints_the_effective_config_with_secrets_masked(tmp_path: Path):
    proc = gnosisd(
        tmp_path,
        "config",
        "check",
        "--config",
        str(REPO / "config" / "config.yaml"),
        ALPACA_API_KEY="PKTESTKEYVALUE123",
        ALPACA_SECRET_KEY="not-a-real-secret-value",
        GNOSIS_MAX_DAILY_LOSS="750",
    )
    assert proc.returncode == 0, proc.stderr
    assert "max_daily_loss: 750.0" in proc.stdout
    assert "PKTESTKEYVALUE123" not in proc.stdout
    assert "not-a-real-secret-value" not in proc.stdout
    assert "api_key: '********'" in proc.stdout


def test_invalid_config_exits_2_with_one_line_naming_key_value_and_range(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("execution:\n  slippage_pct: 2\n")
    for command in (["config", "check"], ["run"], ["paper"]):
        proc = gnosisd(tmp_path, *command, "--config", str(bad))
        assert proc.returncode == 2
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1
        assert "execution.slippage_pct" in lines[0]
        assert "got 2" in lines[0]
        assert "between 0 (inclusive) and 0.1 (inclusive)" in lines[0]
    assert not (tmp_path / "runs").exists()


def test_unavailable_feed_is_refused_clearly(tmp_path: Path):
    proc = gnosisd(tmp_path, "run", "--feed", "replay")
    assert proc.returncode == 2
    assert "supports --feed sim --broker sim and --feed alpaca" in proc.stderr
    no_keys = gnosisd(tmp_path, "run", "--feed", "alpaca", "--broker", "alpaca")
    assert no_keys.returncode == 2
    assert "ALPACA_API_KEY" in no_keys.stderr


def test_sigterm_stops_gracefully_with_exit_0_and_whole_journal_lines(tmp_path: Path):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gnosisd.cli",
            "run",
            "--speed",
            "300",
            "--sessions",
            "2",
            "--start-date",
            "2026-11-23",
        ],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        contexts = tmp_path / "runs" / "2026-11-23" / "SPY_context.jsonl"
        while time.monotonic() < deadline and not (
            contexts.exists() and contexts.stat().st_size > 2000
        ):
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.1)
        assert contexts.exists(), "the daemon never wrote a context line"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "stopped by signal" in out
    lines = [
        line for p in (tmp_path / "runs").glob("*/*.jsonl") for line in p.read_bytes().splitlines()
    ]
    assert lines
    for line in lines:
        orjson.loads(line)
    pipeline = b"".join(p.read_bytes() for p in (tmp_path / "logs").glob("pipeline_*.log"))
    assert b"shutdown requested" in pipeline
    assert b"SIGTERM" in pipeline


def test_paper_dry_run_journals_ideas_and_no_orders(tmp_path: Path):
    proc = gnosisd(tmp_path, "paper", "--date", "2026-11-24", "--output-dir", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    assert "SPY paper trading complete (dry run)" in proc.stdout
    day = tmp_path / "out" / "2026-11-24"
    assert (day / "SPY_context.jsonl").exists()
    assert not (day / "SPY_orders.jsonl").exists()
    pipeline = b"".join(p.read_bytes() for p in (tmp_path / "logs").glob("pipeline_*.log"))
    assert b'"event":"SPY paper trading complete"' in pipeline
    contexts = [orjson.loads(x) for x in (day / "SPY_context.jsonl").read_bytes().splitlines()]
    assert contexts[-1]["as_of"] <= "2026-11-24T20:30:00+00:00"  # no later than 15:30 New York


def test_paper_execute_through_the_prototype_script_sends_orders(tmp_path: Path):
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "run_daily_spy_paper.py"),
            "--execute",
            "--date",
            "2026-11-24",
            "--capital",
            "50000",
            "--underlying-price",
            "460",
            "--output-dir",
            str(tmp_path / "runs"),
        ],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "SPY paper trading complete (executed)" in proc.stdout
    trades = [
        orjson.loads(x)
        for x in (tmp_path / "runs" / "2026-11-24" / "SPY_trades.jsonl").read_bytes().splitlines()
    ]
    orders = (tmp_path / "runs" / "2026-11-24" / "SPY_orders.jsonl").read_bytes().splitlines()
    assert trades
    assert orders
    # --underlying-price sets the simulated market's start: strikes near 460, not the default.
    strikes = [float(leg["strike"]) for t in trades for leg in t["trade"]["legs"]]
    assert all(300 < k < 650 for k in strikes)
    assert abs(sum(strikes) / len(strikes) - 460) < 80


def test_daemon_notifies_systemd_ready_and_stopping(tmp_path: Path):
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(0.5)
    try:
        proc = gnosisd(
            tmp_path,
            "run",
            "--start-date",
            "2026-11-24",
            NOTIFY_SOCKET=str(sock_path),
            WATCHDOG_USEC="2000000",
        )
        assert proc.returncode == 0, proc.stderr
        messages = []
        while True:
            try:
                messages.append(sock.recv(4096).decode())
            except TimeoutError:
                break
    finally:
        sock.close()
    assert "READY=1" in messages
    assert "WATCHDOG=1" in messages
    assert messages[-1] == "STOPPING=1"
    assert messages.index("READY=1") < messages.index("STOPPING=1")


def test_run_applies_the_optimisers_hyperparameter_file_per_symbol(tmp_path: Path):
    from gnosisd.optimize.params import save

    strict = tmp_path / "hyper.yaml"
    save(strict, "SPY", {"trade_agent.min_confidence": 1.0}, [], {"note": "test"})
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    base = gnosisd(tmp_path / "a", "run", "--start-date", "2026-11-24")
    tuned = gnosisd(tmp_path / "b", "run", "--start-date", "2026-11-24", "--params", str(strict))
    assert base.returncode == 0, base.stderr
    assert tuned.returncode == 0, tuned.stderr
    # Without the file the default min_confidence lets ideas through; with it none passes.
    assert "ideas           0" not in base.stdout
    assert "ideas           0" in tuned.stdout
    missing = gnosisd(tmp_path, "run", "--params", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2
    assert "no such hyperparameter file" in missing.stderr
