"""Normalised-Black implied total vol after P. Jäckel, "Let's Be Rational" (Wilmott, 2015).

Branch-wise guesses and objectives, third-order Householder steps inside a bisection bracket,
bounded iterations. Rows are sorted by branch once and solved in one loop; temporaries are freed or
reused early, because the peak working set (page faults after glibc trims the heap) costs as much
as the arithmetic. `gnosisd.quant.iv` maps BSM prices onto this solver.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy.special import erfcx, ndtr, ndtri

from gnosisd.quant.bsm import FloatArray

Int8Array = npt.NDArray[np.int8]
BoolArray = npt.NDArray[np.bool_]

# Rejection codes the solver sets; `gnosisd.quant.iv.IVReject` takes its members' values from these.
BELOW_INTRINSIC: Final = 3
ABOVE_MAXIMUM: Final = 4
NO_CONVERGENCE: Final = 5

MAX_ITER: Final = 12  # Householder steps; at most 2 were needed on 600k random contracts
_SQRT_2PI = float(np.sqrt(2.0 * np.pi))
_INV_SQRT_2PI = 1.0 / _SQRT_2PI
_INV_SQRT2 = float(1.0 / np.sqrt(2.0))
_EPS = float(np.finfo(np.float64).eps)
_TINY_BETA = 1e-300  # below this the time value is denormal: nothing left to invert
# Householder(3) converges with order 4: a step of relative size <= 1e-3 leaves an error of order
# 1e-12 (measured on 200k random contracts: at most 2e-12 in vol against iterating to the last ulp).
_TOL = 1e-3
_ACCEPT = 1e-10  # relative last step still accepted when the iteration budget runs out


def normalised_implied_total_vol(
    beta: FloatArray,
    x: FloatArray,
    is_call: BoolArray,
    mask: BoolArray | None = None,
    *,
    max_iter: int = MAX_ITER,
) -> tuple[FloatArray, Int8Array, int]:
    """Solve b(x, s) = β for the total vol s = σ√T of normalised Black prices (1-d arrays).

    b(x, s) = θ[e^{x/2} N(θ(x/s + s/2)) − e^{−x/2} N(θ(x/s − s/2))], θ = ±1 for calls/puts
    (Jäckel 2015, eq. 2.3). Returns (s, rejection code per element, iterations used); rows outside
    `mask` are left at NaN with code 0 (the caller has classified them); other codes are
    BELOW_INTRINSIC, ABOVE_MAXIMUM and NO_CONVERGENCE.
    """
    return solve_normalised([beta, x], is_call, mask, max_iter)


def solve_normalised(
    work: list[FloatArray], is_call: BoolArray, mask: BoolArray | None, max_iter: int
) -> tuple[FloatArray, Int8Array, int]:
    """Return `normalised_implied_total_vol` of work = [β, x]; empty `work` so that the arrays can
    be freed as soon as they are dead (the caller drops its own references first)."""
    beta, x = work
    work.clear()
    n = beta.shape[0]
    code = np.zeros(n, dtype=np.int8)
    # Subtract the normalised intrinsic value; by put-call parity the time value of an in-the-money
    # option equals the price of the out-of-the-money one, so solve for a call with x <= 0.
    xo = np.abs(x)
    np.negative(xo, out=xo)
    b_max = 0.5 * xo
    np.exp(b_max, out=b_max)  # e^{−|x|/2}: the OTM call's upper bound, and e^{x/2} for x = xo
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        gap = 1.0 / b_max
        gap -= b_max  # e^{|x|/2} − e^{−|x|/2}: intrinsic value of the ITM side
        bo = np.array(beta, dtype=np.float64)
        np.subtract(bo, gap, out=bo, where=np.where(is_call, x > 0.0, x < 0.0))
    del gap, x, beta
    bad = ~(bo > _TINY_BETA)  # also catches NaN
    high = bo >= b_max
    idx: npt.NDArray[np.intp] | None = None
    if mask is not None or bad.any() or high.any():
        if mask is not None:
            bad &= mask
            high &= mask
        high &= ~bad
        code[bad] = BELOW_INTRINSIC
        code[high] = ABOVE_MAXIMUM
        sel = ~(bad | high)
        if mask is not None:
            sel &= mask
        idx = np.flatnonzero(sel)
        if idx.size == 0:
            return np.full(n, np.nan), code, 0
        xo, bo, b_max = xo[idx], bo[idx], b_max[idx]
    work = [xo, bo, b_max]
    del xo, bo, b_max
    s, done, iters = _solve_otm(work, max_iter)
    failed = ~done
    if failed.any():
        s[failed] = np.nan
        code[failed if idx is None else idx[failed]] = NO_CONVERGENCE
    if idx is None:
        return s, code, iters
    out = np.full(n, np.nan)
    out[idx] = s
    return out, code, iters


# Rows are sorted into these groups before solving: the initial guess is made per group (Jäckel
# §4) and the objective per branch (the two upper-plain groups share one).
_LOWEST, _LOWER_MID, _UPPER_LOG, _UPPER_HIGH, _UPPER_MID = range(5)


def _solve_otm(work: list[FloatArray], max_iter: int) -> tuple[FloatArray, BoolArray, int]:
    """Total vols of normalised OTM calls, work = [x, β, b_max] (x <= 0, 0 < β < b_max = e^{x/2}),
    in input order; empties `work`."""
    x, beta, b_max = work
    work.clear()
    # Inflection point of b(s) (Jäckel §3): s_c = √(−2x), where d1 = 0 and d2 = −s_c, so
    # b_c = ½ e^{x/2} − e^{−x/2} N(−s_c) and b'(s_c) = e^{x/2}/√(2π).
    s_c = -2.0 * x
    np.sqrt(s_c, out=s_c)
    np.maximum(s_c, 1e-300, out=s_c)
    b_c = ndtr(-s_c)
    b_c /= b_max
    np.subtract(0.5 * b_max, b_c, out=b_c)
    lower = beta < b_c
    upper = ~lower
    # Tangent at the inflection point to b = 0 (lower) or b = b_max (upper): s_l or s_h (§4),
    # and b there; upper rows keep the gap b_max − b, computed without cancellation.
    s_e = np.where(lower, 0.0, b_max)
    s_e -= b_c
    s_e *= _SQRT_2PI
    s_e /= b_max  # b'(s_c) = e^{x/2}/√(2π)
    s_e += s_c
    np.maximum(s_e, 1e-300, out=s_e)
    h = x / s_e
    t = 0.5 * s_e
    b_e = h + t
    np.negative(b_e, out=b_e, where=upper)
    ndtr(b_e, out=b_e)
    b_e *= b_max
    second = h - t
    ndtr(second, out=second)
    second /= b_max
    lossy = np.flatnonzero(lower & ~(second < (1.0 - 1e-6) * b_e))
    np.subtract(b_e, second, out=b_e, where=lower)
    np.add(b_e, second, out=b_e, where=upper)
    del second
    v_e = h * h
    v_e += t * t
    v_e *= -0.5
    np.exp(v_e, out=v_e)
    if lossy.size:
        hl, tl = h[lossy], t[lossy]
        b_e[lossy] = (
            0.5 * v_e[lossy] * (erfcx(-(hl + tl) * _INV_SQRT2) - erfcx((tl - hl) * _INV_SQRT2))
        )
    v_e *= _INV_SQRT_2PI
    del h, t
    group = np.where(lower, np.where(beta < b_e, _LOWEST, _LOWER_MID), _UPPER_MID).astype(np.int8)
    highest = upper & (beta > b_max - b_e)
    group[highest] = np.where(beta[highest] > 0.5 * b_max[highest], _UPPER_LOG, _UPPER_HIGH)
    m = beta.shape[0]
    counts = np.bincount(group, minlength=5)
    order: npt.NDArray[np.intp] | None = None
    if np.count_nonzero(counts) > 1:
        order = np.argsort(group, kind="stable")
        work = [x, beta, b_max, s_c, b_c, s_e, b_e, v_e]
        del x, beta, b_max, s_c, b_c, s_e, b_e, v_e
        for i in range(len(work)):
            work[i] = work[i][order]  # one at a time: the unsorted array is freed at once
        x, beta, b_max, s_c, b_c, s_e, b_e, v_e = work
        work.clear()
    del group, lower, upper, highest
    ends = np.cumsum(counts).tolist()
    g = [slice(a, b) for a, b in zip([0, *ends[:-1]], ends, strict=True)]
    work = [x, *_starts(g, x, beta, b_max, s_c, b_c, s_e, b_e, v_e)]
    del x, beta, b_max, s_c, b_c, s_e, b_e, v_e
    bounds = [0, ends[_LOWEST], ends[_LOWER_MID], ends[_UPPER_LOG], m]
    s, done, iters = _iterate(work, bounds, max_iter)
    if order is None:
        return s, done, iters
    s_in, done_in = np.empty(m), np.empty(m, dtype=np.bool_)
    s_in[order] = s
    done_in[order] = done
    return s_in, done_in, iters


def _starts(
    g: list[slice],
    x: FloatArray,
    beta: FloatArray,
    b_max: FloatArray,
    s_c: FloatArray,
    b_c: FloatArray,
    s_e: FloatArray,
    b_e: FloatArray,
    v_e: FloatArray,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Initial guess, bracket [left, right] and objective target of each row group (slices `g`
    of rows sorted by group; s_e, b_e, v_e: s_l, b_l, v_l or s_h, b_max − b_h, v_h)."""
    m = beta.shape[0]
    guess = np.empty(m)
    left = np.empty(m)
    right = np.empty(m)
    target = np.empty(m)
    if g[_LOWEST].stop:
        k = g[_LOWEST]
        guess[k] = _lowest_guess(x[k], beta[k], s_e[k], b_e[k])
        left[k] = 0.0
        right[k] = s_e[k]
        # Objective 1/ln b − 1/ln β: close to linear in s where b vanishes like e^{−x²/2s²}.
        np.log(beta[k], out=target[k])
    k = g[_LOWER_MID]
    if k.start < k.stop:
        bb, sl, sc = beta[k], s_e[k], s_c[k]
        guess[k] = _rational_cubic(
            bb, b_e[k], b_c[k], sl, sc, 1.0 / v_e[k], _SQRT_2PI / b_max[k], 0.0, False
        )
        np.clip(guess[k], sl, sc, out=guess[k])
        left[k] = sl
        right[k] = sc
        target[k] = bb
    up = slice(g[_UPPER_LOG].start, m)
    if up.start < m:
        right[up] = np.inf
        # ln((b_max − β)/(b_max − b)) where most of the value is time value (β > b_max/2), b − β
        # elsewhere (§4); b_max − b is computed without cancellation in both.
        np.subtract(b_max[up], beta[up], out=target[up])
    hi = slice(g[_UPPER_LOG].start, g[_UPPER_HIGH].stop)
    if hi.start < hi.stop:
        guess[hi] = _highest_guess(beta[hi], b_max[hi], s_e[hi], b_e[hi])
        left[hi] = s_e[hi]
        np.log(target[g[_UPPER_LOG]], out=target[g[_UPPER_LOG]])
    k = g[_UPPER_MID]
    if k.start < k.stop:
        sc, sh = s_c[k], s_e[k]
        b_h = b_max[k] - b_e[k]
        guess[k] = _rational_cubic(
            beta[k], b_c[k], b_h, sc, sh, _SQRT_2PI / b_max[k], 1.0 / v_e[k], 0.0, True
        )
        np.clip(guess[k], sc, sh, out=guess[k])
        left[k] = sc
    return guess, left, right, target


