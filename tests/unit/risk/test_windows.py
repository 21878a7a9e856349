"""TrailingWindows: orders per minute, size, re-entries and duplicates, each on clock time."""

from __future__ import annotations

from dataclasses import replace

from gnosisd.core.config import RiskConfig
from gnosisd.core.enums import PositionEffect, RiskReason
from gnosisd.risk.limits import OrderFacts, OrderSignature
from gnosisd.risk.windows import _MAX_REMEMBERED, TrailingWindows
from tests.unit.risk.fakes import NOW, fill_of, put_credit_spread

S = 1_000_000_000
MIN = 60 * S
LEGS = (("SPY250718P00450000", False, 1), ("SPY250718P00445000", True, 1))


def facts(
    *, contracts: int = 2, premium_cents: int = 15_000, ticks: int = -15_000, opening: bool = True
) -> OrderFacts:
    signature: OrderSignature = ("SPY", opening, LEGS, 1, ticks)
    return OrderFacts(LEGS, -35_000, contracts, premium_cents, ("SPY", "pcs"), signature, opening)


def windows(**risk: object) -> TrailingWindows:
    return TrailingWindows(RiskConfig.model_validate(risk))


def test_orders_per_minute_count_every_approval_and_drop_them_after_60_s() -> None:
    w = windows(max_orders_per_minute=2, duplicate_window_seconds=0)
    w.record("a", facts(), 0)
    w.record("b", facts(opening=False), 30 * S)  # a close counts towards the rate too
    breach = w.breach(facts(), 59 * S)
    assert breach is not None and breach[0] is RiskReason.RATE_LIMIT
    assert breach[1] == "2 orders approved in the last 60 s, limit 2"
    assert w.breach(facts(), 60 * S) is None  # the order at 0 is exactly 60 s old: out


def test_size_window_sums_opening_orders_only_and_forgets_them_after_the_window() -> None:
    w = windows(
        max_contracts_per_window=5,
        max_premium_per_window=1_000.0,
        size_window_minutes=10,
        duplicate_window_seconds=0,
    )
    w.record("a", facts(contracts=2, premium_cents=40_000), 0)
    w.record("c", facts(contracts=50, premium_cents=900_000, opening=False), 0)  # not counted
    assert w.breach(facts(contracts=3, premium_cents=60_000), MIN) is None  # 5 and $1,000: at
    over = w.breach(facts(contracts=4, premium_cents=10_000), MIN)
    assert over is not None and over[0] is RiskReason.WINDOW_CONTRACTS
    assert over[1] == "2 contracts opened in the last 10 min + 4 exceeds the limit 5"
    rich = w.breach(facts(contracts=1, premium_cents=60_001), MIN)
    assert rich is not None and rich[0] is RiskReason.WINDOW_PREMIUM
    assert rich[1] == (
        "premium $400.00 opened in the last 10 min + $600.01 exceeds the limit $1,000.00"
    )
    assert w.breach(facts(contracts=4, premium_cents=99_000), 10 * MIN) is None  # expired


def test_closes_count_against_the_strategy_that_opened_the_position() -> None:
    w = windows(max_reentries=1, reentry_window_minutes=60, duplicate_window_seconds=0)
    for i in range(2):  # two round trips: open (approved as "pcs"), then close
        opening = replace(put_credit_spread(f"o-{i}"), strategy_type="pcs")
        w.record(f"o-{i}", facts(), NOW + i * S)
        w.on_fill(fill_of(opening, NOW + i * S, f"p-{i}"))
        close = replace(opening, intent_id=f"c-{i}", effect=PositionEffect.CLOSE)
        w.on_fill(fill_of(close, NOW + i * S, f"p-{i}"))  # the close's intent names no strategy
    assert w.closes(("SPY", "pcs"), NOW + 2 * S) == 2
    throttled = w.breach(facts(), NOW + 2 * S)
    assert throttled is not None and throttled[0] is RiskReason.REENTRY_THROTTLE
    assert w.closes(("SPY", "pcs"), NOW + 61 * MIN) == 0  # out of the window
    assert w.breach(facts(), NOW + 61 * MIN) is None


def test_an_unfilled_intent_is_forgotten_oldest_first() -> None:
    w = windows(duplicate_window_seconds=0)
    intent = put_credit_spread()
    for i in range(_MAX_REMEMBERED + 1):
        f = facts()
        f.key = ("SPY", f"s-{i}")
        w.record(f"i-{i}", f, NOW)
    # i-0 was dropped: its open fill falls back to the "custom" key; i-1 kept its own.
    w.on_fill(fill_of(replace(intent, intent_id="i-0"), NOW, "p-0"))
    w.on_fill(fill_of(replace(intent, intent_id="i-1"), NOW, "p-1"))
    for pid in ("p-0", "p-1"):
        close = replace(intent, intent_id=f"c-{pid}", effect=PositionEffect.CLOSE)
        w.on_fill(fill_of(close, NOW, pid))
    assert w.closes(("SPY", "custom"), NOW) == 1
    assert w.closes(("SPY", "s-1"), NOW) == 1


def test_a_duplicate_is_the_same_opening_order_within_the_window() -> None:
    w = windows(duplicate_window_seconds=30)
    w.record("a", facts(), 0)
    dup = w.breach(facts(), 12 * S)
    assert dup == (
        RiskReason.DUPLICATE,
        "same order as intent a approved 12.0 s ago (duplicate_window_seconds 30.0)",
    )
    assert w.breach(facts(ticks=-15_100), 12 * S) is None  # another limit: another order
    assert w.breach(facts(), 30 * S) is None  # exactly the window old: expired
    w.record("b", facts(opening=False), 40 * S)  # closes are never duplicates
    assert w.duplicate_of(facts(opening=False).signature, 41 * S) is None


def test_live_signatures_survive_every_sweep_and_expired_ones_never_match() -> None:
    w = windows(duplicate_window_seconds=30)
    for i in range(5_000):  # one order a second: 30 live at any time, thousands expired
        now = i * S
        w.record(f"i-{i}", facts(ticks=i), now)
        assert w.duplicate_of(facts(ticks=i).signature, now) == (now, f"i-{i}")
        if i >= 30:
            assert w.duplicate_of(facts(ticks=i - 29).signature, now) == (
                (i - 29) * S,
                f"i-{i - 29}",
            )
            assert w.duplicate_of(facts(ticks=i - 30).signature, now) is None  # expired
    assert w.remembered_signatures < 200  # swept as it went, not kept up to 10,000


def test_many_live_signatures_are_all_kept() -> None:
    w = windows(duplicate_window_seconds=3_600)
    for i in range(3_000):
        w.record(f"i-{i}", facts(ticks=i), i)
    assert all(
        w.duplicate_of(facts(ticks=i).signature, 3_000) == (i, f"i-{i}") for i in range(3_000)
    )


def test_a_zero_duplicate_window_keeps_no_signatures() -> None:
    w = windows(duplicate_window_seconds=0)
    w.record("a", facts(), 0)
    assert w.breach(facts(), 0) is None
    assert w.remembered_signatures == 0
