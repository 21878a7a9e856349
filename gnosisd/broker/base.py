"""The broker protocol the runtime drives (only after the risk guard approved an intent).

A broker turns one approved SubmitOrder into one multi-leg order (never legged) and reports
OrderUpdated / OrderFilled events; expected failures are REJECTED events, never exceptions.
"""

from __future__ import annotations

from typing import Protocol

from gnosisd.bus.events import ChainSnapshot, OrderFilled, OrderUpdated, SubmitOrder

BrokerEvent = OrderUpdated | OrderFilled


def order_id_for(intent_id: str, venue: str = "sim") -> str:
    """The deterministic order id of an intent at a venue (a replay yields the same ids)."""
    return f"{venue}-{intent_id}"


class Broker(Protocol):
    """A synchronous broker core (the sim broker); the runtime wraps it in a thin task."""

    @property
    def is_live(self) -> bool:
        """True if orders reach a real-money account (the risk guard's live gate applies)."""
        ...

    def submit(self, intent: SubmitOrder, chain: ChainSnapshot, ts_ns: int) -> list[BrokerEvent]:
        """Place one approved intent as one multi-leg order; return the events it caused."""
        ...


class AsyncBroker(Protocol):
    """A broker behind I/O (alpaca): same contract, awaited; fills may also arrive later."""

    @property
    def is_live(self) -> bool: ...

    async def submit(
        self, intent: SubmitOrder, chain: ChainSnapshot, ts_ns: int
    ) -> list[BrokerEvent]: ...
