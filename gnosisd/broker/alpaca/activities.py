"""Option exercise, assignment and expiry activities (OPEXC, OPASN, OPEXP) from Alpaca.

`fetch_option_activities` reads /v2/account/activities off the event loop (alpaca-py 0.44 has no
call for it); `OptionActivityBook` remembers which activities were booked (idempotent by id) and
which contracts the ledger settled at the close, so a next-morning assignment is still recognised
as ours. Stock delivered by an exercise or assignment is not held by the ledger (docs/alpaca.md).
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from gnosisd.broker.alpaca.rest import TradingRest, classify
from gnosisd.broker.ledger import Ledger, Settlement
from gnosisd.core.enums import OptionType
from gnosisd.core.errors import InvalidSymbolError
from gnosisd.core.occ import OptionContract, parse_occ

ACTIVITY_TYPES = "OPASN,OPEXC,OPEXP"
MAX_REMEMBERED = 2000  # booked activity ids kept (newest); far more than a year of assignments
SETTLED_KEEP_DAYS = 14  # settled contracts are remembered this long for late activities


class ActivityKind(StrEnum):
    ASSIGNMENT = "OPASN"  # a short option was assigned
    EXERCISE = "OPEXC"  # a long option was exercised
    EXPIRY = "OPEXP"  # an option expired (worthless)


@dataclass(frozen=True, slots=True)
class OptionActivity:
    """One non-trade option activity as Alpaca reports it (contracts always positive)."""

    activity_id: str
    kind: ActivityKind
    symbol: str  # OCC
    contract: OptionContract
    contracts: int
    day: date | None
    net_amount: Decimal | None

    @property
    def delivers_stock(self) -> bool:
        return self.kind is not ActivityKind.EXPIRY

    def delivered_shares(self, held_long: bool) -> int:
        """Shares received (+) or delivered (−) by an exercise or assignment, 0 for an expiry.

        Exercising a long call or being assigned on a short put buys 100 shares a contract;
        a long put exercised or a short call assigned sells them.
        """
        if not self.delivers_stock:
            return 0
        buys = self.contract.option_type is OptionType.CALL
        if not held_long:
            buys = not buys
        shares = self.contracts * 100
        return shares if buys else -shares


class ActivityError(ValueError):
    """An activity record that cannot be read (it is skipped and logged)."""


def parse_activity(raw: Any) -> OptionActivity:
    """Translate one /v2/account/activities record; raise ActivityError if it is unusable."""
    if not isinstance(raw, dict):
        raise ActivityError(f"activity is not an object: {raw!r}")
    try:
        kind = ActivityKind(str(raw.get("activity_type", "")))
    except ValueError as exc:
        raise ActivityError(f"not an option activity: {raw.get('activity_type')!r}") from exc
    activity_id = raw.get("id")
    symbol = raw.get("symbol")
    if not isinstance(activity_id, str) or not activity_id:
        raise ActivityError(f"activity without an id: {raw!r}")
    if not isinstance(symbol, str):
        raise ActivityError(f"activity {activity_id} has no symbol")
    try:
        contract = parse_occ(symbol)
        qty = Decimal(str(raw.get("qty", "")))
    except (InvalidSymbolError, InvalidOperation) as exc:
        raise ActivityError(f"activity {activity_id}: {exc}") from exc
    if qty != qty.to_integral_value() or qty == 0:
        raise ActivityError(f"activity {activity_id}: qty {qty} is not a whole contract count")
    day = None
    if isinstance(raw.get("date"), str):
        try:
            day = date.fromisoformat(raw["date"][:10])
        except ValueError:
            day = None
    net = None
    try:
        net = Decimal(str(raw["net_amount"])) if raw.get("net_amount") is not None else None
    except InvalidOperation:
        net = None
    return OptionActivity(activity_id, kind, symbol, contract, int(abs(qty)), day, net)


async def fetch_option_activities(
    rest: TradingRest, after: datetime | None = None, page_size: int = 100
) -> list[Any]:
    """Raw OPASN/OPEXC/OPEXP activities (oldest first), paged; failures raise RestError."""
    client = rest.client
    params: dict[str, Any] = {
        "activity_types": ACTIVITY_TYPES,
        "direction": "asc",
        "page_size": page_size,
    }
    if after is not None:
        params["after"] = after.isoformat()
    out: list[Any] = []
    while True:
        get = functools.partial(client.get, "/account/activities", dict(params))
        try:
            raw = await asyncio.to_thread(get)
        except Exception as exc:
            raise classify(exc) from exc
        page = list(raw) if isinstance(raw, list) else []
        out.extend(page)
        last = page[-1] if page else None
        if len(page) < page_size or not isinstance(last, dict) or "id" not in last:
            return out
        params["page_token"] = last["id"]


@dataclass(slots=True)
class SettledContract:
    """Contracts of one OCC symbol the ledger settled at the close (signed: + long, − short)."""

    contracts: int
    day: date
    settlement_value: Decimal  # per share, Σ signed intrinsic the ledger booked


class OptionActivityBook:
    """Booked activity ids and the contracts settled at recent closes; saved across restarts."""

    def __init__(self) -> None:
        self._booked: dict[str, None] = {}  # insertion-ordered set
        self.settled: dict[str, SettledContract] = {}

    def booked(self, activity_id: str) -> bool:
        return activity_id in self._booked

    def mark_booked(self, activity_id: str) -> None:
        self._booked[activity_id] = None
        while len(self._booked) > MAX_REMEMBERED:
            del self._booked[next(iter(self._booked))]

    def note_settled(
        self, symbol: str, contracts: int, day: date, value_per_share: Decimal
    ) -> None:
        """Remember that the ledger settled `contracts` of `symbol` at `day`'s close."""
        prev = self.settled.get(symbol)
        if prev is not None and prev.day == day:
            prev.contracts += contracts
            return
        self.settled[symbol] = SettledContract(contracts, day, value_per_share)

    def prune(self, today: date) -> None:
        """Forget settled contracts older than SETTLED_KEEP_DAYS."""
        self.settled = {
            s: c for s, c in self.settled.items() if (today - c.day).days <= SETTLED_KEEP_DAYS
        }

    def to_state(self) -> dict[str, Any]:
        return {
            "booked": list(self._booked),
            "settled": {
                s: {
                    "contracts": c.contracts,
                    "day": c.day.isoformat(),
                    "value": str(c.settlement_value),
                }
                for s, c in self.settled.items()
            },
        }

    @classmethod
    def from_state(cls, doc: Any) -> OptionActivityBook:
        """Rebuild from `to_state()` output; anything malformed is dropped."""
        book = cls()
        if not isinstance(doc, dict):
            return book
        for activity_id in doc.get("booked") or []:
            if isinstance(activity_id, str):
                book.mark_booked(activity_id)
        settled = doc.get("settled")
        if isinstance(settled, dict):
            for symbol, c in settled.items():
                try:
                    book.settled[str(symbol)] = SettledContract(
                        int(c["contracts"]), date.fromisoformat(c["day"]), Decimal(c["value"])
                    )
                except (KeyError, TypeError, ValueError, InvalidOperation):
                    continue
        return book


