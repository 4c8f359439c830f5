"""ELF reading: headers, segments, sections, the dynamic segment and notes, over mmap.

This is the project's ELF model.  It is written directly against the ELF gABI and the
glibc/binutils headers rather than on top of pyelftools or LIEF because the targets are
huge (libtorch_cpu.so: 434 MB, 75 k dynamic symbols, 320 k relocations): everything here
is a bounds-checked numpy view into a read-only mmap, so nothing is materialised unless a
caller asks for it, and no allocation is proportional to a header field that the file
does not back with bytes.  pyelftools and readelf serve as oracles in the tests.

Symbols, versions, relocations, PLT maps and the relocated init/fini arrays live in
:mod:`uk_depscan.elf.symbols`; function starts (symtab, dynsym, ``.eh_frame``) in
:mod:`uk_depscan.elf.frames`.  Those modules build on this one and never the other way round;
they keep their decoded tables in the per-file memo :meth:`ElfFile.derived`.
"""

from __future__ import annotations

import json
import mmap
import os
import stat
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import BinaryIO, TypeVar, cast

import numpy as np

from uk_depscan.errors import ElfFormatError, InputError

ELFMAG = b"\x7fELF"
EM_386, EM_ARM, EM_X86_64, EM_AARCH64, EM_RISCV = 3, 40, 62, 183, 243
MACHINE_NAMES = {
    EM_386: "i386",
    EM_ARM: "arm",
    EM_X86_64: "x86_64",
    EM_AARCH64: "aarch64",
    EM_RISCV: "riscv",
    8: "mips",
    20: "ppc",
    21: "ppc64",
    22: "s390",
}
FULLY_SUPPORTED_MACHINES = frozenset({EM_X86_64, EM_AARCH64})
ET_EXEC, ET_DYN = 2, 3
PT_LOAD, PT_DYNAMIC, PT_INTERP, PT_NOTE, PT_TLS = 1, 2, 3, 4, 7
PT_GNU_STACK = 0x6474E551
PF_X = 1
SHT_NOTE, SHT_NOBITS = 7, 8
SHF_EXECINSTR = 4
DT = {
    "NULL": 0,
    "NEEDED": 1,
    "PLTRELSZ": 2,
    "STRTAB": 5,
    "SYMTAB": 6,
    "RELA": 7,
    "RELASZ": 8,
    "STRSZ": 10,
    "SONAME": 14,
    "RPATH": 15,
    "REL": 17,
    "RELSZ": 18,
    "PLTREL": 20,
    "TEXTREL": 22,
    "JMPREL": 23,
    "INIT_ARRAY": 25,
    "FINI_ARRAY": 26,
    "INIT_ARRAYSZ": 27,
    "FINI_ARRAYSZ": 28,
    "RUNPATH": 29,
    "FLAGS": 30,
    "PREINIT_ARRAY": 32,
    "PREINIT_ARRAYSZ": 33,
    "RELRSZ": 35,
    "RELR": 36,
    "HASH": 4,
    "GNU_HASH": 0x6FFFFEF5,
    "VERSYM": 0x6FFFFFF0,
    "FLAGS_1": 0x6FFFFFFB,
    "VERDEF": 0x6FFFFFFC,
    "VERDEFNUM": 0x6FFFFFFD,
    "VERNEED": 0x6FFFFFFE,
    "VERNEEDNUM": 0x6FFFFFFF,
    "INIT": 12,
    "FINI": 13,
}
DF_TEXTREL, DF_STATIC_TLS = 0x4, 0x10
DF_1_NODEFLIB, DF_1_PIE = 0x800, 0x08000000
NT_GNU_BUILD_ID = 3
NT_FDO_DLOPEN_METADATA = 0x407C0C0A
# Refuse tables far larger than any real object; real values are backed by file bytes anyway.
MAX_TABLE_ENTRIES = 1 << 24
# Real dynamic sections have tens of entries (a few hundred with huge DT_NEEDED lists).
MAX_DYNAMIC_ENTRIES = 1 << 16
# Section names are short; a nul-free name table must not make every name a copy of all of it.
MAX_SECTION_NAME = 1024

