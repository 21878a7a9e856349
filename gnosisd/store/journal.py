"""Append-only JSONL journal: runs/YYYY-MM-DD/{SYMBOL}_{context|trades|orders}.jsonl, whole lines.

Lines look like the runbook's: {"as_of": ISO-8601 UTC, "symbol": "SPY", "trade": {...}}.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any, Final, Literal, get_args

import orjson
import structlog

from gnosisd.core.clock import NEW_YORK
from gnosisd.core.errors import InvariantViolation

log = structlog.stdlib.get_logger(__name__)

JournalKind = Literal["context", "trade", "order"]
KINDS: Final[tuple[str, ...]] = get_args(JournalKind)
# The runbook's file names: kind "trade" lands in _trades.jsonl, "order" in _orders.jsonl.
FILE_SUFFIX: Final[Mapping[str, str]] = {"context": "context", "trade": "trades", "order": "orders"}
_SYMBOL_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9.\-]{0,20}")
_OPTIONS: Final = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def journal_default(obj: Any) -> Any:
    """orjson fallback: Decimal → float (the runbook jq queries read numbers), dates → ISO."""
    if isinstance(obj, Decimal):
        return float(obj)
    if isinstance(obj, datetime | date):
        return obj.isoformat()
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    model_dump = getattr(obj, "model_dump", None)  # pydantic models
    if callable(model_dump):
        return model_dump(mode="json")
    raise TypeError(f"journal cannot serialise {type(obj).__name__}: {obj!r}")


def encode_line(
    kind: JournalKind,
    symbol: str,
    as_of: datetime,
    payload: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
) -> bytes:
    """One journal line (with its trailing newline) as bytes.

    `extra` adds top-level keys after the payload (e.g. a trade line's `context` summary, so the
    runbook's `.context.iv_rank` query works on trade files as written).
    """
    if as_of.tzinfo is None:
        raise ValueError(f"journal as_of must be timezone-aware, got naive {as_of!r}")
    record = {"as_of": as_of.astimezone(UTC).isoformat(), "symbol": symbol, kind: payload}
    if extra:
        for key, value in extra.items():
            if key in record:
                raise ValueError(f"journal extra key {key!r} would overwrite the line's {key!r}")
            record[key] = value
    return orjson.dumps(record, default=journal_default, option=_OPTIONS) + b"\n"


def session_date(as_of: datetime) -> date:
    """The run directory's date: the New York date of `as_of`."""
    if as_of.tzinfo is None:
        raise ValueError(f"journal as_of must be timezone-aware, got naive {as_of!r}")
    return as_of.astimezone(NEW_YORK).date()


def journal_path(runs_dir: Path, kind: JournalKind, symbol: str, day: date) -> Path:
    """`runs_dir/YYYY-MM-DD/{SYMBOL}_{context|trades|orders}.jsonl`."""
    if kind not in FILE_SUFFIX:
        raise ValueError(f"journal kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if not _SYMBOL_RE.fullmatch(symbol):
        raise ValueError(f"journal symbol must be a ticker like 'SPY', got {symbol!r}")
    return runs_dir / day.isoformat() / f"{symbol}_{FILE_SUFFIX[kind]}.jsonl"


class Journal:
    """Append-only writer: each line goes out whole in one os.write on an O_APPEND descriptor.

    Descriptors stay open per file until close(); flush() and close() fsync, and so does every
    write of a kind in `sync_kinds` (the daemon: order lines). Thread-safe.
    """

    def __init__(self, runs_dir: Path, sync_kinds: Iterable[JournalKind] = ()) -> None:
        self.runs_dir = runs_dir
        self._sync = frozenset(sync_kinds)
        self._fds: dict[Path, int] = {}
        self._lock = threading.Lock()
        self._closed = False
        self.lines_written = 0

    def write(
        self,
        kind: JournalKind,
        symbol: str,
        as_of: datetime,
        payload: Mapping[str, Any],
        extra: Mapping[str, Any] | None = None,
    ) -> Path:
        """Append `{"as_of", "symbol", kind: payload, **extra}` to the day's file; return its path."""
        path = journal_path(self.runs_dir, kind, symbol, session_date(as_of))
        line = encode_line(kind, symbol, as_of, payload, extra)
        with self._lock:
            if self._closed:
                raise InvariantViolation(f"journal write after close: {kind} for {symbol}")
            fd = self._fd_for(path)
            _write_all(fd, line)
            if kind in self._sync:
                os.fsync(fd)
            self.lines_written += 1
        return path

    def _fd_for(self, path: Path) -> int:
        fd = self._fds.get(path)
        if fd is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
            _terminate_torn_tail(fd, path)
            self._fds[path] = fd
        return fd

    def flush(self) -> None:
        """fsync every open file."""
        with self._lock:
            for fd in self._fds.values():
                os.fsync(fd)

    def close_before(self, day: date) -> None:
        """fsync and close the files of run days before `day` (a new session began).

        Keeps a long run's open descriptors, and the cost of flush(), bounded to the current day;
        a late line for an earlier day simply reopens its file.
        """
        with self._lock:
            old = [p for p in self._fds if p.parent.name < day.isoformat()]
            fds = [self._fds.pop(p) for p in old]
        for fd in fds:
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def close(self) -> None:
        """fsync and close every file; later writes raise (idempotent)."""
        with self._lock:
            self._closed = True
            fds, self._fds = self._fds, {}
        for fd in fds.values():
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    @property
    def open_files(self) -> list[Path]:
        with self._lock:
            return sorted(self._fds)

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _write_all(fd: int, data: bytes) -> None:
    written = os.write(fd, data)
    while written < len(data):  # regular files are written whole; this loop is a safety net
        written += os.write(fd, data[written:])


def _terminate_torn_tail(fd: int, path: Path) -> None:
    # A power loss can leave a final line without its newline; end it so our first new line is
    # not glued to the fragment (the reader then skips the fragment alone).
    size = os.fstat(fd).st_size
    if size == 0:
        return
    with path.open("rb") as f:
        f.seek(size - 1)
        last = f.read(1)
    if last != b"\n":
        log.warning("journal file ended mid-line; terminating the torn line", path=str(path))
        _write_all(fd, b"\n")


@dataclass
class ReadStats:
    """What read_journal saw: parsed lines and skipped torn/unparseable ones."""

    lines: int = 0
    torn: int = 0
    torn_at: list[int] = field(default_factory=list)


def read_journal(path: Path, stats: ReadStats | None = None) -> Iterator[dict[str, Any]]:
    """Yield each JSON object of a journal file; skip (and count in `stats`) torn lines."""
    counts = stats if stats is not None else ReadStats()
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                obj = orjson.loads(raw)
            except orjson.JSONDecodeError:
                obj = None
            if not isinstance(obj, dict):
                counts.torn += 1
                counts.torn_at.append(lineno)
                log.warning("skipping torn journal line", path=str(path), line=lineno)
                continue
            counts.lines += 1
            yield obj
