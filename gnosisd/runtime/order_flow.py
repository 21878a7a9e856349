"""The order flow: intent → risk guard → broker (simulated, or Alpaca through `runtime/live.py`)
→ acknowledgements and fills → the orders journal, with the audit line of each step."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

import structlog

from gnosisd.bus.events import (
    ChainSnapshot,
    OrderFilled,
    OrderUpdated,
    PortfolioMarked,
    RiskDecided,
    SubmitOrder,
)
from gnosisd.bus.records import TradeIdea
from gnosisd.bus.topics import Topic
from gnosisd.core.clock import ns_to_datetime
from gnosisd.core.enums import OrderStatus, PositionEffect, RiskReason
from gnosisd.runtime.records import decision_record, fill_record, update_record

if TYPE_CHECKING:
    from gnosisd.runtime.daemon import Daemon

log = structlog.get_logger("gnosisd.daemon")


class OrderFlow:
    """Bus handlers from intents to the orders journal.

    It reads the daemon's ledger, broker and journal at each call, not once: a backtest swaps
    them in after the daemon is built (`runtime/backtest.py`).
    """

    def __init__(self, daemon: Daemon) -> None:
        self._d = daemon
        self.ideas_by_id: dict[str, TradeIdea] = {}  # ideas sent as intents (their exit rules)
        self._pending_orders: dict[str, RiskDecided] = {}  # approved, no final broker answer yet
        self._equity_at: dict[str, Decimal] = {}  # equity the guard saw, for the orders journal

    # ------------------------------------------------------------------ risk guard
    async def on_intent(self, event: object) -> None:
        assert isinstance(event, SubmitOrder)
        d = self._d
        d.summary.intents += 1
        d.audit.info(
            "order intent",
            intent_id=event.intent_id,
            underlying=event.underlying,
            effect=event.effect.value,
            strategy_type=event.strategy_type,
            quantity=event.quantity,
            limit_price=str(event.limit_price),
            legs=[leg.symbol for leg in event.legs],
            exit_reason=event.exit_reason,
        )
        self._equity_at[event.intent_id] = d.ledger.equity()
        if d.live is not None and d.live.stream_down() and event.effect is PositionEffect.OPEN:
            decision = RiskDecided(
                intent=event,
                ts_ns=d.clock.now_ns(),
                approved=False,
                reason=RiskReason.BROKER_UNAVAILABLE,
                detail="the broker's trade_updates stream is down: no new opening orders",
                max_loss=Decimal(0),
                trading_state=d.guard.state,
            )
        else:
            decision = d.guard.check(event, d.ledger, d.market, d.clock.now_ns())
        d.audit.info(
            "risk decision",
            intent_id=event.intent_id,
            approved=decision.approved,
            reason=decision.reason.value,
            detail=decision.detail,
            max_loss=str(decision.max_loss),
            trading_state=decision.trading_state.value,
        )
        if decision.approved:
            d.summary.approved += 1
        else:
            d.summary.rejected[decision.reason.value] += 1
            if event.effect is PositionEffect.CLOSE and event.position_id is not None:
                d.positions.clear_pending(event.position_id)
        await d.bus.publish(Topic.DECISIONS, decision)
        await d.control.publish_state_changes()

    # ------------------------------------------------------------------ broker
    async def on_decision(self, event: object) -> None:
        assert isinstance(event, RiskDecided)
        if not event.approved:
            return
        d = self._d
        intent = event.intent
        chain = d.market.chain(intent.underlying)
        to_alpaca = d.live is not None and d.live.broker is not None
        broker = "alpaca" if to_alpaca else "sim"
        d.audit.info("order submitted", intent_id=intent.intent_id, broker=broker)
        if to_alpaca and chain is not None:
            assert d.live is not None
            idea = self.ideas_by_id.get(intent.idea_id or "")
            rules = idea.exit_rules.model_dump() if idea is not None else None
            record = decision_record(event, self._equity_at.get(intent.intent_id))
            await d.live.submit(intent, chain, rules, record)  # events come back on the bus
            return
        if chain is None:
            results: list[OrderUpdated | OrderFilled] = [
                OrderUpdated(
                    order_id=f"{broker}-{intent.intent_id}",
                    intent_id=intent.intent_id,
                    underlying=intent.underlying,
                    ts_ns=d.clock.now_ns(),
                    status=OrderStatus.REJECTED,
                    message="no option chain for the underlying yet",
                )
            ]
        else:
            results = list(d.broker.submit(intent, chain, d.clock.now_ns()))
        for result in results:
            if isinstance(result, OrderFilled):
                if result.effect is PositionEffect.OPEN and intent.idea_id in self.ideas_by_id:
                    idea = self.ideas_by_id[intent.idea_id]
                    d.ledger.set_exit_rules(result.position_id, idea.exit_rules.model_dump())
                await d.bus.publish(Topic.FILLS, result)
            else:
                await d.bus.publish(Topic.ORDER_UPDATES, result)

    async def mark_on_chain(self, event: object) -> None:
        """Mark the books to the chain and publish the equity and session P&L for the guard."""
        assert isinstance(event, ChainSnapshot)
        ledger = self._d.ledger
        ledger.mark(event)
        await self._d.bus.publish(
            Topic.CONTROL, PortfolioMarked(event.ts_ns, ledger.equity(), ledger.session_pnl())
        )

    # ------------------------------------------------------------------ journal of orders
    def journal_decision(self, event: object) -> None:
        assert isinstance(event, RiskDecided)
        if event.approved:
            self._pending_orders[event.intent.intent_id] = event
            return
        self._write_order(event, None)

    def on_order_update(self, event: object) -> None:
        assert isinstance(event, OrderUpdated)
        d = self._d
        level = "info" if event.status is not OrderStatus.REJECTED else "error"
        if event.status is OrderStatus.REJECTED:
            d.summary.broker_rejected[event.message.split(":")[0]] += 1
            d.audit.error(
                "Order placement failed",
                intent_id=event.intent_id,
                order_id=event.order_id,
                status=event.status.value,
                message=event.message,
            )
        else:
            getattr(d.audit, level)(
                "broker acknowledged",
                intent_id=event.intent_id,
                order_id=event.order_id,
                status=event.status.value,
            )
        decision = self._pending_orders.pop(event.intent_id, None)
        if decision is not None and event.status in (
            OrderStatus.REJECTED,
            OrderStatus.CANCELED,
            OrderStatus.EXPIRED,
        ):
            if decision.intent.position_id is not None:
                d.positions.clear_pending(decision.intent.position_id)
            self._write_order(decision, update_record(event))
        elif decision is not None:
            self._pending_orders[event.intent_id] = decision

    def on_fill(self, event: object) -> None:
        assert isinstance(event, OrderFilled)
        d = self._d
        d.guard.on_fill(event)  # the re-entry throttle counts fills
        d.summary.fills += 1
        d.audit.info(
            "order filled",
            intent_id=event.intent_id,
            order_id=event.order_id,
            effect=event.effect.value,
            quantity=event.quantity,
            net_price=str(event.net_price),
            commission=str(event.commission),
            position_id=event.position_id,
            exit_reason=event.exit_reason,
        )
        gross = sum((abs(leg.price) for leg in event.legs), Decimal(0))
        if gross > 0 and event.slippage > Decimal("0.01") * gross * event.quantity * 100:
            log.warning(
                "Slippage exceeds 1%", intent_id=event.intent_id, slippage=str(event.slippage)
            )
        if event.effect is PositionEffect.CLOSE:
            d.summary.closes[event.exit_reason or "manual"] += 1
            d.positions.clear_pending(event.position_id)
        d.save_books()  # the simulated broker booked it in on_decision (Alpaca: already saved)
        decision = self._pending_orders.pop(event.intent_id, None)
        if decision is not None:
            if decision.intent.strategy_type and event.effect is PositionEffect.OPEN:
                d.summary.strategies[decision.intent.strategy_type] += 1
            self._write_order(decision, fill_record(event))

    def _write_order(self, decision: RiskDecided, result: dict[str, Any] | None) -> None:
        record = decision_record(decision, self._equity_at.pop(decision.intent.intent_id, None))
        record["broker_result"] = result
        if result is not None and result.get("status") == OrderStatus.REJECTED.value:
            record["error_message"] = result.get("message")
        else:
            record["error_message"] = None if decision.approved else decision.detail
        self._d.journal.write(
            "order", decision.intent.underlying, ns_to_datetime(decision.ts_ns), record
        )

    def journal_adopted(
        self, intent: SubmitOrder, record: dict[str, Any] | None, result: dict[str, Any]
    ) -> None:
        """Journal the outcome of an order adopted after a restart (its decision was made, and
        saved, by the previous run)."""
        line: dict[str, Any] = {"intent_id": intent.intent_id, **(record or {})}
        line["broker_result"] = result
        line["error_message"] = (
            result.get("message") if result.get("status") == OrderStatus.REJECTED.value else None
        )
        line["adopted_after_restart"] = True
        now = ns_to_datetime(self._d.clock.now_ns())
        self._d.journal.write("order", intent.underlying, now, line)

    def flush_pending(self) -> None:
        """Journal the approved orders still without a broker answer as `pending` (at stop)."""
        for decision in self._pending_orders.values():
            self._write_order(
                decision, {"status": "pending", "message": "no broker answer at stop"}
            )
        self._pending_orders.clear()
