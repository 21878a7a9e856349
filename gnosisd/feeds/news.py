"""Seeded simulated headlines whose tone follows the simulated market's regime.

A few headlines per session from fixed templates (positive, neutral, negative); the tone mix depends
on the regime of the minute they appear in, so a sentiment engine can be checked against the truth.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gnosisd.core.enums import Regime

NAMES: dict[str, str] = {
    "SPY": "S&P 500",
    "QQQ": "Nasdaq 100",
    "IWM": "Russell 2000",
    "DIA": "Dow",
}
POSITIVE = (
    "{name} rallies as strong earnings lift investor confidence",
    "{sym} climbs to record high on upbeat economic data",
    "Stocks surge after inflation cools more than expected; {name} gains",
    "{name} rebounds as buyers return; analysts see further upside",
    "Investors cheer robust jobs report; {sym} jumps",
    "Upgrade wave boosts {name} as profit outlook improves",
    "{sym} advances with optimism over trade deal progress",
    "Tech strength drives {name} higher; breadth improves",
)
NEUTRAL = (
    "{name} little changed ahead of Fed minutes",
    "{sym} trades flat as investors await the jobs report",
    "Options traders position for {name} earnings week",
    "{name} holds in narrow range; volume light",
    "Treasury auction results due this afternoon; {sym} steady",
    "{sym} rebalancing flows expected at the close",
)
NEGATIVE = (
    "{name} tumbles as recession fears grip markets",
    "{sym} slides after weak factory data; losses deepen",
    "Selloff hits {name} as bond yields spike; volatility jumps",
    "Stocks plunge on banking stress; {name} posts worst day in weeks",
    "{sym} falls as earnings disappoint and guidance is cut",
    "Investors flee risk as {name} drops on geopolitical turmoil",
    "{name} slumps; analysts warn of further downside",
    "Panic selling drags {sym} lower amid credit concerns",
)
# P(positive, neutral, negative) of a headline by the regime of its minute.
TONE_MIX: dict[Regime, tuple[float, float, float]] = {
    Regime.TREND_UP: (0.65, 0.25, 0.10),
    Regime.TREND_DOWN: (0.10, 0.25, 0.65),
    Regime.RANGE: (0.25, 0.50, 0.25),
    Regime.VOL_EXPANSION: (0.05, 0.25, 0.70),
}
MEAN_PER_SESSION = 4.0
MAX_PER_SESSION = 8
MARKET_WIDE = 0.3  # share of headlines about the whole market (every simulated symbol)


@dataclass(frozen=True, slots=True)
class Headline:
    """A simulated headline: the session minute it appears at, its text, symbols and true tone."""

    minute: int
    text: str
    symbols: tuple[str, ...]
    tone: int  # +1 positive, 0 neutral, -1 negative template


def draw_headlines(
    rng: np.random.Generator, symbols: Sequence[str], regimes: Sequence[Regime]
) -> list[Headline]:
    """Draw one session's headlines (Poisson count, at least 1), sorted by minute.

    `regimes[m]` is the regime of session minute m; headlines fall between the 5th minute and the
    5th-last, at distinct minutes.
    """
    n_min = len(regimes)
    if n_min <= 10 or not symbols:
        return []
    count = int(min(max(rng.poisson(MEAN_PER_SESSION), 1), MAX_PER_SESSION))
    minutes = np.sort(rng.choice(np.arange(5, n_min - 5), size=count, replace=False))
    out: list[Headline] = []
    for m in minutes.tolist():
        mix = TONE_MIX[regimes[m]]
        tone = int(rng.choice(3, p=mix))  # 0 positive, 1 neutral, 2 negative
        pool = (POSITIVE, NEUTRAL, NEGATIVE)[tone]
        template = pool[int(rng.integers(len(pool)))]
        if rng.random() < MARKET_WIDE or len(symbols) == 1:
            syms = tuple(symbols)
            subject = symbols[0]
        else:
            subject = symbols[int(rng.integers(len(symbols)))]
            syms = (subject,)
        text = template.format(sym=subject, name=NAMES.get(subject, subject))
        out.append(Headline(minute=m, text=text, symbols=syms, tone=1 - tone))
    return out


__all__ = ["Headline", "draw_headlines"]
