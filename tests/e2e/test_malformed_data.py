"""Malformed market data is dropped, counted and logged; it never crashes the daemon or makes an order."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from gnosisd.bus.events import Bar, ChainSnapshot, Quote, Trade
from gnosisd.core.calendar import Session
from gnosisd.feeds.sim import SimMarket
from gnosisd.runtime.daemon import Daemon
from tests.e2e.conftest import journal_lines, log_lines, make_settings, run_daemon

pytestmark = pytest.mark.slow
HOUR_NS = 3_600 * 10**9


def _poison(chain: ChainSnapshot) -> ChainSnapshot:
    """The same chain with every ask below its bid: crossed everywhere."""
    return dataclasses.replace(chain, bid=np.array(chain.ask + 1.0), ask=np.array(chain.bid))


class BadDataDaemon(Daemon):
    """Only malformed events reach the validator: each kind the boundary must refuse."""

    def _events(self, market: SimMarket, session: Session) -> Iterator[tuple[int, object]]:
        for ts, event in market.session_events(session):
            if isinstance(event, ChainSnapshot):
                yield ts, _poison(event)
            elif isinstance(event, Quote):
                yield ts, dataclasses.replace(event, bid=event.ask + 0.5)  # crossed
            elif isinstance(event, Trade):
                yield ts, dataclasses.replace(event, price=math.nan)
            elif isinstance(event, Bar):
                yield ts, dataclasses.replace(event, ts_ns=event.ts_ns + HOUR_NS)  # from the future
        open_ns = int(session.open.timestamp()) * 10**9
        yield open_ns + HOUR_NS, Quote("ZZZZ", open_ns + HOUR_NS, 1.0, 1.1, 1, 1)  # unknown
        yield open_ns + HOUR_NS, Quote("SPY", open_ns + HOUR_NS, -2.0, -1.0, 1, 1)  # negative


async def test_malformed_data_is_dropped_counted_logged_and_never_leads_to_an_order(tmp_path: Path):
    settings = make_settings(tmp_path)
    summary, _ = await run_daemon(settings, daemon_cls=BadDataDaemon)
    dropped = summary.dropped
    for reason in ("crossed_quote", "nan", "future_timestamp", "bad_chain", "unknown_symbol"):
        assert dropped[reason] > 0, reason
    assert dropped["non_positive_price"] + dropped["crossed_quote"] > 0
    assert summary.contexts == 0
    assert summary.intents == 0
    assert summary.fills == 0
    assert not list(journal_lines(settings.runtime.runs_dir, "orders"))
    warnings = [
        e
        for e in log_lines(settings.runtime.logs_dir, "pipeline")
        if e["event"] == "market data dropped"
    ]
    assert len(warnings) == sum(dropped.values())
    assert {w["reason"] for w in warnings} == set(dropped)


class FailingHedgeDaemon(Daemon):
    """Every third chain makes the hedge engine raise, as a numerical corner case might."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        hedge = self.analytics["SPY"].hedge
        original = hedge.update
        calls = {"n": 0}

        def flaky(event: object) -> object:
            if isinstance(event, ChainSnapshot):
                calls["n"] += 1
                if calls["n"] % 3 == 0:
                    raise ValueError("f(a) and f(b) must have different signs")
            return original(event)

        hedge.update = flaky  # type: ignore[method-assign]


async def test_an_analytics_failure_is_contained_logged_and_counted(tmp_path: Path):
    settings = make_settings(tmp_path)
    summary, _ = await run_daemon(settings, daemon_cls=FailingHedgeDaemon)
    assert summary.stage_errors["engines.chains"] > 10
    assert summary.contexts > 0  # the other chains still made contexts
    errors = [
        e
        for e in log_lines(settings.runtime.logs_dir, "errors")
        if e["event"] == "analytics update failed"
    ]
    assert len(errors) == summary.stage_errors["engines.chains"]
    assert "ValueError" in errors[0]["exception"]
