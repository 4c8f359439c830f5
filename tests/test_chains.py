"""Evidence chains continue inside every object, function by function, down to the instruction
(issue 14 item 3): exact chains on a two-library fixture, x86-64 and aarch64."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import FIXTURES, need, run_cli
from helpers_chains import site_problem

CC = {"x86_64": "gcc", "aarch64": "aarch64-linux-gnu-gcc"}
STRIP = {"x86_64": "strip", "aarch64": "aarch64-linux-gnu-strip"}
SRC = FIXTURES / "chains"


def build(arch: str, out: Path, strip_provider: bool = False) -> Path:
    cc = CC[arch]
    need(cc)
    out.mkdir(parents=True, exist_ok=True)
    flags = ["-shared", "-nostdlib", "-fPIC", "-O1", "-fno-ipa-cp"]
    subprocess.run([cc, *flags, "-Wl,-soname,libb.so", "-o", str(out / "libb.so"), str(SRC / "libb.c")], check=True)
    if strip_provider:
        need(STRIP[arch])
        subprocess.run([STRIP[arch], "--strip-all", str(out / "libb.so")], check=True)
    liba = out / "liba.so"
    rpath = "-Wl,-rpath,$ORIGIN"
    subprocess.run(
        [cc, *flags, "-Wl,-soname,liba.so", rpath, "-o", str(liba), str(SRC / "liba.c"), f"-L{out}", "-lb"], check=True
    )
    return liba


def reached(liba: Path) -> dict[str, dict]:
    code, out, err = run_cli(["scan", str(liba), "--format", "json", "--fail-on", "never"])
    assert code == 0, err
    return {f["name"]: f for f in json.loads(out)["targets"][0]["syscalls"]["reached"]}


def function_address(path: Path, name: str) -> int:
    from uk_depscan.elf.file import open_elf
    from uk_depscan.syscalls.scan import LazySymbolizer

    sym = LazySymbolizer(open_elf(path))
    hits = {int(a) for i, a in enumerate(sym.addrs) if sym._decode(i) == name}  # .symtab and .dynsym agree
    assert len(hits) == 1, (name, hits)
    return hits.pop()


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_exact_chains_to_the_instruction(arch: str, tmp_path: Path) -> None:
    liba = build(arch, tmp_path)
    got = reached(liba)
    expect = json.loads((SRC / "expect.json").read_text())
    for name, chain in expect.items():
        steps = got[name]["chain"]
        assert [[s["kind"], s["symbol"], s["library"].rsplit("/", 1)[-1]] for s in steps] == chain, name
        last = steps[-1]
        lib = tmp_path / chain[-1][2]
        addr = int(last["detail"], 16)
        # the site lies inside the function the last step names, and is a syscall instruction
        assert function_address(lib, last["symbol"]) <= addr < function_address(lib, last["symbol"]) + 64
        assert site_problem(lib, addr, last["kind"]) is None
    # the tie between a_api and a_zlate (one call each) goes to the lower address
    assert function_address(liba, "a_api") < function_address(liba, "a_zlate")


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_entry_chain_starts_at_the_entry(arch: str, tmp_path: Path) -> None:
    """With --entry, the chain starts at the chosen export and follows its calls."""
    liba = build(arch, tmp_path)
    code, out, err = run_cli(["scan", str(liba), "--entry", "a_outer", "--format", "json", "--fail-on", "never"])
    assert code == 0, err
    reached = {f["name"]: f for f in json.loads(out)["targets"][0]["syscalls"]["reached"]}
    assert [(s["kind"], s["symbol"]) for s in reached["write"]["chain"]] == [
        ("entry", "a_outer"),
        ("call", "a_api"),
        ("call", "a_helper"),
        ("import", "b_write"),
        ("call", "b_middle"),
        ("direct", "b_inner"),
    ]


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_unnamed_functions_are_sub_addresses(arch: str, tmp_path: Path) -> None:
    """A provider without .symtab names its local functions sub_<addr> (the export keeps its name)."""
    named = build(arch, tmp_path / "named")
    middle = function_address(named.parent / "libb.so", "b_middle")
    inner = function_address(named.parent / "libb.so", "b_inner")
    stripped = build(arch, tmp_path / "stripped", strip_provider=True)
    chain = [(s["kind"], s["symbol"]) for s in reached(stripped)["write"]["chain"]]
    assert chain == [
        ("entry", "a_api"),
        ("call", "a_helper"),
        ("import", "b_write"),
        ("call", f"sub_{middle:x}"),
        ("direct", f"sub_{inner:x}"),
    ]


@pytest.mark.realwheel
@pytest.mark.slow  # a full analysis of libtorch_cpu.so
def test_every_libtorch_chain_ends_at_a_site(real_wheels_dir: Path) -> None:
    """The last step of every reached chain of libtorch_cpu.so, disassembled, is a syscall
    instruction or a call of syscall() (or of a local syscall wrapper)."""
    from uk_depscan.elf.file import open_elf
    from uk_depscan.loader.resolve import resolve_tree
    from uk_depscan.syscalls.scan import scan_library

    target = real_wheels_dir / "torch" / "torch" / "lib" / "libtorch_cpu.so"
    if not target.is_file():
        pytest.skip(f"{target} absent (bench/fetch_wheels.sh)")
    code, out, err = run_cli(["scan", str(target), "--format", "json", "--fail-on", "never"])
    assert code == 0, err
    syscalls = json.loads(out)["targets"][0]["syscalls"]
    chains = [f["chain"] for f in syscalls["reached"]]
    # the start-up baseline comes from the shipped model: followed in the host's file when it is the same
    chains += [f["chain"] for f in syscalls["baseline"] if f["chain"][-1]["kind"] != "summary"]
    files = {}
    for o in resolve_tree(target).tree.objects:
        files.setdefault(o.soname or Path(o.path).name, Path(o.path))
        files.setdefault(Path(o.path).name, Path(o.path))
    problems = []
    wrappers: dict[str, frozenset[int]] = {}
    for chain in chains:
        last = chain[-1]
        assert last["detail"], f"chain ends without an instruction address: {chain}"
        path = files[last["library"]]
        if last["kind"] == "local_wrapper" and last["library"] not in wrappers:
            scan = scan_library(open_elf(path))
            wrappers[last["library"]] = frozenset(w.address for w in scan.wrappers)
        problem = site_problem(path, int(last["detail"], 16), last["kind"], wrappers.get(last["library"], frozenset()))
        if problem:
            problems.append(f"{last['library']} {problem}")
    assert len(chains) > 100 and not problems, problems


def test_grouping_order_is_the_stable_argsort() -> None:
    """The two-pass radix order the reverse graph is built with, against numpy's stable argsort,
    around each width it switches at."""
    import numpy as np

    from uk_depscan.syscalls.chains import _grouping_order

    rng = np.random.default_rng(1)
    for bound in (1, 2, 300, 1 << 16, (1 << 16) + 1, 1 << 20, 1 << 24, (1 << 24) + 5, (1 << 31) - 1):
        for n in (0, 1, 1000):
            v = rng.integers(0, bound, n).astype(np.int32)
            assert (_grouping_order(v, bound) == np.argsort(v, kind="stable")).all(), (bound, n)
