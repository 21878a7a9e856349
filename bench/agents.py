"""gnosisd trade-agent benchmark: build, price, profile, size and rank every candidate idea for one
symbol from a full chain (issue 4, item 10: under 50 ms).

Two chains: the simulated market's own SPY chain (gnosisd.feeds.sim.SimMarket, as the daemon sees
it) and a SPY-sized listing (>= 8,000 contracts over >= 20 expiries: dailies, weeklies, two years of
monthlies, $1 strikes near the money) priced on the same simulated surface at that moment.
Timed: `TradeAgent.propose` with every strategy routed (16 candidates, each sized into an idea with
its P&L cone), and with the default routing table over the nine cells of contexts.

Run: .venv/bin/python bench/agents.py [--repeat N] [--seed N]
Figures are printed with the machine they were measured on; nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import get_args

import numpy as np
from machine import describe, spy_listing  # bench/machine.py (the scripts run from bench/)

from gnosisd.agents.exits import exit_rules_for_strategy
from gnosisd.agents.trade_agent import TradeAgent
from gnosisd.bus.events import ChainSnapshot
from gnosisd.bus.records import MarketContext
from gnosisd.core.calendar import TradingCalendar
from gnosisd.core.clock import ns_to_datetime
from gnosisd.core.config import LiquidityConfig, RoutingCell, TradeAgentConfig
from gnosisd.core.enums import Direction, Regime, StrategyType
from gnosisd.feeds.sim import PROFILES, SimMarket
from gnosisd.feeds.surface import SurfaceParams, price_chain

DAY = date(2026, 11, 24)
EQUITY = Decimal(1_000_000)


def machine() -> str:
    return describe("numpy", "scipy")


def sim_chain(seed: int) -> ChainSnapshot:
    """The simulated market's SPY chain one hour after the open of DAY."""
    cal = TradingCalendar()
    session = cal.session(DAY)
    market = SimMarket(["SPY"], seed=seed, calendar=cal)
    chain: ChainSnapshot | None = None
    for ts, event in market.session_events(session):
        if isinstance(event, ChainSnapshot):
            chain = event
            if ts >= session.open.timestamp() * 1e9 + 3_600e9:
                break
    assert chain is not None
    return chain


def spy_sized_chain(like: ChainSnapshot) -> ChainSnapshot:
    """A SPY-sized listing priced on the simulated surface at `like`'s time, spot and ATM level."""
    spot = like.spot
    grid = spy_listing(spot, DAY, min_open_interest=50)
    atm = like.iv[np.argmin(np.abs(like.strike - spot) + 10.0 * like.expiry_idx)]
    base = PROFILES["SPY"].base_vol
    return price_chain(
        grid, like.ts_ns, spot, like.rate, like.div_yield, float(atm),
        SurfaceParams(long_run_vol=base * 1.1), 0.3,
    )  # fmt: skip


def context(chain: ChainSnapshot, direction: Direction, iv_rank: float) -> MarketContext:
    return MarketContext(
        symbol="SPY",
        as_of=ns_to_datetime(chain.ts_ns),
        spot=chain.spot,
        direction=direction,
        confidence=0.7,
        regime=Regime.RANGE,
        iv_rank=iv_rank,
        expected_move=chain.spot * 0.3 * math.sqrt(30 / 365),
        exit_rules=exit_rules_for_strategy(StrategyType.LONG_CALL, 0.7),
    )


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float, float]:
    """(median, p95, best) wall time in ms over `repeat` runs after two warm-ups."""
    fn()
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), float(np.percentile(times, 95)), min(times)


def bench_chain(name: str, chain: ChainSnapshot, repeat: int) -> None:
    print(
        f"\n{name}: {len(chain):,} contracts over {len(chain.expiries)} expiries, spot {chain.spot}"
    )
    cells: tuple[RoutingCell, ...] = get_args(RoutingCell)
    every = TradeAgentConfig(
        max_ideas_per_decision=len(StrategyType),
        long_option_min_confidence=0.0,
        routing={cell: list(StrategyType) for cell in cells},
        max_portfolio_risk_pct=1.0,
    )
    force = {(s, r): 0.25 for s in StrategyType for r in Regime}  # every candidate gets a size
    agent = TradeAgent(every, LiquidityConfig(), 0.02, 0.001, kelly_overrides=force)
    ctx = context(chain, Direction.NEUTRAL, 0.5)
    ideas = agent.propose(ctx, chain, EQUITY, chain.ts_ns, open_positions=[])
    kinds = sorted(i.strategy_type.value for i in ideas)
    print(f"  all strategies: {len(ideas)} ideas ({', '.join(kinds)})")
    if agent.last_rejections:
        print(f"  not built: {[(s.value, why) for s, why in agent.last_rejections]}")
    med, p95, best = timed(
        lambda: agent.propose(ctx, chain, EQUITY, chain.ts_ns, open_positions=[]), repeat
    )
    print(f"  build + price + profile + size + rank + cones, 16 strategies: "
          f"median {med:.2f} ms, p95 {p95:.2f} ms, best {best:.2f} ms")  # fmt: skip
    default = TradeAgent(
        TradeAgentConfig(max_ideas_per_decision=10), LiquidityConfig(), 0.02, 0.001
    )
    for direction in Direction:
        for rank in (0.1, 0.5, 0.9):
            c = context(chain, direction, rank)
            n = len(default.propose(c, chain, EQUITY, chain.ts_ns, open_positions=[]))
            med, p95, _ = timed(
                lambda c=c: default.propose(c, chain, EQUITY, chain.ts_ns, open_positions=[]),
                repeat,
            )
            routed = len(default.last_candidates) + len(default.last_rejections)
            print(f"  default routing {direction.value:8s} iv_rank {rank}: {routed} candidates, "
                  f"{n} ideas, median {med:.2f} ms, p95 {p95:.2f} ms")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    chain = sim_chain(args.seed)
    bench_chain("simulated market SPY chain", chain, args.repeat)
    bench_chain("SPY-sized listing on the simulated surface", spy_sized_chain(chain), args.repeat)


if __name__ == "__main__":
    main()
