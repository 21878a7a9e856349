"""Raw SVI fits: recovery of known smiles, constraints by construction, butterfly penalty,
agreement with scipy's least squares, warm starts."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import least_squares

from gnosisd.quant.svi import LEE_MAX_SLOPE, durrleman_g, fit_svi, svi_total_variance

# Five slices with known raw SVI parameters (a, b, ρ, m, σ), equity-like skew, T 1 week to 1 year.
TRUE = np.array(
    [
        [0.0008, 0.030, -0.55, 0.010, 0.040],
        [0.0030, 0.060, -0.60, 0.020, 0.080],
        [0.0100, 0.090, -0.65, 0.030, 0.120],
        [0.0180, 0.110, -0.70, 0.050, 0.180],
        [0.0300, 0.130, -0.70, 0.060, 0.250],
    ]
)
T = np.array([7, 30, 60, 180, 365]) / 365.0


def synthetic(n: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    k = np.sort(rng.uniform(-1.0, 1.0, (len(T), n)), axis=1) * (2.5 * np.sqrt(T))[:, None]
    w = np.stack([svi_total_variance(k[i], *TRUE[i]) for i in range(len(T))])
    return k, w


def test_recovers_known_parameters_from_exact_smiles() -> None:
    k, w = synthetic()
    fit = fit_svi(k, w, np.ones_like(k))
    got = np.stack([fit.a, fit.b, fit.rho, fit.m, fit.sigma], axis=1)
    np.testing.assert_allclose(got, TRUE, rtol=1e-7, atol=1e-9)
    assert np.all(fit.rmse < 1e-10)
    assert np.all(fit.butterfly_ok)
    assert fit.iterations < 30


def test_fits_noisy_smiles_to_the_noise_level() -> None:
    k, w = synthetic(n=120, seed=1)
    noisy = w * (1.0 + 0.002 * np.random.default_rng(2).standard_normal(w.shape))
    fit = fit_svi(k, noisy, np.ones_like(k))
    # Residual RMS near the noise (0.2 % of w) and the smile itself within a fraction of it.
    assert np.all(fit.rmse < 0.003 * w.mean(axis=1))
    assert np.all(np.abs(fit.total_variance(k) - w) < 0.004 * w.max(axis=1)[:, None])


def test_matches_scipy_least_squares_on_the_same_objective() -> None:
    k, w = synthetic(n=80, seed=3)
    noisy = w * (1.0 + 0.01 * np.random.default_rng(4).standard_normal(w.shape))
    weight = np.exp(-0.5 * (k / np.sqrt(T)[:, None]) ** 2)  # vega-like weights
    fit = fit_svi(k, noisy, weight)
    for i in range(len(T)):
        sw = np.sqrt(weight[i])

        def resid(p: np.ndarray, i: int = i, sw: np.ndarray = sw) -> np.ndarray:
            return sw * (svi_total_variance(k[i], *p) - noisy[i])

        ref = least_squares(
            resid,
            TRUE[i],
            bounds=([-1.0, 0.0, -0.999, -2.0, 1e-4], [1.0, 2.0, 0.999, 2.0, 5.0]),
            xtol=1e-14,
            ftol=1e-14,
        )
        ours = resid(np.array([fit.a[i], fit.b[i], fit.rho[i], fit.m[i], fit.sigma[i]]))
        # Same optimum: our cost is no more than 0.1 % above scipy's.
        assert (ours**2).sum() <= (ref.fun**2).sum() * 1.001 + 1e-20


@settings(max_examples=60, deadline=None)
@given(
    level=st.floats(0.001, 0.2),
    slope=st.floats(-0.5, 0.5),
    curve=st.floats(0.0, 3.0),
    noise=st.floats(0.0, 0.3),
    seed=st.integers(0, 1000),
)
def test_every_fit_satisfies_the_constraints_by_construction(
    level: float, slope: float, curve: float, noise: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    k = np.sort(rng.uniform(-0.6, 0.6, (2, 40)), axis=1)
    w = level * (1.0 + slope * k + curve * k * k) * (1.0 + noise * rng.standard_normal(k.shape))
    fit = fit_svi(k, np.abs(w), np.ones_like(k))
    assert np.all(fit.b >= 0.0) and np.all(np.abs(fit.rho) < 1.0) and np.all(fit.sigma > 0.0)
    assert np.all(fit.a + fit.b * fit.sigma * np.sqrt(1.0 - fit.rho**2) >= 0.0)  # min w >= 0
    assert np.all(fit.b * (1.0 + np.abs(fit.rho)) <= LEE_MAX_SLOPE + 1e-12)  # Lee
    lo, hi = k.min(axis=1), k.max(axis=1)
    assert np.all((fit.m >= lo - 1e-12) & (fit.m <= hi + 1e-12))


def test_penalises_butterfly_arbitrage_present_in_the_quotes() -> None:
    # Gatheral & Jacquier (2014), Example 3.1: raw SVI with butterfly arbitrage (g < 0 near k=0.6).
    bad = (-0.0410, 0.1331, 0.3060, 0.3586, 0.4153)
    k = np.linspace(-1.5, 1.5, 61)[None, :]
    w = svi_total_variance(k, *bad)
    assert np.min(durrleman_g(k, *(np.array([p]) for p in bad))) < 0.0
    fit = fit_svi(k, w, np.ones_like(k))
    assert bool(fit.butterfly_ok[0])
    # g >= 0 at the 41 check points; between them (a fine grid) it may dip by a hair.
    fine = np.linspace(-1.8, 1.8, 721)[None, :]  # the checked range: quotes widened by 20 %
    assert np.min(durrleman_g(fine, fit.a, fit.b, fit.rho, fit.m, fit.sigma)) >= -1e-4
    # The quotes themselves are not arbitrage-free, so the fit departs from them, but not far.
    assert np.max(np.abs(fit.total_variance(k) - w)) < 0.15 * w.mean()


def test_leaves_slices_with_too_few_points_unfitted() -> None:
    k, w = synthetic(n=20)
    weight = np.ones_like(k)
    weight[1, 4:] = 0.0  # only four quotes left in slice 1
    fit = fit_svi(k, w, weight)
    assert np.isnan(fit.a[1]) and np.isnan(fit.total_variance(np.zeros(len(T)))[1])
    assert np.all(np.isfinite(fit.a[[0, 2, 3, 4]]))
    assert fit.n_points[1] == 4


def test_warm_start_reaches_the_same_fit_in_fewer_iterations() -> None:
    k, w = synthetic(n=80, seed=5)
    noisy = w * (1.0 + 0.003 * np.random.default_rng(6).standard_normal(w.shape))
    cold = fit_svi(k, noisy, np.ones_like(k))
    moved = noisy * 1.002
    warm = fit_svi(k, moved, np.ones_like(k), start=cold)
    again = fit_svi(k, moved, np.ones_like(k))
    assert warm.iterations <= again.iterations
    np.testing.assert_allclose(warm.total_variance(k), again.total_variance(k), rtol=1e-5)


@pytest.mark.parametrize("shape", [(5,), (5, 3)])
def test_total_variance_evaluates_per_slice(shape: tuple[int, ...]) -> None:
    k, w = synthetic()
    fit = fit_svi(k, w, np.ones_like(k))
    pts = np.linspace(-0.1, 0.1, int(np.prod(shape))).reshape(shape)
    out = fit.total_variance(pts)
    expected = np.stack([svi_total_variance(pts[i], *TRUE[i]) for i in range(5)])
    np.testing.assert_allclose(out, expected, rtol=1e-7)
