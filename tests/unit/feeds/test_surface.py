"""The simulated IV surface and chain pricing."""

from __future__ import annotations

from datetime import date

import numpy as np

from gnosisd.core.calendar import TradingCalendar
from gnosisd.feeds.listing import build_grid, expiry_close_ns
from gnosisd.feeds.surface import SurfaceParams, atm_vol, price_chain, surface_iv
from gnosisd.quant import bsm

DAY = date(2025, 3, 3)
OPEN_NS = expiry_close_ns(DAY) - 390 * 60 * 1_000_000_000
PARAMS = SurfaceParams(long_run_vol=0.165)


def test_term_structure_is_upward_when_calm_and_inverted_in_a_spike() -> None:
    t = np.array([2, 10, 30, 90, 180]) / 365
    calm = atm_vol(0.12, 0.165, t, 0.25)
    spike = atm_vol(0.35, 0.165, t, 0.25)
    assert np.all(np.diff(calm) > 0)
    assert np.all(np.diff(spike) < 0)


def test_otm_puts_carry_more_vol_than_equally_distant_otm_calls() -> None:
    t = np.full(3, 30 / 365)
    spot = 580.0
    iv = surface_iv(spot, np.array([0.95, 1.0, 1.05]) * spot, t, 0.045, 0.013, 0.16, PARAMS)
    assert iv[0] > iv[1] > iv[2]
    assert np.all((iv > 0.04) & (iv < 3.0))


def test_wings_turn_up_far_from_the_money() -> None:
    t = np.full(3, 30 / 365)
    iv = surface_iv(580.0, np.array([640.0, 700.0, 760.0]), t, 0.045, 0.013, 0.16, PARAMS)
    assert iv[2] > iv[1]


def test_chain_quotes_bracket_the_bsm_price_on_the_surface_iv() -> None:
    grid = build_grid("SPY", DAY, 580.0, TradingCalendar(), np.random.default_rng(3))
    ts = OPEN_NS + 60 * 60 * 1_000_000_000
    snap = price_chain(grid, ts, 581.3, 0.045, 0.013, 0.17, PARAMS, 0.3)
    theo = bsm.price(snap.is_call, snap.spot, snap.strike, snap.t_years, 0.045, 0.013, snap.iv)
    intrinsic = np.maximum(np.where(snap.is_call, 581.3 - snap.strike, snap.strike - 581.3), 0.0)
    fair = np.maximum(theo, intrinsic)
    assert np.all(snap.bid <= fair + 1e-9) and np.all(snap.ask >= fair - 1e-9)
    assert np.all(snap.ask - snap.bid >= 0.01 - 1e-9)
    np.testing.assert_allclose(np.round(snap.bid * 100), snap.bid * 100, atol=1e-6)
    g = bsm.greeks(snap.is_call, snap.spot, snap.strike, snap.t_years, 0.045, 0.013, snap.iv)
    np.testing.assert_allclose(snap.delta, g.delta)
    np.testing.assert_allclose(snap.vega, g.vega)
    np.testing.assert_array_equal(snap.volume, np.floor(grid.daily_volume * 0.3).astype(np.int64))


def test_relative_spreads_widen_away_from_the_money() -> None:
    grid = build_grid("SPY", DAY, 580.0, TradingCalendar(), np.random.default_rng(3))
    snap = price_chain(grid, OPEN_NS, 580.0, 0.045, 0.013, 0.17, PARAMS, 0.0)
    exp = snap.expiries.index(date(2025, 3, 21))
    puts = (snap.expiry_idx == exp) & ~snap.is_call
    rel = (snap.ask - snap.bid) / snap.mid
    atm = puts & (snap.strike == 580.0)
    otm = puts & (snap.strike == 545.0)
    assert rel[otm][0] > 2 * rel[atm][0]
