"""Run the daemon in-process through simulated sessions, with every output under tmp_path."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest

from gnosisd.core.calendar import TradingCalendar
from gnosisd.core.config import Settings
from gnosisd.runtime.daemon import Daemon, RunOptions, RunSummary, sim_clock_for
from gnosisd.runtime.logging import configure_logging, shutdown_logging

FIRST_DAY = date(2026, 11, 23)


def make_settings(tmp_path: Path, **sections: dict[str, Any]) -> Settings:
    data: dict[str, Any] = {
        "runtime": {
            "runs_dir": tmp_path / "runs",
            "logs_dir": tmp_path / "logs",
            "state_dir": tmp_path / "state",
        },
        "risk": {"kill_file": tmp_path / "state" / "KILL"},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return Settings(**data)


async def run_daemon(
    settings: Settings,
    *,
    sessions: int = 1,
    symbols: list[str] | None = None,
    seed: int = 7,
    daemon_cls: type[Daemon] = Daemon,
    **options: Any,
) -> tuple[RunSummary, Daemon]:
    calendar = TradingCalendar()
    days = [calendar.session(FIRST_DAY)]
    while len(days) < sessions:
        days.append(calendar.next_session(days[-1].day))
    opts = RunOptions(
        symbols=symbols or ["SPY"], sessions=days, seed=seed, handle_signals=False, **options
    )
    clock = sim_clock_for(opts)
    configure_logging(settings.runtime.log_level, settings.runtime.logs_dir, clock, console=False)
    try:
        daemon = daemon_cls(settings, opts, calendar, clock)
        summary = await daemon.run()
    finally:
        shutdown_logging()
    return summary, daemon


def journal_lines(runs_dir: Path, suffix: str) -> Iterator[dict[str, Any]]:
    for path in sorted(runs_dir.glob(f"*/*_{suffix}.jsonl")):
        for line in path.read_bytes().splitlines():
            yield orjson.loads(line)


def log_lines(logs_dir: Path, kind: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for path in sorted(logs_dir.glob(f"{kind}_*.log")):
        out.extend(orjson.loads(line) for line in path.read_bytes().splitlines())
    return out


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)
