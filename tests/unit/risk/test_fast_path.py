"""The guard's one-pass derivations agree with the plain definitions they replace."""

from __future__ import annotations

import os
from dataclasses import FrozenInstanceError, replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gnosisd.bus.events import OrderLeg, RiskDecided, risk_decided
from gnosisd.core.enums import OptionType, PositionEffect, RiskReason, Side, TradingState
from gnosisd.core.occ import occ_symbol
from gnosisd.quant.payoff import PayoffLeg, max_loss_of, risk_profile
from gnosisd.quant.profile import structure_max_loss
from gnosisd.risk.collar import band_and_greeks, collar_band
from gnosisd.risk.greeks import order_greeks
from gnosisd.risk.killswitch import KillSwitch
from gnosisd.risk.limits import (
    OrderFacts,
    _leg_problem,
    inspect_order,
    limit_ticks,
    max_loss_ticks,
    payoff_legs,
)
from gnosisd.risk.quotes import QuoteBook
from gnosisd.risk.windows import (
    order_contracts,
    order_premium,
    order_signature,
    trade_key,
)
from tests.unit.risk.fakes import EXPIRY, leg, make_fake_chain, put_credit_spread

STRIKES = [Decimal(k) for k in range(430, 471, 5)]
CHAIN = make_fake_chain()

leg_st = st.builds(
    leg,
    st.sampled_from([Side.BUY, Side.SELL]),
    st.sampled_from([OptionType.CALL, OptionType.PUT]),
    st.sampled_from(STRIKES),
    st.integers(min_value=1, max_value=3),
)


@st.composite
def damaged_leg(draw: st.DrawFn) -> OrderLeg:
    """A leg, sometimes with one field that breaks validation."""
    lg = draw(leg_st)
    damage = draw(st.sampled_from(["none"] * 6 + ["ratio", "strike", "expiry", "type", "symbol"]))
    if damage == "ratio":
        return replace(lg, ratio=draw(st.sampled_from([0, -1])))
    if damage == "strike":
        bad = ["NaN", "Infinity", "0", "-5", str(lg.strike + 1)]
        return replace(lg, strike=Decimal(draw(st.sampled_from(bad))))
    if damage == "expiry":
        return replace(lg, expiry=lg.expiry + timedelta(days=1))
    if damage == "type":
        other = OptionType.PUT if lg.option_type is OptionType.CALL else OptionType.CALL
        return replace(lg, option_type=other)
    if damage == "symbol":
        return replace(lg, symbol=draw(st.sampled_from(["SPY", "QQQ" + lg.symbol[3:]])))
    return lg


@settings(max_examples=300, deadline=None)
@given(
    legs=st.lists(damaged_leg(), min_size=1, max_size=4),
    repeat_first=st.booleans(),
    quantity=st.sampled_from([1, 2, 5]),
    cents=st.integers(min_value=-900, max_value=900),
    closing=st.booleans(),
)
def test_inspect_order_matches_the_plain_definitions(
    legs: list[OrderLeg], repeat_first: bool, quantity: int, cents: int, closing: bool
) -> None:
    if repeat_first:
        legs = [*legs, legs[0]]
    intent = replace(
        put_credit_spread(quantity=quantity),
        legs=tuple(legs),
        limit_price=Decimal(cents) / 100,
        effect=PositionEffect.CLOSE if closing else PositionEffect.OPEN,
        position_id="p-1" if closing else None,
    )
    facts = inspect_order(intent)
    problem = _leg_problem(intent)
    if problem is not None:
        assert facts == (RiskReason.INVALID_ORDER, problem)  # the first problem, in leg order
        return
    assert isinstance(facts, OrderFacts)
    assert facts.opening is not closing
    assert facts.contracts == order_contracts(intent)
    assert facts.premium_cents == order_premium(intent) * 100
    assert facts.limit == float(intent.limit_price)  # the same double, from the ticks
    assert facts.key == trade_key(intent)
    assert facts.signature == order_signature(intent)
    assert facts.legs == tuple((lg.symbol, lg.side is Side.BUY, lg.ratio) for lg in legs)
    per_share = structure_max_loss(payoff_legs(intent), intent.limit_price)
    if per_share is None:
        assert facts.max_loss is None
    else:
        assert facts.max_loss == min(per_share * 100 * quantity, Decimal(0))
        assert facts.loss_cents == facts.max_loss * 100  # the same figure in integer cents
        assert facts.max_loss.as_tuple().exponent == -2  # dollars and cents in the journal


def test_a_multi_expiry_order_takes_the_front_expiry_bound() -> None:
    back = EXPIRY + timedelta(days=28)
    far = OrderLeg(
        occ_symbol("SPY", back, OptionType.CALL, Decimal(450)),
        Side.BUY,
        1,
        OptionType.CALL,
        Decimal(450),
        back,
    )
    calendar = replace(
        put_credit_spread(quantity=2, limit="3.10"),
        legs=(leg(Side.SELL, OptionType.CALL, 450), far),
    )
    facts = inspect_order(calendar)
    assert isinstance(facts, OrderFacts)
    assert facts.max_loss == Decimal("-620")


