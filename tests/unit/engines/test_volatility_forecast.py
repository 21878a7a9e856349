"""Volatility engine: proxy backfill with source tags, GARCH(1,1), VRP, estimators, regime flags."""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import pytest

from gnosisd.bus.events import ChainSnapshot
from gnosisd.core.config import VolatilityConfig
from gnosisd.engines.garch import (
    PROXY_IV_SOURCE,
    PROXY_RETURN_SOURCE,
    bundled_iv_proxy,
    garch_forecast,
)
from gnosisd.engines.volatility import OBSERVED, VolatilityEngine
from tests.unit.engines.chain_factory import MINUTE_NS, T0_NS, Row, bar, make_chain

TODAY = date(2025, 3, 10)
DAY_NS = 86_400 * 1_000_000_000
NONE = VolatilityConfig(iv_backfill="none")


def flat_chain(iv: float, ts_ns: int = T0_NS) -> ChainSnapshot:
    rows = [Row(call=c, strike=100, days=d, iv=iv) for d in (20, 40) for c in (True, False)]
    return make_chain(rows, ts_ns=ts_ns)


def past(values: list[float]) -> list[tuple[date, float]]:
    n = len(values)
    return [(TODAY - timedelta(days=n - i), v) for i, v in enumerate(values)]


def test_backfill_tops_up_the_history_with_tagged_proxy_points_before_real_ones() -> None:
    hist = past([0.12, 0.18, 0.14])
    engine = VolatilityEngine("SPY", VolatilityConfig(lookback_days=100), history=hist)
    records = engine.history_records()
    assert len(records) == 100
    proxy = [r for r in records if r[2] == PROXY_IV_SOURCE]
    assert len(proxy) == 97
    assert max(d for d, _, _ in proxy) < min(d for d, _ in hist)
    assert records[-3:] == [(d, v, OBSERVED) for d, v in hist]
    # the proxy is the bundled VIX scaled to an ATM IV: about 0.9 × VIX / 100 for SPY
    assert all(0.05 < v < 0.6 for _, v, _ in proxy)
    assert [(d, v) for d, v, _ in proxy] == bundled_iv_proxy("SPY")[-97:]


def test_iv_rank_means_something_on_day_one() -> None:
    engine = VolatilityEngine("SPY", VolatilityConfig())
    low = engine.update(flat_chain(0.09))
    assert low is not None
    assert "short_history" not in low.flags
    assert "proxy_history" in low.flags
    assert low.metrics["iv_rank"] < 0.1
    high = VolatilityEngine("SPY", VolatilityConfig()).update(flat_chain(0.40))
    assert high is not None
    assert high.metrics["iv_rank"] == 1.0
    assert "high_iv" in high.flags


def test_proxy_is_scaled_by_the_underlyings_vol_ratio() -> None:
    spy = dict(bundled_iv_proxy("SPY"))
    iwm = dict(bundled_iv_proxy("IWM"))
    d = next(iter(spy))
    assert iwm[d] / spy[d] == pytest.approx(1.4)


def test_history_round_trips_in_both_the_old_and_the_tagged_form() -> None:
    first = VolatilityEngine("SPY", VolatilityConfig(lookback_days=20), history=past([0.2, 0.3]))
    first.update(flat_chain(0.25))
    tagged = first.history_records()
    again = VolatilityEngine("SPY", VolatilityConfig(lookback_days=20), history=tagged)
    assert again.history_records() == tagged
    old_form = VolatilityEngine("SPY", NONE, history=first.history())
    assert old_form.history() == first.history()
    assert {s for _, _, s in old_form.history_records()} == {OBSERVED}


def test_garch_forecast_is_deterministic_and_near_the_sample_vol() -> None:
    rng = np.random.default_rng(11)
    r = rng.normal(0.0, 0.01, 800)  # 1% a day: about 16% a year
    a = garch_forecast(r, horizon_days=21)
    b = garch_forecast(r.copy(), horizon_days=21)
    assert a is not None and b is not None
    assert a == b
    assert a.vol == pytest.approx(0.01 * math.sqrt(252), rel=0.15)
    assert 0 <= a.persistence < 1


