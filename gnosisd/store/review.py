"""The runbook's 2–4 week review as code: DuckDB (in memory) over the JSONL journal.

Four checks with a PASS/FAIL verdict (strategy distribution by regime, exit behaviour, risk
metrics, vol routing) plus fills, slippage, commissions, realised P&L and rejections.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

import duckdb

from gnosisd.store.journal_db import EXIT_FIELDS, ReviewQuery, load_journal

__all__ = [
    "EXIT_FIELDS",
    "ChartData",
    "Check",
    "Review",
    "ReviewQuery",
    "ReviewRules",
    "Table",
    "Verdict",
    "run_review",
]

Cell = str | int | float | Decimal | date | None
MAX_EXAMPLES: Final = 10
_ROUTING_GROUPS: Final = """SELECT direction, regime, iv_rank, confidence, strategy, count(*),
    min(day), min(symbol) FROM trades GROUP BY direction, regime, iv_rank, confidence, strategy"""
# Exit rules are written rounded to 4 decimals (agents/exits.py); compare with that tolerance.
_EXIT_TOL: Final = 5.1e-5


# ---------------------------------------------------------------- inputs
@dataclass(frozen=True)
class ReviewRules:
    """The rules gnosisd documents, as the review checks them (built from agents/ by the runtime).

    `routes(direction, regime, iv_rank, confidence)` gives the strategies the trade agent may
    choose for that context; `expected_exit(strategy, confidence)` the exit rules it must attach
    (fields named as in EXIT_FIELDS; fields it omits are not compared).
    """

    family: Mapping[str, str]
    expected_exit: Callable[[str, float], Mapping[str, float]]
    routes: Callable[[str | None, str | None, float | None, float | None], Collection[str]]
    long_premium: frozenset[str]
    short_premium: frozenset[str]
    routing_rule: str  # one line: when long / short premium is chosen
    exit_rule: str  # one line: the exit rules by family
    max_trade_risk_pct: float | None = None  # checks approved openings when set
    iv_rank_lines: tuple[tuple[str, float], ...] = ()  # (label, IV rank) drawn on the chart


# ---------------------------------------------------------------- outputs
class Verdict(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    NO_DATA = "NO DATA"


@dataclass(frozen=True)
class Table:
    title: str
    columns: tuple[str, ...]
    rows: list[tuple[Cell, ...]]
    note: str = ""


@dataclass
class Check:
    name: str
    rule: str
    verdict: Verdict
    tables: list[Table]
    failures: list[str] = field(default_factory=list)
    failed_count: int = 0


@dataclass
class ChartData:
    """Series for the HTML report's charts."""

    equity: list[tuple[datetime, str, float]] = field(default_factory=list)  # (at, symbol, $)
    daily_pnl: list[tuple[date, float]] = field(default_factory=list)  # realised net, by close day
    strategy_by_regime: list[tuple[str, str, int]] = field(default_factory=list)
    max_losses: list[float] = field(default_factory=list)
    iv_rank_by_strategy: dict[str, list[float]] = field(default_factory=dict)
    iv_rank_lines: tuple[tuple[str, float], ...] = ()


@dataclass
class Review:
    query: ReviewQuery
    files: int
    lines: dict[str, int]
    skipped_lines: int
    days: tuple[date, date] | None
    symbols: list[str]
    checks: list[Check]
    tables: list[Table]
    charts: ChartData

    @property
    def passed(self) -> bool:
        """True when every check passed (NO DATA fails: an empty journal gates nothing)."""
        return bool(self.checks) and all(c.verdict is Verdict.PASS for c in self.checks)


