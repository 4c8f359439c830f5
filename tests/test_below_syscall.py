"""Pseudo-files and dlopen targets found in read-only data, exactly, on fixtures."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import FIXTURES, need

from uk_depscan.elf.file import open_elf
from uk_depscan.elf.literals import below_syscall


def _build(src: Path, out: Path) -> Path:
    subprocess.run(["gcc", "-shared", "-fPIC", "-O1", "-o", str(out), str(src)], check=True, capture_output=True)
    return out


def test_pseudo_files_and_dlopen_literals(tmp_path: Path) -> None:
    need("gcc")
    expect = json.loads((FIXTURES / "strings" / "expect.json").read_text())
    b = below_syscall(open_elf(_build(FIXTURES / "strings" / "plugins.c", tmp_path / "libplugins.so")))
    assert list(b.pseudo_files) == expect["pseudo_files"]
    assert [[d.name, d.source] for d in b.dlopen_targets] == expect["dlopen_targets"]
    assert b.imports_dlopen


def test_note_dlopen_and_no_literals_without_dlopen(tmp_path: Path) -> None:
    need("gcc")
    b = below_syscall(open_elf(_build(FIXTURES / "elf" / "features.c", tmp_path / "libfeatures.so")))
    assert [(d.name, d.source) for d in b.dlopen_targets] == [
        ("libzstd.so.1", ".note.dlopen (feature=zstd, priority=recommended)")
    ]
    assert not b.imports_dlopen and b.pseudo_files == ()


def test_pseudo_file_search_matches_the_per_anchor_walk() -> None:
    """The one-pass search against the walk it replaced (a find per anchor, each hit widened to its
    NUL-delimited string), on sections past the findings cap, with strings at the section edges."""
    import random
    import re

    from uk_depscan.elf import literals

    def walk(sections: list[bytes], pattern: re.Pattern[bytes]) -> list[str]:
        found: set[str] = set()
        for view in sections:
            raw = b"\0" + view
            for anchor in literals._ANCHORS[pattern]:
                pos = raw.find(anchor)
                while pos >= 0 and len(found) < literals.MAX_FINDINGS:
                    start = raw.rfind(b"\0", max(0, pos - 4096), pos + 1) + 1
                    end = raw.find(b"\0", pos + 1)
                    text = raw[start : end if end >= 0 else len(raw)]
                    if pattern.fullmatch(text):
                        found.add(text.decode("ascii", "replace"))
                    pos = raw.find(anchor, (end if end >= 0 else len(raw)))
        return sorted(found)

    rng = random.Random(5)
    words = [b"/proc/self/maps", b"/sys", b"/dev/null", b"/devx", b"x/proc", b"/proc/\xff", b"libfoo.so.1", b"a.so"]
    for n in (0, 5, 3000, 20_000):  # the last one past MAX_FINDINGS
        sections = [
            b"\0".join(rng.choice(words) + str(rng.randrange(n + 1)).encode() * rng.randrange(2) for _ in range(n))
            for _ in range(2)
        ]
        copies = [bytearray(b"\0" + s) for s in sections]
        for pattern in (literals._PSEUDO, literals._LIBNAME):
            assert literals._find(copies, pattern) == walk(sections, pattern), (n, pattern.pattern)
