"""Closing orders against the position they close: a close must exactly reverse (part of) it."""

from __future__ import annotations

from gnosisd.bus.events import SubmitOrder
from gnosisd.core.enums import RiskReason
from gnosisd.core.views import PortfolioView
from gnosisd.risk.limits import OrderFacts


def close_mismatch(
    intent: SubmitOrder, facts: OrderFacts, portfolio: PortfolioView
) -> tuple[RiskReason, str] | None:
    """Why a closing order does not close an open position (None if it does).

    Closes skip the limits because they reduce risk; one that does not exactly reverse (part of)
    an open position (its symbols and signed ratios, at most the quantity held) would open new
    risk at the broker instead.
    """
    pid = intent.position_id
    for position in portfolio.positions():
        if position.position_id == pid:
            break
    else:
        return RiskReason.CLOSE_MISMATCH, (
            f"closing order for position {pid}, which is not open: a close must reverse "
            "an open position"
        )
    if intent.quantity > position.quantity:
        return RiskReason.CLOSE_MISMATCH, (
            f"closing {intent.quantity} of position {pid}, which holds {position.quantity}"
        )
    want = {leg.symbol: -leg.ratio for leg in position.legs}
    got = {symbol: (ratio if bought else -ratio) for symbol, bought, ratio in facts.legs}
    if want != got:
        return (
            RiskReason.CLOSE_MISMATCH,
            f"legs do not reverse position {pid}: need {want}, got {got}",
        )
    return None
