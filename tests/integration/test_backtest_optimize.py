"""`gnosisd optimize`: TPE over backtests, pruning on intermediate equity, a reproducible study,
Kelly refinement and the hyperparameter file the backtest and the daemon load per symbol."""

from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path

import optuna
import pytest
import yaml

from gnosisd.cli import main
from gnosisd.core.config import Settings
from gnosisd.optimize import params
from gnosisd.optimize.study import OptimizeRequest, _objective, _setup, masked, run_trials
from gnosisd.runtime.backtest import backtest_settings

WINDOW = ["--from", "2017-01-03", "--to", "2017-02-14"]


def request(tmp_path: Path, name: str, **changes: object) -> OptimizeRequest:
    req = OptimizeRequest(
        symbol="SPY",
        start=date(2017, 1, 3),
        end=date(2017, 2, 14),
        holdout=0.25,
        feed="replay",
        data="arch:sp500",
        seed=3,
        trials=2,
        n_jobs=1,
        study=name,
        storage=f"sqlite:///{tmp_path / (name + '.db')}",
        params_out=tmp_path / f"{name}.yaml",
        workdir=tmp_path / name,
        progress=False,
    )
    return dataclasses.replace(req, **changes)  # type: ignore[arg-type]


def settings(tmp_path: Path) -> Settings:
    return backtest_settings(Settings(), tmp_path / "cfg")


def test_optimize_writes_best_params_and_kelly_per_symbol_with_a_held_out_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump({"runtime": {"state_dir": str(tmp_path / "state")}}))
    code = main(["optimize", "--config", str(cfg), "--trials", "2", "--seed", "3", *WINDOW])
    assert code == 0
    out = capsys.readouterr().out
    assert "best trial" in out and "hold-out" in out and "baseline" in out
    path = tmp_path / "state" / "hyperparams.yaml"
    hp = params.load(path, "SPY")
    study = optuna.load_study(
        study_name="gnosisd-SPY", storage=f"sqlite:///{tmp_path / 'state' / 'optuna.db'}"
    )
    assert len(study.trials) == 2
    assert hp.params == {k: v for k, v in study.best_trial.params.items()}
    assert hp.meta["train"] == ["2017-01-03", "2017-02-02"]
    assert hp.meta["holdout"] == ["2017-02-03", "2017-02-14"]
    assert hp.meta["holdout_metrics"]["sessions"] == 8
    hp.settings(Settings())  # the file's keys are valid configuration


def test_the_same_seed_gives_the_same_trials_and_scores(tmp_path: Path) -> None:
    runs = [run_trials(settings(tmp_path), request(tmp_path, name))[1] for name in ("a", "b")]
    a, b = ([(t.params, t.value) for t in s.trials] for s in runs)
    assert len(a) == 2 and a == b
    assert a[0][0] != a[1][0]  # two different points of the space were tried


def test_a_worker_refuses_a_study_made_for_another_window(tmp_path: Path) -> None:
    run_trials(settings(tmp_path), request(tmp_path, "s", trials=0))
    other = request(tmp_path, "s", trials=0, end=date(2017, 3, 31))
    from gnosisd.core.errors import ConfigError

    with pytest.raises(ConfigError, match="created for other inputs"):
        run_trials(settings(tmp_path), other)


def test_the_pruner_stops_a_trial_early_on_its_intermediate_equity(tmp_path: Path) -> None:
    req = request(tmp_path, "p")
    setup = _setup(settings(tmp_path), req)
    objective = _objective(setup, req)
    study = optuna.create_study(
        direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=1e9)
    )
    study.optimize(objective, n_trials=1)
    (trial,) = study.trials
    assert trial.state == optuna.trial.TrialState.PRUNED
    # fed with the running score of the equity, and stopped at the first report
    assert list(trial.intermediate_values) == [len(setup.train) // 10]


def test_storage_urls_are_printed_without_their_password() -> None:
    url = "postgresql+psycopg2://gnosis:s3cret@db.example:5432/optuna"
    assert masked(url) == "postgresql+psycopg2://gnosis:***@db.example:5432/optuna"
    assert masked("sqlite:///state/optuna.db") == "sqlite:///state/optuna.db"