@settings(max_examples=300, deadline=None)
@given(
    legs=st.lists(
        st.tuples(
            st.booleans(),
            st.sampled_from(
                [Decimal("445"), Decimal("450.0"), Decimal("455.50"), Decimal("4.6E+2")]
            ),
            st.sampled_from([-3, -2, -1, 1, 2, 3]),
        ),
        min_size=1,
        max_size=5,
    ),
    net=st.sampled_from(["-1.25", "0", "-0", "2.5", "3.10", "-6.00", "1E+1", "0.001"]),
)
def test_max_loss_of_is_risk_profile_digit_for_digit(
    legs: list[tuple[bool, Decimal, int]], net: str
) -> None:
    # Same value, same exponent, same sign of zero: what the journal prints does not change.
    profile = risk_profile([PayoffLeg(c, k, r) for c, k, r in legs], Decimal(net))
    assert repr(max_loss_of(legs, Decimal(net))) == repr(profile.max_loss)


@settings(max_examples=300, deadline=None)
@given(
    legs=st.lists(
        st.tuples(
            st.booleans(),
            st.sampled_from(["0.5", "445", "450.0", "455.50", "4.6E+2", "1234.125"]),
            st.sampled_from([-3, -2, -1, 1, 2, 3]),
        ),
        min_size=1,
        max_size=5,
    ),
    net=st.sampled_from(["-1.25", "0", "-0", "2.5", "3.10", "-6.00", "1E+1", "0.001", "-0.0005"]),
)
def test_max_loss_ticks_is_max_loss_of_in_ticks(
    legs: list[tuple[bool, str, int]], net: str
) -> None:
    plain = [(c, Decimal(k), r) for c, k, r in legs]
    ticks = [(c, int(Decimal(k) * 10_000), r) for c, k, r in legs]
    exact = max_loss_of(plain, Decimal(net))
    fast = max_loss_ticks(ticks, int(Decimal(net) * 10_000))
    assert (fast is None) is (exact is None)
    if exact is not None:
        assert fast == exact * 10_000


@pytest.mark.parametrize("limit", ["1.23456", "0.00001", "-2.000005"])
def test_a_limit_finer_than_a_tick_is_an_invalid_order(limit: str) -> None:
    facts = inspect_order(put_credit_spread(limit=limit))
    assert facts == (
        RiskReason.INVALID_ORDER,
        f"limit price {limit} is not a whole number of $0.0001 (no option trades finer)",
    )
    assert limit_ticks(Decimal(limit)) is None


def test_limit_ticks_and_the_signature_ignore_how_a_limit_is_written() -> None:
    assert limit_ticks(Decimal("1.5")) == limit_ticks(Decimal("1.5000")) == 15_000
    assert limit_ticks(Decimal("-0.0001")) == -1
    assert limit_ticks(Decimal("2E+1")) == 200_000
    assert limit_ticks(Decimal("NaN")) is None
    a = put_credit_spread(limit="1.5")
    assert order_signature(a) == order_signature(replace(a, limit_price=Decimal("1.50")))


def test_risk_decided_builds_the_same_event_as_the_constructor() -> None:
    intent = put_credit_spread()
    args = (intent, 7, False, RiskReason.PRICE_COLLAR, "why", Decimal("-1.00"), TradingState.ACTIVE)
    fast = risk_decided(*args)
    assert fast == RiskDecided(*args)
    assert repr(fast) == repr(RiskDecided(*args))
    with pytest.raises(FrozenInstanceError):
        fast.detail = "changed"  # type: ignore[misc]


@settings(max_examples=200, deadline=None)
@given(
    legs=st.lists(leg_st, min_size=1, max_size=4, unique_by=lambda lg: lg.symbol),
    quantity=st.sampled_from([1, 2, 7]),
    tol=st.sampled_from([0.0, 0.05]),
    pct=st.sampled_from([0.0, 0.1]),
)
def test_band_and_greeks_is_collar_band_plus_order_greeks(
    legs: list[OrderLeg], quantity: int, tol: float, pct: float
) -> None:
    intent = replace(put_credit_spread(quantity=quantity), legs=tuple(legs))
    book = QuoteBook(CHAIN)
    band = collar_band(intent, QuoteBook(CHAIN), tol, pct)
    greeks = order_greeks(intent, QuoteBook(CHAIN))
    plain = [(lg.symbol, lg.side is Side.BUY, lg.ratio) for lg in legs]
    fused = band_and_greeks(plain, quantity, book, tol, pct)
    assert not isinstance(band, str) and not isinstance(fused, str)
    assert fused == (band.low, band.high, band.far, band.natural, *greeks.values())


def test_band_and_greeks_names_the_first_leg_without_a_quote() -> None:
    missing = occ_symbol("SPY", EXPIRY, OptionType.CALL, Decimal(1000))
    legs = [(leg(Side.BUY, OptionType.PUT, 445).symbol, True, 1), (missing, False, 1)]
    assert band_and_greeks(legs, 1, QuoteBook(CHAIN), 0.05, 0.1) == missing


def test_kill_file_existence_follows_symlinks_like_os_path_exists(tmp_path: Path) -> None:
    kill = tmp_path / "KILL"
    switch = KillSwitch(kill_file=kill)
    assert switch.active() is None
    kill.symlink_to(tmp_path / "target")  # dangling: os.path.exists says False
    assert not os.path.exists(kill) and switch.active() is None
    (tmp_path / "target").write_text("halt")
    assert switch.active() == f"kill file {kill} exists"


def test_a_kill_file_path_with_a_nul_byte_is_never_active() -> None:
    assert KillSwitch(kill_file=Path("state/KI\0LL")).active() is None
