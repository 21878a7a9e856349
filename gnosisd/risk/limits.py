"""Pure limit checks: order validation and the guard's own max-loss recomputation.

Max loss comes from `quant.profile.structure_max_loss` (exactly `structure_bounds(...).max_loss`,
the bounds the trade agent sizes with) on the intent's legs (with their expiries) and limit price,
never from numbers the agent attached; a single-expiry order goes straight to its exact integer
core, `max_loss_ticks` (prices and strikes in ticks of $0.0001, the loss in cents).
`inspect_order` validates an intent and derives everything a check needs in one pass
(`OrderFacts`); `assess_order` is its outcome as a value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_FLOOR, Decimal
from functools import lru_cache
from typing import Final

from gnosisd.bus.events import SubmitOrder
from gnosisd.core.enums import OptionType, PositionEffect, RiskReason, Side
from gnosisd.core.errors import InvalidSymbolError
from gnosisd.core.money import ZERO
from gnosisd.core.occ import parse_occ
from gnosisd.quant.payoff import bounded_below
from gnosisd.quant.profile import ExpiryLeg, structure_max_loss

NS_PER_MINUTE: Final = 60 * 1_000_000_000

Breach = tuple[RiskReason, str]  # a rejection: the reason and its message
# (underlying, strategy): what "the same trade" means for the re-entry throttle
TradeKey = tuple[str, str]
# (underlying, opening, legs as (symbol, bought, ratio), quantity, limit in ticks of $0.0001):
# what "the same order" means for duplicates (1.5 and 1.50 are the same limit)
OrderSignature = tuple[str, bool, tuple[tuple[str, bool, int], ...], int, int]
# The guard's unit of price: $0.0001 (every listed option price and strike is a whole number of
# them). Per share in ticks × the multiplier 100 = cents per contract, so the guard's money
# arithmetic (max loss, premium, caps, windows) is exact in plain ints.
TICKS_PER_DOLLAR: Final = 10_000

# Enum members read on every check (per leg), bound once: on Python 3.11 reading a member
# through its class (`Side.BUY`) goes through the enum metaclass (~70 ns), a module global does not.
_BUY: Final = Side.BUY
_CALL: Final = OptionType.CALL
_OPEN: Final = PositionEffect.OPEN

# The guard sees the same few hundred symbols all day: parse each once (the result is frozen).
_parse_occ = lru_cache(maxsize=8192)(parse_occ)


@dataclass(frozen=True, slots=True)
class OrderRisk:
    """Validation outcome: `reason` is APPROVED when the order is well formed.

    `max_loss` is total dollars (per-share loss × 100 × quantity, <= 0), None if unbounded.
    """

    reason: RiskReason
    detail: str
    max_loss: Decimal | None


def payoff_legs(intent: SubmitOrder) -> list[ExpiryLeg]:
    """The intent's legs as signed legs with their expiries (+ratio bought, -ratio sold)."""
    return [
        ExpiryLeg(
            is_call=leg.option_type is OptionType.CALL,
            strike=leg.strike,
            ratio=leg.ratio if leg.side is Side.BUY else -leg.ratio,
            expiry=leg.expiry,
        )
        for leg in intent.legs
    ]


def _leg_problem(intent: SubmitOrder) -> str | None:
    """The first problem of the intent's legs, in leg order, or None if they are well formed."""
    seen: set[str] = set()
    for leg in intent.legs:
        if leg.symbol in seen:
            return f"leg {leg.symbol} appears twice"
        seen.add(leg.symbol)
        if leg.ratio <= 0:
            return f"leg {leg.symbol} has ratio {leg.ratio}; ratios must be >= 1"
        if not leg.strike.is_finite() or leg.strike <= 0:
            return f"leg {leg.symbol} has strike {leg.strike}; strikes must be positive"
        try:
            contract = _parse_occ(leg.symbol)
        except InvalidSymbolError as exc:
            return str(exc)
        # The payoff is computed from the leg fields, the broker trades the symbol: they must agree.
        if (
            contract.underlying != intent.underlying.upper()
            or contract.strike != leg.strike
            or contract.expiry != leg.expiry
            or contract.option_type is not leg.option_type
        ):
            return (
                f"leg {leg.symbol} does not match its fields ({intent.underlying} {leg.expiry} "
                f"{leg.option_type} {leg.strike})"
            )
    return None