# ---------------------------------------------------------------- the review
def run_review(query: ReviewQuery, rules: ReviewRules) -> Review:
    """Load the journal window into an in-memory DuckDB and run every check and table."""
    con = duckdb.connect(":memory:")
    try:
        with tempfile.TemporaryDirectory(prefix="gnosisd-review-") as workdir:
            files, lines, skipped = load_journal(con, query, Path(workdir))
        con.executemany(
            "INSERT INTO families VALUES (?, ?)", [[s, f] for s, f in rules.family.items()]
        )
        _create_views(con)
        span = con.execute(
            "SELECT min(day), max(day) FROM (SELECT day FROM trades UNION ALL SELECT day FROM"
            " contexts UNION ALL SELECT day FROM orders WHERE in_window)"
        ).fetchone()
        days = (span[0], span[1]) if span and span[0] is not None else None
        symbols = [
            r[0]
            for r in con.execute(
                "SELECT DISTINCT symbol FROM (SELECT symbol FROM trades UNION SELECT symbol FROM"
                " contexts UNION SELECT symbol FROM orders WHERE in_window) ORDER BY 1"
            ).fetchall()
        ]
        has_trades = lines.get("trades", 0) > 0
        checks = [
            _check_distribution(con, rules, has_trades),
            _check_exits(con, rules, has_trades),
            _check_risk(con, rules, has_trades),
            _check_vol_routing(con, rules, has_trades),
        ]
        tables = _activity_tables(con)
        charts = _chart_data(con, rules)
    finally:
        con.close()
    return Review(query, files, lines, skipped, days, symbols, checks, tables, charts)


def _create_views(con: duckdb.DuckDBPyConnection) -> None:
    # Filled closes joined to their opening fill (the latest one at or before the close, should a
    # re-run have journaled the same position id twice): realised P&L = -(entry + exit net) x 100
    # x qty (the ledger's formula, broker/ledger.py); commissions of both fills kept apart.
    con.execute("""
CREATE TEMP VIEW opens AS
SELECT fill_position_id, as_of, net_price, commission, fill_quantity FROM orders
WHERE effect = 'open' AND status = 'filled';
CREATE TEMP VIEW closes AS
SELECT c.day, c.symbol, c.strategy, coalesce(f.family, 'other') AS family, c.exit_reason,
       c.fill_quantity AS quantity, o.net_price AS entry, c.net_price AS exit_net,
       -(o.net_price + c.net_price) * 100 * c.fill_quantity AS gross_pnl,
       c.commission + o.commission * c.fill_quantity / o.fill_quantity AS commissions
FROM (SELECT * FROM orders WHERE effect = 'close' AND status = 'filled' AND in_window) c
ASOF JOIN opens o ON o.fill_position_id = c.fill_position_id AND o.as_of <= c.as_of
LEFT JOIN families f ON f.strategy = c.strategy;
CREATE TEMP VIEW fills AS SELECT * FROM orders WHERE status = 'filled' AND in_window;
""")


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> list[Any]:
    return con.execute(sql, list(params)).fetchall()


def _check_distribution(
    con: duckdb.DuckDBPyConnection, rules: ReviewRules, has_trades: bool
) -> Check:
    table = Table(
        "Trade ideas by regime, direction and strategy",
        ("regime", "direction", "strategy", "ideas", "share of regime"),
        [
            tuple(r)
            for r in _rows(
                con,
                """SELECT regime, direction, strategy, count(*) AS n,
                   round(count(*) / sum(count(*)) OVER (PARTITION BY regime), 3)
                   FROM trades GROUP BY regime, direction, strategy
                   ORDER BY regime, direction, n DESC, strategy""",
            )
        ],
    )
    contexts = Table(
        "Contexts by regime (what the composer saw)",
        ("regime", "contexts", "bullish", "bearish", "neutral", "mean confidence"),
        [
            tuple(r)
            for r in _rows(
                con,
                """SELECT regime, count(*), count(*) FILTER (direction = 'bullish'),
                   count(*) FILTER (direction = 'bearish'), count(*) FILTER (direction = 'neutral'),
                   round(avg(confidence), 3) FROM contexts GROUP BY regime ORDER BY regime""",
            )
        ],
    )
    groups = _rows(con, _ROUTING_GROUPS)
    failures, failed = _routing_failures(groups, rules, None)
    return Check(
        "strategy distribution by regime",
        "every idea's strategy is one the routing table allows for its direction, regime and "
        "IV rank (" + rules.routing_rule + ")",
        _verdict(has_trades, failed),
        [table, contexts],
        failures,
        failed,
    )


