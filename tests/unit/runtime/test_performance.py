"""Backtest performance figures against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gnosisd.runtime.performance import (
    cagr,
    daily_returns,
    drawdowns,
    max_drawdown,
    sharpe,
    sortino,
)


def test_returns_start_from_the_initial_equity() -> None:
    assert daily_returns(100.0, [110.0, 99.0]) == pytest.approx([0.10, -0.10])


def test_sharpe_and_sortino_are_annualised_with_root_252() -> None:
    r = np.array([0.01, -0.005, 0.02, 0.0, -0.01])
    assert sharpe(r) == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(252))
    downside = math.sqrt(np.mean(np.minimum(r, 0) ** 2))
    assert sortino(r) == pytest.approx(r.mean() / downside * math.sqrt(252))
    assert sharpe(np.zeros(5)) == 0.0 and sortino(np.full(5, 0.01)) == 0.0


def test_drawdown_is_measured_from_the_running_peak_including_the_start() -> None:
    equity = [90.0, 120.0, 96.0, 130.0]
    assert drawdowns(100.0, equity) == pytest.approx([0.10, 0.0, 0.20, 0.0])
    assert max_drawdown(100.0, equity) == pytest.approx(0.20)
    assert max_drawdown(100.0, []) == 0.0


def test_cagr_compounds_over_trading_days() -> None:
    assert cagr(100.0, 121.0, 504) == pytest.approx(0.10)
    assert cagr(100.0, 0.0, 10) == -1.0
