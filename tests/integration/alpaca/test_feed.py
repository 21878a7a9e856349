"""AlpacaFeed against the fake Alpaca with the real alpaca-py streams and REST clients."""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import numpy as np
import pytest

from gnosisd.bus.events import Bar, ChainSnapshot, NewsItem, Quote, Trade
from gnosisd.bus.topics import Topic
from gnosisd.core.clock import LiveClock
from gnosisd.feeds.alpaca import AlpacaFeed, AlpacaFeedConfig, ChainQuery
from gnosisd.quant import bsm
from gnosisd.testing.chains import make_chain
from gnosisd.testing.fake_alpaca import (
    FakeAlpaca,
    HttpFault,
    news,
    option_quote,
    stock_bar,
    stock_quote,
    stock_trade,
)
from tests.integration.alpaca.support import until

FeedFactory = Callable[..., Awaitable[tuple[AlpacaFeed, "Published"]]]


class Published:
    """What the feed published, by topic."""

    def __init__(self) -> None:
        self.events: list[tuple[Topic, object]] = []
        self.changed = asyncio.Event()

    async def __call__(self, topic: Topic, event: object) -> None:
        self.events.append((topic, event))
        self.changed.set()

    def of(self, topic: Topic) -> list[Any]:
        return [e for t, e in self.events if t is topic]

    async def wait_for(self, predicate: Callable[[], bool], within_s: float = 5.0) -> None:
        async with asyncio.timeout(within_s):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()


@pytest.fixture
async def make_feed(fake: FakeAlpaca) -> AsyncIterator[FeedFactory]:
    tasks: list[asyncio.Task[None]] = []

    async def start(**overrides: Any) -> tuple[AlpacaFeed, Published]:
        settings: dict[str, Any] = {
            "symbols": ("SPY",),
            "api_key": fake.key,
            "secret_key": fake.secret,
            "trading_url": fake.rest_url,
            "data_url": fake.rest_url,
            "data_stream_url": fake.stream_url,
            "chain_refresh_s": 3600.0,
            "max_option_symbols": 6,
            "backoff_base_s": 0.05,
            "backoff_max_s": 0.2,
            "rest_timeout_s": 2.0,
            "rest_retries": 0,
            "rest_retry_wait_s": 0.0,
        }
        settings.update(overrides)
        published = Published()
        feed = AlpacaFeed(
            AlpacaFeedConfig(**settings), published, LiveClock(), rng=random.Random(3)
        )
        tasks.append(asyncio.create_task(feed.run()))
        return feed, published

    yield start
    for task in tasks:
        task.cancel()
        await asyncio.wait({task})


async def stocks_ready(fake: FakeAlpaca) -> None:
    await until(lambda: fake.market.subscribed("stocks", "bars", "SPY"))


async def test_streams_quotes_trades_bars_and_news_with_nanosecond_timestamps(
    fake: FakeAlpaca, make_feed: FeedFactory
) -> None:
    feed, got = await make_feed()
    await stocks_ready(fake)
    await until(lambda: fake.market.subscribed("news", "news", "SPY"))
    t = time.time_ns() - 123  # not a whole microsecond: alpaca-py's models would cut it
    await fake.market.publish(
        "stocks",
        [
            stock_quote("SPY", 500.0, 500.02, t),
            stock_trade("SPY", 500.01, 100, t),
            stock_bar("SPY", 500.0, 501.0, 499.5, 500.5, 12345, t),
            stock_quote("QQQ", 400.0, 400.02, t),  # not subscribed: the fake does not send it
        ],
    )
    await fake.market.publish("news", [news(7, "SPY rallies", ["SPY"], t)])
    await got.wait_for(lambda: len(got.of(Topic.NEWS)) == 1 and len(got.of(Topic.BARS)) == 1)

    assert got.of(Topic.QUOTES) == [Quote("SPY", t, 500.0, 500.02, 3.0, 2.0)]
    assert got.of(Topic.TRADES) == [Trade("SPY", t, 500.01, 100.0)]
    assert got.of(Topic.BARS) == [Bar("SPY", t, 500.0, 501.0, 499.5, 500.5, 12345.0)]
    assert got.of(Topic.NEWS) == [NewsItem(t, "SPY rallies", ("SPY",))]
    assert feed.spot("SPY") == pytest.approx(500.01)
    assert feed.status()["stocks"]["connected"] is True


