"""The hyperparameter file: per symbol, the tuned configuration keys and the Kelly table.

YAML, written by `gnosisd optimize` (atomically; other symbols' sections are kept) and read per
symbol by `gnosisd backtest --params` and the daemon: `load(path, symbol)`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gnosisd.core.config import Settings
from gnosisd.core.enums import Regime, StrategyType
from gnosisd.core.errors import ConfigError
from gnosisd.core.files import atomic_write
from gnosisd.optimize.kelly import KellyEstimate
from gnosisd.runtime.backtest import PER_SYMBOL_SECTIONS, apply_overrides

VERSION = 1
HEADER = (
    "# gnosisd hyperparameters, written by `gnosisd optimize`; read per symbol by the daemon and\n"
    "# `gnosisd backtest --params`. params: dotted configuration keys; kelly: f per strategy and\n"
    "# regime (f = p - (1 - p)/b, clamped to +-0.25) used by the trade agent's sizing.\n"
)


@dataclass(frozen=True)
class HyperParams:
    """What the file holds for one symbol."""

    symbol: str
    params: dict[str, Any] = field(default_factory=dict)
    kelly: dict[tuple[StrategyType, Regime], float] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def settings(self, base: Settings) -> Settings:
        """`base` with this symbol's keys applied (validated like the configuration file)."""
        return apply_overrides(base, self.params)


def _read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the hyperparameter file: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        return {"version": VERSION, "symbols": {}}
    if not isinstance(data, dict) or not isinstance(data.get("symbols", {}), dict):
        raise ConfigError(f"{path}: expected a mapping with a `symbols` mapping")
    if data.get("version", VERSION) != VERSION:
        raise ConfigError(f"{path}: version {data.get('version')} is not {VERSION}")
    return data


def load(path: Path, symbol: str) -> HyperParams:
    """The hyperparameters of `symbol` (empty when the file has no section for it)."""
    section = _read(path).get("symbols", {}).get(symbol.upper())
    if section is None:
        return HyperParams(symbol.upper())
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: symbols.{symbol} must be a mapping")
    params = section.get("params") or {}
    if not isinstance(params, dict):
        raise ConfigError(f"{path}: symbols.{symbol}.params must be a mapping of dotted keys")
    bad = [k for k in params if str(k).split(".", 1)[0] not in PER_SYMBOL_SECTIONS]
    if bad:
        raise ConfigError(
            f"{path}: symbols.{symbol}.params: {', '.join(map(str, bad))} are not per-symbol keys "
            f"(sections {', '.join(PER_SYMBOL_SECTIONS)})"
        )
    table: dict[tuple[StrategyType, Regime], float] = {}
    for strategy, by_regime in (section.get("kelly") or {}).items():
        for regime, cell in (by_regime or {}).items():
            try:
                f = float(cell["f"] if isinstance(cell, dict) else cell)
                table[(StrategyType(strategy), Regime(regime))] = f
            except (KeyError, TypeError, ValueError):
                raise ConfigError(
                    f"{path}: symbols.{symbol}.kelly.{strategy}.{regime} must have a numeric f "
                    "and name a known strategy and regime"
                ) from None
    meta = {k: v for k, v in section.items() if k not in ("params", "kelly")}
    return HyperParams(symbol.upper(), {str(k): v for k, v in params.items()}, table, meta)


def load_all(path: Path, symbols: list[str]) -> dict[str, HyperParams]:
    """`load` for each symbol that has a section."""
    out = {s: load(path, s) for s in symbols}
    return {s: h for s, h in out.items() if h.params or h.kelly}


def save(
    path: Path,
    symbol: str,
    params: Mapping[str, Any],
    kelly: list[KellyEstimate],
    meta: Mapping[str, Any],
) -> Path:
    """Write `symbol`'s section (replacing it, keeping the others) atomically."""
    data: dict[str, Any] = _read(path) if path.exists() else {"version": VERSION, "symbols": {}}
    cells: dict[str, dict[str, Any]] = {}
    for e in kelly:
        cells.setdefault(e.strategy, {})[e.regime] = e.to_json()
    data["version"] = VERSION
    sections: dict[str, Any] = data.setdefault("symbols", {})
    sections[symbol.upper()] = {
        "params": {k: _plain(v) for k, v in sorted(params.items())},
        "kelly": cells,
        **{k: _plain(v) for k, v in meta.items()},
    }
    body = HEADER + yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
    return atomic_write(path, body.encode("utf-8"))


def _plain(value: Any) -> Any:
    """Plain YAML values (numpy and Path become float/int/str)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        return float(value)
    if isinstance(value, Path):
        return str(value)
    item = getattr(value, "item", None)
    return item() if callable(item) else str(value)
