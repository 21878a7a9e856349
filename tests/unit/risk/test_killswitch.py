"""Kill-switch sources: config flag, kill file, environment flag, runtime flag."""

from __future__ import annotations

from pathlib import Path

import pytest

from gnosisd.core.config import RiskConfig
from gnosisd.risk.killswitch import KillSwitch


def test_inactive_when_no_source_is_active(tmp_path: Path) -> None:
    assert KillSwitch.from_config(RiskConfig(kill_file=tmp_path / "KILL"), {}).active() is None


def test_config_flag_kills(tmp_path: Path) -> None:
    ks = KillSwitch.from_config(RiskConfig(kill_switch=True, kill_file=tmp_path / "KILL"))
    assert ks.active() == "config risk.kill_switch is true"


@pytest.mark.parametrize(("value", "killed"), [("true", True), ("1", True), ("false", False)])
def test_env_flag_is_read_at_each_call(tmp_path: Path, value: str, killed: bool) -> None:
    env: dict[str, str] = {}
    ks = KillSwitch.from_config(RiskConfig(kill_file=tmp_path / "KILL"), env)
    assert ks.active() is None
    env["GNOSIS_KILL_SWITCH"] = value
    assert (ks.active() is not None) is killed


def test_kill_file_is_checked_on_each_call(tmp_path: Path) -> None:
    ks = KillSwitch(kill_file=tmp_path / "KILL")
    (tmp_path / "KILL").write_text("")
    assert ks.active() == f"kill file {tmp_path / 'KILL'} exists"
    (tmp_path / "KILL").unlink()
    assert ks.active() is None


def test_runtime_kill_is_sticky_until_cleared() -> None:
    ks = KillSwitch()
    ks.kill("SIGUSR1")
    assert ks.active() == "runtime kill: SIGUSR1"
    ks.clear()
    assert ks.active() is None
