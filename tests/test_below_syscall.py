"""Pseudo-files and dlopen targets found in read-only data, exactly, on fixtures."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
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


def test_literal_cache_is_only_an_accelerator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The literals stored under the object's identity: a warm run reads them instead of the data
    sections; every damaged form is one warning, a search, a rewrite and the same report."""
    import sqlite3

    from conftest import run_cli

    from uk_depscan.store import cache as store_cache
    from uk_depscan.store.cache import CACHE_FILE, CacheStore

    need("gcc")
    lib = _build(FIXTURES / "strings" / "plugins.c", tmp_path / "libplugins.so")
    monkeypatch.setenv("UK_DEPSCAN_CACHE_DIR", str(tmp_path / "cache"))
    args = ["scan", str(lib), "--format", "json", "--libc", "glibc"]
    code, ref, err = run_cli([*args, "--no-cache"])
    assert code in (0, 1), err
    assert json.loads(ref)["targets"][0]["below_syscall"]["pseudo_files"], "the fixture has no pseudo-file"
    assert run_cli(args)[1] == ref  # cold: searches and stores
    db = tmp_path / "cache" / CACHE_FILE
    with sqlite3.connect(db) as conn:
        ((key, obj, size, meta),) = conn.execute(
            "SELECT key, object, size, meta FROM entries WHERE key LIKE 'literals/%'"
        ).fetchall()
    doc = json.loads(meta)
    assert doc["libnames"], "the fixture imports dlopen: its library names are stored"

    def with_(**change: object) -> bytes:
        return json.dumps({**doc, **change}).encode()

    poisons = [
        ("not JSON", b"{"),
        ("wrong format", with_(format=99)),
        ("not a list", with_(pseudo="/proc/self/maps")),
        ("not a string", with_(pseudo=[1])),
        ("unsorted", with_(pseudo=[*doc["pseudo"][::-1], "/proc/a", "/proc/a"])),
        ("not a pseudo-file", with_(pseudo=["/etc/passwd"])),
        ("not a library name", with_(libnames=["/proc/self/maps"])),
        ("non-ASCII", with_(pseudo=["/proc/\u00e9"])),
    ]
    for what, bad in poisons:
        CacheStore(tmp_path / "cache").put(key, obj, size, bad, b"")
        store_cache._warned.clear()
        code, out, err = run_cli(args)
        assert out == ref, what
        assert err.count("ignoring the cached literals of") == 1, (what, err)
        code, out, err = run_cli(args)  # rewritten: a clean warm hit
        assert out == ref and "ignoring" not in err, what
    # stored without the library names (an object that does not import dlopen): searched again, quietly
    CacheStore(tmp_path / "cache").put(key, obj, size, with_(libnames=None), b"")
    code, out, err = run_cli(args)
    assert out == ref and "ignoring" not in err
