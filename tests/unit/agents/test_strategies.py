"""Strategy builders pick listed, liquid legs by expiry, delta and width."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from gnosisd.agents.strategies import (
    BUILDERS,
    LegPicker,
    choose_expiry,
    iron_condor,
    liquid_mask,
    long_call,
    straddle,
)
from gnosisd.core.config import LiquidityConfig, TradeAgentConfig
from gnosisd.core.enums import OptionType, StrategyType
from gnosisd.testing.chains import make_chain, symbol_for, with_quotes

TODAY = date(2025, 6, 2)  # the New York date of make_chain's default as-of
CFG = TradeAgentConfig()
LIQ = LiquidityConfig()


def test_choose_expiry_picks_listed_expiry_closest_to_target_dte() -> None:
    chain = make_chain(expiries=[TODAY + timedelta(days=d) for d in (4, 11, 25, 39, 60)])
    assert choose_expiry(chain, TODAY, target_dte=30, min_dte=7) == 2  # 25 days (39 is 9 away)
    assert choose_expiry(chain, TODAY, target_dte=36, min_dte=7) == 3
    assert choose_expiry(chain, TODAY, target_dte=1, min_dte=7) == 1  # 4 days is below min_dte


def test_choose_expiry_is_none_when_no_expiry_reaches_min_dte() -> None:
    chain = make_chain(expiries=[TODAY + timedelta(days=d) for d in (1, 4)])
    assert choose_expiry(chain, TODAY, target_dte=30, min_dte=7) is None


def test_liquid_mask_rejects_wide_spreads_zero_bids_and_low_open_interest() -> None:
    chain = make_chain()
    e = chain.expiries[3]
    wide = symbol_for(chain, e, OptionType.CALL, 500)
    no_bid = symbol_for(chain, e, OptionType.CALL, 505)
    low_oi = symbol_for(chain, e, OptionType.CALL, 510)
    fine = symbol_for(chain, e, OptionType.CALL, 495)
    chain = with_quotes(
        chain,
        {
            wide: {"bid": 8.0, "ask": 12.0},  # 40% of mid
            no_bid: {"bid": 0.0},
            low_oi: {"open_interest": LIQ.min_open_interest - 1},
        },
    )
    mask = liquid_mask(chain, LIQ)
    assert not mask[chain.row(wide)]
    assert not mask[chain.row(no_bid)]
    assert not mask[chain.row(low_oi)]
    assert mask[chain.row(fine)]


def test_long_call_takes_the_call_with_delta_closest_to_long_delta() -> None:
    chain = make_chain()
    s = long_call(LegPicker(chain, LIQ, 3), CFG)
    assert s is not None
    ((row, ratio),) = s.legs
    assert ratio == 1
    assert chain.is_call[row]
    assert chain.expiry_idx[row] == 3
    calls = (chain.expiry_idx == 3) & chain.is_call
    best = np.min(np.abs(chain.delta[calls] - CFG.long_delta))
    assert abs(chain.delta[row] - CFG.long_delta) == pytest.approx(best)


def test_illiquid_target_falls_back_to_the_nearest_liquid_strike() -> None:
    chain = make_chain()
    s = long_call(LegPicker(chain, LIQ, 3), CFG)
    assert s is not None
    first = s.legs[0][0]
    k = float(chain.strike[first])
    chain = with_quotes(chain, {chain.symbols[first]: {"open_interest": 0}})
    s2 = long_call(LegPicker(chain, LIQ, 3), CFG)
    assert s2 is not None
    assert abs(float(chain.strike[s2.legs[0][0]]) - k) == 5.0


def test_debit_spread_short_leg_is_further_out_of_the_money() -> None:
    chain = make_chain()
    picker = LegPicker(chain, LIQ, 3)
    call = BUILDERS[StrategyType.CALL_DEBIT_SPREAD](picker, CFG)
    put = BUILDERS[StrategyType.PUT_DEBIT_SPREAD](picker, CFG)
    assert call is not None
    assert put is not None
    (cl, cr1), (cs, cr2) = call.legs
    (pl, pr1), (ps, pr2) = put.legs
    assert (cr1, cr2, pr1, pr2) == (1, -1, 1, -1)
    assert chain.strike[cs] > chain.strike[cl]
    assert chain.strike[ps] < chain.strike[pl]
    assert abs(chain.delta[cs]) == pytest.approx(CFG.short_delta, abs=0.05)


def test_iron_condor_wings_sit_spread_width_beyond_the_shorts() -> None:
    chain = make_chain()
    s = iron_condor(LegPicker(chain, LIQ, 3), CFG)
    assert s is not None
    (lp, r1), (sp, r2), (sc, r3), (lc, r4) = s.legs
    assert (r1, r2, r3, r4) == (1, -1, -1, 1)
    assert not chain.is_call[lp]
    assert not chain.is_call[sp]
    assert chain.is_call[sc]
    assert chain.is_call[lc]
    assert chain.strike[lp] < chain.strike[sp] < chain.spot < chain.strike[sc] < chain.strike[lc]
    assert chain.strike[sp] - chain.strike[lp] == CFG.spread_width
    assert chain.strike[lc] - chain.strike[sc] == CFG.spread_width
    assert abs(chain.delta[sp]) == pytest.approx(CFG.condor_short_delta, abs=0.05)


def test_straddle_buys_call_and_put_at_one_strike_near_the_money() -> None:
    chain = make_chain()
    s = straddle(LegPicker(chain, LIQ, 3), CFG)
    assert s is not None
    (c, rc), (p, rp) = s.legs
    assert rc == rp == 1
    assert chain.is_call[c]
    assert not chain.is_call[p]
    assert chain.strike[c] == chain.strike[p] == 500.0


def test_builders_return_none_when_nothing_is_liquid() -> None:
    chain = make_chain(open_interest=0)
    picker = LegPicker(chain, LIQ, 3)
    assert all(build(picker, CFG) is None for build in BUILDERS.values())
