"""The risk guard: the only door to the broker. `check(intent, …) -> RiskDecided`, synchronous.

Closing orders reduce risk: they skip the kill switch, the trading state, the daily loss limit,
the caps, the windows and the stale-data check, but still need valid legs, the live gate, an
unused intent id and a limit not absurdly through the market (the loose close collar). The checks,
their keys and reasons are listed in docs/risk.md.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from datetime import date
from decimal import Decimal
from operator import is_
from typing import Final

import structlog

from gnosisd.bus.events import (
    OrderFilled,
    RiskDecided,
    SubmitOrder,
    TradingStateChanged,
    risk_decided,
)
from gnosisd.core.calendar import TradingCalendar
from gnosisd.core.clock import NS_PER_S
from gnosisd.core.config import RiskConfig, Settings, TradeAgentConfig
from gnosisd.core.enums import RiskReason, TradingState
from gnosisd.core.money import ZERO
from gnosisd.core.views import PortfolioView, Position
from gnosisd.risk.closes import close_mismatch
from gnosisd.risk.collar import EPSILON, band_and_greeks, band_of
from gnosisd.risk.greeks import GREEK_NAMES, Greeks, PositionGreeks
from gnosisd.risk.killswitch import KillSwitch
from gnosisd.risk.limits import (
    Breach,
    OrderFacts,
    cents_floor,
    cents_to_dollars,
    inspect_order,
)
from gnosisd.risk.quotes import ChainMarketView, QuoteBooks
from gnosisd.risk.state import TradingStateMachine
from gnosisd.risk.windows import TrailingWindows

log = structlog.get_logger(__name__)

DAILY_LOSS_MESSAGE = "Daily loss limit reached. Halting trading."
# The guard's portfolio cap when neither risk.max_portfolio_risk_pct nor the agent's is given.
DEFAULT_PORTFOLIO_RISK_PCT: float = TradeAgentConfig.model_fields["max_portfolio_risk_pct"].default

LIVE_GATE_BREACH: Final[Breach] = (
    RiskReason.LIVE_GATE,
    "live trading disabled: needs GNOSIS_LIVE_TRADING_ENABLED=true and "
    "execution.enable_live_trading: true",
)

# Enum members read on every check, bound once: on Python 3.11 reading a member through its
# class (`RiskReason.APPROVED`) goes through the enum metaclass (~70 ns), a module global does not.
_APPROVED: Final = RiskReason.APPROVED
_ACTIVE: Final = TradingState.ACTIVE


def _dec(value: float) -> Decimal:
    return Decimal(repr(value))


class RiskGuard:
    """Checks every order intent against the limits; keeps the trading state and the counters.

    `live_allowed` is asked on every order to a live broker (pass `settings.live_allowed` or a
    callable that re-reads the environment); `kill_switch` defaults to the config flag and the
    kill file of `risk`. `portfolio_risk_pct` is the portfolio cap used when
    `risk.max_portfolio_risk_pct` is unset (from_settings passes the trade agent's).
    """

    def __init__(
        self,
        risk: RiskConfig,
        calendar: TradingCalendar,
        *,
        broker_is_live: bool,
        live_allowed: Callable[[], bool] | bool = False,
        kill_switch: KillSwitch | None = None,
        portfolio_risk_pct: float | None = None,
    ) -> None:
        self._risk = risk
        self._broker_is_live = broker_is_live
        self._live_allowed: Callable[[], bool] = (
            live_allowed if callable(live_allowed) else (lambda: bool(live_allowed))
        )
        self.kill_switch = kill_switch if kill_switch is not None else KillSwitch.from_config(risk)
        self._states = TradingStateMachine(calendar)
        self._windows = TrailingWindows(risk)
        self._books = QuoteBooks()
        self._position_greeks = PositionGreeks()
        self._approved: set[str] = set()
        # Decisions per reason; check() counts approvals in _approvals (a Counter update hashes
        # the enum in Python) and adds them in `decisions`.
        self._counts: Counter[RiskReason] = Counter()
        self._approvals = 0
        self._max_daily_loss = _dec(risk.max_daily_loss)
        self._loss_floor = -self._max_daily_loss  # a session P&L at or below it halts
        self._loss_of: list[Position] = []  # the positions _loss_sum was summed over
        self._loss_sum = ZERO
        # Integer cents the portfolio cap leaves for one more order: floor((cap − open max
        # loss) × 100), kept with the cap and the positions it was computed for.
        self._headroom = (ZERO, 0)
        self._headroom_loss = ZERO  # the open max loss _headroom was computed with
        self._trade_risk_pct = _dec(risk.max_trade_risk_pct)
        pct = risk.max_portfolio_risk_pct
        pct = pct if pct is not None else portfolio_risk_pct
        self._portfolio_risk_pct = _dec(pct if pct is not None else DEFAULT_PORTFOLIO_RISK_PCT)
        # The caps of the last equity seen (trade cap in integer cents, rounded down; portfolio
        # cap; equity as a float) and the greek budgets (pct × equity × 1.0, as _greek_breach
        # computes them): the portfolio returns the same Decimal object until its equity
        # changes, so they are computed once per equity, not on every check (the object is
        # held: its identity cannot be reused).
        self._caps_equity: Decimal | None = None
        self._caps: tuple[int, Decimal, float] = (0, ZERO, 0.0)
        self._greek_limits: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
        # The limits the opening path compares against, copied once (one attribute read per
        # check instead of two through the config).
        self._max_contracts_order = risk.max_contracts_per_order
        self._max_premium_order = _dec(risk.max_premium_per_order)
        self._max_premium_order_cents = cents_floor(self._max_premium_order)
        self._max_open_positions = risk.max_open_positions
        self._collar_tolerance = risk.collar_tolerance
        self._collar_tolerance_pct = risk.collar_tolerance_pct
        self._budget_pcts = (
            risk.max_delta_pct,
            risk.max_gamma_pct,
            risk.max_vega_pct,
            risk.max_theta_pct,
        )
        self._stale_ns = int(_dec(risk.stale_data_seconds) * NS_PER_S)
        self._loss_logged_day: date | None = None
        self._greek_reducing = False  # REDUCING was set by a greek budget breach (not an operator)

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
            portfolio_risk_pct=settings.trade_agent.max_portfolio_risk_pct,
        )

    # ------------------------------------------------------------------ state
    @property
    def portfolio_risk_pct(self) -> Decimal:
        """The portfolio cap: open max loss plus the order's at most this × equity."""
        return self._portfolio_risk_pct

    @property
    def state(self) -> TradingState:
        return self._states.state

    @property
    def decisions(self) -> dict[RiskReason, int]:
        """How many decisions were made per reason (APPROVED counts approvals)."""
        counts = dict(self._counts)
        if self._approvals:
            counts[RiskReason.APPROVED] += self._approvals
        return counts

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
        self._greek_reducing = False
        self._states.resume(reason, now_ns)

    def reduce_only(self, reason: str, now_ns: int) -> None:
        """Operator REDUCING (closes only) until `resume`; never overrides a halt."""
        if self._states.reduce_only(reason, now_ns) or self.state is TradingState.REDUCING:
            self._greek_reducing = False  # the operator owns it now: greeks will not lift it

    def resume(self, reason: str, now_ns: int) -> None:
        self._greek_reducing = False
        self._states.resume(reason, now_ns)

    def pop_state_changes(self) -> list[TradingStateChanged]:
        """Trading-state transitions since the last call (for the bus and the audit log)."""
        return self._states.pop_changes()

    def on_pnl(self, session_pnl: Decimal, now_ns: int) -> bool:
        """Feed the latest session P&L (on each mark); return True if trading is halted for loss."""
        self._states.roll(now_ns)
        return self._loss_breached(session_pnl, now_ns)

    def on_mark(
        self,
        session_pnl: Decimal,
        portfolio: PortfolioView,
        market: ChainMarketView,
        now_ns: int,
    ) -> bool:
        """Each portfolio mark: the daily loss limit, then the greek budgets (REDUCING while a
        budget is breached, ACTIVE again once every greek is within greek_resume_fraction of its
        budget). Return True if trading is halted for loss."""
        halted = self.on_pnl(session_pnl, now_ns)
        greeks = self.portfolio_greeks(portfolio.positions(), market)
        self._greek_state(greeks, float(portfolio.equity()), now_ns)
        return halted

    def on_fill(self, fill: OrderFilled) -> None:
        """Every fill (opening and closing) feeds the re-entry throttle."""
        self._windows.on_fill(fill)

    def portfolio_greeks(self, positions: list[Position], market: ChainMarketView) -> Greeks:
        """Dollar greeks of `positions` on the latest chains (units: risk/greeks.py)."""
        return self._position_greeks.total_on(positions, self._books, market)

    def _greek_state(self, greeks: Greeks, equity: float, now_ns: int) -> None:
        state = self.state
        if state is not TradingState.REDUCING:
            self._greek_reducing = False  # a halt, a resume or a new session took over
        breach = self._greek_breach(greeks, equity, 1.0)
        if breach is not None:
            if state is TradingState.ACTIVE:
                self._states.reduce_only(f"greek budget: {breach}", now_ns)
                self._greek_reducing = True
                log.warning("Greek budget breached: closes only", breach=breach)
            return
        fraction = self._risk.greek_resume_fraction
        if self._greek_reducing and self._greek_breach(greeks, equity, fraction) is None:
            self._states.end_reducing("greeks back within budget", now_ns)
            self._greek_reducing = False

    def _greek_breach(self, greeks: Greeks, equity: float, fraction: float) -> str | None:
        for name, value, pct in zip(GREEK_NAMES, greeks.values(), self._budget_pcts, strict=True):
            limit = pct * equity * fraction
            if abs(value) > limit:
                return f"portfolio {name} ${value:,.0f} beyond ±${limit:,.0f} ({pct} × equity)"
        return None

    def _loss_breached(self, session_pnl: Decimal, now_ns: int) -> bool:
        if session_pnl > self._loss_floor:
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
        self,
        intent: SubmitOrder,
        portfolio: PortfolioView,
        market: ChainMarketView,
        now_ns: int,
    ) -> RiskDecided:
        """Approve or reject one intent; only approved intents may reach the broker."""
        self._states.roll(now_ns)
        facts = inspect_order(intent)  # the intent's figures, derived once for every check below
        if isinstance(facts, tuple):
            return self._decide(intent, now_ns, facts[0], facts[1], ZERO)
        max_loss = facts.max_loss
        opening = facts.opening
        if opening:
            if max_loss is None:
                detail = "opening order has unbounded max loss (naked short call or similar)"
                return self._decide(intent, now_ns, RiskReason.UNDEFINED_RISK, detail, ZERO)
            reject = self._opening_breach(intent, facts, portfolio, market, now_ns, max_loss)
        else:
            if max_loss is None:
                max_loss = ZERO
            reject = self._closing_breach(intent, facts, portfolio, market, now_ns)
        if reject is not None:
            return self._decide(intent, now_ns, reject[0], reject[1], max_loss)
        intent_id = intent.intent_id
        approved = self._approved
        if intent_id in approved:
            detail = f"intent {intent_id} was already approved"
            return self._decide(intent, now_ns, RiskReason.DUPLICATE, detail, max_loss)
        # Record the approval (inline: this is the hot path, issue 5 item 15).
        approved.add(intent_id)
        self._windows.record(intent_id, facts, now_ns)
        self._approvals += 1
        if self._approvals == 1:  # the key in first-decision order, as _decide would place it
            self._counts[RiskReason.APPROVED] += 0
        # RiskDecided with its slots set directly (bus.events.risk_decided): the hot path.
        return risk_decided(
            intent, now_ns, True, _APPROVED, "approved", max_loss, self._states.state
        )

    def _closing_breach(
        self,
        intent: SubmitOrder,
        facts: OrderFacts,
        portfolio: PortfolioView,
        market: ChainMarketView,
        now_ns: int,
    ) -> Breach | None:
        if self._broker_is_live and not self._live_allowed():
            return LIVE_GATE_BREACH
        return close_mismatch(intent, facts, portfolio) or self._close_collar(
            intent, facts, market, now_ns
        )

    def _opening_breach(
        self,
        intent: SubmitOrder,
        facts: OrderFacts,
        portfolio: PortfolioView,
        market: ChainMarketView,
        now_ns: int,
        max_loss: Decimal,
    ) -> Breach | None:
        """Every check of an opening order, in the order docs/risk.md lists them.

        One function on purpose: the decision must take < 50 µs at p99 (issue 5 item 15), and
        each check used to be a method (plus its limit reads) of its own. Each block is one
        check; the rejection messages are built by the `_*_detail` helpers, only on a breach.
        """
        killed = self.kill_switch.active()
        if killed is not None:
            return RiskReason.KILL_SWITCH, f"kill switch active: {killed}"
        if self._broker_is_live and not self._live_allowed():
            return LIVE_GATE_BREACH
        state = self._states.state
        if state is not _ACTIVE:
            why = self._states.reason or state.value
            reason = RiskReason.HALTED if state is TradingState.HALTED else RiskReason.REDUCE_ONLY
            return reason, f"trading is {state.value} ({why}); only closes pass"
        pnl = portfolio.session_pnl()
        if pnl <= self._loss_floor and self._loss_breached(pnl, now_ns):
            return RiskReason.DAILY_LOSS_LIMIT, (
                f"session P&L ${pnl:,.2f} breaches the daily loss limit "
                f"${self._max_daily_loss:,.2f}; halted for the session"
            )
        underlying = intent.underlying
        last = market.last_data_ns(underlying)
        if last is None:
            return RiskReason.STALE_DATA, f"no market data for {underlying}"
        if now_ns - last > self._stale_ns:
            return RiskReason.STALE_DATA, self._stale_detail(underlying, "data", now_ns - last)
        equity = portfolio.equity()
        positions = portfolio.positions()
        # The order's size.
        if (
            facts.contracts > self._max_contracts_order
            or facts.premium_cents > self._max_premium_order_cents
        ):
            return self._size_detail(facts)
        # The portfolio caps, exact in integer cents.
        if equity is not self._caps_equity:
            self._caps_equity = equity
            self._caps = (
                cents_floor(self._trade_risk_pct * equity),
                self._portfolio_risk_pct * equity,
                float(equity),
            )
            eq = self._caps[2]
            p_delta, p_gamma, p_vega, p_theta = self._budget_pcts
            self._greek_limits = (
                p_delta * eq * 1.0,
                p_gamma * eq * 1.0,
                p_vega * eq * 1.0,
                p_theta * eq * 1.0,
            )
        trade_cap_cents, book_cap, eq = self._caps
        loss_cents = -facts.loss_cents
        if loss_cents > trade_cap_cents:
            return RiskReason.TRADE_RISK_CAP, self._trade_cap_detail(equity, max_loss)
        if len(positions) >= self._max_open_positions:
            return RiskReason.MAX_OPEN_POSITIONS, (
                f"{len(positions)} open positions, limit {self._max_open_positions}"
            )
        open_loss = self._open_loss(positions)
        headroom = self._headroom
        if headroom[0] is not book_cap or self._headroom_loss is not open_loss:
            self._headroom_loss = open_loss
            headroom = self._headroom = (book_cap, cents_floor(book_cap - open_loss))
        if loss_cents > headroom[1]:
            return RiskReason.PORTFOLIO_RISK_CAP, self._book_cap_detail(open_loss, equity, max_loss)
        # The trailing windows: orders per minute, size, re-entries, duplicates.
        window = self._windows.breach(facts, now_ns)
        if window is not None:
            return window
        # The market: the chain, the collar and the greek budgets after this order.
        book = self._books.get(market, underlying)
        if book is None:
            return RiskReason.MISSING_QUOTE, f"no option chain for {underlying}"
        if now_ns - book.chain.ts_ns > self._stale_ns:
            age_ns = now_ns - book.chain.ts_ns
            return RiskReason.STALE_DATA, self._stale_detail(underlying, "chain", age_ns)
        # The collar and the order's greeks in one pass over the legs (one quote read per leg).
        figures = band_and_greeks(
            facts.legs, intent.quantity, book, self._collar_tolerance, self._collar_tolerance_pct
        )
        if isinstance(figures, str):
            return RiskReason.MISSING_QUOTE, f"no two-sided quote for leg {figures}"
        low, high, far, natural, d, g, v, t = figures
        limit = facts.limit
        if limit > high + EPSILON or limit < low - EPSILON:  # collar.outside, both sides
            return RiskReason.PRICE_COLLAR, self._collar_detail(intent, low, high, far, natural)
        held = self._position_greeks.total_on(positions, self._books, market, (underlying, book))
        # Greeks.__add__ and _greek_breach(…, fraction 1.0) on plain floats; the message is
        # built by _greek_breach itself only on a breach.
        delta = held.delta + d
        gamma = held.gamma + g
        vega = held.vega + v
        theta = held.theta + t
        max_delta, max_gamma, max_vega, max_theta = self._greek_limits
        if (
            abs(delta) > max_delta
            or abs(gamma) > max_gamma
            or abs(vega) > max_vega
            or abs(theta) > max_theta
        ):
            post = Greeks(delta, gamma, vega, theta, held.missing)
            breach = self._greek_breach(post, eq, 1.0)
            if breach is not None:
                return RiskReason.GREEK_BUDGET, f"after this order the {breach}"
        return None

    # The rejection messages of _opening_breach (cold: built only on a breach).
    def _stale_detail(self, underlying: str, what: str, age_ns: int) -> str:
        age = Decimal(age_ns) / NS_PER_S
        return f"{underlying} {what} is {age:.1f} s old, limit {self._risk.stale_data_seconds} s"

    def _size_detail(self, facts: OrderFacts) -> Breach:
        contracts = facts.contracts
        if contracts > self._max_contracts_order:
            return RiskReason.ORDER_CONTRACTS, (
                f"{contracts} contracts in one order, limit {self._max_contracts_order}"
            )
        return RiskReason.ORDER_PREMIUM, (
            f"premium ${cents_to_dollars(facts.premium_cents):,.2f} (|limit| × quantity × 100) "
            "exceeds the per-order "
            f"limit ${self._max_premium_order:,.2f}"
        )

    def _trade_cap_detail(self, equity: Decimal, max_loss: Decimal) -> str:
        cap = self._trade_risk_pct * equity
        return (
            f"max loss ${-max_loss:,.2f} exceeds {self._trade_risk_pct} × equity "
            f"${equity:,.2f} = ${cap:,.2f}"
        )

    def _book_cap_detail(self, open_loss: Decimal, equity: Decimal, max_loss: Decimal) -> str:
        book_cap = self.portfolio_risk_pct * equity
        return (
            f"open max loss ${open_loss:,.2f} + this order's ${-max_loss:,.2f} exceeds "
            f"{self.portfolio_risk_pct} × equity ${equity:,.2f} = ${book_cap:,.2f}"
        )

    def _collar_detail(
        self, intent: SubmitOrder, low: float, high: float, far: float, natural: float
    ) -> str:
        risk = self._risk
        return (
            f"limit {intent.limit_price} outside the collar [{low:.4f}, "
            f"{high:.4f}] (far {far:.2f}, natural {natural:.2f}, tolerance "
            f"{risk.collar_tolerance} + {risk.collar_tolerance_pct} × mid per leg)"
        )

    def _open_loss(self, positions: list[Position]) -> Decimal:
        """Σ −max loss of the open positions; kept while the same Position objects come back
        (frozen copies, held here so their identities cannot be reused)."""
        held = self._loss_of
        if len(held) == len(positions) and all(map(is_, held, positions)):
            return self._loss_sum
        total = ZERO
        for p in positions:
            total += p.max_loss
        self._loss_of = positions[:]
        self._loss_sum = -total
        return self._loss_sum

    def _close_collar(
        self, intent: SubmitOrder, facts: OrderFacts, market: ChainMarketView, now_ns: int
    ) -> Breach | None:
        # An exit must always be possible: no chain, a stale chain or a leg without a quote
        # skips the collar (the broker's limit protects the order); only an absurd price fails.
        book = self._books.get(market, intent.underlying)
        if book is None or now_ns - book.chain.ts_ns > self._stale_ns:
            return None
        risk = self._risk
        band = band_of(
            facts.legs, book, risk.close_collar_tolerance, risk.close_collar_tolerance_pct
        )
        if isinstance(band, str):
            return None
        _, high, _, natural = band
        if facts.limit <= high + EPSILON:  # collar.outside, through_only
            return None
        return RiskReason.PRICE_COLLAR, (
            f"closing limit {intent.limit_price} is through the market: natural "
            f"{natural:.2f}, at most {high:.4f} with the close tolerance "
            f"{risk.close_collar_tolerance} + {risk.close_collar_tolerance_pct} × mid per leg"
        )

    def _decide(
        self,
        intent: SubmitOrder,
        now_ns: int,
        reason: RiskReason,
        detail: str,
        max_loss: Decimal,
    ) -> RiskDecided:
        self._counts[reason] += 1
        # As in check(): rejections are timed decisions too.
        return risk_decided(
            intent, now_ns, reason is _APPROVED, reason, detail, max_loss, self._states.state
        )
