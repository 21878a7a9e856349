"""The compiled risk modules stand in for the sources only when they are exactly those sources."""

from __future__ import annotations

import importlib.machinery
import json
import shutil
from pathlib import Path

import pytest

import gnosisd.risk.guard
from gnosisd.core import native

SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the risk sources and a complete build of them (placeholder libraries: the
    check reads hashes and file names, it never loads them)."""
    package = tmp_path / "gnosisd"
    for module in native.MODULES:
        src = native.source_path(module)
        dst = native.source_path(module, package)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)
    build = tmp_path / "_native"
    for module in native.MODULES:
        lib = build.joinpath(*module.split(".")).with_suffix(SUFFIX)
        lib.parent.mkdir(parents=True, exist_ok=True)
        lib.write_bytes(b"")
    (build / f"{native.GROUP}__mypyc{SUFFIX}").write_bytes(b"")
    (build / native.MANIFEST).write_text(json.dumps(native.manifest_for(package)))
    return package, build


def test_a_complete_build_of_the_current_sources_is_used(layout: tuple[Path, Path]) -> None:
    package, build = layout
    status = native.check(package, build, env={})
    assert status.compiled, status.reason
    assert str(status) == f"compiled (mypyc): {len(native.MODULES)} modules match their sources"


def test_an_edited_module_makes_the_whole_build_stale(layout: tuple[Path, Path]) -> None:
    package, build = layout
    source = native.source_path("gnosisd.risk.windows", package)
    source.write_text(source.read_text() + "\n# edited\n")
    status = native.check(package, build, env={})
    assert not status.compiled
    assert status.reason == "build is stale (gnosisd.risk.windows changed since)"


def test_gnosisd_native_0_forces_the_sources(layout: tuple[Path, Path]) -> None:
    package, build = layout
    assert native.check(package, build, env={"GNOSISD_NATIVE": "0"}) == native.NativeStatus(
        False, "GNOSISD_NATIVE=0"
    )


def test_no_build_a_missing_library_or_another_interpreter_means_interpreted(
    layout: tuple[Path, Path], tmp_path: Path
) -> None:
    package, build = layout
    assert native.check(package, tmp_path / "nowhere", env={}).reason.startswith(
        "no compiled build"
    )
    build.joinpath("gnosisd", "risk", "guard").with_suffix(SUFFIX).unlink()
    assert native.check(package, build, env={}).reason == "build is incomplete (gnosisd.risk.guard)"
    manifest = json.loads((build / native.MANIFEST).read_text())
    manifest["extension_suffix"] = ".cpython-399-x86_64-linux-gnu.so"
    (build / native.MANIFEST).write_text(json.dumps(manifest))
    assert native.check(package, build, env={}).reason == "built for another interpreter"
    (build / native.MANIFEST).write_text("{not json")
    assert native.check(package, build, env={}).reason.startswith("unreadable build manifest")


def test_the_guard_was_imported_from_where_the_status_says() -> None:
    status = native.status()
    origin = Path(gnosisd.risk.guard.__file__ or "")
    if status.compiled:
        assert origin.name == f"guard{SUFFIX}"
        assert origin.is_relative_to(native.NATIVE_DIR)
    else:
        assert origin == native.source_path("gnosisd.risk.guard")
