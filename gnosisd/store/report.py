"""The review as text for the terminal and as one self-contained HTML file with embedded PNG charts.

Charts are drawn with matplotlib's Agg canvas on Figure objects (no pyplot, no global state, no
display needed).
"""

from __future__ import annotations

import base64
import html
import io
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Final

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from gnosisd.core.files import atomic_write
from gnosisd.store.review import Cell, ChartData, Review, Table, Verdict

_DPI: Final = 100
_SIZE: Final = (9.0, 3.6)
_CATEGORICAL_DAYS: Final = 31
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_GREEN: Final = "#2e7d32"
_RED: Final = "#c62828"
_CSS: Final = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; }
table { border-collapse: collapse; margin: .6em 0 1.2em; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 2px 8px; } th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.verdict { font-weight: bold; padding: 1px 8px; border-radius: 3px; color: #fff; }
.PASS { background: #2e7d32; } .FAIL { background: #c62828; } .NO_DATA { background: #757575; }
.rule { color: #555; } .note { color: #666; font-size: 12px; }
figure { margin: 1em 0; } figcaption { color: #555; font-size: 13px; }
img.chart { max-width: 100%; border: 1px solid #ddd; }
"""


def _png(draw: Callable[[Axes], None], title: str) -> str:
    """Draw one chart and return it as a base64 PNG data URL."""
    fig = Figure(figsize=_SIZE, dpi=_DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=11)
    draw(ax)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _days(values: Sequence[datetime | date]) -> list[float]:
    """Matplotlib date numbers (days since 1970-01-01 UTC, its default epoch)."""
    out = []
    for v in values:
        if isinstance(v, datetime):
            t = v if v.tzinfo else v.replace(tzinfo=UTC)
            out.append((t - _EPOCH).total_seconds() / 86_400)
        else:
            out.append(float((v - _EPOCH.date()).days))
    return out


def _no_data(ax: Axes) -> None:
    ax.text(0.5, 0.5, "no data in the window", ha="center", va="center", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def _equity(data: ChartData) -> Callable[[Axes], None]:
    def draw(ax: Axes) -> None:
        if not data.equity:
            return _no_data(ax)
        for symbol in sorted({s for _, s, _ in data.equity}):
            pts = [(t, v) for t, s, v in data.equity if s == symbol]
            ax.plot(_days([t for t, _ in pts]), [v for _, v in pts], lw=1, label=symbol)
        ax.xaxis_date()
        ax.set_ylabel("equity ($)")
        ax.legend(fontsize=8, loc="best")
        ax.grid(alpha=0.3)

    return draw


def _daily_pnl(data: ChartData) -> Callable[[Axes], None]:
    def draw(ax: Axes) -> None:
        if not data.daily_pnl:
            return _no_data(ax)
        pnl = [v for _, v in data.daily_pnl]
        colors = [_GREEN if v >= 0 else _RED for v in pnl]
        if len(pnl) <= _CATEGORICAL_DAYS:  # a few days: one labelled bar each
            ax.bar([d.isoformat() for d, _ in data.daily_pnl], pnl, color=colors)
            ax.tick_params(axis="x", labelrotation=45, labelsize=8)
        else:
            ax.bar(_days([d for d, _ in data.daily_pnl]), pnl, color=colors, width=0.8)
            ax.xaxis_date()
        ax.axhline(0, color="#444", lw=0.8)
        ax.set_ylabel("realised net P&L ($)")
        ax.grid(alpha=0.3, axis="y")

    return draw


def _strategies(data: ChartData) -> Callable[[Axes], None]:
    def draw(ax: Axes) -> None:
        if not data.strategy_by_regime:
            return _no_data(ax)
        strategies = sorted({s for _, s, _ in data.strategy_by_regime})
        regimes = sorted({r for r, _, _ in data.strategy_by_regime})
        counts = {(r, s): n for r, s, n in data.strategy_by_regime}
        left = [0] * len(strategies)
        for regime in regimes:
            widths = [counts.get((regime, s), 0) for s in strategies]
            ax.barh(strategies, widths, left=left, label=regime)
            left = [a + b for a, b in zip(left, widths, strict=True)]
        ax.set_xlabel("trade ideas")
        ax.legend(fontsize=8, title="regime", title_fontsize=8, loc="best")

    return draw


def _max_loss(data: ChartData) -> Callable[[Axes], None]:
    def draw(ax: Axes) -> None:
        if not data.max_losses:
            return _no_data(ax)
        ax.hist(data.max_losses, bins=40, color="#5c6bc0")
        ax.axvline(0, color=_RED, lw=1)
        ax.set_xlabel("max loss per idea ($, must be <= 0)")
        ax.set_ylabel("ideas")

    return draw


def _iv_rank(data: ChartData) -> Callable[[Axes], None]:
    def draw(ax: Axes) -> None:
        if not data.iv_rank_by_strategy:
            return _no_data(ax)
        names = sorted(data.iv_rank_by_strategy)
        flier = {"markersize": 2, "alpha": 0.3}
        ax.boxplot([data.iv_rank_by_strategy[n] for n in names], flierprops=flier)
        ax.set_xticks(range(1, len(names) + 1), names, rotation=20, fontsize=8)
        ax.set_ylim(-0.02, 1.02)
        for (label, rank), style in zip(data.iv_rank_lines, ("--", ":", "-."), strict=False):
            ax.axhline(rank, color=_RED, lw=1, ls=style, label=label)
        if data.iv_rank_lines:
            ax.legend(fontsize=8, loc="best")
        ax.set_ylabel("IV rank when chosen")

    return draw


def charts(review: Review) -> list[tuple[str, str]]:
    """(caption, PNG data URL) for each chart of the report."""
    d = review.charts
    specs: list[tuple[str, Callable[[Axes], None]]] = [
        ("Equity the risk guard saw at each order decision", _equity(d)),
        ("Daily realised P&L (net of commissions, by close day)", _daily_pnl(d)),
        ("Strategy distribution by regime", _strategies(d)),
        ("Max-loss distribution of trade ideas", _max_loss(d)),
        ("IV rank by strategy", _iv_rank(d)),
    ]
    return [(caption, _png(draw, caption)) for caption, draw in specs]


def _table_html(table: Table) -> str:
    out = [f"<h3>{html.escape(table.title)}</h3>"]
    if not table.rows:
        note = f" ({html.escape(table.note)})" if table.note else ""
        return out[0] + f"<p class='note'>none{note}</p>"
    out.append("<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in table.columns))
    for row in table.rows:
        cells = []
        for value in row:
            num = isinstance(value, int | float | Decimal) and not isinstance(value, bool)
            cls = " class='num'" if num else ""
            cells.append(f"<td{cls}>{html.escape(format_cell(value))}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    if table.note:
        out.append(f"<p class='note'>{html.escape(table.note)}</p>")
    return "\n".join(out)


def render_html(review: Review) -> str:
    """The whole report as one HTML document (no external resources)."""
    q = review.query
    window = f"{review.days[0]} to {review.days[1]}" if review.days else "no data"
    overall = Verdict.PASS if review.passed else Verdict.FAIL
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<title>gnosisd review</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>gnosisd review <span class='verdict {overall.name}'>{overall.value}</span></h1>",
        f"<p>Journal <code>{html.escape(str(q.runs_dir))}</code>, {html.escape(window)}; "
        f"symbols {html.escape(', '.join(review.symbols) or '-')}; {review.files:,} files, "
        f"{review.lines.get('contexts', 0):,} contexts, {review.lines.get('trades', 0):,} "
        f"trade ideas, {review.lines.get('orders', 0):,} orders"
        + (f", {review.skipped_lines:,} unreadable lines skipped" if review.skipped_lines else "")
        + ".</p>",
        "<h2>Charts</h2>",
    ]
    for caption, url in charts(review):
        parts.append(
            f"<figure><img class='chart' alt='{html.escape(caption)}' src='{url}'>"
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )
    for n, check in enumerate(review.checks, start=1):
        parts.append(
            f"<h2>{n}. {html.escape(check.name)} "
            f"<span class='verdict {check.verdict.name}'>{check.verdict.value}</span></h2>"
            f"<p class='rule'>Rule: {html.escape(check.rule)}</p>"
        )
        parts += [_table_html(t) for t in check.tables]
        if check.failures:
            parts.append(f"<p>{check.failed_count:,} failing ideas/orders, for example:</p><ul>")
            parts += [f"<li>{html.escape(f)}</li>" for f in check.failures]
            parts.append("</ul>")
    parts.append("<h2>Activity</h2>")
    parts += [_table_html(t) for t in review.tables]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_report(review: Review, path: Path) -> Path:
    """Write the HTML report to `path` atomically (a temp file in the same directory, renamed)."""
    body = render_html(review).encode("utf-8")
    return atomic_write(path, body, mode=0o644, durable=False)


# ---------------------------------------------------------------- text output
def format_cell(value: Cell) -> str:
    """A table cell as text: money and ratios to 2-4 decimals, None as '-'."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Decimal):
        return f"{value:,.2f}"
    if isinstance(value, float):
        return f"{value:,.4f}".rstrip("0").rstrip(".") if abs(value) < 10 else f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def format_table(table: Table, indent: str = "  ") -> str:
    header = [table.title]
    if not table.rows:
        return (
            indent
            + table.title
            + "\n"
            + indent
            + "  (none)"
            + (f" - {table.note}" if table.note else "")
            + "\n"
        )
    cells = [[format_cell(c) for c in row] for row in table.rows]
    widths = [max(len(col), *(len(r[i]) for r in cells)) for i, col in enumerate(table.columns)]
    numeric = [
        all(isinstance(row[i], int | float | Decimal) or row[i] is None for row in table.rows)
        for i in range(len(table.columns))
    ]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return indent + "  " + "  ".join(parts).rstrip()

    out = [
        indent + header[0],
        line(table.columns),
        indent + "  " + "  ".join("-" * w for w in widths),
    ]
    out += [line(r) for r in cells]
    if table.note:
        out.append(indent + "  (" + table.note + ")")
    return "\n".join(out) + "\n"


def format_review(review: Review) -> str:
    """The review as plain text: header, the four checks with verdicts, then the activity tables."""
    q = review.query
    window = (
        f"{review.days[0]} to {review.days[1]}" if review.days else "no journal lines in the window"
    )
    lines = [
        f"gnosisd review of {q.runs_dir}",
        f"  window      {window}"
        + (f" (asked: {q.since or 'start'} to {q.until or 'end'})" if q.since or q.until else ""),
        f"  symbols     {', '.join(review.symbols) or '-'}",
        f"  journal     {review.files:,} files: {review.lines.get('contexts', 0):,} contexts, "
        f"{review.lines.get('trades', 0):,} trade ideas, {review.lines.get('orders', 0):,} orders"
        + (f"; {review.skipped_lines:,} unreadable lines skipped" if review.skipped_lines else ""),
        "",
    ]
    for n, check in enumerate(review.checks, start=1):
        lines.append(f"{n}. {check.name} ".ljust(60, ".") + f" {check.verdict.value}")
        lines.append(f"   rule: {check.rule}")
        for t in check.tables:
            lines.append(format_table(t, "   "))
        if check.failures:
            lines.append(f"   {check.failed_count:,} failing ideas/orders, for example:")
            lines += [f"     - {f}" for f in check.failures]
            lines.append("")
    lines.append("Activity")
    for t in review.tables:
        lines.append(format_table(t, "  "))
    counts = Counter(c.verdict for c in review.checks)
    failed = [c.name for c in review.checks if c.verdict is not Verdict.PASS]
    if review.passed:
        lines.append(f"review: PASS ({counts[Verdict.PASS]}/{len(review.checks)} checks)")
    else:
        lines.append(
            "review: FAIL ("
            + "; ".join(f"{c.name}: {c.verdict.value}" for c in review.checks if c.name in failed)
            + ")"
        )
    return "\n".join(lines) + "\n"
