"""Tests for gnosisd.store.journal: runbook line shapes, whole lines, torn-line tolerance."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from gnosisd.core.enums import OptionType
from gnosisd.core.errors import InvariantViolation
from gnosisd.store.journal import Journal, ReadStats, journal_path, read_journal

AS_OF = datetime(2025, 1, 15, 19, 30, tzinfo=UTC)  # 14:30 New York


def _raw_lines(path: Path) -> list[bytes]:
    data = path.read_bytes()
    assert data.endswith(b"\n")
    return data.splitlines()


def test_writes_runbook_line_shapes_to_kind_specific_files(tmp_path: Path) -> None:
    with Journal(tmp_path) as journal:
        journal.write("context", "SPY", AS_OF, {"direction": "bullish", "iv_rank": 0.81})
        journal.write("trade", "SPY", AS_OF, {"strategy_type": "straddle", "max_loss": -420})
        journal.write("order", "SPY", AS_OF, {"status": "filled"})

    day = tmp_path / "2025-01-15"
    assert sorted(p.name for p in day.iterdir()) == [
        "SPY_context.jsonl",
        "SPY_orders.jsonl",
        "SPY_trades.jsonl",
    ]
    (trade,) = _raw_lines(day / "SPY_trades.jsonl")
    assert orjson.loads(trade) == {
        "as_of": "2025-01-15T19:30:00+00:00",
        "symbol": "SPY",
        "trade": {"strategy_type": "straddle", "max_loss": -420},
    }
    assert list(orjson.loads(trade)) == ["as_of", "symbol", "trade"]
    (order,) = _raw_lines(day / "SPY_orders.jsonl")
    assert orjson.loads(order)["order"] == {"status": "filled"}


def test_date_directory_is_the_new_york_date_of_as_of(tmp_path: Path) -> None:
    late_evening_ny = datetime(2025, 1, 16, 2, 0, tzinfo=UTC)  # 21:00 on the 15th in New York
    with Journal(tmp_path) as journal:
        path = journal.write("trade", "QQQ", late_evening_ny, {"x": 1})
    assert path == tmp_path / "2025-01-15" / "QQQ_trades.jsonl"
    assert path == journal_path(tmp_path, "trade", "QQQ", date(2025, 1, 15))


def test_serialises_decimals_as_numbers_and_dates_as_iso(tmp_path: Path) -> None:
    payload: dict[Any, Any] = {
        "max_loss": Decimal("-412.50"),
        "expiry": date(2025, 2, 21),
        "right": OptionType.CALL,
        7: "int key",
        "strikes": (Decimal("450"), Decimal("455")),
    }
    with Journal(tmp_path) as journal:
        path = journal.write("trade", "SPY", AS_OF, payload)
    trade = orjson.loads(_raw_lines(path)[0])["trade"]
    assert trade["max_loss"] == -412.5
    assert isinstance(trade["max_loss"], float)
    assert trade["expiry"] == "2025-02-21"
    assert trade["right"] == "call"
    assert trade["7"] == "int key"
    assert trade["strikes"] == [450.0, 455.0]


@pytest.mark.parametrize(
    ("kind", "symbol", "as_of"),
    [
        ("fill", "SPY", AS_OF),
        ("trade", "../etc", AS_OF),
        ("trade", "", AS_OF),
        ("trade", "SPY", datetime(2025, 1, 15, 14, 30)),
    ],
)
def test_rejects_unknown_kind_unsafe_symbol_and_naive_time(
    tmp_path: Path, kind: str, symbol: str, as_of: datetime
) -> None:
    with pytest.raises(ValueError, match=r"kind|symbol|naive"):
        Journal(tmp_path).write(kind, symbol, as_of, {})  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_lines_are_whole_under_concurrent_writes_from_threads(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    pad = "y" * 3000

    def work(n: int) -> None:
        for i in range(150):
            journal.write("order", "SPY", AS_OF, {"thread": n, "i": i, "pad": pad})

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    journal.close()

    path = journal_path(tmp_path, "order", "SPY", date(2025, 1, 15))
    seen = {(o["order"]["thread"], o["order"]["i"]) for o in map(orjson.loads, _raw_lines(path))}
    assert seen == {(n, i) for n in range(8) for i in range(150)}
    assert journal.lines_written == 1200


def test_appends_across_journal_instances_without_truncating(tmp_path: Path) -> None:
    with Journal(tmp_path) as first:
        first.write("trade", "SPY", AS_OF, {"n": 1})
    with Journal(tmp_path) as second:
        path = second.write("trade", "SPY", AS_OF, {"n": 2})
    assert [o["trade"]["n"] for o in read_journal(path)] == [1, 2]


def test_keeps_one_descriptor_per_file_until_close(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    for _ in range(3):
        journal.write("trade", "SPY", AS_OF, {})
    journal.write("context", "SPY", AS_OF, {})
    assert len(journal.open_files) == 2
    journal.flush()
    journal.close()
    journal.close()  # idempotent
    assert journal.open_files == []
    with pytest.raises(InvariantViolation, match="after close"):
        journal.write("trade", "SPY", AS_OF, {})


def test_reader_skips_and_counts_a_torn_last_line(tmp_path: Path) -> None:
    with Journal(tmp_path) as journal:
        path = journal.write("trade", "SPY", AS_OF, {"n": 1})
    with path.open("ab") as f:
        f.write(b'{"as_of": "2025-01-15T19:30:00+00:00", "sym')
    stats = ReadStats()
    assert [o["trade"]["n"] for o in read_journal(path, stats)] == [1]
    assert (stats.lines, stats.torn, stats.torn_at) == (1, 1, [2])


def test_writer_terminates_a_torn_tail_before_appending(tmp_path: Path) -> None:
    with Journal(tmp_path) as journal:
        path = journal.write("trade", "SPY", AS_OF, {"n": 1})
    with path.open("ab") as f:
        f.write(b'{"as_of": "2025-01-15T19:3')  # a crash mid-line
    with Journal(tmp_path) as journal:
        journal.write("trade", "SPY", AS_OF, {"n": 2})
    stats = ReadStats()
    assert [o["trade"]["n"] for o in read_journal(path, stats)] == [1, 2]
    assert stats.torn == 1


@pytest.fixture
def jq() -> str:
    path = shutil.which("jq")
    if path is None:
        pytest.skip("jq is not installed: the runbook review queries cannot be run here")
    return path


def test_runbook_jq_review_queries_read_the_journal(tmp_path: Path, jq: str) -> None:
    with Journal(tmp_path) as journal:
        for day, strategy, loss, iv_rank in [
            (15, "straddle", Decimal("-812.40"), 0.82),
            (16, "iron_condor", Decimal("-350"), 0.40),
        ]:
            as_of = datetime(2025, 1, day, 20, 30, tzinfo=UTC)
            journal.write("context", "SPY", as_of, {"iv_rank": iv_rank, "exit_rules": {"tp": 0.5}})
            journal.write(
                "trade",
                "SPY",
                as_of,
                {"strategy_type": strategy, "max_loss": loss},
                extra={"context": {"iv_rank": iv_rank}},
            )

    trades = sorted(str(p) for p in tmp_path.glob("*/SPY_trades.jsonl"))

    def run(*args: str) -> list[str]:
        out = subprocess.run([jq, *args, *trades], capture_output=True, check=True, text=True)
        return out.stdout.split()

    assert run("-r", ".trade.strategy_type") == ["straddle", "iron_condor"]
    assert [float(x) for x in run(".trade.max_loss")] == [-812.4, -350.0]
    # The runbook's vol-routing query, exactly as written: trade lines carry a top-level context.
    assert run('select(.trade.strategy_type=="straddle") | .context.iv_rank') == ["0.82"]


def test_extra_keys_cannot_overwrite_the_line_shape(tmp_path: Path) -> None:
    with Journal(tmp_path) as journal, pytest.raises(ValueError, match="overwrite"):
        journal.write("trade", "SPY", AS_OF, {"strategy_type": "straddle"}, extra={"symbol": "X"})


def test_close_before_releases_earlier_days_and_a_late_line_reopens_its_file(
    tmp_path: Path,
) -> None:
    day1 = datetime(2025, 1, 15, 15, 0, tzinfo=UTC)
    day2 = datetime(2025, 1, 16, 15, 0, tzinfo=UTC)
    with Journal(tmp_path) as journal:
        journal.write("context", "SPY", day1, {"n": 1})
        journal.write("context", "SPY", day2, {"n": 2})
        journal.close_before(day2.date())
        assert [p.parent.name for p in journal.open_files] == ["2025-01-16"]
        journal.write("context", "SPY", day1, {"n": 3})  # late line for the earlier day
    lines = (tmp_path / "2025-01-15" / "SPY_context.jsonl").read_bytes().splitlines()
    assert [orjson.loads(x)["context"]["n"] for x in lines] == [1, 3]


def test_order_lines_are_fsynced_as_written_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    durable = Journal(tmp_path / "a", sync_kinds=("order",))
    durable.write("context", "SPY", AS_OF, {"x": 1})
    assert synced == []  # context lines wait for the session's flush
    durable.write("order", "SPY", AS_OF, {"intent_id": "i-1"})
    assert len(synced) == 1
    plain = Journal(tmp_path / "b")
    plain.write("order", "SPY", AS_OF, {"intent_id": "i-1"})
    assert len(synced) == 1  # without sync_kinds only flush() and close() fsync
    durable.close()
    plain.close()
