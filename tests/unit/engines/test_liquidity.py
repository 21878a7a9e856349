"""Liquidity engine: relative spread, Amihud illiquidity, near-money option spreads, thin."""

from __future__ import annotations

import math

import pytest

from gnosisd.bus.events import Quote
from gnosisd.core.config import LiquidityConfig
from gnosisd.engines.liquidity import LiquidityEngine
from tests.unit.engines.chain_factory import T0_NS, Row, bar, make_chain


def quote(bid: float, ask: float, symbol: str = "SPY") -> Quote:
    return Quote(symbol=symbol, ts_ns=T0_NS, bid=bid, ask=ask, bid_size=1, ask_size=1)


def test_quotes_update_state_without_emitting() -> None:
    engine = LiquidityEngine("SPY", LiquidityConfig())
    assert engine.update(quote(99.99, 100.01)) is None
    snap = engine.update(bar(100.0))
    assert snap is not None
    assert snap.metrics["rel_spread"] == pytest.approx(0.02 / 100.0)


def test_option_quotes_do_not_touch_the_underlying_spread() -> None:
    engine = LiquidityEngine("SPY", LiquidityConfig())
    engine.update(quote(1.0, 2.0, symbol="SPY250411C00100000"))
    snap = engine.update(bar(100.0))
    assert snap is not None
    assert math.isnan(snap.metrics["rel_spread"])


def test_amihud_of_three_bars_matches_hand_computation() -> None:
    engine = LiquidityEngine("SPY", LiquidityConfig(lookback=30))
    engine.update(bar(100.0, 0, volume=1000))
    engine.update(bar(101.0, 1, volume=2000))
    snap = engine.update(bar(99.0, 2, volume=500))
    assert snap is not None
    r1, r2 = 0.01, abs(99.0 / 101.0 - 1)
    expected = (r1 / (101.0 * 2000) + r2 / (99.0 * 500)) / 2
    assert snap.metrics["amihud"] == pytest.approx(expected)


def test_amihud_uses_only_the_last_lookback_returns() -> None:
    engine = LiquidityEngine("SPY", LiquidityConfig(lookback=2))
    for i, c in enumerate([50.0, 100.0, 101.0, 99.0]):  # the 50 -> 100 jump falls out
        snap = engine.update(bar(c, i, volume=1000))
    assert snap is not None
    expected = (0.01 / (101.0 * 1000) + abs(99.0 / 101.0 - 1) / (99.0 * 1000)) / 2
    assert snap.metrics["amihud"] == pytest.approx(expected)


def test_chain_gives_median_spread_and_open_interest_near_the_money() -> None:
    chain = make_chain(
        [
            Row(call=True, strike=100, days=30, bid=1.0, ask=1.2, oi=500),  # 0.2/1.1
            Row(call=False, strike=100, days=30, bid=2.0, ask=2.1, oi=400),  # 0.1/2.05
            Row(call=True, strike=104, days=30, bid=0.5, ask=0.7, oi=300),  # 0.2/0.6
            Row(call=True, strike=120, days=30, bid=0.01, ask=0.5, oi=9999),  # far OTM: out
            Row(call=True, strike=100, days=200, bid=0.01, ask=5.0, oi=9999),  # far expiry: out
        ]
    )
    snap = LiquidityEngine("SPY", LiquidityConfig()).update(chain)
    assert snap is not None
    assert snap.metrics["option_spread_pct"] == pytest.approx(0.2 / 1.1)
    assert snap.metrics["atm_open_interest"] == 1200


def test_thin_when_underlying_spread_exceeds_threshold() -> None:
    engine = LiquidityEngine("SPY", LiquidityConfig(thin_threshold=0.001))
    engine.update(quote(99.9, 100.1))  # 0.2% > 0.1%
    snap = engine.update(bar(100.0))
    assert snap is not None
    assert "thin" in snap.flags
    assert snap.metrics["score"] == 0.0


def test_not_thin_with_tight_spread_and_no_chain_yet() -> None:
    engine = LiquidityEngine("SPY", LiquidityConfig(thin_threshold=0.001))
    engine.update(quote(99.99, 100.01))  # 0.02%
    snap = engine.update(bar(100.0))
    assert snap is not None
    assert snap.flags == ()
    assert snap.metrics["score"] == pytest.approx(0.8)


def test_thin_when_option_spreads_are_wide_or_open_interest_low() -> None:
    cfg = LiquidityConfig(max_spread_pct=0.15, min_open_interest=100)
    wide = make_chain([Row(call=True, strike=100, days=30, bid=1.0, ask=1.4, oi=1000)])
    low_oi = make_chain([Row(call=True, strike=100, days=30, bid=1.0, ask=1.05, oi=50)])
    ok = make_chain([Row(call=True, strike=100, days=30, bid=1.0, ask=1.05, oi=1000)])
    assert "thin" in LiquidityEngine("SPY", cfg).update(wide).flags  # type: ignore[union-attr]
    assert "thin" in LiquidityEngine("SPY", cfg).update(low_oi).flags  # type: ignore[union-attr]
    snap = LiquidityEngine("SPY", cfg).update(ok)
    assert snap is not None
    assert snap.flags == ()
    assert 0.0 <= snap.metrics["score"] <= 1.0


def test_score_averages_component_scores() -> None:
    cfg = LiquidityConfig(thin_threshold=0.001, max_spread_pct=0.2, min_open_interest=100)
    engine = LiquidityEngine("SPY", cfg)
    engine.update(quote(99.975, 100.025))  # 0.05% -> 1 - 0.5 = 0.5
    chain = make_chain([Row(call=True, strike=100, days=30, bid=0.95, ask=1.05, oi=300)])
    snap = engine.update(chain)  # spread 10% -> 0.5; oi 300/(300+100) = 0.75
    assert snap is not None
    assert snap.metrics["score"] == pytest.approx((0.5 + 0.5 + 0.75) / 3)
