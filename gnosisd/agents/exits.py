"""Exit rules by strategy family and confidence (the runbook's review expectations, made consistent).

stop_loss_pct is the fraction of max loss at which a position is closed. Higher confidence widens
the stop and the trailing distance (a *larger* fraction); the runbook's parenthetical "smaller
stop_loss_pct" contradicts its own "wider stops" and is corrected here (see docs/risk.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from gnosisd.bus.records import ExitRules
from gnosisd.core.enums import StrategyType


class Family(StrEnum):
    DIRECTIONAL = "directional"
    INCOME = "income"
    VOLATILITY = "volatility"
    TIME = "time"  # calendars and diagonals: short front month, long back month


S = StrategyType
FAMILY: dict[StrategyType, Family] = {
    S.LONG_CALL: Family.DIRECTIONAL,
    S.LONG_PUT: Family.DIRECTIONAL,
    S.CALL_DEBIT_SPREAD: Family.DIRECTIONAL,
    S.PUT_DEBIT_SPREAD: Family.DIRECTIONAL,
    S.CALL_CREDIT_SPREAD: Family.INCOME,
    S.PUT_CREDIT_SPREAD: Family.INCOME,
    S.IRON_CONDOR: Family.INCOME,
    S.IRON_BUTTERFLY: Family.INCOME,
    S.BROKEN_WING_BUTTERFLY: Family.INCOME,
    S.STRADDLE: Family.VOLATILITY,
    S.STRANGLE: Family.VOLATILITY,
    S.REVERSE_IRON_CONDOR: Family.VOLATILITY,
    S.CALL_CALENDAR: Family.TIME,
    S.PUT_CALENDAR: Family.TIME,
    S.CALL_DIAGONAL: Family.TIME,
    S.PUT_DIAGONAL: Family.TIME,
}


@dataclass(frozen=True, slots=True)
class FamilyExits:
    """Base rules of a family at confidence 0.5 (stop and trail are then scaled by confidence)."""

    profit_target: float
    stop: float
    trailing: float  # 0 = no trailing stop
    breakeven_trigger: float  # 0 = the stop never moves to breakeven
    time_exit_dte: int
    max_days_held: int


BASE: dict[Family, FamilyExits] = {
    # Debit, directional: take half the max profit, trail a winner, protect it at breakeven.
    Family.DIRECTIONAL: FamilyExits(0.50, 0.50, 0.25, 0.30, 7, 21),
    # Short premium: half the max profit, tighter stops, no trail (its P&L is decay, not trend).
    Family.INCOME: FamilyExits(0.50, 0.35, 0.0, 0.0, 5, 30),
    # Long premium: larger target, wider stops and trail, short holding (theta bleeds it).
    Family.VOLATILITY: FamilyExits(0.75, 0.60, 0.30, 0.40, 10, 14),
    # Time spreads: target a share of the debit, close before the short front month expires.
    Family.TIME: FamilyExits(0.40, 0.45, 0.0, 0.25, 5, 21),
}


def widen(base: float, confidence: float) -> float:
    """Scale a stop-like distance by 0.8 + 0.4 × confidence (0.8x at 0, 1.2x at 1), at most 1."""
    c = min(max(confidence, 0.0), 1.0)
    return round(min(base * (0.8 + 0.4 * c), 1.0), 4)


def exit_rules_for(
    family: Family,
    confidence: float,
    *,
    target_scale: float = 1.0,
    stop_scale: float = 1.0,
) -> ExitRules:
    """Exit rules for a strategy family; the stop and the trail widen linearly with confidence.

    `target_scale` and `stop_scale` (trade_agent.exit_profit_target_scale / exit_stop_scale)
    multiply the family's profit target and stop; the stop stays a fraction of max loss (<= 1).
    """
    b = BASE[family]
    return ExitRules(
        profit_target_pct=round(b.profit_target * target_scale, 6),
        stop_loss_pct=min(round(widen(b.stop, confidence) * stop_scale, 6), 1.0),
        time_exit_dte=b.time_exit_dte,
        max_days_held=b.max_days_held,
        trailing_stop_pct=widen(b.trailing, confidence),
        breakeven_trigger_pct=b.breakeven_trigger,
    )


def exit_rules_for_strategy(
    strategy: StrategyType,
    confidence: float,
    *,
    target_scale: float = 1.0,
    stop_scale: float = 1.0,
) -> ExitRules:
    return exit_rules_for(
        FAMILY[strategy], confidence, target_scale=target_scale, stop_scale=stop_scale
    )
