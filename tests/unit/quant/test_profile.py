"""Risk profile maths: exact bounds (incl. calendars), lognormal integrals, the BSM curve, the cone."""

from __future__ import annotations

import math
from datetime import date, timedelta
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gnosisd.quant import bsm
from gnosisd.quant.payoff import PayoffLeg, risk_profile
from gnosisd.quant.profile import (
    ExpiryLeg,
    Lognormal,
    Model,
    _roots,
    analyse,
    pnl_cone,
    pnl_curve,
    structure_bounds,
    structure_max_loss,
)

FRONT = date(2025, 7, 3)
BACK = FRONT + timedelta(days=28)
D = Decimal


def leg(is_call: bool, k: float, ratio: int, expiry: date = FRONT) -> ExpiryLeg:
    return ExpiryLeg(is_call, D(repr(k)), ratio, expiry)


def model(legs: list[ExpiryLeg], spot: float = 500.0, sigma: float = 0.2, r: float = 0.04,
          q: float = 0.0) -> Model:  # fmt: skip
    t = {FRONT: 31 / 365, BACK: 59 / 365}
    return Model(spot, r, q, tuple(t[lg.expiry] for lg in legs), tuple(sigma for _ in legs))


# ------------------------------------------------------------------ exact bounds
def test_single_expiry_bounds_are_the_expiry_payoff_kink_figures() -> None:
    legs = [leg(False, 480, 1), leg(False, 490, -1), leg(True, 510, -1), leg(True, 520, 1)]
    b = structure_bounds(legs, D("-3.10"))
    rp = risk_profile([PayoffLeg(lg.is_call, lg.strike, lg.ratio) for lg in legs], D("-3.10"))
    assert (b.max_loss, b.max_profit, b.breakevens) == (rp.max_loss, rp.max_profit, rp.breakevens)
    assert b.max_loss == D("-6.90")


def test_long_calendar_risks_exactly_its_debit_and_has_no_fixed_max_profit() -> None:
    legs = [leg(True, 500, -1), leg(True, 500, 1, BACK)]
    b = structure_bounds(legs, D("4.25"))
    assert b.max_loss == D("-4.25")
    assert b.max_profit is None
    assert b.breakevens == ()


def test_diagonal_with_long_leg_deeper_in_the_money_risks_its_debit() -> None:
    call = [leg(True, 510, -1), leg(True, 480, 1, BACK)]
    put = [leg(False, 490, -1), leg(False, 520, 1, BACK)]
    assert structure_bounds(call, D("22.00")).max_loss == D("-22.00")
    assert structure_bounds(put, D("21.00")).max_loss == D("-21.00")


def test_inverted_diagonal_adds_the_strike_gap_to_its_debit() -> None:
    # Long back 520 call, short front 500 call: above 520 the front pays 20 more than the back's floor.
    legs = [leg(True, 500, -1), leg(True, 520, 1, BACK)]
    assert structure_bounds(legs, D("1.50")).max_loss == D("-21.50")


def test_short_back_leg_is_taken_at_its_upper_bound() -> None:
    # Reverse calendar for a 3.00 credit: the short back call may be worth S; the worst is S=K.
    calls = [leg(True, 500, 1), leg(True, 500, -1, BACK)]
    assert structure_bounds(calls, D("-3.00")).max_loss == D("-497.00")
    # A short back put is worth at most K: the worst is S -> inf, where the front put is 0.
    puts = [leg(False, 500, 1), leg(False, 500, -1, BACK)]
    assert structure_bounds(puts, D("-3.00")).max_loss == D("-497.00")


@given(
    legs=st.lists(
        st.tuples(
            st.booleans(),
            st.sampled_from([450, 480, 495, 500, 505, 520, 550]),
            st.integers(-3, 3).filter(bool),
            st.sampled_from([FRONT, BACK]),
        ),
        min_size=1,
        max_size=4,
    ),
    net=st.decimals(min_value=D("-20"), max_value=D("20"), places=2),
)
@settings(max_examples=400, deadline=None)
def test_the_guards_max_loss_path_equals_the_full_bounds(
    legs: list[tuple[bool, int, int, date]], net: Decimal
) -> None:
    structure = [ExpiryLeg(c, D(k), r, e) for c, k, r, e in legs]
    assert structure_max_loss(structure, net) == structure_bounds(structure, net).max_loss


