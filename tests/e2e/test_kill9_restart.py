"""`kill -9` mid-session and a restart against the fake Alpaca servers (issue 5, items 7, 10, 12, 13).

A live daemon process (tests/e2e/live_child.py: the real Daemon, Alpaca feed and broker, on a
wall clock shifted into a session) sends two intents: one fills, one keeps working. It is killed
with SIGKILL and restarted with the same intents re-decided. The restart must keep every journal
line, post nothing twice, adopt the working order (not cancel and re-post it), restore positions
and today's P&L, take the broker's worse P&L, leave an external order alone, and book the fill of
the adopted order. A `gnosisd halt` followed by another SIGKILL must restart HALTED.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from gnosisd.core.clock import NEW_YORK, datetime_to_ns
from gnosisd.testing.chains import make_chain
from gnosisd.testing.fake_alpaca import FakeAlpaca, FakeOrder
from gnosisd.testing.fake_alpaca.orders import FakeLeg
from tests.e2e.conftest import journal_lines

pytestmark = pytest.mark.slow
SESSION_TIME = datetime(2026, 12, 2, 11, 0, tzinfo=NEW_YORK)  # a Wednesday, market open
IDS = "k9-fill-1,k9-work-1"
ROOT = Path(__file__).resolve().parents[2]


def _env(fake: FakeAlpaca) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GNOSIS_", "ALPACA_"))}
    env.update(
        ALPACA_API_KEY=fake.key,
        ALPACA_SECRET_KEY=fake.secret,
        ALPACA_BASE_URL=fake.rest_url,
        ALPACA_DATA_URL=fake.rest_url,
        ALPACA_DATA_STREAM_URL=fake.stream_url,
        ALPACA_TRADING_STREAM_URL=fake.trading_stream_url,
        PYTHONPATH=str(ROOT),
    )
    return env


async def _spawn(cwd: Path, fake: FakeAlpaca, offset_ns: int) -> asyncio.subprocess.Process:
    (cwd / "child_status.json").unlink(missing_ok=True)
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.e2e.live_child",
        str(cwd),
        str(offset_ns),
        IDS,
        cwd=ROOT,
        env=_env(fake),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )


def _status(cwd: Path) -> dict[str, Any] | None:
    path = cwd / "child_status.json"
    return orjson.loads(path.read_bytes()) if path.exists() else None


async def _until(
    proc: asyncio.subprocess.Process, predicate: Callable[[], bool], within_s: float = 20.0
) -> None:
    async with asyncio.timeout(within_s):
        while not predicate():
            if proc.returncode is not None:
                err = b"" if proc.stderr is None else await proc.stderr.read()
                raise AssertionError(f"the daemon exited {proc.returncode}: {err.decode()}")
            await asyncio.sleep(0.05)


async def _kill9(proc: asyncio.subprocess.Process) -> None:
    proc.send_signal(signal.SIGKILL)
    await proc.wait()
    assert proc.returncode == -signal.SIGKILL


def _journal(cwd: Path) -> dict[str, bytes]:
    return {str(p.relative_to(cwd)): p.read_bytes() for p in sorted(cwd.glob("runs/*/*.jsonl"))}


def _ledger(cwd: Path) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads((cwd / "state" / "ledger.json").read_bytes())
    return doc


def _unmarked(ledger: dict[str, Any]) -> dict[str, Any]:
    """The ledger document without leg marks (the next chain re-marks the legs)."""
    holdings = [{k: v for k, v in h.items() if k != "leg_marks"} for h in ledger["holdings"]]
    return {**ledger, "holdings": holdings}


def _posts(fake: FakeAlpaca) -> int:
    return sum(1 for m, p in fake.requests if m == "POST" and p == "/v2/orders")


def _audit(cwd: Path) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for path in sorted((cwd / "logs").glob("audit_*.log")):
        out.extend(orjson.loads(line) for line in path.read_bytes().splitlines())
    return out


async def test_kill_9_mid_session_then_restart_loses_nothing_and_posts_nothing_twice(
    tmp_path: Path,
) -> None:
    offset_ns = datetime_to_ns(SESSION_TIME) - time.time_ns()

    def now_ns() -> int:
        return time.time_ns() + offset_ns

    async with FakeAlpaca(now_ns=now_ns) as fake:
        fake.load_chain(make_chain(as_of_ns=now_ns()), quote_ts_ns=now_ns())

        async def fill_the_fill_intent(server: FakeAlpaca, order: FakeOrder) -> None:
            if order.client_order_id.startswith("gn-k9-fill"):
                await server.fill(order)

        fake.fill_policy = fill_the_fill_intent
        # An order someone else placed in the same account: gnosisd must never touch it.
        external = FakeOrder(
            client_order_id="manual-order-1",
            mleg=False,
            qty=1,
            limit_price=Decimal("0.50"),
            order_type="limit",
            legs=[
                FakeLeg(
                    symbol=sorted(fake.contracts)[0],
                    side="buy",
                    ratio=1,
                    position_intent="buy_to_open",
                )
            ],
            created_ns=now_ns(),
            status="new",
        )
        fake.orders[external.id] = external

        # ---- first run: one intent fills, the other keeps working; then SIGKILL.
        proc = await _spawn(tmp_path, fake, offset_ns)
        try:
            await _until(proc, lambda: (s := _status(tmp_path)) is not None and s["fills"] >= 1)
            work = await fake.wait_order("gn-k9-work-1-1")
            assert work.is_open
            before = _status(tmp_path)
            assert before is not None and before["positions"] == ["k9-fill-1"]
            assert before["working"] == ["k9-work-1"]
            ledger_before = _ledger(tmp_path)
            assert ledger_before["sent"]["k9-work-1"]["done"] is False
            assert ledger_before["sent"]["k9-fill-1"]["done"] is True
            await _kill9(proc)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        journal_before = _journal(tmp_path)
        assert any("_context.jsonl" in name for name in journal_before)
        posts_before = _posts(fake)
        assert posts_before == 2
        assert external.is_open

        # ---- restart: same intents re-decided, the broker reports a worse day than the ledger.
        fake.account["equity"] = "99000"  # last_equity 100000: the broker's day is −1000
        proc = await _spawn(tmp_path, fake, offset_ns)
        try:
            await _until(proc, lambda: _status(tmp_path) is not None)
            after = _status(tmp_path)
            assert after is not None
            assert after["reconciled"] is True, after["problems"]
            assert after["state"] == "active"
            assert after["positions"] == ["k9-fill-1"]
            assert after["working"] == ["k9-work-1"]  # adopted, not re-posted
            assert after["external_orders"] == [external.id]
            assert after["cash"] == before["cash"]
            # Today's P&L is still measured from this morning's equity, not from the restart.
            start_equity = Decimal(ledger_before["ledger"]["session_start_equity"])
            own = Decimal(after["own_session_pnl"])
            assert own == Decimal(after["equity"]) - start_equity
            assert own < 0  # commissions paid before the kill (a reset would read 0)
            assert Decimal(after["session_pnl"]) == Decimal(-1000)  # the broker's, the worse
            restored = _ledger(tmp_path)["ledger"]
            assert (
                restored["session_start_equity"] == ledger_before["ledger"]["session_start_equity"]
            )
            assert _unmarked(restored) == _unmarked(ledger_before["ledger"])  # marks move on
            # The re-decided intents reach the broker adapter and are refused as duplicates.
            await _until(proc, lambda: _refusals(tmp_path) >= 2)
            assert _posts(fake) == posts_before
            assert fake.duplicates_refused == 0
            assert fake.orders[work.id].is_open and external.is_open  # never cancelled
            # The adopted order fills while we are up: the fill is booked once.
            await fake.fill(work)
            await _until(proc, lambda: (s := _status(tmp_path)) is not None and s["fills"] >= 1)
            filled = _status(tmp_path)
            assert filled is not None
            assert filled["positions"] == ["k9-fill-1", "k9-work-1"]
            assert filled["working"] == []

            # ---- halt, then SIGKILL again: the restart is HALTED, books unchanged.
            halt = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "gnosisd.cli",
                "halt",
                "--reason",
                "k9 drill",
                cwd=tmp_path,
                env=_env(fake),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            assert await halt.wait() == 0
            await _until(proc, lambda: _halted_in_audit(tmp_path))
            ledger_halted = _ledger(tmp_path)
            await _kill9(proc)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        journal_mid = _journal(tmp_path)

        proc = await _spawn(tmp_path, fake, offset_ns)
        try:
            await _until(proc, lambda: _status(tmp_path) is not None)
            third = _status(tmp_path)
            assert third is not None
            assert third["reconciled"] is True, third["problems"]
            assert third["positions"] == ["k9-fill-1", "k9-work-1"]
            assert _unmarked(_ledger(tmp_path)["ledger"]) == _unmarked(ledger_halted["ledger"])
            await _until(
                proc, lambda: (s := _status(tmp_path)) is not None and s["state"] == "halted"
            )
            proc.send_signal(signal.SIGTERM)
            async with asyncio.timeout(20):
                await proc.wait()
            assert proc.returncode == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert _posts(fake) == posts_before
        assert external.is_open  # never cancelled, not even at shutdown or by the halt

    # Every journal line written before each kill is still there, byte for byte.
    journal_after = _journal(tmp_path)
    for snapshot in (journal_before, journal_mid):
        for name, data in snapshot.items():
            assert journal_after[name].startswith(data), name
    orders = [x["order"] for x in journal_lines(tmp_path / "runs", "orders")]
    done = [o for o in orders if (o["broker_result"] or {}).get("status") == "filled"]
    assert [o["intent_id"] for o in done] == ["k9-fill-1", "k9-work-1"]
    # The adopted order's outcome is journaled with the decision the killed run made.
    adopted = done[1]
    assert adopted["adopted_after_restart"] is True
    assert adopted["risk"]["approved"] is True and adopted["legs"]


def _refusals(cwd: Path) -> int:
    """Re-decided k9 intents refused: by the guard, or by the broker adapter as duplicates."""
    n = 0
    for x in _audit(cwd):
        if not str(x.get("intent_id", "")).startswith("k9-"):
            continue
        guard_refused = x.get("event") == "risk decision" and not x.get("approved")
        n += guard_refused or "duplicate intent" in str(x.get("message", ""))
    return n


def _halted_in_audit(cwd: Path) -> bool:
    return any(
        x.get("event") == "trading state changed" and x.get("state") == "halted"
        for x in _audit(cwd)
    )
