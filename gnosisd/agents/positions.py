"""Position manager (synchronous core): mark open positions from the chain and emit closing orders.

A position is closed when its exit rules (ExitRules fields in Position.exit_rules) say so, checked
in order: profit target, stop loss, breakeven stop, trailing stop, time exit (days to the front
expiry), max days held. The manager keeps each position's best P&L (high-water mark) by id.
Two overrides: while flattening (halt policy `flatten`) every position is closed; in the pin-risk
window (the last minutes before the close) a position with a leg expiring today is closed or flagged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Literal

from gnosisd.agents.pricing import leg_limit_price
from gnosisd.bus.events import ChainSnapshot, OrderLeg, SubmitOrder
from gnosisd.bus.records import ExitRules
from gnosisd.core.clock import NEW_YORK, datetime_to_ns, ns_to_datetime
from gnosisd.core.enums import OptionType, PositionEffect, Side
from gnosisd.core.money import CONTRACT_MULTIPLIER, to_price
from gnosisd.core.views import Position

if TYPE_CHECKING:
    from gnosisd.core.calendar import TradingCalendar
    from gnosisd.core.config import ExpiryConfig

_MULT = Decimal(CONTRACT_MULTIPLIER)


class ExitReason(StrEnum):
    PROFIT_TARGET = "profit_target"
    STOP_LOSS = "stop_loss"
    BREAKEVEN_STOP = "breakeven_stop"
    TRAILING_STOP = "trailing_stop"
    TIME_EXIT = "time_exit"
    MAX_DAYS_HELD = "max_days_held"
    HALT = "halt"  # halt policy `flatten`
    EXPIRY = "expiry"  # pin risk: a leg expires today and the close is near


@dataclass(frozen=True, slots=True)
class ExpiryWindow:
    """The pin-risk window of one session: from `start_ns` (close − N minutes) to `close_ns`."""

    day: date
    start_ns: int
    close_ns: int
    policy: Literal["close", "flag"]

    def contains(self, ts_ns: int) -> bool:
        return self.start_ns <= ts_ns < self.close_ns


def expiry_window(
    calendar: TradingCalendar, config: ExpiryConfig, ts_ns: int
) -> ExpiryWindow | None:
    """The pin-risk window of the session on `ts_ns`'s New York date (None on a closed day).

    The close comes from the exchange calendar, so an early close (13:00) moves the window too.
    """
    day = calendar.session_day(ns_to_datetime(ts_ns))
    if not calendar.is_session(day):
        return None
    close = calendar.session(day).close
    start = close - timedelta(minutes=config.close_minutes_before)
    return ExpiryWindow(day, datetime_to_ns(start), datetime_to_ns(close), config.policy)


@dataclass(frozen=True, slots=True)
class PinRiskFlag:
    """A position with legs expiring today inside the pin-risk window that was not closed."""

    position_id: str
    underlying: str
    symbols: tuple[str, ...]  # the legs expiring today
    day: date
    minutes_to_close: float
    note: str  # why it is flagged rather than closed


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
        self._flatten: str | None = None
        self._flagged: set[tuple[str, date]] = set()
        self._flags: list[PinRiskFlag] = []
        self._best_changed = False

    @property
    def flattening(self) -> str | None:
        """Why every position is being closed (halt policy `flatten`), None when not."""
        return self._flatten

    def start_flatten(self, reason: str) -> None:
        """Close every open position on its next evaluation until `stop_flatten()`."""
        self._flatten = reason

    def stop_flatten(self) -> None:
        self._flatten = None

    def pop_pin_flags(self) -> list[PinRiskFlag]:
        """Pin-risk flags raised since the last call (each position at most once a day)."""
        out, self._flags = self._flags, []
        return out

    @property
    def pending(self) -> frozenset[str]:
        """Position ids with a close order sent and not yet answered by the broker."""
        return frozenset(self._pending)

    def high_water(self, position_id: str) -> Decimal | None:
        """Best P&L per share seen for an open position (None before its first mark)."""
        return self._best.get(position_id)

    def high_water_state(self) -> dict[str, str]:
        """The high-water marks by position id (Decimal strings), for the saved books; clears
        `high_water_changed`."""
        self._best_changed = False
        return {pid: str(best) for pid, best in self._best.items()}

    @property
    def high_water_changed(self) -> bool:
        """True when a high-water mark moved since the last `high_water_state()`."""
        return self._best_changed

    def restore_high_water(self, saved: Mapping[str, str]) -> None:
        """Take back the high-water marks of a previous run (after a restart), so trailing and
        breakeven stops keep their reference instead of restarting from the next mark."""
        for pid, best in saved.items():
            self._best[str(pid)] = Decimal(best)

    def clear_pending(self, position_id: str) -> None:
        """Forget a pending close (the broker filled, rejected or cancelled it)."""
        self._pending.discard(position_id)

    def evaluate(
        self,
        positions: Iterable[Position],
        chain: ChainSnapshot,
        ts_ns: int,
        expiry: ExpiryWindow | None = None,
    ) -> list[SubmitOrder]:
        """Closing orders for the positions on `chain.underlying` whose exit rules fire now.

        Pass every open position (all underlyings): high-water marks of positions not passed are
        forgotten. Positions with a pending close, on another underlying, or with a leg missing
        from the chain are skipped this time. While flattening every position is closed (reason
        `halt`); inside `expiry`'s window a position with a leg expiring today is closed (reason
        `expiry`) or flagged (`pop_pin_flags`), after the exit rules had their say. A position
        without exit rules (empty `exit_rules`) is only closed by flattening or pin risk.
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
                if position.position_id not in self._pending:
                    self._pin_flag(position, ts_ns, expiry, "legs not quoted: cannot close")
                continue
            if position.position_id in self._pending:
                self._update_best(position, mark)
                continue
            if self._flatten is not None:
                orders.append(
                    closing_order(position, chain, ExitReason.HALT, ts_ns, self.slippage_pct)
                )
                self._pending.add(position.position_id)
                continue
            best = self._update_best(position, mark)
            reason = None
            if position.exit_rules:  # none, e.g. a position adopted from the broker: no rules
                rules = ExitRules.model_validate(position.exit_rules)
                reason = exit_reason(position, mark, rules, today, best)
            if reason is None and _expiring_legs(position, expiry, ts_ns):
                assert expiry is not None
                if expiry.policy == "close":
                    reason = ExitReason.EXPIRY
                else:
                    self._pin_flag(position, ts_ns, expiry, "expiry.policy is flag")
            if reason is None:
                continue
            orders.append(closing_order(position, chain, reason, ts_ns, self.slippage_pct))
            self._pending.add(position.position_id)
        for gone in self._best.keys() - alive:
            del self._best[gone]
            self._best_changed = True
        self._pending &= alive
        self._flagged = {k for k in self._flagged if k[0] in alive and k[1] >= today}
        return orders

    def _update_best(self, position: Position, mark: Decimal) -> Decimal:
        pnl = mark - position.entry_net_price
        prev = self._best.get(position.position_id)
        best = pnl if prev is None else max(prev, pnl)
        if best != prev:
            self._best[position.position_id] = best
            self._best_changed = True
        return best

    def _pin_flag(
        self, position: Position, ts_ns: int, expiry: ExpiryWindow | None, note: str
    ) -> None:
        """Flag a position in the pin-risk window, at most once per position and day."""
        legs = _expiring_legs(position, expiry, ts_ns)
        if not legs or expiry is None:
            return
        key = (position.position_id, expiry.day)
        if key in self._flagged:
            return
        self._flagged.add(key)
        self._flags.append(
            PinRiskFlag(
                position_id=position.position_id,
                underlying=position.underlying,
                symbols=legs,
                day=expiry.day,
                minutes_to_close=(expiry.close_ns - ts_ns) / 60e9,
                note=note,
            )
        )


def _expiring_legs(position: Position, expiry: ExpiryWindow | None, ts_ns: int) -> tuple[str, ...]:
    """Legs of `position` expiring on or before the window's day, if `ts_ns` is in the window."""
    if expiry is None or not expiry.contains(ts_ns):
        return ()
    return tuple(leg.symbol for leg in position.legs if leg.expiry <= expiry.day)
