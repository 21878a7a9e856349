"""Volatility engine per-bar path: implied figures cached between chains, refreshed on new sessions."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from gnosisd.bus.events import ChainSnapshot
from gnosisd.core.clock import datetime_to_ns
from gnosisd.core.config import VolatilityConfig
from gnosisd.engines.garch import garch_forecast
from gnosisd.engines.volatility import VolatilityEngine, iv_rank_percentile, ny_day
from tests.unit.engines.chain_factory import MINUTE_NS, T0_NS, Row, bar, make_chain

NONE = VolatilityConfig(iv_backfill="none")
TODAY = date(2025, 3, 10)
DAY_NS = 86_400 * 1_000_000_000
IMPLIED = ("atm_iv", "iv_rank", "iv_percentile", "iv_change", "expected_move", "term_slope")


def chain_at(iv: float, ts_ns: int, spot: float = 100.0) -> ChainSnapshot:
    rows = [Row(call=c, strike=100, days=d, iv=iv) for d in (20, 40) for c in (True, False)]
    return make_chain(rows, spot=spot, ts_ns=ts_ns)


def history(values: list[float]) -> list[tuple[date, float]]:
    return [(TODAY - timedelta(days=len(values) - i), v) for i, v in enumerate(values)]


def test_bars_between_chains_carry_the_chain_implied_figures_and_fresh_realised_vol() -> None:
    hist = history([0.10, 0.14, 0.19, 0.12, 0.17, 0.11])
    engine = VolatilityEngine("SPY", NONE, history=hist)
    chain_snap = engine.update(chain_at(0.15, T0_NS))
    assert chain_snap is not None
    snaps = [engine.update(bar(100.0 + 0.1 * (i % 3), i + 1)) for i in range(6)]
    assert all(s is not None for s in snaps)
    for s in snaps:
        assert s is not None
        for key in IMPLIED:
            a, b = s.metrics[key], chain_snap.metrics[key]
            assert (math.isnan(a) and math.isnan(b)) or a == b, key
    rank, pct = iv_rank_percentile([v for _, v in hist] + [0.15], 0.15)
    last = snaps[-1]
    assert last is not None
    assert last.metrics["iv_rank"] == pytest.approx(rank)
    assert last.metrics["iv_percentile"] == pytest.approx(pct)
    assert last.metrics["realized_vol"] > 0
    assert last.metrics["spot"] == pytest.approx(100.2)


def test_a_later_chain_changes_the_rank_the_following_bars_report() -> None:
    engine = VolatilityEngine("SPY", NONE, history=history([0.10, 0.20, 0.30, 0.25, 0.15]))
    engine.update(chain_at(0.12, T0_NS))
    low = engine.update(bar(100.0, 1))
    engine.update(chain_at(0.28, T0_NS + 2 * MINUTE_NS))
    high = engine.update(bar(100.1, 3))
    assert low is not None and high is not None
    assert low.metrics["iv_rank"] < 0.2 < 0.8 < high.metrics["iv_rank"]
    assert high.metrics["atm_iv"] == pytest.approx(0.28)


def test_the_first_bar_of_a_new_session_refreshes_the_change_against_the_last_session() -> None:
    engine = VolatilityEngine("SPY", NONE)
    engine.update(chain_at(0.20, T0_NS))
    same_day = engine.update(bar(100.0, 1))
    next_day = engine.update(bar(100.0, 0, start_ns=T0_NS + DAY_NS))
    assert same_day is not None and next_day is not None
    assert math.isnan(same_day.metrics["iv_change"])  # no earlier session yet
    assert next_day.metrics["iv_change"] == pytest.approx(0.0)  # yesterday's 0.20 vs 0.20 held


@pytest.mark.parametrize(
    "midnight",
    [
        datetime(2025, 3, 10, 4, 0, tzinfo=UTC),  # EDT midnight, the day after the spring change
        datetime(2025, 11, 3, 5, 0, tzinfo=UTC),  # EST midnight, the day after the autumn change
    ],
)
def test_the_cached_bar_day_agrees_with_ny_day_around_midnight(midnight: datetime) -> None:
    engine = VolatilityEngine("SPY", NONE)
    m = datetime_to_ns(midnight)
    offsets = [-DAY_NS // 2, -2_000_000, -1_000, -1, 0, 1, 1_000, 2_000_000, DAY_NS // 2]
    for ts in sorted(m + o for o in offsets):
        assert engine._day_of_bar(ts) == ny_day(ts)


def test_a_return_window_fitted_before_reuses_the_identical_garch_fit() -> None:
    cfg = VolatilityConfig(garch_window=200)
    first, second = VolatilityEngine("SPY", cfg), VolatilityEngine("SPY", cfg)
    a = first.update(chain_at(0.2, T0_NS))
    b = second.update(chain_at(0.2, T0_NS))
    assert a is not None and b is not None
    returns = np.array([r for _, r, _ in first.returns_history()])
    fresh = garch_forecast(returns, round(30 * 252 / 365))
    assert fresh is not None
    assert second._garch is first._garch  # the second engine did not refit
    assert first._garch == fresh
    assert b.metrics["garch_vol"] == a.metrics["garch_vol"] == fresh.vol
