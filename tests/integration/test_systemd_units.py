"""The shipped systemd units pass `systemd-analyze verify` (via scripts/verify_systemd.sh)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "verify_systemd.sh"
UNIT_DIR = REPO / "deploy" / "systemd"

pytestmark = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed"
)


def _verify(unit_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if unit_dir is not None:
        env["GNOSIS_UNIT_DIR"] = str(unit_dir)
    return subprocess.run(
        ["bash", str(SCRIPT)], capture_output=True, text=True, env=env, check=False, timeout=60
    )


def test_shipped_units_verify_cleanly() -> None:
    result = _verify()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "verify_systemd: OK" in result.stdout


@pytest.mark.parametrize(
    ("unit", "old", "new", "complaint"),
    [
        ("gnosisd.service", "RestartSec=5", "RestartSec=five", "Failed to parse"),
        ("gnosisd-paper.timer", "Persistent=true", "Persistant=true", "Unknown key"),
        ("gnosisd-paper.timer", "15:30:00 America/New_York", "25:99 Mars/Base", "OnCalendar"),
    ],
)
def test_fails_on_a_broken_unit(
    tmp_path: Path, unit: str, old: str, new: str, complaint: str
) -> None:
    for src in UNIT_DIR.iterdir():
        shutil.copy(src, tmp_path / src.name)
    broken = tmp_path / unit
    text = broken.read_text()
    assert old in text
    broken.write_text(text.replace(old, new))

    result = _verify(tmp_path)
    assert result.returncode != 0
    assert complaint in result.stdout + result.stderr


def test_daemon_unit_declares_notify_watchdog_and_hardening() -> None:
    text = (UNIT_DIR / "gnosisd.service").read_text()
    for line in [
        "Type=notify",
        "ExecStart=/opt/gnosisd/.venv/bin/gnosisd run --config /etc/gnosisd/config.yaml",
        "WorkingDirectory=/var/lib/gnosisd",
        "Restart=on-failure",
        "WatchdogSec=60",
        "TimeoutStopSec=15",
        "KillSignal=SIGTERM",
        "EnvironmentFile=-/etc/gnosisd/gnosisd.env",
        "User=gnosisd",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/gnosisd/runs /var/lib/gnosisd/logs /var/lib/gnosisd/state",
    ]:
        assert line in text.splitlines(), line


def test_paper_timer_fires_weekdays_at_1530_new_york() -> None:
    timer = (UNIT_DIR / "gnosisd-paper.timer").read_text().splitlines()
    assert "OnCalendar=Mon..Fri *-*-* 15:30:00 America/New_York" in timer
    assert "Persistent=true" in timer
    service = (UNIT_DIR / "gnosisd-paper.service").read_text().splitlines()
    assert "Type=oneshot" in service
    (exec_start,) = [line for line in service if line.startswith("ExecStart=")]
    assert " paper --execute --broker sim" in exec_start
