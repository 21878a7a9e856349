from decimal import Decimal

from gnosisd.core.money import to_money, to_price


def test_money_rounds_half_even_to_the_cent_without_float_error():
    assert to_money(0.1 + 0.2) == Decimal("0.30")
    assert to_money("2.675") == Decimal("2.68")
    assert to_money("2.665") == Decimal("2.66")
    assert to_price(1.23456) == Decimal("1.2346")
