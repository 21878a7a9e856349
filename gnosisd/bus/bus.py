"""The in-process async bus: one bounded queue per subscriber, per-topic counters.

Market data on conflatable topics keeps the latest event per key (symbol) while a consumer lags;
every other topic (orders, fills, control) is never dropped: publish() waits for queue space.
"""

from __future__ import annotations

import asyncio
import inspect
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass

from gnosisd.bus.topics import CONFLATABLE, Topic


@dataclass(slots=True)
class TopicStats:
    published: int = 0
    delivered: int = 0
    conflated: int = 0


def _conflation_key(event: object) -> Hashable:
    key = getattr(event, "symbol", None)
    if key is None:
        key = getattr(event, "underlying", None)
    return key if key is not None else id(event)


class Subscription:
    """A subscriber's bounded queue on one topic. Call task_done() after handling each event."""

    def __init__(self, topic: Topic, name: str, maxsize: int, stats: TopicStats) -> None:
        if maxsize < 1:
            raise ValueError(
                f"subscription {name!r} on {topic}: maxsize must be >= 1, got {maxsize}"
            )
        self.topic = topic
        self.name = name
        self.maxsize = maxsize
        self.conflating = topic in CONFLATABLE
        self._stats = stats
        self._queue: asyncio.Queue[object] = asyncio.Queue(maxsize)
        # Conflating topics keep pending events in an insertion-ordered dict keyed by symbol.
        self._pending: dict[Hashable, object] = {}
        self._getters: deque[asyncio.Future[None]] = deque()
        self._unfinished = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def qsize(self) -> int:
        return len(self._pending) if self.conflating else self._queue.qsize()

    @property
    def unfinished(self) -> int:
        return self._unfinished

    def _offer(self, event: object) -> bool:
        """Enqueue without waiting; False when a lossless queue is full (the caller must wait)."""
        if self.conflating:
            self._put_conflating(event)
            return True
        if self._queue.full():
            return False
        self._unfinished += 1
        self._idle.clear()
        self._queue.put_nowait(event)
        return True

    async def _put_wait(self, event: object) -> None:
        self._unfinished += 1
        self._idle.clear()
        await self._queue.put(event)  # back-pressure: never drop orders or control

    def _put_conflating(self, event: object) -> None:
        key = _conflation_key(event)
        pending = self._pending
        if key in pending:
            pending[key] = event  # the consumer has not taken the older one yet: latest wins
            self._stats.conflated += 1
        else:
            if len(pending) >= self.maxsize:
                del pending[next(iter(pending))]  # drop the oldest pending key
                self._stats.conflated += 1
            else:
                self._unfinished += 1
                self._idle.clear()
            pending[key] = event
        while self._getters:
            waiter = self._getters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                break

    async def get(self) -> object:
        """Wait for and return the next event."""
        if not self.conflating:
            event = await self._queue.get()
        else:
            while not self._pending:
                waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                self._getters.append(waiter)
                try:
                    await waiter
                except BaseException:
                    waiter.cancel()
                    raise
            key = next(iter(self._pending))
            event = self._pending.pop(key)
        self._stats.delivered += 1
        return event

    def get_nowait(self) -> object | None:
        """Return the next event or None when empty."""
        if self.conflating:
            if not self._pending:
                return None
            event = self._pending.pop(next(iter(self._pending)))
        else:
            if self._queue.empty():
                return None
            event = self._queue.get_nowait()
        self._stats.delivered += 1
        return event

    def task_done(self) -> None:
        self._unfinished -= 1
        if self._unfinished <= 0:
            self._unfinished = 0
            self._idle.set()

    async def join(self) -> None:
        await self._idle.wait()


class Bus:
    """Typed topics, bounded per-subscriber queues, counters; single event loop."""

    def __init__(self) -> None:
        self._subs: dict[Topic, list[Subscription]] = {t: [] for t in Topic}
        self.stats: dict[Topic, TopicStats] = {t: TopicStats() for t in Topic}

    def subscribe(self, topic: Topic, name: str, maxsize: int = 4096) -> Subscription:
        sub = Subscription(topic, name, maxsize, self.stats[topic])
        self._subs[topic].append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs[sub.topic].remove(sub)

    def subscribers(self, topic: Topic) -> list[Subscription]:
        return list(self._subs[topic])

    async def publish(self, topic: Topic, event: object) -> None:
        """Deliver `event` to every subscriber of `topic` (waits for space on lossless topics)."""
        self.stats[topic].published += 1
        for sub in self._subs[topic]:
            if not sub._offer(event):  # the synchronous path costs no coroutine per subscriber
                await sub._put_wait(event)

    async def join(self) -> None:
        """Wait until every subscriber has handled everything published so far (and what that caused)."""
        while True:
            busy = [s for subs in self._subs.values() for s in subs if s.unfinished]
            if not busy:
                return
            for s in busy:
                await s.join()


Handler = Callable[[object], Awaitable[None] | None]


async def consume(sub: Subscription, handler: Handler) -> None:
    """Run `handler` on every event of `sub` forever (cancel the task to stop)."""
    while True:
        event = await sub.get()
        try:
            result = handler(event)
            if inspect.isawaitable(result):
                await result
        finally:
            sub.task_done()
