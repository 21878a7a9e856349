"""The one exception tree of gnosisd; messages say what was wrong and what to do."""

from __future__ import annotations


class GnosisError(Exception):
    """Base of every error gnosisd raises on purpose."""


class ConfigError(GnosisError):
    """Configuration is invalid; start-up stops with a message naming the key and allowed range."""


class InvalidSymbolError(GnosisError, ValueError):
    """A string is not a valid OCC option symbol."""


class InvariantViolation(GnosisError):
    """An impossible state: crash-only, the process exits non-zero and systemd restarts it."""


class MarketDataError(GnosisError, ValueError):
    """A market-data message failed validation at the boundary (dropped and counted, never fatal)."""
