"""The fake trade_updates websocket (`/stream`): JSON authenticate → authorization, listen →
listening, then the trade updates `FakeAlpaca` sends to every client that listens.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed


@dataclass(eq=False, slots=True)
class TradingClient:
    """One authorised trading-stream connection."""

    conn: ServerConnection
    listening: bool = False


class TradingHub:
    """Trading-stream sessions and their counters (`FakeAlpaca` exposes them as trading_*)."""

    def __init__(self, key: str, secret: str) -> None:
        self.key = key
        self.secret = secret
        self.reject_auth = False
        self.clients: set[TradingClient] = set()
        self.connections = 0
        self.auth_failures = 0
        self.updates_sent = 0

    async def handle(self, conn: ServerConnection) -> None:
        """Run one session: authenticate, then answer `listen` until the client goes."""
        msg = json.loads(await conn.recv())
        data = msg.get("data") or {}
        ok = (
            msg.get("action") in ("authenticate", "auth")
            and data.get("key_id") == self.key
            and data.get("secret_key") == self.secret
            and not self.reject_auth
        )
        status = "authorized" if ok else "unauthorized"
        reply = {"stream": "authorization", "data": {"action": "authenticate", "status": status}}
        await conn.send(json.dumps(reply))
        if not ok:
            self.auth_failures += 1
            await conn.close()
            return
        client = TradingClient(conn)
        self.clients.add(client)
        self.connections += 1
        try:
            async for raw in conn:
                msg = json.loads(raw)
                if msg.get("action") == "listen":
                    streams = list((msg.get("data") or {}).get("streams") or [])
                    client.listening = "trade_updates" in streams
                    await conn.send(
                        json.dumps({"stream": "listening", "data": {"streams": streams}})
                    )
        finally:
            self.clients.discard(client)

    def listening(self) -> bool:
        """Whether any client listens to trade_updates."""
        return any(c.listening for c in self.clients)

    async def send(self, data: dict[str, Any]) -> None:
        """Send a trade_updates message with `data` to every listening client."""
        text = json.dumps({"stream": "trade_updates", "data": data})
        for client in [c for c in self.clients if c.listening]:
            with contextlib.suppress(ConnectionClosed):
                await client.conn.send(text)
                self.updates_sent += 1

    async def disconnect(self, abort: bool = False) -> int:
        """Close (or with `abort`, drop) every trading connection; return how many there were."""
        victims = list(self.clients)
        for client in victims:
            if abort:
                client.conn.transport.abort()
            else:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.conn.close(), 1.0)
        return len(victims)
