"""Chain analytics from one option-chain snapshot: implied vols, SVI smiles, ATM term structure,
25-delta risk reversal and butterfly, and the expected move priced by the ATM straddle.

Pure functions over a read-only chain (any object shaped like gnosisd.bus.events.ChainSnapshot).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Protocol

import numpy as np
import numpy.typing as npt
from scipy.special import ndtri

from gnosisd.quant.iv import IVReject, solve_implied_vol
from gnosisd.quant.svi import SviFit, fit_svi

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

DAY = 1.0 / 365.0  # ACT/365, as ChainSnapshot.t_years
CONSTANT_MATURITIES = (7, 30, 60)  # calendar days
MIN_TERM_T = DAY  # expiries closer than one day are left out of the term structure
_Z25 = float(ndtri(0.25))  # N⁻¹(0.25) = −0.6745
_DELTA_ITER = 8
MAX_SMILE_POINTS = 64  # out-of-the-money quotes per expiry used in a smile fit
MAX_SMILE_SD = 4.0  # ... within this many ATM standard deviations of the forward


class ChainLike(Protocol):
    """The columns of a chain snapshot that the analytics read (ChainSnapshot satisfies it)."""

    @property
    def underlying(self) -> str: ...
    @property
    def ts_ns(self) -> int: ...
    @property
    def spot(self) -> float: ...
    @property
    def rate(self) -> float: ...
    @property
    def div_yield(self) -> float: ...
    @property
    def is_call(self) -> BoolArray: ...
    @property
    def strike(self) -> FloatArray: ...
    @property
    def expiries(self) -> tuple[date, ...]: ...
    @property
    def expiry_idx(self) -> IntArray: ...
    @property
    def t_years(self) -> FloatArray: ...
    @property
    def bid(self) -> FloatArray: ...
    @property
    def ask(self) -> FloatArray: ...


@dataclass(frozen=True, slots=True)
class ChainAnalytics:
    """Analytics of one snapshot. Per-expiry arrays have one entry per `expiries` item; vols are
    decimals (0.2 = 20 %), moves in price units, NaN where the chain did not allow a value."""

    underlying: str
    ts_ns: int
    spot: float
    iv: FloatArray  # per contract: European BSM implied vol of the mid quote
    iv_rejected: dict[str, int]  # IV failures by reason ("no_quote": not two-sided); {} if iv given
    expiries: tuple[date, ...]
    t_years: FloatArray  # per expiry
    forward: FloatArray  # per expiry, S e^{(r−q)T}
    smile: SviFit  # per-expiry raw SVI fit of total variance in k = ln(K/F)
    atm_iv: FloatArray  # per expiry: √(w(0)/T) from the smile (nearest-strike IV where unfitted)
    rr25: FloatArray  # per expiry: σ(25Δ call) − σ(25Δ put)
    bf25: FloatArray  # per expiry: (σ(25Δ call) + σ(25Δ put))/2 − σ_ATM
    expected_move: FloatArray  # per expiry: ATM straddle mid, forward value (e^{rT})
    atm_iv_7d: float
    atm_iv_30d: float
    atm_iv_60d: float
    rr25_30d: float
    bf25_30d: float
    term_slope: float  # atm_iv_60d − atm_iv_7d
    expected_move_front: float  # straddle move of the first expiry at least one day out
    calendar_violations: int  # adjacent fitted slices whose total variance decreases somewhere

    def metrics(self) -> dict[str, float]:
        """The scalar figures as a flat dict (for EngineSnapshot metrics)."""
        return {
            "atm_iv_7d": self.atm_iv_7d,
            "atm_iv_30d": self.atm_iv_30d,
            "atm_iv_60d": self.atm_iv_60d,
            "rr25_30d": self.rr25_30d,
            "bf25_30d": self.bf25_30d,
            "term_slope": self.term_slope,
            "expected_move_front": self.expected_move_front,
        }


def chain_implied_vols(chain: ChainLike) -> tuple[FloatArray, dict[str, int]]:
    """European implied vol of each contract's mid quote, and the failures counted by reason.

    Quotes count when bid > 0 and ask >= bid; others are "no_quote". Listed equity options are
    American: for in-the-money puts (and calls before a dividend) the mid carries an early-exercise
    premium that this inverse reads as extra vol; the smile fits use out-of-the-money quotes only.
    """
    two_sided = (chain.bid > 0.0) & (chain.ask >= chain.bid)
    mid = np.where(two_sided, 0.5 * (chain.bid + chain.ask), np.nan)
    res = solve_implied_vol(
        chain.is_call,
        mid,
        chain.spot,
        chain.strike,
        chain.t_years,
        chain.rate,
        chain.div_yield,
    )
    counts = res.counts()
    no_quote = int(np.count_nonzero(~two_sided & (res.reason == IVReject.BAD_INPUT)))
    if no_quote:
        counts["bad_input"] -= no_quote
        if not counts["bad_input"]:
            del counts["bad_input"]
        counts["no_quote"] = no_quote
    return res.iv, counts


def analyze_chain(
    chain: ChainLike,
    *,
    iv: FloatArray | None = None,
    previous: ChainAnalytics | None = None,
    min_points: int = 5,
) -> ChainAnalytics:
    """Compute `ChainAnalytics` for one snapshot.

    `iv` reuses per-contract implied vols already computed (else `chain_implied_vols`); `previous`
    (the last analytics of the same chain) warm-starts the SVI fits when the expiries match.
    """
    rejected: dict[str, int] = {}
    if iv is None:
        iv, rejected = chain_implied_vols(chain)
    n_exp = len(chain.expiries)
    e_idx = chain.expiry_idx
    t_e = np.zeros(n_exp)
    t_e[e_idx] = chain.t_years
    fwd = chain.spot * np.exp((chain.rate - chain.div_yield) * t_e)
    f_row = fwd[e_idx]
    k_row = np.log(chain.strike / f_row)
    otm = np.where(chain.is_call, chain.strike >= f_row, chain.strike < f_row)
    use = otm & np.isfinite(iv) & (chain.t_years > 0.0)
    w_row = iv * iv * chain.t_years
    # Leave out quotes more than MAX_SMILE_SD ATM standard deviations from the forward (min total
    # variance of the slice as the ATM proxy): priced at a tick or two, they carry no smile
    # information but can bend the fit.
    w_floor = np.full(n_exp, np.inf)
    np.minimum.at(w_floor, e_idx[use], w_row[use])
    use &= np.abs(k_row) <= MAX_SMILE_SD * np.sqrt(w_floor[e_idx])
    # Vega weights: φ(d1)√T relative to the slice's largest, so that wings priced at a tick or
    # two (whose mid IV is mostly rounding) count less than the liquid centre of the smile.
    with np.errstate(divide="ignore", invalid="ignore"):
        tot = np.sqrt(w_row)
        d1 = -k_row / tot + 0.5 * tot
        vega = np.exp(-0.5 * d1 * d1) * np.sqrt(chain.t_years)
    k_pad, w_pad, wt_pad = _pad_by_expiry(e_idx[use], k_row[use], w_row[use], vega[use], n_exp)
    start = previous.smile if previous is not None and previous.expiries == chain.expiries else None
    smile = fit_svi(k_pad, w_pad, wt_pad, min_points=min_points, start=start)

    atm_total = smile.total_variance(np.zeros(n_exp))
    with np.errstate(divide="ignore", invalid="ignore"):
        atm_iv = np.sqrt(atm_total / t_e)
    fallback = ~np.isfinite(atm_iv)
    if fallback.any():
        atm_iv = np.where(fallback, _nearest_strike_iv(chain, iv, f_row, n_exp), atm_iv)
    rr25, bf25 = _risk_reversal_butterfly(smile, t_e, atm_iv)
    move = _straddle_moves(chain, f_row, t_e, n_exp)

    term_ok = (t_e >= MIN_TERM_T) & np.isfinite(atm_iv) & (atm_iv > 0.0)
    cm = [interpolate_atm_iv(t_e[term_ok], atm_iv[term_ok], d / 365.0) for d in CONSTANT_MATURITIES]
    rr_ok = term_ok & np.isfinite(rr25)
    front = np.flatnonzero((t_e >= MIN_TERM_T) & np.isfinite(move))
    return ChainAnalytics(
        underlying=chain.underlying,
        ts_ns=chain.ts_ns,
        spot=float(chain.spot),
        iv=iv,
        iv_rejected=rejected,
        expiries=chain.expiries,
        t_years=t_e,
        forward=fwd,
        smile=smile,
        atm_iv=atm_iv,
        rr25=rr25,
        bf25=bf25,
        expected_move=move,
        atm_iv_7d=cm[0],
        atm_iv_30d=cm[1],
        atm_iv_60d=cm[2],
        rr25_30d=_interp_flat(t_e[rr_ok], rr25[rr_ok], 30.0 / 365.0),
        bf25_30d=_interp_flat(t_e[rr_ok], bf25[rr_ok], 30.0 / 365.0),
        term_slope=cm[2] - cm[0],
        expected_move_front=float(move[front[0]]) if front.size else float("nan"),
        calendar_violations=_calendar_violations(smile, k_pad, wt_pad),
    )


def interpolate_atm_iv(t: FloatArray, atm_iv: FloatArray, target: float) -> float:
    """ATM vol at maturity `target` (years) by linear interpolation of total variance σ²T between
    the bracketing expiries, flat vol beyond the first and last (Cboe VIX white paper method).
    `t` ascending; NaN when empty."""
    if t.size == 0:
        return float("nan")
    if target <= t[0]:
        return float(atm_iv[0])
    if target >= t[-1]:
        return float(atm_iv[-1])
    w = float(np.interp(target, t, atm_iv * atm_iv * t))
    return float(np.sqrt(max(w, 0.0) / target))


def _interp_flat(t: FloatArray, y: FloatArray, target: float) -> float:
    if t.size == 0:
        return float("nan")
    return float(np.interp(target, t, y))


def _pad_by_expiry(
    e: IntArray, k: FloatArray, w: FloatArray, weight: FloatArray, n_exp: int
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Scatter rows into (E, N) arrays per expiry, sorted by k; padding has weight 0."""
    order = np.lexsort((k, e))
    e_s = e[order]
    counts = np.bincount(e_s, minlength=n_exp)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pos = np.arange(e_s.size) - starts[e_s]
    # Thin dense slices to MAX_SMILE_POINTS evenly spaced by rank in k (keeps the $1 strikes'
    # density near the money, drops redundancy that only costs fitting time).
    c = counts[e_s]
    step = (c - 1) / (MAX_SMILE_POINTS - 1)
    j = np.rint(pos / np.where(c > MAX_SMILE_POINTS, step, 1.0))
    keep = (c <= MAX_SMILE_POINTS) | (np.rint(j * step) == pos)
    order, e_s, j = order[keep], e_s[keep], j[keep]
    pos = np.where(counts[e_s] > MAX_SMILE_POINTS, j, pos[keep]).astype(np.int64)
    counts = np.bincount(e_s, minlength=n_exp)
    width = max(int(counts.max()) if counts.size else 0, 1)
    k_pad = np.zeros((n_exp, width))
    w_pad = np.zeros((n_exp, width))
    wt_pad = np.zeros((n_exp, width))
    k_pad[e_s, pos] = k[order]
    w_pad[e_s, pos] = w[order]
    peak = np.zeros(n_exp)
    np.maximum.at(peak, e_s, weight[order])
    wt_pad[e_s, pos] = weight[order] / np.where(peak[e_s] > 0.0, peak[e_s], 1.0)
    return k_pad, w_pad, wt_pad


