"""The operations docs run as written: every ```bash runnable block, in order, on the simulated market.

Each block runs under `bash -euo pipefail` in one fresh directory that holds a copy of
config/config.yaml and a link to the repository's .venv, with no GNOSIS_/ALPACA_ variables set.
Every other `gnosisd` command line in the docs must at least parse with the real CLI.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from gnosisd.cli import _parser

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "docs" / "operations.md", REPO / "docs" / "risk.md"]
_FENCE = re.compile(r"^( *)```(bash[^\n]*)\n(.*?)^\1```", re.M | re.S)
_CUT = re.compile(r"\s(\||\|\||&&|;|#|>)\s")

pytestmark = pytest.mark.slow


def blocks(runnable: bool) -> list[tuple[Path, str]]:
    out = []
    for doc in DOCS:
        for indent, info, body in _FENCE.findall(doc.read_text(encoding="utf-8")):
            if (info.split()[1:] == ["runnable"]) == runnable:
                lines = [line.removeprefix(indent) for line in body.splitlines()]
                out.append((doc, "\n".join(lines) + "\n"))
    return out


def _clean_env() -> dict[str, str]:
    drop = ("GNOSIS_", "ALPACA_", "NOTIFY_SOCKET", "WATCHDOG_")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


def test_the_runbook_has_runnable_blocks_for_each_operator_task() -> None:
    text = "".join(body for _, body in blocks(runnable=True))
    for command in ("config check", "gnosisd run", "gnosisd paper", "gnosisd review", "status"):
        assert command in text
    assert "touch state/KILL" in text and "--html" in text


def test_runnable_blocks_run_as_written_against_the_simulated_market(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    shutil.copy(REPO / "config" / "config.yaml", tmp_path / "config" / "config.yaml")
    (tmp_path / ".venv").symlink_to(REPO / ".venv")
    env = _clean_env()
    for doc, script in blocks(runnable=True):
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, (
            f"{doc.name}: block failed with exit {done.returncode}:\n{script}\n"
            f"--- stdout ---\n{done.stdout[-3000:]}\n--- stderr ---\n{done.stderr[-3000:]}"
        )
    assert not (tmp_path / "state" / "KILL").exists()
    assert (tmp_path / "review.html").stat().st_size > 10_000


def _gnosisd_lines() -> list[str]:
    out = []
    for _, body in blocks(runnable=False) + blocks(runnable=True):
        for line in body.replace("\\\n", " ").splitlines():
            if "bin/gnosisd " in line:
                args = line.split("bin/gnosisd ", 1)[1]
                out.append(_CUT.split(" " + args + " ", maxsplit=1)[0].strip())
    return out


def test_every_gnosisd_command_line_in_the_docs_parses() -> None:
    lines = _gnosisd_lines()
    assert len(lines) >= 10
    parser = _parser()
    for args in lines:
        try:
            parser.parse_args(shlex.split(args))
        except SystemExit as exc:  # argparse exits on a bad command line
            pytest.fail(f"`gnosisd {args}` does not parse (exit {exc.code})")
