"""structlog set-up: JSON lines to daily pipeline/errors/audit files, console on a TTY, no secrets.

File names carry the New York date of the injected clock (the trading-session date), not UTC.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import orjson
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from gnosisd.core.clock import NEW_YORK, Clock
from gnosisd.core.errors import ConfigError

REDACTED: Final = "[REDACTED]"
AUDIT_LOGGER_NAME: Final = "gnosisd.audit"
LOG_PREFIXES: Final = ("pipeline", "errors", "audit")

# Key fragments (lower case) whose values are never logged.
_SENSITIVE_KEY_PARTS: Final = (
    "secret",
    "api_key",
    "apikey",
    "api-key",
    "password",
    "passwd",
    "token",
    "authorization",
    "credential",
)
# Header or "Bearer" style secrets embedded in free text (e.g. a dumped HTTP request).
_SECRET_PATTERNS: Final = (
    re.compile(r"(?i)(APCA-API-(?:SECRET-)?KEY(?:-ID)?['\"]?\s*[:=]\s*['\"]?)[^\s'\",}]+"),
    re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?(?:bearer|basic|token)?\s*)[^\s'\",}]+"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"),
)
# Values shorter than this are not treated as secrets: masking "a" would wreck every line.
_MIN_SECRET_LEN: Final = 4
# Environment variables whose values are registered as secrets at configure time.
_SECRET_ENV_VARS: Final = ("ALPACA_API_KEY", "ALPACA_SECRET_KEY")

_LEVELS: Final = {
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
    "CRITICAL": logging.CRITICAL,
}

_METHOD_LEVELS: Final = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "exception": logging.ERROR,
    "critical": logging.CRITICAL,
    "fatal": logging.CRITICAL,
}

_secrets_lock = threading.Lock()
_secrets: frozenset[str] = frozenset()
_installed: list[logging.Handler] = []


def register_secrets(*values: str | None) -> None:
    """Mask these values in every logged string (empty and very short values are ignored)."""
    global _secrets
    keep = {v for v in values if v and len(v) >= _MIN_SECRET_LEN}
    with _secrets_lock:
        _secrets = _secrets | keep


def clear_secrets() -> None:
    """Forget every registered secret value (tests; a restart with new keys)."""
    global _secrets
    with _secrets_lock:
        _secrets = frozenset()


def _mask_text(text: str, secrets: frozenset[str]) -> str:
    # Longest first so a secret that contains another is masked whole.
    for secret in sorted(secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return text


def _is_sensitive_key(key: object) -> bool:
    lowered = str(key).lower()
    return any(part in lowered for part in _SENSITIVE_KEY_PARTS)


def _redact_value(value: Any, secrets: frozenset[str]) -> Any:
    if isinstance(value, str):
        return _mask_text(value, secrets)
    if isinstance(value, Mapping):
        return {
            k: REDACTED if _is_sensitive_key(k) else _redact_value(v, secrets)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact_value(v, secrets) for v in value]
    return value


def redact_secrets(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """structlog processor: blank sensitive keys, mask registered secrets and auth headers."""
    secrets = _secrets
    out: EventDict = {}
    for key, value in event_dict.items():
        if key.startswith("_"):  # structlog's own metadata (_record, _from_structlog)
            out[key] = value
        elif _is_sensitive_key(key):
            out[key] = REDACTED
        else:
            out[key] = _redact_value(value, secrets)
    return out


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return str(obj)
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, set | frozenset):
        return sorted(obj, key=repr)
    return repr(obj)


_FIRST_KEYS: Final = ("timestamp", "level", "logger", "event")


def render_json(_: WrappedLogger, __: str, event_dict: EventDict) -> str:
    """Final processor: one JSON object, timestamp/level/logger/event first, then the fields."""
    ordered = {k: event_dict[k] for k in _FIRST_KEYS if k in event_dict}
    ordered.update((k, v) for k, v in event_dict.items() if k not in ordered)
    return orjson.dumps(ordered, default=_json_default, option=orjson.OPT_NON_STR_KEYS).decode()


def _timestamper(clock: Clock) -> Processor:
    def add_timestamp(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        # The injected clock, so a backtest's lines carry simulated time.
        stamp = clock.now().isoformat(timespec="microseconds").replace("+00:00", "Z")
        event_dict.setdefault("timestamp", stamp)
        return event_dict

    return add_timestamp


def _level_gate(level: int) -> Processor:
    def gate(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        # Audit events pass whatever the configured level: the audit trail is never thinned.
        if event_dict.get("audit") is True:
            return event_dict
        if _METHOD_LEVELS.get(method_name, logging.CRITICAL) < level:
            raise structlog.DropEvent
        return event_dict

    return gate


def _is_audit(record: logging.LogRecord) -> bool:
    return isinstance(record.msg, dict) and record.msg.get("audit") is True


class _PipelineFilter(logging.Filter):
    def __init__(self, level: int) -> None:
        super().__init__()
        self._level = level

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= self._level or _is_audit(record)


class _LevelFilter(logging.Filter):
    def __init__(self, level: int) -> None:
        super().__init__()
        self._level = level

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= self._level


class _AuditFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return _is_audit(record)


def log_date(clock: Clock) -> date:
    """The date used in log file names: New York (trading-session) date of the clock's now."""
    return clock.now().astimezone(NEW_YORK).date()


