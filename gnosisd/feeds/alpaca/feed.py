"""AlpacaFeed: live market data onto the bus as it arrives (the daemon's `--feed alpaca`).

One connection per stream type (stocks: trades, quotes, minute bars; options: quotes of the
contracts the engines and open orders need; news), each under our supervision, plus chain
snapshots from REST on a schedule, off the event loop. Every event is validated at the boundary;
drops are counted per reason and logged, never raised.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import structlog
from alpaca.data.enums import DataFeed, OptionsFeed
from alpaca.data.historical.option import OptionHistoricalDataClient
from alpaca.data.historical.stock import StockHistoricalDataClient
from alpaca.data.live.news import NewsDataStream
from alpaca.data.live.option import OptionDataStream
from alpaca.data.live.stock import StockDataStream
from alpaca.trading.client import TradingClient

from gnosisd.bus.events import ChainSnapshot
from gnosisd.bus.topics import Topic
from gnosisd.core.clock import Clock
from gnosisd.core.reconnect import WEBSOCKET_PARAMS, Backoff, Signals
from gnosisd.feeds.alpaca.chains import ChainQuery, ChainSource
from gnosisd.feeds.alpaca.convert import MALFORMED, to_bar, to_news, to_quote, to_trade
from gnosisd.feeds.alpaca.supervisor import Channel, supervise
from gnosisd.feeds.validate import MarketDataValidator

log = structlog.get_logger("gnosisd.feeds.alpaca")
Publish = Callable[[Topic, object], Awaitable[None]]

DEFAULT_SILENCE_S: Mapping[str, float | None] = {"stocks": 30.0, "options": 60.0, "news": None}


@dataclass(frozen=True, slots=True)
class AlpacaFeedConfig:
    """Where and what to stream. URLs come from the resolved Alpaca endpoints (docs/alpaca.md)."""

    symbols: tuple[str, ...]
    api_key: str = field(repr=False)
    secret_key: str = field(repr=False)
    trading_url: str  # option contracts (open interest) live on the trading API
    data_url: str
    data_stream_url: str
    stock_feed: str = "iex"  # iex | sip
    option_feed: str = "indicative"  # indicative | opra
    news: bool = True
    chain_refresh_s: float = 300.0
    query: ChainQuery = field(default_factory=ChainQuery)
    div_yields: Mapping[str, float] = field(default_factory=dict)
    max_option_symbols: int = 200  # option quote subscriptions (nearest the money first)
    silence_s: Mapping[str, float | None] = field(default_factory=lambda: dict(DEFAULT_SILENCE_S))
    backoff_base_s: float = 1.0
    backoff_max_s: float = 30.0
    rest_timeout_s: float = 10.0
    rest_retries: int = 2  # alpaca-py's own 429/504 retries for the data REST calls
    rest_retry_wait_s: float = 1.0
    login_timeout_s: float = 15.0  # connect + auth answer, else the connection counts as down

    def __post_init__(self) -> None:
        if self.stock_feed not in ("iex", "sip"):
            raise ValueError(f"stock_feed must be 'iex' or 'sip', got {self.stock_feed!r}")
        if self.option_feed not in ("indicative", "opra"):
            raise ValueError(
                f"option_feed must be 'indicative' or 'opra', got {self.option_feed!r}"
            )
        if not self.symbols:
            raise ValueError("the Alpaca feed needs at least one underlying symbol")


class AlpacaFeed:
    """Streams Alpaca market data onto the bus through `publish(topic, event)` until cancelled."""

    def __init__(
        self,
        config: AlpacaFeedConfig,
        publish: Publish,
        clock: Clock,
        *,
        validator: MarketDataValidator | None = None,
        expect_data: Callable[[], bool] | None = None,
        rng: random.Random | None = None,
        chain_source: ChainSource | None = None,
    ) -> None:
        self.config = config
        self._publish = publish
        self._clock = clock
        self.validator = validator or MarketDataValidator(known_symbols=set(config.symbols))
        self.dropped: Counter[str] = Counter()  # reason -> events dropped at the boundary
        self.chain_failures: Counter[str] = Counter()  # why a chain round produced nothing
        self.published: Counter[str] = Counter()  # event type -> count
        self._spot: dict[str, float] = {}
        self._pinned: frozenset[str] = frozenset()
        self._chain_picks: frozenset[str] = frozenset()
        self.chains = chain_source or self._rest_chain_source()
        rng = rng or random.Random()

        def backoff() -> Backoff:
            return Backoff(config.backoff_base_s, config.backoff_max_s, rng)

        silence = config.silence_s
        self.channels: dict[str, Channel] = {
            "stocks": Channel(
                "stocks",
                self._stock_stream,
                backoff(),
                silence.get("stocks"),
                expect_data,
                config.symbols,
                config.login_timeout_s,
            ),
            "options": Channel(
                "options",
                self._option_stream,
                backoff(),
                silence.get("options"),
                expect_data,
                (),
                config.login_timeout_s,
            ),
        }
        if config.news:
            self.channels["news"] = Channel(
                "news",
                self._news_stream,
                backoff(),
                silence.get("news"),
                None,
                config.symbols,
                config.login_timeout_s,
            )

    # ------------------------------------------------------------------ public
    async def run(self) -> None:
        """Run every channel and the chain schedule until cancelled."""
        try:
            async with asyncio.TaskGroup() as tg:
                for channel in self.channels.values():
                    tg.create_task(channel.run())
                tg.create_task(self._chain_loop())
        finally:
            self.chains.close()

    def spot(self, symbol: str) -> float | None:
        """The latest valid quote mid (or trade) of an underlying from the stream."""
        return self._spot.get(symbol)

    def status(self) -> dict[str, dict[str, Any]]:
        """Per channel: connected, connects, drops, silent drops, messages, seconds since data."""
        return {
            name: {
                "connected": ch.connected,
                "connects": ch.connects,
                "drops": ch.drops,
                "silent_drops": ch.silent_drops,
                "messages": ch.messages,
                "seconds_since_data": ch.seconds_since_data(),
                "last_drop_reason": ch.last_drop_reason,
                "symbols": len(ch.symbols),
            }
            for name, ch in self.channels.items()
        }

    async def pin_option_symbols(self, symbols: Iterable[str]) -> None:
        """Always stream quotes for these contracts (open positions, working orders)."""
        self._pinned = frozenset(symbols)
        await self._resubscribe_options()

    async def refresh_chains(self) -> list[ChainSnapshot]:
        """Fetch, validate and publish one chain snapshot per underlying (off the loop)."""
        out: list[ChainSnapshot] = []
        for underlying in self.config.symbols:
            try:
                chain = await self._fetch_chain(underlying)
            except Exception as exc:  # REST down, 5xx, timeouts: try again next round
                self.chain_failures["fetch_failed"] += 1
                log.warning("chain snapshot failed", underlying=underlying, error=repr(exc))
                continue
            if chain is None:
                self.chain_failures["empty"] += 1
                continue
            if await self._check_and_publish(Topic.CHAINS, chain):
                out.append(chain)
        if out:
            self._chain_picks = frozenset(
                s for c in out for s in nearest_contracts(c, self.config.max_option_symbols)
            )
            await self._resubscribe_options()
        return out

    # ------------------------------------------------------------------ chains
    def _rest_chain_source(self) -> ChainSource:
        c = self.config
        options = OptionHistoricalDataClient(
            c.api_key, c.secret_key, raw_data=True, url_override=c.data_url
        )
        stocks = StockHistoricalDataClient(
            c.api_key, c.secret_key, raw_data=True, url_override=c.data_url
        )
        trading = TradingClient(c.api_key, c.secret_key, raw_data=True, url_override=c.trading_url)
        for client in (options, stocks, trading):
            _harden(client, c.rest_timeout_s, c.rest_retries, c.rest_retry_wait_s)
        return ChainSource(options, stocks, trading, c.query, c.div_yields)

    async def _fetch_chain(self, underlying: str) -> ChainSnapshot | None:
        spot = self._spot.get(underlying)
        if spot is None:
            spot = await asyncio.to_thread(self.chains.spot, underlying)
        if spot is None:
            self.chain_failures["no_spot"] += 1
            return None
        now = self._clock.now_ns()
        return await asyncio.to_thread(self.chains.snapshot, underlying, spot, now)

    async def _chain_loop(self) -> None:
        while True:
            await self.refresh_chains()
            await asyncio.sleep(self.config.chain_refresh_s)

    async def _resubscribe_options(self) -> None:
        wanted = self._pinned | self._chain_picks
        await self.channels["options"].set_symbols(wanted, ("quotes",))

    # ------------------------------------------------------------------ streams
    def _connect_args(self, path: str) -> dict[str, Any]:
        """What every market-data stream is built with: keys, raw dicts, our URL and keepalive."""
        c = self.config
        return {
            "api_key": c.api_key,
            "secret_key": c.secret_key,
            "raw_data": True,
            "url_override": f"{c.data_stream_url}{path}",
            "websocket_params": dict(WEBSOCKET_PARAMS),
        }

    def _stock_stream(self, signals: Signals, symbols: frozenset[str]) -> Any:
        feed = self.config.stock_feed
        stream = StockDataStream(feed=DataFeed(feed), **self._connect_args(f"/v2/{feed}"))
        stream.subscribe_quotes(self._on_stock_quote, *sorted(symbols))
        stream.subscribe_trades(self._on_stock_trade, *sorted(symbols))
        stream.subscribe_bars(self._on_stock_bar, *sorted(symbols))
        return supervise(stream, signals)

    def _option_stream(self, signals: Signals, symbols: frozenset[str]) -> Any:
        feed = self.config.option_feed
        stream = OptionDataStream(feed=OptionsFeed(feed), **self._connect_args(f"/v1beta1/{feed}"))
        stream.subscribe_quotes(self._on_option_quote, *sorted(symbols))
        return supervise(stream, signals)

    def _news_stream(self, signals: Signals, symbols: frozenset[str]) -> Any:
        stream = NewsDataStream(**self._connect_args("/v1beta1/news"))
        stream.subscribe_news(self._on_news, *sorted(symbols))
        return supervise(stream, signals)

    # ------------------------------------------------------------------ handlers
    async def _on_stock_quote(self, msg: Any) -> None:
        self.channels["stocks"].note_data()
        quote = to_quote(msg)
        if await self._accept("stock quote", quote, Topic.QUOTES) and quote is not None:
            self._spot[quote.symbol] = (quote.bid + quote.ask) / 2

    async def _on_stock_trade(self, msg: Any) -> None:
        self.channels["stocks"].note_data()
        trade = to_trade(msg)
        if await self._accept("stock trade", trade, Topic.TRADES) and trade is not None:
            self._spot.setdefault(trade.symbol, trade.price)

    async def _on_stock_bar(self, msg: Any) -> None:
        self.channels["stocks"].note_data()
        await self._accept("stock bar", to_bar(msg), Topic.BARS)

    async def _on_option_quote(self, msg: Any) -> None:
        self.channels["options"].note_data()
        await self._accept("option quote", to_quote(msg), Topic.QUOTES)

    async def _on_news(self, msg: Any) -> None:
        self.channels["news"].note_data()
        await self._accept("news", to_news(msg), Topic.NEWS)

    async def _accept(self, kind: str, event: object | None, topic: Topic) -> bool:
        """Validate and publish; count and log a drop. Never raises into alpaca-py."""
        try:
            if event is None:
                self.dropped[MALFORMED] += 1
                log.warning("market data dropped", reason=MALFORMED, kind=kind)
                return False
            return await self._check_and_publish(topic, event)
        except Exception:
            self.dropped["handler_error"] += 1
            log.exception("market data handler failed", kind=kind)
            return False

    async def _check_and_publish(self, topic: Topic, event: object) -> bool:
        reason = self.validator.check(event, self._clock.now_ns())
        if reason is not None:
            self.dropped[reason] += 1
            log.warning("market data dropped", reason=reason, kind=type(event).__name__)
            return False
        await self._publish(topic, event)
        self.published[type(event).__name__] += 1
        return True


def nearest_contracts(chain: ChainSnapshot, limit: int) -> list[str]:
    """The `limit` contracts closest to the money (by |ln K/S|, then nearer expiry)."""
    if limit <= 0 or len(chain) == 0:
        return []
    moneyness = np.abs(np.log(chain.strike / chain.spot))
    order = np.lexsort((chain.t_years, moneyness))
    return [chain.symbols[i] for i in order[:limit]]


def _harden(client: Any, timeout_s: float, retries: int, retry_wait_s: float) -> None:
    """A timeout on every request (alpaca-py sets none) and bounded 429/504 retries."""
    session = client._session
    session.request = _with_timeout(session.request, timeout_s)
    client._retry = retries
    client._retry_wait = retry_wait_s


def _with_timeout(request: Callable[..., Any], timeout_s: float) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", timeout_s)
        return request(*args, **kwargs)

    return call
