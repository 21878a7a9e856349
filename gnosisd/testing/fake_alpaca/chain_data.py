"""Option contracts and snapshots as Alpaca's REST API returns them, built from a ChainSnapshot.

Greeks are sent in the common vendor units (vega per 1 vol point, theta per day) on purpose: the
feed must not trust them (it recomputes greeks from the IV).
"""

from __future__ import annotations

import uuid
from typing import Any

from gnosisd.bus.events import ChainSnapshot
from gnosisd.core.occ import parse_occ
from gnosisd.testing.fake_alpaca.orders import dec_text


def contract_json(chain: ChainSnapshot, i: int) -> dict[str, Any]:
    """Row `i` of `chain` as an /v2/options/contracts entry (open interest included)."""
    symbol = chain.symbols[i]
    c = parse_occ(symbol)
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_OID, symbol)),
        "symbol": symbol,
        "name": f"{chain.underlying} {c.expiry} {c.option_type} {c.strike}",
        "status": "active",
        "tradable": True,
        "expiration_date": c.expiry.isoformat(),
        "root_symbol": chain.underlying,
        "underlying_symbol": chain.underlying,
        "underlying_asset_id": str(uuid.uuid5(uuid.NAMESPACE_OID, chain.underlying)),
        "type": c.option_type.value,
        "style": "american",
        "strike_price": dec_text(c.strike),
        "size": "100",
        "open_interest": str(int(chain.open_interest[i])),
        "open_interest_date": c.expiry.isoformat(),
        "close_price": None,
        "close_price_date": None,
    }


def snapshot_json(chain: ChainSnapshot, i: int, stamp: str) -> dict[str, Any]:
    """Row `i` of `chain` as an /v1beta1/options/snapshots entry (quote time `stamp`)."""
    return {
        "latestQuote": {
            "ap": float(chain.ask[i]),
            "as": 10,
            "ax": "C",
            "bp": float(chain.bid[i]),
            "bs": 10,
            "bx": "C",
            "c": "A",
            "t": stamp,
        },
        "impliedVolatility": float(chain.iv[i]),
        "greeks": {
            "delta": float(chain.delta[i]),
            "gamma": float(chain.gamma[i]),
            "rho": 0.0,
            "theta": float(chain.theta[i]) / 365.0,
            "vega": float(chain.vega[i]) / 100.0,
        },
        "dailyBar": {"o": 1.0, "h": 1.0, "l": 1.0, "c": 1.0, "v": int(chain.volume[i])},
    }
