"""Start-up reconciliation: the broker's positions, open orders and recent fills against our books.

`reconcile()` is the synchronous core (plain data in, a verdict out); `fetch_snapshot()` reads the
broker over REST. gnosisd's orders are recognised by their client_order_id (`gn-<intent>-<n>`);
every other order is external: reported, never cancelled or booked. A position in a symbol the
ledger does not hold is external too. Anything that cannot be explained is a problem: the caller
refuses opening orders and says why (docs/alpaca.md, "Restart and reconciliation").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from gnosisd.broker.alpaca.orders import CLIENT_ID_PREFIX, client_order_id
from gnosisd.broker.alpaca.rest import TradingRest
from gnosisd.broker.alpaca.wire import TERMINAL, WireOrder
from gnosisd.core.views import Position

MAX_PROBLEMS_SHOWN = 3


@dataclass(frozen=True, slots=True)
class BrokerSnapshot:
    """What the broker says at start: positions (signed qty by symbol), orders, FILL activities."""

    positions: Mapping[str, int]
    open_orders: tuple[WireOrder, ...]
    recent_orders: tuple[WireOrder, ...]  # any status, to map fills to their orders
    fills: tuple[Mapping[str, Any], ...]
    equity: Decimal | None = None
    last_equity: Decimal | None = None

    @property
    def session_pnl(self) -> Decimal | None:
        """The broker's P&L since the last close: equity − last_equity."""
        if self.equity is None or self.last_equity is None:
            return None
        return self.equity - self.last_equity


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """The verdict: external orders and positions (left alone) and unexplained problems."""

    external_orders: tuple[WireOrder, ...] = ()
    external_positions: Mapping[str, int] = field(default_factory=dict)
    external_fills: int = 0
    our_open_orders: tuple[str, ...] = ()  # client_order_ids of our working orders at the broker
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    def reason(self) -> str:
        """One line for the halt reason and the CRITICAL log line."""
        shown = "; ".join(self.problems[:MAX_PROBLEMS_SHOWN])
        more = len(self.problems) - MAX_PROBLEMS_SHOWN
        return f"reconciliation failed: {shown}" + (f" (+{more} more)" if more > 0 else "")


def is_ours(cid: str) -> bool:
    """Whether a client_order_id has gnosisd's deterministic form (`gn-...-<attempt>`)."""
    return cid.startswith(f"{CLIENT_ID_PREFIX}-") and cid.rsplit("-", 1)[-1].isdigit()


def _intent_key(cid: str) -> str:
    return cid.rsplit("-", 1)[0]


def held_contracts(positions: Iterable[Position]) -> dict[str, int]:
    """Signed contracts per OCC symbol of the ledger's positions."""
    out: dict[str, int] = {}
    for p in positions:
        for leg in p.legs:
            out[leg.symbol] = out.get(leg.symbol, 0) + leg.ratio * p.quantity
    return {s: q for s, q in out.items() if q != 0}


def reconcile(
    snapshot: BrokerSnapshot,
    *,
    held: Mapping[str, int],
    in_flight: Mapping[str, int],
    known_intents: Iterable[str],
    working_intents: Iterable[str],
) -> Reconciliation:
    """Compare the broker with our books (after adopting our pending orders).

    `held`: the ledger's signed contracts per symbol; `in_flight`: contracts our still-working
    orders already filled (booked only when they finish); `known_intents`: every intent the saved
    state records as sent; `working_intents`: those whose orders are being worked now.
    """
    known = {_intent_key(client_order_id(i, 1)): i for i in known_intents}
    working = set(working_intents)
    problems: list[str] = []
    external: list[WireOrder] = []
    ours_open: list[str] = []
    for order in snapshot.open_orders:
        if order.status in TERMINAL:
            continue
        if not is_ours(order.client_order_id):
            external.append(order)
            continue
        ours_open.append(order.client_order_id)
        intent = known.get(_intent_key(order.client_order_id))
        if intent is None:
            problems.append(
                f"open order {order.client_order_id} was placed by gnosisd but is not in the "
                "saved state (state lost or from another gnosisd?)"
            )
        elif intent not in working:
            problems.append(
                f"open order {order.client_order_id} belongs to intent {intent}, "
                "which the saved state records as finished"
            )
    by_order_id: dict[str, str] = {}
    for order in (*snapshot.recent_orders, *snapshot.open_orders):
        by_order_id[order.id] = order.client_order_id
        for leg in order.legs or ():
            if leg.id is not None:
                by_order_id[leg.id] = order.client_order_id
    external_fills = 0
    for fill in snapshot.fills:
        cid = by_order_id.get(str(fill.get("order_id")))
        symbol = str(fill.get("symbol", ""))
        if cid is None:
            if symbol in held or symbol in in_flight:
                problems.append(
                    f"fill {fill.get('id')} in {symbol}, which gnosisd holds, is of an order "
                    "the broker did not list"
                )
            else:
                external_fills += 1
        elif not is_ours(cid):
            external_fills += 1
        elif _intent_key(cid) not in known:
            problems.append(f"fill of gnosisd order {cid} is not in the saved state")
    external_positions: dict[str, int] = {}
    for symbol in sorted({*held, *in_flight, *snapshot.positions}):
        ours = held.get(symbol, 0) + in_flight.get(symbol, 0)
        theirs = snapshot.positions.get(symbol, 0)
        if ours == theirs:
            continue
        if ours == 0:
            external_positions[symbol] = theirs
        else:
            problems.append(f"{symbol}: gnosisd holds {ours:+d}, the broker {theirs:+d}")
    return Reconciliation(
        external_orders=tuple(external),
        external_positions=external_positions,
        external_fills=external_fills,
        our_open_orders=tuple(ours_open),
        problems=tuple(problems),
    )


def _dec(value: Any) -> Decimal | None:
    try:
        return None if value in (None, "") else Decimal(str(value))
    except InvalidOperation:
        return None


def parse_positions(raw: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Signed quantity per symbol from /v2/positions (qty is signed; `side` as a fallback)."""
    out: dict[str, int] = {}
    for p in raw:
        qty = _dec(p.get("qty"))
        if qty is None or qty == 0:
            continue
        if qty > 0 and p.get("side") == "short":
            qty = -qty
        out[str(p["symbol"])] = int(qty)
    return out


async def fetch_snapshot(rest: TradingRest, since: datetime) -> BrokerSnapshot:
    """Read positions, open orders, orders and FILL activities since `since`, and the account.

    RestError propagates: without the broker's view nothing can be reconciled.
    """
    open_orders = await rest.open_orders()
    recent = await rest.orders(after=since)
    fills = await rest.fill_activities(since)
    account = await rest.account()
    positions = parse_positions(await rest.positions())  # last: closest to the comparison
    return BrokerSnapshot(
        positions=positions,
        open_orders=tuple(open_orders),
        recent_orders=tuple(recent),
        fills=tuple(fills),
        equity=_dec(account.get("equity")),
        last_equity=_dec(account.get("last_equity")),
    )
