"""Address-taken functions and the reference graph (issue 14 items 1-2), on fixtures compiled at
test time for x86-64 and AArch64: a static table of libc function pointers, local functions in a
pointer table (RELATIVE), qsort/pthread_create callbacks, a vtable slot calling libc."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import have, need, run_cli
from helpers_syscalls import CC, _run, symbol_address

from uk_depscan.elf.file import open_elf
from uk_depscan.syscalls.reach import EngineSummary
from uk_depscan.syscalls.scan import scan_library
from uk_depscan.syscalls.summaries import ALL

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "addrtaken"
EXPECT = json.loads((FIXTURE / "expect.json").read_text())
CXX = {"x86_64": "g++", "aarch64": "aarch64-linux-gnu-g++"}
FLAGS = ["-O2", "-fPIC", "-fno-stack-protector"]
ARCHES = ["x86_64", pytest.param("aarch64", marks=pytest.mark.cross)]


def build(arch: str, out: Path) -> tuple[Path, bool]:
    """The fixture library for ``arch`` and whether its C++ part (the vtable) is in it."""
    cc, cxx = CC[arch], CXX[arch]
    need(cc)
    out.mkdir(parents=True, exist_ok=True)
    objs = []
    for src in ("table.c", "local.c", "callback.c", "other.c"):
        obj = out / f"{src}.o"
        _run([cc, *FLAGS, "-c", str(FIXTURE / src), "-o", str(obj)])
        objs.append(str(obj))
    with_cxx = have(cxx)
    if with_cxx:
        obj = out / "vtable.o"
        _run([cxx, *FLAGS, "-c", str(FIXTURE / "vtable.cpp"), "-o", str(obj)])
        objs.append(str(obj))
    lib = out / f"libaddrtaken-{arch}.so"
    _run([cxx if with_cxx else cc, "-shared", "-o", str(lib), *objs, "-lpthread"])
    return lib, with_cxx


@pytest.fixture(scope="module", params=ARCHES)
def built(request, tmp_path_factory):
    arch = request.param
    lib, with_cxx = build(arch, tmp_path_factory.mktemp(f"addrtaken-{arch}"))
    elf = open_elf(lib)
    scan = scan_library(elf, no_cache=True)
    yield arch, lib, with_cxx, EngineSummary(lib.name, elf, scan)
    elf.close()


def _imports(summary: EngineSummary, key: str) -> list[str]:
    reach = summary.reach(key)
    assert reach is not None, key
    return sorted(k.split("@", 1)[0] for k in reach.imports)


def test_each_export_reaches_exactly_its_imports(built):
    """Call edges plus reference edges: the table's imports, the RELATIVE table's local functions and
    the callbacks are reached from the code that loads their address, and from nothing else."""
    _, _, _, summary = built
    got = {k: _imports(summary, k) for k in EXPECT["exports"]}
    assert got == EXPECT["exports"]


def test_vtable_slot_reached_from_constructor(built):
    arch, _, with_cxx, summary = built
    if not with_cxx:
        pytest.skip(f"{CXX[arch]} not found: install it (apt-get install g++-aarch64-linux-gnu) for the vtable case")
    assert {k: _imports(summary, k) for k in EXPECT["cxx"]} == EXPECT["cxx"]


def test_whole_object_includes_data_only_imports(built):
    """R_X86_64_64 / R_AARCH64_ABS64 slots against undefined functions: no PLT call exists."""
    _, _, _, summary = built
    whole = set(_imports(summary, ALL))
    assert set(EXPECT["data_only"]) <= whole
    assert set().union(*map(set, EXPECT["exports"].values())) <= whole
    plt_called = {k.split("@", 1)[0] for k in summary.scan.graph.import_keys[: summary.scan.graph.n_imports]}
    assert set(EXPECT["data_only"]) <= plt_called  # import nodes, numbered from the data relocations


def _reached(lib: Path, entry: str | None, tmp_path: Path) -> set[str]:
    out = tmp_path / f"{entry or 'whole'}.json"
    code, _, err = run_cli(
        [str(lib), "--libc", "glibc", "--format", "json", "-o", str(out)] + (["--entry", entry] if entry else [])
    )
    assert code in (0, 1), err
    doc = json.loads(out.read_text())
    return {s["name"] for s in doc["targets"][0]["syscalls"]["reached"]}


def test_entry_follows_reference_edges_only(built, tmp_path):
    """``--entry`` roots at the matching export (plus constructors/destructors), never at every
    address-taken function: the table's syscalls come with vfs_lookup and not with unrelated."""
    _, lib, _, _ = built
    via_table = _reached(lib, "vfs_lookup", tmp_path)
    assert set(EXPECT["syscalls"]["vfs_lookup"]) <= via_table
    other = _reached(lib, "unrelated", tmp_path)
    assert "getpid" in other
    assert not set(EXPECT["syscalls"]["unrelated_not"]) & other
    assert set(EXPECT["syscalls"]["vfs_lookup"]) <= _reached(lib, None, tmp_path)


