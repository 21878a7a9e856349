"""Live mode: the Alpaca feed (and optionally the Alpaca broker) on the wall clock.

No lockstep: the feed publishes as data arrives, a calendar timer publishes SessionStarted /
SessionClosed, and the Alpaca broker's events come back through the bus (docs/alpaca.md).
At start the broker is reconciled with the restored books (pending intents adopted, external
orders and positions tagged, anything unexplained halts opening orders); the broker's own session
P&L (equity − last_equity) is polled and the ledger counts the worse of it and its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

import structlog

from gnosisd.broker.alpaca.activities import (
    SETTLED_KEEP_DAYS,
    ActivityOutcome,
    OptionActivityBook,
    book_activity,
)
from gnosisd.broker.alpaca.broker import AlpacaBroker
from gnosisd.broker.alpaca.config import AlpacaCredentials, AlpacaEndpoints
from gnosisd.broker.alpaca.reconcile import (
    BrokerSnapshot,
    Reconciliation,
    fetch_snapshot,
    held_contracts,
    reconcile,
)
from gnosisd.broker.alpaca.rest import RestError
from gnosisd.broker.alpaca.state import VENUE
from gnosisd.broker.base import BrokerEvent, order_id_for
from gnosisd.bus.events import (
    ChainSnapshot,
    OrderFilled,
    OrderUpdated,
    SessionClosed,
    SessionStarted,
    SubmitOrder,
)
from gnosisd.bus.topics import Topic
from gnosisd.core.enums import OrderStatus, PositionEffect, Side
from gnosisd.core.views import Position
from gnosisd.feeds.alpaca import AlpacaFeed, AlpacaFeedConfig, backfill_iv_history, source_for
from gnosisd.risk.killswitch import HALT_STATE
from gnosisd.runtime.logging import audit_logger
from gnosisd.runtime.records import fill_record, update_record
from gnosisd.store.ledger_state import SentIntent

if TYPE_CHECKING:
    from gnosisd.runtime.daemon import Daemon

log = structlog.get_logger("gnosisd.live")
STREAM_UP_WAIT_S = 10.0
CALENDAR_POLL_S = 30.0  # the calendar timer re-checks at least this often
ACTIVITY_STATE = "option_activities"  # state document: booked activity ids, settled contracts
_T = TypeVar("_T")
ACCOUNT_POLL_S = 30.0  # how often the broker's session P&L (equity − last_equity) is read
RECONCILE_LOOKBACK = timedelta(days=1)  # orders and fills read at start: the last day's
RECONCILE_TRIES = 3  # reads of the broker while adopted orders work (a fill may land mid-read)
RECONCILE_RETRY_S = 1.0
_FINAL = (OrderStatus.REJECTED, OrderStatus.CANCELED, OrderStatus.EXPIRED)


@dataclass(frozen=True)
class AlpacaConnection:
    """Where and as whom to reach Alpaca; `broker` False keeps the simulated broker."""

    endpoints: AlpacaEndpoints
    credentials: AlpacaCredentials
    broker: bool = True


class LiveSource:
    """The live-mode pieces of a Daemon: Alpaca feed, Alpaca broker, calendar timer."""

    def __init__(
        self,
        daemon: Daemon,
        connection: AlpacaConnection,
        sent: dict[str, SentIntent] | None = None,
        activities: dict[str, Any] | None = None,
    ) -> None:
        self.daemon = daemon
        d = daemon
        # Booked exercise/assignment activities, saved with the ledger (Daemon.save_books); a
        # state directory from before that kept them in their own document is still read.
        self.activity_book = OptionActivityBook.from_state(
            activities if activities is not None else d.state_store.load(ACTIVITY_STATE)
        )
        e = connection.endpoints
        config = AlpacaFeedConfig(
            symbols=tuple(d.options.symbols),
            api_key=connection.credentials.api_key,
            secret_key=connection.credentials.secret_key,
            trading_url=e.trading_url,
            data_url=e.data_url,
            data_stream_url=e.data_stream_url,
            chain_refresh_s=d.settings.runtime.chain_refresh_minutes * 60.0,
        )
        self.feed = AlpacaFeed(
            config, d.bus.publish, d.clock, validator=d.validator, expect_data=self.session_open
        )
        self.broker: AlpacaBroker | None = None
        if connection.broker:
            self.broker = AlpacaBroker(
                e,
                connection.credentials,
                self._on_broker_event,
                d.clock,
                commission_per_contract=Decimal(str(d.settings.execution.commission_per_contract)),
            )
        # Approved intents sent to Alpaca, with the exit rules of their idea (ledger booking);
        # restored from the saved books after a restart, saved with the ledger on every change.
        self.sent: dict[str, SentIntent] = dict(sent or {})
        self.reconciliation: Reconciliation | None = None
        self._adopted: set[str] = set()  # intents of a previous run whose outcome is still due
        self.broker_pnl: Decimal | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._session_day: date | None = (
            None  # the date of the session announced and not yet closed
        )

    @property
    def is_live(self) -> bool:
        return self.broker is not None and self.broker.is_live

    def session_open(self) -> bool:
        """Whether the regular session is open now (market data is expected)."""
        return self.daemon.calendar.is_open(self.daemon.clock.now())

    # ------------------------------------------------------------------ lifecycle
    async def start(self, tg: asyncio.TaskGroup) -> None:
        """Start the broker's trade_updates (wait for it) and reconcile, then the feed and the
        calendar timer: no market data, so no decision or order, before the books agree."""
        if self.broker is not None:
            self._tasks.append(tg.create_task(self.broker.run()))
            if not await self.broker.wait_stream_up(STREAM_UP_WAIT_S):
                log.error(
                    "trade_updates not connected at start: opening orders are refused until it is"
                )
            await self.reconcile()
            self._tasks.append(tg.create_task(self._poll_account()))
        # IV history backfill from the broker's daily option bars (volatility.iv_backfill: broker;
        # feeds/alpaca/iv_history.py), after the start-up reconciliation: REST off the loop,
        # merged on it, never fatal.
        self._tasks.append(tg.create_task(self._backfill_iv_history()))
        self._tasks.append(tg.create_task(self.feed.run()))
        self._tasks.append(tg.create_task(self._calendar()))

    async def _backfill_iv_history(self) -> None:
        d = self.daemon
        engines = {s: a.volatility for s, a in d.analytics.items()}
        today = d.calendar.session_day(d.clock.now())
        await backfill_iv_history(lambda: source_for(self.feed.config), engines, today)

    async def run(self) -> None:
        """Wait for a stop request (the feed and broker run as tasks)."""
        await self.daemon.stop_requested()

    async def stop(self) -> None:
        """Cancel working orders and stop the broker, then stop the feed and the timer."""
        if self.broker is not None:
            await self.broker.aclose(
                cancel_working=True, within_s=self.daemon.settings.runtime.shutdown_timeout_seconds
            )
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks)
        dropped = self.daemon.summary.dropped
        for reason, n in self.feed.dropped.items():  # includes structural drops (`malformed`)
            dropped[reason] = max(dropped[reason], n)

    # ------------------------------------------------------------------ calendar
    async def _calendar(self) -> None:
        """Publish SessionStarted at the open and SessionClosed at the close, by the wall clock."""
        d = self.daemon
        while True:
            now = d.clock.now()
            day = d.calendar.session_day(now)
            wait_s = CALENDAR_POLL_S
            if d.calendar.is_session(day):
                session = d.calendar.session(day)
                if self._session_day is None and session.open <= now < session.close:
                    self._session_day = day
                    d.summary.sessions.append(day)
                    await d.bus.publish(Topic.CONTROL, SessionStarted(d.clock.now_ns(), day))
                    log.info("session started", day=day.isoformat())
                elif self._session_day is not None and now >= session.close:
                    await self._close_session()
                if now < session.open:
                    wait_s = min(wait_s, (session.open - now).total_seconds())
                elif now < session.close:
                    wait_s = min(wait_s, (session.close - now).total_seconds())
            elif self._session_day is not None:
                await self._close_session()
            await asyncio.sleep(max(0.05, wait_s))

    async def _close_session(self) -> None:
        d = self.daemon
        day = self._session_day
        if day is None:
            return
        self._session_day = None
        settlement = {s: spot for s in d.options.symbols if (spot := d.market.spot(s)) is not None}
        await d.bus.publish(Topic.CONTROL, SessionClosed(d.clock.now_ns(), day, settlement))

    # ------------------------------------------------------------------ orders
    def stream_down(self) -> bool:
        """True when orders go to Alpaca and trade_updates is down (no new opening orders)."""
        return self.broker is not None and not self.broker.stream_up

    async def submit(
        self,
        intent: SubmitOrder,
        chain: ChainSnapshot,
        exit_rules: dict[str, float] | None,
        record: dict[str, Any] | None = None,
    ) -> None:
        """Send an approved intent to Alpaca; its events come back through the bus.

        The intent is saved before the POST (write-ahead): a crash right after it leaves a record
        that the restart adopts. An intent id already sent is refused, never posted twice, and so
        is a close of a position whose close is still working (e.g. adopted after a restart,
        which the position manager does not know about).
        """
        assert self.broker is not None
        problem = self._send_problem(intent)
        if problem is not None:
            log.warning("intent refused before the broker", intent_id=intent.intent_id, why=problem)
            await self.daemon.bus.publish(
                Topic.ORDER_UPDATES,
                OrderUpdated(
                    order_id=order_id_for(intent.intent_id, VENUE),
                    intent_id=intent.intent_id,
                    underlying=intent.underlying,
                    ts_ns=self.daemon.clock.now_ns(),
                    status=OrderStatus.REJECTED,
                    message=problem,
                ),
            )
            return
        self.sent[intent.intent_id] = SentIntent(intent, exit_rules, record=record)
        self.daemon.save_books()
        await self.broker.submit(intent, chain, self.daemon.clock.now_ns())
        await self.pin()

    def _send_problem(self, intent: SubmitOrder) -> str | None:
        if intent.intent_id in self.sent:
            return f"duplicate intent {intent.intent_id}: already sent"
        if intent.effect is PositionEffect.CLOSE and intent.position_id is not None:
            for s in self.sent.values():
                if (
                    not s.done
                    and s.intent.effect is PositionEffect.CLOSE
                    and s.intent.position_id == intent.position_id
                ):
                    return (
                        f"position {intent.position_id} already has a close working "
                        f"({s.intent.intent_id})"
                    )
        return None

    async def cancel_all(self, reason: str) -> None:
        if self.broker is not None:
            await self.broker.cancel_all(reason)

    async def _on_broker_event(self, event: BrokerEvent) -> None:
        d = self.daemon
        sent = self.sent.get(event.intent_id)
        if isinstance(event, OrderFilled):
            if sent is None:
                log.error("fill of an unknown intent not booked", intent_id=event.intent_id)
            else:
                rules = sent.exit_rules if event.effect is PositionEffect.OPEN else None
                d.ledger.apply_fill(event, sent.intent, rules)
                sent.done = True
                d.save_books()  # the booking and "done" land together, before anything else
                if event.intent_id in self._adopted:
                    self._adopted.discard(event.intent_id)
                    d.journal_adopted(sent.intent, sent.record, fill_record(event))
            await d.bus.publish(Topic.FILLS, event)
            await self.pin()
        else:
            if sent is not None and event.status in _FINAL and not sent.done:
                sent.done = True
                d.save_books()
                if event.intent_id in self._adopted:
                    self._adopted.discard(event.intent_id)
                    d.journal_adopted(sent.intent, sent.record, update_record(event))
            await d.bus.publish(Topic.ORDER_UPDATES, event)

    async def pin(self) -> None:
        """Stream quotes for the legs of open positions and working orders."""
        symbols = {leg.symbol for p in self.daemon.ledger.positions() for leg in p.legs}
        if self.broker is not None:
            for intent_id in self.broker.working():
                sent = self.sent.get(intent_id)
                if sent is not None:
                    symbols.update(leg.symbol for leg in sent.intent.legs)
        await self.feed.pin_option_symbols(sorted(symbols))

    # ------------------------------------------------------------------ restart
    async def reconcile(self) -> Reconciliation | None:
        """Adopt the intents a previous run left working, then compare the broker with the books.

        External orders and positions are logged and audited, never touched. An unexplained
        difference, or a broker that cannot be read, latches HALTED with the reason (opening
        orders refused, closes allowed; `gnosisd resume` after checking).
        """
        d = self.daemon
        broker = self.broker
        if broker is None:
            return None
        audit = audit_logger()
        now_ns = d.clock.now_ns()
        pending = [s.intent for s in self.sent.values() if not s.done]
        self._adopted.update(i.intent_id for i in pending)
        try:
            for intent in pending:
                found = await broker.adopt(intent, now_ns)
                log.warning(
                    "intent of a previous run adopted" if found else "intent was never placed",
                    intent_id=intent.intent_id,
                )
            # Exercise, assignment or expiry while we were down moved positions: book them first.
            await self.book_option_activities("start-up reconciliation")
            for tries_left in range(RECONCILE_TRIES - 1, -1, -1):
                snapshot = await fetch_snapshot(broker.rest, d.clock.now() - RECONCILE_LOOKBACK)
                result = self._compare(snapshot)
                # An adopted order filling while we read can make one read disagree: read again.
                if result.ok or not broker.working() or tries_left == 0:
                    break
                log.warning("reconciliation disagrees while orders work; reading again")
                await asyncio.sleep(RECONCILE_RETRY_S)
        except RestError as err:
            reason = f"reconciliation failed: the broker could not be read: {err}"
            log.critical(reason)
            self._refuse(reason)
            return None
        self._observe_pnl(snapshot.session_pnl)
        self.reconciliation = result
        for order in result.external_orders:
            broker.book.external.add(order.id)
            audit.warning(
                "external order: left alone",
                order_id=order.id,
                client_order_id=order.client_order_id,
                symbol=order.symbol or ",".join(lg.symbol for lg in order.legs or ()),
                status=order.status,
            )
        for symbol, qty in result.external_positions.items():
            audit.warning("external position: ignored", symbol=symbol, qty=qty)
        fields = {
            "adopted": broker.working(),
            "positions": len(d.ledger.positions()),
            "external_orders": len(result.external_orders),
            "external_positions": len(result.external_positions),
            "external_fills": result.external_fills,
            "broker_session_pnl": None if self.broker_pnl is None else str(self.broker_pnl),
        }
        if result.ok:
            log.info("reconciled with the broker", **fields)
            audit.info("reconciled with the broker", **fields)
        else:
            reason = result.reason()
            log.critical(reason, problems=list(result.problems), **fields)
            audit.critical(reason, problems=list(result.problems), **fields)
            self._refuse(reason)
        d.save_books()
        await self.pin()
        return result

    async def recheck(self) -> str | None:
        """Before an operator resume after a failed reconciliation, read the broker and compare
        again: None if the books now agree (or never disagreed), else why they still do (the
        caller keeps the halt: gnosisd never trades on books it knows are wrong)."""
        broker = self.broker
        if broker is None or (self.reconciliation is not None and self.reconciliation.ok):
            return None
        d = self.daemon
        try:
            await self.book_option_activities("resume")
            for tries_left in range(RECONCILE_TRIES - 1, -1, -1):
                snapshot = await fetch_snapshot(broker.rest, d.clock.now() - RECONCILE_LOOKBACK)
                result = self._compare(snapshot)
                if result.ok or not broker.working() or tries_left == 0:
                    break
                await asyncio.sleep(RECONCILE_RETRY_S)
        except RestError as err:
            return f"reconciliation failed: the broker could not be read: {err}"
        self._observe_pnl(snapshot.session_pnl)
        self.reconciliation = result
        if result.ok:
            log.info("reconciled with the broker again: resume allowed")
            audit_logger().info("reconciled with the broker again: resume allowed")
            return None
        return result.reason()

    def _compare(self, snapshot: BrokerSnapshot) -> Reconciliation:
        """The broker's snapshot against the ledger plus what our working orders filled so far."""
        assert self.broker is not None
        in_flight: dict[str, int] = {}
        for iid in self.broker.working():
            ex = self.broker.execution(iid)
            assert ex is not None
            for leg in ex.intent.legs:
                sign = 1 if leg.side is Side.BUY else -1
                qty = sum(a.leg_fills.get(leg.symbol, (0, Decimal(0)))[0] for a in ex.attempts)
                if qty:
                    in_flight[leg.symbol] = in_flight.get(leg.symbol, 0) + sign * qty
        return reconcile(
            snapshot,
            held=held_contracts(self.daemon.ledger.positions()),
            in_flight=in_flight,
            known_intents=self.sent,
            working_intents=self.broker.working(),
        )

    def _refuse(self, reason: str) -> None:
        """Latch HALTED with `reason`, keeping the reason of a halt already saved."""
        prior = self.daemon.state_store.load(HALT_STATE)
        if prior is not None:
            reason = f"{reason} (halted before: {prior.get('reason', 'halt')})"
        self.daemon.request_halt(reason)

    def _observe_pnl(self, pnl: Decimal | None) -> None:
        self.broker_pnl = pnl
        self.daemon.ledger.observe_broker_pnl(pnl)

    async def _poll_account(self) -> None:
        """Read the broker's session P&L (equity − last_equity) every ACCOUNT_POLL_S."""
        assert self.broker is not None
        while True:
            await asyncio.sleep(ACCOUNT_POLL_S)
            try:
                account = await self.broker.rest.account()
                equity = Decimal(str(account["equity"]))
                last = Decimal(str(account["last_equity"]))
            except (RestError, KeyError, ArithmeticError) as err:
                log.warning("account poll failed", error=str(err))
                continue
            self._observe_pnl(equity - last)

    # ------------------------------------------------------------------ broker-side halt
    def suspend_at_broker(self, suspended: bool, reason: str) -> asyncio.Task[bool] | None:
        """Set the Alpaca account's `suspend_trade` in the background (off the loop, retried).

        A failure is logged CRITICAL; the local halt holds either way (docs/risk.md).
        """
        if self.broker is None:
            return None
        self.daemon.audit.warning(
            "broker-side trading suspension requested", suspend_trade=suspended, reason=reason
        )
        return self._background(self._suspend(suspended, reason))

    async def _suspend(self, suspended: bool, reason: str) -> bool:
        assert self.broker is not None
        ok = await self.broker.set_trade_suspension(suspended)
        audit = self.daemon.audit
        if ok:
            audit.warning("broker-side trading suspension set", suspend_trade=suspended)
        else:
            audit.critical(
                "broker-side trading suspension NOT set; the local halt still holds",
                suspend_trade=suspended,
                reason=reason,
            )
        return ok

    def _background(self, work: Coroutine[Any, Any, _T]) -> asyncio.Task[_T]:
        task = asyncio.get_running_loop().create_task(work)
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)
        return task

    @property
    def _side_tasks(self) -> set[asyncio.Task[Any]]:
        """Background tasks of the methods below (kept referenced until they end)."""
        tasks: set[asyncio.Task[Any]] | None = getattr(self, "_side_tasks_set", None)
        if tasks is None:
            tasks = set()
            self._side_tasks_set = tasks
        return tasks

    # ------------------------------------------------------------------ exercise and assignment
    def note_settled(
        self, day: date, before: list[Position], settlement: Mapping[str, float | Decimal]
    ) -> None:
        """Remember the contracts the ledger cash-settled at `day`'s close (from the positions
        held just before), so a later OPASN/OPEXC for them is recognised as ours."""
        if self.broker is None:
            return
        book = self.activity_book
        for p in before:
            raw = settlement.get(p.underlying)
            if raw is None:
                continue
            spot = raw if isinstance(raw, Decimal) else Decimal(repr(float(raw)))
            for leg in p.legs:
                if leg.expiry > day:
                    continue
                intrinsic = spot - leg.strike if leg.is_call else leg.strike - spot
                value = leg.ratio * max(intrinsic, Decimal(0))
                book.note_settled(leg.symbol, leg.ratio * p.quantity, day, value)
        book.prune(day)
        self.daemon.save_books()  # with the settled ledger, in one atomic write

    def sync_option_activities(self, why: str) -> asyncio.Task[list[ActivityOutcome]] | None:
        """Poll exercise/assignment/expiry activities in the background and book new ones."""
        if self.broker is None:
            return None
        return self._background(self.book_option_activities(why))

    async def book_option_activities(self, why: str = "") -> list[ActivityOutcome]:
        """Fetch OPASN/OPEXC/OPEXP activities and book each new one into the ledger once."""
        if self.broker is None:
            return []
        d = self.daemon
        since = d.clock.now() - timedelta(days=SETTLED_KEEP_DAYS)
        try:
            activities = await self.broker.option_activities(since)
        except RestError as err:
            log.error("option activities not fetched", error=str(err), why=why)
            return []
        # No await from here on: the activity book and the ledger change and are saved together.
        book = self.activity_book
        outcomes: list[ActivityOutcome] = []
        closing = {
            leg.symbol
            for p in d.ledger.positions()
            if p.position_id in d.positions.pending
            for leg in p.legs
        }
        for activity in activities:
            if book.booked(activity.activity_id):
                continue
            if activity.symbol in closing:
                # A close of that position is working: its fill must still match the ledger's
                # legs, so the activity waits for the next poll.
                log.warning("option activity deferred: a close is working", symbol=activity.symbol)
                continue
            spot = d.market.spot(activity.contract.underlying)
            price = None if spot is None else Decimal(repr(float(spot)))
            outcome = book_activity(book, d.ledger, activity, price)
            self._audit_activity(outcome)
            outcomes.append(outcome)
        if outcomes:
            d.save_books()
        log.info("option activities checked", why=why, new=len(outcomes))
        return outcomes

    def _audit_activity(self, outcome: ActivityOutcome) -> None:
        a = outcome.activity
        audit = self.daemon.audit
        fields: dict[str, Any] = {
            "activity_id": a.activity_id,
            "activity_type": a.kind.value,
            "symbol": a.symbol,
            "contracts": a.contracts,
            "status": outcome.status,
            "note": outcome.note,
            "positions": [s.position_id for s in outcome.settlements],
            "cash_flow": str(sum((s.cash_flow for s in outcome.settlements), Decimal(0))),
        }
        if outcome.status == "not_ours":
            audit.warning("option activity for a contract gnosisd does not hold", **fields)
        else:
            audit.warning("option activity booked", **fields)
        if outcome.delivered_shares and outcome.status != "not_ours":
            message = "stock delivered by option exercise/assignment: operator action required"
            details = {
                "activity_id": a.activity_id,
                "underlying": a.contract.underlying,
                "shares": outcome.delivered_shares,
                "strike": str(a.contract.strike),
                "action": "close or keep the stock position at the broker; gnosisd does not "
                "hold or mark stock (docs/alpaca.md)",
            }
            audit.error(message, **details)
            log.error(message, **details)
