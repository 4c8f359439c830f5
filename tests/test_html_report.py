"""The HTML report in headless Chromium (issue 20 item 6), at 1400 and 800 px wide.

A copy of each page gets two injected scripts (tests/html_hook.js first in ``<head>``,
tests/html_driver.js before ``</body>``); ``chromium --dump-dom`` returns the DOM with the
driver's findings as JSON.  Checked: the "what to do first" checklist inside the first screen;
``scrollWidth <= clientWidth`` for the page and every table; every table sortable (each column
whose values differ, both directions) and filterable (its text box, and each value of the gap
table's selects shows exactly the rows carrying it); the collapsed graph present as inline SVG
with the graphviz ``dot`` program off PATH, at most 60 nodes within 1400 x 1000, a click on a
node expanding its list; no script error, console error or CSP violation; no network request
(the page's own resource timing, and chromium's net log: no request from the page's origin).

Pages: a report of a compiled fixture whose dependency has a hostile name (through the CLI), and
the committed sample reports of libtorch_cpu and libonnxruntime (rendered from their JSON: real
sizes, 150 gaps).  Screenshots of the first screen are written for people, not checked:
to ``$UK_DEPSCAN_ARTIFACT_DIR`` when set (``.ci/run`` sets it), else under the test's tmp_path.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, compile_so, install_hint, run_cli

REPO = Path(__file__).resolve().parent.parent
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
    "--hide-scrollbars",
]
WIDTHS = (1400, 800)
SAMPLES = ("libtorch_cpu.so", "libonnxruntime.so.1.31.1")
HOOK = (Path(__file__).parent / "html_hook.js").read_text()
DRIVER = (Path(__file__).parent / "html_driver.js").read_text()
RESULTS = re.compile(r'<pre id="ukds-results">([^<]*)</pre>')


def _no_dot_path(tmp: Path) -> str:
    """A PATH without graphviz: the report must draw its graph itself."""
    empty = tmp / "no-dot-bin"
    empty.mkdir(exist_ok=True)
    return str(empty)


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("html")
    dep = compile_so(base / HOSTILE, [FIXTURES / "loader" / "lib.c"], soname=HOSTILE, define="provided_func")
    lib = compile_so(base / "libweak.so", [FIXTURES / "loader" / "weak.c"], link=[dep], runpath="$ORIGIN")
    out = {"fixture": base / "fixture.html"}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", _no_dot_path(base))
        assert shutil.which("dot") is None
        code, _, err = run_cli(
            ["scan", str(lib), "--format", "html", "-o", str(out["fixture"]), "--libc", "glibc", "-q"]
        )
        assert code in (0, 1), err
        from uk_depscan.report.html import render_html
        from uk_depscan.report.json_report import report_from_dict

        for name in SAMPLES:
            doc = json.loads((REPO / "reports" / f"{name}.json").read_text())
            out[name] = base / f"{name}.html"
            out[name].write_text(render_html(report_from_dict(doc)))
    return out


def test_static_safety(pages: dict[str, Path]) -> None:
    text = pages["fixture"].read_text()
    assert "<img src=x" not in text and "&lt;img src=x onerror=alert(1)&gt;" in text
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)  # nothing fetched from anywhere
    assert "default-src 'none'" in text
    assert "<img" not in text  # the charts and the graph are inline SVG


def _chromium(args: list[str], tmp: Path, name: str) -> subprocess.CompletedProcess[str]:
    if CHROMIUM is None:
        pytest.skip(f"chromium not found: {install_hint('chromium')}")
    # chromium writes crash-report settings and dconf state under $HOME despite --user-data-dir
    home = tmp / "home"
    env = dict(os.environ, HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), XDG_CACHE_HOME=str(home / ".cache"))
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp / ('profile-' + name)}", *args],
        check=False,  # the assertions say what went wrong, with chromium's stderr
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )


def page_requests(netlog: Path) -> list[str]:
    """URLs chromium's net log shows the page requesting.  Requests of the browser itself
    (component updates, time queries: ``initiator`` "not an origin") are not the page's."""
    text = netlog.read_text().rstrip()
    if not text.endswith("}"):  # a log chromium did not close: the events array is still open
        text = text.rstrip(",") + "]}"
    events = json.loads(text)["events"]
    return sorted(
        {
            e["params"]["url"]
            for e in events
            if "url" in e.get("params", {})
            and "method" in e["params"]
            and e["params"].get("initiator", "not an origin") != "not an origin"
        }
    )


