"""Property: under random sequences of intents, fills, marks and halts, no approved order breaches
a limit (each recomputed here from the chain arrays and the history), nothing opening is approved
while HALTED or REDUCING, a halt holds until resumed and a greek breach never leaves ACTIVE."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from hypothesis import event, given, settings
from hypothesis import strategies as st

from gnosisd.bus.events import ChainSnapshot, RiskDecided, SubmitOrder
from gnosisd.core.calendar import TradingCalendar
from gnosisd.core.config import RiskConfig
from gnosisd.core.enums import OptionType, PositionEffect, Side, TradingState
from gnosisd.core.views import Position, PositionLeg
from gnosisd.risk.guard import RiskGuard
from tests.unit.risk.fakes import NOW, FakeMarket, FakePortfolio, S, fill_of, leg
from tests.unit.risk.reference import reference_band, reference_greeks, signed_greeks
from tests.unit.risk.test_guard_properties import brute_force_max_loss

CAL = TradingCalendar()
EQUITY = Decimal(100_000)
MINUTE = 60 * S
CFG = RiskConfig(
    kill_file=Path("/nonexistent/gnosisd-test/KILL"),
    max_daily_loss=3_000,
    max_open_positions=3,
    max_orders_per_minute=3,
    max_contracts_per_order=24,
    max_premium_per_order=2_500,
    max_contracts_per_window=30,
    max_premium_per_window=4_000,
    size_window_minutes=30,
    max_reentries=1,
    reentry_window_minutes=30,
    duplicate_window_seconds=60,
    max_portfolio_risk_pct=0.04,
    max_delta_pct=0.15,
    max_gamma_pct=0.3,
    max_vega_pct=0.003,
    max_theta_pct=0.001,
)
BUDGETS = [CFG.max_delta_pct, CFG.max_gamma_pct, CFG.max_vega_pct, CFG.max_theta_pct]

B, SL, C, P = Side.BUY, Side.SELL, OptionType.CALL, OptionType.PUT
STRUCTURES = {
    "put_credit_spread": ((SL, P, 450), (B, P, 445)),
    "put_credit_spread_low": ((SL, P, 445), (B, P, 440)),
    "call_debit_spread": ((B, C, 450), (SL, C, 455)),
    "iron_condor": ((B, P, 440), (SL, P, 445), (SL, C, 455), (B, C, 460)),
    "long_straddle": ((B, C, 450), (B, P, 450)),
}

open_st = st.tuples(
    st.just("open"),
    st.sampled_from(sorted(STRUCTURES)),
    st.sampled_from([1, 2, 3, 5, 8]),
    st.integers(min_value=-150, max_value=150),  # cents from the net mid
    st.booleans(),  # reuse the last intent id
)
fill_st = st.tuples(st.just("fill"))
ops_st = st.lists(
    st.one_of(
        # repeated branches weight the draw towards trading; halts and resumes stay rare
        open_st,
        open_st,
        open_st,
        fill_st,
        fill_st,
        st.tuples(st.just("close"), st.integers(0, 3), st.integers(-100, 600)),
        st.tuples(st.just("mark"), st.sampled_from([0, 0, 0, -1_000, -2_999, -3_000])),
        st.tuples(st.just("wait"), st.sampled_from([1, 30, 61, 600, 1_801])),
        st.tuples(st.sampled_from(["halt", "reduce", "resume", "resume"])),
    ),
    min_size=20,
    max_size=80,
)


@dataclass
class Model:
    """What the test knows independently of the guard."""

    now: int = NOW
    approvals: list[tuple[int, SubmitOrder]] = field(default_factory=list)
    pending: list[RiskDecided] = field(default_factory=list)
    close_fills: list[tuple[int, str]] = field(default_factory=list)  # (ts, strategy)
    keys: dict[str, str] = field(default_factory=dict)  # position id -> strategy
    halted: bool = False
    operator_reducing: bool = False
    next_id: int = 0


def net_mid(legs: tuple[tuple[Side, OptionType, int], ...], chain: ChainSnapshot) -> float:
    rows = {sym: i for i, sym in enumerate(chain.symbols)}
    total = 0.0
    for side, kind, k in legs:
        m = float(chain.mid[rows[leg(side, kind, k).symbol]])
        total += m if side is Side.BUY else -m
    return total


def cents(x: float, offset: int) -> Decimal:
    return Decimal(round(x * 100) + offset) / 100


def position_of(d: RiskDecided, pid: str) -> Position:
    i = d.intent
    return Position(
        position_id=pid,
        underlying="SPY",
        strategy_type=i.strategy_type or "custom",
        quantity=i.quantity,
        legs=tuple(
            PositionLeg(
                lg.symbol,
                lg.option_type is OptionType.CALL,
                lg.strike,
                lg.expiry,
                lg.ratio if lg.side is Side.BUY else -lg.ratio,
            )
            for lg in i.legs
        ),
        entry_net_price=i.limit_price,
        max_loss=d.max_loss,
        max_profit=None,
        opened_ns=d.ts_ns,
        mark_net_price=i.limit_price,
        unrealized_pnl=Decimal(0),
        exit_rules={},
    )


def book_greeks(book: FakePortfolio, chain: ChainSnapshot) -> tuple[float, float, float, float]:
    legs = [(lg.symbol, lg.ratio * p.quantity) for p in book.open_positions for lg in p.legs]
    return signed_greeks(legs, chain)


def in_window(m: Model, minutes: int) -> list[SubmitOrder]:
    return [i for ts, i in m.approvals if ts > m.now - minutes * MINUTE]


def assert_open_within_limits(
    intent: SubmitOrder, d: RiskDecided, m: Model, book: FakePortfolio, chain: ChainSnapshot
) -> None:
    """Every limit of an approved opening order, recomputed from the history before it."""
    assert not m.halted and not m.operator_reducing
    assert book.pnl > -CFG.max_daily_loss
    per_share = brute_force_max_loss(intent.legs, intent.limit_price)
    assert per_share is not None and d.max_loss == per_share * 100 * intent.quantity
    loss = -d.max_loss
    assert loss <= Decimal(repr(CFG.max_trade_risk_pct)) * EQUITY
    assert len(book.open_positions) < CFG.max_open_positions
    assert sum(-p.max_loss for p in book.open_positions) + loss <= Decimal("0.04") * EQUITY
    contracts = sum(lg.ratio for lg in intent.legs) * intent.quantity
    premium = abs(intent.limit_price) * intent.quantity * 100
    assert contracts <= CFG.max_contracts_per_order
    assert premium <= Decimal(CFG.max_premium_per_order)
    assert len([1 for ts, _ in m.approvals if ts > m.now - MINUTE]) < CFG.max_orders_per_minute
    opens = [i for i in in_window(m, CFG.size_window_minutes) if i.effect is PositionEffect.OPEN]
    assert sum(sum(lg.ratio for lg in i.legs) * i.quantity for i in opens) + contracts <= 30
    assert sum(abs(i.limit_price) * i.quantity * 100 for i in opens) + premium <= 4_000
    window = m.now - CFG.reentry_window_minutes * MINUTE
    closes = [k for ts, k in m.close_fills if ts > window and k == intent.strategy_type]
    assert len(closes) <= CFG.max_reentries
    for ts, i in m.approvals:
        assert i.intent_id != intent.intent_id
        same = (i.legs, i.quantity, i.limit_price, i.effect) == (
            intent.legs,
            intent.quantity,
            intent.limit_price,
            intent.effect,
        )
        assert not (same and ts > m.now - 60 * S)
    low, high = reference_band(intent, chain, CFG.collar_tolerance, CFG.collar_tolerance_pct)
    assert low - 1e-9 <= float(intent.limit_price) <= high + 1e-9
    post = [
        a + b
        for a, b in zip(book_greeks(book, chain), reference_greeks(intent, chain), strict=True)
    ]
    for g, pct in zip(post, BUDGETS, strict=True):
        assert abs(g) <= pct * float(EQUITY) * (1 + 1e-9)


@settings(max_examples=300, deadline=None)
@given(ops=ops_st)
def test_random_sequences_never_approve_a_breaching_order(ops: list[tuple[object, ...]]) -> None:
    guard = RiskGuard(CFG, CAL, broker_is_live=False)
    book = FakePortfolio(equity_=EQUITY)
    market = FakeMarket({"SPY": NOW})
    m = Model()
    for op in ops:
        m.now += S
        market.last["SPY"] = m.now
        chain = market.chain("SPY")
        assert chain is not None
        kind = op[0]
        d: RiskDecided | None = None
        if kind == "open":
            _, name, qty, offset, reuse = op
            assert isinstance(name, str) and isinstance(qty, int) and isinstance(offset, int)
            if not (reuse and m.next_id):
                m.next_id += 1
            legs = STRUCTURES[name]
            intent = SubmitOrder(
                intent_id=f"i-{m.next_id}",
                underlying="SPY",
                ts_ns=m.now,
                effect=PositionEffect.OPEN,
                legs=tuple(leg(s, k, x) for s, k, x in legs),
                quantity=qty,
                limit_price=cents(net_mid(legs, chain), offset),
                strategy_type=name,
            )
            before = guard.state
            d = guard.check(intent, book, market, m.now)
            if d.approved:
                assert before is TradingState.ACTIVE and d.trading_state is TradingState.ACTIVE
                assert_open_within_limits(intent, d, m, book, chain)
            event(f"open {d.reason}")
        elif kind == "close" and book.open_positions:
            _, idx, offset = op
            assert isinstance(idx, int) and isinstance(offset, int)
            pos = book.open_positions[idx % len(book.open_positions)]
            rev = tuple(
                (Side.SELL if lg.ratio > 0 else Side.BUY, C if lg.is_call else P, int(lg.strike))
                for lg in pos.legs
            )
            m.next_id += 1
            intent = SubmitOrder(
                intent_id=f"i-{m.next_id}",
                underlying="SPY",
                ts_ns=m.now,
                effect=PositionEffect.CLOSE,
                legs=tuple(leg(s, k, x) for s, k, x in rev),
                quantity=pos.quantity,
                limit_price=cents(net_mid(rev, chain), offset),
                position_id=pos.position_id,
                strategy_type=pos.strategy_type,
            )
            d = guard.check(intent, book, market, m.now)
            _, high = reference_band(
                intent, chain, CFG.close_collar_tolerance, CFG.close_collar_tolerance_pct
            )
            # A close passes whatever the state, unless absurdly through the market.
            assert d.approved == (float(intent.limit_price) <= high + 1e-9)
            event(f"close {d.reason}")
        elif kind == "fill" and m.pending:
            filled = m.pending.pop(0)
            i = filled.intent
            if i.effect is PositionEffect.OPEN:
                pid = f"p-{i.intent_id}"
                book.open_positions.append(position_of(filled, pid))
                m.keys[pid] = i.strategy_type or "custom"
            else:
                assert i.position_id is not None
                book.open_positions = [
                    p for p in book.open_positions if p.position_id != i.position_id
                ]
                if i.position_id in m.keys:
                    m.close_fills.append((m.now, m.keys.pop(i.position_id)))
                pid = i.position_id
            guard.on_fill(fill_of(i, m.now, pid))
        elif kind == "mark":
            pnl = op[1]
            assert isinstance(pnl, int)
            book.pnl = Decimal(pnl)
            guard.on_mark(book.pnl, book, market, m.now)
            if pnl <= -CFG.max_daily_loss:
                assert guard.state is TradingState.HALTED
            greeks = book_greeks(book, chain)
            if any(abs(g) > p * float(EQUITY) for g, p in zip(greeks, BUDGETS, strict=True)):
                assert guard.state is not TradingState.ACTIVE
                event("greek budget breached on a mark")
        elif kind == "halt":
            guard.halt("test", m.now)
        elif kind == "reduce":
            guard.reduce_only("test", m.now)
            m.operator_reducing = not m.halted
        elif kind == "resume":
            guard.resume("test", m.now)
            m.halted = m.operator_reducing = False
        elif kind == "wait":
            seconds = op[1]
            assert isinstance(seconds, int)
            m.now += seconds * S
            market.last["SPY"] = m.now
        if d is not None and d.approved:
            m.approvals.append((m.now, d.intent))
            m.pending.append(d)
        # A halt holds until an operator resumes (the test never crosses a New York midnight),
        # and an operator's REDUCING is never lifted by the guard or turned into less than it.
        if guard.state is TradingState.HALTED:
            m.halted = True
        if m.halted:
            assert guard.state is TradingState.HALTED
        elif m.operator_reducing:
            assert guard.state is TradingState.REDUCING
