"""BSM prices and greeks against QuantLib's BlackCalculator on thousands of random contracts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gnosisd.quant import bsm

ql = pytest.importorskip("QuantLib")

N_CASES = 3_000


def random_contracts(n: int, seed: int) -> dict[str, np.ndarray]:
    """Moneyness K/S 0.5-2, T one day to two years, vol 5 %-200 %, r 0-10 %, q 0-5 % (log-uniform
    where the range spans decades)."""
    rng = np.random.default_rng(seed)
    return {
        "is_call": rng.random(n) < 0.5,
        "S": rng.uniform(20.0, 800.0, n),
        "m": np.exp(rng.uniform(math.log(0.5), math.log(2.0), n)),
        "T": np.exp(rng.uniform(math.log(1.0 / 365.0), math.log(2.0), n)),
        "r": rng.uniform(0.0, 0.10, n),
        "q": rng.uniform(0.0, 0.05, n),
        "sigma": np.exp(rng.uniform(math.log(0.05), math.log(2.0), n)),
    }


def quantlib_reference(c: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out: dict[str, list[float]] = {
        k: [] for k in ("price", "delta", "gamma", "vega", "theta", "rho")
    }
    for i in range(len(c["S"])):
        s, t, r, q, v = (float(c[k][i]) for k in ("S", "T", "r", "q", "sigma"))
        k = s * float(c["m"][i])
        kind = ql.Option.Call if c["is_call"][i] else ql.Option.Put
        calc = ql.BlackCalculator(
            ql.PlainVanillaPayoff(kind, k),
            s * math.exp((r - q) * t),
            v * math.sqrt(t),
            math.exp(-r * t),
        )
        out["price"].append(calc.value())
        out["delta"].append(calc.delta(s))
        out["gamma"].append(calc.gamma(s))
        out["vega"].append(calc.vega(t))
        out["theta"].append(calc.theta(s, t))
        out["rho"].append(calc.rho(t))
    return {k: np.asarray(v) for k, v in out.items()}


def assert_close(ours: np.ndarray, ref: np.ndarray, rtol: float, atol: np.ndarray | float) -> None:
    """|ours − ref| <= rtol·|ref| + atol elementwise (atol may be an array); report the worst."""
    err = np.abs(ours - ref)
    bound = rtol * np.abs(ref) + atol
    worst = int(np.argmax(err / bound))
    assert np.all(err <= bound), (
        f"worst case {worst}: ours {ours[worst]!r}, reference {ref[worst]!r}"
    )


@pytest.fixture(scope="module")
def cases() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    c = random_contracts(N_CASES, seed=2024)
    return c, quantlib_reference(c)


def test_european_prices_match_quantlib_on_random_contracts(
    cases: tuple[dict[str, np.ndarray], dict[str, np.ndarray]],
) -> None:
    c, ref = cases
    ours = bsm.price(c["is_call"], c["S"], c["S"] * c["m"], c["T"], c["r"], c["q"], c["sigma"])
    assert_close(ours, ref["price"], rtol=1e-10, atol=1e-10 * c["S"])


@pytest.mark.parametrize("name", ["delta", "gamma", "vega", "theta", "rho"])
def test_european_greeks_match_quantlib_in_its_units(
    cases: tuple[dict[str, np.ndarray], dict[str, np.ndarray]], name: str
) -> None:
    # QuantLib: vega per 1.00 of vol, theta per year, rho per 1.00 of rate: the same units as ours.
    c, ref = cases
    g = bsm.greeks(c["is_call"], c["S"], c["S"] * c["m"], c["T"], c["r"], c["q"], c["sigma"])
    scale = {"delta": 1.0, "gamma": 1.0 / c["S"], "vega": c["S"], "theta": c["S"], "rho": c["S"]}
    assert_close(getattr(g, name), ref[name], rtol=1e-8, atol=1e-10 * scale[name])


def test_second_order_greeks_match_finite_differences_on_random_contracts() -> None:
    c = random_contracts(2_000, seed=7)
    # Keep contracts whose delta is not pinned at 0 or 1 (finite differences of flat functions are
    # noise).
    S, K, T, r, q, v, call = (
        c["S"],
        c["S"] * c["m"],
        c["T"],
        c["r"],
        c["q"],
        c["sigma"],
        c["is_call"],
    )
    g = bsm.greeks(call, S, K, T, r, q, v)
    live = (np.abs(g.delta) > 0.02) & (np.abs(g.delta) < 0.98 * np.exp(-q * T))
    hv, ht = 1e-4, 1e-6

    def at(**kw: np.ndarray) -> bsm.Greeks:
        args = {"S": S, "K": K, "T": T, "r": r, "q": q, "sigma": v} | kw
        return bsm.greeks(call, **args)

    vanna = (at(sigma=v + hv).delta - at(sigma=v - hv).delta) / (2 * hv)
    vomma = (at(sigma=v + hv).vega - at(sigma=v - hv).vega) / (2 * hv)
    charm = -(at(T=T + ht).delta - at(T=T - ht).delta) / (2 * ht)
    assert_close(g.vanna[live], vanna[live], rtol=1e-4, atol=1e-6)
    assert_close(g.vomma[live], vomma[live], rtol=1e-4, atol=1e-6 * S[live])
    assert_close(g.charm[live], charm[live], rtol=1e-3, atol=1e-5)
