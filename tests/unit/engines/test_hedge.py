"""Hedge engine: GEX, vanna/charm exposure, gamma flip, walls and flags versus hand sums."""

from __future__ import annotations

import math

import pytest

from gnosisd.bus.events import Bar, ChainSnapshot
from gnosisd.core.config import HedgeConfig
from gnosisd.engines.hedge import HedgeEngine
from tests.unit.engines.chain_factory import T0_NS, Row, delta, gamma, make_chain


def two_contract_chain(spot: float = 100.0) -> ChainSnapshot:
    return make_chain(
        [
            Row(call=True, strike=100, days=30, oi=1000, gamma=0.05),
            Row(call=False, strike=100, days=30, oi=2000, gamma=0.04),
        ],
        spot=spot,
    )


def test_gex_of_two_contracts_matches_hand_computation_with_default_convention() -> None:
    snap = HedgeEngine("SPY", HedgeConfig()).update(two_contract_chain())
    assert snap is not None
    # dealer long the call (+1), short the put (-1); 100 shares × S² × 1%
    expected = (0.05 * 1000 - 0.04 * 2000) * 100 * 100.0**2 * 0.01
    assert snap.metrics["gex"] == pytest.approx(expected)
    assert expected == pytest.approx(-300_000.0)
    assert snap.metrics["spot"] == 100.0
    assert snap.engine == "hedge"
    assert snap.symbol == "SPY"
    assert snap.ts_ns == T0_NS


def test_short_all_convention_counts_every_contract_as_dealer_short() -> None:
    cfg = HedgeConfig(dealer_convention="short_all")
    snap = HedgeEngine("SPY", cfg).update(two_contract_chain())
    assert snap is not None
    assert snap.metrics["gex"] == pytest.approx(-(0.05 * 1000 + 0.04 * 2000) * 100 * 100.0)
    assert math.isnan(snap.metrics["gamma_flip"])  # all-negative gamma never changes sign


def test_vanna_and_charm_exposure_match_finite_differences_of_delta() -> None:
    spot, k, t, r, q, iv, oi = 100.0, 105.0, 45 / 365, 0.04, 0.01, 0.25, 700
    chain = make_chain(
        [
            Row(call=True, strike=k, days=45, iv=iv, oi=oi),
            Row(call=False, strike=95, days=45, iv=0.3, oi=300),
        ],
        spot=spot,
        rate=r,
        div_yield=q,
    )
    snap = HedgeEngine("SPY", HedgeConfig()).update(chain)
    assert snap is not None
    h = 1e-5
    vanna_c = (delta(True, spot, k, t, r, q, iv + h) - delta(True, spot, k, t, r, q, iv - h)) / (
        2 * h
    )
    vanna_p = (
        delta(False, spot, 95, t, r, q, 0.3 + h) - delta(False, spot, 95, t, r, q, 0.3 - h)
    ) / (2 * h)
    # charm = dΔ/dt as calendar time passes = -dΔ/dT
    charm_c = -(delta(True, spot, k, t + h, r, q, iv) - delta(True, spot, k, t - h, r, q, iv)) / (
        2 * h
    )
    charm_p = -(
        delta(False, spot, 95, t + h, r, q, 0.3) - delta(False, spot, 95, t - h, r, q, 0.3)
    ) / (2 * h)
    vanna_exp = (vanna_c * oi - vanna_p * 300) * 100 * spot * 0.01
    charm_exp = (charm_c * oi - charm_p * 300) * 100 * spot / 365
    assert snap.metrics["vanna_exposure"] == pytest.approx(vanna_exp, rel=1e-5)
    assert snap.metrics["charm_exposure"] == pytest.approx(charm_exp, rel=1e-5)


def test_gamma_flip_is_where_repriced_total_gex_changes_sign() -> None:
    # Dealer long 110 calls, short 90 puts: GEX > 0 near the calls, < 0 near the puts.
    chain = make_chain(
        [Row(call=True, strike=110, days=30, oi=1000), Row(call=False, strike=90, days=30, oi=1000)]
    )
    snap = HedgeEngine("SPY", HedgeConfig()).update(chain)
    assert snap is not None
    t = 30 / 365

    def net(s: float) -> float:
        return gamma(s, 110, t, 0, 0, 0.2) - gamma(s, 90, t, 0, 0, 0.2)

    lo, hi = 92.0, 108.0  # bisection, independent of the engine's grid
    assert net(lo) < 0 < net(hi)
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if net(mid) < 0 else (lo, mid)
    assert snap.metrics["gamma_flip"] == pytest.approx(lo, abs=0.02)


