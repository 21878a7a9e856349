"""Trade agent (sync core): MarketContext + listed chain -> ranked, sized, defined-risk ideas.

route (agents/routing.py) -> build from listed liquid legs (agents/strategies.py) -> price each leg
at its mid moved against us by the slippage allowance, to the cent (agents/pricing.py) -> exact risk
profile (quant/profile.py, the function the risk guard also calls) -> score (agents/scoring.py) ->
rank -> size by Kelly within the per-trade and portfolio caps (agents/sizing.py). docs/strategies.md
describes every step and its configuration keys.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import numpy as np

from gnosisd.agents.exits import exit_rules_for_strategy
from gnosisd.agents.pricing import leg_limit_price
from gnosisd.agents.routing import LONG_PREMIUM, route, vol_view
from gnosisd.agents.scoring import ScoreParts, atm_iv, atm_row, fit, liquidity, view_distribution
from gnosisd.agents.selection import LegPicker, choose_back_expiry, choose_expiry
from gnosisd.agents.sizing import KellyOverrides, Sizing, kelly_fraction, open_risk, size
from gnosisd.agents.strategies import BUILDERS, CREDIT, EITHER_SIGN, MULTI_EXPIRY, Structure
from gnosisd.bus.events import ChainSnapshot, OrderLeg, SubmitOrder
from gnosisd.bus.records import LegRecord, MarketContext, PnlCone, TradeIdea
from gnosisd.core.clock import NEW_YORK, ns_to_datetime
from gnosisd.core.config import LiquidityConfig, TradeAgentConfig
from gnosisd.core.enums import PositionEffect, Side, StrategyType
from gnosisd.core.money import CENT, CONTRACT_MULTIPLIER, ZERO, to_price
from gnosisd.core.occ import parse_occ
from gnosisd.core.views import Position
from gnosisd.quant.profile import ExpiryLeg, Lognormal, Model, StructureProfile, analyse, pnl_cone

_MULT = Decimal(CONTRACT_MULTIPLIER)
CONE_SDS = (-2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0)  # spot grid, s.d. to the horizon
CONE_IV_SHIFTS = (-0.05, 0.0, 0.05)  # absolute vol added to every leg


@dataclass(frozen=True, slots=True)
class Candidate:
    """One priced, profiled and scored structure (before sizing)."""

    structure: Structure
    legs: tuple[ExpiryLeg, ...]
    leg_prices: tuple[Decimal, ...]  # per-share limit price of each leg (>= 0)
    net: Decimal  # Σ ratio × leg price: > 0 debit, < 0 credit
    profile: StructureProfile
    model: Model
    market: Lognormal
    kelly: float
    parts: ScoreParts
    score: float

    @property
    def per_contract_risk(self) -> Decimal:
        return -self.profile.max_loss * _MULT


class TradeAgent:
    """Turn a MarketContext and the live chain into ranked TradeIdeas, and ideas into intents.

    `kelly_overrides` maps (strategy, regime) to a Kelly fraction refined from backtests (the
    optimiser); it replaces the fraction computed from the idea's profile before the clamp.
    """

    def __init__(
        self,
        cfg: TradeAgentConfig,
        liq: LiquidityConfig,
        max_trade_risk_pct: float,
        slippage_pct: float = 0.0,
        *,
        kelly_overrides: KellyOverrides | None = None,
    ) -> None:
        self.cfg = cfg
        self.liq = liq
        self.slippage_pct = Decimal(repr(slippage_pct))
        self.max_trade_risk_pct = Decimal(repr(max_trade_risk_pct))
        self.kelly_overrides: KellyOverrides = dict(kelly_overrides or {})
        self.last_rejections: list[tuple[StrategyType, str]] = []
        self.last_candidates: list[Candidate] = []

    # ------------------------------------------------------------------ the pipeline
    def propose(
        self,
        context: MarketContext,
        chain: ChainSnapshot,
        equity: Decimal,
        ts_ns: int,
        open_positions: Sequence[Position] | None = None,
    ) -> list[TradeIdea]:
        """Ranked (best first) sized ideas for `context`; [] below min_confidence or without fit.

        `open_positions` (every symbol) enables the portfolio cap: the ideas' max losses plus the
        open positions' stay within max_portfolio_risk_pct × equity.
        """
        candidates = self.candidates(context, chain, ts_ns)
        room: Decimal | None = None
        if open_positions is not None:
            cap = Decimal(repr(self.cfg.max_portfolio_risk_pct)) * equity
            room = cap - open_risk(open_positions)
        ideas: list[TradeIdea] = []
        for cand in candidates:
            if len(ideas) >= self.cfg.max_ideas_per_decision:
                break
            sizing = self.size(cand, context, equity, room)
            if sizing.quantity < 1:
                self.last_rejections.append(
                    (cand.structure.strategy, self._why_unsized(cand, sizing))
                )
                continue
            idea = self._idea(cand, sizing, context, chain, ts_ns, rank=len(ideas) + 1)
            ideas.append(idea)
            if room is not None:
                room -= cand.per_contract_risk * sizing.quantity
        return ideas

    def candidates(
        self, context: MarketContext, chain: ChainSnapshot, ts_ns: int
    ) -> list[Candidate]:
        """Every routed structure that could be built, priced and profiled, ranked by score."""
        if context.symbol != chain.underlying:
            raise ValueError(
                f"context is for {context.symbol} but the chain is for {chain.underlying}"
            )
        self.last_rejections = []
        self.last_candidates = []
        strategies = route(context, self.cfg)
        if not strategies:
            return []
        today = ns_to_datetime(ts_ns).astimezone(NEW_YORK).date()
        front = choose_expiry(chain, today, self.cfg.target_dte, self.cfg.min_dte)
        if front is None:
            self.last_rejections = [(s, "no expiry with dte >= min_dte") for s in strategies]
            return []
        back = None
        if any(s in MULTI_EXPIRY for s in strategies):
            back = choose_back_expiry(chain, front, self.cfg.calendar_gap_days)
        picker = LegPicker(chain, self.liq, front, back)
        sigma = atm_iv(chain, front) or context.atm_iv
        if sigma is None or not math.isfinite(sigma) or sigma <= 0:
            self.last_rejections = [(s, "no usable implied vol in the chain") for s in strategies]
            return []
        view = vol_view(context, self.cfg)
        atm = atm_row(chain, front)
        atm_vega = float(chain.vega[atm]) if atm is not None else 0.0
        out: list[Candidate] = []
        for strategy in strategies:
            structure = BUILDERS[strategy](picker, self.cfg, context.direction)
            if structure is None:
                why = "no back-month expiry" if strategy in MULTI_EXPIRY and back is None else ""
                self.last_rejections.append((strategy, why or "no liquid listed legs"))
                continue
            cand = self._evaluate(structure, picker, context, sigma, atm_vega, view, today)
            if isinstance(cand, str):
                self.last_rejections.append((strategy, cand))
            else:
                out.append(cand)
        out.sort(key=lambda c: (-c.score, c.structure.strategy.value))
        self.last_candidates = out
        return out

    def _evaluate(
        self,
        structure: Structure,
        picker: LegPicker,
        context: MarketContext,
        sigma: float,
        atm_vega: float,
        vview: int,
        today: date,
    ) -> Candidate | str:
        """Price and profile one structure; a string says why it was dropped."""
        chain = picker.chain
        strategy = structure.strategy
        legs: list[ExpiryLeg] = []
        prices: list[Decimal] = []
        for row, ratio in structure.legs:
            contract = parse_occ(chain.symbols[row])
            legs.append(
                ExpiryLeg(bool(chain.is_call[row]), contract.strike, ratio, contract.expiry)
            )
            mid = (float(chain.bid[row]) + float(chain.ask[row])) / 2.0
            prices.append(leg_limit_price(to_price(mid, 4), ratio > 0, self.slippage_pct))
        net = sum((lg.ratio * p for lg, p in zip(legs, prices, strict=True)), ZERO)
        if strategy in CREDIT and net >= 0:
            return f"net price {net} is not a credit for a {strategy.value}"
        if strategy not in CREDIT | EITHER_SIGN and net <= 0:
            return f"net price {net} is not a debit for a {strategy.value}"
        rows = [row for row, _ in structure.legs]
        ivs = [float(chain.iv[r]) for r in rows]
        model = Model(
            spot=chain.spot,
            rate=chain.rate,
            div_yield=chain.div_yield,
            t_years=tuple(float(chain.t_years[r]) for r in rows),
            sigma=tuple(v if math.isfinite(v) and v > 0 else sigma for v in ivs),
        )
        t = model.horizon
        if t <= 0:
            return "the front expiry has passed"
        market = Lognormal.implied(chain.spot, chain.rate, chain.div_yield, sigma, t)
        view = view_distribution(context, chain, sigma, t, self.cfg, vview)
        scale = 1.0 + vview * self.cfg.vol_view
        profile = analyse(legs, net, model, market, view, view_iv_scale=scale)
        if profile is None:
            return "undefined risk"
        if profile.max_loss >= 0:
            return "no risk at the quoted prices (crossed or stale quotes)"
        if strategy in LONG_PREMIUM and context.expected_move is not None:
            dte = max((min(lg.expiry for lg in legs) - today).days, 1)
            move = context.expected_move * math.sqrt(dte / 30.0)
            if float(net) > move:
                return f"debit {net} exceeds the expected move {move:.2f} to expiry"
        risk = float(-profile.max_loss)
        override = self.kelly_overrides.get((strategy, context.regime))
        if override is not None:
            kelly = float(override)
        else:
            kelly = kelly_fraction(profile.view.pop, profile.view.payoff_ratio)
        delta = sum(r * float(chain.delta[row]) for row, r in structure.legs)
        vega = sum(r * float(chain.vega[row]) for row, r in structure.legs)
        spreads = [float(picker.spreads[row]) for row in rows]
        parts = ScoreParts(
            ev_per_risk=profile.view.expected / risk,
            liquidity=liquidity(spreads, self.liq.max_spread_pct),
            fit=fit(
                delta if math.isfinite(delta) else 0.0,
                vega if math.isfinite(vega) else 0.0,
                atm_vega,
                context.direction,
                vview,
            ),
        )
        return Candidate(
            structure=structure,
            legs=tuple(legs),
            leg_prices=tuple(prices),
            net=net,
            profile=profile,
            model=model,
            market=market,
            kelly=kelly,
            parts=parts,
            score=parts.score(self.cfg),
        )

    def size(
        self, cand: Candidate, context: MarketContext, equity: Decimal, room: Decimal | None = None
    ) -> Sizing:
        """Whole contracts for a candidate (docs/strategies.md, "Sizing")."""
        return size(
            cand.per_contract_risk,
            cand.kelly,
            context.confidence,
            equity,
            self.max_trade_risk_pct,
            clamp=self.cfg.kelly_clamp,
            room=room,
        )

    @staticmethod
    def _why_unsized(cand: Candidate, s: Sizing) -> str:
        if s.fraction <= 0:
            return f"kelly fraction {s.kelly:.4f} <= 0: no edge under the view"
        budget = s.budget.quantize(CENT)
        return f"one contract risks {cand.per_contract_risk} > {s.limit} budget {budget}"

    # ------------------------------------------------------------------ records and orders
    def _idea(
        self,
        cand: Candidate,
        sizing: Sizing,
        context: MarketContext,
        chain: ChainSnapshot,
        ts_ns: int,
        rank: int,
    ) -> TradeIdea:
        strategy = cand.structure.strategy
        qty = sizing.quantity
        scale = _MULT * qty
        fscale = float(scale)
        prof = cand.profile
        leg_records = [
            LegRecord(
                symbol=chain.symbols[row],
                side=Side.BUY if ratio > 0 else Side.SELL,
                option_type=chain.option_type(row),
                strike=leg.strike,
                expiry=leg.expiry,
                quantity=abs(ratio) * qty,
                ratio=abs(ratio),
                price=float(price),
            )
            for (row, ratio), leg, price in zip(
                cand.structure.legs, cand.legs, cand.leg_prices, strict=True
            )
        ]
        return TradeIdea(
            id=f"{context.symbol}-{ts_ns}-{strategy.value}",
            symbol=context.symbol,
            as_of=ns_to_datetime(ts_ns),
            strategy_type=strategy,
            direction=context.direction,
            confidence=context.confidence,
            quantity=qty,
            legs=leg_records,
            net_price=float(cand.net),
            max_profit=None if prof.max_profit is None else round(prof.max_profit * fscale, 2),
            max_loss=float(prof.max_loss * scale),
            breakevens=list(prof.breakevens),
            exit_rules=exit_rules_for_strategy(
                strategy,
                context.confidence,
                target_scale=self.cfg.exit_profit_target_scale,
                stop_scale=self.cfg.exit_stop_scale,
            ),
            score=cand.score,
            iv_rank=context.iv_rank,
            regime=context.regime,
            rank=rank,
            horizon=min(leg.expiry for leg in cand.legs),
            pop=round(prof.market.pop, 6),
            expected_value=round(prof.market.expected * fscale, 2),
            kelly_fraction=round(sizing.fraction, 6),
            score_parts=cand.parts.as_dict(),
            pnl_cone=self.cone(cand, qty),
        )

    @staticmethod
    def cone(cand: Candidate, quantity: int) -> PnlCone:
        """P&L (dollars at `quantity`) at now, mid-life and the front expiry, spot ±2 s.d., IV ±5."""
        t = cand.profile.horizon
        sd = cand.market.sd
        spots = [round(cand.model.spot * math.exp(k * sd), 4) for k in CONE_SDS]
        times = [0.0, t / 2.0, t]
        grid = pnl_cone(cand.legs, float(cand.net), cand.model, spots, times, CONE_IV_SHIFTS)
        dollars = np.round(grid * CONTRACT_MULTIPLIER * quantity, 2)
        return PnlCone(
            spots=spots,
            days=[round(x * 365.0, 4) for x in times],
            iv_shifts=list(CONE_IV_SHIFTS),
            pnl=dollars.tolist(),
        )

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
