"""The replay feed: bars from CSV/Parquet and arch's S&P 500, model chains anchored on an IV level."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gnosisd.bus.events import Bar, ChainSnapshot
from gnosisd.core.calendar import TradingCalendar
from gnosisd.core.clock import NEW_YORK, datetime_to_ns
from gnosisd.core.errors import ConfigError
from gnosisd.core.occ import parse_occ
from gnosisd.engines.volatility import atm_term_structure, iv_at
from gnosisd.feeds.replay import (
    SPY_PER_INDEX_POINT,
    VIX_TO_ATM,
    ReplayFeed,
    load_arch_sp500,
    load_bars,
    load_data,
)

CAL = TradingCalendar()


def daily_frame(
    days: list[date], start: float = 400.0, iv: list[float] | None = None
) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    closes = start * np.exp(np.cumsum(rng.normal(0, 0.01, len(days))))
    opens = np.concatenate([[start], closes[:-1]])
    frame = pd.DataFrame(
        {
            "date": [d.isoformat() for d in days],
            "open": opens,
            "high": np.maximum(opens, closes) * 1.004,
            "low": np.minimum(opens, closes) * 0.996,
            "close": closes,
            "volume": 1e6,
        }
    )
    if iv is not None:
        frame["iv"] = iv
    return frame


def sessions(start: date, n: int) -> list[date]:
    out = [CAL.session(start).day]
    while len(out) < n:
        out.append(CAL.next_session(out[-1]).day)
    return out


def minute_frame(day: date, minutes: int = 60, extra_rows: bool = False) -> pd.DataFrame:
    t0 = datetime(day.year, day.month, day.day, 9, 30)
    times = [t0 + timedelta(minutes=m) for m in range(minutes)]
    if extra_rows:  # pre-market and after-hours rows are not part of the regular session
        times = [t0 - timedelta(minutes=5), *times, t0.replace(hour=16, minute=5)]
    px = 500.0 + np.arange(len(times)) * 0.05
    return pd.DataFrame(
        {
            "timestamp": [t.isoformat() for t in times],
            "symbol": "SPY",
            "open": px,
            "high": px + 0.1,
            "low": px - 0.1,
            "close": px + 0.02,
            "volume": 1000.0,
        }
    )


def events(feed: ReplayFeed, day: date) -> list[tuple[int, object]]:
    return list(feed.session_events(CAL.session(day)))


def test_daily_bars_publish_the_bar_and_one_model_chain_a_minute_before_the_close(
    tmp_path: Path,
) -> None:
    days = sessions(date(2024, 3, 4), 5)
    daily_frame(days).to_csv(tmp_path / "SPY.csv", index=False)
    data = load_bars(tmp_path / "SPY.csv", CAL)
    assert data.daily and data.symbols == ["SPY"] and data.bars == 5
    feed = ReplayFeed(data, ["SPY"], seed=1, calendar=CAL)
    out = events(feed, days[2])
    close_ns = datetime_to_ns(CAL.session(days[2]).close)
    assert [type(e).__name__ for _, e in out] == ["Bar", "ChainSnapshot"]
    assert all(ts == close_ns - 60 * 10**9 for ts, _ in out)
    bar, chain = out[0][1], out[1][1]
    assert isinstance(bar, Bar) and isinstance(chain, ChainSnapshot)
    assert bar.ts_ns == datetime_to_ns(CAL.session(days[2]).open)
    assert chain.spot == bar.close == feed.settlement_price("SPY")
    for sym in chain.symbols[:50]:  # listed contracts with real OCC symbols
        assert parse_occ(sym).underlying == "SPY"
    assert all(e >= days[2] for e in chain.expiries)


def test_intraday_bars_come_when_complete_with_a_chain_every_refresh_on_the_last_close(
    tmp_path: Path,
) -> None:
    day = date(2024, 3, 5)
    minute_frame(day, extra_rows=True).to_csv(tmp_path / "bars.csv", index=False)
    data = load_bars(tmp_path / "bars.csv", CAL)
    assert not data.daily
    assert data.skipped == {"outside_regular_hours": 2}
    feed = ReplayFeed(data, ["SPY"], seed=1, calendar=CAL, chain_refresh_minutes=15)
    out = events(feed, day)
    bars = [e for _, e in out if isinstance(e, Bar)]
    chains = [(ts, e) for ts, e in out if isinstance(e, ChainSnapshot)]
    assert len(bars) == 60
    open_ns = datetime_to_ns(CAL.session(day).open)
    assert [ts for ts, _ in chains][:5] == [open_ns + k * 15 * 60 * 10**9 for k in range(5)]
    assert [ts for ts, _ in out] == sorted(ts for ts, _ in out)
    for ts, event in out:
        if isinstance(event, Bar):
            assert ts == event.ts_ns + 60 * 10**9  # published when the minute is complete
    assert chains[0][1].spot == bars[0].open  # at the open: the first bar's open
    assert chains[1][1].spot == bars[14].close  # 09:45: the 09:44 bar's close
    assert chains[4][1].spot == bars[-1].close  # after the data ends: the last close


def test_aware_and_naive_new_york_timestamps_mean_the_same_instant(tmp_path: Path) -> None:
    day = date(2024, 7, 8)
    naive = minute_frame(day, 5)
    aware = naive.copy()
    aware["timestamp"] = [
        datetime.fromisoformat(t).replace(tzinfo=NEW_YORK).isoformat() for t in naive["timestamp"]
    ]
    naive.to_csv(tmp_path / "a.csv", index=False)
    aware.to_parquet(tmp_path / "b.parquet")
    a = load_bars(tmp_path / "a.csv", CAL).series["SPY"]
    b = load_bars(tmp_path / "b.parquet", CAL).series["SPY"]
    assert np.array_equal(a.start_ns, b.start_ns)
    assert np.array_equal(a.close, b.close)
    assert a.start_ns[0] == datetime_to_ns(CAL.session(day).open)


def test_a_directory_of_files_names_symbols_by_file_and_keeps_the_asked_ones(
    tmp_path: Path,
) -> None:
    days = sessions(date(2024, 3, 4), 3)
    daily_frame(days, 400).to_csv(tmp_path / "SPY_daily.csv", index=False)
    daily_frame(days, 300).to_parquet(tmp_path / "QQQ.parquet")
    data = load_bars(tmp_path, CAL, ["QQQ"])
    assert data.symbols == ["QQQ"]
    with pytest.raises(ConfigError, match=r"no bars for IWM; the data has QQQ, SPY"):
        load_bars(tmp_path, CAL, ["IWM"])


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        (["date", "open", "high", "low"], "missing column.*close"),
        (["open", "high", "low", "close"], "missing column.*timestamp"),
    ],
)
def test_a_file_without_the_documented_columns_is_refused_naming_them(
    tmp_path: Path, columns: list[str], message: str
) -> None:
    frame = daily_frame(sessions(date(2024, 3, 4), 2))[columns]
    frame.to_csv(tmp_path / "SPY.csv", index=False)
    with pytest.raises(ConfigError, match=message):
        load_bars(tmp_path / "SPY.csv", CAL)


def test_weekend_rows_of_daily_data_are_skipped_and_counted(tmp_path: Path) -> None:
    days = [date(2024, 3, 8), date(2024, 3, 9), date(2024, 3, 11)]  # Fri, Sat, Mon
    daily_frame(days).to_csv(tmp_path / "SPY.csv", index=False)
    data = load_bars(tmp_path / "SPY.csv", CAL)
    assert data.skipped == {"not_a_session": 1}
    assert data.days() == [date(2024, 3, 8), date(2024, 3, 11)]


def _atm30(chain: ChainSnapshot) -> float:
    return iv_at(atm_term_structure(chain), 30.0)


def test_the_iv_column_anchors_the_model_chain_at_30_days(tmp_path: Path) -> None:
    days = sessions(date(2024, 3, 4), 4)
    daily_frame(days, iv=[0.15, 0.30, 0.22, 0.12]).to_csv(tmp_path / "SPY.csv", index=False)
    feed = ReplayFeed(load_bars(tmp_path / "SPY.csv", CAL), ["SPY"], seed=1, calendar=CAL)
    atm = []
    for d in days:
        chain = next(e for _, e in events(feed, d) if isinstance(e, ChainSnapshot))
        atm.append(_atm30(chain))
    # the surface puts ATM IV at the anchor at 30 days (up to the strike grid and interpolation)
    assert atm == pytest.approx([0.15, 0.30, 0.22, 0.12], abs=0.01)


def test_without_an_iv_column_the_anchor_is_trailing_realised_vol_of_earlier_sessions_only(
    tmp_path: Path,
) -> None:
    days = sessions(date(2024, 1, 2), 40)
    frame = daily_frame(days)
    frame.to_csv(tmp_path / "a.csv", index=False)
    changed = frame.copy()
    changed.loc[30:, ["open", "high", "low", "close"]] *= 1.5  # the future changes
    changed.to_csv(tmp_path / "b.csv", index=False)
    chains = []
    for name in ("a.csv", "b.csv"):
        data = load_bars(tmp_path / name, CAL, ["A"] if name == "a.csv" else ["B"])
        feed = ReplayFeed(data, data.symbols, seed=1, calendar=CAL)
        got = []
        for d in days[:30]:
            got.extend(e for _, e in events(feed, d) if isinstance(e, ChainSnapshot))
        chains.append(got)
    first, second = chains
    assert _atm30(first[0]) == pytest.approx(0.18, abs=0.01)  # no history yet: the default
    closes = frame["close"].to_numpy()
    rets = np.diff(np.log(closes[:25]))[-20:]
    expected = float(np.std(rets, ddof=1)) * math.sqrt(252) * 1.1
    assert _atm30(first[25]) == pytest.approx(expected, abs=0.01)
    # nothing after a session changes that session's chain
    for x, y in zip(first, second, strict=True):
        assert np.array_equal(x.bid, y.bid) and np.array_equal(x.ask, y.ask)


def test_same_data_and_seed_give_identical_chains_and_another_seed_other_open_interest(
    tmp_path: Path,
) -> None:
    days = sessions(date(2024, 3, 4), 2)
    daily_frame(days).to_csv(tmp_path / "SPY.csv", index=False)
    data = load_bars(tmp_path / "SPY.csv", CAL)

    def chain(seed: int) -> ChainSnapshot:
        feed = ReplayFeed(data, ["SPY"], seed=seed, calendar=CAL)
        return next(e for _, e in events(feed, days[0]) if isinstance(e, ChainSnapshot))

    a, b, c = chain(5), chain(5), chain(6)
    assert a.symbols == b.symbols and np.array_equal(a.bid, b.bid)
    assert np.array_equal(a.open_interest, b.open_interest)
    assert not np.array_equal(a.open_interest, c.open_interest)
    assert np.array_equal(a.bid, c.bid)  # prices do not depend on the seed


def test_arch_sp500_is_an_spy_proxy_with_chains_anchored_on_the_vix() -> None:
    import arch.data.sp500
    import arch.data.vix

    data = load_data("arch:sp500", CAL, ["SPY"])
    assert "arch:sp500" in data.source and "proxy" in data.source
    day = date(2016, 6, 24)  # the day after the Brexit vote
    index = arch.data.sp500.load().loc["2016-06-24"]
    vix = float(arch.data.vix.load().loc["2016-06-24", "vix"])
    feed = ReplayFeed(data, ["SPY"], seed=7, calendar=CAL)
    out = events(feed, day)
    bar = next(e for _, e in out if isinstance(e, Bar))
    chain = next(e for _, e in out if isinstance(e, ChainSnapshot))
    assert bar.close == pytest.approx(index["Close"] * SPY_PER_INDEX_POINT)
    assert bar.open == pytest.approx(index["Open"] * SPY_PER_INDEX_POINT)
    assert _atm30(chain) == pytest.approx(vix / 100 * VIX_TO_ATM, abs=0.01)
    assert load_arch_sp500(CAL) is data  # loaded once per process


def test_sessions_must_come_in_order_and_only_days_with_data_are_listed(tmp_path: Path) -> None:
    days = sessions(date(2024, 3, 4), 5)
    daily_frame([days[0], days[1], days[4]]).to_csv(tmp_path / "SPY.csv", index=False)
    feed = ReplayFeed(load_bars(tmp_path / "SPY.csv", CAL), ["SPY"], seed=1, calendar=CAL)
    assert [s.day for s in feed.sessions(days[0], days[4])] == [days[0], days[1], days[4]]
    events(feed, days[1])
    with pytest.raises(ValueError, match="not after"):
        events(feed, days[0])
