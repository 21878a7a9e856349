"""Kelly refinement from backtest trades: one fraction per (strategy, regime).

Each closed trade's result is measured in units of the risk it took, R = net P&L / |max loss at the
fill|; p = share of winners, b = mean winning R / mean losing |R|, f = p − (1 − p)/b (Kelly 1956;
Thorp 2006), clamped to ±25%. Sizing multiplies it by the context's confidence and caps it at the
per-trade risk limit (2% of equity by default): agents/sizing.py.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from gnosisd.core.enums import Regime, StrategyType
from gnosisd.runtime.backtest import TradeRecord

KELLY_CLAMP = 0.25
MIN_TRADES = 10


@dataclass(frozen=True, slots=True)
class KellyEstimate:
    """The Kelly fraction of one (strategy, regime) cell and the sample it rests on."""

    strategy: str
    regime: str
    trades: int
    p: float
    b: float | None  # None: no losing trade (unbounded payoff ratio)
    f: float  # clamped to ±KELLY_CLAMP

    def to_json(self) -> dict[str, float | int | None]:
        return {"f": self.f, "p": self.p, "b": self.b, "trades": self.trades}


def kelly(p: float, b: float | None) -> float:
    """f = p − (1 − p)/b, clamped to ±25%; b None (no loss seen) gives f = p."""
    if b is None:
        raw = p
    elif b <= 0.0:
        raw = -math.inf if p < 1.0 else p
    else:
        raw = p - (1.0 - p) / b
    return min(max(raw, -KELLY_CLAMP), KELLY_CLAMP)


def estimate(trades: Iterable[TradeRecord], min_trades: int = MIN_TRADES) -> list[KellyEstimate]:
    """Kelly per (strategy, regime) over closed trades with a known regime and risk.

    Cells with fewer than `min_trades` trades are left out (sizing keeps its own estimate there).
    """
    cells: dict[tuple[str, str], list[float]] = {}
    for t in trades:
        if t.closed is None or t.regime is None or t.max_loss >= 0:
            continue
        r = float(t.net / -t.max_loss) if t.max_loss != Decimal(0) else 0.0
        cells.setdefault((t.strategy, t.regime), []).append(r)
    out: list[KellyEstimate] = []
    for (strategy, regime), rs in sorted(cells.items()):
        if len(rs) < min_trades:
            continue
        wins = [r for r in rs if r > 0]
        losses = [-r for r in rs if r <= 0]
        p = len(wins) / len(rs)
        mean_loss = sum(losses) / len(losses) if losses else 0.0
        if not losses:
            b: float | None = None
        elif not wins:
            b = 0.0
        else:
            b = (sum(wins) / len(wins)) / mean_loss if mean_loss > 0 else None
        out.append(KellyEstimate(strategy, regime, len(rs), p, b, kelly(p, b)))
    return out


def overrides(estimates: Iterable[KellyEstimate]) -> dict[tuple[StrategyType, Regime], float]:
    """The trade agent's `kelly_overrides`: {(strategy, regime): f} for known names only."""
    out: dict[tuple[StrategyType, Regime], float] = {}
    strategies = {s.value for s in StrategyType}
    regimes = {r.value for r in Regime}
    for e in estimates:
        if e.strategy in strategies and e.regime in regimes:
            out[(StrategyType(e.strategy), Regime(e.regime))] = e.f
    return out
