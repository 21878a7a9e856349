"""Liquidity engine: effective spread, tick-rule order flow, Kyle's lambda, bounded memory."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gnosisd.bus.events import Quote, Trade
from gnosisd.core.config import LiquidityConfig
from gnosisd.engines.liquidity import LiquidityEngine, tick_sign
from tests.unit.engines.chain_factory import MINUTE_NS, T0_NS, bar


def quote(bid: float, ask: float, ts: int = T0_NS) -> Quote:
    return Quote(symbol="SPY", ts_ns=ts, bid=bid, ask=ask, bid_size=1, ask_size=1)


def trade(price: float, size: float, ts: int = T0_NS) -> Trade:
    return Trade(symbol="SPY", ts_ns=ts, price=price, size=size)


def test_effective_spread_is_twice_the_distance_to_the_prevailing_mid() -> None:
    engine = LiquidityEngine("SPY", LiquidityConfig())
    engine.update(quote(99.98, 100.02))  # mid 100
    assert engine.update(trade(100.02, 100)) is None  # trades only update state
    engine.update(quote(100.00, 100.04))  # mid 100.02
    engine.update(trade(100.02, 100))  # at the mid
    snap = engine.update(bar(100.02))
    assert snap is not None
    assert snap.metrics["effective_spread"] == pytest.approx((2 * 0.02 / 100 + 0.0) / 2)
    assert snap.metrics["rel_spread"] == pytest.approx(0.04 / 100.02)


def test_tick_rule_signs_upticks_downticks_and_carries_zero_ticks() -> None:
    assert tick_sign(10.01, 10.00, 0) == 1
    assert tick_sign(9.99, 10.00, 1) == -1
    assert tick_sign(10.00, 10.00, -1) == -1
    assert tick_sign(10.00, 10.00, 0) == 0


def test_order_flow_imbalance_from_trades_between_bars() -> None:
    engine = LiquidityEngine("SPY", LiquidityConfig(lookback=30))
    for price, size in ((100.00, 100), (100.01, 300), (100.01, 100), (100.00, 200)):
        engine.update(trade(price, size))
    snap = engine.update(bar(100.0))
    assert snap is not None
    # first trade unsigned (0), +300 uptick, +100 zero tick carries +, -200 downtick
    assert snap.metrics["order_flow_imbalance"] == pytest.approx((300 + 100 - 200) / 700)


def test_bars_without_trades_sign_their_volume_by_the_bar_tick_rule() -> None:
    engine = LiquidityEngine("SPY", LiquidityConfig(lookback=30))
    engine.update(bar(100.0, 0, volume=1000))  # no previous close: unsigned
    engine.update(bar(101.0, 1, volume=500))  # up: +500
    snap = engine.update(bar(100.5, 2, volume=1500))  # down: -1500
    assert snap is not None
    assert snap.metrics["order_flow_imbalance"] == pytest.approx((500 - 1500) / 3000)


def test_kyle_lambda_recovers_the_price_impact_of_signed_volume() -> None:
    rng = np.random.default_rng(5)
    lam = 2e-5  # dollars per share
    engine = LiquidityEngine("SPY", LiquidityConfig(lookback=200))
    price = 100.0
    engine.update(bar(price, 0))
    tp = 100.0  # the last trade price: each bar's one trade ticks up (buy) or down (sell)
    engine.update(trade(tp, 1, ts=T0_NS))
    xs, ys = [], []
    for i in range(1, 201):
        signed = float(rng.normal(0, 5000))
        size = abs(signed)
        tp = round(tp + (0.01 if signed > 0 else -0.01), 2)
        engine.update(trade(tp, size, ts=T0_NS + i * MINUTE_NS))
        step = lam * signed + float(rng.normal(0, 0.005))
        price = round(price + step, 6)
        xs.append(math.copysign(size, signed))
        ys.append(step)
        snap = engine.update(bar(price, i))
    assert snap is not None
    expected = np.polyfit(np.array(xs), np.array(ys), 1)[0]
    assert snap.metrics["kyle_lambda"] == pytest.approx(expected, rel=1e-6)
    assert snap.metrics["kyle_lambda"] == pytest.approx(lam, rel=0.1)


def test_memory_is_bounded_by_the_windows() -> None:
    engine = LiquidityEngine("SPY", LiquidityConfig(lookback=10, trade_window=20))
    engine.update(quote(99.99, 100.01))
    for i in range(5000):
        engine.update(trade(100.0 + (i % 3) * 0.01, 100, ts=T0_NS + i))
        if i % 10 == 0:
            engine.update(bar(100.0 + (i % 7) * 0.01, i // 10))
    assert len(engine._eff) == 20
    assert len(engine._amihud) <= 10
    assert len(engine._kyle) <= 10


def test_wide_effective_spread_raises_thin() -> None:
    engine = LiquidityEngine("SPY", LiquidityConfig(thin_threshold=0.001, min_open_interest=0))
    engine.update(quote(99.5, 100.5))
    engine.update(trade(100.5, 100))
    snap = engine.update(bar(100.5))
    assert snap is not None
    assert snap.metrics["effective_spread"] > 0.001
    assert snap.flags == ("thin",)
