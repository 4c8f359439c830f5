"""LIEF and pyelftools as independent oracles for our ELF model, on objects compiled here.

Three readers of the same bytes must agree on what ld.so reads: the dynamic section (every tag and
value before DT_NULL; DT_NEEDED, DT_SONAME, DT_RPATH, DT_RUNPATH, DT_FLAGS, DT_FLAGS_1), every
dynamic symbol (name, binding, type, defined or not, value, size, raw DT_VERSYM entry), the version
tables (DT_VERNEED file and name per version index, DT_VERDEF name and BASE flag), the version each
import needs and each export defines, and every dynamic relocation (offset, type, symbol index,
addend).  LIEF (C++) and pyelftools (pure Python, section-based) share no code with us or with each
other.  Objects: fixtures built for x86-64 and, with the cross compiler, aarch64 (an RPATH library
and a RUNPATH library with BIND_NOW and NODEFLIB, a library defining default and hidden symbol
versions, a user of it), plus the toolchain's own libc.so.6 and libstdc++.so.6 for each
architecture (located with ``-print-file-name``, read only).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import FIXTURES, compile_so, have, install_hint

from uk_depscan.elf.file import open_elf
from uk_depscan.elf.symbols import dynamic_symbols, elf_relocations

lief = pytest.importorskip("lief", reason="LIEF not installed: pip install -e '.[test]'")
elffile = pytest.importorskip("elftools.elf.elffile", reason="pyelftools not installed: pip install -e '.[test]'")
from elftools.elf import enums as elftools_enums  # noqa: E402  (only once pyelftools is known to be there)

CC = {"x86_64": "gcc", "aarch64": "aarch64-linux-gnu-gcc"}
VERSYM_HIDDEN = 0x8000
VER_FLG_BASE = 0x1
DT_FLAGS, DT_FLAGS_1, DF_BIND_NOW, DF_1_NOW, DF_1_NODEFLIB = 30, 0x6FFFFFFB, 0x8, 0x1, 0x800
LOADER = FIXTURES / "loader"


@dataclass(frozen=True)
class View:
    """What one reader says about one file, in raw gABI numbers."""

    tags: list[tuple[int, int]]  # dynamic entries before the first DT_NULL
    needed: list[str]
    soname: str | None
    rpath: str | None
    runpath: str | None
    symbols: list[tuple[str, int, int, bool, int, int, int | None]]  # name, bind, type, undef, value, size, versym
    verneed: dict[int, tuple[str, str]]  # version index → (file, version)
    verdef: dict[int, tuple[str, bool]]  # version index → (name, is BASE)
    relocations: list[tuple[int, int, int, int]]  # sorted (offset, type, symbol index, addend): DT_REL(A), DT_JMPREL
    relr: list[int]  # sorted offsets of the RELATIVE relocations packed in DT_RELR (always [] for ours: see below)


# -- the three readers ---------------------------------------------------------------------------
def ours(path: Path) -> View:
    elf = open_elf(path)
    dyn = elf.dynamic
    assert dyn is not None
    syms = dynamic_symbols(elf)
    t = syms.table
    versym = syms.versym
    symbols = [
        (
            syms.names[i],
            int(t["info"][i]) >> 4,
            int(t["info"][i]) & 0xF,
            int(t["shndx"][i]) == 0,
            int(t["value"][i]),
            int(t["size"][i]),
            None if versym is None else int(versym[i]),
        )
        for i in range(syms.count)
    ]
    r = elf_relocations(elf)
    relocations = sorted(
        zip(r.offset.tolist(), r.rtype.tolist(), r.sym.tolist(), r.addend.tolist(), strict=True)  # type: ignore[arg-type]
    )
    return View(
        list(dyn.tags),
        list(dyn.needed),
        dyn.soname,
        dyn.rpath,
        dyn.runpath,
        symbols,
        {ndx: (v.file, v.name) for ndx, v in syms.version_needs.items()},
        dict(syms.version_defs),
        relocations,
        [],  # our Relocations has no separate RELR list; test_relocations looks for them among ours
    )


def by_lief(path: Path) -> View:
    lief.logging.disable()
    b = lief.ELF.parse(str(path))
    # LIEF tags processor-specific enum members with the architecture above bit 32; the file has the low part
    entries = [(int(e.tag) & 0xFFFFFFFF, e.value) for e in b.dynamic_entries]
    tags = entries[: next((i for i, (t, _) in enumerate(entries) if t == 0), len(entries))]
    strings = {int(e.tag) & 0xFFFFFFFF: e for e in b.dynamic_entries}
    needed = [e.name for e in b.dynamic_entries if int(e.tag) == 1]
    symbols = [
        (
            s.name,
            int(s.binding),
            int(s.type),
            s.shndx == 0,
            s.value,
            s.size,
            s.symbol_version.value if s.symbol_version is not None else None,
        )
        for s in b.dynamic_symbols
    ]
    verneed = {
        aux.other & 0x7FFF: (req.name, aux.name)
        for req in b.symbols_version_requirement
        for aux in req.get_auxiliary_symbols()
    }
    verdef = {
        d.ndx & 0x7FFF: (d.auxiliary_symbols[0].name, bool(d.flags & VER_FLG_BASE))
        for d in b.symbols_version_definition
    }
    cls = b.header.identity_class
    shift, mask = (32, 0xFFFFFFFF) if cls == lief.ELF.Header.CLASS.ELF64 else (8, 0xFF)
    relr_encoding = lief.ELF.Relocation.ENCODING.RELR
    everything = [*b.dynamic_relocations, *b.pltgot_relocations]
    relocations = sorted(
        (r.address, r.r_info(cls) & mask, r.r_info(cls) >> shift, r.addend if r.is_rela else 0)
        for r in everything
        if r.encoding != relr_encoding
    )
    relr = sorted(r.address for r in everything if r.encoding == relr_encoding)
    return View(
        tags,
        needed,
        strings[14].name if 14 in strings else None,
        strings[15].rpath if 15 in strings else None,
        strings[29].runpath if 29 in strings else None,
        symbols,
        verneed,
        verdef,
        relocations,
        relr,
    )


def by_pyelftools(path: Path) -> View:
    with path.open("rb") as f:
        e = elffile.ELFFile(f)
        # pyelftools decodes d_tag to a name with this table (elftools/elf/structs.py _create_dyn)
        names = dict(elftools_enums.ENUM_D_TAG_COMMON)
        names.update(elftools_enums.ENUMMAP_EXTRA_D_TAG_MACHINE.get(e["e_machine"], {}))
        binds, types = elftools_enums.ENUM_ST_INFO_BIND, elftools_enums.ENUM_ST_INFO_TYPE
        dynamic = e.get_section_by_name(".dynamic")
        tags, needed, strings = [], [], {}
        for t in dynamic.iter_tags():
            tag = t.entry.d_tag if isinstance(t.entry.d_tag, int) else names[t.entry.d_tag]
            if tag == 0:
                break
            tags.append((tag, t.entry.d_val))
            if tag == 1:
                needed.append(t.needed)
            elif tag in (14, 15, 29):
                strings[tag] = getattr(t, {14: "soname", 15: "rpath", 29: "runpath"}[tag])
        versym = e.get_section_by_name(".gnu.version")
        ndx_names = {"VER_NDX_LOCAL": 0, "VER_NDX_GLOBAL": 1}
        symbols = []
        for i, s in enumerate(e.get_section_by_name(".dynsym").iter_symbols()):
            raw = None
            if versym is not None:
                ndx = versym.get_symbol(i).entry["ndx"]
                raw = ndx if isinstance(ndx, int) else ndx_names[ndx]
            bind, typ = s.entry.st_info.bind, s.entry.st_info.type
            symbols.append(
                (
                    s.name,
                    bind if isinstance(bind, int) else binds[bind],
                    typ if isinstance(typ, int) else types[typ],
                    s.entry.st_shndx == "SHN_UNDEF",
                    s.entry.st_value,
                    s.entry.st_size,
                    raw,
                )
            )
        verneed, verdef = {}, {}
        vr = e.get_section_by_name(".gnu.version_r")
        for need, auxs in vr.iter_versions() if vr is not None else ():
            for aux in auxs:
                verneed[aux.entry.vna_other & 0x7FFF] = (need.name, aux.name)
        vd = e.get_section_by_name(".gnu.version_d")
        for d, auxs in vd.iter_versions() if vd is not None else ():
            verdef[d.entry.vd_ndx & 0x7FFF] = (next(iter(auxs)).name, bool(d.entry.vd_flags & VER_FLG_BASE))
        loaded = [s for s in e.iter_sections() if s.header.sh_flags & 0x2]  # SHF_ALLOC: what ld.so sees
        relocations = sorted(
            (r.entry.r_offset, r.entry.r_info_type, r.entry.r_info_sym, r.entry.get("r_addend", 0))
            for sec in loaded
            if sec.header.sh_type in ("SHT_RELA", "SHT_REL")
            for r in sec.iter_relocations()
        )
        relr = sorted(
            r.entry.r_offset for sec in loaded if sec.header.sh_type == "SHT_RELR" for r in sec.iter_relocations()
        )
    return View(
        tags, needed, strings.get(14), strings.get(15), strings.get(29), symbols, verneed, verdef, relocations, relr
    )


READERS = {"LIEF": by_lief, "pyelftools": by_pyelftools}


# -- the objects ----------------------------------------------------------------------------------
def _cc(arch: str, out: Path, sources: list[Path], *flags: str) -> Path:
    subprocess.run(
        [CC[arch], "-shared", "-fPIC", "-O1", "-o", str(out), *map(str, sources), *flags],
        check=True,
        capture_output=True,
    )
    return out


def _toolchain_library(arch: str, name: str) -> Path:
    """The cross or host toolchain's own copy of ``name`` (never loaded: only read by the readers)."""
    found = subprocess.run(
        [CC[arch], f"-print-file-name={name}"], check=False, capture_output=True, text=True
    ).stdout.strip()
    if not Path(found).is_absolute() or not Path(found).exists():
        pytest.skip(f"{arch} toolchain has no {name}: {install_hint(CC[arch])}")
    return Path(found).resolve()


