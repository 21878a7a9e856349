"""Position manager (synchronous core): mark open positions from the chain and emit closing orders.

A position is closed when its exit rules (ExitRules fields in Position.exit_rules) say so, checked
in order: profit target, stop loss, breakeven stop, trailing stop, time exit (days to the front
expiry), max days held. The manager keeps each position's best P&L (high-water mark) by id.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from enum import StrEnum

from gnosisd.agents.pricing import leg_limit_price
from gnosisd.bus.events import ChainSnapshot, OrderLeg, SubmitOrder
from gnosisd.bus.records import ExitRules
from gnosisd.core.clock import NEW_YORK, ns_to_datetime
from gnosisd.core.enums import OptionType, PositionEffect, Side
from gnosisd.core.money import CONTRACT_MULTIPLIER, to_price
from gnosisd.core.views import Position

_MULT = Decimal(CONTRACT_MULTIPLIER)


class ExitReason(StrEnum):
    PROFIT_TARGET = "profit_target"
    STOP_LOSS = "stop_loss"
    BREAKEVEN_STOP = "breakeven_stop"
    TRAILING_STOP = "trailing_stop"
    TIME_EXIT = "time_exit"
    MAX_DAYS_HELD = "max_days_held"


def _ny_date(ns: int) -> date:
    return ns_to_datetime(ns).astimezone(NEW_YORK).date()


def mark_position(position: Position, chain: ChainSnapshot) -> Decimal | None:
    """Per-share value of one unit, Σ ratio × leg mid (long structures positive); None if a leg
    is not quoted in the chain."""
    total = Decimal(0)
    mids = chain.mid
    for leg in position.legs:
        try:
            row = chain.row(leg.symbol)
        except KeyError:
            return None
        total += leg.ratio * to_price(float(mids[row]), 4)
    return total


def profit_base(position: Position) -> Decimal:
    """Per-share amount the profit target, trail and breakeven trigger are fractions of: the max
    profit, or |entry net price| when the max profit is unbounded or model-dependent (None)."""
    if position.max_profit is not None:
        return position.max_profit / (_MULT * position.quantity)
    return abs(position.entry_net_price)


def exit_reason(
    position: Position,
    mark: Decimal,
    rules: ExitRules,
    today: date,
    best_pnl: Decimal | None = None,
) -> ExitReason | None:
    """Why `position` should be closed at per-share mark `mark` on New York date `today`, if at all.

    P&L per share = mark − entry. Profit target: P&L >= profit_target_pct × profit base. Stop:
    loss >= stop_loss_pct × |max loss per share|. With `best_pnl` (the high-water mark, per share):
    breakeven stop once best >= breakeven_trigger_pct × base and P&L <= 0; trailing stop once
    best >= trailing_stop_pct × base and P&L <= best − trailing_stop_pct × base.
    """
    units = _MULT * position.quantity
    pnl = mark - position.entry_net_price
    base = profit_base(position)
    best = pnl if best_pnl is None else max(best_pnl, pnl)
    if base > 0 and pnl >= _d(rules.profit_target_pct) * base:
        return ExitReason.PROFIT_TARGET
    loss_base = abs(position.max_loss) / units
    if loss_base > 0 and -pnl >= _d(rules.stop_loss_pct) * loss_base:
        return ExitReason.STOP_LOSS
    trigger = _d(rules.breakeven_trigger_pct) * base
    if base > 0 and rules.breakeven_trigger_pct > 0 and best >= trigger and pnl <= 0:
        return ExitReason.BREAKEVEN_STOP
    if base > 0 and rules.trailing_stop_pct > 0:
        trail = _d(rules.trailing_stop_pct) * base
        if best >= trail and pnl <= best - trail:
            return ExitReason.TRAILING_STOP
    front = min(leg.expiry for leg in position.legs)
    if (front - today).days <= rules.time_exit_dte:
        return ExitReason.TIME_EXIT
    if (today - _ny_date(position.opened_ns)).days >= rules.max_days_held:
        return ExitReason.MAX_DAYS_HELD
    return None


def _d(x: float) -> Decimal:
    return Decimal(repr(x))


def closing_order(
    position: Position,
    chain: ChainSnapshot,
    reason: ExitReason,
    ts_ns: int,
    slippage_pct: Decimal = Decimal(0),
) -> SubmitOrder:
    """One multi-leg order reversing every leg of `position`, limit from the legs' quotes.

    The limit follows SubmitOrder's convention for the legs as sent (positive = debit paid,
    negative = credit received): closing a long call is a credit, limit = -(its bid-side price).
    Each leg is priced at its mid moved against us by `slippage_pct` (agents/pricing.py), so a
    closing order is marketable at the simulated broker's fill.
    """
    mids = chain.mid
    legs: list[OrderLeg] = []
    limit = Decimal(0)
    for leg in position.legs:
        buying = leg.ratio < 0  # closing a short leg buys it back
        price = leg_limit_price(
            to_price(float(mids[chain.row(leg.symbol)]), 4), buying, slippage_pct
        )
        limit += (price if buying else -price) * abs(leg.ratio)
        legs.append(
            OrderLeg(
                symbol=leg.symbol,
                side=Side.BUY if buying else Side.SELL,
                ratio=abs(leg.ratio),
                option_type=OptionType.CALL if leg.is_call else OptionType.PUT,
                strike=leg.strike,
                expiry=leg.expiry,
            )
        )
    return SubmitOrder(
        intent_id=f"close-{position.position_id}-{ts_ns}",
        underlying=position.underlying,
        ts_ns=ts_ns,
        effect=PositionEffect.CLOSE,
        legs=tuple(legs),
        quantity=position.quantity,
        limit_price=limit,
        position_id=position.position_id,
        exit_reason=reason.value,
        strategy_type=position.strategy_type,
    )


class PositionManager:
    """Evaluate open positions against their exit rules; at most one pending close per position.

    State per open position id: a pending close, and the best P&L per share seen on a mark (the
    high-water mark of the trailing and breakeven stops). It is O(open positions): entries of
    positions no longer passed to `evaluate` are dropped.
    """

    def __init__(self, slippage_pct: float = 0.0) -> None:
        self._pending: set[str] = set()
        self._best: dict[str, Decimal] = {}
        self.slippage_pct = Decimal(repr(slippage_pct))

    @property
    def pending(self) -> frozenset[str]:
        """Position ids with a close order sent and not yet answered by the broker."""
        return frozenset(self._pending)

    def high_water(self, position_id: str) -> Decimal | None:
        """Best P&L per share seen for an open position (None before its first mark)."""
        return self._best.get(position_id)

    def clear_pending(self, position_id: str) -> None:
        """Forget a pending close (the broker filled, rejected or cancelled it)."""
        self._pending.discard(position_id)

    def evaluate(
        self, positions: Iterable[Position], chain: ChainSnapshot, ts_ns: int
    ) -> list[SubmitOrder]:
        """Closing orders for the positions on `chain.underlying` whose exit rules fire now.

        Pass every open position (all underlyings): high-water marks of positions not passed are
        forgotten. Positions with a pending close, on another underlying, or with a leg missing
        from the chain are skipped this time.
        """
        today = _ny_date(ts_ns)
        orders: list[SubmitOrder] = []
        alive: set[str] = set()
        for position in positions:
            alive.add(position.position_id)
            if position.underlying != chain.underlying or position.quantity <= 0:
                continue
            if not position.legs:
                continue
            mark = mark_position(position, chain)
            if mark is None:
                continue
            pnl = mark - position.entry_net_price
            prev = self._best.get(position.position_id)
            best = pnl if prev is None else max(prev, pnl)
            self._best[position.position_id] = best
            if position.position_id in self._pending:
                continue
            rules = ExitRules.model_validate(position.exit_rules)
            reason = exit_reason(position, mark, rules, today, best)
            if reason is None:
                continue
            orders.append(closing_order(position, chain, reason, ts_ns, self.slippage_pct))
            self._pending.add(position.position_id)
        for gone in self._best.keys() - alive:
            del self._best[gone]
        self._pending &= alive
        return orders
