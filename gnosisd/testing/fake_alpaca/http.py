"""A minimal asyncio HTTP/1.1 server (keep-alive, Content-Length bodies) for the fake Alpaca REST API.

Enough for `requests`, which alpaca-py's REST clients use; a handler may return None to drop the
connection without answering (an ambiguous outcome for the client).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any) -> HttpResponse:
        return cls(status, json.dumps(payload).encode())

    @classmethod
    def error(cls, status: int, code: int, message: str) -> HttpResponse:
        """An Alpaca-style error body: {"code": ..., "message": ...}."""
        return cls.json(status, {"code": code, "message": message})


HttpHandler = Callable[[HttpRequest], Awaitable[HttpResponse | None]]


class HttpServer:
    """Serve `handler` on 127.0.0.1; `port` is known after start()."""

    def __init__(self, handler: HttpHandler) -> None:
        self._handler = handler
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = await asyncio.start_server(self._serve, host, port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                request = await self._read(reader)
                if request is None:
                    return
                response = await self._handler(request)
                if response is None:
                    writer.transport.abort()  # no answer at all: the client cannot tell what happened
                    return
                writer.write(_encode(response))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            return
        finally:
            self._writers.discard(writer)
            writer.close()

    @staticmethod
    async def _read(reader: asyncio.StreamReader) -> HttpRequest | None:
        line = await reader.readline()
        if not line.strip():
            return None
        method, target, _ = line.decode("latin-1").split(" ", 2)
        headers: dict[str, str] = {}
        while True:
            raw = await reader.readline()
            if raw in (b"\r\n", b"\n", b""):
                break
            name, _, value = raw.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0") or 0)
        body = await reader.readexactly(length) if length else b""
        url = urlsplit(target)
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        return HttpRequest(method.upper(), unquote(url.path), query, headers, body)


def _encode(response: HttpResponse) -> bytes:
    reason = HTTPStatus(response.status).phrase
    lines = [f"HTTP/1.1 {response.status} {reason}"]
    headers = {"Content-Length": str(len(response.body)), **response.headers}
    if response.body:
        headers["Content-Type"] = response.content_type
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + response.body
