"""The `gnosisd` command: run, paper, backtest, optimize, config check, status, halt, resume.

Exit codes: 0 success, 2 invalid configuration or usage, 3 a `paper` run whose checks failed,
a `review` with a failed check or a `status` of a halted daemon, 4 a `status` of a daemon that is
down, 1 an unexpected crash (crash-only: systemd restarts the daemon).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from gnosisd.core.calendar import Session, TradingCalendar
from gnosisd.core.clock import NEW_YORK, LiveClock
from gnosisd.core.config import Settings, load_settings, masked_dump
from gnosisd.core.errors import ConfigError

if TYPE_CHECKING:
    from gnosisd.runtime.app import SymbolOverrides

EXIT_OK = 0
EXIT_CONFIG = 2


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        help="configuration file (default: config/config.yaml if present, else built-in defaults)",
    )
    p.add_argument(
        "--env-file", type=Path, default=Path(".env"), help="git-ignored env file with keys"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gnosisd", description=__doc__)
    _common(parser)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the daemon")
    _common(run)
    run.add_argument("--feed", choices=["sim", "alpaca", "replay"], default="sim")
    run.add_argument("--broker", choices=["sim", "alpaca"], default=None)
    run.add_argument(
        "--alpaca-mode",
        choices=["paper", "live"],
        default=None,
        help="Alpaca paper or live endpoints (default: execution.alpaca_mode); live also needs "
        "the live gate",
    )
    run.add_argument(
        "--symbols", default=None, help="comma-separated underlyings (default: config)"
    )
    run.add_argument(
        "--speed",
        type=float,
        default=0.0,
        help="simulated seconds per wall second; 0 = as fast as possible (default)",
    )
    run.add_argument("--sessions", type=int, default=1, help="number of trading sessions to run")
    run.add_argument(
        "--start-date",
        type=date.fromisoformat,
        default=None,
        help="first session (YYYY-MM-DD); default: the latest XNYS session to date",
    )
    run.add_argument("--seed", type=int, default=7, help="seed of the simulated market")
    run.add_argument("--capital", type=float, default=None, help="initial cash (overrides config)")
    run.add_argument("--output-dir", type=Path, default=None, help="journal directory (runs/)")
    run.add_argument(
        "--params",
        type=Path,
        default=None,
        help="hyperparameter file from `gnosisd optimize` (per symbol)",
    )

    paper = sub.add_parser("paper", help="the daily paper job (dry run unless --execute)")
    _common(paper)
    paper.add_argument("--execute", action="store_true", help="send orders (default: dry run)")
    paper.add_argument("--broker", choices=["sim", "alpaca"], default="sim")
    paper.add_argument("--underlying-price", type=float, default=None)
    paper.add_argument("--capital", type=float, default=None)
    paper.add_argument("--output-dir", type=Path, default=None)
    paper.add_argument("--symbol", default="SPY")
    paper.add_argument("--seed", type=int, default=7)
    paper.add_argument(
        "--params",
        type=Path,
        default=None,
        help="hyperparameter file from `gnosisd optimize` (per symbol)",
    )
    paper.add_argument(
        "--date",
        type=date.fromisoformat,
        default=None,
        help="session date (default: the latest XNYS session to date)",
    )

    cfg = sub.add_parser("config", help="configuration commands")
    _common(cfg)
    cfg_sub = cfg.add_subparsers(dest="config_command", required=True)
    check = cfg_sub.add_parser("check", help="validate and print the effective configuration")
    _common(check)
    _research_parsers(sub)
    _ops_parsers(sub)
    return parser


def _ops_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`review` and `status` (docs/operations.md)."""
    rv = sub.add_parser(
        "review", help="review the journal: four checks with PASS/FAIL, exit 3 on FAIL"
    )
    _common(rv)
    rv.add_argument("--runs", type=Path, default=None, help="journal directory (default: config)")
    rv.add_argument("--since", type=date.fromisoformat, default=None, help="first session date")
    rv.add_argument("--until", type=date.fromisoformat, default=None, help="last session date")
    rv.add_argument("--symbol", default=None, help="comma-separated underlyings (default: all)")
    rv.add_argument("--html", type=Path, default=None, help="also write an HTML report here")

    st = sub.add_parser("status", help="the running daemon's status; exit 0 ok, 3 halted, 4 down")
    _common(st)
    st.add_argument("--status-file", type=Path, default=None, help="default: runtime.status_file")
    st.add_argument("--json", action="store_true", help="print the status document as JSON")

    halt = sub.add_parser(
        "halt", help="kill switch: write the kill file; a running daemon halts within a second"
    )
    _common(halt)
    halt.add_argument("--reason", default="operator halt", help="why (kept in the kill file)")
    resume = sub.add_parser(
        "resume", help="remove the kill file and the latched halt; trading may resume"
    )
    _common(resume)