def log_path(logs_dir: Path, prefix: str, day: date) -> Path:
    """`logs/{prefix}_YYYYMMDD.log`."""
    return logs_dir / f"{prefix}_{day:%Y%m%d}.log"


class DailyFileHandler(logging.Handler):
    """Append each formatted line with one write on an O_APPEND fd; reopen when the date changes.

    Writes are unbuffered (the line is in the kernel when emit returns), so a SIGTERM or even a
    SIGKILL loses no line that was logged, and concurrent writers never interleave within a line.
    """

    def __init__(
        self,
        logs_dir: Path,
        prefix: str,
        clock: Clock,
        on_new_day: Callable[[date], object] | None = None,
    ) -> None:
        super().__init__()
        self._logs_dir = logs_dir
        self._prefix = prefix
        self._clock = clock
        self._day: date | None = None
        self._fd: int | None = None
        self._on_new_day = on_new_day  # e.g. log retention, called when a new day's file opens

    @property
    def current_path(self) -> Path:
        return log_path(self._logs_dir, self._prefix, log_date(self._clock))

    def _fd_for_today(self) -> int:
        day = log_date(self._clock)
        if self._fd is None or day != self._day:
            self._close_fd()
            path = log_path(self._logs_dir, self._prefix, day)
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
            self._day = day
            if self._on_new_day is not None:
                self._on_new_day(day)
        return self._fd

    def emit(self, record: logging.LogRecord) -> None:
        try:
            data = (self.format(record) + "\n").encode("utf-8", "backslashreplace")
            fd = self._fd_for_today()
            written = os.write(fd, data)
            while written < len(data):  # regular files write whole; loop only for safety
                written += os.write(fd, data[written:])
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        self.acquire()
        try:
            if self._fd is not None:
                os.fsync(self._fd)
        finally:
            self.release()

    def _close_fd(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def close(self) -> None:
        self.acquire()
        try:
            self._close_fd()
        finally:
            self.release()
        super().close()


@dataclass(frozen=True, slots=True)
class LogFiles:
    """Where the daily log files are; paths are computed for a day (default: the clock's today)."""

    logs_dir: Path
    clock: Clock

    def day(self) -> date:
        return log_date(self.clock)

    def pipeline(self, day: date | None = None) -> Path:
        return log_path(self.logs_dir, "pipeline", self.day() if day is None else day)

    def errors(self, day: date | None = None) -> Path:
        return log_path(self.logs_dir, "errors", self.day() if day is None else day)

    def audit(self, day: date | None = None) -> Path:
        return log_path(self.logs_dir, "audit", self.day() if day is None else day)


def _parse_level(level: str) -> int:
    try:
        return _LEVELS[level.strip().upper()]
    except KeyError:
        raise ConfigError(
            f"log level must be one of {', '.join(_LEVELS)} (GNOSIS_LOG_LEVEL / runtime.log_level),"
            f" got {level!r}"
        ) from None


def configure_logging(
    level: str,
    logs_dir: Path,
    clock: Clock,
    console: bool | None = None,
    console_level: str = "WARNING",
    retention_days: int | None = None,
) -> LogFiles:
    """Route structlog and stdlib logging to the daily JSON files (and stderr when a TTY).

    The console shows what is at or above both `level` and `console_level` (default WARNING: the
    run summary is the terminal's main output; the files hold everything, audit events included).

    Calling it again replaces the previous set-up. Values of ALPACA_API_KEY / ALPACA_SECRET_KEY in
    the environment are registered as secrets; call register_secrets() for any other.

    With `retention_days` (runtime.log_retention_days), log files dated more than that many days
    before the clock's date are deleted when the first file of each day is opened.
    """
    numeric = _parse_level(level)
    shutdown_logging()
    logs_dir.mkdir(parents=True, exist_ok=True)
    register_secrets(*(os.environ.get(name) for name in _SECRET_ENV_VARS))

    shared: list[Processor] = [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        _timestamper(clock),
    ]
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            _level_gate(numeric),
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            # Redact before the record leaves structlog, so no other handler sees a secret.
            redact_secrets,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Not cached: reconfiguring (tests, a new clock for a backtest) must reach every logger.
        cache_logger_on_first_use=False,
    )

    def json_formatter() -> logging.Formatter:
        return structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                redact_secrets,  # after format_exc_info: tracebacks can quote secrets too
                render_json,
            ],
        )

    retention: Callable[[date], object] | None = None
    if retention_days is not None:
        keep = retention_days

        def retention(day: date) -> object:
            return remove_old_logs(logs_dir, keep, day)

    pipeline = DailyFileHandler(logs_dir, "pipeline", clock, on_new_day=retention)
    pipeline.addFilter(_PipelineFilter(numeric))
    errors = DailyFileHandler(logs_dir, "errors", clock)
    errors.setLevel(logging.ERROR)
    audit = DailyFileHandler(logs_dir, "audit", clock)
    audit.addFilter(_AuditFilter())
    handlers: list[logging.Handler] = [pipeline, errors, audit]
    for handler in handlers:
        handler.setFormatter(json_formatter())

    if console if console is not None else sys.stderr.isatty():
        stream = logging.StreamHandler(sys.stderr)
        stream.addFilter(_LevelFilter(max(numeric, _parse_level(console_level))))
        stream.setFormatter(
            structlog.stdlib.ProcessorFormatter(
                foreign_pre_chain=shared,
                processors=[
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    redact_secrets,
                    structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()),
                ],
            )
        )
        handlers.append(stream)

    root = logging.getLogger()
    # Root lets INFO through even at WARNING so audit events reach the handlers; the handler
    # filters apply the configured level to everything else.
    root.setLevel(min(numeric, logging.INFO))
    for handler in handlers:
        root.addHandler(handler)
        _installed.append(handler)
    return LogFiles(logs_dir=logs_dir, clock=clock)


