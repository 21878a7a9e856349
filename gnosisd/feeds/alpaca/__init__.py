"""Alpaca market data: supervised stock, option and news streams and REST chain snapshots.

Only this package and gnosisd.broker.alpaca import alpaca-py (an import-linter contract).
"""

from gnosisd.core.reconnect import Backoff
from gnosisd.feeds.alpaca.chains import ChainQuery, ChainSource
from gnosisd.feeds.alpaca.feed import AlpacaFeed, AlpacaFeedConfig, nearest_contracts
from gnosisd.feeds.alpaca.supervisor import Channel

__all__ = [
    "AlpacaFeed",
    "AlpacaFeedConfig",
    "Backoff",
    "ChainQuery",
    "ChainSource",
    "Channel",
    "nearest_contracts",
]
