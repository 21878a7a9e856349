"""The shipped headline lexicon: tone words, inflections, phrases and LM's negation rule."""

from __future__ import annotations

import pytest

from gnosisd.engines.lexicon import (
    NEGATIVE_WORDS,
    POSITIVE_WORDS,
    score_headline,
    tokens,
)


@pytest.mark.parametrize(
    ("headline", "positive", "negative"),
    [
        ("Stocks rally as strong earnings lift confidence", 4, 0),
        ("SPY tumbles as recession fears grip markets", 0, 3),
        ("S&P 500 little changed ahead of Fed minutes", 0, 0),
        ("Nasdaq fell sharply; losses deepened", 0, 2),
        ("Dow rose, but analysts warn of a slowdown", 1, 2),
        ("Indexes hit record highs", 1, 0),
        ("Treasury yields at record low as sell off spreads", 0, 2),
    ],
)
def test_counts_tone_words_and_their_inflections(
    headline: str, positive: int, negative: int
) -> None:
    s = score_headline(headline)
    assert (s.positive, s.negative) == (positive, negative)


def test_polarity_is_positive_minus_negative_over_hits() -> None:
    s = score_headline("Rally fades as weak data and recession fears weigh")
    assert (s.positive, s.negative) == (1, 3)
    assert s.polarity == pytest.approx((1 - 3) / 4)
    assert score_headline("Fed minutes due at 2 pm").polarity == 0.0


def test_a_negated_positive_word_counts_as_negative() -> None:
    s = score_headline("Earnings did not improve; no recovery in sight")
    assert (s.positive, s.negative) == (0, 2)
    # LM reverses positive words only, within three words
    assert score_headline("not a weak quarter").negative == 1
    assert score_headline("not that it was a strong day").positive == 1


def test_tokens_are_lower_case_letters_only() -> None:
    assert tokens("SPY's 2% JUMP!") == ["spy", "s", "jump"]


def test_no_word_carries_both_tones() -> None:
    assert not POSITIVE_WORDS & NEGATIVE_WORDS
    assert {"surges", "soared", "rallies", "rallied", "jumping"} <= POSITIVE_WORDS
    assert {"plunged", "tumbling", "slumps", "fears", "dropped"} <= NEGATIVE_WORDS
