"""Trade agent: listed legs, exact risk shared with the guard, Kelly sizing, routing, ranking."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import get_args

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gnosisd.agents.exits import exit_rules_for_strategy
from gnosisd.agents.routing import route
from gnosisd.agents.strategies import CREDIT, MULTI_EXPIRY
from gnosisd.agents.trade_agent import TradeAgent
from gnosisd.bus.events import ChainSnapshot
from gnosisd.bus.records import MarketContext, TradeIdea
from gnosisd.core.clock import ns_to_datetime
from gnosisd.core.config import LiquidityConfig, RoutingCell, TradeAgentConfig
from gnosisd.core.enums import Direction, PositionEffect, Regime, Side, StrategyType
from gnosisd.core.occ import parse_occ
from gnosisd.core.views import Position
from gnosisd.quant.profile import ExpiryLeg, Model, pnl_curve
from gnosisd.risk.limits import assess_order
from gnosisd.testing.chains import DEFAULT_AS_OF_NS, make_chain
from tests.unit.agents.chain_gen import smile_chain

TS = DEFAULT_AS_OF_NS
EQUITY = Decimal(1_000_000)
S = StrategyType
CELLS: tuple[RoutingCell, ...] = get_args(RoutingCell)
ALL = TradeAgentConfig(
    max_ideas_per_decision=10,
    long_option_min_confidence=0.0,
    routing={cell: list(StrategyType) for cell in CELLS},
)
FORCE_KELLY = {(s, r): 0.25 for s in StrategyType for r in Regime}


def ctx(
    direction: Direction = Direction.BULLISH,
    confidence: float = 0.7,
    regime: Regime = Regime.TREND_UP,
    iv_rank: float | None = 0.5,
    symbol: str = "SPY",
    spot: float = 500.0,
    expected_move: float | None = None,
) -> MarketContext:
    return MarketContext(
        symbol=symbol,
        as_of=ns_to_datetime(TS),
        spot=spot,
        direction=direction,
        confidence=confidence,
        regime=regime,
        iv_rank=iv_rank,
        expected_move=expected_move,
        exit_rules=exit_rules_for_strategy(S.LONG_CALL, confidence),
    )


def agent(
    cap: float = 0.05,
    cfg: TradeAgentConfig = ALL,
    slippage: float = 0.0,
    kelly: dict[tuple[StrategyType, Regime], float] | None = FORCE_KELLY,
) -> TradeAgent:
    return TradeAgent(cfg, LiquidityConfig(), cap, slippage, kelly_overrides=kelly)


def every_idea(chain: ChainSnapshot | None = None, **kw: object) -> list[TradeIdea]:
    ch = chain if chain is not None else smile_chain()
    a = agent(**kw)  # type: ignore[arg-type]
    ideas: list[TradeIdea] = []
    for direction in Direction:
        ideas += a.propose(ctx(direction), ch, EQUITY, TS)
    return ideas


def model_of(idea: TradeIdea, chain: ChainSnapshot) -> Model:
    rows = [chain.row(leg.symbol) for leg in idea.legs]
    return Model(
        chain.spot,
        chain.rate,
        chain.div_yield,
        tuple(float(chain.t_years[r]) for r in rows),
        tuple(float(chain.iv[r]) for r in rows),
    )


def expiry_legs(idea: TradeIdea) -> list[ExpiryLeg]:
    return [
        ExpiryLeg(
            leg.option_type == "call",
            leg.strike,
            (1 if leg.side is Side.BUY else -1) * leg.ratio,
            leg.expiry,
        )
        for leg in idea.legs
    ]


def payoff(idea: TradeIdea, spots: np.ndarray) -> np.ndarray:
    """Independent check: per-share P&L if every leg settles at `spots` (intrinsic values)."""
    pnl = np.full_like(spots, -idea.net_price)
    for leg in idea.legs:
        sign = 1 if leg.side is Side.BUY else -1
        k = float(leg.strike)
        intrinsic = (
            np.maximum(spots - k, 0.0) if leg.option_type == "call" else np.maximum(k - spots, 0.0)
        )
        pnl += sign * leg.ratio * intrinsic
    return pnl


def grid_min_payoff(idea: TradeIdea) -> float:
    strikes = [float(leg.strike) for leg in idea.legs]
    grid = np.concatenate([np.linspace(0.0, 3.0 * max(strikes), 30_001), strikes])
    return float(payoff(idea, grid).min())


# ------------------------------------------------------------------ legs, price, risk
def test_every_strategy_becomes_an_idea_from_listed_legs_priced_at_mid_against_us() -> None:
    chain = smile_chain()
    ideas = every_idea(chain, slippage=0.01)
    assert {i.strategy_type for i in ideas} == set(StrategyType)
    for idea in ideas:
        for leg in idea.legs:
            row = chain.row(leg.symbol)  # listed
            contract = parse_occ(leg.symbol)
            assert (contract.strike, contract.expiry) == (leg.strike, leg.expiry)
            assert leg.option_type == chain.option_type(row)
            m = float(chain.mid[row])
            if leg.side is Side.BUY:
                assert m * 1.01 - 1e-9 <= leg.price < m * 1.01 + 0.01
            else:
                assert m * 0.99 - 0.01 < leg.price <= m * 0.99 + 1e-9
            assert round(leg.price, 2) == leg.price
            assert leg.quantity == leg.ratio * idea.quantity


def test_net_is_the_signed_sum_of_leg_prices_credit_for_short_premium_debit_otherwise() -> None:
    for idea in every_idea():
        raw = sum((1 if leg.side is Side.BUY else -1) * leg.ratio * leg.price for leg in idea.legs)
        assert idea.net_price == pytest.approx(raw, abs=1e-9)
        if idea.strategy_type in CREDIT:
            assert idea.net_price < 0
        elif idea.strategy_type is not S.BROKEN_WING_BUTTERFLY:
            assert idea.net_price > 0


def test_max_loss_is_the_minimum_of_the_payoff_and_what_the_guard_recomputes() -> None:
    a = agent()
    for idea in every_idea():
        expected = grid_min_payoff(idea) * 100 * idea.quantity
        assert idea.max_loss == pytest.approx(expected, abs=1e-6)
        assert idea.max_loss < 0
        guard = assess_order(a.to_intent(idea, TS))
        assert guard.max_loss == Decimal(repr(idea.max_loss))


def test_calendars_and_diagonals_risk_their_debit_and_are_valued_at_the_front_expiry() -> None:
    chain = smile_chain()
    ideas = [i for i in every_idea(chain) if i.strategy_type in MULTI_EXPIRY]
    assert {i.strategy_type for i in ideas} == MULTI_EXPIRY
    for idea in ideas:
        assert idea.max_loss == pytest.approx(-idea.net_price * 100 * idea.quantity)
        assert idea.horizon == min(leg.expiry for leg in idea.legs)
        curve = pnl_curve(
            expiry_legs(idea), idea.net_price, model_of(idea, chain), np.linspace(300, 700, 8001)
        )
        assert idea.max_profit is not None
        assert curve.max() * 100 * idea.quantity <= idea.max_profit + 0.01
        assert idea.max_profit > 0


def test_breakevens_are_zero_crossings_of_the_profile() -> None:
    chain = smile_chain()
    for idea in every_idea(chain):
        assert idea.breakevens
        spots = np.asarray(idea.breakevens)
        if idea.strategy_type in MULTI_EXPIRY:
            values = pnl_curve(expiry_legs(idea), idea.net_price, model_of(idea, chain), spots)
        else:
            values = payoff(idea, spots)
        assert np.allclose(values, 0.0, atol=1e-7), idea.strategy_type


def test_unbounded_max_profit_only_for_long_calls_straddles_and_strangles() -> None:
    by_type = {i.strategy_type: i for i in every_idea()}
    unbounded = {S.LONG_CALL, S.STRADDLE, S.STRANGLE}
    for strategy, idea in by_type.items():
        assert (idea.max_profit is None) == (strategy in unbounded), strategy
    spread = by_type[S.CALL_DEBIT_SPREAD]
    k_long, k_short = (float(leg.strike) for leg in spread.legs)
    assert spread.max_profit == pytest.approx(
        (k_short - k_long - spread.net_price) * 100 * spread.quantity
    )


def test_profile_carries_pop_expected_value_and_a_pnl_cone() -> None:
    for idea in every_idea():
        assert idea.pop is not None
        assert 0.0 <= idea.pop <= 1.0
        assert idea.expected_value is not None
        assert set(idea.score_parts) == {"ev_per_risk", "liquidity", "fit"}
        cone = idea.pnl_cone
        assert cone is not None
        assert np.asarray(cone.pnl).shape == (3, 3, 9)
        assert cone.days[0] == 0.0
        assert cone.iv_shifts == [-0.05, 0.0, 0.05]
        assert min(np.asarray(cone.pnl[2]).ravel()) >= idea.max_loss - 0.01  # at the front expiry
        if idea.strategy_type not in MULTI_EXPIRY:
            at_expiry = payoff(idea, np.asarray(cone.spots)) * 100 * idea.quantity
            assert np.allclose(cone.pnl[2][1], at_expiry, atol=0.006)


# ------------------------------------------------------------------ sizing
def test_size_is_the_kelly_fraction_times_confidence_within_the_trade_cap() -> None:
    a = agent(cap=0.02, cfg=TradeAgentConfig(max_ideas_per_decision=10), kelly=None)
    ideas = a.propose(ctx(Direction.BULLISH), smile_chain(), Decimal(250_000), TS)
    assert ideas
    for idea in ideas:
        assert idea.kelly_fraction is not None
        assert 0 < idea.kelly_fraction <= 0.25 * 0.7
        per_contract = -Decimal(repr(idea.max_loss)) / idea.quantity
        budget = min(Decimal(repr(idea.kelly_fraction)), Decimal("0.02")) * Decimal(250_000)
        assert per_contract * idea.quantity <= budget
        assert per_contract * (idea.quantity + 1) > budget


def test_kelly_overrides_replace_the_computed_fraction_per_strategy_and_regime() -> None:
    cfg = TradeAgentConfig(max_ideas_per_decision=10)
    base = agent(cap=0.25, cfg=cfg, kelly=None).propose(ctx(), smile_chain(), EQUITY, TS)
    assert base
    first = base[0].strategy_type
    tuned = agent(cap=0.25, cfg=cfg, kelly={(first, Regime.TREND_UP): 0.01})
    again = {i.strategy_type: i for i in tuned.propose(ctx(), smile_chain(), EQUITY, TS)}
    assert again[first].kelly_fraction == pytest.approx(0.01 * 0.7)
    assert again[first].quantity < base[0].quantity
    off = agent(cap=0.25, cfg=cfg, kelly={(first, Regime.TREND_UP): -0.1})
    assert first not in {i.strategy_type for i in off.propose(ctx(), smile_chain(), EQUITY, TS)}
    assert any(s is first and "kelly" in why for s, why in off.last_rejections)


def test_idea_that_cannot_afford_one_contract_is_omitted_with_a_reason() -> None:
    a = agent(
        cap=0.01,
        cfg=TradeAgentConfig(
            max_ideas_per_decision=10, routing={"bullish.mid": [S.LONG_CALL, S.CALL_DEBIT_SPREAD]}
        ),
    )
    ideas = a.propose(ctx(), make_chain(), Decimal(80_000), TS)  # cap $800
    assert [i.strategy_type for i in ideas] == [S.CALL_DEBIT_SPREAD]
    assert [s for s, _ in a.last_rejections] == [S.LONG_CALL]
    assert "trade_cap" in a.last_rejections[0][1]
    assert a.propose(ctx(), make_chain(), Decimal(1_000), TS) == []


def _open(loss: str) -> Position:
    d = Decimal
    return Position("p", "QQQ", "iron_condor", 1, (), d(-1), d(loss), None, 0, d(-1), d(0), {})


def test_portfolio_cap_counts_open_positions_of_every_symbol_and_the_ideas_before() -> None:
    cfg = TradeAgentConfig(
        max_ideas_per_decision=10,
        max_portfolio_risk_pct=0.05,
        routing={"bullish.mid": [S.CALL_DEBIT_SPREAD, S.PUT_CREDIT_SPREAD, S.CALL_DIAGONAL]},
    )
    a = agent(cap=0.04, cfg=cfg)
    equity = Decimal(100_000)
    free = a.propose(ctx(), smile_chain(), equity, TS)
    assert len(free) == 3
    ideas = a.propose(ctx(), smile_chain(), equity, TS, open_positions=[_open("-2500")])
    total = sum(-Decimal(repr(i.max_loss)) for i in ideas)
    assert Decimal(2500) + total <= Decimal("0.05") * equity
    assert total < sum(-Decimal(repr(i.max_loss)) for i in free)
    full = a.propose(ctx(), smile_chain(), equity, TS, open_positions=[_open("-5000")])
    assert full == []
    assert all("portfolio_cap" in why for _, why in a.last_rejections)


# ------------------------------------------------------------------ routing and filters
@pytest.mark.parametrize(
    "context",
    [
        ctx(Direction.BULLISH),
        ctx(Direction.BEARISH, regime=Regime.TREND_DOWN, iv_rank=0.2),
        ctx(Direction.NEUTRAL, regime=Regime.RANGE, iv_rank=0.5),
        ctx(Direction.NEUTRAL, regime=Regime.RANGE, iv_rank=0.1),
        ctx(Direction.NEUTRAL, regime=Regime.VOL_EXPANSION, iv_rank=0.9),
        ctx(Direction.BEARISH, regime=Regime.VOL_EXPANSION, iv_rank=0.9),
    ],
)
def test_ideas_come_from_the_routed_strategies_of_the_context(context: MarketContext) -> None:
    cfg = TradeAgentConfig(max_ideas_per_decision=10)
    ideas = agent(cfg=cfg).propose(context, smile_chain(), EQUITY, TS)
    routed = route(context, cfg)
    assert ideas
    assert {i.strategy_type for i in ideas} <= set(routed)
    assert {i.strategy_type for i in ideas} | {s for s, _ in agent(cfg=cfg).last_rejections} <= set(
        routed
    )
    assert all(i.direction is context.direction and i.regime is context.regime for i in ideas)


def test_sell_high_iv_routing_sells_premium_when_iv_rank_is_high() -> None:
    rich = ctx(Direction.NEUTRAL, regime=Regime.VOL_EXPANSION, iv_rank=0.9)
    buy = agent(cfg=TradeAgentConfig(max_ideas_per_decision=10))
    sell = agent(cfg=TradeAgentConfig(max_ideas_per_decision=10, vol_routing="sell_high_iv"))
    bought = {i.strategy_type for i in buy.propose(rich, smile_chain(), EQUITY, TS)}
    sold = {i.strategy_type for i in sell.propose(rich, smile_chain(), EQUITY, TS)}
    assert bought and bought <= {S.STRADDLE, S.STRANGLE, S.REVERSE_IRON_CONDOR}
    assert sold and sold <= {S.IRON_CONDOR, S.IRON_BUTTERFLY, S.BROKEN_WING_BUTTERFLY}


def test_long_premium_is_dropped_when_its_debit_exceeds_the_expected_move() -> None:
    cfg = TradeAgentConfig(max_ideas_per_decision=10)
    chain = smile_chain()
    vol = ctx(Direction.NEUTRAL, regime=Regime.VOL_EXPANSION, iv_rank=0.9, expected_move=30.0)
    assert S.STRADDLE in {i.strategy_type for i in agent(cfg=cfg).propose(vol, chain, EQUITY, TS)}
    tight = vol.model_copy(update={"expected_move": 5.0})
    a = agent(cfg=cfg)
    assert S.STRADDLE not in {i.strategy_type for i in a.propose(tight, chain, EQUITY, TS)}
    assert any(s is S.STRADDLE and "expected move" in why for s, why in a.last_rejections)


def test_no_ideas_below_min_confidence() -> None:
    a = agent(cfg=TradeAgentConfig(min_confidence=0.4, max_ideas_per_decision=10))
    assert a.propose(ctx(confidence=0.39), smile_chain(), EQUITY, TS) == []
    assert a.propose(ctx(confidence=0.4), smile_chain(), EQUITY, TS) != []


def test_uses_the_expiry_closest_to_target_dte_above_min_dte() -> None:
    today = date(2025, 6, 2)
    chain = make_chain(expiries=[today + timedelta(days=d) for d in (3, 10, 24, 45)])
    cfg = TradeAgentConfig(
        target_dte=30,
        min_dte=7,
        max_ideas_per_decision=10,
        routing={"bullish.mid": [S.LONG_CALL, S.CALL_DEBIT_SPREAD]},
    )
    ideas = agent(cfg=cfg).propose(ctx(), chain, EQUITY, TS)
    assert ideas
    assert all(leg.expiry == today + timedelta(days=24) for i in ideas for leg in i.legs)
    far = cfg.model_copy(update={"min_dte": 50})
    a = agent(cfg=far)
    assert a.propose(ctx(), chain, EQUITY, TS) == []
    assert {why for _, why in a.last_rejections} == {"no expiry with dte >= min_dte"}


def test_context_for_another_symbol_is_a_wiring_error() -> None:
    with pytest.raises(ValueError, match="QQQ"):
        agent().propose(ctx(symbol="QQQ"), smile_chain(), EQUITY, TS)


# ------------------------------------------------------------------ ranking, ids, exits, intents
def test_ideas_are_ranked_by_the_documented_score_and_cut_to_max_ideas() -> None:
    cfg = TradeAgentConfig(max_ideas_per_decision=10)
    a = agent(cfg=cfg)
    ideas = a.propose(ctx(), smile_chain(), EQUITY, TS)
    assert len(ideas) >= 3
    assert [i.rank for i in ideas] == list(range(1, len(ideas) + 1))
    assert [i.score for i in ideas] == sorted((i.score for i in ideas), reverse=True)
    for i in ideas:
        p = i.score_parts
        expected = (
            p["ev_per_risk"]
            + cfg.score_liquidity_weight * p["liquidity"]
            + cfg.score_fit_weight * p["fit"]
        )
        assert i.score == pytest.approx(expected, abs=1e-5)
        assert 0 <= p["liquidity"] <= 1 and 0 <= p["fit"] <= 1
    one = agent(cfg=cfg.model_copy(update={"max_ideas_per_decision": 1}))
    assert one.propose(ctx(), smile_chain(), EQUITY, TS) == [ideas[0]]


def test_fit_prefers_structures_whose_delta_matches_the_direction() -> None:
    cfg = TradeAgentConfig(
        max_ideas_per_decision=10,
        routing={
            "bullish.mid": [S.CALL_DEBIT_SPREAD, S.PUT_DEBIT_SPREAD],
            "bearish.mid": [S.CALL_DEBIT_SPREAD, S.PUT_DEBIT_SPREAD],
        },
    )
    a = agent(cfg=cfg)
    bull = {
        i.strategy_type: i.score_parts["fit"]
        for i in a.propose(ctx(Direction.BULLISH), smile_chain(), EQUITY, TS)
    }
    bear = {
        i.strategy_type: i.score_parts["fit"]
        for i in a.propose(ctx(Direction.BEARISH), smile_chain(), EQUITY, TS)
    }
    assert bull[S.CALL_DEBIT_SPREAD] > bull[S.PUT_DEBIT_SPREAD]
    assert bear[S.PUT_DEBIT_SPREAD] > bear[S.CALL_DEBIT_SPREAD]


def test_ideas_are_deterministic_with_ids_from_symbol_time_and_strategy() -> None:
    first = agent().propose(ctx(), smile_chain(), EQUITY, TS)
    second = agent().propose(ctx(), smile_chain(), EQUITY, TS)
    assert first == second
    assert {i.id for i in first} == {f"SPY-{TS}-{i.strategy_type.value}" for i in first}
    assert all(i.as_of == datetime.fromtimestamp(TS / 1e9, tz=UTC) for i in first)


def test_exit_rules_come_from_the_strategy_family_and_confidence() -> None:
    for idea in every_idea():
        assert idea.exit_rules == exit_rules_for_strategy(idea.strategy_type, idea.confidence)


def test_to_intent_builds_one_open_multi_leg_order_at_the_net_price() -> None:
    a = agent()
    idea = next(i for i in every_idea() if i.strategy_type is S.IRON_CONDOR)
    intent = a.to_intent(idea, TS + 1)
    assert intent.effect is PositionEffect.OPEN
    assert intent.intent_id == f"open-{idea.id}" == a.to_intent(idea, TS + 2).intent_id
    assert intent.idea_id == idea.id
    assert intent.strategy_type == "iron_condor"
    assert intent.quantity == idea.quantity
    assert intent.limit_price == Decimal(repr(idea.net_price)).quantize(Decimal("0.01"))
    assert intent.limit_price < 0  # a credit
    assert intent.ts_ns == TS + 1
    assert [(leg.symbol, leg.side, leg.ratio) for leg in intent.legs] == [
        (leg.symbol, leg.side, leg.ratio) for leg in idea.legs
    ]
    assert [leg.side for leg in intent.legs] == [Side.BUY, Side.SELL, Side.SELL, Side.BUY]


def test_to_intent_refuses_a_zero_size_idea() -> None:
    a = agent()
    idea = a.propose(ctx(), smile_chain(), EQUITY, TS)[0].model_copy(update={"quantity": 0})
    with pytest.raises(ValueError, match="quantity 0"):
        a.to_intent(idea, TS)


# ------------------------------------------------------------------ properties (random chains)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    spot=st.floats(60.0, 700.0),
    atm_iv=st.floats(0.08, 0.9),
    skew=st.floats(-0.3, 0.1),
    term=st.floats(-1.0, 1.0),
    r=st.floats(0.0, 0.07),
    q=st.floats(0.0, 0.04),
    spread_pct=st.floats(0.0, 0.12),
    direction=st.sampled_from(list(Direction)),
    regime=st.sampled_from(list(Regime)),
    iv_rank=st.one_of(st.none(), st.floats(0.0, 1.0)),
    confidence=st.floats(0.3, 1.0),
    equity=st.decimals(min_value=5_000, max_value=2_000_000, places=2),
    cap=st.floats(0.005, 0.25),
    used=st.floats(0.0, 1.2),
    forced=st.booleans(),
)
def test_ideas_on_random_chains_keep_every_invariant(
    spot: float,
    atm_iv: float,
    skew: float,
    term: float,
    r: float,
    q: float,
    spread_pct: float,
    direction: Direction,
    regime: Regime,
    iv_rank: float | None,
    confidence: float,
    equity: Decimal,
    cap: float,
    used: float,
    forced: bool,
) -> None:
    open_loss = int(used * ALL.max_portfolio_risk_pct * float(equity))  # share of the room in use
    chain = smile_chain(
        spot=spot, atm_iv=atm_iv, skew=skew, term_slope=term, r=r, q=q, spread_pct=spread_pct
    )
    context = ctx(direction, confidence, regime, iv_rank, spot=spot)
    a = agent(cap, kelly=FORCE_KELLY if forced else None)
    ideas = a.propose(context, chain, equity, TS, open_positions=[_open(str(-open_loss))])
    trade_cap = Decimal(repr(cap)) * equity
    room = Decimal(repr(ALL.max_portfolio_risk_pct)) * equity - open_loss
    total = Decimal(0)
    for idea in ideas:
        loss = -Decimal(repr(idea.max_loss))
        total += loss
        assert idea.quantity >= 1
        assert 0 < loss <= trade_cap
        assert loss <= Decimal(repr(idea.kelly_fraction)) * equity + Decimal("0.01")
        assert idea.max_loss == pytest.approx(grid_min_payoff(idea) * 100 * idea.quantity, abs=1e-6)
        assert assess_order(a.to_intent(idea, TS)).max_loss == Decimal(repr(idea.max_loss))
        assert idea.pop is not None and 0.0 <= idea.pop <= 1.0
        for leg in idea.legs:
            row = chain.row(leg.symbol)
            c = parse_occ(leg.symbol)
            assert (float(c.strike), c.expiry, c.option_type) == (
                chain.strike[row],
                chain.expiry(row),
                chain.option_type(row),
            )
        spots = np.asarray(idea.breakevens)
        if idea.strategy_type in MULTI_EXPIRY:
            values = pnl_curve(expiry_legs(idea), idea.net_price, model_of(idea, chain), spots)
        else:
            values = payoff(idea, spots)
        assert np.allclose(values, 0.0, atol=1e-6 * max(1.0, spot / 100))
        assert all(math.isfinite(x) for x in idea.score_parts.values())
    assert total <= max(room, Decimal(0))
    event(f"ideas: {min(len(ideas), 3)}")  # --hypothesis-show-statistics: most examples trade