def _research_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`backtest` and `optimize` (docs/backtesting.md)."""
    bt = sub.add_parser("backtest", help="backtest on the simulated clock (sim or replay feed)")
    _common(bt)
    bt.add_argument("--from", dest="start", type=date.fromisoformat, required=True)
    bt.add_argument("--to", dest="end", type=date.fromisoformat, required=True)
    bt.add_argument("--feed", choices=["sim", "replay"], default="sim")
    bt.add_argument(
        "--data", default=None, help="bars (CSV/Parquet file or directory) or arch:sp500"
    )
    bt.add_argument("--symbols", default=None, help="comma-separated underlyings (default: config)")
    bt.add_argument("--seed", type=int, default=7)
    bt.add_argument("--capital", type=float, default=None)
    bt.add_argument(
        "--output-dir",
        type=Path,
        default=None,
        help="new or empty directory (default: backtests/FEED_FROM_TO_seedN)",
    )
    bt.add_argument("--params", type=Path, default=None, help="hyperparameter file to apply")

    opt = sub.add_parser("optimize", help="tune the configuration with Optuna on backtests")
    _common(opt)
    opt.add_argument("--trials", type=int, default=20, help="trials this command runs")
    opt.add_argument("--study", default=None, help="study name (default: gnosisd-SYMBOL)")
    opt.add_argument(
        "--storage",
        default=None,
        help="Optuna RDB URL (default: $GNOSIS_OPTUNA_STORAGE, else sqlite:///STATE_DIR/optuna.db)",
    )
    opt.add_argument("--seed", type=int, default=7)
    opt.add_argument("--n-jobs", type=int, default=1, help="worker processes on this machine")
    opt.add_argument("--from", dest="start", type=date.fromisoformat, default=None)
    opt.add_argument("--to", dest="end", type=date.fromisoformat, default=None)
    opt.add_argument("--holdout", type=float, default=0.25, help="share held out (walk-forward)")
    opt.add_argument("--feed", choices=["sim", "replay"], default="replay")
    opt.add_argument("--data", default="arch:sp500")
    opt.add_argument("--symbols", default=None, help="the one underlying to tune (default: config)")
    opt.add_argument("--capital", type=float, default=None)
    opt.add_argument(
        "--params-out", type=Path, default=None, help="default: STATE_DIR/hyperparams.yaml"
    )


def _load(args: argparse.Namespace) -> Settings:
    return load_settings(args.config, env_file=args.env_file)


def _latest_session(calendar: TradingCalendar, start: date | None) -> date:
    day = start or LiveClock().now().astimezone(NEW_YORK).date()
    while not calendar.is_session(day):
        day -= timedelta(days=1)
    return day


def _sessions(calendar: TradingCalendar, first: date, count: int) -> list[Session]:
    sessions = [calendar.session(first)]
    while len(sessions) < count:
        sessions.append(calendar.next_session(sessions[-1].day))
    return sessions


def _override(settings: Settings, capital: float | None, output_dir: Path | None) -> Settings:
    data = settings.model_dump()
    if capital is not None:
        data["execution"]["initial_cash"] = capital
        data["trade_agent"]["default_capital"] = capital
    if output_dir is not None:
        data["runtime"]["runs_dir"] = output_dir
    try:
        return Settings(**data)
    except Exception as exc:  # a bad flag value is a usage error, reported like config errors
        raise ConfigError(f"invalid command-line value: {exc}") from None


def _hyperparams(
    settings: Settings, path: Path | None, symbols: list[str]
) -> SymbolOverrides | None:
    """The optimiser's per-symbol parameters and Kelly tables from `path` (None: no file given)."""
    if path is None:
        return None
    from gnosisd.optimize.params import load_all
    from gnosisd.runtime.app import SymbolOverrides
    from gnosisd.runtime.backtest import symbol_settings

    if not path.is_file():
        raise ConfigError(f"--params {path}: no such hyperparameter file (run `gnosisd optimize`)")
    hyper = load_all(path, symbols)
    return SymbolOverrides(
        settings=symbol_settings(settings, {s: h.params for s, h in hyper.items() if h.params}),
        kelly={s: h.kelly for s, h in hyper.items() if h.kelly},
    )


