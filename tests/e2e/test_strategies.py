"""The runbook's review expectations over a multi-session simulated run, as gnosisd defines them:
strategy distribution by direction and volatility (the routing table), exit rules by family, and
closes that the position manager sends through the guard with their exit reason."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from gnosisd.agents.exits import FAMILY, Family, exit_rules_for_strategy
from gnosisd.agents.positions import ExitReason
from gnosisd.agents.routing import route
from gnosisd.bus.records import MarketContext
from gnosisd.core.enums import Direction, Regime, StrategyType
from tests.e2e.conftest import journal_lines, make_settings, run_daemon

pytestmark = pytest.mark.slow

S = StrategyType
BULLISH = {S.LONG_CALL, S.CALL_DEBIT_SPREAD, S.CALL_DIAGONAL, S.PUT_CREDIT_SPREAD, S.STRADDLE}
BEARISH = {S.LONG_PUT, S.PUT_DEBIT_SPREAD, S.PUT_DIAGONAL, S.CALL_CREDIT_SPREAD, S.STRADDLE}
NEUTRAL_HIGH_IV = {S.STRADDLE, S.STRANGLE, S.REVERSE_IRON_CONDOR}
NEUTRAL_OTHER = {
    S.IRON_CONDOR,
    S.IRON_BUTTERFLY,
    S.BROKEN_WING_BUTTERFLY,
    S.CALL_CALENDAR,
    S.PUT_CALENDAR,
}
TARGET = {Family.DIRECTIONAL: 0.5, Family.INCOME: 0.5, Family.VOLATILITY: 0.75, Family.TIME: 0.4}
RULE_EXITS = {r.value for r in ExitReason}


async def test_strategy_distribution_and_exit_rules_over_six_sessions(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    cfg = settings.trade_agent
    summary, _ = await run_daemon(settings, sessions=6, symbols=["SPY"], seed=11)
    runs = settings.runtime.runs_dir
    trades = [line["trade"] for line in journal_lines(runs, "trades")]
    orders = [line["order"] for line in journal_lines(runs, "orders")]
    assert len(summary.sessions) == 6
    assert len({t["as_of"][:10] for t in trades}) >= 2

    # Distribution: every idea comes from its context's routing cell, in the runbook's spirit.
    kinds = Counter(S(t["strategy_type"]) for t in trades)
    assert len(kinds) >= 3
    assert len({t["direction"] for t in trades}) >= 2
    for t in trades:
        kind, direction, rank = S(t["strategy_type"]), Direction(t["direction"]), t["iv_rank"]
        context = MarketContext(
            symbol=t["symbol"],
            as_of=t["as_of"],
            spot=1.0,
            direction=direction,
            confidence=t["confidence"],
            regime=Regime(t["regime"]),
            iv_rank=rank,
            exit_rules=t["exit_rules"],
        )
        assert kind in route(context, cfg), t["id"]
        if direction is Direction.BULLISH:
            assert kind in BULLISH
        elif direction is Direction.BEARISH:
            assert kind in BEARISH
        elif rank is not None and rank >= cfg.high_iv_rank:
            assert kind in NEUTRAL_HIGH_IV
        else:
            assert kind in NEUTRAL_OTHER
        if kind is S.STRADDLE:  # the runbook's vol-routing check: long premium at high IV rank
            assert rank is not None and rank >= cfg.high_iv_rank

        # Exit rules by family: income and directional take half the max profit, volatility 75%,
        # time spreads 40% of the debit; only income structures trade without a trailing stop.
        family = FAMILY[kind]
        assert t["exit_rules"] == exit_rules_for_strategy(kind, t["confidence"]).model_dump()
        assert t["exit_rules"]["profit_target_pct"] == TARGET[family]
        assert (t["exit_rules"]["trailing_stop_pct"] > 0) == (
            family in (Family.DIRECTIONAL, Family.VOLATILITY)
        )

    # Closes: sent by the position manager through the guard, journaled with their exit reason.
    opened = {
        o["broker_result"]["position_id"]: o
        for o in orders
        if o["effect"] == "open" and (o["broker_result"] or {}).get("status") == "filled"
    }
    closes = [
        o
        for o in orders
        if o["effect"] == "close" and (o["broker_result"] or {}).get("status") == "filled"
    ]
    assert opened
    assert closes
    assert sum(summary.closes[r] for r in RULE_EXITS) == len(closes)
    for close in closes:
        assert close["exit_reason"] in RULE_EXITS
        assert close["risk"]["approved"]
        entry = opened[close["position_id"]]  # a position this run opened
        assert close["strategy_type"] == entry["strategy_type"]
        family = FAMILY[S(close["strategy_type"])]
        if family is Family.INCOME:
            assert close["exit_reason"] not in {"trailing_stop", "breakeven_stop"}
        pnl = -(
            Decimal(repr(entry["broker_result"]["net_price"]))
            + Decimal(repr(close["broker_result"]["net_price"]))
        )
        if close["exit_reason"] == "profit_target":
            assert pnl > 0
        elif close["exit_reason"] == "stop_loss":
            assert pnl < 0
