"""Boundary conversion of raw Alpaca stream messages, and the reconnect back-off."""

from __future__ import annotations

import random

import pytest

from gnosisd.bus.events import Bar, NewsItem, Quote, Trade
from gnosisd.core.reconnect import Backoff
from gnosisd.feeds.alpaca.convert import to_bar, to_news, to_quote, to_trade
from gnosisd.testing.fake_alpaca import news, option_quote, stock_bar, stock_quote, stock_trade

T = 1_795_000_000_123_456_789


def test_messages_become_events_with_exact_nanoseconds() -> None:
    assert to_quote(stock_quote("SPY", 1.0, 1.1, T)) == Quote("SPY", T, 1.0, 1.1, 3.0, 2.0)
    assert to_quote(option_quote("SPY261218C00500000", 4.1, 4.2, T, 5, 6)) == Quote(
        "SPY261218C00500000", T, 4.1, 4.2, 5.0, 6.0
    )
    assert to_trade(stock_trade("SPY", 1.05, 100, T)) == Trade("SPY", T, 1.05, 100.0)
    assert to_bar(stock_bar("SPY", 1, 2, 0.5, 1.5, 10, T)) == Bar("SPY", T, 1, 2, 0.5, 1.5, 10)
    assert to_news(news(1, "h", ["SPY", "QQQ"], T)) == NewsItem(T, "h", ("SPY", "QQQ"))


@pytest.mark.parametrize(
    "msg",
    [
        {**stock_quote("SPY", 1.0, 1.1, T), "t": "2026-01-02T15:00:00Z"},
        {**stock_quote("SPY", 1.0, 1.1, T), "t": T},
        {**stock_quote("SPY", 1.0, 1.1, T), "bp": "1.0"},
        {**stock_quote("SPY", 1.0, 1.1, T), "bp": True},
        {k: v for k, v in stock_quote("SPY", 1.0, 1.1, T).items() if k != "as"},
        {**stock_quote("SPY", 1.0, 1.1, T), "S": ""},
        "not a dict",
    ],
)
def test_malformed_quotes_are_refused(msg: object) -> None:
    assert to_quote(msg) is None


def test_malformed_trades_bars_and_news_are_refused() -> None:
    assert to_trade({**stock_trade("SPY", 1, 1, T), "p": None}) is None
    assert to_bar({**stock_bar("SPY", 1, 2, 0.5, 1.5, 10, T), "v": "10"}) is None
    assert to_news({**news(1, "h", ["SPY"], T), "symbols": [1]}) is None
    assert to_news({**news(1, "h", ["SPY"], T), "created_at": "now"}) is None


def test_backoff_grows_exponentially_with_equal_jitter_up_to_the_cap() -> None:
    b = Backoff(1.0, 8.0, random.Random(0))
    for failures, full in ((1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (10, 8.0), (500, 8.0)):
        d = b.delay(failures)
        assert full / 2 <= d <= full
    with pytest.raises(ValueError, match="base_s"):
        Backoff(0.0, 1.0)
