"""Exit rules by family: the runbook's review expectations as gnosisd defines them."""

from __future__ import annotations

import pytest

from gnosisd.agents.exits import BASE, FAMILY, Family, exit_rules_for, exit_rules_for_strategy
from gnosisd.agents.strategies import BUILDERS
from gnosisd.core.enums import StrategyType


def test_every_strategy_belongs_to_a_family() -> None:
    assert set(FAMILY) == set(StrategyType) == set(BUILDERS)


def test_profit_targets_income_half_directional_half_volatility_three_quarters() -> None:
    assert exit_rules_for(Family.DIRECTIONAL, 0.5).profit_target_pct == 0.5
    assert exit_rules_for(Family.INCOME, 0.5).profit_target_pct == 0.5
    assert exit_rules_for(Family.VOLATILITY, 0.5).profit_target_pct == 0.75


@pytest.mark.parametrize("confidence", [0.0, 0.3, 0.7, 1.0])
def test_income_stops_are_tightest_and_volatility_stops_widest(confidence: float) -> None:
    stop = {f: exit_rules_for(f, confidence).stop_loss_pct for f in Family}
    assert stop[Family.INCOME] < stop[Family.DIRECTIONAL] < stop[Family.VOLATILITY]


@pytest.mark.parametrize("family", list(Family))
def test_higher_confidence_widens_the_stop_and_the_trail(family: Family) -> None:
    lo, hi = exit_rules_for(family, 0.2), exit_rules_for(family, 0.9)
    assert hi.stop_loss_pct > lo.stop_loss_pct
    assert hi.trailing_stop_pct >= lo.trailing_stop_pct
    assert exit_rules_for(family, 1.0).stop_loss_pct == pytest.approx(BASE[family].stop * 1.2)
    assert exit_rules_for(family, 0.0).stop_loss_pct == pytest.approx(BASE[family].stop * 0.8)


def test_trails_and_breakeven_moves_are_for_long_premium_not_income() -> None:
    income = exit_rules_for(Family.INCOME, 0.6)
    assert income.trailing_stop_pct == income.breakeven_trigger_pct == 0
    for family in (Family.DIRECTIONAL, Family.VOLATILITY):
        rules = exit_rules_for(family, 0.6)
        assert rules.trailing_stop_pct > 0
        assert 0 < rules.breakeven_trigger_pct < rules.profit_target_pct


def test_time_spreads_close_before_their_short_front_month_expires() -> None:
    rules = exit_rules_for_strategy(StrategyType.CALL_CALENDAR, 0.5)
    assert FAMILY[StrategyType.PUT_DIAGONAL] is Family.TIME
    assert rules.time_exit_dte >= 1


def test_configured_scales_multiply_target_and_stop_and_the_stop_stays_a_fraction() -> None:
    from gnosisd.agents.exits import Family, exit_rules_for

    base = exit_rules_for(Family.DIRECTIONAL, 0.5)
    tuned = exit_rules_for(Family.DIRECTIONAL, 0.5, target_scale=1.2, stop_scale=0.5)
    assert tuned.profit_target_pct == pytest.approx(base.profit_target_pct * 1.2)
    assert tuned.stop_loss_pct == pytest.approx(base.stop_loss_pct * 0.5)
    wide = exit_rules_for(Family.VOLATILITY, 1.0, stop_scale=1.5)
    assert wide.stop_loss_pct <= 1.0
