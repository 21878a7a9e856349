"""Daily log files older than runtime.log_retention_days are deleted as each new day starts."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import structlog

from gnosisd.core.clock import SimClock, datetime_to_ns
from gnosisd.runtime.logging import configure_logging, shutdown_logging


def _touch(logs: Path, *names: str) -> None:
    logs.mkdir(parents=True, exist_ok=True)
    for name in names:
        (logs / name).write_text("{}\n")


def test_old_logs_are_removed_when_the_first_file_of_a_day_opens(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    _touch(
        logs,
        "pipeline_20260128.log",
        "audit_20260129.log",
        "errors_20260130.log",
        "pipeline_20260131.log",
        "notes.txt",
    )
    clock = SimClock(datetime_to_ns(datetime(2026, 3, 1, 15, 0, tzinfo=UTC)))
    configure_logging("INFO", logs, clock, console=False, retention_days=30)
    try:
        log = structlog.stdlib.get_logger("retention-test")
        log.info("first line of 2026-03-01")
        # 30 days before 2026-03-01 is 2026-01-30: older files go, that day and later stay.
        assert sorted(p.name for p in logs.iterdir()) == [
            "errors_20260130.log",
            "notes.txt",
            "pipeline_20260131.log",
            "pipeline_20260301.log",
        ]
        clock.advance_to(datetime_to_ns(datetime(2026, 3, 2, 15, 0, tzinfo=UTC)))
        log.info("first line of 2026-03-02")
        assert not (logs / "errors_20260130.log").exists()
        assert (logs / "pipeline_20260131.log").exists()
        assert (logs / "pipeline_20260302.log").exists()
    finally:
        shutdown_logging()


def test_without_retention_nothing_is_removed(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    _touch(logs, "pipeline_20200101.log")
    clock = SimClock(datetime_to_ns(datetime(2026, 3, 1, 15, 0, tzinfo=UTC)))
    configure_logging("INFO", logs, clock, console=False)
    try:
        structlog.stdlib.get_logger("retention-test").info("a line")
    finally:
        shutdown_logging()
    assert (logs / "pipeline_20200101.log").exists()
