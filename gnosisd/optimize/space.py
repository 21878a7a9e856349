"""The documented search space of `gnosisd optimize`: dotted configuration keys and their ranges.

Engine thresholds, the composer's confidence gate and the ranking weights, strategy delta and DTE
targets, and exit rules where the configuration exposes them (docs/backtesting.md lists them all).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

from gnosisd.core.config import Settings

Kind = Literal["float", "int", "log"]


class Suggester(Protocol):
    """What the space needs of an Optuna trial."""

    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False) -> float: ...

    def suggest_int(self, name: str, low: int, high: int) -> int: ...


@dataclass(frozen=True, slots=True)
class Param:
    """One tuned key: `key` is a dotted path into Settings (a per-symbol section)."""

    key: str
    low: float
    high: float
    kind: Kind = "float"
    group: str = "engines"


SPACE: tuple[Param, ...] = (
    # engine thresholds
    Param("sentiment.bullish_threshold", 0.1, 0.6),
    Param("sentiment.bearish_threshold", 0.1, 0.6),
    Param("sentiment.momentum_lookback", 10, 120, "int"),
    Param("volatility.iv_rank_threshold", 0.5, 0.9),
    Param("hedge.gamma_squeeze_threshold", 2e5, 5e6, "log"),
    Param("liquidity.max_spread_pct", 0.05, 0.30),
    # composer gate and ranking weights
    Param("trade_agent.min_confidence", 0.1, 0.7, group="composer"),
    Param("trade_agent.score_liquidity_weight", 0.0, 1.0, group="composer"),
    Param("trade_agent.score_fit_weight", 0.0, 2.0, group="composer"),
    Param("trade_agent.composer_gamma_tilt", 0.0, 0.4, group="composer"),
    Param("trade_agent.composer_thin_factor", 0.4, 1.0, group="composer"),
    Param("trade_agent.composer_trend_momentum", 0.3, 0.8, group="composer"),
    # strategy delta and DTE targets
    Param("trade_agent.target_dte", 10, 60, "int", "strategy"),
    Param("trade_agent.min_dte", 1, 10, "int", "strategy"),
    Param("trade_agent.long_delta", 0.35, 0.65, group="strategy"),
    Param("trade_agent.short_delta", 0.10, 0.45, group="strategy"),
    Param("trade_agent.condor_short_delta", 0.08, 0.30, group="strategy"),
    Param("trade_agent.spread_width", 2.0, 15.0, group="strategy"),
    # exit rules: scales of the per-family profit target and stop (agents/exits.py)
    Param("trade_agent.exit_profit_target_scale", 0.5, 1.5, group="exits"),
    Param("trade_agent.exit_stop_scale", 0.5, 1.5, group="exits"),
)


def has_key(settings: Settings, key: str) -> bool:
    node: Any = settings
    for part in key.split("."):
        fields = getattr(type(node), "model_fields", None)
        if fields is None or part not in fields:
            return False
        node = getattr(node, part)
    return True


def active_space(settings: Settings) -> tuple[list[Param], list[Param]]:
    """(tuned, skipped): the parameters this configuration has, and those it does not."""
    tuned = [p for p in SPACE if has_key(settings, p.key)]
    return tuned, [p for p in SPACE if p not in tuned]


def suggest(trial: Suggester, space: list[Param]) -> dict[str, Any]:
    """One point of the space: {dotted key: value}."""
    out: dict[str, Any] = {}
    for p in space:
        if p.kind == "int":
            out[p.key] = trial.suggest_int(p.key, int(p.low), int(p.high))
        else:
            out[p.key] = trial.suggest_float(p.key, p.low, p.high, log=p.kind == "log")
    return out
