"""Benchmark of `gnosisd review`: a year of journals for four symbols, reviewed with DuckDB.

The journal is generated once with the simulated market and broker (one daemon process per symbol,
in parallel) into a cache directory, then reviewed (text tables and, with --html, the report) and
timed. Generation takes a while (5-9 s per session and symbol on one core: about 40 minutes on
two cores for the default year); the review itself is the figure of interest (issue 7: under 5 s).

Run: .venv/bin/python bench/review.py [--sessions 252] [--symbols SPY,QQQ,IWM,DIA] [--cache DIR]
     [--html] [--repeat 3] [--generate-only]
Figures are printed with the machine they were measured on; nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import orjson
from machine import describe  # bench/machine.py (the scripts run from bench/)

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CACHE = REPO / "bench" / "results"
FIRST_DAY = date(2025, 1, 2)


def machine() -> str:
    return describe("duckdb")


# ---------------------------------------------------------------- generation
def _generate_symbol(job: tuple[str, int, str, int, str]) -> tuple[str, float, int, int]:
    """Run the daemon for one symbol through `sessions` sessions into the shared runs dir."""
    symbol, seed, first, sessions, out = job
    from gnosisd.core.calendar import TradingCalendar
    from gnosisd.core.config import Settings
    from gnosisd.runtime.app import run_event_loop
    from gnosisd.runtime.daemon import Daemon, RunOptions, sim_clock_for
    from gnosisd.runtime.logging import configure_logging, shutdown_logging

    root = Path(out)
    work = root / "work" / symbol
    settings = Settings(
        runtime={
            "runs_dir": root / "runs",
            "logs_dir": work / "logs",
            "state_dir": work / "state",
            "symbols": [symbol],
            "log_level": "WARNING",
        },
        risk={"kill_file": work / "KILL"},
    )
    calendar = TradingCalendar()
    days = [calendar.session(date.fromisoformat(first))]
    while len(days) < sessions:
        days.append(calendar.next_session(days[-1].day))
    options = RunOptions(symbols=[symbol], sessions=days, seed=seed, handle_signals=False)
    clock = sim_clock_for(options)
    configure_logging("WARNING", settings.runtime.logs_dir, clock, console=False)
    t0 = time.perf_counter()
    try:
        daemon = Daemon(settings, options, calendar, clock)
        summary = run_event_loop(daemon.run())
    finally:
        shutdown_logging()
    return symbol, time.perf_counter() - t0, summary.ideas, summary.fills


def generate(cache: Path, symbols: list[str], sessions: int, first: date, jobs: int) -> Path:
    """Generate the journal into `cache` unless a complete one is there; return the runs dir."""
    marker = cache / "complete.json"
    if marker.is_file():
        return cache / "runs"
    if cache.exists():
        shutil.rmtree(cache)  # an interrupted generation: start over
    cache.mkdir(parents=True)
    print(f"generating {sessions} sessions x {', '.join(symbols)} into {cache} ({jobs} processes)")
    t0 = time.perf_counter()
    work = [(s, 7 + i, first.isoformat(), sessions, str(cache)) for i, s in enumerate(symbols)]
    with multiprocessing.get_context("spawn").Pool(jobs) as pool:
        results = pool.map(_generate_symbol, work)
    elapsed = time.perf_counter() - t0
    for symbol, seconds, ideas, fills in results:
        print(f"  {symbol}: {seconds:,.0f} s, {ideas:,} ideas, {fills:,} fills")
    shutil.rmtree(cache / "work", ignore_errors=True)
    marker.write_bytes(
        orjson.dumps(
            {
                "symbols": symbols,
                "sessions": sessions,
                "first_day": first.isoformat(),
                "generation_seconds": round(elapsed, 1),
            }
        )
    )
    return cache / "runs"


def journal_size(runs: Path) -> tuple[int, int, int]:
    files = list(runs.glob("*/*.jsonl"))
    lines = 0
    size = 0
    for f in files:
        data = f.read_bytes()
        size += len(data)
        lines += data.count(b"\n")
    return len(files), lines, size


# ---------------------------------------------------------------- review timing
def time_review(runs: Path, repeat: int, html: bool) -> None:
    from gnosisd.runtime.review import default_rules
    from gnosisd.store.report import format_review, write_report
    from gnosisd.store.review import ReviewQuery, run_review

    rules = default_rules()
    query = ReviewQuery(runs_dir=runs)
    timings: list[float] = []
    review = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        review = run_review(query, rules)
        text = format_review(review)
        timings.append(time.perf_counter() - t0)
    assert review is not None
    print(text)
    print(
        f"review (load + queries + checks + text): median {statistics.median(timings):.2f} s, "
        f"min {min(timings):.2f} s over {repeat} runs"
    )
    if html:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "review.html"
            t0 = time.perf_counter()
            write_report(review, path)
            seconds = time.perf_counter() - t0
            print(f"html report: {seconds:.2f} s, {path.stat().st_size / 1024:,.0f} KiB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=252)
    parser.add_argument("--symbols", default="SPY,QQQ,IWM,DIA")
    parser.add_argument("--first-day", type=date.fromisoformat, default=FIRST_DAY)
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--html", action="store_true", help="also time the HTML report")
    parser.add_argument("--generate-only", action="store_true")
    args = parser.parse_args()
    symbols = [s.strip().upper() for s in args.symbols.split(",") if s.strip()]
    key = f"review-journal-{args.first_day}-{args.sessions}-{'-'.join(symbols)}"
    cache = args.cache or DEFAULT_CACHE / key
    runs = generate(cache, symbols, args.sessions, args.first_day, args.jobs)
    files, lines, size = journal_size(runs)
    print(f"machine: {machine()}")
    print(f"journal: {runs}: {files:,} files, {lines:,} lines, {size / 1024 / 1024:,.1f} MiB")
    if args.generate_only:
        return 0
    time_review(runs, args.repeat, args.html)
    return 0


if __name__ == "__main__":
    sys.exit(main())
