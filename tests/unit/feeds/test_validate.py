"""Boundary validation of market data."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

import numpy as np
import pytest

from gnosisd.bus.events import Bar, ChainSnapshot, NewsItem, Quote, Trade
from gnosisd.core.calendar import TradingCalendar
from gnosisd.feeds.sim import SimMarket
from gnosisd.feeds.validate import MarketDataValidator

NOW = 1_700_000_000_000_000_000
S = 1_000_000_000
NAN = float("nan")


def _validator() -> MarketDataValidator:
    return MarketDataValidator(known_symbols={"SPY", "QQQ"})


def _quote(**kw: Any) -> Quote:
    return replace(Quote("SPY", NOW, 500.0, 500.01, 100.0, 200.0), **kw)


def _chain(n: int = 40, **arrays: np.ndarray) -> ChainSnapshot:
    cols: dict[str, np.ndarray] = {
        "is_call": np.arange(n) % 2 == 0,
        "strike": np.linspace(450.0, 550.0, n),
        "expiry_idx": np.zeros(n, dtype=np.int64),
        "t_years": np.full(n, 0.1),
        "bid": np.full(n, 1.0),
        "ask": np.full(n, 1.1),
        "iv": np.full(n, 0.2),
        "delta": np.full(n, 0.5),
        "gamma": np.full(n, 0.01),
        "vega": np.full(n, 0.3),
        "theta": np.full(n, -0.1),
        "open_interest": np.full(n, 10, dtype=np.int64),
        "volume": np.full(n, 1, dtype=np.int64),
    }
    cols.update(arrays)
    return ChainSnapshot(
        underlying="SPY",
        ts_ns=NOW,
        spot=500.0,
        rate=0.045,
        div_yield=0.013,
        symbols=tuple(f"SPY250321C{i:08d}" for i in range(1, n + 1)),
        expiries=(date(2025, 3, 21),),
        **cols,  # type: ignore[arg-type]
    )


def test_accepts_valid_quotes_trades_bars_and_option_quotes() -> None:
    v = _validator()
    assert v.check(_quote(), NOW) is None
    assert v.check(_quote(symbol="SPY250321P00500000", bid=0.0, ask=0.05), NOW) is None
    assert v.check(Trade("QQQ", NOW, 480.0, 100.0), NOW) is None
    assert v.check(Bar("SPY", NOW, 500.0, 501.0, 499.5, 500.5, 1e5), NOW) is None
    assert v.check(_chain(), NOW) is None
    assert v.check(NewsItem(NOW, "headline", ("SPY",)), NOW) is None
    assert sum(v.counts.values()) == 0


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (_quote(bid=NAN), "nan"),
        (_quote(ask=float("inf")), "nan"),
        (Trade("SPY", NOW, NAN, 1.0), "nan"),
        (Bar("SPY", NOW, 500.0, NAN, 499.0, 500.0, 1.0), "nan"),
        (_quote(bid=0.0, ask=0.0), "non_positive_price"),
        (_quote(bid=-0.01), "non_positive_price"),
        (Trade("SPY", NOW, 0.0, 1.0), "non_positive_price"),
        (Bar("SPY", NOW, 500.0, 501.0, -1.0, 500.0, 1.0), "non_positive_price"),
        (_quote(bid=500.02, ask=500.01), "crossed_quote"),
        (_quote(ts_ns=NOW + 6 * S), "future_timestamp"),
        (Trade("SPY", NOW + 60 * S, 500.0, 1.0), "future_timestamp"),
        (NewsItem(NOW + 60 * S, "x", ()), "future_timestamp"),
        (_quote(symbol="TSLA"), "unknown_symbol"),
        (_quote(symbol="TSLA250321C00200000"), "unknown_symbol"),
        (Bar("IWM", NOW, 200.0, 201.0, 199.0, 200.0, 1.0), "unknown_symbol"),
        (Bar("SPY", NOW, 500.0, 499.0, 501.0, 500.0, 1.0), "bad_bar"),
        (Bar("SPY", NOW, 502.0, 501.0, 499.0, 500.0, 1.0), "bad_bar"),
        (Trade("SPY", NOW, 500.0, -5.0), "bad_size"),
    ],
)
def test_drops_malformed_event_with_its_reason(event: object, reason: str) -> None:
    v = _validator()
    assert v.check(event, NOW) == reason
    assert v.counts == {reason: 1}


def test_allows_small_clock_skew_into_the_future() -> None:
    assert _validator().check(_quote(ts_ns=NOW + 4 * S), NOW) is None


def test_drops_chain_with_many_crossed_or_non_finite_rows() -> None:
    v = _validator()
    ask = np.full(40, 1.1)
    ask[:5] = 0.5  # 5 of 40 rows crossed: above the 5% tolerance
    assert v.check(_chain(ask=ask), NOW) == "bad_chain"
    iv = np.full(40, 0.2)
    iv[:3] = np.nan
    assert v.check(_chain(iv=iv), NOW) == "bad_chain"
    assert v.counts["bad_chain"] == 2


def test_keeps_chain_with_few_bad_rows_and_counts_them() -> None:
    v = _validator()
    bid = np.full(40, 1.0)
    bid[0] = np.nan
    assert v.check(_chain(bid=bid), NOW) is None
    assert v.counts["bad_chain_rows"] == 1


def test_drops_chain_with_bad_spot_or_unknown_underlying() -> None:
    v = _validator()
    assert v.check(replace(_chain(), spot=0.0), NOW) == "non_positive_price"
    assert v.check(replace(_chain(), spot=NAN), NOW) == "nan"
    assert v.check(replace(_chain(), underlying="TSLA"), NOW) == "unknown_symbol"
    assert v.check(_chain(expiry_idx=np.full(40, 3, dtype=np.int64)), NOW) == "bad_chain"


def test_every_event_of_the_simulated_market_passes() -> None:
    cal = TradingCalendar()
    v = MarketDataValidator(known_symbols={"SPY"})
    for ts, event in SimMarket(["SPY"], seed=9).session_events(cal.session(date(2025, 3, 5))):
        assert v.check(event, ts) is None, event
    assert sum(v.counts.values()) == 0
