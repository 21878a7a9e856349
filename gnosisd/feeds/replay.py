"""Replay feed: real historical bars (CSV, Parquet, or the `arch` package's S&P 500 with the VIX)
with MODEL option chains, not historical quotes: listing.py lists the contracts and surface.py prices
them (BSM) on the simulated market's IV surface, anchored on an implied-vol level.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from gnosisd.bus.events import Bar, ChainSnapshot
from gnosisd.core.calendar import CALENDAR_START, Session, TradingCalendar
from gnosisd.core.clock import NEW_YORK, datetime_to_ns
from gnosisd.core.errors import ConfigError
from gnosisd.feeds.listing import ChainGrid, build_grid
from gnosisd.feeds.sim import DEFAULT_PROFILE, PROFILES, RISK_FREE_RATE
from gnosisd.feeds.surface import SurfaceParams, price_chain

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
ReplayEvent = Bar | ChainSnapshot

NS_PER_MIN = 60 * 1_000_000_000
ARCH_SP500 = "arch:sp500"
TIME_COLUMNS = ("timestamp", "datetime", "time", "date")
PRICE_COLUMNS = ("open", "high", "low", "close")
DATA_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq")
# SPY trades at about a tenth of the S&P 500 index (before its small dividend drag).
SPY_PER_INDEX_POINT = 0.1
# The VIX is a 30-day variance-swap rate over all strikes; with a put skew it sits above ATM IV.
# 0.9 is a round approximation of ATM IV / VIX for the S&P 500 (Cboe VIX white paper; Carr & Wu 2006).
VIX_TO_ATM = 0.9
# Average 3-month T-bill yield over the VIX sample of the arch data (2014-2018), about 1%.
ARCH_RATE = 0.01


@dataclass(frozen=True, slots=True)
class ChainModel:
    """How model chains are anchored and shaped (documented in docs/backtesting.md)."""

    rate: float = RISK_FREE_RATE
    realised_premium: float = 1.1  # implied over realised when only bars are known
    realised_window: int = 20  # sessions of close-to-close returns for that anchor
    default_iv: float = 0.18  # anchor before `min_history` sessions are known
    min_history: int = 5
    long_run_half_life: float = 126.0  # sessions: EWMA of the anchor = the surface's long-run level
    skew: float = 0.12
    smile: float = 0.03
    spread_vol_ref: float = 0.15  # option spreads widen ∝ ATM IV above this level (× 1 to × 2.5)


@dataclass(frozen=True, slots=True)
class BarSeries:
    """One underlying's bars in time order, column-wise. `day` is the New York session ordinal."""

    symbol: str
    start_ns: IntArray  # bar start, UTC ns (daily bars: the session open)
    end_ns: IntArray  # when the bar is complete and published (daily: one minute before the close)
    day: IntArray
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray
    iv: FloatArray  # 30-day ATM implied vol (decimal) from the data, NaN where unknown

    def day_slice(self, day: date) -> tuple[int, int]:
        o = day.toordinal()
        return int(np.searchsorted(self.day, o, "left")), int(np.searchsorted(self.day, o, "right"))


@dataclass(frozen=True)
class ReplayData:
    """Loaded history: bars per symbol, what they are, and what was skipped on loading."""

    series: Mapping[str, BarSeries]
    daily: bool
    source: str
    anchor: str  # what the model chains are anchored on (described for the results)
    model: ChainModel = field(default_factory=ChainModel)
    skipped: Mapping[str, int] = field(default_factory=dict)

    @property
    def symbols(self) -> list[str]:
        return list(self.series)

    @property
    def bars(self) -> int:
        return sum(len(s.close) for s in self.series.values())

    def days(self) -> list[date]:
        """Every session date that has a bar of any symbol, ascending."""
        found: set[int] = set()
        for s in self.series.values():
            found.update(np.unique(s.day).tolist())
        return [date.fromordinal(o) for o in sorted(found)]


def _frame(path: Path) -> pd.DataFrame:
    name = path.name.lower()
    try:
        if name.endswith((".parquet", ".pq")):
            frame = pd.read_parquet(path)
        elif name.endswith((".csv", ".csv.gz")):
            frame = pd.read_csv(path)
        else:
            raise ConfigError(f"{path}: bars must be .csv, .csv.gz, .parquet or .pq")
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read bars: {exc}") from None
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    return frame