_T = TypeVar("_T")


@dataclass(frozen=True)
class ElfIdent:
    """The fields ld.so's ``open_verify`` checks before it maps a candidate."""

    ei_class: int
    ei_data: int
    ei_version: int
    ei_osabi: int
    ei_abiversion: int
    pad_zero: bool
    e_type: int
    e_machine: int
    e_version: int
    e_phentsize: int


@dataclass(frozen=True)
class Segment:
    p_type: int
    p_flags: int
    p_offset: int
    p_vaddr: int
    p_filesz: int
    p_memsz: int
    p_align: int


@dataclass(frozen=True)
class Section:
    name: str
    sh_type: int
    sh_flags: int
    sh_addr: int
    sh_offset: int
    sh_size: int
    sh_link: int
    sh_info: int
    sh_addralign: int
    sh_entsize: int


@dataclass(frozen=True)
class TlsSegment:
    filesz: int
    memsz: int
    align: int


@dataclass(frozen=True)
class DynamicInfo:
    """What ld.so reads from PT_DYNAMIC (glibc elf/get-dynamic-info.h)."""

    needed: tuple[str, ...]
    soname: str | None
    rpath: str | None
    runpath: str | None
    flags: int
    flags_1: int
    tags: tuple[tuple[int, int], ...]
    has_null: bool

    def value(self, tag: int) -> int | None:
        for t, v in self.tags:
            if t == tag:
                return v
        return None


