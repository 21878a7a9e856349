"""Persisted records that also travel on the bus: market context and trade idea (pydantic, strict).

Their JSON form is the journal's line payload (`runs/YYYY-MM-DD/{SYMBOL}_context.jsonl` etc.).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from gnosisd.core.enums import Direction, OptionType, Regime, Side, StrategyType


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExitRules(Record):
    """When the position manager closes a position.

    profit_target_pct: fraction of max profit at which to take profit (0.5 = 50%).
    stop_loss_pct: fraction of max loss at which to stop out (larger = wider stop).
    time_exit_dte: close when days to the front expiry fall to this value.
    max_days_held: close after holding this many calendar days.
    """

    profit_target_pct: float = Field(gt=0, le=5)
    stop_loss_pct: float = Field(gt=0, le=1)
    time_exit_dte: int = Field(ge=0)
    max_days_held: int = Field(ge=1)


class MarketContext(Record):
    """What the composer concluded from the engines at one instant."""

    symbol: str
    as_of: datetime
    spot: float
    direction: Direction
    confidence: float = Field(ge=0, le=1)
    regime: Regime
    iv_rank: float | None = Field(default=None, ge=0, le=1)
    iv_percentile: float | None = Field(default=None, ge=0, le=1)
    atm_iv: float | None = None
    realized_vol: float | None = None
    expected_move: float | None = None  # dollars, 1 s.d. to the front monthly-ish expiry
    exit_rules: ExitRules
    engines: dict[str, dict[str, float]] = Field(default_factory=dict)
    flags: list[str] = Field(default_factory=list)


class LegRecord(Record):
    symbol: str  # OCC symbol from the listed chain
    side: Side
    option_type: OptionType
    strike: Decimal
    expiry: date
    quantity: int = Field(ge=1)  # contracts = ratio × the idea's quantity
    ratio: int = Field(ge=1)
    price: float  # per-share price used in the risk maths (mid of the leg's quote)


class TradeIdea(Record):
    """A trade a trader could place as is: listed legs, net price, exact risk, size, exits."""

    id: str
    symbol: str
    as_of: datetime
    strategy_type: StrategyType
    direction: Direction
    confidence: float
    quantity: int = Field(ge=0)
    legs: list[LegRecord]
    net_price: float  # per share; > 0 debit paid, < 0 credit received
    max_profit: float | None  # total dollars at quantity; None if unbounded
    max_loss: float = Field(le=0)  # total dollars at quantity, <= 0
    breakevens: list[float]
    exit_rules: ExitRules
    score: float
    iv_rank: float | None = None
    regime: Regime | None = None
    rank: int = 0