def _times(path: Path, raw: pd.Series) -> tuple[pd.DatetimeIndex, bool]:
    """Parse the time column: aware → UTC; naive → America/New_York; all midnights → daily."""
    try:
        try:
            ts = pd.DatetimeIndex(pd.to_datetime(raw, format="ISO8601"))
        except (ValueError, TypeError):  # mixed UTC offsets parse only as UTC
            ts = pd.DatetimeIndex(pd.to_datetime(raw, format="ISO8601", utc=True))
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"{path}: timestamps must be ISO-8601 (2024-03-01T09:30:00-05:00): {exc}"
        ) from None
    if ts.hasnans:
        raise ConfigError(f"{path}: empty timestamp in the time column")
    daily = bool(len(ts)) and bool(
        ((ts.hour == 0) & (ts.minute == 0) & (ts.second == 0) & (ts.nanosecond == 0)).all()
    )
    if daily:
        return ts, True
    if ts.tz is None:
        try:
            ts = ts.tz_localize(NEW_YORK, ambiguous="raise", nonexistent="raise")
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{path}: naive New York time that does not exist: {exc}") from None
    return ts.tz_convert("UTC"), False


def _symbol_of(path: Path) -> str:
    stem = path.name.split(".", 1)[0]
    return stem.split("_", 1)[0].upper()


def _columns(path: Path, frame: pd.DataFrame) -> tuple[str, dict[str, FloatArray]]:
    tcol = next((c for c in TIME_COLUMNS if c in frame.columns), None)
    missing = [c for c in PRICE_COLUMNS if c not in frame.columns]
    if tcol is None or missing:
        need = ", ".join([*(["timestamp"] if tcol is None else []), *missing])
        raise ConfigError(
            f"{path}: missing column(s) {need}; bars need timestamp, open, high, low, close "
            "(volume, symbol and iv are optional)"
        )
    out: dict[str, FloatArray] = {}
    for c in (*PRICE_COLUMNS, "volume", "iv"):
        if c in frame.columns:
            try:
                out[c] = frame[c].to_numpy(dtype=np.float64, na_value=np.nan)
            except (ValueError, TypeError):
                raise ConfigError(f"{path}: column {c} must be numeric") from None
    n = len(frame)
    out.setdefault("volume", np.zeros(n))
    out.setdefault("iv", np.full(n, np.nan))
    return tcol, out