def build(arch: str, name: str, out: Path) -> Path:
    features = FIXTURES / "elf" / "features.c"
    if name == "rpath":  # DT_RPATH (old tags), DT_BIND_NOW, DF_1_NOW|DF_1_NODEFLIB in DT_FLAGS_1
        return _cc(
            arch,
            out / "librpath.so",
            [features],
            "-Wl,-soname,librpath.so",
            "-Wl,-rpath,$ORIGIN/r1:/opt/r2",
            "-Wl,--disable-new-dtags",
            "-Wl,-z,now",
            "-Wl,-z,nodefaultlib",
        )
    if name == "relr":  # RELATIVE relocations packed into DT_RELR (glibc >= 2.36; Debian 12's own libc uses it)
        return _cc(arch, out / "librelr.so", [features], "-Wl,-z,pack-relative-relocs")
    if name == "runpath":  # DT_RUNPATH and DT_FLAGS (new tags)
        return _cc(
            arch,
            out / "librunpath.so",
            [features],
            "-Wl,-soname,librunpath.so",
            "-Wl,-rpath,$ORIGIN/../lib",
            "-Wl,--enable-new-dtags",
            "-Wl,-z,now",
        )
    if name in ("versions", "user"):  # foo@VER_1 (hidden) and foo@@VER_2; a user needing VER_2 of libver.so
        libver = compile_so(
            out / "libver.so",
            [LOADER / "versioned_v2.c"],
            arch=arch,
            extra=[f"-Wl,--version-script={LOADER / 'ver2.map'}"],
        )
        if name == "versions":
            return libver
        return compile_so(out / "libuser.so", [LOADER / "user.c"], arch=arch, link=[libver], runpath="$ORIGIN")
    return _toolchain_library(arch, name)


