"""AlpacaBroker against the fake Alpaca with the real alpaca-py client: orders, fills, the walk."""

from __future__ import annotations

import asyncio
import itertools
from decimal import Decimal

from gnosisd.broker.alpaca.policy import ExecutionPolicy
from gnosisd.bus.events import SubmitOrder
from gnosisd.core.enums import OrderStatus, PositionEffect, Side
from gnosisd.testing.fake_alpaca import FakeAlpaca, FakeOrder
from tests.integration.alpaca.conftest import BrokerFactory
from tests.integration.alpaca.support import (
    C500,
    C505,
    P485,
    P490,
    call_spread,
    chain,
    iron_condor,
    leg,
    until,
)


async def fill_all(fake: FakeAlpaca, order: FakeOrder) -> None:
    await fake.fill(order)


async def test_places_one_mleg_limit_order_at_mid_with_ratios_and_position_intents(
    fake: FakeAlpaca, make_broker: BrokerFactory
) -> None:
    broker, rec = await make_broker()
    await broker.submit(call_spread(quantity=3), chain(), 0)

    order = await fake.wait_order("gn-open-spread-1-1")
    assert len(fake.orders) == 1
    assert order.mleg and order.order_type == "limit" and order.qty == 3
    assert order.limit_price == Decimal("2.05")  # mid: 4.10 - 2.05
    assert [(lg.symbol, lg.side, lg.ratio, lg.position_intent) for lg in order.legs] == [
        (C500, "buy", 1, "buy_to_open"),
        (C505, "sell", 1, "sell_to_open"),
    ]
    await rec.wait_for(lambda: rec.statuses() == [OrderStatus.ACCEPTED])


async def test_a_fill_becomes_one_order_filled_with_leg_prices_commission_and_slippage(
    fake: FakeAlpaca, make_broker: BrokerFactory
) -> None:
    broker, rec = await make_broker()

    async def fill_at_prices(f: FakeAlpaca, order: FakeOrder) -> None:
        await f.fill(order, leg_prices={C500: Decimal("4.15"), C505: Decimal("2.10")})

    fake.fill_policy = fill_at_prices
    await broker.submit(call_spread(quantity=2), chain(), 0)
    await rec.wait_for(lambda: rec.fills())

    (fill,) = rec.fills()
    assert fill.order_id == "alpaca-open-spread-1" and fill.quantity == 2
    assert fill.net_price == Decimal("2.05")
    assert [(f.symbol, f.side, f.quantity, f.price) for f in fill.legs] == [
        (C500, Side.BUY, 2, Decimal("4.15")),
        (C505, Side.SELL, 2, Decimal("2.10")),
    ]
    assert fill.commission == Decimal("2.60")  # 4 contracts x 0.65
    assert fill.slippage == Decimal("0.00")  # filled at the mid
    assert rec.statuses() == [OrderStatus.ACCEPTED]
    assert broker.working() == []


async def test_walks_from_mid_toward_natural_one_order_at_a_time_then_cancels(
    fake: FakeAlpaca, make_broker: BrokerFactory
) -> None:
    broker, rec = await make_broker()
    await broker.submit(call_spread(limit="2.20"), chain(), 0)
    await rec.wait_for(lambda: OrderStatus.CANCELED in rec.statuses(), within_s=5)

    orders = sorted(fake.orders.values(), key=lambda o: o.created_ns)
    assert [o.client_order_id for o in orders] == [f"gn-open-spread-1-{n}" for n in (1, 2, 3)]
    # mid 2.05, natural 2.20, collar halfway: cap 2.125, floored to the cent
    assert [o.limit_price for o in orders] == [Decimal("2.05"), Decimal("2.08"), Decimal("2.12")]
    assert all(o.status == "canceled" for o in orders)
    for earlier, later in itertools.pairwise(orders):
        assert earlier.canceled_ns is not None and earlier.canceled_ns <= later.created_ns
    assert rec.statuses() == [OrderStatus.ACCEPTED, OrderStatus.CANCELED]
    assert "not filled within" in rec.updates()[-1].message
    assert rec.fills() == []


