"""Order validation, max-loss recomputation and the trailing rate window."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from gnosisd.core.enums import OptionType, RiskReason, Side
from gnosisd.risk.limits import RateWindow, assess_order
from tests.unit.risk.fakes import leg, put_credit_spread

S = 1_000_000_000


def test_max_loss_is_per_share_loss_times_100_times_quantity() -> None:
    r = assess_order(put_credit_spread(quantity=4, limit="-1.25"))
    assert (r.reason, r.max_loss) == (RiskReason.APPROVED, Decimal("-1500"))  # 3.75 × 400


def test_max_loss_is_never_positive_for_an_arbitrage_price() -> None:
    # Receiving 6.00 for a 5-wide put spread cannot lose: max loss is clamped to 0.
    assert assess_order(put_credit_spread(limit="-6.00")).max_loss == Decimal("0")


def test_unbounded_structure_has_no_max_loss() -> None:
    naked = replace(put_credit_spread(), legs=(leg(Side.SELL, OptionType.CALL, 460),))
    assert assess_order(naked).max_loss is None


def test_rate_window_drops_orders_older_than_the_window() -> None:
    w = RateWindow(max_orders=2)
    w.record(0)
    w.record(30 * S)
    assert w.full(59 * S)
    assert w.count(60 * S) == 1  # the order at 0 is exactly 60 s old: out of the window
    assert not w.full(60 * S)
