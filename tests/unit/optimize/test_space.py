"""The search space: documented keys of the configuration, suggested within their ranges."""

from __future__ import annotations

import optuna
import pytest

from gnosisd.core.config import Settings
from gnosisd.optimize.objective import score
from gnosisd.optimize.space import SPACE, active_space, has_key, suggest
from gnosisd.runtime.backtest import apply_overrides


def test_every_tuned_key_exists_and_each_group_of_the_issue_is_covered() -> None:
    tuned, skipped = active_space(Settings())
    assert all(has_key(Settings(), p.key) for p in tuned)
    assert {p.group for p in tuned} >= {"engines", "composer", "strategy"}
    assert {p.key for p in skipped} == {p.key for p in SPACE if p.group == "exits"} - {
        p.key for p in tuned
    }


def test_suggested_points_are_in_range_and_valid_settings() -> None:
    tuned, _ = active_space(Settings())
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    for _ in range(20):
        trial = study.ask()
        point = suggest(trial, tuned)
        for p in tuned:
            assert p.low <= point[p.key] <= p.high
            if p.kind == "int":
                assert isinstance(point[p.key], int)
        apply_overrides(Settings(), point)  # raises if any value is invalid
        study.tell(trial, 0.0)


def test_the_score_is_sharpe_minus_the_drawdown_penalty() -> None:
    flat = [100.0] * 10
    assert score(100.0, flat) == 0.0
    up_down = [101.0, 99.0, 102.0, 98.0, 103.0]
    from gnosisd.runtime.performance import daily_returns, max_drawdown, sharpe

    expected = sharpe(daily_returns(100.0, up_down)) - 2.0 * max_drawdown(100.0, up_down)
    assert score(100.0, up_down) == pytest.approx(expected)
    assert score(100.0, up_down, dd_penalty=0.0) > score(100.0, up_down)