def test_gamma_flip_is_nan_when_gex_keeps_its_sign_within_ten_percent() -> None:
    chain = make_chain([Row(call=True, strike=100, days=30)])
    snap = HedgeEngine("SPY", HedgeConfig()).update(chain)
    assert snap is not None
    assert math.isnan(snap.metrics["gamma_flip"])


def test_walls_are_strikes_with_largest_gamma_times_open_interest_over_expiries() -> None:
    chain = make_chain(
        [
            Row(call=True, strike=100, days=30, oi=1000, gamma=0.05),  # 50
            Row(call=True, strike=105, days=30, oi=1000, gamma=0.03),  # 30
            Row(call=True, strike=105, days=60, oi=1000, gamma=0.025),  # +25 = 55 at 105
            Row(call=False, strike=95, days=30, oi=3000, gamma=0.02),  # 60
            Row(call=False, strike=90, days=30, oi=5000, gamma=0.01),  # 50
        ]
    )
    snap = HedgeEngine("SPY", HedgeConfig()).update(chain)
    assert snap is not None
    assert snap.metrics["call_wall"] == 105.0
    assert snap.metrics["put_wall"] == 95.0


def test_flags_negative_gamma_squeeze_when_gex_below_minus_threshold() -> None:
    cfg = HedgeConfig(gamma_squeeze_threshold=300_000.0)
    snap = HedgeEngine("SPY", cfg).update(two_contract_chain())
    assert snap is not None
    assert "negative_gamma" in snap.flags
    assert "gamma_squeeze" in snap.flags
    assert "positive_gamma" not in snap.flags


def test_no_squeeze_when_negative_gex_is_smaller_than_threshold() -> None:
    cfg = HedgeConfig(gamma_squeeze_threshold=300_001.0)
    snap = HedgeEngine("SPY", cfg).update(two_contract_chain())
    assert snap is not None
    assert "negative_gamma" in snap.flags
    assert "gamma_squeeze" not in snap.flags


def test_positive_gamma_never_flags_a_squeeze() -> None:
    chain = make_chain([Row(call=True, strike=100, days=30, oi=100_000)])
    snap = HedgeEngine("SPY", HedgeConfig(gamma_squeeze_threshold=1.0)).update(chain)
    assert snap is not None
    assert snap.metrics["gex"] > 0
    assert "positive_gamma" in snap.flags
    assert "gamma_squeeze" not in snap.flags


def test_vanna_flow_flag_follows_threshold() -> None:
    chain = make_chain([Row(call=True, strike=110, days=30, oi=10_000)])
    probe = HedgeEngine("SPY", HedgeConfig()).compute(chain)["vanna_exposure"]
    assert probe != 0
    above = HedgeEngine("SPY", HedgeConfig(vanna_flow_threshold=abs(probe) * 0.99)).update(chain)
    below = HedgeEngine("SPY", HedgeConfig(vanna_flow_threshold=abs(probe) * 1.01)).update(chain)
    assert above is not None
    assert "vanna_flow" in above.flags
    assert below is not None
    assert "vanna_flow" not in below.flags


def test_ignores_other_symbols_and_non_chain_events() -> None:
    engine = HedgeEngine("SPY", HedgeConfig())
    assert (
        engine.update(make_chain([Row(call=True, strike=100, days=30)], underlying="QQQ")) is None
    )
    assert engine.update(Bar("SPY", T0_NS, 1, 1, 1, 1, 1)) is None


def test_gamma_flip_never_raises_on_small_chains_where_grid_and_scalar_repricing_disagree() -> None:
    # Regression: brentq raised "f(a) and f(b) must have different signs" on these chains.
    import math

    from gnosisd.testing.chains import DEFAULT_AS_OF_NS, make_chain

    engine = HedgeEngine("SPY", HedgeConfig())
    flips = []
    for k in range(300):
        chain = make_chain(
            as_of_ns=DEFAULT_AS_OF_NS + k * 60_000_000_000,
            strikes=[490.0, 495.0, 500.0, 505.0, 510.0],
        )
        snap = engine.update(chain)
        assert snap is not None
        flips.append(snap.metrics["gamma_flip"])
    finite = [f for f in flips if not math.isnan(f)]
    assert finite
    assert all(450.0 <= f <= 550.0 for f in finite)
