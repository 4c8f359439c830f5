"""The ELF model against readelf/objdump on fixtures compiled at test time (x86-64 and aarch64)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from conftest import FIXTURES, host_libstdcxx, need

from uk_depscan.elf.file import open_elf
from uk_depscan.elf.frames import fde_starts, function_starts
from uk_depscan.elf.symbols import dynamic_symbols, fini_array, init_array, plt_stub_symbols

ARCHES = {
    "x86_64": ("gcc", "objdump", "readelf"),
    "aarch64": ("aarch64-linux-gnu-gcc", "aarch64-linux-gnu-objdump", "aarch64-linux-gnu-readelf"),
}


@pytest.fixture(scope="module", params=sorted(ARCHES))
def built(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Path, tuple[str, str, str]]:
    arch = request.param
    tools = ARCHES[arch]
    need(*tools)
    out = tmp_path_factory.mktemp(arch) / "libfeatures.so"
    subprocess.run(
        [
            tools[0],
            "-shared",
            "-fPIC",
            "-O1",
            "-Wl,--build-id",
            "-Wl,-z,execstack",
            "-Wl,-soname,libfeatures.so",
            "-o",
            str(out),
            str(FIXTURES / "elf" / "features.c"),
        ],
        check=True,
        capture_output=True,
    )
    return arch, out, tools


def _readelf(tool: str, flag: str, path: Path) -> str:
    # readelf -n exits 1 on the (valid) FDO dlopen note type it does not know; its output is complete.
    return subprocess.run([tool, flag, "-W", str(path)], check=False, capture_output=True, text=True).stdout


def test_header_dynamic_and_notes(built: tuple[str, Path, tuple[str, str, str]]) -> None:
    arch, path, (_, _, readelf) = built
    elf = open_elf(path)
    assert elf.machine_name == arch and elf.elf_class == 64 and elf.arch_supported
    dyn_text = _readelf(readelf, "-d", path)
    assert list(elf.dynamic.needed) == re.findall(r"Shared library: \[(.+?)\]", dyn_text)
    assert elf.dynamic.soname == "libfeatures.so"
    notes = _readelf(readelf, "-n", path)
    assert elf.build_id == re.search(r"Build ID: ([0-9a-f]+)", notes).group(1)
    assert elf.dlopen_notes == ({"feature": "zstd", "soname": ["libzstd.so.1"], "priority": "recommended"},)
    assert elf.exec_stack and not elf.textrel and not elf.is_pie
    assert elf.tls is not None and elf.tls.memsz >= 4
    assert len(init_array(elf)) >= 2 and len(fini_array(elf)) >= 2
    funcs = set(function_starts(elf).tolist())
    assert set(init_array(elf)) <= funcs


def test_symbols_match_readelf(built: tuple[str, Path, tuple[str, str, str]]) -> None:
    _, path, (_, _, readelf) = built
    rows = [
        c
        for c in map(str.split, _readelf(readelf, "--dyn-syms", path).splitlines())
        if len(c) >= 8 and c[0].rstrip(":").isdigit() and c[0] != "0:"
    ]
    syms = dynamic_symbols(open_elf(path))
    assert {i.key for i in syms.iter_imports()} == {c[7] for c in rows if c[6] == "UND"}
    exports = {e.name: e for e in syms.iter_exports()}
    assert {"exported_puts", "exported_alloc", "picked"} <= set(exports)
    assert exports["picked"].sym_type == "IFUNC"
    assert all(i.version and i.version.startswith("GLIBC_") for i in syms.iter_imports() if i.name == "puts")


def test_plt_map_matches_objdump(built: tuple[str, Path, tuple[str, str, str]]) -> None:
    _, path, (_, objdump, _) = built
    text = subprocess.run([objdump, "-d", str(path)], capture_output=True, text=True, check=True).stdout
    elf = open_elf(path)
    syms = dynamic_symbols(elf)
    imported = {i.name for i in syms.iter_imports()}  # objdump also labels aarch64's TLSDESC slot "@plt"
    theirs = {int(a, 16): n for a, n in re.findall(r"^([0-9a-f]+) <(\w+)@plt>:", text, re.M) if n in imported}
    ours = {addr: syms.names[i] for addr, i in plt_stub_symbols(elf).items()}
    assert theirs and ours == theirs


def test_fde_starts_match_readelf(built: tuple[str, Path, tuple[str, str, str]]) -> None:
    _, path, (_, _, readelf) = built
    text = _readelf(readelf, "--debug-dump=frames", path)
    theirs = {int(m, 16) for m in re.findall(r"FDE cie=\w+ pc=([0-9a-f]+)\.\.", text)}
    assert set(fde_starts(open_elf(path)).tolist()) == theirs


def test_real_library_plt_matches_objdump() -> None:
    need("objdump")
    lib = host_libstdcxx()
    out = subprocess.run(
        ["objdump", "-d", "-j", ".plt", "-j", ".plt.sec", "-j", ".plt.got", str(lib)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    theirs = {int(a, 16): n.split("@")[0] for a, n in re.findall(r"^([0-9a-f]+) <([^>]+)@plt>:", out, re.M)}
    elf = open_elf(lib)
    syms = dynamic_symbols(elf)
    ours = {addr: syms.names[i] for addr, i in plt_stub_symbols(elf).items()}
    assert len(theirs) > 100
    assert {a: n for a, n in ours.items() if a in theirs} == theirs
