"""Terminal-native text: the width the terminal gives (COLUMNS), never a longer line, one line per
gap row, no trailing spaces, correct plurals, what -v and -vv add, colours only on a terminal."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from conftest import run_cli
from rich.cells import cell_len

from uk_depscan.cli.common import terminal_width, use_color
from uk_depscan.model import Report
from uk_depscan.report.json_report import load_report
from uk_depscan.report.text import plural, render_summary

ROW = re.compile(r"^(P[0-3]|-)\s")


@pytest.fixture(scope="module")
def report(sockets_report: Path) -> Report:
    """A small socket server scanned against Unikraft 0.17.0: gap rows with long reasons."""
    return load_report(str(sockets_report))


def measure(text: str) -> tuple[int, int, int, int]:
    """(longest line in terminal cells, lines ending in a space, gap rows, wrapped gap-row lines)."""
    lines = text.split("\n")
    rows = wrapped = 0
    in_table = False
    for line in lines:
        if line.startswith("tier  "):
            in_table = True
        elif in_table and ROW.match(line):
            rows += 1
        elif in_table and line.startswith("      ") and line.strip():
            wrapped += 1
        else:
            in_table = False
    return max(cell_len(x) for x in lines), sum(x.endswith(" ") for x in lines), rows, wrapped


@pytest.mark.parametrize("width", [80, 100, 160])
@pytest.mark.parametrize("verbose", [0, 1, 2])
def test_width_is_respected(report: Report, width: int, verbose: int) -> None:
    text = render_summary(report, width=width, verbose=verbose)
    longest, trailing, rows, wrapped = measure(text)
    assert longest <= width
    assert trailing == 0
    assert rows > 0 and wrapped == 0
    # a gap table row keeps its identifiers whole: every row names a syscall of the report
    names = {g.name for g in report.targets[0].gaps}
    got = [line.split()[1] for line in text.split("\n") if ROW.match(line)]
    assert got and set(got) <= names


def test_wide_terminal_uses_the_room(report: Report) -> None:
    narrow, wide = render_summary(report, width=80), render_summary(report, width=160)
    assert measure(wide)[0] > 100  # not rendered at a fixed width and padded
    assert len(wide.split("\n")) < len(narrow.split("\n"))


def test_plurals(report: Report) -> None:
    text = render_summary(report, width=160, verbose=1)
    assert not re.search(r"(?<![\d.])1 (syscalls|options|rows|actions|pseudo-files|dlopen targets)\b", text)
    assert plural(1, "syscall") == "1 syscall" and plural(2, "syscall") == "2 syscalls"
    assert plural(0, "dlopen target") == "0 dlopen targets"


def test_verbosity_levels(report: Report) -> None:
    t = report.targets[0]
    plain, v, vv = (render_summary(report, width=120, verbose=n) for n in (0, 1, 2))
    assert not re.search(r"^import +version +provider$", plain, re.M)
    assert re.search(r"^import +version +provider$", v, re.M)  # one row per import
    imported = {i.name for i in t.imports if "_Z" not in i.name}
    assert imported and all(re.search(rf"^{re.escape(n)}\s", v, re.M) for n in imported)
    assert " -> " in v and " -> " not in plain  # evidence chains
    assert not re.search(r"^site +kind", v, re.M)
    assert t.syscalls is not None
    # -vv: where each step of a chain is, and one row per syscall site of the target itself
    details = {x.detail for f in t.syscalls.syscalls for x in f.chain if x.detail}
    flat_vv, flat_v = re.sub(r"\s+", " ", vv), re.sub(r"\s+", " ", v)  # a long chain wraps between steps
    assert all(f" @ {d}" in flat_vv for d in details) and not any(f" @ {d}" in flat_v for d in details)
    breadth = [f.breadth for f in t.syscalls.syscalls if f.breadth is not None]
    per_site = re.findall(r"^      \d+ own sites?, \d+ imports? reaching it", vv, re.M)
    assert breadth and len(per_site) == len(breadth) and "reaching it" not in v
    assert bool(re.search(r"^site +kind +syscalls", vv, re.M)) == bool(t.syscalls.sites)
    assert all(f"{s.address:#x}" in vv for s in t.syscalls.sites)


def test_columns_from_the_environment(report: Report, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    assert terminal_width() == 80
    monkeypatch.setenv("COLUMNS", "160")
    assert terminal_width() == 160


def test_colour_only_on_a_terminal_without_no_color(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stdout", Tty())
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert use_color(None)
    assert not use_color(tmp_path / "out.txt")  # a file never gets escape sequences
    monkeypatch.setenv("NO_COLOR", "1")
    assert not use_color(None)
    monkeypatch.setattr("sys.stdout", io.StringIO())
    monkeypatch.delenv("NO_COLOR")
    assert not use_color(None)


def test_cli_text_follows_columns(report: Report, monkeypatch: pytest.MonkeyPatch) -> None:
    exe = report.targets[0].target
    for width in (80, 160):
        monkeypatch.setenv("COLUMNS", str(width))
        code, out, err = run_cli(["scan", exe, "--libc", "glibc", "--unikraft", "0.17.0"])
        assert code == 1, err
        assert "\x1b[" not in out
        assert measure(out)[0] <= width
    assert measure(out)[0] > 100


def test_deps_tree_fits_without_breaking_names(report: Report) -> None:
    from uk_depscan.report.text import render_deps

    for width in (40, 80):
        lines = render_deps(report, width=width, verbose=1).rstrip("\n").split("\n")
        assert max(cell_len(x) for x in lines) <= width
        # a library line is never continued on the next line: each line is a node or a note
        assert all(x.startswith(("/", "│", "├", "└", " ", "  note:")) for x in lines)
