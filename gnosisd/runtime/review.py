"""`gnosisd review`: the journal review with the rules taken from the code that trades.

The store's review (store/review.py) knows no strategy rules; this module hands it the trade
agent's own routing (agents/routing.py, with the configured table and IV-rank thresholds), the
exit rules of agents/exits.py and the configured per-trade cap.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path

from gnosisd.agents.exits import FAMILY, Family, exit_rules_for, exit_rules_for_strategy
from gnosisd.agents.routing import cell_of, route, routing_table
from gnosisd.bus.records import ExitRules, MarketContext
from gnosisd.core.config import Settings, TradeAgentConfig
from gnosisd.core.enums import Direction, Regime, StrategyType
from gnosisd.store.report import format_review, write_report
from gnosisd.store.review import ReviewQuery, ReviewRules, run_review

EXIT_REVIEW_FAILED = 3
_PLACEHOLDER_EXIT = ExitRules(
    profit_target_pct=0.5, stop_loss_pct=0.5, time_exit_dte=0, max_days_held=1
)
_EPOCH = datetime(2000, 1, 3, tzinfo=UTC)


class _Router:
    """The trade agent's router as the review asks it: (direction, regime, iv_rank, confidence)."""

    def __init__(self, cfg: TradeAgentConfig) -> None:
        self.cfg = cfg
        self.table = routing_table(cfg)
        self.candidates = functools.lru_cache(maxsize=65536)(self._candidates)

    def _candidates(
        self,
        direction: str | None,
        regime: str | None,
        iv_rank: float | None,
        confidence: float | None,
    ) -> frozenset[str]:
        context = _context(direction, regime, iv_rank, confidence)
        if context is None:  # a value the composer cannot produce: nothing may be routed
            return frozenset()
        return frozenset(s.value for s in route(context, self.cfg, self.table))


def _context(
    direction: str | None, regime: str | None, iv_rank: float | None, confidence: float | None
) -> MarketContext | None:
    """A context carrying just what routing reads, or None if the values are not valid."""
    if direction is None or regime is None or confidence is None:
        return None
    try:
        return MarketContext(
            symbol="REVIEW",
            as_of=_EPOCH,
            spot=1.0,
            direction=Direction(direction),
            confidence=confidence,
            regime=Regime(regime),
            iv_rank=iv_rank,
            exit_rules=_PLACEHOLDER_EXIT,
        )
    except ValueError:
        return None


def expected_exit(
    strategy: str, confidence: float, cfg: TradeAgentConfig | None = None
) -> Mapping[str, float]:
    """The exit rules agents/exits.py attaches to `strategy` at `confidence` (with cfg's scales)."""
    try:
        kind = StrategyType(strategy)
    except ValueError:
        return {}
    cfg = cfg or TradeAgentConfig()
    return exit_rules_for_strategy(
        kind,
        confidence,
        target_scale=cfg.exit_profit_target_scale,
        stop_scale=cfg.exit_stop_scale,
    ).model_dump()


def _family_sets() -> tuple[frozenset[str], frozenset[str]]:
    long_premium = frozenset(s.value for s, f in FAMILY.items() if f is Family.VOLATILITY)
    short_premium = frozenset(s.value for s, f in FAMILY.items() if f is Family.INCOME)
    return long_premium, short_premium


def routing_rule(cfg: TradeAgentConfig) -> str:
    """One line: where the configured routing table allows long and short premium."""
    long_premium, short_premium = _family_sets()
    table = routing_table(cfg)

    def cells(premium: frozenset[str]) -> str:
        found = [
            c for c, strategies in table.items() if any(s.value in premium for s in strategies)
        ]
        return ", ".join(found) or "nowhere"

    high = f"IV rank >= {cfg.high_iv_rank:g}"
    probe = _context("neutral", Regime.VOL_EXPANSION.value, None, 1.0)
    if probe is not None and cell_of(probe, cfg).endswith(".high"):
        high += " or regime vol_expansion"  # asked of the router, not assumed
    return (
        f"trade_agent.vol_routing {cfg.vol_routing}: long premium only in cells {cells(long_premium)};"
        f" short premium only in cells {cells(short_premium)} (vol high: {high}; low: IV rank <= "
        f"{cfg.low_iv_rank:g}; mid otherwise or unknown; nothing below confidence "
        f"{cfg.min_confidence:g}, single long options from {cfg.long_option_min_confidence:g})"
    )


def _exit_rule_text(cfg: TradeAgentConfig) -> str:
    parts = []
    scales = {"target_scale": cfg.exit_profit_target_scale, "stop_scale": cfg.exit_stop_scale}
    for fam in Family:
        lo, hi = exit_rules_for(fam, 0.0, **scales), exit_rules_for(fam, 1.0, **scales)
        parts.append(
            f"{fam.value}: target {lo.profit_target_pct:.0%}, stop {lo.stop_loss_pct:.3g} "
            f"(confidence 0) to {hi.stop_loss_pct:.3g} (confidence 1) of max loss, time exit "
            f"{lo.time_exit_dte} DTE, max {lo.max_days_held} days"
        )
    return "; ".join(parts)


def default_rules(settings: Settings | None = None) -> ReviewRules:
    """The review rules of this version of gnosisd with the configuration of `settings`."""
    settings = settings or Settings()
    cfg = settings.trade_agent
    long_premium, short_premium = _family_sets()
    return ReviewRules(
        family={s.value: f.value for s, f in FAMILY.items()},
        expected_exit=lambda strategy, confidence: expected_exit(strategy, confidence, cfg),
        routes=_Router(cfg).candidates,
        long_premium=long_premium,
        short_premium=short_premium,
        routing_rule=routing_rule(cfg),
        exit_rule=_exit_rule_text(cfg),
        max_trade_risk_pct=settings.risk.max_trade_risk_pct,
        iv_rank_lines=(("low IV rank", cfg.low_iv_rank), ("high IV rank", cfg.high_iv_rank)),
    )


def review_command(
    settings: Settings,
    *,
    runs_dir: Path | None,
    since: date | None,
    until: date | None,
    symbols: Sequence[str],
    html: Path | None,
) -> int:
    """Print the review; write the HTML report if asked; 0 when every check passes, else 3."""
    query = ReviewQuery(
        runs_dir=runs_dir or settings.runtime.runs_dir,
        since=since,
        until=until,
        symbols=tuple(s.upper() for s in symbols),
    )
    review = run_review(query, default_rules(settings))
    sys.stdout.write(format_review(review))
    if html is not None:
        write_report(review, html)
        sys.stdout.write(f"report written to {html}\n")
    return 0 if review.passed else EXIT_REVIEW_FAILED
