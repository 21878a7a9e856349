"""Order translation, client_order_ids and the execution policy's price ladder."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from gnosisd.broker.alpaca.orders import (
    client_order_id,
    floor_tick,
    order_problem,
    order_request,
)
from gnosisd.broker.alpaca.policy import ExecutionPolicy, Ladder, price_ladder
from gnosisd.core.enums import PositionEffect, Side
from tests.integration.alpaca.support import (
    C500,
    C505,
    call_spread,
    chain,
    iron_condor,
    leg,
)


def test_client_order_id_is_deterministic_per_intent_and_attempt() -> None:
    assert client_order_id("open-SPY-1-call", 1) == "gn-open-SPY-1-call-1"
    assert client_order_id("open-SPY-1-call", 2) == "gn-open-SPY-1-call-2"
    assert client_order_id("open-SPY-1-call", 1) == client_order_id("open-SPY-1-call", 1)


def test_client_order_id_of_a_long_intent_is_hashed_within_128_characters() -> None:
    long_id = "close-" + "x" * 200
    cid = client_order_id(long_id, 3)
    assert len(cid) <= 128 and cid.startswith("gn-h") and cid.endswith("-3")
    assert cid != client_order_id("close-" + "y" * 200, 3)


def test_attempts_start_at_one() -> None:
    with pytest.raises(ValueError, match="start at 1"):
        client_order_id("x", 0)


def test_floor_tick_never_rounds_against_us() -> None:
    assert floor_tick(Decimal("1.239")) == Decimal("1.23")  # pay no more
    assert floor_tick(Decimal("-1.231")) == Decimal("-1.24")  # receive no less


def test_mleg_request_has_ratios_in_lowest_terms_and_the_signed_net_limit() -> None:
    intent = replace(
        call_spread(quantity=3),
        legs=(leg(Side.BUY, C500, 2), leg(Side.SELL, C505, 2)),
    )
    req = order_request(intent, Decimal("4.10"), 3, "gn-x-1")
    fields = req.to_request_fields()
    assert fields["order_class"] == "mleg" and fields["type"] == "limit"
    assert fields["time_in_force"] == "day" and fields["client_order_id"] == "gn-x-1"
    assert fields["qty"] == 6 and fields["limit_price"] == 2.05
    assert [
        (lg["symbol"], lg["ratio_qty"], lg["side"], lg["position_intent"]) for lg in fields["legs"]
    ] == [
        (C500, 1, "buy", "buy_to_open"),
        (C505, 1, "sell", "sell_to_open"),
    ]


def test_closing_legs_carry_closing_position_intents() -> None:
    intent = call_spread(effect=PositionEffect.CLOSE)
    fields = order_request(intent, Decimal("2.0"), 1, "c").to_request_fields()
    assert [lg["position_intent"] for lg in fields["legs"]] == ["buy_to_close", "sell_to_close"]


def test_problems_that_would_need_legging_or_a_bad_limit_are_named() -> None:
    five = replace(iron_condor(), legs=(*iron_condor().legs, leg(Side.BUY, "SPY261218C00510000")))
    assert "never legs in" in (order_problem(five) or "")
    same = replace(call_spread(), legs=(leg(Side.BUY, C500), leg(Side.SELL, C500)))
    assert order_problem(same) == "legs must have distinct symbols"
    assert order_problem(replace(call_spread(), quantity=0)) == "quantity is 0"
    assert "not finite" in (order_problem(replace(call_spread(), limit_price=Decimal("NaN"))) or "")
    assert order_problem(call_spread()) is None


def ladder(intent_limit: str, policy: ExecutionPolicy) -> Ladder:
    result = price_ladder(call_spread(limit=intent_limit), chain(), policy)
    assert isinstance(result, Ladder)
    return result


def test_ladder_starts_at_mid_and_walks_up_to_the_collar() -> None:
    lad = ladder("5.00", ExecutionPolicy(steps=4, collar_fraction=Decimal("1")))
    assert (lad.mid, lad.natural) == (Decimal("2.05"), Decimal("2.20"))
    assert lad.prices == (Decimal("2.05"), Decimal("2.10"), Decimal("2.15"), Decimal("2.20"))


def test_ladder_is_capped_by_the_approved_limit_and_never_repeats_a_price() -> None:
    lad = ladder("2.09", ExecutionPolicy(steps=4, collar_fraction=Decimal("1")))
    assert ladder("2.06", ExecutionPolicy(steps=4)).prices == (Decimal("2.05"), Decimal("2.06"))
    assert lad.prices == (Decimal("2.05"), Decimal("2.06"), Decimal("2.07"), Decimal("2.09"))
    assert max(lad.prices) <= Decimal("2.09")


def test_ladder_for_a_limit_below_mid_is_just_the_limit() -> None:
    assert ladder("1.99", ExecutionPolicy()).prices == (Decimal("1.99"),)


def test_ladder_of_a_credit_walks_toward_receiving_less() -> None:
    lad = price_ladder(
        replace(iron_condor(), limit_price=Decimal("-2.50")),
        chain(),
        ExecutionPolicy(steps=3, collar_fraction=Decimal("1")),
    )
    assert isinstance(lad, Ladder)
    # buy 485P ask 2.20, sell 490P bid 3.00, sell 500C bid 4.00, buy 505C ask 2.10: natural -2.70
    assert lad.natural == Decimal("-2.70") and lad.mid == Decimal("-3.00")
    assert lad.prices == (Decimal("-3.00"), Decimal("-2.85"), Decimal("-2.70"))


def test_unquoted_or_unlisted_legs_cannot_be_priced() -> None:
    assert "not in the SPY chain" in str(
        price_ladder(call_spread(), chain({C500: (4.0, 4.2)}), ExecutionPolicy())
    )
    crossed = chain({C500: (4.3, 4.2), C505: (2.0, 2.1)})
    assert "no usable quote" in str(price_ladder(call_spread(), crossed, ExecutionPolicy()))


def test_policy_rejects_nonsense_settings() -> None:
    with pytest.raises(ValueError, match="steps"):
        ExecutionPolicy(steps=0)
    with pytest.raises(ValueError, match="collar_fraction"):
        ExecutionPolicy(collar_fraction=Decimal("1.5"))
    assert ExecutionPolicy(steps=4, step_seconds=15).timeout_seconds == 60
