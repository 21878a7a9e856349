"""Typed, immutable events and commands that travel on the bus.

Hot-path market data are frozen, slotted dataclasses; records that are persisted (context, idea)
are pydantic models in `gnosisd.bus.records`. Every message carries a UTC timestamp in ns.
Commands are imperative (SubmitOrder), events past tense (OrderFilled, RiskDecided).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import date
from decimal import Decimal

import numpy as np
import numpy.typing as npt

from gnosisd.core.enums import (
    OptionType,
    OrderStatus,
    PositionEffect,
    RiskReason,
    Side,
    TradingState,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


# ---------------------------------------------------------------- market data (hot path)
@dataclass(frozen=True, slots=True)
class Quote:
    """Top-of-book quote for an underlying or an option (symbol is a ticker or an OCC symbol)."""

    symbol: str
    ts_ns: int
    bid: float
    ask: float
    bid_size: float
    ask_size: float


@dataclass(frozen=True, slots=True)
class Trade:
    symbol: str
    ts_ns: int
    price: float
    size: float


@dataclass(frozen=True, slots=True)
class Bar:
    """A 1-minute bar; ts_ns is the bar's start."""

    symbol: str
    ts_ns: int
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclass(frozen=True, slots=True)
class NewsItem:
    ts_ns: int
    headline: str
    symbols: tuple[str, ...]


@dataclass(frozen=True, slots=True, eq=False)
class ChainSnapshot:
    """One option-chain snapshot for an underlying, column-wise for vectorised analytics.

    Row i describes contract `symbols[i]`; `expiries` lists distinct expiry dates ascending and
    `expiry_idx[i]` points into it. `t_years` is time to expiry (ACT/365 to the 16:00 New York close)
    from `ts_ns`. Greeks are per share, vega per 1.00 of vol, theta per year.
    Arrays are read-only after construction.
    """

    underlying: str
    ts_ns: int
    spot: float
    rate: float
    div_yield: float
    symbols: tuple[str, ...]
    is_call: BoolArray
    strike: FloatArray
    expiries: tuple[date, ...]
    expiry_idx: IntArray
    t_years: FloatArray
    bid: FloatArray
    ask: FloatArray
    iv: FloatArray
    delta: FloatArray
    gamma: FloatArray
    vega: FloatArray
    theta: FloatArray
    open_interest: IntArray
    volume: IntArray
    american: bool = True  # listed equity/ETF options are American exercise
    # symbol -> row cache for row(); a slot is needed because the class is slotted
    _index_cache: dict[str, int] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = len(self.symbols)
        for name in (
            "is_call",
            "strike",
            "expiry_idx",
            "t_years",
            "bid",
            "ask",
            "iv",
            "delta",
            "gamma",
            "vega",
            "theta",
            "open_interest",
            "volume",
        ):
            arr = getattr(self, name)
            if arr.shape != (n,):
                raise ValueError(f"ChainSnapshot.{name} has shape {arr.shape}, expected ({n},)")
            arr.flags.writeable = False

    @property
    def mid(self) -> FloatArray:
        return (self.bid + self.ask) / 2.0

    def __len__(self) -> int:
        return len(self.symbols)

    def row(self, symbol: str) -> int:
        """Index of an OCC symbol in this snapshot; raise KeyError if not listed."""
        idx = self._index().get(symbol)
        if idx is None:
            raise KeyError(f"{symbol} is not in the {self.underlying} chain")
        return idx

    def _index(self) -> dict[str, int]:
        cached: dict[str, int] | None = getattr(self, "_index_cache", None)
        if cached is None:
            cached = {s: i for i, s in enumerate(self.symbols)}
            object.__setattr__(self, "_index_cache", cached)
        return cached

    def option_type(self, i: int) -> OptionType:
        return OptionType.CALL if bool(self.is_call[i]) else OptionType.PUT

    def expiry(self, i: int) -> date:
        return self.expiries[int(self.expiry_idx[i])]


# ---------------------------------------------------------------- analytics
@dataclass(frozen=True, slots=True)
class EngineSnapshot:
    """The output of one engine update: named metrics (float) and raised flags."""

    engine: str
    symbol: str
    ts_ns: int
    metrics: dict[str, float]
    flags: tuple[str, ...] = ()


# ---------------------------------------------------------------- orders (never dropped)
@dataclass(frozen=True, slots=True)
class OrderLeg:
    """One leg of an order: `ratio` contracts per unit of the order's quantity."""

    symbol: str  # OCC symbol
    side: Side
    ratio: int
    option_type: OptionType
    strike: Decimal
    expiry: date


