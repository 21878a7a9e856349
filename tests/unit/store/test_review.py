"""The journal review (DuckDB): verdicts, P&L, fills, rejections, windows, torn lines, HTML."""

from __future__ import annotations

import base64
import re
from decimal import Decimal
from pathlib import Path

import pytest

from gnosisd.store.journal import Journal
from gnosisd.store.report import format_review, render_html, write_report
from gnosisd.store.review import Review, ReviewQuery, Table, Verdict, run_review
from tests.unit.store.journal_factory import DAY1, DAY2, RULES, at, good_journal, order, trade


def _review(runs: Path, **query: object) -> Review:
    return run_review(ReviewQuery(runs_dir=runs, **query), RULES)  # type: ignore[arg-type]


def _check(review: Review, name: str) -> Verdict:
    return next(c for c in review.checks if c.name == name).verdict


def _table(review: Review, title_start: str) -> Table:
    tables = [t for c in review.checks for t in c.tables] + review.tables
    return next(t for t in tables if t.title.startswith(title_start))


def _row(table: Table, first: object) -> tuple[object, ...]:
    return next(r for r in table.rows if r[0] == first)


def test_a_journal_that_follows_the_rules_passes_all_four_checks(tmp_path: Path) -> None:
    review = _review(good_journal(tmp_path / "runs"))
    assert [c.verdict for c in review.checks] == [Verdict.PASS] * 4
    assert review.passed
    assert review.lines == {"contexts": 2, "trades": 3, "orders": 4}
    assert review.days == (DAY1, DAY2)
    assert review.symbols == ["QQQ", "SPY"]


def test_realised_pnl_joins_each_close_to_its_opening_fill(tmp_path: Path) -> None:
    review = _review(good_journal(tmp_path / "runs"))
    pnl = _row(_table(review, "Realised P&L by strategy"), "long_call")
    # closes, won, gross, commissions, net, mean: -(5.00 + -7.50) x 100 x 1 = 250.00
    assert pnl[1:] == (
        1,
        1,
        Decimal("250.00"),
        Decimal("1.30"),
        Decimal("248.70"),
        Decimal("248.70"),
    )
    day = _table(review, "Realised P&L by day")
    assert day.rows == [("2026-03-03", 1, Decimal("250.00"), Decimal("1.30"), Decimal("248.70"))]
    assert review.charts.daily_pnl == [(DAY2, 248.7)]


def test_fills_slippage_commissions_and_rejections_are_tabulated(tmp_path: Path) -> None:
    review = _review(good_journal(tmp_path / "runs"))
    orders = _table(review, "Orders and fills")
    # effect, intents, approved, rejected by risk, filled, broker rejected, canceled, pending
    assert _row(orders, "open")[1:8] == (3, 2, 1, 1, 1, 0, 0)
    assert _row(orders, "close")[1:8] == (1, 1, 0, 1, 0, 0, 0)
    fills = _row(_table(review, "Fill quality"), "all")
    assert fills[1] == 2  # fills
    assert fills[4] == Decimal("0.75")  # slippage dollars
    assert fills[8] == Decimal("1.30")  # commissions
    rejections = _table(review, "Risk rejections by reason")
    assert [(r[0], r[1], r[2]) for r in rejections.rows] == [("max_open_positions", "open", 1)]
    broker = _table(review, "Broker rejections")
    assert broker.rows == [("rejected", "Insufficient funds", 1)]


def test_an_idea_with_the_wrong_stop_fails_the_exit_check(tmp_path: Path) -> None:
    runs = good_journal(tmp_path / "runs")
    with Journal(runs) as j:
        bad = {
            "profit_target_pct": 0.5,
            "stop_loss_pct": 0.2,
            "time_exit_dte": 7,
            "max_days_held": 21,
        }
        trade(
            j,
            "SPY",
            at(DAY2, 16),
            "long_call",
            direction="bullish",
            confidence=0.9,
            iv_rank=0.4,
            regime="trend_up",
            max_loss=-400.0,
            exit_rules=bad,
        )
    review = _review(runs)
    check = next(c for c in review.checks if c.name == "exit behaviour")
    assert check.verdict is Verdict.FAIL
    assert check.failed_count == 1
    assert "stop_loss_pct 0.2 (expected 0.58)" in check.failures[0]
    assert not review.passed


def test_a_strategy_the_router_does_not_offer_fails_distribution_and_vol_routing(
    tmp_path: Path,
) -> None:
    runs = good_journal(tmp_path / "runs")
    with Journal(runs) as j:  # selling premium at IV rank 0.9: the toy router buys it there
        trade(
            j,
            "QQQ",
            at(DAY2, 15),
            "iron_condor",
            direction="neutral",
            confidence=0.6,
            iv_rank=0.9,
            regime="range",
            max_loss=-300.0,
        )
    review = _review(runs)
    assert _check(review, "strategy distribution by regime") is Verdict.FAIL
    assert _check(review, "vol routing") is Verdict.FAIL
    assert _check(review, "exit behaviour") is Verdict.PASS
    vol = next(c for c in review.checks if c.name == "vol routing")
    assert "iron_condor" in vol.failures[0] and "IV rank 0.90" in vol.failures[0]
    iv = _row(_table(review, "IV rank when"), "iron_condor")
    assert iv[1:4] == ("short", 2, 2)  # premium side, ideas, with IV rank
    assert iv[8] == pytest.approx(0.9)  # max IV rank


