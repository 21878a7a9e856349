"""Vectorised American option prices (Bjerksund-Stensland 2002 closed form) and their implied vol.

Source: P. Bjerksund and G. Stensland, "Closed Form Valuation of American Options", NHH discussion
paper, 2002; as printed in Haug, The Complete Guide to Option Pricing Formulas (2nd ed.), §3.1.4.
"""

from __future__ import annotations

import numpy as np
from scipy.special import log_ndtr, ndtr

from gnosisd.quant import bsm
from gnosisd.quant.bsm import ArrayLike, FloatArray, is_call_mask

# Two-step flat exercise boundary: the first step ends at t1 = ½(√5 − 1)T (the paper's choice),
# so the bivariate-normal correlation in ψ is always ±√(t1/T) = ±0.786.
_T1_SHARE = 0.5 * (np.sqrt(5.0) - 1.0)
_RHO = float(np.sqrt(_T1_SHARE))

# 20-point Gauss-Legendre nodes and weights on [-1, 1] for the bivariate normal (Genz 2004).
_GL_X, _GL_W = np.polynomial.legendre.leggauss(20)


def bivariate_normal_cdf(a: FloatArray, b: FloatArray, rho: float) -> FloatArray:
    """P(X < a, Y < b) for standard normals with correlation |rho| < 0.925, vectorised.

    Drezner-Wesolowsky as refined by A. Genz, "Numerical computation of rectangular bivariate and
    trivariate normal and t probabilities", Statistics and Computing 14 (2004): Gauss-Legendre
    quadrature of Plackett's identity over arcsin(ρ); about 1e-15 absolute for |ρ| < 0.925.
    """
    if not abs(rho) < 0.925:
        raise ValueError(f"bivariate_normal_cdf supports |rho| < 0.925, got {rho}")
    h, k = -a, -b  # Genz computes P(X > h, Y > k)
    hk = h * k
    hs = 0.5 * (h * h + k * k)
    asr = np.arcsin(rho)
    sn = np.sin(0.5 * asr * (_GL_X + 1.0))  # nodes of the integral over [0, asin ρ]
    total = np.zeros(np.broadcast(h, k).shape)
    for s_i, w_i in zip(sn, _GL_W, strict=True):
        total += w_i * np.exp((s_i * hk - hs) / (1.0 - s_i * s_i))
    out = total * asr / (4.0 * np.pi) + ndtr(-h) * ndtr(-k)
    return np.asarray(np.clip(out, 0.0, 1.0), dtype=np.float64)


def _phi(
    S: FloatArray,
    t: FloatArray,
    gamma: FloatArray | float,
    H: FloatArray,
    I: FloatArray,  # noqa: E741 (the paper's name)
    r: FloatArray,
    b: FloatArray,
    v: FloatArray,
    log_scale: FloatArray | float = 0.0,
) -> FloatArray:
    """Haug §3.1.4 φ(S, t, γ, H, I) times e^{log_scale}:
    e^λ S^γ [N(d) − (I/S)^κ N(d − 2 ln(I/S)/(σ√t))]."""
    vt = v * np.sqrt(t)
    v2 = v * v
    lam = (-r + gamma * b + 0.5 * gamma * (gamma - 1.0) * v2) * t
    d = -(np.log(S / H) + (b + (gamma - 0.5) * v2) * t) / vt
    kappa = 2.0 * b / v2 + (2.0 * gamma - 1.0)
    ln_is = np.log(I / S)
    base = lam + gamma * np.log(S) + log_scale
    # Work in logs: (I/S)^κ can overflow where N(·) underflows.
    first = np.exp(base + log_ndtr(d))
    second = np.exp(base + kappa * ln_is + log_ndtr(d - 2.0 * ln_is / vt))
    return np.asarray(first - second, dtype=np.float64)


