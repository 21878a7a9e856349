"""Reconnect policy shared by every supervised stream (Alpaca market data and trade_updates).

Back-off timing, the stream's connected/dropped signals and the websocket keepalive settings; the
feed and broker adapters each supervise their own streams with these (they may not import each
other, so the shared part lives here).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import Any

# alpaca-py's defaults (ping every 10 s, 180 s to answer) notice a dead peer after minutes;
# `websocket_params` replaces the whole dict, so every key is given.
WEBSOCKET_PARAMS: dict[str, Any] = {
    "ping_interval": 10,
    "ping_timeout": 20,
    "close_timeout": 1,
    "open_timeout": 10,
    "max_queue": 1024,
}


class Backoff:
    """Exponential back-off with equal jitter: d = min(cap, base·2^(n−1)), wait d/2 + U(0, d/2).

    Source: M. Brooker, "Exponential Backoff And Jitter", AWS Architecture Blog, 2015.
    """

    def __init__(
        self, base_s: float = 1.0, max_s: float = 30.0, rng: random.Random | None = None
    ) -> None:
        if base_s <= 0 or max_s < base_s:
            raise ValueError(f"backoff needs 0 < base_s <= max_s, got {base_s}, {max_s}")
        self.base_s = base_s
        self.max_s = max_s
        self._rng = rng or random.Random()

    def delay(self, failures: int) -> float:
        """Seconds to wait after `failures` (>= 1) consecutive failures."""
        d = min(self.max_s, self.base_s * 2.0 ** min(max(failures - 1, 0), 30))
        return d / 2 + self._rng.uniform(0.0, d / 2)


class Signals:
    """What a supervised stream reports: connected (logged in), dropped (with why)."""

    def __init__(self) -> None:
        self.connected = asyncio.Event()
        self.dropped = asyncio.Event()
        self.reason = ""

    def drop(self, reason: str) -> None:
        if not self.dropped.is_set():
            self.reason = reason
            self.dropped.set()


async def until_connected(task: asyncio.Task[Any], signals: Signals, within_s: float) -> bool:
    """Wait for the login; a server that accepts the socket but never answers within `within_s`
    counts as a failed connection. True if logged in and still up."""
    connected = asyncio.ensure_future(signals.connected.wait())
    dropped = asyncio.ensure_future(signals.dropped.wait())
    try:
        done, _ = await asyncio.wait(
            {task, connected, dropped}, timeout=within_s, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        connected.cancel()
        dropped.cancel()
    if not done:
        signals.drop(f"no login answer within {within_s:g} s")
    return signals.connected.is_set() and not signals.dropped.is_set() and not task.done()


async def stop_stream(stream: Any, task: asyncio.Task[Any]) -> BaseException | None:
    """Cancel a stream task and close its socket now (alpaca-py's stop_ws() takes ~5 s).

    Returns the error the task had ended with, if any (for the caller's debug log).
    """
    task.cancel()
    await asyncio.wait({task})  # raises only if *we* are cancelled, never the task's error
    error = None if task.cancelled() else task.exception()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(stream.close(), 2.0)
    return error
