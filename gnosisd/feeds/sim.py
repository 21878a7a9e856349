"""A seeded, deterministic simulated market: underlying quotes, trades, 1-minute bars and option chains.

Regimes (trend up/down, range, volatility expansion) switch by a Markov chain; state (price, regime,
IV level) carries from one session to the next on the same `SimMarket`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt

from gnosisd.bus.events import Bar, ChainSnapshot, NewsItem, Quote, SessionClosed, Trade
from gnosisd.core.calendar import Session, TradingCalendar
from gnosisd.core.clock import datetime_to_ns
from gnosisd.core.enums import Regime
from gnosisd.feeds.listing import ChainGrid, build_grid
from gnosisd.feeds.news import Headline, draw_headlines
from gnosisd.feeds.surface import SurfaceParams, price_chain

FloatArray = npt.NDArray[np.float64]
SimEvent = Quote | Trade | Bar | ChainSnapshot | NewsItem | SessionClosed

NS_PER_S = 1_000_000_000
NS_PER_MIN = 60 * NS_PER_S
RISK_FREE_RATE = 0.045
_REGULAR_MINUTES = 390
_TRADING_DAYS = 252
_FACTOR_CORR = 0.85  # correlation of index ETF returns with the common market factor
_NEWS_STREAM = 0x4E657773  # seed-sequence key of the headline stream ("News")


@dataclass(frozen=True, slots=True)
class SymbolProfile:
    """Static features of a simulated underlying."""

    start_price: float
    base_vol: float  # 30-day ATM IV in a calm range market
    div_yield: float
    beta: float  # loading of the trend drift
    oi_scale: float  # open interest of a popular near-the-money contract
    quote_spread: float  # quoted width of the underlying in dollars


PROFILES: dict[str, SymbolProfile] = {
    "SPY": SymbolProfile(565.0, 0.15, 0.013, 1.0, 20_000.0, 0.01),
    "QQQ": SymbolProfile(480.0, 0.19, 0.006, 1.2, 12_000.0, 0.01),
    "IWM": SymbolProfile(215.0, 0.22, 0.012, 1.15, 8_000.0, 0.01),
    "DIA": SymbolProfile(425.0, 0.14, 0.016, 0.9, 2_000.0, 0.02),
}
DEFAULT_PROFILE = SymbolProfile(100.0, 0.25, 0.0, 1.0, 1_000.0, 0.01)


@dataclass(frozen=True, slots=True)
class RegimeParams:
    drift_per_day: float  # log drift over a full session
    realised_vol_mult: float  # realised vol relative to the profile's base vol
    iv_mult: float  # target 30-day IV relative to base vol
    skew: float
    spread_mult: float
    mean_reversion: bool


REGIMES: tuple[Regime, ...] = (
    Regime.TREND_UP,
    Regime.TREND_DOWN,
    Regime.RANGE,
    Regime.VOL_EXPANSION,
)
REGIME_PARAMS: dict[Regime, RegimeParams] = {
    Regime.TREND_UP: RegimeParams(0.005, 0.75, 0.85, 0.10, 1.0, False),
    Regime.TREND_DOWN: RegimeParams(-0.005, 1.15, 1.30, 0.14, 1.15, False),
    Regime.RANGE: RegimeParams(0.0, 0.80, 1.00, 0.12, 1.0, True),
    Regime.VOL_EXPANSION: RegimeParams(-0.003, 2.20, 2.10, 0.16, 1.8, False),
}
# Transition probabilities per regime block (rows: from, columns: to, order of REGIMES); the
# stationary mix (~33% up, 22% down, 37% range, 9% vol) drifts up about 6% a year.
TRANSITIONS = np.array(
    [
        [0.93, 0.02, 0.04, 0.01],
        [0.03, 0.89, 0.05, 0.03],
        [0.04, 0.03, 0.92, 0.01],
        [0.02, 0.07, 0.06, 0.85],
    ]
)


@dataclass(frozen=True, slots=True)
class SymbolState:
    """What carries over the night for one underlying."""

    price: float
    iv30: float


@dataclass(frozen=True, slots=True)
class _SessionPath:
    """Everything random about one session, drawn up front so iteration is pure bookkeeping."""

    open_ns: int
    close_ns: int
    n_min: int
    regimes: npt.NDArray[np.int64]  # per minute, index into REGIMES
    prices: FloatArray  # (n_sym, n_ticks) unrounded
    open_prices: FloatArray  # (n_sym,)
    iv30: FloatArray  # (n_sym, n_min + 1): level at the start of each minute
    tick_offsets: npt.NDArray[np.int64]  # (n_sym, n_ticks) ns from the session open
    quote_sizes: npt.NDArray[np.int64]  # (n_sym, n_ticks, 2)
    trade_sizes: npt.NDArray[np.int64]  # (n_sym, n_ticks)
    bar_extra_volume: FloatArray  # (n_sym, n_min)
    grids: tuple[ChainGrid, ...]
    news: tuple[Headline, ...] = ()


class SimMarket:
    """Seeded synthetic market for a few index ETFs; one object simulates consecutive sessions.

    Same seed, symbols and sessions give identical events. Call `session_events(session)` for each
    session in calendar order; state carries over the night.
    """

    def __init__(
        self,
        symbols: Sequence[str],
        seed: int,
        *,
        chain_refresh_minutes: int = 5,
        start_prices: dict[str, float] | None = None,
        ticks_per_minute: int = 4,
        regime_block_minutes: int = 30,
        initial_regime: Regime | None = None,
        calendar: TradingCalendar | None = None,
        emit_session_closed: bool = False,
        emit_news: bool = False,
    ) -> None:
        if not symbols:
            raise ValueError("SimMarket needs at least one symbol")
        if chain_refresh_minutes < 1 or ticks_per_minute < 1 or regime_block_minutes < 1:
            raise ValueError("chain_refresh_minutes, ticks_per_minute, regime_block_minutes >= 1")
        self.symbols: tuple[str, ...] = tuple(s.upper() for s in symbols)
        self.seed = seed
        self.chain_refresh_minutes = chain_refresh_minutes
        self.ticks_per_minute = ticks_per_minute
        self.regime_block_minutes = regime_block_minutes
        self.emit_session_closed = emit_session_closed
        self.emit_news = emit_news
        self.rate = RISK_FREE_RATE
        self._cal = calendar or TradingCalendar()
        self._profiles = [PROFILES.get(s, DEFAULT_PROFILE) for s in self.symbols]
        starts = start_prices or {}
        init_rng = np.random.default_rng(np.random.SeedSequence([seed, 0]))
        if initial_regime is None:
            self._regime = int(init_rng.integers(len(REGIMES)))
        else:
            self._regime = REGIMES.index(initial_regime)
        self._state: dict[str, SymbolState] = {}
        for sym, prof in zip(self.symbols, self._profiles, strict=True):
            price = float(starts.get(sym, prof.start_price))
            if not (math.isfinite(price) and price > 0.0):
                raise ValueError(f"start price for {sym} must be positive, got {price}")
            iv = prof.base_vol * REGIME_PARAMS[REGIMES[self._regime]].iv_mult
            self._state[sym] = SymbolState(price=price, iv30=iv)
        self._last_trade: dict[str, float] = {s: st.price for s, st in self._state.items()}
        self._current_regime = REGIMES[self._regime]
        self._last_day: date | None = None
        self._last_chain: dict[str, ChainSnapshot] = {}
        # (ts_ns, regime) at each session open and regime change of every session simulated so far
        self.regime_path: list[tuple[int, Regime]] = []

    # ------------------------------------------------------------------ queries
    def div_yield(self, symbol: str) -> float:
        return self._profiles[self.symbols.index(symbol)].div_yield

    def settlement_price(self, symbol: str) -> float:
        """The last underlying trade price yielded (the closing price once a session has ended)."""
        return self._last_trade[symbol]

    def state(self, symbol: str) -> SymbolState:
        """The state that the next session starts from."""
        return self._state[symbol]

    @property
    def regime(self) -> Regime:
        """The regime at the last event yielded (ground truth, for evaluating the engines)."""
        return self._current_regime

    def last_chain(self, symbol: str) -> ChainSnapshot | None:
        return self._last_chain.get(symbol)

    # ------------------------------------------------------------------ simulation
    def session_events(self, session: Session) -> Iterator[tuple[int, SimEvent]]:
        """Simulate one session now and return its `(ts_ns, event)` stream in time order.

        Sessions must come in calendar order. The path is drawn at this call and the carry state
        (close, regime, IV level) is committed at once, so the next session follows this one even
        if the stream is not consumed to the end (the daemon may stop early).

        Per minute: the previous minute's Bar (at the minute boundary), a ChainSnapshot every
        `chain_refresh_minutes` from the open, if `emit_news` any NewsItem of that minute (a few per
        session, tone following the regime, from their own seeded stream so the market path does
        not depend on the flag), then quote+trade ticks. At the close: the last Bar and, if
        `emit_session_closed`, SessionClosed with each symbol's settlement price.
        """
        if self._last_day is not None and session.day <= self._last_day:
            raise ValueError(f"session {session.day} is not after {self._last_day}")
        gap_days = 1 if self._last_day is None else (session.day - self._last_day).days
        self._last_day = session.day
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, session.day.toordinal()]))
        path = self._simulate(session, rng, gap_days)
        return self._emit(session, path)

    def _step_regime(self, current: int, rng: np.random.Generator) -> int:
        return int(rng.choice(len(REGIMES), p=TRANSITIONS[current]))

    def _simulate(self, session: Session, rng: np.random.Generator, gap_days: int) -> _SessionPath:
        open_ns = datetime_to_ns(session.open)
        close_ns = datetime_to_ns(session.close)
        n_min = int((close_ns - open_ns) // NS_PER_MIN)
        tpm = self.ticks_per_minute
        n_ticks = n_min * tpm
        n_sym = len(self.symbols)

        # Regimes: one overnight step, then one step per block.
        n_blocks = -(-n_min // self.regime_block_minutes)
        blocks = np.empty(n_blocks, dtype=np.int64)
        r = self._step_regime(self._regime, rng)
        for b in range(n_blocks):
            if b > 0:
                r = self._step_regime(r, rng)
            blocks[b] = r
        minute_regime = blocks[np.arange(n_min) // self.regime_block_minutes]
        tick_regime = np.repeat(minute_regime, tpm)

        z_common = rng.standard_normal(n_ticks)
        z_idio = rng.standard_normal((n_sym, n_ticks))
        z_gap = rng.standard_normal(2)
        z_iv = rng.standard_normal((n_sym, n_min))
        u_offsets = rng.uniform(0.02, 0.9, size=(n_sym, n_ticks))
        quote_sizes = rng.integers(1, 40, size=(n_sym, n_ticks, 2)) * 100
        trade_sizes = rng.integers(1, 20, size=(n_sym, n_ticks)) * 100

        minute = np.arange(n_min, dtype=np.float64)
        # Intraday U-shape of volatility (busy open and close), normalised to unit mean variance.
        ushape = 1.0 + 0.8 * np.exp(-minute / 15.0) + 0.4 * np.exp(-(n_min - minute) / 15.0)
        ushape /= np.sqrt(np.mean(ushape**2))
        dt_tick = 1.0 / (_TRADING_DAYS * _REGULAR_MINUTES * tpm)
        rv_mult = np.array([REGIME_PARAMS[g].realised_vol_mult for g in REGIMES])
        drift = np.array([REGIME_PARAMS[g].drift_per_day for g in REGIMES])
        iv_mult = np.array([REGIME_PARAMS[g].iv_mult for g in REGIMES])
        reverting = np.array([REGIME_PARAMS[g].mean_reversion for g in REGIMES])[tick_regime]
        kappa_tick = math.log(2.0) / (45.0 * tpm)  # range regime: 45-minute half-life
        kappa_iv = (
            math.log(2.0) / 90.0
        )  # IV level relaxes to its regime target, 90-minute half-life

        prices = np.empty((n_sym, n_ticks))
        open_prices = np.empty(n_sym)
        iv30 = np.empty((n_sym, n_min + 1))
        regime0 = REGIME_PARAMS[REGIMES[int(blocks[0])]]
        for s, (sym, prof) in enumerate(zip(self.symbols, self._profiles, strict=True)):
            st = self._state[sym]
            daily_sd = prof.base_vol * regime0.realised_vol_mult / math.sqrt(_TRADING_DAYS)
            gap_z = _FACTOR_CORR * z_gap[0] + math.sqrt(1 - _FACTOR_CORR**2) * z_gap[1]
            gap = 0.45 * daily_sd * math.sqrt(gap_days) * gap_z
            x0 = math.log(st.price) + gap
            sig = prof.base_vol * rv_mult[tick_regime] * np.repeat(ushape, tpm) * math.sqrt(dt_tick)
            z = _FACTOR_CORR * z_common + math.sqrt(1 - _FACTOR_CORR**2) * z_idio[s]
            shocks = (
                sig * z + prof.beta * drift[tick_regime] / (_REGULAR_MINUTES * tpm) - 0.5 * sig**2
            )
            x = x0
            anchor = x0
            was_reverting = False
            row = prices[s]
            for i in range(n_ticks):
                if reverting[i]:
                    if not was_reverting:
                        anchor = x
                    x -= kappa_tick * (x - anchor)
                was_reverting = bool(reverting[i])
                x += shocks[i]
                row[i] = x
            np.exp(row, out=row)
            open_prices[s] = math.exp(x0)
            # IV level: regime target, vol of vol, and the leverage effect (IV up when price falls).
            scale = prof.base_vol / 0.15
            iv = st.iv30 + 0.3 * (prof.base_vol * regime0.iv_mult - st.iv30) - 1.2 * scale * gap
            minute_close = np.log(row[tpm - 1 :: tpm])
            minute_open = np.concatenate([[x0], minute_close[:-1]])
            ret = minute_close - minute_open
            iv30[s, 0] = max(iv, 0.05)
            for m in range(n_min):
                target = prof.base_vol * iv_mult[minute_regime[m]]
                iv = (
                    iv
                    + kappa_iv * (target - iv)
                    + 0.0006 * scale * z_iv[s, m]
                    - 1.2 * scale * ret[m]
                )
                iv = min(max(iv, 0.05), 1.5)
                iv30[s, m + 1] = iv

        sub = NS_PER_MIN // tpm
        base = (np.arange(n_ticks, dtype=np.int64) * sub)[None, :]
        tick_offsets = base + (u_offsets * sub).astype(np.int64)
        bar_extra = rng.lognormal(0.0, 0.3, size=(n_sym, n_min)) * 2_000.0 * ushape[None, :] ** 2
        grids = tuple(
            build_grid(
                sym, session.day, float(open_prices[s]), self._cal, rng, oi_scale=prof.oi_scale
            )
            for s, (sym, prof) in enumerate(zip(self.symbols, self._profiles, strict=True))
        )

        news: tuple[Headline, ...] = ()
        if self.emit_news:
            news_rng = np.random.default_rng(
                np.random.SeedSequence([self.seed, session.day.toordinal(), _NEWS_STREAM])
            )
            news = tuple(
                draw_headlines(news_rng, self.symbols, [REGIMES[int(g)] for g in minute_regime])
            )
        for b in range(n_blocks):
            if b == 0 or blocks[b] != blocks[b - 1]:
                block_ns = open_ns + b * self.regime_block_minutes * NS_PER_MIN
                self.regime_path.append((block_ns, REGIMES[int(blocks[b])]))
        # Commit the carry state now: the next session follows this one whether or not it is consumed.
        self._regime = int(blocks[-1])
        for s, sym in enumerate(self.symbols):
            self._state[sym] = SymbolState(price=float(prices[s, -1]), iv30=float(iv30[s, -1]))
        return _SessionPath(
            open_ns=open_ns,
            close_ns=close_ns,
            n_min=n_min,
            regimes=minute_regime,
            prices=prices,
            open_prices=open_prices,
            iv30=iv30,
            tick_offsets=tick_offsets,
            quote_sizes=quote_sizes,
            trade_sizes=trade_sizes,
            bar_extra_volume=bar_extra,
            grids=grids,
            news=news,
        )

    def _chain(self, s: int, path: _SessionPath, m: int, ts_ns: int, spot: float) -> ChainSnapshot:
        prof = self._profiles[s]
        params = REGIME_PARAMS[REGIMES[int(path.regimes[min(m, path.n_min - 1)])]]
        surface = SurfaceParams(
            long_run_vol=prof.base_vol * 1.1, skew=params.skew, spread_mult=params.spread_mult
        )
        # Cumulative option volume follows a concave intraday curve (heavy open).
        frac = (m / path.n_min) ** 0.8
        return price_chain(
            path.grids[s],
            ts_ns,
            spot,
            self.rate,
            prof.div_yield,
            float(path.iv30[s, m]),
            surface,
            frac,
        )

    def _emit(self, session: Session, path: _SessionPath) -> Iterator[tuple[int, SimEvent]]:
        tpm = self.ticks_per_minute
        n_sym = len(self.symbols)
        spots = [round(float(p), 2) for p in path.open_prices]
        prev_regime = -1
        news_at: dict[int, list[Headline]] = {}
        for h in path.news:
            news_at.setdefault(h.minute, []).append(h)
        for m in range(path.n_min + 1):
            t_m = path.open_ns + m * NS_PER_MIN
            if m > 0:
                lo, hi = (m - 1) * tpm, m * tpm
                for s, sym in enumerate(self.symbols):
                    px = np.round(path.prices[s, lo:hi], 2)
                    vol = float(path.trade_sizes[s, lo:hi].sum() + path.bar_extra_volume[s, m - 1])
                    bar = Bar(
                        sym,
                        t_m - NS_PER_MIN,
                        float(px[0]),
                        float(px.max()),
                        float(px.min()),
                        float(px[-1]),
                        float(math.floor(vol)),
                    )
                    yield t_m, bar
            if m == path.n_min:
                break
            regime_idx = int(path.regimes[m])
            if regime_idx != prev_regime:
                self._current_regime = REGIMES[regime_idx]
                prev_regime = regime_idx
            if m % self.chain_refresh_minutes == 0:
                for s, sym in enumerate(self.symbols):
                    chain = self._chain(s, path, m, t_m, spots[s])
                    self._last_chain[sym] = chain
                    yield t_m, chain
            for h in news_at.get(m, ()):
                yield t_m, NewsItem(ts_ns=t_m, headline=h.text, symbols=h.symbols)
            events: list[tuple[int, int, SimEvent]] = []
            for s, sym in enumerate(self.symbols):
                half = self._profiles[s].quote_spread / 2.0
                for j in range(m * tpm, (m + 1) * tpm):
                    p = float(path.prices[s, j])
                    ts = path.open_ns + int(path.tick_offsets[s, j])
                    last = round(p, 2)
                    bid = round(p - half, 2)
                    ask = max(round(p + half, 2), round(bid + 0.01, 2))
                    bid_sz, ask_sz = path.quote_sizes[s, j]
                    events.append(
                        (
                            ts,
                            2 * (j * n_sym + s),
                            Quote(sym, ts, bid, ask, float(bid_sz), float(ask_sz)),
                        )
                    )
                    t_ts = ts + 1_000_000
                    events.append(
                        (
                            t_ts,
                            2 * (j * n_sym + s) + 1,
                            Trade(sym, t_ts, last, float(path.trade_sizes[s, j])),
                        )
                    )
            events.sort(key=lambda e: (e[0], e[1]))
            for ts, _, ev in events:
                if isinstance(ev, Trade):
                    self._last_trade[ev.symbol] = ev.price
                    spots[self.symbols.index(ev.symbol)] = ev.price
                yield ts, ev
        if self.emit_session_closed:
            settle = {sym: self._last_trade[sym] for sym in self.symbols}
            yield (
                path.close_ns,
                SessionClosed(ts_ns=path.close_ns, day=session.day, settlement=settle),
            )