def _psi(
    S: FloatArray,
    T: FloatArray,
    gamma: FloatArray | float,
    H: FloatArray,
    I2: FloatArray,
    I1: FloatArray,
    t1: FloatArray,
    r: FloatArray,
    b: FloatArray,
    v: FloatArray,
    log_scale: FloatArray | float = 0.0,
) -> FloatArray:
    """Haug §3.1.4 ψ(S, T, γ, H, I2, I1, t1) times e^{log_scale} (four bivariate-normal terms)."""
    v2 = v * v
    drift1 = (b + (gamma - 0.5) * v2) * t1
    drift = (b + (gamma - 0.5) * v2) * T
    vt1 = v * np.sqrt(t1)
    vt = v * np.sqrt(T)
    ln_s_i1 = np.log(S / I1)
    ln_i2i2_si1 = np.log(I2 * I2 / (S * I1))
    e1 = (ln_s_i1 + drift1) / vt1
    e2 = (ln_i2i2_si1 + drift1) / vt1
    e3 = (ln_s_i1 - drift1) / vt1
    e4 = (ln_i2i2_si1 - drift1) / vt1
    f1 = (np.log(S / H) + drift) / vt
    f2 = (np.log(I2 * I2 / (S * H)) + drift) / vt
    f3 = (np.log(I1 * I1 / (S * H)) + drift) / vt
    f4 = (np.log(S * I1 * I1 / (H * I2 * I2)) + drift) / vt
    lam = -r + gamma * b + 0.5 * gamma * (gamma - 1.0) * v2
    kappa = 2.0 * b / v2 + (2.0 * gamma - 1.0)
    base = lam * T + gamma * np.log(S) + log_scale
    m1 = bivariate_normal_cdf(-e1, -f1, _RHO)
    m2 = bivariate_normal_cdf(-e2, -f2, _RHO)
    m3 = bivariate_normal_cdf(-e3, -f3, -_RHO)
    m4 = bivariate_normal_cdf(-e4, -f4, -_RHO)
    with np.errstate(divide="ignore"):
        terms = (
            np.exp(base + np.log(m1))
            - np.exp(base + kappa * np.log(I2 / S) + np.log(m2))
            - np.exp(base + kappa * np.log(I1 / S) + np.log(m3))
            + np.exp(base + kappa * np.log(I1 / I2) + np.log(m4))
        )
    return np.asarray(terms, dtype=np.float64)


def _call_2002(
    S: FloatArray, K: FloatArray, T: FloatArray, r: FloatArray, b: FloatArray, v: FloatArray
) -> FloatArray:
    """American call with cost of carry b < r, all inputs positive and finite (1-d arrays)."""
    v2 = v * v
    t1 = _T1_SHARE * T
    beta = (0.5 - b / v2) + np.sqrt((b / v2 - 0.5) ** 2 + 2.0 * r / v2)
    b_inf = beta / (beta - 1.0) * K
    b0 = np.maximum(K, r / (r - b) * K)
    span = b_inf - b0
    # Flat exercise boundaries I2 (from h(T)) and I1 (from h(t1)) as in Haug's reference code.
    # With I1 = I2 the formula reduces exactly to the 1993 one-boundary approximation (tested).
    ht1 = -(b * t1 + 2.0 * v * np.sqrt(t1)) * K * K / (span * b0)
    ht2 = -(b * T + 2.0 * v * np.sqrt(T)) * K * K / (span * b0)
    i1 = b0 + span * (1.0 - np.exp(ht1))
    i2 = b0 + span * (1.0 - np.exp(ht2))
    # α_j S^β = (I_j − K)(S/I_j)^β: scale by e^{−β ln I_j} inside φ and ψ instead of forming S^β.
    la1 = -beta * np.log(i1)
    la2 = -beta * np.log(i2)
    a1 = i1 - K
    a2 = i2 - K
    value = (
        a2 * np.exp(beta * np.log(S) + la2)
        - a2 * _phi(S, t1, beta, i2, i2, r, b, v, la2)
        + _phi(S, t1, 1.0, i2, i2, r, b, v)
        - _phi(S, t1, 1.0, i1, i2, r, b, v)
        - K * _phi(S, t1, 0.0, i2, i2, r, b, v)
        + K * _phi(S, t1, 0.0, i1, i2, r, b, v)
        + a1 * _phi(S, t1, beta, i1, i2, r, b, v, la1)
        - a1 * _psi(S, T, beta, i1, i2, i1, t1, r, b, v, la1)
        + _psi(S, T, 1.0, i1, i2, i1, t1, r, b, v)
        - _psi(S, T, 1.0, K, i2, i1, t1, r, b, v)
        - K * _psi(S, T, 0.0, i1, i2, i1, t1, r, b, v)
        + K * _psi(S, T, 0.0, K, i2, i1, t1, r, b, v)
    )
    return np.asarray(np.where(i2 <= S, S - K, value), dtype=np.float64)


