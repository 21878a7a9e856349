"""Halt layers and broker activities in live mode against the fake Alpaca servers: a latched halt
with `flatten` closes the position through Alpaca and sets the account's `suspend_trade`; the
exercise/assignment activities are polled at the session start and booked into the ledger."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gnosisd.bus.topics import Topic
from gnosisd.risk.killswitch import HALT_STATE
from gnosisd.runtime.logging import shutdown_logging
from gnosisd.testing.chains import make_chain
from gnosisd.testing.fake_alpaca import FakeAlpaca, FakeOrder
from tests.e2e.conftest import log_lines, make_settings
from tests.e2e.test_alpaca_daemon import _until
from tests.live_support import (
    SESSION_TIME,
    ShiftedClock,
    live_daemon,
    natural_call_spread,
)


async def test_latched_halt_flattens_through_alpaca_and_activities_are_booked(
    tmp_path: Path,
) -> None:
    clock = ShiftedClock(SESSION_TIME)
    settings = make_settings(
        tmp_path,
        trade_agent={"max_ideas_per_decision": 0},
        # flatten only: with alpaca_suspend_on_halt the suspended account would refuse the closes
        # (a configuration error); the suspension has its own test below.
        execution={"halt_policy": "flatten"},
    )
    async with FakeAlpaca(now_ns=clock.now_ns) as fake:
        chain = make_chain(as_of_ns=clock.now_ns())
        fake.load_chain(chain, quote_ts_ns=clock.now_ns())
        unknown = fake.add_option_activity("OPASN", chain.symbols[0], 1)

        async def fill_at_limit(server: FakeAlpaca, order: FakeOrder) -> None:
            await server.fill(order)

        fake.fill_policy = fill_at_limit
        try:
            daemon = live_daemon(settings, fake, clock)
            assert daemon.live is not None
            run = asyncio.create_task(daemon.run())
            await _until(lambda: daemon.summary.contexts >= 1)
            # Start-up reconciliation with the broker runs concurrently; let it finish first.
            await _until(lambda: getattr(daemon.live, "reconciliation", True) is not None)
            live_chain = daemon.market.chain("SPY")
            assert live_chain is not None
            intent = natural_call_spread(live_chain, "e2e-halt-spread-1")
            await daemon.bus.publish(Topic.INTENTS, intent)
            await _until(lambda: len(daemon.ledger.positions()) == 1)
            (held,) = daemon.ledger.positions()
            short = next(leg for leg in held.legs if leg.ratio < 0)
            long = next(leg for leg in held.legs if leg.ratio > 0)

            # The short leg is assigned: the ledger keeps the long leg, the operator is alerted.
            assigned = fake.add_option_activity("OPASN", short.symbol, 1)
            outcomes = await daemon.live.book_option_activities("test")
            (after,) = daemon.ledger.positions()
            assert [leg.symbol for leg in after.legs] == [long.symbol]
            assert await daemon.live.book_option_activities("again") == []  # booked once

            daemon.request_halt("operator test")
            await _until(lambda: daemon.summary.closes["halt"] == 1)
            assert daemon.ledger.positions() == []
            daemon.request_stop("test")
            await asyncio.wait_for(run, 20)
        finally:
            shutdown_logging()

    assert [(o.status, o.delivered_shares) for o in outcomes] == [("booked", -100)]
    assert daemon.guard.halt_latched
    audit = log_lines(settings.runtime.logs_dir, "audit")
    events = [x["event"] for x in audit]
    assert "broker-side trading suspension set" not in events
    assert fake.configuration.get("suspend_trade") is not True
    assert "flattening open positions" in events
    # The session-start poll saw the activity of a contract the daemon never held.
    (seen,) = [x for x in audit if x.get("activity_id") == unknown["id"]]
    assert seen["event"] == "option activity for a contract gnosisd does not hold"
    alerts = [x for x in audit if x.get("activity_id") == assigned["id"]]
    assert [(x["event"], x["level"]) for x in alerts] == [
        ("option activity booked", "warning"),
        ("stock delivered by option exercise/assignment: operator action required", "error"),
    ]
    assert alerts[1]["shares"] == -100
    # Booked ids are saved with the ledger they changed, in one atomic document.
    books = daemon.state_store.load("ledger")
    assert isinstance(books, dict)
    booked = set(books["option_activities"]["booked"])
    assert {unknown["id"], assigned["id"]} <= booked


def _states(logs: Path) -> list[str]:
    return [x["state"] for x in log_lines(logs, "audit") if x["event"] == "trading state changed"]


@pytest.mark.parametrize("unsuspend", [True, False])
async def test_operator_resume_clears_suspend_trade_only_when_configured(
    tmp_path: Path, unsuspend: bool
) -> None:
    clock = ShiftedClock(SESSION_TIME)
    settings = make_settings(
        tmp_path,
        trade_agent={"max_ideas_per_decision": 0},
        execution={"alpaca_suspend_on_halt": True, "alpaca_unsuspend_on_resume": unsuspend},
    )
    async with FakeAlpaca(now_ns=clock.now_ns) as fake:
        fake.load_chain(make_chain(as_of_ns=clock.now_ns()), quote_ts_ns=clock.now_ns())
        try:
            daemon = live_daemon(settings, fake, clock)
            run = asyncio.create_task(daemon.run())
            await _until(lambda: getattr(daemon.live, "reconciliation", True) is not None)
            daemon.request_halt("operator test")
            await _until(lambda: fake.configuration["suspend_trade"] is True)
            daemon.state_store.path(HALT_STATE).unlink()  # what `gnosisd resume` does
            await _until(lambda: not daemon.guard.halt_latched)
            # The resume's handling (and any unsuspend request) is done once it is audited.
            await _until(lambda: "active" in _states(settings.runtime.logs_dir))
            if unsuspend:
                await _until(lambda: fake.configuration["suspend_trade"] is False)
            daemon.request_stop("test")
            await asyncio.wait_for(run, 20)
        finally:
            shutdown_logging()
    patches = [p for m, p in fake.requests if m == "PATCH"]
    assert len(patches) == (2 if unsuspend else 1)
    audit = log_lines(settings.runtime.logs_dir, "audit")
    requested = [x for x in audit if x["event"] == "broker-side trading suspension requested"]
    assert [x["suspend_trade"] for x in requested] == ([True, False] if unsuspend else [True])
    assert fake.configuration["suspend_trade"] is (not unsuspend)
