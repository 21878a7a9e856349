"""Black-Scholes-Merton prices and greeks: textbook values, parity, finite differences, edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gnosisd.core.enums import OptionType
from gnosisd.quant import bsm


def test_matches_hull_textbook_call_and_put_without_dividends() -> None:
    # Hull, Options, Futures and Other Derivatives, Example 15.6: S=42, K=40, r=10%, σ=20%, T=0.5.
    call, put = bsm.price([True, False], 42.0, 40.0, 0.5, 0.10, 0.0, 0.20)
    assert call == pytest.approx(4.76, abs=0.005)
    assert put == pytest.approx(0.81, abs=0.005)


def test_matches_hull_index_option_with_dividend_yield() -> None:
    # Hull, Example 17.1: S=930, K=900, r=8%, q=3%, σ=20%, T=2 months -> call 51.83.
    (call,) = bsm.price([True], 930.0, 900.0, 2.0 / 12.0, 0.08, 0.03, 0.20)
    assert call == pytest.approx(51.83, abs=0.01)


def test_matches_hull_greeks_example() -> None:
    # Hull ch. 19: S=49, K=50, r=5%, σ=20%, T=20 weeks (0.3846): Δ .522 Γ .066 ν 12.1 Θ -4.31 ρ 8.91.
    g = bsm.greeks(True, 49.0, 50.0, 0.3846, 0.05, 0.0, 0.20)
    assert float(g.delta) == pytest.approx(0.522, abs=0.001)
    assert float(g.gamma) == pytest.approx(0.066, abs=0.001)
    assert float(g.vega) == pytest.approx(12.1, abs=0.05)
    assert float(g.theta) == pytest.approx(-4.31, abs=0.01)
    assert float(g.rho) == pytest.approx(8.91, abs=0.01)


def test_broadcasts_scalars_against_arrays() -> None:
    strikes = np.array([90.0, 100.0, 110.0])
    out = bsm.price(True, 100.0, strikes, 0.25, 0.04, 0.01, 0.2)
    assert out.shape == (3,)
    assert np.all(np.diff(out) < 0)  # calls get cheaper as the strike rises
    g = bsm.greeks(np.array([True, False, True]), 100.0, strikes, 0.25, 0.04, 0.01, 0.2)
    assert g.delta.shape == g.charm.shape == (3,)


@pytest.mark.parametrize("is_call", [True, False])
def test_greeks_match_finite_differences(is_call: bool) -> None:
    S, K, T, r, q, v = 101.0, 95.0, 0.4, 0.045, 0.013, 0.23
    g = bsm.greeks(is_call, S, K, T, r, q, v)

    def p(**kw: float) -> float:
        args = {"S": S, "K": K, "T": T, "r": r, "q": q, "sigma": v} | kw
        return float(bsm.price(is_call, **args))

    def d(**kw: float) -> float:
        args = {"S": S, "K": K, "T": T, "r": r, "q": q, "sigma": v} | kw
        return float(bsm.greeks(is_call, **args).delta)

    h = 1e-3
    assert float(g.delta) == pytest.approx((p(S=S + h) - p(S=S - h)) / (2 * h), rel=1e-5)
    assert float(g.gamma) == pytest.approx((d(S=S + h) - d(S=S - h)) / (2 * h), rel=1e-5)
    assert float(g.vega) == pytest.approx((p(sigma=v + h) - p(sigma=v - h)) / (2 * h), rel=1e-5)
    assert float(g.theta) == pytest.approx(-(p(T=T + h) - p(T=T - h)) / (2 * h), rel=1e-5)
    assert float(g.rho) == pytest.approx((p(r=r + h) - p(r=r - h)) / (2 * h), rel=1e-5)
    assert float(g.vanna) == pytest.approx((d(sigma=v + h) - d(sigma=v - h)) / (2 * h), rel=1e-4)
    # charm is the change of delta as time passes, i.e. minus the derivative in T.
    assert float(g.charm) == pytest.approx(-(d(T=T + h) - d(T=T - h)) / (2 * h), rel=1e-4)

    def vega(**kw: float) -> float:
        args = {"S": S, "K": K, "T": T, "r": r, "q": q, "sigma": v} | kw
        return float(bsm.greeks(is_call, **args).vega)

    # vomma (volga) is the change of vega per 1.00 of vol
    assert float(g.vomma) == pytest.approx(
        (vega(sigma=v + h) - vega(sigma=v - h)) / (2 * h), rel=1e-4
    )


def test_accepts_call_and_put_strings_and_arrays_of_them_like_booleans() -> None:
    strikes = np.array([90.0, 100.0, 110.0])
    by_bool = bsm.price(np.array([True, False, True]), 100.0, strikes, 0.25, 0.04, 0.01, 0.2)
    by_name = bsm.price(["call", "put", "call"], 100.0, strikes, 0.25, 0.04, 0.01, 0.2)
    by_letter = bsm.price(np.array(["c", "p", "c"]), 100.0, strikes, 0.25, 0.04, 0.01, 0.2)
    by_enum = bsm.price(
        [OptionType.CALL, OptionType.PUT, OptionType.CALL], 100.0, strikes, 0.25, 0.04, 0.01, 0.2
    )
    np.testing.assert_array_equal(by_bool, by_name)
    np.testing.assert_array_equal(by_bool, by_letter)
    np.testing.assert_array_equal(by_bool, by_enum)
    assert bsm.price("put", 100.0, 110.0, 0.25, 0.04, 0.01, 0.2) == bsm.price(
        False, 100.0, 110.0, 0.25, 0.04, 0.01, 0.2
    )
    g = bsm.greeks("put", 100.0, strikes, 0.25, 0.04, 0.01, 0.2)
    assert np.all(g.delta < 0.0)


@pytest.mark.parametrize("kind", ["Call", "straddle", ""])
def test_rejects_unknown_kind_strings(kind: str) -> None:
    with pytest.raises(ValueError, match="option kind"):
        bsm.price(kind, 100.0, 100.0, 0.25, 0.04, 0.01, 0.2)


def test_rejects_integer_kinds_that_would_read_puts_as_calls() -> None:
    with pytest.raises(TypeError, match="option kind"):
        bsm.price(np.array([1, -1]), 100.0, 100.0, 0.25, 0.04, 0.01, 0.2)


def test_price_rises_with_volatility() -> None:
    vols = np.linspace(0.05, 1.0, 20)
    for is_call in (True, False):
        prices = bsm.price(is_call, 100.0, 105.0, 0.5, 0.04, 0.01, vols)
        assert np.all(np.diff(prices) > 0)


def test_expired_options_are_worth_intrinsic_with_step_delta_and_no_other_greeks() -> None:
    is_call = np.array([True, True, False, False, True, False])
    S = np.array([110.0, 90.0, 90.0, 110.0, 100.0, 100.0])
    prices = bsm.price(is_call, S, 100.0, 0.0, 0.05, 0.01, 0.2)
    np.testing.assert_allclose(prices, [10.0, 0.0, 10.0, 0.0, 0.0, 0.0])
    g = bsm.greeks(is_call, S, 100.0, np.array([0.0, 0.0, -1.0, 0.0, 0.0, 0.0]), 0.05, 0.01, 0.2)
    np.testing.assert_array_equal(g.delta, [1.0, 0.0, -1.0, 0.0, 0.0, 0.0])
    for name in ("gamma", "vega", "theta", "rho", "vanna", "charm", "vomma"):
        np.testing.assert_array_equal(getattr(g, name), np.zeros(6), err_msg=name)


def test_zero_volatility_gives_discounted_forward_intrinsic_without_warnings() -> None:
    S, K, T, r, q = 100.0, 95.0, 0.5, 0.05, 0.02
    call, put = bsm.price([True, False], S, K, T, r, q, 0.0)
    assert call == pytest.approx(S * math.exp(-q * T) - K * math.exp(-r * T))
    assert put == 0.0
    g = bsm.greeks([True, False], S, K, T, r, q, np.array([0.0, -0.1]))
    np.testing.assert_allclose(g.delta, [math.exp(-q * T), 0.0])
    np.testing.assert_array_equal(g.gamma, [0.0, 0.0])
    assert np.all(np.isfinite(g.theta)) and np.all(np.isfinite(g.charm))


def test_deep_out_of_the_money_price_is_never_negative() -> None:
    prices = bsm.price([True, False], 100.0, [1e4, 1e-3], 0.01, 0.05, 0.0, 0.1)
    assert np.all(prices >= 0.0)


@settings(max_examples=200, deadline=None)
@given(
    S=st.floats(1.0, 2000.0),
    moneyness=st.floats(0.5, 1.5),
    T=st.floats(1e-3, 3.0),
    r=st.floats(0.0, 0.1),
    q=st.floats(0.0, 0.05),
    sigma=st.floats(0.01, 2.0),
)
def test_put_call_parity_and_no_arbitrage_bounds_hold(
    S: float, moneyness: float, T: float, r: float, q: float, sigma: float
) -> None:
    K = S * moneyness
    call, put = bsm.price([True, False], S, K, T, r, q, sigma)
    fwd_pv, strike_pv = S * math.exp(-q * T), K * math.exp(-r * T)
    # Hull (17.3): c − p = S e^{-qT} − K e^{-rT}
    assert call - put == pytest.approx(fwd_pv - strike_pv, abs=1e-8 * max(S, K))
    assert max(fwd_pv - strike_pv, 0.0) - 1e-9 * S <= call <= fwd_pv + 1e-9 * S
    g = bsm.greeks([True, False], S, K, T, r, q, sigma)
    assert g.delta[0] - g.delta[1] == pytest.approx(math.exp(-q * T))
    assert np.all(g.gamma >= 0.0) and np.all(g.vega >= 0.0)


@settings(max_examples=200, deadline=None)
@given(
    k1=st.floats(0.5, 2.0),
    dk=st.floats(0.001, 0.5),
    T=st.floats(1.0 / 365.0, 2.0),
    r=st.floats(0.0, 0.1),
    q=st.floats(0.0, 0.05),
    sigma=st.floats(0.05, 2.0),
    dv=st.floats(0.001, 0.5),
)
def test_prices_are_monotone_in_strike_and_volatility(
    k1: float, dk: float, T: float, r: float, q: float, sigma: float, dv: float
) -> None:
    # Calls fall and puts rise with the strike; both rise with vol (vega >= 0); Hull ch. 11.
    S = 100.0
    strikes = np.array([k1, k1 + dk]) * S
    calls = bsm.price("call", S, strikes, T, r, q, sigma)
    puts = bsm.price("put", S, strikes, T, r, q, sigma)
    # 1e-12·S: deep out-of-the-money prices are ~1e-15 and carry cancellation noise.
    assert calls[1] <= calls[0] + 1e-12 * S
    assert puts[1] >= puts[0] - 1e-12 * S
    # Slope bounds: |dC/dK| <= e^{-rT} (no arbitrage between strikes).
    assert calls[0] - calls[1] <= dk * S * math.exp(-r * T) + 1e-9
    vols = np.array([sigma, sigma + dv])
    for kind in ("call", "put"):
        by_vol = bsm.price(kind, S, strikes[0], T, r, q, vols)
        assert by_vol[1] >= by_vol[0] - 1e-12