def _lowest_guess(x: FloatArray, beta: FloatArray, s_l: FloatArray, b_l: FloatArray) -> FloatArray:
    """Initial guess below b_l = b(s_l) (Jäckel §4, lowest branch).

    f(s) = 2π|x|/√27 · N(−|x|/(√3 s))³ tends to b as β → 0: interpolate f(β) on [0, b_l]
    (f(0) = 0, f'(0) = 1, and f, f', f'' at b_l), then invert f in closed form.
    """
    ax = -x
    c = (2.0 * np.pi / np.sqrt(27.0)) * ax
    z = ax / (np.sqrt(3.0) * s_l)
    y = z * z
    cdf = ndtr(-z)
    s2 = s_l * s_l
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        f_l = c * cdf * cdf * cdf
        ey = np.exp(y + 0.125 * s2)
        fp = 2.0 * np.pi * y * cdf * cdf * ey
        fpp = (
            np.pi
            / 6.0
            * y
            / (s2 * s_l)
            * cdf
            * (ey * ey)
            * (
                8.0 * np.sqrt(3.0) * s_l * ax
                + (3.0 * s2 * (s2 - 8.0) - 8.0 * x * x) * cdf * _SQRT_2PI * np.exp(0.5 * y)
            )
        )
        f = _rational_cubic(beta, 0.0, b_l, 0.0, f_l, 1.0, fp, fpp, False)
        np.maximum(f, 1e-300, out=f)
        f /= c
        guess = np.abs(x / (np.sqrt(3.0) * ndtri(np.cbrt(f))))
    fine = (guess > 0.0) & (guess < s_l)  # also rejects NaN and inf
    return guess if fine.all() else np.where(fine, guess, 0.5 * s_l)


