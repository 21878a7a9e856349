"""Kill-switch sources: the config flag, the kill file, an environment flag and a runtime flag.

Each source is asked on every opening order (a stat() is cheap), so a kill takes effect at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from gnosisd.core.config import RiskConfig

KillSource = Callable[[], str | None]  # returns why trading is killed, or None
TRUTHY = frozenset({"1", "true", "yes", "on"})


def env_flag_source(env: Mapping[str, str], name: str = "GNOSIS_KILL_SWITCH") -> KillSource:
    """A source that reads `env[name]` at each call (pass os.environ for a live view)."""

    def source() -> str | None:
        value = env.get(name, "")
        return f"environment {name}={value}" if value.strip().lower() in TRUTHY else None

    return source


def file_source(path: Path) -> KillSource:
    """A source that is active while `path` exists (touch it to stop new risk)."""

    def source() -> str | None:
        return f"kill file {path} exists" if path.exists() else None

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
        self._sources: list[KillSource] = []
        if kill_file is not None:
            self._sources.append(file_source(kill_file))
        self._sources.extend(sources)
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
        for source in self._sources:
            reason = source()
            if reason is not None:
                return reason
        return None
