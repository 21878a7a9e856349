"""Rolling windows with O(1) updates and realised-volatility estimators on OHLC bars.

Close-to-close, Parkinson (1980), Garman–Klass (1980), Rogers–Satchell (1991) and Yang–Zhang (2000);
formulas and units in docs/engines.md. Memory is fixed by the window length, never by run length.
"""

from __future__ import annotations

import math
from collections import deque

LN2 = math.log(2.0)
GK_CLOSE = 2.0 * LN2 - 1.0  # Garman & Klass (1980), estimator σ̂²₅ coefficient of ln(C/O)²


class RollingMean:
    """Mean of the last `size` values: a ring buffer with a running sum.

    The sum is rebuilt exactly from the buffer every `size` pushes, so rounding drift stays bounded
    however long the daemon runs.
    """

    __slots__ = ("_buf", "_pushes", "_sum")

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"window size must be >= 1, got {size}")
        self._buf: deque[float] = deque(maxlen=size)
        self._sum = 0.0
        self._pushes = 0

    def push(self, x: float) -> None:
        buf = self._buf
        if len(buf) == buf.maxlen:
            self._sum -= buf[0]
        buf.append(x)
        self._sum += x
        self._pushes += 1
        if self._pushes % (buf.maxlen or 1) == 0:
            self._sum = math.fsum(buf)

    def __len__(self) -> int:
        return len(self._buf)

    @property
    def total(self) -> float:
        return self._sum

    def mean(self) -> float:
        """Mean of the window; NaN when empty."""
        return self._sum / len(self._buf) if self._buf else math.nan


class RollingVar:
    """Sample variance (ddof 1) of the last `size` values from running Σx and Σx²."""

    __slots__ = ("_buf", "_pushes", "_s1", "_s2")

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"window size must be >= 1, got {size}")
        self._buf: deque[float] = deque(maxlen=size)
        self._s1 = 0.0
        self._s2 = 0.0
        self._pushes = 0

    def push(self, x: float) -> None:
        buf = self._buf
        if len(buf) == buf.maxlen:
            old = buf[0]
            self._s1 -= old
            self._s2 -= old * old
        buf.append(x)
        self._s1 += x
        self._s2 += x * x
        self._pushes += 1
        if self._pushes % (buf.maxlen or 1) == 0:
            self._s1 = math.fsum(buf)
            self._s2 = math.fsum(v * v for v in buf)

    def __len__(self) -> int:
        return len(self._buf)

    def var(self) -> float:
        """Sample variance; NaN with fewer than 2 values."""
        n = len(self._buf)
        if n < 2:
            return math.nan
        return max((self._s2 - self._s1 * self._s1 / n) / (n - 1), 0.0)


class RollingRegression:
    """Least-squares slope of y on x over the last `size` pairs (running Σx, Σy, Σxy, Σx²)."""

    __slots__ = ("_buf", "_pushes", "_sx", "_sxx", "_sxy", "_sy")

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"window size must be >= 1, got {size}")
        self._buf: deque[tuple[float, float]] = deque(maxlen=size)
        self._sx = self._sy = self._sxy = self._sxx = 0.0
        self._pushes = 0

    def push(self, x: float, y: float) -> None:
        buf = self._buf
        if len(buf) == buf.maxlen:
            ox, oy = buf[0]
            self._sx -= ox
            self._sy -= oy
            self._sxy -= ox * oy
            self._sxx -= ox * ox
        buf.append((x, y))
        self._sx += x
        self._sy += y
        self._sxy += x * y
        self._sxx += x * x
        self._pushes += 1
        if self._pushes % (buf.maxlen or 1) == 0:
            self._sx = math.fsum(p[0] for p in buf)
            self._sy = math.fsum(p[1] for p in buf)
            self._sxy = math.fsum(p[0] * p[1] for p in buf)
            self._sxx = math.fsum(p[0] * p[0] for p in buf)

    def __len__(self) -> int:
        return len(self._buf)

    def slope(self) -> float:
        """cov(x, y) / var(x); NaN with fewer than 3 pairs or no variation in x."""
        n = len(self._buf)
        if n < 3:
            return math.nan
        sxx = self._sxx - self._sx * self._sx / n
        if sxx <= 1e-12 * max(self._sxx, 1e-300):
            return math.nan
        return (self._sxy - self._sx * self._sy / n) / sxx


