"""Order validation and max-loss recomputation."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

from gnosisd.bus.events import SubmitOrder
from gnosisd.core.enums import OptionType, RiskReason, Side
from gnosisd.core.occ import occ_symbol
from gnosisd.risk.limits import assess_order
from tests.unit.risk.fakes import EXPIRY, leg, put_credit_spread

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


def _calendar(front_k: int, back_k: int, limit: str, back_side: Side = Side.BUY) -> SubmitOrder:
    back = EXPIRY + timedelta(days=28)
    far = replace(
        leg(back_side, OptionType.CALL, back_k),
        symbol=occ_symbol("SPY", back, OptionType.CALL, Decimal(back_k)),
        expiry=back,
    )
    front_side = Side.SELL if back_side is Side.BUY else Side.BUY
    return replace(
        put_credit_spread(quantity=2, limit=limit),
        legs=(leg(front_side, OptionType.CALL, front_k), far),
        strategy_type="call_calendar",
    )


def test_multi_expiry_max_loss_comes_from_the_shared_front_expiry_bound() -> None:
    assert assess_order(_calendar(450, 450, "3.10")).max_loss == Decimal("-620")
    assert assess_order(_calendar(450, 440, "12.00")).max_loss == Decimal("-2400")  # diagonal
    assert assess_order(_calendar(440, 450, "1.00")).max_loss == Decimal("-2200")  # inverted


def test_a_short_back_month_is_valued_at_its_upper_bound() -> None:
    # Long front 450 call, short back 450 call for a 3.00 credit: the back call may be worth S.
    r = assess_order(_calendar(450, 450, "-3.00", back_side=Side.SELL))
    assert r.max_loss == Decimal("-89400")  # (3 − 450) × 100 × 2