def _highest_guess(
    beta: FloatArray, b_max: FloatArray, s_h: FloatArray, gap_h: FloatArray
) -> FloatArray:
    """Initial guess above b_h = b_max − gap_h (Jäckel §4, highest branch).

    f(s) = N(−s/2) → (b_max − b)/2 as s → ∞; quadratic through f(b_h), f(b_max) = 0 and
    f'(b_max) = −½, inverted as s = −2 N⁻¹(f).
    """
    w = gap_h
    u = (beta - (b_max - gap_h)) / np.where(w > 0.0, w, 1.0)
    f = (ndtr(-0.5 * s_h) * (1.0 - u) + 0.5 * w * u) * (1.0 - u)
    with np.errstate(divide="ignore", invalid="ignore"):
        top = -2.0 * ndtri(f)
    return np.where(np.isfinite(top) & (top > s_h), top, 2.0 * s_h)


def _black_lower(h: FloatArray, t: FloatArray, ex: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Normalised OTM call b(x, s) and vega b' for x <= 0, s <= √(−2x) (Jäckel eq. 2.3, 3.1),
    given h = x/s, t = s/2 and ex = e^{x/2}.

    b = e^{x/2} N(d1) − e^{−x/2} N(d2) loses about log10(A/b) digits to cancellation (A the first
    term); where that exceeds 6 digits, b is recomputed from the scaled complementary error
    function, ½ e^{−(h²+t²)/2} [erfcx(−(h+t)/√2) − erfcx(−(h−t)/√2)], which has none (Jäckel
    §3.1) but costs twice as much.
    """
    first = h + t
    ndtr(first, out=first)
    first *= ex
    b = h - t
    ndtr(b, out=b)
    b /= ex
    np.subtract(first, b, out=b)
    e = h * h
    e += t * t
    e *= -0.5
    np.exp(e, out=e)
    first *= 1e-6
    lossy = np.flatnonzero(~(b > first))
    del first
    if lossy.size:
        hl, tl = h[lossy], t[lossy]
        b[lossy] = 0.5 * e[lossy] * (erfcx(-(hl + tl) * _INV_SQRT2) - erfcx((tl - hl) * _INV_SQRT2))
    e *= _INV_SQRT_2PI
    return b, e


def _black_upper_gap(h: FloatArray, t: FloatArray, ex: FloatArray) -> tuple[FloatArray, FloatArray]:
    """b_max − b(x, s) = e^{x/2} N(−d1) + e^{−x/2} N(d2) (both terms positive) and the vega b',
    given h = x/s, t = s/2 and ex = e^{x/2}."""
    gap = h + t
    np.negative(gap, out=gap)
    ndtr(gap, out=gap)
    gap *= ex
    second = h - t
    ndtr(second, out=second)
    second /= ex
    gap += second
    e = np.multiply(h, h, out=second)
    e += t * t
    e *= -0.5
    np.exp(e, out=e)
    e *= _INV_SQRT_2PI
    return gap, e


# An objective fills `diff` with the sign source of b − β (for the bracket) and `newton` with
# −g/g', turns bh = b''/b' into g''/g' and bh3 = b'''/b' into g'''/g' in place, and returns the
# rows where b or b' under/overflowed. Arguments: h = x/s, t = s/2, the target, e^{x/2}, bh, bh3,
# diff, newton (all views of one row group).
_Objective = Callable[
    [
        FloatArray,
        FloatArray,
        FloatArray,
        FloatArray,
        FloatArray,
        FloatArray,
        FloatArray,
        FloatArray,
    ],
    BoolArray,
]


def _lower_log_objective(
    h: FloatArray,
    t: FloatArray,
    ln_beta: FloatArray,
    ex: FloatArray,
    bh: FloatArray,
    bh3: FloatArray,
    diff: FloatArray,
    newton: FloatArray,
) -> BoolArray:
    """g = 1/ln b − 1/ln β (Jäckel §4, lowest branch)."""
    b, bp = _black_lower(h, t, ex)
    degenerate = ~(b > 0.0) | ~(bp > 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ln_b = np.log(b, out=diff)
    bpob = np.divide(bp, b, out=bp)
    inv = np.divide(1.0, ln_b, out=b)
    np.subtract(ln_beta, ln_b, out=newton)
    newton *= ln_b
    newton /= ln_beta
    newton /= bpob
    k = 2.0 * inv
    k += 1.0
    # g'''/g' = b'''/b' + 2(b'/b)²(1 + 3/ln b (1 + 1/ln b)) − 3 (b''/b')(b'/b)(1 + 2/ln b)
    inv += 1.0
    inv *= 3.0 * (inv - 1.0)
    inv += 1.0
    inv *= bpob
    inv *= bpob
    inv *= 2.0
    bh3 += inv
    k *= bpob  # (b'/b)(1 + 2/ln b)
    np.multiply(bh, k, out=inv)
    inv *= 3.0
    bh3 -= inv
    bh -= k  # g''/g' = b''/b' − (b'/b)(1 + 2/ln b)
    diff -= ln_beta  # ln b − ln β: the sign of b − β
    return degenerate


def _lower_plain_objective(
    h: FloatArray,
    t: FloatArray,
    beta: FloatArray,
    ex: FloatArray,
    bh: FloatArray,
    bh3: FloatArray,
    diff: FloatArray,
    newton: FloatArray,
) -> BoolArray:
    """g = b − β below the inflection point."""
    b, bp = _black_lower(h, t, ex)
    np.subtract(b, beta, out=diff)
    np.divide(diff, bp, out=newton)
    np.negative(newton, out=newton)
    return ~(bp > 0.0)


def _upper_log_objective(
    h: FloatArray,
    t: FloatArray,
    ln_gap_beta: FloatArray,
    ex: FloatArray,
    bh: FloatArray,
    bh3: FloatArray,
    diff: FloatArray,
    newton: FloatArray,
) -> BoolArray:
    """g = ln(b_max − β) − ln(b_max − b) (Jäckel §4, highest branch); g' = b'/(b_max − b)."""
    gap, bp = _black_upper_gap(h, t, ex)
    degenerate = ~(gap > 0.0) | ~(bp > 0.0)
    gp = bp / gap
    np.subtract(ln_gap_beta, np.log(gap), out=diff)  # the sign of b − β
    np.divide(diff, gp, out=newton)
    np.negative(newton, out=newton)
    bh3 += gp * (2.0 * gp + 3.0 * bh)
    bh += gp
    return degenerate


def _upper_plain_objective(
    h: FloatArray,
    t: FloatArray,
    gap_beta: FloatArray,
    ex: FloatArray,
    bh: FloatArray,
    bh3: FloatArray,
    diff: FloatArray,
    newton: FloatArray,
) -> BoolArray:
    """g = b − β above the inflection point, as (b_max − β) − (b_max − b)."""
    gap, bp = _black_upper_gap(h, t, ex)
    np.subtract(gap_beta, gap, out=diff)
    np.divide(diff, bp, out=newton)
    np.negative(newton, out=newton)
    return ~(bp > 0.0)


# One objective per branch, in the order of the row groups handed to `_iterate`.
_OBJECTIVES: tuple[_Objective, ...] = (
    _lower_log_objective,
    _lower_plain_objective,
    _upper_log_objective,
    _upper_plain_objective,
)


def _iterate(
    work: list[FloatArray], bounds: list[int], max_iter: int
) -> tuple[FloatArray, BoolArray, int]:
    """Take Householder(3) steps on the rows still moving, bisecting whenever a step leaves the
    bracket [left, right] (tightened on every evaluation by the sign of b − β); `max_iter` at most.

    Rows bounds[i]:bounds[i+1] use the objective `_OBJECTIVES[i]`; converged rows drop out of the
    working set (which keeps its order), so later steps only touch the rows still moving.
    work = [x, s, left, right, target] (emptied; `left` and `right` are updated in place).
    """
    xa, sa, la, ra, ta = work
    work.clear()
    n = sa.shape[0]
    out = sa
    done = np.zeros(n, dtype=np.bool_)
    act: npt.NDArray[np.intp] | None = None  # None: every row is still active
    last = sa
    it = 0
    for it in range(1, max_iter + 1):
        m = sa.shape[0]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            h = xa / sa
            t = 0.5 * sa
            hs = h / sa
            bh = h * hs
            bh -= 0.5 * t  # b''/b' = x²/s³ − s/4
            hs *= hs
            hs *= 3.0
            bh3 = bh * bh
            bh3 -= hs
            bh3 -= 0.25  # b'''/b' = (b''/b')² − 3x²/s⁴ − ¼
            del hs
            ex = 0.5 * xa
            np.exp(ex, out=ex)
            diff, newton = np.empty(m), np.empty(m)
            degenerate = np.empty(m, dtype=np.bool_)
            for objective, a, b in zip(_OBJECTIVES, bounds[:-1], bounds[1:], strict=True):
                if a < b:
                    k = slice(a, b)
                    degenerate[k] = objective(
                        h[k], t[k], ta[k], ex[k], bh[k], bh3[k], diff[k], newton[k]
                    )
            halley, hh3 = bh, bh3  # turned into g''/g' and g'''/g' by the objectives
            del h, t, ex
            np.maximum(la, sa, out=la, where=diff < 0.0)
            np.minimum(ra, sa, out=ra, where=diff > 0.0)
            del diff
            # Third-order Householder step ν(1 + ½ην)/(1 + ν(η + ζν/6)) (Jäckel eq. 4.2).
            hh3 *= newton
            hh3 /= 6.0
            hh3 += halley
            hh3 *= newton
            hh3 += 1.0
            halley *= newton
            halley *= 0.5
            halley += 1.0
            ds = np.multiply(newton, halley, out=newton)
            ds /= hh3
            del halley, hh3
            np.maximum(ds, -0.5 * sa, out=ds)
            s_new = sa + ds
            step = np.abs(ds, out=ds)
            tiny = step <= _TOL * sa
            tiny &= ~degenerate
            inside = s_new > la
            inside &= s_new < ra
            inside &= ~degenerate
            inside |= tiny
            bisect = np.flatnonzero(~inside)
            if bisect.size:
                lb, rb = la[bisect], ra[bisect]
                s_new[bisect] = np.where(
                    np.isfinite(rb), 0.5 * (lb + rb), 2.0 * np.maximum(lb, sa[bisect])
                )
                step[bisect] = np.abs(s_new[bisect] - sa[bisect])
            width = ra - la
            converged = (width <= 4.0 * _EPS * s_new) | tiny  # or bisected down to rounding
        if act is None:
            out = s_new
        else:
            out[act] = s_new
        if converged.all():
            done[slice(None) if act is None else act] = True
            return out, done, it
        keep = np.flatnonzero(~converged)
        if act is None:
            done[converged] = True
            act = keep
        else:
            done[act[converged]] = True
            act = act[keep]
        bounds = np.searchsorted(keep, bounds).tolist()
        last = step[keep]
        xa, sa, la, ra, ta = (a[keep] for a in (xa, s_new, la, ra, ta))
    if act is None:  # no budget at all
        return out, done, 0
    # Budget spent: accept rows whose last step was already small (ill-conditioned wings).
    done[act[last <= _ACCEPT * sa]] = True
    return out, done, it


def _rational_cubic(
    x: FloatArray,
    x0: FloatArray | float,
    x1: FloatArray,
    y0: FloatArray | float,
    y1: FloatArray,
    d0: FloatArray | float,
    d1: FloatArray,
    dd_end: FloatArray | float,
    flat_left: bool,
) -> FloatArray:
    """Rational cubic y(x) through (x0, y0), (x1, y1) with slopes d0, d1 and second derivative
    `dd_end` at one end (left if `flat_left`), no less monotone and convex (or concave) than the
    data (Jäckel §4 after Delbourgo & Gregory, SIAM J. Sci. Stat. Comput. 6,
    1985, eq. 2.4-2.5, 3.8, 3.18). Degenerate segments fall back to linear interpolation."""
    h = x1 - x0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        dy = y1 - y0
        sec = dy / h
        dd = d1 - d0
        right = d1 - sec
        left = sec - d0
        r_fit = (0.5 * h * dd_end + dd) / (left if flat_left else right)
        r_shape = np.abs(dd / right)
        np.fmax(r_shape, np.abs(dd / left), out=r_shape)
        r = np.fmax(r_fit, (d1 + d0) / sec, out=r_fit)
        np.fmax(r, r_shape, out=r)
        u = x - x0
        u /= h
        v = 1.0 - u
        uv = u * v
        # y1 u³ + (r y1 − h d1) u² v + (r y0 + h d0) u v² + y0 v³ over 1 + (r − 3) u v
        num = (r * y1 - h * d1) * u
        num += (r * y0 + h * d0) * v
        num *= uv
        num += y1 * u * u * u + y0 * v * v * v
        r -= 3.0
        r *= uv
        r += 1.0
        num /= r
    bad = np.flatnonzero(~np.isfinite(num))
    if bad.size:
        num[bad] = (y0 + dy * u)[bad]
    return num