def _nearest_strike_iv(
    chain: ChainLike, iv: FloatArray, f_row: FloatArray, n_exp: int
) -> FloatArray:
    """Per expiry: mean IV of the contracts at the strike with a usable IV nearest the forward."""
    ok = np.flatnonzero(np.isfinite(iv))
    e = chain.expiry_idx[ok]
    order = np.lexsort((np.abs(chain.strike - f_row)[ok], e))
    first = order[np.unique(e[order], return_index=True)[1]]
    best = np.full(n_exp, np.nan)
    best[e[first]] = chain.strike[ok][first]
    same = np.isfinite(iv) & (chain.strike == best[chain.expiry_idx])
    sums = np.bincount(chain.expiry_idx[same], weights=iv[same], minlength=n_exp)
    cnt = np.bincount(chain.expiry_idx[same], minlength=n_exp)
    return np.asarray(np.where(cnt > 0, sums / np.maximum(cnt, 1), np.nan), dtype=np.float64)


def _risk_reversal_butterfly(
    smile: SviFit, t_e: FloatArray, atm_iv: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """25-delta risk reversal and butterfly per expiry from the fitted smile.

    Forward (undiscounted) Black delta: N(d1) = 0.25 for the call, N(d1) − 1 = −0.25 for the put,
    d1 = −k/s + s/2 with s = σ(k)√T; solved by fixed-point iteration k = s(s/2 − d1).
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        s0 = atm_iv * np.sqrt(t_e)
        k_c = s0 * (0.5 * s0 - _Z25)
        k_p = s0 * (0.5 * s0 + _Z25)
        for _ in range(_DELTA_ITER):
            s_c = np.sqrt(np.maximum(smile.total_variance(k_c), 0.0))
            s_p = np.sqrt(np.maximum(smile.total_variance(k_p), 0.0))
            k_c = s_c * (0.5 * s_c - _Z25)
            k_p = s_p * (0.5 * s_p + _Z25)
        vol_c = np.sqrt(np.maximum(smile.total_variance(k_c), 0.0) / t_e)
        vol_p = np.sqrt(np.maximum(smile.total_variance(k_p), 0.0) / t_e)
    return vol_c - vol_p, 0.5 * (vol_c + vol_p) - atm_iv


def _straddle_moves(chain: ChainLike, f_row: FloatArray, t_e: FloatArray, n_exp: int) -> FloatArray:
    """Per expiry: call mid + put mid at the strike nearest the forward where both are two-sided,
    carried to expiry (× e^{rT}). The straddle is worth E|S_T − K|: the risk-neutral expected
    absolute move (≈ 0.8 σ S √T, Brenner & Subrahmanyam 1988)."""
    two_sided = (chain.bid > 0.0) & (chain.ask >= chain.bid)
    mid = 0.5 * (chain.bid + chain.ask)
    cents = np.rint(chain.strike * 100.0).astype(np.int64)
    key = chain.expiry_idx.astype(np.int64) * 10**12 + cents
    calls = np.flatnonzero(two_sided & chain.is_call)
    puts = np.flatnonzero(two_sided & ~chain.is_call)
    out = np.full(n_exp, np.nan)
    common, ci, pi = np.intersect1d(key[calls], key[puts], assume_unique=False, return_indices=True)
    if common.size == 0:
        return out
    c_rows, p_rows = calls[ci], puts[pi]
    e = chain.expiry_idx[c_rows]
    dist = np.abs(chain.strike[c_rows] - f_row[c_rows])
    order = np.lexsort((dist, e))
    first = order[np.unique(e[order], return_index=True)[1]]
    straddle = mid[c_rows[first]] + mid[p_rows[first]]
    ee = e[first]
    out[ee] = straddle * np.exp(chain.rate * t_e[ee])
    return out


def _calendar_violations(smile: SviFit, k_pad: FloatArray, wt_pad: FloatArray) -> int:
    """Count adjacent fitted expiries whose total variance falls with maturity at some k in the
    shorter one's quoted range (calendar arbitrage: w must not decrease in T at fixed k;
    Gatheral & Jacquier 2014, §2)."""
    fitted = np.flatnonzero(np.isfinite(smile.a))
    if fitted.size < 2:
        return 0
    has = wt_pad[fitted[:-1]] > 0.0
    lo = np.where(has, k_pad[fitted[:-1]], np.inf).min(axis=1)
    hi = np.where(has, k_pad[fitted[:-1]], -np.inf).max(axis=1)
    grid = lo[:, None] + (hi - lo)[:, None] * np.linspace(0.0, 1.0, 21)[None, :]
    short = _svi_rows(smile, fitted[:-1], grid)
    long = _svi_rows(smile, fitted[1:], grid)
    return int(np.count_nonzero(np.any(long < short * (1.0 - 1e-9) - 1e-12, axis=1)))


def _svi_rows(smile: SviFit, rows: IntArray, k: FloatArray) -> FloatArray:
    a, b, rho, m, sig = (
        p[rows][:, None] for p in (smile.a, smile.b, smile.rho, smile.m, smile.sigma)
    )
    d = k - m
    return np.asarray(a + b * (rho * d + np.sqrt(d * d + sig * sig)), dtype=np.float64)
