"""Property test: random byte strings through every output channel keep that channel's invariant.

A real report (two targets built from the fixtures: gaps, evidence chains, a missing library,
pseudo-files, dlopen targets, request codes, the native route, the matrix and the plan, with the
sections the fixtures leave empty filled in through the JSON schema) is poisoned: every string
field not produced by our own code gets random bytes (decoded with ``surrogateescape``, as the
engine decodes names) before, after or on both sides of its value.  Each channel then renders it
and is checked by tests/channel_checks.py.  Hypothesis with a fixed seed (``derandomize``) and no
example database (nothing written outside tmp); ``EXAMPLES`` (250) examples of ``STRINGS`` (4)
byte strings each: 1,000 byte strings through each channel.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import logging
import os
import subprocess
from enum import Enum
from typing import TypeVar

import pytest
from channel_checks import (
    check_dot,
    check_graphml,
    check_html,
    check_json,
    check_lines,
    check_markdown,
    check_stderr,
    exact,
)
from conftest import FIXTURES, compile_so, have, install_hint, need, run_cli
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from uk_depscan.model import Report
from uk_depscan.report.diff import diff_reports, render_diff_json, render_diff_markdown, render_diff_text
from uk_depscan.report.graph import build_graph, collapsed, to_dot, to_graphml, to_json
from uk_depscan.report.html import render_html
from uk_depscan.report.json_report import render_json, report_from_dict
from uk_depscan.report.markdown import render_markdown
from uk_depscan.report.text import render_deps, render_explain, render_summary
from uk_depscan.report.validate import first_problem
from uk_depscan.report.views import explain, with_views

# examples per channel (fewer for a quick local run: UK_DEPSCAN_PROPERTY_EXAMPLES=20)
EXAMPLES = int(os.environ.get("UK_DEPSCAN_PROPERTY_EXAMPLES", "250"))
# 10-75 s a channel on the 2-core machine (about 3 minutes in all); tests/test_output_safety.py
# checks every channel on a hostile fixture within the fast subset
pytestmark = pytest.mark.slow
PROPERTY = settings(
    max_examples=EXAMPLES,
    derandomize=True,  # a fixed seed: the same byte strings on every run
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Pieces that break channels, mixed with arbitrary bytes and text.
TOKENS = [
    *(b"\x1b[31m", b"\x1b]0;title\x07", b"\x1b[2J", b"\x9b", b"\x07", b"\x08", b"\r", b"\n", b"\r\n", b"\t"),
    *(b"\x00", b"\x7f", b"\x0b", b"\x0c", b"\xc2\x85", b"\xc2\x9b"),
    *(c.encode() for c in "\u202e\u202a\u2066\u2069\u200b\u200f\ufeff\u00ad\u2028\u2029\ufffe\uffff\ufdd0"),
    "\U000e0001".encode(),
    *(b"\xff", b"\xc3", b"\xe2\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf"),
    *(b"&#27;", b"&#x202e;", b"&#8238;", b"&amp;", b"&lt;", b"&", b"<", b">", b"]]>", b"<!--", b"--", b"<![CDATA["),
    *(b'"', b"'", b"\\", b"\\N", b"\\n", b"\\G", b'\\"', b"\\x1b", b"\\u202e", b"|", b"`", b"*", b"_", b"#"),
    *(b"[", b"]", b"(", b")", b"{", b"}", b"{{", b"}}", b"{%", b"!", b"~", b"$", b"%s", b"%(x)s", b"@", b";", b" "),
    *(b"<script>alert(1)</script>", b"<img src=x onerror=alert(1)>", b"javascript:", b"[bold]", b"[/]"),
    *(b"uk-depscan: error: ", b"digraph", b"->", b" of ", b"DT_RUNPATH", b"- ", b"1. ", b"---"),
]
CHUNK = st.one_of(
    st.sampled_from(TOKENS),
    st.binary(min_size=1, max_size=6),
    st.text(min_size=1, max_size=4).map(lambda s: s.encode("utf-8")),
)
RAW = st.lists(CHUNK, min_size=1, max_size=10).map(b"".join)
# Each example carries STRINGS byte strings, so EXAMPLES examples put EXAMPLES * STRINGS of them
# through a channel: rendering a report costs 50-250 ms, and the suite runs on a shared machine.
STRINGS = 4
RAWS = st.lists(RAW, min_size=STRINGS, max_size=STRINGS)
WHERE = st.sampled_from(["prefix", "suffix", "both"])

# Written by our own code, never from a binary (and constrained by the schema or by rendering).
OWN_FIELDS = {"build_id", "sha256", "command", "tool_version", "binding", "sym_type"}
T = TypeVar("T")


class Marker:
    """Marks a string of the report with one of the byte strings (decoded as the engine decodes
    names): they take turns within each field (target, path, name, soname, symbol, ...), so each
    lands in many kinds of field; an equal value gets an equal mark (the report keeps its shape);
    an empty string stays empty (it means "none")."""

    def __init__(self, raws: list[bytes], where: str) -> None:
        self.texts = [raw.decode("utf-8", "surrogateescape") for raw in raws]
        self.where = where
        self.memo: dict[str, str] = {}
        self.turn: dict[str, int] = {}

    def __call__(self, value: str, field: str) -> str:
        if not value:
            return value
        if value not in self.memo:
            n = self.turn.get(field, 0)
            self.turn[field] = n + 1
            text = self.texts[n % len(self.texts)]
            self.memo[value] = {"prefix": text + value, "suffix": value + text, "both": text + value + text}[self.where]
        return self.memo[value]

    @property
    def one_to_one(self) -> bool:
        """Two values marked with different strings can collide (``"ab" + "c" == "a" + "bc"``)."""
        return len(set(self.memo.values())) == len(self.memo)


def poison(value: T, mark: Marker, field: str = "") -> T:
    """``value`` with each string field (enums and OWN_FIELDS excepted) passed through ``mark``."""
    if isinstance(value, Enum) or value is None:
        return value
    if isinstance(value, str):
        return mark(value, field)  # type: ignore[return-value]
    if isinstance(value, tuple):
        return tuple(poison(v, mark, field) for v in value)  # type: ignore[return-value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {
            f.name: poison(getattr(value, f.name), mark, f.name)
            for f in dataclasses.fields(value)
            if f.init and f.name not in OWN_FIELDS and f.name != "views"
        }
        return dataclasses.replace(value, **changes)  # type: ignore[return-value]
    return value


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Report:
    need("gcc")
    tmp = tmp_path_factory.mktemp("kitchen")
    gone = compile_so(tmp / "gone" / "libgone.so", [FIXTURES / "loader" / "lib.c"], define="gone_func")
    kitchen = tmp / "libkitchen.so"
    sources = [FIXTURES / "strings" / "plugins.c", FIXTURES / "requests" / "requests.c"]
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-O1", "-o", str(kitchen), *map(str, sources), "-Wl,--no-as-needed", str(gone)],
        check=True,
        capture_output=True,
    )
    gone.unlink()
    second = compile_so(tmp / "libsecond.so", [FIXTURES / "loader" / "lib.c"], define="provided_func")
    code, out, err = run_cli(["scan", str(kitchen), str(second), "--format", "json", "--libc", "glibc"])
    assert code == 1, err
    doc = json.loads(out)
    t = doc["targets"][0]
    # small enough to render a thousand times, every kind of row still present
    for target in doc["targets"]:
        target["gaps"] = target["gaps"][:8]
        target["imports"] = target["imports"][:8]
        s = target["syscalls"]
        s["reached"], s["baseline"], s["sites"] = s["reached"][:6], s["baseline"][:4], s["sites"][:4]
        target["native_route"]["symbols"] = target["native_route"]["symbols"][:6]
    doc["matrix"] = doc["matrix"][:6]
    # what these fixtures do not produce, in the schema's own form
    doc["skipped"] = [{"path": f"{tmp}/dir/junk.so", "reason": "named like a shared object but not an ELF file"}]
    t["binary_compat"] = [{"severity": "blocker", "object": "libkitchen.so", "problem": "TEXTREL: text relocations"}]
    t["version_problems"] = [{"file": "libkitchen.so", "version": "GLIBC_9.9", "reason": "no GLIBC_9.9 in libc.so.6"}]
    t["warnings"] = ["libkitchen.so asks for an executable stack"]
    t["imports"].append(
        {
            "name": "gone_func",
            "version": None,
            "version_file": None,
            "binding": "GLOBAL",
            "type": "FUNC",
            "provider": None,
        }
    )
    t["dependencies"]["load_order"][1]["rejected_candidates"] = [
        {"path": "/opt/lib/libc.so.6", "outcome": "ELFCLASS32"}
    ]
    report = report_from_dict(doc)
    assert report.targets[0].tree.missing and report.targets[0].below and report.targets[0].below.dlopen_targets
    assert report.targets[0].syscalls and report.targets[0].syscalls.requests and report.plan and report.matrix
    return report


def poisoned(base: Report, raws: list[bytes], where: str) -> Report:
    mark = Marker(raws, where)
    report = with_views(poison(base, mark))
    assume(mark.one_to_one)
    return report


# -- one test per channel --------------------------------------------------------------------------
def _names(raws: list[bytes]) -> list[str]:
    return [raw.decode("utf-8", "surrogateescape") for raw in raws]


@PROPERTY
@given(raws=RAWS, where=WHERE)
def test_terminal_text(base: Report, raws: list[bytes], where: str) -> None:
    """stdout text: scan and deps (verbose and not), explain (a syscall, each string as a query),
    diff (the strings as the two sides' names)."""
    report = poisoned(base, raws, where)
    names = _names(raws)
    check_lines(render_summary(report, verbose=True), "scan -v")
    check_lines(render_summary(report), "scan")
    check_lines(render_deps(report, verbose=True), "deps -v")
    for query in (report.targets[0].gaps[0].name, *names):
        check_lines(render_explain(explain(report, query), query), "explain")
    check_lines(render_diff_text(diff_reports(base, report, names[0], names[1])), "diff")


@PROPERTY
@given(raws=RAWS, where=WHERE)
def test_stderr(base: Report, raws: list[bytes], where: str) -> None:
    """stderr, one line per message: the error line, a log record, the per-target summaries, a
    progress step, and a usage error naming the value (each string in each)."""
    from uk_depscan.cli.common import install_log_handler, print_error
    from uk_depscan.cli.main import _stderr_summary, progress_text
    from uk_depscan.errors import InputError

    report = poisoned(base, raws, where)
    names = _names(raws)
    install_log_handler()
    root = logging.getLogger()
    level, root.level = root.level, logging.WARNING
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            for name in names:
                print_error(InputError(f"{name}: not an ELF file"))
                logging.getLogger("uk_depscan.property").warning("cannot read %s: %s", name, name)
            _stderr_summary(report, quiet=False)
    finally:
        root.level = level
    check_stderr(err.getvalue(), lines=2 * len(names) + len(report.targets))
    for name in names:
        check_stderr(progress_text(name) + "\n", lines=1)
        code, out, usage = run_cli(["scan", "--format", name, "x"])
        assert code == 2 and out == ""
        check_stderr(usage, prefixes=("Usage: ", "Try ", "", "Error: "))


@PROPERTY
@given(raws=RAWS, where=WHERE)
def test_markdown(base: Report, baseline_md: str, raws: list[bytes], where: str) -> None:
    """The report (same lines and table cells as without the strings) and the diff."""
    report = poisoned(base, raws, where)
    names = _names(raws)
    check_markdown(render_markdown(report), baseline_md)
    check_markdown(render_diff_markdown(diff_reports(base, report, names[0], names[1])))


@PROPERTY
@given(raws=RAWS, where=WHERE)
def test_json(base: Report, raws: list[bytes], where: str) -> None:
    """The report (valid against its schema, read back with its exact paths, written again the
    same), the graph and the diff: ASCII, parse, valid Unicode."""
    report = poisoned(base, raws, where)
    out = render_json(report)
    doc = check_json(out)
    assert first_problem(doc) is None, first_problem(doc)
    again = report_from_dict(doc)
    # read back and written again: a fixed point (the first reading replaces undecodable bytes
    # outside paths with U+FFFD, so names differing only there may sort differently once)
    out2 = render_json(again)
    assert render_json(report_from_dict(check_json(out2))) == out2
    for t, back in zip(report.targets, again.targets, strict=True):
        assert exact(back.target) == exact(t.target)
        assert [exact(o.path) for o in back.tree.objects] == [exact(o.path) for o in t.tree.objects]
    check_json(to_json(build_graph(report)))
    names = _names(raws)
    check_json(render_diff_json(diff_reports(base, report, names[0], names[1])))


@pytest.fixture(scope="module")
def baseline_md(base: Report) -> str:
    return render_markdown(base)


@pytest.fixture(scope="module")
def baseline_html(base: Report) -> str:
    return render_html(base)


@PROPERTY
@given(raws=RAWS, where=WHERE)
# a CI run found it: names with a '/' made two libraries share one label (one chart bar, one filter choice)
@example(raws=[b"<script>alert(1)</script>", b"<script>alert(1)</script>", b"\x1b[31m", b"\x1b[31m"], where="suffix")
def test_html_and_svg(base: Report, baseline_html: str, raws: list[bytes], where: str) -> None:
    """The HTML report: the same elements as without the hostile strings, no hidden character in
    any text or attribute, and the inline SVG (charts, graph; no graphviz) well-formed and clean."""
    check_html(render_html(poisoned(base, raws, where)), baseline_html)


@pytest.mark.skipif(not have("dot"), reason=f"dot not found: {install_hint('dot')}")
@PROPERTY
@given(raws=RAWS, where=WHERE)
def test_dot(base: Report, raws: list[bytes], where: str) -> None:
    """DOT (scan -f dot and graph -f dot): UTF-8, nothing hidden, ``dot -Tsvg`` accepts it with
    every node (escaping merged or split none) and writes a clean SVG.  (pydot parses the DOT of
    the hostile fixture in test_output_safety; it takes about a second a graph.)"""
    g = build_graph(poisoned(base, raws, where))
    check_dot(to_dot(g), nodes=len(collapsed(g)), pydot_parse=False, graphviz=True)


@PROPERTY
@given(raws=RAWS, where=WHERE)
def test_graphml(base: Report, raws: list[bytes], where: str) -> None:
    """GraphML: well-formed XML 1.0, read back by networkx with every node."""
    g = build_graph(poisoned(base, raws, where))
    check_graphml(to_graphml(g), nodes=g.number_of_nodes())


def test_poison_reaches_every_string(base: Report) -> None:
    """The poisoning is real: the marked report differs from the base in every string field."""
    report = poison(base, Marker([b"\x1b"], "suffix"))
    assert report.targets[0].target.endswith("\x1b") and report.targets[0].tree.objects[1].path.endswith("\x1b")
    assert all(g.name.endswith("\x1b") for g in report.targets[0].gaps)
    assert report.skipped[0].path.endswith("\x1b") and report.targets[0].below
    assert all(f.endswith("\x1b") for f in report.targets[0].below.pseudo_files)
    assert report.targets[0].tree.objects[0].build_id == base.targets[0].tree.objects[0].build_id
