"""The risk guard: the only door to the broker. `check(intent, …) -> RiskDecided`, synchronous.

Closing orders reduce risk: they skip the kill switch, the halt, the daily loss limit, the caps,
the rate limit (they still count in its window) and the stale-data check (the broker's limit price
protects them), but still need valid legs, the live gate and an unused intent id.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from datetime import date
from decimal import Decimal

import structlog

from gnosisd.bus.events import RiskDecided, SubmitOrder, TradingStateChanged
from gnosisd.core.calendar import TradingCalendar
from gnosisd.core.clock import NS_PER_S
from gnosisd.core.config import RiskConfig, Settings
from gnosisd.core.enums import PositionEffect, RiskReason, TradingState
from gnosisd.core.money import ZERO
from gnosisd.core.views import MarketView, PortfolioView
from gnosisd.risk.killswitch import KillSwitch
from gnosisd.risk.limits import RateWindow, assess_order
from gnosisd.risk.state import TradingStateMachine

log = structlog.get_logger(__name__)

DAILY_LOSS_MESSAGE = "Daily loss limit reached. Halting trading."


def _dec(value: float) -> Decimal:
    return Decimal(repr(value))


class RiskGuard:
    """Checks every order intent against the limits; keeps the trading state and the counters.

    `live_allowed` is asked on every order to a live broker (pass `settings.live_allowed` or a
    callable that re-reads the environment); `kill_switch` defaults to the config flag and the
    kill file of `risk`.
    """

    def __init__(
        self,
        risk: RiskConfig,
        calendar: TradingCalendar,
        *,
        broker_is_live: bool,
        live_allowed: Callable[[], bool] | bool = False,
        kill_switch: KillSwitch | None = None,
    ) -> None:
        self._risk = risk
        self._broker_is_live = broker_is_live
        self._live_allowed: Callable[[], bool] = (
            live_allowed if callable(live_allowed) else (lambda: bool(live_allowed))
        )
        self.kill_switch = kill_switch if kill_switch is not None else KillSwitch.from_config(risk)
        self._states = TradingStateMachine(calendar)
        self._rate = RateWindow(risk.max_orders_per_minute)
        self._approved: set[str] = set()
        self._counts: Counter[RiskReason] = Counter()
        self._max_daily_loss = _dec(risk.max_daily_loss)
        self._trade_risk_pct = _dec(risk.max_trade_risk_pct)
        self._stale_ns = int(_dec(risk.stale_data_seconds) * NS_PER_S)
        self._loss_logged_day: date | None = None

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        calendar: TradingCalendar,
        *,
        broker_is_live: bool,
        env: Mapping[str, str] | None = None,
    ) -> RiskGuard:
        """A guard wired from the settings; `env` (e.g. os.environ) adds GNOSIS_KILL_SWITCH."""
        return cls(
            settings.risk,
            calendar,
            broker_is_live=broker_is_live,
            live_allowed=settings.live_allowed,
            kill_switch=KillSwitch.from_config(settings.risk, env),
        )

    # ------------------------------------------------------------------ state
    @property
    def state(self) -> TradingState:
        return self._states.state

    @property
    def decisions(self) -> dict[RiskReason, int]:
        """How many decisions were made per reason (APPROVED counts approvals)."""
        return dict(self._counts)

    def kill(self, reason: str) -> None:
        """Block every new opening order until `clear_kill()` (closes still pass)."""
        self.kill_switch.kill(reason)
        log.warning("Kill switch set", reason=reason)

    def clear_kill(self) -> None:
        self.kill_switch.clear()

    def halt(self, reason: str, now_ns: int) -> None:
        """Halt new risk for the rest of the session (operator or supervisor request)."""
        self._states.halt(reason, now_ns)

    @property
    def halt_latched(self) -> bool:
        """True while a latched halt (`latch_halt`) holds."""
        return self._states.latched

    def latch_halt(self, reason: str, now_ns: int) -> None:
        """Kill switch, SIGUSR1 or `gnosisd halt`: HALTED across sessions until `release_halt`.

        The runtime kill flag is set first, so the very next opening order is refused.
        """
        self.kill_switch.kill(reason)
        self._states.halt(reason, now_ns, latched=True)
        log.warning("Trading halted (latched until an operator resumes)", reason=reason)

    def release_halt(self, reason: str, now_ns: int) -> None:
        """Operator resume: clear the runtime kill flag and the latched halt."""
        self.kill_switch.clear()
        self._states.resume(reason, now_ns)

    def reduce_only(self, reason: str, now_ns: int) -> None:
        self._states.reduce_only(reason, now_ns)

    def resume(self, reason: str, now_ns: int) -> None:
        self._states.resume(reason, now_ns)

    def pop_state_changes(self) -> list[TradingStateChanged]:
        """Trading-state transitions since the last call (for the bus and the audit log)."""
        return self._states.pop_changes()

    def on_pnl(self, session_pnl: Decimal, now_ns: int) -> bool:
        """Feed the latest session P&L (on each mark); return True if trading is halted for loss."""
        self._states.roll(now_ns)
        return self._loss_breached(session_pnl, now_ns)

    def _loss_breached(self, session_pnl: Decimal, now_ns: int) -> bool:
        if session_pnl > -self._max_daily_loss:
            return False
        self._states.halt("daily loss limit", now_ns)
        day = self._states.session_day
        if self._loss_logged_day != day:
            self._loss_logged_day = day
            log.critical(
                DAILY_LOSS_MESSAGE,
                session_pnl=str(session_pnl),
                limit=str(self._max_daily_loss),
                session_day=str(day),
            )
        return True

    # ------------------------------------------------------------------ the check
    def check(
        self, intent: SubmitOrder, portfolio: PortfolioView, market: MarketView, now_ns: int
    ) -> RiskDecided:
        """Approve or reject one intent; only approved intents may reach the broker."""
        self._states.roll(now_ns)
        assessed = assess_order(intent)
        max_loss = assessed.max_loss if assessed.max_loss is not None else ZERO
        if assessed.reason is not RiskReason.APPROVED:
            return self._decide(intent, now_ns, assessed.reason, assessed.detail, ZERO)
        opening = intent.effect is PositionEffect.OPEN
        if opening and assessed.max_loss is None:
            detail = "opening order has unbounded max loss (naked short call or similar)"
            return self._decide(intent, now_ns, RiskReason.UNDEFINED_RISK, detail, ZERO)
        reject = self._first_breach(intent, portfolio, market, now_ns, max_loss, opening)
        if reject is not None:
            return self._decide(intent, now_ns, reject[0], reject[1], max_loss)
        self._approved.add(intent.intent_id)
        self._rate.record(now_ns)
        return self._decide(intent, now_ns, RiskReason.APPROVED, "approved", max_loss)

    def _first_breach(
        self,
        intent: SubmitOrder,
        portfolio: PortfolioView,
        market: MarketView,
        now_ns: int,
        max_loss: Decimal,
        opening: bool,
    ) -> tuple[RiskReason, str] | None:
        if opening:
            killed = self.kill_switch.active()
            if killed is not None:
                return RiskReason.KILL_SWITCH, f"kill switch active: {killed}"
        if self._broker_is_live and not self._live_allowed():
            return RiskReason.LIVE_GATE, (
                "live trading disabled: needs GNOSIS_LIVE_TRADING_ENABLED=true and "
                "execution.enable_live_trading: true"
            )
        if opening:
            breach = self._opening_breach(intent, portfolio, market, now_ns, max_loss)
            if breach is not None:
                return breach
        if intent.intent_id in self._approved:
            return RiskReason.DUPLICATE, f"intent {intent.intent_id} was already approved"
        return None

    def _opening_breach(
        self,
        intent: SubmitOrder,
        portfolio: PortfolioView,
        market: MarketView,
        now_ns: int,
        max_loss: Decimal,
    ) -> tuple[RiskReason, str] | None:
        if self.state is not TradingState.ACTIVE:
            why = self._states.reason or self.state.value
            return RiskReason.HALTED, f"trading is {self.state.value} ({why}); only closes pass"
        pnl = portfolio.session_pnl()
        if self._loss_breached(pnl, now_ns):
            return RiskReason.DAILY_LOSS_LIMIT, (
                f"session P&L ${pnl:,.2f} breaches the daily loss limit "
                f"${self._max_daily_loss:,.2f}; halted for the session"
            )
        equity = portfolio.equity()
        cap = self._trade_risk_pct * equity
        if -max_loss > cap:
            return RiskReason.TRADE_RISK_CAP, (
                f"max loss ${-max_loss:,.2f} exceeds {self._trade_risk_pct} × equity "
                f"${equity:,.2f} = ${cap:,.2f}"
            )
        n_open = len(portfolio.positions())
        if n_open >= self._risk.max_open_positions:
            return RiskReason.MAX_OPEN_POSITIONS, (
                f"{n_open} open positions, limit {self._risk.max_open_positions}"
            )
        if self._rate.full(now_ns):
            return RiskReason.RATE_LIMIT, (
                f"{self._rate.count(now_ns)} orders approved in the last 60 s, "
                f"limit {self._risk.max_orders_per_minute}"
            )
        last = market.last_data_ns(intent.underlying)
        if last is None:
            return RiskReason.STALE_DATA, f"no market data for {intent.underlying}"
        if now_ns - last > self._stale_ns:
            age = Decimal(now_ns - last) / NS_PER_S
            return RiskReason.STALE_DATA, (
                f"{intent.underlying} data is {age:.1f} s old, limit "
                f"{self._risk.stale_data_seconds} s"
            )
        return None

    def _decide(
        self,
        intent: SubmitOrder,
        now_ns: int,
        reason: RiskReason,
        detail: str,
        max_loss: Decimal,
    ) -> RiskDecided:
        self._counts[reason] += 1
        return RiskDecided(
            intent=intent,
            ts_ns=now_ns,
            approved=reason is RiskReason.APPROVED,
            reason=reason,
            detail=detail,
            max_loss=max_loss,
            trading_state=self.state,
        )
