"""The seeded simulated market: determinism, event stream shape, chain sanity, multi-session state."""

from __future__ import annotations

from collections import Counter
from datetime import date
from functools import cache

import numpy as np
import pytest

from gnosisd.bus.events import Bar, ChainSnapshot, Quote, SessionClosed, Trade
from gnosisd.core.calendar import TradingCalendar
from gnosisd.core.clock import datetime_to_ns
from gnosisd.core.enums import Regime
from gnosisd.core.occ import parse_occ
from gnosisd.feeds.sim import SimEvent, SimMarket
from gnosisd.quant import bsm

CAL = TradingCalendar()
DAY = date(2025, 3, 3)
NS_PER_MIN = 60_000_000_000


@cache
def _session_events(seed: int = 11) -> tuple[tuple[int, SimEvent], ...]:
    return tuple(SimMarket(["SPY"], seed=seed).session_events(CAL.session(DAY)))


def _chains(events: tuple[tuple[int, SimEvent], ...]) -> list[ChainSnapshot]:
    return [e for _, e in events if isinstance(e, ChainSnapshot)]


def _key(event: SimEvent) -> object:
    if isinstance(event, ChainSnapshot):
        return (
            event.ts_ns,
            event.spot,
            event.symbols,
            event.bid.tobytes(),
            event.ask.tobytes(),
            event.iv.tobytes(),
            event.open_interest.tobytes(),
            event.volume.tobytes(),
        )
    return event


def test_same_seed_gives_identical_events() -> None:
    a = _session_events(11)
    b = tuple(SimMarket(["SPY"], seed=11).session_events(CAL.session(DAY)))
    assert len(a) == len(b)
    assert [(t, _key(e)) for t, e in a] == [(t, _key(e)) for t, e in b]


def test_different_seeds_give_different_paths() -> None:
    a = [e.price for _, e in _session_events(11) if isinstance(e, Trade)]
    b = [e.price for _, e in _session_events(12) if isinstance(e, Trade)]
    assert a != b


def test_session_has_bars_each_minute_chains_every_five_minutes_and_ticks() -> None:
    events = _session_events()
    counts = Counter(type(e).__name__ for _, e in events)
    assert counts["Bar"] == 390
    assert counts["ChainSnapshot"] == 78
    assert counts["Quote"] == counts["Trade"] >= 2 * 390
    assert "SessionClosed" not in counts
    times = [t for t, _ in events]
    assert times == sorted(times)
    session = CAL.session(DAY)
    open_ns, close_ns = datetime_to_ns(session.open), datetime_to_ns(session.close)
    assert all(open_ns <= t <= close_ns for t in times)
    first_chain = _chains(events)[0]
    assert first_chain.ts_ns == open_ns
    assert all(c.ts_ns == t for t, c in events if isinstance(c, (Quote, Trade, ChainSnapshot)))


def test_underlying_is_spy_like_and_quotes_are_not_crossed() -> None:
    events = _session_events()
    quotes = [e for _, e in events if isinstance(e, Quote)]
    assert all(0.0 < q.bid < q.ask for q in quotes)
    assert all(q.ask - q.bid < 0.05 for q in quotes)
    assert 450.0 <= quotes[0].bid <= 600.0


def test_bars_agree_with_the_trades_of_their_minute() -> None:
    events = _session_events()
    trades = [e for _, e in events if isinstance(e, Trade)]
    bars = [(t, e) for t, e in events if isinstance(e, Bar)]
    for emitted, bar in bars[::37]:
        assert emitted == bar.ts_ns + NS_PER_MIN
        inside = [t for t in trades if bar.ts_ns <= t.ts_ns < bar.ts_ns + NS_PER_MIN]
        prices = [t.price for t in inside]
        assert bar.open == prices[0] and bar.close == prices[-1]
        assert bar.high == max(prices) and bar.low == min(prices)
        assert bar.volume >= sum(t.size for t in inside)


def test_chain_quotes_are_sane_and_symbols_parse() -> None:
    for chain in _chains(_session_events())[::13]:
        assert np.all(chain.bid >= 0.0) and np.all(chain.bid <= chain.ask)
        np.testing.assert_allclose(chain.ask * 100, np.round(chain.ask * 100), atol=1e-6)
        assert np.all(np.isfinite(chain.iv)) and np.all(np.isfinite(chain.delta))
        for i in range(0, len(chain), 101):
            c = parse_occ(chain.symbols[i])
            assert c.underlying == "SPY" and float(c.strike) == chain.strike[i]
            assert c.expiry == chain.expiry(i)
        assert all(CAL.is_session(e) for e in chain.expiries)
        assert 1500 <= len(chain) <= 3000


def test_chain_mids_match_bsm_on_the_quoted_iv() -> None:
    chain = _chains(_session_events())[30]
    theo = bsm.price(
        chain.is_call,
        chain.spot,
        chain.strike,
        chain.t_years,
        chain.rate,
        chain.div_yield,
        chain.iv,
    )
    intrinsic = np.maximum(
        np.where(chain.is_call, chain.spot - chain.strike, chain.strike - chain.spot), 0.0
    )
    fair = np.maximum(theo, intrinsic)
    half = (chain.ask - chain.bid) / 2
    assert np.all(np.abs(chain.mid - fair) <= half + 0.01)
    g = bsm.greeks(
        chain.is_call,
        chain.spot,
        chain.strike,
        chain.t_years,
        chain.rate,
        chain.div_yield,
        chain.iv,
    )
    np.testing.assert_allclose(chain.gamma, g.gamma)
    np.testing.assert_allclose(chain.theta, g.theta)


