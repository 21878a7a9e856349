"""The status file (0600, atomic) and `gnosisd status`: running 0, halted 3, down 4."""

from __future__ import annotations

import os
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from gnosisd.bus.bus import Bus
from gnosisd.bus.events import RiskDecided, SubmitOrder
from gnosisd.bus.topics import Topic
from gnosisd.cli import main
from gnosisd.core.clock import LiveClock, SimClock
from gnosisd.core.config import RuntimeConfig
from gnosisd.core.enums import PositionEffect, RiskReason, TradingState
from gnosisd.runtime.metrics import Telemetry
from gnosisd.runtime.status import (
    EXIT_DOWN,
    EXIT_HALTED,
    EXIT_RUNNING,
    StatusWriter,
    assess,
    format_status,
    read_status,
    status_path,
    write_status,
)
from gnosisd.testing.chains import DEFAULT_AS_OF_NS, make_chain
from tests.unit.runtime.test_metrics import Book, Chains

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


def _writer(path: Path, state: TradingState = TradingState.ACTIVE) -> StatusWriter:
    chain = make_chain()
    telemetry = Telemetry(
        bus=Bus(),
        clock=SimClock(DEFAULT_AS_OF_NS),
        portfolio=Book(chain),
        chains=Chains(chain),
        trading_state=lambda: state,
        dropped=Counter(),
        symbols=["SPY"],
    )
    intent = SubmitOrder(
        intent_id="open-1",
        underlying="SPY",
        ts_ns=DEFAULT_AS_OF_NS,
        effect=PositionEffect.OPEN,
        legs=(),
        quantity=2,
        limit_price=Decimal("3.10"),
        strategy_type="call_debit_spread",
    )
    telemetry.on_event(
        Topic.DECISIONS,
        RiskDecided(
            intent=intent,
            ts_ns=DEFAULT_AS_OF_NS,
            approved=True,
            reason=RiskReason.APPROVED,
            detail="approved",
            max_loss=Decimal("-620"),
            trading_state=TradingState.ACTIVE,
        ),
    )
    return StatusWriter(path, telemetry, mode={"feed": "sim", "broker": "sim"}, stale_after_s=120)


def _doc(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "pid": os.getpid(),
        "running": True,
        "updated_at": NOW.isoformat(),
        "interval_seconds": 2.0,
        "trading_state": "active",
        "trading_state_reason": "",
    }
    doc.update(changes)
    return doc


def test_status_file_is_replaced_atomically_and_readable_only_by_its_owner(tmp_path: Path) -> None:
    path = tmp_path / "state" / "status.json"
    write_status(path, {"n": 1})
    write_status(path, {"n": 2})
    assert read_status(path) == {"n": 2}
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["status.json"]  # no temp files left


def test_status_document_has_state_positions_orders_streams_and_last_decision(
    tmp_path: Path,
) -> None:
    writer = _writer(tmp_path / "status.json")
    assert writer.write()
    doc = read_status(writer.path)
    assert doc is not None
    assert doc["running"] is True and doc["pid"] == os.getpid()
    assert doc["trading_state"] == "active"
    assert doc["session_pnl"] == "-42.50" and doc["equity"] == "100150.00"
    assert [p["position_id"] for p in doc["positions"]] == ["p1"]
    assert [o["intent_id"] for o in doc["open_orders"]] == ["open-1"]
    assert doc["streams"][0]["stream"] == "SPY" and doc["streams"][0]["last_data_at"] is None
    assert doc["last_decision"]["approved"] is True
    assert doc["last_decision"]["strategy_type"] == "call_debit_spread"
    assert assess(doc, LiveClock().now()).code == EXIT_RUNNING
    writer.write(running=False)
    assert read_status(writer.path)["running"] is False  # type: ignore[index]


def test_a_status_file_that_cannot_be_written_is_logged_not_raised(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    writer = _writer(blocker / "status.json")
    assert writer.write() is False
    assert writer.write() is False


@pytest.mark.parametrize(
    ("doc", "alive", "code", "summary"),
    [
        (None, True, EXIT_DOWN, "down: no status file"),
        (_doc(running=False), True, EXIT_DOWN, "down: stopped at"),
        (_doc(), False, EXIT_DOWN, "down: process"),
        (
            _doc(updated_at=(NOW - timedelta(seconds=30)).isoformat()),
            True,
            EXIT_DOWN,
            "down: status not updated for 30 s",
        ),
        (
            _doc(trading_state="halted", trading_state_reason="daily loss limit"),
            True,
            EXIT_HALTED,
            "running, trading halted: daily loss limit",
        ),
        (_doc(trading_state="reducing"), True, EXIT_HALTED, "running, trading reducing"),
        (_doc(), True, EXIT_RUNNING, "running, trading active"),
    ],
)
def test_assess_tells_running_halted_or_down(
    doc: dict[str, Any] | None, alive: bool, code: int, summary: str
) -> None:
    verdict = assess(doc, NOW, alive=lambda _: alive)
    assert verdict.code == code
    assert verdict.summary.startswith(summary)


def test_status_path_defaults_to_the_state_dir() -> None:
    assert status_path(RuntimeConfig(state_dir=Path("/s"))) == Path("/s/status.json")
    explicit = RuntimeConfig(state_dir=Path("/s"), status_file=Path("/run/g.json"))
    assert status_path(explicit) == Path("/run/g.json")


def test_human_status_lists_what_an_operator_needs(tmp_path: Path) -> None:
    writer = _writer(tmp_path / "status.json", TradingState.HALTED)
    doc = writer.document()
    text = format_status(doc, assess(doc, LiveClock().now()))
    assert text.startswith("gnosisd: running, trading halted")
    for part in ("today's P&L     -42.50 USD", "positions       1", "open orders     1", "SPY"):
        assert part in text
    assert "last decision" in text and "approved" in text


def test_cli_status_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "status.json"
    assert main(["status", "--status-file", str(path)]) == EXIT_DOWN
    assert "down: no status file" in capsys.readouterr().out
    writer = _writer(path)
    writer.write()
    assert main(["status", "--status-file", str(path)]) == EXIT_RUNNING
    assert "gnosisd: running, trading active" in capsys.readouterr().out
    halted = _writer(path, TradingState.HALTED)
    halted.write()
    assert main(["status", "--status-file", str(path), "--json"]) == EXIT_HALTED
    payload = orjson.loads(capsys.readouterr().out)
    assert payload["exit_code"] == EXIT_HALTED
    assert payload["status"]["trading_state"] == "halted"
    halted.write(running=False)
    assert main(["status", "--status-file", str(path)]) == EXIT_DOWN


def test_an_unreadable_status_file_means_down(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "status.json"
    path.write_text("{not json")
    assert main(["status", "--status-file", str(path)]) == EXIT_DOWN
    assert "down: unreadable status file" in capsys.readouterr().out
