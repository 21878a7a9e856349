"""Daily bars as Alpaca's historical REST API answers them (/v2/stocks/bars, /v1beta1/options/bars).

Built from a known daily close of one underlying and one flat implied vol per session: every
option contract is priced with European BSM at that vol (close rounded to the cent), so a test
can check the vols recovered from the bars.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from gnosisd.core.clock import NEW_YORK, datetime_to_ns
from gnosisd.core.errors import InvalidSymbolError
from gnosisd.core.occ import parse_occ
from gnosisd.feeds.listing import expiry_close_ns
from gnosisd.feeds.surface import NS_PER_YEAR
from gnosisd.quant import bsm

BAR_PATHS = ("/v2/stocks/bars", "/v1beta1/options/bars")


def _day_stamp(day: date) -> str:
    """Midnight New York of `day` in UTC, the timestamp Alpaca gives a daily bar."""
    midnight = datetime.combine(day, time(0), tzinfo=NEW_YORK).astimezone(UTC)
    return midnight.strftime("%Y-%m-%dT%H:%M:%SZ")


def _when(raw: str | None, default: date) -> date:
    if not raw:
        return default
    return datetime.fromisoformat(raw.replace("Z", "+00:00")).astimezone(NEW_YORK).date()


@dataclass
class BarHistory:
    """Daily closes of `underlying` and the vol of every contract per session."""

    underlying: str
    closes: dict[date, float]
    vols: dict[date, float]
    rate: float = 0.045
    div_yield: float = 0.0
    queries: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def answer(self, path: str, query: dict[str, str]) -> dict[str, Any]:
        """The JSON body for a bars request: {"bars": {symbol: [...]}, "next_page_token": None}."""
        self.queries.append((path, dict(query)))
        start = _when(query.get("start"), date.min)
        end = _when(query.get("end"), date.max)
        days = [d for d in sorted(self.closes) if start <= d <= end]
        bars: dict[str, list[dict[str, Any]]] = {}
        for symbol in filter(None, query.get("symbols", "").split(",")):
            rows = (
                self._stock_bars(symbol, days)
                if path == "/v2/stocks/bars"
                else self._option_bars(symbol, days)
            )
            if rows:
                bars[symbol] = rows
        return {"bars": bars, "next_page_token": None}

    def _stock_bars(self, symbol: str, days: list[date]) -> list[dict[str, Any]]:
        if symbol != self.underlying:
            return []
        return [_bar(d, self.closes[d]) for d in days]

    def _option_bars(self, symbol: str, days: list[date]) -> list[dict[str, Any]]:
        try:
            c = parse_occ(symbol)
        except InvalidSymbolError:
            return []
        if c.underlying != self.underlying:
            return []
        out = []
        for d in days:
            if d >= c.expiry or d not in self.vols:
                continue
            close_ns = datetime_to_ns(datetime.combine(d, time(16, 0), tzinfo=NEW_YORK))
            t = (expiry_close_ns(c.expiry) - close_ns) / NS_PER_YEAR
            price = float(
                bsm.price(
                    c.option_type.value,
                    self.closes[d],
                    float(c.strike),
                    t,
                    self.rate,
                    self.div_yield,
                    self.vols[d],
                )
            )
            if round(price, 2) >= 0.01:
                out.append(_bar(d, round(price, 2)))
        return out


def _bar(day: date, close: float) -> dict[str, Any]:
    return {
        "t": _day_stamp(day),
        "o": close,
        "h": close,
        "l": close,
        "c": close,
        "v": 100,
        "n": 10,
        "vw": close,
    }
