"""Shared by the bench scripts: the machine a benchmark ran on, and a SPY-sized listing."""

from __future__ import annotations

import contextlib
import importlib
import math
import os
import platform
from datetime import date
from decimal import Decimal
from pathlib import Path

import numpy as np

from gnosisd.core.calendar import TradingCalendar
from gnosisd.core.enums import OptionType
from gnosisd.core.occ import occ_symbol
from gnosisd.feeds.listing import ChainGrid, expiry_close_ns, listed_expiries


def describe(*packages: str) -> str:
    """CPU, cores, memory, load, OS, Python and the versions of `packages` (those importable)."""
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    extra = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        extra += f", {kb / 1024 / 1024:.0f} GiB RAM"
    with contextlib.suppress(OSError):
        extra += f", load average {os.getloadavg()[0]:.2f}"
    versions = [f"Python {platform.python_version()}"]
    for name in packages:
        with contextlib.suppress(ImportError):
            module = importlib.import_module(name)
            versions.append(f"{name} {getattr(module, '__version__', '?')}")
    return (
        f"{cpu}, {os.cpu_count()} cores{extra}; {platform.system()} {platform.release()}; "
        + ", ".join(versions)
    )


def spy_listing(spot: float, day: date, *, min_open_interest: int = 0, seed: int = 7) -> ChainGrid:
    """A SPY-sized listing for benchmarks: dailies, weeklies and two years of monthlies, $1 strikes
    near the money and $5 strikes further out (bands widening with √T); random open interest."""
    cal = TradingCalendar()
    expiries = listed_expiries(day, cal, daily_sessions=5, weekly_weeks=8, monthly_months=24)
    close = np.array([expiry_close_ns(e) for e in expiries], dtype=np.int64)
    day_close = expiry_close_ns(day)
    syms: list[str] = []
    calls: list[bool] = []
    strikes: list[float] = []
    idx: list[int] = []
    for i, exp in enumerate(expiries):
        t = (int(close[i]) - day_close) / (365.0 * 86_400e9) + 1.0 / 365.0
        fine = min(max(0.32 * math.sqrt(t), 0.03), 0.12)
        coarse = min(max(0.9 * math.sqrt(t), 0.08), 0.5)
        k_fine = np.arange(math.ceil(spot * (1 - fine)), math.floor(spot * (1 + fine)) + 1, 1.0)
        lo, hi = math.ceil(spot * (1 - coarse) / 5) * 5, math.floor(spot * (1 + coarse) / 5) * 5
        k_all = np.unique(np.concatenate([k_fine, np.arange(lo, hi + 1, 5.0)]))
        for is_call, kind in ((False, OptionType.PUT), (True, OptionType.CALL)):
            for k in k_all.tolist():
                syms.append(occ_symbol("SPY", exp, kind, Decimal(repr(k))))
                calls.append(is_call)
                strikes.append(k)
                idx.append(i)
    n = len(syms)
    rng = np.random.default_rng(seed)
    return ChainGrid(
        underlying="SPY",
        day=day,
        expiries=tuple(expiries),
        expiry_close_ns=close,
        symbols=tuple(syms),
        is_call=np.asarray(calls, dtype=np.bool_),
        strike=np.asarray(strikes, dtype=np.float64),
        expiry_idx=np.asarray(idx, dtype=np.int64),
        open_interest=rng.integers(min_open_interest, 20_000, n).astype(np.int64),
        daily_volume=rng.uniform(0, 5_000, n),
    )
