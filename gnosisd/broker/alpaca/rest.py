"""alpaca-py's blocking TradingClient, called off the event loop, with failures sorted by meaning.

alpaca-py retries 429/504 itself with a 3 s sleep; that is switched off (`_retry = 0`) because a
retried POST after a 504 is exactly the ambiguous case gnosisd resolves by lookup instead. Every
request gets a timeout (alpaca-py sets none).
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Any

from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import QueryOrderStatus
from alpaca.trading.requests import GetOrdersRequest, LimitOrderRequest

from gnosisd.broker.alpaca.config import AlpacaCredentials, AlpacaEndpoints
from gnosisd.broker.alpaca.wire import WireOrder, parse_order


class Failure(StrEnum):
    """What a failed request means for the order it was about."""

    REFUSED = "refused"  # a definite 4xx: the broker will not do it
    DUPLICATE = "duplicate"  # client_order_id already used: the order exists
    RATE_LIMITED = "rate_limited"  # 429: not processed, safe to send again later
    NOT_FOUND = "not_found"
    NOT_CANCELABLE = "not_cancelable"  # 422 on DELETE: already terminal (or pending)
    AMBIGUOUS = "ambiguous"  # 5xx, timeout, dropped connection: it may or may not have happened


class RestError(Exception):
    def __init__(self, kind: Failure, status: int | None, message: str) -> None:
        super().__init__(f"{kind.value} ({status}): {message}")
        self.kind = kind
        self.status = status
        self.message = message


def classify(exc: BaseException, *, deleting: bool = False) -> RestError:
    """Sort an exception from alpaca-py / requests into a RestError."""
    if isinstance(exc, RestError):
        return exc
    if not isinstance(exc, APIError):
        return RestError(Failure.AMBIGUOUS, None, f"{type(exc).__name__}: {exc}")
    status = exc.status_code
    message = _message(exc)
    if status is None or status >= 500:
        return RestError(Failure.AMBIGUOUS, status, message)
    if status == 429:
        return RestError(Failure.RATE_LIMITED, status, message)
    if status == 404:
        return RestError(Failure.NOT_FOUND, status, message)
    if status == 422 and deleting:
        return RestError(Failure.NOT_CANCELABLE, status, message)
    if status == 422 and "client_order_id" in message and "unique" in message:
        return RestError(Failure.DUPLICATE, status, message)
    return RestError(Failure.REFUSED, status, message)


def _message(exc: APIError) -> str:
    try:
        body = json.loads(str(exc))
    except ValueError:
        return str(exc)
    if isinstance(body, dict) and "message" in body:
        return str(body["message"])
    return str(exc)


def harden(client: Any, timeout_s: float, retries: int = 0, retry_wait_s: float = 0.0) -> None:
    """Give every request of an alpaca-py REST client a timeout; set its own 429/504 retries."""
    session = client._session
    session.request = functools.partial(session.request, timeout=timeout_s)
    client._retry = retries
    client._retry_wait = retry_wait_s


class TradingRest:
    """The calls the broker needs, each awaited off the loop; failures raise RestError."""

    def __init__(
        self, endpoints: AlpacaEndpoints, credentials: AlpacaCredentials, timeout_s: float = 10.0
    ) -> None:
        self.client = TradingClient(
            credentials.api_key,
            credentials.secret_key,
            paper=not endpoints.is_live,
            raw_data=True,
            url_override=endpoints.trading_url,
        )
        harden(self.client, timeout_s)

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self.client._session.close()

    async def _call(self, fn: Callable[[], Any], *, deleting: bool = False) -> Any:
        try:
            return await asyncio.to_thread(fn)
        except Exception as exc:
            raise classify(exc, deleting=deleting) from exc

    async def submit(self, request: LimitOrderRequest) -> WireOrder:
        return parse_order(await self._call(lambda: self.client.submit_order(request)))

    async def order_by_client_id(self, client_order_id: str) -> WireOrder | None:
        """The order with this client_order_id, None if the broker has none (404)."""
        try:
            raw = await self._call(lambda: self.client.get_order_by_client_id(client_order_id))
        except RestError as err:
            if err.kind is Failure.NOT_FOUND:
                return None
            raise
        return parse_order(raw)

    async def order(self, order_id: str) -> WireOrder | None:
        try:
            raw = await self._call(lambda: self.client.get_order_by_id(order_id))
        except RestError as err:
            if err.kind is Failure.NOT_FOUND:
                return None
            raise
        return parse_order(raw)

    async def cancel(self, order_id: str) -> None:
        await self._call(lambda: self.client.cancel_order_by_id(order_id), deleting=True)

    async def orders(self, after: datetime | None = None, limit: int = 500) -> list[WireOrder]:
        """Orders of any status submitted after `after` (newest first), legs nested."""
        req = GetOrdersRequest(status=QueryOrderStatus.ALL, after=after, limit=limit, nested=True)
        raw = await self._call(lambda: self.client.get_orders(req))
        return [parse_order(r) for r in raw]

    async def account(self) -> dict[str, Any]:
        raw: dict[str, Any] = await self._call(self.client.get_account)
        return raw

    async def positions(self) -> list[dict[str, Any]]:
        raw: list[dict[str, Any]] = await self._call(self.client.get_all_positions)
        return raw

    async def open_orders(self, limit: int = 500) -> list[WireOrder]:
        """Every order still open at the broker (legs nested)."""
        req = GetOrdersRequest(status=QueryOrderStatus.OPEN, limit=limit, nested=True)
        raw = await self._call(lambda: self.client.get_orders(req))
        return [parse_order(r) for r in raw]

    async def fill_activities(self, after: datetime, page_size: int = 100) -> list[dict[str, Any]]:
        """FILL account activities after `after`, oldest first (alpaca-py 0.44 has no call for
        /v2/account/activities: its generic GET is used, paged by `page_token`)."""
        out: list[dict[str, Any]] = []
        params: dict[str, Any] = {
            "activity_types": "FILL",
            "after": after.isoformat(),
            "direction": "asc",
            "page_size": page_size,
        }
        while True:
            get = functools.partial(self.client.get, "/account/activities", dict(params))
            raw = await self._call(get)
            page = [a for a in raw if isinstance(a, dict)] if isinstance(raw, list) else []
            out.extend(page)
            if len(page) < page_size or "id" not in page[-1]:
                return out
            params["page_token"] = page[-1]["id"]
