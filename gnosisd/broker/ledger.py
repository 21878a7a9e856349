"""Exact-money ledger: cash, open multi-leg positions, marks, realised P&L, commissions, sessions.

Equity = cash + Σ mark × 100 × quantity (long structures add value, short ones subtract).
Realised P&L is trading P&L before commissions; `commissions_paid()` holds those separately.
`to_state()` / `from_state()` round-trip the books exactly (Decimals as strings) for restarts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from gnosisd.bus.events import ChainSnapshot, OrderFilled, SubmitOrder
from gnosisd.core.enums import OptionType, PositionEffect, Side
from gnosisd.core.errors import InvariantViolation
from gnosisd.core.money import CONTRACT_MULTIPLIER, ZERO
from gnosisd.core.views import Position, PositionLeg
from gnosisd.quant.profile import ExpiryLeg, structure_bounds

M = CONTRACT_MULTIPLIER


def quote_mid(bid: float, ask: float) -> Decimal | None:
    """Exact Decimal mid of a quote (floats via repr), or None if there is no usable market."""
    if not (math.isfinite(bid) and math.isfinite(ask)) or ask <= 0 or bid < 0 or bid > ask:
        return None
    return (Decimal(repr(float(bid))) + Decimal(repr(float(ask)))) / 2


def chain_mid(chain: ChainSnapshot, symbol: str) -> Decimal | None:
    """The mid of `symbol` in the chain, None if it is not listed or has no usable market."""
    try:
        i = chain.row(symbol)
    except KeyError:
        return None
    return quote_mid(float(chain.bid[i]), float(chain.ask[i]))


@dataclass(frozen=True, slots=True)
class Settlement:
    """Legs of one position settled at expiry (cash-settled at intrinsic value)."""

    position_id: str
    underlying: str
    symbols: tuple[str, ...]
    settlement_price: Decimal
    value_per_share: Decimal  # Σ signed ratio × intrinsic of the settled legs
    cash_flow: Decimal  # dollars credited (negative: debited)
    realized_pnl: Decimal  # dollars (only when the whole position settled, else 0)
    closed: bool


@dataclass(slots=True)
class _Holding:
    position_id: str
    underlying: str
    strategy_type: str
    quantity: int
    legs: tuple[PositionLeg, ...]
    entry_net_price: Decimal
    opened_ns: int
    leg_marks: dict[str, Decimal]
    exit_rules: dict[str, float] = field(default_factory=dict)
    # profile_totals() memo: (legs, entry, quantity) it was computed for, and the result.
    _bounds: tuple[object, tuple[Decimal | None, Decimal | None]] | None = field(
        default=None, repr=False, compare=False
    )

    def mark(self) -> Decimal:
        return sum((leg.ratio * self.leg_marks[leg.symbol] for leg in self.legs), ZERO)

    def profile_totals(self) -> tuple[Decimal | None, Decimal | None]:
        """Max loss and max profit in dollars at quantity (quant.profile.structure_bounds, the
        guard's function: a calendar or diagonal is valued at its front expiry with the back leg
        at its worst case; its max profit is model-dependent and reported as None).

        Memoised on (legs, entry price, quantity): the guard reads every position on every
        check, and a holding changes only on fills, assignments and settlements."""
        key = (self.legs, self.entry_net_price, self.quantity)
        memo = self._bounds
        if memo is not None and memo[0] == key:
            return memo[1]
        legs = [ExpiryLeg(lg.is_call, lg.strike, lg.ratio, lg.expiry) for lg in self.legs]
        p = structure_bounds(legs, self.entry_net_price)
        scale = M * self.quantity
        loss = None if p.max_loss is None else p.max_loss * scale
        profit = None if p.max_profit is None else p.max_profit * scale
        self._bounds = (key, (loss, profit))
        return loss, profit

    def reserve(self) -> Decimal:
        """Cash held back beyond what was paid: max loss not yet paid for (a credit's width)."""
        loss, _ = self.profile_totals()
        if loss is None:
            raise InvariantViolation(f"position {self.position_id} has undefined risk")
        return max(ZERO, -loss - self.entry_net_price * M * self.quantity)

    def view(self) -> Position:
        loss, profit = self.profile_totals()
        if loss is None:
            raise InvariantViolation(f"position {self.position_id} has undefined risk")
        mark = self.mark()
        return Position(
            position_id=self.position_id,
            underlying=self.underlying,
            strategy_type=self.strategy_type,
            quantity=self.quantity,
            legs=self.legs,
            entry_net_price=self.entry_net_price,
            max_loss=loss,
            max_profit=profit,
            opened_ns=self.opened_ns,
            mark_net_price=mark,
            unrealized_pnl=(mark - self.entry_net_price) * M * self.quantity,
            exit_rules=dict(self.exit_rules),
        )


STATE_VERSION = 1


def _holding_state(h: _Holding) -> dict[str, Any]:
    return {
        "position_id": h.position_id,
        "underlying": h.underlying,
        "strategy_type": h.strategy_type,
        "quantity": h.quantity,
        "legs": [
            {
                "symbol": lg.symbol,
                "is_call": lg.is_call,
                "strike": str(lg.strike),
                "expiry": lg.expiry.isoformat(),
                "ratio": lg.ratio,
            }
            for lg in h.legs
        ],
        "entry_net_price": str(h.entry_net_price),
        "opened_ns": h.opened_ns,
        "leg_marks": {k: str(v) for k, v in h.leg_marks.items()},
        "exit_rules": dict(h.exit_rules),
    }


def _holding_from_state(raw: Mapping[str, Any]) -> _Holding:
    legs = tuple(
        PositionLeg(
            symbol=str(lg["symbol"]),
            is_call=bool(lg["is_call"]),
            strike=Decimal(lg["strike"]),
            expiry=date.fromisoformat(lg["expiry"]),
            ratio=int(lg["ratio"]),
        )
        for lg in raw["legs"]
    )
    marks = {str(k): Decimal(v) for k, v in raw["leg_marks"].items()}
    if set(marks) != {lg.symbol for lg in legs}:
        raise ValueError(f"ledger state: position {raw['position_id']} marks differ from its legs")
    return _Holding(
        position_id=str(raw["position_id"]),
        underlying=str(raw["underlying"]),
        strategy_type=str(raw["strategy_type"]),
        quantity=int(raw["quantity"]),
        legs=legs,
        entry_net_price=Decimal(raw["entry_net_price"]),
        opened_ns=int(raw["opened_ns"]),
        leg_marks=marks,
        exit_rules={str(k): float(v) for k, v in raw["exit_rules"].items()},
    )


class Ledger:
    """The portfolio's books in exact Decimal; implements PortfolioView.

    Only the broker that fills orders (or the runtime for an external broker) mutates it.
    """

    def __init__(self, initial_cash: Decimal) -> None:
        self._cash = Decimal(initial_cash)
        self._holdings: dict[str, _Holding] = {}
        self._realized = ZERO
        self._commissions = ZERO
        self._applied: set[str] = set()
        self._session_day: date | None = None
        self._session_start_equity = self._cash
        self._broker_pnl: Decimal | None = None  # the broker's session P&L (observe_broker_pnl)
        # Reads memoised until the next change: every public method that changes the books
        # calls _changed() first (the guard reads equity and positions on every check).
        self._version = 0
        self._equity_memo: tuple[int, Decimal] | None = None
        self._positions_memo: tuple[int, list[Position]] | None = None
        # session_pnl's inputs besides the version are held and compared by identity.
        self._pnl_memo: tuple[int, Decimal, Decimal | None, Decimal] | None = None

    # ------------------------------------------------------------------ PortfolioView
    def cash(self) -> Decimal:
        return self._cash

    def _changed(self) -> None:
        self._version += 1

    def equity(self) -> Decimal:
        memo = self._equity_memo
        if memo is not None and memo[0] == self._version:
            return memo[1]
        value = self._cash + sum((h.mark() * M * h.quantity for h in self._holdings.values()), ZERO)
        self._equity_memo = (self._version, value)
        return value

    def positions(self) -> list[Position]:
        memo = self._positions_memo
        if memo is None or memo[0] != self._version:
            memo = self._positions_memo = (
                self._version,
                [h.view() for h in self._holdings.values()],
            )
        return list(memo[1])  # a fresh list; the Position copies are frozen

    def session_pnl(self) -> Decimal:
        """Equity now minus equity at `start_session` (realised + unrealised − commissions);
        the worse of that and the broker's own figure once `observe_broker_pnl` gave one."""
        start, broker = self._session_start_equity, self._broker_pnl
        memo = self._pnl_memo
        if memo is not None and memo[0] == self._version and memo[1] is start and memo[2] is broker:
            return memo[3]
        own = self.equity() - start
        value = own if broker is None else min(own, broker)
        self._pnl_memo = (self._version, start, broker, value)
        return value

    def own_session_pnl(self) -> Decimal:
        """The ledger's own session P&L, without the broker's figure."""
        return self.equity() - self._session_start_equity

    def observe_broker_pnl(self, pnl: Decimal | None) -> None:
        """Record the broker's session P&L (Alpaca: equity − last_equity, always since the last
        close, so a new session does not reset it: the next read replaces it); None forgets it."""
        self._broker_pnl = pnl

    # ------------------------------------------------------------------ more reads
    def position(self, position_id: str) -> Position | None:
        h = self._holdings.get(position_id)
        return None if h is None else h.view()

    def realized_pnl(self) -> Decimal:
        return self._realized

    def commissions_paid(self) -> Decimal:
        return self._commissions

    def reserved(self) -> Decimal:
        """Collateral held for open credit structures (their max loss not covered by cash paid)."""
        return sum((h.reserve() for h in self._holdings.values()), ZERO)

    def buying_power(self) -> Decimal:
        """Cash free for new risk: cash minus the collateral of open positions."""
        return self._cash - self.reserved()

    @property
    def session_day(self) -> date | None:
        return self._session_day

    # ------------------------------------------------------------------ sessions
    def start_session(self, day: date) -> None:
        """Snapshot equity as the session's starting point for `session_pnl()`.

        The same day again (a restart restored this session) keeps the snapshot taken at its
        first start, so today's P&L survives the restart.
        """
        self._changed()
        if day == self._session_day:
            return
        self._session_day = day
        self._session_start_equity = self.equity()

    # ------------------------------------------------------------------ persistence
    def applied(self, order_id: str) -> bool:
        """Whether a fill with this order id is already booked."""
        return order_id in self._applied

    def to_state(self) -> dict[str, Any]:
        """The books as a JSON-ready document (Decimals as strings: exact round-trip)."""
        return {
            "version": STATE_VERSION,
            "cash": str(self._cash),
            "realized": str(self._realized),
            "commissions": str(self._commissions),
            "applied": sorted(self._applied),
            "session_day": None if self._session_day is None else self._session_day.isoformat(),
            "session_start_equity": str(self._session_start_equity),
            "holdings": [_holding_state(h) for h in self._holdings.values()],
        }

    @classmethod
    def from_state(cls, doc: Mapping[str, Any]) -> Ledger:
        """Rebuild the books saved by `to_state`; raise ValueError naming what is malformed."""
        if doc.get("version") != STATE_VERSION:
            raise ValueError(f"ledger state version {doc.get('version')!r} is not {STATE_VERSION}")
        try:
            book = cls(Decimal(doc["cash"]))
            book._realized = Decimal(doc["realized"])
            book._commissions = Decimal(doc["commissions"])
            book._applied = {str(x) for x in doc["applied"]}
            day = doc["session_day"]
            book._session_day = None if day is None else date.fromisoformat(day)
            book._session_start_equity = Decimal(doc["session_start_equity"])
            for raw in doc["holdings"]:
                h = _holding_from_state(raw)
                book._holdings[h.position_id] = h
        except (KeyError, TypeError, ArithmeticError) as exc:
            raise ValueError(f"ledger state is malformed: {type(exc).__name__}: {exc}") from exc
        return book

    # ------------------------------------------------------------------ fills
    def close_problem(self, intent: SubmitOrder) -> str | None:
        """Why a CLOSE intent cannot close its position (None if it can)."""
        h = self._holdings.get(intent.position_id or "")
        if h is None:
            return f"position {intent.position_id} is not open"
        if intent.quantity > h.quantity:
            return f"closing {intent.quantity} of position {h.position_id} which holds {h.quantity}"
        want = {leg.symbol: -leg.ratio for leg in h.legs}
        got = {lg.symbol: (lg.ratio if lg.side is Side.BUY else -lg.ratio) for lg in intent.legs}
        if want != got:
            return f"legs do not reverse position {h.position_id}: need {want}, got {got}"
        return None

    def apply_fill(
        self,
        fill: OrderFilled,
        intent: SubmitOrder,
        exit_rules: Mapping[str, float] | None = None,
    ) -> None:
        """Book a fill of `intent` (idempotent per order id): open, or close all or part of it."""
        self._changed()
        if fill.order_id in self._applied:
            return
        if fill.intent_id != intent.intent_id:
            raise InvariantViolation(f"fill {fill.order_id} is not for intent {intent.intent_id}")
        notional = fill.net_price * M * fill.quantity
        if fill.effect is PositionEffect.OPEN:
            self._open(fill, intent, exit_rules)
        else:
            self._close(fill, intent)
        self._applied.add(fill.order_id)
        self._cash -= notional + fill.commission
        self._commissions += fill.commission

    def _open(
        self, fill: OrderFilled, intent: SubmitOrder, exit_rules: Mapping[str, float] | None
    ) -> None:
        if fill.position_id in self._holdings:
            raise InvariantViolation(f"position {fill.position_id} is already open")
        legs = tuple(
            PositionLeg(
                symbol=lg.symbol,
                is_call=lg.option_type is OptionType.CALL,
                strike=lg.strike,
                expiry=lg.expiry,
                ratio=lg.ratio if lg.side is Side.BUY else -lg.ratio,
            )
            for lg in intent.legs
        )
        prices = {lf.symbol: lf.price for lf in fill.legs}
        if set(prices) != {leg.symbol for leg in legs}:
            raise InvariantViolation(f"fill {fill.order_id} legs differ from its intent's legs")
        h = _Holding(
            position_id=fill.position_id,
            underlying=intent.underlying,
            strategy_type=intent.strategy_type or "custom",
            quantity=fill.quantity,
            legs=legs,
            entry_net_price=fill.net_price,
            opened_ns=fill.ts_ns,
            leg_marks=prices,  # marked at the fill until the next mark()
            exit_rules=dict(exit_rules or {}),
        )
        if h.profile_totals()[0] is None:
            raise InvariantViolation(f"position {h.position_id} would have undefined risk")
        self._holdings[h.position_id] = h

    def _close(self, fill: OrderFilled, intent: SubmitOrder) -> None:
        problem = self.close_problem(intent)
        if problem is not None:
            raise InvariantViolation(f"fill {fill.order_id}: {problem}")
        h = self._holdings[fill.position_id]
        # Closing at net c (signed like the entry) after entering at e: P&L = −(e + c) × 100 × q.
        self._realized += -(h.entry_net_price + fill.net_price) * M * fill.quantity
        h.quantity -= fill.quantity
        if h.quantity == 0:
            del self._holdings[h.position_id]

    def set_exit_rules(self, position_id: str, rules: Mapping[str, float]) -> None:
        self._changed()
        h = self._holdings.get(position_id)
        if h is None:
            raise KeyError(f"position {position_id} is not open")
        h.exit_rules = dict(rules)

    # ------------------------------------------------------------------ marks and expiry
    def mark(self, chain: ChainSnapshot) -> None:
        """Mark legs of positions on `chain.underlying` at their mids (legs without a market keep
        their previous mark)."""
        self._changed()
        for h in self._holdings.values():
            if h.underlying != chain.underlying:
                continue
            for leg in h.legs:
                mid = chain_mid(chain, leg.symbol)
                if mid is not None:
                    h.leg_marks[leg.symbol] = mid

    def settle_expired(
        self, day: date, settlement_prices: Mapping[str, float | Decimal]
    ) -> list[Settlement]:
        """Cash-settle every leg expiring on or before `day` at intrinsic value.

        Simplification: listed equity options are physically settled; the ledger books their
        intrinsic value in cash instead (as if the shares were sold at the settlement price).
        """
        self._changed()
        out: list[Settlement] = []
        for h in list(self._holdings.values()):
            expired = [leg for leg in h.legs if leg.expiry <= day]
            if not expired:
                continue
            if h.underlying not in settlement_prices:
                raise ValueError(f"settle_expired: no settlement price for {h.underlying}")
            raw = settlement_prices[h.underlying]
            spot = raw if isinstance(raw, Decimal) else Decimal(repr(float(raw)))
            out.append(self._settle(h, expired, spot))
        return out

    def _settle(self, h: _Holding, expired: list[PositionLeg], spot: Decimal) -> Settlement:
        value = ZERO
        for leg in expired:
            intrinsic = spot - leg.strike if leg.is_call else leg.strike - spot
            value += leg.ratio * max(intrinsic, ZERO)
        cash_flow = value * M * h.quantity
        self._cash += cash_flow
        closed = len(expired) == len(h.legs)
        realized = ZERO
        if closed:
            realized = (value - h.entry_net_price) * M * h.quantity
            self._realized += realized
            del self._holdings[h.position_id]
        else:
            # Front legs of a multi-expiry structure: their value leaves the cost basis.
            gone = {leg.symbol for leg in expired}
            h.legs = tuple(leg for leg in h.legs if leg.symbol not in gone)
            h.entry_net_price -= value
            for symbol in gone:
                del h.leg_marks[symbol]
        return Settlement(
            position_id=h.position_id,
            underlying=h.underlying,
            symbols=tuple(leg.symbol for leg in expired),
            settlement_price=spot,
            value_per_share=value,
            cash_flow=cash_flow,
            realized_pnl=realized,
            closed=closed,
        )

    # ------------------------------------------------------------------ exercise and assignment
    def apply_option_activity(
        self, kind: str, symbol: str, contracts: int, spot: Decimal, tag: str
    ) -> list[Settlement]:
        """Book a broker exercise (OPEXC), assignment (OPASN) or expiry (OPEXP) of `contracts`
        contracts of `symbol` against open positions (oldest first); return what was settled.

        OPASN takes short legs, OPEXC long legs, OPEXP either. Each leg leaves its position at
        intrinsic value at `spot` (zero for OPEXP), cash-settled like `settle_expired`; the stock
        the broker delivers is not held here (the runtime alerts the operator). A position holding
        more units than the activity covers is split first (the part hit gets id
        `<position_id>.<tag>`). If what remains would have undefined risk (a naked short), the
        whole position is settled at intrinsic. No position holding the symbol: an empty list.
        """
        self._changed()
        if kind not in ("OPASN", "OPEXC", "OPEXP") or contracts <= 0:
            raise ValueError(f"apply_option_activity: bad activity {kind} x{contracts}")
        remaining = contracts
        out: list[Settlement] = []
        for h in sorted(self._holdings.values(), key=lambda x: x.opened_ns):
            if remaining <= 0:
                break
            takes = self._activity_takes
            leg = next((lg for lg in h.legs if lg.symbol == symbol and takes(kind, lg)), None)
            if leg is None:
                continue
            per_unit = abs(leg.ratio)
            units = min(h.quantity, -(-remaining // per_unit))
            remaining -= units * per_unit
            hit = self._split_holding(h, units, f"{h.position_id}.{tag}")
            spot_for = None if kind == "OPEXP" else spot
            out.append(self._remove_legs(hit, [leg], spot_for))
            rest = self._holdings.get(hit.position_id)
            if rest is not None and rest.profile_totals()[0] is None:
                out.append(self._remove_legs(rest, list(rest.legs), spot))
        return out

    def _split_holding(self, h: _Holding, units: int, new_id: str) -> _Holding:
        """`units` of `h` as a holding of their own (h itself when it holds no more)."""
        if units >= h.quantity:
            return h
        part = _Holding(
            position_id=new_id,
            underlying=h.underlying,
            strategy_type=h.strategy_type,
            quantity=units,
            legs=h.legs,
            entry_net_price=h.entry_net_price,
            opened_ns=h.opened_ns,
            leg_marks=dict(h.leg_marks),
            exit_rules=dict(h.exit_rules),
        )
        h.quantity -= units
        self._holdings[new_id] = part
        return part

    def _remove_legs(
        self, h: _Holding, legs: list[PositionLeg], spot: Decimal | None
    ) -> Settlement:
        """Take `legs` out of `h` at intrinsic value at `spot` (None: worthless)."""
        value = ZERO
        if spot is not None:
            for leg in legs:
                intrinsic = spot - leg.strike if leg.is_call else leg.strike - spot
                value += leg.ratio * max(intrinsic, ZERO)
        cash_flow = value * M * h.quantity
        self._cash += cash_flow
        gone = {leg.symbol for leg in legs}
        closed = gone >= {leg.symbol for leg in h.legs}
        realized = ZERO
        if closed:
            realized = (value - h.entry_net_price) * M * h.quantity
            self._realized += realized
            del self._holdings[h.position_id]
        else:
            h.legs = tuple(leg for leg in h.legs if leg.symbol not in gone)
            h.entry_net_price -= value
            for symbol in gone:
                h.leg_marks.pop(symbol, None)
        return Settlement(
            position_id=h.position_id,
            underlying=h.underlying,
            symbols=tuple(sorted(gone)),
            settlement_price=ZERO if spot is None else spot,
            value_per_share=value,
            cash_flow=cash_flow,
            realized_pnl=realized,
            closed=closed,
        )

    @staticmethod
    def _activity_takes(kind: str, leg: PositionLeg) -> bool:
        """Whether an activity of `kind` hits `leg`: assignments take shorts, exercises longs."""
        if kind == "OPASN":
            return leg.ratio < 0
        if kind == "OPEXC":
            return leg.ratio > 0
        return True
