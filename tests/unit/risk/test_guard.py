"""The risk guard: one test per rejection reason, closes while halted, the daily-loss log line."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from gnosisd.core.calendar import TradingCalendar
from gnosisd.core.config import ExecutionConfig, RiskConfig, Settings
from gnosisd.core.enums import OptionType, PositionEffect, RiskReason, Side, TradingState
from gnosisd.risk.guard import DAILY_LOSS_MESSAGE, RiskGuard
from gnosisd.risk.killswitch import KillSwitch, env_flag_source
from tests.unit.risk.fakes import (
    NOW,
    FakeMarket,
    FakePortfolio,
    S,
    closing,
    fake_position,
    holding,
    leg,
    put_credit_spread,
)

CAL = TradingCalendar()
DAY = 86_400 * S


def make_guard(tmp_path: Path, **risk: object) -> RiskGuard:
    # These tests re-send one order under new ids; test_guard_limits.py tests that duplicate check.
    values = {"kill_file": tmp_path / "KILL", "duplicate_window_seconds": 0, **risk}
    return RiskGuard(RiskConfig.model_validate(values), CAL, broker_is_live=False)


@pytest.fixture
def guard(tmp_path: Path) -> RiskGuard:
    return make_guard(tmp_path)


@pytest.fixture
def market() -> FakeMarket:
    return FakeMarket({"SPY": NOW - 5 * S})


@pytest.fixture
def book() -> FakePortfolio:
    return holding(closing())  # holds p-1, the spread closing() buys back


def test_approves_defined_risk_open_and_recomputes_its_max_loss(
    guard: RiskGuard, book: FakePortfolio, market: FakeMarket
) -> None:
    d = guard.check(put_credit_spread(quantity=3), book, market, NOW)
    assert d.approved
    assert d.reason is RiskReason.APPROVED
    assert d.max_loss == Decimal("-1050")  # (5 - 1.50) × 100 × 3
    assert d.trading_state is TradingState.ACTIVE


def test_debit_spread_max_loss_is_the_debit(
    guard: RiskGuard, book: FakePortfolio, market: FakeMarket
) -> None:
    intent = replace(
        put_credit_spread(limit="2.10", quantity=2),
        legs=(leg(Side.BUY, OptionType.CALL, 450), leg(Side.SELL, OptionType.CALL, 455)),
    )
    assert guard.check(intent, book, market, NOW).max_loss == Decimal("-420")


@pytest.mark.parametrize(
    ("mutation", "reason"),
    [
        ({"legs": ()}, RiskReason.INVALID_ORDER),
        ({"quantity": 0}, RiskReason.ZERO_QUANTITY),
        ({"quantity": -2}, RiskReason.ZERO_QUANTITY),
        ({"limit_price": Decimal("NaN")}, RiskReason.INVALID_ORDER),
        ({"limit_price": Decimal("Infinity")}, RiskReason.INVALID_ORDER),
        (
            {"legs": (leg(Side.SELL, OptionType.PUT, 450), leg(Side.BUY, OptionType.PUT, 450))},
            RiskReason.INVALID_ORDER,
        ),
        ({"legs": (leg(Side.BUY, OptionType.PUT, 450, ratio=0),)}, RiskReason.INVALID_ORDER),
        (
            {"legs": (leg(Side.BUY, OptionType.PUT, 450, underlying="QQQ"),)},
            RiskReason.INVALID_ORDER,
        ),
    ],
)
def test_rejects_malformed_orders(
    guard: RiskGuard,
    book: FakePortfolio,
    market: FakeMarket,
    mutation: dict[str, object],
    reason: RiskReason,
) -> None:
    d = guard.check(replace(put_credit_spread(), **mutation), book, market, NOW)  # type: ignore[arg-type]
    assert (d.approved, d.reason) == (False, reason)
    assert d.detail


def test_rejects_leg_whose_fields_disagree_with_its_occ_symbol(
    guard: RiskGuard, book: FakePortfolio, market: FakeMarket
) -> None:
    bad = replace(leg(Side.BUY, OptionType.PUT, 445), strike=Decimal("400"))
    intent = replace(put_credit_spread(), legs=(leg(Side.SELL, OptionType.PUT, 450), bad))
    d = guard.check(intent, book, market, NOW)
    assert d.reason is RiskReason.INVALID_ORDER
    assert "does not match" in d.detail


def test_rejects_close_without_position_id(
    guard: RiskGuard, book: FakePortfolio, market: FakeMarket
) -> None:
    d = guard.check(replace(closing(), position_id=None), book, market, NOW)
    assert d.reason is RiskReason.INVALID_ORDER


def test_rejects_naked_short_call_as_undefined_risk(
    guard: RiskGuard, book: FakePortfolio, market: FakeMarket
) -> None:
    intent = replace(put_credit_spread(), legs=(leg(Side.SELL, OptionType.CALL, 460),))
    d = guard.check(intent, book, market, NOW)
    assert d.reason is RiskReason.UNDEFINED_RISK


def test_rejects_open_when_config_kill_switch_is_on(
    tmp_path: Path, book: FakePortfolio, market: FakeMarket
) -> None:
    g = make_guard(tmp_path, kill_switch=True)
    assert g.check(put_credit_spread(), book, market, NOW).reason is RiskReason.KILL_SWITCH


def test_kill_file_blocks_opens_as_soon_as_it_exists_and_closes_still_pass(
    tmp_path: Path, guard: RiskGuard, book: FakePortfolio, market: FakeMarket
) -> None:
    assert guard.check(put_credit_spread("a"), book, market, NOW).approved
    (tmp_path / "KILL").touch()
    d = guard.check(put_credit_spread("b"), book, market, NOW + S)
    assert d.reason is RiskReason.KILL_SWITCH
    assert "KILL" in d.detail
    assert guard.check(closing(), book, market, NOW + S).approved
    (tmp_path / "KILL").unlink()
    assert guard.check(put_credit_spread("c"), book, market, NOW + 2 * S).approved


def test_runtime_kill_blocks_opens_until_cleared(
    guard: RiskGuard, book: FakePortfolio, market: FakeMarket
) -> None:
    guard.kill("SIGUSR1")
    assert guard.check(put_credit_spread("a"), book, market, NOW).reason is RiskReason.KILL_SWITCH
    guard.clear_kill()
    assert guard.check(put_credit_spread("b"), book, market, NOW).approved


def test_env_kill_flag_is_read_on_every_check(
    tmp_path: Path, book: FakePortfolio, market: FakeMarket
) -> None:
    env: dict[str, str] = {}
    cfg = RiskConfig(kill_file=tmp_path / "KILL")
    ks = KillSwitch(kill_file=cfg.kill_file, sources=[env_flag_source(env)])
    g = RiskGuard(cfg, CAL, broker_is_live=False, kill_switch=ks)
    assert g.check(put_credit_spread("a"), book, market, NOW).approved
    env["GNOSIS_KILL_SWITCH"] = "true"
    assert g.check(put_credit_spread("b"), book, market, NOW).reason is RiskReason.KILL_SWITCH


@pytest.mark.parametrize(
    ("env_flag", "config_flag"), [(True, False), (False, True), (False, False)]
)
def test_live_broker_needs_env_flag_and_config_flag(
    tmp_path: Path, book: FakePortfolio, market: FakeMarket, env_flag: bool, config_flag: bool
) -> None:
    settings = Settings(
        live_trading_enabled=env_flag,
        execution=ExecutionConfig(enable_live_trading=config_flag),
        risk=RiskConfig(kill_file=tmp_path / "KILL"),
    )
    g = RiskGuard.from_settings(settings, CAL, broker_is_live=True)
    assert g.check(put_credit_spread(), book, market, NOW).reason is RiskReason.LIVE_GATE
    assert g.check(closing(), book, market, NOW).reason is RiskReason.LIVE_GATE


def test_live_broker_passes_when_both_flags_are_true(
    tmp_path: Path, book: FakePortfolio, market: FakeMarket
) -> None:
    settings = Settings(
        live_trading_enabled=True,
        execution=ExecutionConfig(enable_live_trading=True),
        risk=RiskConfig(kill_file=tmp_path / "KILL"),
    )
    g = RiskGuard.from_settings(settings, CAL, broker_is_live=True)
    assert g.check(put_credit_spread(), book, market, NOW).approved


def test_rejects_opens_while_halted_but_closes_pass(
    guard: RiskGuard, book: FakePortfolio, market: FakeMarket
) -> None:
    guard.halt("operator", NOW)
    d = guard.check(put_credit_spread(), book, market, NOW)
    assert (d.reason, d.trading_state) == (RiskReason.HALTED, TradingState.HALTED)
    assert guard.check(closing(), book, market, NOW).approved


def test_reduce_only_state_rejects_opens(
    guard: RiskGuard, book: FakePortfolio, market: FakeMarket
) -> None:
    guard.reduce_only("broker reconnecting", NOW)
    d = guard.check(put_credit_spread(), book, market, NOW)
    assert (d.reason, d.trading_state) == (RiskReason.REDUCE_ONLY, TradingState.REDUCING)
    assert "broker reconnecting" in d.detail
    assert guard.check(closing(), book, market, NOW).approved
    guard.resume("reconnected", NOW)
    assert guard.check(put_credit_spread("b"), book, market, NOW).approved


def test_rejects_order_when_daily_loss_limit_reached_and_halts_for_the_session(
    guard: RiskGuard, market: FakeMarket
) -> None:
    book = holding(closing(), pnl=Decimal("-5000"))  # default limit 5000: reaching it halts
    with capture_logs() as logs:
        d = guard.check(put_credit_spread("a"), book, market, NOW)
        d2 = guard.check(put_credit_spread("b"), book, market, NOW + S)
        guard.on_pnl(Decimal("-6000"), NOW + 2 * S)
    assert (d.reason, d.trading_state) == (RiskReason.DAILY_LOSS_LIMIT, TradingState.HALTED)
    assert d2.reason is RiskReason.HALTED
    assert guard.state is TradingState.HALTED
    critical = [e for e in logs if e["log_level"] == "critical"]
    assert [e["event"] for e in critical] == ["Daily loss limit reached. Halting trading."]
    assert critical[0]["session_pnl"] == "-5000"
    assert guard.check(closing(), book, market, NOW + 3 * S).approved


def test_loss_just_inside_the_limit_does_not_halt(guard: RiskGuard, market: FakeMarket) -> None:
    book = FakePortfolio(pnl=Decimal("-4999.99"))
    assert guard.check(put_credit_spread(), book, market, NOW).approved
    assert guard.state is TradingState.ACTIVE


def test_on_pnl_halts_at_once_and_a_new_new_york_session_resumes(
    guard: RiskGuard, book: FakePortfolio, market: FakeMarket
) -> None:
    with capture_logs() as logs:
        assert guard.on_pnl(Decimal("-7500"), NOW) is True
        assert guard.state is TradingState.HALTED
        assert guard.check(put_credit_spread("a"), book, market, NOW).reason is RiskReason.HALTED
        # 23:30 New York on the same date is still the same session day.
        late = NOW + (13 * 3600 + 1800) * S
        assert guard.check(put_credit_spread("b"), book, market, late).reason is RiskReason.HALTED
        tomorrow = NOW + DAY
        market.last["SPY"] = tomorrow
        assert guard.check(put_credit_spread("c"), book, market, tomorrow).approved
        assert guard.state is TradingState.ACTIVE
        guard.on_pnl(Decimal("-5001"), tomorrow + S)
    assert [e["event"] for e in logs if e["log_level"] == "critical"] == [DAILY_LOSS_MESSAGE] * 2
    changes = [(c.state, c.reason) for c in guard.pop_state_changes()]
    assert changes == [
        (TradingState.HALTED, "daily loss limit"),
        (TradingState.ACTIVE, "new session 2025-06-03"),
        (TradingState.HALTED, "daily loss limit"),
    ]
    assert guard.pop_state_changes() == []


def test_rejects_open_whose_max_loss_exceeds_the_trade_risk_cap(
    guard: RiskGuard, book: FakePortfolio, market: FakeMarket
) -> None:
    ok = guard.check(put_credit_spread("a", quantity=5), book, market, NOW)  # 1750 <= 2000
    too_big = guard.check(put_credit_spread("b", quantity=6), book, market, NOW)  # 2100 > 2000
    assert ok.approved
    assert too_big.reason is RiskReason.TRADE_RISK_CAP
    assert too_big.max_loss == Decimal("-2100")
    assert "2,100.00" in too_big.detail


def test_close_passes_trade_risk_cap_and_open_position_limit(
    tmp_path: Path, market: FakeMarket
) -> None:
    g = make_guard(tmp_path, max_open_positions=1)
    big_close = replace(closing(), quantity=50)
    book = holding(big_close, equity_=Decimal("1000"))
    assert g.check(big_close, book, market, NOW).approved


def test_rejects_open_at_max_open_positions(tmp_path: Path, market: FakeMarket) -> None:
    g = make_guard(tmp_path, max_open_positions=2)
    book = FakePortfolio(open_positions=[fake_position("p-1")])
    assert g.check(put_credit_spread("a"), book, market, NOW).approved
    book.open_positions.append(fake_position("p-2"))
    d = g.check(put_credit_spread("b"), book, market, NOW)
    assert d.reason is RiskReason.MAX_OPEN_POSITIONS


def test_rate_limit_counts_approved_orders_in_the_trailing_minute(
    tmp_path: Path, book: FakePortfolio
) -> None:
    g = make_guard(tmp_path, max_orders_per_minute=2)
    market = FakeMarket({"SPY": NOW + 120 * S})
    t = NOW + 60 * S
    assert g.check(put_credit_spread("a"), book, market, t).approved
    assert g.check(put_credit_spread("b"), book, market, t + 10 * S).approved
    assert g.check(put_credit_spread("c"), book, market, t + 20 * S).reason is RiskReason.RATE_LIMIT
    assert g.check(closing("close-1"), book, market, t + 20 * S).approved  # closes never blocked
    # "a" left the window at t+60 s, but the close (t+20 s) still counts: 2 in the window.
    assert g.check(put_credit_spread("d"), book, market, t + 60 * S).reason is RiskReason.RATE_LIMIT
    assert g.check(put_credit_spread("e"), book, market, t + 71 * S).approved


def test_rejects_open_on_missing_or_stale_market_data_but_close_passes(
    guard: RiskGuard, book: FakePortfolio
) -> None:
    none = guard.check(put_credit_spread("a"), book, FakeMarket(), NOW)
    assert none.reason is RiskReason.STALE_DATA
    stale_market = FakeMarket({"SPY": NOW - 121 * S})  # default limit 120 s
    old = guard.check(put_credit_spread("b"), book, stale_market, NOW)
    assert old.reason is RiskReason.STALE_DATA
    assert "121.0 s old" in old.detail
    fresh = FakeMarket({"SPY": NOW - 120 * S})
    assert guard.check(put_credit_spread("c"), book, fresh, NOW).approved
    assert guard.check(closing(), book, stale_market, NOW).approved


def test_rejects_an_intent_id_that_was_already_approved(
    guard: RiskGuard, book: FakePortfolio, market: FakeMarket
) -> None:
    assert guard.check(put_credit_spread("same"), book, market, NOW).approved
    d = guard.check(put_credit_spread("same"), book, market, NOW + S)
    assert d.reason is RiskReason.DUPLICATE
    assert guard.check(closing("close-x"), book, market, NOW).approved
    assert guard.check(closing("close-x"), book, market, NOW).reason is RiskReason.DUPLICATE


def test_rejected_intent_may_be_retried_under_the_same_id(
    guard: RiskGuard, book: FakePortfolio
) -> None:
    assert (
        guard.check(put_credit_spread("r"), book, FakeMarket(), NOW).reason is RiskReason.STALE_DATA
    )
    assert guard.check(put_credit_spread("r"), book, FakeMarket({"SPY": NOW}), NOW).approved


def test_counts_decisions_by_reason(
    guard: RiskGuard, book: FakePortfolio, market: FakeMarket
) -> None:
    guard.check(put_credit_spread("a"), book, market, NOW)
    guard.check(put_credit_spread("a"), book, market, NOW)
    guard.check(put_credit_spread("b", quantity=0), book, market, NOW)
    guard.check(put_credit_spread("c"), book, market, NOW)
    assert guard.decisions == {
        RiskReason.APPROVED: 2,
        RiskReason.DUPLICATE: 1,
        RiskReason.ZERO_QUANTITY: 1,
    }


def test_close_effect_is_required_to_bypass_limits(guard: RiskGuard, market: FakeMarket) -> None:
    book = FakePortfolio(pnl=Decimal("-9000"))
    as_open = replace(closing(), effect=PositionEffect.OPEN)
    assert guard.check(as_open, book, market, NOW).reason is RiskReason.DAILY_LOSS_LIMIT
