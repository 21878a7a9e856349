"""systemd watchdog that pings only while the daemon is healthy, so systemd restarts a hung one.

Pings are sent from a task on the event loop, so a blocked loop can never ping. On top of that a
check withholds the ping when the loop woke up late, when the bus has work pending but delivered
nothing, or when every market-data stream has been silent too long during a session.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog

from gnosisd.runtime.metrics import Telemetry

log = structlog.stdlib.get_logger(__name__)


class Notifier(Protocol):
    """The part of SystemdNotifier the watchdog uses."""

    def notify(self, msg: str) -> bool: ...

    def watchdog_interval_s(self) -> float | None: ...


@dataclass(frozen=True, slots=True)
class Health:
    healthy: bool
    reason: str = ""


class WatchdogMonitor:
    """Synchronous core: decide from observations (monotonic seconds) whether to ping.

    stall_after_s: the loop may wake this late, and the bus may hold work without delivering
    anything for this long; stale_after_s: market-data silence of a stream during a session.
    """

    def __init__(self, *, stall_after_s: float, stale_after_s: float) -> None:
        if stall_after_s <= 0 or stale_after_s <= 0:
            raise ValueError("stall_after_s and stale_after_s must be > 0")
        self.stall_after_s = stall_after_s
        self.stale_after_s = stale_after_s
        self._delivered = -1
        self._progress_at: float | None = None

    def check(
        self,
        *,
        now: float,
        late_s: float,
        delivered: int,
        pending: int,
        in_session: bool,
        silence_s: Mapping[str, float],
    ) -> Health:
        """Health now. `silence_s` maps each expected stream to its wall silence in seconds."""
        if late_s > self.stall_after_s:
            return Health(False, f"event loop stalled: woke {late_s:.1f} s late")
        if delivered != self._delivered or pending == 0 or self._progress_at is None:
            self._delivered = delivered
            self._progress_at = now
        elif now - self._progress_at > self.stall_after_s:
            return Health(
                False,
                f"bus stalled: {pending} events pending, none delivered for "
                f"{now - self._progress_at:.1f} s",
            )
        if in_session and silence_s and all(s > self.stale_after_s for s in silence_s.values()):
            detail = ", ".join(f"{k} {v:.0f} s" for k, v in sorted(silence_s.items()))
            return Health(False, f"every market-data stream is stale ({detail})")
        return Health(True)


class Watchdog:
    """Check health every `period` seconds; ping WATCHDOG=1 only when healthy.

    Without a systemd watchdog (no WATCHDOG_USEC) it still checks, so status and metrics show
    the health; the period is then `period` (default 1 s), else min(period, half WatchdogSec).
    """

    def __init__(
        self,
        notifier: Notifier,
        telemetry: Telemetry,
        monitor: WatchdogMonitor,
        streams: Sequence[str],
        period: float = 1.0,
    ) -> None:
        self.notifier = notifier
        self.telemetry = telemetry
        self.monitor = monitor
        self.streams = list(streams)
        interval = notifier.watchdog_interval_s()
        self.pinging = interval is not None
        self.period = period if interval is None else min(period, interval)
        self.pings = 0

    def check_once(self, late_s: float) -> Health:
        """Run one check (given how late this wake-up was), ping if healthy, record the result."""
        t = self.telemetry
        delivered, pending = t.bus_progress()
        health = self.monitor.check(
            now=t.monotonic(),
            late_s=late_s,
            delivered=delivered,
            pending=pending,
            in_session=t.in_session,
            silence_s={s: t.silence_s(s) for s in self.streams},
        )
        if late_s > self.monitor.stall_after_s:
            t.loop_stalls += 1
        if health.healthy != t.healthy or health.reason != t.health_reason:
            if health.healthy:
                log.info("watchdog healthy again; pinging systemd")
                self.notifier.notify("STATUS=healthy")
            else:
                log.error("watchdog unhealthy; not pinging systemd", reason=health.reason)
                self.notifier.notify(f"STATUS=unhealthy: {health.reason}")
        t.healthy, t.health_reason = health.healthy, health.reason
        if health.healthy and self.pinging and self.notifier.notify("WATCHDOG=1"):
            self.pings += 1
        return health

    async def run(self) -> None:
        """Check (and ping) every period until cancelled."""
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            late = max(0.0, loop.time() - due)
            self.check_once(late)
            due = loop.time() + self.period
            await asyncio.sleep(self.period)
