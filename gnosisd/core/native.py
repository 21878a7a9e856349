"""The risk guard's modules compiled to C by mypyc, used only when they match the sources exactly.

`scripts/build_native.py` (run by both setup scripts) compiles `MODULES` into `NATIVE_DIR`
(`gnosisd/_native/`, never committed) and writes a manifest with the SHA-256 of each module's
source and the interpreter's extension suffix. `gnosisd/risk/__init__.py` calls `enable()`: when
every hash and the suffix match, the compiled directory goes first on the package's `__path__`,
so `gnosisd.risk.guard` imports the compiled module; otherwise the Python sources are imported
as usual. A stale build (a module edited since) is never used: the sources are the truth, the
compiled modules only run the same code faster (about 1.3× for a guard decision, docs/risk.md).

`GNOSISD_NATIVE=0` in the environment forces the Python sources.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

# The modules compiled together (one mypyc group: calls between them are native C calls).
MODULES: tuple[str, ...] = (
    "gnosisd.risk.closes",
    "gnosisd.risk.collar",
    "gnosisd.risk.greeks",
    "gnosisd.risk.guard",
    "gnosisd.risk.killswitch",
    "gnosisd.risk.limits",
    "gnosisd.risk.quotes",
    "gnosisd.risk.state",
    "gnosisd.risk.windows",
)
GROUP = "gnosisd_native"  # the group's shared library: gnosisd_native__mypyc<suffix>
ENV_FLAG = "GNOSISD_NATIVE"
PACKAGE_DIR = Path(__file__).resolve().parent.parent  # the gnosisd package
NATIVE_DIR = PACKAGE_DIR / "_native"
MANIFEST = "manifest.json"


@dataclass(frozen=True, slots=True)
class NativeStatus:
    """Whether the compiled modules are in use, and why (or why not)."""

    compiled: bool
    reason: str

    def __str__(self) -> str:
        return f"{'compiled (mypyc)' if self.compiled else 'interpreted'}: {self.reason}"


def source_path(module: str, package_dir: Path = PACKAGE_DIR) -> Path:
    """The .py source of a gnosisd module."""
    parts = module.split(".")
    if parts[0] != "gnosisd":
        raise ValueError(f"{module} is not a gnosisd module")
    return package_dir.joinpath(*parts[1:]).with_suffix(".py")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def manifest_for(package_dir: Path = PACKAGE_DIR) -> dict[str, object]:
    """What a build of the current sources records (build_native.py writes it)."""
    return {
        "extension_suffix": importlib.machinery.EXTENSION_SUFFIXES[0],
        "group": GROUP,
        "sources": {m: digest(source_path(m, package_dir)) for m in MODULES},
    }


def check(
    package_dir: Path = PACKAGE_DIR,
    native_dir: Path = NATIVE_DIR,
    env: Mapping[str, str] | None = None,
) -> NativeStatus:
    """Can the compiled modules in `native_dir` stand in for the sources in `package_dir`?"""
    env = os.environ if env is None else env
    if env.get(ENV_FLAG, "").strip() == "0":
        return NativeStatus(False, f"{ENV_FLAG}=0")
    try:
        recorded = json.loads((native_dir / MANIFEST).read_text())
    except FileNotFoundError:
        return NativeStatus(False, "no compiled build (python scripts/build_native.py)")
    except (OSError, ValueError) as exc:
        return NativeStatus(False, f"unreadable build manifest: {exc}")
    try:
        current = manifest_for(package_dir)
    except OSError as exc:
        return NativeStatus(False, f"sources unreadable: {exc}")
    if recorded.get("extension_suffix") != current["extension_suffix"]:
        return NativeStatus(False, "built for another interpreter")
    sources = recorded.get("sources")
    if not isinstance(sources, dict) or sources.get("gnosisd.risk.guard") is None:
        return NativeStatus(False, "build manifest lists no modules")
    current_sources = current["sources"]
    assert isinstance(current_sources, dict)
    stale = sorted(m for m in MODULES if sources.get(m) != current_sources[m])
    if stale:
        return NativeStatus(False, f"build is stale ({', '.join(stale)} changed since)")
    suffix = str(current["extension_suffix"])
    missing = [
        m for m in MODULES if not native_dir.joinpath(*m.split(".")).with_suffix(suffix).is_file()
    ]
    if missing or not (native_dir / f"{GROUP}__mypyc{suffix}").is_file():
        return NativeStatus(False, f"build is incomplete ({', '.join(missing) or GROUP})")
    return NativeStatus(True, f"{len(MODULES)} modules match their sources")


_status = NativeStatus(False, "gnosisd.risk not imported yet")


def enable(package_path: list[str], package: str) -> list[str]:
    """`package`'s __path__ with the compiled directory first when the build is usable."""
    global _status
    _status = check()
    if not _status.compiled:
        return package_path
    if str(NATIVE_DIR) not in sys.path:
        sys.path.append(str(NATIVE_DIR))  # the group's shared library is a top-level module
    return [str(NATIVE_DIR.joinpath(*package.split("."))), *package_path]


def status() -> NativeStatus:
    """How the risk modules were loaded (after gnosisd.risk was imported)."""
    return _status
