"""Kelly refinement per (strategy, regime) from backtest trades."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from gnosisd.core.enums import Regime, StrategyType
from gnosisd.optimize.kelly import estimate, kelly, overrides
from gnosisd.runtime.backtest import TradeRecord


def trade(strategy: str, regime: str | None, net: float, risk: float = 500.0) -> TradeRecord:
    return TradeRecord(
        position_id=f"p{net}",
        symbol="SPY",
        strategy=strategy,
        idea_id=None,
        opened=datetime(2024, 3, 4, 20, tzinfo=UTC),
        quantity=1,
        max_loss=Decimal(str(-risk)),
        regime=regime,
        closed=date(2024, 3, 8),
        realized=Decimal(str(net)),
    )


def test_kelly_is_p_minus_q_over_b_clamped_to_a_quarter() -> None:
    assert kelly(0.6, 1.0) == pytest.approx(0.2)
    assert kelly(0.5, 2.0) == pytest.approx(0.25)  # 0.25 exactly
    assert kelly(0.9, 3.0) == 0.25  # 0.8667 clamped
    assert kelly(0.2, 1.0) == -0.25  # -0.6 clamped
    assert kelly(0.7, None) == 0.25  # no loss seen: f = p, then clamped
    assert kelly(0.0, 0.0) == -0.25


def test_estimate_measures_trades_in_units_of_their_risk_per_strategy_and_regime() -> None:
    trades = [trade("iron_condor", "range", 250.0) for _ in range(6)]
    trades += [trade("iron_condor", "range", -500.0) for _ in range(4)]
    (e,) = estimate(trades, min_trades=10)
    assert (e.strategy, e.regime, e.trades) == ("iron_condor", "range", 10)
    assert e.p == pytest.approx(0.6)
    assert e.b == pytest.approx(0.5)  # wins of 0.5R against losses of 1R
    assert e.f == pytest.approx(0.6 - 0.4 / 0.5)  # -0.2: this cell should not be traded


def test_cells_with_too_few_trades_or_no_regime_are_left_to_the_agent() -> None:
    trades = [trade("long_call", "trend_up", 100.0) for _ in range(9)]
    trades += [trade("long_put", None, 100.0) for _ in range(20)]
    assert estimate(trades, min_trades=10) == []
    open_trade = trade("long_call", "trend_up", 0.0)
    open_trade.closed = None
    assert estimate([open_trade] * 20, min_trades=1) == []


def test_overrides_are_keyed_by_the_trade_agents_enums() -> None:
    trades = [trade("straddle", "vol_expansion", 400.0) for _ in range(3)]
    trades += [trade("straddle", "vol_expansion", -200.0)]
    table = overrides(estimate(trades, min_trades=4))
    assert table == {(StrategyType.STRADDLE, Regime.VOL_EXPANSION): pytest.approx(0.25)}
