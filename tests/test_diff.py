"""The diff covers the report: imports by provider and version, syscalls, gaps with tier changes,
pseudo-files, dlopen targets, request codes and route findings; it warns when the two sides were
made under different assumptions; every --format is real (HTML is HTML, escaped) or refused."""

from __future__ import annotations

import dataclasses
import html.parser
import json
from pathlib import Path

from conftest import run_cli

from uk_depscan.model import (
    BelowSyscall,
    DlopenTarget,
    ImportRecord,
    LibcModel,
    Report,
    RequestRecord,
    RouteFinding,
    Severity,
    TableRef,
    Tier,
)
from uk_depscan.report.diff import (
    ChangeType,
    DiffKind,
    diff_reports,
    render_diff_html,
    render_diff_json,
    render_diff_markdown,
    render_diff_text,
)
from uk_depscan.report.json_report import load_report, render_json

EVIL = "<script>alert(1)</script>"


def _newer(old: Report) -> Report:
    """The old report with one more fact of every kind, one gap re-tiered and another libc model."""
    t = old.targets[0]
    assert t.syscalls is not None and t.below is not None and t.gaps
    below = BelowSyscall(
        (*t.below.pseudo_files, "/proc/self/maps", EVIL),
        (*t.below.dlopen_targets, DlopenTarget("libextra.so.1", "string literal")),
        t.below.imports_dlopen,
    )
    syscalls = dataclasses.replace(
        t.syscalls,
        libc_model=LibcModel.MUSL,
        requests=(*t.syscalls.requests, RequestRecord("ioctl", 1, 0x2400, "PERF_EVENT_IOC_ENABLE", 1)),
    )
    first = t.gaps[0]
    new_tier = Tier.P3 if first.tier is not Tier.P3 else Tier.P0
    gaps = (dataclasses.replace(first, tier=new_tier), *t.gaps[1:])
    imports = (*t.imports, ImportRecord("newfunc", "GLIBC_2.99", "libc.so.6", "GLOBAL", "FUNC", "/lib/libc.so.6"))
    route = (*t.route, RouteFinding(Severity.WARNING, "/lib/libnew.so", "TEXTREL"))
    target = dataclasses.replace(t, below=below, syscalls=syscalls, gaps=gaps, imports=imports, route=route, views=None)
    unikraft = TableRef("0.99.0", "0" * 40, "test") if old.unikraft else None
    return dataclasses.replace(old, targets=(target,), unikraft=unikraft)


def test_every_section_and_the_warnings(sockets_report: Path) -> None:
    old = load_report(str(sockets_report))
    d = diff_reports(old, _newer(old), "old", "new")
    by = {(c.kind, c.item): c for c in d.changes}
    assert by[(DiffKind.IMPORT, "newfunc@GLIBC_2.99")].group == "libc.so.6"
    assert (DiffKind.SYMBOL_VERSION, "GLIBC_2.99") in by
    assert (DiffKind.PSEUDO_FILE, "/proc/self/maps") in by
    assert (DiffKind.DLOPEN, "libextra.so.1") in by
    assert (DiffKind.REQUEST, "ioctl(PERF_EVENT_IOC_ENABLE)") in by
    assert (DiffKind.ROUTE, "libnew.so: TEXTREL") in by
    retiered = [c for c in d.changes if c.kind is DiffKind.GAP and c.change is ChangeType.CHANGED]
    assert len(retiered) == 1 and " -> " in retiered[0].detail
    assert all(c.change is ChangeType.ADDED for c in d.changes if c.kind is not DiffKind.GAP)
    assert any(w.startswith("libc model differs (glibc -> musl)") for w in d.warnings)
    assert any(w.startswith("Unikraft release differs (0.17.0 -> 0.99.0)") for w in d.warnings)
    assert diff_reports(old, old, "a", "b").changes == () and diff_reports(old, old, "a", "b").warnings == ()

    text = render_diff_text(d)
    assert "warning: libc model differs" in text
    assert "  pseudo-files     2 added, 0 removed" in text
    assert "  libc.so.6: GLIBC_2.99 +1 -0" in text and "    + newfunc@GLIBC_2.99" in text
    doc = json.loads(render_diff_json(d))
    assert doc["counts"]["request-code"]["added"] == 1 and len(doc["warnings"]) == 2
    assert "| pseudo-files | 2 | 0 | 0 |" in render_diff_markdown(d)


class _Tags(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)


def test_html_is_html_and_escaped(sockets_report: Path) -> None:
    old = load_report(str(sockets_report))
    page = render_diff_html(diff_reports(old, _newer(old), EVIL, "new"))
    parser = _Tags()
    parser.feed(page)
    assert page.startswith("<!DOCTYPE html>") and "script" not in parser.tags
    assert {"html", "table", "h2", "code"} <= set(parser.tags)
    assert EVIL not in page and "&lt;script&gt;" in page
    assert "Content-Security-Policy" in page and "http" not in page.replace("http-equiv", "")


def test_cli_formats(sockets_report: Path, tmp_path: Path) -> None:
    newer = tmp_path / "new.json"
    old = load_report(str(sockets_report))
    newer.write_text(render_json(_newer(old)), encoding="utf-8")
    expected = 1 if diff_reports(old, load_report(str(newer)), "a", "b").new_gaps else 0
    out = tmp_path / "d.html"
    code, _, err = run_cli(["diff", str(sockets_report), str(newer), "-f", "html", "-o", str(out)])
    assert code == expected, err
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    code, out_text, err = run_cli(["diff", str(sockets_report), str(newer), "-q"])
    assert "request codes    1 added" in out_text
    code, _, err = run_cli(["diff", str(sockets_report), str(newer), "-f", "dot"])
    assert code == 2 and "not available for a diff" in err
