"""The guard's trailing windows, in one object: `TrailingWindows`.

- orders per minute: every approved order (opening or closing) in the last 60 s;
- size: contracts and premium (integer cents) of approved opening orders in size_window_minutes;
- re-entry throttle: closing fills per trade key in reentry_window_minutes (a fill-and-re-enter
  loop shows here); the key of a fill comes from its approved intent or, for a close, from the
  position's opening fill, so a close counts against the strategy that opened it;
- duplicates: signatures of opening orders approved in duplicate_window_seconds (a re-sent
  intent under a new id).

A check makes two calls, `breach` before and `record` after an approval (the windows used to be
four objects and eight calls on every check: issue 5 item 15, a decision in < 50 µs at p99).
All windows run on clock time in ns and are pruned lazily on read: O(1) amortised.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from decimal import Decimal
from typing import Final

from gnosisd.bus.events import OrderFilled, SubmitOrder
from gnosisd.core.clock import NS_PER_S
from gnosisd.core.config import RiskConfig
from gnosisd.core.enums import PositionEffect, RiskReason, Side
from gnosisd.risk.limits import (
    NS_PER_MINUTE,
    Breach,
    OrderFacts,
    OrderSignature,
    TradeKey,
    cents_floor,
    cents_to_dollars,
    limit_ticks,
)

_MAX_REMEMBERED: Final = (
    10_000  # intents/positions remembered for fills; oldest dropped beyond this
)
_SWEEP_MIN: Final = 64  # the duplicate signatures are swept at this size at the earliest


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
    ticks = limit_ticks(intent.limit_price)
    if ticks is None:
        raise ValueError(f"limit price {intent.limit_price} is not a whole number of $0.0001")
    legs = tuple((leg.symbol, leg.side is Side.BUY, leg.ratio) for leg in intent.legs)
    return (
        intent.underlying.upper(),
        intent.effect is PositionEffect.OPEN,
        legs,
        intent.quantity,
        ticks,
    )


class TrailingWindows:
    """Every trailing-window limit of the guard (module docstring); limits from `risk`."""

    def __init__(self, risk: RiskConfig) -> None:
        self._risk = risk
        # Orders per minute.
        self._max_rate = risk.max_orders_per_minute
        self._rate: deque[int] = deque()
        # Size of opening orders: (ts, contracts, premium cents) and the running totals.
        self._size_ns = risk.size_window_minutes * NS_PER_MINUTE
        self._sizes: deque[tuple[int, int, int]] = deque()
        self._contracts = 0
        self._premium = 0
        self._max_contracts = risk.max_contracts_per_window
        self._max_premium = Decimal(repr(risk.max_premium_per_window))
        self._max_premium_cents = cents_floor(self._max_premium)
        # Re-entries: trade keys of approved intents and open positions (insertion-ordered with
        # O(1) eviction of the oldest), closing fill times per key.
        self._reentry_ns = risk.reentry_window_minutes * NS_PER_MINUTE
        self._max_reentries = risk.max_reentries
        self._intent_keys: OrderedDict[str, TradeKey] = OrderedDict()
        self._position_keys: OrderedDict[str, TradeKey] = OrderedDict()
        self._closes: dict[TradeKey, deque[int]] = {}
        # Duplicates. Expired signatures are dropped once the dict doubles since the last sweep
        # (at least _SWEEP_MIN): a small dict keeps the lookup in cache; amortised O(1).
        # Expired entries never match, so when they go changes no decision.
        self._dup_ns = int(Decimal(repr(risk.duplicate_window_seconds)) * NS_PER_S)
        self._seen: dict[OrderSignature, tuple[int, str]] = {}
        self._sweep_at = _SWEEP_MIN

    # ------------------------------------------------------------------ the hot path
    def breach(self, facts: OrderFacts, now_ns: int) -> Breach | None:
        """The first window an opening order would breach, in docs/risk.md's order, or None."""
        rate = self._rate
        cutoff = now_ns - NS_PER_MINUTE
        while rate and rate[0] <= cutoff:
            rate.popleft()
        if len(rate) >= self._max_rate:
            return RiskReason.RATE_LIMIT, (
                f"{len(rate)} orders approved in the last 60 s, "
                f"limit {self._risk.max_orders_per_minute}"
            )
        sizes = self._sizes
        cutoff = now_ns - self._size_ns
        while sizes and sizes[0][0] <= cutoff:
            _, n, p = sizes.popleft()
            self._contracts -= n
            self._premium -= p
        if (
            self._contracts + facts.contracts > self._max_contracts
            or self._premium + facts.premium_cents > self._max_premium_cents
        ):
            return self._size_detail(facts)
        stamps = self._closes.get(facts.key)
        if stamps:
            closes = self._prune_closes(stamps, now_ns)
            if closes > self._max_reentries:
                return self._reentry_detail(facts.key, closes)
        if self._dup_ns > 0:
            hit = self._seen.get(facts.signature)
            if hit is not None and hit[0] > now_ns - self._dup_ns:
                age = Decimal(now_ns - hit[0]) / NS_PER_S
                return RiskReason.DUPLICATE, (
                    f"same order as intent {hit[1]} approved {age:.1f} s ago "
                    f"(duplicate_window_seconds {self._risk.duplicate_window_seconds})"
                )
        return None

    def record(self, intent_id: str, facts: OrderFacts, now_ns: int) -> None:
        """Count an approved order (opening or closing) in every window it belongs to."""
        self._rate.append(now_ns)
        keys = self._intent_keys
        if len(keys) >= _MAX_REMEMBERED:
            keys.popitem(last=False)  # drop the oldest
        keys[intent_id] = facts.key
        if facts.opening:
            self._sizes.append((now_ns, facts.contracts, facts.premium_cents))
            self._contracts += facts.contracts
            self._premium += facts.premium_cents
            if self._dup_ns > 0:
                seen = self._seen
                if len(seen) >= self._sweep_at:
                    cutoff = now_ns - self._dup_ns
                    seen = self._seen = {k: v for k, v in seen.items() if v[0] > cutoff}
                    self._sweep_at = max(_SWEEP_MIN, 2 * len(seen))
                seen[facts.signature] = (now_ns, intent_id)

    # ------------------------------------------------------------------ fills and queries
    def on_fill(self, fill: OrderFilled) -> None:
        """Every fill: an opening fill keys its position, a closing fill counts a re-entry."""
        key = self._intent_keys.pop(fill.intent_id, None)
        if fill.effect is PositionEffect.OPEN:
            if key is None:
                key = (fill.underlying.upper(), "custom")
            positions = self._position_keys
            if len(positions) >= _MAX_REMEMBERED:
                positions.popitem(last=False)
            positions[fill.position_id] = key
            return
        key = self._position_keys.pop(fill.position_id, key)
        if key is not None:
            self._closes.setdefault(key, deque()).append(fill.ts_ns)

    def closes(self, key: TradeKey, now_ns: int) -> int:
        """Closing fills of `key` in (now - reentry window, now]."""
        stamps = self._closes.get(key)
        return self._prune_closes(stamps, now_ns) if stamps else 0

    def duplicate_of(self, signature: OrderSignature, now_ns: int) -> tuple[int, str] | None:
        """(ts_ns, intent_id) of an identical opening order approved within the window."""
        hit = self._seen.get(signature) if self._dup_ns > 0 else None
        return hit if hit is not None and hit[0] > now_ns - self._dup_ns else None

    @property
    def remembered_signatures(self) -> int:
        """Signatures held (live and not yet swept)."""
        return len(self._seen)

    def _prune_closes(self, stamps: deque[int], now_ns: int) -> int:
        cutoff = now_ns - self._reentry_ns
        while stamps and stamps[0] <= cutoff:
            stamps.popleft()
        return len(stamps)

    # ------------------------------------------------------------------ messages (cold)
    def _size_detail(self, facts: OrderFacts) -> Breach:
        risk = self._risk
        n = facts.contracts
        contracts = self._contracts
        if contracts + n > self._max_contracts:
            return RiskReason.WINDOW_CONTRACTS, (
                f"{contracts} contracts opened in the last {risk.size_window_minutes} min + {n} "
                f"exceeds the limit {risk.max_contracts_per_window}"
            )
        return RiskReason.WINDOW_PREMIUM, (
            f"premium ${cents_to_dollars(self._premium):,.2f} opened in the last "
            f"{risk.size_window_minutes} min + ${cents_to_dollars(facts.premium_cents):,.2f} "
            f"exceeds the limit ${self._max_premium:,.2f}"
        )

    def _reentry_detail(self, key: TradeKey, closes: int) -> Breach:
        risk = self._risk
        return RiskReason.REENTRY_THROTTLE, (
            f"{key[0]} {key[1]} was closed {closes} times in the last "
            f"{risk.reentry_window_minutes} min; at most {risk.max_reentries} re-entries"
        )
