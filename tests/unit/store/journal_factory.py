"""Small hand-made journals for review tests (written with the real Journal writer)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from gnosisd.store.journal import Journal
from gnosisd.store.review import ReviewRules

DAY1 = date(2026, 3, 2)
DAY2 = date(2026, 3, 3)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    """A UTC time on `day` (14:30 UTC is 09:30 New York in March before DST)."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def stop_for(base: float, confidence: float) -> float:
    return round(min(base * (0.8 + 0.4 * confidence), 1.0), 4)


_BASE = {"directional": (0.5, 0.5), "volatility": (0.75, 0.6), "income": (0.5, 0.35)}
FAMILY = {"long_call": "directional", "straddle": "volatility", "iron_condor": "income"}


def exits(strategy: str, confidence: float) -> dict[str, float]:
    target, stop = _BASE[FAMILY[strategy]]
    return {
        "profit_target_pct": target,
        "stop_loss_pct": stop_for(stop, confidence),
        "time_exit_dte": 7,
        "max_days_held": 21,
    }


def routes(
    direction: str | None, regime: str | None, iv_rank: float | None, confidence: float | None
) -> Collection[str]:
    """A toy routing table: bullish -> long call; neutral -> straddle at high IV, else condor."""
    if confidence is None or confidence < 0.3:
        return set()
    if direction == "bullish":
        return {"long_call"}
    if direction == "neutral":
        high = regime == "vol_expansion" or (iv_rank is not None and iv_rank >= 0.7)
        return {"straddle"} if high else {"iron_condor"}
    return set()


RULES = ReviewRules(
    family=FAMILY,
    expected_exit=exits,
    routes=routes,
    long_premium=frozenset({"straddle"}),
    short_premium=frozenset({"iron_condor"}),
    routing_rule="toy: straddle at IV rank >= 0.7 or vol_expansion, else iron condor",
    exit_rule="toy",
    max_trade_risk_pct=0.02,
    iv_rank_lines=(("high IV rank", 0.7),),
)


def trade(
    j: Journal,
    symbol: str,
    when: datetime,
    strategy: str,
    *,
    direction: str,
    confidence: float,
    iv_rank: float | None,
    regime: str,
    max_loss: float,
    exit_rules: Mapping[str, float] | None = None,
) -> None:
    payload = {
        "id": f"{symbol}-{when.isoformat()}-{strategy}",
        "symbol": symbol,
        "strategy_type": strategy,
        "direction": direction,
        "confidence": confidence,
        "quantity": 1,
        "max_loss": max_loss,
        "max_profit": None,
        "iv_rank": iv_rank,
        "regime": regime,
        "exit_rules": dict(exit_rules or exits(strategy, confidence)),
    }
    context = {
        "iv_rank": iv_rank,
        "regime": regime,
        "direction": direction,
        "confidence": confidence,
    }
    j.write("trade", symbol, when, payload, {"context": context})


def order(
    j: Journal,
    symbol: str,
    when: datetime,
    intent_id: str,
    *,
    effect: str,
    strategy: str,
    approved: bool = True,
    reason: str = "approved",
    max_loss: float = -500.0,
    equity: float = 100_000.0,
    fill: Mapping[str, Any] | None = None,
    broker: Mapping[str, Any] | None = None,
    position_id: str | None = None,
    exit_reason: str | None = None,
) -> None:
    result: dict[str, Any] | None = None
    if fill is not None:
        qty = int(fill.get("quantity", 1))
        price = float(fill["net_price"])
        result = {
            "status": "filled",
            "order_id": f"sim-{intent_id}",
            "quantity": qty,
            "net_price": price,
            "commission": float(fill.get("commission", 0.65)),
            "slippage": float(fill.get("slippage", 0.0)),
            "position_id": fill.get("position_id", position_id or intent_id),
            "legs": [{"symbol": "X", "side": "buy", "quantity": qty, "price": abs(price)}],
        }
    elif broker is not None:
        result = dict(broker)
    payload = {
        "intent_id": intent_id,
        "idea_id": None,
        "position_id": position_id,
        "effect": effect,
        "strategy_type": strategy,
        "exit_reason": exit_reason,
        "quantity": 1,
        "limit_price": 1.0,
        "legs": [],
        "risk": {
            "approved": approved,
            "reason": reason,
            "detail": reason if approved else f"{reason}: detail",
            "max_loss": max_loss,
            "trading_state": "active",
            "equity": equity,
            "decided_at": when.isoformat(),
        },
        "broker_result": result,
        "error_message": None if result is None else result.get("message"),
    }
    j.write("order", symbol, when, payload)


def context(j: Journal, symbol: str, when: datetime, regime: str, direction: str) -> None:
    payload = {
        "symbol": symbol,
        "as_of": when.isoformat(),
        "direction": direction,
        "confidence": 0.6,
        "regime": regime,
        "iv_rank": 0.5,
        "exit_rules": exits("long_call", 0.6),
    }
    j.write("context", symbol, when, payload)


def good_journal(runs: Path) -> Path:
    """Two days, SPY and QQQ: three ideas that follow the toy rules, fills, a close, rejections.

    SPY long call opened day 1 at a 5.00 debit, closed day 2 at a 7.50 credit (profit target):
    gross +250.00, commissions 0.65 + 0.65.
    """
    with Journal(runs) as j:
        context(j, "SPY", at(DAY1, 15), "trend_up", "bullish")
        context(j, "QQQ", at(DAY1, 15), "range", "neutral")
        trade(
            j,
            "SPY",
            at(DAY1, 15),
            "long_call",
            direction="bullish",
            confidence=0.6,
            iv_rank=0.4,
            regime="trend_up",
            max_loss=-500.0,
        )
        trade(
            j,
            "SPY",
            at(DAY1, 16),
            "straddle",
            direction="neutral",
            confidence=0.8,
            iv_rank=0.8,
            regime="vol_expansion",
            max_loss=-800.0,
        )
        trade(
            j,
            "QQQ",
            at(DAY1, 15),
            "iron_condor",
            direction="neutral",
            confidence=0.5,
            iv_rank=0.5,
            regime="range",
            max_loss=-300.0,
        )
        order(
            j,
            "SPY",
            at(DAY1, 15),
            "open-call",
            effect="open",
            strategy="long_call",
            fill={"net_price": 5.0, "slippage": 0.5},
        )
        order(
            j,
            "SPY",
            at(DAY1, 16),
            "open-straddle",
            effect="open",
            strategy="straddle",
            approved=False,
            reason="max_open_positions",
            max_loss=-800.0,
        )
        order(
            j,
            "QQQ",
            at(DAY1, 15),
            "open-condor",
            effect="open",
            strategy="iron_condor",
            max_loss=-300.0,
            broker={
                "status": "rejected",
                "order_id": "sim-open-condor",
                "message": "Insufficient funds: need $300.00, have $10.00",
            },
        )
        order(
            j,
            "SPY",
            at(DAY2, 15),
            "close-call",
            effect="close",
            strategy="long_call",
            max_loss=0.0,
            position_id="open-call",
            exit_reason="profit_target",
            fill={"net_price": -7.5, "slippage": 0.25},
        )
    return runs
