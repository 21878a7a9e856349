#!/usr/bin/env python3
"""Thin alias kept for the prototype runbook: `python scripts/run_daily_spy_paper.py [flags]`.

Same flags as `gnosisd paper` (--execute, --broker, --underlying-price, --capital, --output-dir,
--symbol); dry run by default.
"""

import sys

from gnosisd.cli import main

if __name__ == "__main__":
    sys.exit(main(["paper", *sys.argv[1:]]))
