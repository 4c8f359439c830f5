"""Function starts and names: ``.symtab``, ``.dynsym`` and ``.eh_frame`` FDEs (for stripped files).

Stripped ML libraries keep their unwind tables (C++ exceptions need them), so every function
that can throw or be unwound through has an FDE whose ``initial_location`` is its start.
``.eh_frame_hdr``'s binary-search table lists exactly those, already sorted; it is read as a
numpy array.  Without it, ``.eh_frame`` itself is walked (CIE augmentation decides the pointer
encoding, per the LSB "Exception Frames" chapter).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from uk_depscan.elf.file import ElfFile
from uk_depscan.elf.symbols import (
    STT_FUNC,
    STT_GNU_IFUNC,
    decode_names,
    dynamic_symbols,
    fini_array,
    init_array,
    sym_dtype,
)

PT_GNU_EH_FRAME = 0x6474E550
SHT_SYMTAB = 2
DW_EH_PE_omit = 0xFF
MAX_FDES = 1 << 22


@dataclass(frozen=True)
class FunctionNames:
    """Sorted named function starts: ``addrs[i]`` is named by ``(table, index)`` rows."""

    addrs: np.ndarray
    sizes: np.ndarray
    names: tuple[str, ...]

    def find(self, addr: int) -> tuple[str, int] | None:
        """Name of the function containing ``addr`` (its symbol start ≤ addr) and the offset."""
        i = int(np.searchsorted(self.addrs, addr, side="right")) - 1
        if i < 0:
            return None
        start = int(self.addrs[i])
        size = int(self.sizes[i])
        if size and addr >= start + size:
            return None
        return self.names[i], addr - start


def function_starts(elf: ElfFile) -> np.ndarray:
    """Sorted unique addresses where functions begin (symbols ∪ FDEs ∪ init/fini ∪ entry)."""
    parts = [fde_starts(elf), _func_symbols(elf)[0]]
    extra = [elf.e_entry, *init_array(elf), *fini_array(elf)]
    for tag in ("INIT", "FINI"):
        v = elf.dyn_value(tag)
        if v:
            extra.append(v)
    parts.append(np.array([x for x in extra if x], dtype=np.uint64))
    return sorted_unique(np.concatenate([p.astype(np.uint64) for p in parts]))


def sorted_unique(a: np.ndarray) -> np.ndarray:
    """``np.unique(a)`` by a sort and a neighbour comparison: numpy 2's hash-based ``np.unique``
    takes 0.5 s for libtorch_cpu.so's 780 k function starts (FDEs and symbols, mostly already in
    order), the sort 0.07 s."""
    s = np.sort(a)
    if len(s) < 2:
        return s
    keep = np.empty(len(s), bool)
    keep[0] = True
    np.not_equal(s[1:], s[:-1], out=keep[1:])
    out: np.ndarray = s[keep]
    return out


def function_names(elf: ElfFile) -> FunctionNames:
    """Named function starts of ``elf`` (symtab and dynsym), read once per file."""
    return elf.derived(_read_function_names)


def _read_function_names(elf: ElfFile) -> FunctionNames:
    return FunctionNames(*_func_symbols(elf, with_names=True))


def _func_symbols(elf: ElfFile, with_names: bool = False) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    rows: list[tuple[np.ndarray, np.ndarray, list[str]]] = []
    symtab = next((s for s in elf.sections if s.sh_type == SHT_SYMTAB), None)
    if symtab is not None and 0 < symtab.sh_link < len(elf.sections):
        strsec = elf.sections[symtab.sh_link]
        dtype = sym_dtype(elf)
        arr = elf.array_at(symtab.sh_offset, dtype, symtab.sh_size // dtype.itemsize, ".symtab")
        idx = _func_mask(arr)
        names = (
            decode_names(elf, strsec.sh_offset, strsec.sh_size, arr["name"][idx].tolist(), ".strtab", lambda i: "")
            if with_names
            else []
        )
        rows.append((arr["value"][idx].astype(np.uint64), arr["size"][idx].astype(np.uint64), names))
    dyn = dynamic_symbols(elf)
    if dyn.count:
        idx = _func_mask(dyn.table)
        names = [dyn.names[i] for i in idx.tolist()] if with_names else []
        rows.append((dyn.table["value"][idx].astype(np.uint64), dyn.table["size"][idx].astype(np.uint64), names))
    if not rows:
        z = np.zeros(0, np.uint64)
        return z, z, ()
    addrs = np.concatenate([r[0] for r in rows])
    sizes = np.concatenate([r[1] for r in rows])
    if not with_names:
        return addrs, sizes, ()
    all_names = [n for r in rows for n in r[2]]
    order = np.lexsort((np.array([n.startswith("_") for n in all_names]) if all_names else np.zeros(0), addrs))
    # keep one name per address: the first after sorting (prefer names without a leading '_')
    addrs, sizes = addrs[order], sizes[order]
    names_sorted = [all_names[i] for i in order.tolist()]
    keep = np.ones(len(addrs), bool)
    keep[1:] = addrs[1:] != addrs[:-1]
    k = np.nonzero(keep)[0].tolist()
    return addrs[keep], sizes[keep], tuple(names_sorted[i] for i in k)


def _func_mask(arr: np.ndarray) -> np.ndarray:
    """Indices of the defined function symbols (an array: indexing by a list of libtorch_cpu.so's
    350 k indices converted it element by element)."""
    typ = arr["info"] & 0xF
    m = ((typ == STT_FUNC) | (typ == STT_GNU_IFUNC)) & (arr["shndx"] != 0) & (arr["value"] != 0)
    idx: np.ndarray = np.flatnonzero(m)
    return idx


# -- unwind tables ------------------------------------------------------------------------------
def fde_starts(elf: ElfFile) -> np.ndarray:
    hdr = _eh_frame_hdr(elf)
    if hdr is not None:
        table = _hdr_table(elf, *hdr)
        if table is not None:
            return table
    sec = elf.get_section(".eh_frame")
    if sec is None or sec.sh_type == 8:
        return np.zeros(0, np.uint64)
    return _walk_eh_frame(elf, bytes(elf.section_bytes(sec)), sec.sh_addr)


def _eh_frame_hdr(elf: ElfFile) -> tuple[int, int] | None:
    sec = elf.get_section(".eh_frame_hdr")
    if sec is not None:
        return sec.sh_offset, sec.sh_addr
    seg = elf.segment_of_type(PT_GNU_EH_FRAME)
    return (seg.p_offset, seg.p_vaddr) if seg is not None else None


def _hdr_table(elf: ElfFile, off: int, vaddr: int) -> np.ndarray | None:
    head = elf.bytes_at(off, 4, ".eh_frame_hdr")
    version, ptr_enc, count_enc, table_enc = head[0], head[1], head[2], head[3]
    if version != 1 or table_enc != 0x3B or count_enc != 0x03:
        return None  # only the universal datarel|sdata4 layout; anything else: walk .eh_frame
    ptr_size = {0x1B: 4, 0x03: 4, 0x0B: 4, 0x04: 8, 0x0C: 8, 0x00: 8 if elf.is64 else 4}.get(ptr_enc)
    if ptr_size is None:
        return None
    count = int(elf.array_at(off + 4 + ptr_size, np.dtype(elf.endian + "u4"), 1, ".eh_frame_hdr")[0])
    if count > MAX_FDES:
        raise elf.fail(f".eh_frame_hdr claims {count} FDEs")
    table = elf.array_at(off + 8 + ptr_size, np.dtype(elf.endian + "i4"), count * 2, ".eh_frame_hdr table")
    # datarel offsets from the header's address, in modular 64-bit arithmetic: a hostile sh_addr
    # near 2**64 must wrap as the address space does, not overflow a Python int into int64
    starts: np.ndarray = table[0::2].astype(np.int64).view(np.uint64) + np.uint64(vaddr & 0xFFFFFFFFFFFFFFFF)
    return starts


def _walk_eh_frame(elf: ElfFile, raw: bytes, base: int) -> np.ndarray:
    e = elf.endian
    pos = 0
    starts: list[int] = []
    cie_enc: dict[int, int] = {}
    while pos + 8 <= len(raw) and len(starts) < MAX_FDES:
        (length,) = struct.unpack_from(e + "I", raw, pos)
        if length == 0:
            break
        hdr = 4
        if length == 0xFFFFFFFF:
            if pos + 12 > len(raw):
                break
            (length,) = struct.unpack_from(e + "Q", raw, pos + 4)
            hdr = 12
        body = pos + hdr
        end = body + length
        if end > len(raw) or length < 4:
            break  # a bad length ends the walk; what was read stays valid
        (cie_ptr,) = struct.unpack_from(e + "I", raw, body)
        if cie_ptr == 0:
            cie_enc[pos] = _cie_fde_encoding(raw, body + 4, end)
        else:
            enc = cie_enc.get(body - cie_ptr, 0x1B)
            loc = _read_encoded(raw, body + 4, enc, base, e, elf.is64)
            if loc is not None:
                starts.append(loc)
        pos = end
    return np.array(sorted(set(starts)), dtype=np.uint64)


def _cie_fde_encoding(raw: bytes, pos: int, end: int) -> int:
    try:
        version = raw[pos]
        aug_end = raw.index(b"\0", pos + 1, end)
        aug = raw[pos + 1 : aug_end].decode("ascii", "replace")
        p = aug_end + 1
        if "eh" in aug:
            p += 8
        p = _skip_uleb(raw, p)  # code alignment
        p = _skip_uleb(raw, p)  # data alignment (sleb, same length rule)
        p = p + 1 if version == 1 else _skip_uleb(raw, p)
        if not aug.startswith("z"):
            return 0x00
        p = _skip_uleb(raw, p)
        for ch in aug[1:]:
            if ch == "R":
                return raw[p]
            if ch == "L":
                p += 1
            elif ch == "P":
                enc = raw[p]
                p += 1 + {0x00: 8, 0x03: 4, 0x0B: 4, 0x04: 8, 0x0C: 8, 0x02: 2, 0x0A: 2}.get(enc & 0x0F, 4)
    except (IndexError, ValueError):
        pass
    return 0x00


def _skip_uleb(raw: bytes, p: int) -> int:
    while raw[p] & 0x80:
        p += 1
    return p + 1


def _read_encoded(raw: bytes, pos: int, enc: int, base: int, e: str, is64: bool) -> int | None:
    fmt = {0x00: "Q" if is64 else "I", 0x02: "H", 0x03: "I", 0x04: "Q", 0x0A: "h", 0x0B: "i", 0x0C: "q"}.get(enc & 0x0F)
    if fmt is None or pos + struct.calcsize(fmt) > len(raw):
        return None
    val: int = struct.unpack_from(e + fmt, raw, pos)[0]
    if enc & 0x70 == 0x10:  # pcrel
        val += base + pos
    return val & 0xFFFFFFFFFFFFFFFF
