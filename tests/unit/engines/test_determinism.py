"""The four engines on a simulated session: identical snapshots for identical events."""

from __future__ import annotations

import math
from datetime import date

from gnosisd.bus.events import EngineSnapshot
from gnosisd.core.calendar import TradingCalendar
from gnosisd.core.config import HedgeConfig, LiquidityConfig, SentimentConfig, VolatilityConfig
from gnosisd.engines.hedge import HedgeEngine
from gnosisd.engines.liquidity import LiquidityEngine
from gnosisd.engines.sentiment import SentimentEngine
from gnosisd.engines.volatility import VolatilityEngine
from gnosisd.feeds.sim import SimMarket

CAL = TradingCalendar()
DAY = date(2025, 3, 3)


def run() -> list[EngineSnapshot]:
    engines = (
        HedgeEngine("SPY", HedgeConfig()),
        LiquidityEngine("SPY", LiquidityConfig()),
        SentimentEngine("SPY", SentimentConfig()),
        VolatilityEngine("SPY", VolatilityConfig()),
    )
    out: list[EngineSnapshot] = []
    market = SimMarket(["SPY"], seed=21, chain_refresh_minutes=15, emit_news=True)
    for _, event in market.session_events(CAL.session(DAY)):
        for engine in engines:
            snap = engine.update(event)
            if snap is not None:
                out.append(snap)
    return out


def same(a: EngineSnapshot, b: EngineSnapshot) -> bool:
    if (a.engine, a.ts_ns, a.flags, a.metrics.keys()) != (
        b.engine,
        b.ts_ns,
        b.flags,
        b.metrics.keys(),
    ):
        return False
    return all(
        (math.isnan(x) and math.isnan(b.metrics[k])) or x == b.metrics[k]
        for k, x in a.metrics.items()
    )


def test_same_events_give_identical_snapshots_from_every_engine() -> None:
    first, second = run(), run()
    assert len(first) == len(second) > 0
    assert {s.engine for s in first} == {"hedge", "liquidity", "sentiment", "volatility"}
    assert all(same(a, b) for a, b in zip(first, second, strict=True))
    news = [s for s in first if s.engine == "sentiment" and s.metrics["news_count"] > 0]
    assert news  # the session's headlines reached the sentiment engine
