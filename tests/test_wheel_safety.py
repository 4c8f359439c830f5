"""Hostile wheels: bombs, traversal, absolute and symlink members, corrupt archives."""

from __future__ import annotations

import glob
import os
import stat
import tempfile
import zipfile
from pathlib import Path

import pytest
from conftest import FIXTURES, compile_so, run_cli


@pytest.fixture(scope="module")
def elf_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return compile_so(tmp_path_factory.mktemp("w") / "libok.so", [FIXTURES / "loader" / "lib.c"]).read_bytes()


def _wheel(path: Path, members: dict[str, bytes], symlinks: dict[str, str] | None = None) -> Path:
    symlinks = symlinks or {}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name, target in symlinks.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return path


def _leftover_tempdirs() -> set[str]:
    return set(glob.glob(os.path.join(tempfile.gettempdir(), "uk-depscan-wheel-*")))


def test_zip_bomb_member_is_refused(tmp_path: Path, elf_bytes: bytes) -> None:
    bomb = elf_bytes[:64] + b"\0" * (64 << 20)  # ELF-looking member, 64 MiB of zeros
    whl = _wheel(tmp_path / "bomb-1.0-py3-none-any.whl", {"pkg/libbomb.so": bomb})
    before = _leftover_tempdirs()
    code, out, err = run_cli(["deps", str(whl)])
    assert code == 2 and out == ""
    assert "zip bomb" in err and str(whl) in err and err.count("\n") == 1
    assert _leftover_tempdirs() == before


def test_traversal_absolute_and_symlink_members_are_never_written(tmp_path: Path, elf_bytes: bytes) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    members = {
        "pkg/libok.so": elf_bytes,
        "../../outside/evil.so": elf_bytes,
        f"{outside}/abs.so": elf_bytes,
        "pkg/../../escape.so": elf_bytes,
    }
    whl = _wheel(tmp_path / "trav-1.0-py3-none-any.whl", members, symlinks={"pkg/liblink.so": "/etc/passwd"})
    code, out, err = run_cli(["deps", str(whl), "--format", "json"])
    assert code == 0, err
    import json

    doc = json.loads(out)
    assert [t["target"] for t in doc["targets"]] == [f"{whl}!/pkg/libok.so"]
    skipped = {s["path"].split("!/", 1)[1] for s in doc["skipped"]}
    assert {"../../outside/evil.so", "pkg/../../escape.so", "pkg/liblink.so"} <= skipped
    assert list(outside.iterdir()) == [] and not (tmp_path / "escape.so").exists()


def test_corrupt_zip_is_refused(tmp_path: Path, elf_bytes: bytes) -> None:
    whl = _wheel(tmp_path / "ok-1.0-py3-none-any.whl", {"pkg/libok.so": elf_bytes})
    data = whl.read_bytes()
    cut = tmp_path / "cut-1.0-py3-none-any.whl"
    cut.write_bytes(data[: len(data) // 2])
    code, _, err = run_cli(["deps", str(cut)])
    assert code == 2 and "not a valid wheel" in err and str(cut) in err
    flipped = bytearray(data)
    flipped[60:80] = b"\xff" * 20  # inside the deflated member: CRC or inflate error
    bad = tmp_path / "crc-1.0-py3-none-any.whl"
    bad.write_bytes(bytes(flipped))
    code, _, err = run_cli(["deps", str(bad)])
    assert code == 2 and str(bad) in err and "Traceback" not in err
