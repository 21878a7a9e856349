"""AlpacaBroker: approved intents become Alpaca orders, worked by the execution policy.

The async shell around the synchronous order state machine (`state.py`): REST calls off the loop,
ambiguous outcomes resolved by looking the order up by client_order_id (never assumed rejected),
one working attempt per intent at a time, trade_updates applied as they come and caught up over
REST after every reconnect. While trade_updates is down no opening order is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from decimal import Decimal
from typing import Any

import structlog

from gnosisd.broker.alpaca.activities import (
    ActivityError,
    OptionActivity,
    fetch_option_activities,
    parse_activity,
)
from gnosisd.broker.alpaca.config import AlpacaCredentials, AlpacaEndpoints
from gnosisd.broker.alpaca.orders import client_order_id, order_problem, order_request
from gnosisd.broker.alpaca.policy import ExecutionPolicy, Ladder, price_ladder
from gnosisd.broker.alpaca.rest import Failure, RestError, TradingRest, classify
from gnosisd.broker.alpaca.state import (
    NOT_PLACED,
    UNKNOWN,
    UNSENT,
    VENUE,
    Attempt,
    Execution,
    OrderBook,
)
from gnosisd.broker.alpaca.stream import TradingStreamSupervisor
from gnosisd.broker.alpaca.wire import WireError, WireOrder, parse_trade_update
from gnosisd.broker.base import BrokerEvent, order_id_for
from gnosisd.bus.events import ChainSnapshot, OrderUpdated, SubmitOrder
from gnosisd.core.clock import Clock
from gnosisd.core.enums import OrderStatus, PositionEffect
from gnosisd.core.reconnect import Backoff

log = structlog.get_logger("gnosisd.broker.alpaca")
EventSink = Callable[[BrokerEvent], Awaitable[None]]
MAX_RETRY_S = 30.0


class _Unresolved(Exception):
    """An order's fate could not be learned before the deadline."""


