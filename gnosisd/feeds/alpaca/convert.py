"""Alpaca stream messages (raw msgpack dicts) into gnosisd events, structurally checked.

alpaca-py runs with raw_data=True: no pydantic model per quote on the hot path, nanosecond
timestamps kept (msgpack Timestamp), and every bad message is ours to count. A message missing a
field or carrying a wrong type is "malformed" (None here); the values are judged afterwards by
MarketDataValidator. Exact type checks (`type(x) in _NUM`) keep bools out and are fast.
"""

from __future__ import annotations

from typing import Any

import msgpack

from gnosisd.bus.events import Bar, NewsItem, Quote, Trade

MALFORMED = "malformed"
_NUM = (float, int)
_Timestamp = msgpack.Timestamp


def ts_ns(value: Any) -> int | None:
    """Nanoseconds of a msgpack Timestamp (the only form Alpaca streams send), else None."""
    if type(value) is _Timestamp:
        return int(value.to_unix_nano())
    return None


def to_quote(msg: Any) -> Quote | None:
    """A Quote from a `T: q` message (stock or option), None if malformed."""
    if type(msg) is not dict:
        return None
    try:
        symbol, t = msg["S"], msg["t"]
        bp, ap, bs, az = msg["bp"], msg["ap"], msg["bs"], msg["as"]
    except KeyError:
        return None
    if type(symbol) is not str or not symbol or type(t) is not _Timestamp:
        return None
    if type(bp) not in _NUM or type(ap) not in _NUM or type(bs) not in _NUM or type(az) not in _NUM:
        return None
    return Quote(symbol, int(t.to_unix_nano()), float(bp), float(ap), float(bs), float(az))


def to_trade(msg: Any) -> Trade | None:
    if type(msg) is not dict:
        return None
    try:
        symbol, t, price, size = msg["S"], msg["t"], msg["p"], msg["s"]
    except KeyError:
        return None
    if type(symbol) is not str or not symbol or type(t) is not _Timestamp:
        return None
    if type(price) not in _NUM or type(size) not in _NUM:
        return None
    return Trade(symbol, int(t.to_unix_nano()), float(price), float(size))


def to_bar(msg: Any) -> Bar | None:
    """A 1-minute Bar from a `T: b` message (t is the bar's start), None if malformed."""
    if type(msg) is not dict:
        return None
    try:
        symbol, t = msg["S"], msg["t"]
        values = (msg["o"], msg["h"], msg["l"], msg["c"], msg["v"])
    except KeyError:
        return None
    if type(symbol) is not str or not symbol or type(t) is not _Timestamp:
        return None
    if any(type(v) not in _NUM for v in values):
        return None
    o, h, lo, c, v = (float(x) for x in values)
    return Bar(symbol, int(t.to_unix_nano()), o, h, lo, c, v)


def to_news(msg: Any) -> NewsItem | None:
    """A NewsItem from a `T: n` message (created_at is its time), None if malformed."""
    if type(msg) is not dict:
        return None
    t = ts_ns(msg.get("created_at"))
    headline = msg.get("headline")
    symbols = msg.get("symbols") or []
    if t is None or type(headline) is not str or type(symbols) is not list:
        return None
    if not all(type(s) is str for s in symbols):
        return None
    return NewsItem(ts_ns=t, headline=headline, symbols=tuple(symbols))
