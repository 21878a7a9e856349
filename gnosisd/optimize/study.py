"""`gnosisd optimize`: an Optuna study (TPE sampler, median pruner) over backtests of the training
window, shared by any number of workers through RDB storage (SQLite file by default, PostgreSQL for
several machines); then a walk-forward report on the hold-out, Kelly refinement and the params file.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import sys
import time
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import optuna

from gnosisd.core.calendar import Session, TradingCalendar
from gnosisd.core.clock import NEW_YORK
from gnosisd.core.config import Settings
from gnosisd.core.errors import ConfigError
from gnosisd.feeds.replay import ReplayData, ReplayFeed, load_data
from gnosisd.optimize import kelly as kelly_mod
from gnosisd.optimize import params as params_file
from gnosisd.optimize.objective import DD_PENALTY, Objective, trial_summary
from gnosisd.optimize.space import Param, active_space
from gnosisd.runtime.backtest import (
    BacktestRequest,
    BacktestResult,
    FeedKind,
    backtest_sessions,
    run_quiet,
)
from gnosisd.runtime.performance import metrics

SCHEMA_ATTEMPTS = 5
STUDY_ATTRS = ("symbol", "feed", "data", "from", "to", "holdout_from", "space")


@dataclasses.dataclass(frozen=True)
class OptimizeRequest:
    """Everything one `gnosisd optimize` command needs (picklable: workers are processes)."""

    symbol: str
    start: date
    end: date
    holdout: float
    feed: FeedKind
    data: str | None
    seed: int
    trials: int
    n_jobs: int
    study: str
    storage: str
    params_out: Path
    workdir: Path
    dd_penalty: float = DD_PENALTY
    kelly_min_trades: int = kelly_mod.MIN_TRADES
    progress: bool | None = None


def masked(url: str) -> str:
    """A storage URL with its password masked (for printing and the params file)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def storage(url: str) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage; SQLite waits for the file lock instead of failing under contention."""
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        kwargs = {"connect_args": {"timeout": 60}}
    else:
        kwargs = {"pool_pre_ping": True}
    last: Exception | None = None
    for attempt in range(SCHEMA_ATTEMPTS):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
        except Exception as exc:  # SQLAlchemy's errors: unreachable server, bad URL, schema race
            # Workers starting together on an empty database race to create Optuna's schema;
            # the loser sees a duplicate type or table and succeeds on a retry.
            last = exc
            time.sleep(0.5 * (attempt + 1))
    raise ConfigError(f"--storage {masked(url)}: cannot open the study storage: {last}") from None


def split(sessions: list[Session], holdout: float) -> tuple[list[Session], list[Session]]:
    """(training, hold-out): the last `holdout` share of the sessions is held out."""
    if not 0.0 <= holdout < 1.0:
        raise ConfigError(f"--holdout must be in [0, 1), got {holdout}")
    n_hold = round(len(sessions) * holdout)
    n_train = len(sessions) - n_hold
    if n_train < 10:
        raise ConfigError(
            f"the training window has {n_train} sessions; widen --from/--to (at least 10)"
        )
    return sessions[:n_train], sessions[n_train:]


@dataclasses.dataclass
class _Setup:
    settings: Settings
    calendar: TradingCalendar
    data: ReplayData | None
    train: list[Session]
    hold: list[Session]
    space: list[Param]
    skipped: list[Param]
    cache: dict[Any, Any]

    def request(self, start: date, end: date, req: OptimizeRequest) -> BacktestRequest:
        return BacktestRequest(
            start=start,
            end=end,
            symbols=[req.symbol],
            seed=req.seed,
            feed=req.feed,
            data=self.data,
            journal=False,
            progress=False,
            chain_cache=self.cache if req.feed == "replay" else None,
        )


def _setup(settings: Settings, req: OptimizeRequest) -> _Setup:
    calendar = TradingCalendar()
    data = (
        load_data(req.data, calendar, [req.symbol]) if req.feed == "replay" and req.data else None
    )
    if req.feed == "replay" and data is None:
        raise ConfigError("--feed replay needs --data (a path to bars, or arch:sp500)")
    probe = BacktestRequest(req.start, req.end, [req.symbol], req.seed, req.feed, data)
    feed = (
        ReplayFeed(data, [req.symbol], seed=req.seed, calendar=calendar, chains=False)
        if data is not None
        else None
    )
    train, hold = split(backtest_sessions(probe, calendar, feed), req.holdout)
    space, skipped = active_space(settings)
    return _Setup(settings, calendar, data, train, hold, space, skipped, {})


def _attrs(setup: _Setup, req: OptimizeRequest) -> dict[str, str]:
    return {
        "symbol": req.symbol,
        "feed": req.feed,
        "data": req.data or "",
        "from": setup.train[0].day.isoformat(),
        "to": (setup.hold or setup.train)[-1].day.isoformat(),
        "holdout_from": setup.hold[0].day.isoformat() if setup.hold else "",
        "space": ",".join(p.key for p in setup.space),
    }


def open_study(setup: _Setup, req: OptimizeRequest, worker: int) -> optuna.Study:
    """Create or join the study; refuse to join one made for other inputs."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    train_sessions = len(setup.train)
    study = optuna.create_study(
        study_name=req.study,
        storage=storage(req.storage),
        direction="maximize",
        load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=req.seed + worker),
        pruner=optuna.pruners.MedianPruner(
            n_startup_trials=5, n_warmup_steps=max(1, int(0.3 * train_sessions))
        ),
    )
    want = _attrs(setup, req)
    have = {k: study.user_attrs.get(k) for k in STUDY_ATTRS}
    # Workers may create the study at the same moment: fill what is missing, compare the rest.
    for k, v in want.items():
        if have[k] is None:
            study.set_user_attr(k, v)
    diff = [k for k in want if have[k] is not None and have[k] != want[k]]
    if diff:
        shown = ", ".join(f"{k}: study {have[k]!r} vs now {want[k]!r}" for k in diff)
        raise ConfigError(
            f"study {req.study!r} was created for other inputs ({shown}); "
            "use the same --symbols/--feed/--data/--from/--to/--holdout or another --study"
        )
    return study


