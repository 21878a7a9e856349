"""Kill-switch sources: the config flag, the kill file, an environment flag and a runtime flag.

Each source is asked on every opening order (one access() syscall for the file), so a kill takes
effect at once.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from gnosisd.core.config import RiskConfig
from gnosisd.core.files import atomic_write

KillSource = Callable[[], str | None]  # returns why trading is killed, or None
TRUTHY = frozenset({"1", "true", "yes", "on"})
HALT_STATE = "halt"  # name of the latched-halt document in the state store (docs/risk.md)


def env_flag_source(env: Mapping[str, str], name: str = "GNOSIS_KILL_SWITCH") -> KillSource:
    """A source that reads `env[name]` at each call (pass os.environ for a live view)."""

    def source() -> str | None:
        value = env.get(name, "")
        return f"environment {name}={value}" if value.strip().lower() in TRUTHY else None

    return source


class KillSwitch:
    """Any active source kills new risk; `kill()` sets a sticky runtime flag until `clear()`."""

    def __init__(
        self,
        *,
        config_flag: bool = False,
        kill_file: Path | None = None,
        sources: Sequence[KillSource] = (),
    ) -> None:
        self._config_flag = config_flag
        # The kill file is asked first and inline (one access() per call, no closure call):
        # active() runs on every opening order.
        self._kill_file = kill_file
        self._kill_name = os.fspath(kill_file) if kill_file is not None else None
        self._sources: list[KillSource] = list(sources)
        self._runtime_reason: str | None = None

    @classmethod
    def from_config(cls, risk: RiskConfig, env: Mapping[str, str] | None = None) -> KillSwitch:
        """The config flag, `risk.kill_file`, and GNOSIS_KILL_SWITCH in `env` when given."""
        sources = [env_flag_source(env)] if env is not None else []
        return cls(config_flag=risk.kill_switch, kill_file=risk.kill_file, sources=sources)

    def kill(self, reason: str) -> None:
        """Set the runtime kill flag (e.g. from a signal or an operator command)."""
        self._runtime_reason = reason or "runtime kill"

    def clear(self) -> None:
        """Clear the runtime kill flag (the other sources are unaffected)."""
        self._runtime_reason = None

    def active(self) -> str | None:
        """Why new risk is killed right now, or None if no source is active."""
        if self._config_flag:
            return "config risk.kill_switch is true"
        if self._runtime_reason is not None:
            return f"runtime kill: {self._runtime_reason}"
        name = self._kill_name
        if name is not None:
            # access(F_OK): existence as os.path.exists sees it (following symlinks, False on
            # any OS error), without raising and catching FileNotFoundError when absent.
            try:
                found = os.access(name, os.F_OK)
            except ValueError:  # an embedded NUL byte: os.path.exists says False too
                found = False
            if found:
                return f"kill file {self._kill_file} exists"
        for source in self._sources:
            reason = source()
            if reason is not None:
                return reason
        return None


def write_kill_file(path: Path, reason: str, at: datetime) -> None:
    """Create the kill file atomically and durably with the reason and UTC time."""
    if at.tzinfo is None:
        raise ValueError("the kill-file time must be timezone-aware")
    atomic_write(path, f"halted_at={at.astimezone(UTC).isoformat()}\nreason={reason}\n".encode())


def remove_kill_file(path: Path) -> bool:
    """Delete the kill file; True if it existed."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True