async def test_malformed_and_impossible_data_is_dropped_counted_and_never_stops_the_stream(
    fake: FakeAlpaca, make_feed: FeedFactory
) -> None:
    feed, got = await make_feed()
    await stocks_ready(fake)
    now = time.time_ns()
    bad = [
        {**stock_quote("SPY", 500.0, 500.02, now), "t": "2026-01-02T15:00:00Z"},  # str time
        {**stock_quote("SPY", 500.0, 500.02, now), "bp": "500.0"},  # str price
        stock_quote("SPY", math.nan, 500.02, now),
        stock_quote("SPY", 500.05, 500.0, now),  # crossed
        stock_quote("SPY", -1.0, 0.0, now),
        stock_quote("SPY", 500.0, 500.02, now + 365 * 86_400 * 10**9),  # a year ahead
        stock_trade("SPY", 0.0, 100, now),
        stock_bar("SPY", 500.0, 499.0, 501.0, 500.0, 10, now),  # high < low
    ]
    await fake.market.publish("stocks", bad)
    await fake.market.publish_raw("stocks", b"\xc1 not msgpack")  # undecodable frame
    await fake.market.publish("stocks", [stock_quote("SPY", 500.0, 500.02, now)])
    await got.wait_for(lambda: len(got.of(Topic.QUOTES)) == 1)

    assert got.of(Topic.TRADES) == [] and got.of(Topic.BARS) == []
    assert dict(feed.dropped) == {
        "malformed": 2,
        "nan": 1,
        "crossed_quote": 1,
        "non_positive_price": 2,
        "future_timestamp": 1,
        "bad_bar": 1,
    }
    assert feed.status()["stocks"]["connects"] == 1  # no reconnect: the socket stayed up


async def test_quotes_of_unknown_underlyings_are_dropped(
    fake: FakeAlpaca, make_feed: FeedFactory
) -> None:
    feed, got = await make_feed(symbols=("SPY",), news=False)
    foreign = "QQQ261218C00400000"  # subscribed by mistake: not an underlying we trade
    await feed.pin_option_symbols([foreign])
    await until(lambda: fake.market.subscribed("options", "quotes", foreign))
    await fake.market.publish("options", [option_quote(foreign, 1.0, 1.1, time.time_ns())])
    await until(lambda: feed.dropped["unknown_symbol"] == 1)
    assert got.of(Topic.QUOTES) == []


async def test_auth_failure_is_retried_with_backoff_until_it_succeeds(
    fake: FakeAlpaca, make_feed: FeedFactory
) -> None:
    fake.market.reject_auth.add("stocks")
    feed, got = await make_feed(news=False)
    await until(lambda: fake.market.auth_failures["stocks"] >= 3)
    assert not feed.status()["stocks"]["connected"]
    assert "auth failed" in feed.status()["stocks"]["last_drop_reason"]
    fake.market.reject_auth.clear()
    await stocks_ready(fake)
    await fake.market.publish("stocks", [stock_quote("SPY", 500.0, 500.02, time.time_ns())])
    await got.wait_for(lambda: len(got.of(Topic.QUOTES)) == 1)


