"""The `gnosisd` command: run, paper, config check.

Exit codes: 0 success, 2 invalid configuration or usage, 3 a `paper` run whose checks failed,
1 an unexpected crash (crash-only: systemd restarts the daemon).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path

import yaml

from gnosisd.core.calendar import Session, TradingCalendar
from gnosisd.core.clock import NEW_YORK, LiveClock
from gnosisd.core.config import Settings, load_settings, masked_dump
from gnosisd.core.errors import ConfigError

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
    return parser


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


def cmd_config_check(args: argparse.Namespace) -> int:
    settings = _load(args)
    sys.stdout.write(yaml.safe_dump(masked_dump(settings), sort_keys=False))
    sys.stdout.write("configuration OK\n")
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from gnosisd.runtime.app import run_daemon

    settings = _override(_load(args), args.capital, args.output_dir)
    if args.feed != "sim" or (args.broker or settings.execution.broker) != "sim":
        raise ConfigError(
            f"--feed {args.feed} --broker {args.broker or settings.execution.broker}: only the "
            "simulated feed and broker are available in this version (use --feed sim --broker sim)"
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
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "config":
            return cmd_config_check(args)
        if args.command == "run":
            return cmd_run(args)
        if args.command == "paper":
            return cmd_paper(args)
    except ConfigError as exc:
        sys.stderr.write(f"gnosisd: {exc}\n")
        return EXIT_CONFIG
    raise AssertionError(f"unhandled command {args.command}")


if __name__ == "__main__":
    sys.exit(main())