def price(
    kind: ArrayLike,
    S: ArrayLike,
    K: ArrayLike,
    T: ArrayLike,
    r: ArrayLike,
    q: ArrayLike,
    sigma: ArrayLike,
) -> FloatArray:
    """Price American options (per share) by Bjerksund-Stensland 2002; broadcasts like bsm.price.

    Puts use the put-call transformation P(S, K, T, r, b, σ) = C(K, S, T, r − b, −b, σ) (Haug
    §3.1.4, b = r − q). Where early exercise never pays (calls with q <= 0, puts with r <= 0) the
    price is the European one. T <= 0 gives intrinsic value; σ <= 0 or non-finite inputs fall back
    to max(European, intrinsic). The result is never below intrinsic value.
    """
    c, s, k, t, rr, qq, v = np.broadcast_arrays(
        is_call_mask(kind),
        np.asarray(S, dtype=np.float64),
        np.asarray(K, dtype=np.float64),
        np.asarray(T, dtype=np.float64),
        np.asarray(r, dtype=np.float64),
        np.asarray(q, dtype=np.float64),
        np.asarray(sigma, dtype=np.float64),
    )
    shape = s.shape
    c, s, k, t, rr, qq, v = (x.ravel() for x in (c, s, k, t, rr, qq, v))
    euro = bsm.price(c, s, k, t, rr, qq, v)
    intrinsic = np.maximum(np.where(c, s - k, k - s), 0.0)
    out = np.maximum(euro, intrinsic)
    b = rr - qq
    # Call inputs after the put transformation: (S, K, r, b) -> (K, S, r − b, −b).
    cs = np.where(c, s, k)
    ck = np.where(c, k, s)
    cr = np.where(c, rr, qq)
    cb = np.where(c, b, -b)
    finite = np.isfinite(s) & np.isfinite(k) & np.isfinite(t) & np.isfinite(v)
    finite &= np.isfinite(rr) & np.isfinite(qq)
    early = finite & (t > 0.0) & (v > 0.0) & (s > 0.0) & (k > 0.0) & (cb < cr)
    idx = np.flatnonzero(early)
    if idx.size:
        # Extreme inputs (σ → 0, huge β) can overflow inside; such rows fall back (checked below).
        with np.errstate(all="ignore"):
            am = _call_2002(cs[idx], ck[idx], t[idx], cr[idx], cb[idx], v[idx])
        # The approximation is a lower bound of the true price; never report less than European
        # or intrinsic value (it can dip below European by rounding for tiny premia).
        out[idx] = np.where(np.isfinite(am), np.maximum(am, out[idx]), out[idx])
    return np.asarray(out, dtype=np.float64).reshape(shape)


_price = price  # implied_vol's `price` argument shadows the function