class _Builder:
    """Collects rows of one or more files into per-symbol BarSeries on XNYS sessions."""

    def __init__(self, calendar: TradingCalendar) -> None:
        self.cal = calendar
        self.rows: dict[str, list[pd.DataFrame]] = {}
        self.daily: bool | None = None
        self.skipped: dict[str, int] = {}
        self._sessions: dict[int, tuple[int, int]] = {}

    def add(self, path: Path, frame: pd.DataFrame) -> None:
        tcol, cols = _columns(path, frame)
        ts, daily = _times(path, frame[tcol])
        if self.daily is not None and daily != self.daily:
            raise ConfigError(f"{path}: mixes daily and intraday bars with the other files")
        self.daily = daily
        if "symbol" in frame.columns:
            symbols = frame["symbol"].astype(str).str.strip().str.upper().to_numpy()
        else:
            symbols = np.full(len(frame), _symbol_of(path), dtype=object)
        if daily:
            days = np.asarray([d.toordinal() for d in ts.date], dtype=np.int64)
            start = np.zeros(len(ts), dtype=np.int64)
        else:
            start = ts.as_unit("ns").asi8.astype(np.int64)
            local = ts.tz_convert(NEW_YORK)
            days = np.asarray([d.toordinal() for d in local.date], dtype=np.int64)
        part = pd.DataFrame({"symbol": symbols, "start": start, "day": days, **cols})
        for sym, rows in part.groupby("symbol", sort=False):
            self.rows.setdefault(str(sym), []).append(rows)

    def _session(self, ordinal: int) -> tuple[int, int] | None:
        if ordinal not in self._sessions:
            d = date.fromordinal(ordinal)
            if d < date.fromisoformat(CALENDAR_START) or not self.cal.is_session(d):
                return None
            s = self.cal.session(d)
            self._sessions[ordinal] = (datetime_to_ns(s.open), datetime_to_ns(s.close))
        return self._sessions[ordinal]

    def build(self) -> dict[str, BarSeries]:
        out: dict[str, BarSeries] = {}
        for sym, parts in self.rows.items():
            rows = pd.concat(parts, ignore_index=True)
            key = "day" if self.daily else "start"
            rows = rows.sort_values(key, kind="stable")
            dup = rows.duplicated(key, keep="last")
            self._skip("duplicate_bar", int(dup.sum()))
            rows = rows[~dup]
            bounds = [self._session(int(o)) for o in rows["day"].to_numpy()]
            opens = np.asarray([b[0] if b else -1 for b in bounds], dtype=np.int64)
            closes = np.asarray([b[1] if b else -1 for b in bounds], dtype=np.int64)
            if self.daily:
                start = opens
                end = closes - NS_PER_MIN
                keep = opens >= 0
                self._skip("not_a_session", int((~keep).sum()))
            else:
                start = rows["start"].to_numpy()
                keep = (opens >= 0) & (start >= opens) & (start < closes)
                self._skip("outside_regular_hours", int((~keep).sum()))
                step = _bar_length(start[keep], rows["day"].to_numpy()[keep])
                end = np.minimum(start + step, closes)
            if not keep.any():
                continue
            col = {c: rows[c].to_numpy(dtype=np.float64)[keep] for c in (*PRICE_COLUMNS, "volume")}
            out[sym] = BarSeries(
                symbol=sym,
                start_ns=np.ascontiguousarray(start[keep], dtype=np.int64),
                end_ns=np.ascontiguousarray(end[keep], dtype=np.int64),
                day=rows["day"].to_numpy(dtype=np.int64)[keep],
                open=col["open"],
                high=col["high"],
                low=col["low"],
                close=col["close"],
                volume=col["volume"],
                iv=rows["iv"].to_numpy(dtype=np.float64)[keep],
            )
        return out

    def _skip(self, reason: str, n: int) -> None:
        if n:
            self.skipped[reason] = self.skipped.get(reason, 0) + n


def _bar_length(start: IntArray, day: IntArray) -> int:
    """The bar length of intraday data: the most common gap between bars of one session."""
    same = np.diff(day) == 0
    gaps = np.diff(start)[same]
    gaps = gaps[gaps > 0]
    if gaps.size == 0:
        return NS_PER_MIN
    values, counts = np.unique(gaps, return_counts=True)
    return int(values[int(np.argmax(counts))])


def load_bars(
    path: Path, calendar: TradingCalendar, symbols: Sequence[str] | None = None
) -> ReplayData:
    """Read bars from a CSV/Parquet file or a directory of them (columns in docs/backtesting.md).

    Rows outside XNYS regular sessions and duplicate times are skipped and counted.
    """
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.name.lower().endswith(DATA_SUFFIXES))
        if not files:
            raise ConfigError(f"{path}: no .csv, .csv.gz, .parquet or .pq files in the directory")
    elif path.exists():
        files = [path]
    else:
        raise ConfigError(f"--data {path}: no such file or directory")
    builder = _Builder(calendar)
    for f in files:
        builder.add(f, _frame(f))
    series = _select(builder.build(), symbols, str(path))
    anchor = (
        "the data's iv column (30-day ATM implied vol), else trailing realised vol × 1.1"
        if any(np.isfinite(s.iv).any() for s in series.values())
        else "trailing 20-session realised vol × 1.1 (the data has no iv column)"
    )
    return ReplayData(
        series=series,
        daily=bool(builder.daily),
        source=str(path),
        anchor=anchor,
        skipped=dict(builder.skipped),
    )


def _select(
    series: dict[str, BarSeries], symbols: Sequence[str] | None, source: str
) -> dict[str, BarSeries]:
    if not series:
        raise ConfigError(f"{source}: no bar falls on an XNYS regular session")
    if symbols is None:
        return series
    missing = [s for s in symbols if s not in series]
    if missing:
        raise ConfigError(
            f"{source}: no bars for {', '.join(missing)}; the data has {', '.join(sorted(series))}"
        )
    return {s: series[s] for s in symbols}