def cmd_config_check(args: argparse.Namespace) -> int:
    settings = _load(args)
    sys.stdout.write(yaml.safe_dump(masked_dump(settings), sort_keys=False))
    sys.stdout.write("configuration OK\n")
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from gnosisd.runtime.app import run_daemon

    settings = _override(_load(args), args.capital, args.output_dir)
    broker = args.broker or settings.execution.broker
    if args.feed == "alpaca":
        return _run_alpaca(args, settings, broker)
    if args.feed != "sim" or broker != "sim":
        raise ConfigError(
            f"--feed {args.feed} --broker {broker}: `gnosisd run` supports --feed sim --broker sim "
            "and --feed alpaca with --broker alpaca or sim"
        )
    if args.sessions < 1 or args.sessions > 2520:
        raise ConfigError(f"--sessions must be between 1 and 2520, got {args.sessions}")
    if args.speed < 0:
        raise ConfigError(f"--speed must be >= 0, got {args.speed}")
    calendar = TradingCalendar()
    first = _latest_session(calendar, args.start_date)
    symbols = (
        [s.strip().upper() for s in args.symbols.split(",") if s.strip()]
        if args.symbols
        else settings.runtime.symbols
    )
    return run_daemon(
        settings,
        calendar,
        symbols=symbols,
        sessions=_sessions(calendar, first, args.sessions),
        seed=args.seed,
        speed=args.speed,
        overrides=_hyperparams(settings, args.params, symbols),
    )


def _run_alpaca(args: argparse.Namespace, settings: Settings, broker: str) -> int:
    """`gnosisd run --feed alpaca [--broker alpaca|sim]`: live mode until SIGTERM/SIGINT."""
    from gnosisd.broker.alpaca.config import credentials_from_settings, endpoints_from_settings
    from gnosisd.runtime.app import run_live_daemon
    from gnosisd.runtime.live import AlpacaConnection

    if args.start_date is not None or args.sessions != 1 or args.speed != 0.0:
        raise ConfigError(
            "--start-date, --sessions and --speed are for the simulated feed; "
            "--feed alpaca runs on the wall clock until stopped"
        )
    connection = AlpacaConnection(
        endpoints=endpoints_from_settings(settings, args.alpaca_mode),
        credentials=credentials_from_settings(settings),
        broker=broker == "alpaca",
    )
    symbols = (
        [s.strip().upper() for s in args.symbols.split(",") if s.strip()]
        if args.symbols
        else settings.runtime.symbols
    )
    return run_live_daemon(
        settings,
        TradingCalendar(),
        symbols=symbols,
        alpaca=connection,
        overrides=_hyperparams(settings, args.params, symbols),
    )


def cmd_paper(args: argparse.Namespace) -> int:
    from gnosisd.runtime.app import run_paper

    settings = _override(_load(args), args.capital, args.output_dir)
    if args.broker != "sim":
        raise ConfigError(
            "--broker alpaca: the Alpaca adapter is not available in this version; use --broker sim"
        )
    calendar = TradingCalendar()
    day = _latest_session(calendar, args.date)
    return run_paper(
        settings,
        calendar,
        symbol=args.symbol.upper(),
        session=calendar.session(day),
        seed=args.seed,
        execute=args.execute,
        underlying_price=args.underlying_price,
        overrides=_hyperparams(settings, args.params, [args.symbol.upper()]),
    )


def _symbols(arg: str | None, settings: Settings) -> list[str]:
    if arg:
        return [s.strip().upper() for s in arg.split(",") if s.strip()]
    return list(settings.runtime.symbols)


def cmd_backtest(args: argparse.Namespace) -> int:
    from gnosisd.feeds.replay import load_data
    from gnosisd.optimize.params import load_all
    from gnosisd.runtime.backtest import BacktestRequest, run_backtest_command

    settings = _override(_load(args), args.capital, None)
    symbols = _symbols(args.symbols, settings)
    calendar = TradingCalendar()
    if args.feed == "replay" and not args.data:
        raise ConfigError("--feed replay needs --data PATH (CSV/Parquet bars) or arch:sp500")
    if args.feed == "sim" and args.data:
        raise ConfigError("--data is for --feed replay; the sim feed needs no data")
    data = load_data(args.data, calendar, symbols) if args.feed == "replay" else None
    hyper = load_all(args.params, symbols) if args.params else {}
    request = BacktestRequest(
        start=args.start,
        end=args.end,
        symbols=symbols,
        seed=args.seed,
        feed=args.feed,
        data=data,
        symbol_overrides={s: h.params for s, h in hyper.items() if h.params},
        kelly={s: h.kelly for s, h in hyper.items() if h.kelly},
    )
    out = args.output_dir or Path(f"backtests/{args.feed}_{args.start}_{args.end}_seed{args.seed}")
    extra = {"params": str(args.params)} if args.params else None
    return run_backtest_command(settings, calendar, request, out, extra)


