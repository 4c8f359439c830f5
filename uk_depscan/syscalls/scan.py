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
``.exports`` ((key, address) of exported functions) and ``.requests`` (:class:`RequestSite`).
What an entry point reaches is answered by :class:`uk_depscan.syscalls.reach.EngineSummary`.

Approximations: the call graph takes every ``e8``/``e9``/``0f 8x`` rel32 whose target is exactly a
known function start without decoding the source (a byte pattern inside another instruction that
happens to point at a function start adds a spurious edge); calls through registers, vtables and
relocated function pointers are not call edges; they are covered by the reference graph instead
(``KIND_ADDR``/``KIND_DREF`` loads of code or relocated data → pieces of data → what their relocated
words point to, :func:`_reference_graph`), so a function whose address is stored in data is
reached from the code that loads that data.  Number tracking is intra-procedural (plus the
wrapper fixpoint).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import mmap
import multiprocessing as mp
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from uk_depscan.cleanup import forked_pool, pool_results
from uk_depscan.elf.datarefs import data_pointers, object_extents, pointer_ranges
from uk_depscan.elf.file import EM_AARCH64, EM_X86_64, ElfFile, open_elf
from uk_depscan.elf.frames import SHT_SYMTAB, function_starts, sorted_unique
from uk_depscan.elf.symbols import (
    STT_FUNC,
    STT_GNU_IFUNC,
    DynamicSymbols,
    dynamic_symbols,
    got_slot_symbols,
    plt_stub_symbols,
    sym_dtype,
)
from uk_depscan.store import identity
from uk_depscan.store.cache import CacheStore
from uk_depscan.syscalls import cache as scan_cache
from uk_depscan.syscalls.callgraph import CallGraph
from uk_depscan.syscalls.processes import processes

if TYPE_CHECKING:
    from uk_depscan.syscalls.disasm import Arch, Function, TrackResult

# The disassembler (capstone, ~35 ms to import) is loaded by the functions that decode: a warm
# run takes every scan from the cache and never needs it.

log = logging.getLogger(__name__)

ENGINE_VERSION = "6"  # bump whenever results can change: it is part of the cache key
SYSCALL_IMPORTS = frozenset({"syscall"})
MAX_FUNCTION_BYTES = 4 << 20  # decode at most this much of one function
WINDOW = 4096  # verified window when no function start precedes a site
WRAPPER_ROUNDS = 6
CHUNK = 1 << 25

KIND_CALL, KIND_JMP, KIND_JCC, KIND_GOTCALL, KIND_GOTJMP = 0, 1, 2, 3, 4
# address-taken references: `lea reg, [rip+func]` / `adrp+add` (function start or PLT stub) and
# `mov reg, [rip+GOT]` of an imported function.  They become "may call" edges (callbacks handed
# to pthread_create, qsort, atexit…).
KIND_ADDR, KIND_GOTLOAD = 5, 6
# a load of a pointer-sized or vector value from relocated data (SSE/AVX moves: GCC initialises a
# struct of two function pointers with one `movdqa xmm0, [rip+.LC0]`): a reference, never a call
KIND_DREF = 7
CALL_KINDS = (KIND_CALL, KIND_JMP, KIND_JCC, KIND_GOTCALL, KIND_GOTJMP)
REF_KINDS = np.asarray([KIND_ADDR, KIND_GOTLOAD, KIND_GOTCALL, KIND_GOTJMP, KIND_DREF], np.int8)
_SSE_LOADS = np.zeros(256, bool)  # a lookup table: one gather instead of np.isin's sort
_SSE_LOADS[[0x10, 0x12, 0x16, 0x28, 0x6F, 0x7E]] = True


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

    def to_json(self) -> dict[str, Any]:
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

    def to_json(self) -> dict[str, Any]:
        return {"address": self.address, "name": self.name, "arg_index": self.arg_index, "via": self.via}


# Below-syscall request codes: (imported function, argument index) whose value decides what the
# kernel is asked to do — ioctl request, fcntl command, prctl option, set/getsockopt level/optname.
REQUEST_ARGS = (
    ("ioctl", 1),
    ("fcntl", 1),
    ("fcntl64", 1),
    ("prctl", 0),
    ("setsockopt", 1),
    ("setsockopt", 2),
    ("getsockopt", 1),
    ("getsockopt", 2),
)


