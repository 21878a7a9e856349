"""GARCH(1,1) volatility forecast (the `arch` package) and the bundled proxies of a short history.

Proxies: the `arch` package ships daily VIX closes (2014–2018) and S&P 500 prices (1999–2018);
scaled per underlying they stand in for ATM IV and daily returns until real ones accumulate.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from datetime import date
from functools import cache

import numpy as np
import numpy.typing as npt

PROXY_IV_SOURCE = "proxy:arch_vix"
PROXY_RETURN_SOURCE = "proxy:arch_sp500"
TRADING_DAYS = 252
# ATM IV / VIX: VIX is the 30-day variance-swap rate, above ATM IV by the skew's convexity (Carr &
# Wu, "A Tale of Two Indices", J. Derivatives 2006); 0.9 is a typical SPX ratio.
ATM_OVER_VIX = 0.9
# Vol of each index ETF relative to the S&P 500: the long-run ratios of Cboe's VXN (Nasdaq-100),
# RVX (Russell 2000) and VXD (Dow) to VIX. Other underlyings use 1.0 (a poor proxy: disable it).
VOL_RATIO: dict[str, float] = {"SPY": 1.0, "QQQ": 1.25, "IWM": 1.4, "DIA": 0.95}


@dataclass(frozen=True, slots=True)
class GarchForecast:
    """Annualised vol forecast over `horizon_days` sessions and the fitted GARCH(1,1) parameters."""

    vol: float
    horizon_days: int
    omega: float
    alpha: float
    beta: float

    @property
    def persistence(self) -> float:
        return self.alpha + self.beta


def garch_forecast(returns: npt.NDArray[np.float64], horizon_days: int) -> GarchForecast | None:
    """Fit GARCH(1,1) with a constant mean and normal errors to daily log returns; forecast vol.

    σ²_{t+1} = ω + α ε²_t + β σ²_t (Bollerslev, J. Econometrics 31, 1986), fitted by `arch` (maximum
    likelihood, deterministic SLSQP from fixed starting values) on returns in percent. The forecast
    is √(mean of the 1..h-step variance forecasts × 252) / 100, annualised decimal. None when the
    optimiser does not converge or the data are degenerate.
    """
    from arch import arch_model  # heavy import, only when a fit is due

    r = np.asarray(returns, dtype=np.float64)
    r = r[np.isfinite(r)] * 100.0
    if r.size < 10 or float(np.std(r)) <= 0:
        return None
    try:
        with warnings.catch_warnings():
            # arch warns on convergence and data scale; both are judged below instead.
            warnings.simplefilter("ignore")
            model = arch_model(r, mean="Constant", vol="GARCH", p=1, q=1, dist="normal")
            res = model.fit(disp="off", show_warning=False)
            if res.convergence_flag != 0:
                return None
            fc = res.forecast(horizon=horizon_days, reindex=False)
    except (ValueError, np.linalg.LinAlgError, RuntimeError):
        return None
    var = np.asarray(fc.variance.to_numpy()[-1], dtype=np.float64)
    if var.size == 0 or not np.all(np.isfinite(var)):
        return None
    vol = math.sqrt(float(np.mean(var)) * TRADING_DAYS) / 100.0
    p = res.params
    return GarchForecast(
        vol=vol,
        horizon_days=horizon_days,
        omega=float(p["omega"]),
        alpha=float(p["alpha[1]"]),
        beta=float(p["beta[1]"]),
    )


@cache
def _vix() -> tuple[tuple[date, float], ...]:
    import arch.data.vix

    frame = arch.data.vix.load()["vix"].dropna()
    return tuple((ts.date(), float(v)) for ts, v in zip(frame.index, frame.to_numpy(), strict=True))


@cache
def _sp500_returns() -> tuple[tuple[date, float], ...]:
    import arch.data.sp500

    close = arch.data.sp500.load()["Adj Close"].dropna()
    values = close.to_numpy(dtype=np.float64)
    r = np.diff(np.log(values))
    days = [ts.date() for ts in close.index[1:]]
    return tuple((d, float(x)) for d, x in zip(days, r, strict=True))


def bundled_iv_proxy(symbol: str) -> list[tuple[date, float]]:
    """Daily ATM IV proxy, oldest first: VIX/100 × ATM_OVER_VIX × VOL_RATIO[symbol]."""
    scale = ATM_OVER_VIX * VOL_RATIO.get(symbol.upper(), 1.0) / 100.0
    return [(d, v * scale) for d, v in _vix() if v > 0]


def bundled_return_proxy(symbol: str) -> list[tuple[date, float]]:
    """Daily log-return proxy, oldest first: S&P 500 log returns × VOL_RATIO[symbol]."""
    scale = VOL_RATIO.get(symbol.upper(), 1.0)
    return [(d, r * scale) for d, r in _sp500_returns()]


__all__ = [
    "PROXY_IV_SOURCE",
    "PROXY_RETURN_SOURCE",
    "GarchForecast",
    "bundled_iv_proxy",
    "bundled_return_proxy",
    "garch_forecast",
]
