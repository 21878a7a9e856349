"""FakeAlpaca: REST, market-data and trading websockets on 127.0.0.1, scriptable for scenarios.

Point the real alpaca-py clients at `rest_url` (trading and data REST), `stream_url` (+ the feed's
path) and `trading_stream_url`. Scenarios: failed logins, refused or dropped connections, silent
sockets, HTTP faults (429, 5xx, no answer, delays), rejects, partial fills, expiries. The REST
paths are answered by `rest_routes`, the trading stream by `trading_stream`, market data by `market`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from gnosisd.bus.events import ChainSnapshot
from gnosisd.testing.fake_alpaca.bar_history import BarHistory
from gnosisd.testing.fake_alpaca.chain_data import contract_json, snapshot_json
from gnosisd.testing.fake_alpaca.http import HttpServer
from gnosisd.testing.fake_alpaca.market import MarketHub, kind_of_path
from gnosisd.testing.fake_alpaca.orders import FakeLeg, FakeOrder, FakePosition, dec_text, iso
from gnosisd.testing.fake_alpaca.rest_routes import HttpFault, RestRoutes
from gnosisd.testing.fake_alpaca.trading_stream import TradingClient, TradingHub

FillPolicy = Callable[["FakeAlpaca", FakeOrder], Awaitable[None]]


class FakeAlpaca:
    """All fake Alpaca servers; use as `async with FakeAlpaca() as fake:`."""

    def __init__(
        self,
        key: str = "test-key",
        secret: str = "test-secret",
        now_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.key = key
        self.secret = secret
        self.now_ns = now_ns
        self.market = MarketHub(key, secret)
        self._trading = TradingHub(key, secret)
        self._http = HttpServer(RestRoutes(self).route)
        self._ws: Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        # --- scenario knobs
        self.refuse: set[str] = set()  # stream kinds whose handshakes fail with HTTP 503
        # (reject_trading_auth is a property: the trading hub holds it)
        self.reject_rest_auth = False
        self.faults: list[HttpFault] = []
        self.fill_policy: FillPolicy | None = None
        # --- state
        self.account: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "account_number": "PA0000FAKE",
            "status": "ACTIVE",
            "currency": "USD",
            "cash": "100000",
            "buying_power": "200000",
            "options_buying_power": "100000",
            "equity": "100000",
            "last_equity": "100000",
            "portfolio_value": "100000",
            "options_trading_level": 3,
            "options_approved_level": 3,
            "trading_blocked": False,
            "account_blocked": False,
            "pattern_day_trader": False,
        }
        self.configuration: dict[str, Any] = {
            "dtbp_check": "entry",
            "fractional_trading": True,
            "max_margin_multiplier": "4",
            "no_shorting": False,
            "pdt_check": "entry",
            "suspend_trade": False,
            "trade_confirm_email": "all",
            "ptp_no_exception_entry": False,
            "max_options_trading_level": 3,
        }
        self.market_open = True
        self.orders: dict[str, FakeOrder] = {}
        self.positions: dict[str, FakePosition] = {}
        self.activities: list[dict[str, Any]] = []
        self.contracts: dict[str, dict[str, Any]] = {}  # OCC symbol -> contract JSON
        self.snapshots: dict[str, dict[str, Any]] = {}  # OCC symbol -> snapshot JSON
        self.stock_quotes: dict[str, dict[str, Any]] = {}
        self.bar_history: BarHistory | None = None  # daily stock and option bars (bar_history.py)
        self.requests: list[tuple[str, str]] = []  # (method, path) of every REST request
        self.duplicates_refused = 0  # POSTs refused for a client_order_id already used

    # ------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> FakeAlpaca:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        await self._http.start()
        self._ws = await serve(
            self._ws_handler,
            "127.0.0.1",
            0,
            process_request=self._ws_process_request,
            compression=None,
            ping_interval=None,
            close_timeout=1,
        )

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        if self._ws is not None:
            self._ws.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._ws.wait_closed(), 2.0)
        await self._http.close()

    @property
    def rest_url(self) -> str:
        """Trading and market-data REST base (ALPACA_BASE_URL and ALPACA_DATA_URL)."""
        return f"http://127.0.0.1:{self._http.port}"

    @property
    def stream_url(self) -> str:
        """Market-data streams base (ALPACA_DATA_STREAM_URL); the feed's path is added to it."""
        assert self._ws is not None
        port = self._ws.sockets[0].getsockname()[1]
        return f"ws://127.0.0.1:{port}"

    @property
    def trading_stream_url(self) -> str:
        return f"{self.stream_url}/stream"

    def spawn(self, coro: Awaitable[None]) -> None:
        """Run `coro` in the background (stopped with the fake)."""

        async def run() -> None:
            await coro

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ data set-up
    def load_chain(self, chain: ChainSnapshot, quote_ts_ns: int | None = None) -> None:
        """Serve `chain` through /v2/options/contracts and /v1beta1/options/snapshots."""
        stamp = iso(quote_ts_ns if quote_ts_ns is not None else chain.ts_ns)
        for i, symbol in enumerate(chain.symbols):
            self.contracts[symbol] = contract_json(chain, i)
            self.snapshots[symbol] = snapshot_json(chain, i, stamp)
        self.set_stock_quote(chain.underlying, chain.spot - 0.01, chain.spot + 0.01)

    def set_stock_quote(self, symbol: str, bid: float, ask: float) -> None:
        self.stock_quotes[symbol] = {
            "ap": ask,
            "as": 2,
            "ax": "V",
            "bp": bid,
            "bs": 3,
            "bx": "V",
            "c": ["R"],
            "t": iso(self.now_ns()),
            "z": "C",
        }

    # ------------------------------------------------------------------ scripting activities
    def add_option_activity(
        self, kind: str, symbol: str, qty: int, day: date | None = None, net_amount: str = "0"
    ) -> dict[str, Any]:
        """Record a non-trade option activity (OPASN, OPEXC or OPEXP) as Alpaca lists it; the
        option position it takes `qty` contracts from (if any) shrinks by that much."""
        when = day or datetime.fromtimestamp(self.now_ns() / 1e9, tz=UTC).date()
        position = self.positions.get(symbol)
        if position is not None and position.qty:
            taken = min(qty, abs(position.qty))
            position.apply(-taken if position.qty > 0 else taken, Decimal(0))
        activity = {
            "id": f"{when.strftime('%Y%m%d')}000000000::{uuid.uuid4()}",
            "activity_type": kind,
            "date": when.isoformat(),
            "net_amount": net_amount,
            "symbol": symbol,
            "qty": str(qty),
            "description": {"OPASN": "Option Assignment", "OPEXC": "Option Exercise"}.get(
                kind, "Option Expiry"
            ),
            "status": "executed",
        }
        self.activities.append(activity)
        return activity

    # ------------------------------------------------------------------ scripting orders
    def add_fault(self, fault: HttpFault) -> None:
        self.faults.append(fault)

    def order_by_client_id(self, client_order_id: str) -> FakeOrder | None:
        for order in self.orders.values():
            if order.client_order_id == client_order_id:
                return order
        return None

    async def wait_order(self, client_order_id: str, within_s: float = 5.0) -> FakeOrder:
        """Wait until an order with this client_order_id exists in the book."""
        deadline = asyncio.get_running_loop().time() + within_s
        while (order := self.order_by_client_id(client_order_id)) is None:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"no order {client_order_id} after {within_s} s")
            await asyncio.sleep(0.005)
        return order

    async def fill(
        self,
        order: FakeOrder,
        qty: int | None = None,
        leg_prices: dict[str, Decimal] | None = None,
    ) -> None:
        """Fill `qty` units (default: all that remain) at `leg_prices` (default: at the limit)."""
        units = order.remaining if qty is None else qty
        if not order.is_open or units <= 0 or units > order.remaining:
            raise ValueError(f"cannot fill {units} of order {order.id} ({order.status})")
        prices = leg_prices or _prices_at_limit(order)
        now = self.now_ns()
        for leg in order.legs:
            price = prices[leg.symbol]
            leg.filled_qty += leg.ratio * units
            leg.filled_value += leg.ratio * units * price
            self.positions.setdefault(leg.symbol, FakePosition(leg.symbol)).apply(
                leg.sign * leg.ratio * units, price
            )
        order.filled_qty += units
        order.updated_ns = now
        for leg in order.legs:
            self.activities.append(_fill_activity(order, leg, units, prices[leg.symbol], now))
        done = order.filled_qty == order.qty
        order.status = "filled" if done else "partially_filled"
        if done:
            order.filled_ns = now
        net = sum((leg.sign * leg.ratio * prices[leg.symbol] for leg in order.legs), Decimal(0))
        await self.send_trade_update(
            "fill" if done else "partial_fill",
            order,
            execution_id=str(uuid.uuid4()),
            price=dec_text(net),
            qty=str(units),
        )

    async def cancel(self, order: FakeOrder) -> None:
        order.status = "canceled"
        order.canceled_ns = order.updated_ns = self.now_ns()
        await self.send_trade_update("canceled", order)

    async def reject(self, order: FakeOrder, reason: str = "rejected by the fake") -> None:
        order.status = "rejected"
        order.failed_ns = order.updated_ns = self.now_ns()
        await self.send_trade_update("rejected", order)

    async def expire(self, order: FakeOrder) -> None:
        order.status = "expired"
        order.expired_ns = order.updated_ns = self.now_ns()
        await self.send_trade_update("expired", order)

    async def replace(self, order: FakeOrder, limit_price: Decimal) -> FakeOrder:
        """Replace an open order by a new one at `limit_price` (a new id, `replaces` set)."""
        new = FakeOrder(
            client_order_id=str(uuid.uuid4()),
            mleg=order.mleg,
            qty=order.remaining,
            limit_price=limit_price,
            order_type=order.order_type,
            legs=[_fresh_leg(leg) for leg in order.legs],
            created_ns=self.now_ns(),
            replaces=order.id,
        )
        order.status = "replaced"
        order.replaced_by = new.id
        order.updated_ns = self.now_ns()
        self.orders[new.id] = new
        await self.send_trade_update("replaced", order)
        await self.send_trade_update("new", new)
        return new

    async def send_trade_update(self, event: str, order: FakeOrder, **extra: str) -> None:
        """Send a trade_updates message to every listening trading-stream client."""
        data: dict[str, Any] = {"event": event, "order": order.to_json()}
        data["timestamp"] = iso(self.now_ns())
        if extra:
            positions = [self.positions.get(leg.symbol) for leg in order.legs]
            data["position_qty"] = str(positions[0].qty if positions[0] else 0)
            data.update(extra)
        await self._trading.send(data)

    # ------------------------------------------------------------------ streams
    async def disconnect(self, kind: str, abort: bool = False) -> int:
        """Close every connection of a stream kind: stocks, options, news or trading."""
        if kind != "trading":
            return await self.market.disconnect(kind, abort)
        return await self._trading.disconnect(abort)

    def trading_listening(self) -> bool:
        return self._trading.listening()

    @property
    def reject_trading_auth(self) -> bool:
        """Answer every trading-stream login with "unauthorized" while set."""
        return self._trading.reject_auth

    @reject_trading_auth.setter
    def reject_trading_auth(self, value: bool) -> None:
        self._trading.reject_auth = value

    @property
    def trading_clients(self) -> set[TradingClient]:
        """The authorised trading-stream connections."""
        return self._trading.clients

    @property
    def trading_connections(self) -> int:
        """Trading-stream logins accepted so far."""
        return self._trading.connections

    @property
    def trading_auth_failures(self) -> int:
        """Trading-stream logins refused so far."""
        return self._trading.auth_failures

    @property
    def trade_updates_sent(self) -> int:
        """trade_updates messages delivered so far (one per listening client)."""
        return self._trading.updates_sent

    def _ws_process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        kind = kind_of_path(request.path)
        if kind is None:
            return conn.respond(404, f"no stream at {request.path}\n")
        if kind in self.refuse:
            return conn.respond(503, "service unavailable\n")
        return None

    async def _ws_handler(self, conn: ServerConnection) -> None:
        assert conn.request is not None
        kind = kind_of_path(conn.request.path)
        try:
            if kind == "trading":
                await self._trading.handle(conn)
            elif kind is not None:
                await self.market.handle(conn, kind)
        except ConnectionClosed:
            pass