_ARCH_CACHE: dict[str, ReplayData] = {}


def load_arch_sp500(calendar: TradingCalendar, symbol: str = "SPY") -> ReplayData:
    """The `arch` package's S&P 500 daily bars as an SPY proxy (× 0.1), IV anchored on its VIX.

    The VIX series starts 2014-01-03; earlier sessions are anchored on trailing realised vol.
    Loaded once per process (the bundled data never changes).
    """
    if symbol not in _ARCH_CACHE:
        _ARCH_CACHE[symbol] = _load_arch_sp500(calendar, symbol)
    return _ARCH_CACHE[symbol]


def _load_arch_sp500(calendar: TradingCalendar, symbol: str) -> ReplayData:
    from arch.data import sp500, vix

    px = sp500.load()
    v = vix.load()["vix"].reindex(px.index)
    frame = pd.DataFrame(
        {
            "date": [d.date().isoformat() for d in px.index],
            "symbol": symbol,
            "open": px["Open"].to_numpy() * SPY_PER_INDEX_POINT,
            "high": px["High"].to_numpy() * SPY_PER_INDEX_POINT,
            "low": px["Low"].to_numpy() * SPY_PER_INDEX_POINT,
            "close": px["Close"].to_numpy() * SPY_PER_INDEX_POINT,
            "volume": px["Volume"].to_numpy(dtype=np.float64),
            "iv": v.to_numpy(dtype=np.float64) / 100.0 * VIX_TO_ATM,
        }
    )
    builder = _Builder(calendar)
    builder.add(Path(ARCH_SP500), frame)
    series = builder.build()
    days = series[symbol].day
    return ReplayData(
        series=series,
        daily=True,
        source=(
            f"{ARCH_SP500}: S&P 500 index daily bars from the arch package "
            f"{date.fromordinal(int(days[0]))}..{date.fromordinal(int(days[-1]))}, "
            f"× {SPY_PER_INDEX_POINT} as an {symbol} proxy"
        ),
        anchor=(
            f"VIX × {VIX_TO_ATM} (2014-01-03 on), before that trailing 20-session realised vol × 1.1"
        ),
        model=ChainModel(rate=ARCH_RATE),
        skipped=dict(builder.skipped),
    )


def load_data(spec: str, calendar: TradingCalendar, symbols: Sequence[str]) -> ReplayData:
    """`arch:sp500` (one symbol, default SPY) or a path to bars."""
    if spec.lower() == ARCH_SP500:
        if len(symbols) != 1:
            raise ConfigError(f"--data {ARCH_SP500} is one underlying; pass one --symbols (SPY)")
        return load_arch_sp500(calendar, symbols[0])
    if spec.lower().startswith("arch:"):
        raise ConfigError(f"--data {spec}: the only bundled data set is {ARCH_SP500}")
    return load_bars(Path(spec), calendar, symbols)


@dataclass(frozen=True, slots=True)
class _Anchors:
    """Per session of one symbol: the anchor known before it opens and its long-run level."""

    days: IntArray
    prior: FloatArray  # anchor known at the open (from earlier sessions only)
    long_run: FloatArray


def _anchors(s: BarSeries, model: ChainModel) -> _Anchors:
    days = np.unique(s.day)
    ends = np.searchsorted(s.day, days, "right") - 1
    closes = s.close[ends]
    ret = np.full(len(days), np.nan)
    ret[1:] = np.log(closes[1:] / closes[:-1])
    day_iv = np.full(len(days), np.nan)
    for i, e in enumerate(ends):  # the last known iv of each session
        lo = int(np.searchsorted(s.day, days[i], "left"))
        known = s.iv[lo : e + 1]
        known = known[np.isfinite(known) & (known > 0)]
        if known.size:
            day_iv[i] = known[-1]
    prior = np.empty(len(days))
    long_run = np.empty(len(days))
    alpha = 1.0 - 0.5 ** (1.0 / model.long_run_half_life)
    ewma = math.nan
    for i in range(len(days)):
        # Anchor known at the open of session i: the last iv of session i-1, else realised vol.
        iv = day_iv[i - 1] if i > 0 else math.nan
        if not math.isfinite(iv):
            window = ret[max(1, i - model.realised_window) : i]
            window = window[np.isfinite(window)]
            if window.size >= model.min_history:
                iv = float(np.std(window, ddof=1)) * math.sqrt(252.0) * model.realised_premium
            else:
                iv = model.default_iv
        prior[i] = iv
        ewma = iv if not math.isfinite(ewma) else ewma + alpha * (iv - ewma)
        long_run[i] = ewma
    return _Anchors(days=days, prior=prior, long_run=long_run)


