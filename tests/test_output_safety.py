"""Strings from binaries are data: escaped for terminals, Markdown and HTML, never interpreted.

A fixture library is built whose SONAME, DT_NEEDED, DT_RUNPATH and an imported symbol carry
a newline, an ANSI colour sequence, a Markdown table pipe, backticks, an HTML payload and a
non-UTF-8 byte; the text renderers must show them inert (no raw ESC byte, nothing a UTF-8
terminal cannot print), and the JSON report must keep them exactly.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import compile_so, run_cli

from uk_depscan.report.escape import for_html, for_markdown, for_terminal

PAYLOAD = "\n\x1b[31m|`x`<img src=x onerror=alert(1)>\x1b[0m"
RAW_PAYLOAD = PAYLOAD.encode() + b"\xff"  # plus a byte that is not UTF-8
SHOWN = "\\x0a\\x1b[31m|`x`<img"  # how the start of the payload must appear in text
RAW_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\ud800-\udfff]")
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
]


# -- the helpers -----------------------------------------------------------------------------------
@pytest.mark.parametrize("text", HOSTILE)
def test_for_terminal_leaves_no_control_characters(text: str) -> None:
    out = for_terminal(text)
    assert not RAW_CONTROL.search(out), repr(out)
    out.encode("utf-8")  # a strict UTF-8 stdout can print it
    assert "\x1b" not in out and "\n" not in out


def test_for_terminal_shows_what_was_there() -> None:
    assert for_terminal("plain libc.so.6 GLIBC_2.34") == "plain libc.so.6 GLIBC_2.34"
    assert for_terminal("\x1b[31m") == "\\x1b[31m"
    assert for_terminal("a\nb") == "a\\x0ab"
    assert for_terminal("bad\udcffbyte") == "bad\\xffbyte"  # surrogateescape → the original byte
    assert for_terminal("tab\there") == "tab\there"
    assert for_terminal("ünïcode → ok") == "ünïcode → ok"


@pytest.mark.parametrize("text", HOSTILE)
def test_for_markdown_cannot_break_a_table_or_code_span(text: str) -> None:
    out = for_markdown(text)
    assert not RAW_CONTROL.search(out)
    assert re.search(r"(?<!\\)[|`<>]", out) is None, out  # every pipe, backtick and angle bracket escaped
    row = f"| {out} | x |"
    assert len(re.split(r"(?<!\\)\|", row)) == 4  # still exactly two cells


@pytest.mark.parametrize("text", HOSTILE)
def test_for_html_cannot_open_a_tag_or_attribute(text: str) -> None:
    out = for_html(text)
    assert not RAW_CONTROL.search(out)
    assert not set(out) & set("<>\"'"), out
    assert "&lt;img" in for_html("<img src=x onerror=alert(1)>")
    assert for_html("a\"b'c&d") == "a&quot;b&#x27;c&amp;d"


# -- end to end: the text renderers on a hostile fixture ----------------------------------------------
def _patch(path: Path, placeholder: bytes, value: bytes) -> None:
    data = path.read_bytes()
    assert placeholder in data and len(placeholder) == len(value)
    path.write_bytes(data.replace(placeholder, value))


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | bytes]:
    """libevil<P>.so needs libdep<P>.so (found via -L) and libgone<P>.so (missing), has DT_RUNPATH
    /opt/<P> and imports imp_<P>; <P> is RAW_PAYLOAD, patched in over same-length placeholders."""
    tmp = tmp_path_factory.mktemp("hostile")
    n = len(RAW_PAYLOAD)
    ph = {"dep": b"D" * n, "gone": b"G" * n, "evil": b"E" * n, "run": b"R" * n, "imp": b"I" * n}
    libdir = tmp / "L"
    src = tmp / "evil.c"
    src.write_text(
        f"extern int imp_{ph['imp'].decode()}(void);\nint exported(void) {{ return imp_{ph['imp'].decode()}(); }}\n"
    )
    stub = tmp / "stub.c"
    stub.write_text("int stub_func(void) { return 1; }\n")
    dep = compile_so(tmp / "build" / "libdep.so", [stub], soname=f"libdep{ph['dep'].decode()}.so")
    gone = compile_so(tmp / "build" / "libgone.so", [stub], soname=f"libgone{ph['gone'].decode()}.so")
    evil = compile_so(
        tmp / "libevil.so",
        [src],
        soname=f"libevil{ph['evil'].decode()}.so",
        link=[dep, gone],
        runpath=f"/opt/{ph['run'].decode()}",
    )
    for key in ("dep", "gone", "evil", "run", "imp"):
        _patch(evil, ph[key], RAW_PAYLOAD)
    _patch(dep, ph["dep"], RAW_PAYLOAD)
    libdir.mkdir()
    dep.rename(libdir / (b"libdep" + RAW_PAYLOAD + b".so").decode("utf-8", "surrogateescape"))
    return {"evil": evil, "libdir": libdir, "root": tmp / "emptyroot"}


def _run(args: list[str], hostile: dict) -> tuple[int, str]:
    hostile["root"].mkdir(exist_ok=True)
    code, out, err = run_cli([*args, "-L", str(hostile["libdir"]), "--root", str(hostile["root"]), "--no-ld-cache"])
    assert code in (0, 1), err
    assert "Traceback" not in err
    return code, out


@pytest.mark.parametrize("args", [["scan"], ["scan", "-v"], ["deps"], ["deps", "-v"]])
def test_text_output_is_inert(args: list[str], hostile: dict) -> None:
    code, out = _run([args[0], str(hostile["evil"]), *args[1:]], hostile)
    assert code == 1  # libgone<P>.so is missing and imp_<P> unresolved
    assert "\x1b" not in out, "raw ESC byte reached the terminal"
    assert not RAW_CONTROL.search(out.replace("\n", "")), repr(RAW_CONTROL.search(out.replace("\n", "")))
    out.encode("utf-8")
    # the strings are shown, escaped (the newline too: no forged report lines), not dropped
    assert f"libgone{SHOWN}" in out
    assert f"libevil{SHOWN}" in out if args[0] == "scan" else f"libdep{SHOWN}" in out
    assert not any(line.startswith(("uk-depscan", "\\x1b")) for line in out.splitlines())


def test_json_keeps_the_exact_strings_and_stays_ascii(hostile: dict) -> None:
    _code, out = _run(["scan", str(hostile["evil"]), "--format", "json"], hostile)
    assert "\x1b" not in out and out.isascii()
    doc = json.loads(out)
    elf = doc["targets"][0]["elf"]
    payload = RAW_PAYLOAD.decode("utf-8", "surrogateescape")
    assert elf["soname"] == f"libevil{payload}.so"
    assert elf["runpath"] == f"/opt/{payload}"
    assert f"libgone{payload}.so" in elf["needed"] and f"libdep{payload}.so" in elf["needed"]
    assert f"imp_{payload}" in doc["targets"][0]["unresolved"]
