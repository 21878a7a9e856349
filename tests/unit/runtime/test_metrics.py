"""Telemetry and the Prometheus endpoint, scraped over loopback (and from a running daemon)."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gnosisd.bus.bus import Bus, consume
from gnosisd.bus.events import (
    ChainSnapshot,
    LegFill,
    OrderFilled,
    OrderUpdated,
    Quote,
    RiskDecided,
    SessionClosed,
    SessionStarted,
    SubmitOrder,
    TradingStateChanged,
)
from gnosisd.bus.topics import Topic
from gnosisd.core.clock import NS_PER_S, LiveClock, SimClock
from gnosisd.core.enums import (
    OrderStatus,
    PositionEffect,
    RiskReason,
    Side,
    TradingState,
)
from gnosisd.core.views import Position, PositionLeg
from gnosisd.runtime.daemon import Daemon
from gnosisd.runtime.metrics import MetricsServer, Telemetry, registry_for, stream_of
from gnosisd.runtime.status import assess, read_status
from gnosisd.testing.chains import DEFAULT_AS_OF_NS, make_chain
from tests.e2e.conftest import make_settings, run_daemon

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


class Book:
    """A fixed portfolio (PortfolioView) holding one long call."""

    def __init__(self, chain: ChainSnapshot) -> None:
        row = next(i for i, s in enumerate(chain.symbols) if chain.is_call[i])
        self.row = row
        self.position = Position(
            position_id="p1",
            underlying="SPY",
            strategy_type="long_call",
            quantity=3,
            legs=(
                PositionLeg(
                    symbol=chain.symbols[row],
                    is_call=True,
                    strike=Decimal(str(chain.strike[row])),
                    expiry=chain.expiry(row),
                    ratio=1,
                ),
            ),
            entry_net_price=Decimal("4.00"),
            max_loss=Decimal("-1200"),
            max_profit=None,
            opened_ns=DEFAULT_AS_OF_NS,
            mark_net_price=Decimal("4.50"),
            unrealized_pnl=Decimal("150"),
            exit_rules={},
        )

    def equity(self) -> Decimal:
        return Decimal("100150.00")

    def cash(self) -> Decimal:
        return Decimal("98800.00")

    def positions(self) -> list[Position]:
        return [self.position]

    def session_pnl(self) -> Decimal:
        return Decimal("-42.50")


class Chains:
    def __init__(self, chain: ChainSnapshot) -> None:
        self._chain = chain

    def chain(self, symbol: str) -> ChainSnapshot | None:
        return self._chain if symbol == self._chain.underlying else None


def _telemetry(bus: Bus, clock: SimClock, chain: ChainSnapshot) -> Telemetry:
    return Telemetry(
        bus=bus,
        clock=clock,
        portfolio=Book(chain),
        chains=Chains(chain),
        trading_state=lambda: TradingState.HALTED,
        dropped=Counter({"nan": 3, "crossed_quote": 1}),
        symbols=["SPY", "QQQ"],
    )


def _intent(intent_id: str) -> SubmitOrder:
    return SubmitOrder(
        intent_id=intent_id,
        underlying="SPY",
        ts_ns=DEFAULT_AS_OF_NS,
        effect=PositionEffect.OPEN,
        legs=(),
        quantity=1,
        limit_price=Decimal("2.50"),
        strategy_type="long_call",
    )


def _decided(intent_id: str, approved: bool, reason: RiskReason) -> RiskDecided:
    return RiskDecided(
        intent=_intent(intent_id),
        ts_ns=DEFAULT_AS_OF_NS,
        approved=approved,
        reason=reason,
        detail=reason.value,
        max_loss=Decimal("-250"),
        trading_state=TradingState.ACTIVE,
    )


async def scrape(port: int, request: bytes = b"GET /metrics HTTP/1.0\r\n\r\n") -> tuple[str, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    raw = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = raw.decode().partition("\r\n\r\n")
    return head, body


def samples(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def test_scrape_over_loopback_reports_bus_orders_books_and_streams() -> None:
    bus = Bus()
    clock = SimClock(DEFAULT_AS_OF_NS)
    chain = make_chain(as_of_ns=DEFAULT_AS_OF_NS)
    telemetry = _telemetry(bus, clock, chain)
    tasks = [asyncio.create_task(consume(sub, h)) for sub, h in telemetry.subscriptions()]
    server = MetricsServer(registry_for(telemetry), "127.0.0.1", 0)
    await server.start()
    try:
        await bus.publish(Topic.CONTROL, SessionStarted(DEFAULT_AS_OF_NS, date(2025, 6, 2)))
        for i in range(2):
            await bus.publish(Topic.QUOTES, Quote("SPY", DEFAULT_AS_OF_NS + i, 500, 500.1, 1, 1))
            await bus.join()
        await bus.publish(Topic.CHAINS, chain)
        await bus.publish(Topic.DECISIONS, _decided("a", True, RiskReason.APPROVED))
        await bus.publish(Topic.DECISIONS, _decided("b", False, RiskReason.MAX_OPEN_POSITIONS))
        await bus.publish(Topic.DECISIONS, _decided("c", True, RiskReason.APPROVED))
        await bus.publish(Topic.FILLS, _fill("a"))
        halt = TradingStateChanged(DEFAULT_AS_OF_NS, TradingState.HALTED, "daily loss limit")
        await bus.publish(Topic.CONTROL, halt)
        await bus.join()
        head, body = await scrape(server.port)
    finally:
        await server.close()
        for t in tasks:
            t.cancel()
    assert head.startswith("HTTP/1.0 200 OK")
    assert "Content-Type: text/plain; version=0.0.4" in head
    m = samples(body)
    assert m[("gnosisd_events_total", (("stream", "SPY"), ("topic", "md.quotes")))] == 2
    assert m[("gnosisd_bus_published_total", (("topic", "md.quotes"),))] == 2
    assert m[("gnosisd_bus_delivered_total", (("topic", "ord.decisions"),))] == 3
    depth = ("gnosisd_queue_depth", (("subscriber", "telemetry.md.quotes"), ("topic", "md.quotes")))
    assert m[depth] == 0
    assert m[("gnosisd_market_data_dropped_total", (("reason", "nan"),))] == 3
    assert m[("gnosisd_orders_total", (("state", "approved"),))] == 2
    assert m[("gnosisd_orders_total", (("state", "rejected_by_risk"),))] == 1
    assert m[("gnosisd_orders_total", (("state", "filled"),))] == 1
    assert m[("gnosisd_open_orders", ())] == 1  # "c" is approved and not answered yet
    assert m[("gnosisd_risk_rejections_total", (("reason", "max_open_positions"),))] == 1
    assert m[("gnosisd_trading_state", (("state", "halted"),))] == 1
    assert m[("gnosisd_trading_state", (("state", "active"),))] == 0
    assert m[("gnosisd_session_pnl_dollars", ())] == -42.5
    assert m[("gnosisd_equity_dollars", ())] == 100150.0
    assert m[("gnosisd_open_risk_dollars", ())] == 1200.0
    assert m[("gnosisd_open_positions", ())] == 1
    row = Book(chain).row
    delta = m[("gnosisd_portfolio_delta_shares", (("underlying", "SPY"),))]
    assert delta == pytest.approx(3 * 100 * float(chain.delta[row]))
    vega = m[("gnosisd_portfolio_vega_dollars", (("underlying", "SPY"),))]
    assert vega == pytest.approx(3 * 100 * float(chain.vega[row]) / 100)
    last = m[("gnosisd_last_data_timestamp_seconds", (("stream", "SPY"),))]
    assert last == pytest.approx(DEFAULT_AS_OF_NS / NS_PER_S)
    assert ("gnosisd_last_data_timestamp_seconds", (("stream", "QQQ"),)) not in m  # no data yet
    assert m[("gnosisd_in_session", ())] == 1
    assert telemetry.state_reason == "daily loss limit"


def _fill(intent_id: str) -> OrderFilled:
    return OrderFilled(
        order_id=f"sim-{intent_id}",
        intent_id=intent_id,
        underlying="SPY",
        ts_ns=DEFAULT_AS_OF_NS,
        effect=PositionEffect.OPEN,
        quantity=1,
        net_price=Decimal("2.50"),
        commission=Decimal("0.65"),
        legs=(LegFill("SPY250620C00500000", Side.BUY, 1, Decimal("2.50")),),
        position_id=intent_id,
    )


async def test_the_endpoint_serves_only_get_metrics() -> None:
    bus = Bus()
    telemetry = _telemetry(bus, SimClock(0), make_chain())
    server = MetricsServer(registry_for(telemetry), "127.0.0.1", 0)
    await server.start()
    try:
        head, _ = await scrape(server.port, b"GET /other HTTP/1.0\r\n\r\n")
        assert head.startswith("HTTP/1.0 404")
        head, _ = await scrape(server.port, b"POST /metrics HTTP/1.0\r\n\r\n")
        assert head.startswith("HTTP/1.0 405")
        head, body = await scrape(server.port, b"HEAD /metrics HTTP/1.0\r\n\r\n")
        assert head.startswith("HTTP/1.0 200") and body == ""
    finally:
        await server.close()


def test_lag_is_the_clock_minus_the_event_time() -> None:
    clock = SimClock(DEFAULT_AS_OF_NS + 2 * NS_PER_S)
    telemetry = _telemetry(Bus(), clock, make_chain())
    telemetry.on_event(Topic.QUOTES, Quote("SPY", DEFAULT_AS_OF_NS, 1, 1.01, 1, 1))
    telemetry.on_event(Topic.QUOTES, Quote("SPY", DEFAULT_AS_OF_NS + NS_PER_S, 1, 1.01, 1, 1))
    stats = telemetry.streams[("md.quotes", "SPY")]
    assert stats.events == 2
    assert stats.last_lag_s == pytest.approx(1.0)
    assert stats.max_lag_s == pytest.approx(2.0)


def test_option_symbols_count_under_their_underlying_stream() -> None:
    assert stream_of(Quote("SPY251219C00450000", 0, 1, 1.1, 1, 1)) == "SPY"
    assert stream_of(Quote("BRK.B251219P00400000", 0, 1, 1.1, 1, 1)) == "BRK.B"
    assert stream_of(Quote("QQQ", 0, 1, 1.1, 1, 1)) == "QQQ"
    assert stream_of(object()) == "-"


def test_an_order_leaves_the_open_orders_on_a_final_broker_answer() -> None:
    telemetry = _telemetry(Bus(), SimClock(0), make_chain())
    telemetry.on_event(Topic.DECISIONS, _decided("x", True, RiskReason.APPROVED))
    assert set(telemetry.open_orders) == {"x"}
    accepted = OrderUpdated("o", "x", "SPY", 0, OrderStatus.ACCEPTED)
    telemetry.on_event(Topic.ORDER_UPDATES, accepted)
    assert set(telemetry.open_orders) == {"x"}
    rejected = OrderUpdated("o", "x", "SPY", 0, OrderStatus.REJECTED, "Insufficient funds")
    telemetry.on_event(Topic.ORDER_UPDATES, rejected)
    assert telemetry.open_orders == {}
    assert telemetry.orders == Counter({"approved": 1, "broker_accepted": 1, "broker_rejected": 1})


class ObservedDaemon(Daemon):
    """Scrapes /metrics and reads the status file at the first session close, mid-run."""

    seen: dict[str, Any]

    async def _on_control(self, event: object) -> None:
        await super()._on_control(event)
        if isinstance(event, SessionClosed) and not hasattr(self, "seen"):
            assert self.metrics is not None
            await asyncio.wait_for(self.metrics.listening.wait(), 5)
            head, body = await scrape(self.metrics.port)
            self.status.write()
            self.seen = {
                "port": self.metrics.port,
                "head": head,
                "metrics": samples(body),
                "equity": float(self.ledger.equity()),
                "status": read_status(self.status.path),
            }


async def test_the_daemon_serves_metrics_and_keeps_a_status_file_while_it_runs(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path, runtime={"metrics_port": 0})
    summary, daemon = await run_daemon(
        settings, symbols=["SPY"], daemon_cls=ObservedDaemon, stop_at_ny=(11, 30)
    )
    assert isinstance(daemon, ObservedDaemon)
    seen = daemon.seen
    m = seen["metrics"]
    assert seen["head"].startswith("HTTP/1.0 200")
    assert m[("gnosisd_events_total", (("stream", "SPY"), ("topic", "md.quotes")))] > 0
    assert m[("gnosisd_events_total", (("stream", "SPY"), ("topic", "md.chains")))] > 0
    assert m[("gnosisd_trading_state", (("state", "active"),))] == 1
    assert m[("gnosisd_equity_dollars", ())] == pytest.approx(seen["equity"])
    assert m[("gnosisd_watchdog_healthy", ())] == 1
    live = seen["status"]
    assert live["running"] is True and live["pid"] == os.getpid()
    assert live["trading_state"] == "active"
    assert [s["stream"] for s in live["streams"]] == ["SPY"]
    assert live["streams"][0]["last_data_at"] is not None
    assert assess(live, LiveClock().now()).code == 0
    path = tmp_path / "state" / "status.json"
    assert path.stat().st_mode & 0o777 == 0o600
    final = read_status(path)
    assert final is not None and final["running"] is False
    assert assess(final, LiveClock().now()).code == 4
    assert len(final["positions"]) == summary.open_positions
    with pytest.raises(ConnectionRefusedError):  # the endpoint closed with the daemon
        await asyncio.open_connection("127.0.0.1", seen["port"])
