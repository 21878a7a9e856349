"""Fake Alpaca servers (REST, market-data and trading websockets) for tests of the real alpaca-py client.

`FakeAlpaca` (`server`) starts everything on 127.0.0.1; REST answers live in `rest_routes`, the
trade_updates stream in `trading_stream`, message builders in `market`, the order book in `orders`. Nothing here imports alpaca: it is the other end of the wire.
"""

from gnosisd.testing.fake_alpaca.http import HttpRequest, HttpResponse
from gnosisd.testing.fake_alpaca.market import (
    news,
    option_quote,
    option_trade,
    stock_bar,
    stock_quote,
    stock_trade,
    ts,
)
from gnosisd.testing.fake_alpaca.orders import FakeLeg, FakeOrder, FakePosition
from gnosisd.testing.fake_alpaca.rest_routes import HttpFault
from gnosisd.testing.fake_alpaca.server import FakeAlpaca, FillPolicy

__all__ = [
    "FakeAlpaca",
    "FakeLeg",
    "FakeOrder",
    "FakePosition",
    "FillPolicy",
    "HttpFault",
    "HttpRequest",
    "HttpResponse",
    "news",
    "option_quote",
    "option_trade",
    "stock_bar",
    "stock_quote",
    "stock_trade",
    "ts",
]
