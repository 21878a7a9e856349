"""IV history backfill from historical daily bars: the real alpaca-py REST clients against the fake
Alpaca, points solved from option closes landing in the volatility engine tagged "broker"."""

from __future__ import annotations

import asyncio
import math
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from alpaca.data.historical.option import OptionHistoricalDataClient
from alpaca.data.historical.stock import StockHistoricalDataClient

from gnosisd.core.calendar import TradingCalendar
from gnosisd.core.clock import NEW_YORK, LiveClock
from gnosisd.core.config import VolatilityConfig
from gnosisd.engines.garch import PROXY_IV_SOURCE
from gnosisd.engines.volatility import BROKER, OBSERVED, VolatilityEngine
from gnosisd.feeds.alpaca import AlpacaFeedConfig, IVHistoryQuery, IVHistorySource, source_for
from gnosisd.feeds.alpaca.iv_history import (
    backfill_iv_history,
    bracketing_expiries,
    interpolate_30d,
    nearest_strike,
)
from gnosisd.runtime.daemon import Daemon, RunOptions
from gnosisd.testing.fake_alpaca import FakeAlpaca, HttpFault
from gnosisd.testing.fake_alpaca.bar_history import BarHistory
from tests.e2e.conftest import make_settings
from tests.live_support import fake_connection

TODAY = date(2026, 11, 20)
LOOKBACK = 40


def sessions(days: int, today: date = TODAY) -> list[date]:
    cal = TradingCalendar()
    out = [today - timedelta(days=i) for i in range(1, days + 1)]
    return sorted(d for d in out if cal.is_session(d))


def market(days: int = 70, today: date = TODAY) -> tuple[dict[date, float], dict[date, float]]:
    """A drifting SPY-like close and a vol that differs every session (so a stale point shows)."""
    closes, vols = {}, {}
    for i, d in enumerate(sessions(days, today)):
        closes[d] = round(560.0 + 0.8 * i + 6.0 * math.sin(i / 3.0), 2)
        vols[d] = 0.14 + 0.04 * math.sin(i / 4.0) + 0.001 * i
    return closes, vols


def feed_config(fake: FakeAlpaca) -> AlpacaFeedConfig:
    return AlpacaFeedConfig(
        symbols=("SPY",),
        api_key=fake.key,
        secret_key=fake.secret,
        trading_url=fake.rest_url,
        data_url=fake.rest_url,
        data_stream_url=fake.stream_url,
        rest_timeout_s=5.0,
        rest_retries=0,
        rest_retry_wait_s=0.0,
    )


def engine(history: list[tuple[date, float, str]] | None = None) -> VolatilityEngine:
    cfg = VolatilityConfig(iv_backfill="broker", lookback_days=LOOKBACK)
    return VolatilityEngine("SPY", cfg, history)


async def test_broker_points_solved_from_option_bars_land_in_the_engine_history(
    fake: FakeAlpaca,
) -> None:
    closes, vols = market()
    fake.bar_history = BarHistory("SPY", closes, vols)
    vol = engine()
    assert {s for _, _, s in vol.history_records()} == {PROXY_IV_SOURCE}  # the bundled top-up
    source = source_for(feed_config(fake))

    merged = await backfill_iv_history(lambda: source, {"SPY": vol}, TODAY)

    records = vol.history_records()
    broker = [(d, v) for d, v, s in records if s == BROKER]
    assert merged == {"SPY": len([d for d in closes if d >= TODAY - timedelta(days=65)])}
    assert len(records) == LOOKBACK and len(broker) == LOOKBACK  # the newest sessions, all broker
    assert [d for d, _ in broker] == sorted(closes)[-LOOKBACK:]
    # The fake prices every contract at that session's vol (closes rounded to the cent).
    assert max(abs(v - vols[d]) for d, v in broker) < 2e-3
    m = vol.metrics()
    assert m["iv_history_proxy_days"] == 0
    assert "proxy_history" not in vol.flags(m)
    assert 1 < source.requests <= IVHistoryQuery().max_requests
    paths = [p for p, _ in fake.bar_history.queries]
    assert paths[0] == "/v2/stocks/bars" and set(paths[1:]) == {"/v1beta1/options/bars"}
    # A full history asks for nothing more.
    assert vol.broker_backfill_window(TODAY) is None


async def test_sessions_without_option_bars_fall_back_to_the_proxy_and_observed_points_stay(
    fake: FakeAlpaca,
) -> None:
    closes, vols = market()
    recent = sorted(closes)[-10:]
    fake.bar_history = BarHistory("SPY", closes, {d: vols[d] for d in recent})
    observed_day = recent[-3]
    vol = engine([(observed_day, 0.55, OBSERVED)])

    await backfill_iv_history(lambda: source_for(feed_config(fake)), {"SPY": vol}, TODAY)

    records = vol.history_records()
    by_day = {d: (v, s) for d, v, s in records}
    assert by_day[observed_day] == (0.55, OBSERVED)  # never replaced by a broker point
    broker_days = sorted(d for d, (_, s) in by_day.items() if s == BROKER)
    assert broker_days == [d for d in recent if d != observed_day]
    proxy_days = [d for d, (_, s) in by_day.items() if s == PROXY_IV_SOURCE]
    assert len(records) == LOOKBACK and len(proxy_days) == LOOKBACK - 10
    assert max(proxy_days) < min(broker_days)  # the proxy only tops up before the oldest point


