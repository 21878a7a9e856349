"""Fixtures: fake Alpaca servers on 127.0.0.1 and gnosisd's Alpaca adapters pointed at them."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal

import pytest

from gnosisd.broker.alpaca.broker import AlpacaBroker
from gnosisd.broker.alpaca.config import AlpacaCredentials, AlpacaEndpoints, resolve_endpoints
from gnosisd.broker.alpaca.policy import ExecutionPolicy
from gnosisd.core.clock import LiveClock
from gnosisd.core.reconnect import Backoff
from gnosisd.testing.fake_alpaca import FakeAlpaca
from tests.integration.alpaca.support import Recorder

FAST_POLICY = ExecutionPolicy(
    steps=3,
    step_seconds=0.3,
    cancel_confirm_seconds=0.5,
    max_submit_tries=3,
    retry_seconds=0.02,
)


@pytest.fixture
async def fake() -> AsyncIterator[FakeAlpaca]:
    async with FakeAlpaca() as server:
        yield server


@pytest.fixture
def endpoints(fake: FakeAlpaca) -> AlpacaEndpoints:
    return resolve_endpoints(
        "paper",
        trading_url=fake.rest_url,
        data_url=fake.rest_url,
        data_stream_url=fake.stream_url,
        trading_stream_url=fake.trading_stream_url,
    )


@pytest.fixture
def credentials(fake: FakeAlpaca) -> AlpacaCredentials:
    return AlpacaCredentials(fake.key, fake.secret)


BrokerFactory = Callable[..., Awaitable[tuple[AlpacaBroker, Recorder]]]


@pytest.fixture
async def make_broker(
    endpoints: AlpacaEndpoints, credentials: AlpacaCredentials
) -> AsyncIterator[BrokerFactory]:
    """Start AlpacaBrokers (stream task running, connected) and stop them after the test."""
    running: list[tuple[AlpacaBroker, asyncio.Task[None]]] = []

    async def start(
        policy: ExecutionPolicy = FAST_POLICY, wait_up: bool = True, **kwargs: object
    ) -> tuple[AlpacaBroker, Recorder]:
        recorder = Recorder()
        options: dict[str, object] = {
            "policy": policy,
            "commission_per_contract": Decimal("0.65"),
            "rest_timeout_s": 2.0,
            "stream_backoff": Backoff(0.05, 0.2, random.Random(1)),
            "submit_resolve_s": 2.0,
            **kwargs,
        }
        broker = AlpacaBroker(endpoints, credentials, recorder, LiveClock(), **options)  # type: ignore[arg-type]
        task = asyncio.create_task(broker.run())
        running.append((broker, task))
        if wait_up:
            assert await broker.wait_stream_up(5.0), "trade_updates never connected"
        return broker, recorder

    yield start
    for broker, task in running:
        await broker.aclose(cancel_working=False, within_s=2.0)
        task.cancel()
        await asyncio.wait({task})