@dataclass(frozen=True)
class RequestSite:
    """A call to ioctl/fcntl/prctl/setsockopt and the value its request argument can hold."""

    address: int
    call: str
    arg_index: int
    values: tuple[int, ...]
    exact: bool
    function: str | None

    def to_json(self) -> dict[str, Any]:
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
    stats: dict[str, Any] = field(default_factory=dict, compare=False)  # counts and t_* seconds
    from_cache: bool = False
    requests: tuple[RequestSite, ...] = ()

    def to_json(self) -> dict[str, Any]:
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
        from uk_depscan.syscalls.disasm import get_arch

        self.elf = elf
        if elf.e_machine == EM_X86_64 and elf.is64:
            self.arch: Arch = get_arch("x86_64")
        elif elf.e_machine == EM_AARCH64 and elf.is64:
            self.arch = get_arch("aarch64")
        else:
            raise elf.fail(f"syscall scan supports x86-64 and AArch64 only, not {elf.machine_name}")
        self.x86 = self.arch.name == "x86_64"
        # A section whose addresses reach past 2**63 (a crafted header: no process maps code there)
        # is left out: the branch arithmetic is int64, and it overflowed on such a file (exit 3).
        self.regions = [
            _Region(n, va, np.frombuffer(mv, np.uint8))
            for n, va, mv in elf.iter_exec_regions()
            if not n.startswith(".plt") and va + len(mv) + 16 < 1 << 63
        ]
        self.plt_regions = [(va, va + len(mv)) for n, va, mv in elf.iter_exec_regions() if n.startswith(".plt")]
        _advise_willneed(elf, [(r.vaddr, len(r.code)) for r in self.regions])
        self.dyn = dynamic_symbols(elf)
        starts = function_starts(elf)
        in_code = np.zeros(len(starts), bool)
        for r in self.regions:
            in_code |= (starts >= np.uint64(r.vaddr)) & (starts < np.uint64(r.end))
        self.starts = starts[in_code]
        lo_hi = [(r.vaddr, r.end) for r in self.regions] + self.plt_regions
        # memoised per file: the graph resolution asks again
        self.got_slots = elf.derived(got_slot_symbols)
        self.plt_stubs = elf.derived(plt_stub_symbols)
        slots = list(self.got_slots)
        if slots:
            lo_hi.append((min(slots), max(slots) + 8))
        # relocated data: the targets of address loads that can lead to code (the reference graph)
        ptrs = data_pointers(elf)
        order = np.argsort(ptrs.offset, kind="stable")
        self.ptr_offset, self.ptr_target, self.ptr_sym = ptrs.offset[order], ptrs.target[order], ptrs.sym[order]
        self.ptr_slot = ptrs.slot[order]
        self.data_ranges = pointer_ranges(elf, self.ptr_offset)
        lo_hi += [(int(a), int(b)) for a, b in self.data_ranges]
        self.target_lo = min((a for a, _ in lo_hi), default=0)
        self.target_hi = max((b for _, b in lo_hi), default=0)
        self.stats: dict[str, Any] = {}
        self._funcs: dict[int, Function] = {}
        self._direct: list[tuple[int, str]] | None = None  # x86-64 syscall candidates (_x86_branches)
        self._arena: _Arena | None = None  # where forked prefilter workers put their ranges' findings
        self.direct_raw = 0  # x86-64: how many before the instruction-boundary check

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
        from uk_depscan.syscalls.disasm import decode_function

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

    def containing(self, addr: int) -> tuple[int, Function, int] | None:
        """(decode start, decoded function or verified window, index of the instruction at ``addr``)."""
        start = self.func_start_of(addr)
        r = self.region_of(addr)
        if r is None:
            return None
        if start is None or start < r.vaddr or addr - start >= MAX_FUNCTION_BYTES:
            start = self._window_start(r, addr)
            if start is None:
                return None
        f = self.decode(start)
        i = f.at(addr) if f is not None else None
        if f is None or i is None:
            return None
        return start, f, i

    def _window_start(self, r: _Region, addr: int) -> int | None:
        """A decode start before ``addr`` from which several offsets agree ``addr`` is a boundary."""
        from uk_depscan.syscalls.disasm import instruction_starts

        if not self.x86:
            return max(r.vaddr, (addr - WINDOW) & ~3)
        lo = max(r.vaddr, addr - WINDOW)
        code = r.code[lo - r.vaddr : addr - r.vaddr + 16].tobytes()
        agree = [
            s
            for s in (lo, lo + 1, lo + 2, lo + 3, lo + 7)
            if addr in instruction_starts(self.arch, code[s - lo :], s, [addr])
        ]
        return lo if len(agree) >= 4 and lo in agree else None

    def window_says_boundary(self, addr: int) -> bool:
        from uk_depscan.syscalls.disasm import instruction_starts

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

    @functools.cached_property
    def names(self) -> LazySymbolizer:
        return LazySymbolizer(self.elf)

    @functools.cached_property
    def function_exports(self) -> list[tuple[str, int]]:
        return _function_exports(self.dyn)

    def prepare_tail(self) -> None:
        """Compute now what the scan's end needs and the prefilter does not (names, exports): a
        process that waits for its prefilter's ranges to come back from a pool calls this meanwhile."""
        _ = self.names, self.function_exports

    # -- prefilter ---------------------------------------------------------------------
    def direct_candidates(self) -> list[tuple[int, str]]:
        """(address, kind) of the syscall instruction candidates, chunk by chunk and kind by kind
        within a chunk (x86-64: found by the same pass as the branches, :meth:`_x86_branches`)."""
        if self.x86:
            if self._direct is None:
                self._x86_branches()
            return self._direct or []
        out: list[tuple[int, str]] = []
        for r in self.regions:
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

    def branch_candidates(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(site address, target address or GOT slot, kind, target function node, containing
        function node) of every direct branch/GOT call (:func:`_start_nodes` for the last two)."""
        if self.x86:
            arrays, raw = self._x86_branches()
            self.stats["branch_candidates"] = raw
            return arrays
        pos_l: list[np.ndarray] = []
        tgt_l: list[np.ndarray] = []
        kind_l: list[np.ndarray] = []
        for r in self.regions:
            self._a64_branches(r, pos_l, tgt_l, kind_l)
        self.stats["branch_candidates"] = sum(len(p) for p in pos_l)
        if not pos_l:
            z = np.zeros(0, np.uint64)
            pos_l, tgt_l, kind_l = [z], [z], [np.zeros(0, np.int8)]
        pos, tgt, kind = np.concatenate(pos_l), np.concatenate(tgt_l), np.concatenate(kind_l)
        return pos, tgt, kind, *_start_nodes(self.starts, pos, tgt, kind)

    def _x86_chunks(self) -> list[tuple[int, int, int, int]]:
        """(region, start, end of the branch range, end of the syscall range) of every ``CHUNK``: a
        branch candidate starts at any offset up to n-5 inclusive (a 5-byte `jmp rel32` may end the
        section), a two-byte syscall instruction up to n-2."""
        chunks = []
        for ri, r in enumerate(self.regions):
            n = len(r.code)
            for lo in range(0, n - 1, CHUNK):
                hi_b = max(lo, min(n - 4, lo + CHUNK)) if n >= 6 else lo
                chunks.append((ri, lo, hi_b, min(n - 1, lo + CHUNK)))
        return chunks

    def prefilter_tasks(self) -> list[tuple[int, int, int, int, int]]:
        """The ranges a pool runs: each chunk split into PIECES consecutive ranges."""
        chunks = self._x86_chunks()
        return [(ri, *_piece(lo, hb, j), *_piece(lo, hd, j)) for ri, lo, hb, hd in chunks for j in range(PIECES)]

    def share_results(self) -> None:
        """Before a pool that will run this scanner's prefilter ranges is forked: make the shared
        memory its workers put their findings in (:class:`_Arena`).  Without it (not x86-64, too
        small to be split, no memory for the mapping) the findings come back through the pool's pipe."""
        if not self.x86 or self._arena is not None:
            return
        tasks = self.prefilter_tasks()
        if sum(t[2] - t[1] for t in tasks) >= PARALLEL_MIN_BYTES:
            self._arena = _Arena.make(self, tasks)

    def _x86_branches(self) -> tuple[_Candidates, int]:
        """Every region's branch candidates, chunk by chunk (``CHUNK`` bytes), pattern group by
        pattern group, as the five arrays of :meth:`branch_candidates`: the order the rest of the
        scan sees, whatever the number of processes.  Direct branches are kept only when they reach
        a function start or a PLT stub (the graph has no other use for them); the count is of all
        candidates (``stats``).  The same pass finds the syscall instruction candidates
        (:meth:`direct_candidates`)."""
        _ = self.direct_targets  # built before a pool is forked: every worker inherits it
        chunks = self._x86_chunks()
        total = sum(hi - lo for _, lo, hi, _ in chunks)
        processes = _pool_processes(total)
        executor = _EXECUTOR[-1] if _EXECUTOR and total >= PARALLEL_MIN_BYTES else None
        if processes == 1 and executor is None:
            merged = [self._x86_range(ri, lo, hb, lo, hd) for ri, lo, hb, hd in chunks]
            arrays = _concatenated([g for m in merged for g in m.branches], 0)
            direct = [d for m in merged for d in zip(_DIRECT_KINDS, m.direct, strict=True)]
            counts = [(m.raw, m.direct_raw) for m in merged]
        else:
            tasks = self.prefilter_tasks()
            if executor is not None:
                results = executor(str(self.elf.path), tasks, self.prepare_tail)
            else:
                results = _in_pool(self, processes, tasks)
            arrays, direct = self._pooled(len(chunks), tasks, results)
            counts = [(r.raw, r.direct_raw) for r in results]
        self.direct_raw = sum(d for _, d in counts)
        self._direct = [(addr, kind) for kind, addrs in direct for addr in addrs.tolist()]
        return arrays, sum(r for r, _ in counts)

    def _pooled(
        self, n_chunks: int, tasks: list[tuple[int, int, int, int, int]], results: list[_RangeScan | _InArena]
    ) -> tuple[_Candidates, list[tuple[str, np.ndarray]]]:
        """The pool's ranges as the serial scan's arrays: each chunk was split into PIECES
        consecutive ranges, and a chunk's group is the concatenation of its ranges' groups (each
        in address order).  The ranges in the shared memory are read where they lie, in one
        concatenation per field (the widening to 64 bits included); the shared memory is released
        then (this scan was its only use)."""
        arena, self._arena = self._arena, None
        try:
            parts = []
            for task, r in zip(tasks, results, strict=True):
                if isinstance(r, _InArena):
                    if arena is None:  # cannot happen: only a worker that inherited it puts there
                        raise RuntimeError("a prefilter range was put in shared memory that is gone")
                    parts.append(arena.view(task, r.counts))
                elif arena is not None:  # came through the pipe: in the arena's terms, like the rest
                    parts.append([arena.compact(g) for g in r.branches])
                else:
                    parts.append([list(g) for g in r.branches])
            by_chunk = [parts[c * PIECES : (c + 1) * PIECES] for c in range(n_chunks)]
            groups = [p[g] for ps in by_chunk for g in range(len(ps[0])) for p in ps]
            arrays = _concatenated(groups, arena.base if arena is not None else 0)
            del parts, by_chunk, groups  # the views into the arena, before it is closed
            ranges = [results[c * PIECES : (c + 1) * PIECES] for c in range(n_chunks)]
            direct = [(kind, r.direct[k]) for rs in ranges for k, kind in enumerate(_DIRECT_KINDS) for r in rs]
            return arrays, direct
        finally:
            if arena is not None:
                arena.close()

    @functools.cached_property
    def direct_targets(self) -> _AddressSet:
        """What the prefilter's ranges share: the addresses a direct branch may reach (function
        starts and PLT stubs)."""
        stubs = np.fromiter(self.plt_stubs.keys(), np.uint64, len(self.plt_stubs))
        return _AddressSet(np.concatenate([self.starts, stubs]))

    def _x86_range(self, ri: int, lo: int, hi: int, lo_direct: int, hi_direct: int) -> _RangeScan:
        r = self.regions[ri]
        return _x86_groups(r.code, r.vaddr, lo, hi, self, lo_direct, hi_direct)

    def range_for_pool(self, task: tuple[int, int, int, int, int]) -> _RangeScan | _InArena:
        """:meth:`_x86_range` in a pool worker: put in the shared memory it inherited, if any and if
        the findings fit, else returned whole (through the pool's pipe)."""
        r = self._x86_range(*task)
        arena = self._arena
        if arena is not None and arena.usable_here():
            return arena.put(task, r) or r
        return r

    def _a64_branches(
        self, r: _Region, pos_l: list[np.ndarray], tgt_l: list[np.ndarray], kind_l: list[np.ndarray]
    ) -> None:
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
        # (GCC schedules the add up to a few words after the adrp: `adrp x3; mov x2, #4; add x3, x3, #lo`)
        for gap in (1, 2, 3):
            if len(words) <= gap:
                continue
            adrp = np.flatnonzero((words[:-gap] & 0x9F000000) == 0x90000000)
            add = words[adrp + gap]
            ok = ((add & 0xFFC00000) == 0x91000000) & (((add >> 5) & 0x1F) == (words[adrp] & 0x1F))
            adrp = adrp[ok]
            if len(adrp):
                pc, page = _adrp_pages(words, adrp, base)
                tgt = page + ((words[adrp + gap].astype(np.int64) >> 10) & 0xFFF)
                pos_l.append((pc + 4 * gap).astype(np.uint64))
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


# (site address, target, kind, target function node, containing function node) per pattern group
_Groups = list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]
_Candidates = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]
_FULL_FIELDS = (np.uint64, np.uint64, np.int8, np.int64, np.int64)  # site, target, kind, node, src


