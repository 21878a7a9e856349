"""Property: the guard never approves an open that breaches a limit, or while halted/killed."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

from hypothesis import event, given, settings
from hypothesis import strategies as st

from gnosisd.bus.events import OrderLeg, SubmitOrder
from gnosisd.core.calendar import TradingCalendar
from gnosisd.core.config import RiskConfig
from gnosisd.core.enums import OptionType, PositionEffect, Side
from gnosisd.risk.guard import RiskGuard
from tests.unit.risk.fakes import NOW, FakeMarket, FakePortfolio, S, fake_position, leg

CAL = TradingCalendar()
STRIKES = [Decimal(k) for k in range(430, 471, 5)]


def brute_force_max_loss(legs: tuple[OrderLeg, ...], net: Decimal) -> Decimal | None:
    """Per-share worst expiry P&L, by evaluating every kink; None if it falls without bound."""

    def pnl(spot: Decimal) -> Decimal:
        total = -net
        for lg in legs:
            sign = 1 if lg.side is Side.BUY else -1
            if lg.option_type is OptionType.CALL:
                total += sign * lg.ratio * max(spot - lg.strike, Decimal(0))
            else:
                total += sign * lg.ratio * max(lg.strike - spot, Decimal(0))
        return total

    top = max(lg.strike for lg in legs)
    if pnl(top + 1000) < pnl(top):  # falls past the top strike: unbounded loss
        return None
    points = [Decimal(0), *(lg.strike for lg in legs), top + 1000]
    return min(min(pnl(p) for p in points), Decimal(0))


legs_st = st.lists(
    st.builds(
        leg,
        st.sampled_from([Side.BUY, Side.SELL]),
        st.sampled_from([OptionType.CALL, OptionType.PUT]),
        st.sampled_from(STRIKES),
        st.integers(min_value=1, max_value=3),
    ),
    min_size=1,
    max_size=4,
    unique_by=lambda lg: lg.symbol,
)


@settings(max_examples=300, deadline=None)
@given(
    legs=legs_st,
    limit_cents=st.integers(min_value=-1500, max_value=1500),
    quantity=st.integers(min_value=1, max_value=30),
    equity=st.integers(min_value=1_000, max_value=300_000),
    pnl=st.integers(min_value=-12_000, max_value=2_000),
    n_open=st.integers(min_value=0, max_value=6),
    halted=st.booleans(),
    killed=st.booleans(),
    effect=st.sampled_from([PositionEffect.OPEN, PositionEffect.CLOSE]),
)
def test_never_approves_an_open_that_breaches_a_limit(
    legs: list[OrderLeg],
    limit_cents: int,
    quantity: int,
    equity: int,
    pnl: int,
    n_open: int,
    halted: bool,
    killed: bool,
    effect: PositionEffect,
) -> None:
    cfg = RiskConfig(kill_file=Path("/nonexistent/gnosisd-test/KILL"))
    guard = RiskGuard(cfg, CAL, broker_is_live=False)
    if halted:
        guard.halt("test", NOW)
    if killed:
        guard.kill("test")
    intent = SubmitOrder(
        intent_id="x",
        underlying="SPY",
        ts_ns=NOW,
        effect=effect,
        legs=tuple(legs),
        quantity=quantity,
        limit_price=Decimal(limit_cents) / 100,
        position_id="p-1" if effect is PositionEffect.CLOSE else None,
    )
    book = FakePortfolio(
        equity_=Decimal(equity),
        pnl=Decimal(pnl),
        open_positions=[fake_position(f"p-{i}") for i in range(n_open)],
    )
    d = guard.check(intent, book, FakeMarket({"SPY": NOW - S}), NOW)
    per_share = brute_force_max_loss(intent.legs, intent.limit_price)
    if per_share is not None:
        assert d.max_loss == per_share * 100 * quantity
    if d.approved and effect is PositionEffect.OPEN:
        assert per_share is not None
        assert -per_share * 100 * quantity <= Decimal(repr(cfg.max_trade_risk_pct)) * equity
        assert not halted
        assert not killed
        assert pnl > -cfg.max_daily_loss
        assert n_open < cfg.max_open_positions
    event(f"{effect} approved={d.approved}")
    if effect is PositionEffect.CLOSE:
        assert d.approved  # closes are risk-reducing: only validity, live gate, duplicates apply


def test_brute_force_reference_matches_a_known_iron_condor() -> None:
    """Sanity check of the brute force on a known structure (iron condor, 5 wide, 1.20 credit)."""
    condor = (
        leg(Side.BUY, OptionType.PUT, 435),
        leg(Side.SELL, OptionType.PUT, 440),
        leg(Side.SELL, OptionType.CALL, 460),
        leg(Side.BUY, OptionType.CALL, 465),
    )
    assert brute_force_max_loss(condor, Decimal("-1.20")) == Decimal("-3.80")
    assert brute_force_max_loss((replace(condor[3], side=Side.SELL),), Decimal(0)) is None
