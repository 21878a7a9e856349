"""Exact expiry payoff of a multi-leg option structure (one implementation for agent and guard).

The expiry payoff is piecewise linear in the underlying price S with kinks only at strikes, so its
extremes over S in [0, inf) lie at S=0, at a strike, or at infinity (slope beyond the top strike).
Everything is computed in Decimal: no grid, no rounding error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class PayoffLeg:
    is_call: bool
    strike: Decimal
    ratio: int  # signed contracts per unit: +1 long, -1 short


@dataclass(frozen=True, slots=True)
class RiskProfile:
    """Per-share, per-unit figures of a structure bought/sold at `net_price`.

    max_profit is None when unbounded; max_loss is None when unbounded (an undefined-risk structure).
    """

    max_profit: Decimal | None
    max_loss: Decimal | None  # <= 0
    breakevens: tuple[Decimal, ...]

    @property
    def defined_risk(self) -> bool:
        return self.max_loss is not None


def payoff_at(legs: Sequence[PayoffLeg], net_price: Decimal, spot: Decimal) -> Decimal:
    """P&L per share of one unit at expiry if the underlying settles at `spot`.

    `net_price` > 0 is a debit paid, < 0 a credit received.
    """
    total = -net_price
    for leg in legs:
        intrinsic = spot - leg.strike if leg.is_call else leg.strike - spot
        if intrinsic > 0:
            total += leg.ratio * intrinsic
    return total


def _slope_above(legs: Sequence[PayoffLeg]) -> int:
    """d(payoff)/dS for S beyond every strike: only calls contribute."""
    return sum(leg.ratio for leg in legs if leg.is_call)


def bounded_below(legs: Sequence[tuple[bool, object, int]]) -> bool:
    """False if the payoff falls without bound as S rises (net short calls beyond every strike),
    from (is_call, strike, signed ratio) tuples; raise ValueError when there are no legs."""
    if not legs:
        raise ValueError("a structure needs at least one leg")
    slope = 0
    for is_call, _, ratio in legs:
        if is_call:
            slope += ratio
    return slope >= 0


def max_loss_of(legs: Sequence[tuple[bool, Decimal, int]], net_price: Decimal) -> Decimal | None:
    """`risk_profile(...).max_loss` alone, from (is_call, strike, signed ratio) tuples.

    The same kinks and the same Decimal arithmetic, without the breakevens and the objects (the
    bounds of multi-expiry structures use it; the risk guard uses its integer twin,
    `risk.limits.max_loss_ticks`, tested against it).
    """
    if not bounded_below(legs):
        return None
    kinks = {ZERO}
    for _, strike, _ in legs:
        kinks.add(strike)
    lo: Decimal | None = None
    start = -net_price
    for s in sorted(kinks):  # in risk_profile's order: ties keep its representative (exponent)
        total = start
        for is_call, strike, ratio in legs:
            # intrinsic > 0 exactly when S is beyond the strike: compare before subtracting
            if is_call:
                if not s > strike:
                    continue
                intrinsic = s - strike
            elif strike > s:
                intrinsic = strike - s
            else:
                continue
            # ±1 × x is exact with x's digits and x > 0 (no signed zero), so the common unit
            # ratios skip the int → Decimal conversion of the product (same digits).
            if ratio == 1:
                total += intrinsic
            elif ratio == -1:
                total -= intrinsic
            else:
                total += ratio * intrinsic
        if lo is None or total < lo:
            lo = total
    assert lo is not None
    return min(lo, ZERO)


def risk_profile(legs: Sequence[PayoffLeg], net_price: Decimal) -> RiskProfile:
    """Exact max profit, max loss and breakevens of the expiry payoff."""
    if not legs:
        raise ValueError("a structure needs at least one leg")
    kinks = sorted({ZERO, *(leg.strike for leg in legs)})
    values = [payoff_at(legs, net_price, k) for k in kinks]
    slope = _slope_above(legs)
    hi = max(values)
    lo = min(values)
    max_profit: Decimal | None = None if slope > 0 else hi
    max_loss: Decimal | None = None if slope < 0 else lo
    if max_loss is not None:
        max_loss = min(max_loss, ZERO)

    breakevens: list[Decimal] = []
    for (s0, v0), (s1, v1) in zip(
        zip(kinks, values, strict=True), zip(kinks[1:], values[1:], strict=True), strict=False
    ):
        if v0 == 0 and (not breakevens or breakevens[-1] != s0) and s0 > 0:
            breakevens.append(s0)
        if (v0 < 0 < v1) or (v1 < 0 < v0):
            breakevens.append(s0 + (s1 - s0) * (-v0) / (v1 - v0))
    last_s, last_v = kinks[-1], values[-1]
    if last_v == 0 and (not breakevens or breakevens[-1] != last_s) and last_s > 0:
        breakevens.append(last_s)
    if slope != 0 and ((last_v < 0 < slope) or (slope < 0 < last_v)):
        breakevens.append(last_s - last_v / slope)
    return RiskProfile(max_profit=max_profit, max_loss=max_loss, breakevens=tuple(breakevens))