def drive(page: Path, width: int, tmp: Path) -> tuple[dict[str, Any], subprocess.CompletedProcess[str], list[str]]:
    driven = tmp / f"driven-{width}.html"
    text = page.read_text()
    driven.write_text(
        text.replace("<head>", f"<head><script>{HOOK}</script>", 1).replace(
            "</body>", f"<script>{DRIVER}</script></body>"
        )
    )
    netlog = tmp / f"net-{width}.json"
    proc = _chromium(
        [
            "--enable-logging=stderr",
            "--v=0",
            f"--log-net-log={netlog}",
            f"--window-size={width},1000",
            "--virtual-time-budget=20000",
            "--dump-dom",
            driven.as_uri(),
        ],
        tmp,
        f"drive-{width}",
    )
    found = RESULTS.findall(proc.stdout)
    assert found, f"the driver wrote no results; chromium said: {proc.stderr[-3000:]}"
    return json.loads(html.unescape(found[-1])), proc, page_requests(netlog)


def test_network_probe_is_seen(tmp_path: Path) -> None:
    """The net-log check sees a page's request (so its silence on the reports means something)."""
    probe = tmp_path / "probe.html"
    probe.write_text('<!DOCTYPE html><html><body><img src="http://example.invalid/x.png"></body></html>')
    netlog = tmp_path / "net.json"
    _chromium(
        [f"--log-net-log={netlog}", "--virtual-time-budget=3000", "--dump-dom", probe.as_uri()], tmp_path, "probe"
    )
    assert "http://example.invalid/x.png" in page_requests(netlog)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize(
    "name", ["fixture", *(pytest.param(n, marks=pytest.mark.slow) for n in SAMPLES)]
)  # the samples: 150 gap rows sorted by every column, ~6 s each
def test_page_in_chromium(pages: dict[str, Path], name: str, width: int, tmp_path: Path) -> None:
    results, proc, requests = drive(pages[name], width, tmp_path)
    assert results["problems"] == [], results
    assert results["errors"] == [], results["errors"]
    console = [line for line in proc.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert not console, console
    assert results["resources"] == [] and requests == [], (results["resources"], requests)
    assert results["images"] == 0
    assert results["viewport"][0] == width
    # the page's tables were all exercised: each sortable, each with rows filtered
    assert results["tables"] and all("filtered" in t for t in results["tables"] if t["rows"]), results["tables"]
    gaps = [t for t in results["tables"] if t["id"].startswith("gaps-")]
    assert gaps and all(t["selects"] >= 5 for t in gaps)  # tier, status, action, library, needed via
    assert len(results["graphs"]) == len(gaps) and results["charts"] == 3 * len(gaps)
    assert all(0 < g["nodes"] <= 60 for g in results["graphs"])
    top, bottom = results["checklist"][1], results["checklist"][3]
    assert 0 <= top < bottom <= results["viewport"][1]
    if name in SAMPLES and width == 1400:
        _screenshot(pages[name], name, tmp_path)


def _screenshot(page: Path, name: str, tmp: Path) -> None:
    """The first screen at 1400 x 1000, for people (not a check)."""
    where = Path(os.environ.get("UK_DEPSCAN_ARTIFACT_DIR") or tmp)
    where.mkdir(parents=True, exist_ok=True)
    _chromium([f"--screenshot={where / (name + '.png')}", "--window-size=1400,1000", page.as_uri()], tmp, "shot")


@pytest.mark.strace
def test_observed_filter_in_chromium(tmp_path: Path) -> None:
    """With ``--observed``, the gap table has an observed column and filter, which sort and filter
    like the rest (the same driver)."""
    from test_observed import RELEASE, trace_fixture

    lib, trace = trace_fixture(tmp_path)
    page = tmp_path / "observed.html"
    args = [str(lib), "--libc", "glibc", "--unikraft", RELEASE, "--observed", str(trace), "-f", "html", "-o", str(page)]
    code, _, err = run_cli(args)
    assert code in (0, 1), err
    results, _, requests = drive(page, 1400, tmp_path)
    assert results["problems"] == [] and results["errors"] == [] and requests == [], results
    (gaps,) = [t for t in results["tables"] if t["id"].startswith("gaps-")]
    assert gaps["selects"] == 6  # tier, status, action, library, needed via, observed
