"""Engine update cost: the four engines on a SPY-sized option chain and per bar, quote, trade, news.

Run: .venv/bin/python bench/engines.py [--repeats N]
Prints the median and p90 of each update with the machine it ran on; nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta

import numpy as np
from machine import describe  # bench/machine.py (the scripts run from bench/)

from gnosisd.bus.events import Bar, ChainSnapshot, NewsItem, Quote, Trade
from gnosisd.core.config import (
    HedgeConfig,
    LiquidityConfig,
    SentimentConfig,
    VolatilityConfig,
)
from gnosisd.engines.garch import garch_forecast
from gnosisd.engines.hedge import HedgeEngine
from gnosisd.engines.liquidity import LiquidityEngine
from gnosisd.engines.sentiment import SentimentEngine
from gnosisd.engines.volatility import VolatilityEngine
from gnosisd.testing.chains import DEFAULT_AS_OF_NS, make_chain

NS_PER_MIN = 60_000_000_000


def machine() -> str:
    return describe("numpy")


def spy_chain() -> ChainSnapshot:
    """24 expiries (0DTE, dailies, weeklies, monthlies) × 171 strikes × call/put = 8,208 contracts,
    with a put skew in IV and open interest concentrated near the money."""
    today = date(2025, 6, 2)
    expiries = [today + timedelta(days=d) for d in (0, 1, 2, 3, 4, 7, 8, 9, 10, 11, 14)]
    expiries += [today + timedelta(days=d) for d in (18, 25, 32, 46, 60, 74, 88, 109, 137)]
    expiries += [today + timedelta(days=d) for d in (200, 291, 382, 564)]
    strikes = [float(k) for k in range(415, 586)]
    chain = make_chain("SPY", spot=500.0, expiries=expiries, strikes=strikes, iv=0.16)
    m = np.log(chain.strike / chain.spot)
    iv = np.clip(0.16 - 0.35 * m + 0.8 * m * m, 0.06, 1.5)
    rng = np.random.default_rng(1)
    oi = (20_000 * np.exp(-0.5 * (m / 0.05) ** 2) * rng.lognormal(0, 0.5, len(chain))).astype(
        np.int64
    )
    return replace(chain, iv=iv, open_interest=oi)


def timed(fn: Callable[[int], object], repeats: int) -> tuple[float, float]:
    """(median, p90) of `fn(i)` in microseconds over `repeats` calls."""
    out = []
    for i in range(repeats):
        t0 = time.perf_counter_ns()
        fn(i)
        out.append((time.perf_counter_ns() - t0) / 1e3)
    return statistics.median(out), float(np.percentile(out, 90))


def row(name: str, figures: tuple[float, float]) -> None:
    med, p90 = figures
    print(f"  {name:<44} median {med:>10.1f} µs   p90 {p90:>10.1f} µs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=50, help="chain updates per engine")
    args = parser.parse_args()
    print(f"machine: {machine()}")

    chain = spy_chain()
    print(f"chain: {len(chain):,} contracts, {len(chain.expiries)} expiries")
    hedge = HedgeEngine("SPY", HedgeConfig())
    liq = LiquidityEngine("SPY", LiquidityConfig())
    sent = SentimentEngine("SPY", SentimentConfig())
    t0 = time.perf_counter()
    vol = VolatilityEngine("SPY", VolatilityConfig())  # backfill from the bundled proxies
    construct_s = time.perf_counter() - t0
    vol.update(chain)  # first event of the day: the once-a-session GARCH fit happens here

    print("per chain snapshot:")
    results = {
        "hedge (exposures, profile, flip)": timed(lambda i: hedge.update(chain), args.repeats),
        "liquidity": timed(lambda i: liq.update(chain), args.repeats),
        "sentiment": timed(lambda i: sent.update(chain), args.repeats),
        "volatility": timed(lambda i: vol.update(chain), args.repeats),
    }
    for name, fig in results.items():
        row(name, fig)
    total = sum(med for med, _ in results.values())
    print(f"  {'all four engines (sum of medians)':<44} {total / 1000:>17.2f} ms")

    snap = hedge.update(chain)
    assert snap is not None
    print(
        f"  hedge on this chain: GEX {snap.metrics['gex']:,.0f} $/1%, "
        f"flip {snap.metrics['gamma_flip']:.2f}, 0DTE share {snap.metrics['zero_dte_share']:.2f}"
    )

    n = 20_000
    bars = []
    price = 500.0
    rng = np.random.default_rng(2)
    for i in range(n):
        o = price
        c = o * float(np.exp(rng.normal(0, 0.0005)))
        h, lo = max(o, c) * 1.0002, min(o, c) * 0.9998
        bars.append(Bar("SPY", DEFAULT_AS_OF_NS + i * NS_PER_MIN, o, h, lo, c, 50_000.0))
        price = c
    quotes = [Quote("SPY", b.ts_ns, b.close - 0.01, b.close + 0.01, 100, 100) for b in bars]
    trades = [Trade("SPY", b.ts_ns + 1, b.close, 100.0) for b in bars]
    news = NewsItem(DEFAULT_AS_OF_NS, "SPY tumbles as recession fears grip markets", ("SPY",))
    print(f"per event ({n:,} events each):")
    row("liquidity per bar", timed(lambda i: liq.update(bars[i]), n))
    row("liquidity per quote", timed(lambda i: liq.update(quotes[i]), n))
    row("liquidity per trade", timed(lambda i: liq.update(trades[i]), n))
    row("sentiment per bar", timed(lambda i: sent.update(bars[i]), n))
    row("sentiment per news item", timed(lambda i: sent.update(news), 2_000))
    vol2 = VolatilityEngine("SPY", VolatilityConfig(iv_backfill="none"))
    row("volatility per bar (4 estimators)", timed(lambda i: vol2.update(bars[i]), n))

    returns = np.array([r for _, r, _ in vol.returns_history()])
    row(
        f"GARCH(1,1) fit + 21-day forecast ({returns.size} returns)",
        timed(lambda i: garch_forecast(returns, 21), 10),
    )
    print(f"  volatility engine construction with proxy backfill: {construct_s * 1000:.0f} ms")


if __name__ == "__main__":
    main()
