"""The live books saved for restarts: the ledger's document and the order intents sent to the broker.

One state document (`state/ledger.json`, written through StateStore: temp file, fsync, rename) holds
both, so a crash leaves the books and the record of what was sent consistent with each other. An
intent is recorded *before* its first POST (write-ahead) and marked done once its fill is booked or
its order ended; a restart adopts the pending ones instead of sending them again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from gnosisd.bus.events import OrderLeg, SubmitOrder
from gnosisd.core.enums import OptionType, PositionEffect, Side
from gnosisd.store.state import StateStore

LEDGER_STATE = "ledger"
VERSION = 1
KEEP_DONE_NS = 4 * 24 * 3600 * 10**9  # done intents are remembered ~4 days (duplicates, audits)


@dataclass(slots=True)
class SentIntent:
    """An approved intent handed to the broker, with its idea's exit rules and its orders-journal
    record (the guard's decision), so a restart can journal the outcome of an adopted order."""

    intent: SubmitOrder
    exit_rules: dict[str, float] | None = None
    done: bool = False
    record: dict[str, Any] | None = None


@dataclass(slots=True)
class LiveBooks:
    """What a restart restores: the ledger's document (broker.ledger.Ledger.to_state) and the
    intents sent to the broker by intent id."""

    ledger: dict[str, Any] | None = None
    sent: dict[str, SentIntent] = field(default_factory=dict)
    # Exercise/assignment activities already booked (broker.alpaca.activities.OptionActivityBook
    # state): in the same atomic document as the ledger they changed, so a crash cannot leave
    # one without the other.
    activities: dict[str, Any] | None = None
    # The position manager's high-water marks (trailing/breakeven stops) by position id.
    high_water: dict[str, str] = field(default_factory=dict)


def intent_to_state(intent: SubmitOrder) -> dict[str, Any]:
    """A SubmitOrder as JSON-ready data (Decimals as strings)."""
    return {
        "intent_id": intent.intent_id,
        "underlying": intent.underlying,
        "ts_ns": intent.ts_ns,
        "effect": intent.effect.value,
        "legs": [
            {
                "symbol": lg.symbol,
                "side": lg.side.value,
                "ratio": lg.ratio,
                "option_type": lg.option_type.value,
                "strike": str(lg.strike),
                "expiry": lg.expiry.isoformat(),
            }
            for lg in intent.legs
        ],
        "quantity": intent.quantity,
        "limit_price": str(intent.limit_price),
        "idea_id": intent.idea_id,
        "position_id": intent.position_id,
        "exit_reason": intent.exit_reason,
        "strategy_type": intent.strategy_type,
    }


def intent_from_state(raw: Mapping[str, Any]) -> SubmitOrder:
    """The SubmitOrder saved by `intent_to_state`."""
    return SubmitOrder(
        intent_id=str(raw["intent_id"]),
        underlying=str(raw["underlying"]),
        ts_ns=int(raw["ts_ns"]),
        effect=PositionEffect(raw["effect"]),
        legs=tuple(
            OrderLeg(
                symbol=str(lg["symbol"]),
                side=Side(lg["side"]),
                ratio=int(lg["ratio"]),
                option_type=OptionType(lg["option_type"]),
                strike=Decimal(lg["strike"]),
                expiry=date.fromisoformat(lg["expiry"]),
            )
            for lg in raw["legs"]
        ),
        quantity=int(raw["quantity"]),
        limit_price=Decimal(raw["limit_price"]),
        idea_id=raw.get("idea_id"),
        position_id=raw.get("position_id"),
        exit_reason=raw.get("exit_reason"),
        strategy_type=raw.get("strategy_type"),
    )


class LiveBooksStore:
    """Save and load LiveBooks under a StateStore (`ledger.json`)."""

    def __init__(self, store: StateStore) -> None:
        self.store = store

    @property
    def exists(self) -> bool:
        return self.store.path(LEDGER_STATE).exists()

    def save(self, books: LiveBooks, now_ns: int) -> None:
        """Replace the document atomically; done intents older than KEEP_DONE_NS are dropped."""
        sent = {
            iid: {
                "intent": intent_to_state(s.intent),
                "exit_rules": s.exit_rules,
                "done": s.done,
                "record": s.record,
            }
            for iid, s in books.sent.items()
            if not (s.done and now_ns - s.intent.ts_ns > KEEP_DONE_NS)
        }
        self.store.save(
            LEDGER_STATE,
            {
                "version": VERSION,
                "ledger": books.ledger,
                "sent": sent,
                "option_activities": books.activities,
                "high_water": books.high_water,
            },
        )

    def load(self) -> LiveBooks | None:
        """The saved books, None on a first start; ValueError if the document is malformed."""
        doc = self.store.load(LEDGER_STATE)
        if doc is None:
            return None
        if doc.get("version") != VERSION:
            raise ValueError(
                f"{self.store.path(LEDGER_STATE)}: version {doc.get('version')!r} is not {VERSION}"
            )
        try:
            sent = {
                str(iid): SentIntent(
                    intent=intent_from_state(raw["intent"]),
                    exit_rules=(
                        None
                        if raw.get("exit_rules") is None
                        else {str(k): float(v) for k, v in raw["exit_rules"].items()}
                    ),
                    done=bool(raw.get("done", False)),
                    record=dict(raw["record"]) if isinstance(raw.get("record"), dict) else None,
                )
                for iid, raw in (doc.get("sent") or {}).items()
            }
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            raise ValueError(
                f"{self.store.path(LEDGER_STATE)}: a sent intent is malformed: {exc}"
            ) from exc
        ledger = doc.get("ledger")
        activities = doc.get("option_activities")
        high_water = doc.get("high_water") or {}
        try:
            marks = {str(k): str(Decimal(str(v))) for k, v in dict(high_water).items()}
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise ValueError(
                f"{self.store.path(LEDGER_STATE)}: high_water is malformed: {exc}"
            ) from exc
        return LiveBooks(
            ledger=dict(ledger) if isinstance(ledger, dict) else None,
            sent=sent,
            activities=dict(activities) if isinstance(activities, dict) else None,
            high_water=marks,
        )