# underlying, strike, expiry, type, strike in ticks of $0.0001
ContractFields = tuple[str, Decimal, date, OptionType, int]
_INVALID: Final[ContractFields] = (
    "",
    ZERO,
    date.min,
    OptionType.CALL,
    0,
)  # not a usable OCC symbol
# The guard sees the same few hundred symbols all day: each symbol's fields, read once.
_FIELDS: Final[dict[str, ContractFields]] = {}


def _contract_fields(symbol: str) -> ContractFields:
    """The symbol's parsed fields, or _INVALID if it does not parse or its strike is not > 0."""
    try:
        c = _parse_occ(symbol)
    except InvalidSymbolError:
        fields = _INVALID
    else:
        strike = c.strike
        ticks = int(strike * TICKS_PER_DOLLAR)  # exact: OCC strikes are whole $0.001
        fields = (c.underlying, strike, c.expiry, c.option_type, ticks) if strike > 0 else _INVALID
    if len(_FIELDS) >= 8192:
        _FIELDS.clear()
    _FIELDS[symbol] = fields
    return fields


def max_loss_ticks(legs: Sequence[tuple[bool, int, int]], net_ticks: int) -> int | None:
    """`quant.payoff.max_loss_of` in integers: strikes, net price and result in ticks of $0.0001.

    The same kinks (S = 0 and every strike) and the same exact arithmetic: every option strike
    and price is a whole number of ticks. The guard computes every order's max loss with it, in
    plain ints (no Decimal on its hot path). (is_call, strike ticks, signed ratio) per leg;
    None if unbounded (short calls beyond every strike).
    """
    if not bounded_below(legs):
        return None
    lo = -net_ticks  # S = 0: only the puts pay
    for is_call, strike, ratio in legs:
        if not is_call:
            lo += ratio * strike
    for _, s, _ in legs:  # every strike (a repeated one is evaluated again: same value)
        total = -net_ticks
        for is_call, strike, ratio in legs:
            if is_call:
                if s > strike:
                    total += ratio * (s - strike)
            elif strike > s:
                total += ratio * (strike - s)
        if total < lo:
            lo = total
    return lo if lo < 0 else 0


