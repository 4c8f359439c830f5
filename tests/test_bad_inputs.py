"""Corrupt and hostile inputs built from bytes: one clear line, exit 2, no traceback, fast."""

from __future__ import annotations

import os
import struct
import time
import zipfile
from pathlib import Path

import pytest
from conftest import FIXTURES, compile_so, run_cli


@pytest.fixture(scope="module")
def good_so(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    out = compile_so(tmp_path_factory.mktemp("good") / "libgood.so", [FIXTURES / "loader" / "lib.c"])
    return out.read_bytes()


def _elf_header_with(data: bytes, **fields: int) -> bytes:
    offsets = {
        "e_shoff": (0x28, "<Q"),
        "e_shnum": (0x3C, "<H"),
        "e_phoff": (0x20, "<Q"),
        "e_phnum": (0x38, "<H"),
        "e_shentsize": (0x3A, "<H"),
    }
    buf = bytearray(data)
    for name, value in fields.items():
        off, fmt = offsets[name]
        struct.pack_into(fmt, buf, off, value)
    return bytes(buf)


def cases(good: bytes, tmp: Path) -> dict[str, tuple[Path, str]]:
    """name → (path, expected message fragment)."""
    made: dict[str, tuple[Path, str]] = {}

    def put(name: str, data: bytes, expect: str) -> None:
        p = tmp / name
        p.write_bytes(data)
        made[name] = (p, expect)

    put("empty.so", b"", "empty file")
    put("truncated.so", good[:20], "truncated ELF header")
    put("magic_only.so", b"\x7fELF", "truncated ELF header")
    put("shoff_past_eof.so", _elf_header_with(good, e_shoff=len(good) + 4096), "past the end of the file")
    put("absurd_shnum.so", _elf_header_with(good, e_shnum=0xFFFF), "runs past the end of the file")
    put("phoff_past_eof.so", _elf_header_with(good, e_phoff=len(good) * 4), "outside the file")
    put("text.so", b"INPUT ( /lib/libc.so.6 )\n", "not an ELF file")
    put("zero.whl", b"", "not a valid wheel")
    bad_wheel = tmp / "fake-1.0-py3-none-any.whl"
    with zipfile.ZipFile(bad_wheel, "w") as zf:
        zf.writestr("fake/_ext.so", b"this is not ELF\n")
    made["non_elf_so.whl"] = (bad_wheel, "no ELF objects to scan")
    d = tmp / "dir_without_elf"
    d.mkdir()
    (d / "README").write_text("nothing here")
    made["dir_without_elf"] = (d, "no ELF objects to scan")
    loop = tmp / "loop.so"
    os.symlink(loop, loop)
    made["symlink_loop"] = (loop, "symbolic links")
    made["missing"] = (tmp / "does-not-exist.so", "no such file")
    return made


@pytest.mark.parametrize("command", ["scan", "deps"])
def test_bad_inputs_exit_2_with_one_line(command: str, good_so: bytes, tmp_path: Path) -> None:
    for name, (path, fragment) in cases(good_so, tmp_path).items():
        start = time.perf_counter()
        code, out, err = run_cli([command, str(path)])
        elapsed = time.perf_counter() - start
        assert code == 2, (name, code, err)
        assert out == "", name
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("uk-depscan: error: "), (name, err)
        assert str(path) in lines[0] and fragment in lines[0], (name, lines[0])
        assert "Traceback" not in err
        assert elapsed < 2.0, (name, elapsed)


def test_directory_input_scans_every_elf(good_so: bytes, tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "liba.so").write_bytes(good_so)
    (tmp_path / "libb.so").write_bytes(good_so[:10])  # corrupt one is skipped, not fatal
    (tmp_path / "notes.txt").write_text("x")
    os.symlink(tmp_path, tmp_path / "sub" / "loop")  # directory symlink loop is not followed
    code, out, err = run_cli(["deps", str(tmp_path), "--format", "json"])
    assert code == 0, err
    import json

    doc = json.loads(out)
    assert [t["target"] for t in doc["targets"]] == [str(tmp_path / "sub" / "liba.so")]
    assert [s["path"] for s in doc["skipped"]] == [str(tmp_path / "libb.so")]


def test_unknown_usage_exits_2() -> None:
    code, _, err = run_cli(["deps", "--format", "yaml", "x"])
    assert code == 2 and "Traceback" not in err
