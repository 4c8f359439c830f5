"""The HTML report in headless Chromium: renders, escapes hostile names, sorts and filters, no network."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import FIXTURES, compile_so, install_hint, run_cli

HOSTILE = "lib<img src=x onerror=alert(1)>.so"
CHROMIUM = next((shutil.which(c) for c in ("chromium", "chromium-browser", "google-chrome") if shutil.which(c)), None)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Appended to the test's own copy of the page: drive the controls like a user, record the outcome.
DRIVER = """<script>
window.addEventListener("load", function () {
  var t = document.querySelector("table[id^=gaps-]"), out = document.body.dataset;
  var th = t.querySelectorAll("th")[1];
  th.click();
  var names = Array.prototype.map.call(t.tBodies[0].rows, function (r) { return r.children[1].textContent.trim(); });
  var sorted = names.slice().sort(function (a, b) { return a.localeCompare(b); });
  out.sortOk = String(JSON.stringify(names) === JSON.stringify(sorted));
  var f = document.querySelector("[data-filter]");
  f.value = "arch_prctl"; f.dispatchEvent(new Event("input"));
  out.visible = String(Array.prototype.filter.call(t.tBodies[0].rows,
                                                   function (r) { return r.style.display !== "none"; }).length);
  out.imgs = String(document.images.length);
});
</script>"""


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("html")
    dep = compile_so(base / HOSTILE, [FIXTURES / "loader" / "lib.c"], soname=HOSTILE, define="provided_func")
    lib = compile_so(base / "libweak.so", [FIXTURES / "loader" / "weak.c"], link=[dep], runpath="$ORIGIN")
    out = base / "report.html"
    code, _, err = run_cli(["scan", str(lib), "--format", "html", "-o", str(out), "--libc", "glibc", "-q"])
    assert code in (0, 1), err
    return out


def test_static_safety(page: Path) -> None:
    html = page.read_text()
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)  # nothing fetched from anywhere
    assert "default-src 'none'" in html


def test_renders_sorts_filters_in_chromium(page: Path, tmp_path: Path) -> None:
    if CHROMIUM is None:
        pytest.skip(f"chromium not found: {install_hint('chromium')}")
    # chromium writes crash-report settings and dconf state under $HOME despite --user-data-dir
    home = tmp_path / "home"
    env = dict(os.environ, HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), XDG_CACHE_HOME=str(home / ".cache"))
    driven = tmp_path / "driven.html"
    driven.write_text(page.read_text().replace("</body>", DRIVER + "</body>"))
    proc = subprocess.run(
        [
            CHROMIUM,
            *FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=5000",
            "--dump-dom",
            driven.as_uri(),
        ],
        check=False,  # the DOM assertions below say what went wrong, with chromium's stderr
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    dom = proc.stdout
    assert 'data-sort-ok="true"' in dom, proc.stderr[-2000:]
    assert 'data-visible="1"' in dom
    assert re.search(r'data-imgs="[01]"', dom)  # only the graph picture; the hostile name made no <img>
    console = [line for line in proc.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert not console, console
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            CHROMIUM,
            *FLAGS,
            f"--user-data-dir={tmp_path / 'profile2'}",
            f"--screenshot={shot}",
            "--window-size=1400,1000",
            page.as_uri(),
        ],
        check=False,
        capture_output=True,
        timeout=120,
        env=env,
    )
    assert shot.exists() and shot.stat().st_size > 10_000
