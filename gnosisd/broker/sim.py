"""Simulated broker: fills a whole multi-leg order at once at mid moved against us by slippage.

Each leg fills at mid × (1 + s) when bought and mid × (1 − s) when sold (s = slippage_pct), so the
net moves against us by s × Σ ratio × leg mid. An order whose fill is worse than its limit is
canceled ("limit not marketable"): the sim is immediate-or-cancel and never rests orders.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from gnosisd.broker.base import BrokerEvent, order_id_for
from gnosisd.broker.ledger import Ledger, chain_mid
from gnosisd.bus.events import ChainSnapshot, LegFill, OrderFilled, OrderUpdated, SubmitOrder
from gnosisd.core.config import ExecutionConfig
from gnosisd.core.enums import OptionType, OrderStatus, PositionEffect, Side
from gnosisd.core.money import CONTRACT_MULTIPLIER, ZERO, to_money, to_price
from gnosisd.quant.payoff import PayoffLeg, risk_profile

M = CONTRACT_MULTIPLIER


@dataclass(frozen=True, slots=True)
class FillQuote:
    """What the order would fill at now: net mid, net fill (per share, signed) and leg fills."""

    net_mid: Decimal
    net_fill: Decimal
    legs: tuple[LegFill, ...]


def quote_fill(intent: SubmitOrder, chain: ChainSnapshot, slippage_pct: Decimal) -> FillQuote | str:
    """Price an intent against the chain; return a reason string if a leg cannot be priced."""
    net_mid = ZERO
    net_fill = ZERO
    fills: list[LegFill] = []
    for leg in intent.legs:
        try:
            chain.row(leg.symbol)
        except KeyError:
            return f"leg {leg.symbol} is not in the {chain.underlying} chain"
        mid = chain_mid(chain, leg.symbol)
        if mid is None:
            return f"leg {leg.symbol} has no usable quote"
        sign = 1 if leg.side is Side.BUY else -1
        # Leg prices carry 4 decimals; the sim does not enforce the 0.01/0.05 tick.
        price = to_price(mid * (1 + sign * slippage_pct))
        net_mid += sign * leg.ratio * mid
        net_fill += sign * leg.ratio * price
        fills.append(
            LegFill(
                symbol=leg.symbol, side=leg.side, quantity=leg.ratio * intent.quantity, price=price
            )
        )
    return FillQuote(net_mid=net_mid, net_fill=net_fill, legs=tuple(fills))


def funds_needed(intent: SubmitOrder, net_fill: Decimal, commission: Decimal) -> Decimal | None:
    """Cash an OPEN needs: max(debit paid, |max loss at the fill|) + commission.

    For a credit structure |max loss| is already net of the credit (width − credit), so it is the
    collateral the ledger holds back. None if the structure has undefined risk.
    """
    legs = [
        PayoffLeg(
            is_call=lg.option_type is OptionType.CALL,
            strike=lg.strike,
            ratio=lg.ratio if lg.side is Side.BUY else -lg.ratio,
        )
        for lg in intent.legs
    ]
    loss = risk_profile(legs, net_fill).max_loss
    if loss is None:
        return None
    scale = M * intent.quantity
    return max(net_fill * scale, -loss * scale) + commission


class SimBroker:
    """Fills approved intents against the latest chain and books them in its ledger."""

    def __init__(self, exec_cfg: ExecutionConfig, ledger: Ledger) -> None:
        self._slippage = Decimal(repr(exec_cfg.slippage_pct))
        self._commission = Decimal(repr(exec_cfg.commission_per_contract))
        self._ledger = ledger
        self._seen: set[str] = set()

    @property
    def is_live(self) -> bool:
        return False

    @property
    def ledger(self) -> Ledger:
        return self._ledger

    def commission_for(self, intent: SubmitOrder) -> Decimal:
        """commission_per_contract × contracts, contracts = Σ ratio × quantity over the legs."""
        contracts = sum(leg.ratio for leg in intent.legs) * intent.quantity
        return to_money(self._commission * contracts)

    def submit(self, intent: SubmitOrder, chain: ChainSnapshot, ts_ns: int) -> list[BrokerEvent]:
        """Place one intent as one multi-leg order: ACCEPTED then FILLED, or REJECTED/CANCELED."""
        order_id = order_id_for(intent.intent_id, "sim")

        def update(status: OrderStatus, message: str = "") -> OrderUpdated:
            return OrderUpdated(
                order_id=order_id,
                intent_id=intent.intent_id,
                underlying=intent.underlying,
                ts_ns=ts_ns,
                status=status,
                message=message,
            )

        if order_id in self._seen:
            return [update(OrderStatus.REJECTED, f"duplicate order {order_id}")]
        self._seen.add(order_id)
        problem = self._problem(intent, chain)
        if problem is not None:
            return [update(OrderStatus.REJECTED, problem)]
        quote = quote_fill(intent, chain, self._slippage)
        if isinstance(quote, str):
            return [update(OrderStatus.REJECTED, quote)]
        commission = self.commission_for(intent)
        if intent.effect is PositionEffect.OPEN:
            need = funds_needed(intent, quote.net_fill, commission)
            if need is None:
                return [update(OrderStatus.REJECTED, "undefined risk: the sim broker refuses it")]
            have = self._ledger.buying_power()
            if need > have:
                return [
                    update(
                        OrderStatus.REJECTED,
                        f"Insufficient funds: need ${need:,.2f}, have ${have:,.2f}",
                    )
                ]
        accepted = update(OrderStatus.ACCEPTED)
        if quote.net_fill > intent.limit_price:
            return [
                accepted,
                update(
                    OrderStatus.CANCELED,
                    f"limit not marketable: fill {quote.net_fill} is "
                    f"worse than limit {intent.limit_price}",
                ),
            ]
        fill = OrderFilled(
            order_id=order_id,
            intent_id=intent.intent_id,
            underlying=intent.underlying,
            ts_ns=ts_ns,
            effect=intent.effect,
            quantity=intent.quantity,
            net_price=quote.net_fill,
            commission=commission,
            legs=quote.legs,
            position_id=intent.position_id or intent.intent_id,
            exit_reason=intent.exit_reason,
            slippage=to_money((quote.net_fill - quote.net_mid) * M * intent.quantity),
        )
        self._ledger.apply_fill(fill, intent)
        return [accepted, fill]

    def _problem(self, intent: SubmitOrder, chain: ChainSnapshot) -> str | None:
        if not intent.legs:
            return "order has no legs"
        if intent.quantity <= 0:
            return f"quantity is {intent.quantity}"
        if not intent.limit_price.is_finite():
            return f"limit price {intent.limit_price} is not finite"
        if chain.underlying != intent.underlying:
            return f"chain is for {chain.underlying}, order is for {intent.underlying}"
        if intent.effect is PositionEffect.CLOSE:
            return self._ledger.close_problem(intent)
        pid = intent.position_id or intent.intent_id
        if self._ledger.position(pid) is not None:
            return f"position {pid} is already open"
        return None
