"""Syscall extraction on fixture libraries compiled at test time (x86-64, then AArch64)."""

from __future__ import annotations

import pytest
from helpers_syscalls import (
    build_syscall_fixture,
    dfs_reach,
    expected_sites,
    expected_wrappers,
    export_reach,
    site_tuples,
)

from uk_depscan.elf.file import open_elf
from uk_depscan.syscalls.reach import EngineSummary
from uk_depscan.syscalls.scan import scan_library

ARCHES = ["x86_64", pytest.param("aarch64", marks=pytest.mark.cross)]


@pytest.fixture(scope="module", params=ARCHES)
def built(request, tmp_path_factory):
    arch = request.param
    lib = build_syscall_fixture(arch, tmp_path_factory.mktemp(f"sys-{arch}"))
    elf = open_elf(lib)
    yield arch, elf, scan_library(elf, no_cache=True)
    elf.close()


def test_exact_site_set(built):
    arch, _, scan = built
    got, want = site_tuples(scan), expected_sites(arch)
    assert got == want, f"missing: {sorted(want - got, key=str)}\nunexpected: {sorted(got - want, key=str)}"
    assert len(scan.sites) == len(want)  # no duplicates at one address either


def test_local_wrappers(built):
    arch, _, scan = built
    assert {(w.name, w.arg_index, w.via) for w in scan.wrappers} == expected_wrappers(arch)


def test_sites_are_instructions_with_addresses_and_functions(built):
    _arch, _elf, scan = built
    for s in scan.sites:
        assert s.function is not None and s.function_addr is not None
        assert s.function_addr <= s.address
        assert (s.confidence == "exact") == (len(s.numbers) == 1 and not s.reason) or s.kind in ("int80", "sysenter")
        if s.confidence == "unknown":
            assert s.reason


def test_hidden_byte_pair_not_counted(built):
    _, _, scan = built
    assert not [s for s in scan.sites if s.function == "d_hidden_pair"]


def test_reachability_through_wrappers(built):
    arch, elf, scan = built
    umask = {"x86_64": 95, "aarch64": 166}[arch]
    sync = {"x86_64": 162, "aarch64": 81}[arch]
    reach = EngineSummary(str(elf.name), elf, scan).reach("use_fwd_umask")
    assert reach is not None
    assert {s.number for s in reach.sites} == {umask}
    assert any(k.startswith("syscall@GLIBC_") for k in reach.imports)
    # the number is found at the call of the local wrapper, not inside the wrapper
    assert {(s.function, s.kind) for s in reach.sites} == {("use_fwd_umask", "local_wrapper")}
    summary = export_reach(elf, scan)
    assert summary["use_fwd2_sync"][0] == frozenset({sync})
    assert summary["use_fwd_umask"][0] == frozenset({umask})
    assert summary["d_branches"][0] == frozenset({60, 231} if arch == "x86_64" else {93, 94})
    assert summary["d_const"][1] == frozenset()


def test_cache_roundtrip(built, tmp_path, monkeypatch):
    arch, elf, scan = built
    monkeypatch.setenv("UK_DEPSCAN_CACHE_DIR", str(tmp_path))
    first = scan_library(elf)
    assert not first.from_cache and (tmp_path / "uk-depscan-cache.sqlite3").is_file()
    second = scan_library(elf)
    assert second.from_cache
    assert second.sites == scan.sites and second.wrappers == scan.wrappers
    assert second.graph.indices.tolist() == scan.graph.indices.tolist()
    assert second.graph.data_starts.tolist() == scan.graph.data_starts.tolist() and scan.graph.n_data
    assert export_reach(elf, second) == export_reach(elf, scan)
    assert not scan_library(elf, no_cache=True).from_cache
    assert arch in second.cache_key or elf.machine_name in second.cache_key


def test_corrupt_cache_is_a_miss(built, tmp_path, monkeypatch):
    _, elf, scan = built
    monkeypatch.setenv("UK_DEPSCAN_CACHE_DIR", str(tmp_path))
    scan_library(elf)
    import sqlite3

    with sqlite3.connect(tmp_path / "uk-depscan-cache.sqlite3") as db:
        db.execute("UPDATE entries SET meta = CAST('{not json' AS BLOB)")
    again = scan_library(elf)
    assert not again.from_cache and again.sites == scan.sites


def test_expected_numbers_match_the_linux_tables():
    """The informational names in expect.json agree with the Linux tables (when they exist)."""
    lt = pytest.importorskip("uk_depscan.syscalls.linux")
    import json

    from helpers_syscalls import SYSCALL_FIXTURES

    for arch in ("x86_64", "aarch64"):
        table = lt.load_linux_table(arch)
        doc = json.loads((SYSCALL_FIXTURES / arch / "expect.json").read_text())
        for e in doc["sites"]:
            for n, name in zip(e["numbers"], e["names"], strict=True):
                if e["kind"] in ("int80", "sysenter") or name.startswith("("):
                    continue  # i386 numbering / deliberately invalid numbers
                assert table.name_of(n) == name, (arch, e)


def test_cache_dir_precedence(monkeypatch, tmp_path):
    from uk_depscan.syscalls import cache as scan_cache

    monkeypatch.delenv("UK_DEPSCAN_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert scan_cache.cache_dir() == tmp_path / "xdg" / "uk-depscan"
    monkeypatch.setenv("UK_DEPSCAN_CACHE_DIR", str(tmp_path / "own"))
    assert scan_cache.cache_dir() == tmp_path / "own"
    monkeypatch.delenv("UK_DEPSCAN_CACHE_DIR")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert scan_cache.cache_dir().parts[-2:] == (".cache", "uk-depscan")


@pytest.mark.parametrize("arch", ARCHES)
def test_unoptimised_build_tracks_through_spill_slots(arch, tmp_path):
    """At -O0 every value goes through a frame slot (str/ldr, mov to/from [rbp-N]): the wrapper
    sites must come out the same as at -O2."""
    from helpers_syscalls import SOURCES

    lib = build_syscall_fixture(arch, tmp_path, "-O0", sources=SOURCES[1:])
    with open_elf(lib) as elf:
        scan = scan_library(elf, no_cache=True)
        got = site_tuples(scan)
    want = {
        t for t in expected_sites(arch) if t[1] in ("wrapper_call", "local_wrapper_call") and t[4] != "my_raw_syscall"
    }  # not in direct.c
    assert got == want, f"missing: {sorted(want - got, key=str)}\nunexpected: {sorted(got - want, key=str)}"


def test_export_reach_agrees_with_plain_dfs(built):
    """The vectorised reachability the analysis uses (frontier BFS over the CSR arrays, site
    masks) against a plain depth-first search, for every export."""
    _, elf, scan = built
    summary = export_reach(elf, scan)
    assert set(summary) == {k for k, _ in scan.exports}
    for key, addr in scan.exports:
        assert summary[key] == dfs_reach(scan, addr), key
