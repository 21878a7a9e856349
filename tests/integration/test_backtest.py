"""`gnosisd backtest`: the daemon's components on the simulated clock, results, determinism, parity."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from gnosisd.cli import main

REPLAY = ["--feed", "replay", "--data", "arch:sp500", "--symbols", "SPY"]


def write_config(tmp_path: Path, **runtime: Any) -> Path:
    """A config whose every live path is under tmp_path (the backtest puts its own under --output-dir)."""
    cfg = {
        "runtime": {
            "runs_dir": str(tmp_path / "live" / "runs"),
            "logs_dir": str(tmp_path / "live" / "logs"),
            "state_dir": str(tmp_path / "live" / "state"),
            **runtime,
        },
        "risk": {"kill_file": str(tmp_path / "live" / "KILL")},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def journal(runs: Path) -> dict[str, bytes]:
    return {str(p.relative_to(runs)): p.read_bytes() for p in sorted(runs.glob("*/*.jsonl"))}


def lines(files: dict[str, bytes], suffix: str) -> list[dict[str, Any]]:
    return [
        orjson.loads(line)
        for name, body in files.items()
        if name.endswith(f"_{suffix}.jsonl")
        for line in body.splitlines()
    ]


def backtest(tmp_path: Path, name: str, *args: str) -> tuple[int, Path]:
    out = tmp_path / name
    code = main(
        ["backtest", "--config", str(write_config(tmp_path)), "--output-dir", str(out), *args]
    )
    return code, out


def test_a_replay_backtest_prints_the_table_and_writes_results_chart_and_journal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = backtest(tmp_path, "bt", "--from", "2017-01-03", "--to", "2017-02-28", *REPLAY)
    assert code == 0
    printed = capsys.readouterr().out
    for label in ("total return", "CAGR", "Sharpe", "Sortino", "max drawdown", "win rate",
                  "profit factor", "average win", "average loss", "commissions", "slippage",
                  "by strategy:", "by regime:", "MODEL chains"):  # fmt: skip
        assert label in printed
    doc = orjson.loads((out / "results.json").read_bytes())
    m = doc["metrics"]
    assert doc["option_chains"].startswith("MODEL chains") and "VIX" in doc["option_chains"]
    # the bundled VIX proxy runs past 2017: its backfill of the IV history would be the future
    assert any("iv_backfill off" in note for note in doc["notes"])
    assert m["sessions"] == len(doc["equity_curve"]) == 39
    assert m["trades"] + m["open_trades"] == len(doc["trades"]) > 0
    assert m["commissions"] == pytest.approx(sum(t["commissions"] for t in doc["trades"]))
    assert sum(g["trades"] for g in m["by_strategy"].values()) == m["trades"]
    assert sum(g["trades"] for g in m["by_regime"].values()) == m["trades"]
    closed = [t for t in doc["trades"] if t["closed"]]
    assert sum(t["net"] > 0 for t in closed) / len(closed) == pytest.approx(m["win_rate"])
    # the equity curve adds up: start + realised - commissions + open marks = equity
    last = doc["equity_curve"][-1]
    assert last["equity"] == pytest.approx(m["end_equity"])
    assert (out / "equity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    files = journal(out / "runs")
    assert {n.split("/")[1] for n in files} == {
        "SPY_context.jsonl",
        "SPY_trades.jsonl",
        "SPY_orders.jsonl",
    }
    fills = [
        o
        for o in lines(files, "orders")
        if (o["order"]["broker_result"] or {}).get("status") == "filled"
    ]
    opens = [o for o in fills if o["order"]["effect"] == "open"]
    assert len(opens) == len(doc["trades"])
    assert (out / "logs").is_dir() and (out / "state").is_dir()


def test_two_backtests_with_the_same_inputs_and_seed_write_byte_identical_journals(
    tmp_path: Path,
) -> None:
    window = ["--from", "2017-03-01", "--to", "2017-04-13", *REPLAY, "--seed", "11"]
    outs = [backtest(tmp_path, name, *window) for name in ("a", "b")]
    assert all(code == 0 for code, _ in outs)
    a, b = (journal(out / "runs") for _, out in outs)
    assert a and a == b
    ra, rb = (orjson.loads((out / "results.json").read_bytes()) for _, out in outs)
    assert ra == rb


def test_the_sim_feed_through_run_and_through_backtest_gives_the_same_ideas_orders_and_fills(
    tmp_path: Path,
) -> None:
    cfg = write_config(tmp_path, chain_refresh_minutes=15)
    run_out = tmp_path / "run"
    common = ["--config", str(cfg), "--symbols", "SPY", "--seed", "5"]
    assert (
        main(
            [
                "run",
                *common,
                "--start-date",
                "2025-03-03",
                "--sessions",
                "2",
                "--output-dir",
                str(run_out),
            ]
        )
        == 0
    )
    bt_out = tmp_path / "bt"
    assert (
        main(
            [
                "backtest",
                *common,
                "--from",
                "2025-03-03",
                "--to",
                "2025-03-04",
                "--output-dir",
                str(bt_out),
            ]
        )
        == 0
    )
    ran, backtested = journal(run_out), journal(bt_out / "runs")
    assert lines(ran, "trades") and lines(ran, "orders")  # something to compare
    assert any(
        (o["order"]["broker_result"] or {}).get("status") == "filled" for o in lines(ran, "orders")
    )
    assert ran == backtested


def test_a_hyperparameter_file_changes_the_backtest_per_symbol_and_its_kelly_table_sizes(
    tmp_path: Path,
) -> None:
    window = ["--from", "2017-01-03", "--to", "2017-02-10", *REPLAY]
    code, base = backtest(tmp_path, "base", *window)
    assert code == 0
    trades = orjson.loads((base / "results.json").read_bytes())["trades"]
    assert trades
    # A negative Kelly fraction for every cell the baseline traded: none of them may open.
    cells: dict[str, dict[str, dict[str, float]]] = {}
    for t in trades:
        cells.setdefault(t["strategy"], {})[t["regime"]] = {"f": -0.1}
    hp = tmp_path / "hp.yaml"
    hp.write_text(yaml.safe_dump({"version": 1, "symbols": {"SPY": {"kelly": cells}}}))
    code, sized = backtest(tmp_path, "kelly", *window, "--params", str(hp))
    assert code == 0
    after = orjson.loads((sized / "results.json").read_bytes())["trades"]
    assert not {(t["strategy"], t["regime"]) for t in after} & {
        (t["strategy"], t["regime"]) for t in trades
    }
    # Per-symbol configuration keys: a confidence gate no context reaches means no trade at all.
    hp.write_text(
        yaml.safe_dump(
            {"version": 1, "symbols": {"SPY": {"params": {"trade_agent.min_confidence": 1.0}}}}
        )
    )
    code, gated = backtest(tmp_path, "gated", *window, "--params", str(hp))
    assert code == 0
    assert orjson.loads((gated / "results.json").read_bytes())["trades"] == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2017-01-03", "--to", "2017-01-10", "--feed", "replay"], "needs --data"),
        (["--from", "2017-01-10", "--to", "2017-01-03", *REPLAY], "before --from"),
        (["--from", "2020-01-02", "--to", "2020-01-10", *REPLAY], "no XNYS session with data"),
        (["--from", "2030-01-02", "--to", "2030-01-10", *REPLAY], "calendar covers"),
        (
            [
                "--from",
                "2017-01-03",
                "--to",
                "2017-01-10",
                "--feed",
                "replay",
                "--data",
                "nope.csv",
            ],
            "no such file",
        ),
    ],
)
def test_bad_backtest_requests_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, _ = backtest(tmp_path, "x", *args)
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_a_backtest_never_appends_to_an_earlier_output_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "results.json").write_text("{}")
    code, _ = backtest(tmp_path, "used", "--from", "2017-01-03", "--to", "2017-01-10", *REPLAY)
    assert code == 2
    assert "is not empty" in capsys.readouterr().err