def _routing_failures(
    groups: Iterable[Sequence[Any]], rules: ReviewRules, only: frozenset[str] | None
) -> tuple[list[str], int]:
    failures: list[str] = []
    failed = 0
    for direction, regime, iv_rank, confidence, strategy, n, day, symbol in groups:
        if only is not None and strategy not in only:
            continue
        allowed = rules.routes(direction, regime, iv_rank, confidence)
        if strategy in allowed:
            continue
        failed += int(n)
        if len(failures) < MAX_EXAMPLES:
            rank = "unknown" if iv_rank is None else f"{iv_rank:.2f}"
            conf = "unknown" if confidence is None else f"{confidence:.2f}"
            failures.append(
                f"{n} x {strategy} ({symbol}, first {day}) with direction {direction}, regime "
                f"{regime}, IV rank {rank}, confidence {conf}: allowed "
                f"{', '.join(sorted(allowed)) or 'none'}"
            )
    return failures, failed


def _check_exits(con: duckdb.DuckDBPyConnection, rules: ReviewRules, has_trades: bool) -> Check:
    by_band = Table(
        "Exit rules by strategy family and confidence",
        (
            "family",
            "confidence",
            "ideas",
            "profit target",
            "stop min",
            "stop mean",
            "stop max",
            "trail min",
            "trail max",
            "time exit DTE",
            "max days",
        ),
        [
            tuple(r)
            for r in _rows(
                con,
                """SELECT coalesce(f.family, 'other'),
                   printf('%.1f-%.1f', floor(least(confidence, 0.999) * 10) / 10,
                          floor(least(confidence, 0.999) * 10) / 10 + 0.1) AS band,
                   count(*), string_agg(DISTINCT printf('%.2f', profit_target_pct), ' '),
                   round(min(stop_loss_pct), 4), round(avg(stop_loss_pct), 4),
                   round(max(stop_loss_pct), 4), round(min(trailing_stop_pct), 4),
                   round(max(trailing_stop_pct), 4),
                   string_agg(DISTINCT time_exit_dte::INTEGER::VARCHAR, ' '),
                   string_agg(DISTINCT max_days_held::INTEGER::VARCHAR, ' ')
                   FROM trades t LEFT JOIN families f ON f.strategy = t.strategy
                   GROUP BY ALL ORDER BY 1, 2""",
            )
        ],
    )
    observed = Table(
        "Exits taken (closing fills) by family and reason",
        ("family", "exit reason", "closes", "won", "net P&L", "mean net P&L"),
        [
            tuple(r)
            for r in _rows(
                con,
                """SELECT family, coalesce(exit_reason, 'manual'), count(*),
                   count(*) FILTER (gross_pnl - commissions > 0),
                   sum(gross_pnl - commissions)::DECIMAL(18,2),
                   avg(gross_pnl - commissions)::DECIMAL(18,2)
                   FROM closes GROUP BY ALL ORDER BY 1, 2""",
            )
        ],
    )
    failures: list[str] = []
    failed = 0
    fields = ", ".join(EXIT_FIELDS)
    rows = _rows(
        con,
        f"""SELECT strategy, confidence, {fields}, count(*), min(day), min(symbol)
            FROM trades GROUP BY ALL""",
    )
    k = len(EXIT_FIELDS)
    for row in rows:
        strategy, conf = row[0], row[1]
        got = dict(zip(EXIT_FIELDS, row[2 : 2 + k], strict=True))
        n, day, symbol = row[2 + k :]
        problem = _exit_problem(rules, strategy, conf, got)
        if problem is None:
            continue
        failed += int(n)
        if len(failures) < MAX_EXAMPLES:
            failures.append(
                f"{n} x {strategy} ({symbol}, first {day}), confidence {conf}: {problem}"
            )
    return Check(
        "exit behaviour",
        "every idea carries the exit rules of its family, the stop widening with confidence ("
        + rules.exit_rule
        + ")",
        _verdict(has_trades, failed),
        [by_band, observed],
        failures,
        failed,
    )


