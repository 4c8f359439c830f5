"""Syscall extraction on fixture libraries compiled at test time (x86-64, then AArch64)."""
from __future__ import annotations

import pytest

from helpers_syscalls import build_syscall_fixture, expected_sites, expected_wrappers, site_tuples
from uk_depscan.elf import open_elf
from uk_depscan.syscall_scan import scan_library

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
    arch, elf, scan = built
    for s in scan.sites:
        assert s.function is not None and s.function_addr is not None
        assert s.function_addr <= s.address
        assert (s.confidence == "exact") == (len(s.numbers) == 1 and not s.reason) or s.kind in ("int80",)
        if s.confidence == "unknown":
            assert s.reason


def test_hidden_byte_pair_not_counted(built):
    _, _, scan = built
    assert not [s for s in scan.sites if s.function == "d_hidden_pair"]


def test_reachability_through_wrappers(built):
    arch, _, scan = built
    exports = dict(scan.exports)
    umask = {"x86_64": 95, "aarch64": 166}[arch]
    sync = {"x86_64": 162, "aarch64": 81}[arch]
    nums, imports, sites = scan.reachable_from([exports["use_fwd_umask"]])
    assert nums == {umask}
    assert any(k.startswith("syscall@GLIBC_") for k in imports)
    assert {s.function for s in sites} >= {"use_fwd_umask", "my_syscall"}
    summary = scan.export_summary()
    assert summary["use_fwd2_sync"][0] == frozenset({sync})
    assert summary["use_fwd_umask"][0] == frozenset({umask})
    assert summary["d_branches"][0] == frozenset({60, 231} if arch == "x86_64" else {93, 94})
    assert summary["d_const"][1] == frozenset()


def test_cache_roundtrip(built, tmp_path, monkeypatch):
    arch, elf, scan = built
    monkeypatch.setenv("UK_DEPSCAN_CACHE_DIR", str(tmp_path))
    first = scan_library(elf)
    assert not first.from_cache and list(tmp_path.glob("*.npz")) and list(tmp_path.glob("*.json"))
    second = scan_library(elf)
    assert second.from_cache
    assert second.sites == scan.sites and second.wrappers == scan.wrappers
    assert second.graph.indices.tolist() == scan.graph.indices.tolist()
    assert second.export_summary() == scan.export_summary()
    assert not scan_library(elf, no_cache=True).from_cache
    assert arch in second.cache_key or elf.machine_name in second.cache_key


def test_corrupt_cache_is_a_miss(built, tmp_path, monkeypatch):
    _, elf, scan = built
    monkeypatch.setenv("UK_DEPSCAN_CACHE_DIR", str(tmp_path))
    scan_library(elf)
    for p in tmp_path.glob("*.json"):
        p.write_text("{not json")
    again = scan_library(elf)
    assert not again.from_cache and again.sites == scan.sites
