"""A live daemon process for the restart tests: `python -m tests.e2e.live_child CWD OFFSET_NS IDS`.

The real Daemon with the Alpaca feed and broker (URLs and keys from the environment, as
`gnosisd run --feed alpaca --broker alpaca` takes them) on a wall clock shifted by OFFSET_NS into
a regular session, so the calendar and the guard see an open market at any hour. Once the chain
is in, it publishes one call debit spread intent per comma-separated id (the same ids on every
start: a restart re-decides the same intents) and writes `child_status.json` after
reconciliation and then every 50 ms. SIGTERM stops it gracefully; the tests also SIGKILL it.
"""

from __future__ import annotations

import asyncio
import os
import sys
from decimal import Decimal
from pathlib import Path

import orjson

from gnosisd.broker.alpaca.config import AlpacaCredentials, resolve_endpoints
from gnosisd.bus.events import ChainSnapshot, SubmitOrder
from gnosisd.bus.topics import Topic
from gnosisd.core.calendar import TradingCalendar
from gnosisd.runtime.daemon import Daemon, RunOptions
from gnosisd.runtime.live import AlpacaConnection
from gnosisd.runtime.logging import configure_logging, shutdown_logging
from tests.e2e.conftest import make_settings
from tests.live_support import ShiftedClock, natural_call_spread

STRIKES = {"fill": (Decimal(500), Decimal(505)), "work": (Decimal(490), Decimal(495))}


def spread(chain: ChainSnapshot, intent_id: str) -> SubmitOrder:
    """A one-lot call debit spread at its natural; strikes by the id's kind (`fill` / `work`)."""
    buy, sell = STRIKES["work" if "work" in intent_id else "fill"]
    return natural_call_spread(chain, intent_id, buy, sell)


def write_status(daemon: Daemon, path: Path, phase: str) -> None:
    live = daemon.live
    assert live is not None and live.broker is not None
    rec = live.reconciliation
    doc = {
        "phase": phase,
        "positions": sorted(p.position_id for p in daemon.ledger.positions()),
        "cash": str(daemon.ledger.cash()),
        "equity": str(daemon.ledger.equity()),
        "session_pnl": str(daemon.ledger.session_pnl()),
        "own_session_pnl": str(daemon.ledger.own_session_pnl()),
        "state": daemon.guard.state.value,
        "working": live.broker.working(),
        "reconciled": None if rec is None else rec.ok,
        "problems": [] if rec is None else list(rec.problems),
        "external_orders": [] if rec is None else [o.id for o in rec.external_orders],
        "fills": daemon.summary.fills,
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps(doc))
    tmp.replace(path)


async def main(cwd: Path, offset_ns: int, ids: list[str]) -> int:
    clock = ShiftedClock(offset_ns)
    settings = make_settings(cwd, trade_agent={"max_ideas_per_decision": 0})
    env = os.environ
    endpoints = resolve_endpoints(
        "paper",
        trading_url=env["ALPACA_BASE_URL"],
        data_url=env["ALPACA_DATA_URL"],
        data_stream_url=env["ALPACA_DATA_STREAM_URL"],
        trading_stream_url=env["ALPACA_TRADING_STREAM_URL"],
    )
    creds = AlpacaCredentials(env["ALPACA_API_KEY"], env["ALPACA_SECRET_KEY"])
    configure_logging("INFO", settings.runtime.logs_dir, clock, console=False)
    status = cwd / "child_status.json"
    try:
        daemon = Daemon(
            settings,
            RunOptions(symbols=["SPY"], sessions=[], handle_signals=True),
            TradingCalendar(),
            clock,
            alpaca=AlpacaConnection(endpoints, creds),
        )
        run = asyncio.create_task(daemon.run())
        live = daemon.live
        assert live is not None
        while daemon.market.chain("SPY") is None or live.reconciliation is None:
            if run.done():
                return 1
            await asyncio.sleep(0.02)
        write_status(daemon, status, "reconciled")
        chain = daemon.market.chain("SPY")
        assert chain is not None
        for iid in ids:
            await daemon.bus.publish(Topic.INTENTS, spread(chain, iid))
        while not run.done():
            write_status(daemon, status, "running")
            await asyncio.sleep(0.05)
        await run
    finally:
        shutdown_logging()
    return 0


if __name__ == "__main__":
    ids = [i for i in sys.argv[3].split(",") if i] if len(sys.argv) > 3 else []
    sys.exit(asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2]), ids)))
