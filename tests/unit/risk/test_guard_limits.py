"""The guard's issue-5 limits, each at its boundary: collar, size, windows, re-entries, duplicate
orders, the portfolio cap and the greek budgets (with the REDUCING state they drive)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from gnosisd.bus.events import SubmitOrder
from gnosisd.core.calendar import TradingCalendar
from gnosisd.core.config import RiskConfig, Settings, TradeAgentConfig
from gnosisd.core.enums import OptionType, PositionEffect, RiskReason, Side, TradingState
from gnosisd.core.views import Position, PositionLeg
from gnosisd.risk.guard import RiskGuard
from gnosisd.risk.state import TradingStateMachine
from tests.unit.risk.fakes import (
    EXPIRY,
    NOW,
    FakeMarket,
    FakePortfolio,
    S,
    closing,
    fake_position,
    fill_of,
    holding,
    leg,
    make_fake_chain,
    position_closed_by,
    put_credit_spread,
)
from tests.unit.risk.reference import reference_greeks

CAL = TradingCalendar()
MIN = 60 * S
DAY = 86_400 * S


def make_guard(tmp_path: Path, **risk: object) -> RiskGuard:
    cfg = RiskConfig.model_validate({"kill_file": tmp_path / "KILL", **risk})
    return RiskGuard(cfg, CAL, broker_is_live=False)


@pytest.fixture
def market() -> FakeMarket:
    return FakeMarket({"SPY": NOW})


def spread(intent_id: str, limit: str = "-1.50", quantity: int = 1) -> SubmitOrder:
    return put_credit_spread(intent_id, quantity=quantity, limit=limit)


def reason(g: RiskGuard, intent: SubmitOrder, market: FakeMarket, now: int = NOW) -> RiskReason:
    """The decision's reason, with the market's data (and its default chain) fresh at `now`."""
    if "SPY" in market.last:
        market.last["SPY"] = now
    book = holding(intent) if intent.effect is PositionEffect.CLOSE else FakePortfolio()
    return g.check(intent, book, market, now).reason


OK = RiskReason.APPROVED


# ---------------------------------------------------------------- price collar
# The 450/445 put spread quotes 450P 4.00/4.20 and 445P 2.50/2.70: selling it, natural (marketable)
# is 2.70 − 4.00 = −1.30 and far is 2.50 − 4.20 = −1.70 per share.


@pytest.mark.parametrize(
    ("tol", "pct", "edges"),
    [
        (0, 0, ("-1.70", "-1.30")),
        (0.05, 0, ("-1.80", "-1.20")),  # 0.05 per leg, two legs
        (0, 0.1, ("-2.37", "-0.63")),  # 0.10 × (4.10 + 2.60) mids
    ],
)
def test_collar_accepts_the_band_edges_and_rejects_a_cent_beyond(
    tmp_path: Path, market: FakeMarket, tol: float, pct: float, edges: tuple[str, str]
) -> None:
    g = make_guard(tmp_path, collar_tolerance=tol, collar_tolerance_pct=pct)
    low, high = Decimal(edges[0]), Decimal(edges[1])
    assert reason(g, spread("a", str(low)), market) is OK
    assert reason(g, spread("b", str(high)), market) is OK
    below = g.check(spread("c", str(low - Decimal("0.01"))), FakePortfolio(), market, NOW)
    assert below.reason is RiskReason.PRICE_COLLAR
    assert "outside the collar" in below.detail
    assert reason(g, spread("d", str(high + Decimal("0.01"))), market) is RiskReason.PRICE_COLLAR


def test_collar_catches_a_sign_flipped_credit(tmp_path: Path, market: FakeMarket) -> None:
    g = make_guard(tmp_path)
    d = g.check(spread("a", "1.50"), FakePortfolio(), market, NOW)  # pays 1.50 for a credit spread
    assert d.reason is RiskReason.PRICE_COLLAR


def test_close_collar_checks_only_the_through_the_market_side(
    tmp_path: Path, market: FakeMarket
) -> None:
    # Buying the spread back: natural 4.20 − 2.50 = 1.70; slack 2 × 0.25 + 0.5 × 6.70 = 3.85.
    g = make_guard(tmp_path)
    g.halt("operator", NOW)
    assert reason(g, replace(closing("c1"), limit_price=Decimal("5.55")), market) is OK
    c2 = replace(closing("c2"), limit_price=Decimal("5.56"))
    d = g.check(c2, holding(c2), market, NOW)
    assert d.reason is RiskReason.PRICE_COLLAR
    assert "through the market" in d.detail
    assert reason(g, replace(closing("c3"), limit_price=Decimal("-10")), market) is OK


def test_close_without_quotes_or_with_a_stale_chain_skips_the_collar(tmp_path: Path) -> None:
    g = make_guard(tmp_path)
    absurd = replace(closing("c1"), limit_price=Decimal("50"))
    assert reason(g, absurd, FakeMarket({"SPY": NOW}, {"SPY": None})) is OK
    stale = FakeMarket({"SPY": NOW}, {"SPY": make_fake_chain(ts_ns=NOW - 121 * S)})
    assert reason(g, replace(absurd, intent_id="c2"), stale) is OK
    far_leg = replace(absurd, intent_id="c3", legs=(leg(Side.BUY, OptionType.PUT, 520),))
    assert reason(g, far_leg, FakeMarket({"SPY": NOW})) is OK


def test_rejects_open_without_a_chain_or_a_two_sided_quote_for_a_leg(tmp_path: Path) -> None:
    g = make_guard(tmp_path)
    none = g.check(spread("a"), FakePortfolio(), FakeMarket({"SPY": NOW}, {"SPY": None}), NOW)
    assert (none.reason, none.detail) == (RiskReason.MISSING_QUOTE, "no option chain for SPY")
    unlisted = replace(spread("b"), legs=(leg(Side.SELL, OptionType.PUT, 447), spread("x").legs[1]))
    d = g.check(unlisted, FakePortfolio(), FakeMarket({"SPY": NOW}), NOW)
    assert d.reason is RiskReason.MISSING_QUOTE
    assert d.detail == f"no two-sided quote for leg {unlisted.legs[0].symbol}"
    chain = make_fake_chain()
    bid = chain.bid.copy()
    bid[chain.row(spread("x").legs[0].symbol)] = np.nan
    crossed = FakeMarket({"SPY": NOW}, {"SPY": replace(chain, bid=bid)})
    assert reason(g, spread("c"), crossed) is RiskReason.MISSING_QUOTE


def test_rejects_open_on_a_stale_chain(tmp_path: Path) -> None:
    g = make_guard(tmp_path)
    old = FakeMarket({"SPY": NOW}, {"SPY": make_fake_chain(ts_ns=NOW - 121 * S)})
    d = g.check(spread("a"), FakePortfolio(), old, NOW)
    assert d.reason is RiskReason.STALE_DATA
    assert "chain is 121.0 s old" in d.detail
    fresh = FakeMarket({"SPY": NOW}, {"SPY": make_fake_chain(ts_ns=NOW - 120 * S)})
    assert reason(g, spread("b"), fresh) is OK


# ---------------------------------------------------------------- size per order and per window
def test_max_contracts_per_order(tmp_path: Path, market: FakeMarket) -> None:
    g = make_guard(tmp_path, max_contracts_per_order=8)
    assert reason(g, spread("a", quantity=4), market) is OK  # 2 legs × 4
    d = g.check(spread("b", quantity=5), FakePortfolio(), market, NOW)
    assert (d.reason, d.detail) == (
        RiskReason.ORDER_CONTRACTS,
        "10 contracts in one order, limit 8",
    )


def test_max_premium_per_order(tmp_path: Path, market: FakeMarket) -> None:
    g = make_guard(tmp_path, max_premium_per_order=450)
    assert reason(g, spread("a", quantity=3), market) is OK  # 1.50 × 3 × 100
    d = g.check(spread("b", quantity=4), FakePortfolio(), market, NOW)
    assert d.reason is RiskReason.ORDER_PREMIUM
    assert "$600.00" in d.detail


def test_contracts_per_window_count_approved_opens_only_and_expire(
    tmp_path: Path, market: FakeMarket
) -> None:
    g = make_guard(tmp_path, max_contracts_per_window=10, size_window_minutes=60)
    assert reason(g, spread("a", quantity=3), market) is OK  # 6
    assert reason(g, spread("b", "-1.49", quantity=2), market, NOW + MIN) is OK  # 10
    assert reason(g, closing("c"), market, NOW + MIN) is OK  # closes neither count nor stop
    later = NOW + 2 * MIN
    market.last["SPY"] = later
    d = g.check(spread("d", "-1.48"), FakePortfolio(), market, later)
    assert d.reason is RiskReason.WINDOW_CONTRACTS
    assert "10 contracts opened in the last 60 min + 2" in d.detail
    assert reason(g, spread("e", "-1.48"), market, NOW + 60 * MIN) is OK  # "a" left the window


def test_premium_per_window(tmp_path: Path, market: FakeMarket) -> None:
    g = make_guard(tmp_path, max_premium_per_window=299)
    assert reason(g, spread("a"), market) is OK
    assert reason(g, spread("b", "-1.49"), market, NOW + MIN) is OK  # 150 + 149 = 299
    assert reason(g, spread("c", "-1.48"), market, NOW + MIN) is RiskReason.WINDOW_PREMIUM
    assert reason(g, spread("d", "-1.51"), market, NOW + 60 * MIN) is RiskReason.WINDOW_PREMIUM
    assert reason(g, spread("e", "-1.50"), market, NOW + 60 * MIN) is OK  # "a" left the window


def test_limits_reject_invalid_config_values_with_the_key_and_range() -> None:
    with pytest.raises(ValidationError, match="collar_tolerance_pct"):
        RiskConfig(collar_tolerance_pct=2)
    with pytest.raises(ValidationError, match="greek_resume_fraction"):
        RiskConfig(greek_resume_fraction=1.0)


# ---------------------------------------------------------------- repeated execution
def _round_trip(g: RiskGuard, market: FakeMarket, n: int, t: int) -> int:
    """Open, fill, close and fill one put credit spread; return the time after it."""
    opened = spread(f"o{n}", "-1.50" if n % 2 else "-1.49")
    assert g.check(opened, FakePortfolio(), market, t).approved
    g.on_fill(fill_of(opened, t + S, f"p{n}"))
    shut = closing(f"c{n}", position_id=f"p{n}")
    assert g.check(shut, holding(shut), market, t + 2 * S).approved
    g.on_fill(fill_of(shut, t + 3 * S, f"p{n}"))
    return t + 4 * S


def test_reentry_throttle_stops_a_fill_and_re_enter_loop(
    tmp_path: Path, market: FakeMarket
) -> None:
    g = make_guard(tmp_path, max_reentries=2, reentry_window_minutes=60, duplicate_window_seconds=0)
    t = _round_trip(g, market, 1, NOW)
    t = _round_trip(g, market, 2, t)  # re-entry 1
    t = _round_trip(g, market, 3, t)  # re-entry 2
    d = g.check(spread("o4"), FakePortfolio(), market, t)  # would be re-entry 3
    assert d.reason is RiskReason.REENTRY_THROTTLE
    assert d.detail.startswith("SPY put_credit_spread was closed 3 times")
    other = replace(spread("o5"), strategy_type="bull_put")
    assert reason(g, other, market, t) is OK
    assert reason(g, spread("o6", "-1.47"), market, NOW + 60 * MIN + 2 * S) is not OK
    assert reason(g, spread("o7", "-1.47"), market, NOW + 60 * MIN + 3 * S) is OK  # 1st close out


def test_unfilled_closes_do_not_count_as_round_trips(tmp_path: Path, market: FakeMarket) -> None:
    g = make_guard(tmp_path, max_reentries=1)
    for n in range(3):
        assert reason(g, closing(f"c{n}", position_id=f"p{n}"), market) is OK
    assert reason(g, spread("o"), market) is OK


# ---------------------------------------------------------------- duplicate orders
def test_same_order_under_a_new_id_is_a_duplicate_within_the_window(
    tmp_path: Path, market: FakeMarket
) -> None:
    g = make_guard(tmp_path, duplicate_window_seconds=30)
    assert reason(g, spread("a"), market) is OK
    d = g.check(spread("b"), FakePortfolio(), market, NOW + 29 * S)
    assert d.reason is RiskReason.DUPLICATE
    assert "same order as intent a approved 29.0 s ago" in d.detail
    assert reason(g, spread("c", quantity=2), market, NOW + 29 * S) is OK  # a different order
    assert reason(g, spread("d"), market, NOW + 30 * S) is OK  # "a" is 30 s old: out


def test_duplicate_window_zero_disables_the_content_check(
    tmp_path: Path, market: FakeMarket
) -> None:
    g = make_guard(tmp_path, duplicate_window_seconds=0)
    assert reason(g, spread("a"), market) is OK
    assert reason(g, spread("b"), market) is OK


# ---------------------------------------------------------------- portfolio cap
def _loss_position(pid: str, loss: str) -> Position:
    return replace(fake_position(pid), max_loss=Decimal(loss))


def test_portfolio_cap_on_open_max_loss_plus_the_order(tmp_path: Path, market: FakeMarket) -> None:
    g = make_guard(tmp_path)  # the trade agent's default: 0.10 × equity = $10,000
    at_cap = FakePortfolio(open_positions=[_loss_position("p1", "-9650")])
    assert g.check(spread("a"), at_cap, market, NOW).approved  # 9650 + 350
    over = FakePortfolio(open_positions=[_loss_position("p1", "-9650.01")])
    d = g.check(spread("b"), over, market, NOW)
    assert d.reason is RiskReason.PORTFOLIO_RISK_CAP
    assert "$9,650.01 + this order's $350.00 exceeds 0.1 × equity" in d.detail
    over.open_positions.append(position_closed_by(closing("c")))
    assert g.check(closing("c"), over, market, NOW).approved


def test_portfolio_cap_comes_from_risk_or_else_the_trade_agent(tmp_path: Path) -> None:
    kill = {"kill_file": tmp_path / "KILL"}
    agent = Settings(
        risk=RiskConfig(**kill), trade_agent=TradeAgentConfig(max_portfolio_risk_pct=0.3)
    )
    guard = RiskGuard.from_settings(agent, CAL, broker_is_live=False)
    assert guard.portfolio_risk_pct == Decimal("0.3")
    own = agent.model_copy(update={"risk": RiskConfig(**kill, max_portfolio_risk_pct=0.05)})
    guard = RiskGuard.from_settings(own, CAL, broker_is_live=False)
    assert guard.portfolio_risk_pct == Decimal("0.05")


# ---------------------------------------------------------------- greek budgets
def long_calls(pid: str, quantity: int) -> Position:
    """`quantity` long 450 calls: per contract delta 0.5, gamma 0.03, vega 60, theta −40/yr."""
    symbol = leg(Side.BUY, OptionType.CALL, 450).symbol
    return replace(
        fake_position(pid),
        strategy_type="long_call",
        quantity=quantity,
        legs=(PositionLeg(symbol, True, Decimal(450), EXPIRY, 1),),
        max_loss=Decimal("-1"),
    )


LOOSE = {"max_gamma_pct": 10, "max_vega_pct": 10, "max_theta_pct": 10}


def test_opening_order_that_would_exceed_a_greek_budget_is_rejected(
    tmp_path: Path, market: FakeMarket
) -> None:
    intent = replace(
        spread("a"), legs=(leg(Side.BUY, OptionType.CALL, 450),), limit_price=Decimal("4.10")
    )
    chain = market.chain("SPY")
    assert chain is not None
    delta = reference_greeks(intent, chain)[0]  # 0.5 × 100 × 450 = 22,500 $
    assert delta == pytest.approx(22_500)
    at = make_guard(tmp_path, max_delta_pct=delta / 100_000, **LOOSE)
    assert reason(at, intent, market) is OK
    below = make_guard(tmp_path, max_delta_pct=delta / 100_000 * 0.999, **LOOSE)
    d = below.check(intent, FakePortfolio(), market, NOW)
    assert d.reason is RiskReason.GREEK_BUDGET
    assert d.detail.startswith("after this order the portfolio delta $22,500 beyond ±$22,478")


@pytest.mark.parametrize(
    ("budget", "name"),
    [("max_gamma_pct", "gamma"), ("max_vega_pct", "vega"), ("max_theta_pct", "theta")],
)
def test_each_greek_has_its_budget(
    tmp_path: Path, market: FakeMarket, budget: str, name: str
) -> None:
    risk: dict[str, object] = {"max_delta_pct": 10, **LOOSE, budget: 1e-6}
    g = make_guard(tmp_path, **risk)
    intent = replace(
        spread("a"), legs=(leg(Side.BUY, OptionType.CALL, 450),), limit_price=Decimal("4.10")
    )
    d = g.check(intent, FakePortfolio(), market, NOW)
    assert d.reason is RiskReason.GREEK_BUDGET
    assert f"portfolio {name} " in d.detail


def test_portfolio_greeks_use_positions_and_the_latest_chain(
    tmp_path: Path, market: FakeMarket
) -> None:
    g = make_guard(tmp_path)
    greeks = g.portfolio_greeks([long_calls("p1", 10)], market)
    assert greeks.delta == pytest.approx(0.5 * 100 * 10 * 450)
    assert greeks.gamma == pytest.approx(0.03 * 10 * 450**2)  # per 1% move
    assert greeks.vega == pytest.approx(60 * 10)  # per vol point
    assert greeks.theta == pytest.approx(-40 * 100 * 10 / 365)  # per day
    assert greeks.missing == 0


def test_greek_breach_on_a_mark_moves_to_reducing_and_back_with_hysteresis(
    tmp_path: Path, market: FakeMarket
) -> None:
    # delta budget 2.0 × 100,000 = $200,000; 10 long 450 calls carry $225,000; resume ≤ $160,000.
    g = make_guard(tmp_path, max_delta_pct=2.0, greek_resume_fraction=0.8, **LOOSE)
    book = FakePortfolio(open_positions=[long_calls("p1", 10)])
    g.on_mark(Decimal(0), book, market, NOW)
    assert g.state is TradingState.REDUCING
    d = g.check(spread("a"), book, market, NOW)
    assert (d.reason, d.trading_state) == (RiskReason.REDUCE_ONLY, TradingState.REDUCING)
    assert "greek budget: portfolio delta $225,000 beyond ±$200,000" in d.detail
    reduce = closing("c")
    held = FakePortfolio(open_positions=[*book.open_positions, position_closed_by(reduce)])
    assert g.check(reduce, held, market, NOW).approved
    for qty, state in [(8, TradingState.REDUCING), (7, TradingState.ACTIVE)]:
        book.open_positions = [long_calls("p1", qty)]
        g.on_mark(Decimal(0), book, market, NOW + S)
        assert g.state is state
    changes = [(c.state, c.reason) for c in g.pop_state_changes()]
    assert changes == [
        (
            TradingState.REDUCING,
            "greek budget: portfolio delta $225,000 beyond ±$200,000 (2.0 × equity)",
        ),
        (TradingState.ACTIVE, "greeks back within budget"),
    ]


def test_greek_reducing_never_overrides_a_halt(tmp_path: Path, market: FakeMarket) -> None:
    g = make_guard(tmp_path, max_delta_pct=2.0, **LOOSE)
    book = FakePortfolio(open_positions=[long_calls("p1", 10)])
    g.halt("operator", NOW)
    g.on_mark(Decimal(0), book, market, NOW + S)
    assert g.state is TradingState.HALTED
    # The halt lifts with the next New York session; the next mark finds the breach again.
    tomorrow = NOW + DAY
    market.last["SPY"] = tomorrow
    g.on_mark(Decimal(0), book, market, tomorrow)
    assert g.state is TradingState.REDUCING
    g.on_mark(Decimal("-5000"), book, market, tomorrow + S)  # daily loss: HALTED wins
    assert g.state is TradingState.HALTED
    book.open_positions = []
    g.on_mark(Decimal(0), book, market, tomorrow + 2 * S)
    assert g.state is TradingState.HALTED
    states = [c.state for c in g.pop_state_changes()]
    assert states == [
        TradingState.HALTED,
        TradingState.ACTIVE,
        TradingState.REDUCING,
        TradingState.HALTED,
    ]


def test_greeks_never_lift_an_operators_reducing(tmp_path: Path, market: FakeMarket) -> None:
    g = make_guard(tmp_path, max_delta_pct=2.0, **LOOSE)
    book = FakePortfolio(open_positions=[long_calls("p1", 10)])
    g.on_mark(Decimal(0), book, market, NOW)
    g.reduce_only("operator", NOW + S)  # the operator takes over the REDUCING state
    book.open_positions = []
    g.on_mark(Decimal(0), book, market, NOW + 2 * S)
    assert g.state is TradingState.REDUCING
    g.resume("operator", NOW + 3 * S)
    assert g.state is TradingState.ACTIVE


def test_operator_reduce_only_does_not_override_a_halt(tmp_path: Path) -> None:
    g = make_guard(tmp_path)
    g.halt("daily loss limit", NOW)
    g.reduce_only("broker degraded", NOW + S)
    assert g.state is TradingState.HALTED
    sm = TradingStateMachine(CAL)
    assert sm.halt("x", NOW)
    assert not sm.reduce_only("y", NOW)
    assert not sm.end_reducing("z", NOW)
    assert sm.state is TradingState.HALTED


def test_a_close_must_exactly_reverse_an_open_position(tmp_path: Path, market: FakeMarket) -> None:
    g = make_guard(tmp_path)
    close = closing("c1")  # buys back the 450/445 put spread of position p-1
    assert g.check(close, holding(close), market, NOW).approved
    cases = {
        "not open": (closing("c2"), FakePortfolio()),
        "more than held": (replace(closing("c3"), quantity=2), holding(closing("c3"))),
        "other legs": (
            replace(closing("c4"), legs=(leg(Side.BUY, OptionType.PUT, 450),)),
            holding(closing("c4")),
        ),
        "same legs, same direction as held (would double it)": (
            closing("c5"),
            FakePortfolio(open_positions=[position_closed_by(replace(closing("c5"), legs=tuple(
                replace(lg, side=Side.SELL if lg.side is Side.BUY else Side.BUY)
                for lg in closing("c5").legs
            )))]),
        ),
    }  # fmt: skip
    for why, (intent, book) in cases.items():
        d = g.check(intent, book, market, NOW)
        assert d.reason is RiskReason.CLOSE_MISMATCH, why
    assert "not open" in g.check(closing("c6"), FakePortfolio(), market, NOW).detail