class BarVolEstimators:
    """Annualised realised vol of a rolling window of OHLC bars by four estimators.

    Feed bars with `push(day, open, high, low, close)`; `day` keys a session so that the return
    across two sessions (the overnight gap) never enters the intraday estimators. Every estimator
    gives a per-bar variance that `periods_per_year` annualises.
    """

    def __init__(self, window: int, periods_per_year: float) -> None:
        self.window = window
        self.periods_per_year = periods_per_year
        self._c2c = RollingVar(window)  # ln(C_t / C_{t-1}), same session
        self._parkinson = RollingMean(window)  # ln(H/L)²
        self._gk = RollingMean(window)  # ½ ln(H/L)² − (2 ln 2 − 1) ln(C/O)²
        self._rs = RollingMean(window)  # Rogers–Satchell term
        self._open_jump = RollingVar(window)  # ln(O_t / C_{t-1}), same session
        self._oc = RollingVar(window)  # ln(C_t / O_t)
        self._prev: tuple[object, float] | None = None

    def push(self, day: object, o: float, h: float, lo: float, c: float) -> None:
        """Add one bar; bars with a non-positive or inconsistent price are ignored."""
        if not (0 < lo <= min(o, c) and max(o, c) <= h and math.isfinite(h)):
            return
        hl = math.log(h / lo)
        co = math.log(c / o)
        self._parkinson.push(hl * hl)
        self._gk.push(0.5 * hl * hl - GK_CLOSE * co * co)
        # Rogers & Satchell (1991): ln(H/C)·ln(H/O) + ln(L/C)·ln(L/O), drift-free
        self._rs.push(math.log(h / c) * math.log(h / o) + math.log(lo / c) * math.log(lo / o))
        self._oc.push(co)
        if self._prev is not None and self._prev[0] == day:
            prev_c = self._prev[1]
            self._c2c.push(math.log(c / prev_c))
            self._open_jump.push(math.log(o / prev_c))
        self._prev = (day, c)

    def _annual(self, var: float) -> float:
        if not math.isfinite(var) or var < 0:
            return math.nan
        return math.sqrt(var * self.periods_per_year)

    def close_to_close(self) -> float:
        """sd of close-to-close log returns (ddof 1), annualised (Hull ch. 15)."""
        return self._annual(self._c2c.var())

    def parkinson(self) -> float:
        """Parkinson (1980): σ² = E[ln(H/L)²] / (4 ln 2)."""
        if len(self._parkinson) < 2:
            return math.nan
        return self._annual(self._parkinson.mean() / (4.0 * LN2))

    def garman_klass(self) -> float:
        """Garman–Klass (1980): σ² = E[½ ln(H/L)² − (2 ln 2 − 1) ln(C/O)²]."""
        if len(self._gk) < 2:
            return math.nan
        return self._annual(self._gk.mean())

    def rogers_satchell(self) -> float:
        """Rogers–Satchell (1991): σ² = E[ln(H/C) ln(H/O) + ln(L/C) ln(L/O)]."""
        if len(self._rs) < 2:
            return math.nan
        return self._annual(self._rs.mean())

    def yang_zhang(self) -> float:
        """Yang–Zhang (2000): σ² = σ²_open + k σ²_oc + (1 − k) σ²_RS, k = 0.34 / (1.34 + (n+1)/(n−1)).

        σ²_open: sample variance of ln(O_t/C_{t−1}) (the jump between bars), σ²_oc of ln(C_t/O_t),
        σ²_RS the Rogers–Satchell mean; n bars in the window.
        """
        n = len(self._oc)
        if n < 2 or len(self._open_jump) < 2:
            return math.nan
        k = 0.34 / (1.34 + (n + 1) / (n - 1))
        var = self._open_jump.var() + k * self._oc.var() + (1.0 - k) * self._rs.mean()
        return self._annual(var)


__all__ = ["BarVolEstimators", "RollingMean", "RollingRegression", "RollingVar"]
