"""Bus topics: constants, never string literals at call sites."""

from __future__ import annotations

from enum import StrEnum


class Topic(StrEnum):
    QUOTES = "md.quotes"
    TRADES = "md.trades"
    BARS = "md.bars"
    CHAINS = "md.chains"
    NEWS = "md.news"
    ENGINES = "an.engines"
    CONTEXT = "an.context"
    IDEAS = "an.ideas"
    INTENTS = "ord.intents"  # SubmitOrder to the risk guard
    DECISIONS = "ord.decisions"  # RiskDecided (approved ones go to the broker)
    ORDER_UPDATES = "ord.updates"
    FILLS = "ord.fills"
    CONTROL = "ctl.control"


# Market data may be conflated for a lagging consumer: the latest event per key wins.
CONFLATABLE: frozenset[Topic] = frozenset({Topic.QUOTES, Topic.CHAINS})
