"""Syscall extraction on the real ML libraries against a reference built from ``objdump -d``.

Marked ``realwheel``: skipped unless the extracted wheels are present (``UK_DEPSCAN_WHEELS``,
default ``bench/wheels/x``, which ``bench/fetch_wheels.sh`` fills).  The libtorch
reference costs one full ``objdump -d`` of the 434 MB library (about a minute and a half).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from conftest import WHEELS_HINT, need
from helpers_syscalls import dfs_reach, export_reach, wheels_dir

from uk_depscan.elf.file import open_elf
from uk_depscan.syscalls.reach import EngineSummary
from uk_depscan.syscalls.scan import scan_library

pytestmark = pytest.mark.realwheel

LIBS = {
    "libtorch_cpu": ["torch/torch/lib/libtorch_cpu.so"],
    "libonnxruntime": [
        "ort/onnxruntime/capi/libonnxruntime.so.1.31.1",
        "onnxruntime/onnxruntime/capi/libonnxruntime.so.1.31.1",
    ],
    "libgomp": ["torch/torch/lib/libgomp.so.1"],
}
LINE = re.compile(r"^\s*([0-9a-f]+):\s+(\S+)\s*(.*)$")
WRAPPER_CALL = re.compile(r"^(call|jmp|j[a-z]+)\s+(?:[0-9a-f]+ <syscall@plt>|\*.*<syscall@GLIBC[^>]*>)")
EDI_IMM = re.compile(r"^mov\s+\$0x([0-9a-f]+),%(edi|rdi)$")
WRITES_EDI = re.compile(r",%(edi|rdi|di|dil)$")


def find_lib(key: str) -> Path:
    for rel in LIBS[key]:
        if (wheels_dir() / rel).is_file():
            return wheels_dir() / rel
    pytest.skip(f"{key}: {WHEELS_HINT}")


def objdump_lines(path: Path, pattern: str, before: int) -> list[str]:
    need("objdump")
    dump = subprocess.Popen(["objdump", "-d", "--no-show-raw-insn", "-j", ".text", str(path)], stdout=subprocess.PIPE)
    # not check=True: grep exits 1 when nothing matches, which the callers assert on themselves
    grep = subprocess.run(
        ["grep", f"-B{before}", "-E", pattern], check=False, stdin=dump.stdout, capture_output=True, text=True
    )
    dump.stdout.close()
    dump.wait()
    return grep.stdout.splitlines()


def wrapper_reference(path: Path) -> dict[int, int | None]:
    """Every call/jump to syscall() in .text, with the number when a plain ``mov $imm,%edi``
    precedes it in straight-line code (None when objdump text alone cannot tell)."""
    lines = objdump_lines(path, r"<syscall@(plt|GLIBC)", 16)
    ref: dict[int, int | None] = {}
    for i, line in enumerate(lines):
        m = LINE.match(line)
        if not m or not WRAPPER_CALL.match(f"{m.group(2)} {m.group(3)}".strip()):
            continue
        number = None
        for prev in reversed(lines[max(0, i - 16) : i]):
            pm = LINE.match(prev)
            if not pm:
                break  # '--' group separator or a function header
            mnem, ops = pm.group(2), pm.group(3).split("#")[0].strip()
            if mnem.startswith("j") or mnem in ("call", "ret"):
                break
            em = EDI_IMM.match(f"{mnem} {ops}")
            if em:
                number = int(em.group(1), 16)
                break
            if WRITES_EDI.search(ops) or (mnem in ("pop",) and ops in ("%rdi",)):
                break
        ref[int(m.group(1), 16)] = number
    return ref


@pytest.fixture(scope="module")
def scans():
    cache: dict[str, object] = {}

    def get(key: str):
        if key not in cache:
            path = find_lib(key)
            with open_elf(path) as elf:
                cache[key] = (path, scan_library(elf, no_cache=True))
        return cache[key]

    return get


# slow: one full `objdump -d` per library (libtorch_cpu ~100 s, libonnxruntime ~15 s on 2 cores)
@pytest.mark.parametrize("key", [pytest.param(k, marks=pytest.mark.slow) for k in ("libtorch_cpu", "libonnxruntime")])
def test_every_syscall_wrapper_site_found_with_its_number(scans, key):
    path, scan = scans(key)
    ref = wrapper_reference(path)
    assert ref, "reference found no syscall() call sites"
    ours = {s.address: s for s in scan.sites if s.kind == "wrapper_call" and (s.via or "").startswith("syscall@")}
    assert set(ours) == set(ref), (
        f"missing {sorted(map(hex, set(ref) - set(ours)))}, extra {sorted(map(hex, set(ours) - set(ref)))}"
    )
    wrong = {
        hex(a): (n, ours[a].numbers, ours[a].reason)
        for a, n in ref.items()
        if n is not None and n not in ours[a].numbers
    }
    assert not wrong
    # numbers the textual reference cannot see must still be recovered, not dropped
    unresolved = [hex(a) for a, s in ours.items() if not s.numbers]
    assert not unresolved, unresolved


def test_libgomp_direct_sites_resolved(scans):
    path, scan = scans("libgomp")
    ref = {
        int(m.group(1), 16)
        for m in map(LINE.match, objdump_lines(path, r"\ssyscall\s*$", 0))
        if m and m.group(2) == "syscall"
    }
    ours = {s.address: s for s in scan.sites if s.kind == "direct"}
    assert set(ours) == ref
    resolved = sum(1 for s in ours.values() if s.confidence in ("exact", "multiple"))
    assert resolved >= 0.95 * len(ref), f"{resolved}/{len(ref)} resolved"


@pytest.mark.slow  # scans all of libtorch_cpu.so (shared with the wrapper test above when both run)
def test_libtorch_call_graph_is_compact(scans):
    path, scan = scans("libtorch_cpu")
    g = scan.graph
    assert g.n_funcs > 100_000 and g.n_edges > 1_000_000
    assert g.memory_bytes() < 64 << 20
    amx = [k for k, _ in scan.exports if k.startswith("_ZN2at3cpu8init_amx")]
    assert amx
    with open_elf(path) as elf:
        reach = EngineSummary(path.name, elf, scan)
        nums = {s.number for k in amx for s in reach.reach(k).sites}
    assert 158 in nums  # arch_prctl(ARCH_REQ_XCOMP_PERM) for AMX


def test_libgomp_export_reach_agrees_with_plain_dfs(scans):
    path, scan = scans("libgomp")
    with open_elf(path) as elf:
        summary = export_reach(elf, scan)
    assert len(summary) > 100
    for key, addr in scan.exports:
        assert summary[key] == dfs_reach(scan, addr), key
    assert 202 in summary["GOMP_barrier@@GOMP_1.0"][0]  # futex
