"""Small JSON state documents (IV history, ledger snapshots) saved atomically for restarts.

Write to a temp file in the same directory, fsync, os.replace, fsync the directory: a crash leaves
either the old document or the new one, never a mix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import orjson

from gnosisd.core.files import atomic_write, fsync_dir
from gnosisd.store.journal import journal_default


def state_default(obj: Any) -> Any:
    """orjson fallback: Decimal → str so money round-trips exactly (load gives str: Decimal(s))."""
    if isinstance(obj, Decimal):
        return str(obj)
    return journal_default(obj)


_NAME_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}")


class StateStore:
    """Named JSON documents under `state_dir` (`{name}.json`); Decimals are stored as strings."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir

    def path(self, name: str) -> Path:
        if not _NAME_RE.fullmatch(name) or name.endswith(".tmp"):
            raise ValueError(f"state name must be letters, digits, '_', '-' or '.', got {name!r}")
        return self.state_dir / f"{name}.json"

    def save(self, name: str, data: Mapping[str, Any]) -> Path:
        """Replace document `name` with `data` atomically; return its path."""
        target = self.path(name)
        # Serialise first: an unserialisable document must not touch the disk at all.
        body = orjson.dumps(
            data,
            default=state_default,
            option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_INDENT_2,
        )
        return atomic_write(target, body)

    def load(self, name: str) -> dict[str, Any] | None:
        """The saved document, or None if it was never saved."""
        try:
            raw = self.path(name).read_bytes()
        except FileNotFoundError:
            return None
        obj = orjson.loads(raw)
        if not isinstance(obj, dict):
            raise ValueError(f"{self.path(name)}: expected a JSON object, got {type(obj).__name__}")
        return obj

    def delete(self, name: str) -> bool:
        """Remove document `name`; True if it existed."""
        try:
            self.path(name).unlink()
        except FileNotFoundError:
            return False
        fsync_dir(self.state_dir)
        return True
