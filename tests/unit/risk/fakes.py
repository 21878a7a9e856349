"""Test doubles for the risk guard: a portfolio view, a market view and an intent builder."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal

from gnosisd.bus.events import OrderLeg, SubmitOrder
from gnosisd.core.clock import datetime_to_ns
from gnosisd.core.enums import OptionType, PositionEffect, Side
from gnosisd.core.occ import occ_symbol
from gnosisd.core.views import Position

EXPIRY = date(2025, 7, 18)
# 2025-06-02 10:00 New York (EDT) = 14:00 UTC, a Monday session.
NOW = datetime_to_ns(datetime(2025, 6, 2, 14, 0, tzinfo=UTC))
S = 1_000_000_000


@dataclass
class FakePortfolio:
    equity_: Decimal = Decimal("100000")
    pnl: Decimal = Decimal("0")
    open_positions: list[Position] = field(default_factory=list)

    def equity(self) -> Decimal:
        return self.equity_

    def cash(self) -> Decimal:
        return self.equity_

    def positions(self) -> list[Position]:
        return list(self.open_positions)

    def session_pnl(self) -> Decimal:
        return self.pnl


@dataclass
class FakeMarket:
    last: dict[str, int] = field(default_factory=dict)

    def last_data_ns(self, symbol: str) -> int | None:
        return self.last.get(symbol)


def leg(
    side: Side, kind: OptionType, strike: str | int, ratio: int = 1, underlying: str = "SPY"
) -> OrderLeg:
    k = Decimal(strike)
    return OrderLeg(
        symbol=occ_symbol(underlying, EXPIRY, kind, k),
        side=side,
        ratio=ratio,
        option_type=kind,
        strike=k,
        expiry=EXPIRY,
    )


def put_credit_spread(
    intent_id: str = "i-1", quantity: int = 1, limit: str = "-1.50"
) -> SubmitOrder:
    """Sell 450P / buy 445P for a 1.50 credit: max loss 3.50 per share, $350 per spread."""
    return SubmitOrder(
        intent_id=intent_id,
        underlying="SPY",
        ts_ns=NOW,
        effect=PositionEffect.OPEN,
        legs=(leg(Side.SELL, OptionType.PUT, 450), leg(Side.BUY, OptionType.PUT, 445)),
        quantity=quantity,
        limit_price=Decimal(limit),
        strategy_type="put_credit_spread",
    )


def closing(intent_id: str = "c-1", position_id: str = "p-1") -> SubmitOrder:
    """Buy back the 450/445 put credit spread for 0.50."""
    return replace(
        put_credit_spread(intent_id, limit="0.50"),
        effect=PositionEffect.CLOSE,
        legs=(leg(Side.BUY, OptionType.PUT, 450), leg(Side.SELL, OptionType.PUT, 445)),
        position_id=position_id,
        exit_reason="profit_target",
    )


def fake_position(position_id: str) -> Position:
    return Position(
        position_id=position_id,
        underlying="SPY",
        strategy_type="put_credit_spread",
        quantity=1,
        legs=(),
        entry_net_price=Decimal("-1.5"),
        max_loss=Decimal("-350"),
        max_profit=Decimal("150"),
        opened_ns=NOW,
        mark_net_price=Decimal("-1.5"),
        unrealized_pnl=Decimal("0"),
        exit_rules={},
    )
