"""Test doubles for the risk guard: a portfolio view, a market view with a chain, intent builders."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal

import numpy as np

from gnosisd.bus.events import ChainSnapshot, OrderFilled, OrderLeg, SubmitOrder
from gnosisd.core.clock import datetime_to_ns
from gnosisd.core.enums import OptionType, PositionEffect, Side
from gnosisd.core.occ import occ_symbol
from gnosisd.core.views import Position, PositionLeg

EXPIRY = date(2025, 7, 18)
# 2025-06-02 10:00 New York (EDT) = 14:00 UTC, a Monday session.
NOW = datetime_to_ns(datetime(2025, 6, 2, 14, 0, tzinfo=UTC))
S = 1_000_000_000


@dataclass
class FakePortfolio:
    equity_: Decimal = Decimal("100000")
    pnl: Decimal = Decimal("0")
    open_positions: list[Position] = field(default_factory=list)

    def equity(self) -> Decimal:
        return self.equity_

    def cash(self) -> Decimal:
        return self.equity_

    def positions(self) -> list[Position]:
        return list(self.open_positions)

    def session_pnl(self) -> Decimal:
        return self.pnl


SPOT = 450.0
STRIKES = tuple(range(400, 501, 5))
HALF_SPREAD = 0.10
# Time value with a skew, chosen so the fixtures' prices sit inside the collar: 450P 4.10,
# 445P 2.60 (the 450/445 put spread mids at 1.50), 450C 4.10, 455C 2.00 (450/455 call 2.10).
_DOWN = math.log(4.1 / 2.6) / 5
_UP = math.log(4.1 / 2.0) / 5


def fake_mid(is_call: bool, k: float, spot: float = SPOT) -> float:
    tv = 4.1 * math.exp(-(_DOWN if k <= spot else _UP) * abs(k - spot))
    return max(spot - k if is_call else k - spot, 0.0) + tv


def fake_greeks(is_call: bool, k: float, spot: float = SPOT) -> tuple[float, float, float, float]:
    """(delta, gamma, vega per 1.00 vol, theta per year) per share: plausible, not a model."""
    call_delta = min(max(0.5 - (k - spot) / 100, 0.02), 0.98)
    bump = math.exp(-(((k - spot) / 20) ** 2))
    return (call_delta if is_call else call_delta - 1, 0.03 * bump, 60 * bump, -40 * bump)


def make_fake_chain(
    underlying: str = "SPY",
    ts_ns: int = NOW,
    *,
    spot: float = SPOT,
    strikes: tuple[int, ...] = STRIKES,
    mid: Callable[[bool, float], float] | None = None,
    half_spread: float = HALF_SPREAD,
) -> ChainSnapshot:
    """Calls and puts at `strikes` of EXPIRY, quoted mid ∓ half_spread (bid floored at 0)."""
    rows = [(k, call) for k in strikes for call in (True, False)]
    mids = [mid(c, float(k)) if mid is not None else fake_mid(c, float(k), spot) for k, c in rows]
    greeks = np.array([fake_greeks(c, float(k), spot) for k, c in rows])
    n = len(rows)
    return ChainSnapshot(
        underlying=underlying,
        ts_ns=ts_ns,
        spot=spot,
        rate=0.04,
        div_yield=0.0,
        symbols=tuple(
            occ_symbol(underlying, EXPIRY, OptionType.CALL if c else OptionType.PUT, Decimal(k))
            for k, c in rows
        ),
        is_call=np.array([c for _, c in rows]),
        strike=np.array([float(k) for k, _ in rows]),
        expiries=(EXPIRY,),
        expiry_idx=np.zeros(n, dtype=np.int64),
        t_years=np.full(n, 46 / 365),
        bid=np.array([max(round(m - half_spread, 2), 0.0) for m in mids]),
        ask=np.array([round(m + half_spread, 2) for m in mids]),
        iv=np.full(n, 0.2),
        delta=greeks[:, 0].copy(),
        gamma=greeks[:, 1].copy(),
        vega=greeks[:, 2].copy(),
        theta=greeks[:, 3].copy(),
        open_interest=np.full(n, 1000, dtype=np.int64),
        volume=np.full(n, 100, dtype=np.int64),
    )


_DEFAULT_CHAIN = make_fake_chain()


@dataclass
class FakeMarket:
    """Last data times; `chains` per underlying. Without an explicit SPY chain the default fake
    chain is served, stamped at SPY's last data time (so it is as fresh as the data)."""

    last: dict[str, int] = field(default_factory=dict)
    chains: dict[str, ChainSnapshot | None] = field(default_factory=dict)  # None: no chain
    _stamped: dict[int, ChainSnapshot] = field(default_factory=dict, repr=False)

    def last_data_ns(self, symbol: str) -> int | None:
        return self.last.get(symbol)

    def chain(self, symbol: str) -> ChainSnapshot | None:
        if symbol in self.chains:
            return self.chains[symbol]
        if symbol != "SPY":
            return None
        ts = self.last.get("SPY", NOW)
        if ts not in self._stamped:
            self._stamped[ts] = replace(_DEFAULT_CHAIN, ts_ns=ts)
        return self._stamped[ts]