def _objective(setup: _Setup, req: OptimizeRequest) -> Objective:
    train = setup.request(setup.train[0].day, setup.train[-1].day, req)
    return Objective(
        setup.settings,
        setup.calendar,
        train,
        setup.space,
        len(setup.train),
        req.dd_penalty,
        req.workdir,
    )


def _worker(settings_data: dict[str, Any], req: OptimizeRequest, worker: int, n: int) -> None:
    """A worker process: join the study and run `n` trials."""
    settings = Settings(**settings_data)
    setup = _setup(settings, req)
    study = open_study(setup, req, worker)
    study.optimize(_objective(setup, req), n_trials=n, catch=())


def _shares(trials: int, n_jobs: int) -> list[int]:
    return [trials // n_jobs + (1 if i < trials % n_jobs else 0) for i in range(n_jobs)]


def _finished(study: optuna.Study) -> int:
    return sum(1 for t in study.get_trials(deepcopy=False) if t.state.is_finished())


def _progress_callback(req: OptimizeRequest, study: optuna.Study, total: int) -> tuple[Any, Any]:
    """A tqdm bar (terminal only) over the trials that finish in the study while this runs."""
    show = req.progress if req.progress is not None else sys.stderr.isatty()
    if not show or total == 0:
        return None, None
    from tqdm import tqdm

    bar = tqdm(total=total, unit="trial", file=sys.stderr, desc="optimize", leave=False)
    start = _finished(study)

    def callback(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        bar.n = min(total, _finished(study) - start)
        completed = [t for t in study.get_trials(deepcopy=False) if t.value is not None]
        if completed:
            bar.set_postfix_str(f"best {max(t.value or 0.0 for t in completed):.3f}", refresh=False)
        bar.refresh()

    return callback, bar


def run_trials(settings: Settings, req: OptimizeRequest) -> tuple[_Setup, optuna.Study]:
    """Run this command's trials: `n_jobs` processes (this one included) on the shared study."""
    req.workdir.mkdir(parents=True, exist_ok=True)
    setup = _setup(settings, req)
    study = open_study(setup, req, 0)
    shares = _shares(req.trials, max(1, req.n_jobs))
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_worker, args=(settings.model_dump(), req, i, n), daemon=False)
        for i, n in enumerate(shares[1:], start=1)
        if n > 0
    ]
    for p in procs:
        p.start()
    callback, bar = _progress_callback(req, study, req.trials)
    try:
        if shares[0] > 0:
            study.optimize(
                _objective(setup, req),
                n_trials=shares[0],
                callbacks=[callback] if callback else None,
                catch=(),
            )
    finally:
        for p in procs:
            p.join()
        if bar is not None:
            bar.close()
    failed = [p.exitcode for p in procs if p.exitcode != 0]
    if failed:
        raise RuntimeError(f"{len(failed)} optimisation worker(s) failed (exit codes {failed})")
    return setup, study


@dataclasses.dataclass
class Finalised:
    best: optuna.trial.FrozenTrial
    params: dict[str, Any]
    kelly: list[kelly_mod.KellyEstimate]
    tuned: BacktestResult  # best params + Kelly over the whole window
    baseline: BacktestResult  # the configuration as it is, same window
    holdout_from: date | None
    kelly_applied: bool


