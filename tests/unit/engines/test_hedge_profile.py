"""Hedge engine: exposures by strike and expiry, the repriced flip, 0DTE share and new flags."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gnosisd.core.config import HedgeConfig
from gnosisd.engines.hedge import GammaRepricer, HedgeEngine, dealer_sign, gex_at, solve_flip
from tests.unit.engines.chain_factory import Row, make_chain


def spread_chain() -> list[Row]:
    return [
        Row(call=True, strike=105, days=10, oi=3000),
        Row(call=False, strike=95, days=10, oi=1000),
        Row(call=True, strike=105, days=40, oi=500),
        Row(call=False, strike=100, days=40, oi=2000),
        Row(call=True, strike=100, days=0.25, oi=4000),  # expires today (same NY date)
    ]


def test_by_strike_and_by_expiry_exposures_add_up_to_the_totals() -> None:
    engine = HedgeEngine("SPY", HedgeConfig())
    snap = engine.update(make_chain(spread_chain(), rate=0.03, div_yield=0.01))
    assert snap is not None
    p = engine.last_profile
    assert p is not None
    assert list(p.strikes) == [95.0, 100.0, 105.0]
    assert len(p.expiries) == len(p.gex_by_expiry) == 3
    for total, by_strike, by_expiry in (
        ("gex", p.gex_by_strike, p.gex_by_expiry),
        ("vanna_exposure", p.vanna_by_strike, p.vanna_by_expiry),
        ("charm_exposure", p.charm_by_strike, p.charm_by_expiry),
    ):
        assert float(np.sum(by_strike)) == pytest.approx(snap.metrics[total])
        assert float(np.sum(by_expiry)) == pytest.approx(snap.metrics[total])


def test_top_strikes_are_ordered_by_absolute_gamma_exposure() -> None:
    engine = HedgeEngine("SPY", HedgeConfig())
    snap = engine.update(make_chain(spread_chain()))
    assert snap is not None
    p = engine.last_profile
    assert p is not None
    order = np.argsort(-np.abs(p.gex_by_strike))
    assert snap.metrics["gex_strike_1"] == p.strikes[order[0]]
    assert snap.metrics["gex_strike_1_gex"] == pytest.approx(p.gex_by_strike[order[0]])
    assert abs(snap.metrics["gex_strike_1_gex"]) >= abs(snap.metrics["gex_strike_2_gex"])
    assert abs(snap.metrics["gex_strike_2_gex"]) >= abs(snap.metrics["gex_strike_3_gex"])
    # the 0DTE expiry (same New York date) is reported with 0 days to expiry
    assert 0.0 in {snap.metrics[f"gex_expiry_dte_{i}"] for i in (1, 2, 3)}


def test_zero_dte_share_is_the_share_of_absolute_gex_expiring_today() -> None:
    rows = spread_chain()
    engine = HedgeEngine("SPY", HedgeConfig(zero_dte_threshold=0.5))
    snap = engine.update(make_chain(rows))
    assert snap is not None
    chain = make_chain(rows)
    sign = dealer_sign(chain.is_call, "short_puts_long_calls")
    per = np.abs(sign * chain.gamma * chain.open_interest * 100 * 100.0**2 * 0.01)
    today = per[-1]
    assert snap.metrics["zero_dte_share"] == pytest.approx(today / per.sum())
    assert ("zero_dte_heavy" in snap.flags) == (today / per.sum() >= 0.5)


def test_zero_dte_share_is_zero_without_a_same_day_expiry() -> None:
    snap = HedgeEngine("SPY", HedgeConfig()).update(make_chain(spread_chain()[:4]))
    assert snap is not None
    assert snap.metrics["zero_dte_share"] == 0.0
    assert "zero_dte_heavy" not in snap.flags


def test_charm_flow_flag_follows_its_dollar_threshold() -> None:
    chain = make_chain(spread_chain())
    snap = HedgeEngine("SPY", HedgeConfig()).update(chain)
    assert snap is not None
    charm = abs(snap.metrics["charm_exposure"])
    assert charm > 0
    below = HedgeEngine("SPY", HedgeConfig(charm_flow_threshold=charm * 0.99)).update(chain)
    above = HedgeEngine("SPY", HedgeConfig(charm_flow_threshold=charm * 1.01)).update(chain)
    assert below is not None and "charm_flow" in below.flags
    assert above is not None and "charm_flow" not in above.flags


def test_repricer_equals_the_bsm_gamma_reference_on_a_grid() -> None:
    rng = np.random.default_rng(3)
    n = 200
    k = rng.uniform(80, 120, n)
    t = rng.uniform(1 / 365, 1.0, n)
    iv = rng.uniform(0.1, 0.6, n)
    oi = rng.integers(1, 5000, n).astype(float)
    sign = np.where(rng.random(n) < 0.5, 1.0, -1.0)
    grid = np.linspace(90, 110, 41)
    ref = gex_at(grid, sign, oi, k, t, 0.04, 0.01, iv)
    fast = GammaRepricer(sign, oi, k, t, 0.04, 0.01, iv).gex(grid)
    np.testing.assert_allclose(fast, ref, rtol=1e-10, atol=1e-6)


def test_flip_is_a_root_of_repriced_gex_to_a_millionth_of_spot() -> None:
    sign = np.array([1.0, -1.0])
    oi = np.array([1000.0, 1000.0])
    k = np.array([110.0, 90.0])
    t = np.array([30 / 365, 30 / 365])
    iv = np.array([0.2, 0.2])
    rep = GammaRepricer(sign, oi, k, t, 0.0, 0.0, iv)
    flip = solve_flip(rep, 100.0)
    assert 90 < flip < 110
    eps = 100.0 * 1e-5
    assert rep.gex_one(flip - eps) * rep.gex_one(flip + eps) < 0


def test_flip_picks_the_crossing_nearest_spot() -> None:
    # long 96 and 112 calls, short a big 104 put: GEX changes sign twice around spot 100.
    sign = np.array([1.0, -1.0, 1.0])
    oi = np.array([1000.0, 3000.0, 3000.0])
    k = np.array([96.0, 104.0, 112.0])
    t = np.full(3, 20 / 365)
    iv = np.full(3, 0.15)
    rep = GammaRepricer(sign, oi, k, t, 0.0, 0.0, iv)
    grid = np.linspace(90, 110, 20_001)
    values = rep.gex(grid)
    crossings = grid[:-1][np.sign(values[:-1]) != np.sign(values[1:])]
    assert len(crossings) >= 2
    nearest = crossings[np.argmin(np.abs(crossings - 100.0))]
    assert solve_flip(rep, 100.0) == pytest.approx(nearest, abs=0.002)


def test_same_chain_gives_identical_metrics() -> None:
    chain = make_chain(spread_chain(), rate=0.04)
    a = HedgeEngine("SPY", HedgeConfig()).update(chain)
    b = HedgeEngine("SPY", HedgeConfig()).update(chain)
    assert a is not None and b is not None
    assert a.flags == b.flags
    for key, value in a.metrics.items():
        assert (math.isnan(value) and math.isnan(b.metrics[key])) or value == b.metrics[key]
