"""Trade agent (sync core): MarketContext + listed chain -> ranked, sized, defined-risk ideas.

Routing (context -> candidate strategies); below `min_confidence` there are no ideas at all:

| direction | regime / iv_rank                             | candidates                         |
|-----------|----------------------------------------------|------------------------------------|
| bullish   | any (vol_expansion also adds a straddle)     | long call, call debit spread       |
| bearish   | any (vol_expansion also adds a straddle)     | long put, put debit spread         |
| neutral   | vol_expansion                                | straddle, strangle                 |
| neutral   | iv_rank < 0.30 (premium cheap)               | straddle, strangle                 |
| neutral   | iv_rank >= 0.30 or unknown (premium rich)    | iron condor                        |

Pricing (agents/pricing.py): each leg's per-share price is its quote mid moved against us by
execution.slippage_pct, to the cent (buys up, sells down); the net price Σ ratio × leg price is the
order's limit and the exact figure the risk guard recomputes from the order's legs and limit.
Max profit / loss and breakevens come from quant.payoff.risk_profile at that net; only
defined-risk structures (max_loss not None, < 0) become ideas.

Sizing: the largest whole number of contracts with |max_loss| × 100 × qty <= max_trade_risk_pct ×
equity (commissions are not included). An idea that cannot afford one contract is omitted (its
reason is kept in `TradeAgent.last_rejections`), so every returned idea has quantity >= 1.

Score (simple expected-value proxy, higher is better):
    score = confidence × POP × reward / |max_loss| × iv_factor
POP is the probability that the expiry payoff is positive with S_T lognormal at the legs' mean
implied vol and risk-neutral drift r - q (Hull, OFOD 11e, eq. 15.3: P(S_T > K) = N(d2)).
reward is the best expiry payoff per share for S_T within one expected move of spot
(context.expected_move, else spot × iv × sqrt(T)): the max profit when it is reachable within that
band, otherwise what a 1-s.d. move pays (an unbounded or far-away max profit is not credited).
iv_factor rewards selling rich premium and buying cheap premium: 0.5 + iv_rank for the iron
condor, 1.5 - iv_rank for straddles and strangles, 1 otherwise (an unknown iv_rank counts as 0.5).
Ideas are ranked by score (rank 1 first) and the list is cut to `max_ideas_per_decision`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from decimal import Decimal

from gnosisd.agents.exits import exit_rules_for_strategy
from gnosisd.agents.pricing import leg_limit_price
from gnosisd.agents.strategies import BUILDERS, LegPicker, Structure, choose_expiry
from gnosisd.bus.events import ChainSnapshot, OrderLeg, SubmitOrder
from gnosisd.bus.records import LegRecord, MarketContext, TradeIdea
from gnosisd.core.clock import NEW_YORK, ns_to_datetime
from gnosisd.core.config import LiquidityConfig, TradeAgentConfig
from gnosisd.core.enums import Direction, PositionEffect, Regime, Side, StrategyType
from gnosisd.core.money import CENT, CONTRACT_MULTIPLIER, to_price
from gnosisd.core.occ import parse_occ
from gnosisd.quant.payoff import PayoffLeg, RiskProfile, payoff_at, risk_profile

LOW_IV_RANK = 0.30
_MULT = Decimal(CONTRACT_MULTIPLIER)
_CREDIT_STRATEGIES = frozenset({StrategyType.IRON_CONDOR})
_SELL_PREMIUM = frozenset({StrategyType.IRON_CONDOR})
_BUY_PREMIUM = frozenset({StrategyType.STRADDLE, StrategyType.STRANGLE})


def route(context: MarketContext) -> list[StrategyType]:
    """Candidate strategies for a context (the table in the module docstring)."""
    vol_exp = context.regime is Regime.VOL_EXPANSION
    if context.direction is Direction.BULLISH:
        out = [StrategyType.LONG_CALL, StrategyType.CALL_DEBIT_SPREAD]
        return [*out, StrategyType.STRADDLE] if vol_exp else out
    if context.direction is Direction.BEARISH:
        out = [StrategyType.LONG_PUT, StrategyType.PUT_DEBIT_SPREAD]
        return [*out, StrategyType.STRADDLE] if vol_exp else out
    cheap = context.iv_rank is not None and context.iv_rank < LOW_IV_RANK
    if vol_exp or cheap:
        return [StrategyType.STRADDLE, StrategyType.STRANGLE]
    return [StrategyType.IRON_CONDOR]


def _norm_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def best_payoff_within(legs: Sequence[PayoffLeg], net: Decimal, lo: float, hi: float) -> float:
    """Best expiry P&L per share for S_T in [lo, hi]: at the band's ends or a strike inside it."""
    lo = max(lo, 0.0)
    points = {Decimal(repr(lo)), Decimal(repr(hi))}
    points |= {leg.strike for leg in legs if lo <= leg.strike <= hi}
    return max(float(payoff_at(legs, net, s)) for s in points)


