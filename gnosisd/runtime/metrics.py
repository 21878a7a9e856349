"""Telemetry gathered from the bus and the daemon's books, and its Prometheus /metrics endpoint.

The endpoint is a tiny asyncio HTTP server on the daemon's own event loop: a stalled loop shows as
a failed scrape (Prometheus `up == 0`) rather than as fresh-looking numbers served by a helper
thread. prometheus-client renders the exposition format (escaping, types, HELP lines).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final, Protocol

import structlog
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

from gnosisd.bus.bus import Bus, Subscription
from gnosisd.bus.events import (
    ChainSnapshot,
    OrderFilled,
    OrderUpdated,
    RiskDecided,
    SessionClosed,
    SessionStarted,
    TradingStateChanged,
)
from gnosisd.bus.records import MarketContext
from gnosisd.bus.topics import Topic
from gnosisd.core.clock import NS_PER_S, Clock, datetime_to_ns, ns_to_datetime
from gnosisd.core.enums import OrderStatus, TradingState
from gnosisd.core.money import CONTRACT_MULTIPLIER, ZERO
from gnosisd.core.views import PortfolioView

log = structlog.stdlib.get_logger(__name__)

MARKET_DATA: Final = (Topic.QUOTES, Topic.TRADES, Topic.BARS, Topic.CHAINS)
_MD_VALUES: Final = frozenset(t.value for t in MARKET_DATA)
OBSERVED: Final = (
    *MARKET_DATA,
    Topic.CONTEXT,
    Topic.DECISIONS,
    Topic.ORDER_UPDATES,
    Topic.FILLS,
    Topic.CONTROL,
)
_OCC_ROOT: Final = re.compile(r"([A-Z][A-Z.]{0,5})\d{6}[CP]\d{8}")
# The classic text format (legacy metric names, which all of ours are): every Prometheus reads it.
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
_TERMINAL: Final = frozenset({OrderStatus.REJECTED, OrderStatus.CANCELED, OrderStatus.EXPIRED})


class ChainSource(Protocol):
    """Where the latest option chain of an underlying is (the runtime's MarketState)."""

    def chain(self, symbol: str) -> ChainSnapshot | None: ...


@dataclass(slots=True)
class StreamStats:
    """Events of one (topic, stream): count, last event time, lag at receipt."""

    events: int = 0
    last_event_ns: int | None = None
    last_lag_s: float = 0.0
    max_lag_s: float = 0.0


@dataclass(frozen=True, slots=True)
class OpenOrder:
    intent_id: str
    underlying: str
    effect: str
    strategy_type: str | None
    quantity: int
    limit_price: Decimal
    approved_ns: int


@dataclass(frozen=True, slots=True)
class Greeks:
    """Portfolio greeks of one underlying from the latest chain (docs/operations.md, Metrics).

    delta and gamma in share equivalents (gamma per $1 of the underlying), vega in dollars per
    vol point, theta in dollars per calendar day.
    """

    delta: float = 0.0
    gamma: float = 0.0
    vega: float = 0.0
    theta: float = 0.0


def stream_of(event: object) -> str:
    """The stream an event belongs to: its underlying (an OCC option symbol maps to its root)."""
    if isinstance(event, RiskDecided):
        return event.intent.underlying
    name = getattr(event, "underlying", None) or getattr(event, "symbol", None)
    if not isinstance(name, str):
        return "-"
    match = _OCC_ROOT.fullmatch(name)
    return match.group(1) if match else name


def _event_ns(event: object) -> int | None:
    ts = getattr(event, "ts_ns", None)
    if isinstance(ts, int):
        return ts
    if isinstance(event, MarketContext):
        return datetime_to_ns(event.as_of)
    return None


@dataclass
class Telemetry:
    """What the daemon did and how healthy it is, fed by bus subscriptions (sync handlers).

    Reads the portfolio, the chains and the trading state only when asked (scrape, status).
    `monotonic` times when data arrived (wall), for stream silence and the watchdog.
    """

    bus: Bus
    clock: Clock
    portfolio: PortfolioView
    chains: ChainSource
    trading_state: Callable[[], TradingState]
    dropped: Mapping[str, int]
    symbols: Sequence[str]
    monotonic: Callable[[], float] = time.monotonic
    streams: dict[tuple[str, str], StreamStats] = field(default_factory=dict)
    received: dict[str, float] = field(default_factory=dict)  # stream -> monotonic time
    orders: Counter[str] = field(default_factory=Counter)
    rejections: Counter[str] = field(default_factory=Counter)
    open_orders: dict[str, OpenOrder] = field(default_factory=dict)
    state_reason: str = ""
    in_session: bool = False
    session_day: str | None = None
    session_started: float | None = None  # monotonic
    last_decision: dict[str, Any] | None = None
    last_context: dict[str, dict[str, Any]] = field(default_factory=dict)
    healthy: bool = True
    health_reason: str = ""
    loop_stalls: int = 0
    started: float = 0.0

    def __post_init__(self) -> None:
        self.started = self.monotonic()

    # ------------------------------------------------------------------ subscriptions
    def subscriptions(self) -> list[tuple[Subscription, Callable[[object], None]]]:
        """Subscribe to every observed topic; the daemon runs one consumer per pair."""
        out: list[tuple[Subscription, Callable[[object], None]]] = []
        for topic in OBSERVED:
            sub = self.bus.subscribe(topic, f"telemetry.{topic.value}")
            out.append((sub, self._handler(topic)))
        return out

    def _handler(self, topic: Topic) -> Callable[[object], None]:
        def handle(event: object) -> None:
            self.on_event(topic, event)

        return handle

    def on_event(self, topic: Topic, event: object) -> None:
        """Account one event of `topic` (the subscription handler)."""
        stream = stream_of(event)
        stats = self.streams.get((topic.value, stream))
        if stats is None:
            stats = self.streams[(topic.value, stream)] = StreamStats()
        stats.events += 1
        ts = _event_ns(event)
        if ts is not None:
            stats.last_event_ns = (
                ts if stats.last_event_ns is None else max(ts, stats.last_event_ns)
            )
            lag = max(0.0, (self.clock.now_ns() - ts) / NS_PER_S)
            stats.last_lag_s = lag
            stats.max_lag_s = max(stats.max_lag_s, lag)
        if topic in MARKET_DATA:
            self.received[stream] = self.monotonic()
        elif isinstance(event, RiskDecided):
            self._on_decision(event)
        elif isinstance(event, OrderUpdated):
            self.orders[f"broker_{event.status.value}"] += 1
            if event.status in _TERMINAL:
                self.open_orders.pop(event.intent_id, None)
        elif isinstance(event, OrderFilled):
            self.orders["filled"] += 1
            self.open_orders.pop(event.intent_id, None)
        elif isinstance(event, MarketContext):
            self.last_context[event.symbol] = {
                "as_of": event.as_of.isoformat(),
                "direction": event.direction.value,
                "confidence": round(event.confidence, 4),
                "regime": event.regime.value,
                "iv_rank": event.iv_rank,
            }
        else:
            self._on_control(event)

    def _on_decision(self, event: RiskDecided) -> None:
        intent = event.intent
        if event.approved:
            self.orders["approved"] += 1
            self.open_orders[intent.intent_id] = OpenOrder(
                intent.intent_id,
                intent.underlying,
                intent.effect.value,
                intent.strategy_type,
                intent.quantity,
                intent.limit_price,
                event.ts_ns,
            )
        else:
            self.orders["rejected_by_risk"] += 1
            self.rejections[event.reason.value] += 1
        self.last_decision = {
            "at": ns_to_datetime(event.ts_ns).isoformat(),
            "intent_id": intent.intent_id,
            "underlying": intent.underlying,
            "effect": intent.effect.value,
            "strategy_type": intent.strategy_type,
            "exit_reason": intent.exit_reason,
            "quantity": intent.quantity,
            "limit_price": str(intent.limit_price),
            "approved": event.approved,
            "reason": event.reason.value,
            "detail": event.detail,
        }

    def _on_control(self, event: object) -> None:
        if isinstance(event, SessionStarted):
            self.in_session = True
            self.session_day = event.day.isoformat()
            self.session_started = self.monotonic()
        elif isinstance(event, SessionClosed):
            self.in_session = False
        elif isinstance(event, TradingStateChanged):
            self.state_reason = event.reason if event.state is not TradingState.ACTIVE else ""

    # ------------------------------------------------------------------ derived
    def bus_progress(self) -> tuple[int, int]:
        """(events delivered so far on every topic, events waiting or in progress now)."""
        delivered = sum(s.delivered for s in self.bus.stats.values())
        pending = sum(sub.unfinished for t in Topic for sub in self.bus.subscribers(t))
        return delivered, pending

    def last_data_ns(self, stream: str) -> int | None:
        """Event time of the latest market data of `stream` (any market-data topic)."""
        times = [
            s.last_event_ns
            for (topic, name), s in self.streams.items()
            if name == stream and topic in _MD_VALUES and s.last_event_ns is not None
        ]
        return max(times) if times else None

    def silence_s(self, stream: str) -> float:
        """Wall seconds since market data of `stream` last arrived (since the session or the
        daemon started, if none has)."""
        now = self.monotonic()
        last = self.received.get(stream)
        if last is None:
            last = max(self.started, self.session_started or self.started)
        return max(0.0, now - last)

    def open_risk(self) -> Decimal:
        """Σ |max loss| of the open positions, dollars."""
        return sum((-p.max_loss for p in self.portfolio.positions()), ZERO)

    def greeks(self) -> dict[str, Greeks]:
        """Portfolio greeks per underlying from each underlying's latest chain (legs the chain
        does not list count as zero)."""
        sums: dict[str, list[float]] = {}
        for pos in self.portfolio.positions():
            acc = sums.setdefault(pos.underlying, [0.0, 0.0, 0.0, 0.0])
            chain = self.chains.chain(pos.underlying)
            if chain is None:
                continue
            for leg in pos.legs:
                try:
                    row = chain.row(leg.symbol)
                except KeyError:
                    continue
                units = leg.ratio * pos.quantity * CONTRACT_MULTIPLIER
                acc[0] += units * float(chain.delta[row])
                acc[1] += units * float(chain.gamma[row])
                acc[2] += units * float(chain.vega[row]) / 100.0  # per 1.00 vol -> per vol point
                acc[3] += units * float(chain.theta[row]) / 365.0  # per year -> per day
        return {u: Greeks(*v) for u, v in sorted(sums.items())}


class DaemonCollector(Collector):
    """prometheus-client collector: every metric is computed from Telemetry at scrape time."""

    def __init__(self, telemetry: Telemetry) -> None:
        self.t = telemetry

    def collect(self) -> Iterator[Metric]:
        t = self.t
        yield from self._bus()
        events = CounterMetricFamily(
            "gnosisd_events", "Events handled per topic and stream", labels=["topic", "stream"]
        )
        lag = GaugeMetricFamily(
            "gnosisd_event_lag_seconds",
            "Daemon clock minus event time when the last event of the topic and stream arrived",
            labels=["topic", "stream"],
        )
        max_lag = GaugeMetricFamily(
            "gnosisd_event_lag_max_seconds",
            "Largest lag seen per topic and stream since start",
            labels=["topic", "stream"],
        )
        for (topic, stream), s in sorted(t.streams.items()):
            events.add_metric([topic, stream], s.events)
            lag.add_metric([topic, stream], s.last_lag_s)
            max_lag.add_metric([topic, stream], s.max_lag_s)
        yield from (events, lag, max_lag)
        yield _counter(
            "gnosisd_market_data_dropped",
            "Malformed market-data events dropped at the boundary, by reason",
            "reason",
            t.dropped,
        )
        yield _counter("gnosisd_orders", "Order events by state", "state", t.orders)
        yield _gauge(
            "gnosisd_open_orders",
            "Approved orders without a final broker answer",
            len(t.open_orders),
        )
        yield _counter(
            "gnosisd_risk_rejections",
            "Orders the risk guard rejected, by reason",
            "reason",
            t.rejections,
        )
        state = t.trading_state()
        states = GaugeMetricFamily(
            "gnosisd_trading_state", "1 for the current trading state", labels=["state"]
        )
        for each in TradingState:
            states.add_metric([each.value], 1.0 if each is state else 0.0)
        yield states
        yield from self._books()
        yield from self._streams()
        yield _gauge(
            "gnosisd_watchdog_healthy", "1 while the watchdog pings systemd", float(t.healthy)
        )
        yield CounterMetricFamily(
            "gnosisd_loop_stalls",
            "Watchdog checks that found the event loop late",
            value=t.loop_stalls,
        )
        yield _gauge(
            "gnosisd_clock_timestamp_seconds",
            "The daemon clock (simulated in sim and backtests)",
            t.clock.now_ns() / NS_PER_S,
        )

    def _bus(self) -> Iterable[Metric]:
        bus = self.t.bus
        published = CounterMetricFamily(
            "gnosisd_bus_published", "Events published", labels=["topic"]
        )
        delivered = CounterMetricFamily(
            "gnosisd_bus_delivered", "Events delivered", labels=["topic"]
        )
        conflated = CounterMetricFamily(
            "gnosisd_bus_conflated", "Market-data events replaced by a newer one", labels=["topic"]
        )
        for topic, st in bus.stats.items():
            published.add_metric([topic.value], st.published)
            delivered.add_metric([topic.value], st.delivered)
            conflated.add_metric([topic.value], st.conflated)
        depth = GaugeMetricFamily(
            "gnosisd_queue_depth",
            "Events waiting in a subscriber's queue",
            labels=["topic", "subscriber"],
        )
        for topic in Topic:
            for sub in bus.subscribers(topic):
                depth.add_metric([topic.value, sub.name], sub.qsize())
        return (published, delivered, conflated, depth)

    def _books(self) -> Iterable[Metric]:
        t = self.t
        p = t.portfolio
        out: list[Metric] = [
            _gauge("gnosisd_equity_dollars", "Portfolio equity (cash + marks)", float(p.equity())),
            _gauge("gnosisd_cash_dollars", "Cash", float(p.cash())),
            _gauge(
                "gnosisd_session_pnl_dollars",
                "P&L of the current New York session (realised + unrealised - commissions)",
                float(p.session_pnl()),
            ),
            _gauge("gnosisd_open_positions", "Open positions", len(p.positions())),
            _gauge(
                "gnosisd_open_risk_dollars",
                "Sum of |max loss| of open positions",
                float(t.open_risk()),
            ),
        ]
        names = {
            "delta": ("gnosisd_portfolio_delta_shares", "Portfolio delta in shares"),
            "gamma": ("gnosisd_portfolio_gamma_shares", "Portfolio gamma in shares per $1"),
            "vega": ("gnosisd_portfolio_vega_dollars", "Portfolio vega in $ per vol point"),
            "theta": ("gnosisd_portfolio_theta_dollars", "Portfolio theta in $ per day"),
        }
        greeks = t.greeks()
        for attr, (name, doc) in names.items():
            fam = GaugeMetricFamily(name, doc, labels=["underlying"])
            for underlying, g in greeks.items():
                fam.add_metric([underlying], getattr(g, attr))
            out.append(fam)
        return out

    def _streams(self) -> Iterable[Metric]:
        t = self.t
        last = GaugeMetricFamily(
            "gnosisd_last_data_timestamp_seconds",
            "Event time of the latest market data per stream",
            labels=["stream"],
        )
        silence = GaugeMetricFamily(
            "gnosisd_stream_silence_seconds",
            "Wall seconds since market data of the stream last arrived",
            labels=["stream"],
        )
        for stream in t.symbols:
            ns = t.last_data_ns(stream)
            if ns is not None:
                last.add_metric([stream], ns / NS_PER_S)
            silence.add_metric([stream], t.silence_s(stream))
        in_session = _gauge(
            "gnosisd_in_session", "1 between session open and close", float(t.in_session)
        )
        return (last, silence, in_session)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _counter(name: str, doc: str, label: str, values: Mapping[str, int]) -> CounterMetricFamily:
    fam = CounterMetricFamily(name, doc, labels=[label])
    for key, n in sorted(values.items()):
        fam.add_metric([key], n)
    return fam


def registry_for(telemetry: Telemetry) -> CollectorRegistry:
    """A private registry (not prometheus-client's global one) with the daemon's collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DaemonCollector(telemetry))
    return registry


class MetricsServer:
    """GET /metrics over HTTP/1.0 on the event loop (one request per connection)."""

    def __init__(self, registry: CollectorRegistry, host: str = "127.0.0.1", port: int = 0) -> None:
        self.registry = registry
        self.host = host
        self.requested_port = port
        self._server: asyncio.Server | None = None
        self.listening = asyncio.Event()

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the metrics server is not listening")
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.requested_port)
        self.listening.set()
        log.info("metrics endpoint listening", host=self.host, port=self.port, path="/metrics")

    async def serve(self) -> None:
        """Start (if needed) and serve until cancelled; the socket is closed on the way out."""
        if self._server is None:
            try:
                await self.start()
            except OSError as exc:  # trading goes on; the failed scrape is the alert
                log.error(
                    "metrics endpoint cannot listen",
                    host=self.host,
                    port=self.requested_port,
                    error=str(exc),
                )
                return
        assert self._server is not None
        try:
            await self._server.serve_forever()
        finally:
            await self.close()

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            with contextlib.suppress(Exception):
                await server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
            parts = head.split(b"\r\n", 1)[0].decode("latin-1").split()
            method = parts[0] if parts else ""
            path = parts[1].split("?", 1)[0] if len(parts) > 1 else ""
            if method not in ("GET", "HEAD"):
                status, ctype, body = "405 Method Not Allowed", "text/plain", b"GET only\n"
            elif path != "/metrics":
                status, ctype, body = "404 Not Found", "text/plain", b"see /metrics\n"
            else:
                status, ctype, body = "200 OK", CONTENT_TYPE, generate_latest(self.registry)
            header = (
                f"HTTP/1.0 {status}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            ).encode("latin-1")
            writer.write(header + (b"" if method == "HEAD" else body))
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, OSError):
            pass  # a client that went away or sent garbage gets nothing
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