def _concatenated(groups: _Groups | list[list[np.ndarray]], base: int) -> _Candidates:
    """Each field of ``groups`` concatenated in order, widened to its full type; ``base`` added to
    sites and targets (the shared memory's ranges hold them as 32-bit offsets from it)."""
    out = []
    for f, full in enumerate(_FULL_FIELDS):
        a = np.concatenate([g[f] for g in groups], dtype=full) if groups else np.zeros(0, full)  # widening only
        if base and f < 2:
            a += np.uint64(base)
        out.append(a)
    return out[0], out[1], out[2], out[3], out[4]


class _RangeScan(NamedTuple):
    """The prefilter's findings in one range of a region (:func:`_x86_groups`)."""

    branches: _Groups  # (site address, target, kind) per branch pattern group
    raw: int  # branch candidates before direct branches are restricted to known targets
    direct: tuple[np.ndarray, ...]  # syscall candidates at instruction boundaries, one array per _DIRECT_KINDS
    direct_raw: int  # syscall candidates before the instruction-boundary check


_DIRECT_KINDS = ("direct", "int80", "sysenter")  # 0f 05, cd 80, 0f 34


def _piece(lo: int, hi: int, j: int) -> tuple[int, int]:
    """The ``j``-th of PIECES consecutive ranges that ``[lo, hi)`` is split into."""
    return lo + (hi - lo) * j // PIECES, lo + (hi - lo) * (j + 1) // PIECES


