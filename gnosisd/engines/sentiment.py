"""Sentiment engine: a score in [-1, 1] from bar momentum, decayed news tone and put/call ratios.

Headlines (NewsItem) are scored with the shipped finance lexicon (`engines/lexicon.py`) and decay
exponentially; emits on each Bar, ChainSnapshot and NewsItem of its symbol once a component is
known. See docs/engines.md.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from gnosisd.bus.events import Bar, ChainSnapshot, EngineSnapshot, NewsItem
from gnosisd.core.config import SentimentConfig
from gnosisd.engines.lexicon import score_headline

NAME = "sentiment"
NS_PER_MIN = 60_000_000_000
# Weights of the components; missing components drop out and the rest are renormalised. Without
# news the others keep the ratios 0.60 / 0.24 / 0.16. The news weight is scaled by its mass.
W_MOMENTUM = 0.45
W_NEWS = 0.25
W_PC_VOLUME = 0.18
W_PC_OI = 0.12
MIN_NEWS_MASS = 0.01  # below this decayed weight (≈ 6.6 half-lives) the news component drops out


def momentum(closes: list[float]) -> float:
    """tanh(z/2), z = Σ log returns / (σ_1bar · √n): the t-statistic of the mean log return.

    σ_1bar is the sample s.d. of the n one-bar log returns; NaN with fewer than 2 returns.
    A steady trend with zero dispersion gives ±1.
    """
    c = np.asarray(closes, dtype=np.float64)
    if c.size < 3 or np.any(c <= 0):
        return math.nan
    r = np.diff(np.log(c))
    total = float(np.sum(r))
    sd = float(np.std(r, ddof=1))
    if sd <= 1e-15:
        return float(np.sign(total))
    z = total / (sd * math.sqrt(r.size))
    return math.tanh(z / 2.0)


def ratio_signal(ratio: float) -> float:
    """-tanh(ln ratio): 0 at put/call = 1, < 0 when puts dominate (Pan & Poteshman 2006)."""
    if math.isnan(ratio):
        return math.nan
    if ratio == math.inf:
        return -1.0  # puts traded, no calls
    if ratio <= 0:
        return 1.0  # calls traded, no puts
    return -math.tanh(math.log(ratio))


def _pc_ratio(puts: float, calls: float) -> float:
    if calls > 0:
        return puts / calls
    return math.inf if puts > 0 else math.nan


class NewsTone:
    """Exponentially decayed sums of headline polarities, in O(1) memory.

    A(t) = Σᵢ 2^{−(t − tᵢ)/h} pᵢ and M(t) = Σᵢ 2^{−(t − tᵢ)/h} over scored headlines i (polarity
    pᵢ ≠ ∅, i.e. at least one lexicon hit), h the half-life; both are kept at the time of the
    latest headline and decayed on read. A late headline (tᵢ before that time) enters pre-decayed.
    """

    def __init__(self, half_life_ns: float) -> None:
        self.half_life_ns = half_life_ns
        self._sum = 0.0
        self._mass = 0.0
        self._ts: int | None = None
        self.seen = 0
        self.scored = 0

    def _decay(self, dt_ns: int) -> float:
        return math.exp2(-max(dt_ns, 0) / self.half_life_ns)

    def add(self, ts_ns: int, polarity: float) -> None:
        if self._ts is None:
            self._ts = ts_ns
        if ts_ns >= self._ts:
            f = self._decay(ts_ns - self._ts)
            self._sum, self._mass, self._ts = self._sum * f + polarity, self._mass * f + 1.0, ts_ns
        else:
            f = self._decay(self._ts - ts_ns)
            self._sum += polarity * f
            self._mass += f

    def at(self, ts_ns: int) -> tuple[float, float]:
        """(decayed polarity sum, decayed mass) at `ts_ns`."""
        if self._ts is None:
            return 0.0, 0.0
        f = self._decay(ts_ns - self._ts)
        return self._sum * f, self._mass * f


class SentimentEngine:
    """Directional mood of one symbol from price momentum, news tone and option flow."""

    def __init__(self, symbol: str, cfg: SentimentConfig) -> None:
        self.symbol = symbol
        self.cfg = cfg
        self._closes: deque[float] = deque(maxlen=cfg.momentum_lookback + 1)
        self._pc_volume = math.nan
        self._pc_oi = math.nan
        self._news = NewsTone(cfg.news_half_life_minutes * NS_PER_MIN)
        self._ts = 0

    def update(self, event: object) -> EngineSnapshot | None:
        """Fold in a Bar, ChainSnapshot or NewsItem of this symbol; emit once a component is known."""
        if isinstance(event, Bar) and event.symbol == self.symbol:
            self._closes.append(event.close)
        elif isinstance(event, ChainSnapshot) and event.underlying == self.symbol:
            calls = event.is_call
            vol = event.volume.astype(np.float64)
            oi = event.open_interest.astype(np.float64)
            self._pc_volume = _pc_ratio(float(vol[~calls].sum()), float(vol[calls].sum()))
            self._pc_oi = _pc_ratio(float(oi[~calls].sum()), float(oi[calls].sum()))
        elif isinstance(event, NewsItem) and self.symbol in event.symbols:
            self._news.seen += 1
            s = score_headline(event.headline)
            if s.hits:
                self._news.scored += 1
                self._news.add(event.ts_ns, s.polarity)
        else:
            return None
        self._ts = max(self._ts, event.ts_ns)
        m = self.metrics(event.ts_ns)
        if math.isnan(m["score"]):
            return None
        return EngineSnapshot(
            engine=NAME, symbol=self.symbol, ts_ns=event.ts_ns, metrics=m, flags=self.flags(m)
        )

    def metrics(self, ts_ns: int | None = None) -> dict[str, float]:
        """score, momentum, news, news_mass, news_count, pc_volume_ratio, pc_oi_ratio (NaN where
        unknown); news is decayed to `ts_ns` (default: the latest event seen)."""
        at = self._ts if ts_ns is None else ts_ns
        mom = momentum(list(self._closes))
        tone, mass = self._news.at(at)
        news = math.tanh(tone) if mass >= MIN_NEWS_MASS else math.nan
        parts = [
            (W_MOMENTUM, mom),
            (W_NEWS * min(mass, 1.0), news),
            (W_PC_VOLUME, ratio_signal(self._pc_volume)),
            (W_PC_OI, ratio_signal(self._pc_oi)),
        ]
        known = [(w, x) for w, x in parts if math.isfinite(x) and w > 0]
        wsum = sum(w for w, _ in known)
        score = sum(w * x for w, x in known) / wsum if known else math.nan
        return {
            "score": score,
            "momentum": mom,
            "news": news,
            "news_mass": mass,
            "news_count": float(self._news.scored),
            "pc_volume_ratio": self._pc_volume,
            "pc_oi_ratio": self._pc_oi,
        }

    def flags(self, m: dict[str, float]) -> tuple[str, ...]:
        """bullish when score >= bullish_threshold, bearish when score <= -bearish_threshold."""
        if m["score"] >= self.cfg.bullish_threshold:
            return ("bullish",)
        if m["score"] <= -self.cfg.bearish_threshold:
            return ("bearish",)
        return ()
