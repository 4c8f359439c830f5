"""Dynamic symbols, symbol versions, relocations and PLT/GOT maps of one :class:`ElfFile`.

Everything is located through PT_DYNAMIC first (DT_SYMTAB, DT_VERSYM, DT_VERNEED, DT_JMPREL…),
the way ld.so finds it, and falls back to section headers only for the symbol count, which
the dynamic segment does not state (it is taken from ``.dynsym``'s size, else DT_HASH's nchain,
else by walking DT_GNU_HASH).  Tables are numpy views; names are decoded on demand.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from uk_depscan.elf.file import DT, EM_AARCH64, EM_X86_64, MAX_TABLE_ENTRIES, ElfFile
from uk_depscan.errors import ElfFormatError

SHT_DYNSYM = 11
STB_NAMES = {0: "LOCAL", 1: "GLOBAL", 2: "WEAK", 10: "UNIQUE"}
STT_NAMES = {0: "NOTYPE", 1: "OBJECT", 2: "FUNC", 3: "SECTION", 4: "FILE", 5: "COMMON", 6: "TLS", 10: "IFUNC"}
STT_FUNC, STT_GNU_IFUNC = 2, 10
VERSYM_HIDDEN = 0x8000
VER_FLG_BASE = 0x1
# Version indices are 15 bits, so no real file has more vernaux entries than this; the walk is
# bounded by it (entries may point back into a shared chain, which would otherwise be quadratic).
MAX_VERSION_ENTRIES = 0x8000
# Decoded symbol-name bytes allowed per byte of string table (plus a floor): names that share a
# tail are normal, millions of symbols pointing into one long nul-free run are a memory bomb.
NAME_BYTES_PER_STRTAB_BYTE = 8
NAME_BYTES_FLOOR = 64 << 20
# Relocation types by machine: (RELATIVE, JUMP_SLOT, GLOB_DAT, absolute word)
RELOC_TYPES = {EM_X86_64: (8, 7, 6, 1), EM_AARCH64: (1027, 1026, 1025, 257), 3: (8, 7, 6, 1), 40: (23, 22, 21, 2)}


@dataclass(frozen=True)
class ImportedSymbol:
    """An undefined dynamic symbol: what the object needs some other object to define."""

    name: str
    version: str | None
    version_file: str | None
    binding: str
    sym_type: str

    @property
    def weak(self) -> bool:
        return self.binding == "WEAK"

    @property
    def key(self) -> str:
        return f"{self.name}@{self.version}" if self.version else self.name


@dataclass(frozen=True)
class ExportedSymbol:
    """A defined, non-local dynamic symbol.  ``default`` is False for ``foo@VER`` (hidden) versions."""

    name: str
    version: str | None
    default: bool
    binding: str
    sym_type: str
    value: int
    size: int

    @property
    def key(self) -> str:
        if not self.version:
            return self.name
        return f"{self.name}@@{self.version}" if self.default else f"{self.name}@{self.version}"


@dataclass(frozen=True)
class VersionNeed:
    file: str
    name: str
    hidden: bool
    weak: bool


class DynamicSymbols:
    """The dynamic symbol table with its GNU version information."""

    def __init__(self, elf: ElfFile) -> None:
        self.elf = elf
        self.table = _symbol_array(elf)
        self.count = len(self.table)
        self.strtab_off, self.strtab_size = _strtab(elf)
        self.versym = _versym(elf, self.count)
        self._hash_abandoned = False  # lookup() gave up on this table's chains (see its budget)

    def name(self, index: int) -> str:
        off = int(self.table["name"][index])
        if self.strtab_off is None or off >= self.strtab_size:
            return f"<bad-name-{index}>"
        return self.elf.cstring(self.strtab_off + off, self.strtab_off + self.strtab_size).decode(
            "utf-8", "surrogateescape"
        )

    def dstr(self, off: int) -> str:
        if self.strtab_off is None or not 0 <= off < self.strtab_size:
            raise self.elf.fail(f"version string offset {off:#x} is outside DT_STRTAB")
        return self.elf.cstring(self.strtab_off + off, self.strtab_off + self.strtab_size).decode(
            "utf-8", "surrogateescape"
        )

    @cached_property
    def names(self) -> list[str]:
        offsets = self.table["name"].tolist() if self.count else []
        return decode_names(
            self.elf, self.strtab_off, self.strtab_size, offsets, "DT_STRTAB", lambda i: f"<bad-name-{i}>"
        )

    @cached_property
    def import_names(self) -> dict[int, str]:
        """Symbol index -> name of every imported symbol (as :attr:`names` has it), decoding only
        those: binding needs the ~1 k imports of libtorch_cpu.so, not its 75 k names."""
        if "names" in self.__dict__:
            return {i: self.names[i] for i in self.imported_indices().tolist()}
        idx = self.imported_indices().tolist()
        offsets = self.table["name"][idx].tolist() if idx else []
        names = decode_names(
            self.elf, self.strtab_off, self.strtab_size, offsets, "DT_STRTAB", lambda k: f"<bad-name-{idx[k]}>"
        )
        return dict(zip(idx, names, strict=True))

    @cached_property
    def version_needs(self) -> dict[int, VersionNeed]:
        return _parse_verneed(self)

    @cached_property
    def version_defs(self) -> dict[int, tuple[str, bool]]:
        """``vd_ndx`` → (name, is_base)."""
        return _parse_verdef(self)

    def binding(self, index: int) -> str:
        b = int(self.table["info"][index]) >> 4
        return STB_NAMES.get(b, f"STB_{b}")

    def sym_type(self, index: int) -> str:
        t = int(self.table["info"][index]) & 0xF
        return STT_NAMES.get(t, f"STT_{t}")

    def import_of(self, index: int) -> ImportedSymbol:
        version = file = None
        if self.versym is not None:
            need = self.version_needs.get(int(self.versym[index]) & 0x7FFF)
            if need is not None:
                version, file = need.name, need.file
        name = self.import_names.get(index)
        if name is None:
            name = self.names[index]
        return ImportedSymbol(name, version, file, self.binding(index), self.sym_type(index))

    def imports_of(self, indices: list[int]) -> list[ImportedSymbol]:
        """:meth:`import_of` of each index, reading the table's columns once for all of them."""
        if not indices:
            return []
        infos = self.table["info"][indices].tolist()
        raws = self.versym[indices].tolist() if self.versym is not None else [None] * len(indices)
        needs = self.version_needs if self.versym is not None else {}
        names = self.import_names
        out = []
        for i, info, raw in zip(indices, infos, raws, strict=True):
            need = needs.get(raw & 0x7FFF) if raw is not None else None
            name = names.get(i)
            b, t = info >> 4, info & 0xF
            out.append(
                ImportedSymbol(
                    name if name is not None else self.names[i],
                    need.name if need is not None else None,
                    need.file if need is not None else None,
                    STB_NAMES.get(b, f"STB_{b}"),
                    STT_NAMES.get(t, f"STT_{t}"),
                )
            )
        return out

    def imported_indices(self) -> np.ndarray:
        t = self.table
        bind = t["info"] >> 4
        mask = (t["shndx"] == 0) & ((bind == 1) | (bind == 2))
        mask[:1] = False
        return np.nonzero(mask)[0]

    def defined_indices(self) -> np.ndarray:
        t = self.table
        bind = t["info"] >> 4
        mask = (t["shndx"] != 0) & ((bind == 1) | (bind == 2) | (bind == 10))
        mask[:1] = False
        return np.nonzero(mask)[0]

    def iter_imports(self) -> list[ImportedSymbol]:
        return self.imports_of(self.imported_indices().tolist())

    def export_version(self, index: int) -> tuple[str | None, bool, int]:
        """(version name or None, default?, raw version index) of a defined symbol."""
        if self.versym is None:
            return None, True, 1
        raw = int(self.versym[index])
        ndx = raw & 0x7FFF
        vdef = self.version_defs.get(ndx)
        name = None if vdef is None or vdef[1] else vdef[0]
        return name, not raw & VERSYM_HIDDEN, raw

    def iter_exports(self) -> list[ExportedSymbol]:
        out = []
        t = self.table
        for i in self.defined_indices().tolist():
            version, default, _ = self.export_version(i)
            out.append(
                ExportedSymbol(
                    self.names[i],
                    version,
                    default,
                    self.binding(i),
                    self.sym_type(i),
                    int(t["value"][i]),
                    int(t["size"][i]),
                )
            )
        return out

    def _bindable(self) -> np.ndarray:
        """Indices of the definitions a lookup may return: defined, global/weak/unique, of a type
        dl-lookup.c's ``ALLOWED_STT`` admits."""
        idx = self.defined_indices()
        kinds = self.table["info"][idx] & 0xF
        return idx[np.isin(kinds, BINDABLE_TYPES)]

    @cached_property
    def _version_of(self) -> dict[int, str | None]:
        return {ndx: (None if base else name) for ndx, (name, base) in self.version_defs.items()}

    @cached_property
    def definitions(self) -> dict[str, list[tuple[int, str | None, int]]]:
        """name → [(index, version name, raw versym)] of defined symbols, for the loader's binding."""
        out: dict[str, list[tuple[int, str | None, int]]] = {}
        idx = self._bindable()
        names = self.names
        if self.versym is None:  # export_version without versions: (None, default, 1)
            for i in idx.tolist():
                out.setdefault(names[i], []).append((i, None, 1))
            return out
        raws = self.versym[idx].astype(np.int64).tolist()
        version_of = self._version_of
        for i, raw in zip(idx.tolist(), raws, strict=True):
            out.setdefault(names[i], []).append((i, version_of.get(raw & 0x7FFF), raw))
        return out

    @cached_property
    def gnu_hash(self) -> GnuHash | None:
        """The DT_GNU_HASH table ld.so looks symbols up in, or None when there is none or it is
        malformed (the caller then uses :attr:`definitions`, built from every name)."""
        return _gnu_hash(self)

    def lookup(self, names: list[bytes], hashes: np.ndarray) -> list[list[tuple[int, str | None, int]]] | None:
        """The :attr:`definitions` entry of each name (``hashes``: :func:`gnu_hashes` of them), found
        the way ld.so's ``do_lookup_x`` finds a symbol: the Bloom filter, the bucket, then the hash
        chain, comparing names only where the chain's hash matches.  None without a usable table."""
        table = self.gnu_hash
        if table is None or self._hash_abandoned:
            return None
        out: list[list[tuple[int, str | None, int]]] = [[] for _ in names]
        if not names:
            return out
        bits = table.word_bits
        h = hashes.astype(np.uint64)
        words = table.bloom[((h // np.uint64(bits)) & np.uint64(len(table.bloom) - 1)).astype(np.int64)]
        words = words.astype(np.uint64)
        b1 = h & np.uint64(bits - 1)
        b2 = (h >> np.uint64(table.shift)) & np.uint64(bits - 1)
        hit = ((words >> b1) & (words >> b2) & np.uint64(1)) != 0
        bucket = table.buckets[(h % np.uint64(len(table.buckets))).astype(np.int64)]
        todo = np.flatnonzero(hit & (bucket != 0)).tolist()
        if not todo:
            return out
        chain = table.chain_list
        bindable = table.bindable
        base, limit = self.strtab_off, (self.strtab_off or 0) + self.strtab_size
        name_off = self.table["name"]
        versym = self.versym
        version_of = self._version_of
        hlist, blist = hashes.tolist(), bucket.tolist()
        # A crafted table can make every name walk one chain of all the symbols, or match the hash of
        # long names everywhere: past a budget proportional to the tables, the names answer instead.
        steps = 4 * len(chain) + HASH_WALK_FLOOR
        compared = NAME_BYTES_PER_STRTAB_BYTE * self.strtab_size + (1 << 20)
        for k in todo:
            want, j = hlist[k] >> 1, blist[k] - table.symoffset
            while True:
                v = chain[j]
                sym = j + table.symoffset
                steps -= 1
                if steps < 0:
                    self._hash_abandoned = True
                    return None
                if v >> 1 == want and bindable[sym] and base is not None:
                    off = int(name_off[sym])
                    compared -= len(names[k])
                    if compared < 0:
                        self._hash_abandoned = True
                        return None
                    if off < self.strtab_size and self._name_is(base + off, limit, names[k]):
                        if versym is None:
                            out[k].append((sym, None, 1))
                        else:
                            raw = int(versym[sym])
                            out[k].append((sym, version_of.get(raw & 0x7FFF), raw))
                if v & 1:
                    break
                j += 1
        return out

    def _name_is(self, at: int, limit: int, name: bytes) -> bool:
        """Whether the NUL-terminated string at ``at`` (cut at ``limit``, as :meth:`ElfFile.cstring`
        cuts it) is ``name`` (which holds no NUL); reads ``len(name) + 1`` bytes at most."""
        stop = min(self.elf.size, limit)
        end = at + len(name)
        if at >= stop or end > stop:  # past the end of the file: no name (decode_names would refuse it)
            return False
        if self.elf.bytes_at(at, len(name), "DT_STRTAB name") != name:
            return False
        return end == stop or self.elf.bytes_at(end, 1, "DT_STRTAB name")[0] == 0


# dl-lookup.c ALLOWED_STT: NOTYPE, OBJECT, FUNC, COMMON, TLS, GNU_IFUNC
BINDABLE_TYPES = (0, 1, 2, 5, 6, 10)
# Chain steps one lookup() may take beyond four per chain entry before it gives up on the table.
HASH_WALK_FLOOR = 1 << 16
# Names hashed per numpy pass: bounds the uint64 temporaries whatever the names' total length.
HASH_CHUNK_BYTES = 1 << 22


@dataclass(frozen=True)
class GnuHash:
    """A DT_GNU_HASH table (glibc ``_dl_setup_hash``), checked so that every walk stays inside it."""

    symoffset: int
    shift: int
    word_bits: int
    bloom: np.ndarray
    buckets: np.ndarray
    chain: np.ndarray  # hash values of symbols symoffset .. count-1
    bindable: np.ndarray  # per symbol index: a definition a lookup may return

    @cached_property
    def chain_list(self) -> list[int]:
        """The chain as Python ints, made once: every lookup walks it value by value."""
        return self.chain.tolist()  # type: ignore[no-any-return]


def _gnu_hash(syms: DynamicSymbols) -> GnuHash | None:
    elf = syms.elf
    addr = elf.dyn_value("GNU_HASH")
    if addr is None or syms.count == 0:
        return None
    off = elf.vaddr_to_offset(addr, 16)
    if off is None:
        return None
    u4 = np.dtype(elf.endian + "u4")
    try:
        nbuckets, symoffset, nwords, shift = elf.array_at(off, u4, 4, "DT_GNU_HASH").tolist()
        # ld.so divides by nbuckets and masks with nwords - 1: zero would be its crash, not a lookup
        if not nbuckets or not nwords or shift >= 32 or symoffset > syms.count:
            return None
        word = elf.addr_dtype
        bloom = elf.array_at(off + 16, word, nwords, "DT_GNU_HASH bloom")
        b_off = off + 16 + nwords * word.itemsize
        buckets = elf.array_at(b_off, u4, nbuckets, "DT_GNU_HASH buckets")
        chain = elf.array_at(b_off + nbuckets * 4, u4, syms.count - symoffset, "DT_GNU_HASH chain")
    except ElfFormatError:
        return None
    used = buckets[buckets != 0].astype(np.int64)
    if len(used) and (int(used.min()) < symoffset or int(used.max()) >= syms.count):
        return None
    ends = np.flatnonzero(chain & 1)
    if len(used) and not (len(ends) and int(ends[-1]) >= int(used.max()) - symoffset):
        return None  # a chain running past the symbols we know of
    bindable = np.zeros(syms.count, np.bool_)
    bindable[syms._bindable()] = True
    return GnuHash(symoffset, shift, 8 * word.itemsize, bloom, buckets, chain, bindable)


def gnu_hashes(names: list[bytes]) -> np.ndarray:
    """glibc's ``dl_new_hash`` (h = h * 33 + c from 5381, 32 bits) of each name, vectorised:
    h = 5381 * 33**n + sum(c_j * 33**(n-1-j)), computed modulo 2**64 (numpy's unsigned wrap-around)
    and then reduced to 32 bits, which 2**64 preserves."""
    out = np.zeros(len(names), np.uint32)
    start = 0
    while start < len(names):
        stop, total = start, 0
        while stop < len(names) and (stop == start or total + len(names[stop]) <= HASH_CHUNK_BYTES):
            total += len(names[stop])
            stop += 1
        out[start:stop] = _hash_chunk(names[start:stop])
        start = stop
    return out


def _hash_chunk(names: list[bytes]) -> np.ndarray:
    lengths = np.fromiter((len(n) for n in names), np.int64, len(names))
    longest = int(lengths.max()) if len(names) else 0
    powers = np.ones(longest + 1, np.uint64)
    if longest:
        powers[1:] = np.uint64(33)
        powers = np.cumprod(powers, dtype=np.uint64)
    h = np.uint64(5381) * powers[lengths]
    data = np.frombuffer(b"".join(names), np.uint8).astype(np.uint64)
    if len(data):
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        # the exponent of each byte: the bytes after it in its own name
        after = np.repeat(starts + lengths, lengths) - np.arange(len(data)) - 1
        terms = data * powers[after]
        nonempty = lengths > 0
        h[nonempty] += np.add.reduceat(terms, starts[nonempty])
    out: np.ndarray = (h & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    return out


def decode_names(
    elf: ElfFile, base: int | None, size: int, offsets: list[int], table: str, bad: Callable[[int], str]
) -> list[str]:
    """Names at ``offsets`` of the string table at file offset ``base``, decoded once per offset.

    Raises ElfFormatError when the decoded bytes exceed a budget proportional to the table: the
    file backs every name, but overlapping names can still multiply it without bound.

    The terminators are found in one numpy pass over the table and only distinct offsets are
    decoded: libtorch_cpu.so has 86 k dynamic names and a per-name ``find`` was a tenth of a
    warm analysis.  Errors are the ones a name-by-name walk meets first.
    """
    if base is None or not offsets:
        return [bad(i) for i in range(len(offsets))]
    offs = np.asarray(offsets, np.int64)
    end = min(elf.size, base + size)
    region = (
        np.frombuffer(elf.bytes_at(base, max(0, end - base), table), np.uint8) if base < end else np.zeros(0, np.uint8)
    )
    data = region.tobytes()
    valid = offs < size
    uniq, first, inverse = np.unique(offs, return_index=True, return_inverse=True)
    keep = uniq < size  # the bad ones cost no budget
    order = np.argsort(first[keep], kind="stable")  # first-use order: the budget runs out where a walk would
    u_off = uniq[keep][order]
    nul = np.flatnonzero(region == 0)
    pos = np.searchsorted(nul, u_off)
    if len(nul):
        stops = np.where(pos < len(nul), nul[np.minimum(pos, len(nul) - 1)], len(region))
    else:
        stops = np.full(len(u_off), len(region), np.int64)
    stops = np.maximum(stops, u_off)
    outside = u_off >= len(region)  # past the end of the file: cstring's error
    over = np.cumsum(stops - u_off) > NAME_BYTES_PER_STRTAB_BYTE * size + NAME_BYTES_FLOOR
    bad_at = np.flatnonzero(outside | over)
    if len(bad_at):
        k = int(bad_at[0])
        if outside[k]:
            raise elf.fail(f"string offset {base + int(u_off[k]):#x} lies outside its table")
        raise elf.fail(
            f"symbol names overlap implausibly: more than "
            f"{NAME_BYTES_PER_STRTAB_BYTE}x the {table} size ({size:#x} bytes) decoded"
        )
    decoded = [
        data[o:e].decode("utf-8", "surrogateescape") for o, e in zip(u_off.tolist(), stops.tolist(), strict=True)
    ]
    # unique offset -> decoded name, in np.unique's sorted order
    by_sorted: list[str] = [""] * len(uniq)
    for j, name in zip(np.flatnonzero(keep)[order].tolist(), decoded, strict=True):
        by_sorted[j] = name
    return [
        by_sorted[j] if ok else bad(i) for i, (j, ok) in enumerate(zip(inverse.tolist(), valid.tolist(), strict=True))
    ]


def sym_dtype(elf: ElfFile) -> np.dtype:
    e = elf.endian
    if elf.is64:
        return np.dtype(
            [
                ("name", e + "u4"),
                ("info", "u1"),
                ("other", "u1"),
                ("shndx", e + "u2"),
                ("value", e + "u8"),
                ("size", e + "u8"),
            ]
        )
    return np.dtype(
        [
            ("name", e + "u4"),
            ("value", e + "u4"),
            ("size", e + "u4"),
            ("info", "u1"),
            ("other", "u1"),
            ("shndx", e + "u2"),
        ]
    )


def _symbol_array(elf: ElfFile) -> np.ndarray:
    dtype = sym_dtype(elf)
    symtab = elf.dyn_value("SYMTAB")
    sec = next((s for s in elf.sections if s.sh_type == SHT_DYNSYM), None)
    if symtab is None:
        if sec is None:
            return np.zeros(0, dtype)
        return elf.array_at(sec.sh_offset, dtype, sec.sh_size // dtype.itemsize, ".dynsym")
    count = sec.sh_size // dtype.itemsize if sec is not None else _count_from_hash(elf)
    off = elf.vaddr_to_offset(symtab, max(count, 1) * dtype.itemsize)
    if off is None:
        raise elf.fail(f"DT_SYMTAB {symtab:#x} with {count} entries is not backed by the file")
    return elf.array_at(off, dtype, count, "DT_SYMTAB")


def _count_from_hash(elf: ElfFile) -> int:
    e = elf.endian
    h = elf.dyn_value("HASH")
    if h is not None:
        off = elf.vaddr_to_offset(h, 8)
        if off is not None:
            return int(elf.array_at(off, np.dtype(e + "u4"), 2, "DT_HASH")[1])
    g = elf.dyn_value("GNU_HASH")
    if g is None:
        return 0
    off = elf.vaddr_to_offset(g, 16)
    if off is None:
        return 0
    nbuckets, symoffset, bloom_size, _ = elf.array_at(off, np.dtype(e + "u4"), 4, "DT_GNU_HASH").tolist()
    word = 8 if elf.is64 else 4
    b_off = off + 16 + bloom_size * word
    buckets = elf.array_at(b_off, np.dtype(e + "u4"), nbuckets, "DT_GNU_HASH buckets")
    last = int(buckets.max()) if nbuckets else 0
    if last < symoffset:
        return int(symoffset)
    # the last chain ends at the first entry with the low bit set; search the rest of the file
    # for it with numpy instead of one bounds-checked read per entry
    start = b_off + nbuckets * 4 + (last - symoffset) * 4
    rest = elf.array_at(
        start, np.dtype(e + "u4"), min(max(elf.size - start, 0) // 4, MAX_TABLE_ENTRIES), "DT_GNU_HASH chain"
    )
    ends = np.flatnonzero(rest & 1)
    if not len(ends):
        raise elf.fail(f"DT_GNU_HASH chain starting at symbol {last} has no terminator")
    return last + int(ends[0]) + 1


def _strtab(elf: ElfFile) -> tuple[int | None, int]:
    addr, size = elf.dyn_value("STRTAB"), elf.dyn_value("STRSZ") or 0
    if addr is None:
        sec = elf.get_section(".dynstr")
        return (sec.sh_offset, sec.sh_size) if sec else (None, 0)
    return elf.vaddr_to_offset(addr, max(size, 1)), size


def _versym(elf: ElfFile, count: int) -> np.ndarray | None:
    addr = elf.dyn_value("VERSYM")
    if addr is None or count == 0:
        return None
    off = elf.vaddr_to_offset(addr, count * 2)
    if off is None:
        raise elf.fail(f"DT_VERSYM {addr:#x} ({count} entries) is not backed by the file")
    return elf.array_at(off, np.dtype(elf.endian + "u2"), count, "DT_VERSYM")


def _walk(elf: ElfFile, tag: str, num_tag: str) -> tuple[int, int] | None:
    addr, num = elf.dyn_value(tag), elf.dyn_value(num_tag)
    if addr is None or not num:
        return None
    off = elf.vaddr_to_offset(addr, 16)
    if off is None:
        raise elf.fail(f"DT_{tag} {addr:#x} is not backed by the file")
    return off, min(num, 4096)


def _parse_verneed(syms: DynamicSymbols) -> dict[int, VersionNeed]:
    elf = syms.elf
    start = _walk(elf, "VERNEED", "VERNEEDNUM")
    out: dict[int, VersionNeed] = {}
    if start is None:
        return out
    off, num = start
    u2, u4 = np.dtype(elf.endian + "u2"), np.dtype(elf.endian + "u4")
    budget = MAX_VERSION_ENTRIES
    for _ in range(num):
        _, cnt = elf.array_at(off, u2, 2, "verneed entry").tolist()
        vn_file, vn_aux, vn_next = elf.array_at(off + 4, u4, 3, "verneed entry").tolist()
        file = syms.dstr(vn_file)
        aux = off + vn_aux
        budget -= min(cnt, 4096)
        if budget < 0:
            raise elf.fail(f"DT_VERNEED lists more than {MAX_VERSION_ENTRIES} versions")
        for _ in range(min(cnt, 4096)):
            _, flags, other, name_off, nxt = struct.unpack_from(elf.endian + "IHHII", elf.bytes_at(aux, 16, "vernaux"))
            out[other & 0x7FFF] = VersionNeed(file, syms.dstr(name_off), bool(other & VERSYM_HIDDEN), bool(flags & 0x2))
            if not nxt:
                break
            aux += nxt
        if not vn_next:
            break
        off += vn_next
    return out


def _parse_verdef(syms: DynamicSymbols) -> dict[int, tuple[str, bool]]:
    elf = syms.elf
    start = _walk(elf, "VERDEF", "VERDEFNUM")
    out: dict[int, tuple[str, bool]] = {}
    if start is None:
        return out
    off, num = start
    u2, u4 = np.dtype(elf.endian + "u2"), np.dtype(elf.endian + "u4")
    for _ in range(num):
        _, flags, ndx, cnt = elf.array_at(off, u2, 4, "verdef entry").tolist()
        _, vd_aux, vd_next = elf.array_at(off + 8, u4, 3, "verdef entry").tolist()
        if cnt:
            name_off = int(elf.array_at(off + vd_aux, u4, 1, "verdaux")[0])
            out[ndx & 0x7FFF] = (syms.dstr(name_off), bool(flags & VER_FLG_BASE))
        if not vd_next:
            break
        off += vd_next
    return out


# -- relocations ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Relocations:
    """All dynamic relocations as parallel arrays (offset, type, symbol index, addend)."""

    offset: np.ndarray
    rtype: np.ndarray
    sym: np.ndarray
    addend: np.ndarray


def read_relocations(elf: ElfFile) -> Relocations:
    parts = []
    for addr_tag, size_tag in (("RELA", "RELASZ"), ("REL", "RELSZ"), ("JMPREL", "PLTRELSZ")):
        addr, size = elf.dyn_value(addr_tag), elf.dyn_value(size_tag)
        if not addr or not size:
            continue
        rela = addr_tag == "RELA" or (addr_tag == "JMPREL" and elf.dyn_value("PLTREL") == DT["RELA"])
        parts.append(_reloc_block(elf, addr, size, rela))
    relr_addr, relr_size = elf.dyn_value("RELR"), elf.dyn_value("RELRSZ")
    types = RELOC_TYPES.get(elf.e_machine)
    if relr_addr and relr_size and types is not None:
        parts.append(_relr_block(elf, relr_addr, relr_size, types[0]))
    if not parts:
        z = np.zeros(0, np.uint64)
        return Relocations(z, z, z, z.astype(np.int64))
    return Relocations(*(np.concatenate([p[i] for p in parts]) for i in range(4)))


RELR_CHUNK = 1 << 16  # bitmap words expanded at once (each to one row of 63 bits)


def _relr_block(elf: ElfFile, addr: int, size: int, relative: int) -> tuple[np.ndarray, ...]:
    """The RELATIVE relocations packed in DT_RELR (gABI "RELR relative relocation format", glibc
    ``elf/dynamic-link.h`` ``ELF_DYNAMIC_DO_RELR``): an even word is an address to relocate (and
    the next bitmap's base is the word after it); an odd word is a bitmap whose bit *i* (from bit
    1) relocates ``base + (i-1) * wordsize``, after which the base advances by 63 (31) words.  The
    addend is implicit: the word stored at the address, which is what ld.so adds the load base to.
    Vectorised (a table of N words yields at most 63 N relocations, proportional to the file)."""
    w = elf.addr_dtype.itemsize
    off = elf.vaddr_to_offset(addr, size)
    if off is None:
        raise elf.fail(f"DT_RELR table at {addr:#x} (size {size:#x}) is not backed by the file")
    words = elf.array_at(off, elf.addr_dtype, size // w, "DT_RELR table").astype(np.uint64)
    nbits = 8 * w - 1
    idx = np.arange(len(words))
    even = (words & np.uint64(1)) == 0
    last = np.maximum.accumulate(np.where(even, idx, -1)) if len(words) else idx
    bitmap = np.flatnonzero(~even & (last >= 0))  # a bitmap before any address entry is ignored
    offsets = [words[even]]
    if len(bitmap):
        lb = last[bitmap]
        base = words[lb] + np.uint64(w) + (bitmap - lb - 1).astype(np.uint64) * np.uint64(nbits * w)
        shifts = np.arange(1, nbits + 1, dtype=np.uint64)
        for lo in range(0, len(bitmap), RELR_CHUNK):
            b, wd = base[lo : lo + RELR_CHUNK], words[bitmap[lo : lo + RELR_CHUNK]]
            hit = ((wd[:, None] >> shifts[None, :]) & np.uint64(1)).astype(bool)
            row, col = np.nonzero(hit)
            offsets.append(b[row] + col.astype(np.uint64) * np.uint64(w))
    where = np.sort(np.concatenate(offsets))
    return where, np.full(len(where), relative, np.uint64), np.zeros(len(where), np.uint64), _stored_words(elf, where)


def _stored_words(elf: ElfFile, addrs: np.ndarray) -> np.ndarray:
    """The address-sized words the file holds at ``addrs`` (0 where no PT_LOAD backs them)."""
    w = elf.addr_dtype.itemsize
    out = np.zeros(len(addrs), np.int64)
    for seg in elf.segments:
        if seg.p_type != 1 or not seg.p_filesz:
            continue
        m = (addrs >= np.uint64(seg.p_vaddr)) & (addrs + np.uint64(w) <= np.uint64(seg.p_vaddr + seg.p_filesz))
        pos = (addrs[m] - np.uint64(seg.p_vaddr) + np.uint64(seg.p_offset)).astype(np.int64)
        pos = pos[pos + w <= len(elf.data)]
        if not len(pos):
            continue
        raw = elf.data[pos[:, None] + np.arange(w)[None, :]]
        out[np.flatnonzero(m)[: len(pos)]] = raw.copy().view(elf.addr_dtype).ravel().astype(np.int64)
    return out


def _reloc_block(elf: ElfFile, addr: int, size: int, rela: bool) -> tuple[np.ndarray, ...]:
    e = elf.endian
    w = "8" if elf.is64 else "4"
    fields = [("offset", e + "u" + w), ("info", e + "u" + w)] + ([("addend", e + "i" + w)] if rela else [])
    dtype = np.dtype(fields)
    off = elf.vaddr_to_offset(addr, size)
    if off is None:
        raise elf.fail(f"relocation table at {addr:#x} (size {size:#x}) is not backed by the file")
    arr = elf.array_at(off, dtype, size // dtype.itemsize, "relocation table")
    info = arr["info"].astype(np.uint64)
    if elf.is64:
        sym, rtype = info >> np.uint64(32), info & np.uint64(0xFFFFFFFF)
    else:
        sym, rtype = info >> np.uint64(8), info & np.uint64(0xFF)
    addend = arr["addend"].astype(np.int64) if rela else np.zeros(len(arr), np.int64)
    return arr["offset"].astype(np.uint64), rtype, sym, addend


def relative_addends(elf: ElfFile, lo: int, hi: int) -> dict[int, int]:
    """Addends of RELATIVE relocations whose target lies in ``[lo, hi)`` (RELA files store 0 there)."""
    relocs = elf_relocations(elf)
    types = RELOC_TYPES.get(elf.e_machine)
    if types is None or not len(relocs.offset):
        return {}
    m = (relocs.rtype == types[0]) & (relocs.offset >= lo) & (relocs.offset < hi)
    return {int(o): int(a) for o, a in zip(relocs.offset[m], relocs.addend[m], strict=True)}


def elf_relocations(elf: ElfFile) -> Relocations:
    """The dynamic relocations of ``elf``, read once per file."""
    return elf.derived(read_relocations)


def dynamic_symbols(elf: ElfFile) -> DynamicSymbols:
    """The dynamic symbol table of ``elf``, read once per file."""
    return elf.derived(DynamicSymbols)


def read_pointer_array(elf: ElfFile, addr_tag: str, size_tag: str) -> tuple[int, ...]:
    """Entries of a DT_INIT_ARRAY-style table, with RELATIVE relocation addends applied (a RELA
    file stores 0 in the slots; ld.so's ``_dl_relocate_object`` writes the addend there)."""
    addr, size = elf.dyn_value(addr_tag), elf.dyn_value(size_tag)
    if not addr or not size:
        return ()
    step = elf.addr_dtype.itemsize
    n = size // step
    off = elf.vaddr_to_offset(addr, n * step)
    if off is None:
        return ()
    values = elf.array_at(off, elf.addr_dtype, n, f"DT_{addr_tag}").tolist()
    addends = relative_addends(elf, addr, addr + n * step)
    return tuple(addends.get(addr + i * step, v) for i, v in enumerate(values))


def init_array(elf: ElfFile) -> tuple[int, ...]:
    """The DT_INIT_ARRAY constructors, relocated (once per file: every closure of a run roots at them)."""
    return elf.derived(_init_array)


def fini_array(elf: ElfFile) -> tuple[int, ...]:
    """The DT_FINI_ARRAY destructors, relocated (once per file)."""
    return elf.derived(_fini_array)


def _init_array(elf: ElfFile) -> tuple[int, ...]:
    return read_pointer_array(elf, "INIT_ARRAY", "INIT_ARRAYSZ")


def _fini_array(elf: ElfFile) -> tuple[int, ...]:
    return read_pointer_array(elf, "FINI_ARRAY", "FINI_ARRAYSZ")


def got_slot_symbols(elf: ElfFile) -> dict[int, int]:
    """GOT slot address → dynamic symbol index, from JUMP_SLOT and GLOB_DAT relocations."""
    relocs = elf_relocations(elf)
    types = RELOC_TYPES.get(elf.e_machine)
    if types is None:
        return {}
    m = ((relocs.rtype == types[1]) | (relocs.rtype == types[2])) & (relocs.sym != 0)
    count = dynamic_symbols(elf).count
    bad = np.flatnonzero(m & (relocs.sym >= np.uint64(count)))
    if len(bad):  # callers index the symbol table with these
        i = int(bad[0])
        raise elf.fail(
            f"relocation at {int(relocs.offset[i]):#x} refers to symbol {int(relocs.sym[i])} "
            f"but the dynamic symbol table has {count} entries"
        )
    # tolist() makes the Python ints in C (a comprehension over numpy scalars took 29 ms for libtorch_cpu.so)
    return dict(zip(relocs.offset[m].tolist(), relocs.sym[m].tolist(), strict=True))


def plt_stub_symbols(elf: ElfFile) -> dict[int, int]:
    """PLT stub address → dynamic symbol index, by decoding the GOT slot each stub jumps through.

    Decoding the stub (rather than assuming "stub *i* ↔ relocation *i*") handles ``.plt``,
    IBT's ``.plt.sec`` and ``.plt.got`` alike, and never trusts section ordering.
    """
    slots = elf.derived(got_slot_symbols)  # the scanner asks for both tables: one decode of the relocations
    if not slots:
        return {}
    out: dict[int, int] = {}
    for sec in elf.sections:
        if not sec.name.startswith(".plt") or sec.sh_size == 0 or sec.sh_type == 8:
            continue
        code = np.frombuffer(elf.section_bytes(sec), np.uint8)
        if elf.e_machine == EM_X86_64:
            out.update(_x86_plt(code, sec.sh_addr, sec.sh_entsize or 16, slots))
        elif elf.e_machine == EM_AARCH64:
            out.update(_a64_plt(code, sec.sh_addr, slots, elf.endian))
    return out


def _x86_plt(code: np.ndarray, base: int, entsize: int, slots: dict[int, int]) -> dict[int, int]:
    """Each stub's first ``jmp *disp32(%rip)`` (ff 25) that lands on a GOT slot with a symbol, the
    stub being the ``entsize`` entry the jump lies in.  Vectorised (libtorch_cpu.so has 30 k stubs),
    in offsets from ``base`` so that no address of a hostile file can overflow 64 bits."""
    if len(code) < 6 or not slots:
        return {}
    hits = np.flatnonzero((code[:-5] == 0xFF) & (code[1:-4] == 0x25))
    disp = np.ascontiguousarray(code[hits[:, None] + np.arange(2, 6)]).view("<i4").ravel().astype(np.int64)
    # a jump reaches base + offset with |offset| < 2**41: only the slots in that window can match
    lo, span = max(0, base - (1 << 41)), 1 << 42
    keys = np.fromiter(slots.keys(), np.uint64, len(slots))
    near = np.flatnonzero((keys >= np.uint64(lo)) & (keys - np.uint64(lo) <= np.uint64(span)))
    if not len(near):
        return {}
    rel = (keys[near] - np.uint64(lo)).astype(np.int64)
    syms = np.fromiter(slots.values(), np.int64, len(slots))[near]
    order = np.argsort(rel, kind="stable")
    rel, syms = rel[order], syms[order]
    target = hits.astype(np.int64) + 6 + disp + (base - lo)
    k = np.minimum(np.searchsorted(rel, target), len(rel) - 1)
    found = rel[k] == target
    size = min(entsize, len(code))  # a larger entry size puts every jump in the first entry, as this does
    stub = (hits[found].astype(np.int64) // size) * size
    # the first jump of a stub wins (hits are in address order), as a setdefault walk would give
    first_stub, first = np.unique(stub, return_index=True)
    return {base + off: sym for off, sym in zip(first_stub.tolist(), syms[k[found]][first].tolist(), strict=True)}


def _a64_plt(code: np.ndarray, base: int, slots: dict[int, int], endian: str) -> dict[int, int]:
    n = len(code) // 4
    words = np.frombuffer(code[: n * 4].tobytes(), np.dtype(endian + "u4"))
    out: dict[int, int] = {}
    adrp = np.nonzero((words[:-1] & 0x9F00001F) == 0x90000010)[0]  # adrp x16, page
    for i in adrp.tolist():
        ldr = int(words[i + 1])
        if ldr & 0xFFC003FF != 0xF9400211:  # ldr x17, [x16, #imm]
            continue
        insn = int(words[i])
        imm = (((insn >> 5) & 0x7FFFF) << 2) | ((insn >> 29) & 3)
        imm -= (1 << 21) if imm & (1 << 20) else 0
        pc = base + 4 * i
        slot = (pc & ~0xFFF) + (imm << 12) + ((ldr >> 10) & 0xFFF) * 8
        if slot in slots:
            start = pc - 4 if i and int(words[i - 1]) == 0xD503245F else pc  # preceding `bti c`
            out.setdefault(start, slots[slot])
    return out
