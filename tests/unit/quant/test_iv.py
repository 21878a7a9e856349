"""Implied volatility: exactness against the true vol and vollib, rejection of impossible prices,
bounded work, properties (monotonicity, parity), and the American inverse."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gnosisd.quant import american, bsm
from gnosisd.quant.iv import (
    IVReject,
    implied_vol,
    normalised_implied_total_vol,
    solve_implied_vol,
)


def random_contracts(n: int, seed: int) -> dict[str, np.ndarray]:
    """Moneyness K/S 0.5-2, T one day to two years, vol 5 %-200 %, r 0-10 %, q 0-5 %."""
    rng = np.random.default_rng(seed)
    return {
        "is_call": rng.random(n) < 0.5,
        "S": rng.uniform(20.0, 800.0, n),
        "m": np.exp(rng.uniform(math.log(0.5), math.log(2.0), n)),
        "T": np.exp(rng.uniform(math.log(1.0 / 365.0), math.log(2.0), n)),
        "r": rng.uniform(0.0, 0.10, n),
        "q": rng.uniform(0.0, 0.05, n),
        "sigma": np.exp(rng.uniform(math.log(0.05), math.log(2.0), n)),
    }


def test_recovers_the_vol_to_1e_8_wherever_vega_is_material_on_200k_random_contracts() -> None:
    c = random_contracts(200_000, seed=1)
    K = c["S"] * c["m"]
    args = (c["is_call"], c["S"], K, c["T"], c["r"], c["q"])
    price = bsm.price(c["is_call"], c["S"], K, c["T"], c["r"], c["q"], c["sigma"])
    res = solve_implied_vol(c["is_call"], price, *args[1:])
    vega = bsm.greeks(*args, c["sigma"]).vega
    # Material: a 1e-8 change of vol moves the price by more than 1e-14 of spot, i.e. above the
    # rounding of the price itself.
    material = vega >= 1e-6 * c["S"]
    assert material.sum() > 100_000
    err = np.abs(res.iv - c["sigma"])
    assert np.all(err[material] <= 1e-8), f"max error {np.nanmax(err[material]):.3g}"
    assert res.iterations <= 3
    # Where vega is not material the price still pins the vol only loosely; whatever is returned
    # must reprice the option to within the rounding of its price.
    solved = np.isfinite(res.iv) & ~material
    repriced = bsm.price(c["is_call"], c["S"], K, c["T"], c["r"], c["q"], res.iv)
    assert np.all(np.abs(repriced - price)[solved] <= 1e-12 * c["S"][solved])
    # Unsolved rows are the ones whose time value rounded to nothing.
    assert set(res.counts()) <= {"below_intrinsic"}


def test_agrees_with_vollib_lets_be_rational_on_thousands_of_random_contracts() -> None:
    vollib_iv = pytest.importorskip("vollib.black_scholes_merton.implied_volatility")
    c = random_contracts(3_000, seed=2)
    K = c["S"] * c["m"]
    price = bsm.price(c["is_call"], c["S"], K, c["T"], c["r"], c["q"], c["sigma"])
    vega = bsm.greeks(c["is_call"], c["S"], K, c["T"], c["r"], c["q"], c["sigma"]).vega
    ours = implied_vol(c["is_call"], price, c["S"], K, c["T"], c["r"], c["q"])
    ref = np.full(len(price), np.nan)
    for i in np.flatnonzero(vega >= 1e-6 * c["S"]):
        ref[i] = vollib_iv.implied_volatility(
            float(price[i]),
            float(c["S"][i]),
            float(K[i]),
            float(c["T"][i]),
            float(c["r"][i]),
            float(c["q"][i]),
            "c" if c["is_call"][i] else "p",
        )
    both = np.isfinite(ref)
    assert both.sum() > 1_500
    assert np.max(np.abs(ours[both] - ref[both])) <= 1e-8


def test_matches_hull_implied_volatility_example() -> None:
    # Hull, Options, Futures and Other Derivatives, ch. 15 (implied volatilities): a European call
    # with S=21, K=20, r=10 %, T=0.25 and price 1.875 has an implied volatility of 23.5 %.
    (iv,) = implied_vol(["call"], 1.875, 21.0, 20.0, 0.25, 0.10, 0.0)
    assert iv == pytest.approx(0.235, abs=0.0005)


def test_rejects_impossible_prices_with_a_reason_and_counts_them() -> None:
    S, K, T, r, q = 100.0, 100.0, 0.5, 0.05, 0.02
    intrinsic_call = S * math.exp(-q * T) - 90.0 * math.exp(-r * T)
    kinds = ["call", "call", "put", "call", "call", "put", "call", "call", "put"]
    prices = [
        intrinsic_call - 0.01,  # below the forward intrinsic value (K = 90)
        S * math.exp(-q * T) + 0.01,  # above the discounted spot
        K * math.exp(-r * T) + 0.01,  # put above the discounted strike
        5.0,  # T = 0
        math.nan,
        5.0,  # S = 0
        -1.0,  # negative price
        5.0,  # fine
        5.0,  # fine
    ]
    strikes = [90.0, K, K, K, K, K, K, K, K]
    spots = [S, S, S, S, S, 0.0, S, S, S]
    times = [T, T, T, 0.0, T, T, T, T, T]
    res = solve_implied_vol(kinds, prices, spots, strikes, times, r, q)
    assert list(res.reason) == [
        IVReject.BELOW_INTRINSIC,
        IVReject.ABOVE_MAXIMUM,
        IVReject.ABOVE_MAXIMUM,
        IVReject.EXPIRED,
        IVReject.BAD_INPUT,
        IVReject.BAD_INPUT,
        IVReject.BAD_INPUT,
        IVReject.OK,
        IVReject.OK,
    ]
    assert np.all(np.isnan(res.iv[:7])) and np.all(np.isfinite(res.iv[7:]))
    assert res.rejected == 7
    assert res.counts() == {"bad_input": 3, "expired": 1, "below_intrinsic": 1, "above_maximum": 2}


def test_never_raises_and_returns_nan_for_infinite_or_degenerate_inputs() -> None:
    values = [math.nan, math.inf, -math.inf, 0.0, -1.0, 1e-320, 1e300]
    grid = np.array(np.meshgrid(values, values, values, values, indexing="ij")).reshape(4, -1)
    price, S, K, T = grid
    out = implied_vol("put", price, S, K, T, 0.03, 0.01)
    assert out.shape == price.shape
    assert np.all(np.isnan(out) | ((out > 0.0) & np.isfinite(out)))


def test_broadcasts_scalars_and_keeps_the_input_shape() -> None:
    strikes = np.array([[90.0, 100.0], [110.0, 120.0]])
    prices = bsm.price("call", 100.0, strikes, 0.5, 0.03, 0.0, 0.25)
    out = implied_vol("call", prices, 100.0, strikes, 0.5, 0.03, 0.0)
    assert out.shape == (2, 2)
    np.testing.assert_allclose(out, 0.25, atol=1e-12)
    assert implied_vol("call", float(prices[0, 0]), 100.0, 90.0, 0.5, 0.03, 0.0).shape == ()


def test_an_iteration_budget_of_one_reports_no_convergence_instead_of_looping() -> None:
    c = random_contracts(1_000, seed=3)
    K = c["S"] * c["m"]
    price = bsm.price(c["is_call"], c["S"], K, c["T"], c["r"], c["q"], c["sigma"])
    res = solve_implied_vol(c["is_call"], price, c["S"], K, c["T"], c["r"], c["q"], max_iter=1)
    assert res.iterations == 1
    assert res.counts().get("no_convergence", 0) > 0
    assert np.all(np.isnan(res.iv[res.reason == IVReject.NO_CONVERGENCE]))


def test_normalised_solver_inverts_black_at_the_money_exactly() -> None:
    # At x = 0 the normalised call price is b = 2N(s/2) − 1, so s = 2 N⁻¹((1 + b)/2).
    s = np.array([1e-3, 0.05, 0.3, 1.0, 3.0])
    b = bsm.price(True, 1.0, 1.0, 1.0, 0.0, 0.0, s)  # F = K = 1, T = 1: b = price
    out, code, _ = normalised_implied_total_vol(b, np.zeros(5), np.ones(5, dtype=np.bool_))
    np.testing.assert_allclose(out, s, rtol=1e-12)
    assert np.all(code == 0)


@settings(max_examples=150, deadline=None)
@given(
    moneyness=st.floats(0.6, 1.6),
    T=st.floats(2.0 / 365.0, 2.0),
    r=st.floats(0.0, 0.08),
    q=st.floats(0.0, 0.04),
    v1=st.floats(0.05, 1.5),
    dv=st.floats(0.01, 0.5),
)
def test_implied_vol_rises_with_price_and_calls_and_puts_agree_through_parity(
    moneyness: float, T: float, r: float, q: float, v1: float, dv: float
) -> None:
    S, K = 100.0, 100.0 * moneyness
    call_lo, call_hi = bsm.price("call", S, K, T, r, q, [v1, v1 + dv])
    put_lo = call_lo - S * math.exp(-q * T) + K * math.exp(-r * T)  # Hull (17.3)
    iv_call = implied_vol(["call", "call"], [call_lo, call_hi], S, K, T, r, q)
    iv_put = implied_vol("put", put_lo, S, K, T, r, q)
    vega = float(bsm.greeks("call", S, K, T, r, q, v1).vega)
    if vega >= 1e-4:
        assert iv_call[0] == pytest.approx(v1, abs=1e-8)
        assert float(iv_put) == pytest.approx(v1, abs=1e-6)
        assert iv_call[1] > iv_call[0]


@settings(max_examples=100, deadline=None)
@given(v=st.floats(0.05, 1.0), k1=st.floats(0.7, 1.0), dk=st.floats(0.01, 0.3))
def test_on_a_flat_smile_every_strike_returns_the_same_vol(v: float, k1: float, dk: float) -> None:
    strikes = 100.0 * np.array([k1, k1 + dk])
    prices = bsm.price(["put", "call"], 100.0, strikes, 0.3, 0.04, 0.01, v)
    out = implied_vol(["put", "call"], prices, 100.0, strikes, 0.3, 0.04, 0.01)
    material = bsm.greeks(["put", "call"], 100.0, strikes, 0.3, 0.04, 0.01, v).vega >= 1e-4
    np.testing.assert_allclose(out[material], v, atol=1e-8)


def test_american_implied_vol_inverts_the_american_price() -> None:
    c = random_contracts(300, seed=4)
    K = c["S"] * np.clip(c["m"], 0.7, 1.4)
    sigma = np.clip(c["sigma"], 0.08, 1.2)
    price = american.price(c["is_call"], c["S"], K, c["T"], c["r"], c["q"], sigma)
    out = american.implied_vol(c["is_call"], price, c["S"], K, c["T"], c["r"], c["q"])
    # Invertible where the American price still moves with vol (not in the immediate-exercise
    # region, where it is pinned at intrinsic value).
    bumped = [
        american.price(c["is_call"], c["S"], K, c["T"], c["r"], c["q"], sigma + h)
        for h in (1e-4, -1e-4)
    ]
    vega_ok = (bumped[0] - bumped[1]) / 2e-4 > 1e-3 * c["S"]
    assert vega_ok.sum() > 100
    np.testing.assert_allclose(out[vega_ok], sigma[vega_ok], atol=1e-7)
    assert np.all(
        np.isnan(out[price <= np.maximum(np.where(c["is_call"], c["S"] - K, K - c["S"]), 0.0)])
    )
    # An American put below intrinsic value has no implied vol.
    assert np.isnan(american.implied_vol("put", 9.0, 90.0, 100.0, 0.5, 0.05, 0.0))


def test_each_vol_is_independent_of_row_order_and_of_the_other_rows_in_the_call() -> None:
    # The solver sorts rows into branch groups and scatters the roots back: a permuted chain must
    # give the permuted vols, and a row solved alone (one group only) the same vol, bit for bit.
    c = random_contracts(5_000, seed=5)
    K = c["S"] * c["m"]
    price = bsm.price(c["is_call"], c["S"], K, c["T"], c["r"], c["q"], c["sigma"])
    args = [c["is_call"], price, c["S"], K, c["T"], c["r"], c["q"]]
    whole = solve_implied_vol(*args)
    perm = np.random.default_rng(6).permutation(price.size)
    permuted = solve_implied_vol(*(a[perm] for a in args))
    np.testing.assert_array_equal(permuted.iv, whole.iv[perm])
    np.testing.assert_array_equal(permuted.reason, whole.reason[perm])
    for i in perm[:300].tolist():
        alone = solve_implied_vol(*(a[i] for a in args))
        np.testing.assert_array_equal(alone.iv, whole.iv[i])
        assert alone.reason == whole.reason[i]
