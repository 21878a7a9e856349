"""gnosisd quant benchmark: a SPY-sized chain (>= 8,000 contracts over >= 20 expiries) through
implied vols, greeks and SVI smile fits, and `implied_vol` beside a vollib loop on the same options.

Run: .venv/bin/python bench/quant.py [--repeat N] [--vollib-sample N]
Figures are printed with the machine they were measured on; nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import date

import numpy as np
from machine import describe, spy_listing  # bench/machine.py (the scripts run from bench/)

from gnosisd.bus.events import ChainSnapshot
from gnosisd.feeds.listing import expiry_close_ns
from gnosisd.feeds.surface import SurfaceParams, price_chain
from gnosisd.quant import bsm
from gnosisd.quant.chain import analyze_chain, chain_implied_vols
from gnosisd.quant.iv import implied_vol, solve_implied_vol

DAY = date(2026, 11, 24)
SPOT = 600.0
RATE, DIV = 0.043, 0.012


def machine() -> str:
    return describe("numpy", "scipy")


def spy_sized_chain() -> ChainSnapshot:
    """A SPY-like listing on the simulated surface: dailies, weeklies and two years of monthlies,
    $1 strikes near the money and $5 strikes further out (bands widening with √T)."""
    grid = spy_listing(SPOT, DAY)
    day_close = expiry_close_ns(DAY)
    ts = day_close - 5 * 3_600 * 10**9  # 11:00 New York
    return price_chain(grid, ts, SPOT, RATE, DIV, 0.16, SurfaceParams(long_run_vol=0.19), 0.3)


def best_ms(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(best, median) wall time in ms over `repeat` runs after one warm-up."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return min(times), statistics.median(times)


def vollib_loop(chain: ChainSnapshot, mid: np.ndarray, rows: np.ndarray) -> np.ndarray:
    from vollib.black_scholes_merton.implied_volatility import implied_volatility

    out = np.full(rows.size, np.nan)
    for j, i in enumerate(rows.tolist()):
        try:
            out[j] = implied_volatility(
                float(mid[i]),
                chain.spot,
                float(chain.strike[i]),
                float(chain.t_years[i]),
                chain.rate,
                chain.div_yield,
                "c" if chain.is_call[i] else "p",
            )
        except Exception:  # vollib raises on prices outside its bounds
            out[j] = np.nan
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--vollib-sample", type=int, default=0, help="0 = every contract")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    chain = spy_sized_chain()
    n = len(chain)
    print(f"chain: SPY-like, {n:,} contracts over {len(chain.expiries)} expiries, spot {SPOT}")
    mid = np.where((chain.bid > 0) & (chain.ask >= chain.bid), chain.mid, np.nan)

    def ivs() -> object:
        return implied_vol(
            chain.is_call, mid, chain.spot, chain.strike, chain.t_years, chain.rate, chain.div_yield
        )

    iv, rejected = chain_implied_vols(chain)
    res = solve_implied_vol(
        chain.is_call, mid, chain.spot, chain.strike, chain.t_years, chain.rate, chain.div_yield
    )

    def greeks() -> object:
        return bsm.greeks(
            chain.is_call, chain.spot, chain.strike, chain.t_years, chain.rate, chain.div_yield, iv
        )

    def fits() -> object:
        return analyze_chain(chain, iv=iv)

    first = analyze_chain(chain, iv=iv)

    def fits_warm() -> object:
        return analyze_chain(chain, iv=iv, previous=first)

    def pipeline() -> object:
        vols, _ = chain_implied_vols(chain)
        bsm.greeks(
            chain.is_call,
            chain.spot,
            chain.strike,
            chain.t_years,
            chain.rate,
            chain.div_yield,
            vols,
        )
        return analyze_chain(chain, iv=vols, previous=first)

    t_iv = best_ms(ivs, args.repeat)
    t_gk = best_ms(greeks, args.repeat)
    t_fit = best_ms(fits, args.repeat)
    t_warm = best_ms(fits_warm, args.repeat)
    t_all = best_ms(pipeline, args.repeat)
    print(
        f"implied vols: {np.count_nonzero(np.isfinite(iv)):,} solved, rejected {rejected}, "
        f"at most {res.iterations} Householder steps"
    )
    print(
        f"smiles: {np.count_nonzero(np.isfinite(first.smile.a))} SVI fits, "
        f"{first.smile.iterations} LM iterations cold, butterfly-free "
        f"{int(first.smile.butterfly_ok.sum())}, calendar violations {first.calendar_violations}"
    )
    print(
        f"  ATM IV 7/30/60 d {first.atm_iv_7d:.4f} / {first.atm_iv_30d:.4f} / "
        f"{first.atm_iv_60d:.4f}; RR25 {first.rr25_30d:+.4f}, BF25 {first.bf25_30d:+.4f}; "
        f"front move {first.expected_move_front:.2f}"
    )
    print("timings, ms (best / median of", args.repeat, "runs)")
    for name, (best, med) in (
        ("implied_vol, whole chain", t_iv),
        ("greeks, whole chain", t_gk),
        ("chain analytics (SVI fits cold)", t_fit),
        ("chain analytics (SVI warm start)", t_warm),
        ("quant pipeline: IV + greeks + analytics (warm)", t_all),
    ):
        print(f"  {name:48s} {best:8.2f} / {med:8.2f}")

    rows = np.flatnonzero(np.isfinite(mid))
    if args.vollib_sample and args.vollib_sample < rows.size:
        rows = np.sort(np.random.default_rng(0).choice(rows, args.vollib_sample, replace=False))
    ref_times = []
    for _ in range(3):
        t0 = time.perf_counter()
        ref = vollib_loop(chain, mid, rows)
        ref_times.append((time.perf_counter() - t0) * 1e3)
    t_ref, t_ref_med = min(ref_times), statistics.median(ref_times)
    sub_mid = mid[rows]

    def ours() -> object:
        return implied_vol(
            chain.is_call[rows],
            sub_mid,
            chain.spot,
            chain.strike[rows],
            chain.t_years[rows],
            chain.rate,
            chain.div_yield,
        )

    t_ours, t_ours_med = best_ms(ours, args.repeat)
    mine = implied_vol(
        chain.is_call[rows],
        sub_mid,
        chain.spot,
        chain.strike[rows],
        chain.t_years[rows],
        chain.rate,
        chain.div_yield,
    )
    both = np.isfinite(ref) & np.isfinite(mine)
    print(f"implied_vol vs vollib loop on the same {rows.size:,} quotes, ms (best / median):")
    print(
        f"  vollib (Let's Be Rational, a call per option; 3 runs) {t_ref:9.2f} / {t_ref_med:9.2f}"
    )
    print(
        f"  gnosisd.quant.iv.implied_vol (vectorised)             {t_ours:9.2f} / {t_ours_med:9.2f}"
    )
    print(
        f"  speed-up {t_ref / t_ours:,.0f}x (best to best), "
        f"{t_ref_med / t_ours_med:,.0f}x (median to median)"
    )
    print(
        f"  agreement: max |Δσ| {np.max(np.abs(ref[both] - mine[both])):.2e} over {both.sum():,} "
        f"quotes both solved; vollib-only {np.count_nonzero(np.isfinite(ref) & ~both)}, "
        f"ours-only {np.count_nonzero(np.isfinite(mine) & ~both)}"
    )
    print("targets: whole chain pipeline (with the engines' exposures) < 20 ms; >= 100x vollib")


if __name__ == "__main__":
    main()
