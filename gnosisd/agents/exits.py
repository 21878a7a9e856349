"""Exit rules by strategy family and confidence (the runbook's review expectations, consistent).

stop_loss_pct is the fraction of max loss at which a position is closed. Higher confidence widens
the stop (a *larger* stop_loss_pct); the runbook's parenthetical "smaller stop_loss_pct" contradicts
its own "wider stops" and is corrected here (see docs/risk.md).
"""

from __future__ import annotations

from enum import StrEnum

from gnosisd.bus.records import ExitRules
from gnosisd.core.enums import StrategyType


class Family(StrEnum):
    DIRECTIONAL = "directional"
    INCOME = "income"
    VOLATILITY = "volatility"


FAMILY: dict[StrategyType, Family] = {
    StrategyType.LONG_CALL: Family.DIRECTIONAL,
    StrategyType.LONG_PUT: Family.DIRECTIONAL,
    StrategyType.CALL_DEBIT_SPREAD: Family.DIRECTIONAL,
    StrategyType.PUT_DEBIT_SPREAD: Family.DIRECTIONAL,
    StrategyType.CALL_CREDIT_SPREAD: Family.INCOME,
    StrategyType.PUT_CREDIT_SPREAD: Family.INCOME,
    StrategyType.IRON_CONDOR: Family.INCOME,
    StrategyType.IRON_BUTTERFLY: Family.INCOME,
    StrategyType.STRADDLE: Family.VOLATILITY,
    StrategyType.STRANGLE: Family.VOLATILITY,
}

# family -> (profit target, base stop, time exit DTE, max days held)
_BASE: dict[Family, tuple[float, float, int, int]] = {
    Family.DIRECTIONAL: (0.50, 0.50, 7, 21),
    Family.INCOME: (0.50, 0.35, 5, 30),  # tighter stops for short premium
    Family.VOLATILITY: (0.75, 0.60, 10, 14),  # wider stops, larger target
}


def exit_rules_for(family: Family, confidence: float) -> ExitRules:
    """Exit rules for a strategy family; the stop widens linearly with confidence (0.8x to 1.2x)."""
    target, stop, dte, held = _BASE[family]
    c = min(max(confidence, 0.0), 1.0)
    widened = min(stop * (0.8 + 0.4 * c), 1.0)
    return ExitRules(
        profit_target_pct=target,
        stop_loss_pct=round(widened, 4),
        time_exit_dte=dte,
        max_days_held=held,
    )


def exit_rules_for_strategy(strategy: StrategyType, confidence: float) -> ExitRules:
    return exit_rules_for(FAMILY[strategy], confidence)
