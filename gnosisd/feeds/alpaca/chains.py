"""Option-chain snapshots from Alpaca's REST API (blocking: call through asyncio.to_thread).

Quotes and implied volatility come from OptionHistoricalDataClient.get_option_chain (it pages by
itself), open interest from TradingClient.get_option_contracts (paged by hand, cached per day).
Greeks are recomputed from Alpaca's IV with gnosisd.quant.bsm (Haug ch. 2) so their units match
the simulated chain (vega per 1.00 of vol, theta per year), whatever the vendor's convention.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
from alpaca.data.enums import DataFeed, OptionsFeed
from alpaca.data.historical.option import OptionHistoricalDataClient
from alpaca.data.historical.stock import StockHistoricalDataClient
from alpaca.data.requests import OptionChainRequest, StockLatestQuoteRequest
from alpaca.trading.client import TradingClient
from alpaca.trading.requests import GetOptionContractsRequest

from gnosisd.bus.events import ChainSnapshot
from gnosisd.core.clock import NEW_YORK
from gnosisd.core.errors import InvalidSymbolError
from gnosisd.core.occ import parse_occ
from gnosisd.feeds.listing import expiry_close_ns
from gnosisd.feeds.surface import NS_PER_YEAR
from gnosisd.quant import bsm


@dataclass(frozen=True, slots=True)
class ChainQuery:
    """Which part of a chain to fetch: expiries up to `max_dte` days, strikes within ±band."""

    max_dte: int = 60
    strike_band: float = 0.15
    option_feed: str = "indicative"
    stock_feed: str = "iex"
    rate: float = 0.045


def _float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return math.nan
    try:
        return float(value)
    except ValueError:
        return math.nan


class ChainSource:
    """Builds ChainSnapshots from Alpaca REST; every method blocks (run it off the loop)."""

    def __init__(
        self,
        options: OptionHistoricalDataClient,
        stocks: StockHistoricalDataClient,
        trading: TradingClient,
        query: ChainQuery,
        div_yields: Mapping[str, float] | None = None,
    ) -> None:
        self._options = options
        self._stocks = stocks
        self._trading = trading
        self.query = query
        self._div = dict(div_yields or {})
        self._oi: dict[tuple[str, date], dict[str, int]] = {}
        self.row_drops: Counter[str] = Counter()

    def close(self) -> None:
        """Close the REST clients' connection pools."""
        for client in (self._options, self._stocks, self._trading):
            session = getattr(client, "_session", None)
            if session is not None:
                session.close()

    def spot(self, underlying: str) -> float | None:
        """The underlying's latest quote mid from REST (when the stream has none yet)."""
        req = StockLatestQuoteRequest(
            symbol_or_symbols=[underlying], feed=DataFeed(self.query.stock_feed)
        )
        raw: Any = self._stocks.get_stock_latest_quote(req)
        quote = raw.get(underlying) if isinstance(raw, dict) else None
        if not isinstance(quote, dict):
            return None
        bid, ask = _float(quote.get("bp")), _float(quote.get("ap"))
        if not (math.isfinite(bid) and math.isfinite(ask)) or bid <= 0 or ask < bid:
            return None
        return (bid + ask) / 2

    def open_interest(self, underlying: str, today: date) -> dict[str, int]:
        """Open interest by OCC symbol for the expiries we trade (one REST walk per day)."""
        key = (underlying, today)
        cached = self._oi.get(key)
        if cached is not None:
            return cached
        out: dict[str, int] = {}
        token: str | None = None
        while True:
            req = GetOptionContractsRequest(
                underlying_symbols=[underlying],
                expiration_date_gte=today,
                expiration_date_lte=today + timedelta(days=self.query.max_dte),
                limit=10_000,
                page_token=token,
            )
            raw: Any = self._trading.get_option_contracts(req)
            page = raw if isinstance(raw, dict) else {}
            for c in page.get("option_contracts") or []:
                if isinstance(c, dict) and isinstance(c.get("symbol"), str):
                    oi = _float(c.get("open_interest"))
                    out[c["symbol"]] = int(oi) if math.isfinite(oi) and oi >= 0 else 0
            token = page.get("next_page_token")
            if not token:
                break
        self._oi = {key: out}  # keep only today's
        return out

    def snapshot(self, underlying: str, spot: float, now_ns: int) -> ChainSnapshot | None:
        """The chain around `spot` at `now_ns`; None if no contract had a usable quote and IV."""
        today = datetime.fromtimestamp(now_ns / 1e9, tz=NEW_YORK).date()
        band = self.query.strike_band
        req = OptionChainRequest(
            underlying_symbol=underlying,
            feed=OptionsFeed(self.query.option_feed),
            expiration_date_gte=today,
            expiration_date_lte=today + timedelta(days=self.query.max_dte),
            strike_price_gte=round(spot * (1 - band), 2),
            strike_price_lte=round(spot * (1 + band), 2),
        )
        raw: Any = self._options.get_option_chain(req)
        snaps: dict[str, Any] = raw if isinstance(raw, dict) else {}
        oi = self.open_interest(underlying, today)
        return self._build(underlying, spot, now_ns, today, snaps, oi)

    def _build(
        self,
        underlying: str,
        spot: float,
        now_ns: int,
        today: date,
        snaps: Mapping[str, Any],
        oi: Mapping[str, int],
    ) -> ChainSnapshot | None:
        rows: list[tuple[date, float, bool, str, float, float, float, int, int]] = []
        for symbol, snap in snaps.items():
            reason = None
            try:
                contract = parse_occ(symbol)
            except InvalidSymbolError:
                reason = "bad_symbol"
            if reason is None and (contract.underlying != underlying or contract.expiry < today):
                reason = "bad_symbol"
            quote = snap.get("latestQuote") if isinstance(snap, dict) else None
            bid = _float(quote.get("bp")) if isinstance(quote, dict) else math.nan
            ask = _float(quote.get("ap")) if isinstance(quote, dict) else math.nan
            iv = _float(snap.get("impliedVolatility")) if isinstance(snap, dict) else math.nan
            if reason is None and not (math.isfinite(bid) and math.isfinite(ask)):
                reason = "no_quote"
            if reason is None and (ask <= 0 or bid < 0 or bid > ask):
                reason = "bad_quote"
            if reason is None and not (math.isfinite(iv) and 0 < iv < 10):
                reason = "no_iv"
            if reason is not None:
                self.row_drops[reason] += 1
                continue
            bar = snap.get("dailyBar")
            volume = _float(bar.get("v")) if isinstance(bar, dict) else 0.0
            rows.append(
                (
                    contract.expiry,
                    float(contract.strike),
                    contract.option_type.value == "call",
                    symbol,
                    bid,
                    ask,
                    iv,
                    oi.get(symbol, 0),
                    int(volume) if math.isfinite(volume) and volume > 0 else 0,
                )
            )
        if not rows:
            return None
        rows.sort(key=lambda r: (r[0], r[1], not r[2]))
        expiries = tuple(sorted({r[0] for r in rows}))
        index = {e: i for i, e in enumerate(expiries)}
        is_call = np.array([r[2] for r in rows], dtype=np.bool_)
        strike = np.array([r[1] for r in rows], dtype=np.float64)
        close = np.array([expiry_close_ns(r[0]) for r in rows], dtype=np.int64)
        t_years = np.maximum(close - now_ns, 0).astype(np.float64) / NS_PER_YEAR
        vol = np.array([r[6] for r in rows], dtype=np.float64)
        q = self._div.get(underlying, 0.0)
        g = bsm.greeks(is_call, spot, strike, t_years, self.query.rate, q, vol)
        return ChainSnapshot(
            underlying=underlying,
            ts_ns=now_ns,
            spot=spot,
            rate=self.query.rate,
            div_yield=q,
            symbols=tuple(r[3] for r in rows),
            is_call=is_call,
            strike=strike,
            expiries=expiries,
            expiry_idx=np.array([index[r[0]] for r in rows], dtype=np.int64),
            t_years=t_years,
            bid=np.array([r[4] for r in rows], dtype=np.float64),
            ask=np.array([r[5] for r in rows], dtype=np.float64),
            iv=vol,
            delta=np.asarray(g.delta, dtype=np.float64),
            gamma=np.asarray(g.gamma, dtype=np.float64),
            vega=np.asarray(g.vega, dtype=np.float64),
            theta=np.asarray(g.theta, dtype=np.float64),
            open_interest=np.array([r[7] for r in rows], dtype=np.int64),
            volume=np.array([r[8] for r in rows], dtype=np.int64),
        )
