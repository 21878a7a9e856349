"""Chain analytics: implied vols of a snapshot, SVI smiles per expiry, ATM IV at constant
maturities, 25-delta risk reversal and butterfly, term slope, straddle-implied moves."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.special import ndtr

from gnosisd.bus.events import ChainSnapshot
from gnosisd.quant import bsm
from gnosisd.quant.chain import (
    ChainAnalytics,
    analyze_chain,
    chain_implied_vols,
    interpolate_atm_iv,
)
from gnosisd.quant.svi import svi_total_variance
from gnosisd.testing.chains import DEFAULT_AS_OF_NS, make_chain

TODAY = date(2025, 6, 2)
SPOT, RATE, DIV = 500.0, 0.04, 0.01
DAYS = (4, 11, 25, 46, 74, 109)


def svi_params(t: float) -> tuple[float, float, float, float, float]:
    """An equity-like raw SVI slice whose ATM vol rises gently with maturity (no calendar
    arbitrage: every parameter that scales the variance grows with T)."""
    return (0.02 * t, 0.08 * math.sqrt(t) + 0.01, -0.6, 0.01, 0.08 * math.sqrt(t) + 0.02)


def svi_chain(
    days: tuple[int, ...] = DAYS,
    params: Callable[[float], tuple[float, float, float, float, float]] = svi_params,
) -> ChainSnapshot:
    """A chain quoted exactly (bid = ask = BSM price) on known SVI smiles, strikes every $2.50."""
    strikes = list(np.arange(300.0, 700.0 + 1e-9, 2.5))
    base = make_chain(
        spot=SPOT,
        expiries=[TODAY + timedelta(days=d) for d in days],
        strikes=strikes,
        r=RATE,
        q=DIV,
    )
    t = base.t_years
    fwd = SPOT * np.exp((RATE - DIV) * t)
    k = np.log(base.strike / fwd)
    w = np.empty_like(k)
    for e in range(len(base.expiries)):
        rows = base.expiry_idx == e
        w[rows] = svi_total_variance(k[rows], *params(float(t[rows][0])))
    iv = np.sqrt(w / t)
    theo = bsm.price(base.is_call, SPOT, base.strike, t, RATE, DIV, iv)
    quoted = np.where(theo > 0.01, theo, 0.0)  # a zero bid where the price is under a cent
    return replace(base, bid=quoted, ask=quoted, iv=iv)


@pytest.fixture(scope="module")
def chain() -> ChainSnapshot:
    return svi_chain()


@pytest.fixture(scope="module")
def analytics(chain: ChainSnapshot) -> ChainAnalytics:
    return analyze_chain(chain)


def true_atm(t: float) -> float:
    return math.sqrt(svi_total_variance(0.0, *svi_params(t)) / t)


def test_implied_vols_of_exact_quotes_are_the_smile(
    chain: ChainSnapshot, analytics: ChainAnalytics
) -> None:
    quoted = chain.bid > 0.0
    vega = bsm.greeks(chain.is_call, SPOT, chain.strike, chain.t_years, RATE, DIV, chain.iv).vega
    material = quoted & (vega > 1e-4 * SPOT)
    np.testing.assert_allclose(analytics.iv[material], chain.iv[material], atol=1e-8)
    assert analytics.iv_rejected == {"no_quote": int(np.count_nonzero(~quoted))}


def test_smile_fits_recover_the_atm_vol_of_every_expiry(
    chain: ChainSnapshot, analytics: ChainAnalytics
) -> None:
    expected = np.array([true_atm(t) for t in analytics.t_years])
    np.testing.assert_allclose(analytics.atm_iv, expected, atol=2e-5)
    assert np.all(analytics.smile.butterfly_ok)
    assert analytics.calendar_violations == 0


def test_constant_maturity_atm_vols_interpolate_total_variance(analytics: ChainAnalytics) -> None:
    t = analytics.t_years
    atm = np.array([true_atm(x) for x in t])
    for days, got in (
        (7, analytics.atm_iv_7d),
        (30, analytics.atm_iv_30d),
        (60, analytics.atm_iv_60d),
    ):
        target = days / 365.0
        w = np.interp(target, t, atm * atm * t)  # Cboe VIX method: linear in σ²T
        assert got == pytest.approx(math.sqrt(w / target), abs=2e-5)
    assert analytics.term_slope == pytest.approx(analytics.atm_iv_60d - analytics.atm_iv_7d)


def test_25_delta_risk_reversal_and_butterfly_match_a_direct_solve(
    analytics: ChainAnalytics,
) -> None:
    for e, t in enumerate(analytics.t_years):
        p = svi_params(float(t))

        def fwd_delta(k: float, p: tuple[float, ...] = p) -> float:
            s = math.sqrt(svi_total_variance(k, *p))
            return float(ndtr(-k / s + 0.5 * s))

        k_call = brentq(lambda k: fwd_delta(k) - 0.25, 0.0, 2.0)
        k_put = brentq(lambda k: fwd_delta(k) - 0.75, -2.0, 0.0)
        vc = math.sqrt(svi_total_variance(k_call, *p) / t)
        vp = math.sqrt(svi_total_variance(k_put, *p) / t)
        assert analytics.rr25[e] == pytest.approx(vc - vp, abs=5e-5)
        assert analytics.bf25[e] == pytest.approx(0.5 * (vc + vp) - true_atm(float(t)), abs=5e-5)
    assert np.all(analytics.rr25 < 0.0)  # put skew
    t = analytics.t_years
    assert analytics.rr25_30d == pytest.approx(float(np.interp(30 / 365, t, analytics.rr25)))
    assert analytics.bf25_30d == pytest.approx(float(np.interp(30 / 365, t, analytics.bf25)))


def test_expected_move_is_the_atm_straddle_carried_to_expiry(
    chain: ChainSnapshot, analytics: ChainAnalytics
) -> None:
    for e, t in enumerate(analytics.t_years):
        f = SPOT * math.exp((RATE - DIV) * t)
        rows = np.flatnonzero(chain.expiry_idx == e)
        k = chain.strike[rows][np.argmin(np.abs(chain.strike[rows] - f))]
        pair = rows[chain.strike[rows] == k]
        straddle = float(chain.mid[pair].sum()) * math.exp(RATE * t)
        assert analytics.expected_move[e] == pytest.approx(straddle)
        # Brenner & Subrahmanyam: close to 0.8 σ F √T at the money.
        assert straddle == pytest.approx(
            math.sqrt(2 / math.pi) * true_atm(t) * f * math.sqrt(t), rel=0.03
        )
    assert analytics.expected_move_front == analytics.expected_move[0]


def test_flat_volatility_chain_has_flat_term_structure_and_no_skew() -> None:
    flat = make_chain(
        spot=SPOT,
        iv=0.2,
        r=RATE,
        q=0.0,
        spread_pct=0.002,
        strikes=list(np.arange(350.0, 651.0, 5.0)),
    )
    out = analyze_chain(flat)
    assert out.atm_iv_30d == pytest.approx(0.2, abs=2e-3)
    assert abs(out.term_slope) < 2e-3
    assert abs(out.rr25_30d) < 2e-3 and abs(out.bf25_30d) < 2e-3


def test_counts_quotes_that_are_not_two_sided() -> None:
    chain = svi_chain()
    quoted = np.flatnonzero(chain.bid > 0.0)[:4]
    bid = np.array(chain.bid, copy=True)
    ask = np.array(chain.ask, copy=True)
    bid[quoted[:3]] = 0.0
    ask[quoted[3]] = bid[quoted[3]] - 0.05  # crossed
    vols, counts = chain_implied_vols(replace(chain, bid=bid, ask=ask))
    assert np.all(np.isnan(vols[quoted]))
    assert counts == {"no_quote": int(np.count_nonzero(chain.bid == 0.0)) + 4}


def test_reports_calendar_arbitrage_when_a_later_expiry_has_less_variance() -> None:
    def inverted(t: float) -> tuple[float, float, float, float, float]:
        a, b, rho, m, s = svi_params(t)
        return (a if t < 40 / 365 else 0.2 * a, b if t < 40 / 365 else 0.3 * b, rho, m, s)

    out = analyze_chain(svi_chain(params=inverted))
    assert out.calendar_violations >= 1


def test_warm_start_from_the_previous_analytics_gives_the_same_figures(
    chain: ChainSnapshot, analytics: ChainAnalytics
) -> None:
    again = analyze_chain(chain, previous=analytics)
    assert again.smile.iterations <= analytics.smile.iterations
    np.testing.assert_allclose(again.atm_iv, analytics.atm_iv, atol=1e-7)
    assert again.metrics().keys() == analytics.metrics().keys()


def test_interpolates_total_variance_and_extrapolates_flat() -> None:
    t = np.array([0.1, 0.2])
    vol = np.array([0.3, 0.2])
    assert interpolate_atm_iv(t, vol, 0.05) == 0.3
    assert interpolate_atm_iv(t, vol, 0.5) == 0.2
    mid = interpolate_atm_iv(t, vol, 0.15)
    assert mid == pytest.approx(math.sqrt((0.5 * 0.3**2 * 0.1 + 0.5 * 0.2**2 * 0.2) / 0.15))
    assert math.isnan(interpolate_atm_iv(np.array([]), np.array([]), 0.1))


def test_a_chain_without_usable_quotes_gives_nan_figures_not_errors() -> None:
    chain = svi_chain()
    empty = replace(chain, bid=np.zeros(len(chain)), ask=np.zeros(len(chain)))
    out = analyze_chain(empty)
    assert math.isnan(out.atm_iv_30d) and math.isnan(out.expected_move_front)
    assert np.all(np.isnan(out.smile.a))
    assert out.iv_rejected == {"no_quote": len(chain)}
    assert out.ts_ns == DEFAULT_AS_OF_NS


def test_an_empty_chain_or_a_single_strike_gives_nan_where_undefined() -> None:
    one = make_chain(strikes=[500.0])
    e = np.zeros(0)
    empty = replace(
        one,
        symbols=(),
        is_call=np.zeros(0, dtype=np.bool_),
        strike=e,
        expiries=(),
        expiry_idx=np.zeros(0, dtype=np.int64),
        t_years=e,
        bid=e,
        ask=e,
        iv=e,
        delta=e,
        gamma=e,
        vega=e,
        theta=e,
        open_interest=np.zeros(0, dtype=np.int64),
        volume=np.zeros(0, dtype=np.int64),
    )
    assert all(math.isnan(v) for v in analyze_chain(empty).metrics().values())
    single = analyze_chain(one)  # too few quotes for a smile: ATM from the strike itself
    assert np.all(np.isnan(single.smile.a))
    assert single.atm_iv_30d == pytest.approx(0.2, abs=1e-3)
    assert math.isnan(single.rr25_30d)
