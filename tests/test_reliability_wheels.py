"""Wheel limits on declared sizes (before writing), bad members skipped with the rest analysed, filters."""

from __future__ import annotations

import json
import os
import stat
import struct
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import pytest
from conftest import FIXTURES, REPO, WHEELS_HINT, compile_so, run_cli

from uk_depscan.errors import InputError
from uk_depscan.inputs import MemberFilter, WheelLimits, collect_inputs

GB3 = 3 << 30


@pytest.fixture(scope="module")
def elf(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return compile_so(tmp_path_factory.mktemp("wl") / "libok.so", [FIXTURES / "loader" / "lib.c"]).read_bytes()


def _wheel(path: Path, members: list[tuple[str, bytes]], method: int = zipfile.ZIP_DEFLATED) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate names some tests want
        with zipfile.ZipFile(path, "w", compression=method) as zf:
            for name, data in members:
                zf.writestr(name, data)
    return path


def _declare(path: Path, member: str, size: int) -> None:
    """Make ``member`` *declare* ``size`` uncompressed bytes in both of its headers (a sparse bomb:
    a few KB of archive whose member claims gigabytes)."""
    data = bytearray(path.read_bytes())
    name = member.encode()
    local = data.find(b"PK\x03\x04")
    while local >= 0:
        (nlen,) = struct.unpack_from("<H", data, local + 26)
        if data[local + 30 : local + 30 + nlen] == name:
            struct.pack_into("<I", data, local + 22, size)
        local = data.find(b"PK\x03\x04", local + 4)
    central = data.find(b"PK\x01\x02")
    while central >= 0:
        (nlen,) = struct.unpack_from("<H", data, central + 28)
        if data[central + 46 : central + 46 + nlen] == name:
            struct.pack_into("<I", data, central + 24, size)
        central = data.find(b"PK\x01\x02", central + 4)
    path.write_bytes(bytes(data))


def _json(args: list[str]) -> tuple[int, dict]:
    code, out, err = run_cli([*args, "--format", "json"])
    assert code in (0, 1) and "Traceback" not in err, err
    return code, json.loads(out)


def _skips(doc: dict, whl: Path) -> dict[str, str]:
    return {s["path"].split("!/", 1)[1]: s["reason"] for s in doc["skipped"] if s["path"].startswith(f"{whl}!/")}


def test_sparse_3gb_member_is_refused_before_writing(tmp_path: Path, elf: bytes) -> None:
    whl = _wheel(tmp_path / "sparse-1.0-py3-none-any.whl", [("pkg/libok.so", elf), ("pkg/libbomb.so", elf)])
    _declare(whl, "pkg/libbomb.so", GB3)
    assert whl.stat().st_size < 20_000
    with collect_inputs([str(whl)]) as inputs:
        (tmp,) = inputs.prefixes
        written = sorted(str(p.relative_to(tmp)) for p in Path(tmp).rglob("*") if p.is_file())
        assert written == [".uk-depscan-owner", "pkg/libok.so"]  # nothing of the bomb, not even a partial file
        (skip,) = inputs.skipped
        assert skip.path.endswith("!/pkg/libbomb.so") and f"declares {GB3} bytes" in skip.reason
    # and through the CLI, measured: the rest of the wheel is analysed, memory stays small.  VmHWM of
    # the child's own address space (ru_maxrss would include the forking pytest process's RSS).
    code = (
        "import sys; from uk_depscan.cli.main import run; rc = run(sys.argv[1:]); "
        "print(open('/proc/self/status').read().split('VmHWM:')[1].split()[0], file=sys.stderr); sys.exit(rc)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, "deps", str(whl), "--format", "json"],
        capture_output=True,
        check=False,
        text=True,
        env=dict(os.environ, TMPDIR=str(tmp_path)),
    )
    assert proc.returncode == 0, proc.stderr
    rss_kb = int(proc.stderr.strip().splitlines()[-1])
    assert rss_kb < 300_000, rss_kb
    doc = json.loads(proc.stdout)
    assert [t["target"] for t in doc["targets"]] == [f"{whl}!/pkg/libok.so"]


def test_compression_ratio_and_size_limits_per_member_and_total(tmp_path: Path, elf: bytes) -> None:
    bomb = elf[:64] + b"\0" * (64 << 20)  # ELF-looking, 64 MiB of zeros: deflates ~1000:1
    members = [("pkg/liba.so", elf), ("pkg/libbomb.so", bomb), ("pkg/libb.so", elf), ("pkg/libc2.so", elf)]
    whl = _wheel(tmp_path / "ratio-1.0-py3-none-any.whl", members)
    _, doc = _json(["deps", str(whl)])
    skips = _skips(doc, whl)
    assert "above the limit of 200:1 (zip bomb?)" in skips["pkg/libbomb.so"]
    assert len(doc["targets"]) == 3
    # configurable: a per-member and a total limit
    small = WheelLimits(max_member_bytes=len(elf) - 1)
    with pytest.raises(InputError, match=r"no ELF objects to scan .*more than the per-member limit"):
        collect_inputs([str(whl)], limits=small)
    total = WheelLimits(max_total_bytes=2 * len(elf))
    with collect_inputs([str(whl)], limits=total) as inputs:
        assert [Path(t.display).name for t in inputs.targets] == ["liba.so", "libb.so"]
        reasons = {Path(s.path).name: s.reason for s in inputs.skipped}
        assert "extracted total past the limit" in reasons["libc2.so"]


def test_bad_members_are_skipped_and_the_rest_analysed(tmp_path: Path, elf: bytes) -> None:
    long_component = "l" * 300 + ".so"
    long_path = "/".join(["d" * 100] * 42) + "/libdeep.so"  # 4,200+ characters
    members = [
        ("pkg/libgood.so", elf),
        ("pkg/libdup.so", elf),
        ("pkg/libdup.so", elf),
        ("pkg/libfile.so", elf),
        ("pkg/libfile.so/inner.so", elf),
        (f"pkg/{long_component}", elf),
        (long_path, elf),
        ("pkg/notelf.so", b"just text"),
        ("pkg/data.bin", b"\0" * 100),
    ]
    whl = _wheel(tmp_path / "bad-1.0-py3-none-any.whl", members)
    _, doc = _json(["deps", str(whl)])
    assert [t["target"] for t in doc["targets"]] == [f"{whl}!/pkg/libgood.so"]
    skips = _skips(doc, whl)
    assert skips["pkg/libdup.so"].startswith("duplicate member name (2 entries)")
    assert "file/directory conflict" in skips["pkg/libfile.so"]
    assert "file/directory conflict" in skips["pkg/libfile.so/inner.so"]
    assert "path component of 303 bytes" in skips[f"pkg/{long_component}"]
    assert "longer than the 1024 allowed" in skips[long_path]
    assert skips["pkg/notelf.so"] == "named like a shared object but not an ELF file"
    assert "pkg/data.bin" not in skips  # not an ELF: never written, nothing to say


def test_object_kinds_inside_a_wheel(tmp_path: Path, elf: bytes) -> None:
    rel = tmp_path / "x.o"
    subprocess.run(["gcc", "-c", "-fPIC", "-o", str(rel), str(FIXTURES / "loader" / "lib.c")], check=True)
    core_like = bytearray(elf)
    core_like[16:18] = struct.pack("<H", 4)
    whl = _wheel(
        tmp_path / "kinds-1.0-py3-none-any.whl",
        [("pkg/libok.so", elf), ("pkg/x.o", rel.read_bytes()), ("pkg/core", bytes(core_like))],
    )
    _, doc = _json(["deps", str(whl)])
    skips = _skips(doc, whl)
    assert skips["pkg/x.o"].startswith("relocatable object (ET_REL")
    assert skips["pkg/core"].startswith("core dump (ET_CORE)")


def test_corrupt_member_is_skipped_not_fatal(tmp_path: Path, elf: bytes) -> None:
    whl = _wheel(
        tmp_path / "crc-1.0-py3-none-any.whl", [("pkg/liba.so", elf), ("pkg/libb.so", elf)], zipfile.ZIP_STORED
    )
    data = bytearray(whl.read_bytes())
    second = data.find(b"pkg/libb.so") + len("pkg/libb.so")
    data[second + 200 : second + 220] = b"\xff" * 20  # inside libb's stored bytes: CRC mismatch
    whl.write_bytes(bytes(data))
    _, doc = _json(["deps", str(whl)])
    assert [t["target"] for t in doc["targets"]] == [f"{whl}!/pkg/liba.so"]
    assert "corrupt or unwritable member" in _skips(doc, whl)["pkg/libb.so"]


def test_member_filter_for_wheels_and_directories(tmp_path: Path, elf: bytes) -> None:
    names = ["pkg/lib/liba.so", "pkg/lib/libb.so", "pkg/tests/libt.so", "tools/libtool.so"]
    whl = _wheel(tmp_path / "f-1.0-py3-none-any.whl", [(n, elf) for n in names])
    d = tmp_path / "tree"
    for n in names:
        (d / n).parent.mkdir(parents=True, exist_ok=True)
        (d / n).write_bytes(elf)
    cases = [
        (MemberFilter(include=("pkg/lib/*",)), ["pkg/lib/liba.so", "pkg/lib/libb.so"]),
        (MemberFilter(exclude=("*/tests/*",)), ["pkg/lib/liba.so", "pkg/lib/libb.so", "tools/libtool.so"]),
        (MemberFilter(include=("lib?.so",), exclude=("libb.so",)), ["pkg/lib/liba.so", "pkg/tests/libt.so"]),
    ]
    for select, expected in cases:
        with collect_inputs([str(whl)], select=select) as inputs:
            assert sorted(t.display.split("!/", 1)[1] for t in inputs.targets) == expected, select
        with collect_inputs([str(d)], select=select) as inputs:
            assert sorted(str(Path(t.path).relative_to(d)) for t in inputs.targets) == expected, select


def _wheel_files() -> list[Path]:
    extracted = Path(os.environ.get("UK_DEPSCAN_WHEELS", REPO / "bench" / "wheels" / "x"))
    return sorted(extracted.parent.glob("*.whl"))


@pytest.mark.realwheel
@pytest.mark.slow  # over 5 s here: streams every member of the four real wheels
def test_default_limits_accept_every_real_wheel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wheels = _wheel_files()
    if len(wheels) < 4:
        pytest.skip(f"the four target wheel files: {WHEELS_HINT}")
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    for whl in wheels:
        with zipfile.ZipFile(whl) as zf:
            elf_members = {
                i.filename
                for i in zf.infolist()
                if not i.is_dir() and zf.open(i).read(4) == b"\x7fELF" and not stat.S_ISLNK(i.external_attr >> 16)
            }
        with collect_inputs([str(whl)]) as inputs:
            refused = [s for s in inputs.skipped if s.path.split("!/", 1)[1] in elf_members]
            assert refused == [], (whl.name, refused[:3])
            assert {t.display.split("!/", 1)[1] for t in inputs.targets} == elf_members, whl.name


def _one_by_one(whl: Path, limits: WheelLimits, tmp: Path) -> tuple[list[str], list[tuple[str, str]]]:
    """The extraction the threaded one replaced, member after member in archive order: (targets,
    skips in order).  A test oracle: the order of the checks and the running total of bytes written."""
    import contextlib
    import zlib

    from uk_depscan.elf.file import ELFMAG
    from uk_depscan.inputs import _limit_problem, _read_head, object_kind_problem

    targets: list[str] = []
    skips: list[tuple[str, str]] = []
    total = 0
    with zipfile.ZipFile(whl) as zf:
        for info in zf.infolist():
            name, dest, written = info.filename, tmp / info.filename, 0
            try:
                with zf.open(info) as src:
                    head = _read_head(src)
                    if head[:4] != ELFMAG:
                        if name.endswith(".so"):
                            skips.append((name, "named like a shared object but not an ELF file"))
                        continue
                    problem = object_kind_problem(head) or _limit_problem(info, total, limits)
                    if problem:
                        skips.append((name, problem))
                        continue
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    with open(dest, "xb") as out:
                        out.write(head)
                        written = len(head)
                        while chunk := src.read(1 << 20):
                            written += len(chunk)
                            out.write(chunk)
            except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError) as err:
                with contextlib.suppress(OSError):
                    dest.unlink()
                skips.append((name, f"corrupt or unwritable member: {err}"))
                continue
            total += written
            targets.append(name)
    return targets, skips


