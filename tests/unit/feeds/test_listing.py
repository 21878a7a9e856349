"""Listed expiries and strikes of the simulated chain."""

from __future__ import annotations

from datetime import date, datetime

import numpy as np

from gnosisd.core.calendar import TradingCalendar
from gnosisd.core.clock import NEW_YORK, datetime_to_ns
from gnosisd.core.occ import parse_occ
from gnosisd.feeds.listing import (
    build_grid,
    expiry_close_ns,
    listed_expiries,
    strike_grid_cents,
    third_friday,
)

CAL = TradingCalendar()


def test_third_friday_of_known_months() -> None:
    assert third_friday(2025, 3) == date(2025, 3, 21)
    assert third_friday(2025, 8) == date(2025, 8, 15)
    assert third_friday(2024, 11) == date(2024, 11, 15)


def test_expiries_have_dailies_weeklies_and_monthlies_on_sessions() -> None:
    day = date(2025, 3, 3)  # a Monday
    exps = listed_expiries(day, CAL)
    assert exps == sorted(set(exps))
    assert all(CAL.is_session(e) and e >= day for e in exps)
    assert exps[:5] == [date(2025, 3, d) for d in (3, 4, 5, 6, 7)]  # dailies incl. 0DTE
    assert date(2025, 4, 25) in exps  # a weekly ~8 weeks out
    assert date(2025, 5, 2) not in exps  # a plain Friday beyond the weekly horizon
    assert {date(2025, 6, 20), date(2025, 7, 18), date(2025, 8, 15), date(2025, 9, 19)} <= set(exps)
    assert exps[-1] <= date(2025, 9, 30)


def test_expiry_on_a_holiday_moves_to_the_previous_session() -> None:
    exps = listed_expiries(date(2025, 4, 14), CAL)  # Good Friday 2025-04-18 is closed
    assert date(2025, 4, 18) not in exps
    assert date(2025, 4, 17) in exps


def test_expiry_close_is_four_pm_new_york() -> None:
    expected = datetime_to_ns(datetime(2025, 7, 3, 16, 0, tzinfo=NEW_YORK))
    assert expiry_close_ns(date(2025, 7, 3)) == expected


def test_strikes_are_dollar_wide_near_the_money_and_five_wide_further_out() -> None:
    k = strike_grid_cents(580.0, 30 / 365) / 100
    near = k[np.abs(k - 580.0) <= 580.0 * 0.05]
    far = k[np.abs(k - 580.0) > 580.0 * 0.08]
    assert np.all(np.diff(near) == 1.0)
    assert np.all(far % 5 == 0)
    assert k.min() < 580.0 * 0.85 and k.max() > 580.0 * 1.15


def test_grid_has_parseable_occ_symbols_and_a_moderate_contract_count() -> None:
    grid = build_grid("SPY", date(2025, 3, 3), 580.0, CAL, np.random.default_rng(0))
    assert 1500 <= len(grid.symbols) <= 3000
    assert len(set(grid.symbols)) == len(grid.symbols)
    for i in range(0, len(grid.symbols), 97):
        c = parse_occ(grid.symbols[i])
        assert c.underlying == "SPY"
        assert float(c.strike) == grid.strike[i]
        assert c.expiry == grid.expiries[int(grid.expiry_idx[i])]
        assert (c.option_type.value == "call") == bool(grid.is_call[i])
    assert np.all(grid.open_interest >= 0) and np.all(grid.daily_volume >= 0)


def test_open_interest_concentrates_on_round_strikes_near_the_money() -> None:
    grid = build_grid("SPY", date(2025, 3, 3), 580.0, CAL, np.random.default_rng(0))
    near = np.abs(grid.strike - 580.0) <= 20.0
    round10 = near & (grid.strike % 10 == 0)
    odd = near & (grid.strike % 5 != 0)
    assert grid.open_interest[round10].mean() > 1.5 * grid.open_interest[odd].mean()
    monthly = grid.expiry_idx == grid.expiries.index(date(2025, 3, 21))
    atm = monthly & (np.abs(grid.strike - 580.0) <= 10.0)
    far = monthly & (np.abs(grid.strike - 580.0) >= 70.0)
    assert grid.open_interest[atm].mean() > 3 * grid.open_interest[far].mean()
