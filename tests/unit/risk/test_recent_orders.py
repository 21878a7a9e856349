"""RecentOrders sweeps expired signatures as it grows; live ones always stay matchable."""

from __future__ import annotations

from gnosisd.risk.windows import OrderSignature, RecentOrders

S = 1_000_000_000


def sig(i: int) -> OrderSignature:
    return ("SPY", True, ((f"SPY250718P{i:08d}", True, 1),), 1, 15_000)


def test_live_signatures_survive_every_sweep_and_expired_ones_never_match() -> None:
    recent = RecentOrders(30 * S)
    for i in range(5_000):  # one order a second: 30 live at any time, thousands expired
        now = i * S
        recent.record(sig(i), f"i-{i}", now)
        assert recent.match(sig(i), now) == (now, f"i-{i}")
        if i >= 30:
            assert recent.match(sig(i - 29), now) == ((i - 29) * S, f"i-{i - 29}")
            assert recent.match(sig(i - 30), now) is None  # exactly the window old: expired
    assert len(recent._seen) < 200  # swept as it went, not kept up to 10,000


def test_many_live_signatures_are_all_kept() -> None:
    recent = RecentOrders(3_600 * S)
    for i in range(3_000):
        recent.record(sig(i), f"i-{i}", i)
    assert all(recent.match(sig(i), 3_000) == (i, f"i-{i}") for i in range(3_000))