def test_threaded_extraction_is_the_one_by_one_extraction(tmp_path: Path, elf: bytes) -> None:
    """Random wheels of good, padded, corrupt (CRC), truncated-looking, relocatable, non-ELF and
    oversized members under random total limits: the members extracted by several threads give
    the targets and the skips, in order, of extracting one after the other, including a member the
    total refuses only while a member before it that then fails is counted."""
    import random

    rng = random.Random(11)
    rel = bytearray(elf)
    rel[16:18] = struct.pack("<H", 1)  # ET_REL
    seen_late = 0
    for case in range(160):
        members: list[tuple[str, bytes]] = []
        corrupt: list[str] = []
        for i in range(rng.randrange(2, 9)):
            kind = rng.choice(["elf", "padded", "padded", "corrupt", "corrupt", "text.so", "data", "rel", "huge"])
            name = f"pkg/m{i}" + (".so" if kind != "data" else ".bin")
            data = {
                "elf": elf,
                "padded": elf + b"\0" * rng.randrange(1, 3 * len(elf)),
                "corrupt": elf + bytes(rng.randrange(256) for _ in range(64)),
                "text.so": b"not an ELF file",
                "data": b"\0" * 100,
                "rel": bytes(rel),
                "huge": elf + b"\1" * (8 * len(elf)),
            }[kind]
            members.append((name, data))
            if kind == "corrupt":
                corrupt.append(name)
        whl = _wheel(tmp_path / f"t{case}-1.0-py3-none-any.whl", members, zipfile.ZIP_STORED)
        raw = bytearray(whl.read_bytes())
        with zipfile.ZipFile(whl) as zf:
            for info in zf.infolist():
                if info.filename in corrupt:  # a byte past the header: the CRC fails at the end
                    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
                    raw[start + 100] ^= 0xFF
        whl.write_bytes(bytes(raw))
        sizes = sum(len(d) for _, d in members)
        limits = WheelLimits(
            max_total_bytes=rng.randrange(len(elf), max(sizes, len(elf)) + 2), max_member_bytes=5 * len(elf)
        )
        oracle = _one_by_one(whl, limits, tmp_path / f"ref{case}")
        for threads in (1, 2, 4):
            try:
                with collect_inputs([str(whl)], limits=limits, threads=threads) as inputs:
                    got = (
                        [t.display.split("!/", 1)[1] for t in inputs.targets],
                        [(s.path.split("!/", 1)[1], s.reason) for s in inputs.skipped],
                    )
                    assert all(os.path.isfile(t.path) for t in inputs.targets)
                    root = Path(inputs.targets[0].path).parents[1]
                    left = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
                    left = [p for p in left if not p.startswith(".uk-depscan")]  # the directory's lock
                    assert left == sorted(got[0]), "a member written for nothing was left behind"
            except InputError:  # no target at all: the one-by-one extraction has none either
                got = ([], oracle[1])
            assert got == oracle, (case, threads, members and [n for n, _ in members], limits)
        first_fail = next((k for k, (_, r) in enumerate(oracle[1]) if r.startswith("corrupt")), None)
        seen_late += first_fail is not None and len(oracle[0]) > 0
    assert seen_late > 5  # cases where a failure before a member changed the running total


def test_many_members_by_many_threads(tmp_path: Path, elf: bytes) -> None:
    """Eight threads over 400 deflated members, switching as often as the interpreter can: every
    member extracted whole, the targets in archive order, nothing skipped."""
    import sys

    members = [(f"pkg/lib{i}.so", elf + i.to_bytes(4, "little")) for i in range(400)]
    whl = _wheel(tmp_path / "many-1.0-py3-none-any.whl", members)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        with collect_inputs([str(whl)], threads=8) as inputs:
            assert not inputs.skipped, inputs.skipped[:3]
            assert [Path(t.path).read_bytes() for t in inputs.targets] == [d for _, d in members]
    finally:
        sys.setswitchinterval(interval)