def _exit_problem(
    rules: ReviewRules, strategy: str, confidence: float | None, got: Mapping[str, float | None]
) -> str | None:
    if strategy not in rules.family:
        return f"unknown strategy {strategy!r}"
    if confidence is None:
        return "no confidence"
    want = rules.expected_exit(strategy, confidence)
    wrong = []
    for name, value in want.items():
        if name not in got:
            continue
        have = got[name]
        if have is None or abs(have - float(value)) > _EXIT_TOL:
            wrong.append(f"{name} {have} (expected {value:g})")
    return ", ".join(wrong) or None


def _check_risk(con: duckdb.DuckDBPyConnection, rules: ReviewRules, has_trades: bool) -> Check:
    dist = Table(
        "Max loss of trade ideas (dollars at the idea's quantity)",
        ("strategy", "ideas", "mean", "median", "worst", "best", "above 0"),
        [
            tuple(r)
            for r in _rows(
                con,
                """SELECT coalesce(strategy, 'all'), count(*), avg(max_loss)::DECIMAL(18,2),
                   median(max_loss)::DECIMAL(18,2), min(max_loss), max(max_loss),
                   count(*) FILTER (max_loss > 0)
                   FROM trades GROUP BY GROUPING SETS ((strategy), ())
                   ORDER BY strategy IS NULL, strategy""",
            )
        ],
    )
    failures: list[str] = []
    failed = 0
    for day, symbol, strategy, loss in _rows(
        con,
        "SELECT day, symbol, strategy, max_loss FROM trades WHERE max_loss > 0 OR max_loss IS NULL"
        " ORDER BY day",
    ):
        failed += 1
        if len(failures) < MAX_EXAMPLES:
            failures.append(f"{day} {symbol} {strategy}: max_loss {loss} (must be <= 0)")
    tables = [dist]
    rule = "every max_loss <= 0"
    if rules.max_trade_risk_pct is not None:
        pct = Decimal(repr(rules.max_trade_risk_pct))
        rule += (
            f"; every approved opening risks at most {rules.max_trade_risk_pct:g} x equity "
            "(risk.max_trade_risk_pct)"
        )
        cap_rows = _rows(
            con,
            """SELECT count(*), max(-max_loss / equity),
               count(*) FILTER (-max_loss > ? * equity + 0.01) FROM orders
               WHERE in_window AND effect = 'open' AND approved AND equity > 0""",
            [pct],
        )
        n, worst, over = cap_rows[0]
        tables.append(
            Table(
                "Approved openings against the per-trade cap (max loss the guard recomputed)",
                ("approved openings", "largest max loss / equity", "cap", "over the cap"),
                [(n, None if worst is None else round(float(worst), 4), float(pct), over)],
            )
        )
        for day, symbol, intent, loss, equity in _rows(
            con,
            """SELECT day, symbol, intent_id, max_loss, equity FROM orders
               WHERE in_window AND effect = 'open' AND approved AND equity > 0
               AND -max_loss > ? * equity + 0.01 ORDER BY day""",
            [pct],
        ):
            failed += 1
            if len(failures) < MAX_EXAMPLES:
                failures.append(f"{day} {symbol} {intent}: max loss {loss} on equity {equity}")
    return Check("risk metrics", rule, _verdict(has_trades, failed), tables, failures, failed)