@dataclass(frozen=True, slots=True)
class ActivityOutcome:
    """What booking one activity did.

    `status`: "booked" (open positions changed), "settled_at_close" (the ledger had already
    cash-settled the contract at the close), "not_ours" (no record of the contract), "duplicate".
    `delivered_shares`: stock the broker delivered (+ received, − delivered; 0 for an expiry).
    """

    activity: OptionActivity
    status: str
    settlements: tuple[Settlement, ...] = ()
    delivered_shares: int = 0
    note: str = ""


def book_activity(
    book: OptionActivityBook, ledger: Ledger, activity: OptionActivity, spot: Decimal | None
) -> ActivityOutcome:
    """Apply one activity to the ledger once (by id); `spot` prices an early assignment's leg.

    A contract still held leaves its positions at intrinsic value (`Ledger.apply_option_activity`;
    without a spot, at the strike: zero intrinsic). An OPASN means we were short, an OPEXC long.
    """
    if book.booked(activity.activity_id):
        return ActivityOutcome(activity, "duplicate")
    held_long = activity.kind is ActivityKind.EXERCISE
    shares = activity.delivered_shares(held_long)
    status, note = "not_ours", "no open position or recent settlement holds this contract"
    settlements: list[Settlement] = []
    held = any(leg.symbol == activity.symbol for p in ledger.positions() for leg in p.legs)
    settled = book.settled.get(activity.symbol)
    if held:
        price = spot if spot is not None else activity.contract.strike
        tag = f"{activity.kind.value.lower()}-{activity.activity_id[-8:]}"
        settlements = ledger.apply_option_activity(
            activity.kind.value, activity.symbol, activity.contracts, price, tag
        )
        if settlements:
            status, note = "booked", f"legs removed at intrinsic value (spot {price})"
        else:
            note = "held, but not on the side this activity applies to"
    elif settled is not None:
        status = "settled_at_close"
        note = f"the ledger cash-settled {settled.contracts} contracts at the {settled.day} close"
        if activity.kind is ActivityKind.EXPIRY and settled.settlement_value != 0:
            note += (
                f" at intrinsic {settled.settlement_value} a share, but the broker reports it "
                "expired worthless: reconcile the ledger's cash"
            )
    book.mark_booked(activity.activity_id)
    return ActivityOutcome(activity, status, tuple(settlements), shares, note)
