"""Every gnosisd benchmark in one command, one after another, each printing its figures and machine.

Run: .venv/bin/python bench/all.py [--with-backtest]
The backtest/optimiser benchmark takes several minutes (a year of minute bars, 100 optimiser
trials), so it runs only with --with-backtest. Exits non-zero if any benchmark script failed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# (script, what it measures): the issue targets each one reports against.
QUICK = (
    ("run.py", "bus throughput and hop latency, event -> snapshot, one simulated session"),
    ("quant.py", "implied vols, greeks, SVI; implied_vol beside a vollib loop"),
    ("engines.py", "the four engines on a SPY-sized chain"),
    ("agents.py", "the trade agent: 16 strategies built, priced, sized, ranked"),
    ("guard.py", "one risk-guard decision (p50/p99)"),
    ("alpaca_boundary.py", "Alpaca quote -> bus through the fake servers"),
    ("review.py", "gnosisd review over a year of journals"),
)
SLOW = (("backtest.py", "one year of minute bars; 100 optimiser trials"),)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--with-backtest", action="store_true", help="also the multi-minute one")
    args = parser.parse_args()
    scripts = QUICK + (SLOW if args.with_backtest else ())
    failed: list[str] = []
    for script, what in scripts:
        print(f"\n===== bench/{script}: {what}", flush=True)
        start = time.perf_counter()
        done = subprocess.run([sys.executable, script], cwd=HERE, check=False)
        took = time.perf_counter() - start
        print(f"===== bench/{script}: exit {done.returncode} in {took:.0f} s", flush=True)
        if done.returncode != 0:
            failed.append(script)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
