"""Portfolio greeks in dollars, from positions (or an order's legs) × the latest chain's greeks.

Per contract the chain gives per-share greeks (vega per 1.00 of vol, theta per year); with n the
signed contracts (ratio × quantity, + long, − short), S the underlying's spot and 100 the
multiplier (Hull, Options, Futures and Other Derivatives, ch. 19, for the greeks):
  delta = Σ Δ × 100 × n × S            dollar delta (share-equivalent exposure in $)
  gamma = Σ Γ × 100 × n × S² / 100     dollar gamma: change of dollar delta for a 1% move
  vega  = Σ ν × 100 × n / 100          dollars per vol point (1% of implied vol)
  theta = Σ Θ × 100 × n / 365          dollars per calendar day
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from operator import is_

from gnosisd.bus.events import SubmitOrder
from gnosisd.core.enums import Side
from gnosisd.core.views import Position, PositionLeg
from gnosisd.risk.quotes import ChainMarketView, QuoteBook, QuoteBooks

GREEK_NAMES = ("delta", "gamma", "vega", "theta")


@dataclass(frozen=True, slots=True)
class Greeks:
    """Dollar greeks (units in the module docstring); `missing` counts legs without a quote."""

    delta: float = 0.0
    gamma: float = 0.0
    vega: float = 0.0
    theta: float = 0.0
    missing: int = 0

    def values(self) -> tuple[float, float, float, float]:
        return self.delta, self.gamma, self.vega, self.theta

    def __add__(self, other: Greeks) -> Greeks:
        return Greeks(
            self.delta + other.delta,
            self.gamma + other.gamma,
            self.vega + other.vega,
            self.theta + other.theta,
            self.missing + other.missing,
        )


class _Sum:
    __slots__ = ("d", "g", "missing", "t", "v")

    def __init__(self) -> None:
        self.d = self.g = self.v = self.t = 0.0
        self.missing = 0

    def add(self, book: QuoteBook | None, symbol: str, n: float) -> None:
        q = None if book is None else book.quote(symbol)
        if q is None or not q.has_greeks:
            self.missing += 1
            return
        assert book is not None
        s = book.spot
        self.d += q.delta * 100.0 * n * s
        self.g += q.gamma * n * s * s
        self.v += q.vega * n
        self.t += q.theta * 100.0 * n / 365.0

    def greeks(self) -> Greeks:
        return Greeks(self.d, self.g, self.v, self.t, self.missing)


def position_greeks(
    positions: Iterable[Position], book_of: Callable[[str], QuoteBook | None]
) -> Greeks:
    """Dollar greeks of open positions; a leg missing from its chain adds nothing (counted)."""
    acc = _Sum()
    for p in positions:
        book = book_of(p.underlying)
        for leg in p.legs:
            acc.add(book, leg.symbol, float(leg.ratio * p.quantity))
    return acc.greeks()


class PositionGreeks:
    """`position_greeks` with each position's greeks cached until its chain, quantity or legs
    change: a check then costs a few operations per position, not a quote lookup per leg."""

    __slots__ = ("_cache", "_last")

    def __init__(self) -> None:
        self._cache: dict[str, tuple[QuoteBook | None, int, tuple[PositionLeg, ...], Greeks]] = {}
        # The last total with the Position objects and the book of each of their underlyings
        # (held, so their identities cannot be reused): the same objects again give the same total.
        self._last: tuple[list[Position], dict[str, QuoteBook | None], Greeks] | None = None

    def total(
        self, positions: Sequence[Position], book_of: Callable[[str], QuoteBook | None]
    ) -> Greeks:
        last = self._last
        if (
            last is not None
            and len(last[0]) == len(positions)
            and all(map(is_, last[0], positions))
            and all(book_of(u) is b for u, b in last[1].items())
        ):
            return last[2]
        result, books = self._total(positions, book_of)
        self._last = (list(positions), books, result)
        return result

    def total_on(
        self,
        positions: Sequence[Position],
        books: QuoteBooks,
        market: ChainMarketView,
        current: tuple[str, QuoteBook] | None = None,
    ) -> Greeks:
        """`total` with each underlying's book from `books` on `market` (the guard's hot path:
        the cache check compares identities in a plain loop, no callable or generator).
        `current`: an (underlying, book) just taken from `books` on `market`, used as is."""
        last = self._last
        if last is not None:
            held = last[0]
            if len(held) == len(positions) and all(map(is_, held, positions)):
                for u, b in last[1].items():
                    if current is not None and u == current[0]:
                        if current[1] is not b:
                            break
                    elif books.get(market, u) is not b:
                        break
                else:
                    return last[2]
        return self.total(positions, lambda u: books.get(market, u))

    def _total(
        self, positions: Sequence[Position], book_of: Callable[[str], QuoteBook | None]
    ) -> tuple[Greeks, dict[str, QuoteBook | None]]:
        cache = self._cache
        books: dict[str, QuoteBook | None] = {}
        d = g = v = t = 0.0
        missing = 0
        for p in positions:
            u = p.underlying
            book = books[u] if u in books else books.setdefault(u, book_of(u))
            hit = cache.get(p.position_id)
            if (
                hit is not None
                and hit[0] is book
                and hit[1] == p.quantity
                and (hit[2] is p.legs or hit[2] == p.legs)
            ):
                one = hit[3]
            else:
                acc = _Sum()
                for leg in p.legs:
                    acc.add(book, leg.symbol, float(leg.ratio * p.quantity))
                one = acc.greeks()
                cache[p.position_id] = (book, p.quantity, p.legs, one)
            d += one.delta
            g += one.gamma
            v += one.vega
            t += one.theta
            missing += one.missing
        if len(cache) > 2 * len(positions) + 64:  # drop closed positions now and then
            live = {p.position_id for p in positions}
            self._cache = {k: e for k, e in cache.items() if k in live}
        return Greeks(d, g, v, t, missing), books


def order_greeks(intent: SubmitOrder, book: QuoteBook | None) -> Greeks:
    """Dollar greeks the order adds if it fills."""
    acc = _Sum()
    for leg in intent.legs:
        n = leg.ratio * intent.quantity
        acc.add(book, leg.symbol, float(n if leg.side is Side.BUY else -n))
    return acc.greeks()
