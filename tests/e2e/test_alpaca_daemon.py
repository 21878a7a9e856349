"""The daemon in live mode (`--feed alpaca --broker alpaca`) against the fake Alpaca servers.

The daemon runs in-process on a wall clock shifted into a regular session (so the calendar and the
risk guard see an open market whatever the hour of the test); the fake stamps its data with the
same clock. Everything goes through the real alpaca-py client on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from gnosisd.bus.topics import Topic
from gnosisd.cli import main
from gnosisd.core.calendar import TradingCalendar
from gnosisd.core.enums import RiskReason
from gnosisd.runtime.logging import shutdown_logging
from gnosisd.testing.chains import make_chain
from gnosisd.testing.fake_alpaca import FakeAlpaca, FakeOrder
from tests.e2e.conftest import journal_lines, make_settings
from tests.live_support import (
    SESSION_TIME,
    ShiftedClock,
    live_daemon,
    natural_call_spread,
)


async def _until(predicate: object, within_s: float = 10.0) -> None:
    assert callable(predicate)
    async with asyncio.timeout(within_s):
        while not predicate():  # noqa: ASYNC110 - polling the daemon's plain state
            await asyncio.sleep(0.02)


async def test_live_daemon_trades_one_order_through_the_guard_to_alpaca_and_stops_cleanly(
    tmp_path: Path,
) -> None:
    clock = ShiftedClock(SESSION_TIME)
    settings = make_settings(
        tmp_path,
        trade_agent={"max_ideas_per_decision": 0},  # the agent journals ideas, sends none
    )
    calendar = TradingCalendar()
    async with FakeAlpaca(now_ns=clock.now_ns) as fake:
        chain = make_chain(as_of_ns=clock.now_ns())
        fake.load_chain(chain, quote_ts_ns=clock.now_ns())
        submitted: list[FakeOrder] = []

        async def fill_at_limit(server: FakeAlpaca, order: FakeOrder) -> None:
            submitted.append(order)
            await server.fill(order)

        fake.fill_policy = fill_at_limit
        try:
            daemon = live_daemon(settings, fake, clock, calendar=calendar)
            assert daemon.live is not None and daemon.live.broker is not None
            broker = daemon.live.broker
            run = asyncio.create_task(daemon.run())
            await _until(lambda: daemon.summary.contexts >= 1)  # chain -> engines -> context
            assert daemon.summary.sessions == [SESSION_TIME.date()]  # the calendar timer
            live_chain = daemon.market.chain("SPY")
            assert live_chain is not None
            intent = natural_call_spread(live_chain, "e2e-alpaca-spread-1")
            await daemon.bus.publish(Topic.INTENTS, intent)
            await _until(lambda: daemon.summary.fills >= 1)
            # trade_updates down (and kept down): new opening orders are refused before the guard.
            fake.reject_trading_auth = True
            await fake.disconnect("trading")
            await _until(lambda: not broker.stream_up)
            await daemon.bus.publish(
                Topic.INTENTS, natural_call_spread(live_chain, "e2e-alpaca-spread-2")
            )
            await _until(lambda: sum(daemon.summary.rejected.values()) >= 1)
            daemon.request_stop("test")
            summary = await asyncio.wait_for(run, 20)
        finally:
            shutdown_logging()

    assert broker.is_live is False
    assert summary.approved == 1 and summary.fills == 1
    assert summary.rejected == {RiskReason.BROKER_UNAVAILABLE.value: 1}
    assert [o.client_order_id for o in submitted] == ["gn-e2e-alpaca-spread-1-1"]
    assert fake.duplicates_refused == 0
    assert len(fake.orders) == 1
    positions = daemon.ledger.positions()
    assert len(positions) == 1
    assert {leg.symbol for leg in positions[0].legs} == {leg.symbol for leg in intent.legs}
    runs = settings.runtime.runs_dir
    orders = list(journal_lines(runs, "orders"))
    by_intent = {o["order"]["intent_id"]: o["order"] for o in orders}
    assert len(orders) == len(by_intent) == 2
    refused = by_intent["e2e-alpaca-spread-2"]
    assert refused["risk"]["approved"] is False
    assert refused["risk"]["reason"] == "broker_unavailable"
    order = by_intent["e2e-alpaca-spread-1"]
    assert order["intent_id"] == "e2e-alpaca-spread-1"
    assert order["risk"]["approved"] is True
    assert order["broker_result"]["status"] == "filled"
    assert order["broker_result"]["order_id"] == "alpaca-e2e-alpaca-spread-1"
    assert len(list(journal_lines(runs, "context"))) >= 1
    assert summary.final_state == "active"


def test_run_with_the_alpaca_feed_and_no_keys_is_a_configuration_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("ALPACA_API_KEY", raising=False)
    monkeypatch.delenv("ALPACA_SECRET_KEY", raising=False)
    code = main(
        [
            "run",
            "--env-file",
            str(tmp_path / "none.env"),
            "--feed",
            "alpaca",
            "--broker",
            "alpaca",
        ]
    )
    assert code == 2
    assert "ALPACA_API_KEY" in capsys.readouterr().err


def test_run_refuses_the_alpaca_broker_on_the_simulated_feed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = main(["run", "--env-file", str(tmp_path / "none.env"), "--broker", "alpaca"])
    assert code == 2
    assert "--feed alpaca" in capsys.readouterr().err


async def test_gnosisd_run_on_alpaca_as_a_process_journals_context_and_exits_0_on_sigterm(
    tmp_path: Path,
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("trade_agent:\n  max_ideas_per_decision: 0\n")
    async with FakeAlpaca() as fake:
        fake.load_chain(make_chain(as_of_ns=time.time_ns()), quote_ts_ns=time.time_ns())
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GNOSIS_", "ALPACA_"))}
        env.update(
            ALPACA_API_KEY=fake.key,
            ALPACA_SECRET_KEY=fake.secret,
            ALPACA_BASE_URL=fake.rest_url,
            ALPACA_DATA_URL=fake.rest_url,
            ALPACA_DATA_STREAM_URL=fake.stream_url,
            ALPACA_TRADING_STREAM_URL=fake.trading_stream_url,
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gnosisd.cli",
            "run",
            "--config",
            str(config),
            "--feed",
            "alpaca",
            "--broker",
            "alpaca",
            "--alpaca-mode",
            "paper",
            cwd=tmp_path,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            runs = tmp_path / "runs"
            async with asyncio.timeout(25):
                while not list(runs.glob("*/SPY_context.jsonl")):
                    assert proc.returncode is None, "gnosisd exited early"
                    await asyncio.sleep(0.1)
            proc.send_signal(signal.SIGTERM)
            out, err = await asyncio.wait_for(proc.communicate(), 20)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert fake.trading_connections >= 1  # trade_updates was up
    assert proc.returncode == 0, err.decode()
    assert b"stopped by signal" in out
    contexts = list(journal_lines(runs, "context"))
    assert contexts and all(c["symbol"] == "SPY" for c in contexts)
    assert fake.orders == {}  # the agent sends nothing with max_ideas_per_decision 0
