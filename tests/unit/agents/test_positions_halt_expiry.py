"""Position manager overrides: flatten on a halt, and pin risk (legs expiring today) near the close."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from gnosisd.agents.positions import ExpiryWindow, PositionManager, expiry_window
from gnosisd.bus.events import ChainSnapshot
from gnosisd.core.calendar import TradingCalendar
from gnosisd.core.config import ExpiryConfig
from gnosisd.core.enums import OptionType, PositionEffect
from gnosisd.core.occ import parse_occ
from gnosisd.core.views import Position, PositionLeg
from gnosisd.testing.chains import make_chain, ns_at_new_york, symbol_for

# The rules' time exit closes a position on its expiry day at the latest (time_exit_dte >= 0), so
# pin risk is the backstop for positions without rules (adopted from the broker) or whose
# time-exit close did not fill; the fixtures hold positions without rules.
RULES = {"profit_target_pct": 0.5, "stop_loss_pct": 0.5, "time_exit_dte": 0, "max_days_held": 60}
NORMAL_DAY = date(2026, 11, 24)  # a Tuesday, close 16:00 New York
EARLY_DAY = date(2026, 11, 27)  # the day after Thanksgiving, close 13:00 New York
LATER = date(2026, 12, 18)
CAL = TradingCalendar()


def chain_on(day: date, hour: int, minute: int, expiries: list[date]) -> ChainSnapshot:
    return make_chain(as_of_ns=ns_at_new_york(day, hour, minute), expiries=expiries)


def vertical(
    ch: ChainSnapshot, expiry: date, pid: str = "pos-1", rules: dict[str, float] | None = None
) -> Position:
    """A 500/510 call debit spread held at its current mark (no exit rule fires)."""
    legs = []
    for strike, ratio in ((500, 1), (510, -1)):
        symbol = symbol_for(ch, expiry, OptionType.CALL, strike)
        c = parse_occ(symbol)
        legs.append(PositionLeg(symbol, True, c.strike, c.expiry, ratio))
    entry = sum(
        (lg.ratio * Decimal(repr(float(ch.mid[ch.row(lg.symbol)]))) for lg in legs), Decimal(0)
    ).quantize(Decimal("0.0001"))
    return Position(
        position_id=pid,
        underlying="SPY",
        strategy_type="bull_call_spread",
        quantity=2,
        legs=tuple(legs),
        entry_net_price=entry,
        max_loss=-entry * 200,
        max_profit=(Decimal(10) - entry) * 200,
        opened_ns=ch.ts_ns - 86_400 * 10**9,
        mark_net_price=entry,
        unrealized_pnl=Decimal(0),
        exit_rules=rules or {},
    )


def window(ts_ns: int, policy: str = "close", minutes: int = 30) -> ExpiryWindow | None:
    return expiry_window(CAL, ExpiryConfig(policy=policy, close_minutes_before=minutes), ts_ns)


# ------------------------------------------------------------------ flatten
def test_flatten_closes_every_position_on_the_chain_with_reason_halt() -> None:
    ch = chain_on(NORMAL_DAY, 11, 0, [LATER])
    held = [vertical(ch, LATER, "a"), vertical(ch, LATER, "b")]
    pm = PositionManager()
    assert pm.evaluate(held, ch, ch.ts_ns) == []  # no exit rule fires
    pm.start_flatten("SIGUSR1")
    orders = pm.evaluate(held, ch, ch.ts_ns)
    assert sorted(o.position_id or "" for o in orders) == ["a", "b"]
    assert {o.exit_reason for o in orders} == {"halt"}
    assert all(o.effect is PositionEffect.CLOSE and o.quantity == 2 for o in orders)
    assert pm.evaluate(held, ch, ch.ts_ns + 1) == []  # one pending close per position


def test_flatten_resends_a_close_the_broker_refused_and_stops_when_told() -> None:
    ch = chain_on(NORMAL_DAY, 11, 0, [LATER])
    held = [vertical(ch, LATER)]
    pm = PositionManager()
    pm.start_flatten("daily loss limit")
    assert len(pm.evaluate(held, ch, ch.ts_ns)) == 1
    pm.clear_pending("pos-1")  # rejected or cancelled
    assert [o.exit_reason for o in pm.evaluate(held, ch, ch.ts_ns + 1)] == ["halt"]
    pm.clear_pending("pos-1")
    pm.stop_flatten()
    assert pm.flattening is None
    assert pm.evaluate(held, ch, ch.ts_ns + 2) == []


# ------------------------------------------------------------------ pin risk
def test_expiry_window_ends_at_the_calendar_close_including_early_closes() -> None:
    normal = window(ns_at_new_york(NORMAL_DAY, 10, 0))
    early = window(ns_at_new_york(EARLY_DAY, 10, 0))
    assert normal is not None and early is not None
    assert normal.close_ns == ns_at_new_york(NORMAL_DAY, 16, 0)
    assert normal.start_ns == ns_at_new_york(NORMAL_DAY, 15, 30)
    assert early.close_ns == ns_at_new_york(EARLY_DAY, 13, 0)
    assert early.start_ns == ns_at_new_york(EARLY_DAY, 12, 30)
    assert window(ns_at_new_york(date(2026, 11, 26), 12, 0)) is None  # Thanksgiving: closed


def test_close_policy_closes_a_position_expiring_today_inside_the_window_only() -> None:
    before = chain_on(NORMAL_DAY, 15, 29, [NORMAL_DAY, LATER])
    inside = chain_on(NORMAL_DAY, 15, 31, [NORMAL_DAY, LATER])
    pm = PositionManager()
    held = vertical(before, NORMAL_DAY)
    assert pm.evaluate([held], before, before.ts_ns, window(before.ts_ns)) == []
    (order,) = pm.evaluate([held], inside, inside.ts_ns, window(inside.ts_ns))
    assert order.exit_reason == "expiry"
    assert order.position_id == "pos-1"
    assert pm.pop_pin_flags() == []


def test_close_policy_leaves_positions_expiring_later_alone() -> None:
    ch = chain_on(NORMAL_DAY, 15, 45, [NORMAL_DAY, LATER])
    pm = PositionManager()
    held = vertical(ch, LATER)
    assert pm.evaluate([held], ch, ch.ts_ns, window(ch.ts_ns)) == []
    assert pm.pop_pin_flags() == []


def test_early_close_moves_the_window_so_1240_is_inside_on_the_day_after_thanksgiving() -> None:
    early = chain_on(EARLY_DAY, 12, 40, [EARLY_DAY, LATER])
    pm = PositionManager()
    (order,) = pm.evaluate(
        [vertical(early, EARLY_DAY)],
        early,
        early.ts_ns,
        window(early.ts_ns),
    )
    assert order.exit_reason == "expiry"
    # The same wall-clock time on a normal day is hours before its window.
    normal = chain_on(NORMAL_DAY, 12, 40, [NORMAL_DAY, LATER])
    held = vertical(normal, NORMAL_DAY)
    assert PositionManager().evaluate([held], normal, normal.ts_ns, window(normal.ts_ns)) == []


def test_flag_policy_flags_once_per_position_per_day_and_sends_no_order() -> None:
    pm = PositionManager()
    first = chain_on(NORMAL_DAY, 15, 31, [NORMAL_DAY, LATER])
    held = vertical(first, NORMAL_DAY)
    flag_window = window(first.ts_ns, "flag")
    assert pm.evaluate([held], first, first.ts_ns, flag_window) == []
    (flag,) = pm.pop_pin_flags()
    assert flag.position_id == "pos-1"
    assert flag.symbols == tuple(leg.symbol for leg in held.legs)
    assert flag.day == NORMAL_DAY
    assert 28 < flag.minutes_to_close < 30
    second = chain_on(NORMAL_DAY, 15, 50, [NORMAL_DAY, LATER])
    assert pm.evaluate([held], second, second.ts_ns, window(second.ts_ns, "flag")) == []
    assert pm.pop_pin_flags() == []


def test_close_policy_flags_a_position_whose_expiring_legs_are_not_quoted() -> None:
    quoted = chain_on(NORMAL_DAY, 15, 40, [NORMAL_DAY, LATER])
    held = vertical(quoted, NORMAL_DAY)
    later_only = chain_on(NORMAL_DAY, 15, 40, [LATER])  # today's expiry missing from the chain
    pm = PositionManager()
    assert pm.evaluate([held], later_only, later_only.ts_ns, window(later_only.ts_ns)) == []
    (flag,) = pm.pop_pin_flags()
    assert "not quoted" in flag.note


def test_the_exit_rules_still_win_inside_the_pin_risk_window() -> None:
    ch = chain_on(NORMAL_DAY, 15, 40, [NORMAL_DAY, LATER])
    held = vertical(ch, NORMAL_DAY, rules=RULES)
    flag_window = window(ch.ts_ns, "flag")
    (order,) = PositionManager().evaluate([held], ch, ch.ts_ns, flag_window)
    assert order.exit_reason == "time_exit"  # expiry day: time_exit_dte 0 fires first
