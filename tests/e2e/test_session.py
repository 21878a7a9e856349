"""The whole path on the simulated market: feed, bus, engines, composer, agent, guard, broker, journal."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from gnosisd.core.config import Settings
from gnosisd.core.occ import parse_occ
from tests.e2e.conftest import journal_lines, log_lines, make_settings, run_daemon

pytestmark = pytest.mark.slow


def _grid_min_payoff(trade: dict) -> float:
    """Independent check of max loss: minimum per-share expiry P&L on a fine grid plus strikes."""
    strikes = [float(leg["strike"]) for leg in trade["legs"]]
    grid = np.concatenate([np.linspace(0.0, 3.0 * max(strikes), 60_001), strikes])
    pnl = np.zeros_like(grid)
    for leg in trade["legs"]:
        sign = 1 if leg["side"] == "buy" else -1
        k = float(leg["strike"])
        intrinsic = (
            np.maximum(grid - k, 0) if leg["option_type"] == "call" else np.maximum(k - grid, 0)
        )
        pnl += sign * leg["ratio"] * (intrinsic - leg["price"])
    return float(pnl.min())


async def test_a_simulated_session_journals_exact_risk_and_respects_every_cap(tmp_path: Path):
    settings = make_settings(tmp_path)
    summary, daemon = await run_daemon(settings, sessions=2, symbols=["SPY", "QQQ"])
    runs = settings.runtime.runs_dir

    contexts = list(journal_lines(runs, "context"))
    trades = list(journal_lines(runs, "trades"))
    orders = list(journal_lines(runs, "orders"))
    assert summary.contexts == len(contexts) > 100
    assert summary.ideas == len(trades) > 0
    assert summary.fills > 0
    assert {c["symbol"] for c in contexts} == {"SPY", "QQQ"}
    for c in contexts:
        ctx = c["context"]
        assert ctx["direction"] in {"bullish", "bearish", "neutral"}
        assert 0 <= ctx["confidence"] <= 1
        assert {"iv_rank", "exit_rules"} <= ctx.keys()

    for line in trades:
        trade = line["trade"]
        assert trade["max_loss"] <= 0
        assert line["context"]["iv_rank"] == trade["iv_rank"]
        expected = _grid_min_payoff(trade) * 100 * trade["quantity"]
        assert trade["max_loss"] == pytest.approx(expected, abs=1e-6)
        for leg in trade["legs"]:
            contract = parse_occ(leg["symbol"])  # a real OCC symbol of a listed contract
            assert float(contract.strike) == float(leg["strike"])
            assert contract.expiry.isoformat() == leg["expiry"]
            assert leg["quantity"] == leg["ratio"] * trade["quantity"]
            assert contract.expiry.isoformat() >= line["as_of"][:10]

    cap = settings.risk.max_trade_risk_pct
    approved_opens = [
        o["order"]
        for o in orders
        if o["order"]["risk"]["approved"] and o["order"]["effect"] == "open"
    ]
    assert approved_opens
    for order in approved_opens:
        # the guard's own max loss, against the cap on the equity it saw when it decided
        assert -order["risk"]["max_loss"] <= cap * order["risk"]["equity"] + 1e-9
        assert order["broker_result"]["status"] in {"filled", "rejected", "canceled"}
    open_count = 0
    for o in orders:
        order = o["order"]
        if order["risk"]["approved"] and order["broker_result"]["status"] == "filled":
            open_count += 1 if order["effect"] == "open" else -1
        assert open_count <= settings.risk.max_open_positions
    for o in orders:
        if not o["order"]["risk"]["approved"]:
            assert o["order"]["risk"]["reason"] != "approved"
            assert o["order"]["broker_result"] is None

    # The audit log has every intent, decision, submission, ack and fill.
    audit = log_lines(settings.runtime.logs_dir, "audit")
    events = {a["event"] for a in audit}
    assert {
        "order intent",
        "risk decision",
        "order submitted",
        "broker acknowledged",
        "order filled",
    } <= events
    assert sum(a["event"] == "risk decision" for a in audit) == len(orders)
    # Money adds up: equity change = realised + unrealised − commissions, all exact Decimals.
    assert summary.end_equity == daemon.ledger.equity()
    assert isinstance(summary.end_equity, Decimal)


async def test_same_seed_gives_identical_journals_and_another_seed_does_not(tmp_path: Path):
    outputs = []
    for name, seed in (("a", 11), ("b", 11), ("c", 12)):
        settings = make_settings(tmp_path / name)
        await run_daemon(settings, seed=seed)
        runs = settings.runtime.runs_dir
        outputs.append([p.read_bytes() for p in sorted(runs.glob("*/*.jsonl"))])
    assert outputs[0] == outputs[1]
    assert outputs[0] != outputs[2]


async def test_daily_loss_limit_halts_new_openings_while_closings_pass(tmp_path: Path):
    # A tiny limit: the first fill's commission and spread already breach it.
    settings = make_settings(tmp_path, risk={"max_daily_loss": 1.0, "max_open_positions": 50})
    summary, _ = await run_daemon(settings, sessions=2)
    orders = [o["order"] for o in journal_lines(settings.runtime.runs_dir, "orders")]
    errors = log_lines(settings.runtime.logs_dir, "errors")

    halts = [e for e in errors if e["event"] == "Daily loss limit reached. Halting trading."]
    assert halts
    assert all(e["level"] == "critical" for e in halts)
    assert len(halts) <= len(summary.sessions)  # once per session at most
    rejected = [o for o in orders if o["risk"]["reason"] in {"daily_loss_limit", "trading_halted"}]
    assert rejected
    assert all(o["effect"] == "open" for o in rejected)
    # Within a session, after the first halt no open is approved, and every close still is.
    for day in {o["risk"]["decided_at"][:10] for o in rejected}:
        todays = [o for o in orders if o["risk"]["decided_at"][:10] == day]
        first = min(
            o["risk"]["decided_at"] for o in todays if not o["risk"]["approved"] and o in rejected
        )
        after = [o for o in todays if o["risk"]["decided_at"] > first]
        assert not [o for o in after if o["effect"] == "open" and o["risk"]["approved"]]
        assert all(o["risk"]["approved"] for o in after if o["effect"] == "close")
    assert summary.rejected["daily_loss_limit"] + summary.rejected["trading_halted"] == len(
        rejected
    )


async def test_kill_file_blocks_every_opening_order(tmp_path: Path):
    settings = make_settings(tmp_path)
    kill = settings.risk.kill_file
    kill.parent.mkdir(parents=True, exist_ok=True)
    kill.write_text("operator stop\n")
    summary, _ = await run_daemon(settings)
    orders = [o["order"] for o in journal_lines(settings.runtime.runs_dir, "orders")]
    assert orders
    assert all(not o["risk"]["approved"] and o["risk"]["reason"] == "kill_switch" for o in orders)
    assert summary.fills == 0


async def test_dry_run_journals_ideas_but_sends_no_order(settings: Settings):
    summary, _ = await run_daemon(settings, execute=False)
    assert summary.ideas > 0
    assert summary.intents == 0
    assert not list(journal_lines(settings.runtime.runs_dir, "orders"))


async def test_iv_history_is_saved_and_reloaded_across_restarts(tmp_path: Path):
    settings = make_settings(tmp_path)
    await run_daemon(settings, sessions=2)
    saved = (settings.runtime.state_dir / "iv_history.json").read_bytes()
    _, daemon = await run_daemon(settings, sessions=1)  # a restart on the first day again
    history = daemon.analytics["SPY"].volatility.history()
    assert len(history) >= 2  # the two stored days came back
    assert b"2026-11-23" in saved
