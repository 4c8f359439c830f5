"""Static syscall extraction for one ELF shared object (x86-64 and AArch64).

Pipeline of :func:`scan_library`:

1. *Prefilter* every executable section (PLT sections excluded) with numpy: ``0f 05``
   (``syscall``), ``cd 80`` (``int 0x80``), ``0f 34`` (``sysenter``) on x86-64, aligned
   ``svc`` words on AArch64; and every direct branch — ``e8``/``e9``/``0f 8x`` rel32 and
   ``ff 15``/``ff 25`` RIP-relative GOT calls on x86-64, ``bl``/``b`` and ``adrp``+``ldr``
   GOT loads on AArch64 — whose target is a function start, a PLT stub or a GOT slot.
2. The branch candidates become the call graph (:class:`~uk_depscan.syscalls.callgraph.CallGraph`).
3. Only functions containing a candidate syscall instruction or a call to libc's ``syscall()``
   are decoded with capstone, from the function start; a candidate that is not an
   instruction boundary of that decode is dropped (a byte pair inside another instruction).
4. The number register (``rax``/``x8``; ``rdi``/``x0`` at ``syscall()`` calls) is tracked
   backwards inside the function (:func:`uk_depscan.syscalls.disasm.track`).  A number that is the
   function's own argument makes the function a *local wrapper*; its callers are then
   decoded and their argument tracked, to a fixpoint (wrappers of wrappers).

The result is cached under the file's content identity (:mod:`uk_depscan.syscalls.cache`).

API: ``scan_library(elf, no_cache=False) -> LibraryScan`` with ``.sites`` (:class:`SyscallSite`),
``.wrappers`` (:class:`LocalWrapper`), ``.graph`` (:class:`~uk_depscan.syscalls.callgraph.CallGraph`),
``.exports`` ((key, address) of exported functions), ``.reachable_from(addresses)`` →
(numbers, import keys, sites) and ``.export_summary()`` → {export key: (numbers, import keys)}.

Approximations: the call graph takes every ``e8``/``e9``/``0f 8x`` rel32 whose target is exactly a
known function start without decoding the source (a byte pattern inside another instruction that
happens to point at a function start adds a spurious edge); calls through registers, vtables and
relocated function pointers are not edges, except the address-taken references described at
``ADDRESS_TAKEN_EDGES``.  Number tracking is intra-procedural (plus the wrapper fixpoint).
"""

from __future__ import annotations

import logging
import mmap
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from uk_depscan.elf.file import EM_AARCH64, EM_X86_64
from uk_depscan.elf.frames import SHT_SYMTAB, function_starts
from uk_depscan.elf.symbols import (
    STT_FUNC,
    STT_GNU_IFUNC,
    dynamic_symbols,
    got_slot_symbols,
    plt_stub_symbols,
    sym_dtype,
)
from uk_depscan.syscalls import cache as scan_cache
from uk_depscan.syscalls.callgraph import CallGraph
from uk_depscan.syscalls.disasm import (
    Arch,
    Function,
    TrackResult,
    decode_function,
    get_arch,
    instruction_starts,
    looks_like_data,
    track,
)

if TYPE_CHECKING:
    from uk_depscan.elf.file import ElfFile

log = logging.getLogger(__name__)

ENGINE_VERSION = "3"  # bump whenever results can change: it is part of the cache key
SYSCALL_IMPORTS = frozenset({"syscall"})
MAX_FUNCTION_BYTES = 4 << 20  # decode at most this much of one function
WINDOW = 4096  # verified window when no function start precedes a site
WRAPPER_ROUNDS = 6
CHUNK = 1 << 25

KIND_CALL, KIND_JMP, KIND_JCC, KIND_GOTCALL, KIND_GOTJMP = 0, 1, 2, 3, 4
# address-taken references: `lea reg, [rip+func]` / `adrp+add` (function start or PLT stub) and
# `mov reg, [rip+GOT]` of an imported function.  They become "may call" edges (callbacks handed
# to pthread_create, qsort, atexit…); set ADDRESS_TAKEN_EDGES = False for call/jump edges only.
KIND_ADDR, KIND_GOTLOAD = 5, 6
ADDRESS_TAKEN_EDGES = True
CALL_KINDS = (KIND_CALL, KIND_JMP, KIND_JCC, KIND_GOTCALL, KIND_GOTJMP)


@dataclass(frozen=True)
class SyscallSite:
    address: int
    kind: str  # direct | int80 | sysenter | svc | wrapper_call | local_wrapper_call
    numbers: tuple[int, ...]
    confidence: str  # exact | multiple | unknown
    reason: str
    function: str | None  # mangled name of the containing function (None: stripped)
    function_addr: int | None
    via: str | None = None  # import key (syscall@GLIBC_2.2.5) or local wrapper name

    def to_json(self) -> dict:
        return {
            "address": self.address,
            "kind": self.kind,
            "numbers": list(self.numbers),
            "confidence": self.confidence,
            "reason": self.reason,
            "function": self.function,
            "function_addr": self.function_addr,
            "via": self.via,
        }


@dataclass(frozen=True)
class LocalWrapper:
    """A function forwarding its argument ``arg_index`` as the syscall number."""

    address: int
    name: str | None
    arg_index: int
    via: str  # 'syscall instruction' / import key / another wrapper's name

    def to_json(self) -> dict:
        return {"address": self.address, "name": self.name, "arg_index": self.arg_index, "via": self.via}


