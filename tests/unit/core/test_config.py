from pathlib import Path

import pytest

from gnosisd.core.config import load_settings, masked_dump
from gnosisd.core.errors import ConfigError

REPO_CONFIG = Path(__file__).resolve().parents[3] / "config" / "config.yaml"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "GNOSIS_LIVE_TRADING_ENABLED",
        "GNOSIS_MAX_TRADE_RISK_PCT",
        "GNOSIS_MAX_DAILY_LOSS",
        "GNOSIS_LOG_LEVEL",
        "GNOSIS_KILL_SWITCH",
        "ALPACA_API_KEY",
        "ALPACA_SECRET_KEY",
        "ALPACA_BASE_URL",
    ):
        monkeypatch.delenv(name, raising=False)


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "config.yaml"
    p.write_text(text)
    return p


def test_repository_config_is_valid_and_has_the_runbook_defaults():
    s = load_settings(REPO_CONFIG, env_file=None)
    assert s.risk.max_trade_risk_pct == 0.02
    assert s.risk.max_daily_loss == 5000.0
    assert s.execution.slippage_pct == 0.001
    assert s.hedge.gamma_squeeze_threshold == 1_000_000.0
    assert not s.live_allowed()


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("GNOSIS_MAX_DAILY_LOSS", "500")
    monkeypatch.setenv("GNOSIS_MAX_TRADE_RISK_PCT", "0.01")
    monkeypatch.setenv("GNOSIS_LOG_LEVEL", "WARNING")
    s = load_settings(_write(tmp_path, "risk:\n  max_daily_loss: 5000\n"), env_file=None)
    assert s.risk.max_daily_loss == 500.0
    assert s.risk.max_trade_risk_pct == 0.01
    assert s.runtime.log_level == "WARNING"


def test_live_needs_both_the_env_flag_and_the_config_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("GNOSIS_LIVE_TRADING_ENABLED", "true")
    assert not load_settings(_write(tmp_path, ""), env_file=None).live_allowed()
    cfg = _write(tmp_path, "execution:\n  enable_live_trading: true\n")
    assert load_settings(cfg, env_file=None).live_allowed()
    monkeypatch.setenv("GNOSIS_LIVE_TRADING_ENABLED", "false")
    assert not load_settings(cfg, env_file=None).live_allowed()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "execution:\n  slippage_pct: 2\n",
            "execution.slippage_pct must be between 0 (inclusive) and 0.1 (inclusive), got 2",
        ),
        (
            "execution:\n  slipage_pct: 0.01\n",
            "unknown key execution.slipage_pct; allowed keys: initial_cash, slippage_pct",
        ),
        ("risk:\n  max_daily_loss: -5\n", "risk.max_daily_loss must be > 0, got -5"),
        ("runtime:\n  log_level: LOUD\n", "runtime.log_level must be one of 'DEBUG'"),
        ("bogus: 1\n", "unknown key bogus"),
        ("- a\n- b\n", "the top level must be a mapping"),
        ("alpaca:\n  api_key: PKEXAMPLE\n", "alpaca.api_key must not be in the file"),
        (
            "execution:\n  halt_policy: flatten\n  alpaca_suspend_on_halt: true\n",
            "execution: halt_policy flatten and alpaca_suspend_on_halt true cannot both be set",
        ),
    ],
)
def test_invalid_config_names_the_key_the_value_and_the_allowed_range(
    tmp_path: Path, text: str, expected: str
):
    with pytest.raises(ConfigError) as info:
        load_settings(_write(tmp_path, text), env_file=None)
    message = str(info.value)
    assert expected in message
    assert "\n" not in message


def test_invalid_environment_value_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("GNOSIS_MAX_DAILY_LOSS", "-1")
    with pytest.raises(ConfigError, match="environment variable GNOSIS_MAX_DAILY_LOSS"):
        load_settings(_write(tmp_path, ""), env_file=None)


def test_keys_come_from_the_env_file_and_are_masked(tmp_path: Path):
    env = tmp_path / ".env"
    env.write_text("ALPACA_API_KEY=PKFAKEFAKEFAKE\nALPACA_SECRET_KEY=shhh-very-secret\n")
    s = load_settings(_write(tmp_path, ""), env_file=env)
    assert s.alpaca.api_key is not None
    assert s.alpaca.api_key.get_secret_value() == "PKFAKEFAKEFAKE"
    dumped = str(masked_dump(s))
    assert "PKFAKEFAKEFAKE" not in dumped and "shhh-very-secret" not in dumped
    assert "********" in dumped


def test_missing_explicit_file_is_an_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "nope.yaml", env_file=None)