async def test_silent_socket_counts_as_down_and_is_reconnected(
    fake: FakeAlpaca, make_feed: FeedFactory
) -> None:
    feed, got = await make_feed(news=False, silence_s={"stocks": 0.3, "options": None})
    await stocks_ready(fake)
    fake.market.silent.add("stocks")  # connected, pings answered, no data
    await until(lambda: feed.channels["stocks"].silent_drops >= 1)
    await until(lambda: fake.market.connections["stocks"] >= 2)
    assert "no data for 0.3 s" in feed.status()["stocks"]["last_drop_reason"]

    fake.market.silent.clear()
    await stocks_ready(fake)
    await fake.market.publish("stocks", [stock_quote("SPY", 500.0, 500.02, time.time_ns())])
    await got.wait_for(lambda: len(got.of(Topic.QUOTES)) == 1)


async def test_a_server_that_never_answers_the_login_counts_as_down(
    fake: FakeAlpaca, make_feed: FeedFactory
) -> None:
    fake.market.mute_login.add("stocks")
    feed, got = await make_feed(news=False, login_timeout_s=0.2)
    await until(lambda: feed.channels["stocks"].drops >= 2)
    assert "no login answer within 0.2 s" in feed.status()["stocks"]["last_drop_reason"]
    fake.market.mute_login.clear()
    await stocks_ready(fake)
    await fake.market.publish("stocks", [stock_quote("SPY", 500.0, 500.02, time.time_ns())])
    await got.wait_for(lambda: len(got.of(Topic.QUOTES)) == 1)


async def test_silence_is_tolerated_while_no_data_is_expected(fake: FakeAlpaca) -> None:
    published = Published()
    config = AlpacaFeedConfig(
        symbols=("SPY",),
        api_key=fake.key,
        secret_key=fake.secret,
        trading_url=fake.rest_url,
        data_url=fake.rest_url,
        data_stream_url=fake.stream_url,
        news=False,
        chain_refresh_s=3600.0,
        silence_s={"stocks": 0.1},
        rest_retries=0,
    )
    feed = AlpacaFeed(config, published, LiveClock(), expect_data=lambda: False)
    task = asyncio.create_task(feed.run())
    try:
        await stocks_ready(fake)
        await asyncio.sleep(0.5)  # five silence periods with the market closed
        assert feed.channels["stocks"].silent_drops == 0
        assert fake.market.connections["stocks"] == 1
    finally:
        task.cancel()
        await asyncio.wait({task})


async def test_server_disconnect_reconnects_and_resubscribes(
    fake: FakeAlpaca, make_feed: FeedFactory
) -> None:
    feed, got = await make_feed(news=False)
    await stocks_ready(fake)
    await fake.disconnect("stocks", abort=True)
    await until(lambda: fake.market.connections["stocks"] == 2)
    await stocks_ready(fake)
    await fake.market.publish("stocks", [stock_quote("SPY", 500.0, 500.02, time.time_ns())])
    await got.wait_for(lambda: len(got.of(Topic.QUOTES)) == 1)
    assert feed.channels["stocks"].drops == 1


async def test_chain_snapshot_from_rest_has_quotes_iv_open_interest_and_bsm_greeks(
    fake: FakeAlpaca, make_feed: FeedFactory
) -> None:
    served = make_chain(as_of_ns=time.time_ns(), spot=500.0, open_interest=4321, volume=77)
    fake.load_chain(served)
    _, got = await make_feed(news=False, query=ChainQuery(max_dte=60, strike_band=0.05))
    await got.wait_for(lambda: len(got.of(Topic.CHAINS)) == 1)
    chain: ChainSnapshot = got.of(Topic.CHAINS)[0]

    assert chain.underlying == "SPY" and chain.spot == pytest.approx(500.0)
    assert len(chain) > 0 and set(chain.symbols) <= set(served.symbols)
    assert all(475.0 <= k <= 525.0 for k in chain.strike)  # ±5 % band
    for i, symbol in enumerate(chain.symbols):
        j = served.row(symbol)
        assert chain.bid[i] == served.bid[j] and chain.ask[i] == served.ask[j]
        assert chain.iv[i] == served.iv[j]
    assert set(chain.open_interest.tolist()) == {4321}
    assert set(chain.volume.tolist()) == {77}
    g = bsm.greeks(
        chain.is_call, chain.spot, chain.strike, chain.t_years, chain.rate, 0.0, chain.iv
    )
    np.testing.assert_allclose(chain.delta, g.delta)
    np.testing.assert_allclose(chain.vega, g.vega)  # per 1.00 of vol, not Alpaca's per 1 %
    assert ("GET", "/v1beta1/options/snapshots/SPY") in fake.requests
    assert ("GET", "/v2/options/contracts") in fake.requests


