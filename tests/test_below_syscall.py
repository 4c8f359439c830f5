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
