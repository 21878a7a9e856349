"""The HTML review report renders in headless Chromium with its five charts decoded.

scripts/test.sh installs Chromium from the Debian packages when it is missing; without it this
test is skipped with the reason.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from gnosisd.store.report import write_report
from gnosisd.store.review import ReviewQuery, run_review
from tests.unit.store.journal_factory import RULES, good_journal

CHROMIUM = next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Chromium not found (scripts/test.sh installs it with apt-get install chromium)",
)
# Added to a copy of the report only: records what the browser decoded for each image.
_PROBE = (
    "<script>addEventListener('load', () => { for (const img of document.images) {"
    " img.dataset.decoded = img.complete + ':' + img.naturalWidth + 'x' + img.naturalHeight; }"
    " document.body.dataset.probed = 'yes'; });</script></body>"
)


def _chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp / 'profile'}",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=False)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("report")
    review = run_review(ReviewQuery(good_journal(tmp / "runs")), RULES)
    return write_report(review, tmp / "review.html")


def test_every_chart_image_is_decoded_by_the_browser(report: Path, tmp_path: Path) -> None:
    probe = tmp_path / "probe.html"
    probe.write_text(report.read_text(encoding="utf-8").replace("</body>", _PROBE))
    done = _chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom", probe.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    assert 'data-probed="yes"' in dom
    decoded = re.findall(r'<img class="chart"[^>]*data-decoded="([^"]+)"', dom)
    assert len(decoded) == 5
    for value in decoded:
        complete, size = value.split(":")
        width, height = (int(x) for x in size.split("x"))
        assert complete == "true"
        assert (width, height) == (900, 360)  # 9 x 3.6 inches at 100 dpi


def test_the_rendered_page_is_not_blank(report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "page.png"
    done = _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1100,2200", report.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    pixels = np.asarray(imread(shot))[..., :3]
    assert pixels.shape[:2] == (2200, 1100)
    not_white = (pixels < 0.94).any(axis=-1).mean()
    colours = len(np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0))
    assert not_white > 0.05  # text, tables and plot lines cover a good part of the page
    assert colours > 50  # anti-aliased charts, not a flat page
