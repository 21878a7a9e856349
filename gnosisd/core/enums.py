"""Enumerations with their wire values (journal, logs and the broker use these strings)."""

from __future__ import annotations

from enum import StrEnum


class OptionType(StrEnum):
    CALL = "call"
    PUT = "put"


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


class Direction(StrEnum):
    BULLISH = "bullish"
    BEARISH = "bearish"
    NEUTRAL = "neutral"


class Regime(StrEnum):
    """Market regime from the engines, used for routing strategies and in reviews."""

    TREND_UP = "trend_up"
    TREND_DOWN = "trend_down"
    RANGE = "range"
    VOL_EXPANSION = "vol_expansion"


class StrategyType(StrEnum):
    """Strategy names; `straddle` matches the runbook's review query verbatim."""

    LONG_CALL = "long_call"
    LONG_PUT = "long_put"
    CALL_DEBIT_SPREAD = "call_debit_spread"
    PUT_DEBIT_SPREAD = "put_debit_spread"
    CALL_CREDIT_SPREAD = "call_credit_spread"
    PUT_CREDIT_SPREAD = "put_credit_spread"
    IRON_CONDOR = "iron_condor"
    IRON_BUTTERFLY = "iron_butterfly"
    STRADDLE = "straddle"
    STRANGLE = "strangle"
    REVERSE_IRON_CONDOR = "reverse_iron_condor"
    CALL_CALENDAR = "call_calendar"
    PUT_CALENDAR = "put_calendar"
    CALL_DIAGONAL = "call_diagonal"
    PUT_DIAGONAL = "put_diagonal"
    BROKEN_WING_BUTTERFLY = "broken_wing_butterfly"


class PositionEffect(StrEnum):
    OPEN = "open"
    CLOSE = "close"


class TradingState(StrEnum):
    ACTIVE = "active"
    REDUCING = "reducing"  # only risk-reducing (closing) orders pass
    HALTED = "halted"  # no new risk for the rest of the session; closes still pass


class OrderStatus(StrEnum):
    NEW = "new"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"


class RiskReason(StrEnum):
    """Named reasons of the risk guard; `approved` is the only passing one."""

    APPROVED = "approved"
    KILL_SWITCH = "kill_switch"
    LIVE_GATE = "live_trading_disabled"
    TRADE_RISK_CAP = "trade_risk_cap"
    DAILY_LOSS_LIMIT = "daily_loss_limit"
    HALTED = "trading_halted"
    MAX_OPEN_POSITIONS = "max_open_positions"
    RATE_LIMIT = "rate_limit"
    STALE_DATA = "stale_market_data"
    INVALID_ORDER = "invalid_order"
    UNDEFINED_RISK = "undefined_risk"
    DUPLICATE = "duplicate_order"
    ZERO_QUANTITY = "zero_quantity"
    BROKER_UNAVAILABLE = "broker_unavailable"
    REDUCE_ONLY = "reduce_only"
    MISSING_QUOTE = "missing_quote"
    PRICE_COLLAR = "price_collar"
    ORDER_CONTRACTS = "max_contracts_per_order"
    ORDER_PREMIUM = "max_premium_per_order"
    WINDOW_CONTRACTS = "max_contracts_per_window"
    WINDOW_PREMIUM = "max_premium_per_window"
    REENTRY_THROTTLE = "reentry_throttle"
    PORTFOLIO_RISK_CAP = "portfolio_risk_cap"
    GREEK_BUDGET = "greek_budget"
    CLOSE_MISMATCH = "close_mismatch"  # a close that does not reverse an open position
