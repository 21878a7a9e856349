"""OCC option symbols (unpadded root, as Alpaca uses): ROOT + YYMMDD + C/P + strike×1000 (8 digits)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from gnosisd.core.enums import OptionType
from gnosisd.core.errors import InvalidSymbolError

_OCC = re.compile(r"^([A-Z][A-Z0-9.]{0,5})(\d{2})(\d{2})(\d{2})([CP])(\d{8})$")


@dataclass(frozen=True, slots=True)
class OptionContract:
    """A listed option contract; `symbol` is its OCC symbol."""

    underlying: str
    expiry: date
    option_type: OptionType
    strike: Decimal

    @property
    def symbol(self) -> str:
        return occ_symbol(self.underlying, self.expiry, self.option_type, self.strike)


def occ_symbol(underlying: str, expiry: date, option_type: OptionType, strike: Decimal) -> str:
    """Build the OCC symbol, e.g. ("SPY", 2025-12-19, call, 450) -> "SPY251219C00450000"."""
    milli = Decimal(strike) * 1000
    if milli != milli.to_integral_value() or milli <= 0 or milli >= 10**8:
        raise InvalidSymbolError(f"strike {strike} cannot be written in an OCC symbol")
    root = underlying.upper()
    if not re.fullmatch(r"[A-Z][A-Z0-9.]{0,5}", root):
        raise InvalidSymbolError(f"underlying {underlying!r} is not a valid OCC root (1-6 chars)")
    cp = "C" if option_type is OptionType.CALL else "P"
    return f"{root}{expiry:%y%m%d}{cp}{int(milli):08d}"


def parse_occ(symbol: str) -> OptionContract:
    """Parse an OCC symbol into its contract; raise InvalidSymbolError if malformed."""
    m = _OCC.match(symbol)
    if m is None:
        raise InvalidSymbolError(
            f"{symbol!r} is not an OCC option symbol (ROOT YYMMDD C|P STRIKE*1000)"
        )
    root, yy, mm, dd, cp, strike = m.groups()
    try:
        expiry = date(2000 + int(yy), int(mm), int(dd))
    except ValueError as exc:
        raise InvalidSymbolError(f"{symbol!r} has an invalid expiry date: {exc}") from exc
    return OptionContract(
        underlying=root,
        expiry=expiry,
        option_type=OptionType.CALL if cp == "C" else OptionType.PUT,
        strike=Decimal(int(strike)) / 1000,
    )
