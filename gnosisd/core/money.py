"""Exact money: Decimal dollars rounded to cents, and the option contract multiplier."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

CONTRACT_MULTIPLIER = 100
CENT = Decimal("0.01")
ZERO = Decimal("0")


def to_money(value: Decimal | int | float | str) -> Decimal:
    """Convert to Decimal dollars rounded half-even to the cent (floats via their repr)."""
    if isinstance(value, float):
        value = repr(value)
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_EVEN)


def to_price(value: Decimal | int | float | str, places: int = 4) -> Decimal:
    """Convert a per-share price to Decimal with `places` decimals (option prices tick at 0.01)."""
    if isinstance(value, float):
        value = repr(value)
    return Decimal(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