def leg(
    side: Side, kind: OptionType, strike: str | int, ratio: int = 1, underlying: str = "SPY"
) -> OrderLeg:
    k = Decimal(strike)
    return OrderLeg(
        symbol=occ_symbol(underlying, EXPIRY, kind, k),
        side=side,
        ratio=ratio,
        option_type=kind,
        strike=k,
        expiry=EXPIRY,
    )


def put_credit_spread(
    intent_id: str = "i-1", quantity: int = 1, limit: str = "-1.50"
) -> SubmitOrder:
    """Sell 450P / buy 445P for a 1.50 credit: max loss 3.50 per share, $350 per spread."""
    return SubmitOrder(
        intent_id=intent_id,
        underlying="SPY",
        ts_ns=NOW,
        effect=PositionEffect.OPEN,
        legs=(leg(Side.SELL, OptionType.PUT, 450), leg(Side.BUY, OptionType.PUT, 445)),
        quantity=quantity,
        limit_price=Decimal(limit),
        strategy_type="put_credit_spread",
    )


def closing(intent_id: str = "c-1", position_id: str = "p-1") -> SubmitOrder:
    """Buy back the 450/445 put credit spread for 0.50."""
    return replace(
        put_credit_spread(intent_id, limit="0.50"),
        effect=PositionEffect.CLOSE,
        legs=(leg(Side.BUY, OptionType.PUT, 450), leg(Side.SELL, OptionType.PUT, 445)),
        position_id=position_id,
        exit_reason="profit_target",
    )


def fake_position(position_id: str, quantity: int = 1) -> Position:
    """A 1-lot put credit spread as the portfolio cap sees it (legs left out: no greeks)."""
    return Position(
        position_id=position_id,
        underlying="SPY",
        strategy_type="put_credit_spread",
        quantity=quantity,
        legs=(),
        entry_net_price=Decimal("-1.5"),
        max_loss=Decimal("-350"),
        max_profit=Decimal("150"),
        opened_ns=NOW,
        mark_net_price=Decimal("-1.5"),
        unrealized_pnl=Decimal("0"),
        exit_rules={},
    )


def position_closed_by(intent: SubmitOrder, quantity: int | None = None) -> Position:
    """The open position that closing `intent` exactly reverses (its legs, `quantity` held)."""
    legs = tuple(
        PositionLeg(
            lg.symbol,
            lg.option_type is OptionType.CALL,
            lg.strike,
            lg.expiry,
            -lg.ratio if lg.side is Side.BUY else lg.ratio,
        )
        for lg in intent.legs
    )
    held = intent.quantity if quantity is None else quantity
    return replace(
        fake_position(intent.position_id or "p-1", held), legs=legs, strategy_type="custom"
    )


def holding(
    intent: SubmitOrder, *, equity_: Decimal = Decimal("100000"), pnl: Decimal = Decimal(0)
) -> FakePortfolio:
    """A portfolio that holds the position `intent` closes."""
    return FakePortfolio(equity_, pnl, [position_closed_by(intent)])


def fill_of(intent: SubmitOrder, ts_ns: int, position_id: str) -> OrderFilled:
    """The broker's fill of `intent` at its limit (legs omitted: the guard does not read them)."""
    return OrderFilled(
        order_id=f"o-{intent.intent_id}",
        intent_id=intent.intent_id,
        underlying=intent.underlying,
        ts_ns=ts_ns,
        effect=intent.effect,
        quantity=intent.quantity,
        net_price=intent.limit_price,
        commission=Decimal(0),
        legs=(),
        position_id=position_id,
    )
