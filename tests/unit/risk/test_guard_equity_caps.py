"""The guard computes its equity caps once per equity object: a new equity moves them at once."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

from gnosisd.core.calendar import TradingCalendar
from gnosisd.core.config import RiskConfig
from gnosisd.core.enums import OptionType, RiskReason, Side
from gnosisd.risk.guard import RiskGuard
from tests.unit.risk.fakes import NOW, FakeMarket, FakePortfolio, S, leg, put_credit_spread
from tests.unit.risk.reference import reference_greeks


def make_guard(tmp_path: Path, **risk: object) -> RiskGuard:
    # Orders are re-sent under new ids: the duplicate window is tested in test_guard_limits.py.
    values = {"kill_file": tmp_path / "KILL", "duplicate_window_seconds": 0, **risk}
    return RiskGuard(RiskConfig.model_validate(values), TradingCalendar(), broker_is_live=False)


def test_the_trade_cap_follows_each_new_equity(tmp_path: Path) -> None:
    guard = make_guard(tmp_path)  # max_trade_risk_pct 0.02
    market = FakeMarket({"SPY": NOW - 5 * S})
    book = FakePortfolio(equity_=Decimal("100000"))
    # Five spreads risk $1,750: within 0.02 × 100,000 = 2,000, beyond 0.02 × 80,000 = 1,600.
    assert guard.check(put_credit_spread("a", quantity=5), book, market, NOW).approved
    book.equity_ = Decimal("80000")
    low = guard.check(put_credit_spread("b", quantity=5), book, market, NOW)
    assert low.reason is RiskReason.TRADE_RISK_CAP
    assert "× equity $80,000.00 = $1,600.00" in low.detail
    book.equity_ = Decimal("100000")  # an equal value in a new object: the same caps again
    assert guard.check(put_credit_spread("c", quantity=5), book, market, NOW).approved
    book.equity_ = Decimal("87499.99")  # the cap is 1,749.9998 (exact Decimal): 1,750 is beyond
    edge = guard.check(put_credit_spread("d", quantity=5), book, market, NOW)
    assert edge.reason is RiskReason.TRADE_RISK_CAP


def test_the_portfolio_cap_follows_each_new_equity(tmp_path: Path) -> None:
    guard = make_guard(tmp_path, max_trade_risk_pct=0.25, max_portfolio_risk_pct=0.05)
    market = FakeMarket({"SPY": NOW - 5 * S})
    book = FakePortfolio(equity_=Decimal("40000"))
    # Five spreads risk $1,750: within 0.05 × 40,000 = 2,000, beyond 0.05 × 30,000 = 1,500.
    assert guard.check(put_credit_spread("a", quantity=5), book, market, NOW).approved
    book.equity_ = Decimal("30000")
    low = guard.check(put_credit_spread("b", quantity=5), book, market, NOW)
    assert low.reason is RiskReason.PORTFOLIO_RISK_CAP
    assert "0.05 × equity $30,000.00 = $1,500.00" in low.detail
    book.equity_ = Decimal("35000.00")  # exactly at the cap: 1,750 is not beyond it
    assert guard.check(put_credit_spread("c", quantity=5), book, market, NOW).approved


def test_the_greek_budgets_follow_each_new_equity(tmp_path: Path) -> None:
    market = FakeMarket({"SPY": NOW - 5 * S})
    intent = replace(
        put_credit_spread("a"),
        legs=(leg(Side.BUY, OptionType.CALL, 450),),
        limit_price=Decimal("4.10"),
        strategy_type="long_call",
    )
    chain = market.chain("SPY")
    assert chain is not None
    delta = reference_greeks(intent, chain)[0]  # about 22,500 $
    loose = {"max_gamma_pct": 10, "max_vega_pct": 10, "max_theta_pct": 10}
    guard = make_guard(tmp_path, max_delta_pct=delta / 100_000, **loose)
    book = FakePortfolio(equity_=Decimal("100000"))
    assert guard.check(intent, book, market, NOW).approved
    book.equity_ = Decimal("99000")  # the delta budget shrinks to 0.99 × the order's delta
    low = guard.check(replace(intent, intent_id="b"), book, market, NOW)
    assert low.reason is RiskReason.GREEK_BUDGET
    assert low.detail.startswith("after this order the portfolio delta $22,500 beyond ±$22,275")
    book.equity_ = Decimal("100000")
    assert guard.check(replace(intent, intent_id="c"), book, market, NOW).approved
