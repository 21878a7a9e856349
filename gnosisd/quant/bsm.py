"""Vectorised Black-Scholes-Merton prices and greeks with a continuous dividend yield q.

Inputs are numpy arrays or scalars and broadcast together; outputs are float64 arrays. `kind` is
"call"/"put" ("c"/"p", an OptionType), an array of them, or booleans (True = call); T in years.
Formulas: Haug, The Complete Guide to Option Pricing Formulas (2nd ed.), ch. 1-2 (generalised BSM, b=r-q).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
ArrayLike = npt.ArrayLike

_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)


@dataclass(frozen=True, slots=True)
class Greeks:
    """Per-share sensitivities (arrays of the broadcast shape).

    vega is per 1.00 of vol (divide by 100 for one vol point), theta per year of calendar time
    passing (dV/dt = -dV/dT; divide by 365 for one day), rho per 1.00 of rate, vanna = dDelta/dSigma
    (= dVega/dS, per 1.00 of vol), charm = dDelta/dt (change of delta as one year passes), vomma
    (volga) = dVega/dSigma (per 1.00 of vol, squared).
    """

    delta: FloatArray
    gamma: FloatArray
    vega: FloatArray
    theta: FloatArray
    rho: FloatArray
    vanna: FloatArray
    charm: FloatArray
    vomma: FloatArray


def is_call_mask(kind: ArrayLike) -> BoolArray:
    """Return a boolean array (True = call) for `kind`: booleans, or "call"/"put"/"c"/"p" strings.

    Raise ValueError for any other string and TypeError for other dtypes (an integer ±1 convention
    would silently read puts as calls).
    """
    arr = np.asarray(kind)
    if arr.dtype == np.bool_:
        return arr
    if arr.dtype.kind in "USO":
        text = arr.astype(np.str_)
        call = (text == "call") | (text == "c")
        put = (text == "put") | (text == "p")
        if not np.all(call | put):
            bad = sorted({str(v) for v in np.atleast_1d(text[~(call | put)])})[:5]
            raise ValueError(f"option kind must be 'call' or 'put' ('c'/'p'), got {bad}")
        return np.asarray(call, dtype=np.bool_)
    raise TypeError(f"option kind must be booleans or 'call'/'put' strings, got dtype {arr.dtype}")


@dataclass(frozen=True, slots=True)
class _Core:
    """Shared intermediate terms; degenerate rows (T<=0, sigma<=0, S<=0) are already resolved."""

    call: npt.NDArray[np.bool_]
    S: FloatArray
    K: FloatArray
    T: FloatArray  # clipped at 0
    r: FloatArray
    q: FloatArray
    sigma: FloatArray  # 1.0 where degenerate (keeps divisions finite)
    sqrt_t: FloatArray  # 1.0 where degenerate
    expired: npt.NDArray[np.bool_]
    d1: FloatArray  # 0.0 where degenerate
    d2: FloatArray  # 0.0 where degenerate
    pdf1: FloatArray  # n(d1), 0.0 where degenerate
    cdf1: FloatArray  # N(d1), or the deterministic-forward indicator where degenerate
    cdf2: FloatArray  # N(d2), idem
    dq: FloatArray  # e^{-qT}
    dr: FloatArray  # e^{-rT}


def _core(
    kind: ArrayLike,
    S: ArrayLike,
    K: ArrayLike,
    T: ArrayLike,
    r: ArrayLike,
    q: ArrayLike,
    sigma: ArrayLike,
) -> _Core:
    c, s, k, t, rr, qq, v = np.broadcast_arrays(
        is_call_mask(kind),
        np.asarray(S, dtype=np.float64),
        np.asarray(K, dtype=np.float64),
        np.asarray(T, dtype=np.float64),
        np.asarray(r, dtype=np.float64),
        np.asarray(q, dtype=np.float64),
        np.asarray(sigma, dtype=np.float64),
    )
    expired = t <= 0.0
    t0 = np.where(expired, 0.0, t)
    valid = (~expired) & (v > 0.0) & (s > 0.0) & (k > 0.0) & np.isfinite(v) & np.isfinite(t)
    s_safe = np.where(valid, s, 1.0)
    k_safe = np.where(valid, k, 1.0)
    t_safe = np.where(valid, t0, 1.0)
    v_safe = np.where(valid, v, 1.0)
    sqrt_t = np.sqrt(t_safe)
    vol_t = v_safe * sqrt_t
    # Haug (1.1): d1 = [ln(S/K) + (b + σ²/2)T] / (σ√T), d2 = d1 − σ√T, b = r − q
    d1 = (np.log(s_safe / k_safe) + (rr - qq + 0.5 * v_safe * v_safe) * t_safe) / vol_t
    d2 = d1 - vol_t
    dq = np.exp(-qq * t0)
    dr = np.exp(-rr * t0)
    # With no diffusion left (σ<=0 or T<=0) the option is worth its discounted forward intrinsic:
    # N(d1), N(d2) collapse to the indicator that the forward finishes in the money.
    fwd = s * dq
    strike_pv = k * dr
    itm = (fwd > strike_pv).astype(np.float64) + 0.5 * (fwd == strike_pv)
    cdf1 = np.where(valid, ndtr(d1), itm)
    cdf2 = np.where(valid, ndtr(d2), itm)
    pdf1 = np.where(valid, _INV_SQRT_2PI * np.exp(-0.5 * d1 * d1), 0.0)
    return _Core(
        call=c,
        S=s,
        K=k,
        T=t0,
        r=rr,
        q=qq,
        sigma=v_safe,
        sqrt_t=sqrt_t,
        expired=expired,
        d1=np.where(valid, d1, 0.0),
        d2=np.where(valid, d2, 0.0),
        pdf1=pdf1,
        cdf1=cdf1,
        cdf2=cdf2,
        dq=dq,
        dr=dr,
    )


def price(
    kind: ArrayLike,
    S: ArrayLike,
    K: ArrayLike,
    T: ArrayLike,
    r: ArrayLike,
    q: ArrayLike,
    sigma: ArrayLike,
) -> FloatArray:
    """Price European options (per share); T<=0 gives intrinsic value, sigma<=0 the discounted one."""
    c = _core(kind, S, K, T, r, q, sigma)
    # Haug (1.1)-(1.2), Hull (17.4): c = S e^{-qT} N(d1) − K e^{-rT} N(d2); p by put-call parity form
    call = c.S * c.dq * c.cdf1 - c.K * c.dr * c.cdf2
    put = c.K * c.dr * (1.0 - c.cdf2) - c.S * c.dq * (1.0 - c.cdf1)
    out = np.where(c.call, call, put)
    # Guard tiny negative values from cancellation deep out of the money.
    return np.asarray(np.maximum(out, 0.0), dtype=np.float64)


def greeks(
    kind: ArrayLike,
    S: ArrayLike,
    K: ArrayLike,
    T: ArrayLike,
    r: ArrayLike,
    q: ArrayLike,
    sigma: ArrayLike,
) -> Greeks:
    """Compute delta, gamma, vega, theta, rho, vanna, charm and vomma (see `Greeks` for units).

    At expiry (T<=0) delta is 1/-1 in the money and 0 otherwise; every other greek is 0. With no
    diffusion (sigma<=0) delta is the discounted-forward step and the other greeks are 0 or finite.
    """
    c = _core(kind, S, K, T, r, q, sigma)
    zero = np.zeros_like(c.S)
    s_pos = np.where(c.S > 0.0, c.S, 1.0)
    b = c.r - c.q
    # Haug 2.1-2.4 (generalised BSM greeks, b = r − q)
    delta = np.where(c.call, c.dq * c.cdf1, c.dq * (c.cdf1 - 1.0))
    gamma = c.dq * c.pdf1 / (s_pos * c.sigma * c.sqrt_t)
    vega = c.S * c.dq * c.pdf1 * c.sqrt_t
    decay = -c.S * c.dq * c.pdf1 * c.sigma / (2.0 * c.sqrt_t)
    theta_call = decay + c.q * c.S * c.dq * c.cdf1 - c.r * c.K * c.dr * c.cdf2
    theta_put = decay - c.q * c.S * c.dq * (1.0 - c.cdf1) + c.r * c.K * c.dr * (1.0 - c.cdf2)
    theta = np.where(c.call, theta_call, theta_put)
    rho = np.where(c.call, c.K * c.T * c.dr * c.cdf2, -c.K * c.T * c.dr * (1.0 - c.cdf2))
    vanna = -c.dq * c.pdf1 * c.d2 / c.sigma
    # Haug 2.2.3 (DdeltaDtime): dΔ/dt = −∂Δ/∂T; ∂d1/∂T = b/(σ√T) − d2/(2T)
    t_pos = np.where(c.T > 0.0, c.T, 1.0)
    dd1_dt = b / (c.sigma * c.sqrt_t) - c.d2 / (2.0 * t_pos)
    charm_call = -c.dq * (c.pdf1 * dd1_dt - c.q * c.cdf1)
    charm_put = -c.dq * (c.pdf1 * dd1_dt - c.q * (c.cdf1 - 1.0))
    charm = np.where(c.call, charm_call, charm_put)
    # Haug ch. 2, DvegaDvol ("vomma", "volga"): vega · d1 · d2 / σ
    vomma = vega * c.d1 * c.d2 / c.sigma

    exp = c.expired
    delta_exp = np.where(c.call, (c.S > c.K).astype(np.float64), -(c.S < c.K).astype(np.float64))
    return Greeks(
        delta=np.where(exp, delta_exp, delta),
        gamma=np.where(exp, zero, gamma),
        vega=np.where(exp, zero, vega),
        theta=np.where(exp, zero, theta),
        rho=np.where(exp, zero, rho),
        vanna=np.where(exp, zero, vanna),
        charm=np.where(exp, zero, charm),
        vomma=np.where(exp, zero, vomma),
    )


def gamma(
    S: ArrayLike,
    K: ArrayLike,
    T: ArrayLike,
    r: ArrayLike,
    q: ArrayLike,
    sigma: ArrayLike,
) -> FloatArray:
    """Gamma alone (per share): e^{-qT} φ(d1) / (S σ √T) (Haug 2.1.3); 0 where T, σ, S or K <= 0.

    A lean path for re-pricing a whole chain on a grid of spots (the hedge engine's gamma flip).
    """
    s, k, t, rr, qq, v = np.broadcast_arrays(
        np.asarray(S, dtype=np.float64),
        np.asarray(K, dtype=np.float64),
        np.asarray(T, dtype=np.float64),
        np.asarray(r, dtype=np.float64),
        np.asarray(q, dtype=np.float64),
        np.asarray(sigma, dtype=np.float64),
    )
    valid = (t > 0.0) & (v > 0.0) & (s > 0.0) & (k > 0.0) & np.isfinite(v) & np.isfinite(t)
    s_safe = np.where(valid, s, 1.0)
    t_safe = np.where(valid, t, 1.0)
    v_safe = np.where(valid, v, 1.0)
    vol_t = v_safe * np.sqrt(t_safe)
    d1 = (
        np.log(s_safe / np.where(valid, k, 1.0)) + (rr - qq + 0.5 * v_safe * v_safe) * t_safe
    ) / vol_t
    g = np.exp(-qq * t_safe) * _INV_SQRT_2PI * np.exp(-0.5 * d1 * d1) / (s_safe * vol_t)
    return np.asarray(np.where(valid, g, 0.0), dtype=np.float64)
