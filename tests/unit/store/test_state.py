"""Tests for gnosisd.store.state: atomic JSON documents for restarts."""

from __future__ import annotations

import os
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from gnosisd.store.state import StateStore


def test_round_trips_a_document(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state")
    doc = {"SPY": {"iv_history": [0.18, 0.21, 0.19]}, "as_of": "2025-01-15"}
    path = store.save("iv_history", doc)
    assert path == tmp_path / "state" / "iv_history.json"
    assert store.load("iv_history") == doc


def test_load_returns_none_for_a_document_never_saved(tmp_path: Path) -> None:
    assert StateStore(tmp_path).load("ledger") is None


def test_decimals_are_stored_as_exact_strings_and_dates_as_iso(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    store.save("ledger", {"cash": Decimal("100000.10"), "day": date(2025, 1, 15)})
    loaded = store.load("ledger")
    assert loaded == {"cash": "100000.10", "day": "2025-01-15"}
    assert loaded is not None
    assert Decimal(loaded["cash"]) == Decimal("100000.10")


def test_save_replaces_the_previous_document(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    store.save("ledger", {"v": 1, "old": True})
    store.save("ledger", {"v": 2})
    assert store.load("ledger") == {"v": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ledger.json"]


def test_crash_during_replace_keeps_old_document_and_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = StateStore(tmp_path)
    store.save("ledger", {"v": 1})

    def crash(*_: Any) -> None:
        raise OSError("simulated crash before rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        store.save("ledger", {"v": 2})
    monkeypatch.undo()

    assert store.load("ledger") == {"v": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ledger.json"]


def test_crash_during_write_never_touches_the_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = StateStore(tmp_path)
    store.save("iv", {"v": 1})
    replaced: list[str] = []
    real_replace = os.replace

    def crash_fsync(_: int) -> None:
        raise OSError("disk full")

    def spy_replace(src: str, dst: str) -> None:
        replaced.append(dst)
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", crash_fsync)
    monkeypatch.setattr(os, "replace", spy_replace)
    with pytest.raises(OSError, match="disk full"):
        store.save("iv", {"v": 2})
    monkeypatch.undo()

    assert replaced == []
    assert store.load("iv") == {"v": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["iv.json"]


def test_unserialisable_document_is_refused_before_touching_disk(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state")
    with pytest.raises(TypeError):
        store.save("bad", {"x": object()})
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize("name", ["", "../escape", "a/b", ".hidden", "x.tmp"])
def test_rejects_names_that_are_not_plain_file_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="state name"):
        StateStore(tmp_path).save(name, {})


def test_delete_removes_a_document(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    store.save("x", {"a": 1})
    assert store.delete("x") is True
    assert store.delete("x") is False
    assert store.load("x") is None


def test_load_refuses_a_document_that_is_not_an_object(tmp_path: Path) -> None:
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="expected a JSON object"):
        StateStore(tmp_path).load("list")
