"""Strings from binaries and file names are data on every output channel: escaped, never interpreted.

The channel rules (uk_depscan.report.escape) are checked on their own first.  Then a fixture is
built whose file names, SONAME, DT_NEEDED, DT_RUNPATH and symbol names carry ESC sequences, BEL,
CR, LF, U+202E (right-to-left override), a Markdown/HTML/XML payload, a character reference to ESC
and a byte that is not UTF-8, and every command and format is run on it through the CLI: each
channel must keep its invariant (tests/channel_checks.py) and still show the names, escaped.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import re
import shutil
import sys
from pathlib import Path

import pytest
from channel_checks import (
    check_dot,
    check_graphml,
    check_html,
    check_json,
    check_lines,
    check_markdown,
    check_path_bytes,
    check_stderr,
    exact,
)
from conftest import FIXTURES, compile_so, run_cli

from uk_depscan.report.escape import dot_id, dot_label, for_html, for_json, for_markdown, for_terminal, for_xml

RLO = "\u202e"
PAYLOAD = b"\n\x1b[31m\x07\r|`x`<img src=x onerror=alert(1)>&#27;" + RLO.encode() + b"]]>\x1b[0m\xff"
# how the payload must read on a terminal: every control, the override and the bad byte visible
SHOWN = r"\x0a\x1b[31m\x07\x0d|`x`<img src=x onerror=alert(1)>&#27;\u202e]]>\x1b[0m\xff"
# the parts before and after its spaces, for text a terminal renderer may wrap at a space
HEAD, TAIL = SHOWN.split(" ")[0], SHOWN.split(" ")[-1]
HOSTILE = [
    "\x1b[31mred\x1b[0m",
    "\x1b]0;title\x07",
    "a|b|c",
    "`code`",
    "<img src=x onerror=alert(1)>",
    "line1\nuk-depscan: all good",
    "cr\roverwrite",
    "\x9b31m",
    "bad\udcffbyte",
    "tab\there",
    "\x00nul",
    "\x7f",
    "abc\u202edcba.so",
    "\u2066isolate\u2069 zero\u200bwidth \ufeffbom",
    "line\u2028separator",
    "tag\U000e0041",
    "&#x202e;&#27;&amp;",
    "back\\slash\\x1b",
]
RAW_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\ud800-\udfff\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


# -- the rules ------------------------------------------------------------------------------------
@pytest.mark.parametrize("text", HOSTILE)
def test_for_terminal_leaves_nothing_hidden(text: str) -> None:
    out = for_terminal(text)
    check_lines(out, "for_terminal")
    assert "\n" not in out and not RAW_CONTROL.search(out)


def test_for_terminal_shows_what_was_there() -> None:
    assert for_terminal("plain libc.so.6 GLIBC_2.34") == "plain libc.so.6 GLIBC_2.34"
    assert for_terminal("\x1b[31m") == "\\x1b[31m"
    assert for_terminal("a\nb") == "a\\x0ab"
    assert for_terminal("bad\udcffbyte") == "bad\\xffbyte"  # surrogateescape → the original byte
    assert for_terminal("tab\there") == "tab\there"
    assert for_terminal("ünïcode → ok") == "ünïcode → ok"
    assert for_terminal("abc\u202edcba") == "abc\\u202edcba"
    assert for_terminal("\u0085\u2028\ufeff\U000e0041") == "\\u0085\\u2028\\ufeff\\U000e0041"
    # one-to-one: a name that spells an escape is not the escaped name
    assert for_terminal("\\x1b") == "\\\\x1b" != for_terminal("\x1b")
    # C1 controls are not bytes: U+0085 and an undecodable 0x85 read differently
    assert for_terminal("\x85") != for_terminal("\udc85")


@pytest.mark.parametrize("text", HOSTILE)
def test_for_markdown_cannot_break_a_table_or_add_markup(text: str) -> None:
    out = for_markdown(text)
    check_markdown(out)
    assert not RAW_CONTROL.search(out)
    assert re.search(r"(?<!\\)[|`<>]", out) is None, out  # every pipe, backtick and angle bracket escaped
    row = f"| {out} | x |"
    assert len(re.split(r"(?<!\\)\|", row)) == 4  # still exactly two cells
    assert for_markdown("std::vector<int> const&") == "std::vector\\<int\\> const&"  # a plain & stays


@pytest.mark.parametrize("text", HOSTILE)
def test_for_html_cannot_open_a_tag_or_attribute(text: str) -> None:
    out = for_html(text)
    assert not RAW_CONTROL.search(out)
    assert not set(out) & set("<>\"'"), out
    check_html(f"<p title='{out}'>{out}</p>", svg=False)
    assert "&lt;img" in for_html("<img src=x onerror=alert(1)>")
    assert for_html("a\"b'c&d") == "a&quot;b&#x27;c&amp;d"


@pytest.mark.parametrize("text", HOSTILE)
def test_dot_and_xml_rules(text: str) -> None:
    check_dot(f'digraph {{ {dot_id(text)} [label="{dot_label(text)}"]; }}', nodes=1, graphviz=bool(shutil.which("dot")))
    check_graphml(
        '<graphml xmlns="http://graphml.graphdrawing.org/xmlns"><graph edgedefault="directed">'
        f'<node id="{for_html(for_xml(text))}"/></graph></graphml>',
        nodes=1,
    )
    assert for_xml('lib"quoted\\back{slash}.so') == 'lib"quoted\\back{slash}.so'  # exact where XML can carry it
    assert dot_id("a&b") != dot_id("a&amp;b")  # one-to-one


def test_json_rule() -> None:
    doc = for_json({"path": "a\udcffb", "target": "ok", "names": ["x\udcfe", "\u202e"], "n": 1})
    check_json(json.dumps(doc))
    assert doc == {
        "path": "a\ufffdb",
        "path_bytes": base64.b64encode(b"a\xffb").decode(),
        "target": "ok",
        "names": ["x\ufffd", "\u202e"],  # JSON keeps what it can: a reader gets "\u202e", not the character
        "n": 1,
    }


# -- end to end: every command and format on a hostile fixture -------------------------------------
def _patch(path: Path, placeholder: bytes, value: bytes) -> None:
    data = path.read_bytes()
    assert placeholder in data and len(placeholder) == len(value)
    path.write_bytes(data.replace(placeholder, value))


def _named(directory: Path, prefix: str, suffix: str = ".so") -> Path:
    """``directory/<prefix><PAYLOAD><suffix>`` as a Path (the name is not UTF-8)."""
    return Path(os.fsdecode(os.path.join(os.fsencode(directory), prefix.encode() + PAYLOAD + suffix.encode())))


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """evil<P>.so (SONAME libevil<P>.so) needs libdep<P>.so (found via -L; its imp_<P> makes the
    getpid syscall) and libgone<P>.so (missing), has DT_RUNPATH /opt/<P> and imports imp_<P>;
    <P> is PAYLOAD, patched in over same-length placeholders.  junk<P>.so is not an ELF file; the
    directory d/ holds a copy of evil<P>.so and junk<P>.so."""
    tmp = tmp_path_factory.mktemp("hostile")
    n = len(PAYLOAD)
    ph = {k: c.encode() * n for k, c in (("dep", "D"), ("gone", "G"), ("evil", "E"), ("run", "R"), ("imp", "I"))}
    imp = f"imp_{ph['imp'].decode()}"
    src, dep_src = tmp / "evil.c", tmp / "dep.c"
    src.write_text(f"extern int {imp}(void);\nint exported(void) {{ return {imp}(); }}\n")
    # getpid by number, so the chain import -> libdep -> syscall runs through the hostile names
    dep_src.write_text(
        f'int {imp}(void) {{ long r; __asm__ volatile ("syscall" : "=a"(r) : "a"(39L) : "rcx", "r11", '
        '"memory"); return (int)r; }\n'
    )
    # the names are patched after linking, which a DT_GNU_HASH table would still hash as the
    # placeholders (ld.so, and the binding that follows it, would not find imp_<P> there); with only
    # the SysV table, which the binding does not walk, imp_<P> is looked up by name
    dep = compile_so(
        tmp / "build" / "libdep.so",
        [dep_src],
        soname=f"libdep{ph['dep'].decode()}.so",
        extra=["-Wl,--hash-style=sysv"],
    )
    gone = compile_so(
        tmp / "build" / "libgone.so", [FIXTURES / "loader" / "lib.c"], soname=f"libgone{ph['gone'].decode()}.so"
    )
    evil = compile_so(
        tmp / "build" / "libevil.so",
        [src],
        soname=f"libevil{ph['evil'].decode()}.so",
        link=[dep, gone],
        runpath=f"/opt/{ph['run'].decode()}",
    )
    for key in ("dep", "gone", "evil", "run", "imp"):
        _patch(evil, ph[key], PAYLOAD)
    for key in ("dep", "imp"):
        _patch(dep, ph[key], PAYLOAD)
    libdir, tdir, ddir = tmp / "L", tmp / "t", tmp / "d"
    for d in (libdir, tdir, ddir):
        d.mkdir()
    dep.rename(_named(libdir, "libdep"))
    target = _named(tdir, "evil")
    shutil.copyfile(evil, target)
    shutil.copyfile(evil, _named(ddir, "evil"))
    _named(ddir, "junk").write_bytes(b"not an ELF file\n")
    junk = _named(tmp, "junk")
    junk.write_bytes(b"not an ELF file\n")
    clean = compile_so(tmp / "clean" / "libclean.so", [FIXTURES / "loader" / "lib.c"], define="provided_func")
    return {"evil": target, "libdir": libdir, "dir": ddir, "junk": junk, "clean": clean, "tmp": tmp}


def _search(h: dict[str, Path]) -> list[str]:
    return ["-L", str(h["libdir"])]


def _run(args: list[str], codes: tuple[int, ...] = (0, 1)) -> tuple[str, str]:
    code, out, err = run_cli(args)
    assert code in codes, (code, err)
    assert "Traceback" not in err and "internal error" not in err, err
    check_stderr(err)
    return out, err


TEXT_RUNS = [["scan"], ["scan", "-v"], ["deps"], ["deps", "-v"]]


@pytest.mark.parametrize("args", TEXT_RUNS, ids=" ".join)
def test_text(args: list[str], hostile: dict[str, Path]) -> None:
    out, err = _run([args[0], str(hostile["evil"]), *args[1:], *_search(hostile)])
    check_lines(out, "stdout")
    # the strings are shown, escaped (the newline too: no forged report lines), not dropped
    assert f"libgone{HEAD}" in out and f"libdep{HEAD}" in out and f"{TAIL}.so" in out
    if args[0] == "scan":
        assert f"libevil{HEAD}" in out  # the SONAME row
    assert not any(line.startswith(("uk-depscan", "\\x1b")) for line in out.splitlines())
    assert err == ""  # text on a terminal: no stderr summary


def test_stderr_summary_is_one_line_per_target(hostile: dict[str, Path]) -> None:
    _, err = _run(["scan", str(hostile["evil"]), "--format", "json", *_search(hostile)])
    check_stderr(err, lines=1)
    assert err.startswith(f"uk-depscan: {os.fsdecode(os.fsencode(hostile['tmp']))}/t/evil{SHOWN}.so: ")


def test_error_line(hostile: dict[str, Path]) -> None:
    code, out, err = run_cli(["scan", str(hostile["junk"])])
    assert code == 2 and out == ""
    check_stderr(err, lines=1)
    assert f"junk{SHOWN}.so" in err and err.startswith("uk-depscan: error: ")


def test_usage_error_line() -> None:
    code, _, err = run_cli(["scan", "--format", PAYLOAD.decode("utf-8", "surrogateescape"), "x"])
    assert code == 2
    check_stderr(err, prefixes=("Usage: ", "Try ", "", "Error: "))


def test_debug_log_lines(hostile: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """-vv: the library's debug log names the files it scans; a warning the same (an unwritable
    cache directory named like the payload)."""
    _, err = _run(["scan", str(hostile["evil"]), "-vv", "-q", "--no-cache", *_search(hostile)])
    assert any(f"evil{SHOWN}.so" in line for line in err.splitlines() if line.startswith("uk-depscan: DEBUG: "))
    blocker = _named(tmp_path, "cachefile", "")
    blocker.write_bytes(b"")
    monkeypatch.setenv("UK_DEPSCAN_CACHE_DIR", str(blocker / "cache"))
    _, err = _run(["scan", str(hostile["evil"]), "-q", *_search(hostile)])
    assert any(f"cachefile{SHOWN}" in line for line in err.splitlines() if line.startswith("uk-depscan: WARNING: "))


def test_log_handler_escapes_every_record(monkeypatch: pytest.MonkeyPatch) -> None:
    from uk_depscan.cli.common import StderrLogHandler, install_log_handler

    install_log_handler()
    install_log_handler()  # once per process
    root = logging.getLogger()
    assert sum(isinstance(h, StderrLogHandler) for h in root.handlers) == 1
    payload = PAYLOAD.decode("utf-8", "surrogateescape")
    buf = io.StringIO()
    monkeypatch.setattr(sys, "stderr", buf)  # the handler writes to the stderr of the moment
    monkeypatch.setattr(root, "level", logging.WARNING)
    logging.getLogger("uk_depscan.test").warning("cannot read %s: %s", payload, payload)
    check_stderr(buf.getvalue(), lines=1)
    assert buf.getvalue() == f"uk-depscan: WARNING: cannot read {SHOWN}: {SHOWN}\n"


def test_progress_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """The spinner (stderr is a terminal): rich's own sequences only, the step's name escaped."""
    from uk_depscan.cli.main import _progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Terminal()
    monkeypatch.setattr(sys, "stderr", tty)
    monkeypatch.setenv("COLUMNS", "400")  # the bar would otherwise ellipsize the step at 80 columns
    with _progress(False) as p:
        p.note("scanning evil" + PAYLOAD.decode("utf-8", "surrogateescape") + "[bold]x[/bold]")
    shown = tty.getvalue()
    assert f"uk-depscan: scanning evil{HEAD}" in shown and f"{TAIL}[bold]x[/bold]" in shown  # not markup either
    for raw in ("\x1b[31m", "\x07", "\r|", RLO, "\udcff"):
        assert raw not in shown


def test_status_lines_off_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """stderr redirected: periodic one-line status, every name escaped; --quiet: nothing at all."""
    from uk_depscan.cli.main import StatusLines, _progress

    buf = io.StringIO()
    monkeypatch.setattr(sys, "stderr", buf)
    evil = "evil" + PAYLOAD.decode("utf-8", "surrogateescape")
    status = StatusLines(interval=3600)
    with status:
        status.note(f"scanning {evil} for syscalls")
        status.emit()
        status.advance(1, 2, evil)
        status.emit()
    check_stderr(buf.getvalue(), lines=2)
    first, second = buf.getvalue().splitlines()
    assert first.startswith("uk-depscan: [") and f"scanning evil{HEAD}" in first
    assert ", 1/2 targets] evil" in second
    buf.truncate(0)
    with _progress(True) as p:
        p.note(evil)
        p.advance(1, 1, evil)
    assert buf.getvalue() == ""


@pytest.mark.parametrize("command", ["scan", "deps"])
def test_json(command: str, hostile: dict[str, Path], tmp_path: Path) -> None:
    from uk_depscan.report.json_report import load_report

    out, _ = _run([command, str(hostile["evil"]), "--format", "json", *_search(hostile)])
    doc = check_json(out)
    t = doc["targets"][0]
    payload = PAYLOAD.decode("utf-8", "surrogateescape")
    shown = payload.replace("\udcff", "\ufffd")
    check_path_bytes(t, "target", str(hostile["evil"]))
    objects = t["dependencies"]["load_order"]
    check_path_bytes(objects[0], "path", str(hostile["evil"]))
    dep = next(o for o in objects if o["needed_name"] == f"libdep{shown}.so")
    check_path_bytes(dep, "path", str(_named(hostile["libdir"], "libdep")))
    check_path_bytes(dep, "realpath", os.path.realpath(_named(hostile["libdir"], "libdep")))
    for attempt in t["dependencies"]["missing"][0]["tried"]:
        assert "path_bytes" in attempt and exact(payload) in base64.b64decode(attempt["path_bytes"])
    assert t["elf"]["runpath"] == f"/opt/{shown}"
    # a saved report read back names the exact files again
    saved = tmp_path / "saved.json"
    saved.write_text(out)
    report = load_report(str(saved))
    assert report.targets[0].target == str(hostile["evil"])
    assert os.path.exists(report.targets[0].tree.objects[1].path)


@pytest.mark.parametrize("command", ["scan", "deps"])
def test_markdown(command: str, hostile: dict[str, Path]) -> None:
    out, _ = _run([command, str(hostile["evil"]), "--format", "md", *_search(hostile)])
    check_markdown(out)
    assert "libgone\\\\x0a\\\\x1b\\[31m" in out


@pytest.mark.parametrize("command", ["scan", "deps"])
def test_html(command: str, hostile: dict[str, Path]) -> None:
    out, _ = _run([command, str(hostile["evil"]), "--format", "html", *_search(hostile)])
    check_html(out, svg=command == "scan")  # deps has no gaps to chart
    assert "libgone\\x0a\\x1b[31m\\x07\\x0d|`x`&lt;img" in out


@pytest.mark.parametrize(
    "args", [["scan", "--format", "dot"], ["deps", "--format", "dot"], ["graph", "--format", "dot"]]
)
def test_dot(args: list[str], hostile: dict[str, Path]) -> None:
    out, _ = _run([args[0], str(hostile["evil"]), *args[1:], *_search(hostile)])
    check_dot(out, graphviz=bool(shutil.which("dot")))
    assert "libdep\\\\x0a\\\\x1b[31m" in out


def test_graphml(hostile: dict[str, Path]) -> None:
    out, _ = _run(["graph", str(hostile["evil"]), "--format", "graphml", *_search(hostile)])
    g = check_graphml(out)
    assert any(n.startswith("lib:libdep\n\\x1b[31m\\x07\\x0d|") for n in g.nodes), sorted(g.nodes)


def test_graph_json(hostile: dict[str, Path]) -> None:
    out, _ = _run(["graph", str(hostile["evil"]), "--format", "json", *_search(hostile)])
    doc = check_json(out)
    dep = next(n for n in doc["nodes"] if n["id"].startswith("lib:libdep"))
    check_path_bytes(dep, "path", str(_named(hostile["libdir"], "libdep")))


def test_explain(hostile: dict[str, Path]) -> None:
    imp = "imp_" + PAYLOAD.decode("utf-8", "surrogateescape")
    for query in ("getpid", imp):
        out, _ = _run(["explain", str(hostile["evil"]), query, *_search(hostile)])
        check_lines(out, "explain")
        assert f"libdep{HEAD}" in out and f"imp_{HEAD}" in out and TAIL in out


@pytest.mark.parametrize("fmt", ["text", "json", "md"])
def test_diff(fmt: str, hostile: dict[str, Path], tmp_path: Path) -> None:
    saved = _named(tmp_path, "saved", ".json")
    saved.write_text(_run(["scan", str(hostile["evil"]), "--format", "json", *_search(hostile)])[0])
    # a saved hostile report read back (libdep<P>.so removed), and a hostile binary analysed (its name)
    for old, new, shows in ((saved, hostile["clean"], "libdep"), (hostile["clean"], hostile["evil"], "evil")):
        out, _ = _run(["diff", str(old), str(new), "--format", fmt])
        {"text": lambda o: check_lines(o, "diff"), "json": check_json, "md": check_markdown}[fmt](out)
        assert shows in out


def test_directory(hostile: dict[str, Path]) -> None:
    out, _ = _run(["scan", str(hostile["dir"]), *_search(hostile)])
    check_lines(out, "stdout")
    assert f"junk{HEAD}" in out and f"{TAIL}.so: named like a shared object but not an ELF file" in out
    out, _ = _run(["scan", str(hostile["dir"]), "--format", "json", *_search(hostile)])
    doc = check_json(out)
    (skipped,) = doc["skipped"]
    check_path_bytes(skipped, "path", str(_named(hostile["dir"], "junk")))
