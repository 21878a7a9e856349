"""Strategy builders pick listed, liquid legs by expiry, delta and width, for every strategy."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from gnosisd.agents.selection import (
    LegPicker,
    choose_back_expiry,
    choose_expiry,
    liquid_mask,
)
from gnosisd.agents.strategies import BUILDERS, CREDIT, MULTI_EXPIRY, Structure
from gnosisd.bus.events import ChainSnapshot
from gnosisd.core.config import LiquidityConfig, TradeAgentConfig
from gnosisd.core.enums import Direction, OptionType, StrategyType
from gnosisd.testing.chains import make_chain, symbol_for, with_quotes
from tests.unit.agents.chain_gen import smile_chain

TODAY = date(2025, 6, 2)  # the New York date of make_chain's default as-of
CFG = TradeAgentConfig()
LIQ = LiquidityConfig()
S = StrategyType
BULL = Direction.BULLISH


def build(strategy: StrategyType, chain: ChainSnapshot | None = None, **kw: object) -> Structure:
    ch = chain if chain is not None else smile_chain()
    front = choose_expiry(ch, TODAY, 30, 7)
    assert front is not None
    back = choose_back_expiry(ch, front, CFG.calendar_gap_days)
    direction = kw.pop("direction", BULL)
    assert isinstance(direction, Direction)
    s = BUILDERS[strategy](LegPicker(ch, LIQ, front, back), CFG, direction)
    assert s is not None, strategy
    assert s.strategy is strategy
    return s


def strikes(s: Structure, chain: ChainSnapshot) -> list[float]:
    return [float(chain.strike[row]) for row, _ in s.legs]


def test_choose_expiry_picks_listed_expiry_closest_to_target_dte() -> None:
    chain = make_chain(expiries=[TODAY + timedelta(days=d) for d in (4, 11, 25, 39, 60)])
    assert choose_expiry(chain, TODAY, target_dte=30, min_dte=7) == 2  # 25 days (39 is 9 away)
    assert choose_expiry(chain, TODAY, target_dte=36, min_dte=7) == 3
    assert choose_expiry(chain, TODAY, target_dte=1, min_dte=7) == 1  # 4 days is below min_dte
    assert choose_expiry(chain, TODAY, target_dte=30, min_dte=61) is None


def test_back_expiry_is_about_the_gap_after_the_front_and_at_least_a_week_later() -> None:
    chain = make_chain(expiries=[TODAY + timedelta(days=d) for d in (4, 25, 29, 52, 60)])
    assert choose_back_expiry(chain, 1, gap_days=28) == 3  # 27 days after the front
    assert choose_back_expiry(chain, 1, gap_days=1) == 3  # 4 days later is no calendar
    assert choose_back_expiry(chain, 4, gap_days=28) is None


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
    s = BUILDERS[S.LONG_CALL](LegPicker(chain, LIQ, 3), CFG, BULL)
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
    s = BUILDERS[S.LONG_CALL](LegPicker(chain, LIQ, 3), CFG, BULL)
    assert s is not None
    first = s.legs[0][0]
    k = float(chain.strike[first])
    chain = with_quotes(chain, {chain.symbols[first]: {"open_interest": 0}})
    s2 = BUILDERS[S.LONG_CALL](LegPicker(chain, LIQ, 3), CFG, BULL)
    assert s2 is not None
    assert abs(float(chain.strike[s2.legs[0][0]]) - k) == 5.0


def test_debit_spreads_sell_the_leg_further_out_of_the_money() -> None:
    chain = smile_chain()
    call, put = build(S.CALL_DEBIT_SPREAD, chain), build(S.PUT_DEBIT_SPREAD, chain)
    assert [r for _, r in call.legs] == [r for _, r in put.legs] == [1, -1]
    kc, kp = strikes(call, chain), strikes(put, chain)
    assert kc[1] > kc[0]
    assert kp[1] < kp[0]
    assert abs(chain.delta[call.legs[1][0]]) == pytest.approx(CFG.short_delta, abs=0.05)


def test_credit_spreads_sell_out_of_the_money_and_buy_the_wing_beyond() -> None:
    chain = smile_chain()
    call, put = build(S.CALL_CREDIT_SPREAD, chain), build(S.PUT_CREDIT_SPREAD, chain)
    (cs, cr1), (cw, cr2) = call.legs
    (ps, pr1), (pw, pr2) = put.legs
    assert (cr1, cr2, pr1, pr2) == (-1, 1, -1, 1)
    assert chain.spot < chain.strike[cs] < chain.strike[cw] == chain.strike[cs] + CFG.spread_width
    assert chain.spot > chain.strike[ps] > chain.strike[pw] == chain.strike[ps] - CFG.spread_width
    assert all(chain.is_call[r] for r in (cs, cw))
    assert not any(chain.is_call[r] for r in (ps, pw))


def test_iron_condor_wings_sit_spread_width_beyond_the_shorts() -> None:
    chain = make_chain()
    s = BUILDERS[S.IRON_CONDOR](LegPicker(chain, LIQ, 3), CFG, Direction.NEUTRAL)
    assert s is not None
    (lp, r1), (sp, r2), (sc, r3), (lc, r4) = s.legs
    assert (r1, r2, r3, r4) == (1, -1, -1, 1)
    assert [bool(chain.is_call[r]) for r in (lp, sp, sc, lc)] == [False, False, True, True]
    assert chain.strike[lp] < chain.strike[sp] < chain.spot < chain.strike[sc] < chain.strike[lc]
    assert chain.strike[sp] - chain.strike[lp] == CFG.spread_width
    assert chain.strike[lc] - chain.strike[sc] == CFG.spread_width
    assert abs(chain.delta[sp]) == pytest.approx(CFG.condor_short_delta, abs=0.05)


def test_iron_butterfly_sells_the_atm_straddle_inside_long_wings() -> None:
    chain = smile_chain()
    s = build(S.IRON_BUTTERFLY, chain)
    (lp, r1), (sp, r2), (sc, r3), (lc, r4) = s.legs
    assert (r1, r2, r3, r4) == (1, -1, -1, 1)
    assert chain.strike[sp] == chain.strike[sc] == 500.0
    assert chain.strike[lp] < 500.0 < chain.strike[lc]
    assert abs(chain.delta[lc]) == pytest.approx(CFG.condor_short_delta, abs=0.05)


def test_straddle_buys_call_and_put_at_one_strike_near_the_money() -> None:
    chain = make_chain()
    s = BUILDERS[S.STRADDLE](LegPicker(chain, LIQ, 3), CFG, Direction.NEUTRAL)
    assert s is not None
    (c, rc), (p, rp) = s.legs
    assert rc == rp == 1
    assert chain.is_call[c]
    assert not chain.is_call[p]
    assert chain.strike[c] == chain.strike[p] == 500.0


def test_strangle_and_reverse_condor_buy_out_of_the_money_options() -> None:
    chain = smile_chain()
    st = build(S.STRANGLE, chain)
    assert [r for _, r in st.legs] == [1, 1]
    kp, kc = strikes(st, chain)
    assert kp < chain.spot < kc
    ric = build(S.REVERSE_IRON_CONDOR, chain)
    assert [r for _, r in ric.legs] == [-1, 1, 1, -1]
    k = strikes(ric, chain)
    assert k == sorted(k)
    assert k[1] - k[0] == k[3] - k[2] == CFG.spread_width
    assert k[1] < chain.spot < k[2]


@pytest.mark.parametrize(
    ("strategy", "is_call"), [(S.CALL_CALENDAR, True), (S.PUT_CALENDAR, False)]
)
def test_calendar_sells_the_front_and_buys_the_back_month_at_one_strike(
    strategy: StrategyType, is_call: bool
) -> None:
    chain = smile_chain(spot=502.0)
    s = build(strategy, chain)
    (front, r1), (back, r2) = s.legs
    assert (r1, r2) == (-1, 1)
    assert chain.strike[front] == chain.strike[back] == (505.0 if is_call else 500.0)
    assert chain.is_call[front] == chain.is_call[back] == is_call
    gap = (chain.expiry(back) - chain.expiry(front)).days
    assert gap >= 7
    assert chain.expiry(front) == TODAY + timedelta(days=31)


@pytest.mark.parametrize(
    ("strategy", "is_call"), [(S.CALL_DIAGONAL, True), (S.PUT_DIAGONAL, False)]
)
def test_diagonal_is_long_the_back_month_in_the_money_and_short_the_front_further_out(
    strategy: StrategyType, is_call: bool
) -> None:
    chain = smile_chain()
    s = build(strategy, chain)
    (back, r1), (front, r2) = s.legs
    assert (r1, r2) == (1, -1)
    assert chain.expiry(back) > chain.expiry(front)
    assert abs(chain.delta[back]) == pytest.approx(CFG.diagonal_long_delta, abs=0.05)
    if is_call:
        assert chain.strike[back] < chain.spot < chain.strike[front]
    else:
        assert chain.strike[back] > chain.spot > chain.strike[front]


@pytest.mark.parametrize(
    ("direction", "is_call"),
    [(Direction.BULLISH, False), (Direction.NEUTRAL, False), (Direction.BEARISH, True)],
)
def test_broken_wing_butterfly_has_a_far_wing_twice_the_near_one(
    direction: Direction, is_call: bool
) -> None:
    chain = smile_chain()
    s = build(S.BROKEN_WING_BUTTERFLY, chain, direction=direction)
    assert [r for _, r in s.legs] == [1, -2, 1]
    lo, body, hi = strikes(s, chain)
    assert all(bool(chain.is_call[r]) is is_call for r, _ in s.legs)
    near, far = (body - lo, hi - body) if is_call else (hi - body, body - lo)
    assert (near, far) == (CFG.spread_width, 2 * CFG.spread_width)
    assert (body > chain.spot) is is_call


def test_every_strategy_is_built_from_listed_liquid_legs() -> None:
    chain = smile_chain()
    liquid = liquid_mask(chain, LIQ)
    for strategy in BUILDERS:
        s = build(strategy, chain)
        rows = [row for row, _ in s.legs]
        assert all(liquid[rows])
        assert len(set(rows)) == len(rows)
        expiries = {chain.expiry(r) for r in rows}
        assert len(expiries) == (2 if strategy in MULTI_EXPIRY else 1)


def test_credit_set_holds_exactly_the_short_premium_structures() -> None:
    assert {S.CALL_CREDIT_SPREAD, S.PUT_CREDIT_SPREAD, S.IRON_CONDOR, S.IRON_BUTTERFLY} == CREDIT


def test_builders_return_none_when_nothing_is_liquid() -> None:
    chain = smile_chain(open_interest=0)
    picker = LegPicker(chain, LIQ, 4, 6)
    assert all(build_(picker, CFG, BULL) is None for build_ in BUILDERS.values())


def test_time_spreads_need_a_back_month() -> None:
    chain = smile_chain()
    picker = LegPicker(chain, LIQ, 4, None)
    for strategy in MULTI_EXPIRY:
        assert BUILDERS[strategy](picker, CFG, BULL) is None
