"""Alpaca endpoints: paper or live chosen explicitly, URLs overridable, contradictions refused."""

from __future__ import annotations

import pytest

from gnosisd.broker.alpaca.config import (
    credentials_from_settings,
    endpoints_from_env,
    endpoints_from_settings,
    resolve_endpoints,
)
from gnosisd.core.config import Settings
from gnosisd.core.errors import ConfigError


def test_paper_defaults() -> None:
    e = resolve_endpoints("paper")
    assert e.trading_url == "https://paper-api.alpaca.markets"
    assert e.trading_stream_url == "wss://paper-api.alpaca.markets/stream"
    assert e.data_url == "https://data.alpaca.markets"
    assert e.data_stream_url == "wss://stream.data.alpaca.markets"
    assert not e.is_live


def test_live_defaults() -> None:
    e = resolve_endpoints("live")
    assert e.trading_url == "https://api.alpaca.markets" and e.is_live
    assert e.trading_stream_url == "wss://api.alpaca.markets/stream"


def test_every_endpoint_is_overridable_from_the_environment() -> None:
    env = {
        "ALPACA_BASE_URL": "http://127.0.0.1:9000/",
        "ALPACA_DATA_URL": "http://127.0.0.1:9001",
        "ALPACA_DATA_STREAM_URL": "ws://127.0.0.1:8765",
        "ALPACA_TRADING_STREAM_URL": "ws://127.0.0.1:8766/stream",
    }
    e = endpoints_from_env("live", env)
    assert (e.trading_url, e.data_url) == ("http://127.0.0.1:9000", "http://127.0.0.1:9001")
    assert e.data_stream_url == "ws://127.0.0.1:8765"
    assert e.trading_stream_url == "ws://127.0.0.1:8766/stream"
    assert e.is_live  # a local URL does not make it paper: the mode is explicit


def test_a_url_contradicting_the_mode_is_refused() -> None:
    with pytest.raises(ConfigError, match="never inferred"):
        endpoints_from_env("paper", {"ALPACA_BASE_URL": "https://api.alpaca.markets"})
    with pytest.raises(ConfigError, match="never inferred"):
        resolve_endpoints("live", trading_stream_url="wss://paper-api.alpaca.markets/stream")


def test_bad_mode_and_bad_urls_say_what_is_wrong() -> None:
    with pytest.raises(ConfigError, match="'paper' or 'live'"):
        resolve_endpoints("demo")
    with pytest.raises(ConfigError, match="ALPACA_DATA_STREAM_URL must be a ws:// or wss://"):
        resolve_endpoints("paper", data_stream_url="http://127.0.0.1:1")


def test_settings_supply_mode_urls_and_keys_and_a_flag_overrides_the_mode() -> None:
    s = Settings(
        execution={"alpaca_mode": "paper"},
        alpaca={
            "api_key": "PKTEST",
            "secret_key": "SECRETVALUE",
            "data_stream_url": "ws://127.0.0.1:1",
        },
    )
    assert endpoints_from_settings(s).mode == "paper"
    assert endpoints_from_settings(s, "live").mode == "live"
    assert endpoints_from_settings(s).data_stream_url == "ws://127.0.0.1:1"
    creds = credentials_from_settings(s)
    assert creds.api_key == "PKTEST" and "SECRETVALUE" not in repr(creds)
    with pytest.raises(ConfigError, match="ALPACA_API_KEY"):
        credentials_from_settings(Settings())
