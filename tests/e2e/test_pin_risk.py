"""Pin risk through the daemon on the simulated market, on the early-close Friday after
Thanksgiving (2026-11-27, close 13:00 New York): a position expiring that day is closed inside
the window before the early close (`close`) or flagged once and left to settle (`flag`)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from gnosisd.bus.events import ChainSnapshot, LegFill, OrderFilled, OrderLeg, SubmitOrder
from gnosisd.core.calendar import TradingCalendar
from gnosisd.core.clock import NEW_YORK, datetime_to_ns
from gnosisd.core.enums import OptionType, PositionEffect, Side
from gnosisd.core.occ import parse_occ
from gnosisd.runtime.daemon import Daemon, RunOptions, RunSummary, sim_clock_for
from gnosisd.runtime.logging import configure_logging, shutdown_logging
from tests.e2e.conftest import log_lines, make_settings

DAY = date(2026, 11, 27)
WINDOW_START = datetime_to_ns(datetime(2026, 11, 27, 12, 30, tzinfo=NEW_YORK))
EARLY_CLOSE = datetime_to_ns(datetime(2026, 11, 27, 13, 0, tzinfo=NEW_YORK))


class WithExpiringSpread(Daemon):
    """Books a 1-lot call spread expiring today (no exit rules) on the session's first chain."""

    injected = False

    async def _positions_on_chain(self, event: object) -> None:
        assert isinstance(event, ChainSnapshot)
        if not self.injected:
            self.injected = True
            self._inject(event)
        await super()._positions_on_chain(event)

    def _inject(self, chain: ChainSnapshot) -> None:
        today = [
            i
            for i, s in enumerate(chain.symbols)
            if chain.is_call[i] and chain.expiries[chain.expiry_idx[i]] == DAY
        ]
        today.sort(key=lambda i: abs(float(chain.strike[i]) - chain.spot))
        near = sorted(today[:4], key=lambda i: float(chain.strike[i]))
        buy, sell = near[0], near[-1]
        legs = []
        fills = []
        for i, side in ((buy, Side.BUY), (sell, Side.SELL)):
            c = parse_occ(chain.symbols[i])
            legs.append(OrderLeg(c.symbol, side, 1, OptionType.CALL, c.strike, c.expiry))
            fills.append(LegFill(c.symbol, side, 1, Decimal(repr(float(chain.mid[i])))))
        net = fills[0].price - fills[1].price
        intent = SubmitOrder(
            intent_id="pin-1",
            underlying="SPY",
            ts_ns=chain.ts_ns,
            effect=PositionEffect.OPEN,
            legs=tuple(legs),
            quantity=1,
            limit_price=net,
            strategy_type="call_debit_spread",
        )
        fill = OrderFilled(
            order_id="sim-pin-1",
            intent_id="pin-1",
            underlying="SPY",
            ts_ns=chain.ts_ns,
            effect=PositionEffect.OPEN,
            quantity=1,
            net_price=net,
            commission=Decimal(0),
            legs=tuple(fills),
            position_id="pin-1",
        )
        self.ledger.apply_fill(fill, intent, None)  # no exit rules: only pin risk closes it


async def _run(tmp_path: Path, policy: str) -> tuple[RunSummary, list[dict[str, Any]]]:
    settings = make_settings(
        tmp_path,
        expiry={"policy": policy},
        trade_agent={"max_ideas_per_decision": 0},  # only the injected position
    )
    calendar = TradingCalendar()
    options = RunOptions(symbols=["SPY"], sessions=[calendar.session(DAY)], handle_signals=False)
    clock = sim_clock_for(options)
    configure_logging("INFO", settings.runtime.logs_dir, clock, console=False)
    try:
        summary = await WithExpiringSpread(settings, options, calendar, clock).run()
    finally:
        shutdown_logging()
    return summary, log_lines(settings.runtime.logs_dir, "audit")


def _ns(line: dict[str, Any]) -> int:
    return datetime_to_ns(datetime.fromisoformat(line["timestamp"].replace("Z", "+00:00")))


async def test_close_policy_closes_before_the_early_close(tmp_path: Path) -> None:
    summary, audit = await _run(tmp_path, "close")
    assert summary.closes["expiry"] == 1
    assert summary.closes["expired"] == 0 and summary.open_positions == 0
    (intent,) = [x for x in audit if x["event"] == "order intent" and x["exit_reason"] == "expiry"]
    assert WINDOW_START <= _ns(intent) < EARLY_CLOSE
    assert not [x for x in audit if x["event"] == "pin risk"]


async def test_flag_policy_flags_once_and_the_position_settles_at_the_close(
    tmp_path: Path,
) -> None:
    summary, audit = await _run(tmp_path, "flag")
    assert summary.closes["expiry"] == 0
    assert summary.closes["expired"] == 1
    (flag,) = [x for x in audit if x["event"] == "pin risk"]
    assert flag["level"] == "warning"
    assert flag["position_id"] == "pin-1" and flag["day"] == DAY.isoformat()
    assert WINDOW_START <= _ns(flag) < EARLY_CLOSE
    assert 0 < flag["minutes_to_close"] <= 30
