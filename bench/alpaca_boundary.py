"""gnosisd Alpaca boundary benchmark: what one market-data message costs at the boundary, how many
quotes per second go from a websocket through the real alpaca-py client onto the bus, and how long
a chain snapshot takes to build from REST JSON.

1. Per quote: gnosisd's raw path (alpaca-py raw_data=True, `to_quote` + MarketDataValidator.check)
   beside what raw_data=False would cost (alpaca-py's pydantic Quote model) - the reason for raw.
2. End to end over 127.0.0.1: the fake Alpaca server sends N quotes in frames of 100; the real
   StockDataStream decodes them and AlpacaFeed validates and publishes them (wall time, quotes/s).
3. ChainSource._build on a SPY-sized snapshot (±15 % strikes, 60 days) incl. BSM greeks.

Run: .venv/bin/python bench/alpaca_boundary.py [--quotes N]
Figures are printed with the machine they were measured on; nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable

import numpy as np
from machine import describe  # bench/machine.py (the scripts run from bench/)


def machine() -> str:
    return describe("alpaca")


def per_call_us(fn: Callable[[], object], n: int) -> float:
    runs = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        runs.append((time.perf_counter() - t0) / n * 1e6)
    return statistics.median(runs)


def boundary_costs() -> None:
    from alpaca.data.models.quotes import Quote as AlpacaQuote

    from gnosisd.feeds.alpaca.convert import to_quote
    from gnosisd.feeds.validate import MarketDataValidator
    from gnosisd.testing.fake_alpaca import stock_quote

    now = time.time_ns()
    msg = stock_quote("SPY", 500.0, 500.02, now)
    validator = MarketDataValidator({"SPY"})

    def raw() -> object:
        q = to_quote(msg)
        return validator.check(q, now)

    def model() -> object:
        m = dict(msg)
        m["t"] = m["t"].to_datetime()
        return AlpacaQuote("SPY", m)

    n = 20_000
    print(f"  raw dict -> Quote + validation : {per_call_us(raw, n):6.2f} us/quote")
    print(f"  alpaca-py pydantic Quote model : {per_call_us(model, n):6.2f} us/quote (not used)")


async def end_to_end(n_quotes: int) -> None:
    from gnosisd.bus.topics import Topic
    from gnosisd.core.clock import LiveClock
    from gnosisd.feeds.alpaca import AlpacaFeed, AlpacaFeedConfig
    from gnosisd.testing.fake_alpaca import FakeAlpaca, stock_quote

    async with FakeAlpaca() as fake:
        got = 0
        done = asyncio.Event()

        async def publish(topic: Topic, event: object) -> None:
            nonlocal got
            got += 1
            if got >= n_quotes:
                done.set()

        config = AlpacaFeedConfig(
            symbols=("SPY",),
            api_key=fake.key,
            secret_key=fake.secret,
            trading_url=fake.rest_url,
            data_url=fake.rest_url,
            data_stream_url=fake.stream_url,
            news=False,
            chain_refresh_s=3600.0,
            rest_retries=0,
        )
        feed = AlpacaFeed(config, publish, LiveClock())
        task = asyncio.create_task(feed.run())
        while not fake.market.subscribed("stocks", "quotes", "SPY"):  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        t0 = time.perf_counter()
        for _ in range(0, n_quotes, 100):
            now = time.time_ns()
            batch = [stock_quote("SPY", 500.0, 500.02 + (j % 5) / 100, now) for j in range(100)]
            await fake.market.publish("stocks", batch)
        await asyncio.wait_for(done.wait(), 120)
        wall = time.perf_counter() - t0
        task.cancel()
        await asyncio.wait({task})
    print(
        f"  {n_quotes} quotes in {wall:.3f} s: {n_quotes / wall:,.0f} quotes/s "
        "(server encode + alpaca-py decode + gnosisd boundary, one process)"
    )


def chain_build() -> None:
    from gnosisd.feeds.alpaca.chains import ChainQuery, ChainSource
    from gnosisd.testing.chains import default_expiries, make_chain
    from gnosisd.testing.fake_alpaca import FakeAlpaca

    now = time.time_ns()
    strikes = list(np.arange(480.0, 650.0, 1.0))
    chain = make_chain(
        spot=565.0,
        as_of_ns=now,
        strikes=strikes,
        expiries=default_expiries(now, weeks=tuple(range(1, 9))),
    )
    fake = FakeAlpaca()
    fake.load_chain(chain)
    source = ChainSource(None, None, None, ChainQuery())  # type: ignore[arg-type]
    oi = {s: 100 for s in fake.snapshots}
    today = chain.expiries[0]
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        snap = source._build("SPY", 565.0, now, min(today, chain.expiries[0]), fake.snapshots, oi)
        times.append(time.perf_counter() - t0)
    assert snap is not None
    print(f"  {len(snap)} contracts: {statistics.median(times) * 1e3:.1f} ms per snapshot build")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quotes", type=int, default=50_000)
    args = ap.parse_args()
    print(f"machine: {machine()}")
    print("boundary cost per message")
    boundary_costs()
    print("websocket -> alpaca-py -> AlpacaFeed -> publish")
    asyncio.run(end_to_end(args.quotes))
    print("chain snapshot from REST JSON")
    chain_build()


if __name__ == "__main__":
    main()
