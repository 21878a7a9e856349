"""AlpacaBroker failure scenarios: auth, rejects, 429/5xx, dropped answers, disconnects, restarts."""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal

from gnosisd.broker.alpaca.broker import AlpacaBroker
from gnosisd.broker.alpaca.config import AlpacaCredentials, AlpacaEndpoints
from gnosisd.broker.alpaca.policy import ExecutionPolicy
from gnosisd.core.clock import LiveClock
from gnosisd.core.enums import OrderStatus, PositionEffect
from gnosisd.core.reconnect import Backoff
from gnosisd.testing.fake_alpaca import FakeAlpaca, FakeOrder, HttpFault
from tests.integration.alpaca.conftest import FAST_POLICY, BrokerFactory
from tests.integration.alpaca.support import Recorder, call_spread, chain, until

SLOW_WALK = ExecutionPolicy(
    steps=2, step_seconds=30.0, cancel_confirm_seconds=0.5, max_submit_tries=3, retry_seconds=0.02
)


def posts(fake: FakeAlpaca) -> int:
    return fake.requests.count(("POST", "/v2/orders"))


async def test_http_reject_is_reported_as_rejected_with_the_brokers_reason(
    fake: FakeAlpaca, make_broker: BrokerFactory
) -> None:
    broker, rec = await make_broker()
    fake.add_fault(HttpFault("POST", "/v2/orders", status=403))
    await broker.submit(call_spread(), chain(), 0)
    assert rec.statuses() == [OrderStatus.REJECTED]
    assert "fake fault 403" in rec.updates()[0].message
    assert fake.orders == {} and posts(fake) == 1  # a definite refusal is not retried
    assert broker.working() == []


async def test_reject_after_acceptance_ends_the_intent_as_rejected(
    fake: FakeAlpaca, make_broker: BrokerFactory
) -> None:
    broker, rec = await make_broker()

    async def reject(f: FakeAlpaca, order: FakeOrder) -> None:
        await f.reject(order)

    fake.fill_policy = reject
    await broker.submit(call_spread(), chain(), 0)
    await rec.wait_for(lambda: OrderStatus.REJECTED in rec.statuses())
    assert rec.statuses() == [OrderStatus.ACCEPTED, OrderStatus.REJECTED]
    assert len(fake.orders) == 1


async def test_rest_auth_failure_rejects_the_order_and_says_why(
    fake: FakeAlpaca, make_broker: BrokerFactory
) -> None:
    broker, rec = await make_broker()
    fake.reject_rest_auth = True
    await broker.submit(call_spread(), chain(), 0)
    assert rec.statuses() == [OrderStatus.REJECTED]
    assert "not authorized" in rec.updates()[0].message


async def test_trading_stream_auth_failure_blocks_opening_orders_until_it_recovers(
    fake: FakeAlpaca, make_broker: BrokerFactory
) -> None:
    fake.reject_trading_auth = True
    broker, rec = await make_broker(wait_up=False)
    await until(lambda: fake.trading_auth_failures >= 2)  # it keeps retrying with back-off
    assert not broker.stream_up

    await broker.submit(call_spread("open-1"), chain(), 0)
    assert rec.updates()[-1].message.startswith("trade_updates stream is down")
    # a closing order still goes out: reducing risk must not wait for the stream
    await broker.submit(call_spread("close-1", effect=PositionEffect.CLOSE), chain(), 0)
    assert [o.client_order_id for o in fake.orders.values()] == ["gn-close-1-1"]

    fake.reject_trading_auth = False
    assert await broker.wait_stream_up(5.0)
    await broker.submit(call_spread("open-2"), chain(), 0)
    assert fake.order_by_client_id("gn-open-2-1") is not None
    assert broker.stream.drops >= 2


async def test_429_is_retried_with_the_same_client_order_id(
    fake: FakeAlpaca, make_broker: BrokerFactory
) -> None:
    broker, rec = await make_broker()
    fake.add_fault(HttpFault("POST", "/v2/orders", status=429, times=2))
    await broker.submit(call_spread(), chain(), 0)
    assert posts(fake) == 3
    assert len(fake.orders) == 1
    await rec.wait_for(lambda: rec.statuses() == [OrderStatus.ACCEPTED])


async def test_429_every_time_gives_up_and_reports_not_placed(
    fake: FakeAlpaca, make_broker: BrokerFactory
) -> None:
    broker, rec = await make_broker()
    fake.add_fault(HttpFault("POST", "/v2/orders", status=429, times=10))
    await broker.submit(call_spread(), chain(), 0)
    assert posts(fake) == FAST_POLICY.max_submit_tries
    assert rec.statuses() == [OrderStatus.REJECTED]
    assert rec.updates()[0].message.startswith("not placed after 3 tries")


async def test_5xx_after_the_order_was_created_is_resolved_by_lookup_not_resent(
    fake: FakeAlpaca, make_broker: BrokerFactory
) -> None:
    broker, rec = await make_broker()
    fake.add_fault(HttpFault("POST", "/v2/orders", status=504, apply=True))
    await broker.submit(call_spread(), chain(), 0)
    assert posts(fake) == 1 and len(fake.orders) == 1
    assert broker.counters["resolved_by_lookup"] == 1
    await rec.wait_for(lambda: rec.statuses() == [OrderStatus.ACCEPTED])


async def test_dropped_answer_with_the_order_created_is_found_by_client_order_id(
    fake: FakeAlpaca, make_broker: BrokerFactory
) -> None:
    broker, rec = await make_broker()
    fake.add_fault(HttpFault("POST", "/v2/orders", drop=True, apply=True))
    await broker.submit(call_spread(), chain(), 0)
    assert posts(fake) == 1 and len(fake.orders) == 1
    await rec.wait_for(lambda: rec.statuses() == [OrderStatus.ACCEPTED])