def test_glob_matching_no_export_is_a_usage_error(built, tmp_path):
    _, lib, _, _ = built
    code, _, err = run_cli([str(lib), "--libc", "glibc", "--entry", "vfs_lokup", "-o", str(tmp_path / "x.json")])
    assert code == 2
    assert err.count("\n") == 1 and "matches none" in err and "closest: vfs_lookup" in err


def test_chain_passes_through_the_table(built, tmp_path):
    """The evidence chain of a syscall reached only through a table of libc function pointers names
    the piece of data it passes through (a ``ref`` step) between the export and the import."""
    _, lib, _, _ = built
    out = tmp_path / "chain.json"
    code, _, err = run_cli([str(lib), "--libc", "glibc", "--entry", "vfs_lookup", "--format", "json", "-o", str(out)])
    assert code in (0, 1), err
    rows = {s["name"]: s for s in json.loads(out.read_text())["targets"][0]["syscalls"]["reached"]}
    for name in EXPECT["syscalls"]["vfs_lookup"]:
        kinds = [step["kind"] for step in rows[name]["chain"]]
        symbols = [step["symbol"] for step in rows[name]["chain"]]
        assert kinds[:3] == ["entry", "ref", "import"], (name, kinds, symbols)
        assert symbols[0] == "vfs_lookup" and symbols[1].startswith("data_")
        assert symbols[2].split("@", 1)[0] in EXPECT["data_only"]


def test_entry_at_a_code_address(built, tmp_path):
    """``--entry 0x…``/``sub_…`` roots at the function holding that address (a static function no
    export names: the table's ``by_uid``): it reaches getuid and not getgid (the table's other slot),
    names the function in the chain, and any address inside it is the same root and the same answer."""
    _, lib, _, _ = built
    at = symbol_address(lib, "by_uid")
    answers = {}
    for spelling in (f"0x{at:x}", f"sub_{at:x}", f"0x{at + 1:x}"):
        out = tmp_path / f"{spelling}.json"
        code, _, err = run_cli([str(lib), "--libc", "glibc", "--entry", spelling, "--format", "json", "-o", str(out)])
        assert code in (0, 1), err
        rows = {s["name"]: s for s in json.loads(out.read_text())["targets"][0]["syscalls"]["reached"]}
        assert "getuid" in rows and "getgid" not in rows, spelling
        assert rows["getuid"]["chain"][0] == {
            "detail": "",
            "kind": "entry",
            "library": lib.name,
            "symbol": "by_uid",
        }
        answers[spelling] = {k: v["chain"] for k, v in rows.items()}
    assert len({json.dumps(a, sort_keys=True) for a in answers.values()}) == 1


@pytest.mark.parametrize("where", ["0x0", "0xffffffffffff", "sub_10"])
def test_entry_address_outside_the_code_is_a_usage_error(built, tmp_path, where):
    _, lib, _, _ = built
    code, _, err = run_cli([str(lib), "--libc", "glibc", "--entry", where, "-o", str(tmp_path / "x.json")])
    assert code == 2
    assert err.count("\n") == 1 and f"--entry {where} is not an address inside a function" in err
