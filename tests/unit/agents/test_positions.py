"""Position manager: marks from the chain, closes on each exit rule, one pending close at a time."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from gnosisd.agents.positions import PositionManager, mark_position
from gnosisd.bus.events import ChainSnapshot
from gnosisd.core.enums import OptionType, PositionEffect, Side
from gnosisd.core.occ import parse_occ
from gnosisd.core.views import Position, PositionLeg
from gnosisd.testing.chains import DEFAULT_AS_OF_NS, make_chain, ns_at_new_york, symbol_for

TS = DEFAULT_AS_OF_NS  # 2025-06-02 11:00 New York
TODAY = date(2025, 6, 2)
EXPIRY = TODAY + timedelta(days=32)  # Friday 2025-07-04 is fine for a fixture
NS_PER_DAY = 86_400 * 1_000_000_000
RULES = {"profit_target_pct": 0.5, "stop_loss_pct": 0.5, "time_exit_dte": 7, "max_days_held": 21}
QTY = 3


def chain(spot: float = 500.0, expiries: list[date] | None = None) -> ChainSnapshot:
    return make_chain(spot=spot, expiries=expiries or [EXPIRY])


def mid(ch: ChainSnapshot, symbol: str) -> Decimal:
    return Decimal(repr(float(ch.mid[ch.row(symbol)]))).quantize(Decimal("0.0001"))


def leg(ch: ChainSnapshot, kind: OptionType, strike: float, ratio: int) -> PositionLeg:
    symbol = symbol_for(ch, ch.expiries[0], kind, strike)
    c = parse_occ(symbol)
    return PositionLeg(symbol, kind is OptionType.CALL, c.strike, c.expiry, ratio)


def position(
    legs: tuple[PositionLeg, ...],
    entry: Decimal,
    max_loss_ps: Decimal,
    max_profit_ps: Decimal | None,
    *,
    pid: str = "pos-1",
    opened_ns: int = TS,
    rules: dict[str, float] | None = None,
    underlying: str = "SPY",
) -> Position:
    scale = 100 * QTY
    return Position(
        position_id=pid,
        underlying=underlying,
        strategy_type="test",
        quantity=QTY,
        legs=legs,
        entry_net_price=entry,
        max_loss=max_loss_ps * scale,
        max_profit=None if max_profit_ps is None else max_profit_ps * scale,
        opened_ns=opened_ns,
        mark_net_price=entry,
        unrealized_pnl=Decimal(0),
        exit_rules=rules or RULES,
    )


def long_call(
    ch: ChainSnapshot,
    entry: Decimal,
    *,
    pid: str = "pos-1",
    opened_ns: int = TS,
    rules: dict[str, float] | None = None,
    underlying: str = "SPY",
) -> Position:
    legs = (leg(ch, OptionType.CALL, 500, 1),)
    return position(
        legs, entry, -entry, None, pid=pid, opened_ns=opened_ns, rules=rules, underlying=underlying
    )


def spread(ch: ChainSnapshot, entry: Decimal) -> Position:
    legs = (leg(ch, OptionType.CALL, 500, 1), leg(ch, OptionType.CALL, 510, -1))
    return position(legs, entry, -entry, Decimal(10) - entry)


def condor(ch: ChainSnapshot, entry: Decimal) -> Position:
    legs = (
        leg(ch, OptionType.PUT, 470, 1),
        leg(ch, OptionType.PUT, 480, -1),
        leg(ch, OptionType.CALL, 520, -1),
        leg(ch, OptionType.CALL, 530, 1),
    )
    return position(legs, entry, -(Decimal(10) + entry), -entry)


def test_mark_is_the_signed_sum_of_leg_mids() -> None:
    ch = chain()
    p = condor(ch, Decimal("-2.00"))
    expected = sum(lg.ratio * mid(ch, lg.symbol) for lg in p.legs)
    assert mark_position(p, ch) == expected
    assert expected < 0  # a short-premium structure is worth a negative amount to its holder


def test_holds_a_position_when_no_rule_fires() -> None:
    ch = chain()
    m = mid(ch, leg(ch, OptionType.CALL, 500, 1).symbol)
    assert PositionManager().evaluate([long_call(ch, m)], ch, TS) == []


def test_takes_profit_on_an_unbounded_position_at_target_times_entry_debit() -> None:
    ch = chain()
    m = mid(ch, leg(ch, OptionType.CALL, 500, 1).symbol)
    just_under = m / Decimal("1.5") + Decimal("0.02")  # gain is a bit less than 50% of entry
    just_over = m / Decimal("1.5") - Decimal("0.02")
    assert PositionManager().evaluate([long_call(ch, just_under)], ch, TS) == []
    (order,) = PositionManager().evaluate([long_call(ch, just_over)], ch, TS)
    assert order.exit_reason == "profit_target"


def test_takes_profit_on_a_debit_spread_against_its_max_profit() -> None:
    ch = chain()
    m = mid(ch, leg(ch, OptionType.CALL, 500, 1).symbol) - mid(
        ch, leg(ch, OptionType.CALL, 510, 1).symbol
    )
    # pnl = m - e >= 0.5 × (10 - e)  <=>  e <= 2m - 10
    assert PositionManager().evaluate([spread(ch, 2 * m - 10 + Decimal("0.02"))], ch, TS) == []
    (order,) = PositionManager().evaluate([spread(ch, 2 * m - 10 - Decimal("0.02"))], ch, TS)
    assert order.exit_reason == "profit_target"


def test_takes_profit_on_a_credit_condor_when_the_credit_decays() -> None:
    ch = chain()
    m = mark_position(condor(ch, Decimal(-1)), ch)
    assert m is not None
    # credit e < 0: pnl = m - e >= 0.5 × (-e)  <=>  e <= 2m
    assert PositionManager().evaluate([condor(ch, 2 * m + Decimal("0.02"))], ch, TS) == []
    (order,) = PositionManager().evaluate([condor(ch, 2 * m - Decimal("0.02"))], ch, TS)
    assert order.exit_reason == "profit_target"
    # Buying back a credit condor is a debit: the limit is about -mark, within a cent per leg.
    assert order.limit_price > 0
    assert abs(order.limit_price + m) <= Decimal("0.04")


def test_stops_out_when_loss_reaches_stop_fraction_of_max_loss() -> None:
    ch = chain()
    m = mid(ch, leg(ch, OptionType.CALL, 500, 1).symbol)
    # pnl = m - e <= -0.5 e  <=>  e >= 2m
    assert PositionManager().evaluate([long_call(ch, 2 * m - Decimal("0.02"))], ch, TS) == []
    (order,) = PositionManager().evaluate([long_call(ch, 2 * m + Decimal("0.02"))], ch, TS)
    assert order.exit_reason == "stop_loss"


def test_time_exit_when_days_to_front_expiry_reach_time_exit_dte() -> None:
    near = TODAY + timedelta(days=7)
    ch = chain(expiries=[near])
    m = mid(ch, leg(ch, OptionType.CALL, 500, 1).symbol)
    (order,) = PositionManager().evaluate([long_call(ch, m)], ch, TS)
    assert order.exit_reason == "time_exit"
    rules = {**RULES, "time_exit_dte": 6}
    assert PositionManager().evaluate([long_call(ch, m, rules=rules)], ch, TS) == []


def test_closes_after_max_days_held_in_new_york_calendar_days() -> None:
    ch = chain()
    m = mid(ch, leg(ch, OptionType.CALL, 500, 1).symbol)
    opened_21 = ns_at_new_york(TODAY - timedelta(days=21), hour=15)
    opened_20 = ns_at_new_york(TODAY - timedelta(days=20), hour=9, minute=31)
    (order,) = PositionManager().evaluate([long_call(ch, m, opened_ns=opened_21)], ch, TS)
    assert order.exit_reason == "max_days_held"
    assert PositionManager().evaluate([long_call(ch, m, opened_ns=opened_20)], ch, TS) == []


def test_closing_order_reverses_every_leg_at_the_rounded_mark() -> None:
    ch = chain(spot=530.0)  # the spread is deep in the money: profit target
    p = spread(ch, Decimal("4.00"))
    (order,) = PositionManager().evaluate([p], ch, TS + 5)
    mark = mark_position(p, ch)
    assert mark is not None
    assert order.effect is PositionEffect.CLOSE
    assert order.position_id == "pos-1"
    assert order.intent_id == f"close-pos-1-{TS + 5}"
    assert order.quantity == QTY
    # Selling the long spread is a credit: limit = -(sell price of 500C - buy price of 510C).
    assert order.limit_price < 0
    assert abs(order.limit_price + mark) <= Decimal("0.02")
    assert [(lg.symbol, lg.side, lg.ratio) for lg in order.legs] == [
        (p.legs[0].symbol, Side.SELL, 1),
        (p.legs[1].symbol, Side.BUY, 1),
    ]
    assert [lg.strike for lg in order.legs] == [Decimal(500), Decimal(510)]
    assert order.legs[0].option_type is OptionType.CALL


def test_does_not_send_a_second_close_while_one_is_pending() -> None:
    ch = chain()
    m = mid(ch, leg(ch, OptionType.CALL, 500, 1).symbol)
    p = long_call(ch, 2 * m + 1)  # stop loss
    pm = PositionManager()
    assert len(pm.evaluate([p], ch, TS)) == 1
    assert pm.pending == frozenset({"pos-1"})
    assert pm.evaluate([p], ch, TS + 1) == []
    pm.clear_pending("pos-1")
    assert len(pm.evaluate([p], ch, TS + 2)) == 1


def test_skips_positions_with_legs_missing_from_the_chain_or_on_another_underlying() -> None:
    ch = chain()
    m = mid(ch, leg(ch, OptionType.CALL, 500, 1).symbol)
    other = chain(expiries=[EXPIRY + timedelta(days=7)])
    gone = long_call(other, 2 * m + 1, pid="gone")  # its expiry is not in `ch`
    qqq = long_call(ch, 2 * m + 1, pid="qqq", underlying="QQQ")
    live = long_call(ch, 2 * m + 1, pid="live")
    pm = PositionManager()
    orders = pm.evaluate([gone, qqq, live], ch, TS)
    assert [o.position_id for o in orders] == ["live"]
    assert pm.pending == frozenset({"live"})


def test_invalid_exit_rules_are_refused() -> None:
    ch = chain()
    m = mid(ch, leg(ch, OptionType.CALL, 500, 1).symbol)
    with pytest.raises(ValueError, match="stop_loss_pct"):
        PositionManager().evaluate(
            [long_call(ch, m, rules={**RULES, "stop_loss_pct": 2.0})], ch, TS
        )


# ------------------------------------------------------------------ trailing and breakeven stops
NO_TARGET = {**RULES, "profit_target_pct": 5.0, "stop_loss_pct": 0.9, "time_exit_dte": 0}


def _run_up_and_back(rules: dict[str, float], back_to: float) -> list[str | None]:
    """Open a long 500 call at its mid with spot 500, mark at 510, then at `back_to`."""
    flat = chain(500.0)
    entry = mid(flat, leg(flat, OptionType.CALL, 500, 1).symbol)
    pm = PositionManager()
    reasons: list[str | None] = []
    for spot in (500.0, 510.0, back_to):
        ch = chain(spot)
        orders = pm.evaluate([long_call(ch, entry, rules=rules)], ch, TS)
        reasons.append(orders[0].exit_reason if orders else None)
    return reasons


def test_trailing_stop_closes_when_pnl_falls_the_trail_below_its_best() -> None:
    rules = {**NO_TARGET, "trailing_stop_pct": 0.25}
    assert _run_up_and_back(rules, 507.0) == [None, None, None]  # gave back less than the trail
    assert _run_up_and_back(rules, 503.0) == [None, None, "trailing_stop"]


def test_a_restarted_manager_keeps_the_trailing_stop_reference_it_is_given() -> None:
    rules = {**NO_TARGET, "trailing_stop_pct": 0.25}
    flat = chain(500.0)
    entry = mid(flat, leg(flat, OptionType.CALL, 500, 1).symbol)
    before = PositionManager()
    for spot in (500.0, 510.0):
        ch = chain(spot)
        before.evaluate([long_call(ch, entry, rules=rules)], ch, TS)
    assert before.high_water_changed
    saved = before.high_water_state()
    assert not before.high_water_changed and saved  # Decimal strings by position id
    back = chain(503.0)
    position = long_call(back, entry, rules=rules)
    fresh = PositionManager()  # a restart without the saved marks: the run-up is forgotten
    assert fresh.evaluate([position], back, TS) == []
    restored = PositionManager()
    restored.restore_high_water(saved)
    assert {k: str(restored.high_water(k)) for k in saved} == saved
    (close,) = restored.evaluate([position], back, TS)
    assert close.exit_reason == "trailing_stop"


def test_stop_moves_to_breakeven_once_the_trigger_was_reached() -> None:
    rules = {**NO_TARGET, "breakeven_trigger_pct": 0.3}
    assert _run_up_and_back(rules, 501.0) == [None, None, None]
    assert _run_up_and_back(rules, 499.0) == [None, None, "breakeven_stop"]
    never_ran = {**NO_TARGET, "breakeven_trigger_pct": 2.0}
    assert _run_up_and_back(never_ran, 499.0) == [None, None, None]


def test_high_water_marks_are_kept_per_open_position_and_dropped_when_it_closes() -> None:
    up = chain(510.0)
    entry = mid(chain(500.0), leg(up, OptionType.CALL, 500, 1).symbol)
    a = long_call(up, entry, pid="a", rules=NO_TARGET)
    b = long_call(up, entry + 2, pid="b", rules=NO_TARGET)
    pm = PositionManager()
    pm.evaluate([a, b], up, TS)
    mark = mark_position(a, up)
    assert mark is not None
    assert pm.high_water("a") == mark - entry
    assert pm.high_water("b") == mark - entry - 2
    pm.evaluate([b], chain(500.0), TS + 1)
    assert pm.high_water("a") is None
    assert pm.high_water("b") == mark - entry - 2  # the best so far, not the latest


def test_time_spread_takes_profit_on_its_debit_and_times_out_before_the_front_expiry() -> None:
    back_exp = EXPIRY + timedelta(days=28)
    ch = make_chain(expiries=[EXPIRY, back_exp])
    front = symbol_for(ch, EXPIRY, OptionType.CALL, 500)
    back = symbol_for(ch, back_exp, OptionType.CALL, 500)
    legs = (
        PositionLeg(front, True, Decimal(500), EXPIRY, -1),
        PositionLeg(back, True, Decimal(500), back_exp, 1),
    )
    m = mid(ch, back) - mid(ch, front)
    rules = {
        "profit_target_pct": 0.4,
        "stop_loss_pct": 0.45,
        "time_exit_dte": 5,
        "max_days_held": 21,
    }
    # max profit None (model-dependent): the target is 40% of the debit.
    cheap = position(legs, m / Decimal("1.4") - Decimal("0.02"), Decimal(-1), None, rules=rules)
    (order,) = PositionManager().evaluate([cheap], ch, TS)
    assert order.exit_reason == "profit_target"
    fair = position(legs, m, -m, None, rules=rules)
    assert PositionManager().evaluate([fair], ch, TS) == []
    late = ns_at_new_york(EXPIRY - timedelta(days=5))
    (order,) = PositionManager().evaluate([fair], ch, late)
    assert order.exit_reason == "time_exit"
    assert [(lg.symbol, lg.side) for lg in order.legs] == [(front, Side.BUY), (back, Side.SELL)]
