"""The order state machine: Alpaca order snapshots in, gnosisd OrderUpdated / OrderFilled out.

Synchronous core. An intent is worked by attempts (one Alpaca order each, one at a time); every
snapshot (trade_updates or REST) carries cumulative fills, so applying one twice, late or out of
order changes nothing. Events are per intent: ACCEPTED once, PARTIALLY_FILLED as fills grow, and
at the end one OrderFilled for everything filled (VWAP per leg) and, if short of the quantity, a
CANCELED / EXPIRED / REJECTED update.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from gnosisd.broker.alpaca.orders import client_order_id, ratio_scale
from gnosisd.broker.alpaca.policy import Ladder
from gnosisd.broker.alpaca.wire import TERMINAL, WORKING, WireOrder
from gnosisd.broker.base import BrokerEvent, order_id_for
from gnosisd.bus.events import LegFill, OrderFilled, OrderUpdated, SubmitOrder
from gnosisd.core.enums import OrderStatus, Side
from gnosisd.core.money import CONTRACT_MULTIPLIER, to_money, to_price

VENUE = "alpaca"
_FINAL = {
    "rejected": OrderStatus.REJECTED,
    "expired": OrderStatus.EXPIRED,
    "done_for_day": OrderStatus.EXPIRED,
    "not_placed": OrderStatus.REJECTED,
}
UNSENT = "unsent"  # local: the attempt is built, no POST answered yet
UNKNOWN = "unknown"  # local: a POST's outcome is unknown and lookups have not settled it
NOT_PLACED = "not_placed"  # local: lookups proved the broker never got it


@dataclass(slots=True)
class Attempt:
    """One Alpaca order of an intent; fills are cumulative per leg (contracts, average price)."""

    number: int
    client_order_id: str
    net_price: Decimal
    units: int  # intent units this attempt asks for
    order_id: str | None = None
    status: str = UNSENT
    filled_units: int = 0
    leg_fills: dict[str, tuple[int, Decimal]] = field(default_factory=dict)
    cancel_requested: bool = False

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL or self.status == NOT_PLACED

    @property
    def working(self) -> bool:
        return not self.terminal


@dataclass(slots=True)
class Execution:
    """Everything known about one intent's trip through Alpaca."""

    intent: SubmitOrder
    ladder: Ladder
    submitted_ns: int
    commission_per_contract: Decimal
    attempts: list[Attempt] = field(default_factory=list)
    accepted: bool = False
    reported_units: int = 0  # filled units already announced as PARTIALLY_FILLED
    done: bool = False
    final_status: OrderStatus | None = None

    @property
    def order_id(self) -> str:
        return order_id_for(self.intent.intent_id, VENUE)

    @property
    def current(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None

    def filled_units(self) -> int:
        return sum(a.filled_units for a in self.attempts)

    def remaining(self) -> int:
        return self.intent.quantity - self.filled_units()

    def new_attempt(self, net_price: Decimal) -> Attempt:
        """The next attempt for what remains, at `net_price`; the previous one must be terminal."""
        last = self.current
        if last is not None and not last.terminal:
            raise RuntimeError(
                f"intent {self.intent.intent_id}: attempt {last.number} is still {last.status}"
            )
        number = 1 if last is None else last.number + 1
        attempt = Attempt(
            number=number,
            client_order_id=client_order_id(self.intent.intent_id, number),
            net_price=net_price,
            units=self.remaining(),
        )
        self.attempts.append(attempt)
        return attempt

    def _update(self, ts_ns: int, status: OrderStatus, message: str = "") -> OrderUpdated:
        return OrderUpdated(
            order_id=self.order_id,
            intent_id=self.intent.intent_id,
            underlying=self.intent.underlying,
            ts_ns=ts_ns,
            status=status,
            message=message,
        )

    def apply(self, attempt: Attempt, snap: WireOrder, ts_ns: int) -> list[BrokerEvent]:
        """Fold one snapshot of `attempt`'s order into the state; return the events it causes."""
        if self.done:
            return []
        attempt.order_id = attempt.order_id or snap.id
        scale = ratio_scale(self.intent) if len(self.intent.legs) > 1 else 1
        units = int(snap.filled_qty) // scale
        if units > attempt.filled_units:
            attempt.filled_units = min(units, attempt.units)
            self._fold_legs(attempt, snap, scale)
        if not attempt.terminal:
            attempt.status = snap.status
        events: list[BrokerEvent] = []
        if not self.accepted and (snap.status in WORKING or snap.status == "filled"):
            self.accepted = True
            events.append(self._update(ts_ns, OrderStatus.ACCEPTED, f"alpaca order {snap.id}"))
        filled = self.filled_units()
        if filled >= self.intent.quantity:
            return events + self.finish(ts_ns, OrderStatus.FILLED, "")
        if filled > self.reported_units:
            self.reported_units = filled
            events.append(
                self._update(
                    ts_ns,
                    OrderStatus.PARTIALLY_FILLED,
                    f"filled {filled} of {self.intent.quantity}",
                )
            )
        ours = attempt.cancel_requested and attempt.status == "canceled"
        # Not a step of our walk: rejected, expired, or cancelled by someone else. A replaced
        # order lives on in the order that replaced it (adopted by OrderBook.locate).
        if (
            attempt is self.current
            and attempt.terminal
            and not ours
            and attempt.status != "replaced"
        ):
            status = _FINAL.get(attempt.status, OrderStatus.CANCELED)
            events += self.finish(ts_ns, status, f"alpaca order {snap.id} {attempt.status}")
        return events

    def _fold_legs(self, attempt: Attempt, snap: WireOrder, scale: int) -> None:
        if snap.legs:
            for wl in snap.legs:
                qty = int(wl.filled_qty)
                if qty > 0 and wl.filled_avg_price is not None:
                    attempt.leg_fills[wl.symbol] = (qty, wl.filled_avg_price)
        elif snap.filled_avg_price is not None and len(self.intent.legs) == 1:
            leg = self.intent.legs[0]
            attempt.leg_fills[leg.symbol] = (int(snap.filled_qty), snap.filled_avg_price)

    def finish(self, ts_ns: int, status: OrderStatus, message: str) -> list[BrokerEvent]:
        """End the intent: one OrderFilled for what filled, then the terminal update if short."""
        if self.done:
            return []
        self.done = True
        self.final_status = status
        events: list[BrokerEvent] = []
        filled = self.filled_units()
        if filled > 0:
            events.append(self._fill_event(ts_ns, filled))
        if filled < self.intent.quantity:
            if filled > 0:
                message = f"filled {filled} of {self.intent.quantity}; {message}".rstrip("; ")
            events.append(self._update(ts_ns, status, message))
        return events

    def _fill_event(self, ts_ns: int, units: int) -> OrderFilled:
        intent = self.intent
        legs: list[LegFill] = []
        net = Decimal(0)
        for leg in intent.legs:
            qty = 0
            value = Decimal(0)
            for a in self.attempts:
                q, p = a.leg_fills.get(leg.symbol, (0, Decimal(0)))
                qty += q
                value += q * p
            # Without a price from Alpaca for a leg, book it at the submit-time leg mid.
            price = to_price(value / qty) if qty > 0 else to_price(self._leg_mid(leg.symbol))
            sign = 1 if leg.side is Side.BUY else -1
            net += sign * leg.ratio * price
            legs.append(
                LegFill(symbol=leg.symbol, side=leg.side, quantity=leg.ratio * units, price=price)
            )
        contracts = sum(leg.ratio for leg in intent.legs) * units
        return OrderFilled(
            order_id=self.order_id,
            intent_id=intent.intent_id,
            underlying=intent.underlying,
            ts_ns=ts_ns,
            effect=intent.effect,
            quantity=units,
            net_price=net,
            commission=to_money(self.commission_per_contract * contracts),
            legs=tuple(legs),
            position_id=intent.position_id or intent.intent_id,
            exit_reason=intent.exit_reason,
            slippage=to_money((net - self.ladder.mid) * CONTRACT_MULTIPLIER * units),
        )

    def _leg_mid(self, symbol: str) -> Decimal:
        return self.ladder.leg_mids.get(symbol, Decimal(0))


class OrderBook:
    """Executions by intent, attempts by client_order_id and Alpaca order id."""

    def __init__(self) -> None:
        self.executions: dict[str, Execution] = {}
        self._by_client_id: dict[str, tuple[Execution, Attempt]] = {}
        self._by_order_id: dict[str, tuple[Execution, Attempt]] = {}
        self.external: set[str] = set()  # order ids of orders gnosisd did not place

    def add(self, execution: Execution) -> None:
        self.executions[execution.intent.intent_id] = execution

    def register(self, execution: Execution, attempt: Attempt) -> None:
        self._by_client_id[attempt.client_order_id] = (execution, attempt)
        if attempt.order_id is not None:
            self._by_order_id[attempt.order_id] = (execution, attempt)

    def working(self) -> list[Execution]:
        return [e for e in self.executions.values() if not e.done]

    def locate(self, snap: WireOrder) -> tuple[Execution, Attempt] | None:
        """The attempt a snapshot belongs to; an order that replaced one of ours is adopted."""
        found = self._by_order_id.get(snap.id) or self._by_client_id.get(snap.client_order_id)
        if found is None and snap.replaces is not None:
            prior = self._by_order_id.get(snap.replaces)
            if prior is not None:
                execution, old = prior
                attempt = Attempt(
                    number=old.number,
                    client_order_id=snap.client_order_id,
                    net_price=snap.limit_price if snap.limit_price is not None else old.net_price,
                    units=old.units - old.filled_units,
                    order_id=snap.id,
                )
                execution.attempts.append(attempt)
                found = (execution, attempt)
        if found is None:
            self.external.add(snap.id)
            return None
        self._by_order_id[snap.id] = found
        return found

    def apply(self, snap: WireOrder, ts_ns: int) -> list[BrokerEvent]:
        """Apply a snapshot of any order; orders gnosisd did not place cause nothing."""
        found = self.locate(snap)
        if found is None:
            return []
        execution, attempt = found
        return execution.apply(attempt, snap, ts_ns)
