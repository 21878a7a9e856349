"""The runbook's promises on a real daemon run: review queries, key log messages, broker rejects."""

from __future__ import annotations

import shutil
import statistics
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import journal_lines, log_lines, make_settings, run_daemon

pytestmark = pytest.mark.slow


def _jq(expr: str, files: list[Path], *flags: str) -> list[str]:
    jq = shutil.which("jq")
    if jq is None:
        pytest.skip("jq is not installed (scripts/test.sh installs it from the system packages)")
    out = subprocess.run(
        [jq, *flags, expr, *map(str, files)], capture_output=True, text=True, check=True
    )
    return out.stdout.split()


async def test_runbook_review_queries_work_on_the_daemons_journal_as_written(tmp_path: Path):
    settings = make_settings(tmp_path)
    await run_daemon(settings, sessions=3)
    runs = settings.runtime.runs_dir
    trades = sorted(runs.glob("*/SPY_trades.jsonl"))
    contexts = sorted(runs.glob("*/SPY_context.jsonl"))
    assert trades
    assert contexts

    strategies = _jq(".trade.strategy_type", trades, "-r")
    assert strategies == [t["trade"]["strategy_type"] for t in journal_lines(runs, "trades")]
    exit_rules = _jq(".context.exit_rules", contexts, "-c")
    assert all("stop_loss_pct" in r and "profit_target_pct" in r for r in exit_rules)
    losses = [float(x) for x in _jq(".trade.max_loss", trades)]
    assert losses
    assert max(losses) <= 0  # "All max_loss values should be negative"
    assert statistics.mean(losses) < 0
    for strategy in set(strategies):
        ranks = _jq(f'select(.trade.strategy_type=="{strategy}") | .context.iv_rank', trades)
        assert len(ranks) == strategies.count(strategy)
        assert all(r == "null" or 0.0 <= float(r) <= 1.0 for r in ranks)


async def test_broker_rejections_say_insufficient_funds_and_are_logged_as_order_placement_failed(
    tmp_path: Path,
):
    # Little cash, a generous per-trade cap, room for many positions and a decision every 5
    # minutes: Kelly-sized ideas (each a fraction of equity) pile up until the cash runs out.
    settings = make_settings(
        tmp_path,
        execution={"initial_cash": 5000.0},
        # Greek budgets wide open too: with $5,000 of equity the default vega budget would stop
        # the opens before the cash runs out.
        risk={
            "max_trade_risk_pct": 0.25,
            "max_open_positions": 50,
            "max_delta_pct": 100,
            "max_gamma_pct": 100,
            "max_vega_pct": 10,
            "max_theta_pct": 10,
        },
        runtime={"decision_interval_minutes": 5},
        trade_agent={"max_portfolio_risk_pct": 1.0},  # no portfolio cap: let the cash run out
    )
    summary, _ = await run_daemon(settings, sessions=2)
    orders = [o["order"] for o in journal_lines(settings.runtime.runs_dir, "orders")]
    rejected = [
        o for o in orders if o["broker_result"] and o["broker_result"]["status"] == "rejected"
    ]
    assert rejected
    for o in rejected:
        assert o["error_message"].startswith("Insufficient funds: need $")
        assert ", have $" in o["error_message"]
    failed = [
        e
        for e in log_lines(settings.runtime.logs_dir, "audit")
        if e["event"] == "Order placement failed"
    ]
    assert len(failed) == len(rejected)
    assert all(e["level"] == "error" for e in failed)
    errors = log_lines(settings.runtime.logs_dir, "errors")
    assert sum(e["event"] == "Order placement failed" for e in errors) == len(rejected)
    assert summary.broker_rejected["Insufficient funds"] == len(rejected)
    # Nothing was spent that was not there: cash never went negative.
    assert summary.end_equity > 0


async def test_large_slippage_is_warned_about(tmp_path: Path):
    settings = make_settings(tmp_path, execution={"slippage_pct": 0.05})
    summary, _ = await run_daemon(settings)
    assert summary.fills > 0
    warnings = [
        e
        for e in log_lines(settings.runtime.logs_dir, "pipeline")
        if e["event"] == "Slippage exceeds 1%"
    ]
    assert len(warnings) == summary.fills
    assert all(e["level"] == "warning" for e in warnings)
