"""The JSONL journal as DuckDB tables (contexts, trades, orders) for the review.

DuckDB opens many small files slowly (milliseconds each), so the window's files are concatenated
into one temporary file per kind first; a year of four symbols then loads in well under a second.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Final

import duckdb

_DAY_DIR: Final = re.compile(r"\d{4}-\d{2}-\d{2}")
_SUFFIX: Final = {"context": "context", "trades": "trades", "orders": "orders"}

# Exit-rule fields of a trade line (`.trade.exit_rules`) that the review reads and compares.
EXIT_FIELDS: Final = (
    "profit_target_pct",
    "stop_loss_pct",
    "time_exit_dte",
    "max_days_held",
    "trailing_stop_pct",
    "breakeven_trigger_pct",
)


@dataclass(frozen=True, slots=True)
class ReviewQuery:
    """Which part of the journal to review: New York session dates (inclusive) and symbols."""

    runs_dir: Path
    since: date | None = None
    until: date | None = None
    symbols: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.since and self.until and self.since > self.until:
            raise ValueError(f"--since {self.since} is after --until {self.until}")


_CONTEXT_COLUMNS: Final = {
    "as_of": "TIMESTAMPTZ",
    "symbol": "VARCHAR",
    "context": "STRUCT(direction VARCHAR, confidence DOUBLE, regime VARCHAR, iv_rank DOUBLE)",
}
_EXIT_STRUCT: Final = "STRUCT(" + ", ".join(f"{f} DOUBLE" for f in EXIT_FIELDS) + ")"
_TRADE_COLUMNS: Final = {
    "as_of": "TIMESTAMPTZ",
    "symbol": "VARCHAR",
    "trade": (
        "STRUCT(id VARCHAR, strategy_type VARCHAR, direction VARCHAR, confidence DOUBLE,"
        " quantity INTEGER, max_loss DOUBLE, max_profit DOUBLE, iv_rank DOUBLE, regime VARCHAR,"
        f" exit_rules {_EXIT_STRUCT})"
    ),
    "context": "STRUCT(iv_rank DOUBLE, regime VARCHAR, direction VARCHAR, confidence DOUBLE)",
}
_ORDER_COLUMNS: Final = {
    "as_of": "TIMESTAMPTZ",
    "symbol": "VARCHAR",
    "order": (
        "STRUCT(intent_id VARCHAR, position_id VARCHAR, effect VARCHAR, strategy_type VARCHAR,"
        " exit_reason VARCHAR, quantity INTEGER, limit_price DOUBLE,"
        " risk STRUCT(approved BOOLEAN, reason VARCHAR, detail VARCHAR, max_loss DOUBLE,"
        " equity DOUBLE, decided_at TIMESTAMPTZ),"
        " broker_result STRUCT(status VARCHAR, message VARCHAR, position_id VARCHAR,"
        " quantity INTEGER, net_price DOUBLE, commission DOUBLE, slippage DOUBLE,"
        " legs STRUCT(quantity INTEGER, price DOUBLE)[]),"
        " error_message VARCHAR)"
    ),
}
# The journal's directory is the New York date of each line's as_of (store/journal.py).
_DAY_SQL: Final = "(as_of AT TIME ZONE 'America/New_York')::DATE"

_DDL: Final = """
CREATE TABLE contexts (day DATE, as_of TIMESTAMPTZ, symbol VARCHAR, direction VARCHAR,
    confidence DOUBLE, regime VARCHAR, iv_rank DOUBLE);
CREATE TABLE trades (day DATE, as_of TIMESTAMPTZ, symbol VARCHAR, id VARCHAR, strategy VARCHAR,
    direction VARCHAR, confidence DOUBLE, regime VARCHAR, iv_rank DOUBLE, quantity INTEGER,
    max_loss DECIMAL(18,2), max_profit DECIMAL(18,2), profit_target_pct DOUBLE,
    stop_loss_pct DOUBLE, time_exit_dte DOUBLE, max_days_held DOUBLE, trailing_stop_pct DOUBLE,
    breakeven_trigger_pct DOUBLE);
CREATE TABLE orders (day DATE, as_of TIMESTAMPTZ, symbol VARCHAR, in_window BOOLEAN,
    intent_id VARCHAR, position_id VARCHAR, effect VARCHAR, strategy VARCHAR, exit_reason VARCHAR,
    quantity INTEGER, limit_price DECIMAL(18,4), approved BOOLEAN, reason VARCHAR, detail VARCHAR,
    max_loss DECIMAL(18,2), equity DECIMAL(18,2), decided_at TIMESTAMPTZ, status VARCHAR,
    message VARCHAR, fill_position_id VARCHAR, fill_quantity INTEGER, net_price DECIMAL(18,4),
    commission DECIMAL(18,2), slippage DECIMAL(18,2), premium DECIMAL(18,2), contracts INTEGER,
    error_message VARCHAR);