def test_garch_fits_on_proxy_returns_at_start_and_vrp_is_iv_minus_forecast() -> None:
    engine = VolatilityEngine("SPY", VolatilityConfig(garch_window=300))
    returns = engine.returns_history()
    assert len(returns) == 300
    assert {s for _, _, s in returns} == {PROXY_RETURN_SOURCE}
    snap = engine.update(flat_chain(0.2))
    assert snap is not None
    garch = snap.metrics["garch_vol"]
    assert 0.05 < garch < 1.0
    assert snap.metrics["vrp"] == pytest.approx(0.2 - garch)


def test_garch_refits_at_most_once_per_session_and_learns_real_daily_returns() -> None:
    engine = VolatilityEngine("SPY", VolatilityConfig(garch_window=200))
    closes = [100.0, 101.0, 99.5]
    for d, close in enumerate(closes):
        fits = set()
        for i in range(5):
            engine.update(bar(close, i, start_ns=T0_NS + d * DAY_NS))
            fits.add(id(engine._garch))
        assert engine._fit_day == TODAY + timedelta(days=d)
        assert len(fits) == 1  # one fit for the whole session
    observed = [(d, r) for d, r, s in engine.returns_history() if s == OBSERVED]
    # day 2's close is only final when day 3 starts; day 3's waits for day 4
    assert observed == [(TODAY + timedelta(days=1), pytest.approx(math.log(101.0 / 100.0)))]
    assert len(engine.returns_history()) == 200


def test_no_garch_without_enough_returns() -> None:
    snap = VolatilityEngine("SPY", NONE).update(flat_chain(0.2))
    assert snap is not None
    assert math.isnan(snap.metrics["garch_vol"])
    assert math.isnan(snap.metrics["vrp"])


def test_bar_estimators_are_reported() -> None:
    engine = VolatilityEngine("SPY", NONE)
    snap = None
    for i, c in enumerate([100.0, 100.3, 99.8, 100.1, 100.6]):
        snap = engine.update(bar(c, i))
    assert snap is not None
    # flat bars (O = H = L = C): range estimators see no range, close-to-close sees the moves
    assert snap.metrics["realized_vol"] > 0
    assert snap.metrics["rv_parkinson"] == 0.0
    assert snap.metrics["rv_yang_zhang"] > 0


@pytest.mark.parametrize(
    ("yesterday", "today", "flag"),
    [(0.20, 0.16, "vol_crush"), (0.20, 0.23, "vol_expansion"), (0.20, 0.19, None)],
)
def test_regime_flags_compare_with_the_last_observed_session(
    yesterday: float, today: float, flag: str | None
) -> None:
    hist = past([0.15, 0.25, 0.18, 0.22, yesterday])
    snap = VolatilityEngine("SPY", NONE, history=hist).update(flat_chain(today))
    assert snap is not None
    assert snap.metrics["iv_change"] == pytest.approx(today / yesterday - 1)
    regime = {"vol_crush", "vol_expansion", "vol_compression"} & set(snap.flags)
    assert regime == ({flag} if flag else set())


def test_proxy_points_are_not_the_previous_session_of_an_expansion() -> None:
    snap = VolatilityEngine("SPY", VolatilityConfig()).update(flat_chain(0.5))
    assert snap is not None
    assert math.isnan(snap.metrics["iv_change"])
    assert "vol_expansion" not in snap.flags


def test_compression_when_rank_is_low_and_realised_is_below_implied() -> None:
    hist = past([0.30, 0.25, 0.35, 0.28, 0.13])
    engine = VolatilityEngine("SPY", VolatilityConfig(iv_backfill="none", compression_rank=0.25))
    engine = VolatilityEngine("SPY", engine.cfg, history=hist)
    t = T0_NS - 30 * MINUTE_NS
    for i, c in enumerate([100.0, 100.01, 100.0, 100.02, 100.01]):
        engine.update(bar(c, i, start_ns=t))
    snap = engine.update(flat_chain(0.13))
    assert snap is not None
    assert snap.metrics["iv_rank"] <= 0.25
    assert snap.metrics["rv_yang_zhang"] < 0.13
    assert "vol_compression" in snap.flags


def test_an_old_or_untagged_point_is_not_the_last_session() -> None:
    # a reloaded 2-element history reads proxies as observed: a year-old point must not count
    hist = [(TODAY - timedelta(days=400), 0.30), (TODAY - timedelta(days=399), 0.31)]
    snap = VolatilityEngine("SPY", NONE, history=hist).update(flat_chain(0.15))
    assert snap is not None
    assert math.isnan(snap.metrics["iv_change"])
    assert not {"vol_crush", "vol_expansion"} & set(snap.flags)
