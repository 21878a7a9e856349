"""The machine a benchmark ran on, printed with every figure (shared by the bench scripts)."""

from __future__ import annotations

import contextlib
import importlib
import os
import platform
from pathlib import Path


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