class AlpacaBroker:
    """The Alpaca broker task. `run()` keeps trade_updates up; `submit()` places an intent.

    Every event (including immediate rejections) is delivered through `on_event`, in the order it
    happened; `submit()` returns an empty list once the first attempt is placed or refused.
    """

    def __init__(
        self,
        endpoints: AlpacaEndpoints,
        credentials: AlpacaCredentials,
        on_event: EventSink,
        clock: Clock,
        *,
        policy: ExecutionPolicy | None = None,
        commission_per_contract: Decimal = Decimal(0),
        rest: TradingRest | None = None,
        rest_timeout_s: float = 10.0,
        stream_backoff: Backoff | None = None,
        submit_resolve_s: float = 30.0,
    ) -> None:
        self._endpoints = endpoints
        self._on_event = on_event
        self._clock = clock
        self.policy = policy or ExecutionPolicy()
        self._commission = Decimal(commission_per_contract)
        self.rest = rest or TradingRest(endpoints, credentials, rest_timeout_s)
        self.book = OrderBook()
        self._changed: dict[str, asyncio.Event] = {}
        self._halt: dict[str, str] = {}  # intent id -> why its walk was stopped
        self._walkers: dict[str, asyncio.Task[None]] = {}
        self._submit_resolve_s = submit_resolve_s
        self.counters: Counter[str] = Counter()
        self.stream = TradingStreamSupervisor(
            endpoints, credentials, self._on_message, self.catch_up, stream_backoff
        )

    # ------------------------------------------------------------------ status
    @property
    def is_live(self) -> bool:
        """True for the live (real-money) endpoint; the risk guard's live gate applies."""
        return self._endpoints.is_live

    @property
    def stream_up(self) -> bool:
        """True while trade_updates is connected (opening orders need it)."""
        return self.stream.up

    def execution(self, intent_id: str) -> Execution | None:
        return self.book.executions.get(intent_id)

    def working(self) -> list[str]:
        """Intent ids with an order still being worked."""
        return [e.intent.intent_id for e in self.book.working()]

    # ------------------------------------------------------------------ lifecycle
    async def run(self) -> None:
        """Keep the trade_updates stream up until cancelled (run it as a supervised task)."""
        await self.stream.run()

    async def wait_stream_up(self, within_s: float) -> bool:
        """Wait until trade_updates is connected; False if it is not within `within_s`."""
        try:
            await asyncio.wait_for(self.stream.up_event.wait(), within_s)
        except TimeoutError:
            return False
        return True

    async def aclose(self, cancel_working: bool = False, within_s: float = 10.0) -> None:
        """Stop the walks (the last call on a broker); with `cancel_working`, cancel first.

        Without it, orders stay working at Alpaca (day orders) and the next start adopts them
        when the same intent is submitted again (deterministic client_order_id).
        """
        if cancel_working:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.cancel_all("shutdown"), within_s)
        tasks = list(self._walkers.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=within_s)
        self.rest.close()

    # ------------------------------------------------------------------ submit
    async def submit(
        self, intent: SubmitOrder, chain: ChainSnapshot, ts_ns: int
    ) -> list[BrokerEvent]:
        """Place an approved intent as one order (mleg for 2-4 legs) and start working it.

        Returns once the first attempt is placed, refused, or its outcome is being resolved in the
        background; every event goes through `on_event` (the returned list is always empty).
        """
        if intent.intent_id in self.book.executions:
            await self._reject(intent, f"duplicate intent {intent.intent_id}: already sent")
            return []
        problem = order_problem(intent)
        if problem is None and intent.effect is PositionEffect.OPEN and not self.stream_up:
            problem = "trade_updates stream is down: no new opening orders until it is back"
        ladder = price_ladder(intent, chain, self.policy) if problem is None else problem
        if isinstance(ladder, str):
            await self._reject(intent, ladder)
            return []
        execution = Execution(intent, ladder, ts_ns, self._commission)
        self.book.add(execution)
        self._changed[intent.intent_id] = asyncio.Event()
        log.info(
            "alpaca order working",
            intent_id=intent.intent_id,
            mid=str(ladder.mid),
            natural=str(ladder.natural),
            prices=[str(p) for p in ladder.prices],
        )
        placed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        _ = self._track(intent.intent_id, self._work(execution, placed))
        await asyncio.shield(placed)
        return []

    async def adopt(self, intent: SubmitOrder, ts_ns: int) -> bool:
        """Re-attach an intent a previous run sent (start-up after a restart); never POSTs.

        Its attempts are looked up by client_order_id and what happened while we were down is
        applied (fills come out as events). A still-working order is worked on at its own price
        until the policy's timeout, then cancelled. False: the broker never got it (the intent
        ends CANCELED). RestError: the broker could not be asked.
        """
        iid = intent.intent_id
        if iid in self.book.executions:
            return True
        price = intent.limit_price
        hold = Ladder(mid=price, natural=price, cap=price, prices=(price,))
        ex = Execution(intent, hold, ts_ns, self._commission)
        try:
            first = await self._lookup(client_order_id(iid, 1), self._submit_resolve_s)
        except _Unresolved:
            raise RestError(Failure.AMBIGUOUS, None, f"cannot look up intent {iid}") from None
        self.book.add(ex)
        self._changed[iid] = asyncio.Event()
        if first is None:
            message = "not placed before the restart: not sent now"
            await self._emit(ex.finish(self._clock.now_ns(), OrderStatus.CANCELED, message))
            return False
        step = await self._recover(ex)
        if not ex.done:
            _ = self._track(iid, self._walk(ex, step or 0))
        return True

    def _track(self, intent_id: str, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run an intent's task; it is forgotten when it ends."""
        task = asyncio.create_task(work)
        self._walkers[intent_id] = task

        def forget(done: asyncio.Task[None]) -> None:
            if self._walkers.get(intent_id) is done:
                del self._walkers[intent_id]

        task.add_done_callback(forget)
        return task

    async def _reject(self, intent: SubmitOrder, message: str) -> None:
        self.counters["rejected_before_broker"] += 1
        log.warning("order refused before the broker", intent_id=intent.intent_id, reason=message)
        await self._on_event(
            OrderUpdated(
                order_id=order_id_for(intent.intent_id, VENUE),
                intent_id=intent.intent_id,
                underlying=intent.underlying,
                ts_ns=self._clock.now_ns(),
                status=OrderStatus.REJECTED,
                message=message,
            )
        )

    def _next_attempt(self, ex: Execution, step: int) -> Attempt:
        attempt = ex.new_attempt(ex.ladder.prices[step])
        self.book.register(ex, attempt)
        return attempt

    async def _work(self, ex: Execution, placed: asyncio.Future[None]) -> None:
        """The one task that talks to Alpaca about this intent: place, walk, cancel."""
        iid = ex.intent.intent_id
        try:
            try:
                step = await self._recover(ex)
                if step is None and not ex.done:
                    step = 0
                    await self._post(ex, self._next_attempt(ex, 0), self._submit_resolve_s)
            finally:
                if not placed.done():
                    placed.set_result(None)
            if not ex.done:
                await self._walk(ex, step or 0)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("order work failed; the order stays as it is", intent_id=iid)

    async def _recover(self, ex: Execution) -> int | None:
        """Adopt attempts a previous run already placed; return the ladder step to resume at.

        Probes client_order_id attempt 1, 2, ... until one is unknown to the broker or working.
        None: nothing was placed before. An adopted attempt that ended while we were down ends
        the intent (a cancel then is indistinguishable from an operator's: never re-place).
        """
        adopted: list[Attempt] = []
        while True:
            cid = client_order_id(ex.intent.intent_id, len(adopted) + 1)
            try:
                snap = await self._lookup(cid, self._submit_resolve_s)
            except (_Unresolved, RestError):
                # Cannot look: send anyway. Alpaca refuses a reused client_order_id (422), which
                # leads back to a lookup, so a placed attempt is still never placed twice.
                break
            if snap is None:
                break
            attempt = ex.new_attempt(snap.limit_price or ex.ladder.prices[0])
            self.book.register(ex, attempt)
            adopted.append(attempt)
            self.counters["adopted"] += 1
            log.warning(
                "adopted an order placed before a restart",
                intent_id=ex.intent.intent_id,
                client_order_id=cid,
                status=snap.status,
            )
            await self._apply(snap)
            if ex.done or not attempt.terminal:
                break
        if not adopted:
            return None
        last = adopted[-1]
        if not ex.done and last.terminal:
            # e.g. replaced while we were down: do not guess, stop here (conservative).
            message = f"not resumed after a restart: attempt {last.number} is {last.status}"
            await self._emit(ex.finish(self._clock.now_ns(), OrderStatus.CANCELED, message))
        return min(last.number - 1, len(ex.ladder.prices) - 1)

    # ------------------------------------------------------------------ placing
    async def _post(self, ex: Execution, attempt: Attempt, budget_s: float) -> None:
        """POST `attempt` until placed, refused for good, or unresolved past `budget_s`.

        Retries reuse the client_order_id, so the broker holds at most one order per attempt.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + budget_s
        delay = self.policy.retry_seconds
        request = order_request(
            ex.intent, attempt.net_price, attempt.units, attempt.client_order_id
        )
        last = ""
        for tries in range(1, self.policy.max_submit_tries + 1):
            try:
                snap = await self.rest.submit(request)
            except RestError as err:
                last = err.message
                self.counters[f"submit_{err.kind.value}"] += 1
                log.warning(
                    "order submit failed",
                    intent_id=ex.intent.intent_id,
                    client_order_id=attempt.client_order_id,
                    failure=err.kind.value,
                    status=err.status,
                    message=err.message,
                )
                if err.kind is Failure.REFUSED:
                    attempt.status = NOT_PLACED
                    await self._emit(
                        ex.finish(self._clock.now_ns(), OrderStatus.REJECTED, err.message)
                    )
                    return
                if err.kind is not Failure.RATE_LIMITED:
                    # Ambiguous (or a duplicate id): look before sending it again.
                    try:
                        found = await self._lookup(attempt.client_order_id, deadline - loop.time())
                    except (_Unresolved, RestError):
                        attempt.status = UNKNOWN
                        self.counters["unresolved_submits"] += 1
                        return
                    if found is not None:
                        self.counters["resolved_by_lookup"] += 1
                        await self._apply(found)
                        return
            else:
                self.counters["orders_placed"] += 1
                await self._apply(snap)
                return
            if tries < self.policy.max_submit_tries:
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_S)
        attempt.status = NOT_PLACED
        message = f"not placed after {self.policy.max_submit_tries} tries: {last}"
        await self._emit(ex.finish(self._clock.now_ns(), OrderStatus.REJECTED, message))

    async def _lookup(self, cid: str, deadline_s: float) -> WireOrder | None:
        """The broker's order with client_order_id `cid`; None only if it surely has none.

        Retries ambiguous failures until `deadline_s` (then _Unresolved); a definite refusal
        (e.g. 401/403) is raised as the RestError at once.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(deadline_s, 0.0)
        delay = self.policy.retry_seconds
        while True:
            try:
                return await self.rest.order_by_client_id(cid)
            except RestError as err:
                self.counters["lookup_failed"] += 1
                if err.kind is Failure.REFUSED:
                    raise
                log.warning(
                    "order lookup failed",
                    client_order_id=cid,
                    failure=err.kind.value,
                    message=err.message,
                )
            if loop.time() + delay > deadline:
                raise _Unresolved(cid)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_S)

    async def _settle_unknown(self, ex: Execution, attempt: Attempt, may_post: bool) -> None:
        """Learn what became of an attempt whose POST outcome is unknown (no deadline).

        If the broker does not have it: send it again (same client_order_id) when `may_post`,
        else record it as never placed.
        """
        while attempt.status in (UNKNOWN, UNSENT) and not ex.done:
            try:
                snap = await self._lookup(attempt.client_order_id, MAX_RETRY_S)
            except _Unresolved:
                continue
            except RestError as err:  # e.g. keys revoked: nothing to do but keep asking
                log.error("cannot look the order up", error=str(err), intent_id=ex.intent.intent_id)
                await asyncio.sleep(MAX_RETRY_S)
                continue
            if snap is not None:
                await self._apply(snap)
            elif may_post:
                await self._post(ex, attempt, budget_s=MAX_RETRY_S)
            else:
                attempt.status = NOT_PLACED

    # ------------------------------------------------------------------ the walk
    async def _walk(self, ex: Execution, step: int) -> None:
        """Rest at each ladder price, cancel (confirmed), re-place the rest one step closer."""
        rest_s = self.policy.timeout_seconds / len(ex.ladder.prices)
        iid = ex.intent.intent_id
        while not ex.done:
            current = ex.current
            if current is not None and current.status in (UNKNOWN, UNSENT):
                await self._settle_unknown(ex, current, may_post=iid not in self._halt)
                continue
            if iid not in self._halt:
                await self._wait(ex, rest_s)
            if ex.done:
                return
            halted = self._halt.get(iid)
            await self._cancel_confirmed(ex)
            if ex.done:
                return
            if halted is not None:
                await self._emit(ex.finish(self._clock.now_ns(), OrderStatus.CANCELED, halted))
                return
            if step + 1 >= len(ex.ladder.prices):
                message = f"not filled within {self.policy.timeout_seconds:g} s"
                await self._emit(ex.finish(self._clock.now_ns(), OrderStatus.CANCELED, message))
                return
            step += 1
            await self._post(ex, self._next_attempt(ex, step), budget_s=MAX_RETRY_S)

    async def _wait(self, ex: Execution, seconds: float) -> None:
        """Wait `seconds` or until the intent is done or halted."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        event = self._changed[ex.intent.intent_id]
        while not ex.done and ex.intent.intent_id not in self._halt:
            left = deadline - loop.time()
            if left <= 0:
                return
            event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), left)

    async def _cancel_confirmed(self, ex: Execution) -> None:
        """Cancel the current attempt and return only once it is terminal (filled or not)."""
        attempt = ex.current
        if attempt is None:
            return
        attempt.cancel_requested = True
        delay = self.policy.retry_seconds
        while not attempt.terminal and not ex.done:
            if attempt.order_id is None:
                await self._settle_unknown(ex, attempt, may_post=False)
                continue
            try:
                await self.rest.cancel(attempt.order_id)
                self.counters["cancels_sent"] += 1
            except RestError as err:
                if err.kind not in (Failure.NOT_CANCELABLE, Failure.NOT_FOUND):
                    log.warning("cancel failed", order_id=attempt.order_id, message=err.message)
            if await self._wait_terminal(ex, attempt, self.policy.cancel_confirm_seconds):
                return
            with contextlib.suppress(RestError):
                snap = await self.rest.order(attempt.order_id)
                if snap is not None:
                    await self._apply(snap)
            if not attempt.terminal:
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_S)

    async def _wait_terminal(self, ex: Execution, attempt: Attempt, seconds: float) -> bool:
        """Wait up to `seconds` for `attempt` to end; True if it (or the intent) did."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        event = self._changed[ex.intent.intent_id]
        while not attempt.terminal and not ex.done:
            left = deadline - loop.time()
            if left <= 0:
                return False
            event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), left)
        return True

    async def cancel_all(self, reason: str) -> None:
        """Stop every walk and cancel every working order (the kill switch, a shutdown).

        Each intent's own task does the cancelling, so no POST of it can still be in flight; an
        intent whose task is gone gets a fresh one that only cancels.
        """
        tasks: list[asyncio.Task[None]] = []
        for ex in self.book.working():
            iid = ex.intent.intent_id
            self._halt.setdefault(iid, reason)
            self._changed[iid].set()
            task = self._walkers.get(iid)
            if task is None or task.done():
                task = self._track(iid, self._walk(ex, len(ex.ladder.prices) - 1))
            tasks.append(task)
        if tasks:
            await asyncio.wait(tasks)

    # ------------------------------------------------------------------ updates
    async def _on_message(self, raw: Any) -> None:
        """trade_updates handler (runs inside alpaca-py's consume loop: must never raise)."""
        try:
            update = parse_trade_update(raw)
            if update is None:
                return
            self.counters[f"trade_update_{update.event}"] += 1
            await self._apply(update.order)
        except WireError as err:
            self.counters["malformed_trade_update"] += 1
            log.error("malformed trade_update dropped", error=str(err))
        except Exception:
            self.counters["trade_update_errors"] += 1
            log.exception("trade_update handling failed")

    async def _apply(self, snap: WireOrder) -> None:
        found = self.book.locate(snap)
        if found is None:
            self.counters["external_order_updates"] += 1
            return
        ex, attempt = found
        self.book.register(ex, attempt)
        await self._emit(ex.apply(attempt, snap, self._clock.now_ns()))
        event = self._changed.get(ex.intent.intent_id)
        if event is not None:
            event.set()

    async def _emit(self, events: list[BrokerEvent]) -> None:
        for event in events:
            await self._on_event(event)

    async def catch_up(self) -> None:
        """Fetch the state of every working attempt over REST (after each stream reconnect)."""
        self.counters["catch_ups"] += 1
        for ex in self.book.working():
            for attempt in list(ex.attempts):
                if attempt.terminal or attempt.status in (UNKNOWN, UNSENT):
                    continue
                try:
                    if attempt.order_id is not None:
                        snap = await self.rest.order(attempt.order_id)
                    else:
                        snap = await self.rest.order_by_client_id(attempt.client_order_id)
                except RestError as err:
                    log.warning(
                        "catch-up lookup failed", intent_id=ex.intent.intent_id, error=str(err)
                    )
                    continue
                if snap is not None:
                    await self._apply(snap)

    # ------------------------------------------------------------------ account controls
    async def set_trade_suspension(
        self, suspended: bool, tries: int = 5, retry_s: float = 1.0
    ) -> bool:
        """PATCH the account configuration's `suspend_trade` (the broker-side kill switch).

        Retries failures (doubling the wait, at most MAX_RETRY_S) up to `tries` times; True once
        the broker's answer shows the wanted value, False if it never did (logged CRITICAL).
        """
        body = {"suspend_trade": suspended}
        delay = retry_s
        last = ""
        for attempt in range(1, tries + 1):
            patch = functools.partial(self.rest.client.patch, "/account/configurations", body)
            try:
                answer: Any = await asyncio.to_thread(patch)
            except Exception as exc:
                last = str(classify(exc))
            else:
                if isinstance(answer, dict) and answer.get("suspend_trade") is suspended:
                    self.counters["suspend_trade_set"] += 1
                    log.warning("alpaca account suspend_trade set", suspend_trade=suspended)
                    return True
                last = f"unexpected answer {answer!r}"
            log.warning(
                "alpaca suspend_trade not set yet", attempt=attempt, tries=tries, error=last
            )
            if attempt < tries:
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_S)
        self.counters["suspend_trade_failed"] += 1
        log.critical(
            "could not set the alpaca account's suspend_trade: the broker-side halt is NOT set",
            suspend_trade=suspended,
            error=last,
        )
        return False

    async def option_activities(self, after: datetime | None = None) -> list[OptionActivity]:
        """Exercise, assignment and expiry activities (oldest first); malformed ones are logged
        and skipped. Failures raise RestError."""
        out: list[OptionActivity] = []
        for raw in await fetch_option_activities(self.rest, after):
            try:
                out.append(parse_activity(raw))
            except ActivityError as err:
                self.counters["malformed_activities"] += 1
                log.error("option activity skipped", error=str(err))
        return out
