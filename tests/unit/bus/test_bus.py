import asyncio

from gnosisd.bus.bus import Bus, consume
from gnosisd.bus.events import Quote
from gnosisd.bus.topics import Topic


def _quote(symbol: str, ts: int) -> Quote:
    return Quote(symbol, ts, 100.0, 100.1, 1, 1)


async def test_quotes_are_conflated_to_the_latest_per_symbol_when_the_consumer_lags():
    bus = Bus()
    sub = bus.subscribe(Topic.QUOTES, "slow", maxsize=16)
    for ts in range(10):
        await bus.publish(Topic.QUOTES, _quote("SPY", ts))
        await bus.publish(Topic.QUOTES, _quote("QQQ", ts))
    got = [sub.get_nowait(), sub.get_nowait(), sub.get_nowait()]
    assert got[0] == _quote("SPY", 9) and got[1] == _quote("QQQ", 9) and got[2] is None
    stats = bus.stats[Topic.QUOTES]
    assert (stats.published, stats.delivered, stats.conflated) == (20, 2, 18)


async def test_fast_consumer_sees_every_quote():
    bus = Bus()
    sub = bus.subscribe(Topic.QUOTES, "fast")
    seen: list[object] = []
    task = asyncio.create_task(consume(sub, seen.append))
    for ts in range(50):
        await bus.publish(Topic.QUOTES, _quote("SPY", ts))
        await bus.join()
    task.cancel()
    assert [q.ts_ns for q in seen] == list(range(50))  # type: ignore[attr-defined]
    assert bus.stats[Topic.QUOTES].conflated == 0


async def test_fills_are_never_dropped_publish_waits_for_space():
    bus = Bus()
    sub = bus.subscribe(Topic.FILLS, "journal", maxsize=2)
    publisher = asyncio.create_task(_publish_many(bus, 10))
    await asyncio.sleep(0)
    assert not publisher.done()  # blocked on the full queue, not dropping
    got = []
    for _ in range(10):
        got.append(await sub.get())
        sub.task_done()
    await publisher
    assert got == list(range(10))
    assert bus.stats[Topic.FILLS].conflated == 0


async def _publish_many(bus: Bus, n: int) -> None:
    for i in range(n):
        await bus.publish(Topic.FILLS, i)


async def test_every_subscriber_gets_its_own_copy_and_join_waits_for_downstream_work():
    bus = Bus()
    a = bus.subscribe(Topic.INTENTS, "a")
    b = bus.subscribe(Topic.INTENTS, "b")
    out = bus.subscribe(Topic.DECISIONS, "out")
    seen_b: list[object] = []
    decisions: list[object] = []

    async def relay(event: object) -> None:
        await asyncio.sleep(0)
        await bus.publish(Topic.DECISIONS, ("decided", event))

    tasks = [
        asyncio.create_task(consume(a, relay)),
        asyncio.create_task(consume(b, seen_b.append)),
        asyncio.create_task(consume(out, decisions.append)),
    ]
    await bus.publish(Topic.INTENTS, "x")
    await bus.join()
    assert seen_b == ["x"] and decisions == [("decided", "x")]
    for t in tasks:
        t.cancel()
    assert bus.stats[Topic.INTENTS].delivered == 2
