"""Volatility engine: realised vol, interpolated ATM IV, IV rank/percentile, persistence."""

from __future__ import annotations

import itertools
import math
from datetime import date, timedelta

import pytest

from gnosisd.bus.events import ChainSnapshot
from gnosisd.core.config import VolatilityConfig
from gnosisd.engines.volatility import VolatilityEngine
from tests.unit.engines.chain_factory import MINUTE_NS, T0_NS, Row, bar, make_chain

TODAY = date(2025, 3, 10)
DAY_NS = 86_400 * 1_000_000_000


def flat_chain(iv: float, spot: float = 100.0, ts_ns: int = T0_NS) -> ChainSnapshot:
    rows = [Row(call=c, strike=100, days=d, iv=iv) for d in (20, 40) for c in (True, False)]
    return make_chain(rows, spot=spot, ts_ns=ts_ns)


def past(n: int, values: list[float]) -> list[tuple[date, float]]:
    """`values` on the n calendar days before TODAY, oldest first (weekends do not matter here)."""
    return [(TODAY - timedelta(days=n - i), v) for i, v in enumerate(values)]


def test_realized_vol_is_annualised_sd_of_one_minute_log_returns() -> None:
    closes = [100.0, 100.2, 99.9, 100.4, 100.1]
    engine = VolatilityEngine("SPY", VolatilityConfig(iv_backfill="none", realized_window=30))
    snap = None
    for i, c in enumerate(closes):
        snap = engine.update(bar(c, i))
    r = [math.log(b / a) for a, b in itertools.pairwise(closes)]
    m = sum(r) / len(r)
    sd = math.sqrt(sum((x - m) ** 2 for x in r) / (len(r) - 1))
    assert snap is not None
    assert snap.metrics["realized_vol"] == pytest.approx(sd * math.sqrt(252 * 390))
    assert snap.metrics["spot"] == 100.1


def test_realized_vol_leaves_out_the_overnight_gap() -> None:
    engine = VolatilityEngine("SPY", VolatilityConfig(iv_backfill="none"))
    engine.update(bar(90.0, 0, start_ns=T0_NS - DAY_NS))  # yesterday
    closes = [100.0, 100.2, 99.9]
    snap = None
    for i, c in enumerate(closes):
        snap = engine.update(bar(c, i))
    r = [math.log(100.2 / 100.0), math.log(99.9 / 100.2)]
    m = sum(r) / 2
    sd = math.sqrt(sum((x - m) ** 2 for x in r))
    assert snap is not None
    assert snap.metrics["realized_vol"] == pytest.approx(sd * math.sqrt(252 * 390))


def test_atm_iv_interpolates_total_variance_between_bracketing_expiries() -> None:
    rows = [
        Row(call=True, strike=100, days=20, iv=0.20),
        Row(call=False, strike=100, days=20, iv=0.22),
        Row(call=True, strike=105, days=20, iv=0.50),  # not nearest spot 101
        Row(call=True, strike=100, days=40, iv=0.25),
        Row(call=False, strike=100, days=40, iv=0.25),
        Row(call=True, strike=100, days=90, iv=0.90),  # beyond the bracket
    ]
    snap = VolatilityEngine("SPY", VolatilityConfig(iv_backfill="none")).update(
        make_chain(rows, spot=101.0)
    )
    assert snap is not None
    t1, t2, t = 20 / 365, 40 / 365, 30 / 365
    w = 0.21**2 * t1 + (0.25**2 * t2 - 0.21**2 * t1) * (t - t1) / (t2 - t1)
    atm = math.sqrt(w / t)
    assert snap.metrics["atm_iv"] == pytest.approx(atm)
    assert snap.metrics["expected_move"] == pytest.approx(101.0 * atm * math.sqrt(30 / 365))


def test_term_slope_is_60_day_minus_7_day_atm_iv() -> None:
    rows = [Row(call=c, strike=100, days=7, iv=0.30) for c in (True, False)] + [
        Row(call=c, strike=100, days=60, iv=0.20) for c in (True, False)
    ]
    snap = VolatilityEngine("SPY", VolatilityConfig(iv_backfill="none")).update(make_chain(rows))
    assert snap is not None
    assert snap.metrics["term_slope"] == pytest.approx(0.20 - 0.30)


def test_iv_rank_and_percentile_from_known_history() -> None:
    hist = past(10, [0.10 + 0.01 * i for i in range(10)])  # 0.10 .. 0.19
    engine = VolatilityEngine(
        "SPY", VolatilityConfig(iv_backfill="none", lookback_days=252), history=hist
    )
    snap = engine.update(flat_chain(0.15))
    assert snap is not None
    assert snap.metrics["atm_iv"] == pytest.approx(0.15)
    assert snap.metrics["iv_rank"] == pytest.approx((0.15 - 0.10) / (0.19 - 0.10))
    assert snap.metrics["iv_percentile"] == pytest.approx(5 / 11)  # 0.10..0.14 below, 11 days
    assert "high_iv" not in snap.flags


