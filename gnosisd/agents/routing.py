"""Routing: a MarketContext to candidate strategies through a configurable table (docs/strategies.md).

A cell of the table is "<direction>.<vol state>"; `trade_agent.vol_routing` picks the default table
(buy premium when volatility is high, as the runbook expects, or sell it, as the prototype's code
did) and `trade_agent.routing` overrides single cells. Below `min_confidence` nothing is routed.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from gnosisd.bus.records import MarketContext
from gnosisd.core.config import TradeAgentConfig
from gnosisd.core.enums import Direction, Regime, StrategyType

S = StrategyType


class VolState(StrEnum):
    LOW = "low"
    MID = "mid"
    HIGH = "high"


Table = Mapping[str, tuple[StrategyType, ...]]

# The runbook's distribution: long premium in volatility expansion (straddles at IV rank > 0.7).
BUY_HIGH_IV: Table = {
    "bullish.low": (S.LONG_CALL, S.CALL_DEBIT_SPREAD, S.CALL_DIAGONAL),
    "bullish.mid": (S.LONG_CALL, S.CALL_DEBIT_SPREAD, S.CALL_DIAGONAL, S.PUT_CREDIT_SPREAD),
    "bullish.high": (S.LONG_CALL, S.CALL_DEBIT_SPREAD, S.STRADDLE),
    "bearish.low": (S.LONG_PUT, S.PUT_DEBIT_SPREAD, S.PUT_DIAGONAL),
    "bearish.mid": (S.LONG_PUT, S.PUT_DEBIT_SPREAD, S.PUT_DIAGONAL, S.CALL_CREDIT_SPREAD),
    "bearish.high": (S.LONG_PUT, S.PUT_DEBIT_SPREAD, S.STRADDLE),
    "neutral.low": (S.IRON_CONDOR, S.IRON_BUTTERFLY, S.CALL_CALENDAR, S.PUT_CALENDAR),
    "neutral.mid": (S.IRON_CONDOR, S.IRON_BUTTERFLY, S.BROKEN_WING_BUTTERFLY),
    "neutral.high": (S.STRADDLE, S.STRANGLE, S.REVERSE_IRON_CONDOR),
}
# The prototype's code: sell rich premium at high IV rank, buy cheap premium at low IV rank.
SELL_HIGH_IV: Table = {
    "bullish.low": (S.LONG_CALL, S.CALL_DEBIT_SPREAD, S.CALL_DIAGONAL),
    "bullish.mid": (S.LONG_CALL, S.CALL_DEBIT_SPREAD, S.CALL_DIAGONAL, S.PUT_CREDIT_SPREAD),
    "bullish.high": (S.PUT_CREDIT_SPREAD, S.BROKEN_WING_BUTTERFLY, S.CALL_DEBIT_SPREAD),
    "bearish.low": (S.LONG_PUT, S.PUT_DEBIT_SPREAD, S.PUT_DIAGONAL),
    "bearish.mid": (S.LONG_PUT, S.PUT_DEBIT_SPREAD, S.PUT_DIAGONAL, S.CALL_CREDIT_SPREAD),
    "bearish.high": (S.CALL_CREDIT_SPREAD, S.BROKEN_WING_BUTTERFLY, S.PUT_DEBIT_SPREAD),
    "neutral.low": (S.STRADDLE, S.STRANGLE, S.REVERSE_IRON_CONDOR, S.CALL_CALENDAR, S.PUT_CALENDAR),
    "neutral.mid": (S.IRON_CONDOR, S.IRON_BUTTERFLY, S.CALL_CALENDAR, S.PUT_CALENDAR),
    "neutral.high": (S.IRON_CONDOR, S.IRON_BUTTERFLY, S.BROKEN_WING_BUTTERFLY),
}
DEFAULT_TABLES: dict[str, Table] = {"buy_high_iv": BUY_HIGH_IV, "sell_high_iv": SELL_HIGH_IV}
LONG_OPTIONS = frozenset({S.LONG_CALL, S.LONG_PUT})
# Long-premium volatility structures: dropped when their debit exceeds the expected move.
LONG_PREMIUM = frozenset({S.STRADDLE, S.STRANGLE, S.REVERSE_IRON_CONDOR})


def vol_state(context: MarketContext, cfg: TradeAgentConfig) -> VolState:
    """High / mid / low volatility from IV rank alone (unknown rank: mid).

    The cell, and so whether long premium may be bought, follows the rank: with buy_high_iv a
    straddle is only ever routed at IV rank >= high_iv_rank, as the runbook's review expects. The
    composer's vol_expansion regime acts through `vol_view` (the ranking), not through the cell.
    """
    rank = context.iv_rank
    if rank is not None and rank >= cfg.high_iv_rank:
        return VolState.HIGH
    if rank is not None and rank <= cfg.low_iv_rank:
        return VolState.LOW
    return VolState.MID


def vol_view(context: MarketContext, cfg: TradeAgentConfig) -> int:
    """The context's view on realised vs implied volatility: +1 above, −1 below, 0 none.

    buy_high_iv: high vol state or the vol_expansion regime → +1 (expansion continues); otherwise
    a neutral direction → −1 (a range). sell_high_iv: high → −1 (rich premium reverts), low → +1
    (cheap premium), mid: vol_expansion → +1, a neutral direction → −1.
    """
    state = vol_state(context, cfg)
    expanding = context.regime is Regime.VOL_EXPANSION
    neutral = context.direction is Direction.NEUTRAL
    if cfg.vol_routing == "buy_high_iv":
        if state is VolState.HIGH or expanding:
            return 1
        return -1 if neutral else 0
    if state is VolState.HIGH:
        return -1
    if state is VolState.LOW or expanding:
        return 1
    return -1 if neutral else 0


def routing_table(cfg: TradeAgentConfig) -> dict[str, tuple[StrategyType, ...]]:
    """The effective table: the vol_routing default with `trade_agent.routing` cells replaced."""
    table = dict(DEFAULT_TABLES[cfg.vol_routing])
    for cell, strategies in cfg.routing.items():
        table[cell] = tuple(dict.fromkeys(strategies))
    return table


def cell_of(context: MarketContext, cfg: TradeAgentConfig) -> str:
    return f"{context.direction.value}.{vol_state(context, cfg).value}"


def route(
    context: MarketContext, cfg: TradeAgentConfig, table: Table | None = None
) -> list[StrategyType]:
    """Candidate strategies for a context, in table order.

    Nothing below min_confidence; single long options only from long_option_min_confidence up
    (a weaker view buys spreads, whose cost is capped by the short leg).
    """
    if context.confidence < cfg.min_confidence:
        return []
    cells = routing_table(cfg) if table is None else table
    out = list(cells.get(cell_of(context, cfg), ()))
    if context.confidence < cfg.long_option_min_confidence:
        out = [s for s in out if s not in LONG_OPTIONS]
    return out
