"""Composer: readiness, direction and confidence weighting, regime, exit rules, NaN hygiene."""

from __future__ import annotations

import math
from datetime import UTC

import pytest

from gnosisd.agents.composer import Composer
from gnosisd.agents.exits import Family, exit_rules_for
from gnosisd.bus.events import EngineSnapshot
from gnosisd.bus.records import MarketContext
from gnosisd.core.clock import ns_to_datetime
from gnosisd.core.config import TradeAgentConfig, VolatilityConfig
from gnosisd.core.enums import Direction, Regime

TS = 1_741_617_000_000_000_000  # 2025-03-10 14:30 UTC


def snap(
    engine: str, flags: tuple[str, ...] = (), ts: int = TS, symbol: str = "SPY", **metrics: float
) -> EngineSnapshot:
    return EngineSnapshot(
        engine=engine, symbol=symbol, ts_ns=ts, metrics=dict(metrics), flags=flags
    )


def composer(min_confidence: float = 0.3, iv_rank_threshold: float = 0.7) -> Composer:
    return Composer(
        "SPY",
        TradeAgentConfig(min_confidence=min_confidence),
        VolatilityConfig(iv_rank_threshold=iv_rank_threshold),
    )


def vol(rank: float = 0.4, flags: tuple[str, ...] = ()) -> EngineSnapshot:
    return snap(
        "volatility",
        flags,
        realized_vol=0.15,
        atm_iv=0.18,
        iv_rank=rank,
        iv_percentile=0.45,
        expected_move=5.2,
        spot=500.5,
        term_slope=0.01,
    )


def hedge(gamma_flag: str = "positive_gamma", *extra: str) -> EngineSnapshot:
    gex = 2e6 if gamma_flag == "positive_gamma" else -2e6
    return snap(
        "hedge",
        (gamma_flag, *extra),
        ts=TS - 60_000_000_000,
        gex=gex,
        spot=500.0,
        gamma_flip=math.nan,
    )


def sentiment(score: float, momentum: float = 0.2) -> EngineSnapshot:
    flags = ("bullish",) if score >= 0.3 else ("bearish",) if score <= -0.3 else ()
    return snap("sentiment", flags, score=score, momentum=momentum)


def compose(c: Composer, *snaps: EngineSnapshot) -> MarketContext:
    for s in snaps:
        c.update(s)
    ctx = c.compose(TS)
    assert ctx is not None
    return ctx


def test_none_until_hedge_volatility_and_sentiment_have_reported() -> None:
    c = composer()
    c.update(hedge())
    c.update(snap("liquidity", score=0.9))
    c.update(vol())
    assert c.compose(TS) is None
    c.update(sentiment(0.1))
    assert c.compose(TS) is not None


def test_snapshots_of_other_symbols_are_ignored() -> None:
    c = composer()
    for s in (hedge(), vol(), sentiment(0.1)):
        c.update(EngineSnapshot(s.engine, "QQQ", s.ts_ns, s.metrics, s.flags))
    assert c.compose(TS) is None


def test_bullish_in_negative_gamma_gains_confidence_and_trends_up() -> None:
    ctx = compose(composer(), hedge("negative_gamma"), vol(), sentiment(0.6, momentum=0.7))
    assert ctx.direction is Direction.BULLISH
    assert ctx.confidence == pytest.approx(0.6 * 1.15)
    assert ctx.regime is Regime.TREND_UP
    assert ctx.exit_rules == exit_rules_for(Family.DIRECTIONAL, ctx.confidence)


def test_bearish_in_positive_gamma_loses_confidence_and_trends_down() -> None:
    ctx = compose(composer(), hedge("positive_gamma"), vol(), sentiment(-0.6, momentum=-0.8))
    assert ctx.direction is Direction.BEARISH
    assert ctx.confidence == pytest.approx(0.6 * 0.85)
    assert ctx.regime is Regime.TREND_DOWN


def test_weak_directional_view_damped_by_positive_gamma_becomes_neutral() -> None:
    # 0.32 × 0.85 = 0.272 < min_confidence 0.3 -> neutral, confidence (1 - 0.32) × 1.15
    ctx = compose(composer(min_confidence=0.3), hedge("positive_gamma"), vol(), sentiment(0.32))
    assert ctx.direction is Direction.NEUTRAL
    assert ctx.confidence == pytest.approx(0.68 * 1.15)
    assert ctx.regime is Regime.RANGE
    assert ctx.exit_rules == exit_rules_for(Family.INCOME, ctx.confidence)


def test_same_weak_view_survives_in_negative_gamma() -> None:
    ctx = compose(composer(min_confidence=0.3), hedge("negative_gamma"), vol(), sentiment(0.32))
    assert ctx.direction is Direction.BULLISH
    assert ctx.confidence == pytest.approx(0.32 * 1.15)


def test_thin_liquidity_cuts_confidence() -> None:
    base = compose(composer(), hedge("negative_gamma"), vol(), sentiment(0.8))
    thin = compose(
        composer(),
        hedge("negative_gamma"),
        vol(),
        sentiment(0.8),
        snap("liquidity", ("thin",), score=0.1),
    )
    assert thin.confidence == pytest.approx(base.confidence * 0.7)
    assert "thin" in thin.flags


