"""Atomic file replacement: readers see the old file or the new one, never a part of either."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def atomic_write(path: Path, body: bytes, *, mode: int | None = None, durable: bool = True) -> Path:
    """Replace `path` with `body`: a temp file in the same directory, renamed over `path`.

    `durable`: fsync the file before the rename and the directory after it, so the new content
    survives a power cut (state, kill file, parameters); without it a crash can only lose the
    update, never leave a partial file (status, reports). `mode`: the file's permissions (the
    temp file is created 0600). The temp file is removed if anything fails. Returns `path`.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(body)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if durable:
        fsync_dir(path.parent)
    return path


def fsync_dir(directory: Path) -> None:
    """Make a rename or unlink in `directory` durable (POSIX: the entry lives in the directory)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
