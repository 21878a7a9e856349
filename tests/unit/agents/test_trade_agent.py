"""Trade agent: ideas from listed legs, exact risk, capped size, routing, ranking and intents."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gnosisd.agents.exits import exit_rules_for_strategy
from gnosisd.agents.trade_agent import TradeAgent, route
from gnosisd.bus.events import ChainSnapshot
from gnosisd.bus.records import MarketContext, TradeIdea
from gnosisd.core.clock import ns_to_datetime
from gnosisd.core.config import LiquidityConfig, TradeAgentConfig
from gnosisd.core.enums import Direction, PositionEffect, Regime, Side, StrategyType
from gnosisd.testing.chains import DEFAULT_AS_OF_NS, make_chain

TS = DEFAULT_AS_OF_NS
EQUITY = Decimal(100_000)
CFG = TradeAgentConfig(max_ideas_per_decision=10)


def ctx(
    direction: Direction = Direction.BULLISH,
    confidence: float = 0.7,
    regime: Regime = Regime.TREND_UP,
    iv_rank: float | None = 0.5,
    symbol: str = "SPY",
    spot: float = 500.0,
) -> MarketContext:
    return MarketContext(
        symbol=symbol,
        as_of=ns_to_datetime(TS),
        spot=spot,
        direction=direction,
        confidence=confidence,
        regime=regime,
        iv_rank=iv_rank,
        exit_rules=exit_rules_for_strategy(StrategyType.LONG_CALL, confidence),
    )


def agent(cap: float = 0.05, cfg: TradeAgentConfig = CFG) -> TradeAgent:
    return TradeAgent(cfg, LiquidityConfig(), cap)


ALL_CONTEXTS = [
    ctx(Direction.BULLISH),
    ctx(Direction.BEARISH, regime=Regime.TREND_DOWN),
    ctx(Direction.NEUTRAL, regime=Regime.RANGE, iv_rank=0.8),
    ctx(Direction.NEUTRAL, regime=Regime.RANGE, iv_rank=0.1),
    ctx(Direction.BULLISH, regime=Regime.VOL_EXPANSION),
]


def all_ideas(chain: ChainSnapshot, cap: float = 0.05, equity: Decimal = EQUITY) -> list[TradeIdea]:
    a = agent(cap)
    return [i for c in ALL_CONTEXTS for i in a.propose(c, chain, equity, TS)]


def grid_min_payoff(idea: TradeIdea) -> float:
    """Independent check: per-share expiry P&L minimum on a fine grid plus every strike."""
    strikes = [float(leg.strike) for leg in idea.legs]
    grid = np.concatenate([np.linspace(0.0, 3.0 * max(strikes), 30_001), strikes])
    pnl = np.full_like(grid, -idea.net_price)
    for leg in idea.legs:
        sign = 1 if leg.side is Side.BUY else -1
        k = float(leg.strike)
        intrinsic = (
            np.maximum(grid - k, 0.0) if leg.option_type == "call" else np.maximum(k - grid, 0.0)
        )
        pnl += sign * leg.ratio * intrinsic
    return float(pnl.min())


# ------------------------------------------------------------------ legs and risk
def test_every_leg_is_a_listed_contract_priced_at_its_mid_rounded_against_us() -> None:
    chain = make_chain()
    ideas = all_ideas(chain)
    assert {i.strategy_type for i in ideas} == set(
        BUILT := {
            StrategyType.LONG_CALL,
            StrategyType.CALL_DEBIT_SPREAD,
            StrategyType.LONG_PUT,
            StrategyType.PUT_DEBIT_SPREAD,
            StrategyType.IRON_CONDOR,
            StrategyType.STRADDLE,
            StrategyType.STRANGLE,
        }
    )
    assert len(BUILT) == 7
    for idea in ideas:
        for leg in idea.legs:
            row = chain.row(leg.symbol)
            m = float(chain.mid[row])
            if leg.side is Side.BUY:
                assert m - 1e-9 <= leg.price < m + 0.01
            else:
                assert m - 0.01 < leg.price <= m + 1e-9
            assert round(leg.price, 2) == leg.price
            assert float(leg.strike) == chain.strike[row]
            assert leg.expiry == chain.expiry(row)
            assert leg.option_type == chain.option_type(row)
            assert leg.quantity == leg.ratio * idea.quantity


def test_net_price_is_the_signed_sum_of_the_leg_limit_prices() -> None:
    for idea in all_ideas(make_chain()):
        raw = sum((1 if leg.side is Side.BUY else -1) * leg.ratio * leg.price for leg in idea.legs)
        assert idea.net_price == pytest.approx(raw, abs=1e-9)
        assert round(idea.net_price, 2) == idea.net_price


def test_slippage_allowance_moves_every_leg_price_against_us() -> None:
    chain = make_chain()
    slipping = TradeAgent(CFG, LiquidityConfig(), 0.05, slippage_pct=0.01)
    ideas = [i for c in ALL_CONTEXTS for i in slipping.propose(c, chain, EQUITY, TS)]
    assert ideas
    legs = [leg for idea in ideas for leg in idea.legs]
    for leg in legs:
        m = float(chain.mid[chain.row(leg.symbol)])
        if leg.side is Side.BUY:
            assert leg.price >= m * 1.01 - 1e-9
        else:
            assert leg.price <= m * 0.99 + 1e-9


def test_debit_structures_pay_and_the_condor_collects_a_credit() -> None:
    for idea in all_ideas(make_chain()):
        if idea.strategy_type is StrategyType.IRON_CONDOR:
            assert idea.net_price < 0
        else:
            assert idea.net_price > 0


def test_max_loss_equals_grid_minimum_of_payoff_times_contracts() -> None:
    ideas = all_ideas(make_chain())
    assert ideas
    for idea in ideas:
        expected = grid_min_payoff(idea) * 100 * idea.quantity
        assert idea.max_loss == pytest.approx(expected, abs=1e-6)
        assert idea.max_loss < 0


def test_max_profit_is_none_only_for_structures_unbounded_above() -> None:
    by_type = {i.strategy_type: i for i in all_ideas(make_chain())}
    unbounded = {StrategyType.LONG_CALL, StrategyType.STRADDLE, StrategyType.STRANGLE}
    for strategy, idea in by_type.items():
        assert (idea.max_profit is None) == (strategy in unbounded), strategy
    spread = by_type[StrategyType.CALL_DEBIT_SPREAD]
    k_long, k_short = (float(leg.strike) for leg in spread.legs)
    assert spread.max_profit == pytest.approx(
        (k_short - k_long - spread.net_price) * 100 * spread.quantity
    )


def test_breakevens_are_where_the_payoff_crosses_zero() -> None:
    for idea in all_ideas(make_chain()):
        assert idea.breakevens
        for be in idea.breakevens:
            pnl = -idea.net_price
            for leg in idea.legs:
                sign = 1 if leg.side is Side.BUY else -1
                k = float(leg.strike)
                pnl += sign * max(be - k if leg.option_type == "call" else k - be, 0.0)
            assert pnl == pytest.approx(0.0, abs=1e-9)


# ------------------------------------------------------------------ sizing
@pytest.mark.parametrize(
    "equity", [Decimal(30_000), Decimal(100_000), Decimal("251234.56"), Decimal(2_000_000)]
)
def test_size_is_the_largest_whole_count_within_the_risk_cap(equity: Decimal) -> None:
    cap = Decimal("0.02") * equity
    ideas = all_ideas(make_chain(), cap=0.02, equity=equity)
    assert ideas
    for idea in ideas:
        total = Decimal(repr(idea.max_loss))
        per_contract = -total / idea.quantity
        assert -total <= cap
        assert -total + per_contract > cap  # one more contract would breach the cap


def test_idea_that_cannot_afford_one_contract_is_omitted_with_a_reason() -> None:
    a = agent(cap=0.01)
    ideas = a.propose(ctx(Direction.BULLISH), make_chain(), Decimal(80_000), TS)  # cap $800
    assert [i.strategy_type for i in ideas] == [StrategyType.CALL_DEBIT_SPREAD]
    assert [s for s, _ in a.last_rejections] == [StrategyType.LONG_CALL]
    assert "cap" in a.last_rejections[0][1]
    assert a.propose(ctx(Direction.BULLISH), make_chain(), Decimal(1_000), TS) == []


# ------------------------------------------------------------------ routing
@pytest.mark.parametrize(
    ("context", "expected"),
    [
        (ctx(Direction.BULLISH), {StrategyType.LONG_CALL, StrategyType.CALL_DEBIT_SPREAD}),
        (
            ctx(Direction.BEARISH, regime=Regime.TREND_DOWN),
            {StrategyType.LONG_PUT, StrategyType.PUT_DEBIT_SPREAD},
        ),
        (ctx(Direction.NEUTRAL, regime=Regime.RANGE, iv_rank=0.8), {StrategyType.IRON_CONDOR}),
        (ctx(Direction.NEUTRAL, regime=Regime.RANGE, iv_rank=None), {StrategyType.IRON_CONDOR}),
        (
            ctx(Direction.NEUTRAL, regime=Regime.RANGE, iv_rank=0.1),
            {StrategyType.STRADDLE, StrategyType.STRANGLE},
        ),
        (
            ctx(Direction.NEUTRAL, regime=Regime.VOL_EXPANSION, iv_rank=0.9),
            {StrategyType.STRADDLE, StrategyType.STRANGLE},
        ),
        (
            ctx(Direction.BEARISH, regime=Regime.VOL_EXPANSION),
            {StrategyType.LONG_PUT, StrategyType.PUT_DEBIT_SPREAD, StrategyType.STRADDLE},
        ),
    ],
)
def test_routes_context_to_strategies(context: MarketContext, expected: set[StrategyType]) -> None:
    assert set(route(context)) == expected
    ideas = agent(cap=0.1).propose(context, make_chain(), Decimal(1_000_000), TS)
    assert {i.strategy_type for i in ideas} == expected
    assert all(i.direction is context.direction and i.regime is context.regime for i in ideas)


def test_no_ideas_below_min_confidence() -> None:
    a = agent(cfg=TradeAgentConfig(min_confidence=0.4, max_ideas_per_decision=10))
    assert a.propose(ctx(confidence=0.39), make_chain(), EQUITY, TS) == []
    assert a.propose(ctx(confidence=0.4), make_chain(), EQUITY, TS) != []


def test_uses_the_expiry_closest_to_target_dte_above_min_dte() -> None:
    today = date(2025, 6, 2)
    chain = make_chain(expiries=[today + timedelta(days=d) for d in (3, 10, 24, 45)])
    cfg = TradeAgentConfig(target_dte=30, min_dte=7, max_ideas_per_decision=10)
    ideas = agent(cfg=cfg).propose(ctx(), chain, EQUITY, TS)
    assert ideas
    assert all(leg.expiry == today + timedelta(days=24) for i in ideas for leg in i.legs)
    cfg_far = TradeAgentConfig(target_dte=30, min_dte=50, max_ideas_per_decision=10)
    assert agent(cfg=cfg_far).propose(ctx(), chain, EQUITY, TS) == []


def test_context_for_another_symbol_is_a_wiring_error() -> None:
    with pytest.raises(ValueError, match="QQQ"):
        agent().propose(ctx(symbol="QQQ"), make_chain(), EQUITY, TS)


# ------------------------------------------------------------------ ranking, ids, exits
def test_ideas_are_ranked_by_score_and_cut_to_max_ideas_per_decision() -> None:
    context = ctx(Direction.BULLISH, regime=Regime.VOL_EXPANSION)
    ideas = agent(cap=0.1).propose(context, make_chain(), EQUITY, TS)
    assert len(ideas) == 3
    assert [i.rank for i in ideas] == [1, 2, 3]
    assert [i.score for i in ideas] == sorted((i.score for i in ideas), reverse=True)
    assert all(i.score > 0 for i in ideas)
    one = agent(cap=0.1, cfg=TradeAgentConfig(max_ideas_per_decision=1))
    assert one.propose(context, make_chain(), EQUITY, TS) == [ideas[0]]


def test_condor_scores_higher_when_iv_rank_is_high() -> None:
    chain = make_chain()
    rich = agent().propose(
        ctx(Direction.NEUTRAL, regime=Regime.RANGE, iv_rank=0.9), chain, EQUITY, TS
    )
    mid = agent().propose(
        ctx(Direction.NEUTRAL, regime=Regime.RANGE, iv_rank=0.4), chain, EQUITY, TS
    )
    assert rich[0].score > mid[0].score


def test_ideas_are_deterministic_with_ids_from_symbol_time_and_strategy() -> None:
    chain = make_chain()
    first = agent().propose(ctx(), chain, EQUITY, TS)
    second = agent().propose(ctx(), chain, EQUITY, TS)
    assert first == second
    assert {i.id for i in first} == {f"SPY-{TS}-call_debit_spread", f"SPY-{TS}-long_call"}
    assert all(i.as_of == datetime.fromtimestamp(TS / 1e9, tz=UTC) for i in first)


def test_exit_rules_come_from_the_strategy_family_and_confidence() -> None:
    for idea in all_ideas(make_chain()):
        assert idea.exit_rules == exit_rules_for_strategy(idea.strategy_type, idea.confidence)


def test_to_intent_builds_one_open_multi_leg_order_at_the_net_price() -> None:
    a = agent()
    idea = next(
        i
        for i in a.propose(
            ctx(Direction.NEUTRAL, regime=Regime.RANGE, iv_rank=0.8), make_chain(), EQUITY, TS
        )
    )
    intent = a.to_intent(idea, TS + 1)
    assert intent.effect is PositionEffect.OPEN
    assert intent.intent_id == f"open-{idea.id}" == a.to_intent(idea, TS + 2).intent_id
    assert intent.idea_id == idea.id
    assert intent.strategy_type == "iron_condor"
    assert intent.quantity == idea.quantity
    assert intent.limit_price == Decimal(repr(idea.net_price)).quantize(Decimal("0.01"))
    assert intent.limit_price < 0  # a credit
    assert intent.ts_ns == TS + 1
    assert intent.underlying == "SPY"
    assert [(leg.symbol, leg.side, leg.ratio) for leg in intent.legs] == [
        (leg.symbol, leg.side, leg.ratio) for leg in idea.legs
    ]
    assert [leg.side for leg in intent.legs] == [Side.BUY, Side.SELL, Side.SELL, Side.BUY]


def test_to_intent_refuses_a_zero_size_idea() -> None:
    a = agent()
    idea = a.propose(ctx(), make_chain(), EQUITY, TS)[0].model_copy(update={"quantity": 0})
    with pytest.raises(ValueError, match="quantity 0"):
        a.to_intent(idea, TS)


# ------------------------------------------------------------------ property
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    spot=st.floats(60.0, 700.0),
    iv=st.floats(0.08, 0.9),
    r=st.floats(0.0, 0.07),
    spread_pct=st.floats(0.0, 0.2),
    direction=st.sampled_from(list(Direction)),
    regime=st.sampled_from(list(Regime)),
    iv_rank=st.one_of(st.none(), st.floats(0.0, 1.0)),
    confidence=st.floats(0.2, 1.0),
    equity=st.decimals(min_value=500, max_value=2_000_000, places=2),
    cap=st.floats(0.001, 0.25),
)
def test_sized_ideas_never_risk_more_than_the_cap(
    spot: float,
    iv: float,
    r: float,
    spread_pct: float,
    direction: Direction,
    regime: Regime,
    iv_rank: float | None,
    confidence: float,
    equity: Decimal,
    cap: float,
) -> None:
    chain = make_chain(spot=spot, iv=iv, r=r, spread_pct=spread_pct)
    context = ctx(direction, confidence, regime, iv_rank, spot=spot)
    ideas = agent(cap).propose(context, chain, equity, TS)
    limit = Decimal(repr(cap)) * equity
    for idea in ideas:
        assert idea.quantity >= 1
        assert -Decimal(repr(idea.max_loss)) <= limit
        assert idea.max_loss == pytest.approx(grid_min_payoff(idea) * 100 * idea.quantity, abs=1e-6)
        assert all(chain.row(leg.symbol) >= 0 for leg in idea.legs)