async def test_5xx_without_an_order_is_sent_again_after_the_lookup_finds_nothing(
    fake: FakeAlpaca, make_broker: BrokerFactory
) -> None:
    broker, _ = await make_broker()
    fake.add_fault(HttpFault("POST", "/v2/orders", status=500))
    await broker.submit(call_spread(), chain(), 0)
    assert posts(fake) == 2 and len(fake.orders) == 1
    by_cid = ("GET", "/v2/orders:by_client_order_id")
    assert fake.requests.count(by_cid) == 2  # the restart probe, then the ambiguity check


async def test_bad_gateway_with_failing_lookups_stays_unresolved_never_assumed_rejected(
    fake: FakeAlpaca, make_broker: BrokerFactory
) -> None:
    broker, rec = await make_broker(submit_resolve_s=0.2)
    fake.add_fault(HttpFault("POST", "/v2/orders", status=502, apply=True))
    fake.add_fault(HttpFault("GET", "/v2/orders:by_client_order_id", status=503, times=1))
    fake.add_fault(HttpFault("GET", "/v2/orders:by_client_order_id", status=503, times=6))
    await broker.submit(call_spread(), chain(), 0)
    assert OrderStatus.REJECTED not in rec.statuses()  # unknown is never assumed rejected
    await rec.wait_for(lambda: rec.statuses() == [OrderStatus.ACCEPTED], within_s=5)
    assert posts(fake) == 1 and len(fake.orders) == 1


async def test_request_timeout_is_ambiguous_and_the_unique_client_id_prevents_a_second_order(
    fake: FakeAlpaca, make_broker: BrokerFactory
) -> None:
    broker, rec = await make_broker(policy=SLOW_WALK, rest_timeout_s=0.3)
    # the first POST is answered (and applied) only after the client gave up waiting
    fake.add_fault(HttpFault("POST", "/v2/orders", delay_s=0.6, apply=True))
    await broker.submit(call_spread(), chain(), 0)
    await rec.wait_for(lambda: rec.statuses() == [OrderStatus.ACCEPTED])
    await until(lambda: fake.duplicates_refused == 1)  # the late original: refused
    assert posts(fake) == 2
    assert [o.client_order_id for o in fake.orders.values()] == ["gn-open-spread-1-1"]


async def test_disconnect_while_an_order_is_in_flight_is_caught_up_over_rest(
    fake: FakeAlpaca, make_broker: BrokerFactory
) -> None:
    broker, rec = await make_broker(policy=SLOW_WALK)
    await broker.submit(call_spread(), chain(), 0)
    order = await fake.wait_order("gn-open-spread-1-1")
    await rec.wait_for(lambda: rec.statuses() == [OrderStatus.ACCEPTED])

    fake.refuse.add("trading")
    await fake.disconnect("trading", abort=True)
    await until(lambda: not broker.stream_up)
    await fake.fill(order)  # the fill's trade_update goes nowhere: nobody is listening
    assert rec.fills() == []

    fake.refuse.clear()
    assert await broker.wait_stream_up(5.0)
    await rec.wait_for(lambda: rec.fills(), within_s=5)
    assert rec.fills()[0].quantity == 2
    assert broker.counters["catch_ups"] >= 2


async def test_duplicate_submission_after_restart_adopts_the_order_never_a_second_one(
    fake: FakeAlpaca,
    endpoints: AlpacaEndpoints,
    credentials: AlpacaCredentials,
) -> None:
    async def start(rec: Recorder) -> tuple[AlpacaBroker, asyncio.Task[None]]:
        broker = AlpacaBroker(
            endpoints,
            credentials,
            rec,
            LiveClock(),
            policy=SLOW_WALK,
            stream_backoff=Backoff(0.05, 0.2, random.Random(2)),
            submit_resolve_s=2.0,
        )
        task = asyncio.create_task(broker.run())
        assert await broker.wait_stream_up(5.0)
        return broker, task

    first_rec = Recorder()
    first, first_task = await start(first_rec)
    await first.submit(call_spread(), chain(), 0)
    await first_rec.wait_for(lambda: first_rec.statuses() == [OrderStatus.ACCEPTED])
    # the process dies: no cancel, tasks gone, the order keeps working at the broker
    await first.aclose(cancel_working=False)
    first_task.cancel()
    await asyncio.wait({first_task})

    rec = Recorder()
    second, task = await start(rec)
    try:
        await second.submit(call_spread(), chain(), 0)
        assert posts(fake) == 1 and len(fake.orders) == 1
        assert second.counters["adopted"] == 1
        await rec.wait_for(lambda: rec.statuses() == [OrderStatus.ACCEPTED])
        await fake.fill(next(iter(fake.orders.values())))
        await rec.wait_for(lambda: rec.fills())
        assert rec.fills()[0].net_price == Decimal("2.05")
    finally:
        await second.aclose()
        task.cancel()
        await asyncio.wait({task})


async def test_restart_never_replaces_an_order_cancelled_while_it_was_down(
    fake: FakeAlpaca, make_broker: BrokerFactory
) -> None:
    first, _ = await make_broker(policy=SLOW_WALK)
    await first.submit(call_spread(), chain(), 0)
    order = await fake.wait_order("gn-open-spread-1-1")
    await first.aclose()
    await fake.cancel(order)  # e.g. cancelled in the broker's UI while we were down

    second, rec = await make_broker(policy=SLOW_WALK)
    await second.submit(call_spread(), chain(), 0)
    assert [o.client_order_id for o in fake.orders.values()] == ["gn-open-spread-1-1"]
    assert posts(fake) == 1
    assert rec.statuses() == [OrderStatus.CANCELED]
    assert second.working() == []
