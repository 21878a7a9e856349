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
from gnosisd.core.enums import OptionType, PositionEffect, RiskReason, Side
from gnosisd.risk.guard import RiskGuard
from tests.unit.risk.fakes import (
    NOW,
    FakeMarket,
    FakePortfolio,
    S,
    fake_position,
    leg,
    position_closed_by,
)
from tests.unit.risk.reference import reference_band, reference_greeks

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
    offset_cents=st.integers(min_value=-300, max_value=300),
    quantity=st.sampled_from([1, 2, 3, 5, 10, 30]),
    equity=st.integers(min_value=1_000, max_value=300_000),
    pnl=st.integers(min_value=-12_000, max_value=2_000),
    n_open=st.integers(min_value=0, max_value=6),
    halted=st.sampled_from([False, False, False, True]),
    killed=st.sampled_from([False, False, False, True]),
    effect=st.sampled_from([PositionEffect.OPEN, PositionEffect.CLOSE]),
    held=st.sampled_from([True, True, True, False]),
)
def test_never_approves_an_open_that_breaches_a_limit(
    legs: list[OrderLeg],
    offset_cents: int,
    quantity: int,
    equity: int,
    pnl: int,
    n_open: int,
    halted: bool,
    killed: bool,
    effect: PositionEffect,
    held: bool,
) -> None:
    cfg = RiskConfig(kill_file=Path("/nonexistent/gnosisd-test/KILL"))
    guard = RiskGuard(cfg, CAL, broker_is_live=False)
    if halted:
        guard.halt("test", NOW)
    if killed:
        guard.kill("test")
    market = FakeMarket({"SPY": NOW - S})
    chain = market.chain("SPY")
    assert chain is not None
    # The limit: the legs' net mid (to the cent) moved by a random offset, so that it lands on
    # both sides of the collar's edges.
    rows = {sym: i for i, sym in enumerate(chain.symbols)}
    mid = sum(
        (1 if lg.side is Side.BUY else -1) * lg.ratio * float(chain.mid[rows[lg.symbol]])
        for lg in legs
    )
    intent = SubmitOrder(
        intent_id="x",
        underlying="SPY",
        ts_ns=NOW,
        effect=effect,
        legs=tuple(legs),
        quantity=quantity,
        limit_price=Decimal(round(mid * 100) + offset_cents) / 100,
        position_id="p-1" if effect is PositionEffect.CLOSE else None,
    )
    book = FakePortfolio(
        equity_=Decimal(equity),
        pnl=Decimal(pnl),
        open_positions=[fake_position(f"p-{i + 2}") for i in range(n_open)],
    )
    if effect is PositionEffect.CLOSE and held:
        book.open_positions.append(position_closed_by(intent))  # p-1, which the close reverses
    d = guard.check(intent, book, market, NOW)
    per_share = brute_force_max_loss(intent.legs, intent.limit_price)
    if per_share is not None:
        assert d.max_loss == per_share * 100 * quantity
    limit = float(intent.limit_price)
    if d.approved and effect is PositionEffect.OPEN:
        assert per_share is not None
        loss = -per_share * 100 * quantity
        assert loss <= Decimal(repr(cfg.max_trade_risk_pct)) * equity
        assert 350 * n_open + loss <= Decimal("0.10") * equity  # the agent's default cap
        assert not halted
        assert not killed
        assert pnl > -cfg.max_daily_loss
        assert n_open < cfg.max_open_positions
        assert sum(lg.ratio for lg in legs) * quantity <= cfg.max_contracts_per_order
        assert abs(intent.limit_price) * quantity * 100 <= Decimal(repr(cfg.max_premium_per_order))
        low, high = reference_band(intent, chain, cfg.collar_tolerance, cfg.collar_tolerance_pct)
        assert low - 1e-9 <= limit <= high + 1e-9
        greeks = reference_greeks(intent, chain)  # the fake positions have no legs
        budgets = [cfg.max_delta_pct, cfg.max_gamma_pct, cfg.max_vega_pct, cfg.max_theta_pct]
        for g, pct in zip(greeks, budgets, strict=True):
            assert abs(g) <= pct * equity * (1 + 1e-9)
    event(f"{effect} {d.reason}")
    if effect is PositionEffect.CLOSE and not held:
        # A close must reverse an open position, or it would open new risk at the broker.
        assert d.reason is RiskReason.CLOSE_MISMATCH
    elif effect is PositionEffect.CLOSE:
        # Closes reduce risk: only validity, the live gate, duplicates and the close collar apply.
        _, high = reference_band(
            intent, chain, cfg.close_collar_tolerance, cfg.close_collar_tolerance_pct
        )
        assert d.approved == (limit <= high + 1e-9)


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
