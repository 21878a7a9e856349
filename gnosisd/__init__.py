"""gnosisd: an event-driven asyncio options-trading daemon with hard risk controls."""

__version__ = "0.1.0"
