"""American prices (Bjerksund-Stensland 2002) against QuantLib's QD+ fixed-point engine, with the
error documented in docs/engines.md, and the no-arbitrage properties every price must keep."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gnosisd.quant import american, bsm

ql = pytest.importorskip("QuantLib")


class QuantLibAmerican:
    """QuantLib's QdFpAmericanEngine (Andersen-Lake-Offengenden, accurate scheme: within 2e-5 of
    its high-precision scheme on these cases) on one reusable flat-curve process."""

    def __init__(self) -> None:
        self.today = ql.Date(2, 6, 2025)
        ql.Settings.instance().evaluationDate = self.today
        dc = ql.Actual365Fixed()
        self.spot, self.r, self.q, self.vol = (ql.SimpleQuote(x) for x in (100.0, 0.0, 0.0, 0.2))
        process = ql.BlackScholesMertonProcess(
            ql.QuoteHandle(self.spot),
            ql.YieldTermStructureHandle(ql.FlatForward(self.today, ql.QuoteHandle(self.q), dc)),
            ql.YieldTermStructureHandle(ql.FlatForward(self.today, ql.QuoteHandle(self.r), dc)),
            ql.BlackVolTermStructureHandle(
                ql.BlackConstantVol(self.today, ql.NullCalendar(), ql.QuoteHandle(self.vol), dc)
            ),
        )
        self.engine = ql.QdFpAmericanEngine(process, ql.QdFpAmericanEngine.accurateScheme())

    def price(
        self, call: bool, S: float, K: float, days: int, r: float, q: float, v: float
    ) -> float:
        self.spot.setValue(S)
        self.r.setValue(r)
        self.q.setValue(q)
        self.vol.setValue(v)
        kind = ql.Option.Call if call else ql.Option.Put
        option = ql.VanillaOption(
            ql.PlainVanillaPayoff(kind, K), ql.AmericanExercise(self.today, self.today + days)
        )
        option.setPricingEngine(self.engine)
        return float(option.NPV())


def random_contracts(n: int, seed: int) -> dict[str, np.ndarray]:
    """K/S 0.5-2, T one day to two years (whole days), vol 5 %-200 %, r 0-10 %, q 0-5 %."""
    rng = np.random.default_rng(seed)
    days = np.maximum(np.rint(np.exp(rng.uniform(0.0, math.log(730.0), n))), 1.0)
    return {
        "is_call": rng.random(n) < 0.5,
        "S": np.full(n, 100.0),
        "K": 100.0 * np.exp(rng.uniform(math.log(0.5), math.log(2.0), n)),
        "days": days,
        "T": days / 365.0,
        "r": rng.uniform(0.0, 0.10, n),
        "q": rng.uniform(0.0, 0.05, n),
        "sigma": np.exp(rng.uniform(math.log(0.05), math.log(2.0), n)),
    }


@pytest.fixture(scope="module")
def cases() -> tuple[dict[str, np.ndarray], np.ndarray]:
    c = random_contracts(600, seed=11)
    ref = QuantLibAmerican()
    prices = np.array(
        [
            ref.price(
                bool(c["is_call"][i]),
                100.0,
                float(c["K"][i]),
                int(c["days"][i]),
                float(c["r"][i]),
                float(c["q"][i]),
                float(c["sigma"][i]),
            )
            for i in range(len(c["K"]))
        ]
    )
    return c, prices


def ours(c: dict[str, np.ndarray]) -> np.ndarray:
    return american.price(c["is_call"], c["S"], c["K"], c["T"], c["r"], c["q"], c["sigma"])


def test_is_a_lower_bound_of_the_quantlib_american_price(
    cases: tuple[dict[str, np.ndarray], np.ndarray],
) -> None:
    # Bjerksund-Stensland values a feasible (flat-boundary) exercise policy, so it never
    # overprices; QD+ is accurate to ~1e-5 here.
    c, ref = cases
    assert np.all(ours(c) <= ref + 1e-4)


def test_error_against_quantlib_over_the_whole_random_domain(
    cases: tuple[dict[str, np.ndarray], np.ndarray],
) -> None:
    # Documented in docs/engines.md: worst relative error about 4 % (vol near 200 %, two years),
    # mean absolute error about 0.05 per 100 of spot.
    c, ref = cases
    err = np.abs(ours(c) - ref)
    assert np.max(err / np.maximum(ref, 0.01)) < 0.05
    assert np.mean(err) < 0.08


def test_error_against_quantlib_where_listed_index_options_trade(
    cases: tuple[dict[str, np.ndarray], np.ndarray],
) -> None:
    # Vol <= 60 %, T <= 1 year, K/S in 0.8-1.25: under 0.1 per 100 of spot and 3 % of the price.
    c, ref = cases
    near = (c["sigma"] <= 0.6) & (c["T"] <= 1.0) & (c["K"] >= 80.0) & (c["K"] <= 125.0)
    assert near.sum() > 80
    err = np.abs(ours(c) - ref)[near]
    assert np.max(err) < 0.1
    assert np.max(err / np.maximum(ref[near], 0.01)) < 0.03


def test_never_below_european_or_intrinsic_value() -> None:
    c = random_contracts(5_000, seed=12)
    am = ours(c)
    eu = bsm.price(c["is_call"], c["S"], c["K"], c["T"], c["r"], c["q"], c["sigma"])
    intrinsic = np.maximum(np.where(c["is_call"], c["S"] - c["K"], c["K"] - c["S"]), 0.0)
    assert np.all(np.isfinite(am))
    assert np.all(am >= eu - 1e-12)
    assert np.all(am >= intrinsic - 1e-12)


def test_equals_european_where_early_exercise_never_pays() -> None:
    # A call without dividends and a put at a zero rate are never exercised early (Hull §11.5).
    K = np.array([80.0, 100.0, 120.0])
    calls = american.price("call", 100.0, K, 0.5, 0.05, 0.0, 0.3)
    puts = american.price("put", 100.0, K, 0.5, 0.0, 0.03, 0.3)
    np.testing.assert_array_equal(calls, bsm.price("call", 100.0, K, 0.5, 0.05, 0.0, 0.3))
    np.testing.assert_array_equal(puts, bsm.price("put", 100.0, K, 0.5, 0.0, 0.03, 0.3))


def test_deep_in_the_money_put_is_worth_immediate_exercise() -> None:
    assert float(american.price("put", 50.0, 100.0, 1.0, 0.08, 0.0, 0.2)) == pytest.approx(50.0)


def test_expired_or_degenerate_inputs_give_intrinsic_value() -> None:
    out = american.price(
        ["call", "put", "put"],
        100.0,
        [90.0, 110.0, 110.0],
        [0.0, -1.0, 0.5],
        0.05,
        0.01,
        [0.2, 0.2, math.nan],
    )
    np.testing.assert_array_equal(out[:2], [10.0, 10.0])
    assert out[2] >= 10.0


@settings(max_examples=100, deadline=None)
@given(
    S=st.floats(50.0, 200.0),
    K=st.floats(50.0, 200.0),
    T=st.floats(0.02, 2.0),
    r=st.floats(0.0, 0.1),
    q=st.floats(0.0, 0.06),
    v=st.floats(0.05, 1.0),
)
def test_put_call_symmetry_holds(
    S: float, K: float, T: float, r: float, q: float, v: float
) -> None:
    # McDonald & Schroder (1998): P(S, K, T, r, q, σ) = C(K, S, T, q, r, σ) for American options.
    put = float(american.price("put", S, K, T, r, q, v))
    call = float(american.price("call", K, S, T, q, r, v))
    assert put == pytest.approx(call, rel=1e-12, abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(
    T=st.floats(0.02, 2.0), r=st.floats(0.01, 0.1), q=st.floats(0.0, 0.05), v=st.floats(0.05, 1.0)
)
def test_price_rises_with_vol_and_puts_with_strike(T: float, r: float, q: float, v: float) -> None:
    by_vol = american.price("put", 100.0, 105.0, T, r, q, [v, v * 1.1 + 0.01])
    by_strike = american.price("put", 100.0, [95.0, 100.0, 105.0], T, r, q, v)
    assert by_vol[1] >= by_vol[0]
    assert np.all(np.diff(by_strike) > 0.0)
