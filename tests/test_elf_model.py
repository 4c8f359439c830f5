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


def _x86_plt_reference(code: bytes, base: int, entsize: int, slots: dict[int, int]) -> dict[int, int]:
    """The definition, one jump at a time with Python's unbounded ints."""
    out: dict[int, int] = {}
    for pos in range(len(code) - 5):
        if code[pos] == 0xFF and code[pos + 1] == 0x25:
            slot = base + pos + 6 + int.from_bytes(code[pos + 2 : pos + 6], "little", signed=True)
            if slot in slots:
                out.setdefault(base + (pos // entsize) * entsize, slots[slot])
    return out


@pytest.mark.parametrize("base", [0x1000, 0x7FFF_FFFF_FFFF_F000, (1 << 64) - 0x40])  # sh_addr: 64 bits
def test_vectorised_plt_decoding_is_the_definition(base: int) -> None:
    """_x86_plt against the one-jump-at-a-time definition on random stub sections: several jumps per
    entry (the first wins), slots behind and ahead of the section, addresses of a hostile file near
    and past 2**64, entry sizes larger than the section."""
    import random

    import numpy as np

    from uk_depscan.elf.symbols import _x86_plt

    rng = random.Random(base)
    for _ in range(60):
        entsize = rng.choice([8, 16, 1 << 40])
        code = bytearray(rng.randrange(256) for _ in range(rng.randrange(6, 200)))
        slots: dict[int, int] = {}
        for _ in range(rng.randrange(1, 12)):
            pos = rng.randrange(len(code) - 5)
            disp = rng.randrange(-(1 << 31), 1 << 31) if rng.random() < 0.2 else rng.randrange(-300, 300)
            code[pos : pos + 6] = b"\xff\x25" + disp.to_bytes(4, "little", signed=True)
            slot = base + pos + 6 + disp
            if 0 <= slot < 1 << 64 and rng.random() < 0.8:
                slots[slot] = rng.randrange(1, 1000)
        slots[rng.randrange(1 << 64)] = 7  # a slot no jump reaches
        got = _x86_plt(np.frombuffer(bytes(code), np.uint8), base, entsize, slots)
        want = _x86_plt_reference(bytes(code), base, entsize, slots)
        assert got == want and list(got) == list(want)