def prob_above(spot: float, level: float, t: float, r: float, q: float, sigma: float) -> float:
    """P(S_T > level) under a lognormal S_T with drift r - q (Hull eq. 15.3: N(d2))."""
    if level <= 0:
        return 1.0
    d2 = (math.log(spot / level) + (r - q - 0.5 * sigma**2) * t) / (sigma * math.sqrt(t))
    return _norm_cdf(d2)


def prob_of_profit(
    legs: Sequence[PayoffLeg],
    net: Decimal,
    profile: RiskProfile,
    spot: float,
    t: float,
    r: float,
    q: float,
    sigma: float,
) -> float:
    """Probability that the expiry payoff is > 0, summing lognormal mass between breakevens."""
    cuts = sorted(float(b) for b in profile.breakevens)
    edges = [0.0, *cuts, math.inf]
    total = 0.0
    for lo, hi in itertools.pairwise(edges):
        probe = lo * 2.0 + 1.0 if math.isinf(hi) else (lo + hi) / 2.0
        if payoff_at(legs, net, Decimal(repr(probe))) > 0:
            total += prob_above(spot, lo, t, r, q, sigma) - (
                0.0 if math.isinf(hi) else prob_above(spot, hi, t, r, q, sigma)
            )
    return min(max(total, 0.0), 1.0)


