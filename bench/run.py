"""gnosisd benchmarks: bus throughput and hop latency beside a bare uvloop asyncio.Queue, market event
to engine snapshot latency, and the wall time of one simulated session.

Run: .venv/bin/python bench/run.py [--messages N] [--skip-session]
Figures are printed with the machine they were measured on; nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import uvloop
from machine import describe  # bench/machine.py (the scripts run from bench/)

from gnosisd.bus.bus import Bus
from gnosisd.bus.events import Bar, Quote
from gnosisd.bus.topics import Topic
from gnosisd.core.config import LiquidityConfig, SentimentConfig
from gnosisd.engines.liquidity import LiquidityEngine
from gnosisd.engines.sentiment import SentimentEngine

QUEUE_SIZE = 1024


def machine() -> str:
    return describe("uvloop", "numpy")


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


# ---------------------------------------------------------------- throughput
async def bare_throughput(n: int) -> float:
    q: asyncio.Queue[object] = asyncio.Queue(QUEUE_SIZE)
    msg = Quote("SPY", 0, 1.0, 1.01, 1, 1)

    async def consumer() -> None:
        for _ in range(n):
            await q.get()

    task = asyncio.create_task(consumer())
    t0 = time.perf_counter()
    for _ in range(n):
        await q.put(msg)
    await task
    return n / (time.perf_counter() - t0)


async def bus_throughput(n: int, topic: Topic) -> float:
    bus = Bus()
    sub = bus.subscribe(topic, "bench", QUEUE_SIZE)
    symbols = [f"S{i}" for i in range(QUEUE_SIZE)]  # distinct keys: nothing conflates
    msgs = [Quote(symbols[i % QUEUE_SIZE], i, 1.0, 1.01, 1, 1) for i in range(QUEUE_SIZE)]

    async def consumer() -> None:
        got = 0
        while got < n:
            await sub.get()
            sub.task_done()
            got += 1

    task = asyncio.create_task(consumer())
    t0 = time.perf_counter()
    for i in range(n):
        await bus.publish(topic, msgs[i % QUEUE_SIZE])
        if topic is Topic.QUOTES and i % QUEUE_SIZE == QUEUE_SIZE - 1:
            await asyncio.sleep(0)  # conflating queues never block the publisher: let it drain
    await task
    elapsed = time.perf_counter() - t0
    assert bus.stats[topic].conflated == 0 or topic is Topic.QUOTES
    return n / elapsed


# ---------------------------------------------------------------- hop latency
async def bare_hop(n: int) -> list[float]:
    q: asyncio.Queue[int] = asyncio.Queue(QUEUE_SIZE)
    out: list[float] = []
    done = asyncio.Event()

    async def consumer() -> None:
        for _ in range(n):
            t = await q.get()
            out.append((time.perf_counter_ns() - t) / 1000)
            done.set()

    task = asyncio.create_task(consumer())
    for _ in range(n):
        done.clear()
        await q.put(time.perf_counter_ns())
        await done.wait()
    await task
    return out


async def bus_hop(n: int) -> list[float]:
    bus = Bus()
    sub = bus.subscribe(Topic.FILLS, "bench", QUEUE_SIZE)
    out: list[float] = []
    done = asyncio.Event()

    async def consumer() -> None:
        for _ in range(n):
            t = await sub.get()
            assert isinstance(t, int)
            out.append((time.perf_counter_ns() - t) / 1000)
            sub.task_done()
            done.set()

    task = asyncio.create_task(consumer())
    for _ in range(n):
        done.clear()
        await bus.publish(Topic.FILLS, time.perf_counter_ns())
        await done.wait()
    await task
    return out


async def event_to_snapshot(n: int) -> tuple[list[float], list[float]]:
    """Market event published on the bus -> engine snapshot produced by the engine coroutine."""
    bus = Bus()
    quotes = bus.subscribe(Topic.QUOTES, "liquidity")
    bars = bus.subscribe(Topic.BARS, "sentiment")
    liq = LiquidityEngine("SPY", LiquidityConfig())
    sent = SentimentEngine("SPY", SentimentConfig())
    quote_lat: list[float] = []
    bar_lat: list[float] = []
    done = asyncio.Event()
    t_pub = 0

    async def run(sub: object, engine: object, out: list[float]) -> None:
        while True:
            ev = await sub.get()  # type: ignore[attr-defined]
            snap = engine.update(ev)  # type: ignore[attr-defined]
            if snap is not None:
                await bus.publish(Topic.ENGINES, snap)
            out.append((time.perf_counter_ns() - t_pub) / 1000)
            sub.task_done()  # type: ignore[attr-defined]
            done.set()

    tasks = [
        asyncio.create_task(run(quotes, liq, quote_lat)),
        asyncio.create_task(run(bars, sent, bar_lat)),
    ]
    rng = np.random.default_rng(1)
    price = 500.0
    for i in range(n):
        price *= float(np.exp(rng.normal(0, 0.0005)))
        ts = 1_700_000_000_000_000_000 + i * 60_000_000_000
        for topic, ev in (
            (Topic.QUOTES, Quote("SPY", ts, price - 0.01, price + 0.01, 5, 5)),
            (Topic.BARS, Bar("SPY", ts, price, price * 1.001, price * 0.999, price, 1e6)),
        ):
            done.clear()
            t_pub = time.perf_counter_ns()
            await bus.publish(topic, ev)
            await done.wait()
    for t in tasks:
        t.cancel()
    return quote_lat, bar_lat


def session_wall_time() -> tuple[float, str]:
    """Wall time of `gnosisd run` for one simulated SPY session, as a user runs it."""
    import subprocess

    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, GNOSIS_LOG_LEVEL="WARNING")
        cmd = [
            sys.executable,
            "-m",
            "gnosisd.cli",
            "run",
            "--sessions",
            "1",
            "--symbols",
            "SPY",
            "--start-date",
            "2026-11-24",
            "--output-dir",
            f"{tmp}/runs",
        ]
        cfg = Path(tmp) / "config.yaml"
        cfg.write_text(f"runtime:\n  logs_dir: {tmp}/logs\n  state_dir: {tmp}/state\n")
        t0 = time.perf_counter()
        proc = subprocess.run(
            [*cmd, "--config", str(cfg)], env=env, capture_output=True, text=True, check=False
        )
        elapsed = time.perf_counter() - t0
        if proc.returncode != 0:
            return elapsed, f"FAILED rc={proc.returncode}: {proc.stderr[-500:]}"
        return elapsed, "ok"


async def main_async(n: int) -> None:
    hops = min(n, 50_000)
    bare = statistics.median([await bare_throughput(n) for _ in range(3)])
    lossless = statistics.median([await bus_throughput(n, Topic.FILLS) for _ in range(3)])
    conflating = statistics.median([await bus_throughput(n, Topic.QUOTES) for _ in range(3)])
    bare_lat = await bare_hop(hops)
    bus_lat = await bus_hop(hops)
    q_lat, b_lat = await event_to_snapshot(min(n, 20_000))
    print(f"bus throughput ({n:,} msgs, queue {QUEUE_SIZE}, 1 subscriber, median of 3)")
    print(f"  bare uvloop asyncio.Queue   {bare:>12,.0f} msgs/s")
    print(
        f"  bus, lossless topic (fills) {lossless:>12,.0f} msgs/s  ({lossless / bare:.0%} of bare)"
    )
    print(
        f"  bus, conflating (quotes)    {conflating:>12,.0f} msgs/s  ({conflating / bare:.0%} of bare)"
    )
    print(f"hop latency, publish -> consumer ({hops:,} ping-pongs), microseconds")
    print(f"  bare asyncio.Queue   p50 {pct(bare_lat, 50):6.2f}  p99 {pct(bare_lat, 99):6.2f}")
    print(f"  bus                  p50 {pct(bus_lat, 50):6.2f}  p99 {pct(bus_lat, 99):6.2f}")
    print("market event -> engine snapshot (published on the bus), microseconds")
    print(f"  quote -> liquidity   p50 {pct(q_lat, 50):6.2f}  p99 {pct(q_lat, 99):6.2f}")
    print(f"  bar   -> sentiment   p50 {pct(b_lat, 50):6.2f}  p99 {pct(b_lat, 99):6.2f}")
    print("targets: bus >= 50% of bare throughput; market event -> snapshot p99 < 200 us")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=300_000)
    parser.add_argument("--skip-session", action="store_true")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main_async(args.messages))
    if not args.skip_session:
        wall, status = session_wall_time()
        print(
            f"one simulated session (gnosisd run, SPY, 390 minutes): {wall:.2f} s wall  [{status}]"
        )


if __name__ == "__main__":
    main()
