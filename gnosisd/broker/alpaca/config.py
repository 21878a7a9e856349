"""Alpaca endpoints and keys: paper or live chosen explicitly, every URL overridable from the env.

The mode is never inferred from a URL; a URL that contradicts the chosen mode (the live trading
host in paper mode, or the reverse) is refused rather than silently trusted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from gnosisd.core.config import Settings
from gnosisd.core.errors import ConfigError

AlpacaMode = Literal["paper", "live"]

PAPER_TRADING_URL = "https://paper-api.alpaca.markets"
LIVE_TRADING_URL = "https://api.alpaca.markets"
DATA_URL = "https://data.alpaca.markets"
DATA_STREAM_URL = "wss://stream.data.alpaca.markets"
_PAPER_HOST = "paper-api.alpaca.markets"
_LIVE_HOST = "api.alpaca.markets"

# Environment variable -> endpoint field (documented in docs/alpaca.md).
ENV_VARS: dict[str, str] = {
    "ALPACA_BASE_URL": "trading_url",
    "ALPACA_DATA_URL": "data_url",
    "ALPACA_DATA_STREAM_URL": "data_stream_url",
    "ALPACA_TRADING_STREAM_URL": "trading_stream_url",
}


@dataclass(frozen=True, slots=True)
class AlpacaEndpoints:
    """Where each Alpaca API lives; `data_stream_url` is a base to which a feed's path is added."""

    mode: AlpacaMode
    trading_url: str  # trading REST, without /v2
    data_url: str  # market-data REST, without /v2 or /v1beta1
    data_stream_url: str  # e.g. wss://stream.data.alpaca.markets (+ /v2/iex, /v1beta1/opra ...)
    trading_stream_url: str  # full URL, e.g. wss://paper-api.alpaca.markets/stream

    @property
    def is_live(self) -> bool:
        return self.mode == "live"


@dataclass(frozen=True, slots=True)
class AlpacaCredentials:
    """API key pair; the secret never appears in a repr or a log line."""

    api_key: str = field(repr=False)
    secret_key: str = field(repr=False)


def resolve_endpoints(
    mode: str,
    *,
    trading_url: str | None = None,
    data_url: str | None = None,
    data_stream_url: str | None = None,
    trading_stream_url: str | None = None,
) -> AlpacaEndpoints:
    """Endpoints for `mode` (paper|live) with the given overrides; raise ConfigError if invalid."""
    if mode not in ("paper", "live"):
        raise ConfigError(f"execution.alpaca_mode must be 'paper' or 'live', got {mode!r}")
    live = mode == "live"
    default_trading = LIVE_TRADING_URL if live else PAPER_TRADING_URL
    trading = _url("ALPACA_BASE_URL", trading_url or default_trading, ("http", "https"))
    data = _url("ALPACA_DATA_URL", data_url or DATA_URL, ("http", "https"))
    stream = _url("ALPACA_DATA_STREAM_URL", data_stream_url or DATA_STREAM_URL, ("ws", "wss"))
    default_ts = default_trading.replace("https://", "wss://") + "/stream"
    tstream = _url("ALPACA_TRADING_STREAM_URL", trading_stream_url or default_ts, ("ws", "wss"))
    wrong_host = _PAPER_HOST if live else _LIVE_HOST
    for name, url in (("ALPACA_BASE_URL", trading), ("ALPACA_TRADING_STREAM_URL", tstream)):
        if urlsplit(url).hostname == wrong_host:
            raise ConfigError(
                f"{name}={url} is Alpaca's {'paper' if live else 'live'} host but "
                f"execution.alpaca_mode is {mode}; the mode is never inferred from a URL: "
                "fix the URL or set the mode explicitly"
            )
    return AlpacaEndpoints(mode, trading, data, stream, tstream)  # type: ignore[arg-type]


def endpoints_from_env(mode: str, env: Mapping[str, str]) -> AlpacaEndpoints:
    """Endpoints for `mode` with overrides from ALPACA_BASE_URL, ALPACA_DATA_URL, ... in `env`."""
    overrides = {fld: env.get(var) or None for var, fld in ENV_VARS.items()}
    return resolve_endpoints(mode, **overrides)


def endpoints_from_settings(settings: Settings, mode: str | None = None) -> AlpacaEndpoints:
    """Endpoints from the loaded settings; `mode` (a command-line flag) overrides the config."""
    a = settings.alpaca
    return resolve_endpoints(
        mode or settings.execution.alpaca_mode,
        trading_url=a.base_url,
        data_url=a.data_url,
        data_stream_url=a.data_stream_url,
        trading_stream_url=a.trading_stream_url,
    )


def credentials_from_settings(settings: Settings) -> AlpacaCredentials:
    """The key pair from ALPACA_API_KEY / ALPACA_SECRET_KEY; raise ConfigError if either is missing."""
    key = settings.alpaca.api_key
    secret = settings.alpaca.secret_key
    if key is None or secret is None or not key.get_secret_value() or not secret.get_secret_value():
        raise ConfigError(
            "the Alpaca broker and feed need ALPACA_API_KEY and ALPACA_SECRET_KEY in the "
            "environment or the git-ignored .env file"
        )
    return AlpacaCredentials(key.get_secret_value(), secret.get_secret_value())


def _url(name: str, value: str, schemes: tuple[str, ...]) -> str:
    value = value.strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.hostname:
        raise ConfigError(
            f"{name} must be a {' or '.join(s + '://' for s in schemes)} URL, got {value!r}"
        )
    return value
