"""Sentiment engine: a score in [-1, 1] from bar momentum and the chain's put/call ratios.

Emits on each Bar and ChainSnapshot of its symbol once a component is known. See docs/engines.md.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from gnosisd.bus.events import Bar, ChainSnapshot, EngineSnapshot
from gnosisd.core.config import SentimentConfig

NAME = "sentiment"
# Weights of the components; missing components drop out and the rest are renormalised.
W_MOMENTUM = 0.6
W_PC_VOLUME = 0.25
W_PC_OI = 0.15


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


class SentimentEngine:
    """Directional mood of one symbol from price momentum and option flow."""

    def __init__(self, symbol: str, cfg: SentimentConfig) -> None:
        self.symbol = symbol
        self.cfg = cfg
        self._closes: deque[float] = deque(maxlen=cfg.momentum_lookback + 1)
        self._pc_volume = math.nan
        self._pc_oi = math.nan

    def update(self, event: object) -> EngineSnapshot | None:
        """Fold in a Bar or a ChainSnapshot of this symbol; emit once any component is known."""
        if isinstance(event, Bar) and event.symbol == self.symbol:
            self._closes.append(event.close)
        elif isinstance(event, ChainSnapshot) and event.underlying == self.symbol:
            calls = event.is_call
            vol = event.volume.astype(np.float64)
            oi = event.open_interest.astype(np.float64)
            self._pc_volume = _pc_ratio(float(vol[~calls].sum()), float(vol[calls].sum()))
            self._pc_oi = _pc_ratio(float(oi[~calls].sum()), float(oi[calls].sum()))
        else:
            return None
        m = self.metrics()
        if math.isnan(m["score"]):
            return None
        return EngineSnapshot(
            engine=NAME, symbol=self.symbol, ts_ns=event.ts_ns, metrics=m, flags=self.flags(m)
        )

    def metrics(self) -> dict[str, float]:
        """score, momentum, pc_volume_ratio, pc_oi_ratio (NaN where unknown)."""
        mom = momentum(list(self._closes))
        parts = [
            (W_MOMENTUM, mom),
            (W_PC_VOLUME, ratio_signal(self._pc_volume)),
            (W_PC_OI, ratio_signal(self._pc_oi)),
        ]
        known = [(w, x) for w, x in parts if math.isfinite(x)]
        wsum = sum(w for w, _ in known)
        score = sum(w * x for w, x in known) / wsum if known else math.nan
        return {
            "score": score,
            "momentum": mom,
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
