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
    trailing_stop_pct: once the best P&L reached this fraction of the profit base, close when P&L
        falls this fraction of the profit base below its best (0 = off).
    breakeven_trigger_pct: once the best P&L reached this fraction of the profit base, close when
        P&L falls back to zero (the stop moves to breakeven; 0 = off). docs/risk.md, "Exit rules".
    """

    profit_target_pct: float = Field(gt=0, le=5)
    stop_loss_pct: float = Field(gt=0, le=1)
    time_exit_dte: int = Field(ge=0)
    max_days_held: int = Field(ge=1)
    trailing_stop_pct: float = Field(default=0.0, ge=0, le=1)
    breakeven_trigger_pct: float = Field(default=0.0, ge=0, le=5)


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


class PnlCone(Record):
    """Idea P&L in dollars at its quantity: pnl[day][iv shift][spot] (docs/strategies.md)."""

    spots: list[float]
    days: list[float]  # days from as_of: now, mid-life, front expiry
    iv_shifts: list[float]  # added to every leg's implied vol (0.05 = +5 vol points)
    pnl: list[list[list[float]]]


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
    # Risk profile at the front expiry (docs/strategies.md): POP and expected value (dollars at
    # quantity) under the chain-implied lognormal; the Kelly fraction used for sizing.
    horizon: date | None = None
    pop: float | None = Field(default=None, ge=0, le=1)
    expected_value: float | None = None
    kelly_fraction: float | None = None
    score_parts: dict[str, float] = Field(default_factory=dict)
    pnl_cone: PnlCone | None = None
