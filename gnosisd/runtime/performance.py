"""Backtest performance: returns, risk-adjusted ratios, drawdown and trade statistics from the
equity at each session close and the per-position records; a text table and a PNG chart.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from gnosisd.core.clock import NEW_YORK
from gnosisd.runtime.backtest import BacktestResult, EquityPoint, TradeRecord

TRADING_DAYS = 252


def daily_returns(start_equity: float, equity: Sequence[float]) -> np.ndarray[Any, Any]:
    """Simple returns session over session, the first against the starting equity."""
    e = np.asarray([start_equity, *equity], dtype=np.float64)
    return np.asarray(e[1:] / e[:-1] - 1.0, dtype=np.float64)


def sharpe(returns: np.ndarray[Any, Any]) -> float:
    """Annualised Sharpe ratio of daily returns, excess over zero: mean / sd · √252 (Sharpe 1994).

    0 with fewer than two returns or no variation (a flat equity curve earns nothing).
    """
    if returns.size < 2:
        return 0.0
    sd = float(np.std(returns, ddof=1))
    if sd <= 1e-12:
        return 0.0
    return float(np.mean(returns)) / sd * math.sqrt(TRADING_DAYS)


def sortino(returns: np.ndarray[Any, Any]) -> float:
    """Annualised Sortino ratio: mean / downside deviation (target 0) · √252 (Sortino & Price 1994)."""
    if returns.size < 2:
        return 0.0
    downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2)))
    if downside <= 1e-12:
        return 0.0
    return float(np.mean(returns)) / downside * math.sqrt(TRADING_DAYS)


def drawdowns(start_equity: float, equity: Sequence[float]) -> np.ndarray[Any, Any]:
    """Drawdown at each point, 1 − equity / running peak (the start counts as the first peak)."""
    e = np.asarray([start_equity, *equity], dtype=np.float64)
    peak = np.maximum.accumulate(e)
    return np.asarray(1.0 - e[1:] / peak[1:], dtype=np.float64)


def max_drawdown(start_equity: float, equity: Sequence[float]) -> float:
    dd = drawdowns(start_equity, equity)
    return float(dd.max()) if dd.size else 0.0


def cagr(start_equity: float, end_equity: float, sessions: int) -> float:
    """Compound annual growth over `sessions` trading days (252 a year)."""
    if sessions <= 0 or start_equity <= 0 or end_equity <= 0:
        return 0.0 if end_equity > 0 else -1.0
    return float((end_equity / start_equity) ** (TRADING_DAYS / sessions) - 1.0)


def _money(x: Decimal) -> float:
    return float(x.quantize(Decimal("0.01")))


def _group(trades: Iterable[TradeRecord], key: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for t in trades:
        name = getattr(t, key) or "unknown"
        g = out.setdefault(name, {"trades": 0, "wins": 0, "net_pnl": Decimal(0)})
        g["trades"] += 1
        g["wins"] += int(t.net > 0)
        g["net_pnl"] += t.net
    return {
        k: {
            "trades": v["trades"],
            "wins": v["wins"],
            "win_rate": v["wins"] / v["trades"],
            "net_pnl": _money(v["net_pnl"]),
        }
        for k, v in sorted(out.items())
    }


def trade_stats(trades: Sequence[TradeRecord]) -> dict[str, Any]:
    """Closed trades (net of commissions): win rate, profit factor, average win and loss, groups."""
    closed = [t for t in trades if t.closed is not None]
    wins = [t.net for t in closed if t.net > 0]
    losses = [t.net for t in closed if t.net <= 0]
    gross_win = sum(wins, Decimal(0))
    gross_loss = -sum(losses, Decimal(0))
    return {
        "trades": len(closed),
        "open_trades": len(trades) - len(closed),
        "win_rate": len(wins) / len(closed) if closed else 0.0,
        # None when there is no losing trade (the ratio is unbounded)
        "profit_factor": float(gross_win / gross_loss) if gross_loss > 0 else None,
        "avg_win": _money(gross_win / len(wins)) if wins else 0.0,
        "avg_loss": _money(-gross_loss / len(losses)) if losses else 0.0,
        "by_strategy": _group(closed, "strategy"),
        "by_regime": _group(closed, "regime"),
        "exit_reasons": {
            r: sum(1 for t in closed if t.exit_reason == r)
            for r in sorted({t.exit_reason or "unknown" for t in closed})
        },
    }


def metrics(result: BacktestResult, since: date | None = None) -> dict[str, Any]:
    """Every figure of the results: returns, ratios, drawdown, trades, costs.

    `since`: only the sessions from that day on (a walk-forward hold-out), starting from the
    equity at the close before it, and only the trades opened in them.
    """
    curve = result.equity_curve
    start_equity = result.start_equity
    trades = result.trades
    if since is not None:
        before = [p for p in curve if p.day < since]
        if before:
            start_equity = before[-1].equity
        curve = [p for p in curve if p.day >= since]
        trades = [t for t in trades if t.opened.astimezone(NEW_YORK).date() >= since]
    start = float(start_equity)
    equity = [float(p.equity) for p in curve]
    end = equity[-1] if equity else start
    rets = daily_returns(start, equity)
    return {
        "sessions": len(curve),
        "start_equity": _money(start_equity),
        "end_equity": round(end, 2),
        "total_return": end / start - 1.0 if start > 0 else 0.0,
        "cagr": cagr(start, end, len(equity)),
        "sharpe": sharpe(rets),
        "sortino": sortino(rets),
        "max_drawdown": max_drawdown(start, equity),
        **trade_stats(trades),
        "commissions": _money(sum((t.commissions for t in trades), Decimal(0))),
        "slippage": _money(sum((t.slippage for t in trades), Decimal(0))),
    }


def results_document(result: BacktestResult, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """results.json: inputs, metrics, the equity curve and every trade."""
    return {
        "feed": result.feed,
        "data": result.data_source,
        "option_chains": result.chains,
        "notes": result.notes,
        "from": result.sessions[0].day.isoformat() if result.sessions else None,
        "to": result.sessions[-1].day.isoformat() if result.sessions else None,
        **(extra or {}),
        "metrics": metrics(result),
        "equity_curve": [_point_json(p) for p in result.equity_curve],
        "trades": [t.to_json() for t in result.trades],
    }


def _point_json(p: EquityPoint) -> dict[str, Any]:
    return {
        "day": p.day.isoformat(),
        "equity": float(p.equity),
        "cash": float(p.cash),
        "realized": float(p.realized),
        "commissions": float(p.commissions),
        "open_positions": p.open_positions,
    }


def _pct(x: float) -> str:
    return f"{x * 100:+.2f}%"


def format_table(m: dict[str, Any], title: str) -> str:
    """The results as a plain-text table."""
    pf = m["profit_factor"]
    rows = [
        ("sessions", f"{m['sessions']}"),
        ("equity", f"{m['start_equity']:,.2f} -> {m['end_equity']:,.2f} USD"),
        ("total return", _pct(m["total_return"])),
        ("CAGR", _pct(m["cagr"])),
        ("Sharpe", f"{m['sharpe']:.2f}"),
        ("Sortino", f"{m['sortino']:.2f}"),
        ("max drawdown", f"{m['max_drawdown'] * 100:.2f}%"),
        ("trades", f"{m['trades']} closed, {m['open_trades']} open"),
        ("win rate", f"{m['win_rate'] * 100:.1f}%"),
        ("profit factor", "n/a (no losing trade)" if pf is None else f"{pf:.2f}"),
        ("average win", f"{m['avg_win']:,.2f} USD"),
        ("average loss", f"{m['avg_loss']:,.2f} USD"),
        ("commissions", f"{m['commissions']:,.2f} USD"),
        ("slippage", f"{m['slippage']:,.2f} USD"),
    ]
    width = max(len(k) for k, _ in rows)
    lines = ["", title, *(f"  {k:<{width}}  {v}" for k, v in rows)]
    for group in ("by_strategy", "by_regime"):
        if m[group]:
            lines.append(f"  {group.replace('_', ' ')}:")
            for name, g in m[group].items():
                lines.append(
                    f"    {name:<18} {g['trades']:>4} trades  win {g['win_rate'] * 100:5.1f}%  "
                    f"net {g['net_pnl']:>+12,.2f} USD"
                )
    return "\n".join(lines) + "\n"


def write_chart(result: BacktestResult, path: Path, title: str) -> Path:
    """Equity curve and drawdown, one panel each, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    start = float(result.start_equity)
    days = [p.day for p in result.equity_curve]
    equity = [float(p.equity) for p in result.equity_curve]
    dd = drawdowns(start, equity) * -100.0
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(10, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    try:
        top.plot(days, equity, color="tab:blue", linewidth=1.2)
        top.axhline(start, color="grey", linewidth=0.6, linestyle="--")
        top.set_ylabel("equity (USD)")
        top.set_title(title, fontsize=10)
        top.grid(alpha=0.3)
        bottom.fill_between(days, dd, 0.0, color="tab:red", alpha=0.4, step="post")
        bottom.set_ylabel("drawdown (%)")
        bottom.grid(alpha=0.3)
        fig.autofmt_xdate()
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110, metadata={"Software": None})
    finally:
        plt.close(fig)
    return path
