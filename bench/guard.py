"""gnosisd risk-guard benchmark: the latency of one `RiskGuard.check` decision (issue 5, item 15:
under 50 µs at p99) over a realistic mix, and of the greek-budget pass on a portfolio mark.

Market: a SPY-sized listing (>= 8,000 contracts, bench/agents.py) priced on the simulated surface,
held in the runtime's MarketState and re-stamped every simulated minute (a new chain object, so
the guard's per-chain quote cache starts cold each minute, as in the daemon). Portfolio: 10 open
positions (credit spreads, debit spreads, iron condors, 2 lots each) filled by the simulated
broker into a real Ledger. Mix per 10 intents: 7 opens priced at the legs' limit prices (they run
every check: collar, portfolio cap, greek budgets), 1 open through the market (collar reject) and
2 closes of open positions. The clock advances 7 s per intent.

Two portfolio views: the real Ledger (positions() and equity() memoised per ledger version) and
a snapshot of the same positions (the guard's own cost). The chain's symbol index is
built when the chain is published (the ledger marks it first in the daemon), not in the timing.

Run: .venv/bin/python bench/guard.py [--checks N] [--seed N]
(GNOSISD_NATIVE=0 times the Python sources instead of the mypyc-compiled risk modules; the
header says which ran.) Figures are printed with the machine they were measured on; nothing
here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal

import numpy as np
from agents import sim_chain, spy_sized_chain  # bench/agents.py (the scripts run from bench/)
from machine import describe

from gnosisd.agents.pricing import leg_limit_price
from gnosisd.broker.ledger import Ledger
from gnosisd.broker.sim import SimBroker
from gnosisd.bus.events import ChainSnapshot, OrderLeg, SubmitOrder
from gnosisd.core import native
from gnosisd.core.calendar import TradingCalendar
from gnosisd.core.config import ExecutionConfig, RiskConfig
from gnosisd.core.enums import OptionType, PositionEffect, Side
from gnosisd.core.occ import occ_symbol
from gnosisd.core.views import PortfolioView, Position
from gnosisd.risk.guard import RiskGuard
from gnosisd.runtime.market_state import MarketState

CASH = Decimal(1_000_000)
SLIPPAGE = Decimal("0.001")
NS_PER_S = 1_000_000_000
# Windows and position count opened wide so that every open runs the whole path (the slowest).
RISK = {
    "max_open_positions": 100,
    "max_contracts_per_window": 1_000_000,
    "max_premium_per_window": 1e12,
    "max_orders_per_minute": 100,
}
Spec = tuple[tuple[Side, bool, int], ...]  # (side, is_call, strike)


@dataclass
class Snapshot:
    """The ledger's view frozen once: what the guard itself costs without the ledger's work."""

    equity_: Decimal
    pnl: Decimal
    open_positions: list[Position]

    def equity(self) -> Decimal:
        return self.equity_

    def cash(self) -> Decimal:
        return self.equity_

    def positions(self) -> list[Position]:
        return list(self.open_positions)

    def session_pnl(self) -> Decimal:
        return self.pnl


def machine() -> str:
    return describe("numpy")


def order(
    chain: ChainSnapshot,
    expiry: date,
    intent_id: str,
    spec: Spec,
    ts_ns: int,
    *,
    effect: PositionEffect = PositionEffect.OPEN,
    position_id: str | None = None,
    through: Decimal = Decimal(0),
    strategy: str = "custom",
) -> SubmitOrder:
    """An order on `spec` priced like the agents price (mid moved by the slippage, to the cent)."""
    legs: list[OrderLeg] = []
    net = Decimal(0)
    mids = chain.mid
    for side, is_call, k in spec:
        kind = OptionType.CALL if is_call else OptionType.PUT
        symbol = occ_symbol("SPY", expiry, kind, Decimal(k))
        mid = Decimal(repr(round(float(mids[chain.row(symbol)]), 4)))
        buying = side is Side.BUY
        price = leg_limit_price(mid, buying, SLIPPAGE)
        net += price if buying else -price
        legs.append(OrderLeg(symbol, side, 1, kind, Decimal(k), expiry))
    return SubmitOrder(
        intent_id=intent_id,
        underlying="SPY",
        ts_ns=ts_ns,
        effect=effect,
        legs=tuple(legs),
        quantity=2,
        limit_price=net + through,
        position_id=position_id,
        strategy_type=strategy,
    )


def structures(atm: int, i: int) -> tuple[str, Spec]:
    b, s = Side.BUY, Side.SELL
    k = atm + (i % 7) - 3
    shapes: list[tuple[str, Spec]] = [
        ("put_credit_spread", ((s, False, k - 10), (b, False, k - 15))),
        ("call_credit_spread", ((s, True, k + 10), (b, True, k + 15))),
        ("iron_condor", ((b, False, k - 20), (s, False, k - 15), (s, True, k + 15), (b, True, k + 20))),
        ("call_debit_spread", ((b, True, k), (s, True, k + 5))),
        ("put_debit_spread", ((b, False, k), (s, False, k - 5))),
    ]  # fmt: skip
    return shapes[i % len(shapes)]


def reverse(spec: Spec) -> Spec:
    return tuple((Side.SELL if sd is Side.BUY else Side.BUY, c, k) for sd, c, k in spec)


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def run(checks: int, seed: int) -> None:
    base = spy_sized_chain(sim_chain(seed))
    # The expiry nearest 30 days out, as the trade agent's target_dte picks.
    exp_i = int(np.argmin(np.abs(_dte(base) - 30)))
    expiry = base.expiries[exp_i]
    atm = round(base.spot)
    print(
        f"chain: {len(base):,} contracts over {len(base.expiries)} expiries; spot {base.spot:.2f}"
    )
    print(f"orders on the {expiry} expiry; risk overrides {RISK}")

    ledger = Ledger(CASH)
    broker = SimBroker(ExecutionConfig(initial_cash=float(CASH)), ledger)
    t0 = base.ts_ns
    open_specs: dict[str, Spec] = {}
    for i in range(10):
        name, spec = structures(atm, i * 3 + 1)
        intent = order(base, expiry, f"pos-{i}", spec, t0, strategy=name)
        broker.submit(intent, base, t0)
        open_specs[intent.intent_id] = spec
    ledger.mark(base)
    assert len(ledger.positions()) == 10, "the simulated broker did not fill every position"
    snapshot = Snapshot(ledger.equity(), ledger.session_pnl(), ledger.positions())

    for label, view in (("real Ledger", ledger), ("snapshot portfolio", snapshot)):
        timed_mix(label, view, base, expiry, atm, open_specs, checks)


def _dte(chain: ChainSnapshot) -> np.ndarray:
    """Days to each expiry of the chain."""
    first_rows = [int(np.argmax(chain.expiry_idx == i)) for i in range(len(chain.expiries))]
    return np.asarray(chain.t_years[first_rows]) * 365.0


def timed_mix(
    label: str,
    view: PortfolioView,
    base: ChainSnapshot,
    expiry: date,
    atm: int,
    open_specs: dict[str, Spec],
    checks: int,
) -> None:
    cfg = RiskConfig.model_validate({"kill_file": "/nonexistent/gnosisd-bench/KILL", **RISK})
    guard = RiskGuard(cfg, TradingCalendar(), broker_is_live=False)
    market = MarketState()
    pids = list(open_specs)
    now = base.ts_ns
    chain = base
    market.set_chain(chain)
    # Build the intents first (pricing them is the agents' work, not the guard's).
    intents: list[tuple[int, SubmitOrder]] = []
    for i in range(checks):
        now += 7 * NS_PER_S
        kind = i % 10
        if kind < 7:
            name, spec = structures(atm, i)
            intents.append((now, order(base, expiry, f"o-{i}", spec, now, strategy=name)))
        elif kind == 7:
            name, spec = structures(atm, i)
            bad = order(base, expiry, f"x-{i}", spec, now, through=Decimal(10), strategy=name)
            intents.append((now, bad))
        else:
            pid = pids[i % len(pids)]
            close = order(
                base, expiry, f"c-{i}", reverse(open_specs[pid]), now,
                effect=PositionEffect.CLOSE, position_id=pid,
            )  # fmt: skip
            intents.append((now, close))
    lat: list[float] = []
    marks: list[float] = []
    first: list[float] = []  # the first check on each new chain (the quote cache is cold)
    reasons: dict[str, int] = {}
    chain_minute = base.ts_ns
    fresh = False
    for ts, intent in intents:
        if ts - chain_minute >= 60 * NS_PER_S:  # a new chain each simulated minute
            chain_minute = ts
            chain = replace(base, ts_ns=ts)
            chain.row(chain.symbols[0])  # the index the ledger's mark builds on publication
            market.set_chain(chain)
            market.touch("SPY", ts)
            # The daemon marks the ledger on each chain and the guard checks the mark
            # (PortfolioMarked): daily loss and greek budgets on the new chain.
            t = time.perf_counter_ns()
            guard.on_mark(Decimal(0), view, market, ts)
            marks.append((time.perf_counter_ns() - t) / 1_000)
            fresh = True
        market.touch("SPY", ts)
        t = time.perf_counter_ns()
        d = guard.check(intent, view, market, ts)
        us = (time.perf_counter_ns() - t) / 1_000
        lat.append(us)
        if fresh:
            first.append(us)
            fresh = False
        reasons[d.reason.value] = reasons.get(d.reason.value, 0) + 1
    print(
        f"\n{label}: RiskGuard.check over {len(lat):,} intents: p50 {pct(lat, 50):.1f} µs, "
        f"p99 {pct(lat, 99):.1f} µs, max {max(lat):.1f} µs"
    )
    print(
        f"  first check on a new chain ({len(first):,}): p50 {pct(first, 50):.1f} µs, "
        f"p99 {pct(first, 99):.1f} µs"
    )
    print(f"  decisions: {dict(sorted(reasons.items()))}")
    print(
        f"  on_mark on each new chain ({len(marks):,}; daily loss + greek budgets of 10 "
        f"positions): p50 {pct(marks, 50):.1f} µs, p99 {pct(marks, 99):.1f} µs"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print("machine:", machine())
    print("risk modules:", native.status())  # compiled by mypyc or interpreted, and why
    run(args.checks, args.seed)


if __name__ == "__main__":
    main()