async def test_never_prices_beyond_the_approved_limit(
    fake: FakeAlpaca, make_broker: BrokerFactory
) -> None:
    broker, rec = await make_broker()
    await broker.submit(call_spread(limit="2.01"), chain(), 0)  # below the 2.05 mid
    await rec.wait_for(lambda: OrderStatus.CANCELED in rec.statuses(), within_s=5)
    assert {o.limit_price for o in fake.orders.values()} == {Decimal("2.01")}
    assert len(fake.orders) == 1


async def test_partial_fill_then_the_walk_fills_the_rest_as_one_vwap_fill(
    fake: FakeAlpaca, make_broker: BrokerFactory
) -> None:
    broker, rec = await make_broker()

    async def partial_then_full(f: FakeAlpaca, order: FakeOrder) -> None:
        if order.client_order_id.endswith("-1"):
            await f.fill(order, 1, {C500: Decimal("4.10"), C505: Decimal("2.05")})
        else:
            await f.fill(order, None, {C500: Decimal("4.20"), C505: Decimal("2.10")})

    fake.fill_policy = partial_then_full
    await broker.submit(call_spread(quantity=2), chain(), 0)
    await rec.wait_for(lambda: rec.fills(), within_s=5)

    assert rec.statuses() == [OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED]
    assert rec.updates()[1].message == "filled 1 of 2"
    second = fake.order_by_client_id("gn-open-spread-1-2")
    assert second is not None and second.qty == 1  # only what remained
    (fill,) = rec.fills()
    assert fill.quantity == 2
    assert [f.price for f in fill.legs] == [Decimal("4.15"), Decimal("2.075")]
    assert fill.net_price == Decimal("2.075")


async def test_partial_fill_then_timeout_books_the_filled_part_and_reports_canceled(
    fake: FakeAlpaca, make_broker: BrokerFactory
) -> None:
    broker, rec = await make_broker()

    async def one_contract(f: FakeAlpaca, order: FakeOrder) -> None:
        if order.client_order_id.endswith("-1"):
            await f.fill(order, 1)

    fake.fill_policy = one_contract
    await broker.submit(call_spread(quantity=3), chain(), 0)
    await rec.wait_for(lambda: OrderStatus.CANCELED in rec.statuses(), within_s=5)
    (fill,) = rec.fills()
    assert fill.quantity == 1
    assert rec.updates()[-1].message.startswith("filled 1 of 3")


async def test_four_leg_credit_structure_is_one_mleg_order_with_a_negative_limit(
    fake: FakeAlpaca, make_broker: BrokerFactory
) -> None:
    broker, rec = await make_broker()
    fake.fill_policy = fill_all
    intent = iron_condor()
    await broker.submit(intent, chain(), 0)
    await rec.wait_for(lambda: rec.fills())
    (order,) = fake.orders.values()
    assert order.mleg and len(order.legs) == 4
    # buy 485P 2.10, sell 490P 3.05, sell 500C 4.10, buy 505C 2.05: mid -3.00 (a credit)
    assert order.limit_price == Decimal("-3.00")
    assert [lg.symbol for lg in order.legs] == [P485, P490, C500, C505]
    assert rec.fills()[0].net_price == Decimal("-3.00")


async def test_single_leg_intent_is_a_simple_order_with_side_and_positive_limit(
    fake: FakeAlpaca, make_broker: BrokerFactory
) -> None:
    broker, rec = await make_broker()
    fake.fill_policy = fill_all
    intent = SubmitOrder(
        intent_id="close-p1-1",
        underlying="SPY",
        ts_ns=0,
        effect=PositionEffect.CLOSE,
        legs=(leg(Side.SELL, C500),),
        quantity=1,
        limit_price=Decimal("-4.00"),
        position_id="p1",
        exit_reason="take_profit",
    )
    await broker.submit(intent, chain(), 0)
    await rec.wait_for(lambda: rec.fills())
    (order,) = fake.orders.values()
    assert not order.mleg and order.legs[0].side == "sell"
    assert order.legs[0].position_intent == "sell_to_close"
    assert order.limit_price == Decimal("4.10")  # mid 4.10: receive at least that
    fill = rec.fills()[0]
    assert fill.net_price == Decimal("-4.10") and fill.position_id == "p1"
    assert fill.exit_reason == "take_profit"


