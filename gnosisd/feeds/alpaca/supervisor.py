"""Supervision of one alpaca-py data stream: our reconnects (exponential back-off with jitter) and a
data-silence timeout (a connected but silent socket counts as down).

alpaca-py's own reconnect loop is intercepted: when it wants to reconnect, its task parks and we
cancel it, close the socket at once (stop_ws() would take ~5 s), wait our back-off and build a
fresh stream that re-authenticates and re-subscribes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

import structlog
from websockets.exceptions import WebSocketException

from gnosisd.core.reconnect import Backoff, Signals, stop_stream, until_connected

log = structlog.get_logger("gnosisd.feeds.alpaca")


def supervise(stream: Any, signals: Signals) -> Any:
    """Make an alpaca-py stream report to `signals` and park instead of reconnecting itself.

    Wraps the instance's `_start_ws` (connect + auth), `_consume` and `_wait_before_reconnect`,
    the three places alpaca-py 0.44's `_run_forever` goes through on every (re)connect.
    """
    start_ws = stream._start_ws
    consume = stream._consume

    async def _start_ws() -> None:
        try:
            await start_ws()
        except Exception as exc:
            signals.drop(f"connect/auth failed: {exc!r}")
            raise
        signals.connected.set()

    async def _consume() -> Any:
        try:
            return await consume()
        except WebSocketException as exc:  # other errors (a bad frame) keep the connection
            signals.drop(f"connection lost: {exc!r}")
            raise

    async def _wait_before_reconnect(retries: int) -> None:
        signals.drop(signals.reason or "the stream wants to reconnect")
        await asyncio.Event().wait()  # parked until the supervisor cancels the task

    setattr(stream, "_start_ws", _start_ws)  # noqa: B010 - instance override on purpose
    setattr(stream, "_consume", _consume)  # noqa: B010
    setattr(stream, "_wait_before_reconnect", _wait_before_reconnect)  # noqa: B010
    return stream


StreamFactory = Callable[[Signals, frozenset[str]], Any]


class Channel:
    """One stream connection (stocks, options or news) kept up by us.

    `factory(signals, symbols)` builds a supervised alpaca-py stream with its handlers subscribed;
    handlers call `note_data()` for every market-data message. With `silence_s`, a connection
    that receives nothing for that long while `expect_data()` is true is dropped and rebuilt.
    """

    def __init__(
        self,
        name: str,
        factory: StreamFactory,
        backoff: Backoff,
        silence_s: float | None = None,
        expect_data: Callable[[], bool] | None = None,
        symbols: Iterable[str] = (),
        login_timeout_s: float = 15.0,
    ) -> None:
        self.name = name
        self.login_timeout_s = login_timeout_s
        self._factory = factory
        self._backoff = backoff
        self.silence_s = silence_s
        self._expect_data = expect_data or (lambda: True)
        self._symbols = frozenset(symbols)
        self._has_symbols = asyncio.Event()
        if self._symbols:
            self._has_symbols.set()
        self._stream: Any = None
        self._last_data = 0.0
        self._had_data = False
        self.connected = False
        self.connects = 0
        self.drops = 0
        self.silent_drops = 0
        self.messages = 0
        self.last_drop_reason = ""

    @property
    def symbols(self) -> frozenset[str]:
        return self._symbols

    def note_data(self) -> None:
        """A market-data message arrived on this channel (resets the silence clock)."""
        self.messages += 1
        self._had_data = True
        self._last_data = asyncio.get_running_loop().time()

    def seconds_since_data(self) -> float | None:
        if not self.connected:
            return None
        return asyncio.get_running_loop().time() - self._last_data

    async def set_symbols(self, symbols: Iterable[str], channels: Iterable[str]) -> None:
        """Change the subscribed symbols; a live connection is re-subscribed in place."""
        new = frozenset(symbols)
        old = self._symbols
        self._symbols = new
        if new:
            self._has_symbols.set()
        else:
            self._has_symbols.clear()
        stream = self._stream
        if stream is None or not self.connected or new == old:
            return
        added, removed = new - old, old - new
        try:
            for channel in channels:
                handlers: dict[str, Any] = stream._handlers[channel]
                handler = next(iter(handlers.values()), None)
                for s in removed:
                    handlers.pop(s, None)
                if handler is not None:
                    for s in added:
                        handlers[s] = handler
                if removed:
                    await stream._send_unsubscribe_msg(channel, sorted(removed))
            if added:
                await stream._send_subscribe_msg()
        except Exception as exc:  # the next reconnect subscribes the new set anyway
            log.warning("re-subscribe failed", channel=self.name, error=repr(exc))

    async def run(self) -> None:
        """Connect, watch, reconnect after back-off; runs until cancelled."""
        failures = 0
        while True:
            await self._has_symbols.wait()
            signals = Signals()
            stream = self._factory(signals, self._symbols)
            self._stream = stream
            self._had_data = False
            task = asyncio.create_task(stream._run_forever())
            try:
                if await until_connected(task, signals, self.login_timeout_s):
                    self.connected = True
                    self.connects += 1
                    self._last_data = asyncio.get_running_loop().time()
                    log.info("stream connected", channel=self.name, symbols=len(self._symbols))
                    await self._until_down(task, signals)
            finally:
                self.connected = False
                self._stream = None
                error = await stop_stream(stream, task)
                if error is not None:
                    log.debug("stream task ended with an error", error=repr(error))
            if self._had_data:
                failures = 0
            failures += 1
            self.drops += 1
            self.last_drop_reason = signals.reason or "stream task ended"
            delay = self._backoff.delay(failures)
            log.warning(
                "stream down; reconnecting",
                channel=self.name,
                reason=self.last_drop_reason,
                retry_in_s=round(delay, 3),
            )
            await asyncio.sleep(delay)

    async def _until_down(self, task: asyncio.Task[Any], signals: Signals) -> None:
        loop = asyncio.get_running_loop()
        dropped = asyncio.ensure_future(signals.dropped.wait())
        check_s = None if self.silence_s is None else max(self.silence_s / 4, 0.01)
        try:
            while True:
                done, _ = await asyncio.wait(
                    {task, dropped}, timeout=check_s, return_when=asyncio.FIRST_COMPLETED
                )
                if done:
                    return
                assert self.silence_s is not None
                if not self._expect_data():
                    self._last_data = loop.time()
                    continue
                if loop.time() - self._last_data >= self.silence_s:
                    self.silent_drops += 1
                    signals.drop(f"no data for {self.silence_s:g} s")
                    return
        finally:
            dropped.cancel()