def test_naked_short_call_has_unbounded_loss_and_no_profile() -> None:
    legs = [leg(True, 500, -1)]
    assert structure_bounds(legs, D("-2")).max_loss is None
    m = model(legs)
    dist = Lognormal.implied(500, 0.04, 0, 0.2, m.horizon)
    assert analyse(legs, D("-2"), m, dist) is None


@settings(max_examples=60, deadline=None)
@given(
    k_front=st.sampled_from([470.0, 490.0, 500.0, 510.0, 530.0]),
    k_back=st.sampled_from([470.0, 490.0, 500.0, 510.0, 530.0]),
    is_call=st.booleans(),
    net=st.decimals(min_value=D("0.5"), max_value=D("30"), places=2),
    sigma=st.floats(0.05, 1.2),
    r=st.floats(0.0, 0.08),
    q=st.floats(0.0, 0.05),
)
def test_bound_never_exceeds_the_bsm_curve_at_the_front_expiry(
    k_front: float, k_back: float, is_call: bool, net: Decimal, sigma: float, r: float, q: float
) -> None:
    legs = [leg(is_call, k_front, -1), leg(is_call, k_back, 1, BACK)]
    bound = structure_bounds(legs, net).max_loss
    assert bound is not None
    curve = pnl_curve(
        legs, float(net), model(legs, sigma=sigma, r=r, q=q), np.linspace(1, 2000, 4001)
    )
    assert float(bound) <= curve.min() + 1e-9
    assert float(bound) <= 0


# ------------------------------------------------------------------ the lognormal
def test_lognormal_mean_is_the_forward_and_its_median_moves_by_the_drift() -> None:
    d = Lognormal.implied(500.0, 0.05, 0.01, 0.25, 0.5)
    assert float(d.partial_mean(np.array([np.inf]))[0]) == pytest.approx(500 * math.exp(0.04 * 0.5))
    assert float(d.cdf(np.array([0.0]))[0]) == 0.0
    tilted = Lognormal.implied(500.0, 0.05, 0.01, 0.25, 0.5, drift_sd=1.0)
    assert math.exp(tilted.mu) == pytest.approx(math.exp(d.mu + d.sd))


def test_expected_value_of_single_expiry_structures_is_the_forward_bsm_value_minus_net() -> None:
    s, r, q, sig, t = 500.0, 0.04, 0.01, 0.22, 31 / 365
    legs = [leg(True, 500, 1), leg(True, 520, -1), leg(False, 470, -2)]
    m = Model(s, r, q, (t,) * 3, (sig,) * 3)
    theo = sum(
        lg.ratio * float(bsm.price(lg.is_call, s, float(lg.strike), t, r, q, sig)) for lg in legs
    )
    net = D("3.00")
    prof = analyse(legs, net, m, Lognormal.implied(s, r, q, sig, t))
    assert prof is not None
    # Risk neutral: E[payoff] = e^{rT} × BSM value (Hull, OFOD 11e, ch. 15).
    assert prof.market.expected == pytest.approx(theo * math.exp(r * t) - 3.0, abs=1e-9)


def test_pop_of_a_long_call_is_the_probability_of_finishing_beyond_its_breakeven() -> None:
    s, r, q, sig, t = 500.0, 0.04, 0.0, 0.2, 31 / 365
    legs = [leg(True, 500, 1)]
    prof = analyse(
        legs, D("12.50"), Model(s, r, q, (t,), (sig,)), Lognormal.implied(s, r, q, sig, t)
    )
    assert prof is not None
    d2 = (math.log(s / 512.5) + (r - q - 0.5 * sig**2) * t) / (sig * math.sqrt(t))
    assert prof.market.pop == pytest.approx(0.5 * (1 + math.erf(d2 / math.sqrt(2))), abs=1e-12)
    assert prof.breakevens == (512.5,)
    assert prof.max_profit is None
    p, w, loss = prof.market.pop, prof.market.mean_win, prof.market.mean_loss
    assert p * w - (1 - p) * loss == pytest.approx(prof.market.expected, abs=1e-9)