def _start_nodes(
    starts: np.ndarray, pos: np.ndarray, tgt: np.ndarray, kind: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(node, src) of branch candidates: the function start a candidate's target is (-1: none,
    or a GOT slot kind, which the PLT/GOT resolution handles) and the function containing the
    candidate (-1: before the first start).  Element-wise, so a pool worker computes it for its range."""
    node = np.full(len(pos), -1, np.int64)
    if len(starts):
        is_got = (kind == KIND_GOTCALL) | (kind == KIND_GOTJMP) | (kind == KIND_GOTLOAD)
        inr = np.flatnonzero((~is_got) & (tgt >= starts[0]) & (tgt <= starts[-1]))
        k = np.searchsorted(starts, tgt[inr])
        ok = starts[np.minimum(k, len(starts) - 1)] == tgt[inr]
        node[inr[ok]] = k[ok]
    src: np.ndarray = np.searchsorted(starts, pos, side="right").astype(np.int64) - 1
    return node, src


BLOCK = 1 << 20  # bytes per pass of the pattern tests: a block and its temporaries stay in cache


class _AddressSet:
    """A set of addresses with a vectorised membership test: a bitmap over their span (one bit per
    byte address: 35 MB for libtorch_cpu.so's 280 MB of code), else a sorted array.  The 8 M
    call/jmp/jcc candidates of libtorch_cpu.so took 0.4 s of binary search; a bitmap look-up is
    one gather."""

    MAX_BITMAP = 64 << 20  # bytes: a span wider than this (a crafted file) is searched instead

    def __init__(self, addresses: np.ndarray) -> None:
        values = np.asarray(addresses, np.uint64)  # duplicates allowed: neither test minds them
        self.size = len(values)
        self.lo = int(values.min()) if self.size else 0
        span = int(values.max()) - self.lo + 1 if self.size else 0
        self.bitmap: np.ndarray | None = None
        self.sorted = values[:0]  # the binary search's array, when there is no bitmap
        if 0 < span <= 8 * self.MAX_BITMAP:
            off = values - np.uint64(self.lo)
            bitmap = np.zeros((span + 7) // 8, np.uint8)
            np.bitwise_or.at(bitmap, off >> np.uint64(3), np.left_shift(1, off & np.uint64(7)).astype(np.uint8))
            self.bitmap = bitmap
        else:
            self.sorted = np.sort(values)

    def contains(self, values: np.ndarray) -> np.ndarray:
        """Boolean mask: which of ``values`` (uint64) are in the set."""
        values = np.asarray(values, np.uint64)
        if not self.size:
            return np.zeros(len(values), bool)
        if self.bitmap is None:
            at = np.searchsorted(self.sorted, values)
            ok: np.ndarray = self.sorted[np.minimum(at, len(self.sorted) - 1)] == values
            return ok
        off = values - np.uint64(self.lo)  # wraps for values below lo: past the bitmap's end
        inside = np.flatnonzero(off < np.uint64(8 * len(self.bitmap)))
        hit = np.zeros(len(values), bool)
        o = off[inside]
        hit[inside] = ((self.bitmap[o >> np.uint64(3)] >> (o & np.uint64(7)).astype(np.uint8)) & 1).astype(bool)
        return hit


class _Positions(NamedTuple):
    """Offsets of the byte patterns :func:`_x86_groups` starts from, each sorted: a superset of
    each group (the exact tests follow), much smaller than the offsets of the first byte alone."""

    call: np.ndarray  # e8/e9: call/jmp rel32
    of: np.ndarray  # 0f: jcc rel32, SSE loads from [rip+disp32], syscall/sysenter
    ff: np.ndarray  # ff 15/25 (and ff 05/35): call/jmp [rip+disp32]
    rex: np.ndarray  # 48/4c 8d/8b (and 89/8f) modrm(rip): lea/mov r64, [rip+disp32]
    vex: np.ndarray  # c5 vv op: VEX2 SSE loads
    int80: np.ndarray  # cd 80


# Per field of _Positions: a conjunction of disjunctions of (byte, mask, value) tests, i.e. byte
# ``byte`` of the candidate, masked, equals ``value``.  modrm & c7 == 05 is [rip+disp32].
_PATTERNS: tuple[tuple[tuple[tuple[int, int, int], ...], ...], ...] = (
    (((0, 0xFE, 0xE8),),),
    (((0, 0xFF, 0x0F),), ((1, 0xF0, 0x80), (1, 0xFF, 0x05), (1, 0xFF, 0x34), (2, 0xC7, 0x05))),
    (((0, 0xFF, 0xFF),), ((1, 0xCF, 0x05),)),
    (((0, 0xFB, 0x48),), ((1, 0xF9, 0x89),), ((2, 0xC7, 0x05),)),
    (((0, 0xFF, 0xC5),), ((2, 0xF9, 0x10), (2, 0xFF, 0x28), (2, 0xFF, 0x6F), (2, 0xFF, 0x7E))),
    (((0, 0xFF, 0xCD),), ((1, 0xFF, 0x80),)),
)


def _positions(c: np.ndarray, lo: int, hi: int) -> _Positions:
    """The pattern offsets in ``c[lo:hi]``, block by block.  Six tests of the first byte over 32 MB
    went to memory six times and numbered 12 M 0f bytes and 14 M 48 bytes of libtorch_cpu.so; a 1 MB
    block stays in cache, and the tests of the next two bytes drop most of those before they are
    numbered (bytes past the end of ``c`` read as zero, which no test accepts)."""
    found: list[list[np.ndarray]] = [[] for _ in _Positions._fields]
    tmp = np.empty(BLOCK, np.uint8)
    hit, term, one = np.empty(BLOCK, bool), np.empty(BLOCK, bool), np.empty(BLOCK, bool)
    for s in range(lo, hi, BLOCK):
        e = min(hi, s + BLOCK)
        size = e - s
        ext = c[s : e + 2] if e + 2 <= len(c) else np.concatenate([c[s:], np.zeros(e + 2 - len(c), np.uint8)])
        views = (ext[:size], ext[1 : size + 1], ext[2 : size + 2])
        t, h, tm, o = tmp[:size], hit[:size], term[:size], one[:size]
        for group, conjunction in enumerate(_PATTERNS):
            for k, disjunction in enumerate(conjunction):
                out = h if k == 0 else tm
                for j, (byte, mask, value) in enumerate(disjunction):
                    v = views[byte] if mask == 0xFF else np.bitwise_and(views[byte], mask, out=t)
                    np.equal(v, value, out=out if j == 0 else o)
                    if j:
                        np.logical_or(out, o, out=out)
                if k:
                    np.logical_and(h, tm, out=h)
            found[group].append(np.flatnonzero(h) + s)
    empty = np.zeros(0, np.int64)
    return _Positions(*(np.concatenate(f) if f else empty for f in found))


def _within(p: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """The sorted offsets ``p`` in ``[lo, hi)``."""
    return p[np.searchsorted(p, lo) : np.searchsorted(p, hi)]


def _x86_groups(
    c: np.ndarray, vaddr: int, lo: int, hi: int, sc: _Scanner, lo_direct: int, hi_direct: int
) -> _RangeScan:
    """(site address, target, kind) of the x86-64 branch candidates starting in ``c[lo:hi]``, one
    triple per pattern group, each in address order; the number of candidates before direct
    branches are restricted to ``direct_targets``; the syscall instruction candidates
    starting in ``c[lo_direct:hi_direct]`` that the instruction-boundary check keeps, and their
    count before it.  Splitting the ranges into consecutive ranges and
    concatenating each group's arrays gives the same arrays (a parallel scan relies on it).
    ``sc``: the scanner's target range, function starts and ``direct_targets``."""
    n = len(c)
    # one pass over both ranges (they differ only at a region's end: a syscall instruction is shorter)
    pos = _positions(c, min(lo, lo_direct), max(hi, hi_direct)) if max(hi, hi_direct) > min(lo, lo_direct) else None
    base = np.uint64(vaddr)
    if pos is None:
        z = np.zeros(0, np.uint64)
        direct: tuple[np.ndarray, ...] = (z, z, z)
    else:
        p0f = _within(pos.of, lo_direct, hi_direct)
        second = c[p0f + 1]
        direct = (
            p0f[second == 0x05].astype(np.uint64) + base,
            _within(pos.int80, lo_direct, hi_direct).astype(np.uint64) + base,
            p0f[second == 0x34].astype(np.uint64) + base,
        )
    direct_raw = sum(len(d) for d in direct)
    # byte pairs inside other instructions dropped here, where the ranges are scanned (a pool's
    # workers): :meth:`_Scanner.window_says_boundary`; the decode from the function start in
    # _direct_sites is authoritative for whatever survives
    direct = tuple(d[np.fromiter(map(sc.window_says_boundary, d.tolist()), bool, len(d))] for d in direct)
    if hi <= lo or pos is None:
        z, e = np.zeros(0, np.uint64), np.zeros(0, np.int64)
        return _RangeScan([(z, z, np.zeros(0, np.int8), e, e)] * 6, 0, direct, direct_raw)
    target_lo, target_hi, direct_targets = sc.target_lo, sc.target_hi, sc.direct_targets
    # every byte offset viewed as a little-endian int32 (an unaligned, 1-byte-strided view):
    # one gather per candidate instead of four byte gathers
    i32 = np.ndarray(shape=(n - 3,), dtype="<i4", buffer=c, offset=0, strides=(1,))
    p_call = _within(pos.call, lo, hi)
    p0f_all = _within(pos.of, lo, hi)
    p0f = p0f_all[(c[p0f_all + 1] & 0xF0) == 0x80]
    pff = _within(pos.ff, lo, hi)
    pff = pff[(c[pff + 1] == 0x15) | (c[pff + 1] == 0x25)]
    # REX.W (+R) 8d/8b modrm(mod=00, rm=101): lea/mov r64, [rip+disp32]
    prex = _within(pos.rex, lo, hi)
    prex = prex[((c[prex + 1] == 0x8D) | (c[prex + 1] == 0x8B)) & ((c[prex + 2] & 0xC7) == 0x05)]
    # 0f 10/28/6f/7e/16/12 modrm(rip): (v)movups/movaps/movdqa/movdqu/movq/movhps/movlps loads;
    # VEX2 c5 vv op modrm(rip)
    psse = p0f_all[_SSE_LOADS[c[p0f_all + 1]] & ((c[p0f_all + 2] & 0xC7) == 0x05)]
    pvex = _within(pos.vex, lo, hi)
    pvex = pvex[_SSE_LOADS[c[pvex + 2]] & ((c[pvex + 3] & 0xC7) == 0x05)]
    groups = [
        (p_call, 5, None),
        (p0f, 6, KIND_JCC),
        (pff, 6, None),
        (prex, 7, None),
        (psse, 7, KIND_DREF),
        (pvex, 8, KIND_DREF),
    ]
    out: _Groups = []
    raw = 0
    for p, width, kinds in groups:
        p = p[p + width <= n]  # a 7-byte lea/mov candidate may start 6 bytes before the end
        disp = i32[p + (width - 4)]
        tgt = p.astype(np.int64) + (vaddr + width) + disp.astype(np.int64)
        inr = (tgt >= target_lo) & (tgt < target_hi)
        p, tgt = p[inr], tgt[inr].astype(np.uint64)
        raw += len(p)
        if width == 5 or kinds == KIND_JCC:  # rel32 call/jmp/jcc: most are bytes of other instructions
            known = direct_targets.contains(tgt)
            p, tgt = p[known], tgt[known]
        if kinds is None:
            if width == 5:
                k = np.where(c[p] == 0xE8, KIND_CALL, KIND_JMP).astype(np.int8)
            elif width == 7:
                k = np.where(c[p + 1] == 0x8D, KIND_ADDR, KIND_GOTLOAD).astype(np.int8)
            else:
                k = np.where(c[p + 1] == 0x15, KIND_GOTCALL, KIND_GOTJMP).astype(np.int8)
        else:
            k = np.full(len(p), kinds, np.int8)
        addr = p.astype(np.uint64) + np.uint64(vaddr)
        out.append((addr, tgt, k, *_start_nodes(sc.starts, addr, tgt, k)))
    return _RangeScan(out, raw, direct, direct_raw)


# -- processes -----------------------------------------------------------------------------
# The byte-pattern prefilter of one large object can be split over a pool of forked processes
# (``--jobs``, set by :func:`uk_depscan.syscalls.processes.scan_processes`).  The workers inherit
# the scanner (its mmap) by fork and return arrays; the parent merges them in range order, so the
# scan is the same for any number of processes.  Never nested: a daemonic worker (the pipeline's
# pool of several targets, or this pool) always scans serially.
SPECULATE_MIN_BYTES = 64 << 20  # scan while hashing (_scan_while_hashing) files at least this large
PARALLEL_MIN_BYTES = 64 << 20  # below this the pool's fork and result transfer cost more than they save
PIECES = 4  # ranges per chunk: 9 chunks of libtorch_cpu.so's .text over 2 processes would leave one idle
_FORKED: list[_Scanner] = []  # the scanner a pool worker inherits


def _pool_processes(nbytes: int) -> int:
    n = processes()
    if n <= 1 or nbytes < PARALLEL_MIN_BYTES or mp.current_process().daemon:
        return 1
    if "fork" not in mp.get_all_start_methods():
        return 1
    return min(n, os.cpu_count() or 1)


def _pool_task(task: tuple[int, int, int, int, int]) -> _RangeScan | _InArena:
    return _FORKED[0].range_for_pool(task)


class _InArena(NamedTuple):
    """A prefilter range's findings put in the shared memory (:class:`_Arena`): what the pool's
    pipe still carries."""

    counts: tuple[int, ...]  # candidates per branch pattern group
    raw: int
    direct: tuple[np.ndarray, ...]  # the syscall instruction candidates: a few per range
    direct_raw: int


# a range's slot in the shared memory: ARENA_BYTES_PER_BYTE bytes per byte of its code, plus ARENA_SLOT_MIN
ARENA_BYTES_PER_BYTE = 2
ARENA_SLOT_MIN = 4096
_ARENA_FIELDS = (np.uint32, np.uint32, np.int8, np.int32, np.int32)  # site, target (- base), kind, node, src
_ARENA_ITEM = sum(np.dtype(t).itemsize for t in _ARENA_FIELDS)  # 17 bytes per candidate


def _shared_mapping(size: int) -> mmap.mmap:
    """Anonymous shared memory: address space only until written (``MAP_NORESERVE``)."""
    return mmap.mmap(-1, size, flags=mmap.MAP_SHARED | getattr(mmap, "MAP_NORESERVE", 0))


class _Arena:
    """Shared memory that the forked workers running a large object's prefilter ranges put their
    findings in, instead of sending them back through the pool's pipe.

    Why: libtorch_cpu.so's ranges find 4.3 M branch candidates, 142 MB as the pool pickles them;
    the pickling, the pipe's two copies and the unpickling into fresh memory cost its two workers
    0.30-0.45 s of the ranges' 1.0-1.3 s (0.70-0.80 s when the results are dropped instead of
    returned).  Here a worker writes each candidate once, in 17 bytes instead of 33 (addresses as
    32-bit offsets, node numbers as 32-bit), and the scanning process reads it where it lies, once,
    widening it in the one concatenation the scan needs anyway: 0.85-0.91 s against 1.04-1.16 s
    through the pipe (same ranges, same pool, interleaved).

    An anonymous ``MAP_SHARED`` mapping made before the workers are forked, so they inherit it: it
    has no name and goes away with the last process that maps it, whatever signal ends the run.
    One slot per range of twice the range's length (the densest range of libtorch_cpu.so needs
    1.2 bytes per byte of code; the mapping reserves address space, and only the pages written use
    memory); a range whose findings do not fit its slot comes back through the pipe as before."""

    def __init__(self, mem: mmap.mmap, slots: dict[tuple[int, int, int, int, int], tuple[int, int]], base: int) -> None:
        self.mem = mem
        self.slots = slots  # task -> (offset, capacity in bytes)
        self.base = base  # subtracted from site and target addresses
        self.owner = os.getpid()  # the scanning process: its forked workers put, it takes

    @classmethod
    def make(cls, sc: _Scanner, tasks: list[tuple[int, int, int, int, int]]) -> _Arena | None:
        base = min([sc.target_lo, *(r.vaddr for r in sc.regions)])
        top = max([sc.target_hi, *(r.end for r in sc.regions)])
        if top - base >= 1 << 32 or len(sc.starts) >= 1 << 31:
            return None  # the compact fields cannot hold this object's addresses or nodes
        slots, offset = {}, 0
        for task in tasks:
            cap = ARENA_BYTES_PER_BYTE * (task[2] - task[1]) + ARENA_SLOT_MIN
            slots[task] = (offset, cap)
            offset += (cap + 63) // 64 * 64
        try:
            mem = _shared_mapping(max(offset, 1))
        except (OSError, ValueError, OverflowError):
            return None  # no room: the pipe it is
        return cls(mem, slots, base)

    def usable_here(self) -> bool:
        """True in a worker forked after the arena was made (which shares it with the scanner)."""
        return os.getpid() != self.owner

    def put(self, task: tuple[int, int, int, int, int], r: _RangeScan) -> _InArena | None:
        slot = self.slots.get(task)
        padding = 8 * len(_ARENA_FIELDS) * len(r.branches)  # each field starts 8-byte aligned
        if slot is None or sum(len(g[0]) for g in r.branches) * _ARENA_ITEM + padding > slot[1]:
            return None
        offset, _ = slot
        base = np.uint64(self.base)
        for group in r.branches:
            m = len(group[0])
            for arr, dtype in zip(group, _ARENA_FIELDS, strict=True):
                view = np.frombuffer(self.mem, dtype, m, offset)
                if dtype == np.uint32:
                    np.subtract(arr, base, out=view, casting="unsafe")
                else:
                    view[...] = arr
                offset += (m * np.dtype(dtype).itemsize + 7) // 8 * 8
        return _InArena(tuple(len(g[0]) for g in r.branches), r.raw, r.direct, r.direct_raw)

    def view(self, task: tuple[int, int, int, int, int], counts: tuple[int, ...]) -> list[list[np.ndarray]]:
        """The range's groups where they lie in the shared memory (compact fields: no copy)."""
        offset, _ = self.slots[task]
        groups = []
        for m in counts:
            fields = []
            for dtype in _ARENA_FIELDS:
                fields.append(np.frombuffer(self.mem, dtype, m, offset))
                offset += (m * np.dtype(dtype).itemsize + 7) // 8 * 8
            groups.append(fields)
        return groups

    def compact(self, group: tuple[np.ndarray, ...]) -> list[np.ndarray]:
        """A group that came through the pipe, in the shared memory's compact fields."""
        base = np.uint64(self.base)
        return [
            (a - base).astype(t) if t == np.uint32 else a.astype(t) for a, t in zip(group, _ARENA_FIELDS, strict=True)
        ]

    def close(self) -> None:
        """Free the written pages now, for every process that maps them (the first pool's workers
        keep their mapping until they exit), then unmap."""
        with contextlib.suppress(OSError, ValueError, AttributeError):  # MADV_REMOVE: Linux only
            self.mem.madvise(mmap.MADV_REMOVE)
        with contextlib.suppress(BufferError):  # views still alive (an error on the way): unmapped when freed
            self.mem.close()


# A pool that already exists can run the prefilter's ranges instead of a pool of its own (the
# pipeline's pool of several targets: its workers take the ranges of the largest object first, then
# the other objects and the targets, while this process finishes that object's scan).  The workers
# inherit the scanner when it was built before they were forked (prebuild_scanner); otherwise each
# builds its own from the file, once (_worker_scanner).
PrefilterExecutor = Callable[
    [str, list[tuple[int, int, int, int, int]], Callable[[], None]], list["_RangeScan | _InArena"]
]
_EXECUTOR: list[PrefilterExecutor] = []
_WORKER_SCANNER: dict[str, _Scanner] = {}  # path -> the scanner a pool worker built for prefilter_task


@contextlib.contextmanager
def prefilter_executor(run: PrefilterExecutor) -> Iterator[None]:
    """Within the block, a large object's prefilter ranges go to ``run(path, tasks, meanwhile)``
    (results in task order, each ``prefilter_task((path, task))``; ``meanwhile()`` called while the
    ranges run), not to a pool forked for them."""
    _EXECUTOR.append(run)
    try:
        yield
    finally:
        _EXECUTOR.pop()


# A pool worker that is idle while this process finishes a large scan can track the calls whose
# argument the scan needs (:class:`_TrackedCalls`): ``run(path, calls)`` submits
# ``track_task((path, calls))`` and returns what waits for its result.
CallTracker = Callable[[str, list[tuple[int, int, str]]], Callable[[], list["_Call | None"]]]
_TRACKER: list[CallTracker] = []


@contextlib.contextmanager
def call_tracker(run: CallTracker) -> Iterator[None]:
    """Within the block, a scan's tracked calls go to ``run`` (:data:`CallTracker`)."""
    _TRACKER.append(run)
    try:
        yield
    finally:
        _TRACKER.pop()


def track_task(arg: tuple[str, list[tuple[int, int, str]]]) -> list[_Call | None]:
    """The tracked calls of the object at ``path``, in a pool worker (:func:`call_tracker`)."""
    path, calls = arg
    sc = _worker_scanner(path)
    return [_track_call(sc, addr, kind, reg) for addr, kind, reg in calls]


def prefilter_task(arg: tuple[str, tuple[int, int, int, int, int]]) -> _RangeScan | _InArena:
    """One prefilter range of the object at ``path``, in a pool worker: the same arrays as the
    scanning process's ``_x86_range`` (the scanner is built from the same file, deterministically),
    put in the shared memory when the worker inherited the scanner's (:class:`_Arena`)."""
    path, task = arg
    return _worker_scanner(path).range_for_pool(task)


_PREBUILT: list[_Scanner] = []  # the scanner prebuild_scanner made, for _scan of that very ElfFile


def prebuild_scanner(elf: ElfFile) -> bool:
    """Build the scanner of ``elf`` now, before the pool that will run its prefilter ranges is
    forked: the workers inherit it instead of each building its own (0.55 s of libtorch_cpu.so's
    symbols and function starts, twice), and :func:`scan_library` of this ElfFile uses it.
    False, and nothing built, when the cache already holds the scan (checked only when the file's
    identity is known without hashing it: a warm cache); the lookup's validated entry is then
    what the forked workers inherit."""
    if identity.memoised(elf, CacheStore()) and scan_cache.lookup(elf, ENGINE_VERSION).hit is not None:
        return False
    sc = _Scanner(elf)
    _ = sc.direct_targets  # built here, so the forked workers inherit it too
    sc.share_results()  # and the shared memory they put their ranges' findings in
    _PREBUILT[:] = [sc]
    _WORKER_SCANNER.clear()
    _WORKER_SCANNER[str(elf.path)] = sc
    return True


def release_prebuilt() -> None:
    """Drop what :func:`prebuild_scanner` kept in this process (the forked workers have their copies)."""
    _PREBUILT.clear()
    _WORKER_SCANNER.clear()


def _worker_scanner(path: str) -> _Scanner:
    sc = _WORKER_SCANNER.get(path)  # inherited from prebuild_scanner, or made here once
    if sc is None:
        for old in _WORKER_SCANNER.values():
            old.elf.close()
        _WORKER_SCANNER.clear()
        sc = _Scanner(open_elf(path))
        _WORKER_SCANNER[path] = sc
    return sc


def _in_pool(sc: _Scanner, processes: int, tasks: list[tuple[int, int, int, int, int]]) -> list[_RangeScan | _InArena]:
    """``sc._x86_range(*task)`` of every task, in task order, computed by forked workers."""
    _FORKED[:] = [sc]
    sc.share_results()  # before the fork: the workers inherit it
    try:
        with forked_pool(processes) as pool:
            results = pool.imap(_pool_task, tasks, chunksize=1)
            sc.prepare_tail()
            return list(pool_results(pool, results))
    finally:
        _FORKED.clear()


def scan_library(elf: ElfFile, *, no_cache: bool = False) -> LibraryScan:
    """Every syscall site of ``elf`` with recovered numbers, local wrappers and the call graph."""
    if no_cache:
        return _scan(elf, "")
    if elf.size >= SPECULATE_MIN_BYTES and not identity.memoised(elf, CacheStore()):
        return _scan_while_hashing(elf)
    fresh = _fresh_scan(elf)
    if fresh is not None:  # this process's own scan, whose entry may not be written yet (deferred_store)
        return fresh
    slot = scan_cache.lookup(elf, ENGINE_VERSION)
    if slot.hit is not None:
        return _from_cache(elf, slot.key, slot.hit)
    with scan_cache.scanning(elf) as waited:  # another process scanning it: take its result
        if waited:
            slot = scan_cache.lookup(elf, ENGINE_VERSION)
            if slot.hit is not None:
                return _from_cache(elf, slot.key, slot.hit)
        scan = _scan(elf, slot.key)
        _store(slot, elf, scan)
    if elf.size >= SPECULATE_MIN_BYTES:
        _remember_fresh(scan)
    return scan


def _scan_while_hashing(elf: ElfFile) -> LibraryScan:
    """A large file whose identity this cache has never computed (a cold cache, most likely):
    scan it while a thread computes its sha256, then look the cache up.  A hit after all (the
    same content under another path or stamp, or another process that has just scanned it) is
    used and the scan is dropped, so the result is what :func:`scan_library` would return."""
    with identity.digest_in_background(elf), scan_cache.scanning(elf) as waited:
        if waited:  # another process scanned it meanwhile: its entry, once identified
            slot = scan_cache.lookup(elf, ENGINE_VERSION)
            if slot.hit is not None:
                return _from_cache(elf, slot.key, slot.hit)
        scan = _scan(elf, "")
        slot = scan_cache.lookup(elf, ENGINE_VERSION)  # waits for the digest
        if slot.hit is not None:
            return _from_cache(elf, slot.key, slot.hit)
        scan = dataclasses.replace(scan, cache_key=slot.key)
        _store(slot, elf, scan)
    _remember_fresh(scan)
    return scan


# A large scan whose cache entry is left to another process (:func:`deferred_store`): writing
# libtorch_cpu.so's 20 MB entry took 0.22 s of the main process between its scan and its analysis.
_DEFER: list[bool] = []
_PENDING: list[tuple[scan_cache.Slot, ElfFile, LibraryScan]] = []


@contextlib.contextmanager
def deferred_store() -> Iterator[None]:
    """Inside the block, :func:`scan_library` keeps a fresh scan's cache entry for
    :func:`store_pending` instead of writing it: the caller forks a worker, which inherits the scan
    and writes it while this process goes on with the analysis (from memory, ``_FRESH``)."""
    _DEFER.append(True)
    try:
        yield
    finally:
        _DEFER.pop()


def _store(slot: scan_cache.Slot, elf: ElfFile, scan: LibraryScan) -> None:
    if _DEFER:
        _PENDING[:] = [(slot, elf, scan)]
        _remember_fresh(scan)  # until a worker has written it, the cache does not have it
    else:
        scan_cache.store_scan(slot, elf, scan)


def store_pending() -> None:
    """Write the entry :func:`deferred_store` kept, if any, in this process: the forked worker that
    inherited it, or this process when none can start."""
    if _PENDING:
        slot, elf, scan = _PENDING.pop()
        scan_cache.store_scan(slot, elf, scan)


def pending_store() -> bool:
    """Whether :func:`deferred_store` kept an entry that no process has written yet."""
    return bool(_PENDING)


def drop_pending() -> None:
    """Forget the kept entry (a worker that inherited it writes it)."""
    _PENDING.clear()


# The last large scan this process computed, or the last whose entry it deferred (key, name, scan):
# the same file opened again by the analysis that follows (a lone target whose large object the
# pipeline scanned first) takes it from memory instead of reading back and validating the entry
# just stored (0.14 s for libtorch_cpu.so), or not yet stored.  This process's own result, not
# something read from disk.
_FRESH: list[tuple[str, str, LibraryScan]] = []


def _remember_fresh(scan: LibraryScan) -> None:
    _FRESH[:] = [(scan.cache_key, scan.path, scan)]


def _fresh_scan(elf: ElfFile) -> LibraryScan | None:
    if not _FRESH:
        return None
    key, name, scan = _FRESH[0]
    if name != str(elf.name) or key != scan_cache.key_of(elf, ENGINE_VERSION):
        return None
    return scan


# (key, name) -> (entry, scan)
_built: OrderedDict[tuple[str, str], tuple[scan_cache.CachedScan, LibraryScan]] = OrderedDict()
_BUILT_MAX = 64  # scans; the least recently used out first (a wheel's targets share their closure's)


def _from_cache(elf: ElfFile, key: str, hit: scan_cache.CachedScan) -> LibraryScan:
    """Build the scan from an entry :func:`uk_depscan.syscalls.cache.decode` has validated; the same
    scan object for the same validated entry (the targets of a directory share libtorch_cpu.so's,
    and what is derived from a scan, such as its failure mask, is then derived once)."""
    name = (key, str(elf.name))
    known = _built.get(name)
    if known is not None and known[0] is hit:
        _built.move_to_end(name)
        return known[1]
    scan = _build_from_cache(elf, key, hit)
    _built[name] = (hit, scan)
    _built.move_to_end(name)
    if len(_built) > _BUILT_MAX:
        _built.popitem(last=False)
    return scan


def _build_from_cache(elf: ElfFile, key: str, hit: scan_cache.CachedScan) -> LibraryScan:
    graph = CallGraph(hit.func_starts, hit.indptr, hit.indices, hit.import_keys, hit.data_starts)
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
    """The uncached scan: call graph, direct sites, ``syscall()`` calls, request codes, then local
    wrappers to a fixpoint.  Each step's timing goes to ``stats`` (``t_*``, seconds)."""
    t0 = time.perf_counter()
    sc = _PREBUILT.pop() if _PREBUILT and _PREBUILT[-1].elf is elf else _Scanner(elf)
    dyn = sc.dyn
    defined = (dyn.table["shndx"] != 0) if dyn.count else np.zeros(0, bool)
    imports = _Imports(dyn, len(sc.starts))
    calls = _TrackedCalls(sc, imports, ~defined)
    t1 = time.perf_counter()
    graph, branches = _call_graph(sc, imports, defined, calls.plan)
    t2 = time.perf_counter()
    found = _Sites(sc)
    _direct_sites(sc, found)
    t3 = time.perf_counter()
    requests = calls.record(found)
    rounds = _follow_wrappers(sc, found, graph, branches)
    t4 = time.perf_counter()
    exports = sc.function_exports
    sites = found.unique_sites()
    sc.stats.update(
        wrapper_rounds=rounds,
        t_setup=round(t1 - t0, 3),
        t_graph=round(t2 - t1, 3),
        t_direct=round(t3 - t2, 3),
        t_wrappers=round(t4 - t3, 3),
        t_total=round(time.perf_counter() - t0, 3),
        functions=len(sc.starts),
        sites=len(sites),
    )
    log.debug("syscall scan of %s: %s", elf.name, sc.stats)
    wrappers = tuple(found.wrappers.values())
    return LibraryScan(
        str(elf.name), sc.arch.name, key, sites, wrappers, graph, tuple(exports), sc.stats, False, requests
    )


class _Imports:
    """Import nodes of the call graph: numbered after the function nodes, in first-use order."""

    def __init__(self, dyn: DynamicSymbols, n_funcs: int) -> None:
        self.dyn = dyn
        self.n_funcs = n_funcs
        self.number: dict[int, int] = {}  # dynamic symbol index -> import number
        self.keys: list[str] = []

    def node(self, symidx: int) -> int:
        """The graph node of imported symbol ``symidx`` (numbered on first use)."""
        j = self.number.get(symidx)
        if j is None:
            j = self.number[symidx] = len(self.keys)
            self.keys.append(self.dyn.import_of(symidx).key)
        return self.n_funcs + j

    def nodes_of(self, symbols: Iterable[int]) -> dict[int, str]:
        """Graph node -> import key, for those of ``symbols`` that some branch targets."""
        return {self.n_funcs + self.number[s]: self.keys[self.number[s]] for s in symbols if s in self.number}


@dataclass(frozen=True, eq=False)  # numpy fields
class _Branches:
    """The branch candidates whose target is a call-graph node, in prefilter order."""

    pos: np.ndarray  # uint64 address of the branch (or of the GOT/address load)
    node: np.ndarray  # int64 target node
    kind: np.ndarray  # int8 KIND_*
    is_call: np.ndarray  # bool: one of CALL_KINDS (not an address-taken reference)

    def to(self, nodes: Iterable[int], *, got_loads: bool) -> list[tuple[int, int, int]]:
        """(address, target node, kind) of the calls and jumps to ``nodes``, and with
        ``got_loads`` also of the GOT loads of their addresses (``mov reg, [rip+GOT]``)."""
        sel = np.isin(self.node, np.asarray(list(nodes), np.int64))
        sel &= (self.is_call | (self.kind == KIND_GOTLOAD)) if got_loads else self.is_call
        return list(zip(self.pos[sel].tolist(), self.node[sel].tolist(), self.kind[sel].tolist(), strict=True))

    def to_each(self, groups: list[set[int]], *, got_loads: bool) -> list[list[tuple[int, int, int]]]:
        """:meth:`to` of each of ``groups``, in one pass over the branches (each pass is a look-up
        of every branch: 2.5 M in libtorch_cpu.so)."""
        union = set().union(*groups)
        calls = self.to(union, got_loads=got_loads) if union else []
        return [[c for c in calls if c[1] in g] for g in groups]


def _call_graph(
    sc: _Scanner, imports: _Imports, defined: np.ndarray, resolved: Callable[[_Branches], None]
) -> tuple[CallGraph, _Branches]:
    """Prefilter the branches, resolve their targets to function or import nodes (handed to
    ``resolved`` as soon as they are known), build the graph."""
    pos, tgt, kind, node, src_all = sc.branch_candidates()
    starts = sc.starts
    is_got = (kind == KIND_GOTCALL) | (kind == KIND_GOTJMP) | (kind == KIND_GOTLOAD)
    _resolve_plt_got(sc, imports, defined, tgt, is_got, node)
    keep = node >= 0
    kept_kind = kind[keep]
    branches = _Branches(pos[keep], node[keep], kept_kind, np.isin(kept_kind, np.asarray(CALL_KINDS, np.int8)))
    resolved(branches)
    src = src_all[keep]
    ok = src >= 0
    refs = (node < 0) & np.isin(kind, REF_KINDS)
    ref_src = src_all[refs]
    data = _reference_graph(sc, imports, ref_src, tgt[refs])
    graph = CallGraph.from_edges(
        starts,
        np.concatenate([src[ok], data.src]),
        np.concatenate([branches.node[ok], data.dst]),  # branches.node is node[keep]
        tuple(imports.keys),
        data.starts,
    )
    sc.stats["edges"] = graph.n_edges
    sc.stats["data_nodes"] = graph.n_data
    return graph, branches


class _DataEdges(NamedTuple):
    starts: np.ndarray  # uint64 data piece starts (sorted)
    src: np.ndarray  # int64 edge sources (function or data nodes)
    dst: np.ndarray  # int64 edge targets


def _in_ranges(ranges: np.ndarray, addrs: np.ndarray) -> np.ndarray:
    """Mask of ``addrs`` inside one of the sorted ``[lo, hi)`` rows of ``ranges``."""
    if not len(ranges) or not len(addrs):
        return np.zeros(len(addrs), bool)
    i = np.searchsorted(ranges[:, 0], addrs, side="right") - 1
    inside: np.ndarray = (i >= 0) & (addrs < ranges[np.maximum(i, 0), 1])
    return inside


def _reference_graph(sc: _Scanner, imports: _Imports, ref_src: np.ndarray, ref_tgt: np.ndarray) -> _DataEdges:
    """The reference half of the graph (sysfilter's and Confine's address-taken analysis, per piece
    of data instead of per program): code → the relocated data whose address it loads
    (``lea``/``mov``/vector loads RIP-relative, ``adrp``+``add``/``ldr``), data → the functions,
    imported functions and data its relocated words point to.

    Data is cut into pieces at every address something points to or loads (plus section starts
    and the starts of sized data symbols); a piece runs to the next cut, except that a cut inside a
    sized symbol (``.symtab``/``.dynsym`` OBJECT: a vtable, a table) is dropped, so a reference
    to ``&table[3]`` still reaches all of ``table``.  Over-approximated: a piece may hold several
    adjacent objects of a stripped file.  Under-approximated (stated in the README): code that
    walks from one piece into the next one without loading the next one's address (an
    unsized table whose middle element is also referenced on its own)."""
    ranges = sc.data_ranges
    offs, tgts, syms, slots = sc.ptr_offset, sc.ptr_target, sc.ptr_sym, sc.ptr_slot
    keep = _in_ranges(ranges, offs)
    offs, tgts, syms, slots = offs[keep], tgts[keep], syms[keep], slots[keep]
    ok = _in_ranges(ranges, ref_tgt) & (ref_src >= 0)
    ref_src, ref_tgt = ref_src[ok], ref_tgt[ok]
    # imported functions named by data: numbered before the data nodes (which follow the imports)
    imp_node = np.full(len(syms), -1, np.int64)
    sym_rows = np.flatnonzero(syms >= 0)
    if len(sym_rows):
        uniq, inv = np.unique(syms[sym_rows], return_inverse=True)
        nodes = np.asarray([imports.node(int(si)) for si in uniq.tolist()], np.int64)
        imp_node[sym_rows] = nodes[inv]
    ptr_data = (syms < 0) & _in_ranges(ranges, tgts)
    obj_lo, obj_hi = object_extents(sc.elf)
    in_obj = _in_ranges(ranges, obj_lo)
    obj_lo, obj_hi = obj_lo[in_obj], obj_hi[in_obj]
    # every GOT slot is a piece of its own: code loads slots one by one
    cuts = sorted_unique(np.concatenate([ranges[:, 0], ref_tgt, tgts[ptr_data], obj_lo, offs[slots]]).astype(np.uint64))
    if len(obj_lo):  # drop cuts strictly inside a sized object (but keep section starts)
        order = np.argsort(obj_lo, kind="stable")
        lo_s, hi_max = obj_lo[order], np.maximum.accumulate(obj_hi[order])
        j = np.searchsorted(lo_s, cuts, side="left") - 1
        inside = (j >= 0) & (cuts < hi_max[np.maximum(j, 0)])
        inside &= ~np.isin(cuts, ranges[:, 0])
        cuts = cuts[~inside]
    base = len(sc.starts) + len(imports.keys)

    def piece(addrs: np.ndarray) -> np.ndarray:
        out: np.ndarray = np.searchsorted(cuts, addrs, side="right").astype(np.int64) + (base - 1)
        return out

    # data → what its words point to: an import, a function start, a piece of data, or (a label
    # inside a function, `&&label`, an unwind-less function) the function containing it
    starts = sc.starts
    dst = imp_node.copy()
    rest = np.flatnonzero(dst < 0)
    if len(starts) and len(rest):
        k = np.searchsorted(starts, tgts[rest], side="right").astype(np.int64) - 1
        code = np.zeros(len(rest), bool)
        for r in sc.regions:
            code |= (tgts[rest] >= np.uint64(r.vaddr)) & (tgts[rest] < np.uint64(r.end))
        hit = code & (k >= 0)
        dst[rest[hit]] = k[hit]
    dst[ptr_data] = piece(tgts[ptr_data])
    valid = dst >= 0
    src = np.concatenate([ref_src, piece(offs[valid])])
    dst_all = np.concatenate([piece(ref_tgt), dst[valid]])
    return _DataEdges(cuts, src, dst_all)


def _resolve_plt_got(
    sc: _Scanner, imports: _Imports, defined: np.ndarray, tgt: np.ndarray, is_got: np.ndarray, node: np.ndarray
) -> None:
    """Set ``node`` for targets that are PLT stubs (direct branches) or GOT slots (GOT calls and
    loads): the defined function the symbol names, else an import node."""
    plt, got = sc.plt_stubs, sc.got_slots
    stub_addr, stub_sym = np.fromiter(plt.keys(), np.uint64, len(plt)), np.fromiter(plt.values(), np.int64, len(plt))
    slot_addr, slot_sym = np.fromiter(got.keys(), np.uint64, len(got)), np.fromiter(got.values(), np.int64, len(got))
    sym_to_node = _defined_symbol_nodes(sc, defined, np.concatenate([stub_sym, slot_sym]))
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
                    sym_to_node[si] = imports.node(si)
            node[idxs] = sym_to_node[symidx]


def _defined_symbol_nodes(sc: _Scanner, defined: np.ndarray, used: np.ndarray) -> np.ndarray:
    """Dynamic symbol index -> function node, for the ``used`` symbols defined at a function start
    (-1 for every other symbol; imports get their nodes when a branch reaches them)."""
    dyn, starts, nf = sc.dyn, sc.starts, len(sc.starts)
    sym_to_node = np.full(max(dyn.count, 1), -1, np.int64)
    used_syms = sorted_unique(used) if dyn.count else np.zeros(0, np.int64)
    if len(used_syms):
        dsyms = used_syms[defined[used_syms]]
        vals = dyn.table["value"][dsyms].astype(np.uint64)
        k = np.minimum(np.searchsorted(starts, vals), max(nf - 1, 0))
        sym_to_node[dsyms] = np.where(starts[k] == vals, k, -1) if nf else -1
    return sym_to_node


class _Sites:
    """The syscall sites found so far, the local wrappers, and the wrapper candidates to follow."""

    def __init__(self, sc: _Scanner) -> None:
        self.sc = sc
        self.sites: list[SyscallSite] = []
        self.wrappers: dict[int, LocalWrapper] = {}
        self.pending: dict[int, tuple[str, str]] = {}  # function start -> (argument register, via)

    def add(
        self, addr: int, kind: str, fstart: int | None, res: TrackResult, via: str | None, extra_reason: str = ""
    ) -> None:
        """Record a site; a number that is the function's own argument makes it a wrapper candidate."""
        numbers = tuple(sorted(res.values))
        if res.params and fstart is not None:
            reg = sorted(res.params)[0]
            reason = f"number is argument {self.sc.arch.arg_regs.index(reg)} ({reg}): local wrapper"
            conf = "unknown"
            if fstart not in self.wrappers:
                self.pending[fstart] = (reg, via or "syscall instruction")
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
        self.sites.append(SyscallSite(addr, kind, numbers, conf, reason, self.sc.name_of(fstart), fstart, via))

    def unique_sites(self) -> tuple[SyscallSite, ...]:
        """Sorted by (address, kind); of two records of one site the later one is kept."""
        self.sites.sort(key=lambda s: (s.address, s.kind))
        return tuple({(s.address, s.kind): s for s in self.sites}.values())


_EXPECTED_MNEMONIC = {"direct": "syscall", "int80": "int", "sysenter": "sysenter", "svc": "svc"}


def _direct_sites(sc: _Scanner, found: _Sites) -> None:
    """Syscall instructions: byte-pattern candidates verified by decoding their function."""
    from uk_depscan.syscalls.disasm import looks_like_data, track

    cands = sc.direct_candidates()  # x86-64: those the instruction-boundary check kept (_x86_groups)
    sc.stats["direct_candidates"] = sc.direct_raw if sc.x86 else len(cands)
    by_func: dict[int | None, list[tuple[int, str]]] = {}
    for addr, kind in cands:
        by_func.setdefault(sc.func_start_of(addr), []).append((addr, kind))
    for fstart, lst in by_func.items():
        for addr, kind in lst:
            got_f = sc.containing(addr)
            if got_f is None:
                continue
            start, f, i = got_f
            ins = f.insns[i]
            if ins.mnemonic != _EXPECTED_MNEMONIC[kind] or (kind == "int80" and ins.op_str not in ("0x80",)):
                continue
            res = track(sc.arch, f, i, sc.arch.number_reg)
            if not sc.x86 and not res.values and not res.params and looks_like_data(f, i):
                sc.stats["svc_in_data"] = sc.stats.get("svc_in_data", 0) + 1
                continue
            extra = "i386 syscall numbering" if kind in ("int80", "sysenter") else ""
            found.add(addr, kind, start if start == fstart else None, res, None, extra)


class _TrackedCalls:
    """The calls whose argument the scan tracks: ``syscall()``'s number (the first argument) and
    the request codes of :data:`REQUEST_ARGS`.  They are planned as soon as the branches are
    resolved (:meth:`plan`, called by :func:`_call_graph` before it builds the graph) and, when a
    pool worker is offered (:func:`call_tracker`), tracked there while this process builds the
    graph: decoding and tracking libtorch_cpu.so's ~220 such calls took 0.14 s of the scanning
    process, in which the lone target's pool had a worker idle.  Tracking is a pure function of
    the file and the call (the worker's scanner is built from the same file), so the sites are
    the same wherever it runs; a worker that fails leaves the tracking to this process."""

    def __init__(self, sc: _Scanner, imports: _Imports, undefined: np.ndarray) -> None:
        self.sc, self.imports, self.undefined = sc, imports, undefined
        self.syscall_syms = _symbols_named(sc.elf, sc.dyn, SYSCALL_IMPORTS, undefined)
        self.via_of: dict[int, str] = {}
        self.syscall: list[tuple[int, int, int]] = []  # (address, import node, kind) of calls to syscall()
        self.requests: list[tuple[str, int, list[tuple[int, int, int]]]] = []  # (import, argument, calls)
        self.calls: list[tuple[int, int, str]] = []  # (address, kind, register) of all of them, in that order
        self._fetch: Callable[[], list[_Call | None]] | None = None

    def plan(self, branches: _Branches) -> None:
        # an import that only data refers to (numbered later, by _reference_graph) is the target of
        # no branch: the imports numbered by now are all that branches.to can match
        sc = self.sc
        self.via_of = self.imports.nodes_of(self.syscall_syms)
        wanted: list[tuple[str, int, set[int]]] = []
        for name, arg in REQUEST_ARGS:
            nodes = self.imports.nodes_of(_symbols_named(sc.elf, sc.dyn, frozenset({name}), self.undefined))
            if nodes:
                wanted.append((name, arg, set(nodes)))
        self.syscall, *per_request = branches.to_each([set(self.via_of)] + [g for _, _, g in wanted], got_loads=True)
        self.requests = [(name, arg, lst) for (name, arg, _), lst in zip(wanted, per_request, strict=True)]
        regs = sc.arch.arg_regs
        self.calls = [(addr, kind, regs[0]) for addr, _, kind in self.syscall]
        self.calls += [(addr, kind, regs[arg]) for _, arg, lst in self.requests for addr, _, kind in lst]
        if self.calls and _TRACKER:
            self._fetch = _TRACKER[-1](str(sc.elf.path), self.calls)

    def _results(self) -> list[_Call | None]:
        if self._fetch is not None:
            try:
                got = self._fetch()
            except Exception:  # noqa: BLE001 - a worker that failed (killed, out of memory): tracked here
                got = None
            if got is not None and len(got) == len(self.calls):
                return got
        return [_track_call(self.sc, addr, kind, reg) for addr, kind, reg in self.calls]

    def record(self, found: _Sites) -> tuple[RequestSite, ...]:
        """Add the ``syscall()`` calls to ``found``; return the request sites."""
        results = self._results()
        n = len(self.syscall)
        for (_, node, _), call in zip(self.syscall, results[:n], strict=True):
            if call is not None:
                found.add(call.address, "wrapper_call", call.function, call.result, self.via_of[node])
        out: list[RequestSite] = []
        for name, arg, lst in self.requests:
            for call in results[n : n + len(lst)]:
                if call is not None:
                    res = call.result
                    exact = not res.unknown and not res.params
                    out.append(
                        RequestSite(
                            call.address, name, arg, tuple(sorted(res.values)), exact, self.sc.name_of(call.function)
                        )
                    )
            n += len(lst)
        return tuple(sorted(out, key=lambda r: (r.call, r.arg_index, r.address)))


def _follow_wrappers(sc: _Scanner, found: _Sites, graph: CallGraph, branches: _Branches) -> int:
    """Local wrappers to a fixpoint (wrappers of wrappers): each pending candidate becomes a
    wrapper and its call sites are tracked for the argument it forwards.  Returns the rounds run."""
    rounds = 0
    while found.pending and rounds < WRAPPER_ROUNDS:
        rounds += 1
        new = dict(found.pending)
        found.pending.clear()
        for fstart, (reg, via) in new.items():
            if fstart in found.wrappers:
                continue
            w = LocalWrapper(fstart, sc.name_of(fstart), sc.arch.arg_regs.index(reg), via)
            found.wrappers[fstart] = w
            fnode = graph.function_at(fstart)
            if fnode is None:
                continue
            wname = w.name or f"{fstart:#x}"
            for addr, _, kind in branches.to((fnode,), got_loads=False):
                call = _track_call(sc, addr, kind, reg)
                if call is not None:
                    found.add(call.address, "local_wrapper_call", call.function, call.result, wname)
    return rounds


def _symbols_named(elf: ElfFile, dyn: DynamicSymbols, names: frozenset[str], mask: np.ndarray) -> set[int]:
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


def _function_exports(dyn: DynamicSymbols) -> list[tuple[str, int]]:
    """(export key, address) of defined FUNC/IFUNC dynamic symbols, without a Python object per
    symbol: names from the table's one-pass decode, the version suffix once per versym value."""
    if not dyn.count:
        return []
    idx = dyn.defined_indices()
    t = dyn.table
    typ = t["info"][idx] & 0xF
    idx = idx[((typ == STT_FUNC) | (typ == STT_GNU_IFUNC)) & (t["value"][idx] != 0)]
    names = dyn.names
    indices, values = idx.tolist(), t["value"][idx].tolist()
    if dyn.versym is None:
        return [(names[i], v) for i, v in zip(indices, values, strict=True)]
    suffixes: dict[int, str] = {}
    out = []
    for i, v, raw in zip(indices, values, dyn.versym[idx].tolist(), strict=True):
        suffix = suffixes.get(raw)
        if suffix is None:
            version, default, _ = dyn.export_version(i)  # a function of the versym value alone
            suffix = suffixes[raw] = "" if not version else (f"@@{version}" if default else f"@{version}")
        out.append((names[i] + suffix, v))
    return out


class _Call(NamedTuple):
    address: int  # the call/jump (for a GOT or address load: the branch through the loaded register)
    function: int | None  # start of the containing function (None: decoded from a window)
    result: TrackResult  # the tracked argument register there


def _track_call(sc: _Scanner, addr: int, kd: int, reg: str) -> _Call | None:
    """Verify the branch candidate at ``addr`` (kind ``kd``) decodes as a call or jump and track
    the argument register ``reg`` there; None when it is not an instruction of that kind."""
    from uk_depscan.syscalls.disasm import INDIRECT, Flow, track

    arch = sc.arch
    got_f = sc.containing(addr)
    if got_f is None:
        return None
    start, f, i = got_f
    ins = f.insns[i]
    if sc.x86 and kd == KIND_GOTLOAD:  # mov reg, [rip+GOT] ... call/jmp *reg
        if ins.mnemonic != "mov" or not ins.raw.operands:
            return None
        branch = _branch_through(f, i, ins.raw.operands[0].reg, arch)
        if branch is None:
            return None
        i, addr = branch, f.insns[branch].address
    elif sc.x86:
        if kd in (KIND_GOTCALL, KIND_GOTJMP):
            if ins.flow not in INDIRECT:
                return None
        elif ins.flow not in (Flow.CALL, Flow.JUMP, Flow.CJUMP) or ins.target is None:
            return None
    elif kd == KIND_GOTCALL:  # addr is the `ldr xT, [xN, #off]`; find the blr/br of xT after it
        target_reg = ins.raw.operands[0].reg if ins.raw.operands else None
        branch = _branch_through(f, i, target_reg, arch)
        if branch is None:
            return None
        i, addr = branch, f.insns[branch].address
    elif ins.flow not in (Flow.CALL, Flow.JUMP):
        return None
    fstart = sc.func_start_of(addr)
    return _Call(addr, start if start == fstart else None, track(arch, f, i, reg))


def _branch_through(f: Function, i: int, reg: int | None, arch: Arch) -> int | None:
    """The indirect call/jump through ``reg`` within a few straight-line instructions after ``i``
    (which loaded ``reg`` from a GOT slot), or None."""
    from uk_depscan.syscalls.disasm import INDIRECT, Flow

    if reg is None:
        return None
    fam = arch.fam(reg)[0]
    for j in range(i + 1, min(len(f.insns), i + 24)):
        ins = f.insns[j]
        if ins.flow in INDIRECT:
            ops = ins.raw.operands
            if ops and arch.fam(ops[0].reg)[0] == fam:
                return j
        if arch.writes(ins, fam) or ins.flow in (Flow.JUMP, Flow.RET, Flow.STOP):
            return None
    return None