# Below-syscall request codes: (imported function, argument index) whose value decides what the
# kernel is asked to do — ioctl request, fcntl command, prctl option, setsockopt level/optname.
REQUEST_ARGS = (("ioctl", 1), ("fcntl", 1), ("fcntl64", 1), ("prctl", 0), ("setsockopt", 1), ("setsockopt", 2))


@dataclass(frozen=True)
class RequestSite:
    """A call to ioctl/fcntl/prctl/setsockopt and the value its request argument can hold."""

    address: int
    call: str
    arg_index: int
    values: tuple[int, ...]
    exact: bool
    function: str | None

    def to_json(self) -> dict:
        return {
            "address": self.address,
            "call": self.call,
            "arg_index": self.arg_index,
            "values": list(self.values),
            "exact": self.exact,
            "function": self.function,
        }


@dataclass(frozen=True, eq=False)  # holds numpy arrays: identity equality and hash
class LibraryScan:
    path: str
    arch: str
    cache_key: str
    sites: tuple[SyscallSite, ...]
    wrappers: tuple[LocalWrapper, ...]
    graph: CallGraph
    exports: tuple[tuple[str, int], ...]  # (export key, address) of defined functions
    stats: dict = field(default_factory=dict, compare=False)
    from_cache: bool = False
    requests: tuple[RequestSite, ...] = ()

    # -- queries ---------------------------------------------------------------------
    @property
    def numbers(self) -> frozenset[int]:
        return frozenset(n for s in self.sites for n in s.numbers)

    @cached_property
    def _site_nodes(self) -> np.ndarray:
        """Call-graph function node of every site (-1: outside any known function)."""
        addrs = np.asarray(
            [s.function_addr if s.function_addr is not None else s.address for s in self.sites], np.uint64
        )
        starts = self.graph.func_starts
        if not len(addrs) or not len(starts):
            return np.full(len(addrs), -1, np.int64)
        return np.searchsorted(starts, addrs, side="right").astype(np.int64) - 1

    def reachable_from(self, root_addresses: Iterable[int]) -> tuple[set[int], set[str], list[SyscallSite]]:
        """(syscall numbers, import keys, sites) reachable from the functions containing
        ``root_addresses`` (function starts, exports, init_array entries…)."""
        g = self.graph
        roots = np.fromiter((int(a) for a in root_addresses), np.uint64)
        nodes = np.searchsorted(g.func_starts, roots, side="right").astype(np.int64) - 1
        mask = g.reachable(nodes[nodes >= 0])
        sn = self._site_nodes
        sites = [s for s, node in zip(self.sites, sn.tolist()) if node >= 0 and mask[node]]
        imports = {g.import_keys[i] for i in np.flatnonzero(mask[g.n_funcs :]).tolist()}
        return {n for s in sites for n in s.numbers}, imports, sites

    def export_summary(self) -> dict[str, tuple[frozenset[int], frozenset[str]]]:
        """Per exported function: (syscall numbers, import keys) it can reach.  Meant for small
        libraries (libc, libgomp): SCC condensation with Python-int bitsets over all nodes."""
        g = self.graph
        numbers = sorted(self.numbers)
        nbit = {n: i for i, n in enumerate(numbers)}
        base = len(numbers)
        node_bits: dict[int, int] = {}
        for s, node in zip(self.sites, self._site_nodes.tolist()):
            if node < 0:
                continue
            b = 0
            for n in s.numbers:
                b |= 1 << nbit[n]
            node_bits[node] = node_bits.get(node, 0) | b
        for j in range(len(g.import_keys)):
            node_bits[g.n_funcs + j] = 1 << (base + j)
        closure = g.closure_bits(node_bits)
        out: dict[str, tuple[frozenset[int], frozenset[str]]] = {}
        decoded: dict[int, tuple[frozenset[int], frozenset[str]]] = {}
        for key, addr in self.exports:
            node = g.function_at(addr)
            bits = closure[node] if node is not None else 0
            val = decoded.get(bits)
            if val is None:
                val = decoded[bits] = (
                    frozenset(numbers[i] for i in _bits(bits & ((1 << base) - 1))),
                    frozenset(g.import_keys[i] for i in _bits(bits >> base)),
                )
            out[key] = val
        return out

    def to_json(self) -> dict:
        return {
            "path": self.path,
            "arch": self.arch,
            "cache_key": self.cache_key,
            "sites": [s.to_json() for s in self.sites],
            "wrappers": [w.to_json() for w in self.wrappers],
            "import_keys": list(self.graph.import_keys),
            "exports": [list(e) for e in self.exports],
            "stats": self.stats,
            "requests": [r.to_json() for r in self.requests],
        }


def _bits(x: int) -> list[int]:
    """Indices of the set bits of ``x`` (visiting set bits only)."""
    out = []
    while x:
        low = x & -x
        out.append(low.bit_length() - 1)
        x ^= low
    return out


