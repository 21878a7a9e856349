"""Fake Alpaca servers (REST, market-data and trading websockets) for tests of the real alpaca-py client.

`FakeAlpaca` starts everything on 127.0.0.1; message builders live in `market`, the order book in
`orders`. Nothing here imports alpaca: it is the other end of the wire.
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
from gnosisd.testing.fake_alpaca.server import FakeAlpaca, FillPolicy, HttpFault

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
