"""Expiry and strike selection from the listed chain: target DTE, target delta, liquidity filters.

Days to expiry count New York calendar days from the clock's as-of date (never the wall clock).
A leg is tradeable when it is quoted on both sides, its spread is at most liquidity.max_spread_pct
of its mid and its open interest at least liquidity.min_open_interest.
"""

from __future__ import annotations

from datetime import date

import numpy as np

from gnosisd.bus.events import BoolArray, ChainSnapshot, IntArray
from gnosisd.core.config import LiquidityConfig

MIN_CALENDAR_GAP_DAYS = 7  # a back month closer than this to the front is no time spread


def choose_expiry(chain: ChainSnapshot, today: date, target_dte: int, min_dte: int) -> int | None:
    """Index of the listed expiry closest to `target_dte` calendar days with DTE >= min_dte.

    Ties go to the earlier expiry; None when no expiry is far enough out.
    """
    best: tuple[int, int] | None = None
    for j, expiry in enumerate(chain.expiries):
        dte = (expiry - today).days
        if dte < min_dte:
            continue
        key = abs(dte - target_dte)
        if best is None or key < best[0]:
            best = (key, j)
    return None if best is None else best[1]


def choose_back_expiry(chain: ChainSnapshot, front: int, gap_days: int) -> int | None:
    """Index of the listed expiry closest to front + `gap_days` and at least 7 days after it."""
    f = chain.expiries[front]
    best: tuple[int, int] | None = None
    for j, expiry in enumerate(chain.expiries):
        gap = (expiry - f).days
        if gap < MIN_CALENDAR_GAP_DAYS:
            continue
        key = abs(gap - gap_days)
        if best is None or key < best[0]:
            best = (key, j)
    return None if best is None else best[1]


def spread_pct(chain: ChainSnapshot) -> np.ndarray:
    """(ask − bid) / mid per row; inf where there is no two-sided quote."""
    bid, ask = chain.bid, chain.ask
    mid = (bid + ask) / 2.0
    two_sided = (bid > 0) & (ask >= bid) & np.isfinite(bid) & np.isfinite(ask)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(two_sided & (mid > 0), (ask - bid) / mid, np.inf)
    return np.asarray(rel, dtype=np.float64)


def liquid_mask(chain: ChainSnapshot, liq: LiquidityConfig) -> BoolArray:
    """Rows with a two-sided quote, spread/mid <= max_spread_pct and OI >= min_open_interest."""
    return np.asarray(
        (spread_pct(chain) <= liq.max_spread_pct) & (chain.open_interest >= liq.min_open_interest),
        dtype=np.bool_,
    )


class LegPicker:
    """Liquid listed legs of a front expiry (and optionally a back expiry), by delta or strike.

    Rows of each (expiry, call/put) are indexed once, sorted by strike, so a pick costs
    O(strikes of that expiry), not O(chain).
    """

    def __init__(
        self,
        chain: ChainSnapshot,
        liq: LiquidityConfig,
        expiry_idx: int,
        back_idx: int | None = None,
        *,
        liquid: BoolArray | None = None,
        spreads: np.ndarray | None = None,
    ) -> None:
        self.chain = chain
        self.expiry_idx = expiry_idx
        self.back_idx = back_idx
        self.spreads = spread_pct(chain) if spreads is None else spreads
        if liquid is None:
            liquid = (self.spreads <= liq.max_spread_pct) & (
                chain.open_interest >= liq.min_open_interest
            )
        self.liquid = liquid
        self._rows: dict[tuple[int, bool], IntArray] = {}

    def rows(self, is_call: bool, expiry: int | None = None) -> IntArray:
        """Liquid rows of one expiry (default: the front) and type, ascending by strike."""
        e = self.expiry_idx if expiry is None else expiry
        key = (e, is_call)
        cached = self._rows.get(key)
        if cached is None:
            c = self.chain
            m = self.liquid & (c.expiry_idx == e) & (c.is_call == is_call)
            rows = np.flatnonzero(m)
            cached = rows[np.argsort(c.strike[rows], kind="stable")]
            self._rows[key] = cached
        return cached

    def _bounded(
        self, is_call: bool, above: float | None, below: float | None, expiry: int | None
    ) -> IntArray:
        rows = self.rows(is_call, expiry)
        k = self.chain.strike[rows]
        keep = np.ones(rows.shape, dtype=np.bool_)
        if above is not None:
            keep &= k > above
        if below is not None:
            keep &= k < below
        return rows[keep]

    def by_delta(
        self,
        is_call: bool,
        target: float,
        *,
        above: float | None = None,
        below: float | None = None,
        expiry: int | None = None,
    ) -> int | None:
        """Liquid row whose |delta| is closest to `target` (ties: the lower strike)."""
        rows = self._bounded(is_call, above, below, expiry)
        d = self.chain.delta[rows]
        rows = rows[np.isfinite(d)]
        if rows.size == 0:
            return None
        dist = np.abs(np.abs(self.chain.delta[rows]) - target)
        return int(rows[int(np.argmin(dist))])  # rows ascend by strike: argmin keeps the lower

    def by_strike(
        self,
        is_call: bool,
        target: float,
        *,
        above: float | None = None,
        below: float | None = None,
        expiry: int | None = None,
    ) -> int | None:
        """Liquid row whose strike is closest to `target` (ties: the lower strike)."""
        rows = self._bounded(is_call, above, below, expiry)
        if rows.size == 0:
            return None
        return int(rows[int(np.argmin(np.abs(self.chain.strike[rows] - target)))])

    def at_strike(self, is_call: bool, strike: float, expiry: int | None = None) -> int | None:
        """The liquid row at exactly `strike`, if listed and liquid."""
        rows = self.rows(is_call, expiry)
        k = self.chain.strike[rows]
        i = int(np.searchsorted(k, strike))
        if i < rows.size and k[i] == strike:
            return int(rows[i])
        return None

    def delta_or_atm(
        self,
        is_call: bool,
        target: float,
        *,
        above: float | None = None,
        below: float | None = None,
        expiry: int | None = None,
    ) -> int | None:
        """By delta; if the chain has no usable delta, fall back to the strike nearest spot."""
        row = self.by_delta(is_call, target, above=above, below=below, expiry=expiry)
        if row is None:
            row = self.by_strike(is_call, self.chain.spot, above=above, below=below, expiry=expiry)
        return row
