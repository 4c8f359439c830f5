"""Pointers stored in data: what every relocated word of the object will hold once ld.so ran.

The reference graph of :mod:`uk_depscan.syscalls.scan` needs, for each word that a dynamic
relocation writes, the address it points to or the imported function it names:

* ``RELATIVE`` (and ``IRELATIVE``, whose addend is the ifunc resolver): ``base + addend`` — a
  local function or a local datum (vtables, function-pointer tables, ``OrtApi``-style API tables,
  ``.init_array``; glibc ``elf/dynamic-link.h`` ``elf_machine_rela_relative``);
* symbolic absolute words (``R_X86_64_64``, ``R_AARCH64_ABS64``) and ``GLOB_DAT``/``JUMP_SLOT``
  slots: ``S + A`` where S is the symbol ld.so binds (``elf_machine_rela``).  A *defined* symbol
  points into this object (the definition an interposer would replace is the same function or
  datum by name, so following the local definition is what the summaries do everywhere else); an
  *undefined* function symbol is an import whose address is taken — a ``{ "open", open }`` table
  slot, a vtable slot of an imported method, a callback stored in a struct.

Undefined data symbols (``stdout``, imported typeinfo) are not followed: their provider's data is
not analysed (an unsound spot, stated in README "What the syscall answer means").

All arrays, no Python object per relocation (torch has ~2 M of them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from uk_depscan.elf.file import EM_AARCH64, EM_X86_64, ElfFile
from uk_depscan.elf.frames import SHT_SYMTAB
from uk_depscan.elf.symbols import RELOC_TYPES, STT_FUNC, STT_GNU_IFUNC, dynamic_symbols, elf_relocations, sym_dtype

# IRELATIVE: the addend is the ifunc resolver (x86-64 37, AArch64 1032; glibc elf.h)
IRELATIVE = {EM_X86_64: 37, EM_AARCH64: 1032}
STT_NOTYPE, STT_OBJECT = 0, 1
SHF_ALLOC, SHF_EXECINSTR = 0x2, 0x4
SHT_NOBITS = 8
PF_X = 0x1
PT_LOAD = 1


@dataclass(frozen=True, eq=False)  # numpy fields: identity equality and hash
class DataPointers:
    """Relocated words: where each is stored and what it points to."""

    offset: np.ndarray  # uint64: address of the relocated word
    target: np.ndarray  # uint64: address it holds (meaningful where ``sym`` < 0)
    sym: np.ndarray  # int64: dynamic symbol index of an undefined function it names, else -1
    slot: np.ndarray  # bool: a GOT slot (GLOB_DAT/JUMP_SLOT)


def data_pointers(elf: ElfFile) -> DataPointers:
    """Every dynamic relocation that stores a code or data address of this object, or the address
    of an imported function, into a word of the image (read once per file)."""
    return elf.derived(_read_data_pointers)


def _read_data_pointers(elf: ElfFile) -> DataPointers:
    relocs = elf_relocations(elf)
    types = RELOC_TYPES.get(elf.e_machine)
    empty = DataPointers(np.zeros(0, np.uint64), np.zeros(0, np.uint64), np.zeros(0, np.int64), np.zeros(0, bool))
    if types is None or not len(relocs.offset):
        return empty
    relative, jump_slot, glob_dat, absolute = types
    rt = relocs.rtype
    is_rel = (rt == relative) | (rt == IRELATIVE.get(elf.e_machine, -1))
    is_sym = ((rt == absolute) | (rt == glob_dat) | (rt == jump_slot)) & (relocs.sym != 0)
    dyn = dynamic_symbols(elf)
    is_sym &= relocs.sym < np.uint64(max(dyn.count, 0))
    offsets = [relocs.offset[is_rel]]
    targets = [relocs.addend[is_rel].astype(np.uint64)]
    syms = [np.full(int(is_rel.sum()), -1, np.int64)]
    slots = [np.zeros(int(is_rel.sum()), bool)]
    if dyn.count and bool(is_sym.any()):
        idx = relocs.sym[is_sym].astype(np.int64)
        t = dyn.table
        defined = t["shndx"][idx] != 0
        typ = t["info"][idx] & 0xF
        func_like = (typ == STT_FUNC) | (typ == STT_GNU_IFUNC) | (typ == STT_NOTYPE)
        # S + A for a definition in this object (GLOB_DAT/JUMP_SLOT carry no addend on RELA
        # x86-64/AArch64: ld.so writes S only, and the stored addend is 0)
        value = t["value"][idx].astype(np.int64) + relocs.addend[is_sym]
        keep = defined | func_like
        offsets.append(relocs.offset[is_sym][keep])
        targets.append(np.where(defined, value, 0)[keep].astype(np.uint64))
        syms.append(np.where(defined, -1, idx)[keep])
        slots.append((rt[is_sym] != absolute)[keep])
    return DataPointers(np.concatenate(offsets), np.concatenate(targets), np.concatenate(syms), np.concatenate(slots))


def pointer_ranges(elf: ElfFile, offsets: np.ndarray) -> np.ndarray:
    """(n, 2) uint64 array of sorted ``[lo, hi)`` ranges of the non-executable, allocated parts of
    the image that hold at least one relocated word (sections, else PT_LOAD segments).  Data without
    pointers (string literals, ``.rodata`` constants) cannot lead to code, so it is left out."""
    ranges = [
        (s.sh_addr, s.sh_addr + s.sh_size)
        for s in elf.sections
        if s.sh_flags & SHF_ALLOC and not s.sh_flags & SHF_EXECINSTR and s.sh_size and s.sh_addr
    ]
    if not ranges:
        ranges = [
            (g.p_vaddr, g.p_vaddr + g.p_memsz) for g in elf.segments if g.p_type == PT_LOAD and not g.p_flags & PF_X
        ]
    # a corrupt header can put a section past the end of the address space: it holds nothing the
    # loader relocates (a relocation offset is a 64-bit address), and numpy cannot hold its end
    ranges = [(lo, hi) for lo, hi in ranges if hi < 1 << 64]
    arr = np.asarray(sorted(ranges), np.uint64).reshape(-1, 2)
    if not len(arr) or not len(offsets):
        return np.zeros((0, 2), np.uint64)
    lo = np.searchsorted(offsets, arr[:, 0], side="left")
    hi = np.searchsorted(offsets, arr[:, 1], side="left")
    return arr[hi > lo]


def object_extents(elf: ElfFile) -> tuple[np.ndarray, np.ndarray]:
    """(start, end) uint64 arrays of defined, sized data symbols (``.dynsym`` and ``.symtab``):
    a pointer table or vtable whose extent the object states, so no reference into its middle
    splits it."""
    starts: list[np.ndarray] = []
    ends: list[np.ndarray] = []
    tables = []
    dyn = dynamic_symbols(elf)
    if dyn.count:
        tables.append(dyn.table)
    symtab = next((s for s in elf.sections if s.sh_type == SHT_SYMTAB), None)
    if symtab is not None:
        dtype = sym_dtype(elf)
        tables.append(elf.array_at(symtab.sh_offset, dtype, symtab.sh_size // dtype.itemsize, ".symtab"))
    for t in tables:
        m = ((t["info"] & 0xF) == STT_OBJECT) & (t["shndx"] != 0) & (t["size"] > 0) & (t["value"] != 0)
        v = t["value"][m].astype(np.uint64)
        starts.append(v)
        ends.append(v + t["size"][m].astype(np.uint64))
    if not starts:
        z = np.zeros(0, np.uint64)
        return z, z
    return np.concatenate(starts), np.concatenate(ends)
