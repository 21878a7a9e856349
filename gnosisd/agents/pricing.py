"""Limit prices: each leg at its mid moved against us by the slippage allowance, to the cent.

Execution policy of the first version: a buy leg is priced at mid × (1 + slippage_pct) rounded up
to the cent, a sell leg at mid × (1 − slippage_pct) rounded down (never below 0). The order's net
limit is Σ (buy +, sell −) ratio × leg price: positive = debit paid, negative = credit received —
the sign convention of SubmitOrder.limit_price everywhere. The risk maths use these same leg prices,
so an idea's max loss is the worst case the limit allows, and the guard recomputes exactly that.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from gnosisd.core.money import CENT, ZERO


def leg_limit_price(mid: Decimal, buying: bool, slippage_pct: Decimal) -> Decimal:
    """Per-share limit for one leg: the mid moved against us by `slippage_pct`, to the cent."""
    if buying:
        return (mid * (1 + slippage_pct)).quantize(CENT, rounding=ROUND_CEILING)
    return max((mid * (1 - slippage_pct)).quantize(CENT, rounding=ROUND_FLOOR), ZERO)