OBJECTS = ["rpath", "runpath", "relr", "versions", "user", "libc.so.6", "libstdc++.so.6"]
# the aarch64 ld of binutils 2.40 (Debian 12) ignores -z pack-relative-relocs, with a warning
PARAMS = [(a, o) for a in CC for o in OBJECTS if (a, o) != ("aarch64", "relr")]
RELATIVE = {"x86_64": 8, "aarch64": 1027}


@dataclass(frozen=True)
class Case:
    arch: str
    path: Path
    mine: View
    theirs: dict[str, View]


@pytest.fixture(scope="module", params=PARAMS, ids=lambda p: f"{p[0]}-{p[1]}")
def case(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Case:
    arch, name = request.param
    if not have(CC[arch]):
        pytest.skip(f"{CC[arch]} not found: {install_hint(CC[arch])}")
    path = build(arch, name, tmp_path_factory.mktemp(f"{arch}-{name}"))
    return Case(arch, path, ours(path), {reader: read(path) for reader, read in READERS.items()})


# -- the comparisons ------------------------------------------------------------------------------
@pytest.mark.parametrize("reader", sorted(READERS))
def test_dynamic_section(case: Case, reader: str) -> None:
    mine, other = case.mine, case.theirs[reader]
    assert mine.tags == other.tags
    assert (mine.needed, mine.soname, mine.rpath, mine.runpath) == (
        other.needed,
        other.soname,
        other.rpath,
        other.runpath,
    )


@pytest.mark.parametrize("reader", sorted(READERS))
def test_dynamic_symbols_and_version_tables(case: Case, reader: str) -> None:
    mine, other = case.mine, case.theirs[reader]
    assert len(mine.symbols) == len(other.symbols)
    diff = [(i, m, o) for i, (m, o) in enumerate(zip(mine.symbols, other.symbols, strict=True)) if m != o]
    assert not diff, diff[:5]
    assert mine.verneed == other.verneed
    assert mine.verdef == other.verdef


@pytest.mark.parametrize("reader", sorted(READERS))
def test_relocations(case: Case, reader: str) -> None:
    mine, other = case.mine, case.theirs[reader]
    relative = RELATIVE[case.arch]
    relr = set(other.relr)
    explicit = [r for r in mine.relocations if not (r[0] in relr and r[1] == relative and r[2] == 0)]
    assert len(explicit) == len(other.relocations)
    assert explicit == other.relocations
    if not relr:
        return  # no DT_RELR table: the comparison above was the whole relocation set
    # DT_RELR (decoded since the reference graph needs libc's own pointer tables): exactly the
    # oracle's offsets, each a RELATIVE relocation whose addend is the word stored there
    mine_relr = {r[0] for r in mine.relocations if r[1] == relative and r[2] == 0 and r[0] in relr}
    missing = relr - mine_relr
    assert not missing, f"{len(missing)} of {len(relr)} DT_RELR relocations missing, e.g. {sorted(missing)[:3]}"


def test_imports_and_exports_carry_the_versions_the_tables_say(case: Case) -> None:
    """Our per-symbol answers (import: version, file, weak; export: version, default) from LIEF's raw tables.

    gABI/GNU rules: an undefined GLOBAL or WEAK symbol is an import and needs the DT_VERNEED entry its
    DT_VERSYM index names; a defined GLOBAL/WEAK/UNIQUE one is an export, of the DT_VERDEF version its
    index names unless that is the BASE (file) version, and hidden (non-default) when bit 15 is set.
    """
    other = case.theirs["LIEF"]
    want_imports, want_exports = set(), set()
    for i, (sym, bind, _, undef, value, size, raw) in enumerate(other.symbols):
        if i == 0 or bind not in (1, 2, 10) or (undef and bind == 10):
            continue
        ndx = None if raw is None else raw & 0x7FFF
        if undef:
            file, version = other.verneed.get(ndx, (None, None)) if ndx is not None else (None, None)
            want_imports.add((sym, version, file, bind == 2))
        else:
            vname, base = other.verdef.get(ndx, (None, True)) if ndx is not None else (None, True)
            default = raw is None or not raw & VERSYM_HIDDEN
            want_exports.add((sym, None if base else vname, default, value, size))
    syms = dynamic_symbols(open_elf(case.path))
    assert {(i.name, i.version, i.version_file, i.weak) for i in syms.iter_imports()} == want_imports
    assert {(e.name, e.version, e.default, e.value, e.size) for e in syms.iter_exports()} == want_exports


def test_the_objects_exercise_what_they_should(case: Case) -> None:
    """Agreement on empty tables would prove nothing: each object has what it was built to have."""
    v = case.mine
    name = case.path.name
    tags = dict(v.tags)
    theirs = case.theirs["LIEF"]
    assert v.symbols and (v.relocations or name == "libver.so")  # libver.so: -nostdlib, position-independent
    if name == "librpath.so":
        assert v.rpath == "$ORIGIN/r1:/opt/r2" and v.runpath is None and v.soname == "librpath.so"
        assert 24 in tags and tags[DT_FLAGS_1] & (DF_1_NOW | DF_1_NODEFLIB) == DF_1_NOW | DF_1_NODEFLIB
    if name == "librunpath.so":
        assert v.runpath == "$ORIGIN/../lib" and v.rpath is None
        assert tags[DT_FLAGS] & DF_BIND_NOW
    if name == "librelr.so":
        assert len(theirs.relr) >= 4 and 36 in tags  # DT_RELR
    if name == "libver.so":
        hidden = [s for s in v.symbols if s[0] == "foo" and s[6] is not None and s[6] & VERSYM_HIDDEN]
        assert len(hidden) == 1 and {n for n, _ in v.verdef.values()} >= {"VER_1", "VER_2"}
    if name == "libuser.so":
        assert ("libver.so", "VER_2") in v.verneed.values() and v.needed == ["libver.so"]
    if name.startswith(("libc.so", "libstdc++")):
        assert len(v.symbols) > 1000 and len({r[1] for r in theirs.relocations}) >= 4
        assert any(s[6] is not None and s[6] & VERSYM_HIDDEN for s in v.symbols)  # compat symbols
