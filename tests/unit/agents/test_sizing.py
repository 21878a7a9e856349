"""Kelly sizing: the fraction, its clamp and confidence, the trade and portfolio caps, contracts."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gnosisd.agents.sizing import kelly_fraction, open_risk, size
from gnosisd.core.views import Position

D = Decimal


def test_kelly_fraction_is_p_minus_q_over_b() -> None:
    assert kelly_fraction(0.6, 1.0) == pytest.approx(0.2)
    assert kelly_fraction(0.25, 4.0) == pytest.approx(0.0625)
    assert kelly_fraction(0.4, 1.0) == pytest.approx(-0.2)
    assert kelly_fraction(0.7, math.inf) == 0.7
    assert kelly_fraction(0.0, 3.0) == -math.inf
    with pytest.raises(ValueError, match="p in"):
        kelly_fraction(1.2, 1.0)


def test_size_is_kelly_times_confidence_in_whole_contracts() -> None:
    # f = 0.1 × 0.5 = 5% of 100k = 5,000; 1,200 per contract -> 4 contracts.
    s = size(D(1200), 0.1, 0.5, D(100_000), D("0.25"))
    assert (s.quantity, s.fraction, s.budget, s.limit) == (4, 0.05, D("5000"), "kelly")


def test_kelly_is_clamped_to_a_quarter_and_capped_by_the_per_trade_risk() -> None:
    s = size(D(100), 3.0, 1.0, D(100_000), D("0.5"))
    assert (s.fraction, s.quantity, s.limit) == (0.25, 250, "kelly")
    capped = size(D(100), 3.0, 1.0, D(100_000), D("0.02"))
    assert (capped.quantity, capped.limit) == (20, "trade_cap")


def test_portfolio_room_limits_the_size_and_no_edge_means_no_contract() -> None:
    s = size(D(300), 0.2, 1.0, D(100_000), D("0.02"), room=D(1000))
    assert (s.quantity, s.limit) == (3, "portfolio_cap")
    assert size(D(300), 0.2, 1.0, D(100_000), D("0.02"), room=D(-50)).quantity == 0
    assert size(D(300), -0.1, 1.0, D(100_000), D("0.02")).quantity == 0
    assert size(D(300), 0.2, 0.0, D(100_000), D("0.02")).quantity == 0


def test_open_risk_sums_max_losses_of_every_position() -> None:
    def pos(loss: str) -> Position:
        return Position("p", "SPY", "x", 1, (), D(1), D(loss), None, 0, D(1), D(0), {})

    assert open_risk([pos("-350"), pos("-1200.50")]) == D("1550.50")
    assert open_risk([]) == D(0)


@given(
    risk=st.decimals(min_value=D("0.01"), max_value=D(50_000), places=2),
    kelly=st.floats(-5, 5),
    confidence=st.floats(0, 1),
    equity=st.decimals(min_value=D(0), max_value=D(10_000_000), places=2),
    cap=st.decimals(min_value=D("0.001"), max_value=D("0.25"), places=3),
    room=st.one_of(st.none(), st.decimals(min_value=D(-1000), max_value=D(1_000_000), places=2)),
)
def test_no_size_exceeds_any_cap(
    risk: Decimal,
    kelly: float,
    confidence: float,
    equity: Decimal,
    cap: Decimal,
    room: Decimal | None,
) -> None:
    s = size(risk, kelly, confidence, equity, cap, room=room)
    total = risk * s.quantity
    assert s.quantity >= 0
    assert total <= cap * equity
    assert total <= D(repr(max(kelly, 0.0) * confidence)) * equity + D("0.01")
    assert total <= D("0.25") * equity
    if room is not None:
        assert total <= max(room, D(0))
    assert total + risk > s.budget  # the largest whole count within the budget
