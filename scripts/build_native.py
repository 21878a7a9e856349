"""Compile the risk guard's modules with mypyc (gnosisd.core.native explains how they are used).

Run by scripts/quickstart.sh and scripts/test.sh through scripts/venv.sh; by hand:

    .venv/bin/python scripts/build_native.py [--force]

Needs a C compiler and the Python headers (the machine has both; without them gnosisd runs the
same modules interpreted, only slower). A build that already matches the sources is kept (about
0.1 s); a new one takes about 30 s. The sources are copied to a temporary directory and compiled
there, so nothing is written next to them; the result replaces gnosisd/_native/ in one rename.
"""

from __future__ import annotations

import argparse
import importlib.machinery
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

from gnosisd.core import native

SETUP = """\
from setuptools import setup
from mypyc.build import mypycify

setup(
    name="gnosisd_native",
    ext_modules=mypycify({paths!r}, opt_level="3", group_name={group!r}),
    script_args=["build_ext", "--build-lib", "out", "--build-temp", "tmp"],
)
"""


def mypy_ini() -> str:
    """The compile's mypy settings: the project's (pyproject.toml), and any third-party module
    without type information is Any (the quickstart's environment has no stub packages; the
    strict type check is `mypy` in CI, not this build)."""
    project = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())
    mypy = project["tool"]["mypy"]
    lines = [
        "[mypy]",
        f"python_version = {mypy['python_version']}",
        "ignore_missing_imports = True",
    ]
    if mypy.get("plugins"):
        lines.append(f"plugins = {', '.join(mypy['plugins'])}")
    for override in mypy.get("overrides", []):
        lines.append(f"[mypy-{','.join(override['module'])}]")
        lines += [f"{k} = {v}" for k, v in override.items() if k != "module"]
    return "\n".join(lines) + "\n"


def build(force: bool) -> int:
    status = native.check(env={})
    if status.compiled and not force:
        print(f"== risk modules already compiled: {status.reason} ({native.NATIVE_DIR})")
        return 0
    try:
        import mypyc  # noqa: F401
        import setuptools  # noqa: F401
    except ImportError as exc:
        print(f"== cannot compile the risk modules ({exc}); they run interpreted")
        return 1
    started = time.monotonic()
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    with tempfile.TemporaryDirectory(prefix="gnosisd-native-") as tmp:
        stage = Path(tmp)
        shutil.copytree(
            native.PACKAGE_DIR,
            stage / "gnosisd",
            ignore=shutil.ignore_patterns("_native", "__pycache__", "*.so"),
        )
        paths = [str(native.source_path(m, Path("gnosisd"))) for m in native.MODULES]
        (stage / "setup.py").write_text(SETUP.format(paths=paths, group=native.GROUP))
        (stage / "mypy.ini").write_text(mypy_ini())
        done = subprocess.run(
            [sys.executable, "setup.py"],
            cwd=stage,
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )
        if done.returncode != 0:
            print((done.stdout + done.stderr)[-4000:], file=sys.stderr)
            print(f"== mypyc failed (exit {done.returncode}); the risk modules run interpreted")
            return 1
        out = stage / "out"
        fresh = native.NATIVE_DIR.with_name("_native.new")
        shutil.rmtree(fresh, ignore_errors=True)
        fresh.mkdir()
        shutil.copy2(out / f"{native.GROUP}__mypyc{suffix}", fresh)
        for module in native.MODULES:
            rel = Path(*module.split(".")).with_suffix(suffix)
            (fresh / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(out / rel, fresh / rel)
        # The manifest of what was compiled (the staged copy), so an edit made meanwhile reads
        # as stale, never as compiled.
        manifest = native.manifest_for(stage / "gnosisd")
        (fresh / native.MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    old = native.NATIVE_DIR.with_name("_native.old")
    shutil.rmtree(old, ignore_errors=True)
    if native.NATIVE_DIR.exists():
        native.NATIVE_DIR.rename(old)
    fresh.rename(native.NATIVE_DIR)
    shutil.rmtree(old, ignore_errors=True)
    status = native.check(env={})
    took = time.monotonic() - started
    print(f"== compiled {len(native.MODULES)} risk modules in {took:.0f} s: {status}")
    return 0 if status.compiled else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    sys.exit(build(parser.parse_args().force))


if __name__ == "__main__":
    main()
