"""Simulated headlines: seeded, few per session, tone following the regime; validation of news."""

from __future__ import annotations

from collections import Counter
from datetime import date

import numpy as np
import pytest

from gnosisd.bus.events import Bar, ChainSnapshot, NewsItem, Quote, Trade
from gnosisd.core.calendar import TradingCalendar
from gnosisd.core.enums import Regime
from gnosisd.engines.lexicon import score_headline
from gnosisd.feeds.news import NEGATIVE, NEUTRAL, POSITIVE, draw_headlines
from gnosisd.feeds.sim import SimMarket
from gnosisd.feeds.validate import MarketDataValidator

CAL = TradingCalendar()
DAY = date(2025, 3, 3)
NOW = 1_700_000_000_000_000_000
S = 1_000_000_000


def _news(market: SimMarket, day: date = DAY) -> list[tuple[int, NewsItem]]:
    return [(ts, e) for ts, e in market.session_events(CAL.session(day)) if isinstance(e, NewsItem)]


def test_sim_emits_a_few_seeded_headlines_per_session_only_when_asked() -> None:
    a = _news(SimMarket(["SPY", "QQQ"], seed=3, emit_news=True))
    b = _news(SimMarket(["SPY", "QQQ"], seed=3, emit_news=True))
    assert a == b
    assert 1 <= len(a) <= 8
    for ts, item in a:
        assert item.ts_ns == ts
        assert set(item.symbols) <= {"SPY", "QQQ"}
        assert item.headline
    assert _news(SimMarket(["SPY", "QQQ"], seed=3)) == []


def test_news_does_not_change_the_market_path() -> None:
    def market_events(emit: bool) -> list[object]:
        m = SimMarket(["SPY"], seed=5, emit_news=emit)
        return [
            (ts, e.close) if isinstance(e, Bar) else (ts, e.price)
            for ts, e in m.session_events(CAL.session(DAY))
            if isinstance(e, Bar | Trade)
        ]

    assert market_events(True) == market_events(False)


def test_headlines_stay_in_time_order_with_the_rest_of_the_stream() -> None:
    events = list(SimMarket(["SPY"], seed=9, emit_news=True).session_events(CAL.session(DAY)))
    ts = [t for t, _ in events]
    assert ts == sorted(ts)
    kinds = Counter(type(e).__name__ for _, e in events)
    assert kinds["NewsItem"] >= 1 and kinds["ChainSnapshot"] > 0 and kinds["Quote"] > 0
    assert all(isinstance(e, Bar | ChainSnapshot | Quote | Trade | NewsItem) for _, e in events)


@pytest.mark.parametrize("regime", list(Regime))
def test_headline_tone_follows_the_regime(regime: Regime) -> None:
    rng = np.random.default_rng(1)
    tones: Counter[int] = Counter()
    for _ in range(200):
        for h in draw_headlines(rng, ["SPY"], [regime] * 390):
            tones[h.tone] += 1
    share_pos = tones[1] / sum(tones.values())
    share_neg = tones[-1] / sum(tones.values())
    if regime is Regime.TREND_UP:
        assert share_pos > 0.5 > share_neg
    elif regime in (Regime.TREND_DOWN, Regime.VOL_EXPANSION):
        assert share_neg > 0.5 > share_pos
    else:
        assert abs(share_pos - share_neg) < 0.1


def test_template_tone_agrees_with_the_engine_lexicon() -> None:
    for template in POSITIVE:
        assert score_headline(template.format(sym="SPY", name="S&P 500")).polarity > 0
    for template in NEGATIVE:
        assert score_headline(template.format(sym="SPY", name="S&P 500")).polarity < 0
    for template in NEUTRAL:
        assert score_headline(template.format(sym="SPY", name="S&P 500")).hits == 0


def test_validator_accepts_news_naming_a_known_symbol() -> None:
    v = MarketDataValidator(known_symbols={"SPY"})
    assert v.check(NewsItem(NOW, "SPY rallies", ("SPY",)), NOW) is None
    assert v.check(NewsItem(NOW, "Apple and SPY rally", ("AAPL", "SPY")), NOW) is None
    assert v.check(NewsItem(NOW, "spy rallies", ("spy",)), NOW) is None


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        (NewsItem(NOW + 60 * S, "SPY rallies", ("SPY",)), "future_timestamp"),
        (NewsItem(NOW, "Apple rallies", ("AAPL",)), "unknown_symbol"),
        (NewsItem(NOW, "Markets rally", ()), "unknown_symbol"),
        (NewsItem(NOW, "   ", ("SPY",)), "bad_news"),
    ],
)
def test_validator_rejects_future_unknown_or_empty_news(item: NewsItem, reason: str) -> None:
    v = MarketDataValidator(known_symbols={"SPY"})
    assert v.check(item, NOW) == reason
    assert v.counts[reason] == 1