async def test_order_replaced_at_the_broker_is_followed_to_its_fill(
    fake: FakeAlpaca, make_broker: BrokerFactory
) -> None:
    broker, rec = await make_broker(policy=ExecutionPolicy(steps=1, step_seconds=5.0))
    await broker.submit(call_spread(), chain(), 0)
    original = await fake.wait_order("gn-open-spread-1-1")
    await rec.wait_for(lambda: rec.statuses() == [OrderStatus.ACCEPTED])
    replacement = await fake.replace(original, Decimal("2.10"))
    await fake.fill(replacement)
    await rec.wait_for(lambda: rec.fills())
    assert rec.fills()[0].quantity == 2
    assert rec.statuses() == [OrderStatus.ACCEPTED]


async def test_expiry_at_the_broker_ends_the_intent_as_expired(
    fake: FakeAlpaca, make_broker: BrokerFactory
) -> None:
    broker, rec = await make_broker(policy=ExecutionPolicy(steps=1, step_seconds=5.0))
    await broker.submit(call_spread(), chain(), 0)
    order = await fake.wait_order("gn-open-spread-1-1")
    await rec.wait_for(lambda: rec.statuses() == [OrderStatus.ACCEPTED])
    await fake.expire(order)
    await rec.wait_for(lambda: OrderStatus.EXPIRED in rec.statuses())
    assert broker.working() == []
    assert len(fake.orders) == 1


async def test_kill_switch_cancels_working_orders_and_stops_the_walk(
    fake: FakeAlpaca, make_broker: BrokerFactory
) -> None:
    broker, rec = await make_broker(policy=ExecutionPolicy(steps=3, step_seconds=5.0))
    await broker.submit(call_spread("open-a"), chain(), 0)
    await broker.submit(iron_condor("open-b"), chain(), 0)
    await rec.wait_for(lambda: rec.statuses().count(OrderStatus.ACCEPTED) == 2)

    await broker.cancel_all("kill switch")

    assert [u.message for u in rec.updates() if u.status is OrderStatus.CANCELED] == [
        "kill switch",
        "kill switch",
    ]
    assert len(fake.orders) == 2
    assert all(o.status == "canceled" for o in fake.orders.values())
    assert broker.working() == []


async def test_orders_gnosisd_did_not_place_are_ignored(
    fake: FakeAlpaca, make_broker: BrokerFactory
) -> None:
    broker, rec = await make_broker()
    external = await asyncio.to_thread(
        broker.rest.client.post,
        "/orders",
        {
            "symbol": C500,
            "qty": 1,
            "side": "buy",
            "type": "limit",
            "limit_price": 1.0,
            "time_in_force": "day",
            "client_order_id": "manual-1",
        },
    )
    await fake.fill(fake.orders[external["id"]])
    await until(lambda: broker.counters["external_order_updates"] >= 2)  # new, fill
    assert rec.events == []


async def test_a_second_submit_of_the_same_intent_is_refused_without_a_second_order(
    fake: FakeAlpaca, make_broker: BrokerFactory
) -> None:
    broker, rec = await make_broker()
    await broker.submit(call_spread(), chain(), 0)
    await broker.submit(call_spread(), chain(), 0)
    assert len(fake.orders) == 1
    assert [u.message for u in rec.updates() if u.status is OrderStatus.REJECTED] == [
        "duplicate intent open-spread-1: already sent"
    ]


async def test_legs_beyond_four_or_unquoted_are_refused_before_the_broker(
    fake: FakeAlpaca, make_broker: BrokerFactory
) -> None:
    broker, rec = await make_broker()
    unquoted = call_spread("open-x")
    await broker.submit(unquoted, chain({C500: (4.0, 4.2), C505: (0.0, 0.0)}), 0)
    await rec.wait_for(lambda: rec.statuses() == [OrderStatus.REJECTED])
    assert "has no usable quote" in rec.updates()[0].message
    assert fake.orders == {}