def _check_vol_routing(
    con: duckdb.DuckDBPyConnection, rules: ReviewRules, has_trades: bool
) -> Check:
    premium = sorted(rules.long_premium | rules.short_premium)
    rows: list[tuple[Cell, ...]] = []
    if premium:
        marks = ", ".join("?" for _ in premium)
        for r in _rows(
            con,
            f"""SELECT strategy, count(*), count(iv_rank), round(min(iv_rank), 3),
                round(quantile_cont(iv_rank, 0.25), 3), round(median(iv_rank), 3),
                round(quantile_cont(iv_rank, 0.75), 3), round(max(iv_rank), 3),
                count(*) FILTER (regime = 'vol_expansion')
                FROM trades WHERE strategy IN ({marks}) GROUP BY strategy ORDER BY strategy""",
            premium,
        ):
            side = "long" if r[0] in rules.long_premium else "short"
            rows.append((r[0], side, *r[1:]))
    table = Table(
        "IV rank when long- or short-premium strategies were chosen",
        (
            "strategy",
            "premium",
            "ideas",
            "with IV rank",
            "min",
            "p25",
            "median",
            "p75",
            "max",
            "in vol_expansion",
        ),
        rows,
        "" if rows else "no long- or short-premium ideas in the window",
    )
    groups = _rows(con, _ROUTING_GROUPS)
    failures, failed = _routing_failures(groups, rules, rules.long_premium | rules.short_premium)
    return Check(
        "vol routing",
        rules.routing_rule,
        _verdict(has_trades, failed),
        [table],
        failures,
        failed,
    )


def _verdict(has_data: bool, failed: int) -> Verdict:
    if not has_data:
        return Verdict.NO_DATA
    return Verdict.FAIL if failed else Verdict.PASS


