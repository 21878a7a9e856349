"""Exact-money ledger: cash, open multi-leg positions, marks, realised P&L, commissions, sessions.

Equity = cash + Σ mark × 100 × quantity (long structures add value, short ones subtract).
Realised P&L is trading P&L before commissions; `commissions_paid()` holds those separately.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from gnosisd.bus.events import ChainSnapshot, OrderFilled, SubmitOrder
from gnosisd.core.enums import OptionType, PositionEffect, Side
from gnosisd.core.errors import InvariantViolation
from gnosisd.core.money import CONTRACT_MULTIPLIER, ZERO
from gnosisd.core.views import Position, PositionLeg
from gnosisd.quant.profile import ExpiryLeg, structure_bounds

M = CONTRACT_MULTIPLIER


def quote_mid(bid: float, ask: float) -> Decimal | None:
    """Exact Decimal mid of a quote (floats via repr), or None if there is no usable market."""
    if not (math.isfinite(bid) and math.isfinite(ask)) or ask <= 0 or bid < 0 or bid > ask:
        return None
    return (Decimal(repr(float(bid))) + Decimal(repr(float(ask)))) / 2


def chain_mid(chain: ChainSnapshot, symbol: str) -> Decimal | None:
    """The mid of `symbol` in the chain, None if it is not listed or has no usable market."""
    try:
        i = chain.row(symbol)
    except KeyError:
        return None
    return quote_mid(float(chain.bid[i]), float(chain.ask[i]))


@dataclass(frozen=True, slots=True)
class Settlement:
    """Legs of one position settled at expiry (cash-settled at intrinsic value)."""

    position_id: str
    underlying: str
    symbols: tuple[str, ...]
    settlement_price: Decimal
    value_per_share: Decimal  # Σ signed ratio × intrinsic of the settled legs
    cash_flow: Decimal  # dollars credited (negative: debited)
    realized_pnl: Decimal  # dollars (only when the whole position settled, else 0)
    closed: bool


@dataclass(slots=True)
class _Holding:
    position_id: str
    underlying: str
    strategy_type: str
    quantity: int
    legs: tuple[PositionLeg, ...]
    entry_net_price: Decimal
    opened_ns: int
    leg_marks: dict[str, Decimal]
    exit_rules: dict[str, float] = field(default_factory=dict)

    def mark(self) -> Decimal:
        return sum((leg.ratio * self.leg_marks[leg.symbol] for leg in self.legs), ZERO)

    def profile_totals(self) -> tuple[Decimal | None, Decimal | None]:
        """Max loss and max profit in dollars at quantity (quant.profile.structure_bounds, the
        guard's function: a calendar or diagonal is valued at its front expiry with the back leg
        at its worst case; its max profit is model-dependent and reported as None)."""
        legs = [ExpiryLeg(lg.is_call, lg.strike, lg.ratio, lg.expiry) for lg in self.legs]
        p = structure_bounds(legs, self.entry_net_price)
        scale = M * self.quantity
        loss = None if p.max_loss is None else p.max_loss * scale
        profit = None if p.max_profit is None else p.max_profit * scale
        return loss, profit

    def reserve(self) -> Decimal:
        """Cash held back beyond what was paid: max loss not yet paid for (a credit's width)."""
        loss, _ = self.profile_totals()
        if loss is None:
            raise InvariantViolation(f"position {self.position_id} has undefined risk")
        return max(ZERO, -loss - self.entry_net_price * M * self.quantity)

    def view(self) -> Position:
        loss, profit = self.profile_totals()
        if loss is None:
            raise InvariantViolation(f"position {self.position_id} has undefined risk")
        mark = self.mark()
        return Position(
            position_id=self.position_id,
            underlying=self.underlying,
            strategy_type=self.strategy_type,
            quantity=self.quantity,
            legs=self.legs,
            entry_net_price=self.entry_net_price,
            max_loss=loss,
            max_profit=profit,
            opened_ns=self.opened_ns,
            mark_net_price=mark,
            unrealized_pnl=(mark - self.entry_net_price) * M * self.quantity,
            exit_rules=dict(self.exit_rules),
        )


class Ledger:
    """The portfolio's books in exact Decimal; implements PortfolioView.

    Only the broker that fills orders (or the runtime for an external broker) mutates it.
    """

    def __init__(self, initial_cash: Decimal) -> None:
        self._cash = Decimal(initial_cash)
        self._holdings: dict[str, _Holding] = {}
        self._realized = ZERO
        self._commissions = ZERO
        self._applied: set[str] = set()
        self._session_day: date | None = None
        self._session_start_equity = self._cash

    # ------------------------------------------------------------------ PortfolioView
    def cash(self) -> Decimal:
        return self._cash

    def equity(self) -> Decimal:
        return self._cash + sum((h.mark() * M * h.quantity for h in self._holdings.values()), ZERO)

    def positions(self) -> list[Position]:
        return [h.view() for h in self._holdings.values()]

    def session_pnl(self) -> Decimal:
        """Equity now minus equity at `start_session` (realised + unrealised − commissions)."""
        return self.equity() - self._session_start_equity

    # ------------------------------------------------------------------ more reads
    def position(self, position_id: str) -> Position | None:
        h = self._holdings.get(position_id)
        return None if h is None else h.view()

    def realized_pnl(self) -> Decimal:
        return self._realized

    def commissions_paid(self) -> Decimal:
        return self._commissions

    def reserved(self) -> Decimal:
        """Collateral held for open credit structures (their max loss not covered by cash paid)."""
        return sum((h.reserve() for h in self._holdings.values()), ZERO)

    def buying_power(self) -> Decimal:
        """Cash free for new risk: cash minus the collateral of open positions."""
        return self._cash - self.reserved()

    @property
    def session_day(self) -> date | None:
        return self._session_day

    # ------------------------------------------------------------------ sessions
    def start_session(self, day: date) -> None:
        """Snapshot equity as the session's starting point for `session_pnl()`."""
        self._session_day = day
        self._session_start_equity = self.equity()

    # ------------------------------------------------------------------ fills
    def close_problem(self, intent: SubmitOrder) -> str | None:
        """Why a CLOSE intent cannot close its position (None if it can)."""
        h = self._holdings.get(intent.position_id or "")
        if h is None:
            return f"position {intent.position_id} is not open"
        if intent.quantity > h.quantity:
            return f"closing {intent.quantity} of position {h.position_id} which holds {h.quantity}"
        want = {leg.symbol: -leg.ratio for leg in h.legs}
        got = {lg.symbol: (lg.ratio if lg.side is Side.BUY else -lg.ratio) for lg in intent.legs}
        if want != got:
            return f"legs do not reverse position {h.position_id}: need {want}, got {got}"
        return None

    def apply_fill(
        self,
        fill: OrderFilled,
        intent: SubmitOrder,
        exit_rules: Mapping[str, float] | None = None,
    ) -> None:
        """Book a fill of `intent` (idempotent per order id): open, or close all or part of it."""
        if fill.order_id in self._applied:
            return
        if fill.intent_id != intent.intent_id:
            raise InvariantViolation(f"fill {fill.order_id} is not for intent {intent.intent_id}")
        notional = fill.net_price * M * fill.quantity
        if fill.effect is PositionEffect.OPEN:
            self._open(fill, intent, exit_rules)
        else:
            self._close(fill, intent)
        self._applied.add(fill.order_id)
        self._cash -= notional + fill.commission
        self._commissions += fill.commission

    def _open(
        self, fill: OrderFilled, intent: SubmitOrder, exit_rules: Mapping[str, float] | None
    ) -> None:
        if fill.position_id in self._holdings:
            raise InvariantViolation(f"position {fill.position_id} is already open")
        legs = tuple(
            PositionLeg(
                symbol=lg.symbol,
                is_call=lg.option_type is OptionType.CALL,
                strike=lg.strike,
                expiry=lg.expiry,
                ratio=lg.ratio if lg.side is Side.BUY else -lg.ratio,
            )
            for lg in intent.legs
        )
        prices = {lf.symbol: lf.price for lf in fill.legs}
        if set(prices) != {leg.symbol for leg in legs}:
            raise InvariantViolation(f"fill {fill.order_id} legs differ from its intent's legs")
        h = _Holding(
            position_id=fill.position_id,
            underlying=intent.underlying,
            strategy_type=intent.strategy_type or "custom",
            quantity=fill.quantity,
            legs=legs,
            entry_net_price=fill.net_price,
            opened_ns=fill.ts_ns,
            leg_marks=prices,  # marked at the fill until the next mark()
            exit_rules=dict(exit_rules or {}),
        )
        if h.profile_totals()[0] is None:
            raise InvariantViolation(f"position {h.position_id} would have undefined risk")
        self._holdings[h.position_id] = h

    def _close(self, fill: OrderFilled, intent: SubmitOrder) -> None:
        problem = self.close_problem(intent)
        if problem is not None:
            raise InvariantViolation(f"fill {fill.order_id}: {problem}")
        h = self._holdings[fill.position_id]
        # Closing at net c (signed like the entry) after entering at e: P&L = −(e + c) × 100 × q.
        self._realized += -(h.entry_net_price + fill.net_price) * M * fill.quantity
        h.quantity -= fill.quantity
        if h.quantity == 0:
            del self._holdings[h.position_id]

    def set_exit_rules(self, position_id: str, rules: Mapping[str, float]) -> None:
        h = self._holdings.get(position_id)
        if h is None:
            raise KeyError(f"position {position_id} is not open")
        h.exit_rules = dict(rules)

    # ------------------------------------------------------------------ marks and expiry
    def mark(self, chain: ChainSnapshot) -> None:
        """Mark legs of positions on `chain.underlying` at their mids (legs without a market keep
        their previous mark)."""
        for h in self._holdings.values():
            if h.underlying != chain.underlying:
                continue
            for leg in h.legs:
                mid = chain_mid(chain, leg.symbol)
                if mid is not None:
                    h.leg_marks[leg.symbol] = mid

    def settle_expired(
        self, day: date, settlement_prices: Mapping[str, float | Decimal]
    ) -> list[Settlement]:
        """Cash-settle every leg expiring on or before `day` at intrinsic value.

        Simplification: listed equity options are physically settled; the ledger books their
        intrinsic value in cash instead (as if the shares were sold at the settlement price).
        """
        out: list[Settlement] = []
        for h in list(self._holdings.values()):
            expired = [leg for leg in h.legs if leg.expiry <= day]
            if not expired:
                continue
            if h.underlying not in settlement_prices:
                raise ValueError(f"settle_expired: no settlement price for {h.underlying}")
            raw = settlement_prices[h.underlying]
            spot = raw if isinstance(raw, Decimal) else Decimal(repr(float(raw)))
            out.append(self._settle(h, expired, spot))
        return out

    def _settle(self, h: _Holding, expired: list[PositionLeg], spot: Decimal) -> Settlement:
        value = ZERO
        for leg in expired:
            intrinsic = spot - leg.strike if leg.is_call else leg.strike - spot
            value += leg.ratio * max(intrinsic, ZERO)
        cash_flow = value * M * h.quantity
        self._cash += cash_flow
        closed = len(expired) == len(h.legs)
        realized = ZERO
        if closed:
            realized = (value - h.entry_net_price) * M * h.quantity
            self._realized += realized
            del self._holdings[h.position_id]
        else:
            # Front legs of a multi-expiry structure: their value leaves the cost basis.
            gone = {leg.symbol for leg in expired}
            h.legs = tuple(leg for leg in h.legs if leg.symbol not in gone)
            h.entry_net_price -= value
            for symbol in gone:
                del h.leg_marks[symbol]
        return Settlement(
            position_id=h.position_id,
            underlying=h.underlying,
            symbols=tuple(leg.symbol for leg in expired),
            settlement_price=spot,
            value_per_share=value,
            cash_flow=cash_flow,
            realized_pnl=realized,
            closed=closed,
        )