CREATE TABLE families (strategy VARCHAR, family VARCHAR);
"""


def journal_files(query: ReviewQuery, kind: str, window: bool = True) -> list[Path]:
    """The journal files of one kind ("context", "trades", "orders") in the query's window."""
    if not query.runs_dir.is_dir():
        raise FileNotFoundError(f"journal directory {query.runs_dir} does not exist")
    out: list[Path] = []
    wanted = {s.upper() for s in query.symbols}
    for day_dir in sorted(query.runs_dir.iterdir()):
        if not (day_dir.is_dir() and _DAY_DIR.fullmatch(day_dir.name)):
            continue
        day = date.fromisoformat(day_dir.name)
        if window and ((query.since and day < query.since) or (query.until and day > query.until)):
            continue
        for path in sorted(day_dir.glob(f"*_{_SUFFIX[kind]}.jsonl")):
            symbol = path.name.rsplit("_", 1)[0]
            if not wanted or symbol.upper() in wanted:
                out.append(path)
    return out


def _read(columns: Mapping[str, str]) -> str:
    cols = ", ".join(f"'{k}': '{v}'" for k, v in columns.items())
    return (
        "read_json(?, format='newline_delimited', columns={" + cols + "}, "
        "ignore_errors=true, maximum_object_size=16777216)"
    )


def _bundle(paths: Iterable[Path], target: Path) -> None:
    """Concatenate journal files into one (DuckDB reads one big file far faster than many small
    ones); a file ending mid-line gets a newline so its torn tail is not glued to the next file."""
    with target.open("wb") as out:
        for path in paths:
            data = path.read_bytes()
            if data:
                out.write(data)
                if not data.endswith(b"\n"):
                    out.write(b"\n")


def load_journal(
    con: duckdb.DuckDBPyConnection, query: ReviewQuery, workdir: Path
) -> tuple[int, dict[str, int], int]:
    """Create and fill the contexts, trades and orders tables; return (files, lines, skipped).

    Orders are read from every day (closes join their openings even across the window's start);
    `orders.in_window` marks the window. Unreadable (torn) lines are skipped and counted.
    `workdir` holds the concatenated journal while it loads.
    """
    con.execute("SET TimeZone = 'UTC'")
    con.execute(_DDL)
    files = 0
    lines: dict[str, int] = {}
    skipped = 0
    specs = [
        ("context", "contexts", _CONTEXT_COLUMNS, _CONTEXTS_SELECT),
        ("trades", "trades", _TRADE_COLUMNS, _TRADES_SELECT),
        ("orders", "orders", _ORDER_COLUMNS, _ORDERS_SELECT),
    ]
    for kind, table, columns, select in specs:
        in_window = journal_files(query, kind)
        files += len(in_window)
        sources = [(in_window, True)]
        if table == "orders":
            inside = set(in_window)
            others = [p for p in journal_files(query, kind, window=False) if p not in inside]
            sources.append((others, False))
        payload = {"contexts": "context", "trades": "trade", "orders": '"order"'}[table]
        for paths, window in sources:
            if not paths:
                continue
            bundle = workdir / f"{table}-{int(window)}.jsonl"
            _bundle(paths, bundle)
            con.execute(
                f"CREATE TEMP TABLE raw AS SELECT *, {_DAY_SQL} AS day, {window} AS in_window"
                f" FROM {_read(columns)}",
                [str(bundle)],
            )
            if window:
                bad = con.execute(
                    f"SELECT count(*) FROM raw WHERE symbol IS NULL OR {payload} IS NULL"
                ).fetchone()
                skipped += int(bad[0]) if bad else 0
            con.execute(
                f"INSERT INTO {table} {select} WHERE symbol IS NOT NULL AND {payload} IS NOT NULL"
            )
            con.execute("DROP TABLE raw")
            bundle.unlink()
        where = "WHERE in_window" if table == "orders" else ""
        row = con.execute(f"SELECT count(*) FROM {table} {where}").fetchone()
        lines[table] = int(row[0]) if row else 0
    return files, lines, skipped


_CONTEXTS_SELECT: Final = """
SELECT day, as_of, symbol, context.direction, context.confidence, context.regime,
       context.iv_rank FROM raw"""
_TRADES_SELECT: Final = (
    """
SELECT day, as_of, symbol, trade.id, trade.strategy_type,
       coalesce(trade.direction, context.direction), trade.confidence,
       coalesce(trade.regime, context.regime), coalesce(trade.iv_rank, context.iv_rank),
       trade.quantity, trade.max_loss::DECIMAL(18,2), trade.max_profit::DECIMAL(18,2),
       """
    + ", ".join(f"trade.exit_rules.{f}" for f in EXIT_FIELDS)
    + " FROM raw"
)
_ORDERS_SELECT: Final = """
SELECT day, as_of, symbol, in_window, o.intent_id, o.position_id, o.effect,
       o.strategy_type, o.exit_reason, o.quantity, o.limit_price::DECIMAL(18,4),
       o.risk.approved, o.risk.reason, o.risk.detail, o.risk.max_loss::DECIMAL(18,2),
       o.risk.equity::DECIMAL(18,2), o.risk.decided_at, o.broker_result.status,
       o.broker_result.message, o.broker_result.position_id, o.broker_result.quantity,
       o.broker_result.net_price::DECIMAL(18,4), o.broker_result.commission::DECIMAL(18,2),
       o.broker_result.slippage::DECIMAL(18,2),
       (100 * list_sum(list_transform(o.broker_result.legs,
            lambda g: abs(g.price) * g.quantity)))::DECIMAL(18,2),
       list_sum(list_transform(o.broker_result.legs, lambda g: g.quantity))::INTEGER,
       o.error_message
FROM (SELECT *, "order" AS o FROM raw) AS raw"""
