"""Alpaca market data: supervised stock, option and news streams and REST chain snapshots.

Only this package and gnosisd.broker.alpaca import alpaca-py (an import-linter contract).
"""

from gnosisd.core.reconnect import Backoff
from gnosisd.feeds.alpaca.chains import ChainQuery, ChainSource
from gnosisd.feeds.alpaca.feed import AlpacaFeed, AlpacaFeedConfig, nearest_contracts
from gnosisd.feeds.alpaca.iv_history import (
    IVHistoryQuery,
    IVHistorySource,
    backfill_iv_history,
    source_for,
)
from gnosisd.feeds.alpaca.supervisor import Channel

__all__ = [
    "AlpacaFeed",
    "AlpacaFeedConfig",
    "Backoff",
    "ChainQuery",
    "ChainSource",
    "Channel",
    "IVHistoryQuery",
    "IVHistorySource",
    "backfill_iv_history",
    "nearest_contracts",
    "source_for",
]