def _activity_tables(con: duckdb.DuckDBPyConnection) -> list[Table]:
    def table(title: str, columns: tuple[str, ...], sql: str, note: str = "") -> Table:
        return Table(title, columns, [tuple(r) for r in _rows(con, sql)], note)

    tables = [
        table(
            "Orders and fills",
            (
                "effect",
                "intents",
                "approved",
                "rejected by risk",
                "filled",
                "broker rejected",
                "canceled/expired",
                "pending at stop",
                "fill rate",
            ),
            """SELECT effect, count(*), count(*) FILTER (approved),
               count(*) FILTER (NOT approved), count(*) FILTER (status = 'filled'),
               count(*) FILTER (status = 'rejected'),
               count(*) FILTER (status IN ('canceled', 'expired')),
               count(*) FILTER (status = 'pending'),
               round(count(*) FILTER (status = 'filled') / nullif(count(*) FILTER (approved), 0), 3)
               FROM orders WHERE in_window GROUP BY effect ORDER BY effect DESC""",
        ),
        table(
            "Fill quality: slippage against mid and commissions, by strategy",
            (
                "strategy",
                "fills",
                "contracts",
                "premium",
                "slippage",
                "slippage % of premium",
                "worst %",
                "fills > 1%",
                "commissions",
            ),
            """SELECT coalesce(strategy, 'all'), count(*),
               sum(contracts),
               sum(premium), sum(slippage),
               round(100 * sum(slippage) / nullif(sum(premium), 0), 3),
               round(100 * max(slippage / nullif(premium, 0)), 3),
               count(*) FILTER (slippage > 0.01 * premium), sum(commission)
               FROM fills GROUP BY GROUPING SETS ((strategy), ())
               ORDER BY strategy IS NULL, strategy""",
            "slippage: dollars paid versus the legs' mids; the daemon warns on fills above 1%",
        ),
        table(
            "Realised P&L by strategy (closed positions; entries may predate the window)",
            ("strategy", "closes", "won", "gross P&L", "commissions", "net P&L", "mean net"),
            """SELECT coalesce(strategy, 'all'), count(*),
               count(*) FILTER (gross_pnl - commissions > 0), sum(gross_pnl)::DECIMAL(18,2),
               sum(commissions)::DECIMAL(18,2), sum(gross_pnl - commissions)::DECIMAL(18,2),
               avg(gross_pnl - commissions)::DECIMAL(18,2)
               FROM closes GROUP BY GROUPING SETS ((strategy), ())
               ORDER BY strategy IS NULL, strategy""",
            "gross: -(entry + exit net price) x 100 x quantity; commissions of both fills",
        ),
    ]
    n_days = _rows(con, "SELECT count(DISTINCT day) FROM closes")[0][0]
    period, label = ("day", "day") if n_days <= 31 else ("month", "month")
    tables.append(
        table(
            f"Realised P&L by {label} of the close",
            (label, "closes", "gross P&L", "commissions", "net P&L"),
            f"""SELECT strftime(date_trunc('{period}', day), '{"%Y-%m-%d" if period == "day" else "%Y-%m"}'),
                count(*), sum(gross_pnl)::DECIMAL(18,2), sum(commissions)::DECIMAL(18,2),
                sum(gross_pnl - commissions)::DECIMAL(18,2)
                FROM closes GROUP BY 1 ORDER BY 1""",
            "" if period == "day" else "by month (more than 31 days); --since/--until for days",
        )
    )
    tables += [
        table(
            "Risk rejections by reason",
            ("reason", "effect", "rejections", "share", "example"),
            """SELECT reason, effect, count(*),
               round(count(*) / sum(count(*)) OVER (), 3), min(detail)
               FROM orders WHERE in_window AND NOT approved GROUP BY reason, effect
               ORDER BY 3 DESC, 1""",
        ),
        table(
            "Broker rejections and cancels",
            ("status", "message", "orders"),
            """SELECT status, split_part(coalesce(message, error_message, ''), ':', 1), count(*)
               FROM orders WHERE in_window AND status IN ('rejected', 'canceled', 'expired')
               GROUP BY ALL ORDER BY 3 DESC""",
        ),
        table(
            "Positions opened in the window and not closed by a fill in the journal",
            ("symbol", "strategy", "positions"),
            """SELECT o.symbol, o.strategy, count(*) FROM fills o
               WHERE o.effect = 'open' AND NOT EXISTS (SELECT 1 FROM orders c
                 WHERE c.effect = 'close' AND c.status = 'filled'
                 AND c.fill_position_id = o.fill_position_id)
               GROUP BY ALL ORDER BY 1, 2""",
            "still open at the end of the journal, or settled at expiry (logged in the audit log)",
        ),
    ]
    return tables


def _chart_data(con: duckdb.DuckDBPyConnection, rules: ReviewRules) -> ChartData:
    data = ChartData()
    data.equity = [
        (r[0], r[1], float(r[2]))
        for r in _rows(
            con,
            """SELECT coalesce(decided_at, as_of), symbol, equity FROM orders
               WHERE in_window AND equity IS NOT NULL ORDER BY 1""",
        )
    ]
    data.daily_pnl = [
        (r[0], float(r[1]))
        for r in _rows(
            con, "SELECT day, sum(gross_pnl - commissions) FROM closes GROUP BY day ORDER BY day"
        )
    ]
    data.strategy_by_regime = [
        (r[0], r[1], int(r[2]))
        for r in _rows(
            con,
            "SELECT coalesce(regime, 'unknown'), strategy, count(*) FROM trades GROUP BY ALL"
            " ORDER BY 2, 1",
        )
    ]
    data.max_losses = [
        float(r[0]) for r in _rows(con, "SELECT max_loss FROM trades WHERE max_loss IS NOT NULL")
    ]
    ranks: dict[str, list[float]] = {}
    for strategy, rank in _rows(
        con, "SELECT strategy, iv_rank FROM trades WHERE iv_rank IS NOT NULL ORDER BY strategy"
    ):
        ranks.setdefault(strategy, []).append(float(rank))
    data.iv_rank_by_strategy = ranks
    data.iv_rank_lines = rules.iv_rank_lines
    return data
