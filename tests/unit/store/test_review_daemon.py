"""The review against what gnosisd really does: a simulated session reviewed with the real rules."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from gnosisd.agents.routing import route
from gnosisd.bus.records import ExitRules, MarketContext
from gnosisd.cli import main
from gnosisd.core.config import Settings
from gnosisd.core.enums import Direction, Regime
from gnosisd.runtime.daemon import RunSummary
from gnosisd.runtime.review import default_rules
from gnosisd.store.journal import Journal
from gnosisd.store.review import ReviewQuery, Verdict, run_review
from tests.e2e.conftest import make_settings, run_daemon


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, RunSummary, Path]:
    tmp = tmp_path_factory.mktemp("review")
    settings = make_settings(tmp)
    summary, _ = asyncio.run(run_daemon(settings, symbols=["SPY"]))
    return settings, summary, tmp


def test_a_simulated_session_passes_every_check_with_the_real_rules(
    session: tuple[Settings, RunSummary, Path],
) -> None:
    settings, summary, _ = session
    assert summary.ideas > 0
    review = run_review(ReviewQuery(settings.runtime.runs_dir), default_rules(settings))
    failures = {c.name: c.failures for c in review.checks if c.verdict is not Verdict.PASS}
    assert failures == {}
    assert review.lines["trades"] == summary.ideas
    assert review.lines["orders"] == summary.intents


def test_review_counts_the_fills_and_commissions_the_ledger_booked(
    session: tuple[Settings, RunSummary, Path],
) -> None:
    settings, summary, _ = session
    review = run_review(ReviewQuery(settings.runtime.runs_dir), default_rules(settings))
    fills = next(t for t in review.tables if t.title.startswith("Fill quality"))
    total = fills.rows[-1]
    assert total[0] == "all"
    assert total[1] == summary.fills
    assert total[8] == summary.commissions.quantize(Decimal("0.01"))
    rejected = next(t for t in review.tables if t.title.startswith("Risk rejections"))
    assert {(r[0], r[2]) for r in rejected.rows} == set(summary.rejected.items())


def test_review_rules_ask_the_trade_agents_own_router() -> None:
    settings = Settings()
    rules = default_rules(settings)
    placeholder = ExitRules(
        profit_target_pct=0.5, stop_loss_pct=0.5, time_exit_dte=0, max_days_held=1
    )
    for direction in Direction:
        for regime in Regime:
            for iv_rank in (None, 0.1, 0.5, 0.9):
                for confidence in (0.2, 0.4, 0.8):
                    context = MarketContext(
                        symbol="SPY",
                        as_of=datetime(2026, 11, 23, 15, tzinfo=UTC),
                        spot=500.0,
                        direction=direction,
                        confidence=confidence,
                        regime=regime,
                        iv_rank=iv_rank,
                        exit_rules=placeholder,
                    )
                    want = {s.value for s in route(context, settings.trade_agent)}
                    got = rules.routes(direction.value, regime.value, iv_rank, confidence)
                    assert set(got) == want


def test_cli_review_exits_0_on_pass_and_3_on_a_failed_check(
    session: tuple[Settings, RunSummary, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    settings, _, tmp = session
    runs = settings.runtime.runs_dir
    html = tmp / "report" / "review.html"
    assert main(["review", "--runs", str(runs), "--symbol", "SPY", "--html", str(html)]) == 0
    out = capsys.readouterr().out
    assert "review: PASS (4/4 checks)" in out
    assert html.is_file()
    copy = tmp / "runs-bad"
    for path in runs.rglob("*.jsonl"):
        target = copy / path.relative_to(runs)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    first = next(iter(sorted(copy.iterdir())))
    with Journal(copy) as j:  # an idea whose max loss is positive cannot pass the risk check
        j.write(
            "trade",
            "SPY",
            datetime.fromisoformat(first.name).replace(hour=17, tzinfo=UTC),
            {"strategy_type": "long_call", "max_loss": 5.0, "confidence": 0.9},
        )
    assert main(["review", "--runs", str(copy)]) == 3
    assert "3. risk metrics" in capsys.readouterr().out


def test_cli_review_of_a_missing_directory_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["review", "--runs", str(tmp_path / "none")]) == 2
    assert "no such journal directory" in capsys.readouterr().err
