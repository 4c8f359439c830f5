"""Batched reaches (:meth:`CallGraph.reach_bits`, :meth:`EngineSummary.prefetch`): 64 searches per
propagation must answer exactly what one search per entry answers, failure flags included."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import host_libstdcxx, need
from test_address_taken import ARCHES, EXPECT, build

from uk_depscan.elf.file import open_elf
from uk_depscan.syscalls.callgraph import CallGraph
from uk_depscan.syscalls.closure import BatchSummary, close_over_bindings
from uk_depscan.syscalls.reach import EngineSummary
from uk_depscan.syscalls.scan import scan_library


def host_library(name: str) -> Path:
    """A host library located by the compiler (``gcc -print-file-name`` never loads it), or skip."""
    need("gcc")
    found = subprocess.run(["gcc", f"-print-file-name={name}"], check=False, capture_output=True, text=True).stdout
    if not os.path.isabs(found.strip()) or not os.path.exists(found.strip()):
        pytest.skip(f"the host has no {name} where gcc looks")
    return Path(os.path.realpath(found.strip()))


def _random_graph(rng: np.random.Generator) -> CallGraph:
    n_funcs, n_imports, n_data = (int(rng.integers(lo, hi)) for lo, hi in ((1, 80), (0, 12), (0, 12)))
    n = n_funcs + n_imports + n_data
    edges = int(rng.integers(0, 4 * n))
    return CallGraph.from_edges(
        np.arange(n_funcs, dtype=np.uint64) * 16,
        rng.integers(0, n, edges),
        rng.integers(0, n, edges),
        tuple(f"imp{j}" for j in range(n_imports)),
        np.arange(n_data, dtype=np.uint64) * 16 + 0x10000,
    )


@pytest.mark.parametrize("seed", range(8))
def test_reach_bits_is_one_search_per_root_set(seed: int) -> None:
    """Random graphs (cycles, self-loops, duplicate edges), up to 64 root sets with roots out of
    range, with and without blocked nodes: bit i of every node is exactly ``reachable(sets[i])``."""
    rng = np.random.default_rng(seed)
    checked = 0
    for case in range(60):
        g = _random_graph(rng)
        sets = [rng.integers(-2, g.n_nodes + 2, int(rng.integers(0, 5))) for _ in range(int(rng.integers(1, 65)))]
        blocked = rng.random(g.n_nodes) < 0.2 if case % 2 else None
        bits = g.reach_bits(sets, blocked)
        for i, roots in enumerate(sets):
            got = ((bits >> np.uint64(i)) & np.uint64(1)).astype(bool)
            want = g.reachable(roots.tolist(), blocked)
            assert np.array_equal(got, want), (seed, case, i)
            checked += int(want.sum())
    assert checked > 1000  # the graphs are not all trivially empty


def test_reach_bits_takes_at_most_64_sets() -> None:
    g = _random_graph(np.random.default_rng(0))
    assert not g.reach_bits([]).any()
    with pytest.raises(ValueError):
        g.reach_bits([np.zeros(1, np.int64)] * 65)


def _same_reaches(path: Path, keys: list[str]) -> int:
    """Prefetch ``keys`` in one summary, ask them one by one of another: the same Reach each; the
    number of keys whose reach has a failure-only site (the flag the second propagation computes)."""
    with open_elf(path) as elf:
        scan = scan_library(elf, no_cache=True)
        batched, single = EngineSummary(path.name, elf, scan), EngineSummary(path.name, elf, scan)
        assert isinstance(batched, BatchSummary)
        batched.prefetch(keys)
        flagged = 0
        for key in keys:
            got, want = batched.reach(key), single.reach(key)
            assert got == want, key
            flagged += any(s.failure for s in want.sites) if want else 0
        return flagged


@pytest.mark.parametrize("lib", ["libstdc++.so.6", "libc.so.6"])
def test_prefetch_equals_single_reaches_on_host_libraries(lib: str) -> None:
    """Real libraries: every 4th export (sorted; about a thousand entries of libstdc++, 16
    propagations), a name that is no export (a None reach) and the constructors.  In libc, sites
    reached only through abort and the fortify failures carry the failure flag."""
    path = host_libstdcxx() if lib == "libstdc++.so.6" else host_library(lib)
    with open_elf(path) as elf:
        exports = sorted({k for k, _ in scan_library(elf).exports})
    keys = [*exports[::4], "no_such_export", "<init>"]
    flagged = _same_reaches(path, keys)
    assert len(keys) > 500
    if lib == "libc.so.6":
        assert flagged > 0  # the second propagation (failure functions blocked) was compared too


@pytest.mark.parametrize("arch", ARCHES)
def test_prefetch_equals_single_reaches_on_fixture(arch: str, tmp_path) -> None:
    lib, _ = build(arch, tmp_path)
    _same_reaches(lib, sorted(EXPECT["exports"]))


def test_closure_batches_the_queued_entries() -> None:
    """close_over_bindings hands a BatchSummary every entry it has queued for it, once each."""
    from uk_depscan.syscalls.closure import Reach

    class Lib:
        library = "liblib.so"

        def __init__(self) -> None:
            self.batches: list[list[str]] = []

        def reach(self, entry: str) -> Reach | None:
            return Reach((), ())

        def prefetch(self, entries) -> None:
            self.batches.append(list(entries))

    class Root:
        library = "libroot.so"

        def reach(self, entry: str) -> Reach | None:
            return Reach((), ("a", "b", "c"))

    lib = Lib()
    bind = {(0, k): (1, f"{k}@V") for k in ("a", "b", "c")}
    close_over_bindings([(0, "<all>")], {0: Root(), 1: lib}, bind)
    assert lib.batches == [["a@V", "b@V", "c@V"]]
