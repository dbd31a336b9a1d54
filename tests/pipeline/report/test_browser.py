"""The report in a real browser: headless Chromium loads the page from the file system (no server), every image
resolves, nothing is logged to the console as an error, the tables sort on a click, and a screenshot is taken.

Needs Debian's ``chromium-headless-shell`` (``make install`` installs it with apt when missing and run as root, as
in CI) or a Chromium named by ``$MASSEG_CHROMIUM``; skips with the reason otherwise. ``$MASSEG_SCREENSHOT_DIR``
keeps the screenshot for a person to look at."""
from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

BROWSERS = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome", "chrome-headless-shell")

# injected first in <head> of a copy of the page: records errors (script errors, resources that fail to load,
# console.error), then after load checks every image, clicks a score header twice and writes the findings
# into the DOM, where --dump-dom hands them back
PROBE = """<script>
window.__errors = [];
window.addEventListener('error', function (e) {
  window.__errors.push(e.message ? 'script: ' + e.message : 'resource: ' + (e.target.src || e.target.href));
}, true);
(function () { var ce = console.error; console.error = function () {
  window.__errors.push('console.error: ' + Array.prototype.join.call(arguments, ' ')); ce.apply(console, arguments);
}; })();
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var broken = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); })
                   .map(function (i) { return i.getAttribute('src'); });
  var order = [];
  var t = document.querySelector('table.sortable.wide');
  if (t) {
    var ths = t.querySelectorAll('th'), col = -1;
    ths.forEach(function (th, k) { if (col < 0 && th.textContent.indexOf('fusion J&F') === 0) col = k; });
    var values = function () { return Array.prototype.map.call(t.tBodies[0].rows, function (r) {
      return parseFloat(r.cells[col].getAttribute('data-v')); }); };
    ths[col].click(); order.push(values());
    ths[col].click(); order.push(values());
  }
  var out = document.createElement('pre'); out.id = 'probe';
  out.textContent = JSON.stringify({images: imgs.length, broken: broken, errors: window.__errors, order: order});
  document.body.appendChild(out);
});
</script>"""


def chromium() -> str:
    for name in (os.environ.get("MASSEG_CHROMIUM"), *BROWSERS):
        path = name and shutil.which(name)
        if path:
            return path
    pytest.skip("no headless Chromium found (Debian package chromium-headless-shell; `make install` installs it "
                "when run as root, or set $MASSEG_CHROMIUM): the report's browser test needs a real browser")


def _browser(exe: str, *args: str) -> subprocess.CompletedProcess:
    # --no-sandbox: containers and root (CI) cannot start Chromium's sandbox; the page is our own local file
    return subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--allow-file-access-from-files", "--enable-logging=stderr", "--v=0",
                           "--virtual-time-budget=15000", *args], capture_output=True, text=True, timeout=120)


def test_report_in_a_real_browser(small_run, tmp_path):
    exe = chromium()
    cfg, run, root, lines = small_run
    report = tmp_path / "report"
    shutil.copytree(run / "report", report)
    page = (report / "index.html").read_text()
    probe = report / "probe.html"
    probe.write_text(page.replace("<head>", "<head>" + PROBE, 1))

    p = _browser(exe, "--dump-dom", probe.as_uri())
    assert p.returncode == 0, p.stderr[-2000:]
    m = re.search(r'<pre id="probe">(.*?)</pre>', p.stdout, re.S)
    assert m, p.stdout[-2000:]
    found = json.loads(html.unescape(m.group(1)))
    n_imgs = len(re.findall(r"<img ", page))
    assert found["images"] == n_imgs > 10
    assert found["broken"] == []
    assert found["errors"] == []
    assert not [ln for ln in p.stderr.splitlines() if "CONSOLE" in ln and ("Uncaught" in ln or "rror" in ln)]
    asc, desc = (np.array(v, float) for v in found["order"])
    assert len(asc) == 2 and (np.diff(asc) >= 0).all() and (np.diff(desc) <= 0).all()

    shot = tmp_path / "report.png"
    p = _browser(exe, f"--screenshot={shot}", "--window-size=1400,2400", (report / "index.html").as_uri())
    assert p.returncode == 0 and shot.is_file(), p.stderr[-2000:]
    im = np.asarray(Image.open(shot).convert("RGB"), np.float32)
    assert im.shape[:2] == (2400, 1400)
    assert im.std() > 20   # a rendered page, not a blank one
    keep = os.environ.get("MASSEG_SCREENSHOT_DIR")
    if keep:
        os.makedirs(keep, exist_ok=True)
        shutil.copy(shot, os.path.join(keep, "report.png"))