def test_confidence_is_capped_at_one() -> None:
    ctx = compose(composer(), hedge("negative_gamma"), vol(), sentiment(1.0))
    assert ctx.confidence == 1.0


def test_high_iv_means_vol_expansion_with_volatility_exit_rules() -> None:
    ctx = compose(composer(), hedge(), vol(rank=0.9, flags=("high_iv",)), sentiment(0.1, 0.9))
    assert ctx.regime is Regime.VOL_EXPANSION
    assert ctx.exit_rules == exit_rules_for(Family.VOLATILITY, ctx.confidence)


def test_gamma_squeeze_alone_does_not_make_a_vol_regime_but_the_vol_engine_does() -> None:
    ctx = compose(composer(), hedge("negative_gamma", "gamma_squeeze"), vol(), sentiment(0.1))
    assert ctx.regime is Regime.RANGE
    assert "gamma_squeeze" in ctx.flags
    ctx = compose(composer(), hedge(), vol(flags=("vol_expansion",)), sentiment(0.1))
    assert ctx.regime is Regime.VOL_EXPANSION


def test_iv_rank_over_threshold_on_short_history_is_not_vol_expansion() -> None:
    ctx = compose(composer(), hedge(), vol(rank=0.95, flags=("short_history",)), sentiment(0.0))
    assert ctx.regime is Regime.RANGE


def test_context_carries_volatility_figures_latest_spot_and_utc_time() -> None:
    ctx = compose(composer(), hedge(), vol(), sentiment(0.1))
    assert ctx.spot == 500.5  # the volatility snapshot is newer than the hedge one
    assert (ctx.iv_rank, ctx.iv_percentile, ctx.atm_iv) == (0.4, 0.45, 0.18)
    assert (ctx.realized_vol, ctx.expected_move) == (0.15, 5.2)
    assert ctx.as_of == ns_to_datetime(TS)
    assert ctx.as_of.tzinfo is UTC
    assert ctx.flags == ["positive_gamma"]


def test_nan_metrics_are_omitted_and_optional_fields_become_none() -> None:
    v = snap(
        "volatility",
        ("short_history",),
        realized_vol=0.1,
        atm_iv=math.nan,
        iv_rank=math.nan,
        iv_percentile=math.nan,
        expected_move=math.nan,
        spot=500.0,
    )
    ctx = compose(composer(), hedge(), v, sentiment(0.0))
    assert ctx.iv_rank is None
    assert ctx.atm_iv is None
    assert ctx.expected_move is None
    assert "gamma_flip" not in ctx.engines["hedge"]
    assert ctx.engines["volatility"] == {"realized_vol": 0.1, "spot": 500.0}
    MarketContext.model_validate_json(ctx.model_dump_json())  # survives the journal round trip


def test_no_context_without_a_spot() -> None:
    c = composer()
    c.update(snap("hedge", ("positive_gamma",), gex=1.0, spot=math.nan))
    c.update(snap("volatility", (), realized_vol=0.1))
    c.update(sentiment(0.0))
    assert c.compose(TS) is None


def test_iv_expansion_flag_means_vol_expansion_even_at_a_modest_rank() -> None:
    ctx = compose(composer(), hedge(), vol(rank=0.4, flags=("vol_expansion",)), sentiment(0.1))
    assert ctx.regime is Regime.VOL_EXPANSION
    assert "vol_expansion" in ctx.flags


def test_iv_crush_or_compression_alone_is_not_vol_expansion() -> None:
    for flag in ("vol_crush", "vol_compression"):
        ctx = compose(composer(), hedge(), vol(rank=0.1, flags=(flag,)), sentiment(0.0))
        assert ctx.regime is Regime.RANGE
        assert flag in ctx.flags


def test_new_engine_metrics_reach_the_record_and_news_moves_the_view() -> None:
    sent = snap("sentiment", ("bearish",), score=-0.5, momentum=0.0, news=-0.76, news_mass=1.0)
    v = snap(
        "volatility",
        ("proxy_history",),
        atm_iv=0.2,
        iv_rank=0.3,
        garch_vol=0.17,
        vrp=0.03,
        spot=500.0,
    )
    h = snap(
        "hedge", ("negative_gamma", "zero_dte_heavy"), gex=-1e9, zero_dte_share=0.6, spot=500.0
    )
    ctx = compose(composer(), h, v, sent)
    assert ctx.direction is Direction.BEARISH
    assert ctx.engines["volatility"]["vrp"] == 0.03
    assert ctx.engines["sentiment"]["news"] == -0.76
    assert ctx.engines["hedge"]["zero_dte_share"] == 0.6
    assert ctx.flags == ["negative_gamma", "zero_dte_heavy", "bearish", "proxy_history"]


def test_composer_weights_come_from_the_configuration() -> None:
    strict = Composer("SPY", TradeAgentConfig(composer_trend_momentum=0.95), VolatilityConfig())
    loose = Composer("SPY", TradeAgentConfig(composer_trend_momentum=0.05), VolatilityConfig())
    s = sentiment(0.1)
    strict_ctx = compose(strict, hedge(), vol(), s)
    loose_ctx = compose(loose, hedge(), vol(), s)
    assert strict_ctx.regime is Regime.RANGE
    assert loose_ctx.regime is Regime.TREND_UP  # momentum 0.2 clears a 0.05 trend level
