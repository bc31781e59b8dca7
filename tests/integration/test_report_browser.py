"""The report as a browser shows it: every figure decodes, the page is not blank."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from srlm.report import write_report
from tests.unit.test_report import CHROMIUM, _img_ids, irpo_run

pytestmark = pytest.mark.browser

PROBE = """<script>
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  document.body.setAttribute("data-images", imgs.length);
  document.body.setAttribute("data-decoded",
    imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length);
});
</script>"""


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'profile'}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_report_renders_in_headless_chromium(tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip(
            f"{CHROMIUM} is missing: scripts/setup.sh installs Debian's chromium with "
            "apt-get when run as root; or run apt-get install -y chromium"
        )
    from PIL import Image

    index = write_report(irpo_run(tmp_path / "run"))
    n_figures = len(_img_ids(index.read_text()))
    # The probe goes into a copy: the report itself carries no script.
    probe = index.with_name("probe.html")
    probe.write_text(index.read_text().replace("</body>", PROBE + "</body>"))
    out = _chromium(tmp_path, "--virtual-time-budget=10000", "--dump-dom", probe.as_uri())
    assert out.returncode == 0, out.stderr[-2000:]
    body = re.search(r'<body data-images="(\d+)" data-decoded="(\d+)"', out.stdout)
    assert body, out.stdout[:2000]
    assert int(body.group(1)) == n_figures > 0
    assert int(body.group(2)) == n_figures  # every figure decoded as an image

    shot = tmp_path / "shot.png"
    out = _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,3000", index.as_uri())
    assert out.returncode == 0 and shot.exists(), out.stderr[-2000:]
    pixels = Image.open(shot).convert("RGB")
    assert pixels.size == (1200, 3000)
    colors = pixels.getcolors(maxcolors=1 << 20)
    non_white = sum(n for n, c in colors if c != (255, 255, 255)) / (1200 * 3000)
    assert len(colors) > 100 and non_white > 0.02  # text, lines and plots, not a blank page
    # Matplotlib's first line colour shows that the plotted figures themselves are on screen.
    assert any(abs(r - 0x1F) + abs(g - 0x77) + abs(b - 0xB4) < 12 for _, (r, g, b) in colors)
