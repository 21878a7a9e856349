"""The optimiser's objective: a backtest on the training window scored by annualised Sharpe minus
a drawdown penalty; intermediate scores of the equity so far feed Optuna's pruner.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import optuna

from gnosisd.core.calendar import TradingCalendar
from gnosisd.core.config import Settings
from gnosisd.optimize.space import Param, suggest
from gnosisd.runtime.backtest import BacktestRequest, EquityPoint, run_quiet
from gnosisd.runtime.performance import daily_returns, max_drawdown, sharpe

DD_PENALTY = 2.0  # a 10% drawdown costs 0.2 of Sharpe
REPORTS = 10  # intermediate values per trial for the pruner


def score(start_equity: float, equity: Sequence[float], dd_penalty: float = DD_PENALTY) -> float:
    """Sharpe(daily returns) − dd_penalty × max drawdown (a fraction)."""
    rets = daily_returns(start_equity, equity)
    return sharpe(rets) - dd_penalty * max_drawdown(start_equity, equity)


@dataclasses.dataclass
class Objective:
    """Callable for `study.optimize`: suggest a point, backtest the training window, score it."""

    settings: Settings
    calendar: TradingCalendar
    request: BacktestRequest  # the training window; symbol_overrides are filled per trial
    space: list[Param]
    sessions: int
    dd_penalty: float = DD_PENALTY
    workdir: Path | None = None

    def __call__(self, trial: optuna.Trial) -> float:
        params = suggest(trial, self.space)
        symbol = self.request.symbols[0]
        start = float(self.settings.execution.initial_cash)
        equity: list[float] = []
        every = max(1, self.sessions // REPORTS)

        def on_session(point: EquityPoint, done: int) -> bool:
            equity.append(float(point.equity))
            if done % every or done >= self.sessions:
                return False
            trial.report(score(start, equity, self.dd_penalty), done)
            return trial.should_prune()

        request = dataclasses.replace(
            self.request, symbol_overrides={symbol: params}, on_session=on_session, progress=False
        )
        if self.workdir is not None:
            self.workdir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="gnosisd-trial-", dir=self.workdir) as tmp:
            result = run_quiet(self.settings, request, self.calendar, Path(tmp))
        if result.pruned:
            raise optuna.TrialPruned(f"pruned after {len(equity)} sessions")
        closed = [t for t in result.trades if t.closed is not None]
        end = equity[-1] if equity else start
        trial.set_user_attr("total_return", end / start - 1.0)
        trial.set_user_attr("max_drawdown", max_drawdown(start, equity))
        trial.set_user_attr("trades", len(closed))
        trial.set_user_attr("net_pnl", float(sum((t.net for t in closed), Decimal(0))))
        return score(start, equity, self.dd_penalty)


def trial_summary(trial: optuna.trial.FrozenTrial) -> Mapping[str, Any]:
    """What the report and the hyperparameter file say about a trial."""
    return {
        "number": trial.number,
        "objective": trial.value,
        **{k: trial.user_attrs[k] for k in sorted(trial.user_attrs)},
    }
