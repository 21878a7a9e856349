"""The analytics stage: market data into the four engines of each symbol, their snapshots into
the composer, and a MarketContext out once every engine has seen a chain (bus handlers)."""

from __future__ import annotations

from datetime import date
from typing import Any

from gnosisd.agents.composer import Composer
from gnosisd.bus.bus import Bus
from gnosisd.bus.events import Bar, ChainSnapshot, EngineSnapshot, NewsItem, Quote, Trade
from gnosisd.bus.topics import Topic
from gnosisd.core.config import Settings
from gnosisd.engines.hedge import HedgeEngine
from gnosisd.engines.liquidity import LiquidityEngine
from gnosisd.engines.sentiment import SentimentEngine
from gnosisd.engines.volatility import HistoryItem, VolatilityEngine
from gnosisd.runtime.market_state import MarketState

ENGINE_NAMES = ("hedge", "liquidity", "sentiment", "volatility")


class SymbolAnalytics:
    """Engines and composer of one symbol."""

    def __init__(
        self,
        symbol: str,
        settings: Settings,
        history: list[HistoryItem],
        returns: list[HistoryItem],
    ) -> None:
        self.hedge = HedgeEngine(symbol, settings.hedge)
        self.liquidity = LiquidityEngine(symbol, settings.liquidity)
        self.sentiment = SentimentEngine(symbol, settings.sentiment)
        self.volatility = VolatilityEngine(symbol, settings.volatility, history, returns)
        self.composer = Composer(symbol, settings.trade_agent, settings.volatility)
        self.pending: dict[int, set[str]] = {}


class AnalyticsStage:
    """Bus handlers of the engines and composers; `analytics` is the daemon's per-symbol map
    (shared, so a symbol's entry replaced later, as `--params` does, is the one used)."""

    def __init__(self, bus: Bus, market: MarketState, analytics: dict[str, SymbolAnalytics]):
        self.bus = bus
        self.market = market
        self.analytics = analytics

    async def on_quote(self, event: object) -> None:
        assert isinstance(event, Quote)
        analytics = self.analytics.get(event.symbol)
        if (
            analytics is None
        ):  # an option quote (OCC symbol): freshness only, marks come from chains
            self.market.touch(event.symbol, event.ts_ns)
            return
        self.market.set_spot(event.symbol, (event.bid + event.ask) / 2, event.ts_ns)
        snap = analytics.liquidity.update(event)
        if snap is not None:
            await self.bus.publish(Topic.ENGINES, snap)

    def on_trade(self, event: object) -> None:
        assert isinstance(event, Trade)
        self.market.touch(event.symbol, event.ts_ns)
        analytics = self.analytics.get(event.symbol)
        if analytics is not None:
            analytics.liquidity.update(event)  # effective spread and signed volume

    async def on_news(self, event: object) -> None:
        assert isinstance(event, NewsItem)
        for symbol in event.symbols:
            analytics = self.analytics.get(symbol.upper())
            if analytics is not None and (snap := analytics.sentiment.update(event)) is not None:
                await self.bus.publish(Topic.ENGINES, snap)

    async def on_bar(self, event: object) -> None:
        assert isinstance(event, Bar)
        self.market.touch(event.symbol, event.ts_ns)
        a = self.analytics[event.symbol]
        for engine in (a.liquidity, a.sentiment, a.volatility):
            snap = engine.update(event)
            if snap is not None:
                await self.bus.publish(Topic.ENGINES, snap)

    async def on_chain(self, event: object) -> None:
        assert isinstance(event, ChainSnapshot)
        self.market.set_chain(event)
        a = self.analytics[event.underlying]
        a.pending[event.ts_ns] = set(ENGINE_NAMES)
        for engine in (a.hedge, a.liquidity, a.sentiment, a.volatility):
            snap = engine.update(event)
            if snap is None:
                a.pending[event.ts_ns].discard(_engine_name(engine))
            else:
                await self.bus.publish(Topic.ENGINES, snap)
        if not a.pending[event.ts_ns]:
            del a.pending[event.ts_ns]
            await self._compose(event.underlying, event.ts_ns)

    async def on_engine(self, event: object) -> None:
        assert isinstance(event, EngineSnapshot)
        a = self.analytics[event.symbol]
        a.composer.update(event)
        waiting = a.pending.get(event.ts_ns)
        if waiting is None:
            return
        waiting.discard(event.engine)
        if not waiting:
            del a.pending[event.ts_ns]
            await self._compose(event.symbol, event.ts_ns)

    async def _compose(self, symbol: str, ts_ns: int) -> None:
        context = self.analytics[symbol].composer.compose(ts_ns)
        if context is not None:
            await self.bus.publish(Topic.CONTEXT, context)


def _engine_name(engine: object) -> str:
    return {
        HedgeEngine: "hedge",
        LiquidityEngine: "liquidity",
        SentimentEngine: "sentiment",
        VolatilityEngine: "volatility",
    }[type(engine)]


def parse_history(raw: Any) -> list[HistoryItem]:
    """Stored [date, value] or [date, value, source] points; anything else is skipped."""
    out: list[HistoryItem] = []
    if isinstance(raw, list):
        for item in raw:
            if isinstance(item, list | tuple) and len(item) == 2:
                out.append((date.fromisoformat(str(item[0])), float(item[1])))
            elif isinstance(item, list | tuple) and len(item) == 3:
                out.append((date.fromisoformat(str(item[0])), float(item[1]), str(item[2])))
    return out
