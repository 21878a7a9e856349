"""The hyperparameter file: per-symbol keys and Kelly table, written atomically and read back."""

from __future__ import annotations

from pathlib import Path

import pytest

from gnosisd.core.config import Settings
from gnosisd.core.enums import Regime, StrategyType
from gnosisd.core.errors import ConfigError
from gnosisd.optimize import params
from gnosisd.optimize.kelly import KellyEstimate


def test_a_symbols_section_round_trips_and_other_symbols_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "hp.yaml"
    cell = KellyEstimate("iron_condor", "range", 12, 0.6, 0.5, -0.2)
    params.save(path, "SPY", {"trade_agent.long_delta": 0.42}, [cell], {"study": {"name": "s"}})
    params.save(path, "QQQ", {"sentiment.momentum_lookback": 45}, [], {})
    spy = params.load(path, "spy")
    assert spy.params == {"trade_agent.long_delta": 0.42}
    assert spy.kelly == {(StrategyType.IRON_CONDOR, Regime.RANGE): -0.2}
    assert spy.meta["study"] == {"name": "s"}
    assert params.load(path, "QQQ").params == {"sentiment.momentum_lookback": 45}
    assert params.load(path, "IWM").params == {}
    assert path.read_text().startswith("# gnosisd hyperparameters")
    assert not list(tmp_path.glob(".*tmp"))


def test_the_loaded_keys_apply_to_settings_and_are_validated(tmp_path: Path) -> None:
    path = tmp_path / "hp.yaml"
    params.save(path, "SPY", {"trade_agent.long_delta": 0.42, "trade_agent.target_dte": 21}, [], {})
    tuned = params.load(path, "SPY").settings(Settings())
    assert tuned.trade_agent.long_delta == 0.42 and tuned.trade_agent.target_dte == 21
    params.save(path, "SPY", {"trade_agent.long_delta": 1.5}, [], {})
    with pytest.raises(ConfigError, match="invalid"):
        params.load(path, "SPY").settings(Settings())


def test_global_keys_are_refused_in_a_symbols_section(tmp_path: Path) -> None:
    path = tmp_path / "hp.yaml"
    path.write_text("version: 1\nsymbols:\n  SPY:\n    params:\n      risk.max_daily_loss: 1\n")
    with pytest.raises(ConfigError, match=r"risk.max_daily_loss are not per-symbol keys"):
        params.load(path, "SPY")


def test_an_unknown_strategy_in_the_kelly_table_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "hp.yaml"
    path.write_text(
        "version: 1\nsymbols:\n  SPY:\n    kelly:\n      moonshot:\n        range: {f: 0.1}\n"
    )
    with pytest.raises(ConfigError, match=r"kelly.moonshot.range"):
        params.load(path, "SPY")