def test_a_positive_max_loss_or_an_opening_over_the_cap_fails_the_risk_check(
    tmp_path: Path,
) -> None:
    runs = good_journal(tmp_path / "runs")
    with Journal(runs) as j:
        trade(
            j,
            "SPY",
            at(DAY2, 17),
            "long_call",
            direction="bullish",
            confidence=0.6,
            iv_rank=0.4,
            regime="trend_up",
            max_loss=12.0,
        )
        order(
            j,
            "SPY",
            at(DAY2, 17),
            "open-big",
            effect="open",
            strategy="long_call",
            max_loss=-2500.0,
            equity=100_000.0,
            fill={"net_price": 25.0},
        )
    check = next(c for c in _review(runs).checks if c.name == "risk metrics")
    assert check.verdict is Verdict.FAIL
    assert check.failed_count == 2
    assert any("max_loss 12.00 (must be <= 0)" in f for f in check.failures)
    assert any("open-big" in f for f in check.failures)


def test_an_empty_journal_has_no_data_and_does_not_pass(tmp_path: Path) -> None:
    (tmp_path / "runs").mkdir()
    review = _review(tmp_path / "runs")
    assert [c.verdict for c in review.checks] == [Verdict.NO_DATA] * 4
    assert not review.passed
    assert "review: FAIL" in format_review(review)


def test_a_missing_journal_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        _review(tmp_path / "nowhere")


def test_since_and_symbol_narrow_the_window_but_closes_still_find_older_openings(
    tmp_path: Path,
) -> None:
    runs = good_journal(tmp_path / "runs")
    review = _review(runs, since=DAY2, symbols=("SPY",))
    assert review.lines == {"contexts": 0, "trades": 0, "orders": 1}
    assert review.symbols == ["SPY"]
    pnl = _row(_table(review, "Realised P&L by strategy"), "long_call")
    assert pnl[3] == Decimal("250.00")  # the day-1 opening fill is outside the window
    qqq = _review(runs, until=DAY1, symbols=("qqq",))
    assert qqq.symbols == ["QQQ"]
    assert qqq.lines["trades"] == 1


def test_since_after_until_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="after"):
        ReviewQuery(runs_dir=tmp_path, since=DAY2, until=DAY1)


def test_torn_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    runs = good_journal(tmp_path / "runs")
    path = runs / DAY1.isoformat() / "SPY_trades.jsonl"
    with path.open("ab") as f:
        f.write(b'{"as_of": "2026-03-02T17:00:00+00:00", "symbol": "SPY", "tra\n')
    review = _review(runs)
    assert review.skipped_lines == 1
    assert review.lines["trades"] == 3
    assert "1 unreadable lines skipped" in format_review(review)


def test_text_output_names_each_check_with_its_verdict_and_rule(tmp_path: Path) -> None:
    text = format_review(_review(good_journal(tmp_path / "runs")))
    for n, name in enumerate(
        ["strategy distribution by regime", "exit behaviour", "risk metrics", "vol routing"], 1
    ):
        assert re.search(rf"^{n}\. {name} \.+ PASS$", text, re.M)
    assert "rule: toy: straddle at IV rank >= 0.7" in text
    assert text.rstrip().endswith("review: PASS (4/4 checks)")


def test_html_report_is_self_contained_with_five_png_charts(tmp_path: Path) -> None:
    review = _review(good_journal(tmp_path / "runs"))
    path = write_report(review, tmp_path / "out" / "review.html")
    page = path.read_text(encoding="utf-8")
    assert page == render_html(review)
    images = re.findall(
        r"<img class='chart' alt='([^']+)' src='data:image/png;base64,([^']+)'", page
    )
    assert len(images) == 5
    for _, data in images:
        assert base64.b64decode(data).startswith(b"\x89PNG\r\n\x1a\n")
    assert "http://" not in page and "https://" not in page  # nothing fetched from outside
    assert page.count("class='verdict PASS'") == 5  # overall + four checks


def test_a_rerun_that_journals_the_same_position_twice_is_not_double_counted(
    tmp_path: Path,
) -> None:
    runs = good_journal(tmp_path / "runs")
    good_journal(runs)  # the same seed and day again: identical intent and position ids
    pnl = _row(_table(_review(runs), "Realised P&L by strategy"), "long_call")
    assert pnl[1:4] == (2, 2, Decimal("500.00"))  # two closes, each joined to one opening


def test_a_file_torn_mid_line_does_not_swallow_the_next_files_first_line(tmp_path: Path) -> None:
    runs = good_journal(tmp_path / "runs")
    torn = runs / DAY1.isoformat() / "QQQ_trades.jsonl"  # read just before SPY_trades.jsonl
    with torn.open("ab") as f:
        f.write(b'{"as_of": "2026-03-02T17:00:00+00:00", "sym')  # power loss: no newline
    review = _review(runs)
    assert review.skipped_lines == 1
    assert review.lines["trades"] == 3