class TradeAgent:
    """Turn a MarketContext and the live chain into ranked TradeIdeas, and ideas into intents."""

    def __init__(
        self,
        cfg: TradeAgentConfig,
        liq: LiquidityConfig,
        max_trade_risk_pct: float,
        slippage_pct: float = 0.0,
    ) -> None:
        self.cfg = cfg
        self.liq = liq
        self.slippage_pct = Decimal(repr(slippage_pct))
        self.max_trade_risk_pct = Decimal(repr(max_trade_risk_pct))
        self.last_rejections: list[tuple[StrategyType, str]] = []

    def propose(
        self, context: MarketContext, chain: ChainSnapshot, equity: Decimal, ts_ns: int
    ) -> list[TradeIdea]:
        """Ranked (best first) sized ideas for `context`; [] below min_confidence or without fit."""
        if context.symbol != chain.underlying:
            raise ValueError(
                f"context is for {context.symbol} but the chain is for {chain.underlying}"
            )
        self.last_rejections = []
        if context.confidence < self.cfg.min_confidence:
            return []
        today = ns_to_datetime(ts_ns).astimezone(NEW_YORK).date()
        e_idx = choose_expiry(chain, today, self.cfg.target_dte, self.cfg.min_dte)
        if e_idx is None:
            self.last_rejections = [(s, "no expiry with dte >= min_dte") for s in route(context)]
            return []
        picker = LegPicker(chain, self.liq, e_idx)
        ideas: list[TradeIdea] = []
        for strategy in route(context):
            structure = BUILDERS[strategy](picker, self.cfg)
            if structure is None:
                self.last_rejections.append((strategy, "no liquid listed legs"))
                continue
            idea = self._idea(structure, context, chain, equity, ts_ns)
            if isinstance(idea, str):
                self.last_rejections.append((strategy, idea))
            else:
                ideas.append(idea)
        ideas.sort(key=lambda i: (-i.score, i.strategy_type.value))
        ideas = ideas[: self.cfg.max_ideas_per_decision]
        return [i.model_copy(update={"rank": n}) for n, i in enumerate(ideas, start=1)]

    def _idea(
        self,
        structure: Structure,
        context: MarketContext,
        chain: ChainSnapshot,
        equity: Decimal,
        ts_ns: int,
    ) -> TradeIdea | str:
        """Price, risk, size and score one structure; a string says why it was dropped."""
        strategy = structure.strategy
        mids = chain.mid
        legs: list[PayoffLeg] = []
        leg_mids: list[Decimal] = []
        for row, ratio in structure.legs:
            contract = parse_occ(chain.symbols[row])
            legs.append(PayoffLeg(bool(chain.is_call[row]), contract.strike, ratio))
            mid = to_price(float(mids[row]), 4)
            leg_mids.append(leg_limit_price(mid, ratio > 0, self.slippage_pct))
        net = sum((r * m for (_, r), m in zip(structure.legs, leg_mids, strict=True)), Decimal(0))
        is_credit = strategy in _CREDIT_STRATEGIES
        if (is_credit and net >= 0) or (not is_credit and net <= 0):
            return f"net price {net} has the wrong sign for a {strategy.value}"
        profile = risk_profile(legs, net)
        if profile.max_loss is None:
            return "undefined risk"
        if profile.max_loss >= 0:
            return "no risk at the quoted mids (crossed or stale quotes)"
        per_contract = -profile.max_loss * _MULT
        cap = self.max_trade_risk_pct * equity
        qty = int(cap // per_contract) if cap > 0 else 0
        if qty < 1:
            return f"one contract risks {per_contract} > cap {cap.quantize(CENT)}"

        score = self._score(structure, legs, net, profile, float(-profile.max_loss), context, chain)
        leg_records = [
            LegRecord(
                symbol=chain.symbols[row],
                side=Side.BUY if ratio > 0 else Side.SELL,
                option_type=chain.option_type(row),
                strike=leg.strike,
                expiry=chain.expiry(row),
                quantity=abs(ratio) * qty,
                ratio=abs(ratio),
                price=float(mid),
            )
            for (row, ratio), leg, mid in zip(structure.legs, legs, leg_mids, strict=True)
        ]
        scale = _MULT * qty
        return TradeIdea(
            id=f"{context.symbol}-{ts_ns}-{strategy.value}",
            symbol=context.symbol,
            as_of=ns_to_datetime(ts_ns),
            strategy_type=strategy,
            direction=context.direction,
            confidence=context.confidence,
            quantity=qty,
            legs=leg_records,
            net_price=float(net),
            max_profit=None if profile.max_profit is None else float(profile.max_profit * scale),
            max_loss=float(profile.max_loss * scale),
            breakevens=[float(b) for b in profile.breakevens],
            exit_rules=exit_rules_for_strategy(strategy, context.confidence),
            score=score,
            iv_rank=context.iv_rank,
            regime=context.regime,
        )

    def _score(
        self,
        structure: Structure,
        legs: Sequence[PayoffLeg],
        net: Decimal,
        profile: RiskProfile,
        risk: float,
        context: MarketContext,
        chain: ChainSnapshot,
    ) -> float:
        """Score as documented in the module docstring (risk = |max loss| per share)."""
        rows = [row for row, _ in structure.legs]
        t = float(chain.t_years[rows[0]])
        ivs = [float(chain.iv[i]) for i in rows if math.isfinite(chain.iv[i]) and chain.iv[i] > 0]
        sigma = sum(ivs) / len(ivs) if ivs else (context.atm_iv or 0.0)
        spot = chain.spot
        if sigma > 0 and t > 0:
            pop = prob_of_profit(legs, net, profile, spot, t, chain.rate, chain.div_yield, sigma)
        else:
            pop = 0.5
        em = context.expected_move or spot * sigma * math.sqrt(max(t, 0.0))
        reward = max(best_payoff_within(legs, net, spot - em, spot + em), 0.0)
        iv_rank = 0.5 if context.iv_rank is None else context.iv_rank
        if structure.strategy in _SELL_PREMIUM:
            iv_factor = 0.5 + iv_rank
        elif structure.strategy in _BUY_PREMIUM:
            iv_factor = 1.5 - iv_rank
        else:
            iv_factor = 1.0
        return round(context.confidence * pop * reward / risk * iv_factor, 6)

    def to_intent(self, idea: TradeIdea, ts_ns: int) -> SubmitOrder:
        """The opening order for an idea: one multi-leg order at the idea's net limit price."""
        if idea.quantity < 1:
            raise ValueError(f"idea {idea.id} has quantity {idea.quantity}; nothing to order")
        legs = tuple(
            OrderLeg(
                symbol=leg.symbol,
                side=leg.side,
                ratio=leg.ratio,
                option_type=leg.option_type,
                strike=leg.strike,
                expiry=leg.expiry,
            )
            for leg in idea.legs
        )
        return SubmitOrder(
            intent_id=f"open-{idea.id}",
            underlying=idea.symbol,
            ts_ns=ts_ns,
            effect=PositionEffect.OPEN,
            legs=legs,
            quantity=idea.quantity,
            limit_price=Decimal(repr(idea.net_price)).quantize(CENT),
            idea_id=idea.id,
            strategy_type=idea.strategy_type.value,
        )
