"""Fake Alpaca market-data websockets (stocks, options, news): msgpack frames, msgpack Timestamps.

Wire format as alpaca-py 0.44 expects it (alpaca/data/live/websocket.py): every server frame is a
msgpack array of dicts; timestamps are msgpack Timestamp ext objects, never strings.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

import msgpack
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

# Message type T -> subscription channel (alpaca/data/live/websocket.py _CHANNEL_TYPES).
CHANNELS = {
    "t": "trades",
    "q": "quotes",
    "b": "bars",
    "u": "updatedBars",
    "d": "dailyBars",
    "s": "statuses",
    "l": "lulds",
    "n": "news",
    "o": "orderbooks",
}
MARKET_KINDS = ("stocks", "options", "news")


def kind_of_path(path: str) -> str | None:
    """The stream kind a websocket path serves: stocks, options, news or trading."""
    if path in ("/v2/iex", "/v2/sip", "/v2/test", "/v2/delayed_sip"):
        return "stocks"
    if path in ("/v1beta1/indicative", "/v1beta1/opra"):
        return "options"
    if path == "/v1beta1/news":
        return "news"
    if path == "/stream":
        return "trading"
    return None


def ts(ns: int) -> msgpack.Timestamp:
    """A msgpack Timestamp (ext type -1), the only timestamp form alpaca-py decodes."""
    return msgpack.Timestamp.from_unix_nano(ns)


def stock_quote(
    symbol: str, bid: float, ask: float, ts_ns: int, bid_size: float = 3, ask_size: float = 2
) -> dict[str, Any]:
    return {
        "T": "q",
        "S": symbol,
        "bx": "V",
        "bp": bid,
        "bs": bid_size,
        "ax": "V",
        "ap": ask,
        "as": ask_size,
        "t": ts(ts_ns),
        "c": ["R"],
        "z": "C",
    }


def stock_trade(symbol: str, price: float, size: float, ts_ns: int) -> dict[str, Any]:
    return {
        "T": "t",
        "S": symbol,
        "i": 52983525029461,
        "x": "V",
        "p": price,
        "s": size,
        "t": ts(ts_ns),
        "c": ["@"],
        "z": "C",
    }


def stock_bar(
    symbol: str, o: float, h: float, lo: float, c: float, volume: float, ts_ns: int
) -> dict[str, Any]:
    return {
        "T": "b",
        "S": symbol,
        "o": o,
        "h": h,
        "l": lo,
        "c": c,
        "v": volume,
        "t": ts(ts_ns),
        "n": 321,
        "vw": (o + c) / 2,
    }


def option_quote(
    symbol: str, bid: float, ask: float, ts_ns: int, bid_size: float = 10, ask_size: float = 12
) -> dict[str, Any]:
    return {
        "T": "q",
        "S": symbol,
        "t": ts(ts_ns),
        "bx": "C",
        "bp": bid,
        "bs": bid_size,
        "ax": "C",
        "ap": ask,
        "as": ask_size,
        "c": "A",
    }


def option_trade(symbol: str, price: float, size: float, ts_ns: int) -> dict[str, Any]:
    return {"T": "t", "S": symbol, "t": ts(ts_ns), "p": price, "s": size, "x": "C", "c": "I"}


def news(
    news_id: int, headline: str, symbols: list[str], ts_ns: int, summary: str = ""
) -> dict[str, Any]:
    return {
        "T": "n",
        "id": news_id,
        "headline": headline,
        "summary": summary,
        "author": "fake",
        "created_at": ts(ts_ns),
        "updated_at": ts(ts_ns),
        "url": "https://example.invalid/news",
        "content": "",
        "symbols": symbols,
        "source": "benzinga",
    }


@dataclass(eq=False)
class MarketClient:
    """One authenticated market-data connection and what it subscribed to."""

    conn: ServerConnection
    kind: str
    subs: dict[str, set[str]] = field(default_factory=dict)

    def wants(self, msg: dict[str, Any]) -> bool:
        channel = CHANNELS.get(str(msg.get("T")))
        if channel is None:
            return True  # unknown or malformed frames go to everyone (tests send them on purpose)
        subscribed = self.subs.get(channel, set())
        if "*" in subscribed:
            return True
        if channel == "news":
            return bool(subscribed.intersection(msg.get("symbols") or []))
        return msg.get("S") in subscribed


class MarketHub:
    """The market-data side of the fake: authentication, subscriptions, scripted publishing."""

    def __init__(self, key: str, secret: str) -> None:
        self.key = key
        self.secret = secret
        self.clients: set[MarketClient] = set()
        self.reject_auth: set[str] = set()  # kinds whose next logins fail ("auth failed", 402)
        self.silent: set[str] = set()  # kinds that stay connected but send no data
        self.mute_login: set[str] = set()  # kinds that accept the socket and never say a word
        self.connections: dict[str, int] = dict.fromkeys(MARKET_KINDS, 0)  # authenticated logins
        self.auth_failures: dict[str, int] = dict.fromkeys(MARKET_KINDS, 0)
        self.subscribe_messages: list[tuple[str, dict[str, Any]]] = []

    async def handle(self, conn: ServerConnection, kind: str) -> None:
        if kind in self.mute_login:
            await conn.wait_closed()
            return
        await conn.send(msgpack.packb([{"T": "success", "msg": "connected"}]))
        msg = msgpack.unpackb(await conn.recv())
        ok = (
            isinstance(msg, dict)
            and msg.get("action") == "auth"
            and msg.get("key") == self.key
            and msg.get("secret") == self.secret
            and kind not in self.reject_auth
        )
        if not ok:
            self.auth_failures[kind] += 1
            await conn.send(msgpack.packb([{"T": "error", "code": 402, "msg": "auth failed"}]))
            await conn.close()
            return
        await conn.send(msgpack.packb([{"T": "success", "msg": "authenticated"}]))
        client = MarketClient(conn, kind)
        self.clients.add(client)
        self.connections[kind] += 1
        try:
            async for raw in conn:
                self._on_message(client, msgpack.unpackb(raw))
                await conn.send(msgpack.packb([self._ack(client)]))
        except ConnectionClosed:
            pass
        finally:
            self.clients.discard(client)

    def _on_message(self, client: MarketClient, msg: Any) -> None:
        if not isinstance(msg, dict):
            return
        action = msg.get("action")
        self.subscribe_messages.append((client.kind, dict(msg)))
        for channel in CHANNELS.values():
            symbols = msg.get(channel)
            if not isinstance(symbols, list):
                continue
            current = client.subs.setdefault(channel, set())
            if action == "subscribe":
                current.update(str(s) for s in symbols)
            elif action == "unsubscribe":
                current.difference_update(str(s) for s in symbols)

    @staticmethod
    def _ack(client: MarketClient) -> dict[str, Any]:
        ack: dict[str, Any] = {"T": "subscription"}
        for channel, symbols in client.subs.items():
            ack[channel] = sorted(symbols)
        return ack

    def subscribed(self, kind: str, channel: str, symbol: str) -> bool:
        """True if some live connection of `kind` subscribed `symbol` on `channel`."""
        return any(
            c.kind == kind and symbol in c.subs.get(channel, set()) for c in list(self.clients)
        )

    async def publish(self, kind: str, msgs: list[dict[str, Any]]) -> int:
        """Send `msgs` (one frame per connection) to subscribers of `kind`; return frames sent."""
        if kind in self.silent:
            return 0
        sent = 0
        for client in [c for c in self.clients if c.kind == kind]:
            wanted = [m for m in msgs if client.wants(m)]
            if wanted:
                with contextlib.suppress(ConnectionClosed):
                    await client.conn.send(msgpack.packb(wanted))
                    sent += 1
        return sent

    async def publish_raw(self, kind: str, frame: bytes) -> None:
        """Send an arbitrary binary frame (e.g. undecodable bytes) to every connection of `kind`."""
        for client in [c for c in self.clients if c.kind == kind]:
            with contextlib.suppress(ConnectionClosed):
                await client.conn.send(frame)

    async def disconnect(self, kind: str, abort: bool = False) -> int:
        """Close every connection of `kind` (a clean close, or a dropped TCP connection)."""
        victims = [c for c in self.clients if c.kind == kind]
        for client in victims:
            if abort:
                client.conn.transport.abort()
            else:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.conn.close(), 1.0)
        return len(victims)
