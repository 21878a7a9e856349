"""Build small ChainSnapshots from {OCC symbol: (bid, ask)} for broker and ledger tests."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

from gnosisd.bus.events import ChainSnapshot, OrderLeg, SubmitOrder
from gnosisd.core.enums import OptionType, PositionEffect, Side
from gnosisd.core.occ import occ_symbol
from gnosisd.testing.chains import quoted_chain

EXPIRY = date(2025, 7, 18)
TS = 1_750_000_000_000_000_000


def sym(kind: OptionType, strike: int, underlying: str = "SPY") -> str:
    return occ_symbol(underlying, EXPIRY, kind, Decimal(strike))


def chain(quotes: dict[str, tuple[float, float]], underlying: str = "SPY") -> ChainSnapshot:
    return quoted_chain(quotes, underlying=underlying, spot=450.0, ts_ns=TS)


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
