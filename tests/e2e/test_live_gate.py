"""The live gate against the fake Alpaca servers: with `alpaca_mode: live`, an order reaches the
broker only when both GNOSIS_LIVE_TRADING_ENABLED and execution.enable_live_trading are true.

Each combination of the two flags runs the daemon in live mode (real alpaca-py client, fake servers
on 127.0.0.1) and sends the same opening intent; the fake counts the orders it received.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gnosisd.bus.topics import Topic
from gnosisd.core.enums import RiskReason
from gnosisd.runtime.logging import shutdown_logging
from gnosisd.testing.chains import make_chain
from gnosisd.testing.fake_alpaca import FakeAlpaca, FakeOrder
from tests.e2e.conftest import journal_lines, make_settings
from tests.e2e.test_alpaca_daemon import _until
from tests.live_support import (
    SESSION_TIME,
    ShiftedClock,
    live_daemon,
    natural_call_spread,
)


@pytest.mark.parametrize(
    ("env_flag", "config_flag"),
    [(False, False), (True, False), (False, True), (True, True)],
    ids=["neither", "env-only", "config-only", "both"],
)
async def test_live_orders_reach_alpaca_only_with_both_flags(
    tmp_path: Path, env_flag: bool, config_flag: bool
) -> None:
    clock = ShiftedClock(SESSION_TIME)
    settings = make_settings(
        tmp_path,
        execution={"enable_live_trading": config_flag, "alpaca_mode": "live"},
        trade_agent={"max_ideas_per_decision": 0},
    ).model_copy(update={"live_trading_enabled": env_flag})
    assert settings.live_allowed() is (env_flag and config_flag)
    async with FakeAlpaca(now_ns=clock.now_ns) as fake:
        fake.load_chain(make_chain(as_of_ns=clock.now_ns()), quote_ts_ns=clock.now_ns())
        received: list[FakeOrder] = []

        async def fill_at_limit(server: FakeAlpaca, order: FakeOrder) -> None:
            received.append(order)
            await server.fill(order)

        fake.fill_policy = fill_at_limit
        try:
            daemon = live_daemon(settings, fake, clock, "live")
            assert daemon.live is not None and daemon.live.is_live
            run = asyncio.create_task(daemon.run())
            await _until(lambda: daemon.summary.contexts >= 1)
            chain = daemon.market.chain("SPY")
            assert chain is not None
            await daemon.bus.publish(Topic.INTENTS, natural_call_spread(chain, "gate-1"))
            await _until(lambda: daemon.summary.approved + sum(daemon.summary.rejected.values()))
            if env_flag and config_flag:
                await _until(lambda: daemon.summary.fills >= 1)
            daemon.request_stop("test")
            summary = await asyncio.wait_for(run, 20)
        finally:
            shutdown_logging()

    orders = {
        o["order"]["intent_id"]: o["order"]
        for o in journal_lines(settings.runtime.runs_dir, "orders")
    }
    if env_flag and config_flag:
        assert summary.approved == 1 and summary.fills == 1
        assert [o.client_order_id for o in received] == ["gn-gate-1-1"]
        assert orders["gate-1"]["broker_result"]["status"] == "filled"
    else:
        assert summary.approved == 0
        assert summary.rejected == {RiskReason.LIVE_GATE.value: 1}
        assert received == [] and fake.orders == {}
        assert orders["gate-1"]["risk"]["reason"] == RiskReason.LIVE_GATE.value
        assert "GNOSIS_LIVE_TRADING_ENABLED" in orders["gate-1"]["error_message"]
