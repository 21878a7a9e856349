"""Strategy builders: every structure from listed, liquid legs of the live chain (docs/strategies.md).

A builder returns a `Structure` (chain rows with signed ratios) or None when the chain has no
suitable liquid contract; pricing, risk, sizing and ranking are the trade agent's job. Short strikes
come from target deltas, wings from `spread_width` (nearest listed strike), calendars and diagonals
from a back expiry about `calendar_gap_days` after the front one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gnosisd.agents.selection import LegPicker, choose_expiry, liquid_mask
from gnosisd.core.config import TradeAgentConfig
from gnosisd.core.enums import Direction, StrategyType

__all__ = [
    "BUILDERS",
    "CREDIT",
    "MULTI_EXPIRY",
    "LegPicker",
    "Structure",
    "choose_expiry",
    "liquid_mask",
]

S = StrategyType
# Structures that must be opened for a credit; the broken-wing butterfly may be either.
CREDIT = frozenset({S.CALL_CREDIT_SPREAD, S.PUT_CREDIT_SPREAD, S.IRON_CONDOR, S.IRON_BUTTERFLY})
EITHER_SIGN = frozenset({S.BROKEN_WING_BUTTERFLY})
MULTI_EXPIRY = frozenset({S.CALL_CALENDAR, S.PUT_CALENDAR, S.CALL_DIAGONAL, S.PUT_DIAGONAL})


@dataclass(frozen=True, slots=True)
class Structure:
    """A strategy as chain rows: `legs` are (row index, signed ratio: +n long, −n short)."""

    strategy: StrategyType
    legs: tuple[tuple[int, int], ...]


Builder = Callable[[LegPicker, TradeAgentConfig, Direction], "Structure | None"]


def _k(p: LegPicker, row: int) -> float:
    return float(p.chain.strike[row])


def _beyond(is_call: bool, k: float) -> tuple[float | None, float | None]:
    """(above, below) bounds for strikes further out of the money than `k`."""
    return (k, None) if is_call else (None, k)


def long_call(p: LegPicker, cfg: TradeAgentConfig, _: Direction) -> Structure | None:
    row = p.delta_or_atm(True, cfg.long_delta)
    return None if row is None else Structure(S.LONG_CALL, ((row, 1),))


def long_put(p: LegPicker, cfg: TradeAgentConfig, _: Direction) -> Structure | None:
    row = p.delta_or_atm(False, cfg.long_delta)
    return None if row is None else Structure(S.LONG_PUT, ((row, 1),))


def _debit_spread(p: LegPicker, cfg: TradeAgentConfig, is_call: bool) -> Structure | None:
    """Long leg at long_delta; short leg further out of the money at short_delta (else by width)."""
    long_row = p.delta_or_atm(is_call, cfg.long_delta)
    if long_row is None:
        return None
    k = _k(p, long_row)
    above, below = _beyond(is_call, k)
    short_row = p.by_delta(is_call, cfg.short_delta, above=above, below=below)
    if short_row is None:
        target = k + cfg.spread_width if is_call else k - cfg.spread_width
        short_row = p.by_strike(is_call, target, above=above, below=below)
    if short_row is None:
        return None
    kind = S.CALL_DEBIT_SPREAD if is_call else S.PUT_DEBIT_SPREAD
    return Structure(kind, ((long_row, 1), (short_row, -1)))


def call_debit_spread(p: LegPicker, cfg: TradeAgentConfig, _: Direction) -> Structure | None:
    return _debit_spread(p, cfg, is_call=True)


def put_debit_spread(p: LegPicker, cfg: TradeAgentConfig, _: Direction) -> Structure | None:
    return _debit_spread(p, cfg, is_call=False)


def _wing(p: LegPicker, is_call: bool, k: float, width: float) -> int | None:
    """The liquid strike nearest `width` further out of the money than `k` (strictly beyond it)."""
    if is_call:
        return p.by_strike(True, k + width, above=k)
    return p.by_strike(False, k - width, below=k)


def _credit_spread(p: LegPicker, cfg: TradeAgentConfig, is_call: bool) -> Structure | None:
    """Short out-of-the-money leg at short_delta, long wing spread_width further out."""
    spot = p.chain.spot
    above, below = _beyond(is_call, spot)
    short = p.by_delta(is_call, cfg.short_delta, above=above, below=below)
    if short is None:
        return None
    wing = _wing(p, is_call, _k(p, short), cfg.spread_width)
    if wing is None:
        return None
    kind = S.CALL_CREDIT_SPREAD if is_call else S.PUT_CREDIT_SPREAD
    return Structure(kind, ((short, -1), (wing, 1)))


def call_credit_spread(p: LegPicker, cfg: TradeAgentConfig, _: Direction) -> Structure | None:
    return _credit_spread(p, cfg, is_call=True)


def put_credit_spread(p: LegPicker, cfg: TradeAgentConfig, _: Direction) -> Structure | None:
    return _credit_spread(p, cfg, is_call=False)


def iron_condor(p: LegPicker, cfg: TradeAgentConfig, _: Direction) -> Structure | None:
    """Short put and short call at condor_short_delta, long wings spread_width beyond them."""
    spot = p.chain.spot
    short_put = p.by_delta(False, cfg.condor_short_delta, below=spot)
    short_call = p.by_delta(True, cfg.condor_short_delta, above=spot)
    if short_put is None or short_call is None:
        return None
    long_put = _wing(p, False, _k(p, short_put), cfg.spread_width)
    long_call_ = _wing(p, True, _k(p, short_call), cfg.spread_width)
    if long_put is None or long_call_ is None:
        return None
    return Structure(
        S.IRON_CONDOR, ((long_put, 1), (short_put, -1), (short_call, -1), (long_call_, 1))
    )


def _atm_pair(p: LegPicker) -> tuple[int, int] | None:
    """Liquid call and put at one strike: the strike whose call delta is closest to 0.5."""
    chain = p.chain
    calls, puts = p.rows(True), p.rows(False)
    common, ci, pi = np.intersect1d(
        chain.strike[calls], chain.strike[puts], assume_unique=True, return_indices=True
    )
    if common.size == 0:
        return None
    c_rows, p_rows = calls[ci], puts[pi]
    d = chain.delta[c_rows]
    closeness = np.where(np.isfinite(d), np.abs(d - 0.5), np.abs(common - chain.spot))
    j = int(np.argmin(closeness))  # ascending strikes: ties go to the lower strike
    return int(c_rows[j]), int(p_rows[j])


def straddle(p: LegPicker, cfg: TradeAgentConfig, _: Direction) -> Structure | None:
    """Long call and long put at the one strike nearest the money (call delta closest to 0.5)."""
    pair = _atm_pair(p)
    return None if pair is None else Structure(S.STRADDLE, ((pair[0], 1), (pair[1], 1)))


def strangle(p: LegPicker, cfg: TradeAgentConfig, _: Direction) -> Structure | None:
    """Long out-of-the-money put and call, each at |delta| = short_delta."""
    spot = p.chain.spot
    put = p.by_delta(False, cfg.short_delta, below=spot)
    call = p.by_delta(True, cfg.short_delta, above=spot)
    if put is None or call is None:
        return None
    return Structure(S.STRANGLE, ((put, 1), (call, 1)))


def iron_butterfly(p: LegPicker, cfg: TradeAgentConfig, _: Direction) -> Structure | None:
    """Short the at-the-money straddle, long wings at |delta| = condor_short_delta."""
    pair = _atm_pair(p)
    if pair is None:
        return None
    call, put = pair
    k = _k(p, call)
    long_put = p.by_delta(False, cfg.condor_short_delta, below=k)
    long_call_ = p.by_delta(True, cfg.condor_short_delta, above=k)
    if long_put is None or long_call_ is None:
        return None
    return Structure(S.IRON_BUTTERFLY, ((long_put, 1), (put, -1), (call, -1), (long_call_, 1)))


def reverse_iron_condor(p: LegPicker, cfg: TradeAgentConfig, _: Direction) -> Structure | None:
    """Long put and call at short_delta, short wings spread_width beyond them (a debit)."""
    spot = p.chain.spot
    put = p.by_delta(False, cfg.short_delta, below=spot)
    call = p.by_delta(True, cfg.short_delta, above=spot)
    if put is None or call is None:
        return None
    far_put = _wing(p, False, _k(p, put), cfg.spread_width)
    far_call = _wing(p, True, _k(p, call), cfg.spread_width)
    if far_put is None or far_call is None:
        return None
    return Structure(S.REVERSE_IRON_CONDOR, ((far_put, -1), (put, 1), (call, 1), (far_call, -1)))


def _calendar(p: LegPicker, is_call: bool) -> Structure | None:
    """Sell the front, buy the back month at one strike: the first liquid strike in both months at
    or above spot for calls, at or below spot for puts."""
    if p.back_idx is None:
        return None
    chain = p.chain
    front, back = p.rows(is_call), p.rows(is_call, p.back_idx)
    common, fi, bi = np.intersect1d(
        chain.strike[front], chain.strike[back], assume_unique=True, return_indices=True
    )
    if common.size == 0:
        return None
    side = common >= chain.spot if is_call else common <= chain.spot
    if not side.any():
        return None
    j = int(np.flatnonzero(side)[0] if is_call else np.flatnonzero(side)[-1])
    kind = S.CALL_CALENDAR if is_call else S.PUT_CALENDAR
    return Structure(kind, ((int(front[fi[j]]), -1), (int(back[bi[j]]), 1)))


def call_calendar(p: LegPicker, cfg: TradeAgentConfig, _: Direction) -> Structure | None:
    return _calendar(p, is_call=True)


def put_calendar(p: LegPicker, cfg: TradeAgentConfig, _: Direction) -> Structure | None:
    return _calendar(p, is_call=False)


def _diagonal(p: LegPicker, cfg: TradeAgentConfig, is_call: bool) -> Structure | None:
    """Long back-month leg in the money at diagonal_long_delta, short front-month leg out of the
    money at short_delta and further out than the long strike (so the max loss is the debit)."""
    if p.back_idx is None:
        return None
    long_row = p.by_delta(is_call, cfg.diagonal_long_delta, expiry=p.back_idx)
    if long_row is None:
        return None
    k = _k(p, long_row)
    above, below = _beyond(is_call, k)
    short_row = p.by_delta(is_call, cfg.short_delta, above=above, below=below)
    if short_row is None:
        return None
    kind = S.CALL_DIAGONAL if is_call else S.PUT_DIAGONAL
    return Structure(kind, ((long_row, 1), (short_row, -1)))


def call_diagonal(p: LegPicker, cfg: TradeAgentConfig, _: Direction) -> Structure | None:
    return _diagonal(p, cfg, is_call=True)


def put_diagonal(p: LegPicker, cfg: TradeAgentConfig, _: Direction) -> Structure | None:
    return _diagonal(p, cfg, is_call=False)


def broken_wing_butterfly(
    p: LegPicker, cfg: TradeAgentConfig, direction: Direction
) -> Structure | None:
    """Long 1 / short 2 / long 1 with the far wing twice as wide as the near one.

    Bullish or neutral: puts, body at |delta| = short_delta below spot, near wing spread_width above
    the body, far wing 2 × spread_width below it (no risk if the market rallies when opened for a
    credit). Bearish: the mirror image in calls.
    """
    is_call = direction is Direction.BEARISH
    spot = p.chain.spot
    above, below = _beyond(is_call, spot)
    body = p.by_delta(is_call, cfg.short_delta, above=above, below=below)
    if body is None:
        return None
    k = _k(p, body)
    w = cfg.spread_width
    if is_call:
        near = p.by_strike(True, k - w, below=k)
        far = p.by_strike(True, k + 2 * w, above=k)
    else:
        near = p.by_strike(False, k + w, above=k)
        far = p.by_strike(False, k - 2 * w, below=k)
    if near is None or far is None or abs(_k(p, far) - k) <= abs(_k(p, near) - k):
        return None
    lo, hi = (near, far) if is_call else (far, near)
    return Structure(S.BROKEN_WING_BUTTERFLY, ((lo, 1), (body, -2), (hi, 1)))


BUILDERS: dict[StrategyType, Builder] = {
    S.LONG_CALL: long_call,
    S.LONG_PUT: long_put,
    S.CALL_DEBIT_SPREAD: call_debit_spread,
    S.PUT_DEBIT_SPREAD: put_debit_spread,
    S.CALL_CREDIT_SPREAD: call_credit_spread,
    S.PUT_CREDIT_SPREAD: put_credit_spread,
    S.IRON_CONDOR: iron_condor,
    S.IRON_BUTTERFLY: iron_butterfly,
    S.STRADDLE: straddle,
    S.STRANGLE: strangle,
    S.REVERSE_IRON_CONDOR: reverse_iron_condor,
    S.CALL_CALENDAR: call_calendar,
    S.PUT_CALENDAR: put_calendar,
    S.CALL_DIAGONAL: call_diagonal,
    S.PUT_DIAGONAL: put_diagonal,
    S.BROKEN_WING_BUTTERFLY: broken_wing_butterfly,
}
