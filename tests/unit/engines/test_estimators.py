"""Rolling windows and realised-vol estimators against direct numpy computations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gnosisd.engines.estimators import (
    BarVolEstimators,
    RollingMean,
    RollingRegression,
    RollingVar,
)


def test_rolling_mean_and_var_match_numpy_over_the_last_window() -> None:
    rng = np.random.default_rng(1)
    xs = rng.normal(0.0, 1e-3, 1000)
    mean, var = RollingMean(37), RollingVar(37)
    for i, x in enumerate(xs):
        mean.push(float(x))
        var.push(float(x))
        tail = xs[max(0, i - 36) : i + 1]
        assert mean.mean() == pytest.approx(float(np.mean(tail)), rel=1e-9, abs=1e-15)
        if tail.size >= 2:
            assert var.var() == pytest.approx(float(np.var(tail, ddof=1)), rel=1e-7)
    assert len(mean) == len(var) == 37  # memory is the window, not the history


def test_rolling_regression_slope_matches_least_squares() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(0, 1000, 300)
    y = 2e-5 * x + rng.normal(0, 0.01, 300)
    reg = RollingRegression(50)
    for a, b in zip(x, y, strict=True):
        reg.push(float(a), float(b))
    slope = np.polyfit(x[-50:], y[-50:], 1)[0]
    assert reg.slope() == pytest.approx(slope, rel=1e-9)
    flat = RollingRegression(5)
    for _ in range(5):
        flat.push(1.0, 2.0)
    assert math.isnan(flat.slope())  # no variation in x


def ohlc_path(n: int, sigma_bar: float, seed: int = 0) -> list[tuple[float, float, float, float]]:
    """Bars from a driftless GBM sampled 100 times per bar (open = previous close)."""
    rng = np.random.default_rng(seed)
    price = 100.0
    out = []
    for _ in range(n):
        steps = rng.normal(0.0, sigma_bar / 10.0, 100)
        path = price * np.exp(np.cumsum(steps))
        o, c = price, float(path[-1])
        out.append((o, max(o, float(path.max())), min(o, float(path.min())), c))
        price = c
    return out


def test_estimators_agree_with_the_true_vol_of_a_simulated_path() -> None:
    sigma_bar = 0.001
    est = BarVolEstimators(window=4000, periods_per_year=1.0)
    for o, h, lo, c in ohlc_path(4000, sigma_bar):
        est.push(0, o, h, lo, c)
    # Range estimators are biased low by discrete sampling (100 steps a bar), by a few percent.
    assert est.close_to_close() == pytest.approx(sigma_bar, rel=0.05)
    assert est.parkinson() == pytest.approx(sigma_bar, rel=0.12)
    assert est.garman_klass() == pytest.approx(sigma_bar, rel=0.12)
    assert est.rogers_satchell() == pytest.approx(sigma_bar, rel=0.12)
    assert est.yang_zhang() == pytest.approx(sigma_bar, rel=0.12)


def test_estimators_match_their_formulas_on_three_bars() -> None:
    bars = [(100.0, 101.0, 99.5, 100.5), (100.6, 101.2, 100.1, 100.2), (100.2, 100.9, 99.8, 100.8)]
    est = BarVolEstimators(window=10, periods_per_year=252.0)
    for o, h, lo, c in bars:
        est.push(0, o, h, lo, c)
    hl = np.array([math.log(h / lo) for _, h, lo, _ in bars])
    co = np.array([math.log(c / o) for o, _, _, c in bars])
    rs = np.array(
        [
            math.log(h / c) * math.log(h / o) + math.log(lo / c) * math.log(lo / o)
            for o, h, lo, c in bars
        ]
    )
    jump = np.array([math.log(bars[i][0] / bars[i - 1][3]) for i in (1, 2)])
    cc = np.array([math.log(bars[i][3] / bars[i - 1][3]) for i in (1, 2)])
    ann = math.sqrt(252.0)
    assert est.parkinson() == pytest.approx(math.sqrt(np.mean(hl**2) / (4 * math.log(2))) * ann)
    gk = np.mean(0.5 * hl**2 - (2 * math.log(2) - 1) * co**2)
    assert est.garman_klass() == pytest.approx(math.sqrt(gk) * ann)
    assert est.rogers_satchell() == pytest.approx(math.sqrt(np.mean(rs)) * ann)
    k = 0.34 / (1.34 + 4 / 2)
    yz = np.var(jump, ddof=1) + k * np.var(co, ddof=1) + (1 - k) * np.mean(rs)
    assert est.yang_zhang() == pytest.approx(math.sqrt(yz) * ann)
    assert est.close_to_close() == pytest.approx(np.std(cc, ddof=1) * ann)


def test_returns_across_sessions_are_left_out() -> None:
    est = BarVolEstimators(window=10, periods_per_year=1.0)
    est.push("mon", 100, 100, 100, 100)
    est.push("tue", 120, 120, 120, 120)  # overnight gap: not an intraday return
    est.push("tue", 120, 121, 119, 121)
    assert math.isnan(est.close_to_close())  # a single same-day return has no sample variance
    est.push("tue", 121, 122, 120, 120)
    assert est.close_to_close() == pytest.approx(
        abs(math.log(121 / 120) - math.log(120 / 121)) / math.sqrt(2)
    )


def test_inconsistent_bars_are_ignored() -> None:
    est = BarVolEstimators(window=10, periods_per_year=1.0)
    est.push(0, 100, 99, 101, 100)  # high below low
    est.push(0, 0, 1, 0, 1)  # non-positive price
    assert math.isnan(est.parkinson())
