"""atomic_write: the whole new file or the old one, with the asked permissions, no temp left."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from gnosisd.core.files import atomic_write


@pytest.mark.parametrize("durable", [True, False])
def test_the_file_is_replaced_whole_and_no_temp_file_is_left(tmp_path: Path, durable: bool) -> None:
    target = tmp_path / "sub" / "doc.json"
    assert atomic_write(target, b"old", durable=durable) == target
    atomic_write(target, b"new content", durable=durable)
    assert target.read_bytes() == b"new content"
    assert sorted(p.name for p in target.parent.iterdir()) == ["doc.json"]


def test_mode_sets_the_permissions_and_the_default_is_owner_only(tmp_path: Path) -> None:
    shared, private = tmp_path / "report.html", tmp_path / "status.json"
    atomic_write(shared, b"<html/>", mode=0o644)
    atomic_write(private, b"{}")
    assert stat.S_IMODE(shared.stat().st_mode) == 0o644
    assert stat.S_IMODE(private.stat().st_mode) == 0o600


def test_a_failed_write_keeps_the_old_file_and_removes_the_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "params.yaml"
    atomic_write(target, b"kept")
    with pytest.raises(TypeError):
        atomic_write(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"kept"
    assert [p.name for p in tmp_path.iterdir()] == ["params.yaml"]