@dataclass(frozen=True, slots=True)
class SubmitOrder:
    """Command: an order intent for the risk guard (open a new idea or close a position).

    `limit_price` is the net per-share price of one unit of the structure: positive means we pay a
    debit, negative means we receive a credit. Multiply by quantity × 100 for dollars.
    """

    intent_id: str
    underlying: str
    ts_ns: int
    effect: PositionEffect
    legs: tuple[OrderLeg, ...]
    quantity: int
    limit_price: Decimal
    idea_id: str | None = None
    position_id: str | None = None
    exit_reason: str | None = None
    strategy_type: str | None = None


@dataclass(frozen=True, slots=True)
class RiskDecided:
    """Event: the risk guard's decision on an intent. Only approved intents reach the broker."""

    intent: SubmitOrder
    ts_ns: int
    approved: bool
    reason: RiskReason
    detail: str
    max_loss: Decimal  # recomputed by the guard from legs and limit price, total dollars, <= 0
    trading_state: TradingState


def _slot_setters(
    cls: type, names: tuple[str, ...]
) -> tuple[Callable[[object, object], None], ...]:
    return tuple(getattr(cls, name).__set__ for name in names)


_RISK_DECIDED_FIELDS = (
    "intent", "ts_ns", "approved", "reason", "detail", "max_loss", "trading_state",
)  # fmt: skip
if tuple(f.name for f in fields(RiskDecided)) != _RISK_DECIDED_FIELDS:  # kept in step
    raise TypeError("risk_decided() no longer matches the fields of RiskDecided")
_RD = _slot_setters(RiskDecided, _RISK_DECIDED_FIELDS)


def risk_decided(
    intent: SubmitOrder,
    ts_ns: int,
    approved: bool,
    reason: RiskReason,
    detail: str,
    max_loss: Decimal,
    trading_state: TradingState,
) -> RiskDecided:
    """`RiskDecided(...)` for the guard's hot path: the same object, built by setting its slots
    directly (a frozen dataclass's __init__ pays an object.__setattr__ call per field)."""
    d = object.__new__(RiskDecided)
    s0, s1, s2, s3, s4, s5, s6 = _RD
    s0(d, intent)
    s1(d, ts_ns)
    s2(d, approved)
    s3(d, reason)
    s4(d, detail)
    s5(d, max_loss)
    s6(d, trading_state)
    return d


@dataclass(frozen=True, slots=True)
class OrderUpdated:
    """Event: broker acknowledgement, rejection, cancel or expiry of an order."""

    order_id: str
    intent_id: str
    underlying: str
    ts_ns: int
    status: OrderStatus
    message: str = ""


@dataclass(frozen=True, slots=True)
class LegFill:
    symbol: str
    side: Side
    quantity: int  # contracts
    price: Decimal  # per share


@dataclass(frozen=True, slots=True)
class OrderFilled:
    """Event: an order filled (whole multi-leg order at one net price)."""

    order_id: str
    intent_id: str
    underlying: str
    ts_ns: int
    effect: PositionEffect
    quantity: int
    net_price: Decimal  # per share, signed like SubmitOrder.limit_price
    commission: Decimal
    legs: tuple[LegFill, ...]
    position_id: str
    exit_reason: str | None = None
    slippage: Decimal = Decimal("0")  # dollars paid versus mid, >= 0 means worse than mid


# ---------------------------------------------------------------- control (never dropped)
@dataclass(frozen=True, slots=True)
class TradingStateChanged:
    ts_ns: int
    state: TradingState
    reason: str


@dataclass(frozen=True, slots=True)
class ShutdownRequested:
    ts_ns: int
    reason: str


@dataclass(frozen=True, slots=True)
class SessionClosed:
    """The trading session ended (the market feed's clock passed the close)."""

    ts_ns: int
    day: date
    settlement: dict[str, float] = field(default_factory=dict)  # underlying -> closing price


@dataclass(frozen=True, slots=True)
class SessionStarted:
    """A trading session opened (New York date `day`); per-session limits reset."""

    ts_ns: int
    day: date


@dataclass(frozen=True, slots=True)
class PortfolioMarked:
    """The ledger was marked to market; the risk guard checks the daily loss limit on it."""

    ts_ns: int
    equity: Decimal
    session_pnl: Decimal
