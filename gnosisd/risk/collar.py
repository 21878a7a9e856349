"""The price collar: an order's net limit must lie within its legs' bid/ask band (plus slack).

Per share, signed like SubmitOrder.limit_price (+ debit, − credit). For one unit of the order:
natural = Σ buy ratio × ask − Σ sell ratio × bid (the marketable price, the worst for us),
far = Σ buy ratio × bid − Σ sell ratio × ask (the best price the book shows), and each leg may sit
up to `tolerance + tolerance_pct × mid` outside its quote, so the band is
[far − slack, natural + slack] with slack = Σ ratio × (tolerance + tolerance_pct × mid).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from gnosisd.bus.events import SubmitOrder
from gnosisd.core.enums import Side
from gnosisd.risk.quotes import LegQuote, QuoteBook

# Float rounding never rejects a limit that sits exactly on the band's edge.
EPSILON: Final = 1e-9
_UNREAD: Final = LegQuote(0.0, 0.0, False, 0.0, 0.0, 0.0, 0.0, False)  # a sentinel: not read yet


@dataclass(frozen=True, slots=True)
class Band:
    """The accepted net limit prices of one unit of an order, per share."""

    low: float
    high: float
    far: float
    natural: float


def collar_band(
    intent: SubmitOrder, book: QuoteBook, tolerance: float, tolerance_pct: float
) -> Band | str:
    """The order's band, or the symbol of the first leg without a two-sided quote."""
    legs = tuple((leg.symbol, leg.side is Side.BUY, leg.ratio) for leg in intent.legs)
    edges = band_of(legs, book, tolerance, tolerance_pct)
    return edges if isinstance(edges, str) else Band(*edges)


def band_of(
    legs: Sequence[tuple[str, bool, int]], book: QuoteBook, tolerance: float, tolerance_pct: float
) -> tuple[float, float, float, float] | str:
    """`collar_band` on (symbol, bought, ratio) legs as (low, high, far, natural) floats."""
    far = natural = slack = 0.0
    for symbol, bought, r in legs:
        q = book.quote(symbol)
        if q is None or not q.two_sided:
            return symbol
        bid = q.bid
        ask = q.ask
        slack += r * (tolerance + tolerance_pct * (bid + ask) / 2.0)
        if bought:
            natural += r * ask
            far += r * bid
        else:
            natural -= r * bid
            far -= r * ask
    return far - slack, natural + slack, far, natural


def band_and_greeks(
    legs: Sequence[tuple[str, bool, int]],
    quantity: int,
    book: QuoteBook,
    tolerance: float,
    tolerance_pct: float,
) -> tuple[float, float, float, float, float, float, float, float] | str:
    """`band_of` and the dollar greeks the order adds (greeks.order_greeks), one quote read per
    leg: (low, high, far, natural, delta, gamma, vega, theta), or the symbol of the first leg
    without a two-sided quote. A leg without greeks adds none (as in order_greeks)."""
    far = natural = slack = 0.0
    d = g = v = t = 0.0
    spot = book.spot
    cached = book.cached
    for symbol, bought, r in legs:
        q = cached.get(symbol, _UNREAD)  # the book's cache first: no call when already read
        if q is _UNREAD:
            q = book.quote(symbol)
        if q is None:
            return symbol
        bid, ask, two_sided, q_d, q_g, q_v, q_t, has_greeks = q
        if not two_sided:
            return symbol
        slack += r * (tolerance + tolerance_pct * (bid + ask) / 2.0)
        n = r * quantity
        if bought:
            natural += r * ask
            far += r * bid
        else:
            natural -= r * bid
            far -= r * ask
            n = -n
        if has_greeks:  # the same arithmetic as greeks._Sum.add
            x = float(n)
            d += q_d * 100.0 * x * spot
            g += q_g * x * spot * spot
            v += q_v * x
            t += q_t * 100.0 * x / 365.0
    return far - slack, natural + slack, far, natural, d, g, v, t


def outside(limit: float, band: Band, *, through_only: bool) -> bool:
    """True if `limit` is outside the band (`through_only`: only beyond the natural side)."""
    if limit > band.high + EPSILON:
        return True
    return not through_only and limit < band.low - EPSILON