# ---------------------------------------------------------------------------------------------
class LazySymbolizer:
    """Function names from ``.symtab`` and ``.dynsym``, decoding only the names asked for."""

    def __init__(self, elf: ElfFile) -> None:
        self.elf = elf
        addrs, sizes, noffs, strbase, strsize = [], [], [], [], []
        dtype = sym_dtype(elf)
        symtab = next((s for s in elf.sections if s.sh_type == SHT_SYMTAB), None)
        tables = []
        if symtab is not None and 0 < symtab.sh_link < len(elf.sections):
            strsec = elf.sections[symtab.sh_link]
            arr = elf.array_at(symtab.sh_offset, dtype, symtab.sh_size // dtype.itemsize, ".symtab")
            tables.append((arr, strsec.sh_offset, strsec.sh_size))
        dyn = dynamic_symbols(elf)
        if dyn.count and dyn.strtab_off is not None:
            tables.append((dyn.table, dyn.strtab_off, dyn.strtab_size))
        for arr, soff, ssize in tables:
            typ = arr["info"] & 0xF
            m = ((typ == STT_FUNC) | (typ == STT_GNU_IFUNC)) & (arr["shndx"] != 0) & (arr["value"] != 0)
            addrs.append(arr["value"][m].astype(np.uint64))
            sizes.append(arr["size"][m].astype(np.uint64))
            noffs.append(arr["name"][m].astype(np.int64))
            strbase.append(np.full(int(m.sum()), soff, np.int64))
            strsize.append(np.full(int(m.sum()), ssize, np.int64))
        if addrs:
            a = np.concatenate(addrs)
            order = np.argsort(a, kind="stable")
            self.addrs = a[order]
            self.sizes = np.concatenate(sizes)[order]
            self.noff = np.concatenate(noffs)[order]
            self.sbase = np.concatenate(strbase)[order]
            self.ssize = np.concatenate(strsize)[order]
        else:
            self.addrs = self.sizes = np.zeros(0, np.uint64)
            self.noff = self.sbase = self.ssize = np.zeros(0, np.int64)
        self._cache: dict[int, str | None] = {}

    def _decode(self, i: int) -> str:
        off, base, size = int(self.noff[i]), int(self.sbase[i]), int(self.ssize[i])
        if off >= size:
            return ""
        return self.elf.cstring(base + off, base + size).decode("utf-8", "surrogateescape")

    def name_at(self, addr: int) -> str | None:
        """Name of a function starting exactly at ``addr`` (prefer a name without leading '_')."""
        if addr in self._cache:
            return self._cache[addr]
        lo = int(np.searchsorted(self.addrs, np.uint64(addr)))
        hi = int(np.searchsorted(self.addrs, np.uint64(addr), side="right"))
        names = [n for n in (self._decode(i) for i in range(lo, hi)) if n]
        name = sorted(names, key=lambda n: (n.startswith("_"), n))[0] if names else None
        self._cache[addr] = name
        return name


# ---------------------------------------------------------------------------------------------
def _advise_willneed(elf: ElfFile, ranges: list[tuple[int, int]]) -> None:
    """madvise(MADV_WILLNEED) the code about to be scanned: faulting 280 MB of .text in page by
    page costs more than the scan itself.  (Uses the ElfFile's mmap; a no-op where unsupported.)"""
    mm = getattr(elf, "_map", None)
    advice = getattr(mmap, "MADV_WILLNEED", None)
    if not isinstance(mm, mmap.mmap) or advice is None:
        return
    for vaddr, size in ranges:
        off = elf.vaddr_to_offset(vaddr, size)
        if off is None or size <= 0:
            continue
        start = off & ~(mmap.PAGESIZE - 1)
        try:
            mm.madvise(advice, start, min(len(mm) - start, size + (off - start)))
        except (OSError, ValueError):
            return


@dataclass
class _Region:
    name: str
    vaddr: int
    code: np.ndarray  # uint8

    @property
    def end(self) -> int:
        return self.vaddr + len(self.code)


class _Scanner:
    def __init__(self, elf: ElfFile) -> None:
        self.elf = elf
        if elf.e_machine == EM_X86_64 and elf.is64:
            self.arch: Arch = get_arch("x86_64")
        elif elf.e_machine == EM_AARCH64 and elf.is64:
            self.arch = get_arch("aarch64")
        else:
            raise elf.fail(f"syscall scan supports x86-64 and AArch64 only, not {elf.machine_name}")
        self.x86 = self.arch.name == "x86_64"
        self.regions = [
            _Region(n, va, np.frombuffer(mv, np.uint8))
            for n, va, mv in elf.iter_exec_regions()
            if not n.startswith(".plt")
        ]
        self.plt_regions = [(va, va + len(mv)) for n, va, mv in elf.iter_exec_regions() if n.startswith(".plt")]
        _advise_willneed(elf, [(r.vaddr, len(r.code)) for r in self.regions])
        self.dyn = dynamic_symbols(elf)
        self.names = LazySymbolizer(elf)
        starts = function_starts(elf)
        in_code = np.zeros(len(starts), bool)
        for r in self.regions:
            in_code |= (starts >= np.uint64(r.vaddr)) & (starts < np.uint64(r.end))
        self.starts = starts[in_code]
        lo_hi = [(r.vaddr, r.end) for r in self.regions] + self.plt_regions
        slots = list(got_slot_symbols(elf))
        if slots:
            lo_hi.append((min(slots), max(slots) + 8))
        self.target_lo = min((a for a, _ in lo_hi), default=0)
        self.target_hi = max((b for _, b in lo_hi), default=0)
        self.stats: dict = {}
        self._funcs: dict[int, Function] = {}

    # -- helpers -----------------------------------------------------------------------
    def region_of(self, addr: int) -> _Region | None:
        for r in self.regions:
            if r.vaddr <= addr < r.end:
                return r
        return None

    def func_start_of(self, addr: int) -> int | None:
        i = int(np.searchsorted(self.starts, np.uint64(addr), side="right")) - 1
        return int(self.starts[i]) if i >= 0 else None

    def func_extent(self, start: int) -> int:
        i = int(np.searchsorted(self.starts, np.uint64(start), side="right"))
        r = self.region_of(start)
        end = r.end if r is not None else start
        if i < len(self.starts):
            end = min(end, int(self.starts[i]))
        return min(end, start + MAX_FUNCTION_BYTES)

    def decode(self, start: int) -> Function | None:
        f = self._funcs.get(start)
        if f is None:
            r = self.region_of(start)
            if r is None:
                return None
            end = self.func_extent(start)
            f = decode_function(self.arch, r.code[start - r.vaddr : end - r.vaddr].tobytes(), start)
            self._funcs[start] = f
            self.stats["decoded_functions"] = self.stats.get("decoded_functions", 0) + 1
            self.stats["decoded_insns"] = self.stats.get("decoded_insns", 0) + len(f.insns)
        return f

    def containing(self, addr: int) -> tuple[int, Function] | None:
        """The decoded function (or verified window) containing the instruction at ``addr``."""
        start = self.func_start_of(addr)
        r = self.region_of(addr)
        if r is None:
            return None
        if start is None or start < r.vaddr or addr - start >= MAX_FUNCTION_BYTES:
            start = self._window_start(r, addr)
            if start is None:
                return None
        f = self.decode(start)
        if f is None or f.at(addr) is None:
            return None
        return start, f

    def _window_start(self, r: _Region, addr: int) -> int | None:
        """A decode start before ``addr`` from which several offsets agree ``addr`` is a boundary."""
        if not self.x86:
            return max(r.vaddr, (addr - WINDOW) & ~3)
        lo = max(r.vaddr, addr - WINDOW)
        code = r.code[lo - r.vaddr : addr - r.vaddr + 16]
        agree = [
            s
            for s in (lo, lo + 1, lo + 2, lo + 3, lo + 7)
            if addr in instruction_starts(self.arch, code[s - lo :], s, [addr])
        ]
        return lo if len(agree) >= 4 and lo in agree else None

    def window_says_boundary(self, addr: int) -> bool:
        r = self.region_of(addr)
        if r is None:
            return False
        lo = max(r.vaddr, addr - 64)
        if addr - lo < 16:
            return True
        code = r.code[lo - r.vaddr : addr - r.vaddr + 16].tobytes()
        for s in (lo, lo + 1, lo + 3, lo + 6, lo + 10):
            if addr in instruction_starts(self.arch, code[s - lo :], s, [addr]):
                return True
        return False

    def name_of(self, start: int | None) -> str | None:
        return None if start is None else self.names.name_at(start)

    # -- prefilter ---------------------------------------------------------------------
    def direct_candidates(self) -> list[tuple[int, str]]:
        out: list[tuple[int, str]] = []
        for r in self.regions:
            c = r.code
            if self.x86:
                if len(c) < 2:
                    continue
                for lo in range(0, len(c) - 1, CHUNK):
                    hi = min(len(c) - 1, lo + CHUNK)
                    a, b = c[lo:hi], c[lo + 1 : hi + 1]
                    for pos in (np.flatnonzero((a == 0x0F) & (b == 0x05)) + lo).tolist():
                        out.append((r.vaddr + pos, "direct"))
                    for pos in (np.flatnonzero((a == 0xCD) & (b == 0x80)) + lo).tolist():
                        out.append((r.vaddr + pos, "int80"))
                    for pos in (np.flatnonzero((a == 0x0F) & (b == 0x34)) + lo).tolist():
                        out.append((r.vaddr + pos, "sysenter"))
            else:
                words = self._words(r)
                for i in np.flatnonzero((words & 0xFFE0001F) == 0xD4000001).tolist():
                    out.append((r.vaddr + 4 * i, "svc"))
        return out

    def _words(self, r: _Region) -> np.ndarray:
        skip = (-r.vaddr) % 4
        n = (len(r.code) - skip) // 4
        return np.frombuffer(
            r.code[skip : skip + 4 * n].tobytes() if skip else r.code[: 4 * n], np.dtype(self.elf.endian + "u4")
        )

    def branch_candidates(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(site address, target address or GOT slot, kind) of every direct branch/GOT call."""
        pos_l, tgt_l, kind_l = [], [], []
        for r in self.regions:
            if self.x86:
                self._x86_branches(r, pos_l, tgt_l, kind_l)
            else:
                self._a64_branches(r, pos_l, tgt_l, kind_l)
        if not pos_l:
            z = np.zeros(0, np.uint64)
            return z, z, np.zeros(0, np.int8)
        return np.concatenate(pos_l), np.concatenate(tgt_l), np.concatenate(kind_l)

    def _x86_branches(self, r: _Region, pos_l: list, tgt_l: list, kind_l: list) -> None:
        c = r.code
        n = len(c)
        if n < 6:
            return
        # every byte offset viewed as a little-endian int32 (an unaligned, 1-byte-strided view):
        # one gather per candidate instead of four byte gathers
        i32 = np.ndarray(shape=(n - 3,), dtype="<i4", buffer=c, offset=0, strides=(1,))
        # reused scratch buffers: fresh 32 MB temporaries per chunk cost more in page faults
        # than the comparisons themselves
        tmp = np.empty(min(CHUNK, n), np.uint8)
        hit = np.empty(min(CHUNK, n), bool)

        def where(a: np.ndarray, mask: int | None, value: int) -> np.ndarray:
            t, h = tmp[: len(a)], hit[: len(a)]
            if mask is None:
                np.equal(a, value, out=h)
            else:
                np.bitwise_and(a, mask, out=t)
                np.equal(t, value, out=h)
            return np.flatnonzero(h)

        for lo in range(0, n - 5, CHUNK):
            hi = min(n - 5, lo + CHUNK)
            a = c[lo:hi]
            p_call = where(a, 0xFE, 0xE8) + lo
            p0f = where(a, None, 0x0F) + lo
            p0f = p0f[(c[p0f + 1] & 0xF0) == 0x80]
            pff = where(a, None, 0xFF) + lo
            pff = pff[(c[pff + 1] == 0x15) | (c[pff + 1] == 0x25)]
            groups = [(p_call, 5, None), (p0f, 6, KIND_JCC), (pff, 6, None)]
            if ADDRESS_TAKEN_EDGES:
                # REX.W (+R) 8d/8b modrm(mod=00, rm=101): lea/mov r64, [rip+disp32]
                prex = where(a, 0xFB, 0x48) + lo
                prex = prex[((c[prex + 1] == 0x8D) | (c[prex + 1] == 0x8B)) & ((c[prex + 2] & 0xC7) == 0x05)]
                groups.append((prex, 7, None))
            for p, width, kinds in groups:
                p = p[p + width <= n]  # a 7-byte lea/mov candidate may start 6 bytes before the end
                if not len(p):
                    continue
                disp = i32[p + (width - 4)]
                tgt = p.astype(np.int64) + (r.vaddr + width) + disp.astype(np.int64)
                inr = (tgt >= self.target_lo) & (tgt < self.target_hi)
                p, tgt = p[inr], tgt[inr].astype(np.uint64)
                if kinds is None:
                    if width == 5:
                        k = np.where(c[p] == 0xE8, KIND_CALL, KIND_JMP).astype(np.int8)
                    elif width == 7:
                        k = np.where(c[p + 1] == 0x8D, KIND_ADDR, KIND_GOTLOAD).astype(np.int8)
                    else:
                        k = np.where(c[p + 1] == 0x15, KIND_GOTCALL, KIND_GOTJMP).astype(np.int8)
                else:
                    k = np.full(len(p), kinds, np.int8)
                pos_l.append(p.astype(np.uint64) + np.uint64(r.vaddr))
                tgt_l.append(tgt)
                kind_l.append(k)

    def _a64_branches(self, r: _Region, pos_l: list, tgt_l: list, kind_l: list) -> None:
        words = self._words(r)
        base = r.vaddr + ((-r.vaddr) % 4)
        idx = np.flatnonzero((words & 0x7C000000) == 0x14000000)  # b / bl
        if len(idx):
            w = words[idx]
            imm = (w & 0x03FFFFFF).astype(np.int64)
            imm -= (imm & 0x02000000) << 1
            pos = idx.astype(np.int64) * 4 + base
            pos_l.append(pos.astype(np.uint64))
            tgt_l.append((pos + imm * 4).astype(np.uint64))
            kind_l.append(np.where((w >> 31) == 1, KIND_CALL, KIND_JMP).astype(np.int8))
        # adrp xN, page ; ldr xT, [xN, #off]  (next word): a GOT load
        # adrp xN, page ; add xD, xN, #lo12 : a function address (callback)
        if ADDRESS_TAKEN_EDGES and len(words) > 1:
            adrp = np.flatnonzero((words[:-1] & 0x9F000000) == 0x90000000)
            add = words[adrp + 1]
            ok = ((add & 0xFFC00000) == 0x91000000) & (((add >> 5) & 0x1F) == (words[adrp] & 0x1F))
            adrp = adrp[ok]
            if len(adrp):
                pc, page = _adrp_pages(words, adrp, base)
                tgt = page + ((words[adrp + 1].astype(np.int64) >> 10) & 0xFFF)
                pos_l.append((pc + 4).astype(np.uint64))
                tgt_l.append(tgt.astype(np.uint64))
                kind_l.append(np.full(len(adrp), KIND_ADDR, np.int8))
        # (the ldr may come one or two words after the adrp)
        for gap in (1, 2):
            if len(words) <= gap:
                continue
            adrp = np.flatnonzero((words[:-gap] & 0x9F000000) == 0x90000000)
            ldr = words[adrp + gap]
            ok = ((ldr & 0xFFC00000) == 0xF9400000) & (((ldr >> 5) & 0x1F) == (words[adrp] & 0x1F))
            adrp = adrp[ok]
            if len(adrp):
                pc, page = _adrp_pages(words, adrp, base)
                slot = page + ((words[adrp + gap].astype(np.int64) >> 10) & 0xFFF) * 8
                pos_l.append((pc + 4 * gap).astype(np.uint64))  # the ldr
                tgt_l.append(slot.astype(np.uint64))
                kind_l.append(np.full(len(adrp), KIND_GOTCALL, np.int8))


# ---------------------------------------------------------------------------------------------
def _adrp_pages(words: np.ndarray, idx: np.ndarray, base: int) -> tuple[np.ndarray, np.ndarray]:
    """(pc, page) of the ``adrp`` instructions at word indices ``idx``: page = (pc & ~0xfff) + imm21 << 12."""
    w = words[idx].astype(np.int64)
    imm = (((w >> 5) & 0x7FFFF) << 2) | ((w >> 29) & 3)
    imm -= (imm & (1 << 20)) << 1
    pc = idx.astype(np.int64) * 4 + base
    return pc, (pc & ~0xFFF) + (imm << 12)


def scan_library(elf: ElfFile, *, no_cache: bool = False) -> LibraryScan:
    """Every syscall site of ``elf`` with recovered numbers, local wrappers and the call graph."""
    if no_cache:
        return _scan(elf, "")
    slot = scan_cache.lookup(elf, ENGINE_VERSION)
    if slot.hit is not None:
        return _from_cache(elf, slot.key, slot.hit)
    scan = _scan(elf, slot.key)
    scan_cache.store_scan(slot, elf, scan)
    return scan


def _from_cache(elf: ElfFile, key: str, hit: scan_cache.CachedScan) -> LibraryScan:
    """Build the scan from an entry :func:`uk_depscan.syscalls.cache.decode` has validated."""
    graph = CallGraph(hit.func_starts, hit.indptr, hit.indices, hit.import_keys)
    return LibraryScan(
        str(elf.name),
        hit.arch,
        key,
        tuple(SyscallSite(**s) for s in hit.sites),
        tuple(LocalWrapper(**w) for w in hit.wrappers),
        graph,
        hit.exports,
        dict(hit.stats),
        True,
        tuple(RequestSite(**r) for r in hit.requests),
    )


def _scan(elf: ElfFile, key: str) -> LibraryScan:
    t0 = time.perf_counter()
    sc = _Scanner(elf)
    arch = sc.arch
    dyn = sc.dyn
    stats = sc.stats

    # --- imports, PLT stubs and GOT slots ------------------------------------------------------
    plt = plt_stub_symbols(elf)
    got = got_slot_symbols(elf)
    table = dyn.table
    defined = (table["shndx"] != 0) if dyn.count else np.zeros(0, bool)
    imported_idx: dict[int, int] = {}
    import_keys: list[str] = []

    def import_node(symidx: int) -> int:
        j = imported_idx.get(symidx)
        if j is None:
            j = imported_idx[symidx] = len(import_keys)
            import_keys.append(dyn.import_of(symidx).key)
        return j

    syscall_syms = _symbols_named(elf, dyn, SYSCALL_IMPORTS, ~defined)
    t1 = time.perf_counter()

    # --- branch candidates -> call graph ----------------------------------------------------------
    pos, tgt, kind = sc.branch_candidates()
    stats["branch_candidates"] = len(pos)
    starts = sc.starts
    nf = len(starts)
    is_got = (kind == KIND_GOTCALL) | (kind == KIND_GOTJMP) | (kind == KIND_GOTLOAD)
    # direct targets: function starts
    ti = np.zeros(len(tgt), np.int64)
    hit_func = np.zeros(len(tgt), bool)
    if nf:
        inr = np.flatnonzero((~is_got) & (tgt >= starts[0]) & (tgt <= starts[-1]))
        k = np.searchsorted(starts, tgt[inr])
        ok = starts[np.minimum(k, nf - 1)] == tgt[inr]
        ti[inr[ok]] = k[ok]
        hit_func[inr[ok]] = True
    # targets through PLT stubs / GOT slots -> symbol index -> import node or defined function
    stub_addr = np.fromiter(plt.keys(), np.uint64, len(plt))
    stub_sym = np.fromiter(plt.values(), np.int64, len(plt))
    slot_addr = np.fromiter(got.keys(), np.uint64, len(got))
    slot_sym = np.fromiter(got.values(), np.int64, len(got))
    node = np.full(len(pos), -1, np.int64)
    node[hit_func] = ti[hit_func]
    # dynsym index -> graph node: imported symbols get import nodes, defined ones their function
    sym_to_node = np.full(max(dyn.count, 1), -1, np.int64)
    used_syms = np.unique(np.concatenate([stub_sym, slot_sym])) if dyn.count else np.zeros(0, np.int64)
    if len(used_syms):
        dmask = defined[used_syms]
        dsyms = used_syms[dmask]
        vals = table["value"][dsyms].astype(np.uint64)
        k = np.minimum(np.searchsorted(starts, vals), max(nf - 1, 0))
        sym_to_node[dsyms] = np.where((nf > 0) & (starts[k] == vals), k, -1) if nf else -1
    for addrs, syms, sel in ((stub_addr, stub_sym, ~is_got), (slot_addr, slot_sym, is_got)):
        if not len(addrs):
            continue
        order = np.argsort(addrs)
        a_sorted, s_sorted = addrs[order], syms[order]
        cand = np.flatnonzero(sel & (tgt >= a_sorted[0]) & (tgt <= a_sorted[-1]))
        k_c = np.minimum(np.searchsorted(a_sorted, tgt[cand]), len(a_sorted) - 1)
        m = a_sorted[k_c] == tgt[cand]
        idxs = cand[m]
        if len(idxs):
            symidx = s_sorted[k_c[m]]
            for si in np.flatnonzero(np.bincount(symidx, minlength=1)).tolist():
                if not defined[si] and sym_to_node[si] < 0:
                    sym_to_node[si] = nf + import_node(si)
            node[idxs] = sym_to_node[symidx]
    keep = node >= 0
    src = np.searchsorted(starts, pos[keep], side="right").astype(np.int64) - 1
    ok = src >= 0
    graph_src, graph_dst = src[ok], node[keep][ok]
    # also import nodes for every imported symbol reached by a PLT stub/GOT slot never called
    graph = CallGraph.from_edges(starts, graph_src, graph_dst, tuple(import_keys))
    cand_pos, cand_node, cand_kind = pos[keep], node[keep], kind[keep]
    is_call = np.isin(cand_kind, np.asarray(CALL_KINDS, np.int8))
    del pos, tgt, kind, ti, node
    stats["edges"] = graph.n_edges
    t2 = time.perf_counter()

    sites: list[SyscallSite] = []
    wrappers: dict[int, LocalWrapper] = {}
    # pending wrapper candidates: function start -> (arg register, via)
    pending: dict[int, tuple[str, str]] = {}

    def add_site(
        addr: int, kind_name: str, fstart: int | None, res: TrackResult | None, via: str | None, extra_reason: str = ""
    ) -> None:
        fname = sc.name_of(fstart)
        if res is None:
            sites.append(SyscallSite(addr, kind_name, (), "unknown", extra_reason or "not decoded", fname, fstart, via))
            return
        numbers = tuple(sorted(res.values))
        if res.params and fstart is not None:
            reg = sorted(res.params)[0]
            reason = f"number is argument {arch.arg_regs.index(reg)} ({reg}): local wrapper"
            conf = "unknown"
            if fstart not in wrappers:
                pending[fstart] = (reg, via or "syscall instruction")
        elif res.unknown:
            conf, reason = "unknown", "; ".join(res.unknown[:3])
        elif len(numbers) == 1:
            conf, reason = "exact", ""
        elif numbers:
            conf, reason = "multiple", ""
        else:
            conf, reason = "unknown", "no definition found"
        if extra_reason:
            reason = f"{extra_reason}; {reason}" if reason else extra_reason
        sites.append(SyscallSite(addr, kind_name, numbers, conf, reason, fname, fstart, via))

    # --- direct syscall instructions --------------------------------------------------------------
    cands = sc.direct_candidates()
    stats["direct_candidates"] = len(cands)
    by_func: dict[int | None, list[tuple[int, str]]] = {}
    for addr, k in cands:
        by_func.setdefault(sc.func_start_of(addr), []).append((addr, k))
    for fstart, lst in by_func.items():
        if sc.x86:
            # cheap rejection of byte pairs inside other instructions: decode short windows from
            # several offsets before the pair; drop it when none of them lands on it.  The full
            # decode from the function start below is authoritative for whatever survives.
            lst = [(a, k) for a, k in lst if sc.window_says_boundary(a)]
        for addr, k in lst:
            got_f = sc.containing(addr)
            if got_f is None:
                continue
            start, f = got_f
            i = f.at(addr)
            ins = f.insns[i]
            expect = {"direct": "syscall", "int80": "int", "sysenter": "sysenter", "svc": "svc"}[k]
            if ins.mnemonic != expect or (k == "int80" and ins.op_str not in ("0x80",)):
                continue
            res = track(arch, f, i, arch.number_reg)
            if not sc.x86 and not res.values and not res.params and looks_like_data(f, i):
                stats["svc_in_data"] = stats.get("svc_in_data", 0) + 1
                continue
            extra = "i386 syscall numbering" if k in ("int80", "sysenter") else ""
            add_site(addr, k, start if start == fstart else None, res, None, extra)
    t3 = time.perf_counter()

    # --- calls to libc's syscall() -----------------------------------------------------------------
    syscall_nodes = {nf + imported_idx[s] for s in syscall_syms if s in imported_idx}
    via_key = {nf + imported_idx[s]: import_keys[imported_idx[s]] for s in syscall_syms if s in imported_idx}
    if syscall_nodes:
        sel = np.isin(cand_node, np.fromiter(syscall_nodes, np.int64)) & (is_call | (cand_kind == KIND_GOTLOAD))
        for addr, nd, kd in zip(cand_pos[sel].tolist(), cand_node[sel].tolist(), cand_kind[sel].tolist()):
            _call_site(sc, arch, int(addr), int(kd), "wrapper_call", via_key[nd], add_site)

    # --- request codes at ioctl/fcntl/prctl/setsockopt calls -----------------------------------------
    requests = _request_sites(sc, arch, elf, dyn, ~defined, imported_idx, nf, cand_pos, cand_node, cand_kind, is_call)

    # --- local wrappers, to a fixpoint ----------------------------------------------------------------
    rounds = 0
    while pending and rounds < WRAPPER_ROUNDS:
        rounds += 1
        new = dict(pending)
        pending.clear()
        for fstart, (reg, via) in new.items():
            if fstart in wrappers:
                continue
            w = LocalWrapper(fstart, sc.name_of(fstart), arch.arg_regs.index(reg), via)
            wrappers[fstart] = w
            fnode = graph.function_at(fstart)
            if fnode is None:
                continue
            wname = w.name or f"{fstart:#x}"
            sel = (cand_node == fnode) & is_call
            for addr, kd in zip(cand_pos[sel].tolist(), cand_kind[sel].tolist()):
                _call_site(sc, arch, int(addr), int(kd), "local_wrapper_call", wname, add_site, reg)
    stats["wrapper_rounds"] = rounds
    t4 = time.perf_counter()

    exports = _function_exports(dyn)
    sites.sort(key=lambda s: (s.address, s.kind))
    uniq_sites = tuple({(s.address, s.kind): s for s in sites}.values())
    stats.update(
        t_setup=round(t1 - t0, 3),
        t_graph=round(t2 - t1, 3),
        t_direct=round(t3 - t2, 3),
        t_wrappers=round(t4 - t3, 3),
        t_total=round(time.perf_counter() - t0, 3),
        functions=int(nf),
        sites=len(uniq_sites),
    )
    log.debug("syscall scan of %s: %s", elf.name, stats)
    return LibraryScan(
        str(elf.name),
        arch.name,
        key,
        uniq_sites,
        tuple(wrappers.values()),
        graph,
        tuple(exports),
        stats,
        False,
        requests,
    )


def _request_sites(
    sc: _Scanner,
    arch: Arch,
    elf: ElfFile,
    dyn,
    undefined: np.ndarray,  # type: ignore[no-untyped-def]
    imported_idx: dict[int, int],
    nf: int,
    cand_pos: np.ndarray,
    cand_node: np.ndarray,
    cand_kind: np.ndarray,
    is_call: np.ndarray,
) -> tuple[RequestSite, ...]:
    """Track the request argument at every verified call to the REQUEST_ARGS imports."""
    out: list[RequestSite] = []
    for name, arg in REQUEST_ARGS:
        nodes = [
            nf + imported_idx[s] for s in _symbols_named(elf, dyn, frozenset({name}), undefined) if s in imported_idx
        ]
        if not nodes:
            continue
        sel = np.isin(cand_node, np.asarray(nodes, np.int64)) & (is_call | (cand_kind == KIND_GOTLOAD))

        def add(
            addr: int,
            _kind: str,
            fstart: int | None,
            res: TrackResult | None,
            _via: str | None,
            _extra: str = "",
            _name: str = name,
            _arg: int = arg,
        ) -> None:
            exact = res is not None and not res.unknown and not res.params
            values = tuple(sorted(res.values)) if res is not None else ()
            out.append(RequestSite(addr, _name, _arg, values, exact, sc.name_of(fstart)))

        for addr, kd in zip(cand_pos[sel].tolist(), cand_kind[sel].tolist()):
            _call_site(sc, arch, int(addr), int(kd), "request", name, add, arch.arg_regs[arg])
    return tuple(sorted(out, key=lambda r: (r.call, r.arg_index, r.address)))


def _symbols_named(elf: ElfFile, dyn, names: frozenset[str], mask: np.ndarray) -> set[int]:
    """Dynamic symbol indices (restricted to ``mask``) whose name is in ``names``, compared as
    bytes in the string table without decoding every name."""
    out: set[int] = set()
    if not dyn.count or dyn.strtab_off is None:
        return out
    strtab = elf.data[dyn.strtab_off : dyn.strtab_off + dyn.strtab_size]
    offs = dyn.table["name"].astype(np.int64)
    for name in names:
        want = np.frombuffer(name.encode() + b"\0", np.uint8)
        ok = mask & (offs + len(want) <= len(strtab))
        idx = np.flatnonzero(ok)
        for j, byte in enumerate(want.tolist()):
            idx = idx[strtab[offs[idx] + j] == byte]
        out.update(idx.tolist())
    return out


def _function_exports(dyn) -> list[tuple[str, int]]:
    """(export key, address) of defined FUNC/IFUNC dynamic symbols, without a Python object per symbol."""
    if not dyn.count:
        return []
    idx = dyn.defined_indices()
    t = dyn.table
    typ = t["info"][idx] & 0xF
    idx = idx[((typ == STT_FUNC) | (typ == STT_GNU_IFUNC)) & (t["value"][idx] != 0)]
    out = []
    values = t["value"][idx].tolist()
    for i, v in zip(idx.tolist(), values):
        version, default, _ = dyn.export_version(i)
        name = dyn.name(i)
        key = name if not version else (f"{name}@@{version}" if default else f"{name}@{version}")
        out.append((key, int(v)))
    return out


def _call_site(
    sc: _Scanner, arch: Arch, addr: int, kd: int, kind_name: str, via: str, add_site, reg: str | None = None
) -> None:
    """Verify the branch at ``addr`` decodes as such and track the argument register there."""
    reg = reg or arch.arg_regs[0]
    got_f = sc.containing(addr)
    if got_f is None:
        return
    start, f = got_f
    i = f.at(addr)
    ins = f.insns[i]
    if sc.x86 and kd == KIND_GOTLOAD:  # mov reg, [rip+GOT] ... call/jmp *reg
        if ins.mnemonic != "mov" or not ins.raw.operands:
            return
        i = _branch_through(f, i, ins.raw.operands[0].reg, arch)
        if i is None:
            return
        addr = f.insns[i].address
    elif sc.x86:
        if kd in (KIND_GOTCALL, KIND_GOTJMP):
            if ins.flow not in ("icall", "ijump"):
                return
        elif ins.flow not in ("call", "jump", "cjump") or ins.target is None:
            return
    else:
        if kd == KIND_GOTCALL:  # addr is the `ldr xT, [xN, #off]`; find the blr/br of xT after it
            target_reg = ins.raw.operands[0].reg if ins.raw.operands else None
            i = _branch_through(f, i, target_reg, arch)
            if i is None:
                return
            addr = f.insns[i].address
        elif ins.flow not in ("call", "jump"):
            return
    fstart = sc.func_start_of(addr)
    res = track(arch, f, i, reg)
    add_site(addr, kind_name, start if start == fstart else None, res, via)


def _branch_through(f: Function, i: int, reg: int | None, arch: Arch) -> int | None:
    """The indirect call/jump through ``reg`` within a few straight-line instructions after ``i``
    (which loaded ``reg`` from a GOT slot), or None."""
    if reg is None:
        return None
    fam = arch.fam(reg)[0]
    for j in range(i + 1, min(len(f.insns), i + 24)):
        ins = f.insns[j]
        if ins.flow in ("icall", "ijump"):
            ops = ins.raw.operands
            if ops and arch.fam(ops[0].reg)[0] == fam:
                return j
        _, writes = ins.raw.regs_access()
        if any(arch.fam(w)[0] == fam for w in writes) or ins.flow in ("jump", "ret", "stop"):
            return None
    return None


def scan_path(path: str, *, no_cache: bool = False) -> LibraryScan:
    from uk_depscan.elf.file import open_elf

    with open_elf(path) as elf:
        return scan_library(elf, no_cache=no_cache)
