"""Implied-volatility surface of the simulated market and the pricing of a chain snapshot on it.

ATM term structure relaxes from the 30-day level towards a long-run level (power law in T); the smile
is quadratic in standardised log-moneyness with a negative (put) slope. Quotes are BSM on that IV.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gnosisd.bus.events import ChainSnapshot
from gnosisd.feeds.listing import ChainGrid
from gnosisd.quant import bsm

FloatArray = npt.NDArray[np.float64]

NS_PER_YEAR = 365.0 * 86_400e9  # ACT/365
_T30 = 30.0 / 365.0
_MIN_T_TERM = 3.0 / 365.0  # floor of the term-structure power law (keeps 0DTE finite)
_MIN_IV = 0.04
_MAX_IV = 3.0
_TICK = 0.01


@dataclass(frozen=True, slots=True)
class SurfaceParams:
    """Shape of the smile: iv = atm(T) · (1 − skew·k + smile·k²), k = ln(K/F)/(atm(T)·√T) ∈ [−5, 5]."""

    long_run_vol: float  # ATM level far out the term structure
    skew: float = 0.12
    smile: float = 0.03
    term_power: float = 0.25
    spread_mult: float = 1.0  # widens every option spread (volatile regimes)


def atm_vol(iv30: float, long_run_vol: float, t_years: FloatArray, power: float) -> FloatArray:
    """ATM vol by maturity: long_run + (iv30 − long_run)·(30d / T)^power (contango or backwardation)."""
    t = np.maximum(t_years, _MIN_T_TERM)
    out = long_run_vol + (iv30 - long_run_vol) * (_T30 / t) ** power
    return np.asarray(np.clip(out, _MIN_IV, _MAX_IV), dtype=np.float64)


def surface_iv(
    spot: float,
    strike: FloatArray,
    t_years: FloatArray,
    rate: float,
    div_yield: float,
    iv30: float,
    params: SurfaceParams,
) -> FloatArray:
    """Implied vol for each (strike, T) on the surface defined by the 30-day ATM level `iv30`."""
    atm = atm_vol(iv30, params.long_run_vol, t_years, params.term_power)
    t = np.maximum(t_years, 1e-6)
    fwd = spot * np.exp((rate - div_yield) * t)
    k = np.clip(np.log(strike / fwd) / (atm * np.sqrt(t)), -5.0, 5.0)
    iv = atm * (1.0 - params.skew * k + params.smile * k * k)
    return np.asarray(np.clip(iv, _MIN_IV, _MAX_IV), dtype=np.float64)


def _spread(
    theo: FloatArray, intrinsic: FloatArray, k_abs: FloatArray, t_years: FloatArray, mult: float
) -> FloatArray:
    """Quoted width: a tick plus a share of the time value (larger away from the money), a small
    share of intrinsic value (the market maker's delta hedge), wider for longer expiries."""
    rel = 0.008 + 0.012 * np.minimum(k_abs, 4.0)
    extrinsic = theo - intrinsic
    width = (_TICK + rel * extrinsic + 0.003 * intrinsic) * (1.0 + 0.5 * np.sqrt(t_years)) * mult
    return np.asarray(np.maximum(width, _TICK), dtype=np.float64)


def price_chain(
    grid: ChainGrid,
    ts_ns: int,
    spot: float,
    rate: float,
    div_yield: float,
    iv30: float,
    params: SurfaceParams,
    volume_fraction: float,
) -> ChainSnapshot:
    """Quote every contract of `grid` at `ts_ns`; `volume_fraction` is the share of the day traded."""
    close_ns = grid.expiry_close_ns[grid.expiry_idx]
    t_years = np.maximum(close_ns - ts_ns, 0).astype(np.float64) / NS_PER_YEAR
    iv = surface_iv(spot, grid.strike, t_years, rate, div_yield, iv30, params)
    theo = bsm.price(grid.is_call, spot, grid.strike, t_years, rate, div_yield, iv)
    # Listed options are American: never quote below intrinsic value (deep ITM puts).
    intrinsic = np.maximum(np.where(grid.is_call, spot - grid.strike, grid.strike - spot), 0.0)
    theo = np.maximum(theo, intrinsic)
    g = bsm.greeks(grid.is_call, spot, grid.strike, t_years, rate, div_yield, iv)
    atm = atm_vol(iv30, params.long_run_vol, t_years, params.term_power)
    k_abs = np.abs(np.log(grid.strike / spot)) / (atm * np.sqrt(np.maximum(t_years, 1e-6)))
    half = 0.5 * _spread(theo, intrinsic, k_abs, t_years, params.spread_mult)
    # Integer cents avoid float dust: bid floored, ask ceiled, at least one tick wide, bid >= 0.
    bid_c = np.maximum(np.floor((theo - half) / _TICK + 1e-9), 0.0)
    ask_c = np.maximum(np.ceil((theo + half) / _TICK - 1e-9), bid_c + 1.0)
    bid: FloatArray = np.asarray(bid_c / 100.0, dtype=np.float64)
    ask: FloatArray = np.asarray(ask_c / 100.0, dtype=np.float64)
    frac = min(max(volume_fraction, 0.0), 1.0)
    volume = np.floor(grid.daily_volume * frac).astype(np.int64)
    return ChainSnapshot(
        underlying=grid.underlying,
        ts_ns=ts_ns,
        spot=spot,
        rate=rate,
        div_yield=div_yield,
        symbols=grid.symbols,
        is_call=grid.is_call,
        strike=grid.strike,
        expiries=grid.expiries,
        expiry_idx=grid.expiry_idx,
        t_years=t_years,
        bid=bid,
        ask=ask,
        iv=iv,
        delta=g.delta,
        gamma=g.gamma,
        vega=g.vega,
        theta=g.theta,
        open_interest=grid.open_interest,
        volume=volume,
    )
