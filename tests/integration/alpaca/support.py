"""Helpers for the Alpaca scenario tests: a small chain, intents, an event recorder."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import date
from decimal import Decimal

from gnosisd.broker.base import BrokerEvent
from gnosisd.bus.events import ChainSnapshot, OrderFilled, OrderLeg, OrderUpdated, SubmitOrder
from gnosisd.core.enums import OptionType, OrderStatus, PositionEffect, Side
from gnosisd.core.occ import occ_symbol, parse_occ
from gnosisd.testing.chains import quoted_chain

EXPIRY = date(2026, 12, 18)
TS = 1_795_000_000_000_000_000


def sym(kind: OptionType, strike: int, underlying: str = "SPY") -> str:
    return occ_symbol(underlying, EXPIRY, kind, Decimal(strike))


C500 = sym(OptionType.CALL, 500)
C505 = sym(OptionType.CALL, 505)
P490 = sym(OptionType.PUT, 490)
P485 = sym(OptionType.PUT, 485)
QUOTES = {
    C500: (4.00, 4.20),  # mid 4.10
    C505: (2.00, 2.10),  # mid 2.05
    P490: (3.00, 3.10),
    P485: (2.00, 2.20),
}


def chain(quotes: dict[str, tuple[float, float]] | None = None) -> ChainSnapshot:
    return quoted_chain(quotes or QUOTES, spot=500.0, ts_ns=TS, open_interest=100)


def leg(side: Side, symbol: str, ratio: int = 1) -> OrderLeg:
    c = parse_occ(symbol)
    return OrderLeg(symbol, side, ratio, c.option_type, c.strike, c.expiry)


def call_spread(
    intent_id: str = "open-spread-1",
    quantity: int = 2,
    limit: str = "2.20",
    effect: PositionEffect = PositionEffect.OPEN,
) -> SubmitOrder:
    """Buy the 500 call, sell the 505 call: mid 2.05, natural 2.20 (debit)."""
    return SubmitOrder(
        intent_id=intent_id,
        underlying="SPY",
        ts_ns=TS,
        effect=effect,
        legs=(leg(Side.BUY, C500), leg(Side.SELL, C505)),
        quantity=quantity,
        limit_price=Decimal(limit),
        idea_id="idea-1",
        strategy_type="call_debit_spread",
    )


def iron_condor(intent_id: str = "open-condor-1", quantity: int = 1) -> SubmitOrder:
    """Sell 490P/505C, buy 485P/... a four-leg credit structure."""
    return SubmitOrder(
        intent_id=intent_id,
        underlying="SPY",
        ts_ns=TS,
        effect=PositionEffect.OPEN,
        legs=(
            leg(Side.BUY, P485),
            leg(Side.SELL, P490),
            leg(Side.SELL, C500),
            leg(Side.BUY, C505),
        ),
        quantity=quantity,
        limit_price=Decimal("-2.50"),
        strategy_type="iron_condor",
    )


async def until(predicate: Callable[[], bool], within_s: float = 5.0) -> None:
    """Poll the fake's state (it has no events to await) until `predicate()` holds."""
    async with asyncio.timeout(within_s):
        while not predicate():  # noqa: ASYNC110 - polling another component's plain state
            await asyncio.sleep(0.01)


class Recorder:
    """Collects broker events; tests await the ones they expect instead of sleeping."""

    def __init__(self) -> None:
        self.events: list[BrokerEvent] = []
        self._changed = asyncio.Event()

    async def __call__(self, event: BrokerEvent) -> None:
        self.events.append(event)
        self._changed.set()

    def updates(self, intent_id: str | None = None) -> list[OrderUpdated]:
        return [
            e
            for e in self.events
            if isinstance(e, OrderUpdated) and intent_id in (None, e.intent_id)
        ]

    def statuses(self, intent_id: str | None = None) -> list[OrderStatus]:
        return [u.status for u in self.updates(intent_id)]

    def fills(self, intent_id: str | None = None) -> list[OrderFilled]:
        return [
            e
            for e in self.events
            if isinstance(e, OrderFilled) and intent_id in (None, e.intent_id)
        ]

    async def wait_for(self, predicate: object, within_s: float = 5.0) -> None:
        """Wait until `predicate()` is true (re-checked after every event)."""
        assert callable(predicate)
        async with asyncio.timeout(within_s):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()
