"""Strategy builders: pick listed, liquid legs of a ChainSnapshot by expiry, delta and width.

Every builder returns a `Structure` (chain rows with signed ratios) or None when the chain has no
suitable liquid contract; pricing, risk and sizing are the trade agent's job.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import numpy as np

from gnosisd.bus.events import BoolArray, ChainSnapshot
from gnosisd.core.config import LiquidityConfig, TradeAgentConfig
from gnosisd.core.enums import StrategyType


@dataclass(frozen=True, slots=True)
class Structure:
    """A strategy as chain rows: `legs` are (row index, signed ratio: +1 long, -1 short)."""

    strategy: StrategyType
    legs: tuple[tuple[int, int], ...]


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


def liquid_mask(chain: ChainSnapshot, liq: LiquidityConfig) -> BoolArray:
    """Rows with a two-sided quote, spread/mid <= max_spread_pct and OI >= min_open_interest."""
    bid, ask = chain.bid, chain.ask
    mid = (bid + ask) / 2.0
    two_sided = (bid > 0) & (ask >= bid) & np.isfinite(bid) & np.isfinite(ask)
    with np.errstate(divide="ignore", invalid="ignore"):
        spread_pct = np.where(mid > 0, (ask - bid) / mid, np.inf)
    ok = two_sided & (spread_pct <= liq.max_spread_pct)
    ok &= chain.open_interest >= liq.min_open_interest
    return np.asarray(ok, dtype=np.bool_)


class LegPicker:
    """Find liquid contracts of one expiry by |delta| or by strike (nearest liquid strike)."""

    def __init__(self, chain: ChainSnapshot, liq: LiquidityConfig, expiry_idx: int) -> None:
        self.chain = chain
        self._base = liquid_mask(chain, liq) & (chain.expiry_idx == expiry_idx)

    def candidates(self, is_call: bool, above: float | None, below: float | None) -> BoolArray:
        m = self._base & (self.chain.is_call == is_call)
        if above is not None:
            m = m & (self.chain.strike > above)
        if below is not None:
            m = m & (self.chain.strike < below)
        return np.asarray(m, dtype=np.bool_)

    def by_delta(
        self,
        is_call: bool,
        target: float,
        *,
        above: float | None = None,
        below: float | None = None,
    ) -> int | None:
        """Liquid row whose |delta| is closest to `target` (ties: the lower strike)."""
        m = self.candidates(is_call, above, below) & np.isfinite(self.chain.delta)
        rows = np.flatnonzero(m)
        if rows.size == 0:
            return None
        dist = np.abs(np.abs(self.chain.delta[rows]) - target)
        order = np.lexsort((self.chain.strike[rows], dist))
        return int(rows[order[0]])

    def by_strike(
        self,
        is_call: bool,
        target: float,
        *,
        above: float | None = None,
        below: float | None = None,
    ) -> int | None:
        """Liquid row whose strike is closest to `target` (ties: the lower strike)."""
        rows = np.flatnonzero(self.candidates(is_call, above, below))
        if rows.size == 0:
            return None
        dist = np.abs(self.chain.strike[rows] - target)
        order = np.lexsort((self.chain.strike[rows], dist))
        return int(rows[order[0]])

    def delta_or_atm(self, is_call: bool, target: float, **bounds: float | None) -> int | None:
        """By delta; if the chain has no usable delta, fall back to the strike nearest spot."""
        row = self.by_delta(is_call, target, **bounds)
        if row is None:
            row = self.by_strike(is_call, self.chain.spot, **bounds)
        return row


Builder = Callable[[LegPicker, TradeAgentConfig], "Structure | None"]


def long_call(p: LegPicker, cfg: TradeAgentConfig) -> Structure | None:
    row = p.delta_or_atm(True, cfg.long_delta)
    return None if row is None else Structure(StrategyType.LONG_CALL, ((row, 1),))


def long_put(p: LegPicker, cfg: TradeAgentConfig) -> Structure | None:
    row = p.delta_or_atm(False, cfg.long_delta)
    return None if row is None else Structure(StrategyType.LONG_PUT, ((row, 1),))


def _debit_spread(p: LegPicker, cfg: TradeAgentConfig, is_call: bool) -> Structure | None:
    """Long leg at long_delta; short leg further out of the money at short_delta (else by width)."""
    long_row = p.delta_or_atm(is_call, cfg.long_delta)
    if long_row is None:
        return None
    k = float(p.chain.strike[long_row])
    bound = {"above": k} if is_call else {"below": k}
    short_row = p.by_delta(is_call, cfg.short_delta, **bound)
    if short_row is None:
        width_target = k + cfg.spread_width if is_call else k - cfg.spread_width
        short_row = p.by_strike(is_call, width_target, **bound)
    if short_row is None:
        return None
    kind = StrategyType.CALL_DEBIT_SPREAD if is_call else StrategyType.PUT_DEBIT_SPREAD
    return Structure(kind, ((long_row, 1), (short_row, -1)))


def call_debit_spread(p: LegPicker, cfg: TradeAgentConfig) -> Structure | None:
    return _debit_spread(p, cfg, is_call=True)


def put_debit_spread(p: LegPicker, cfg: TradeAgentConfig) -> Structure | None:
    return _debit_spread(p, cfg, is_call=False)


def iron_condor(p: LegPicker, cfg: TradeAgentConfig) -> Structure | None:
    """Short put and short call at condor_short_delta, long wings spread_width beyond them."""
    spot = p.chain.spot
    short_put = p.by_delta(False, cfg.condor_short_delta, below=spot)
    short_call = p.by_delta(True, cfg.condor_short_delta, above=spot)
    if short_put is None or short_call is None:
        return None
    kp, kc = float(p.chain.strike[short_put]), float(p.chain.strike[short_call])
    long_put = p.by_strike(False, kp - cfg.spread_width, below=kp)
    long_call = p.by_strike(True, kc + cfg.spread_width, above=kc)
    if long_put is None or long_call is None:
        return None
    return Structure(
        StrategyType.IRON_CONDOR,
        ((long_put, 1), (short_put, -1), (short_call, -1), (long_call, 1)),
    )


def straddle(p: LegPicker, cfg: TradeAgentConfig) -> Structure | None:
    """Long call and long put at one strike: the liquid pair whose call delta is closest to 0.5."""
    chain = p.chain
    calls = np.flatnonzero(p.candidates(True, None, None))
    puts = {float(chain.strike[i]): int(i) for i in np.flatnonzero(p.candidates(False, None, None))}
    pairs = [
        (int(c), puts[float(chain.strike[c])]) for c in calls if float(chain.strike[c]) in puts
    ]
    if not pairs:
        return None

    def key(pair: tuple[int, int]) -> tuple[float, float]:
        c = pair[0]
        d = float(chain.delta[c])
        closeness = abs(d - 0.5) if np.isfinite(d) else abs(float(chain.strike[c]) - chain.spot)
        return (closeness, float(chain.strike[c]))

    c, put = min(pairs, key=key)
    return Structure(StrategyType.STRADDLE, ((c, 1), (put, 1)))


def strangle(p: LegPicker, cfg: TradeAgentConfig) -> Structure | None:
    """Long out-of-the-money put and call, each at |delta| = short_delta."""
    spot = p.chain.spot
    put = p.by_delta(False, cfg.short_delta, below=spot)
    call = p.by_delta(True, cfg.short_delta, above=spot)
    if put is None or call is None:
        return None
    return Structure(StrategyType.STRANGLE, ((put, 1), (call, 1)))


BUILDERS: dict[StrategyType, Builder] = {
    StrategyType.LONG_CALL: long_call,
    StrategyType.LONG_PUT: long_put,
    StrategyType.CALL_DEBIT_SPREAD: call_debit_spread,
    StrategyType.PUT_DEBIT_SPREAD: put_debit_spread,
    StrategyType.IRON_CONDOR: iron_condor,
    StrategyType.STRADDLE: straddle,
    StrategyType.STRANGLE: strangle,
}
