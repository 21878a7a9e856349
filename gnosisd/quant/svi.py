"""Raw SVI smiles: batched, arbitrage-aware least-squares fits of total implied variance.

Raw SVI: w(k) = a + b(ρ(k − m) + √((k − m)² + σ²)), k = ln(K/F) (Gatheral, "A parsimonious
arbitrage-free implied volatility parameterization", 2004; Gatheral & Jacquier, Quant. Finance
2014).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

LEE_MAX_SLOPE = 2.0  # Roger Lee's moment formula: total-variance wings grow at most like 2|k|
_SIGMA_MIN = 1e-4
_GRID = np.linspace(-1.0, 1.0, 41)  # butterfly check points, scaled to each slice's k range
_G_MARGIN = 1e-3  # the penalty starts below this g, so that fits end with g >= 0 at the points
_PENALTY = 100.0  # butterfly residual weight, in units of the slice's mean total variance


@dataclass(frozen=True, slots=True)
class SviFit:
    """Per-slice raw SVI parameters (arrays of shape (E,)), NaN where a slice was not fitted."""

    a: FloatArray
    b: FloatArray
    rho: FloatArray
    m: FloatArray
    sigma: FloatArray
    rmse: FloatArray  # weighted RMS residual in total variance
    n_points: npt.NDArray[np.int64]
    butterfly_ok: BoolArray  # Durrleman's g(k) >= 0 on the checked k range
    iterations: int

    def total_variance(self, k: npt.ArrayLike) -> FloatArray:
        """w(k) for every slice: k of shape (E,) or (E, n); NaN for unfitted slices."""
        kk = np.asarray(k, dtype=np.float64)
        if kk.ndim == 2:
            a, b, rho, m, sigma = (
                p[:, None] for p in (self.a, self.b, self.rho, self.m, self.sigma)
            )
        else:
            a, b, rho, m, sigma = self.a, self.b, self.rho, self.m, self.sigma
        d = kk - m
        out = a + b * (rho * d + np.sqrt(d * d + sigma * sigma))
        return np.asarray(out, dtype=np.float64)


def svi_total_variance(
    k: npt.ArrayLike, a: float, b: float, rho: float, m: float, sigma: float
) -> FloatArray:
    """Raw SVI total variance w(k) = a + b(ρ(k − m) + √((k − m)² + σ²)) (Gatheral 2004)."""
    d = np.asarray(k, dtype=np.float64) - m
    return np.asarray(a + b * (rho * d + np.sqrt(d * d + sigma * sigma)), dtype=np.float64)


def durrleman_g(
    k: FloatArray, a: FloatArray, b: FloatArray, rho: FloatArray, m: FloatArray, sigma: FloatArray
) -> FloatArray:
    """Durrleman's condition g(k) = (1 − k w'/2w)² − w'²/4 (1/w + 1/4) + w''/2; the smile has no
    butterfly arbitrage iff g >= 0 (Gatheral & Jacquier 2014, Lemma 2.2). Arrays broadcast."""
    d = k - m
    root = np.sqrt(d * d + sigma * sigma)
    w = a + b * (rho * d + root)
    w1 = b * (rho + d / root)
    w2 = b * sigma * sigma / root**3
    with np.errstate(divide="ignore", invalid="ignore"):
        g = (1.0 - k * w1 / (2.0 * w)) ** 2 - 0.25 * w1 * w1 * (1.0 / w + 0.25) + 0.5 * w2
    return np.asarray(np.where(w > 0.0, g, -1.0), dtype=np.float64)


def _box(k: FloatArray, weight: FloatArray) -> FloatArray:
    """Per-slice bounds (centre, half-width of m's range, σ_max): m within the quoted k range and
    σ at most its width. Beyond them raw SVI degenerates towards a parabola with its vertex far
    outside the data, a direction the quotes do not identify (the fit would crawl along it)."""
    has = weight > 0.0
    lo = np.where(has, k, np.inf).min(axis=1)
    hi = np.where(has, k, -np.inf).max(axis=1)
    width = np.maximum(hi - lo, 1e-3)
    return np.stack([0.5 * (lo + hi), 0.5 * width, width], axis=1)


def _natural(u: FloatArray, box: FloatArray) -> tuple[FloatArray, ...]:
    """Map parameters u = (u_W, u_R, u_L, m, σ) to (W, sR, sL, m, σ) and d(·)/du.

    sR = b(1 + ρ), sL = b(1 − ρ) are the wing slopes, each in (0, 2) (Lee); W = a + bσ√(1 − ρ²)
    > 0 is the smallest total variance. m and σ are used as they are: the fit projects them onto
    `box` (a projected step reaches a bound in one move, where a smooth map would crawl to it).
    """
    big_w = np.exp(u[:, 0])
    s_r = LEE_MAX_SLOPE / (1.0 + np.exp(-u[:, 1]))
    s_l = LEE_MAX_SLOPE / (1.0 + np.exp(-u[:, 2]))
    d_r = s_r * (1.0 - s_r / LEE_MAX_SLOPE)
    d_l = s_l * (1.0 - s_l / LEE_MAX_SLOPE)
    one = np.ones_like(big_w)
    return big_w, s_r, s_l, u[:, 3], u[:, 4], big_w, d_r, d_l, one, one


def _project(u: FloatArray, box: FloatArray) -> FloatArray:
    """Clip m into the quoted k range and σ into [σ_min, width of that range]."""
    out = u.copy()
    out[:, 3] = np.clip(u[:, 3], box[:, 0] - box[:, 1], box[:, 0] + box[:, 1])
    out[:, 4] = np.clip(u[:, 4], _SIGMA_MIN, box[:, 2])
    return out


def _raw(u: FloatArray, box: FloatArray) -> tuple[FloatArray, ...]:
    """(a, b, ρ, m, σ) from the unconstrained parameters."""
    big_w, s_r, s_l, m, sigma, *_ = _natural(u, box)
    b = 0.5 * (s_r + s_l)
    rho = (s_r - s_l) / (s_r + s_l)
    a = big_w - sigma * np.sqrt(s_r * s_l)
    return a, b, rho, m, sigma


def _unconstrained(
    a: FloatArray, b: FloatArray, rho: FloatArray, m: FloatArray, sigma: FloatArray, box: FloatArray
) -> FloatArray:
    """Inverse of `_raw`, clipped just inside every bound (NaN where parameters are NaN)."""
    s_r = np.clip(b * (1.0 + rho), 1e-8, LEE_MAX_SLOPE * (1.0 - 1e-6))
    s_l = np.clip(b * (1.0 - rho), 1e-8, LEE_MAX_SLOPE * (1.0 - 1e-6))
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.stack(
            [
                np.log(a + sigma * np.sqrt(s_r * s_l)),
                -np.log(LEE_MAX_SLOPE / s_r - 1.0),
                -np.log(LEE_MAX_SLOPE / s_l - 1.0),
                m,
                sigma,
            ],
            axis=1,
        )
    u = _project(u, box)
    return np.asarray(u, dtype=np.float64)


def _model(
    u: FloatArray, box: FloatArray, k: FloatArray, with_jacobian: bool = True
) -> tuple[FloatArray, FloatArray | None]:
    """w(k) of shape (E, N) and (optionally) its Jacobian in u, shape (E, 5, N)."""
    big_w, s_r, s_l, m, sigma, d_w, d_r, d_l, d_m, d_s = _natural(u, box)
    d = k - m[:, None]
    root = np.sqrt(d * d + (sigma * sigma)[:, None])
    geo = np.sqrt(s_r * s_l)
    half_sum = (0.5 * (s_r + s_l))[:, None]
    half_diff = (0.5 * (s_r - s_l))[:, None]
    # w = W − σ√(sR sL) + (sR − sL)/2 · d + (sR + sL)/2 · √(d² + σ²)
    w = (big_w - sigma * geo)[:, None] + half_diff * d + half_sum * root
    if not with_jacobian:
        return w, None
    jac = np.empty((k.shape[0], 5, k.shape[1]))
    jac[:, 0, :] = d_w[:, None]
    jac[:, 1, :] = d_r[:, None] * ((-0.5 * sigma * s_l / geo)[:, None] + 0.5 * (d + root))
    jac[:, 2, :] = d_l[:, None] * ((-0.5 * sigma * s_r / geo)[:, None] + 0.5 * (root - d))
    jac[:, 3, :] = d_m[:, None] * (-half_diff - half_sum * d / root)
    jac[:, 4, :] = d_s[:, None] * ((-geo)[:, None] + half_sum * sigma[:, None] / root)
    return w, jac


def _initial(k: FloatArray, w: FloatArray, weight: FloatArray, box: FloatArray) -> FloatArray:
    """Starting parameters from 18 points (m, σ): around the lowest quote and spread over the
    box. For fixed (m, σ) raw SVI is linear in (a, b, bρ), solved by weighted least squares (the
    quasi-explicit idea of Zeliade Systems, "Quasi-explicit calibration of Gatheral's SVI model",
    2009); the best point per slice wins, clipped into the constraints."""
    has = weight > 0.0
    rows = np.arange(k.shape[0])
    j = np.argmin(np.where(has, w, np.inf), axis=1)
    w_min = np.maximum(w[rows, j], 1e-10)
    lo, hi = box[:, 0] - box[:, 1], box[:, 0] + box[:, 1]
    scale = np.minimum(np.sqrt(w_min), box[:, 2])  # ATM total vol: the smile's natural width
    centred = [(k[rows, j] + dm * scale, fs * scale) for dm in (-1, 0, 1) for fs in (0.25, 1, 4)]
    spread = [
        (lo + fm * (hi - lo), fs * box[:, 2]) for fm in (0.2, 0.5, 0.8) for fs in (0.1, 0.3, 0.8)
    ]
    best_cost = np.full(k.shape[0], np.inf)
    best = np.zeros((k.shape[0], 5))
    ridge = 1e-14 * np.eye(3)[None, :, :]
    for m_c, s_c in centred + spread:
        # Interior points only: at a bound the (tanh, logistic) parametrisation has no gradient.
        m = np.clip(m_c, lo + 0.05 * (hi - lo), hi - 0.05 * (hi - lo))
        sig = np.clip(s_c, 2.0 * _SIGMA_MIN, 0.9 * box[:, 2])
        d = k - m[:, None]
        root = np.sqrt(d * d + (sig * sig)[:, None])
        basis = np.stack([np.ones_like(d), root, d], axis=1)  # (E, 3, N)
        bw = basis * weight[:, None, :]
        coef = np.linalg.solve(bw @ basis.transpose(0, 2, 1) + ridge, bw @ w[..., None])[..., 0]
        resid = (coef[:, :, None] * basis).sum(axis=1) - w
        cost = (weight * resid * resid).sum(axis=1)
        better = cost < best_cost
        best_cost = np.where(better, cost, best_cost)
        cand = np.stack([coef[:, 0], coef[:, 1], coef[:, 2], m, sig], axis=1)
        best = np.where(better[:, None], cand, best)
    a, b, d_coef, m, sig = best.T
    b = np.clip(b, 1e-3 * scale + 1e-6, 0.9 * LEE_MAX_SLOPE)
    rho = np.clip(d_coef / b, -0.95, 0.95)
    s_r = np.minimum(b * (1.0 + rho), 0.95 * LEE_MAX_SLOPE)
    s_l = np.minimum(b * (1.0 - rho), 0.95 * LEE_MAX_SLOPE)
    floor = a + sig * np.sqrt(s_r * s_l)
    a = np.where(floor > 0.1 * w_min, floor, 0.5 * w_min) - sig * np.sqrt(s_r * s_l)
    b, rho = 0.5 * (s_r + s_l), (s_r - s_l) / (s_r + s_l)
    return _unconstrained(a, b, rho, m, sig, box)


def _grid(box: FloatArray) -> FloatArray:
    """Butterfly check points: 41 per slice over the quoted k range widened by 20 %."""
    return np.asarray(box[:, 0:1] + 1.2 * box[:, 1:2] * _GRID[None, :], dtype=np.float64)


def _residuals(
    u: FloatArray,
    box: FloatArray,
    k: FloatArray,
    w: FloatArray,
    sw: FloatArray,
    grid: FloatArray,
    scale: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """Weighted data residuals (E, N) and butterfly penalties (E, G) at u."""
    fit, _ = _model(u, box, k, with_jacobian=False)
    a, b, rho, m, sigma = (x[:, None] for x in _raw(u, box))
    g = durrleman_g(grid, a, b, rho, m, sigma)
    return sw * (fit - w), scale[:, None] * np.maximum(_G_MARGIN - g, 0.0)


def fit_svi(
    k: FloatArray,
    w: FloatArray,
    weight: FloatArray,
    *,
    max_iter: int = 30,
    ftol: float = 1e-4,
    min_points: int = 5,
    start: SviFit | None = None,
) -> SviFit:
    """Fit raw SVI to each row of padded (E, N) arrays of log-moneyness k and total variance w.

    Minimises Σ weight·(w_svi(k) − w)² per slice by a batched Levenberg-Marquardt (Moré 1978
    scaling) over a parametrisation in which the constraints hold by construction: b >= 0,
    |ρ| < 1, σ > 0, min w = a + bσ√(1 − ρ²) > 0, Lee's wing bound b(1 + |ρ|) <= 2, and m and σ
    within the quoted k range and its width. Butterfly arbitrage (Durrleman's g < 0 on the quoted
    range widened by 20 %) is penalised, and `butterfly_ok` reports whether the fit is free of it.
    Rows with weight 0 are padding; slices with fewer than `min_points` weighted points are left
    NaN. `start` (a previous fit of the same slices, e.g. the last chain refresh) warm-starts the
    slices it has finite parameters for.
    """
    e_n = k.shape[0]
    n_pts = np.count_nonzero(weight > 0.0, axis=1).astype(np.int64)
    fit_rows = n_pts >= min_points
    nan = np.full(e_n, np.nan)
    if not fit_rows.any():
        return SviFit(nan, nan, nan, nan, nan, nan, n_pts, np.zeros(e_n, np.bool_), 0)
    kk, ww, wt = k[fit_rows], w[fit_rows], weight[fit_rows]
    sw = np.sqrt(np.where(wt > 0.0, wt, 0.0))
    kk = np.where(wt > 0.0, kk, 0.0)
    ww = np.where(wt > 0.0, ww, 0.0)
    box = _box(kk, wt)
    mean_w = (ww * wt).sum(axis=1) / np.maximum(wt.sum(axis=1), 1e-300)
    scale = _PENALTY * mean_w
    # Below this cost the fit reproduces the data to ~1e-12 of its level: nothing left to gain.
    exact = (1e-12 * mean_w) ** 2 * wt.sum(axis=1)
    grid = _grid(box)
    if start is not None and start.a.shape == (e_n,):
        rows = fit_rows
        u = _unconstrained(
            start.a[rows], start.b[rows], start.rho[rows], start.m[rows], start.sigma[rows], box
        )
        cold = np.flatnonzero(~np.all(np.isfinite(u), axis=1))
        if cold.size:
            u[cold] = _initial(kk[cold], ww[cold], wt[cold], box[cold])
    else:
        u = _initial(kk, ww, wt, box)
    u, it = _levenberg_marquardt(u, box, kk, ww, sw, grid, scale, exact, max_iter, ftol)
    a, b, rho, m, sigma = _raw(u, box)
    g = durrleman_g(grid, a[:, None], b[:, None], rho[:, None], m[:, None], sigma[:, None])
    r_d, _ = _residuals(u, box, kk, ww, sw, grid, scale)
    rmse = np.sqrt((r_d * r_d).sum(axis=1) / np.maximum(wt.sum(axis=1), 1e-300))

    def put(x: FloatArray) -> FloatArray:
        out = nan.copy()
        out[fit_rows] = x
        return out

    ok = np.zeros(e_n, dtype=np.bool_)
    ok[fit_rows] = np.all(g >= -1e-10, axis=1)
    return SviFit(put(a), put(b), put(rho), put(m), put(sigma), put(rmse), n_pts, ok, it)


def _levenberg_marquardt(
    u0: FloatArray,
    box: FloatArray,
    k: FloatArray,
    w: FloatArray,
    sw: FloatArray,
    grid: FloatArray,
    scale: FloatArray,
    exact: FloatArray,
    max_iter: int,
    ftol: float,
) -> tuple[FloatArray, int]:
    """Batched, projected Levenberg-Marquardt with Marquardt's diagonal scaling (Moré 1978) on the
    slices still improving; m and σ at an active bound are held there."""
    u = u0.copy()
    act = np.arange(len(u))
    ua, bx, ka, wa, swa, ga, sa, ea = u, box, k, w, sw, grid, scale, exact
    r_d, r_p = _residuals(ua, bx, ka, wa, swa, ga, sa)
    cost = (r_d * r_d).sum(axis=1) + (r_p * r_p).sum(axis=1)
    lam = np.full(len(u), 1e-3)
    nu = np.full(len(u), 2.0)
    eye = np.eye(5)[None, :, :]
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 (the count is returned)
        fit, jac = _model(ua, bx, ka)
        assert jac is not None
        jac *= swa[:, None, :]
        jtj = jac @ jac.transpose(0, 2, 1)
        jtr = (jac @ (swa * (fit - wa))[..., None])[..., 0]
        if np.any(r_p > 0.0):
            # Penalty Jacobian by forward differences (only while a slice violates Durrleman).
            for p in range(5):
                up = ua.copy()
                up[:, p] += 1e-6
                _, rp_h = _residuals(up, bx, ka, wa, swa, ga, sa)
                col = (rp_h - r_p) / 1e-6
                jtr[:, p] += (col * r_p).sum(axis=1)
                jtj[:, p, p] += (col * col).sum(axis=1)
        # Active bounds: m or σ at a bound with the gradient pushing outwards stays put.
        lo_m, hi_m = bx[:, 0] - bx[:, 1], bx[:, 0] + bx[:, 1]
        frozen = np.zeros(ua.shape, dtype=np.bool_)
        frozen[:, 3] = ((ua[:, 3] <= lo_m) & (jtr[:, 3] > 0.0)) | (
            (ua[:, 3] >= hi_m) & (jtr[:, 3] < 0.0)
        )
        frozen[:, 4] = ((ua[:, 4] <= _SIGMA_MIN) & (jtr[:, 4] > 0.0)) | (
            (ua[:, 4] >= bx[:, 2]) & (jtr[:, 4] < 0.0)
        )
        if frozen.any():
            keep_p = (~frozen).astype(np.float64)
            jtj = jtj * keep_p[:, :, None] * keep_p[:, None, :]
            jtr = jtr * keep_p
        diag = np.maximum(np.diagonal(jtj, axis1=1, axis2=2), 1e-12)
        step = -np.linalg.solve(jtj + (lam[:, None] * diag)[:, :, None] * eye, jtr[..., None])
        u_new = _project(ua + np.clip(step[..., 0], -2.0, 2.0), bx)
        rd_new, rp_new = _residuals(u_new, bx, ka, wa, swa, ga, sa)
        cost_new = (rd_new * rd_new).sum(axis=1) + (rp_new * rp_new).sum(axis=1)
        # Gain ratio of the actual to the model's predicted reduction; Nielsen's damping update
        # (Madsen, Nielsen & Tingleff, "Methods for non-linear least squares problems", 2004, §3.2).
        delta = u_new - ua
        pred = -(2.0 * (delta * jtr).sum(axis=1) + np.einsum("ep,epq,eq->e", delta, jtj, delta))
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = (cost - cost_new) / pred
        better = np.isfinite(cost_new) & (cost_new < cost) & (ratio > 0.0)
        gain = (cost - cost_new) / np.maximum(cost, 1e-300)
        ua = np.where(better[:, None], u_new, ua)
        r_p = np.where(better[:, None], rp_new, r_p)
        cost = np.where(better, cost_new, cost)
        shrink = np.maximum(1.0 / 3.0, 1.0 - (2.0 * np.clip(ratio, 0.0, 1.0) - 1.0) ** 3)
        lam = np.where(better, np.maximum(lam * shrink, 1e-12), lam * nu)
        nu = np.where(better, 2.0, nu * 2.0)
        # Done: an accepted step gaining < ftol of the cost, a model that predicts < ftol, data
        # matched to rounding, or damping saturated.
        flat = pred < ftol * np.maximum(cost, 1e-300)
        done = (better & (gain < ftol)) | flat | (cost <= ea) | (lam >= 1e10)
        u[act] = ua
        if done.all():
            break
        if done.any():
            keep = ~done
            act = act[keep]
            ua, bx, ka, wa, swa, ga, sa, ea = (x[keep] for x in (ua, bx, ka, wa, swa, ga, sa, ea))
            r_p, cost, lam, nu = r_p[keep], cost[keep], lam[keep], nu[keep]
    return u, it