def is_special_file(path: str | os.PathLike[str]) -> bool:
    """True for an existing FIFO, socket or device: opening or reading one can block forever
    (a FIFO without writer) or never end (/dev/zero), so readers refuse them before opening."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def read_ident(path: str | os.PathLike[str]) -> ElfIdent | str:
    """Read the fixed ELF header fields of ``path`` or return why it is not ELF.

    Used by the loader to imitate ``open_verify`` (glibc elf/dl-load.c) on candidates
    without mapping the whole file.
    """
    if is_special_file(path):
        return "not a regular file"
    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
    except OSError as err:
        return f"cannot read: {err.strerror or err}"
    if len(head) < 52 or head[:4] != ELFMAG:
        return "file too short" if len(head) < 52 and head[:4] == ELFMAG else "invalid ELF header"
    end = "<" if head[5] == 1 else ">"
    e_type, e_machine, e_version = struct.unpack_from(end + "HHI", head, 16)
    phentsize_off = 54 if head[4] == 2 else 42
    if len(head) < phentsize_off + 2:
        return "file too short"
    (e_phentsize,) = struct.unpack_from(end + "H", head, phentsize_off)
    return ElfIdent(
        head[4], head[5], head[6], head[7], head[8], not any(head[9:16]), e_type, e_machine, e_version, e_phentsize
    )


class ElfFile:
    """A read-only, lazily decoded view of one ELF file.

    Construction validates the ELF header and the program/section header tables against
    the file size; every later accessor is bounds-checked and raises
    :class:`~uk_depscan.errors.ElfFormatError` naming the file and the defect.
    """

    def __init__(self, path: str | os.PathLike[str], *, display_name: str | None = None) -> None:
        self.path = Path(path)
        self.name = display_name or str(path)
        # _fh stays open beside the mapping: its descriptor names the file actually mapped
        # (uk_depscan.store.identity fstat()s it to key the scan cache without a path race)
        self._fh, self._map = _map_file(self.path, self.name)
        self.size = len(self._map)
        self.data = np.frombuffer(self._map, dtype=np.uint8) if self.size else np.zeros(0, np.uint8)
        # Tables that the readers layered on this class (elf.symbols, elf.frames) decode from
        # this file, keyed by the function that builds them; see derived().
        self._derived: dict[Callable[[ElfFile], object], object] = {}
        self._parse_header()

    # -- lifecycle -------------------------------------------------------------------
    def close(self) -> None:
        self.data = np.zeros(0, np.uint8)
        self.__dict__.clear()

    def __enter__(self) -> ElfFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def fail(self, problem: str) -> ElfFormatError:
        return ElfFormatError(f"{self.name}: {problem}")

    def derived(self, build: Callable[[ElfFile], _T]) -> _T:
        """``build(self)``, computed once per file and dropped by :meth:`close`.

        The per-file memo of the modules built on this one (the dynamic symbol table, the
        relocations, the named function starts): huge libraries are read by several stages of
        one run, and each table must be decoded from the mmap only once.
        """
        if build in self._derived:
            return cast(_T, self._derived[build])
        value = build(self)
        self._derived[build] = value
        return value

    # -- raw access ------------------------------------------------------------------
    def bytes_at(self, offset: int, size: int, what: str) -> memoryview:
        if offset < 0 or size < 0 or offset + size > self.size:
            raise self.fail(f"{what} at offset {offset:#x} size {size:#x} lies outside the file ({self.size:#x} bytes)")
        return memoryview(self._map)[offset : offset + size]

    def array_at(self, offset: int, dtype: np.dtype, count: int, what: str) -> np.ndarray:
        if count < 0 or count > MAX_TABLE_ENTRIES:
            raise self.fail(f"{what}: absurd entry count {count}")
        self.bytes_at(offset, count * dtype.itemsize, what)
        return np.frombuffer(self._map, dtype=dtype, count=count, offset=offset)

    def cstring(self, offset: int, limit: int | None = None) -> bytes:
        end = self.size if limit is None else min(self.size, limit)
        if offset < 0 or offset >= end:
            raise self.fail(f"string offset {offset:#x} lies outside its table")
        stop = self._map.find(b"\0", offset, end)
        return self._map[offset : (end if stop < 0 else stop)]

    # -- header ----------------------------------------------------------------------
    def _parse_header(self) -> None:
        head = bytes(self._map[:4])
        if head != ELFMAG[: len(head)] or (len(head) < 4 and self.size >= 4):
            raise InputError(f"{self.name}: not an ELF file")
        if self.size < 16:
            raise ElfFormatError(f"{self.name}: truncated ELF header ({self.size} bytes)")
        ei_class, ei_data = self._map[4], self._map[5]
        if ei_class not in (1, 2) or ei_data not in (1, 2):
            raise self.fail(f"invalid ELF class/data bytes ({ei_class}, {ei_data})")
        self.is64 = ei_class == 2
        self.endian = "<" if ei_data == 1 else ">"
        fmt = self.endian + ("HHIQQQIHHHHHH" if self.is64 else "HHIIIIIHHHHHH")
        if self.size < 16 + struct.calcsize(fmt):
            raise self.fail(f"truncated ELF header ({self.size} bytes)")
        (
            self.e_type,
            self.e_machine,
            _,
            self.e_entry,
            self.e_phoff,
            self.e_shoff,
            self.e_flags,
            _,
            self.e_phentsize,
            self.e_phnum,
            self.e_shentsize,
            self.e_shnum,
            self.e_shstrndx,
        ) = struct.unpack_from(fmt, self._map, 16)
        self.word = "Q" if self.is64 else "I"
        self.addr_dtype = np.dtype(self.endian + ("u8" if self.is64 else "u4"))

    @property
    def machine_name(self) -> str:
        return MACHINE_NAMES.get(self.e_machine, f"EM_{self.e_machine}")

    @property
    def arch_supported(self) -> bool:
        return self.e_machine in FULLY_SUPPORTED_MACHINES and self.is64

    @property
    def elf_class(self) -> int:
        return 64 if self.is64 else 32

    # -- program headers -------------------------------------------------------------
    @cached_property
    def segments(self) -> tuple[Segment, ...]:
        if self.e_phnum == 0:
            return ()
        want = 56 if self.is64 else 32
        if self.e_phentsize != want:
            raise self.fail(f"e_phentsize is {self.e_phentsize}, expected {want}")
        raw = self.bytes_at(self.e_phoff, self.e_phnum * want, "program header table")
        fmt = self.endian + ("IIQQQQQQ" if self.is64 else "IIIIIIII")
        out = []
        for i in range(self.e_phnum):
            f = struct.unpack_from(fmt, raw, i * want)
            if self.is64:
                p_type, p_flags, off, vaddr, _, filesz, memsz, align = f
            else:
                p_type, off, vaddr, _, filesz, memsz, p_flags, align = f
            out.append(Segment(p_type, p_flags, off, vaddr, filesz, memsz, align))
        return tuple(out)

    @cached_property
    def _loads(self) -> tuple[Segment, ...]:
        return tuple(sorted((s for s in self.segments if s.p_type == PT_LOAD), key=lambda s: s.p_vaddr))

    def vaddr_to_offset(self, vaddr: int, size: int = 1) -> int | None:
        """Map a virtual address to a file offset through PT_LOAD, as the loader maps it."""
        for seg in self._loads:
            if seg.p_vaddr <= vaddr and vaddr + size <= seg.p_vaddr + seg.p_filesz:
                return seg.p_offset + (vaddr - seg.p_vaddr)
        return None

    def segment_of_type(self, p_type: int) -> Segment | None:
        return next((s for s in self.segments if s.p_type == p_type), None)

    # -- section headers -------------------------------------------------------------
    @cached_property
    def sections(self) -> tuple[Section, ...]:
        if self.e_shoff == 0 or self.e_shnum == 0:
            return ()
        want = 64 if self.is64 else 40
        if self.e_shentsize != want:
            raise self.fail(f"e_shentsize is {self.e_shentsize}, expected {want}")
        if self.e_shoff >= self.size:
            raise self.fail(
                f"section header table offset e_shoff={self.e_shoff:#x} is past the end "
                f"of the file ({self.size:#x} bytes)"
            )
        if self.e_shoff + self.e_shnum * want > self.size:
            raise self.fail(
                f"section header table ({self.e_shnum} entries at {self.e_shoff:#x}) "
                f"runs past the end of the file ({self.size:#x} bytes)"
            )
        raw = self.bytes_at(self.e_shoff, self.e_shnum * want, "section header table")
        fmt = self.endian + ("IIQQQQIIQQ" if self.is64 else "IIIIIIIIII")
        rows = [struct.unpack_from(fmt, raw, i * want) for i in range(self.e_shnum)]
        names = self._section_names(rows)
        return tuple(
            Section(n, r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9]) for n, r in zip(names, rows, strict=True)
        )

    def _section_names(self, rows: list[tuple[int, ...]]) -> list[str]:
        if not 0 < self.e_shstrndx < len(rows):
            return [""] * len(rows)
        strtab = rows[self.e_shstrndx]
        base, size = strtab[4], strtab[5]
        if base + size > self.size:
            raise self.fail(f"section name table at {base:#x} runs past the end of the file")
        return [
            self.cstring(base + r[0], min(base + size, base + r[0] + MAX_SECTION_NAME)).decode("latin-1")
            if r[0] < size
            else ""
            for r in rows
        ]

    def get_section(self, name: str) -> Section | None:
        return next((s for s in self.sections if s.name == name), None)

    def section_bytes(self, sec: Section) -> memoryview:
        if sec.sh_type == SHT_NOBITS:
            return memoryview(b"")
        return self.bytes_at(sec.sh_offset, sec.sh_size, f"section {sec.name!r}")

    def iter_exec_regions(self) -> Iterator[tuple[str, int, memoryview]]:
        """Yield ``(name, vaddr, bytes)`` for code: executable sections, else executable PT_LOADs."""
        found = False
        for sec in self.sections:
            if sec.sh_flags & SHF_EXECINSTR and sec.sh_type != SHT_NOBITS and sec.sh_size:
                found = True
                yield sec.name, sec.sh_addr, self.section_bytes(sec)
        if not found:
            for seg in self._loads:
                if seg.p_flags & PF_X and seg.p_filesz:
                    yield (
                        f"PT_LOAD@{seg.p_vaddr:#x}",
                        seg.p_vaddr,
                        self.bytes_at(seg.p_offset, seg.p_filesz, "executable segment"),
                    )

    # -- dynamic segment ---------------------------------------------------------------
    @cached_property
    def dynamic(self) -> DynamicInfo | None:
        seg = self.segment_of_type(PT_DYNAMIC)
        if seg is None:
            return None
        ent = 16 if self.is64 else 8
        count = seg.p_filesz // ent
        arr = self.array_at(
            seg.p_offset, np.dtype(self.endian + ("i8" if self.is64 else "i4")), count * 2, "dynamic segment"
        ).reshape(-1, 2)
        # ld.so stops at DT_NULL: find it in numpy rather than materialising a file-sized list
        nulls = np.flatnonzero(arr[:, 0] == DT["NULL"])
        has_null = len(nulls) > 0
        n = int(nulls[0]) if has_null else len(arr)
        if n > MAX_DYNAMIC_ENTRIES:
            raise self.fail(f"dynamic segment has {n} entries before DT_NULL (limit {MAX_DYNAMIC_ENTRIES})")
        tags = tuple((tag & ((1 << 64) - 1) if tag < 0 else tag, val) for tag, val in arr[:n].tolist())
        return self._dynamic_info(tags, has_null)

    def _dynamic_info(self, tags: tuple[tuple[int, int], ...], has_null: bool) -> DynamicInfo:
        strtab, strsz = None, 0
        for t, v in tags:
            if t == DT["STRTAB"]:
                strtab = v
            elif t == DT["STRSZ"]:
                strsz = v
        str_off = self.vaddr_to_offset(strtab, max(strsz, 1)) if strtab is not None else None
        if str_off is None and strtab is not None:
            raise self.fail(f"DT_STRTAB {strtab:#x} (size {strsz:#x}) is not backed by any PT_LOAD")

        def dstr(v: int, tag: str) -> str:
            if str_off is None or not 0 <= v < strsz:
                raise self.fail(f"DT_{tag} string offset {v:#x} is outside DT_STRTAB (size {strsz:#x})")
            return self.cstring(str_off + v, str_off + strsz).decode("utf-8", "surrogateescape")

        needed = tuple(dstr(v, "NEEDED") for t, v in tags if t == DT["NEEDED"])
        first = dict(reversed(tags))  # the first entry of each tag wins, as in ld.so
        soname = dstr(first[DT["SONAME"]], "SONAME") if DT["SONAME"] in first else None
        rpath = dstr(first[DT["RPATH"]], "RPATH") if DT["RPATH"] in first else None
        runpath = dstr(first[DT["RUNPATH"]], "RUNPATH") if DT["RUNPATH"] in first else None
        return DynamicInfo(
            needed, soname, rpath, runpath, first.get(DT["FLAGS"], 0), first.get(DT["FLAGS_1"], 0), tags, has_null
        )

    def dyn_value(self, name: str) -> int | None:
        return self.dynamic.value(DT[name]) if self.dynamic else None

    # -- simple properties -----------------------------------------------------------------
    @cached_property
    def interp(self) -> str | None:
        seg = self.segment_of_type(PT_INTERP)
        if seg is None:
            return None
        return (
            bytes(self.bytes_at(seg.p_offset, seg.p_filesz, "PT_INTERP"))
            .split(b"\0")[0]
            .decode("utf-8", "surrogateescape")
        )

    @property
    def is_pie(self) -> bool:
        """ET_DYN with an interpreter or DF_1_PIE: what app-elfloader and kraftkit require."""
        flags_1 = self.dynamic.flags_1 if self.dynamic else 0
        return self.e_type == ET_DYN and (bool(flags_1 & DF_1_PIE) or self.interp is not None)

    @property
    def textrel(self) -> bool:
        dyn = self.dynamic
        return bool(dyn and (dyn.value(DT["TEXTREL"]) is not None or dyn.flags & DF_TEXTREL))

    @property
    def static_tls(self) -> bool:
        return bool(self.dynamic and self.dynamic.flags & DF_STATIC_TLS)

    @property
    def exec_stack(self) -> bool:
        """PT_GNU_STACK with PF_X, or no PT_GNU_STACK at all (the kernel's and ld.so's default)."""
        seg = self.segment_of_type(PT_GNU_STACK)
        return seg is None or bool(seg.p_flags & PF_X)

    @property
    def tls(self) -> TlsSegment | None:
        seg = self.segment_of_type(PT_TLS)
        return TlsSegment(seg.p_filesz, seg.p_memsz, seg.p_align) if seg else None

    # -- notes ---------------------------------------------------------------------------
    def iter_notes(self) -> Iterator[tuple[bytes, int, memoryview]]:
        """Yield ``(owner, type, desc)`` from note sections, else PT_NOTE segments."""
        regions = [
            (s.sh_offset, s.sh_size, 8 if s.sh_addralign == 8 else 4) for s in self.sections if s.sh_type == SHT_NOTE
        ]
        if not regions:
            regions = [
                (s.p_offset, s.p_filesz, 8 if s.p_align == 8 else 4) for s in self.segments if s.p_type == PT_NOTE
            ]
        seen: set[tuple[int, int]] = set()
        budget = self.size  # real note regions do not overlap; overlapping copies would be re-parsed forever
        for off, size, align in regions:
            if (off, size) in seen:
                continue
            seen.add((off, size))
            raw = self.bytes_at(off, size, "note")
            budget -= size
            if budget < 0:
                raise self.fail(
                    f"note sections/segments overlap: more note bytes than the file has ({len(regions)} regions)"
                )
            yield from self._iter_note_region(raw, align)

    def _iter_note_region(self, raw: memoryview, align: int) -> Iterator[tuple[bytes, int, memoryview]]:
        pos = 0
        mask = align - 1  # 4 or 8: note name and descriptor sizes are padded to the alignment

        def pad(n: int) -> int:
            return (n + mask) & ~mask

        while pos + 12 <= len(raw):
            namesz, descsz, ntype = struct.unpack_from(self.endian + "III", raw, pos)
            name_end = pos + 12 + namesz
            desc_off = pos + 12 + pad(namesz)
            if name_end > len(raw) or desc_off + descsz > len(raw):
                return
            yield bytes(raw[pos + 12 : name_end]).rstrip(b"\0"), ntype, raw[desc_off : desc_off + descsz]
            pos = desc_off + pad(descsz)

    @cached_property
    def build_id(self) -> str | None:
        for owner, ntype, desc in self.iter_notes():
            if owner == b"GNU" and ntype == NT_GNU_BUILD_ID:
                return bytes(desc).hex()
        return None

    @cached_property
    def dlopen_notes(self) -> tuple[dict[str, object], ...]:
        """Entries of ``.note.dlopen`` (UAPI group "ELF dlopen metadata"); malformed JSON is skipped."""
        out: list[dict[str, object]] = []
        for owner, ntype, desc in self.iter_notes():
            if owner == b"FDO" and ntype == NT_FDO_DLOPEN_METADATA:
                try:
                    doc = json.loads(bytes(desc).split(b"\0")[0].decode("utf-8"))
                except (UnicodeDecodeError, json.JSONDecodeError):
                    continue
                out.extend(d for d in (doc if isinstance(doc, list) else []) if isinstance(d, dict))
        return tuple(out)


def _map_file(path: Path, name: str) -> tuple[BinaryIO, mmap.mmap]:
    """The open file and a read-only mapping of all of it."""
    if path.is_dir():
        raise InputError(f"{name}: is a directory, not an ELF file")
    if is_special_file(path):
        raise InputError(f"{name}: not a regular file (FIFO, socket or device)")
    try:
        fh = open(path, "rb")  # noqa: SIM115 - kept open for the ElfFile's lifetime (see ElfFile.__init__)
    except OSError as err:
        raise InputError(f"{name}: cannot open: {err.strerror or err}") from err
    try:
        if os.fstat(fh.fileno()).st_size:
            return fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError) as err:
        fh.close()
        raise InputError(f"{name}: cannot map: {err}") from err
    fh.close()
    raise InputError(f"{name}: empty file, not an ELF file")


def open_elf(path: str | os.PathLike[str], *, display_name: str | None = None) -> ElfFile:
    """Open ``path`` as ELF or raise :class:`InputError`/:class:`ElfFormatError`."""
    return ElfFile(path, display_name=display_name)
