from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gnosisd.core.enums import OptionType
from gnosisd.core.errors import InvalidSymbolError
from gnosisd.core.occ import OptionContract, occ_symbol, parse_occ


def test_builds_the_unpadded_occ_symbol_alpaca_uses():
    assert (
        occ_symbol("SPY", date(2025, 12, 19), OptionType.CALL, Decimal(450)) == "SPY251219C00450000"
    )
    assert (
        occ_symbol("spy", date(2026, 1, 2), OptionType.PUT, Decimal("452.5"))
        == "SPY260102P00452500"
    )


def test_rejects_strikes_that_cannot_be_encoded():
    with pytest.raises(InvalidSymbolError):
        occ_symbol("SPY", date(2025, 12, 19), OptionType.CALL, Decimal("450.0005"))
    with pytest.raises(InvalidSymbolError):
        occ_symbol("SPY", date(2025, 12, 19), OptionType.CALL, Decimal(0))


@pytest.mark.parametrize(
    "bad", ["SPY", "SPY251219X00450000", "SPY251319C00450000", "251219C00450000"]
)
def test_rejects_malformed_symbols(bad: str):
    with pytest.raises(InvalidSymbolError):
        parse_occ(bad)


@given(
    root=st.sampled_from(["SPY", "QQQ", "IWM", "DIA", "BRKB"]),
    day=st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)),
    is_call=st.booleans(),
    milli=st.integers(min_value=1, max_value=99_999_999),
)
def test_symbol_round_trips(root: str, day: date, is_call: bool, milli: int):
    kind = OptionType.CALL if is_call else OptionType.PUT
    strike = Decimal(milli) / 1000
    contract = OptionContract(root, day, kind, strike)
    assert parse_occ(contract.symbol) == contract