def test_lookback_keeps_only_the_last_days_including_today() -> None:
    hist = past(10, [0.40, 0.01, 0.10, 0.11, 0.12, 0.13, 0.14, 0.15, 0.16, 0.17])
    engine = VolatilityEngine(
        "SPY", VolatilityConfig(iv_backfill="none", lookback_days=5), history=hist
    )
    snap = engine.update(flat_chain(0.15))
    assert snap is not None
    # window: 0.14, 0.15, 0.16, 0.17 and today's 0.15
    assert snap.metrics["iv_rank"] == pytest.approx((0.15 - 0.14) / (0.17 - 0.14))
    assert snap.metrics["iv_percentile"] == pytest.approx(1 / 5)
    assert len(engine.history()) == 5


def test_high_iv_flag_at_threshold() -> None:
    hist = past(9, [0.10 + 0.01 * i for i in range(9)])
    cfg = VolatilityConfig(iv_backfill="none", iv_rank_threshold=0.7)
    high = VolatilityEngine("SPY", cfg, history=hist).update(flat_chain(0.17))
    low = VolatilityEngine("SPY", cfg, history=hist).update(flat_chain(0.13))
    assert high is not None
    assert high.metrics["iv_rank"] >= 0.7
    assert high.flags == ("high_iv",)
    assert low is not None
    assert low.metrics["iv_rank"] < 0.7
    assert "high_iv" not in low.flags


def test_short_history_is_flagged_and_ranked_on_what_exists() -> None:
    hist = past(2, [0.10, 0.20])
    snap = VolatilityEngine("SPY", VolatilityConfig(iv_backfill="none"), history=hist).update(
        flat_chain(0.25)
    )
    assert snap is not None
    assert snap.metrics["iv_rank"] == pytest.approx(1.0)
    assert snap.metrics["iv_percentile"] == pytest.approx(2 / 3)
    assert "short_history" in snap.flags
    assert "high_iv" not in snap.flags  # high_iv is held back on a short history


def test_single_distinct_value_gives_neutral_rank() -> None:
    snap = VolatilityEngine("SPY", VolatilityConfig(iv_backfill="none")).update(flat_chain(0.2))
    assert snap is not None
    assert snap.metrics["iv_rank"] == 0.5
    assert snap.metrics["iv_percentile"] == 0.5
    assert "short_history" in snap.flags


def test_history_keeps_the_last_atm_iv_of_each_new_york_day() -> None:
    engine = VolatilityEngine("SPY", VolatilityConfig(iv_backfill="none"))
    engine.update(flat_chain(0.20, ts_ns=T0_NS))
    engine.update(flat_chain(0.25, ts_ns=T0_NS + 60 * MINUTE_NS))
    # 2025-03-11 01:00 UTC is still 2025-03-10 in New York (21:00 EDT)
    engine.update(flat_chain(0.22, ts_ns=T0_NS + 630 * MINUTE_NS))
    engine.update(flat_chain(0.30, ts_ns=T0_NS + DAY_NS))
    hist = engine.history()
    assert [d for d, _ in hist] == [TODAY, TODAY + timedelta(days=1)]
    assert [v for _, v in hist] == pytest.approx([0.22, 0.30])


def test_history_round_trips_across_a_restart() -> None:
    hist = past(6, [0.12, 0.18, 0.14, 0.16, 0.11, 0.19])
    first = VolatilityEngine("SPY", VolatilityConfig(iv_backfill="none"), history=hist)
    before = first.update(flat_chain(0.15))
    saved = first.history()
    assert saved == [*hist, (TODAY, pytest.approx(0.15))]
    second = VolatilityEngine("SPY", VolatilityConfig(iv_backfill="none"), history=saved)
    after = second.update(flat_chain(0.15, ts_ns=T0_NS + 5 * MINUTE_NS))
    assert before is not None
    assert after is not None
    assert after.metrics["iv_rank"] == pytest.approx(before.metrics["iv_rank"])
    assert after.metrics["iv_percentile"] == pytest.approx(before.metrics["iv_percentile"])
    assert second.history() == saved


def test_unusable_history_values_are_dropped() -> None:
    hist = [(TODAY - timedelta(days=2), math.nan), (TODAY - timedelta(days=1), 0.2)]
    assert (
        VolatilityEngine("SPY", VolatilityConfig(iv_backfill="none"), history=hist).history()
        == hist[1:]
    )