async def test_chain_rows_without_a_usable_quote_or_iv_are_dropped_and_counted(
    fake: FakeAlpaca, make_feed: FeedFactory
) -> None:
    served = make_chain(as_of_ns=time.time_ns(), spot=500.0, strikes=[495.0, 500.0, 505.0])
    fake.load_chain(served)
    sym = list(fake.snapshots)
    fake.snapshots[sym[0]]["latestQuote"]["bp"] = 9.0  # crossed
    fake.snapshots[sym[1]]["impliedVolatility"] = None
    del fake.snapshots[sym[2]]["latestQuote"]
    feed, got = await make_feed(news=False)
    await got.wait_for(lambda: len(got.of(Topic.CHAINS)) == 1)
    chain = got.of(Topic.CHAINS)[0]
    assert not set(sym[:3]) & set(chain.symbols)
    assert len(chain) == len(served) - 3
    assert dict(feed.chains.row_drops) == {"bad_quote": 1, "no_iv": 1, "no_quote": 1}


async def test_chain_rest_5xx_is_counted_and_the_next_round_succeeds(
    fake: FakeAlpaca, make_feed: FeedFactory
) -> None:
    fake.load_chain(make_chain(as_of_ns=time.time_ns(), spot=500.0))
    fake.add_fault(HttpFault("GET", "/v1beta1/options/snapshots", status=500))
    feed, got = await make_feed(news=False)
    await until(lambda: feed.chain_failures["fetch_failed"] == 1)
    assert got.of(Topic.CHAINS) == []
    assert len(await feed.refresh_chains()) == 1


async def test_chain_rest_429_is_retried_by_the_client(
    fake: FakeAlpaca, make_feed: FeedFactory
) -> None:
    fake.load_chain(make_chain(as_of_ns=time.time_ns(), spot=500.0))
    fake.add_fault(HttpFault("GET", "/v1beta1/options/snapshots", status=429))
    feed, got = await make_feed(news=False, rest_retries=2, rest_retry_wait_s=0.01)
    await got.wait_for(lambda: len(got.of(Topic.CHAINS)) == 1)
    assert feed.chain_failures["fetch_failed"] == 0
    assert fake.requests.count(("GET", "/v1beta1/options/snapshots/SPY")) == 2


async def test_option_quotes_stream_for_the_contracts_nearest_the_money(
    fake: FakeAlpaca, make_feed: FeedFactory
) -> None:
    served = make_chain(as_of_ns=time.time_ns(), spot=500.0)
    fake.load_chain(served)
    feed, got = await make_feed(news=False, max_option_symbols=4)
    await got.wait_for(lambda: len(got.of(Topic.CHAINS)) == 1)
    picked = feed.channels["options"].symbols
    assert len(picked) == 4
    assert {float(served.strike[served.row(s)]) for s in picked} == {500.0}
    target = sorted(picked)[0]
    await until(lambda: fake.market.subscribed("options", "quotes", target))

    pinned = served.symbols[0]  # e.g. a leg of an open position far from the money
    await feed.pin_option_symbols([pinned])
    await until(lambda: fake.market.subscribed("options", "quotes", pinned))
    assert fake.market.connections["options"] == 1  # re-subscribed in place

    await fake.market.publish("options", [option_quote(pinned, 1.00, 1.10, time.time_ns())])
    await got.wait_for(lambda: any(q.symbol == pinned for q in got.of(Topic.QUOTES)))