class ReplayFeed:
    """A MarketFeed over ReplayData: per session, the bars in time order and model chains.

    Intraday bars are published when complete (start + bar length); a model chain is priced every
    `chain_refresh_minutes` from the open on the last close. Daily bars: the bar and one model chain
    at one minute before the close. Deterministic for the data and `seed` (open interest noise).
    """

    chain_source = "model"

    def __init__(
        self,
        data: ReplayData,
        symbols: Sequence[str],
        *,
        seed: int,
        calendar: TradingCalendar,
        chain_refresh_minutes: int = 5,
        chains: bool = True,
        chain_cache: dict[tuple[str, int], ChainSnapshot] | None = None,
    ) -> None:
        missing = [s for s in symbols if s not in data.series]
        if missing:
            raise ConfigError(f"replay data has no bars for {', '.join(missing)}")
        if chain_refresh_minutes < 1:
            raise ValueError("chain_refresh_minutes must be >= 1")
        self.data = data
        self.symbols = tuple(symbols)
        self.seed = seed
        self.calendar = calendar
        self.refresh_ns = chain_refresh_minutes * NS_PER_MIN
        self.chains = chains
        # Chains depend only on the data, the seed and the refresh period: repeated backtests of
        # the same inputs (optimisation trials) may share one cache per (seed, refresh) pair.
        self._cache = chain_cache
        self.model = data.model
        self._anchors = {s: _anchors(data.series[s], self.model) for s in self.symbols}
        self._last_close: dict[str, float] = {}
        self._last_day: date | None = None
        self._grids: dict[str, ChainGrid] = {}

    def sessions(self, start: date, end: date) -> list[Session]:
        """XNYS sessions from `start` to `end` on which the data has bars of these symbols."""
        have: set[int] = set()
        for s in self.symbols:
            have.update(np.unique(self.data.series[s].day).tolist())
        return [s for s in self.calendar.sessions(start, end) if s.day.toordinal() in have]

    def settlement_price(self, symbol: str) -> float:
        """The last close published for `symbol` (its session close once the session is consumed)."""
        return self._last_close[symbol]

    def _iv(self, symbol: str, day: date, idx: int) -> tuple[float, float]:
        """(30-day ATM IV, long-run level) for a chain after bar `idx` (-1: before any bar)."""
        a = self._anchors[symbol]
        i = int(np.searchsorted(a.days, day.toordinal()))
        iv = a.prior[i]
        if idx >= 0:
            known = self.data.series[symbol].iv[idx]
            if math.isfinite(known) and known > 0:
                iv = float(known)
        return float(iv), float(a.long_run[i])

    def _grid(self, symbol: str, day: date, spot: float) -> ChainGrid:
        rng = np.random.default_rng(
            np.random.SeedSequence([self.seed, day.toordinal(), zlib.crc32(symbol.encode())])
        )
        prof = PROFILES.get(symbol, DEFAULT_PROFILE)
        return build_grid(symbol, day, spot, self.calendar, rng, oi_scale=prof.oi_scale)

    def _cached(
        self, symbol: str, day: date, ts_ns: int, spot: float, idx: int, frac: float, ref: float
    ) -> ChainSnapshot:
        """The model chain of `symbol` at `ts_ns` (grid listed around `ref`, the session's open)."""
        key = (symbol, ts_ns)
        if self._cache is not None and key in self._cache:
            return self._cache[key]
        grid = self._grids.get(symbol)
        if grid is None or grid.day != day:
            grid = self._grids[symbol] = self._grid(symbol, day, ref)
        chain = self._chain(grid, ts_ns, spot, idx, frac)
        if self._cache is not None:
            self._cache[key] = chain
        return chain

    def _chain(
        self, grid: ChainGrid, ts_ns: int, spot: float, idx: int, frac: float
    ) -> ChainSnapshot:
        symbol, day = grid.underlying, grid.day
        iv30, long_run = self._iv(symbol, day, idx)
        m = self.model
        surface = SurfaceParams(
            long_run_vol=long_run,
            skew=m.skew,
            smile=m.smile,
            spread_mult=min(max(iv30 / m.spread_vol_ref, 1.0), 2.5),
        )
        q = PROFILES.get(symbol, DEFAULT_PROFILE).div_yield
        return price_chain(grid, ts_ns, spot, m.rate, q, iv30, surface, frac)

    def session_events(self, session: Session) -> Iterator[tuple[int, ReplayEvent]]:
        """The session's `(ts_ns, event)` stream in time order (bars before chains at equal times)."""
        if self._last_day is not None and session.day <= self._last_day:
            raise ValueError(f"session {session.day} is not after {self._last_day}")
        self._last_day = session.day
        if self.data.daily:
            return self._daily(session)
        return self._intraday(session)

    def _daily(self, session: Session) -> Iterator[tuple[int, ReplayEvent]]:
        for sym in self.symbols:
            s = self.data.series[sym]
            lo, hi = s.day_slice(session.day)
            if lo == hi:
                continue
            i = hi - 1
            ts = int(s.end_ns[i])
            close = float(s.close[i])
            bar = Bar(
                sym,
                int(s.start_ns[i]),
                float(s.open[i]),
                float(s.high[i]),
                float(s.low[i]),
                close,
                float(s.volume[i]),
            )
            self._last_close[sym] = close
            yield ts, bar
            if self.chains and math.isfinite(close) and close > 0:
                yield ts, self._cached(sym, session.day, ts, close, i, 1.0, float(s.open[i]))

    def _intraday(self, session: Session) -> Iterator[tuple[int, ReplayEvent]]:
        open_ns, close_ns = datetime_to_ns(session.open), datetime_to_ns(session.close)
        # (time, order, symbol index, bar index or -1 for a chain): bars before chains at a time.
        slots: list[tuple[int, int, int, int]] = []
        bounds: dict[int, tuple[int, int]] = {}
        for k, sym in enumerate(self.symbols):
            s = self.data.series[sym]
            lo, hi = s.day_slice(session.day)
            if lo == hi:
                continue
            bounds[k] = (lo, hi)
            ends = s.end_ns[lo:hi].tolist()
            slots.extend((t, 0, k, lo + n) for n, t in enumerate(ends))
            if self.chains:
                slots.extend((t, 1, k, -1) for t in range(open_ns, close_ns, self.refresh_ns))
        slots.sort()
        last: dict[int, int] = {}  # symbol index -> last bar index published
        n_total = max(close_ns - open_ns, 1)
        for ts, kind, k, j in slots:
            sym = self.symbols[k]
            s = self.data.series[sym]
            if kind == 0:
                last[k] = j
                close = float(s.close[j])
                self._last_close[sym] = close
                yield (
                    ts,
                    Bar(
                        sym,
                        int(s.start_ns[j]),
                        float(s.open[j]),
                        float(s.high[j]),
                        float(s.low[j]),
                        close,
                        float(s.volume[j]),
                    ),
                )
                continue
            lo, _ = bounds[k]
            idx = last.get(k, -1)
            spot = float(s.close[idx]) if idx >= 0 else float(s.open[lo])
            ref = float(s.open[lo])
            if not (math.isfinite(spot) and spot > 0 and math.isfinite(ref) and ref > 0):
                continue
            frac = ((ts - open_ns) / n_total) ** 0.8  # concave intraday option volume, as the sim
            yield ts, self._cached(sym, session.day, ts, spot, idx, frac, ref)


def default_window(data: ReplayData, years: float = 2.0) -> tuple[date, date]:
    """The last `years` of the data (for optimisation without --from/--to)."""
    days = data.days()
    end = days[-1]
    start = max(days[0], end - timedelta(days=round(365.25 * years)))
    return start, end
