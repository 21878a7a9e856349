"""The decision stage: market contexts into trade ideas and opening intents (the trade agent),
chains into closing intents (the position manager); every context and idea is journaled."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gnosisd.agents.positions import expiry_window
from gnosisd.bus.events import ChainSnapshot
from gnosisd.bus.records import MarketContext, TradeIdea
from gnosisd.bus.topics import Topic
from gnosisd.core.clock import datetime_to_ns

if TYPE_CHECKING:
    from gnosisd.runtime.daemon import Daemon


class DecisionStage:
    """Bus handlers of the trade agent and the position manager.

    It reads the daemon's agent, ledger and journal at each call: `--params` and backtests swap
    them in after the daemon is built. `ideas` is the order flow's map of ideas sent as intents.
    """

    def __init__(self, daemon: Daemon, ideas: dict[str, TradeIdea]) -> None:
        self._d = daemon
        self._ideas = ideas
        self._contexts: dict[str, MarketContext] = {}  # the latest of each symbol
        self._last_decision: dict[str, int] = {}

    async def on_context(self, event: object) -> None:
        assert isinstance(event, MarketContext)
        d = self._d
        self._contexts[event.symbol] = event
        d.summary.contexts += 1
        d.journal.write("context", event.symbol, event.as_of, event.model_dump(mode="json"))
        if d.options.decide_once:
            return
        ts_ns = datetime_to_ns(event.as_of)
        last = self._last_decision.get(event.symbol)
        interval_ns = d.settings.runtime.decision_interval_minutes * 60 * 10**9
        if last is not None and ts_ns - last < interval_ns:
            return
        self._last_decision[event.symbol] = ts_ns
        await self._decide(event)

    async def decide_all(self) -> None:
        """Decide on the latest context of every symbol (the daily job, at the session's end)."""
        for symbol in self._d.options.symbols:
            context = self._contexts.get(symbol)
            if context is not None:
                await self._decide(context)
        await self._d.bus.join()

    async def _decide(self, context: MarketContext) -> None:
        d = self._d
        chain = d.market.chain(context.symbol)
        if chain is None:
            return
        ts_ns = datetime_to_ns(context.as_of)
        ideas = d.agent.propose(
            context, chain, d.ledger.equity(), ts_ns, open_positions=d.ledger.positions()
        )
        limit = d.settings.trade_agent.max_ideas_per_decision
        sent = 0
        for idea in ideas:
            await d.bus.publish(Topic.IDEAS, idea)
            if not d.options.execute or sent >= limit or idea.quantity <= 0:
                continue
            self._ideas[idea.id] = idea
            await d.bus.publish(Topic.INTENTS, d.agent.to_intent(idea, ts_ns))
            sent += 1

    def journal_idea(self, event: object) -> None:
        assert isinstance(event, TradeIdea)
        self._d.summary.ideas += 1
        context = self._contexts.get(event.symbol)
        extra = None
        if context is not None:
            # Top-level context summary: the runbook's `.context.iv_rank` query reads trade lines.
            extra = {
                "context": {
                    "iv_rank": context.iv_rank,
                    "regime": context.regime.value,
                    "direction": context.direction.value,
                    "confidence": context.confidence,
                }
            }
        payload = event.model_dump(mode="json")
        self._d.journal.write("trade", event.symbol, event.as_of, payload, extra)

    async def positions_on_chain(self, event: object) -> None:
        assert isinstance(event, ChainSnapshot)
        d = self._d
        if not d.options.execute:
            return
        held = d.ledger.positions()
        window = expiry_window(d.calendar, d.settings.expiry, event.ts_ns) if held else None
        intents = d.positions.evaluate(held, event, event.ts_ns, window)
        if d.positions.high_water_changed:
            d.save_books()  # trailing stops keep their reference across a restart
        for flag in d.positions.pop_pin_flags():
            d.audit.warning(
                "pin risk",
                position_id=flag.position_id,
                underlying=flag.underlying,
                symbols=list(flag.symbols),
                day=flag.day.isoformat(),
                minutes_to_close=round(flag.minutes_to_close, 1),
                note=flag.note,
            )
        for intent in intents:
            await d.bus.publish(Topic.INTENTS, intent)