def test_otm_put_iv_exceeds_otm_call_iv_at_the_same_distance() -> None:
    chain = _chains(_session_events())[0]
    in_exp = chain.expiry_idx == chain.expiries.index(date(2025, 3, 21))
    puts, calls = in_exp & ~chain.is_call, in_exp & chain.is_call
    for pct in (0.03, 0.06, 0.10):
        p = np.flatnonzero(puts)[np.argmin(np.abs(chain.strike[puts] - chain.spot * (1 - pct)))]
        c = np.flatnonzero(calls)[np.argmin(np.abs(chain.strike[calls] - chain.spot * (1 + pct)))]
        assert chain.iv[p] > chain.iv[c], pct


def test_t_years_is_act365_to_the_four_pm_close_and_0dte_lists_until_the_close() -> None:
    chains = _chains(_session_events())
    first, last = chains[0], chains[-1]
    close_ns = datetime_to_ns(CAL.session(DAY).close)
    assert first.expiries[0] == DAY
    row = int(np.flatnonzero(first.expiry_idx == 0)[0])
    assert first.t_years[row] == pytest.approx((close_ns - first.ts_ns) / (365 * 86_400e9))
    assert last.ts_ns == close_ns - 5 * NS_PER_MIN
    assert last.expiries[0] == DAY
    today = last.expiry_idx == 0
    assert today.any() and np.all(last.t_years[today] > 0)


def test_option_volume_grows_through_the_day() -> None:
    chains = _chains(_session_events())
    assert int(chains[0].volume.sum()) == 0
    totals = [int(c.volume.sum()) for c in chains]
    assert totals == sorted(totals) and totals[-1] > 0


def test_settlement_price_is_the_last_trade() -> None:
    market = SimMarket(["SPY"], seed=5)
    events = list(market.session_events(CAL.session(DAY)))
    last_trade = [e for _, e in events if isinstance(e, Trade)][-1]
    assert market.settlement_price("SPY") == last_trade.price


def test_state_carries_into_the_next_session() -> None:
    market = SimMarket(["SPY"], seed=5, emit_session_closed=True)
    first = list(market.session_events(CAL.session(DAY)))
    closed = first[-1][1]
    assert isinstance(closed, SessionClosed)
    close = closed.settlement["SPY"]
    nxt = market.session_events(CAL.session(date(2025, 3, 4)))
    opening = next(e for _, e in nxt if isinstance(e, ChainSnapshot))
    assert opening.spot == pytest.approx(close, rel=0.05)
    assert opening.spot != close


def test_sessions_must_come_in_calendar_order() -> None:
    market = SimMarket(["SPY"], seed=5)
    market.session_events(CAL.session(date(2025, 3, 4)))
    with pytest.raises(ValueError, match="not after"):
        market.session_events(CAL.session(DAY))


def test_regimes_switch_over_a_few_weeks() -> None:
    market = SimMarket(["SPY"], seed=3, initial_regime=Regime.RANGE)
    for session in CAL.sessions(date(2025, 3, 3), date(2025, 3, 28)):
        market.session_events(session)  # simulating (not iterating) advances the state
    visited = {r for _, r in market.regime_path}
    assert len(visited) >= 3
    assert market.state("SPY").price > 0


def test_vol_expansion_raises_the_iv_level() -> None:
    calm = SimMarket(["SPY"], seed=1, initial_regime=Regime.TREND_UP)
    spike = SimMarket(["SPY"], seed=1, initial_regime=Regime.VOL_EXPANSION)
    assert spike.state("SPY").iv30 > 2 * calm.state("SPY").iv30


def test_early_close_session_is_shorter() -> None:
    session = CAL.session(date(2024, 11, 29))  # day after Thanksgiving, 13:00 close
    events = list(SimMarket(["SPY"], seed=2).session_events(session))
    assert sum(isinstance(e, Bar) for _, e in events) == 210


def test_several_symbols_interleave_in_time_order() -> None:
    market = SimMarket(["SPY", "QQQ"], seed=4, chain_refresh_minutes=30)
    events = list(market.session_events(CAL.session(DAY)))
    assert [t for t, _ in events] == sorted(t for t, _ in events)
    chains = Counter(e.underlying for _, e in events if isinstance(e, ChainSnapshot))
    assert chains == {"SPY": 13, "QQQ": 13}
    assert market.settlement_price("QQQ") != market.settlement_price("SPY")


def test_rejects_bad_construction() -> None:
    with pytest.raises(ValueError, match="at least one symbol"):
        SimMarket([], seed=1)
    with pytest.raises(ValueError, match="positive"):
        SimMarket(["SPY"], seed=1, start_prices={"SPY": 0.0})