def limit_ticks(limit: Decimal) -> int | None:
    """`limit` in ticks of $0.0001, or None if it is not a whole number of ticks (or not finite)."""
    try:
        num, den = limit.as_integer_ratio()  # den is 2^a × 5^b: ticks iff den divides 10,000
    except (ValueError, OverflowError):  # NaN, sNaN, ±Infinity
        return None
    if TICKS_PER_DOLLAR % den:
        return None
    return num * (TICKS_PER_DOLLAR // den)


def cents_floor(dollars: Decimal) -> int:
    """floor(dollars × 100): for integer cents c, c > dollars × 100 exactly when c > this."""
    return int((dollars * 100).to_integral_value(rounding=ROUND_FLOOR))


def cents_to_dollars(cents: int) -> Decimal:
    """Integer cents as Decimal dollars with two places (-75400 -> Decimal('-754.00'))."""
    return Decimal(cents).scaleb(-2)


class OrderFacts:
    """What a check needs of one well-formed intent, derived once (the guard passes it down).

    `legs`: (symbol, bought, ratio) per leg; `max_loss`: total dollars (<= 0, two places), None
    if unbounded; `loss_cents`: the same in integer cents (0 when unbounded); `contracts`:
    Σ ratio × quantity; `premium_cents`: |limit| × quantity × 100 in cents; `limit`: the net
    limit per share as a float (exactly the ticks / 10,000, for the collar); `key`: the re-entry
    trade key; `signature`: what "the same order" means for duplicates (the limit in ticks).
    """

    __slots__ = (
        "contracts",
        "key",
        "legs",
        "limit",
        "loss_cents",
        "max_loss",
        "opening",
        "premium_cents",
        "signature",
    )

    def __init__(
        self,
        legs: tuple[tuple[str, bool, int], ...],
        loss_cents: int | None,
        contracts: int,
        premium_cents: int,
        key: TradeKey,
        signature: OrderSignature,
        opening: bool,
    ) -> None:
        self.legs = legs
        self.loss_cents = 0 if loss_cents is None else loss_cents
        self.max_loss = None if loss_cents is None else Decimal(loss_cents).scaleb(-2)
        self.contracts = contracts
        self.premium_cents = premium_cents
        self.key = key
        self.signature = signature
        self.opening = opening
        self.limit = (
            signature[4] / TICKS_PER_DOLLAR
        )  # int / int: correctly rounded, as float(limit)


def inspect_order(intent: SubmitOrder) -> OrderFacts | tuple[RiskReason, str]:
    """Validate an intent and derive its figures in one pass over the legs.

    Returns the rejection (reason, detail) of a malformed intent, else its `OrderFacts`; the
    checks, their order and the max loss are exactly those of `assess_order`. Money is in
    integer ticks ($0.0001) and cents here: a limit that is not a whole number of ticks is
    rejected (no listed option trades in finer increments).
    """
    legs = intent.legs
    if not legs:
        return RiskReason.INVALID_ORDER, "order has no legs"
    quantity = intent.quantity
    if quantity <= 0:
        return RiskReason.ZERO_QUANTITY, f"quantity is {quantity}"
    limit = intent.limit_price
    try:
        num, den = limit.as_integer_ratio()  # limit_ticks, inline (the hot path)
    except (ValueError, OverflowError):  # NaN, sNaN, ±Infinity
        return RiskReason.INVALID_ORDER, f"limit price {limit} is not finite"
    if TICKS_PER_DOLLAR % den:
        return RiskReason.INVALID_ORDER, (
            f"limit price {limit} is not a whole number of $0.0001 (no option trades finer)"
        )
    ticks = num * (TICKS_PER_DOLLAR // den)
    underlying = intent.underlying.upper()
    seen: set[str] = set()
    out: list[tuple[str, bool, int]] = []
    plegs: list[tuple[bool, int, int]] = []
    ratios = 0
    expiry = legs[0].expiry
    one_expiry = True
    for leg in legs:
        # The happy path only: any doubt (and every rejection) goes to _leg_problem below,
        # which reports the first problem in leg order.
        symbol = leg.symbol
        ratio = leg.ratio
        fields = _FIELDS.get(symbol)
        if fields is None:
            fields = _contract_fields(symbol)
        kind = leg.option_type
        # The payoff is computed from the leg fields, the broker trades the symbol: they must
        # agree (and the symbol's strike is positive, so the leg's is finite and positive).
        if (
            fields is _INVALID
            or ratio <= 0
            or fields[0] != underlying
            or fields[1] != leg.strike
            or fields[2] != leg.expiry
            or fields[3] is not kind
        ):
            break
        seen.add(symbol)
        bought = leg.side is _BUY
        out.append((symbol, bought, ratio))
        plegs.append((kind is _CALL, fields[4], ratio if bought else -ratio))
        ratios += ratio
        if leg.expiry != expiry:
            one_expiry = False
    if len(seen) != len(legs):
        problem = _leg_problem(intent)
        if problem is None:  # unreachable: the fast loop and _leg_problem disagree
            raise AssertionError(f"inconsistent leg validation of intent {intent.intent_id}")
        return RiskReason.INVALID_ORDER, problem
    opening = intent.effect is _OPEN
    if not opening and not intent.position_id:
        return RiskReason.INVALID_ORDER, "closing order names no position_id"
    loss_cents: int | None
    if one_expiry:
        # Per share in ticks × 100 (the multiplier) / 100 (ticks per cent) = cents per unit.
        per_share = max_loss_ticks(plegs, ticks)
        loss_cents = None if per_share is None else per_share * quantity
    else:
        bound = structure_max_loss(payoff_legs(intent), limit)
        # Dollars per share × 100 (multiplier) × quantity × 100 (cents per dollar); whole ticks
        # in, whole cents out, and floor keeps any doubt on the side of a larger loss.
        loss_cents = None if bound is None else min(_floor(bound * 10_000 * quantity), 0)
    leg_tuple = tuple(out)
    signature: OrderSignature = (underlying, opening, leg_tuple, quantity, ticks)
    return OrderFacts(
        leg_tuple,
        loss_cents,
        ratios * quantity,
        (ticks if ticks >= 0 else -ticks) * quantity,  # |limit| × quantity × 100, in cents
        (underlying, intent.strategy_type or "custom"),
        signature,
        opening,
    )


def _floor(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_FLOOR))


def assess_order(intent: SubmitOrder) -> OrderRisk:
    """Validate an intent and recompute its max loss from its legs and limit price."""
    facts = inspect_order(intent)
    if isinstance(facts, tuple):
        return OrderRisk(facts[0], facts[1], None)
    if facts.max_loss is None:
        return OrderRisk(RiskReason.APPROVED, "unbounded max loss", None)
    return OrderRisk(RiskReason.APPROVED, "", facts.max_loss)