def implied_vol(
    kind: ArrayLike,
    price: ArrayLike,
    S: ArrayLike,
    K: ArrayLike,
    T: ArrayLike,
    r: ArrayLike,
    q: ArrayLike,
    *,
    tol: float = 1e-10,
    max_iter: int = 60,
) -> FloatArray:
    """Return the vol at which `price` (Bjerksund-Stensland 2002) matches each American price.

    Vectorised Illinois (safeguarded regula falsi) on σ ∈ [1e-4, 5] (the approximation has no
    closed-form vega), at most `max_iter` price evaluations per row; NaN where the price is not
    inside (price at σ = 1e-4, price at σ = 5) — e.g. at intrinsic value in the immediate-exercise
    region — or inputs are invalid. Hundreds of times the cost of the European inverse (each
    evaluation is a Bjerksund-Stensland price): meant for single legs and checks, not whole chains.
    """
    c, p, s, k, t, rr, qq = np.broadcast_arrays(
        is_call_mask(kind),
        np.asarray(price, dtype=np.float64),
        np.asarray(S, dtype=np.float64),
        np.asarray(K, dtype=np.float64),
        np.asarray(T, dtype=np.float64),
        np.asarray(r, dtype=np.float64),
        np.asarray(q, dtype=np.float64),
    )
    shape = p.shape
    c, p, s, k, t, rr, qq = (a.ravel() for a in (c, p, s, k, t, rr, qq))
    finite = np.isfinite(p) & np.isfinite(s) & np.isfinite(k) & np.isfinite(t)
    finite &= np.isfinite(rr) & np.isfinite(qq)
    ok = finite & (s > 0.0) & (k > 0.0) & (t > 0.0) & (p >= 0.0)
    s_, k_, t_ = np.where(ok, s, 1.0), np.where(ok, k, 1.0), np.where(ok, t, 1.0)
    r_, q_, p_ = np.where(ok, rr, 0.0), np.where(ok, qq, 0.0), np.where(ok, p, 0.0)
    lo = np.full(p.shape, 1e-4)
    hi = np.full(p.shape, 5.0)
    f_lo = _price(c, s_, k_, t_, r_, q_, lo) - p_
    f_hi = _price(c, s_, k_, t_, r_, q_, hi) - p_
    ok &= (f_lo < 0.0) & (f_hi > 0.0)
    out = np.full(p.shape, np.nan)
    act = np.flatnonzero(ok)
    lo, hi, f_lo, f_hi = lo[act], hi[act], f_lo[act], f_hi[act]
    side = np.zeros(act.size, dtype=np.int8)  # which end the last step replaced (−1 lo, +1 hi)
    for _ in range(max_iter):
        if act.size == 0:
            break
        # Illinois method (Dowell & Jarratt 1971): regula falsi that halves the function value
        # kept at an end replaced twice in a row; superlinear, and the bracket always holds.
        with np.errstate(all="ignore"):
            sec = (lo * f_hi - hi * f_lo) / (f_hi - f_lo)
        v = np.where(np.isfinite(sec) & (sec > lo) & (sec < hi), sec, 0.5 * (lo + hi))
        f_v = _price(c[act], s_[act], k_[act], t_[act], r_[act], q_[act], v) - p_[act]
        below = f_v < 0.0
        f_hi = np.where(below & (side == -1), 0.5 * f_hi, f_hi)
        f_lo = np.where(~below & (side == 1), 0.5 * f_lo, f_lo)
        lo = np.where(below, v, lo)
        f_lo = np.where(below, f_v, f_lo)
        hi = np.where(below, hi, v)
        f_hi = np.where(below, f_hi, f_v)
        side = np.where(below, -1, 1).astype(np.int8)
        done = (hi - lo <= tol * v) | (np.abs(f_v) <= 1e-14 * s_[act])
        out[act[done]] = v[done]
        keep = ~done
        act, lo, hi, f_lo, f_hi, side = (
            act[keep],
            lo[keep],
            hi[keep],
            f_lo[keep],
            f_hi[keep],
            side[keep],
        )
    return out.reshape(shape)
