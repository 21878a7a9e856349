"""Routing table: direction × vol state to strategies, the vol-routing rule, overrides, gates."""

from __future__ import annotations

import pytest

from gnosisd.agents.exits import exit_rules_for_strategy
from gnosisd.agents.routing import (
    BUY_HIGH_IV,
    SELL_HIGH_IV,
    VolState,
    route,
    routing_table,
    vol_state,
    vol_view,
)
from gnosisd.bus.records import MarketContext
from gnosisd.core.clock import ns_to_datetime
from gnosisd.core.config import TradeAgentConfig
from gnosisd.core.enums import Direction, Regime, StrategyType
from gnosisd.testing.chains import DEFAULT_AS_OF_NS

S = StrategyType
BUY = TradeAgentConfig()
SELL = TradeAgentConfig(vol_routing="sell_high_iv")


def ctx(
    direction: Direction = Direction.NEUTRAL,
    iv_rank: float | None = 0.5,
    regime: Regime = Regime.RANGE,
    confidence: float = 0.7,
) -> MarketContext:
    return MarketContext(
        symbol="SPY",
        as_of=ns_to_datetime(DEFAULT_AS_OF_NS),
        spot=500.0,
        direction=direction,
        confidence=confidence,
        regime=regime,
        iv_rank=iv_rank,
        exit_rules=exit_rules_for_strategy(S.LONG_CALL, confidence),
    )


def test_default_is_the_runbook_rule_long_premium_when_volatility_is_high() -> None:
    assert BUY.vol_routing == "buy_high_iv"
    assert route(ctx(iv_rank=0.85), BUY) == [S.STRADDLE, S.STRANGLE, S.REVERSE_IRON_CONDOR]
    assert route(ctx(iv_rank=0.5), BUY) == [
        S.IRON_CONDOR,
        S.IRON_BUTTERFLY,
        S.BROKEN_WING_BUTTERFLY,
    ]
    assert set(route(ctx(iv_rank=0.1), BUY)) >= {S.IRON_CONDOR, S.CALL_CALENDAR, S.PUT_CALENDAR}


def test_straddles_are_routed_only_in_high_volatility_cells_of_the_default_table() -> None:
    for cell, strategies in BUY_HIGH_IV.items():
        assert (S.STRADDLE in strategies) == cell.endswith(".high"), cell


def test_sell_high_iv_is_the_prototype_rule_short_premium_when_volatility_is_rich() -> None:
    assert route(ctx(iv_rank=0.85), SELL) == [
        S.IRON_CONDOR,
        S.IRON_BUTTERFLY,
        S.BROKEN_WING_BUTTERFLY,
    ]
    assert S.STRADDLE in route(ctx(iv_rank=0.1), SELL)
    assert route(ctx(Direction.BULLISH, 0.9), SELL)[0] is S.PUT_CREDIT_SPREAD
    assert route(ctx(Direction.BEARISH, 0.9), SELL)[0] is S.CALL_CREDIT_SPREAD
    assert all(S.STRADDLE not in v for k, v in SELL_HIGH_IV.items() if k.endswith(".high"))


@pytest.mark.parametrize(
    ("direction", "expected"),
    [
        (
            Direction.BULLISH,
            {S.LONG_CALL, S.CALL_DEBIT_SPREAD, S.CALL_DIAGONAL, S.PUT_CREDIT_SPREAD},
        ),
        (Direction.BEARISH, {S.LONG_PUT, S.PUT_DEBIT_SPREAD, S.PUT_DIAGONAL, S.CALL_CREDIT_SPREAD}),
    ],
)
def test_directional_views_route_to_structures_of_their_direction(
    direction: Direction, expected: set[StrategyType]
) -> None:
    assert set(route(ctx(direction, 0.5, Regime.TREND_UP), BUY)) == expected


def test_vol_state_comes_from_iv_rank_alone() -> None:
    assert vol_state(ctx(iv_rank=0.7), BUY) is VolState.HIGH
    assert vol_state(ctx(iv_rank=0.3), BUY) is VolState.LOW
    assert vol_state(ctx(iv_rank=None), BUY) is VolState.MID
    assert vol_state(ctx(iv_rank=None, regime=Regime.VOL_EXPANSION), BUY) is VolState.MID
    assert vol_state(ctx(iv_rank=0.2, regime=Regime.VOL_EXPANSION), BUY) is VolState.LOW
    cfg = TradeAgentConfig(high_iv_rank=0.9, low_iv_rank=0.1)
    assert vol_state(ctx(iv_rank=0.8), cfg) is VolState.MID


def test_straddles_need_a_high_iv_rank_even_in_the_vol_expansion_regime() -> None:
    assert S.STRADDLE not in route(ctx(iv_rank=0.4, regime=Regime.VOL_EXPANSION), BUY)
    assert S.STRADDLE in route(ctx(iv_rank=0.75, regime=Regime.RANGE), BUY)


def test_vol_view_follows_the_vol_routing_rule_and_the_expansion_regime() -> None:
    assert vol_view(ctx(iv_rank=0.9), BUY) == 1
    assert vol_view(ctx(iv_rank=0.2, regime=Regime.VOL_EXPANSION), BUY) == 1
    assert vol_view(ctx(iv_rank=0.5), BUY) == -1
    assert vol_view(ctx(Direction.BULLISH, 0.5), BUY) == 0
    assert vol_view(ctx(iv_rank=0.9, regime=Regime.VOL_EXPANSION), SELL) == -1
    assert vol_view(ctx(Direction.BULLISH, 0.1), SELL) == 1
    assert vol_view(ctx(iv_rank=0.5, regime=Regime.VOL_EXPANSION), SELL) == 1
    assert vol_view(ctx(Direction.BEARISH, 0.5), SELL) == 0


def test_config_overrides_single_cells_and_keeps_the_rest() -> None:
    cfg = TradeAgentConfig(routing={"neutral.mid": [S.IRON_CONDOR, S.IRON_CONDOR, S.PUT_CALENDAR]})
    table = routing_table(cfg)
    assert table["neutral.mid"] == (S.IRON_CONDOR, S.PUT_CALENDAR)
    assert table["neutral.high"] == BUY_HIGH_IV["neutral.high"]
    assert route(ctx(), cfg) == [S.IRON_CONDOR, S.PUT_CALENDAR]


def test_nothing_is_routed_below_min_confidence() -> None:
    cfg = TradeAgentConfig(min_confidence=0.4)
    assert route(ctx(confidence=0.39), cfg) == []
    assert route(ctx(confidence=0.4), cfg) != []


def test_single_long_options_need_long_option_min_confidence() -> None:
    bull = route(ctx(Direction.BULLISH, 0.5, confidence=0.45), BUY)
    assert S.LONG_CALL not in bull
    assert S.CALL_DEBIT_SPREAD in bull
    assert S.LONG_CALL in route(ctx(Direction.BULLISH, 0.5, confidence=0.5), BUY)
