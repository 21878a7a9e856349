"""The daemon's status file (JSON, mode 0600, replaced atomically) and `gnosisd status` reading it.

The daemon rewrites it every few seconds of wall time and once more, marked stopped, on the way
out; a file that stops changing means the daemon is hung or gone.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import orjson
import structlog

from gnosisd.core.clock import NS_PER_S, Clock, LiveClock, ns_to_datetime
from gnosisd.core.config import RuntimeConfig, Settings
from gnosisd.core.enums import TradingState
from gnosisd.core.errors import ConfigError
from gnosisd.core.files import atomic_write
from gnosisd.core.money import CENT
from gnosisd.runtime.metrics import Telemetry

log = structlog.stdlib.get_logger(__name__)

FORMAT_VERSION: Final = 1
DEFAULT_INTERVAL_S: Final = 2.0
EXIT_RUNNING: Final = 0
EXIT_HALTED: Final = 3  # running, but trading is halted or reducing only
EXIT_DOWN: Final = 4  # no status, stopped, stale (hung) or the process is gone


def status_path(runtime: RuntimeConfig) -> Path:
    """runtime.status_file, or <runtime.state_dir>/status.json."""
    return runtime.status_file or runtime.state_dir / "status.json"


def write_status(path: Path, doc: dict[str, Any]) -> None:
    """Replace `path` with `doc` atomically; the file is readable by its owner only (0600)."""
    body = orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS, default=str)
    atomic_write(path, body, mode=0o600, durable=False)  # rewritten every few seconds


class StatusWriter:
    """Build the status document from Telemetry and write it every `interval` wall seconds."""

    def __init__(
        self,
        path: Path,
        telemetry: Telemetry,
        *,
        mode: dict[str, str],
        stale_after_s: float,
        interval: float = DEFAULT_INTERVAL_S,
        wall: Clock | None = None,
        pid: int | None = None,
    ) -> None:
        self.path = path
        self.telemetry = telemetry
        self.mode = mode
        self.stale_after_s = stale_after_s
        self.interval = interval
        self.wall = wall or LiveClock()
        self.pid = os.getpid() if pid is None else pid
        self.started_at = self.wall.now().isoformat()
        self._failing = False

    def document(self, running: bool = True) -> dict[str, Any]:
        t = self.telemetry
        p = t.portfolio
        state = t.trading_state()
        now_ns = t.clock.now_ns()
        streams = []
        for stream in t.symbols:
            last = t.last_data_ns(stream)
            silence = t.silence_s(stream)
            streams.append(
                {
                    "stream": stream,
                    "last_data_at": None if last is None else ns_to_datetime(last).isoformat(),
                    "data_age_seconds": None
                    if last is None
                    else round((now_ns - last) / NS_PER_S, 3),
                    "silence_seconds": round(silence, 3),
                    "stale": t.in_session and silence > self.stale_after_s,
                }
            )
        positions = [
            {
                "position_id": pos.position_id,
                "underlying": pos.underlying,
                "strategy_type": pos.strategy_type,
                "quantity": pos.quantity,
                "entry_net_price": str(pos.entry_net_price),
                "mark_net_price": str(pos.mark_net_price),
                "unrealized_pnl": str(pos.unrealized_pnl.quantize(CENT)),
                "max_loss": str(pos.max_loss),
            }
            for pos in p.positions()
        ]
        orders = [
            {
                "intent_id": o.intent_id,
                "underlying": o.underlying,
                "effect": o.effect,
                "strategy_type": o.strategy_type,
                "quantity": o.quantity,
                "limit_price": str(o.limit_price),
                "approved_at": ns_to_datetime(o.approved_ns).isoformat(),
            }
            for o in t.open_orders.values()
        ]
        return {
            "version": FORMAT_VERSION,
            "pid": self.pid,
            "running": running,
            "started_at": self.started_at,
            "updated_at": self.wall.now().isoformat(),
            "interval_seconds": self.interval,
            "mode": self.mode,
            "clock": t.clock.now().isoformat(),
            "session": {"day": t.session_day, "open": t.in_session},
            "trading_state": state.value,
            "trading_state_reason": t.state_reason,
            "equity": str(p.equity().quantize(CENT)),
            "cash": str(p.cash().quantize(CENT)),
            "session_pnl": str(p.session_pnl().quantize(CENT)),
            "open_risk": str(t.open_risk().quantize(CENT)),
            "positions": positions,
            "open_orders": orders,
            "streams": streams,
            "watchdog": {
                "healthy": t.healthy,
                "reason": t.health_reason,
                "loop_stalls": t.loop_stalls,
            },
            "last_decision": t.last_decision,
            "last_context": t.last_context,
        }

    def write(self, running: bool = True) -> bool:
        """Write the document; a failure is logged (once until it works again), never raised."""
        try:
            write_status(self.path, self.document(running))
        except OSError as exc:
            if not self._failing:
                log.error("cannot write the status file", path=str(self.path), error=str(exc))
            self._failing = True
            return False
        self._failing = False
        return True

    async def run(self) -> None:
        """Write now and every interval until cancelled."""
        while True:
            self.write()
            await asyncio.sleep(self.interval)


# ---------------------------------------------------------------- reading (`gnosisd status`)
@dataclass(frozen=True, slots=True)
class Assessment:
    code: int
    summary: str


def pid_alive(pid: int) -> bool:
    """True if a process with `pid` exists (signal 0 probes without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def assess(
    doc: dict[str, Any] | None,
    now: datetime,
    alive: Callable[[int], bool] = pid_alive,
) -> Assessment:
    """Running and trading (0), running but halted or reducing (3), or down (4), with why."""
    if doc is None:
        return Assessment(EXIT_DOWN, "down: no status file (gnosisd is not running here)")
    if not doc.get("running", False):
        return Assessment(EXIT_DOWN, f"down: stopped at {doc.get('updated_at')}")
    pid = int(doc.get("pid", 0))
    if pid <= 0 or not alive(pid):
        return Assessment(
            EXIT_DOWN, f"down: process {pid} is gone (last update {doc.get('updated_at')})"
        )
    updated = datetime.fromisoformat(str(doc["updated_at"]))
    age = (now - updated).total_seconds()
    limit = max(5 * float(doc.get("interval_seconds", DEFAULT_INTERVAL_S)), 10.0)
    if age > limit:
        return Assessment(EXIT_DOWN, f"down: status not updated for {age:.0f} s (hung?)")
    state = str(doc.get("trading_state"))
    if state != TradingState.ACTIVE.value:
        reason = doc.get("trading_state_reason") or "no reason recorded"
        return Assessment(EXIT_HALTED, f"running, trading {state}: {reason}")
    return Assessment(EXIT_RUNNING, "running, trading active")


def read_status(path: Path) -> dict[str, Any] | None:
    """The status document, or None when there is none."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    doc = orjson.loads(raw)
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: not a status document")
    return doc


def format_status(doc: dict[str, Any] | None, verdict: Assessment) -> str:
    """A human summary: verdict, state, P&L, positions, open orders, streams, last decision."""
    lines = [f"gnosisd: {verdict.summary}"]
    if doc is None:
        return lines[0] + "\n"
    lines += [
        f"  pid             {doc.get('pid')}  (started {doc.get('started_at')}, updated "
        f"{doc.get('updated_at')})",
        f"  mode            {', '.join(f'{k} {v}' for k, v in doc.get('mode', {}).items())}",
        f"  clock           {doc.get('clock')}  session {doc['session'].get('day')} "
        f"({'open' if doc['session'].get('open') else 'closed'})",
        f"  trading state   {doc.get('trading_state')}"
        + (f"  ({doc['trading_state_reason']})" if doc.get("trading_state_reason") else ""),
        f"  today's P&L     {doc.get('session_pnl')} USD  (equity {doc.get('equity')}, cash "
        f"{doc.get('cash')}, open risk {doc.get('open_risk')})",
        f"  positions       {len(doc.get('positions', []))}",
    ]
    for pos in doc.get("positions", []):
        lines.append(
            f"    {pos['underlying']:<5} {pos['strategy_type']:<22} x{pos['quantity']:<3} "
            f"entry {pos['entry_net_price']:>9} mark {pos['mark_net_price']:>9} "
            f"P&L {pos['unrealized_pnl']:>10}  {pos['position_id']}"
        )
    lines.append(f"  open orders     {len(doc.get('open_orders', []))}")
    for o in doc.get("open_orders", []):
        lines.append(
            f"    {o['underlying']:<5} {o['effect']:<5} {o.get('strategy_type') or '-':<22} "
            f"x{o['quantity']} @ {o['limit_price']}  since {o['approved_at']}"
        )
    wd = doc.get("watchdog", {})
    lines.append(
        "  watchdog        "
        + ("healthy" if wd.get("healthy") else f"UNHEALTHY: {wd.get('reason')}")
    )
    lines.append("  streams")
    for s in doc.get("streams", []):
        flag = "STALE" if s.get("stale") else "ok"
        lines.append(
            f"    {s['stream']:<5} {flag:<5} last data {s.get('last_data_at') or 'never'}, "
            f"silent {s.get('silence_seconds')} s"
        )
    d = doc.get("last_decision")
    if d:
        verdict_text = "approved" if d.get("approved") else f"rejected: {d.get('reason')}"
        lines.append(
            f"  last decision   {d.get('at')} {d.get('underlying')} {d.get('effect')} "
            f"{d.get('strategy_type') or ''} x{d.get('quantity')} @ {d.get('limit_price')}: "
            f"{verdict_text}"
        )
    else:
        lines.append("  last decision   none yet")
    return "\n".join(lines) + "\n"


def status_command(
    settings: Settings, *, status_file: Path | None, as_json: bool, out: Any = None
) -> int:
    """`gnosisd status`: print the daemon's status; exit 0 running, 3 halted, 4 down."""
    stream = out or sys.stdout
    path = status_file or status_path(settings.runtime)
    try:
        doc = read_status(path)
    except PermissionError:
        raise ConfigError(
            f"{path}: permission denied; the status file is readable by the daemon's user only"
            " (run `gnosisd status` as that user)"
        ) from None
    except ValueError as exc:  # not JSON (written atomically, so never half a document)
        doc, verdict = None, Assessment(EXIT_DOWN, f"down: unreadable status file {path}: {exc}")
    else:
        verdict = assess(doc, LiveClock().now())
    if as_json:
        payload = {"exit_code": verdict.code, "summary": verdict.summary, "status": doc}
        stream.write(orjson.dumps(payload, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        stream.write(format_status(doc, verdict))
    return verdict.code