def _fill_activity(
    order: FakeOrder, leg: FakeLeg, units: int, price: Decimal, ts_ns: int
) -> dict[str, Any]:
    """A FILL account activity for one leg of a fill, as /v2/account/activities shows it."""
    qty = leg.ratio * units
    return {
        "id": f"{ts_ns // 1_000_000}::{uuid.uuid4()}",
        "activity_type": "FILL",
        "transaction_time": iso(ts_ns),
        "type": "fill" if order.filled_qty == order.qty else "partial_fill",
        "price": dec_text(price),
        "qty": str(qty),
        "side": leg.side,
        "symbol": leg.symbol,
        "leaves_qty": str(leg.ratio * order.remaining),
        "order_id": leg.id if order.mleg else order.id,  # a multi-leg order fills by leg order
        "cum_qty": str(leg.filled_qty),
        "order_status": "filled" if order.filled_qty == order.qty else "partially_filled",
    }


def _prices_at_limit(order: FakeOrder) -> dict[str, Decimal]:
    """Leg prices that net to the order's limit: later legs at |limit| + 1, the first one solved."""
    net = order.net_limit()
    if net is None:
        raise ValueError(f"order {order.id} has no limit price; give leg_prices")
    other = abs(net) + 1
    prices = {leg.symbol: other for leg in order.legs[1:]}
    first = order.legs[0]
    rest = sum((leg.sign * leg.ratio * other for leg in order.legs[1:]), Decimal(0))
    prices[first.symbol] = (net - rest) / (first.sign * first.ratio)
    return prices


def _fresh_leg(leg: FakeLeg) -> FakeLeg:
    return FakeLeg(
        symbol=leg.symbol, side=leg.side, ratio=leg.ratio, position_intent=leg.position_intent
    )