def audit_logger(**initial: Any) -> structlog.stdlib.BoundLogger:
    """A logger whose events go to the audit file (and the pipeline file) whatever the level.

    Log order intents, risk decisions with their reason, submissions, broker acks/rejections, fills.
    """
    return structlog.stdlib.get_logger(AUDIT_LOGGER_NAME).bind(audit=True, **initial)


def shutdown_logging() -> None:
    """Flush, fsync and close the handlers configure_logging installed (idempotent)."""
    root = logging.getLogger()
    while _installed:
        handler = _installed.pop()
        root.removeHandler(handler)
        try:
            handler.flush()
        except (OSError, ValueError):  # e.g. stderr already closed at interpreter exit
            pass
        finally:
            handler.close()


def remove_old_logs(logs_dir: Path, keep_days: int, today: date) -> list[Path]:
    """Delete `{pipeline,errors,audit}_YYYYMMDD.log` older than `keep_days` days; return them."""
    if keep_days < 0:
        raise ValueError(f"keep_days must be >= 0, got {keep_days}")
    cutoff = today - timedelta(days=keep_days)
    removed: list[Path] = []
    for path in _log_files(logs_dir):
        stem_date = path.stem.rsplit("_", 1)[1]
        try:
            day = datetime.strptime(stem_date, "%Y%m%d").date()  # noqa: DTZ007 - a bare date
        except ValueError:
            continue
        if day < cutoff:
            path.unlink(missing_ok=True)
            removed.append(path)
    return sorted(removed)


def _log_files(logs_dir: Path) -> Iterable[Path]:
    if not logs_dir.is_dir():
        return []
    return [p for prefix in LOG_PREFIXES for p in logs_dir.glob(f"{prefix}_????????.log")]
