"""`gnosisd halt` / `gnosisd resume`: the kill file and the latched-halt document, via main()."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import orjson
import pytest

from gnosisd.cli import main


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("GNOSIS_KILL_SWITCH", "GNOSIS_STATE_DIR"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "cfg.yaml"
    path.write_text(
        f"runtime:\n  state_dir: {tmp_path / 'st'}\nrisk:\n  kill_file: {tmp_path / 'st' / 'STOP'}\n"
    )
    return path


def test_halt_writes_the_kill_file_and_latches_with_reason_and_utc_time(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["halt", "--config", str(config), "--reason", "vol spike"]) == 0
    out = capsys.readouterr().out
    kill = tmp_path / "st" / "STOP"
    assert f"wrote kill file {kill}" in out
    lines = dict(line.split("=", 1) for line in kill.read_text().splitlines())
    assert lines["reason"] == "vol spike"
    assert datetime.fromisoformat(lines["halted_at"]).utcoffset() is not None
    assert lines["halted_at"].endswith("+00:00")
    doc = orjson.loads((tmp_path / "st" / "halt.json").read_bytes())
    assert doc["reason"] == "gnosisd halt: vol spike"


def test_resume_removes_the_kill_file_and_the_latch(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["halt", "--config", str(config)]) == 0
    capsys.readouterr()
    assert main(["resume", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "removed" in out
    assert "latched halt: cleared" in out
    assert not (tmp_path / "st" / "STOP").exists()
    assert not (tmp_path / "st" / "halt.json").exists()


def test_resume_without_a_halt_says_so_and_exits_0(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["resume", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "was not present" in out
    assert "latched halt: was not set" in out
