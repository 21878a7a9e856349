"""Risk profile of a multi-leg, possibly multi-expiry option structure (agent and guard share it).

Max loss (the number the risk guard enforces) is exact Decimal maths; the profile under a price
distribution (POP, expected value, Kelly inputs, P&L cone) is float64 numpy. docs/strategies.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr

from gnosisd.quant import bsm
from gnosisd.quant.payoff import PayoffLeg, max_loss_of, payoff_at, risk_profile

FloatArray = npt.NDArray[np.float64]
ZERO = Decimal(0)
_TAIL_SD = 8.0  # the quadrature and the curve search cover ln S_T within ±8 s.d.


@dataclass(frozen=True, slots=True)
class ExpiryLeg:
    """One leg: signed ratio per unit (+ long, − short) and its expiry date."""

    is_call: bool
    strike: Decimal
    ratio: int
    expiry: date


def front_expiry(legs: Sequence[ExpiryLeg]) -> date:
    return min(leg.expiry for leg in legs)


def is_multi_expiry(legs: Sequence[ExpiryLeg]) -> bool:
    return len({leg.expiry for leg in legs}) > 1


# ---------------------------------------------------------------- exact bounds (Decimal)
def bound_legs(legs: Sequence[ExpiryLeg], net: Decimal) -> tuple[list[PayoffLeg], Decimal]:
    """The structure's worst-case value at its front expiry as plain expiry-payoff legs and a net.

    Front legs pay their intrinsic value. A back leg is still alive: its value lies between its
    no-arbitrage bounds (Hull, OFOD 11e, ch. 11: an American call is worth between max(S − K, 0)
    and S, an American put between max(K − S, 0) and K). The worst case for the holder takes a long
    back leg at its lower bound (intrinsic: the BSM value with the vol going to zero, floored at
    intrinsic because listed equity options are American) and a short back leg at its upper bound
    (a call at S: a call struck at 0; a put at K: a constant, moved into the net).
    """
    front = front_expiry(legs)
    out: list[PayoffLeg] = []
    adj = net
    for leg in legs:
        if leg.expiry == front or leg.ratio > 0:
            out.append(PayoffLeg(leg.is_call, leg.strike, leg.ratio))
        elif leg.is_call:
            out.append(PayoffLeg(True, ZERO, leg.ratio))
        else:
            adj -= leg.ratio * leg.strike  # value ratio × K (ratio < 0) leaves the net
    return out, adj


@dataclass(frozen=True, slots=True)
class Bounds:
    """Per-share, per-unit exact figures at the price `net` (> 0 debit paid, < 0 credit received).

    max_loss: <= 0, None when unbounded. For several expiries it is the worst case over every vol
    of the front-expiry value (see `bound_legs`); for a long calendar or a diagonal whose long leg
    is at least as far in the money as its short leg, that is the debit paid.
    max_profit: None when unbounded, and for several expiries (it depends on the back leg's vol:
    see `analyse`). breakevens: exact, single expiry only.
    """

    max_loss: Decimal | None
    max_profit: Decimal | None
    breakevens: tuple[Decimal, ...]


def structure_bounds(legs: Sequence[ExpiryLeg], net: Decimal) -> Bounds:
    """Exact max loss (and, for one expiry, max profit and breakevens) of a structure at `net`."""
    if not legs:
        raise ValueError("a structure needs at least one leg")
    if not is_multi_expiry(legs):
        rp = risk_profile([PayoffLeg(lg.is_call, lg.strike, lg.ratio) for lg in legs], net)
        return Bounds(rp.max_loss, rp.max_profit, rp.breakevens)
    plegs, adj = bound_legs(legs, net)
    return Bounds(risk_profile(plegs, adj).max_loss, None, ())


def structure_max_loss(legs: Sequence[ExpiryLeg], net: Decimal) -> Decimal | None:
    """`structure_bounds(legs, net).max_loss` without the rest (the guard's per-check path)."""
    if not legs:
        raise ValueError("a structure needs at least one leg")
    first = legs[0].expiry
    if all(lg.expiry == first for lg in legs):
        return max_loss_of([(lg.is_call, lg.strike, lg.ratio) for lg in legs], net)
    plegs, adj = bound_legs(legs, net)
    return max_loss_of([(lg.is_call, lg.strike, lg.ratio) for lg in plegs], adj)


# ---------------------------------------------------------------- model and distributions (float)
@dataclass(frozen=True, slots=True)
class Model:
    """Market inputs to value legs before their expiry with BSM (floored at intrinsic: American).

    t_years[i] and sigma[i] belong to leg i (years from now to its expiry, its implied vol).
    """

    spot: float
    rate: float
    div_yield: float
    t_years: tuple[float, ...]
    sigma: tuple[float, ...]

    @property
    def horizon(self) -> float:
        """Years from now to the front expiry (where every profile figure is taken)."""
        return max(min(self.t_years), 0.0)


@dataclass(frozen=True, slots=True)
class Lognormal:
    """ln S_T ~ N(mu, sd²) (Hull, OFOD 11e, eq. 15.3)."""

    mu: float
    sd: float

    @classmethod
    def implied(
        cls,
        spot: float,
        rate: float,
        div_yield: float,
        sigma: float,
        t: float,
        drift_sd: float = 0.0,
    ) -> Lognormal:
        """Risk-neutral lognormal at vol `sigma` over `t` years, its median moved `drift_sd` s.d."""
        sd = max(sigma, 1e-6) * math.sqrt(max(t, 1e-9))
        mu = math.log(spot) + (rate - div_yield) * t - 0.5 * sd * sd + drift_sd * sd
        return cls(mu, sd)

    def cdf(self, x: FloatArray) -> FloatArray:
        """P(S_T <= x) (x = 0 gives 0, x = inf gives 1)."""
        with np.errstate(divide="ignore"):
            z = (np.log(np.maximum(x, 0.0)) - self.mu) / self.sd
        return np.asarray(ndtr(z), dtype=np.float64)

    def partial_mean(self, x: FloatArray) -> FloatArray:
        """E[S_T · 1{S_T <= x}] = E[S_T] · N((ln x − mu − sd²)/sd) (lognormal partial moment)."""
        with np.errstate(divide="ignore"):
            z = (np.log(np.maximum(x, 0.0)) - self.mu - self.sd * self.sd) / self.sd
        return np.asarray(math.exp(self.mu + 0.5 * self.sd**2) * ndtr(z), dtype=np.float64)

    def spot_grid(self, n: int = 201) -> FloatArray:
        """Spots at n equally spaced z in [−8, 8] s.d. of ln S_T."""
        return np.asarray(np.exp(self.mu + self.sd * np.linspace(-_TAIL_SD, _TAIL_SD, n)))


@dataclass(frozen=True, slots=True)
class OutcomeStats:
    """P&L per share at the horizon under one distribution.

    pop = P(P&L > 0); expected = E[P&L]; mean_win = E[P&L | P&L > 0]; mean_loss = E[−P&L | P&L < 0].
    """

    pop: float
    expected: float
    mean_win: float
    mean_loss: float

    @property
    def payoff_ratio(self) -> float:
        """b of the Kelly formula: mean win / mean loss (inf when nothing can be lost)."""
        if self.mean_loss <= 0:
            return math.inf
        return self.mean_win / self.mean_loss


def _values(
    legs: Sequence[ExpiryLeg],
    net: float,
    model: Model,
    spots: npt.ArrayLike,
    t: npt.ArrayLike,
    iv_shift: npt.ArrayLike,
) -> FloatArray:
    """P&L per share for spots × t × iv_shift (broadcast together), legs summed: one BSM call.

    A leg whose expiry has come (time left <= 0) is worth its intrinsic value (bsm.price at T <= 0);
    a live leg its BSM value floored at intrinsic (American exercise).
    """
    k = np.array([float(lg.strike) for lg in legs])
    call = np.array([lg.is_call for lg in legs], dtype=np.bool_)
    ratio = np.array([lg.ratio for lg in legs], dtype=np.float64)
    s = np.asarray(spots, dtype=np.float64)[..., None]
    tau = np.asarray(model.t_years) - np.asarray(t, dtype=np.float64)[..., None]
    vol = np.maximum(
        np.asarray(model.sigma) + np.asarray(iv_shift, dtype=np.float64)[..., None], 1e-4
    )
    theo = bsm.price(call, s, k, tau, model.rate, model.div_yield, vol)
    intrinsic = np.where(call, np.maximum(s - k, 0.0), np.maximum(k - s, 0.0))
    return np.asarray(np.sum(np.maximum(theo, intrinsic) * ratio, axis=-1) - net, dtype=np.float64)


def pnl_curve(
    legs: Sequence[ExpiryLeg],
    net: float,
    model: Model,
    spots: npt.ArrayLike,
    t: float | None = None,
    iv_shift: float = 0.0,
) -> FloatArray:
    """P&L per share of one unit at `t` years from now (default: the front expiry) for each spot.

    A leg whose expiry has come pays its intrinsic value; a live leg is worth its BSM value at
    (sigma + iv_shift) floored at intrinsic (American exercise). Broadcasts over `spots`.
    """
    at = model.horizon if t is None else t
    return _values(legs, net, model, spots, at, iv_shift)


def pnl_cone(
    legs: Sequence[ExpiryLeg],
    net: float,
    model: Model,
    spots: Sequence[float],
    times: Sequence[float],
    iv_shifts: Sequence[float],
) -> FloatArray:
    """P&L per share over spots × times (years from now) × IV shifts: shape (times, shifts, spots)."""
    return _values(
        legs,
        net,
        model,
        np.asarray(spots, dtype=np.float64)[None, None, :],
        np.asarray(times, dtype=np.float64)[:, None, None],
        np.asarray(iv_shifts, dtype=np.float64)[None, :, None],
    )


# ---------------------------------------------------------------- single expiry: exact integrals
def _piecewise_stats(
    legs: Sequence[ExpiryLeg], net: Decimal, breakevens: Sequence[float], dist: Lognormal
) -> OutcomeStats:
    """Integrate the piecewise-linear expiry P&L against the lognormal exactly, interval by interval.

    On (a, b) the P&L is α + βS, so E[P&L·1{a<S<=b}] = α·P(a<S<=b) + β·E[S·1{a<S<=b}].
    """
    plegs = [PayoffLeg(lg.is_call, lg.strike, lg.ratio) for lg in legs]
    pts = sorted({0.0, *(float(lg.strike) for lg in legs), *breakevens})
    a = np.asarray(pts, dtype=np.float64)
    b = np.append(a[1:], math.inf)
    v_a = np.array([float(payoff_at(plegs, net, Decimal(repr(x)))) for x in pts])
    slope = np.zeros_like(a)
    for lg in legs:
        k = float(lg.strike)
        if lg.is_call:
            slope += np.where(a >= k, lg.ratio, 0.0)
        else:
            slope -= np.where(b <= k, lg.ratio, 0.0)
    alpha = v_a - slope * a
    probe = np.where(np.isinf(b), a + np.maximum(a, 1.0), 0.5 * (a + b))
    winning = alpha + slope * probe > 0
    mass = dist.cdf(b) - dist.cdf(a)
    part = dist.partial_mean(b) - dist.partial_mean(a)
    contrib = alpha * mass + slope * part
    return _stats(mass, contrib, winning)


def _stats(mass: FloatArray, contrib: FloatArray, winning: npt.NDArray[np.bool_]) -> OutcomeStats:
    pop = float(np.clip(mass[winning].sum(), 0.0, 1.0))
    win = float(contrib[winning].sum())
    lose = float(contrib[~winning].sum())
    return OutcomeStats(
        pop=pop,
        expected=win + lose,
        mean_win=win / pop if pop > 1e-12 else 0.0,
        mean_loss=max(-lose / (1.0 - pop), 0.0) if pop < 1.0 - 1e-12 else 0.0,
    )


# ---------------------------------------------------------------- several expiries: the BSM curve
def _roots(
    f: Callable[[FloatArray], FloatArray],
    lo: FloatArray,
    hi: FloatArray,
    f_lo: FloatArray | None = None,
    f_hi: FloatArray | None = None,
) -> FloatArray:
    """Roots of f in every bracket [lo, hi] (f changes sign), all brackets at once.

    Illinois variant of regula falsi (Dowell & Jarratt, BIT 11, 1971), stopped when every bracket
    is narrower than 1e-11 relative or |f| <= 1e-11 there, or after 100 steps; each step is one
    vectorised evaluation of f.
    """
    a, b = lo.astype(np.float64), hi.astype(np.float64)
    fa = f(a) if f_lo is None else f_lo.astype(np.float64)
    fb = f(b) if f_hi is None else f_hi.astype(np.float64)
    side = np.zeros_like(a)
    x = a
    for _ in range(100):
        x = np.where(fb != fa, (a * fb - b * fa) / (fb - fa), 0.5 * (a + b))
        x = np.where((x <= np.minimum(a, b)) | (x >= np.maximum(a, b)), 0.5 * (a + b), x)
        fx = f(x)
        left = np.sign(fx) == np.sign(fa)
        # Keep the bracket: replace the end with f of the same sign; halve the other end's f
        # when the same end moves twice in a row (Illinois), which restores superlinear speed.
        a, fa = np.where(left, x, a), np.where(left, fx, fa)
        b, fb = np.where(left, b, x), np.where(left, fb, fx)
        fb = np.where(left & (side > 0), fb / 2.0, fb)
        fa = np.where(~left & (side < 0), fa / 2.0, fa)
        side = np.where(left, 1.0, -1.0)
        if np.all((np.abs(b - a) <= 1e-11 * np.maximum(np.abs(x), 1.0)) | (np.abs(fx) <= 1e-11)):
            break
    return np.asarray(x, dtype=np.float64)


def _curve_extremes(
    legs: Sequence[ExpiryLeg], net: float, model: Model, grid: FloatArray, want_max: bool = True
) -> tuple[float, tuple[float, ...]]:
    """Max P&L and the breakevens of the front-expiry curve (several expiries).

    The curve is smooth between front strikes, so the maximum is at a front strike or a stationary
    point: around the best node the search zooms in on 129-point grids until the bracket is below
    1e-6 of the spot (the value is flat there: its error is ~Γ·dx², far below a cent). Each sign
    change is refined by `_roots`.
    """
    front = front_expiry(legs)
    kinks = sorted({float(lg.strike) for lg in legs if lg.expiry == front})
    xs = np.unique(np.concatenate([grid, np.asarray(kinks)]))
    ys = pnl_curve(legs, net, model, xs)

    def f(x: FloatArray) -> FloatArray:
        return pnl_curve(legs, net, model, x)

    i = int(np.argmax(ys))
    best = float(ys[i])
    if want_max and float(xs[i]) not in kinks and 0 < i < len(xs) - 1:
        # Near a smooth maximum the value is flat: x to 1e-7 of the spot gives it to ~1e-14.
        lo, hi = float(xs[i - 1]), float(xs[i + 1])
        while hi - lo > 1e-6 * max(hi, 1.0):
            zs = np.linspace(lo, hi, 129)
            vs = f(zs)
            j = int(np.argmax(vs))
            best = max(best, float(vs[j]))
            lo, hi = float(zs[max(j - 1, 0)]), float(zs[min(j + 1, 128)])
    sign = np.sign(ys)
    cross = np.flatnonzero(sign[:-1] * sign[1:] < 0)
    roots: list[float] = []
    if cross.size:
        # Narrow every bracket 128-fold with one evaluation, then polish them together.
        sub = xs[cross, None] + (xs[cross + 1] - xs[cross])[:, None] * np.linspace(0, 1, 129)
        vals = f(sub)
        sg = np.sign(vals)
        j = np.argmax(sg[:, :-1] * sg[:, 1:] <= 0, axis=1)
        r = np.arange(cross.size)
        roots = list(_roots(f, sub[r, j], sub[r, j + 1], vals[r, j], vals[r, j + 1]))
    roots.extend(float(x) for x, y in zip(xs, ys, strict=True) if y == 0.0)
    return best, tuple(sorted(float(r) for r in roots))


_GL_Z, _GL_W = np.polynomial.legendre.leggauss(24)


def _curve_stats(
    legs: Sequence[ExpiryLeg],
    net: float,
    model: Model,
    breakevens: Sequence[float],
    dist: Lognormal,
) -> OutcomeStats:
    """POP exactly from the breakevens; expectations by Gauss–Legendre quadrature in ln S.

    ln S is cut at the breakevens and front strikes (where the curve has kinks or changes sign)
    and truncated at ±8 s.d.; on each smooth piece 24 Gauss–Legendre nodes integrate the curve
    against the normal density (Press et al., Numerical Recipes 3e, §4.6).
    """
    front = front_expiry(legs)
    kinks = [float(lg.strike) for lg in legs if lg.expiry == front]
    cuts_s = np.asarray(sorted({*breakevens, *kinks}), dtype=np.float64)
    cuts_s = cuts_s[cuts_s > 0]
    z_cuts = np.clip((np.log(cuts_s) - dist.mu) / dist.sd, -_TAIL_SD, _TAIL_SD)
    z = np.unique(np.concatenate([[-_TAIL_SD], z_cuts, [_TAIL_SD]]))
    za, zb = z[:-1], z[1:]
    half = 0.5 * (zb - za)
    nodes = (za + zb)[:, None] * 0.5 + half[:, None] * _GL_Z[None, :]
    weights = half[:, None] * _GL_W[None, :] * np.exp(-0.5 * nodes * nodes) / math.sqrt(2 * math.pi)
    cuts = np.asarray([0.0, *breakevens, math.inf])
    a, b = cuts[:-1], cuts[1:]
    probe = np.where(np.isinf(b), a + np.maximum(a, 1.0), 0.5 * (a + b))
    mids = np.exp(dist.mu + dist.sd * 0.5 * (za + zb))
    # One evaluation for the nodes, the piece midpoints and the breakeven-interval probes.
    flat = pnl_curve(
        legs, net, model, np.concatenate([np.exp(dist.mu + dist.sd * nodes).ravel(), mids, probe])
    )
    n_nodes = nodes.size
    values = flat[:n_nodes].reshape(nodes.shape)
    mid = flat[n_nodes : n_nodes + mids.size]
    winning = flat[n_nodes + mids.size :] > 0
    piece = np.sum(weights * values, axis=1)
    mass = dist.cdf(b) - dist.cdf(a)
    pop = float(np.clip(mass[winning].sum(), 0.0, 1.0))
    win = float(piece[mid > 0].sum())
    lose = float(piece[mid <= 0].sum())
    return OutcomeStats(
        pop=pop,
        expected=win + lose,
        mean_win=win / pop if pop > 1e-12 else 0.0,
        mean_loss=max(-lose / (1.0 - pop), 0.0) if pop < 1.0 - 1e-12 else 0.0,
    )


# ---------------------------------------------------------------- the whole profile
@dataclass(frozen=True, slots=True)
class StructureProfile:
    """Per-share profile of one unit at the front expiry (`horizon` years from now).

    max_loss is the exact bound the guard enforces (`structure_bounds`). max_profit is exact for
    one expiry (None if unbounded) and the maximum of the BSM front-expiry curve for several.
    breakevens are exact for one expiry and roots of that curve for several.
    """

    horizon: float
    max_loss: Decimal
    max_profit: float | None
    breakevens: tuple[float, ...]
    market: OutcomeStats
    view: OutcomeStats


def analyse(
    legs: Sequence[ExpiryLeg],
    net: Decimal,
    model: Model,
    market: Lognormal,
    view: Lognormal | None = None,
    view_iv_scale: float = 1.0,
) -> StructureProfile | None:
    """Profile a structure bought at `net`; None when its loss is unbounded (never opened).

    `market` gives the `market` stats; `view` (default: the market) the `view` stats, with every
    leg still alive at the front expiry valued at its implied vol × `view_iv_scale` (a view on the
    level of volatility moves the back month's IV with the spread of the spot).
    """
    bounds = structure_bounds(legs, net)
    if bounds.max_loss is None:
        return None
    netf = float(net)
    if not is_multi_expiry(legs):
        bes = tuple(float(x) for x in bounds.breakevens)
        mkt = _piecewise_stats(legs, net, bes, market)
        vw = mkt if view is None else _piecewise_stats(legs, net, bes, view)
        mp = None if bounds.max_profit is None else float(bounds.max_profit)
        return StructureProfile(model.horizon, bounds.max_loss, mp, bes, mkt, vw)
    best, bes = _curve_extremes(legs, netf, model, market.spot_grid())
    mkt = _curve_stats(legs, netf, model, bes, market)
    if view is None:
        vw = mkt
    elif view_iv_scale == 1.0:
        vw = _curve_stats(legs, netf, model, bes, view)
    else:
        scaled = replace(model, sigma=tuple(s * view_iv_scale for s in model.sigma))
        vbes = _curve_extremes(legs, netf, scaled, view.spot_grid(), want_max=False)[1]
        vw = _curve_stats(legs, netf, scaled, vbes, view)
    return StructureProfile(model.horizon, bounds.max_loss, best, bes, mkt, vw)
