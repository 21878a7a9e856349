"""Tests for gnosisd.runtime.logging: daily JSON files, level and audit routing, redaction."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
import structlog

from gnosisd.core.clock import SimClock, datetime_to_ns
from gnosisd.core.errors import ConfigError
from gnosisd.runtime.logging import (
    REDACTED,
    LogFiles,
    audit_logger,
    clear_secrets,
    configure_logging,
    register_secrets,
    remove_old_logs,
    shutdown_logging,
)

# 14:30 UTC = 09:30 New York on 2025-01-15.
START = datetime(2025, 1, 15, 14, 30, tzinfo=UTC)


def _ns(dt: datetime) -> int:
    return datetime_to_ns(dt)


@pytest.fixture
def clock() -> SimClock:
    return SimClock(_ns(START))


@pytest.fixture
def restore_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("ALPACA_API_KEY", raising=False)
    monkeypatch.delenv("ALPACA_SECRET_KEY", raising=False)
    root = logging.getLogger()
    level = root.level
    yield
    shutdown_logging()
    clear_secrets()
    structlog.reset_defaults()
    root.setLevel(level)


@pytest.fixture
def logs(tmp_path: Path, clock: SimClock, restore_logging: None) -> LogFiles:
    return configure_logging("INFO", tmp_path / "logs", clock, console=False)


def _lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    raw = path.read_bytes()
    assert raw == b"" or raw.endswith(b"\n"), f"{path} ends mid-line"
    return [orjson.loads(line) for line in raw.splitlines()]


def _events(path: Path) -> list[str]:
    return [line["event"] for line in _lines(path)]


def test_creates_pipeline_errors_and_audit_files_named_by_new_york_date(
    tmp_path: Path, restore_logging: None
) -> None:
    # 03:00 UTC on the 15th is still the 14th in New York.
    clock = SimClock(_ns(datetime(2025, 1, 15, 3, 0, tzinfo=UTC)))
    files = configure_logging("INFO", tmp_path / "logs", clock, console=False)
    structlog.stdlib.get_logger("t").error("boom")
    audit_logger().info("order intent")

    names = sorted(p.name for p in (tmp_path / "logs").iterdir())
    assert names == ["audit_20250114.log", "errors_20250114.log", "pipeline_20250114.log"]
    assert files.pipeline() == tmp_path / "logs" / "pipeline_20250114.log"
    assert files.errors(date(2025, 1, 2)).name == "errors_20250102.log"
    assert files.audit().name == "audit_20250114.log"


def test_routes_levels_to_pipeline_and_errors_files(logs: LogFiles) -> None:
    log = structlog.stdlib.get_logger("gnosisd.test")
    log.debug("below the configured level")
    log.info("info line")
    log.warning("warning line")
    log.error("error line")

    assert _events(logs.pipeline()) == ["info line", "warning line", "error line"]
    assert _events(logs.errors()) == ["error line"]
    assert _events(logs.audit()) == []


def test_daily_loss_limit_message_passes_verbatim_at_critical(logs: LogFiles) -> None:
    structlog.stdlib.get_logger("gnosisd.risk").critical(
        "Daily loss limit reached. Halting trading.", daily_pnl=Decimal("-5000.01")
    )

    for path in (logs.pipeline(), logs.errors()):
        (line,) = _lines(path)
        assert line["event"] == "Daily loss limit reached. Halting trading."
        assert line["level"] == "critical"
        assert line["daily_pnl"] == "-5000.01"


def test_every_line_is_json_with_clock_timestamp_level_logger_event_first(
    logs: LogFiles, clock: SimClock
) -> None:
    structlog.stdlib.get_logger("gnosisd.engines").info("snapshot", symbol="SPY", iv_rank=0.42)
    clock.advance_to(clock.now_ns() + 1_500_000_000)
    logging.getLogger("asyncio").warning("stdlib %s", "message")

    first, second = _lines(logs.pipeline())
    assert list(first)[:4] == ["timestamp", "level", "logger", "event"]
    assert first == {
        "timestamp": "2025-01-15T14:30:00.000000Z",
        "level": "info",
        "logger": "gnosisd.engines",
        "event": "snapshot",
        "symbol": "SPY",
        "iv_rank": 0.42,
    }
    assert second["timestamp"] == "2025-01-15T14:30:01.500000Z"
    assert second["logger"] == "asyncio"
    assert second["event"] == "stdlib message"
    assert second["level"] == "warning"


def test_audit_logger_events_go_to_audit_and_pipeline_only(logs: LogFiles) -> None:
    audit = audit_logger(symbol="SPY")
    audit.info("risk decision", approved=False, reason="daily loss limit")
    structlog.stdlib.get_logger("gnosisd.broker").info("not audit")

    (line,) = _lines(logs.audit())
    assert line["event"] == "risk decision"
    assert line["reason"] == "daily loss limit"
    assert line["symbol"] == "SPY"
    assert line["audit"] is True
    assert _events(logs.pipeline()) == ["risk decision", "not audit"]
    assert _events(logs.errors()) == []


def test_any_logger_bound_with_audit_true_lands_in_audit_file(logs: LogFiles) -> None:
    structlog.stdlib.get_logger("gnosisd.broker").bind(audit=True).info("fill", qty=1)
    assert _events(logs.audit()) == ["fill"]


def test_audit_events_survive_a_warning_log_level(
    tmp_path: Path, clock: SimClock, restore_logging: None
) -> None:
    files = configure_logging("WARNING", tmp_path / "logs", clock, console=False)
    audit_logger().info("submission", order_id="o-1")
    structlog.stdlib.get_logger("x").info("dropped at warning")
    logging.getLogger("foreign").info("foreign info dropped too")

    assert _events(files.audit()) == ["submission"]
    assert _events(files.pipeline()) == ["submission"]


def test_redacts_sensitive_keys_at_any_depth(logs: LogFiles) -> None:
    structlog.stdlib.get_logger("x").info(
        "connecting",
        ALPACA_SECRET_KEY="s3cr3t-value",
        api_key="AKXXXX",
        headers={"Authorization": "Bearer abc", "Accept": "json"},
        nested=[{"password": "hunter22"}],
        user="alice",
    )
    (line,) = _lines(logs.pipeline())
    assert line["ALPACA_SECRET_KEY"] == REDACTED
    assert line["api_key"] == REDACTED
    assert line["headers"] == {"Authorization": REDACTED, "Accept": "json"}
    assert line["nested"] == [{"password": REDACTED}]
    assert line["user"] == "alice"


def test_masks_registered_secret_values_in_event_fields_and_tracebacks(logs: LogFiles) -> None:
    register_secrets("PKSECRETVALUE123")
    log = structlog.stdlib.get_logger("x")
    log.warning("url has PKSECRETVALUE123 inside", detail="x=PKSECRETVALUE123;y", n=3)
    try:
        raise RuntimeError("auth failed for PKSECRETVALUE123")
    except RuntimeError:
        log.exception("broker call failed")

    text = logs.pipeline().read_text() + logs.errors().read_text()
    assert "PKSECRETVALUE123" not in text
    first, second = _lines(logs.pipeline())
    assert first["event"] == f"url has {REDACTED} inside"
    assert first["detail"] == f"x={REDACTED};y"
    assert "RuntimeError" in second["exception"]
    assert second["event"] == "broker call failed"


def test_ignores_empty_and_too_short_secret_values(logs: LogFiles) -> None:
    # Masking "ab" would wreck every line that contains those two letters.
    register_secrets("", None, "ab")
    structlog.stdlib.get_logger("x").info("about an abacus")
    assert _events(logs.pipeline()) == ["about an abacus"]


def test_masks_alpaca_and_bearer_headers_in_free_text(logs: LogFiles) -> None:
    structlog.stdlib.get_logger("x").info(
        "request",
        dump="APCA-API-KEY-ID: AKID123 APCA-API-SECRET-KEY: SECRETXYZ",
        raw="Authorization: Bearer tok.en-value",
    )
    (line,) = _lines(logs.pipeline())
    assert line["dump"] == f"APCA-API-KEY-ID: {REDACTED} APCA-API-SECRET-KEY: {REDACTED}"
    assert line["raw"] == f"Authorization: Bearer {REDACTED}"


def test_environment_broker_keys_are_masked_without_registration(
    tmp_path: Path, clock: SimClock, restore_logging: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALPACA_SECRET_KEY", "envsecretvalue")
    files = configure_logging("INFO", tmp_path / "logs", clock, console=False)
    structlog.stdlib.get_logger("x").info("loaded envsecretvalue")
    assert _events(files.pipeline()) == [f"loaded {REDACTED}"]


def test_rolls_over_to_new_files_when_new_york_date_changes(
    logs: LogFiles, clock: SimClock
) -> None:
    log = structlog.stdlib.get_logger("x")
    log.error("day one")
    # 04:59 UTC on the 16th is 23:59 on the 15th in New York: same file.
    clock.advance_to(_ns(datetime(2025, 1, 16, 4, 59, tzinfo=UTC)))
    log.error("late day one")
    clock.advance_to(_ns(datetime(2025, 1, 16, 5, 0, 1, tzinfo=UTC)))
    log.error("day two")

    day1, day2 = date(2025, 1, 15), date(2025, 1, 16)
    assert _events(logs.pipeline(day1)) == ["day one", "late day one"]
    assert _events(logs.errors(day1)) == ["day one", "late day one"]
    assert _events(logs.pipeline(day2)) == ["day two"]
    assert logs.pipeline() == logs.pipeline(day2)


def test_lines_stay_whole_under_concurrent_threads(logs: LogFiles) -> None:
    log = structlog.stdlib.get_logger("x")

    def work(n: int) -> None:
        for i in range(200):
            log.info("tick", thread=n, i=i, pad="x" * 500)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = _lines(logs.pipeline())
    assert len(lines) == 1200
    assert {(ln["thread"], ln["i"]) for ln in lines} == {
        (n, i) for n in range(6) for i in range(200)
    }


def test_shutdown_closes_files_and_later_lines_do_not_reach_them(logs: LogFiles) -> None:
    log = structlog.stdlib.get_logger("x")
    log.warning("before shutdown")
    shutdown_logging()
    shutdown_logging()  # idempotent
    logging.getLogger("x").info("after shutdown")
    assert _events(logs.pipeline()) == ["before shutdown"]
    assert not any(type(h).__name__ == "DailyFileHandler" for h in logging.getLogger().handlers)


def test_reconfiguring_replaces_handlers_instead_of_duplicating_lines(
    tmp_path: Path, clock: SimClock, restore_logging: None
) -> None:
    configure_logging("INFO", tmp_path / "logs", clock, console=False)
    files = configure_logging("INFO", tmp_path / "logs", clock, console=False)
    structlog.stdlib.get_logger("x").info("once")
    assert _events(files.pipeline()) == ["once"]


def test_console_output_is_human_readable_and_redacted(
    tmp_path: Path,
    clock: SimClock,
    restore_logging: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO", tmp_path / "logs", clock, console=True)
    register_secrets("consolesecret")
    structlog.stdlib.get_logger("x").warning("hello consolesecret", token="t0k")
    err = capsys.readouterr().err
    assert "hello [REDACTED]" in err
    assert "consolesecret" not in err
    assert "t0k" not in err
    assert not err.lstrip().startswith("{")


def test_rejects_unknown_log_level(tmp_path: Path, clock: SimClock, restore_logging: None) -> None:
    with pytest.raises(ConfigError, match="VERBOSE"):
        configure_logging("VERBOSE", tmp_path / "logs", clock, console=False)


def test_level_name_is_case_insensitive(
    tmp_path: Path, clock: SimClock, restore_logging: None
) -> None:
    files = configure_logging("debug", tmp_path / "logs", clock, console=False)
    structlog.stdlib.get_logger("x").debug("visible")
    assert _events(files.pipeline()) == ["visible"]


def test_remove_old_logs_deletes_only_files_older_than_retention(tmp_path: Path) -> None:
    for name in (
        "pipeline_20250101.log",
        "errors_20250101.log",
        "audit_20250110.log",
        "pipeline_20250111.log",
        "notes_20240101.log",
    ):
        (tmp_path / name).write_text("")
    removed = remove_old_logs(tmp_path, keep_days=5, today=date(2025, 1, 15))
    assert [p.name for p in removed] == ["errors_20250101.log", "pipeline_20250101.log"]
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ["audit_20250110.log", "notes_20240101.log", "pipeline_20250111.log"]


def test_other_logging_handlers_receive_already_redacted_events(
    logs: LogFiles, caplog: pytest.LogCaptureFixture
) -> None:
    register_secrets("handlersecret")
    with caplog.at_level(logging.INFO):
        structlog.stdlib.get_logger("x").info("see handlersecret", password="pw")
    (record,) = [r for r in caplog.records if r.name == "x"]
    event_dict: Any = record.msg  # structlog hands the stdlib record its event dict
    assert event_dict["event"] == f"see {REDACTED}"
    assert event_dict["password"] == REDACTED


_KILLED_CHILD = """
import os, signal, sys
from pathlib import Path
import structlog
from gnosisd.core.clock import SimClock
from gnosisd.runtime.logging import audit_logger, configure_logging
configure_logging("INFO", Path(sys.argv[1]), SimClock(1_736_951_400_000_000_000), console=False)
for i in range(50):
    audit_logger().info("fill", i=i)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_lines_logged_before_an_abrupt_kill_are_all_on_disk(tmp_path: Path) -> None:
    logs_dir = tmp_path / "logs"
    proc = subprocess.run(
        [sys.executable, "-c", _KILLED_CHILD, str(logs_dir)], capture_output=True, check=False
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    (audit_file,) = logs_dir.glob("audit_*.log")
    assert [line["i"] for line in _lines(audit_file)] == list(range(50))
