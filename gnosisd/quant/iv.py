"""Vectorised European implied volatility (Black-Scholes-Merton with a dividend yield q).

Validates and broadcasts the inputs, maps prices onto normalised Black (Jäckel 2015, §2) and hands
them to the solver in `gnosisd.quant.lets_be_rational`, which also frees its temporaries early.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from gnosisd.quant import lets_be_rational as lbr
from gnosisd.quant.bsm import ArrayLike, FloatArray, is_call_mask
from gnosisd.quant.lets_be_rational import Int8Array, normalised_implied_total_vol

__all__ = [
    "IVReject",
    "IVResult",
    "implied_vol",
    "normalised_implied_total_vol",  # re-exported: the solver core lives in lets_be_rational
    "solve_implied_vol",
]


class IVReject(IntEnum):
    """Why an implied vol is NaN (OK when it is not)."""

    OK = 0
    BAD_INPUT = 1  # NaN/inf anywhere, S <= 0, K <= 0 or price < 0
    EXPIRED = 2  # T <= 0
    # The solver's codes (3, 4, 5):
    BELOW_INTRINSIC = lbr.BELOW_INTRINSIC  # price <= the lower no-arbitrage bound (no time value)
    ABOVE_MAXIMUM = lbr.ABOVE_MAXIMUM  # price >= S e^{-qT} (call) or K e^{-rT} (put)
    NO_CONVERGENCE = lbr.NO_CONVERGENCE  # iteration budget spent (never seen in tests; a guard)


@dataclass(frozen=True, slots=True)
class IVResult:
    """Implied vols (NaN where rejected), the reason per element and the iterations used."""

    iv: FloatArray
    reason: Int8Array
    iterations: int

    @property
    def rejected(self) -> int:
        """Number of elements without an implied vol."""
        return int(np.count_nonzero(self.reason))

    def counts(self) -> dict[str, int]:
        """Rejections by reason name (reasons with a zero count are left out)."""
        found = np.bincount(self.reason.ravel().astype(np.int64), minlength=len(IVReject))
        return {
            r.name.lower(): int(found[r]) for r in IVReject if r is not IVReject.OK and found[r]
        }


def implied_vol(
    kind: ArrayLike,
    price: ArrayLike,
    S: ArrayLike,
    K: ArrayLike,
    T: ArrayLike,
    r: ArrayLike,
    q: ArrayLike,
) -> FloatArray:
    """Return the European BSM implied vol of each price (NaN where none exists; never raises).

    `kind` is "call"/"put" (or an array of them, or booleans); T in years; r, q continuous. Use
    `solve_implied_vol` for the reason behind each NaN and the rejection counts.
    """
    return solve_implied_vol(kind, price, S, K, T, r, q).iv


def solve_implied_vol(
    kind: ArrayLike,
    price: ArrayLike,
    S: ArrayLike,
    K: ArrayLike,
    T: ArrayLike,
    r: ArrayLike,
    q: ArrayLike,
    *,
    max_iter: int = lbr.MAX_ITER,
) -> IVResult:
    """Invert BSM prices to vols; return them with a per-element `IVReject` reason and counts."""
    call = is_call_mask(kind)
    p, s, k, t, rr, qq = (np.asarray(a, dtype=np.float64) for a in (price, S, K, T, r, q))
    shape = np.broadcast_shapes(call.shape, p.shape, s.shape, k.shape, t.shape, rr.shape, qq.shape)
    n = int(np.prod(shape))
    # Scalars stay 0-d (numpy broadcasts them for free); everything else becomes 1-d of length n.
    c = np.broadcast_to(call, shape).ravel()
    p, s, k, t, rr, qq = (
        a if a.ndim == 0 and shape else np.broadcast_to(a, shape).ravel()
        for a in (p, s, k, t, rr, qq)
    )
    valid = np.isfinite(p) & np.isfinite(s) & np.isfinite(k) & np.isfinite(t)
    valid = valid & np.isfinite(rr) & np.isfinite(qq) & (s > 0.0) & (k > 0.0) & (p >= 0.0)
    ok = np.broadcast_to(valid & (t > 0.0), (n,))
    everything = bool(ok.all())
    reason = np.zeros(n, dtype=np.int8)
    if not everything:
        # Neutral values keep the arithmetic below quiet on rejected rows.
        valid = np.broadcast_to(valid, (n,))
        reason[~valid] = IVReject.BAD_INPUT
        reason[valid & ~ok] = IVReject.EXPIRED
        p, s, k, t = (
            np.where(ok, p, 0.0),
            np.where(ok, s, 1.0),
            np.where(ok, k, 1.0),
            np.where(ok, t, 1.0),
        )
        rr, qq = np.where(ok, rr, 0.0), np.where(ok, qq, 0.0)
    # Normalised Black (Jäckel 2015, §2): F = S e^{(r−q)T}, x = ln(F/K), β = P e^{rT} / √(FK),
    # √(FK) = K e^{x/2}. Absurd magnitudes (S/K overflowing) are bad input, not warnings.
    with np.errstate(all="ignore"):
        x = np.log(s / k) + (rr - qq) * t
        beta = p * np.exp(rr * t - 0.5 * x) / k
    absurd = ~(np.isfinite(x) & np.isfinite(beta))
    if absurd.any():
        absurd = np.broadcast_to(absurd, (n,)) & ok
        reason[absurd] = IVReject.BAD_INPUT
        ok = ok & ~absurd
        everything = False
        x, beta = np.where(ok, x, 0.0), np.where(ok, beta, 0.0)
    work = [np.broadcast_to(beta, (n,)), np.broadcast_to(x, (n,))]
    del x, beta
    total, code, iters = lbr.solve_normalised(work, c, None if everything else ok, max_iter)
    if everything:
        reason = code
    else:
        reason[ok] = code[ok]
    iv = total / np.sqrt(t)  # NaN wherever the solver left NaN
    return IVResult(iv=iv.reshape(shape), reason=reason.reshape(shape), iterations=iters)
