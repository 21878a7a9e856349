"""The price collar: an order's net limit must lie within its legs' bid/ask band (plus slack).

Per share, signed like SubmitOrder.limit_price (+ debit, − credit). For one unit of the order:
natural = Σ buy ratio × ask − Σ sell ratio × bid (the marketable price, the worst for us),
far = Σ buy ratio × bid − Σ sell ratio × ask (the best price the book shows), and each leg may sit
up to `tolerance + tolerance_pct × mid` outside its quote, so the band is
[far − slack, natural + slack] with slack = Σ ratio × (tolerance + tolerance_pct × mid).
"""

from __future__ import annotations

from dataclasses import dataclass

from gnosisd.bus.events import SubmitOrder
from gnosisd.core.enums import Side
from gnosisd.risk.quotes import QuoteBook

# Float rounding never rejects a limit that sits exactly on the band's edge.
EPSILON = 1e-9


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
    far = natural = slack = 0.0
    for leg in intent.legs:
        q = book.quote(leg.symbol)
        if q is None or not q.two_sided:
            return leg.symbol
        r = leg.ratio
        slack += r * (tolerance + tolerance_pct * (q.bid + q.ask) / 2.0)
        if leg.side is Side.BUY:
            natural += r * q.ask
            far += r * q.bid
        else:
            natural -= r * q.bid
            far -= r * q.ask
    return Band(far - slack, natural + slack, far, natural)


def outside(limit: float, band: Band, *, through_only: bool) -> bool:
    """True if `limit` is outside the band (`through_only`: only beyond the natural side)."""
    if limit > band.high + EPSILON:
        return True
    return not through_only and limit < band.low - EPSILON