async def test_a_budget_of_two_requests_fills_the_newest_sessions_only(fake: FakeAlpaca) -> None:
    closes, vols = market()
    fake.bar_history = BarHistory("SPY", closes, vols)
    source = IVHistorySource(
        OptionHistoricalDataClient(
            fake.key, fake.secret, raw_data=True, url_override=fake.rest_url
        ),
        StockHistoricalDataClient(fake.key, fake.secret, raw_data=True, url_override=fake.rest_url),
        IVHistoryQuery(max_requests=2, symbols_per_request=8),
    )
    points = await asyncio.to_thread(source.fetch, "SPY", TODAY - timedelta(days=65), TODAY)
    assert source.requests == 2 and len(fake.bar_history.queries) == 2
    assert 0 < len(points) < 20
    assert min(d for d, _ in points) > sorted(closes)[-20]  # newest first within the budget


async def test_a_broker_refusing_requests_leaves_the_proxy_history_without_raising(
    fake: FakeAlpaca,
) -> None:
    fake.bar_history = BarHistory("SPY", *market())
    fake.reject_rest_auth = True
    vol = engine()
    before = vol.history_records()

    merged = await backfill_iv_history(lambda: source_for(feed_config(fake)), {"SPY": vol}, TODAY)

    assert merged == {}
    assert vol.history_records() == before


async def test_a_failed_option_bars_request_stops_asking_and_keeps_the_proxy(
    fake: FakeAlpaca,
) -> None:
    fake.bar_history = BarHistory("SPY", *market())
    fake.faults.append(HttpFault("GET", "/v1beta1/options/bars", status=500))
    vol = engine()
    before = vol.history_records()
    source = source_for(feed_config(fake))

    merged = await backfill_iv_history(lambda: source, {"SPY": vol}, TODAY)

    assert merged == {"SPY": 0}
    assert source.requests == 2  # the stock bars, then one option-bars call that failed
    assert vol.history_records() == before


async def test_no_request_is_made_unless_iv_backfill_is_broker(fake: FakeAlpaca) -> None:
    fake.bar_history = BarHistory("SPY", *market())
    vol = VolatilityEngine("SPY", VolatilityConfig(iv_backfill="bundled", lookback_days=LOOKBACK))

    def never() -> IVHistorySource:
        raise AssertionError("no source should be built")

    assert await backfill_iv_history(never, {"SPY": vol}, TODAY) == {}
    assert fake.bar_history.queries == []


async def test_the_live_daemon_merges_broker_points_into_its_engine_at_start(
    tmp_path: Path, fake: FakeAlpaca
) -> None:
    now = datetime.now(NEW_YORK)
    closes, vols = market(today=now.date())
    fake.bar_history = BarHistory("SPY", closes, vols)
    settings = make_settings(tmp_path, volatility={"lookback_days": LOOKBACK})
    connection = fake_connection(fake, broker=False)
    options = RunOptions(symbols=["SPY"], sessions=[], handle_signals=False)
    daemon = Daemon(settings, options, TradingCalendar(), LiveClock(), alpaca=connection)
    vol = daemon.analytics["SPY"].volatility
    run = asyncio.create_task(daemon.run())
    try:
        async with asyncio.timeout(10):
            while not any(s == BROKER for _, _, s in vol.history_records()):  # noqa: ASYNC110
                await asyncio.sleep(0.02)
    finally:
        daemon.request_stop("test")
        await asyncio.wait_for(run, 20)
    broker = [(d, v) for d, v, s in vol.history_records() if s == BROKER]
    assert len(broker) == LOOKBACK
    assert max(abs(v - vols[d]) for d, v in broker) < 2e-3


@pytest.mark.parametrize(
    ("price", "strike"), [(12.3, "12.5"), (1.0, "2.5"), (123.4, "125"), (597.2, "600")]
)
def test_the_strike_is_the_nearest_on_the_standard_listing_grid(price: float, strike: str) -> None:
    assert str(nearest_strike(price)) == strike


def test_expiries_bracket_thirty_days_and_move_off_exchange_holidays() -> None:
    cal = TradingCalendar()
    # Juneteenth 2026 is the third Friday of June: that monthly expires on Thursday the 18th.
    assert bracketing_expiries(date(2026, 5, 20), cal) == (date(2026, 6, 18), date(2026, 7, 17))
    # Fewer than 7 days to the May expiry: June and July, the 30-day point outside them.
    assert bracketing_expiries(date(2026, 5, 12), cal) == (date(2026, 6, 18), date(2026, 7, 17))


def test_thirty_day_vol_is_interpolated_in_total_variance() -> None:
    t1, t2 = 20 / 365, 48 / 365
    v = interpolate_30d(t1, 0.20, t2, 0.30)
    t = 30 / 365
    expected = math.sqrt((0.04 * t1 + (0.09 * t2 - 0.04 * t1) * (t - t1) / (t2 - t1)) / t)
    assert v == pytest.approx(expected, rel=1e-12)
    assert interpolate_30d(t1, math.nan, t2, 0.3) == 0.3
    assert interpolate_30d(t1, 0.2, t2, 0.2) == pytest.approx(0.2, rel=1e-12)
