"""Build small ChainSnapshots from {OCC symbol: (bid, ask)} for broker and ledger tests."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import numpy as np

from gnosisd.bus.events import ChainSnapshot, OrderLeg, SubmitOrder
from gnosisd.core.enums import OptionType, PositionEffect, Side
from gnosisd.core.occ import occ_symbol, parse_occ

EXPIRY = date(2025, 7, 18)
TS = 1_750_000_000_000_000_000


def sym(kind: OptionType, strike: int, underlying: str = "SPY") -> str:
    return occ_symbol(underlying, EXPIRY, kind, Decimal(strike))


def chain(quotes: dict[str, tuple[float, float]], underlying: str = "SPY") -> ChainSnapshot:
    symbols = tuple(quotes)
    contracts = [parse_occ(s) for s in symbols]
    expiries = tuple(sorted({c.expiry for c in contracts}))
    n = len(symbols)
    f = np.zeros(n, dtype=np.float64)
    return ChainSnapshot(
        underlying=underlying,
        ts_ns=TS,
        spot=450.0,
        rate=0.04,
        div_yield=0.0,
        symbols=symbols,
        is_call=np.array([c.option_type is OptionType.CALL for c in contracts], dtype=np.bool_),
        strike=np.array([float(c.strike) for c in contracts], dtype=np.float64),
        expiries=expiries,
        expiry_idx=np.array([expiries.index(c.expiry) for c in contracts], dtype=np.int64),
        t_years=f + 0.1,
        bid=np.array([q[0] for q in quotes.values()], dtype=np.float64),
        ask=np.array([q[1] for q in quotes.values()], dtype=np.float64),
        iv=f + 0.2,
        delta=f.copy(),
        gamma=f.copy(),
        vega=f.copy(),
        theta=f.copy(),
        open_interest=np.zeros(n, dtype=np.int64),
        volume=np.zeros(n, dtype=np.int64),
    )


def leg(side: Side, kind: OptionType, strike: int, ratio: int = 1) -> OrderLeg:
    return OrderLeg(
        symbol=sym(kind, strike),
        side=side,
        ratio=ratio,
        option_type=kind,
        strike=Decimal(strike),
        expiry=EXPIRY,
    )


def order(
    intent_id: str,
    legs: tuple[OrderLeg, ...],
    limit: str,
    quantity: int = 1,
    strategy_type: str = "custom",
) -> SubmitOrder:
    return SubmitOrder(
        intent_id=intent_id,
        underlying="SPY",
        ts_ns=TS,
        effect=PositionEffect.OPEN,
        legs=legs,
        quantity=quantity,
        limit_price=Decimal(limit),
        strategy_type=strategy_type,
    )


def close_of(
    intent_id: str, opened: SubmitOrder, limit: str, quantity: int | None = None
) -> SubmitOrder:
    """The intent that closes `opened` (every leg reversed)."""
    flipped = tuple(
        replace(lg, side=Side.SELL if lg.side is Side.BUY else Side.BUY) for lg in opened.legs
    )
    return replace(
        opened,
        intent_id=intent_id,
        effect=PositionEffect.CLOSE,
        legs=flipped,
        limit_price=Decimal(limit),
        quantity=opened.quantity if quantity is None else quantity,
        position_id=opened.position_id or opened.intent_id,
        exit_reason="test",
    )
