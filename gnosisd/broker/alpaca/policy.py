"""The execution policy: start at mid, walk toward the natural price within a collar, then cancel.

For a structure priced as a signed net (debit > 0), mid = Σ sign × ratio × leg mid and natural =
Σ buys at the ask − Σ sells at the bid, so natural >= mid and "walking" always means raising the
net. Prices: `steps` evenly spaced from mid to cap = min(approved limit, mid + collar × (natural −
mid)), each floored to the tick; each rests `step_seconds`; after the last, the order is cancelled.
The approved limit is never exceeded. Each step is a new attempt after the previous one is
confirmed terminal, so at most one order of an intent is ever working; legs are never sent apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from gnosisd.broker.alpaca.orders import TICK, floor_tick
from gnosisd.bus.events import ChainSnapshot, SubmitOrder
from gnosisd.core.enums import Side


@dataclass(frozen=True, slots=True)
class ExecutionPolicy:
    """Tunables of the walk (defaults: four prices over one minute, halfway to natural)."""

    steps: int = 4
    step_seconds: float = 15.0
    collar_fraction: Decimal = Decimal("0.5")  # share of the mid->natural distance we may give up
    tick: Decimal = TICK
    cancel_confirm_seconds: float = 5.0  # wait for a cancel's trade_update before asking REST
    max_submit_tries: int = 4  # POSTs of one attempt (same client_order_id) before giving up
    retry_seconds: float = 1.0  # first back-off after 429 or an unresolved outcome (doubles)

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"execution policy steps must be >= 1, got {self.steps}")
        if not Decimal(0) <= self.collar_fraction <= Decimal(1):
            raise ValueError(f"collar_fraction must be in [0, 1], got {self.collar_fraction}")
        if self.step_seconds <= 0 or self.cancel_confirm_seconds <= 0:
            raise ValueError("step_seconds and cancel_confirm_seconds must be positive")

    @property
    def timeout_seconds(self) -> float:
        """How long an intent works at most before its last attempt is cancelled."""
        return self.steps * self.step_seconds


@dataclass(frozen=True, slots=True)
class Ladder:
    """The prices of an intent's attempts, and the market they were derived from."""

    mid: Decimal
    natural: Decimal
    cap: Decimal
    prices: tuple[Decimal, ...]
    leg_mids: Mapping[str, Decimal] = field(default_factory=dict)


def _dec(x: float) -> Decimal:
    return Decimal(repr(float(x)))


def price_ladder(
    intent: SubmitOrder, chain: ChainSnapshot, policy: ExecutionPolicy
) -> Ladder | str:
    """The walk's prices for `intent` against `chain`, or why it cannot be priced."""
    mid = Decimal(0)
    natural = Decimal(0)
    leg_mids: dict[str, Decimal] = {}
    for leg in intent.legs:
        try:
            i = chain.row(leg.symbol)
        except KeyError:
            return f"leg {leg.symbol} is not in the {chain.underlying} chain"
        bid, ask = float(chain.bid[i]), float(chain.ask[i])
        if not (bid == bid and ask == ask) or ask <= 0 or bid < 0 or bid > ask:
            return f"leg {leg.symbol} has no usable quote (bid {bid}, ask {ask})"
        b, a = _dec(bid), _dec(ask)
        sign = 1 if leg.side is Side.BUY else -1
        leg_mids[leg.symbol] = (b + a) / 2
        mid += sign * leg.ratio * leg_mids[leg.symbol]
        natural += leg.ratio * (a if leg.side is Side.BUY else -b)
    limit = floor_tick(intent.limit_price, policy.tick)
    cap = min(limit, mid + policy.collar_fraction * (natural - mid))
    if policy.steps == 1 or cap <= mid:
        points = [min(mid, limit)]
    else:
        n = policy.steps - 1
        points = [mid + (cap - mid) * k / n for k in range(policy.steps)]
    prices: list[Decimal] = []
    for p in points:
        q = min(floor_tick(p, policy.tick), limit)
        if not prices or q > prices[-1]:
            prices.append(q)
    return Ladder(mid=mid, natural=natural, cap=cap, prices=tuple(prices), leg_mids=leg_mids)
