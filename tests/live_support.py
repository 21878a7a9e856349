"""Shared pieces of the tests that run the daemon on the fake Alpaca servers (live mode).

`fake_connection` points every endpoint at a FakeAlpaca, `ShiftedClock` moves the wall clock into a
regular session, `natural_call_spread` builds the one-lot call debit spread the tests trade.
"""

from __future__ import annotations

import time
from datetime import datetime
from decimal import Decimal

from gnosisd.broker.alpaca.config import AlpacaCredentials, resolve_endpoints
from gnosisd.bus.events import ChainSnapshot, OrderLeg, SubmitOrder
from gnosisd.core.calendar import TradingCalendar
from gnosisd.core.clock import NEW_YORK, Clock, datetime_to_ns, ns_to_datetime
from gnosisd.core.config import Settings
from gnosisd.core.enums import OptionType, PositionEffect, Side
from gnosisd.core.occ import parse_occ
from gnosisd.runtime.daemon import Daemon, RunOptions
from gnosisd.runtime.live import AlpacaConnection
from gnosisd.runtime.logging import configure_logging
from gnosisd.testing.fake_alpaca import FakeAlpaca

SESSION_TIME = datetime(2026, 12, 2, 11, 0, tzinfo=NEW_YORK)  # a Wednesday, market open


class ShiftedClock:
    """Wall-clock time moved by a fixed offset (time still passes)."""

    def __init__(self, at: datetime | int) -> None:
        self.offset_ns = at if isinstance(at, int) else datetime_to_ns(at) - time.time_ns()

    def now_ns(self) -> int:
        return time.time_ns() + self.offset_ns

    def now(self) -> datetime:
        return ns_to_datetime(self.now_ns())


def fake_connection(
    fake: FakeAlpaca, mode: str = "paper", *, broker: bool = True
) -> AlpacaConnection:
    """An AlpacaConnection whose four endpoints are the fake's, with the fake's keys."""
    endpoints = resolve_endpoints(
        mode,
        trading_url=fake.rest_url,
        data_url=fake.rest_url,
        data_stream_url=fake.stream_url,
        trading_stream_url=fake.trading_stream_url,
    )
    return AlpacaConnection(endpoints, AlpacaCredentials(fake.key, fake.secret), broker=broker)


def live_daemon(
    settings: Settings,
    fake: FakeAlpaca,
    clock: Clock,
    mode: str = "paper",
    *,
    calendar: TradingCalendar | None = None,
) -> Daemon:
    """A Daemon on SPY in live mode on the fake's endpoints, no signal handlers, its structured
    logs in the settings' logs_dir (call `shutdown_logging()` when done, in a `finally`)."""
    configure_logging("INFO", settings.runtime.logs_dir, clock, console=False)
    options = RunOptions(symbols=["SPY"], sessions=[], handle_signals=False)
    return Daemon(
        settings, options, calendar or TradingCalendar(), clock, alpaca=fake_connection(fake, mode)
    )


def natural_call_spread(
    chain: ChainSnapshot,
    intent_id: str,
    buy: Decimal = Decimal(500),
    sell: Decimal = Decimal(505),
) -> SubmitOrder:
    """A one-lot call debit spread on the chain's nearest expiry, priced at its natural."""
    expiry = chain.expiries[0]
    calls = {
        parse_occ(s).strike: i
        for i, s in enumerate(chain.symbols)
        if chain.is_call[i] and chain.expiries[chain.expiry_idx[i]] == expiry
    }
    legs = []
    for strike, side in ((buy, Side.BUY), (sell, Side.SELL)):
        c = parse_occ(chain.symbols[calls[strike]])
        legs.append(OrderLeg(c.symbol, side, 1, OptionType.CALL, c.strike, c.expiry))
    natural = Decimal(str(chain.ask[calls[buy]])) - Decimal(str(chain.bid[calls[sell]]))
    return SubmitOrder(
        intent_id=intent_id,
        underlying="SPY",
        ts_ns=chain.ts_ns,
        effect=PositionEffect.OPEN,
        legs=tuple(legs),
        quantity=1,
        limit_price=natural,
        idea_id=None,
        strategy_type="call_debit_spread",
    )
