"""Sentiment engine: headline tone with exponential decay, combined with momentum and put/call."""

from __future__ import annotations

import math

import pytest

from gnosisd.bus.events import NewsItem
from gnosisd.core.config import SentimentConfig
from gnosisd.engines.sentiment import NewsTone, SentimentEngine
from tests.unit.engines.chain_factory import MINUTE_NS, T0_NS, bar

BAD = "SPY tumbles as recession fears grip markets"  # polarity -1
GOOD = "Stocks rally as strong earnings lift confidence"  # polarity +1


def news(text: str, ts: int = T0_NS, symbols: tuple[str, ...] = ("SPY",)) -> NewsItem:
    return NewsItem(ts_ns=ts, headline=text, symbols=symbols)


def test_one_headline_gives_tanh_of_its_polarity_and_the_whole_score() -> None:
    snap = SentimentEngine("SPY", SentimentConfig()).update(news(BAD))
    assert snap is not None
    assert snap.metrics["news"] == pytest.approx(math.tanh(-1.0))
    assert snap.metrics["news_mass"] == pytest.approx(1.0)
    assert snap.metrics["score"] == pytest.approx(math.tanh(-1.0))  # the only known component
    assert snap.flags == ("bearish",)


def test_headline_weight_halves_every_half_life() -> None:
    engine = SentimentEngine("SPY", SentimentConfig(news_half_life_minutes=60))
    engine.update(news(BAD))
    m = engine.metrics(T0_NS + 60 * MINUTE_NS)
    assert m["news_mass"] == pytest.approx(0.5)
    assert m["news"] == pytest.approx(math.tanh(-0.5))
    later = engine.metrics(T0_NS + 60 * 20 * MINUTE_NS)
    assert math.isnan(later["news"])  # faded below the minimum mass


def test_opposite_headlines_cancel_and_late_ones_enter_predecayed() -> None:
    tone = NewsTone(half_life_ns=60 * MINUTE_NS)
    tone.add(T0_NS + 60 * MINUTE_NS, 1.0)
    tone.add(T0_NS, -1.0)  # arrives late: already one half-life old
    total, mass = tone.at(T0_NS + 60 * MINUTE_NS)
    assert total == pytest.approx(0.5)
    assert mass == pytest.approx(1.5)


def test_news_weight_scales_with_its_mass_next_to_momentum() -> None:
    engine = SentimentEngine("SPY", SentimentConfig(news_half_life_minutes=60))
    closes = [100.0, 100.5, 100.2, 100.9, 101.0]
    for i, c in enumerate(closes):
        engine.update(bar(c, i))
    mom = engine.metrics()["momentum"]
    t = T0_NS + 4 * MINUTE_NS
    snap = engine.update(news(GOOD, ts=t))
    assert snap is not None
    expected = (0.45 * mom + 0.25 * math.tanh(1.0)) / 0.70
    assert snap.metrics["score"] == pytest.approx(expected)
    half = engine.metrics(t + 60 * MINUTE_NS)
    expected_half = (0.45 * mom + 0.125 * math.tanh(0.5)) / 0.575
    assert half["score"] == pytest.approx(expected_half)


def test_headlines_without_tone_words_or_for_other_symbols_do_not_count() -> None:
    engine = SentimentEngine("SPY", SentimentConfig())
    assert engine.update(news("SPY little changed ahead of Fed minutes")) is None
    assert engine.update(news(BAD, symbols=("QQQ",))) is None
    snap = engine.update(news(GOOD, symbols=("QQQ", "SPY")))
    assert snap is not None
    assert snap.metrics["news_count"] == 1.0


def test_news_memory_is_constant_however_many_headlines_arrive() -> None:
    engine = SentimentEngine("SPY", SentimentConfig())
    for i in range(2000):
        engine.update(news(GOOD if i % 2 else BAD, ts=T0_NS + i * MINUTE_NS))
    # the decayed sums are a handful of scalars, not a list of headlines
    assert all(isinstance(v, int | float | None) for v in vars(engine._news).values())
    assert engine.metrics()["news_count"] == 2000.0
