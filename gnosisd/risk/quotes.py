"""Quotes and greeks of one chain snapshot by OCC symbol, for the guard's collar and greek checks.

A `QuoteBook` wraps the latest chain of an underlying and reads a contract's row once, on first
use, into a tuple of Python floats; later checks on the same snapshot are one dict lookup per leg.
When a new snapshot replaces the old one, the symbols the old book served (the open positions'
legs, recent orders' legs) are read from the new one in a single vectorised pass.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Final, NamedTuple, Protocol

import numpy as np

from gnosisd.bus.events import ChainSnapshot
from gnosisd.core.views import MarketView

_CARRY_MAX: Final = 512  # symbols carried over to the next snapshot of an underlying, at most


class ChainMarketView(MarketView, Protocol):
    """The market view the guard reads: data freshness and the latest chain per underlying."""

    def chain(self, symbol: str) -> ChainSnapshot | None: ...


class LegQuote(NamedTuple):
    """One contract's quote and per-share greeks (vega per 1.00 of vol, theta per year)."""

    bid: float
    ask: float
    two_sided: bool  # finite, uncrossed, ask > 0 (bid may be 0): usable for the collar
    delta: float
    gamma: float
    vega: float
    theta: float
    has_greeks: bool  # all four greeks finite

    @property
    def mid(self) -> float:
        return (self.bid + self.ask) / 2.0


def _quote(bid: float, ask: float, d: float, g: float, v: float, t: float) -> LegQuote:
    # Two-sided: finite and uncrossed; bid may be 0 (far out of the money), ask must be positive.
    two_sided = math.isfinite(bid + ask) and 0.0 <= bid <= ask and ask > 0.0
    return LegQuote(bid, ask, two_sided, d, g, v, t, math.isfinite(d + g + v + t))


class QuoteBook:
    """Quotes of one chain snapshot by symbol, cached per symbol on first read."""

    __slots__ = ("_cache", "chain", "spot")

    def __init__(self, chain: ChainSnapshot) -> None:
        self.chain = chain
        self.spot = float(chain.spot)
        self._cache: dict[str, LegQuote | None] = {}

    @property
    def cached(self) -> Mapping[str, LegQuote | None]:
        """The quotes read so far (None: not listed); `quote()` reads the rest."""
        return self._cache

    def symbols(self) -> list[str]:
        """The symbols read from this snapshot so far."""
        return list(self._cache)

    def quote(self, symbol: str) -> LegQuote | None:
        """The contract's row as floats, or None if the snapshot does not list it."""
        try:
            return self._cache[symbol]
        except KeyError:
            pass
        c = self.chain
        try:
            i = c.row(symbol)
        except KeyError:
            q: LegQuote | None = None
        else:
            q = _quote(
                float(c.bid[i]), float(c.ask[i]), float(c.delta[i]), float(c.gamma[i]),
                float(c.vega[i]), float(c.theta[i]),
            )  # fmt: skip
        self._cache[symbol] = q
        return q

    def prefetch(self, symbols: Iterable[str]) -> None:
        """Read many symbols at once (one fancy index per column instead of a read per cell)."""
        c = self.chain
        found: list[str] = []
        rows: list[int] = []
        for s in symbols:
            if s in self._cache:
                continue
            try:
                rows.append(c.row(s))
                found.append(s)
            except KeyError:
                self._cache[s] = None
        if not rows:
            return
        idx = np.asarray(rows, dtype=np.intp)
        columns = (c.bid, c.ask, c.delta, c.gamma, c.vega, c.theta)
        bid, ask, d, g, v, t = (col[idx].tolist() for col in columns)
        for k, s in enumerate(found):
            self._cache[s] = _quote(bid[k], ask[k], d[k], g[k], v[k], t[k])


class QuoteBooks:
    """One `QuoteBook` per underlying, rebuilt when the market view holds a newer chain object."""

    __slots__ = ("_books",)

    def __init__(self) -> None:
        self._books: dict[str, QuoteBook] = {}

    def get(self, market: ChainMarketView, underlying: str) -> QuoteBook | None:
        chain = market.chain(underlying)
        if chain is None:
            return None
        book = self._books.get(underlying)
        if book is None or book.chain is not chain:
            old = book
            book = QuoteBook(chain)
            if old is not None:
                book.prefetch(old.symbols()[-_CARRY_MAX:])
            self._books[underlying] = book
        return book