def finalise(setup: _Setup, req: OptimizeRequest, study: optuna.Study) -> Finalised:
    """Best trial → Kelly from its training trades → walk-forward run over train + hold-out."""
    try:
        best = study.best_trial
    except ValueError:
        raise ConfigError(
            f"study {req.study!r} has no completed trial yet; run more --trials"
        ) from None
    params = {p.key: best.params[p.key] for p in setup.space if p.key in best.params}
    end = (setup.hold or setup.train)[-1].day
    whole = setup.request(setup.train[0].day, end, req)
    hold_from = setup.hold[0].day if setup.hold else None
    sym = req.symbol
    tuned_req = dataclasses.replace(whole, symbol_overrides={sym: params})
    first = run_quiet(setup.settings, tuned_req, setup.calendar, req.workdir / "finalise-1")
    train_trades = [
        t
        for t in first.trades
        if hold_from is None or t.opened.astimezone(NEW_YORK).date() < hold_from
    ]
    table = kelly_mod.estimate(train_trades, req.kelly_min_trades)
    kelly_table = kelly_mod.overrides(table)
    applied = bool(kelly_table)
    tuned = first
    if applied:
        with_kelly = dataclasses.replace(tuned_req, kelly={sym: kelly_table})
        tuned = run_quiet(setup.settings, with_kelly, setup.calendar, req.workdir / "finalise-2")
    baseline = run_quiet(setup.settings, whole, setup.calendar, req.workdir / "finalise-0")
    return Finalised(best, params, table, tuned, baseline, hold_from, applied)


def _meta(setup: _Setup, req: OptimizeRequest, fin: Finalised) -> dict[str, Any]:
    hold = fin.holdout_from
    return {
        "study": {
            "name": req.study,
            "storage": masked(req.storage),
            "best_trial": trial_summary(fin.best),
        },
        "objective": f"Sharpe - {req.dd_penalty} x max drawdown on the training window",
        "data": req.data or f"simulated market, seed {req.seed}",
        "feed": req.feed,
        "seed": req.seed,
        "train": [setup.train[0].day.isoformat(), setup.train[-1].day.isoformat()],
        "holdout": [hold.isoformat(), setup.hold[-1].day.isoformat()] if hold else None,
        "holdout_metrics": _short(metrics(fin.tuned, hold)) if hold else None,
        "baseline_holdout_metrics": _short(metrics(fin.baseline, hold)) if hold else None,
        "kelly_applied_in_holdout": fin.kelly_applied,
    }


def _short(m: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("sessions", "total_return", "sharpe", "sortino", "max_drawdown", "trades", "win_rate")
    return {k: m[k] for k in keys}


def run_optimize_command(settings: Settings, req: OptimizeRequest) -> int:
    """`gnosisd optimize`: trials, then the walk-forward report and the hyperparameter file."""
    if req.trials < 0 or req.n_jobs < 1:
        raise ConfigError(
            f"--trials must be >= 0 and --n-jobs >= 1, got {req.trials}, {req.n_jobs}"
        )
    setup, study = run_trials(settings, req)
    fin = finalise(setup, req, study)
    meta = _meta(setup, req, fin)
    meta["study"]["trials"] = len(study.get_trials(deepcopy=False))
    path = params_file.save(req.params_out, req.symbol, fin.params, fin.kelly, meta)
    sys.stdout.write(format_report(setup, req, fin, study, path))
    return 0


def format_report(
    setup: _Setup, req: OptimizeRequest, fin: Finalised, study: optuna.Study, path: Path
) -> str:
    trials = study.get_trials(deepcopy=False)
    states = {
        s.name.lower(): sum(1 for t in trials if t.state == s) for s in optuna.trial.TrialState
    }
    lines = [
        "",
        f"gnosisd optimize {req.symbol}: study {req.study!r} on {masked(req.storage)}",
        f"  trials          {len(trials)} in the study ("
        + ", ".join(f"{k} {v}" for k, v in states.items() if v)
        + ")",
        f"  training        {setup.train[0].day} .. {setup.train[-1].day} ({len(setup.train)} sessions)",
        f"  best trial      #{fin.best.number}: objective {fin.best.value:.4f} "
        f"(Sharpe - {req.dd_penalty} x max drawdown)",
    ]
    for key, value in sorted(fin.params.items()):
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        lines.append(f"    {key:<38} {shown}")
    if setup.skipped:
        lines.append(
            "  not tuned       "
            + ", ".join(p.key for p in setup.skipped)
            + " (not in this configuration)"
        )
    if fin.kelly:
        lines.append(
            f"  Kelly (train)   {len(fin.kelly)} strategy/regime cells, applied: {fin.kelly_applied}"
        )
        for e in fin.kelly:
            b = "inf" if e.b is None else f"{e.b:.2f}"
            lines.append(
                f"    {e.strategy:<18} {e.regime:<14} n={e.trades:<4} p={e.p:.2f} b={b} f={e.f:+.3f}"
            )
    else:
        lines.append(f"  Kelly (train)   no cell with >= {req.kelly_min_trades} closed trades")
    if fin.holdout_from is not None:
        lines.append(
            f"  hold-out        {fin.holdout_from} .. {setup.hold[-1].day} ({len(setup.hold)} sessions)"
        )
        for name, res in (("tuned", fin.tuned), ("baseline", fin.baseline)):
            m = metrics(res, fin.holdout_from)
            lines.append(
                f"    {name:<9} return {m['total_return'] * 100:+7.2f}%  Sharpe {m['sharpe']:6.2f}  "
                f"max DD {m['max_drawdown'] * 100:6.2f}%  trades {m['trades']}"
            )
    lines.append(f"  written         {path}")
    return "\n".join(lines) + "\n"