# ------------------------------------------------------------------ several expiries
def test_calendar_expected_value_is_its_forward_value_minus_net_in_a_flat_vol_world() -> None:
    # q = 0: a call is never worth less than intrinsic, so the American floor never binds and the
    # front-expiry value of the back call is a martingale after discounting.
    s, r, sig = 500.0, 0.04, 0.2
    legs = [leg(True, 505, -1), leg(True, 505, 1, BACK)]
    m = model(legs, s, sig, r)
    now = sum(
        lg.ratio * float(bsm.price(True, s, 505.0, t, r, 0.0, sig))
        for lg, t in zip(legs, m.t_years, strict=True)
    )
    net = D("3.10")
    prof = analyse(legs, net, m, Lognormal.implied(s, r, 0.0, sig, m.horizon))
    assert prof is not None
    assert prof.max_loss == -net
    assert prof.market.expected == pytest.approx(now * math.exp(r * m.horizon) - 3.10, abs=1e-9)


def test_calendar_breakevens_are_zero_crossings_and_its_max_profit_is_the_peak() -> None:
    legs = [leg(False, 495, -1), leg(False, 495, 1, BACK)]
    m = model(legs, 500.0, 0.25, 0.04, 0.013)
    prof = analyse(legs, D("3.40"), m, Lognormal.implied(500, 0.04, 0.013, 0.25, m.horizon))
    assert prof is not None
    assert len(prof.breakevens) == 2
    lo, hi = prof.breakevens
    assert lo < 495 < hi
    assert np.allclose(pnl_curve(legs, 3.40, m, np.array(prof.breakevens)), 0.0, atol=1e-8)
    grid = pnl_curve(legs, 3.40, m, np.linspace(300, 700, 40_001))
    assert prof.max_profit is not None
    assert grid.max() <= prof.max_profit + 1e-12
    assert prof.max_profit == pytest.approx(float(pnl_curve(legs, 3.40, m, [495.0])[0]))
    assert 0 < prof.market.pop < 1


def test_roots_are_found_in_every_bracket_at_once() -> None:
    def f(x: np.ndarray) -> np.ndarray:
        return np.asarray(np.cos(x) - 0.3 * x, dtype=np.float64)

    roots = _roots(f, np.array([0.0, -3.0]), np.array([2.0, -1.5]))
    assert np.allclose(f(roots), 0.0, atol=1e-12)


# ------------------------------------------------------------------ the cone
def test_cone_is_the_model_value_now_and_the_payoff_at_the_front_expiry() -> None:
    legs = [leg(True, 500, -1), leg(True, 500, 1, BACK)]
    m = model(legs, 500.0, 0.2, 0.04)
    spots = [450.0, 500.0, 550.0]
    cone = pnl_cone(legs, 4.0, m, spots, [0.0, m.horizon / 2, m.horizon], [-0.05, 0.0, 0.05])
    assert cone.shape == (3, 3, 3)
    now = sum(
        lg.ratio * np.asarray(bsm.price(True, np.array(spots), 500.0, t, 0.04, 0.0, 0.2))
        for lg, t in zip(legs, m.t_years, strict=True)
    )
    assert np.allclose(cone[0, 1], now - 4.0)
    assert np.allclose(cone[2, 1], pnl_curve(legs, 4.0, m, spots))
    assert np.all(cone[2, 2] >= cone[2, 0])  # long vega: higher IV helps at the front expiry


def test_a_view_on_higher_vol_lifts_the_back_month_of_a_calendar() -> None:
    legs = [leg(True, 500, -1), leg(True, 500, 1, BACK)]
    m = model(legs, 500.0, 0.2, 0.04)
    dist = Lognormal.implied(500, 0.04, 0.0, 0.2, m.horizon)
    same = analyse(legs, D("4.00"), m, dist, dist)
    richer = analyse(legs, D("4.00"), m, dist, dist, view_iv_scale=1.2)
    assert same is not None and richer is not None
    assert same.view == same.market
    assert richer.view.expected > same.view.expected
    assert richer.market == same.market
