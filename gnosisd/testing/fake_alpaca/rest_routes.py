"""The fake Alpaca REST API: scripted faults and the key check first, then the trading and
market-data paths gnosisd uses, answered from (and applied to) a `FakeAlpaca`'s state.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from gnosisd.core.occ import parse_occ
from gnosisd.testing.fake_alpaca.bar_history import BAR_PATHS
from gnosisd.testing.fake_alpaca.http import HttpRequest, HttpResponse
from gnosisd.testing.fake_alpaca.orders import FakeOrder, OrderRequestError, parse_order_request

if TYPE_CHECKING:
    from gnosisd.testing.fake_alpaca.server import FakeAlpaca


@dataclass(slots=True)
class HttpFault:
    """A scripted REST failure for requests matching `method` and a `path` prefix.

    `status` answers with that HTTP status (an Alpaca error body); `drop` closes the connection
    without an answer; `apply` processes the request first (the order exists, the client cannot
    know); `delay_s` waits before answering. Used `times` times, then removed.
    """

    method: str
    path: str
    status: int | None = None
    drop: bool = False
    apply: bool = False
    delay_s: float = 0.0
    times: int = 1


class RestRoutes:
    """Answer `FakeAlpaca`'s HTTP requests (the handler of its `HttpServer`) from its state."""

    def __init__(self, fake: FakeAlpaca) -> None:
        self._fake = fake

    async def route(self, req: HttpRequest) -> HttpResponse | None:
        """Answer one request (None: drop the connection without an answer)."""
        fake = self._fake
        fake.requests.append((req.method, req.path))
        fault = self._take_fault(req)
        if fault is not None and fault.delay_s:
            await asyncio.sleep(fault.delay_s)
        if (
            fake.reject_rest_auth
            or req.headers.get("apca-api-key-id") != fake.key
            or req.headers.get("apca-api-secret-key") != fake.secret
        ):
            return HttpResponse.error(401, 40110000, "request is not authorized")
        if fault is not None and not fault.apply and (fault.drop or fault.status is not None):
            return _fault_response(fault)
        response = await self._dispatch(req)
        if fault is not None and (fault.drop or fault.status is not None):
            return _fault_response(fault)
        return response

    def _take_fault(self, req: HttpRequest) -> HttpFault | None:
        fake = self._fake
        for fault in fake.faults:
            if fault.method.upper() == req.method and req.path.startswith(fault.path):
                fault.times -= 1
                if fault.times <= 0:
                    fake.faults.remove(fault)
                return fault
        return None

    async def _dispatch(self, req: HttpRequest) -> HttpResponse:
        fake = self._fake
        m, p, q = req.method, req.path, req.query
        if p == "/v2/account" and m == "GET":
            return HttpResponse.json(200, fake.account)
        if p == "/v2/account/configurations":
            if m == "PATCH":
                fake.configuration.update(req.json() or {})
            return HttpResponse.json(200, fake.configuration)
        if p == "/v2/account/activities" and m == "GET":
            return HttpResponse.json(200, self._activities(q))
        if p == "/v2/clock" and m == "GET":
            return HttpResponse.json(200, self._clock())
        if p == "/v2/positions" and m == "GET":
            return HttpResponse.json(200, [x.to_json() for x in fake.positions.values() if x.qty])
        if p == "/v2/orders" and m == "POST":
            return self._submit(req.json())
        if p == "/v2/orders" and m == "GET":
            return HttpResponse.json(200, self._list_orders(q))
        if p == "/v2/orders" and m == "DELETE":
            return HttpResponse.json(207, await self._cancel_all())
        if p == "/v2/orders:by_client_order_id" and m == "GET":
            order = fake.order_by_client_id(q.get("client_order_id", ""))
            if order is None:
                return HttpResponse.error(404, 40410000, "order not found")
            return HttpResponse.json(200, order.to_json())
        if p.startswith("/v2/orders/"):
            order = fake.orders.get(p.removeprefix("/v2/orders/"))
            if order is None:
                return HttpResponse.error(404, 40410000, "order not found")
            if m == "GET":
                return HttpResponse.json(200, order.to_json())
            if m == "DELETE":
                if not order.is_open:
                    return HttpResponse.error(422, 42210000, "order is not cancelable")
                fake.spawn(fake.cancel(order))
                return HttpResponse(204)
        if p == "/v2/options/contracts" and m == "GET":
            return HttpResponse.json(200, self._contracts(q))
        if p.startswith("/v1beta1/options/snapshots") and m == "GET":
            return HttpResponse.json(200, self._snapshots(p, q))
        if p == "/v1beta1/options/quotes/latest" and m == "GET":
            wanted = [s for s in q.get("symbols", "").split(",") if s in fake.snapshots]
            quotes = {s: fake.snapshots[s]["latestQuote"] for s in wanted}
            return HttpResponse.json(200, {"quotes": quotes})
        if p in BAR_PATHS and m == "GET":  # historical daily bars (stocks and options)
            if fake.bar_history is None:
                return HttpResponse.json(200, {"bars": {}, "next_page_token": None})
            return HttpResponse.json(200, fake.bar_history.answer(p, q))
        if p == "/v2/stocks/quotes/latest" and m == "GET":
            wanted = [s for s in q.get("symbols", "").split(",") if s in fake.stock_quotes]
            return HttpResponse.json(200, {"quotes": {s: fake.stock_quotes[s] for s in wanted}})
        return HttpResponse.error(404, 40410000, f"endpoint not found: {m} {p}")

    def _activities(self, q: dict[str, str]) -> list[dict[str, Any]]:
        """Account activities, filtered by `activity_types` and `after`, paged by `page_token`."""
        fake = self._fake
        rows = list(fake.activities)
        types = set(filter(None, q.get("activity_types", "").split(",")))
        if types:
            rows = [a for a in rows if a.get("activity_type") in types]
        if "after" in q:
            after = datetime.fromisoformat(q["after"].replace("Z", "+00:00"))
            rows = [
                a
                for a in rows
                if "transaction_time" not in a
                or datetime.fromisoformat(a["transaction_time"].replace("Z", "+00:00")) > after
            ]
        if q.get("direction", "desc") == "desc":
            rows.reverse()
        token = q.get("page_token")
        if token:
            ids = [a.get("id") for a in rows]
            rows = rows[ids.index(token) + 1 :] if token in ids else []
        return rows[: int(q.get("page_size") or 100)]

    def _clock(self) -> dict[str, Any]:
        fake = self._fake
        now = datetime.fromtimestamp(fake.now_ns() / 1e9, tz=UTC)
        return {
            "timestamp": now.isoformat(),
            "is_open": fake.market_open,
            "next_open": (now + timedelta(hours=18)).isoformat(),
            "next_close": (now + timedelta(hours=2)).isoformat(),
        }

    def _submit(self, body: Any) -> HttpResponse:
        fake = self._fake
        try:
            order = parse_order_request(
                body, fake.now_ns(), lambda s: not fake.contracts or s in fake.contracts
            )
        except OrderRequestError as exc:
            return HttpResponse.error(exc.status, exc.code, str(exc))
        if fake.order_by_client_id(order.client_order_id) is not None:
            fake.duplicates_refused += 1
            return HttpResponse.error(422, 40010001, "client_order_id must be unique")
        fake.orders[order.id] = order
        fake.spawn(self._after_submit(order))
        return HttpResponse.json(200, order.to_json())

    async def _after_submit(self, order: FakeOrder) -> None:
        fake = self._fake
        order.status = "new"
        await fake.send_trade_update("new", order)
        if fake.fill_policy is not None:
            await fake.fill_policy(fake, order)

    def _list_orders(self, q: dict[str, str]) -> list[dict[str, Any]]:
        fake = self._fake
        status = q.get("status", "open")
        orders = sorted(fake.orders.values(), key=lambda o: o.created_ns, reverse=True)
        if q.get("direction") == "asc":
            orders.reverse()
        if status == "open":
            orders = [o for o in orders if o.is_open]
        elif status == "closed":
            orders = [o for o in orders if not o.is_open]
        if "after" in q:
            after = datetime.fromisoformat(q["after"].replace("Z", "+00:00")).timestamp() * 1e9
            orders = [o for o in orders if o.created_ns > after]
        limit = int(q.get("limit", "50") or 50)
        return [o.to_json() for o in orders[:limit]]

    async def _cancel_all(self) -> list[dict[str, Any]]:
        fake = self._fake
        out = []
        for order in [o for o in fake.orders.values() if o.is_open]:
            await fake.cancel(order)
            out.append({"id": order.id, "status": 200, "body": order.to_json()})
        return out

    def _contracts(self, q: dict[str, str]) -> dict[str, Any]:
        fake = self._fake
        wanted = set(filter(None, q.get("underlying_symbols", "").split(",")))
        lo = _date_or(q.get("expiration_date_gte"), date.min)
        hi = _date_or(q.get("expiration_date_lte"), date.max)
        rows = [
            c
            for c in fake.contracts.values()
            if (not wanted or c["underlying_symbol"] in wanted)
            and lo <= date.fromisoformat(c["expiration_date"]) <= hi
        ]
        rows.sort(key=lambda c: c["symbol"])
        start = int(q.get("page_token") or 0)
        limit = int(q.get("limit") or 100)
        page = rows[start : start + limit]
        token = str(start + limit) if start + limit < len(rows) else None
        return {"option_contracts": page, "next_page_token": token}

    def _snapshots(self, path: str, q: dict[str, str]) -> dict[str, Any]:
        fake = self._fake
        underlying = path.removeprefix("/v1beta1/options/snapshots").strip("/")
        if underlying:
            lo = _date_or(q.get("expiration_date_gte"), date.min)
            hi = _date_or(q.get("expiration_date_lte"), date.max)
            k_lo = float(q.get("strike_price_gte") or 0.0)
            k_hi = float(q.get("strike_price_lte") or float("inf"))
            symbols = []
            for s in sorted(fake.snapshots):
                c = parse_occ(s)
                if c.underlying == underlying and lo <= c.expiry <= hi and k_lo <= c.strike <= k_hi:
                    symbols.append(s)
        else:
            symbols = [s for s in q.get("symbols", "").split(",") if s in fake.snapshots]
        start = int(q.get("page_token") or 0)
        limit = int(q.get("limit") or 100)
        page = symbols[start : start + limit]
        token = str(start + limit) if start + limit < len(symbols) else None
        return {"snapshots": {s: fake.snapshots[s] for s in page}, "next_page_token": token}


def _fault_response(fault: HttpFault) -> HttpResponse | None:
    if fault.drop:
        return None
    assert fault.status is not None
    return HttpResponse.error(fault.status, fault.status * 100000, f"fake fault {fault.status}")


def _date_or(text: str | None, default: date) -> date:
    return date.fromisoformat(text) if text else default
