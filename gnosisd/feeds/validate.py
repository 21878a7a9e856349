"""Boundary validation of market data: drop malformed events before they reach the bus.

`check(event, now_ns)` returns None for a valid event or the reason it is dropped; reasons are counted.
"""

from __future__ import annotations

import math
from collections import Counter
from enum import StrEnum

import numpy as np

from gnosisd.bus.events import Bar, ChainSnapshot, NewsItem, Quote, Trade
from gnosisd.core.clock import NS_PER_S
from gnosisd.core.errors import InvalidSymbolError
from gnosisd.core.occ import parse_occ


class DropReason(StrEnum):
    """Why an event was dropped (wire values appear in logs and run summaries)."""

    NAN = "nan"
    NON_POSITIVE_PRICE = "non_positive_price"
    CROSSED_QUOTE = "crossed_quote"
    FUTURE_TIMESTAMP = "future_timestamp"
    UNKNOWN_SYMBOL = "unknown_symbol"
    BAD_BAR = "bad_bar"  # high < low, open/close outside [low, high], negative volume
    BAD_SIZE = "bad_size"  # negative trade or quote size
    BAD_CHAIN = "bad_chain"
    BAD_NEWS = "bad_news"  # empty or non-text headline


class MarketDataValidator:
    """Validate quotes, trades, bars, chain snapshots and news items for a known set of underlyings.

    A chain snapshot is dropped when more than `max_bad_row_fraction` of its rows are bad
    (non-finite, crossed, negative bid, non-positive strike, negative time); bad rows of a kept
    snapshot are counted under `bad_chain_rows`.
    """

    def __init__(
        self,
        known_symbols: set[str],
        max_future_ns: int = 5 * NS_PER_S,
        max_bad_row_fraction: float = 0.05,
    ) -> None:
        self.known_symbols = frozenset(s.upper() for s in known_symbols)
        self.max_future_ns = max_future_ns
        self.max_bad_row_fraction = max_bad_row_fraction
        self.counts: Counter[str] = Counter()

    def check(self, event: object, now_ns: int) -> str | None:
        """Return None if `event` is valid, else the reason (also counted in `counts`)."""
        reason = self._reason(event, now_ns)
        if reason is not None:
            self.counts[reason.value] += 1
            return reason.value
        return None

    def _known(self, symbol: str) -> bool:
        if symbol in self.known_symbols:
            return True
        try:
            return parse_occ(symbol).underlying in self.known_symbols
        except InvalidSymbolError:
            return False

    def _reason(self, event: object, now_ns: int) -> DropReason | None:
        if isinstance(event, Quote):
            return self._quote(event, now_ns)
        if isinstance(event, Trade):
            return self._trade(event, now_ns)
        if isinstance(event, Bar):
            return self._bar(event, now_ns)
        if isinstance(event, ChainSnapshot):
            return self._chain(event, now_ns)
        if isinstance(event, NewsItem):
            return self._news(event, now_ns)
        return None

    def _common(self, symbol: str, ts_ns: int, now_ns: int) -> DropReason | None:
        if not self._known(symbol):
            return DropReason.UNKNOWN_SYMBOL
        if ts_ns > now_ns + self.max_future_ns:
            return DropReason.FUTURE_TIMESTAMP
        return None

    def _news(self, n: NewsItem, now_ns: int) -> DropReason | None:
        """A headline must name at least one known symbol (others may ride along: news often
        tags several tickers) and have text."""
        if n.ts_ns > now_ns + self.max_future_ns:
            return DropReason.FUTURE_TIMESTAMP
        if not any(self._known(s.upper()) for s in n.symbols):
            return DropReason.UNKNOWN_SYMBOL
        if not n.headline.strip():
            return DropReason.BAD_NEWS
        return None

    def _quote(self, q: Quote, now_ns: int) -> DropReason | None:
        if (r := self._common(q.symbol, q.ts_ns, now_ns)) is not None:
            return r
        if not all(math.isfinite(x) for x in (q.bid, q.ask, q.bid_size, q.ask_size)):
            return DropReason.NAN
        if q.ask <= 0.0 or q.bid < 0.0:
            return DropReason.NON_POSITIVE_PRICE
        if q.bid_size < 0.0 or q.ask_size < 0.0:
            return DropReason.BAD_SIZE
        if q.bid > q.ask:
            return DropReason.CROSSED_QUOTE
        return None

    def _trade(self, t: Trade, now_ns: int) -> DropReason | None:
        if (r := self._common(t.symbol, t.ts_ns, now_ns)) is not None:
            return r
        if not (math.isfinite(t.price) and math.isfinite(t.size)):
            return DropReason.NAN
        if t.price <= 0.0:
            return DropReason.NON_POSITIVE_PRICE
        if t.size < 0.0:
            return DropReason.BAD_SIZE
        return None

    def _bar(self, b: Bar, now_ns: int) -> DropReason | None:
        if (r := self._common(b.symbol, b.ts_ns, now_ns)) is not None:
            return r
        ohlc = (b.open, b.high, b.low, b.close)
        if not all(math.isfinite(x) for x in (*ohlc, b.volume)):
            return DropReason.NAN
        if min(ohlc) <= 0.0:
            return DropReason.NON_POSITIVE_PRICE
        if b.high < max(b.open, b.close, b.low) or b.low > min(b.open, b.close) or b.volume < 0.0:
            return DropReason.BAD_BAR
        return None

    def _chain(self, c: ChainSnapshot, now_ns: int) -> DropReason | None:
        if (r := self._common(c.underlying, c.ts_ns, now_ns)) is not None:
            return r
        if not (math.isfinite(c.spot) and math.isfinite(c.rate) and math.isfinite(c.div_yield)):
            return DropReason.NAN
        if c.spot <= 0.0:
            return DropReason.NON_POSITIVE_PRICE
        n = len(c)
        if n == 0:
            return None
        if len(c.expiries) == 0 or int(c.expiry_idx.min()) < 0:
            return DropReason.BAD_CHAIN
        if int(c.expiry_idx.max()) >= len(c.expiries):
            return DropReason.BAD_CHAIN
        finite = np.ones(n, dtype=np.bool_)
        for arr in (c.strike, c.t_years, c.bid, c.ask, c.iv, c.delta, c.gamma, c.vega, c.theta):
            finite &= np.isfinite(arr)
        with np.errstate(invalid="ignore"):
            ok = finite & (c.bid >= 0.0) & (c.bid <= c.ask) & (c.strike > 0.0) & (c.t_years >= 0.0)
        bad = int(n - np.count_nonzero(ok))
        if bad > self.max_bad_row_fraction * n:
            return DropReason.BAD_CHAIN
        if bad:
            self.counts["bad_chain_rows"] += bad
        return None
