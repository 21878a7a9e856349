"""The trade_updates stream under gnosisd's supervision: reconnect with exponential backoff + jitter.

alpaca-py's TradingStream reconnects by itself and never replays what was missed; here its own
reconnect is intercepted (the task parks and is cancelled), a fresh stream is built after our
back-off, and `on_up` runs after every (re)connect so the broker can catch up over REST.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from alpaca.trading.stream import TradingStream
from websockets.exceptions import WebSocketException

from gnosisd.broker.alpaca.config import AlpacaCredentials, AlpacaEndpoints
from gnosisd.core.reconnect import WEBSOCKET_PARAMS, Backoff, Signals, stop_stream, until_connected

log = logging.getLogger("gnosisd.broker.alpaca.stream")


class _SupervisedTradingStream(TradingStream):
    """TradingStream whose own reconnect loop reports to us and parks instead of retrying."""

    def __init__(self, signals: Signals, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._gn = signals

    async def _start_ws(self) -> None:
        try:
            await super()._start_ws()  # type: ignore[no-untyped-call]
        except Exception as exc:
            self._gn.drop(f"connect/auth failed: {exc!r}")
            raise
        self._gn.connected.set()

    async def _consume(self) -> None:
        try:
            await super()._consume()  # type: ignore[no-untyped-call]
        except WebSocketException as exc:  # other errors (a bad message) keep the connection
            self._gn.drop(f"connection lost: {exc!r}")
            raise

    async def _wait_before_reconnect(self, retries: int) -> None:
        self._gn.drop("stream wants to reconnect")
        await asyncio.Event().wait()  # parked until the supervisor cancels this task


class TradingStreamSupervisor:
    """Keep one trade_updates connection up; `up` is True only while it is connected."""

    def __init__(
        self,
        endpoints: AlpacaEndpoints,
        credentials: AlpacaCredentials,
        handler: Callable[[Any], Awaitable[None]],
        on_up: Callable[[], Awaitable[None]],
        backoff: Backoff | None = None,
        login_timeout_s: float = 15.0,
    ) -> None:
        self._endpoints = endpoints
        self._login_timeout_s = login_timeout_s
        self._credentials = credentials
        self._handler = handler
        self._on_up = on_up
        self._backoff = backoff or Backoff()
        self.up_event = asyncio.Event()  # set while connected
        self.connects = 0
        self.drops = 0
        self.last_drop_reason = ""
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def up(self) -> bool:
        return self.up_event.is_set()

    async def run(self) -> None:
        """Connect, watch, reconnect after back-off; runs until cancelled."""
        failures = 0
        try:
            while True:
                signals = Signals()
                stream = _SupervisedTradingStream(
                    signals,
                    api_key=self._credentials.api_key,
                    secret_key=self._credentials.secret_key,
                    paper=not self._endpoints.is_live,
                    raw_data=True,
                    url_override=self._endpoints.trading_stream_url,
                    websocket_params=dict(WEBSOCKET_PARAMS),
                )
                stream.subscribe_trade_updates(self._handler)
                task = asyncio.create_task(stream._run_forever())  # type: ignore[no-untyped-call]
                try:
                    if await until_connected(task, signals, self._login_timeout_s):
                        failures = 0
                        self.connects += 1
                        self.up_event.set()
                        log.info("trade_updates stream connected")
                        self._spawn(self._on_up())
                        await self._until_dropped(task, signals)
                finally:
                    self.up_event.clear()
                    error = await stop_stream(stream, task)
                    if error is not None:
                        log.debug("trade_updates stream task ended with %r", error)
                failures += 1
                self.drops += 1
                self.last_drop_reason = signals.reason or "stream task ended"
                delay = self._backoff.delay(failures)
                log.warning(
                    "trade_updates stream down (%s); reconnecting in %.2f s",
                    self.last_drop_reason,
                    delay,
                )
                await asyncio.sleep(delay)
        finally:
            for t in list(self._tasks):
                t.cancel()

    def _spawn(self, coro: Awaitable[None]) -> None:
        async def run() -> None:
            try:
                await coro
            except Exception:
                log.exception("trade_updates catch-up failed")

        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _until_dropped(task: asyncio.Task[None], signals: Signals) -> None:
        dropped = asyncio.ensure_future(signals.dropped.wait())
        try:
            await asyncio.wait({task, dropped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            dropped.cancel()
