"""report.html in a real browser: headless Chromium loads the file and the plots and the events table render.

Two looks, each proving what the other cannot:
- the DOM after load, with a probe script added to a copy of the page (the report itself has no script): every
  <img> decoded (naturalWidth > 0) and painted with more than background (its pixels, read back through a canvas),
  the events table laid out with a row per event;
- a screenshot of the page: the plots' colours are on screen, so the page was painted, not only parsed.

Skipped only where Chromium is missing and CI is unset (a developer's machine); under CI a missing Chromium fails:
.ci/install-debian-packages installs it.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from lab import report_plots as plots
from lab.history import History, Op
from lab.report_html import write_html

pytestmark = [pytest.mark.unit, pytest.mark.browser]

DATA = Path(__file__).parent / "data" / "report"
BROWSERS = ("chromium", "chromium-browser")
TIMEOUT_S = 60  # a hung browser fails the test; a normal load takes 1-3 s

# Runs at `load` (every image in the page has loaded or failed by then) and writes its findings into the DOM,
# which --dump-dom prints.
PROBE = """<script>
window.addEventListener("load", () => {
  const imgs = [...document.images].map((img) => {
    const c = document.createElement("canvas");
    c.width = img.naturalWidth; c.height = img.naturalHeight;
    let inked = 0;
    if (img.naturalWidth > 0) {
      const g = c.getContext("2d");
      g.drawImage(img, 0, 0);
      const px = g.getImageData(0, 0, c.width, c.height).data;
      for (let i = 0; i < px.length; i += 4) if (px[i] + px[i + 1] + px[i + 2] < 600) inked++;
    }
    const box = img.getBoundingClientRect();
    return {complete: img.complete, width: img.naturalWidth, shownWidth: box.width, shownHeight: box.height,
            inked: inked / Math.max(1, img.naturalWidth * img.naturalHeight)};
  });
  const table = document.querySelector("#events table");
  const rows = table ? [...table.querySelectorAll("tbody tr")] : [];
  const out = document.createElement("pre");
  out.id = "render-probe";
  out.textContent = JSON.stringify({
    imgs, eventRows: rows.length, tableHeight: table ? table.getBoundingClientRect().height : 0,
    firstRow: rows.length ? rows[0].innerText : "",
  });
  document.body.appendChild(out);
});
</script>"""


@pytest.fixture(scope="module")
def browser() -> str:
    """The browser's path; asked for before the report is built, so a skip costs nothing."""
    found = next((p for b in BROWSERS if (p := shutil.which(b))), None)
    if found:
        return found
    if os.environ.get("CI", "").lower() not in ("", "0", "false"):
        pytest.fail(f"CI is set and no browser ({', '.join(BROWSERS)}) is installed: see .ci/install-debian-packages")
    pytest.skip("no chromium on this machine (apt-get install --no-install-recommends chromium)")


def run_browser(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # a profile of its own: a browser another user has open must not be joined or locked
    cmd = [browser, "--headless=new", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The recorded trial plus a second one with a double VIP and quorum samples: two plots, two events."""
    run = tmp_path_factory.mktemp("browser") / "run"
    shutil.copytree(DATA, run)
    t0 = 1796122360.0
    ops = [Op(t0 + 0.5, "nemesis", "info", "fault", {"fault": "freeze", "target": "node1"})]
    for i in range(20):
        t = t0 + i * 0.5
        nodes = ["node1"] if i < 6 else ["node1", "node2"] if i < 12 else ["node2"]
        ops.append(Op(t, "observer", "info", "vip-holders", {"192.168.42.101": nodes}))
        ops.append(Op(t, "observer", "info", "quorum", {"node1": {"quorate": i < 6}, "node2": {"quorate": True}}))
        ops.append(Op(t + 0.1, "mysql-writer", "invoke", "write", i, service="mysql"))
        ops.append(Op(t + 0.3, "mysql-writer", "ok" if i < 3 or i > 15 else "fail", "write", i, service="mysql"))
    trial = run / "trials" / "freeze-synthetic"
    trial.mkdir()
    History(ops).dump(trial / "history.jsonl")
    return write_html(run)


def test_chromium_renders_the_plots_and_the_events_table(browser: str, report: Path, tmp_path: Path) -> None:
    probed = tmp_path / "probed.html"
    probed.write_text(report.read_text().replace("</body>", PROBE + "</body>"))
    # the budget lets the page's tasks run out before the DOM is dumped (it ends early once the page is idle)
    args = ("--window-size=1300,2000", "--virtual-time-budget=10000", "--dump-dom", probed.as_uri())
    done = run_browser(browser, tmp_path / "profile", *args)
    m = re.search(r'<pre id="render-probe">(.*?)</pre>', done.stdout, re.S)
    assert m, f"the probe never ran (rc {done.returncode}): {done.stderr[-2000:]}"
    probe = json.loads(html.unescape(m.group(1)))
    assert len(probe["imgs"]) == 2, probe
    for img in probe["imgs"]:
        assert img["complete"] and img["width"] > 800, img  # decoded
        assert img["shownWidth"] > 800 and img["shownHeight"] > 200, img  # laid out on the page
        assert img["inked"] > 0.02, img  # bars, points and text: not a blank canvas
    assert probe["eventRows"] == 2 and probe["tableHeight"] > 40, probe
    assert "kill-mysqld" in probe["firstRow"] and "kill_service:mysql" in probe["firstRow"], probe


def test_chromium_paints_the_plots(browser: str, report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "page.png"
    done = run_browser(
        browser,
        tmp_path / "profile",
        "--hide-scrollbars",
        "--window-size=1300,3000",
        f"--screenshot={shot}",
        report.as_uri(),
    )
    assert shot.exists(), f"no screenshot (rc {done.returncode}): {done.stderr[-2000:]}"
    img = Image.open(shot).convert("RGB")
    colours = {c for _, c in img.getcolors(1 << 24)}
    assert len(colours) > 50, "a blank or near-blank page"
    # the plots' own colours on screen: ok bars, failed ops, a VIP held, a VIP held twice
    for hex_ in (plots.TYPE_COLOURS["ok"], plots.TYPE_COLOURS["fail"], plots.STATE_COLOURS["held"]):
        rgb = tuple(int(hex_[i : i + 2], 16) for i in (1, 3, 5))
        assert any(max(abs(a - b) for a, b in zip(c, rgb, strict=True)) <= 3 for c in colours), hex_