def cmd_optimize(args: argparse.Namespace) -> int:
    from gnosisd.feeds.replay import default_window, load_data
    from gnosisd.optimize.study import OptimizeRequest, run_optimize_command

    settings = _override(_load(args), args.capital, None)
    symbols = _symbols(args.symbols, settings)
    if len(symbols) != 1:
        raise ConfigError(f"optimize tunes one underlying at a time; got --symbols {symbols}")
    start, end = args.start, args.end
    if start is None or end is None:
        if args.feed != "replay":
            raise ConfigError("--feed sim needs --from and --to")
        first, last = default_window(load_data(args.data, TradingCalendar(), symbols))
        start, end = start or first, end or last
    state = settings.runtime.state_dir
    request = OptimizeRequest(
        symbol=symbols[0],
        start=start,
        end=end,
        holdout=args.holdout,
        feed=args.feed,
        data=args.data if args.feed == "replay" else None,
        seed=args.seed,
        trials=args.trials,
        n_jobs=args.n_jobs,
        study=args.study or f"gnosisd-{symbols[0]}",
        storage=args.storage
        or os.environ.get("GNOSIS_OPTUNA_STORAGE")
        or f"sqlite:///{state / 'optuna.db'}",
        params_out=args.params_out or state / "hyperparams.yaml",
        workdir=state / "optimize",
    )
    state.mkdir(parents=True, exist_ok=True)
    return run_optimize_command(settings, request)


def cmd_review(args: argparse.Namespace) -> int:
    from gnosisd.runtime.review import review_command

    settings = _load(args)
    runs = args.runs or settings.runtime.runs_dir
    if not runs.is_dir():
        raise ConfigError(f"--runs {runs}: no such journal directory")
    if args.since and args.until and args.since > args.until:
        raise ConfigError(f"--since {args.since} is after --until {args.until}")
    symbols = [s.strip() for s in (args.symbol or "").split(",") if s.strip()]
    return review_command(
        settings, runs_dir=runs, since=args.since, until=args.until, symbols=symbols, html=args.html
    )


def cmd_status(args: argparse.Namespace) -> int:
    from gnosisd.runtime.status import status_command

    return status_command(_load(args), status_file=args.status_file, as_json=args.json)


def cmd_halt(args: argparse.Namespace) -> int:
    from gnosisd.risk.killswitch import HALT_STATE, write_kill_file
    from gnosisd.store.state import StateStore

    settings = _load(args)
    now = LiveClock().now()
    kill_file = settings.risk.kill_file
    write_kill_file(kill_file, args.reason, now)
    StateStore(settings.runtime.state_dir).save(
        HALT_STATE, {"reason": f"gnosisd halt: {args.reason}", "halted_at": now.isoformat()}
    )
    print(f"halted: wrote kill file {kill_file} (reason: {args.reason}, at {now.isoformat()})")
    print("a running daemon refuses new opening orders within a second; closes still pass")
    print("the halt is latched across restarts until `gnosisd resume`")
    return EXIT_OK


def cmd_resume(args: argparse.Namespace) -> int:
    from gnosisd.risk.killswitch import HALT_STATE, remove_kill_file
    from gnosisd.store.state import StateStore

    settings = _load(args)
    kill_file = settings.risk.kill_file
    had_file = remove_kill_file(kill_file)
    had_latch = StateStore(settings.runtime.state_dir).delete(HALT_STATE)
    print(f"kill file {kill_file}: {'removed' if had_file else 'was not present'}")
    print(f"latched halt: {'cleared' if had_latch else 'was not set'}")
    print("a running daemon resumes within a second; new sessions start active")
    print(
        "(on Alpaca after a failed reconciliation, only once the broker agrees with the books: "
        "otherwise the halt is saved again and `gnosisd status` shows why)"
    )
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "config":
            return cmd_config_check(args)
        if args.command == "run":
            return cmd_run(args)
        if args.command == "paper":
            return cmd_paper(args)
        if args.command == "backtest":
            return cmd_backtest(args)
        if args.command == "optimize":
            return cmd_optimize(args)
        if args.command == "review":
            return cmd_review(args)
        if args.command == "status":
            return cmd_status(args)
        if args.command == "halt":
            return cmd_halt(args)
        if args.command == "resume":
            return cmd_resume(args)
    except ConfigError as exc:
        sys.stderr.write(f"gnosisd: {exc}\n")
        return EXIT_CONFIG
    raise AssertionError(f"unhandled command {args.command}")


if __name__ == "__main__":
    sys.exit(main())
