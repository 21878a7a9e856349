"""The watchdog pings systemd only while healthy: loop stalls, a stuck bus, stale market data."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from datetime import date

import pytest

from gnosisd.bus.bus import Bus
from gnosisd.bus.events import Quote, SessionClosed, SessionStarted
from gnosisd.bus.topics import Topic
from gnosisd.core.clock import SimClock
from gnosisd.core.enums import TradingState
from gnosisd.runtime.metrics import Telemetry
from gnosisd.runtime.watchdog import Health, Watchdog, WatchdogMonitor
from gnosisd.testing.chains import make_chain
from tests.unit.runtime.test_metrics import Book, Chains


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class RecordingNotifier:
    def __init__(self, interval: float | None = 0.05) -> None:
        self.messages: list[str] = []
        self.interval = interval
        self.changed: asyncio.Event | None = None

    def notify(self, msg: str) -> bool:
        self.messages.append(msg)
        if self.changed is not None:
            self.changed.set()
        return True

    async def until(self, done: Callable[[list[str]], bool]) -> None:
        """Wait (at most 10 s) until `done(messages)` holds."""
        self.changed = asyncio.Event()
        async with asyncio.timeout(10):
            while not done(self.messages):
                self.changed.clear()
                await self.changed.wait()

    def watchdog_interval_s(self) -> float | None:
        return self.interval


def monitor() -> WatchdogMonitor:
    return WatchdogMonitor(stall_after_s=10.0, stale_after_s=60.0)


def check(m: WatchdogMonitor, now: float, **kw: object) -> Health:
    args: dict[str, object] = {
        "late_s": 0.0,
        "delivered": 0,
        "pending": 0,
        "in_session": True,
        "silence_s": {"SPY": 1.0},
    }
    args.update(kw)
    return m.check(now=now, **args)  # type: ignore[arg-type]


def test_healthy_while_the_loop_is_on_time_the_bus_moves_and_data_flows() -> None:
    m = monitor()
    for i in range(5):
        assert check(m, 100.0 + i * 20, delivered=i * 50, pending=3) == Health(True)


def test_a_late_wake_up_of_the_loop_withholds_the_ping() -> None:
    health = check(monitor(), 100.0, late_s=12.5)
    assert not health.healthy
    assert health.reason == "event loop stalled: woke 12.5 s late"


def test_pending_work_without_delivery_withholds_the_ping_until_the_bus_moves_again() -> None:
    m = monitor()
    assert check(m, 100.0, delivered=7, pending=2).healthy
    assert check(m, 109.0, delivered=7, pending=2).healthy  # not yet stall_after_s
    stuck = check(m, 111.0, delivered=7, pending=2)
    assert not stuck.healthy
    assert stuck.reason == "bus stalled: 2 events pending, none delivered for 11.0 s"
    assert check(m, 112.0, delivered=8, pending=2).healthy
    assert check(m, 200.0, delivered=8, pending=0).healthy  # idle is not stuck


def test_every_stream_stale_in_a_session_withholds_the_ping() -> None:
    m = monitor()
    silent = {"SPY": 61.0, "QQQ": 75.0}
    stale = check(m, 100.0, silence_s=silent)
    assert not stale.healthy
    assert stale.reason == "every market-data stream is stale (QQQ 75 s, SPY 61 s)"
    assert check(m, 100.0, silence_s={"SPY": 61.0, "QQQ": 2.0}).healthy  # one stream alive
    assert check(m, 100.0, silence_s=silent, in_session=False).healthy  # market closed


def test_thresholds_must_be_positive() -> None:
    with pytest.raises(ValueError, match="> 0"):
        WatchdogMonitor(stall_after_s=0, stale_after_s=60)


def _telemetry(bus: Bus, clock: FakeTime) -> Telemetry:
    chain = make_chain()
    return Telemetry(
        bus=bus,
        clock=SimClock(0),
        portfolio=Book(chain),
        chains=Chains(chain),
        trading_state=lambda: TradingState.ACTIVE,
        dropped=Counter(),
        symbols=["SPY"],
        monotonic=clock,
    )


def test_pings_stop_when_market_data_goes_silent_in_session_and_resume_when_it_returns() -> None:
    fake = FakeTime()
    telemetry = _telemetry(Bus(), fake)
    notifier = RecordingNotifier()
    dog = Watchdog(notifier, telemetry, WatchdogMonitor(stall_after_s=5, stale_after_s=30), ["SPY"])
    telemetry.on_event(Topic.CONTROL, SessionStarted(0, date(2026, 11, 23)))
    telemetry.on_event(Topic.QUOTES, Quote("SPY", 0, 1, 1.01, 1, 1))
    assert dog.check_once(0.0).healthy
    fake.now += 31
    assert not dog.check_once(0.0).healthy
    fake.now += 60
    assert not dog.check_once(0.0).healthy
    assert telemetry.healthy is False and "stale" in telemetry.health_reason
    telemetry.on_event(Topic.QUOTES, Quote("SPY", 1, 1, 1.01, 1, 1))
    assert dog.check_once(0.0).healthy
    telemetry.on_event(Topic.CONTROL, SessionClosed(2, date(2026, 11, 23)))
    fake.now += 3600  # overnight silence is expected
    assert dog.check_once(0.0).healthy
    assert notifier.messages == [
        "WATCHDOG=1",
        "STATUS=unhealthy: every market-data stream is stale (SPY 31 s)",
        "STATUS=unhealthy: every market-data stream is stale (SPY 91 s)",
        "STATUS=healthy",
        "WATCHDOG=1",
        "WATCHDOG=1",
    ]
    assert dog.pings == 3


def test_a_consumer_that_never_finishes_stops_the_pings() -> None:
    fake = FakeTime()
    bus = Bus()
    telemetry = _telemetry(bus, fake)
    stuck = bus.subscribe(Topic.FILLS, "stuck")  # nobody consumes it: the event stays pending
    notifier = RecordingNotifier()
    dog = Watchdog(notifier, telemetry, WatchdogMonitor(stall_after_s=5, stale_after_s=30), ["SPY"])
    assert stuck.unfinished == 0
    asyncio.run(bus.publish(Topic.FILLS, object()))
    assert dog.check_once(0.0).healthy  # progress is measured from here
    fake.now += 6
    health = dog.check_once(0.0)
    assert not health.healthy
    assert health.reason.startswith("bus stalled: 1 events pending")
    assert notifier.messages[-1].startswith("STATUS=unhealthy: bus stalled")
    assert notifier.messages.count("WATCHDOG=1") == 1


def test_without_a_systemd_watchdog_it_checks_but_never_pings() -> None:
    telemetry = _telemetry(Bus(), FakeTime())
    notifier = RecordingNotifier(interval=None)
    dog = Watchdog(notifier, telemetry, monitor(), ["SPY"], period=1.0)
    assert dog.check_once(0.0).healthy
    assert notifier.messages == []
    assert dog.period == 1.0


async def test_a_blocked_event_loop_is_reported_and_skipped_then_pings_resume() -> None:
    telemetry = _telemetry(Bus(), FakeTime())
    notifier = RecordingNotifier(interval=0.02)
    dog = Watchdog(notifier, telemetry, WatchdogMonitor(stall_after_s=0.25, stale_after_s=60), [])
    task = asyncio.create_task(dog.run())
    try:
        await notifier.until(lambda m: m.count("WATCHDOG=1") >= 2)
        time.sleep(0.8)  # noqa: ASYNC251 - the stall under test: nothing on the loop can ping
        await notifier.until(lambda m: "STATUS=healthy" in m)
    finally:
        task.cancel()
    msgs = notifier.messages
    first = next(i for i, m in enumerate(msgs) if m.startswith("STATUS=unhealthy"))
    assert msgs[:first] == ["WATCHDOG=1"] * first and first >= 2
    assert msgs[first].startswith("STATUS=unhealthy: event loop stalled: woke")
    assert msgs[first + 1] != "WATCHDOG=1"  # the late check did not ping
    back = msgs.index("STATUS=healthy")
    assert msgs[back + 1] == "WATCHDOG=1"
    assert telemetry.loop_stalls >= 1
