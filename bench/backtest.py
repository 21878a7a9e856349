"""Backtest benchmarks: replay data path (bars/s), the full pipeline over a year of 1-minute bars
with a model chain every 15 minutes, and an Optuna optimisation over two years of daily data.

Run: .venv/bin/python bench/backtest.py [--days 252] [--trials 100] [--n-jobs 2] [--skip-pipeline]
     [--skip-optimize]. Figures are printed with the machine; nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import machine

from gnosisd.core.calendar import TradingCalendar
from gnosisd.core.clock import NEW_YORK
from gnosisd.core.config import Settings
from gnosisd.feeds.replay import ReplayFeed, load_bars
from gnosisd.runtime.backtest import (
    BacktestRequest,
    backtest_settings,
    make_daemon,
    plan,
    run_daemon_async,
)

ROOT = Path(__file__).resolve().parents[1]


def minute_bars(path: Path, calendar: TradingCalendar, days: int, seed: int = 1) -> int:
    """Write `days` sessions of synthetic 1-minute SPY bars (GBM, 16% vol) to Parquet."""
    sessions = [s for s in calendar.sessions(date(2024, 1, 2), date(2025, 6, 30))][:days]
    rng = np.random.default_rng(seed)
    frames = []
    price = 470.0
    for s in sessions:
        n = int((s.close - s.open).total_seconds() // 60)
        start = pd.Timestamp(s.open).tz_convert(NEW_YORK)
        times = pd.date_range(start, periods=n, freq="min")
        rets = rng.normal(0.0, 0.16 / np.sqrt(252 * 390), n)
        close = price * np.exp(np.cumsum(rets))
        opens = np.concatenate([[price], close[:-1]])
        frames.append(
            pd.DataFrame(
                {
                    "timestamp": times,
                    "symbol": "SPY",
                    "open": opens,
                    "high": np.maximum(opens, close) + 0.02,
                    "low": np.minimum(opens, close) - 0.02,
                    "close": close,
                    "volume": rng.integers(5_000, 50_000, n).astype(float),
                }
            )
        )
        price = float(close[-1])
    frame = pd.concat(frames, ignore_index=True)
    frame.to_parquet(path)
    return len(frame)


def data_path(path: Path, calendar: TradingCalendar) -> None:
    t0 = time.perf_counter()
    data = load_bars(path, calendar)
    t_load = time.perf_counter() - t0
    feed = ReplayFeed(data, ["SPY"], seed=1, calendar=calendar, chains=False)
    days = data.days()
    sessions = feed.sessions(days[0], days[-1])
    t0 = time.perf_counter()
    n = 0
    for s in sessions:
        for _ in feed.session_events(s):
            n += 1
    t_emit = time.perf_counter() - t0
    print(f"data path: {n:,} bars over {len(sessions)} sessions")
    print(f"  load (Parquet → arrays)   {t_load:7.2f} s   {n / t_load:12,.0f} bars/s")
    print(f"  emit (Bar events)         {t_emit:7.2f} s   {n / t_emit:12,.0f} bars/s")
    print(
        f"  load + emit               {t_load + t_emit:7.2f} s   {n / (t_load + t_emit):12,.0f} bars/s"
    )


def pipeline(path: Path, calendar: TradingCalendar, bars: int) -> None:
    from gnosisd.runtime.app import run_event_loop
    from gnosisd.runtime.logging import configure_logging, shutdown_logging

    data = load_bars(path, calendar)
    days = data.days()
    with tempfile.TemporaryDirectory() as tmp:
        base = Settings(runtime={"chain_refresh_minutes": 15})
        settings = backtest_settings(base, Path(tmp))
        request = BacktestRequest(
            days[0], days[-1], ["SPY"], feed="replay", data=data, progress=False
        )
        planned = plan(settings, request, calendar)
        from gnosisd.runtime.daemon import sim_clock_for

        clock = sim_clock_for(planned[1])
        configure_logging("INFO", settings.runtime.logs_dir, clock, console=False)
        try:
            t0 = time.perf_counter()
            daemon = make_daemon(settings, request, calendar, planned, clock)
            result = run_event_loop(run_daemon_async(daemon, request))
            wall = time.perf_counter() - t0
        finally:
            shutdown_logging()
    s = result.summary
    chains = s.bus.get("md.chains", {}).get("published", 0)
    print(
        f"full pipeline: {len(result.sessions)} sessions, {bars:,} 1-minute bars, {chains:,} model "
        f"chains (every 15 min), {s.contexts:,} contexts, {s.ideas:,} ideas, {s.fills:,} fills"
    )
    print(
        f"  wall {wall:7.1f} s   {bars / wall:10,.0f} bars/s   {wall / len(result.sessions) * 1e3:6.0f} ms/session"
    )


def optimize(trials: int, n_jobs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "config.yaml"
        cfg.write_text(f"runtime:\n  state_dir: {tmp}/state\n")
        argv = [sys.executable, "-m", "gnosisd.cli", "optimize", "--config", str(cfg)]
        argv += ["--trials", str(trials), "--n-jobs", str(n_jobs), "--seed", "1"]
        argv += ["--from", "2017-01-03", "--to", "2018-12-31", "--data", "arch:sp500"]
        t0 = time.perf_counter()
        done = subprocess.run(argv, cwd=tmp, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - t0
    if done.returncode != 0:
        print(f"optimize failed ({done.returncode}):\n{done.stderr[-2000:]}")
        return
    states = next((ln for ln in done.stdout.splitlines() if "trials " in ln), "").strip()
    print(
        f"optimize: {trials} trials, two years of daily data (2017-2018, arch:sp500), "
        f"--n-jobs {n_jobs}: {wall:.0f} s wall including the walk-forward report  [{states}]"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--days", type=int, default=252, help="sessions of 1-minute bars (one year)")
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--skip-pipeline", action="store_true")
    ap.add_argument("--skip-optimize", action="store_true")
    args = ap.parse_args()
    print(f"machine: {machine()}")
    print(f"date: {datetime.now(tz=NEW_YORK).date()}")
    calendar = TradingCalendar()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spy_1min.parquet"
        bars = minute_bars(path, calendar, args.days)
        data_path(path, calendar)
        if not args.skip_pipeline:
            pipeline(path, calendar, bars)
    if not args.skip_optimize:
        optimize(args.trials, args.n_jobs)


if __name__ == "__main__":
    main()
