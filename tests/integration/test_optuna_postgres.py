"""Two `gnosisd optimize` workers share one study on a real PostgreSQL server (Optuna RDB storage).

The server is a throwaway cluster on 127.0.0.1 started by scripts/postgres.sh (which installs the
Debian package first when it is missing and the user can; scripts/test.sh does that up front).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
import yaml

from gnosisd.optimize import params

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "postgres.sh"


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    install = subprocess.run(["bash", str(SCRIPT), "install"], capture_output=True, text=True)
    if install.returncode == 3:
        pytest.skip(f"no PostgreSQL and no way to install it: {install.stderr.strip()}")
    assert install.returncode == 0, install.stderr
    started = subprocess.run(
        ["bash", str(SCRIPT), "start"], capture_output=True, text=True, timeout=120
    )
    assert started.returncode == 0, started.stderr
    directory, url = started.stdout.split()
    try:
        yield url
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop", directory], check=False, timeout=120)


def worker(tmp_path: Path, name: str, url: str, seed: int) -> subprocess.Popen[str]:
    home = tmp_path / name
    home.mkdir()
    cfg = home / "config.yaml"
    cfg.write_text(yaml.safe_dump({"runtime": {"state_dir": str(home / "state")}}))
    argv = [sys.executable, "-m", "gnosisd.cli", "optimize", "--config", str(cfg)]
    argv += ["--storage", url, "--study", "shared", "--trials", "2", "--seed", str(seed)]
    argv += ["--from", "2017-01-03", "--to", "2017-01-31", "--symbols", "SPY"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        argv, cwd=home, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_two_workers_share_one_study_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    procs = [worker(tmp_path, f"w{i}", postgres_url, seed) for i, seed in enumerate((1, 2))]
    outputs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
        assert "shared" in out and "gnosisd-test" not in out  # the password is masked
    study = optuna.load_study(study_name="shared", storage=postgres_url)
    finished = [t for t in study.trials if t.state.is_finished()]
    assert len(study.trials) == len(finished) == 4
    assert sorted(t.number for t in study.trials) == [0, 1, 2, 3]
    assert len({tuple(sorted(t.params.items())) for t in study.trials}) == 4
    for i in range(2):  # each worker wrote the study's best point for SPY
        hp = params.load(tmp_path / f"w{i}" / "state" / "hyperparams.yaml", "SPY")
        assert hp.meta["study"]["name"] == "shared"
        assert "gnosisd-test" not in hp.meta["study"]["storage"]
        assert hp.params
