"""Trailing windows of the guard: size of approved opening orders, re-entries, repeated intents.

All windows run on clock time in ns and are pruned lazily on read, so a check is O(1) amortised.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from decimal import Decimal

from gnosisd.bus.events import OrderFilled, SubmitOrder
from gnosisd.core.enums import PositionEffect, Side

NS_PER_MINUTE = 60 * 1_000_000_000
_MAX_REMEMBERED = 10_000  # intents/positions remembered for fills; oldest dropped beyond this
_SWEEP_MIN = 64  # RecentOrders sweeps its expired signatures at this size at the earliest

# (underlying, strategy): what "the same trade" means for the re-entry throttle
TradeKey = tuple[str, str]
# (underlying, opening, legs as (symbol, bought, ratio), quantity, limit in ticks of $0.0001):
# what "the same order" means for duplicates (1.5 and 1.50 are the same limit)
OrderSignature = tuple[str, bool, tuple[tuple[str, bool, int], ...], int, int]


def order_contracts(intent: SubmitOrder) -> int:
    """Contracts the order trades: Σ leg ratio × quantity."""
    return sum(leg.ratio for leg in intent.legs) * intent.quantity


def order_premium(intent: SubmitOrder) -> Decimal:
    """Dollars of premium the order moves: |net limit| × quantity × 100."""
    return abs(intent.limit_price) * intent.quantity * 100


def trade_key(intent: SubmitOrder) -> TradeKey:
    """The re-entry key: underlying and strategy ("custom" when the intent names none, as the
    ledger records it)."""
    return intent.underlying.upper(), intent.strategy_type or "custom"


def order_signature(intent: SubmitOrder) -> OrderSignature:
    """The duplicate key of an intent (`limits.inspect_order` derives the same in its pass)."""
    legs = tuple((leg.symbol, leg.side is Side.BUY, leg.ratio) for leg in intent.legs)
    ticks = intent.limit_price.scaleb(4)
    if ticks != ticks.to_integral_value():
        raise ValueError(f"limit price {intent.limit_price} is not a whole number of $0.0001")
    return (
        intent.underlying.upper(),
        intent.effect is PositionEffect.OPEN,
        legs,
        intent.quantity,
        int(ticks),
    )


class SizeWindow:
    """Contracts and premium (integer cents) of the approved opening orders in a trailing window."""

    def __init__(self, window_ns: int) -> None:
        self._window = window_ns
        self._items: deque[tuple[int, int, int]] = deque()
        self._contracts = 0
        self._premium = 0

    def totals(self, now_ns: int) -> tuple[int, int]:
        """(contracts, premium cents) approved in (now - window, now]."""
        items = self._items
        while items and items[0][0] <= now_ns - self._window:
            _, n, p = items.popleft()
            self._contracts -= n
            self._premium -= p
        return self._contracts, self._premium

    def record(self, now_ns: int, contracts: int, premium: int) -> None:
        self._items.append((now_ns, contracts, premium))
        self._contracts += contracts
        self._premium += premium


class ReentryThrottle:
    """Closing fills per trade key in a trailing window: a fill-and-re-enter loop shows here.

    The key of a fill comes from the approved intent (`remember`) or, for a close, from the
    position's opening fill, so a close is counted against the strategy that opened it.
    """

    def __init__(self, window_ns: int) -> None:
        self._window = window_ns
        # Insertion-ordered with O(1) eviction of the oldest (a plain dict's next(iter(d)) scans
        # the deleted slots at its front: O(n) per eviction once full).
        self._intent_keys: OrderedDict[str, TradeKey] = OrderedDict()
        self._position_keys: OrderedDict[str, TradeKey] = OrderedDict()
        self._closes: dict[TradeKey, deque[int]] = {}

    def remember(self, intent_id: str, key: TradeKey) -> None:
        """Note the trade key of an approved intent, for its fill."""
        keys = self._intent_keys  # _bounded_put, inline: this runs on every approval
        if len(keys) >= _MAX_REMEMBERED:
            keys.popitem(last=False)  # drop the oldest
        keys[intent_id] = key

    def on_fill(self, fill: OrderFilled) -> None:
        key = self._intent_keys.pop(fill.intent_id, None)
        if fill.effect is PositionEffect.OPEN:
            if key is None:
                key = (fill.underlying.upper(), "custom")
            _bounded_put(self._position_keys, fill.position_id, key)
            return
        key = self._position_keys.pop(fill.position_id, key)
        if key is not None:
            self._closes.setdefault(key, deque()).append(fill.ts_ns)

    def closes(self, key: TradeKey, now_ns: int) -> int:
        """Closing fills of `key` in (now - window, now]."""
        stamps = self._closes.get(key)
        if not stamps:
            return 0
        while stamps and stamps[0] <= now_ns - self._window:
            stamps.popleft()
        return len(stamps)


class RecentOrders:
    """Signatures of recently approved opening orders (a re-sent intent under a new id)."""

    def __init__(self, window_ns: int) -> None:
        self._window = window_ns
        self._seen: dict[OrderSignature, tuple[int, str]] = {}
        # Expired signatures are dropped once the dict doubles since the last sweep (at least
        # _SWEEP_MIN): a small dict keeps the lookup on every check in cache; amortised O(1).
        # Expired entries never match, so when they go changes no decision.
        self._sweep_at = _SWEEP_MIN

    def match(self, signature: OrderSignature, now_ns: int) -> tuple[int, str] | None:
        """(ts_ns, intent_id) of an identical order approved within the window, if any."""
        if self._window <= 0:
            return None
        hit = self._seen.get(signature)
        if hit is None or hit[0] <= now_ns - self._window:
            return None
        return hit

    def record(self, signature: OrderSignature, intent_id: str, now_ns: int) -> None:
        if self._window <= 0:
            return
        if len(self._seen) >= self._sweep_at:
            cutoff = now_ns - self._window
            self._seen = {k: v for k, v in self._seen.items() if v[0] > cutoff}
            self._sweep_at = max(_SWEEP_MIN, 2 * len(self._seen))
        self._seen[signature] = (now_ns, intent_id)


def _bounded_put(d: OrderedDict[str, TradeKey], k: str, v: TradeKey) -> None:
    if len(d) >= _MAX_REMEMBERED:
        d.popitem(last=False)  # drop the oldest
    d[k] = v
