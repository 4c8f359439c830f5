"""Helpers for the syscall-extraction tests: build the fixture libraries, compare site sets."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import install_hint, need

REPO = Path(__file__).resolve().parent.parent
SYSCALL_FIXTURES = REPO / "fixtures" / "syscalls"
CC = {"x86_64": "gcc", "aarch64": "aarch64-linux-gnu-gcc"}
# (source, extra flags); every object is built -O2 -fPIC and linked into one shared object
SOURCES = [("{arch}/direct.c", []), ("common/wrappers.c", []), ("common/noplt.c", ["-fno-plt"])]


def build_syscall_fixture(arch: str, out_dir: Path, opt: str = "-O2", sources: list | None = None) -> Path:
    """Compile ``fixtures/syscalls`` for ``arch`` into ``out_dir/libsys-<arch>.so`` (skip if no compiler)."""
    cc = CC[arch]
    need(cc)
    out_dir.mkdir(parents=True, exist_ok=True)
    objs = []
    for src, flags in SOURCES if sources is None else sources:
        path = SYSCALL_FIXTURES / src.format(arch=arch)
        obj = out_dir / f"{arch}{opt}-{path.stem}.o"
        _run([cc, opt, "-fPIC", *flags, "-c", str(path), "-o", str(obj)])
        objs.append(str(obj))
    lib = out_dir / f"libsys-{arch}{opt}.so"
    _run([cc, "-shared", "-o", str(lib), *objs])
    return lib


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True)  # failure handled below
    if proc.returncode:
        if "cannot find" in proc.stderr or "No such file" in proc.stderr:
            pytest.skip(f"toolchain incomplete ({install_hint(cmd[0])}): {proc.stderr.strip()[:200]}")
        raise AssertionError(f"{' '.join(cmd)} failed:\n{proc.stderr}")


def symbol_address(lib: Path, name: str) -> int:
    """The address ``nm`` (binutils, the oracle) gives the one symbol ``name`` of ``lib``."""
    need("nm")
    out = subprocess.run(["nm", str(lib)], check=True, capture_output=True, text=True).stdout
    found = [int(line.split()[0], 16) for line in out.splitlines() if line.split()[-1:] == [name]]
    assert len(found) == 1, (name, found)
    return found[0]


def expected_sites(arch: str) -> set[tuple]:
    doc = json.loads((SYSCALL_FIXTURES / arch / "expect.json").read_text())
    return {(e["function"], e["kind"], tuple(e["numbers"]), e["confidence"], e.get("via")) for e in doc["sites"]}


def expected_wrappers(arch: str) -> set[tuple]:
    doc = json.loads((SYSCALL_FIXTURES / arch / "expect.json").read_text())
    return {(w["name"], w["arg_index"], w["via"]) for w in doc["wrappers"]}


def site_tuples(scan) -> set[tuple]:
    return {(s.function, s.kind, tuple(s.numbers), s.confidence, s.via) for s in scan.sites}


def wheels_dir() -> Path:
    """Extracted real wheels: ``$UK_DEPSCAN_WHEELS``, else what ``bench/fetch_wheels.sh`` fills."""
    return Path(os.environ.get("UK_DEPSCAN_WHEELS", REPO / "bench" / "wheels" / "x"))


def export_reach(elf, scan) -> dict[str, tuple[frozenset[int], frozenset[str]]]:
    """Per exported function of ``scan``: (syscall numbers, import keys) it reaches, as the analysis
    answers it (:class:`uk_depscan.syscalls.reach.EngineSummary`; failure-only sites included)."""
    from uk_depscan.syscalls.reach import EngineSummary

    summary = EngineSummary(str(elf.name), elf, scan)
    out = {}
    for key, _ in scan.exports:
        reach = summary.reach(key)
        assert reach is not None, key
        out[key] = (frozenset(s.number for s in reach.sites), frozenset(reach.imports))
    return out


def dfs_reach(scan, addr: int) -> tuple[frozenset[int], frozenset[str]]:
    """Oracle for :func:`export_reach`: a plain depth-first search over the call graph's CSR
    arrays from the function containing ``addr``; a site belongs to the function containing it."""
    import bisect

    g = scan.graph
    starts = g.func_starts.tolist()
    indptr, indices = g.indptr.tolist(), g.indices.tolist()
    root = bisect.bisect_right(starts, addr) - 1
    seen, stack = {root}, [root]
    while stack:
        node = stack.pop()
        for nxt in indices[indptr[node] : indptr[node + 1]]:
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    numbers = {n for s in scan.sites if bisect.bisect_right(starts, s.address) - 1 in seen for n in s.numbers}
    imports = {g.import_keys[n - len(starts)] for n in seen if len(starts) <= n < g.data_base}
    return frozenset(numbers), frozenset(imports)
