"""Read-only views that the runtime hands to agents and the risk guard (owners mutate, others read)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from datetime import date


@dataclass(frozen=True, slots=True)
class PositionLeg:
    symbol: str  # OCC
    is_call: bool
    strike: Decimal
    expiry: date
    ratio: int  # signed per unit: +1 long, -1 short


@dataclass(frozen=True, slots=True)
class Position:
    """An open multi-leg position as the ledger sees it (a copy; mutating it changes nothing)."""

    position_id: str
    underlying: str
    strategy_type: str
    quantity: int
    legs: tuple[PositionLeg, ...]
    entry_net_price: Decimal  # per share, > 0 debit paid, < 0 credit received
    max_loss: Decimal  # total dollars at quantity, <= 0
    max_profit: Decimal | None  # total dollars at quantity, None if unbounded
    opened_ns: int
    mark_net_price: Decimal  # current per-share value of the structure (same sign convention)
    unrealized_pnl: Decimal  # dollars
    exit_rules: dict[str, float]


class PortfolioView(Protocol):
    """What the risk guard and agents may read of the portfolio."""

    def equity(self) -> Decimal: ...

    def cash(self) -> Decimal: ...

    def positions(self) -> list[Position]: ...

    def session_pnl(self) -> Decimal:
        """Realised plus unrealised P&L since the current session's start, in dollars."""
        ...


class MarketView(Protocol):
    """What the risk guard may read of market data freshness."""

    def last_data_ns(self, symbol: str) -> int | None: ...
