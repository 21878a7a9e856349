"""Latest market state per symbol (owned by the runtime; a read-only MarketView for the guard)."""

from __future__ import annotations

from gnosisd.bus.events import ChainSnapshot


class MarketState:
    """Last data time per symbol and the latest chain per underlying."""

    def __init__(self) -> None:
        self._last_ns: dict[str, int] = {}
        self._chains: dict[str, ChainSnapshot] = {}
        self._spot: dict[str, float] = {}

    def touch(self, symbol: str, ts_ns: int) -> None:
        if ts_ns > self._last_ns.get(symbol, 0):
            self._last_ns[symbol] = ts_ns

    def set_spot(self, symbol: str, price: float, ts_ns: int) -> None:
        self._spot[symbol] = price
        self.touch(symbol, ts_ns)

    def set_chain(self, chain: ChainSnapshot) -> None:
        self._chains[chain.underlying] = chain
        self.set_spot(chain.underlying, chain.spot, chain.ts_ns)

    def last_data_ns(self, symbol: str) -> int | None:
        return self._last_ns.get(symbol)

    def chain(self, symbol: str) -> ChainSnapshot | None:
        return self._chains.get(symbol)

    def spot(self, symbol: str) -> float | None:
        return self._spot.get(symbol)
