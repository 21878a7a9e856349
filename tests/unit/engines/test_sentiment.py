"""Sentiment engine: momentum t-statistic, put/call ratios, weighted score and flags."""

from __future__ import annotations

import itertools
import math

import pytest

from gnosisd.bus.events import EngineSnapshot
from gnosisd.core.config import SentimentConfig
from gnosisd.engines.sentiment import SentimentEngine
from tests.unit.engines.chain_factory import Row, bar, make_chain

CLOSES = [100.0, 101.0, 100.5, 102.0, 103.0]


def feed(engine: SentimentEngine, closes: list[float]) -> EngineSnapshot | None:
    snap = None
    for i, c in enumerate(closes):
        snap = engine.update(bar(c, i))
    return snap


def test_momentum_is_tanh_of_half_the_t_statistic_of_log_returns() -> None:
    snap = feed(SentimentEngine("SPY", SentimentConfig(momentum_lookback=30)), CLOSES)
    assert snap is not None
    r = [math.log(b / a) for a, b in itertools.pairwise(CLOSES)]
    mean = sum(r) / len(r)
    sd = math.sqrt(sum((x - mean) ** 2 for x in r) / (len(r) - 1))
    z = sum(r) / (sd * math.sqrt(len(r)))
    assert snap.metrics["momentum"] == pytest.approx(math.tanh(z / 2))
    # with bars only, the score is the momentum
    assert snap.metrics["score"] == pytest.approx(snap.metrics["momentum"])


def test_no_snapshot_until_a_component_is_known() -> None:
    engine = SentimentEngine("SPY", SentimentConfig())
    assert engine.update(bar(100.0, 0)) is None
    assert engine.update(bar(101.0, 1)) is None  # one return: no dispersion estimate yet
    assert engine.update(bar(100.0, 2)) is not None


def test_momentum_window_drops_old_bars() -> None:
    engine = SentimentEngine("SPY", SentimentConfig(momentum_lookback=3))
    snap = feed(engine, [50.0, 60.0, 70.0, *CLOSES[-4:]])  # only the last 4 closes count
    tail = CLOSES[-4:]
    r = [math.log(b / a) for a, b in itertools.pairwise(tail)]
    mean = sum(r) / len(r)
    sd = math.sqrt(sum((x - mean) ** 2 for x in r) / (len(r) - 1))
    assert snap is not None
    assert snap.metrics["momentum"] == pytest.approx(math.tanh(sum(r) / (sd * math.sqrt(3)) / 2))


def test_put_call_ratios_and_weighted_score_from_chain() -> None:
    chain = make_chain(
        [
            Row(call=True, strike=100, days=30, volume=1000, oi=4000),
            Row(call=False, strike=100, days=30, volume=2000, oi=2000),
        ]
    )
    engine = SentimentEngine("SPY", SentimentConfig())
    feed(engine, CLOSES)
    snap = engine.update(chain)
    assert snap is not None
    assert snap.metrics["pc_volume_ratio"] == pytest.approx(2.0)
    assert snap.metrics["pc_oi_ratio"] == pytest.approx(0.5)
    mom = snap.metrics["momentum"]
    expected = 0.6 * mom + 0.24 * -math.tanh(math.log(2.0)) + 0.16 * -math.tanh(math.log(0.5))
    assert snap.metrics["score"] == pytest.approx(expected)


def test_chain_alone_gives_a_score_with_renormalised_weights() -> None:
    chain = make_chain(
        [
            Row(call=True, strike=100, days=30, volume=1000, oi=1000),
            Row(call=False, strike=100, days=30, volume=3000, oi=1000),
        ]
    )
    snap = SentimentEngine("SPY", SentimentConfig()).update(chain)
    assert snap is not None
    assert math.isnan(snap.metrics["momentum"])
    expected = (0.18 * -math.tanh(math.log(3.0)) + 0.12 * 0.0) / 0.30
    assert snap.metrics["score"] == pytest.approx(expected)
    assert snap.flags == ("bearish",)


def test_flags_against_thresholds() -> None:
    up = feed(SentimentEngine("SPY", SentimentConfig(bullish_threshold=0.3)), CLOSES)
    down = feed(SentimentEngine("SPY", SentimentConfig(bearish_threshold=0.3)), CLOSES[::-1])
    assert up is not None
    assert up.metrics["score"] >= 0.3
    assert up.flags == ("bullish",)
    assert down is not None
    assert down.metrics["score"] <= -0.3
    assert down.flags == ("bearish",)
    flat = feed(SentimentEngine("SPY", SentimentConfig()), [100.0, 100.1, 100.0, 100.1, 100.0])
    assert flat is not None
    assert abs(flat.metrics["score"]) < 0.3
    assert flat.flags == ()


def test_high_threshold_suppresses_the_flag() -> None:
    snap = feed(SentimentEngine("SPY", SentimentConfig(bullish_threshold=1.0)), CLOSES)
    assert snap is not None
    assert snap.metrics["score"] < 1.0
    assert snap.flags == ()
