"""The syscall stage: engine scans + library summaries + bindings → reachable syscalls with evidence.

* The root is scanned by the engine; its entries are every function and every piece of
  relocated data (whole-object over-approximation) or, with ``--entry GLOB``, the matching
  exports plus constructors and destructors, followed along call *and* reference edges (code →
  data whose address it loads → functions that data points to; :mod:`uk_depscan.syscalls.scan`).
* Every other loaded object contributes per-export summaries: computed by the engine from the
  file (cached by build-id) or, for the libc family under ``--libc glibc|musl``, the shipped
  tables.  Imports the loader could not bind fall back to the shipped model through the
  file their version was recorded against (DT_VERNEED), so a manylinux wheel scanned on a
  machine without glibc still gets libc's syscalls.
* The start-up baseline is what ld.so's entry point and ``__libc_early_init`` reach; the
  constructors of every loaded object are further roots of the reached set.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import os
import re
import weakref
from collections.abc import Callable, Container, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from uk_depscan.elf.file import ElfFile
from uk_depscan.elf.symbols import fini_array, init_array
from uk_depscan.errors import DepscanError, UsageError
from uk_depscan.loader.binding import SymbolBindings
from uk_depscan.loader.resolve import LoadResult
from uk_depscan.model import (
    Arch,
    Breadth,
    Confidence,
    EvidenceKind,
    EvidenceStep,
    ImportReach,
    InvalidSyscallNumber,
    LibcModel,
    SiteKind,
    SiteRecord,
    SummarySourceRecord,
    SyscallFinding,
    SyscallReport,
)
from uk_depscan.store.cache import CacheStore
from uk_depscan.syscalls import pathcache, reachcache
from uk_depscan.syscalls.callgraph import CallGraph
from uk_depscan.syscalls.chains import PathSources, expand_chains
from uk_depscan.syscalls.closure import (
    FAILURE_FUNCTIONS,
    Node,
    OpenSummary,
    Reach,
    ReachedSyscall,
    Site,
    close_over_bindings,
)
from uk_depscan.syscalls.evidence import SyscallBreadth, breadth, import_reach
from uk_depscan.syscalls.globs import matching
from uk_depscan.syscalls.linux import load_linux_table
from uk_depscan.syscalls.requests import request_records
from uk_depscan.syscalls.startup import split_baseline
from uk_depscan.syscalls.summaries import ALL, ENTRY, INIT, TableSummary, key_variants, load_shipped

if TYPE_CHECKING:  # imported when first needed: the engine pulls in capstone
    from uk_depscan.syscalls.scan import LibraryScan, RequestSite, SyscallSite

log = logging.getLogger(__name__)
LIBC_FAMILY = (
    "libc.so.6",
    "libm.so.6",
    "libpthread.so.0",
    "librt.so.1",
    "libdl.so.2",
    "ld-linux-x86-64.so.2",
    "ld-linux-aarch64.so.1",
)
CXX_FAMILY = ("libstdc++.so.6", "libgcc_s.so.1", "libgomp.so.1")
FINI = "<fini>"  # DT_FINI/DT_FINI_ARRAY: run at exit and dlclose, roots of ``--entry``
SHIPPED_BASE = 1_000_000  # object indices for libraries known only from shipped tables
# ``--entry`` given as a code address (``0x3e3ca0``) or as a chain names a function the object has no
# name for (``sub_3e3ca0``): roots at the function holding that address
_ADDRESS_ENTRY = re.compile(r"(?:0x|sub_)([0-9a-fA-F]{1,16})")
# What runs before any library code (glibc 2.36): ld.so from its entry point (the engine follows
# dl_main, passed to _dl_sysdep_start by address, through address-taken edges) and
# __libc_early_init, which ld.so calls by address (elf/libc_early_init.c).  Checked against strace
# of an empty program in tests/test_strace_recall.py.  Constructors (DT_INIT/DT_INIT_ARRAY) of
# every loaded object also run at load time; they are roots of the reached set, not of the
# baseline, because their static reach is much wider than what they actually do at start-up.
BASELINE_ENTRIES = (
    ("ld-linux-x86-64.so.2", ENTRY),
    ("ld-linux-aarch64.so.1", ENTRY),
    ("libc.so.6", "__libc_early_init@GLIBC_PRIVATE"),
)
# musl's libc.so is its own dynamic loader: _dlstart (the entry point) and its constructors.
MUSL_BASELINE_ENTRIES = (("libc.so", ENTRY), ("libc.so", INIT))


@dataclass(frozen=True)
class SyscallAnalysis:
    reached: dict[int, ReachedSyscall]
    baseline: dict[int, ReachedSyscall]
    root_sites: tuple[SyscallSite, ...]
    root_requests: tuple[RequestSite, ...]
    sources: tuple[SummarySourceRecord, ...]  # source: scanned | shipped MODEL | unavailable: why
    libc_model: str
    entries: tuple[str, ...]
    unknown_sites: int
    breadth: Mapping[int, SyscallBreadth] = dataclasses.field(default_factory=dict)
    baseline_rare: frozenset[int] = frozenset()  # baseline syscalls made only on ld.so's rare paths
    import_reach: Mapping[str, frozenset[int]] = dataclasses.field(default_factory=dict)  # root import -> syscalls


class EngineSummary:
    """An :class:`OpenSummary` over one engine scan, memoised per entry."""

    def __init__(self, library: str, elf: ElfFile, scan: LibraryScan) -> None:
        self.library = library
        self.elf = elf
        self.scan = scan
        self._exports: dict[str, int] | None = None  # key -> address, made when first needed
        self._memo = reachcache.ReachMemo(library, scan.graph.import_keys)
        self._blocked: np.ndarray | None = None
        self._path_memo: pathcache.PathMemo | None = None
        self._path_store: CacheStore | None = None  # where the chain paths are, read when first needed
        self._site_nodes: np.ndarray | None = None
        self._key_rank: tuple[tuple[str, ...], np.ndarray] | None = None
        self.code_entries: dict[str, int] = {}  # --entry code addresses: sub_<start> -> start
        # reaches by entry address: aliases (C++ C1/C2 constructors, versioned and default names of
        # one function) share one search
        self._by_address: dict[tuple[tuple[int, ...], bool], Reach] = {}

    def addresses(self, entry: str) -> list[int]:
        if entry == ALL:
            return [int(a) for a in self.scan.graph.func_starts]
        if entry == ENTRY:
            return [self.elf.e_entry] if self.elf.e_entry else []
        if entry == INIT:
            return [*init_array(self.elf), *(v for v in (self.elf.dyn_value("INIT"),) if v)]
        if entry == FINI:
            return [*fini_array(self.elf), *(v for v in (self.elf.dyn_value("FINI"),) if v)]
        for key in key_variants(entry):
            if key in self.exports:
                return [self.exports[key]]
        # a code address only where --entry gave one for this object (an import named sub_… binds
        # to an export of that name or to nothing: never to an address of its provider)
        return [self.code_entries[entry]] if entry in self.code_entries else []

    def root_nodes(self, entry: str) -> np.ndarray:
        """Call-graph nodes of :meth:`addresses` (-1: an address before the first function); for
        ALL every function, without a list of 300 k addresses (libtorch_cpu.so)."""
        if entry == ALL:
            return np.arange(self.scan.graph.n_funcs, dtype=np.int64)
        return self.nodes_of(self.addresses(entry))

    @property
    def exports(self) -> dict[str, int]:
        """Export key -> address (a dict of 60 k entries for libtorch_cpu.so: made on first use)."""
        if self._exports is None:
            self._exports = dict(self.scan.exports)
        return self._exports

    def load_cached(self, store: CacheStore) -> None:
        """Share the process's memo of this library's reaches (:mod:`uk_depscan.syscalls.reachcache`)."""
        if self.scan.cache_key:
            sha = self.scan.cache_key.rsplit("/", 1)[-1]
            keys = self.scan.graph.import_keys
            self._memo = reachcache.shared_memo(self.library, self.scan.cache_key, sha, self.elf.size, keys, store)
            self._path_store = store

    def reach(self, entry: str) -> Reach | None:
        if entry == ALL and entry not in self._memo:
            # every function: no list (and key) of 300 k addresses for libtorch_cpu.so
            self._memo[entry] = self._reach_nodes(self.root_nodes(ALL), whole=True)
        if entry not in self._memo:
            addrs = self.addresses(entry)
            if not addrs:
                self._memo[entry] = None
            else:
                key = (tuple(addrs), entry == ALL)
                found = self._by_address.get(key)
                if found is None:
                    found = self._by_address[key] = self._reach(addrs, whole=entry == ALL)
                self._memo[entry] = found
        return self._memo[entry]

    @property
    def path_memo(self) -> pathcache.PathMemo | None:
        """The cached chain paths (:class:`uk_depscan.syscalls.chains.ObjectPaths`), loaded on first
        use: most libraries of a closure have no chain through them, and each read is a database query."""
        if self._path_memo is None and self._path_store is not None and self.scan.cache_key:
            sha = self.scan.cache_key.rsplit("/", 1)[-1]
            self._path_memo = pathcache.shared_memo(
                self.library, self.scan.cache_key, sha, self.elf.size, self._path_store
            )
        return self._path_memo

    def failure_mask(self) -> np.ndarray:
        """:func:`failure_nodes` of this scan, computed once (the reaches and the chains both use it)."""
        if self._blocked is None:
            self._blocked = _failure_masks.get(self.scan)
            if self._blocked is None:
                self._blocked = _failure_masks[self.scan] = failure_nodes(self.scan.graph, self.scan.exports)
        return self._blocked

    def prefetch(self, entries: Iterable[str]) -> None:
        """Compute the reaches of many entries at once (:meth:`CallGraph.reach_bits`, 64 per
        propagation); the closure calls this with every entry of this library it has queued.  The
        results are those of :meth:`reach`, entry by entry."""
        todo: dict[tuple[int, ...], list[str]] = {}
        for entry in entries:
            if entry == ALL or entry in self._memo:
                continue
            addrs = tuple(self.addresses(entry))
            found = self._by_address.get((addrs, False)) if addrs else None
            if not addrs or found is not None:
                self._memo[entry] = found
            else:
                todo.setdefault(addrs, []).append(entry)
        if len(todo) < 2:  # one search: reach() does it
            return
        keys = list(todo)
        for i in range(0, len(keys), 64):
            chunk = keys[i : i + 64]
            for addrs, found in zip(chunk, self._reach_many([list(a) for a in chunk]), strict=True):
                self._by_address[(addrs, False)] = found
                for entry in todo[addrs]:
                    self._memo[entry] = found

    def nodes_of(self, addrs: list[int]) -> np.ndarray:
        """Node of the function containing each address (-1: before the first function)."""
        g = self.scan.graph
        nodes: np.ndarray = (
            np.searchsorted(g.func_starts, np.asarray(addrs, np.uint64), side="right").astype(np.int64) - 1
        )
        return nodes

    def _roots(self, addrs: list[int]) -> np.ndarray:
        nodes = self.nodes_of(addrs)
        return nodes[nodes >= 0]

    def _reach(self, addrs: list[int], whole: bool = False) -> Reach:
        """Sites and imports reachable from ``addrs``; sites reachable only through a failure
        function are marked.  Vectorised: one BFS each way, then mask look-ups."""
        return self._reach_nodes(self._roots(addrs), whole)

    def _reach_nodes(self, roots: np.ndarray, whole: bool) -> Reach:
        g = self.scan.graph
        if whole:  # the whole object: every function and every piece of relocated data
            roots = np.concatenate([roots, np.arange(g.data_base, g.n_nodes, dtype=np.int64)])
        full = g.reachable(roots)
        nodes = self._sites()
        hit = np.flatnonzero((nodes >= 0) & full[np.maximum(nodes, 0)])
        # the second search only tells which sites are reached on normal paths: none reached, none
        # to tell (most entries of a large C++ library reach no syscall site of their own object)
        normal = g.reachable(roots, blocked=self.failure_mask()) if len(hit) else full
        return self._made(hit, normal[np.maximum(nodes[hit], 0)], np.flatnonzero(full[g.n_funcs : g.data_base]))

    def _reach_many(self, entries: list[list[int]]) -> list[Reach]:
        """:meth:`_reach` of up to 64 entries (address lists), by two bit propagations."""
        g = self.scan.graph
        roots = [self._roots(a) for a in entries]
        nodes = self._sites()
        one = np.uint64(1)
        full = g.reach_bits(roots)
        site_bits = np.where(nodes >= 0, full[np.maximum(nodes, 0)], np.uint64(0))
        import_bits = full[g.n_funcs : g.data_base]
        hits = [np.flatnonzero((site_bits >> np.uint64(i)) & one) for i in range(len(entries))]
        hitting = [i for i, h in enumerate(hits) if len(h)]
        normal = g.reach_bits([roots[i] for i in hitting], blocked=self.failure_mask()) if hitting else full
        normal_of = dict(zip(hitting, range(len(hitting)), strict=True))
        out = []
        for i, hit in enumerate(hits):
            ok = ((normal[nodes[hit]] >> np.uint64(normal_of[i])) & one).astype(bool) if len(hit) else hit
            out.append(self._made(hit, ok, np.flatnonzero((import_bits >> np.uint64(i)) & one)))
        return out

    def _sites(self) -> np.ndarray:
        if self._site_nodes is None:
            self._site_nodes = _site_nodes(self.scan.graph, self.scan.sites)
        return self._site_nodes

    def _made(self, hit: np.ndarray, normal: np.ndarray, imports: np.ndarray) -> Reach:
        """The reach of sites ``hit`` (indices; ``normal``: each reached on a normal path) and import
        nodes ``imports`` (indices into the graph's import keys)."""
        sites = self.scan.sites
        out = tuple(
            Site(n, _kind(sites[i]), sites[i].function or "?", sites[i].address, failure=not ok)
            for i, ok in zip(hit.tolist(), normal.tolist(), strict=True)
            for n in sites[i].numbers
        )
        if self._key_rank is None:  # the import keys in sorted order, and each key's place in it
            keys = self.scan.graph.import_keys
            order = sorted(range(len(keys)), key=keys.__getitem__)
            self._key_rank = (tuple(keys[j] for j in order), np.argsort(np.asarray(order, np.int64)))
        ordered, rank = self._key_rank
        return Reach(out, tuple(map(ordered.__getitem__, np.sort(rank[imports]).tolist())))


def _site_nodes(g: CallGraph, sites: tuple[SyscallSite, ...]) -> np.ndarray:
    """Call-graph node of every site's containing function (-1 before the first function)."""
    addrs = np.asarray([s.address for s in sites], np.uint64)
    return np.searchsorted(g.func_starts, addrs, side="right").astype(np.int64) - 1


# per scan object (one per cached entry and process: see scan._from_cache), for every target that loads it
_failure_masks: weakref.WeakKeyDictionary[LibraryScan, np.ndarray] = weakref.WeakKeyDictionary()


def failure_nodes(g: CallGraph, exports: tuple[tuple[str, int], ...]) -> np.ndarray:
    """Boolean mask of call-graph nodes that are failure functions (exported or imported)."""
    mask = np.zeros(g.n_nodes, np.bool_)
    for key, addr in exports:
        if key.split("@", 1)[0] in FAILURE_FUNCTIONS:
            node = g.function_at(addr)
            if node is not None:
                mask[node] = True
    for j, key in enumerate(g.import_keys):
        if key.split("@", 1)[0] in FAILURE_FUNCTIONS:
            mask[g.n_funcs + j] = True
    return mask


def _kind(site: SyscallSite) -> str:
    return {"wrapper_call": "wrapper", "local_wrapper_call": "local_wrapper"}.get(site.kind, "direct")


def analyze_syscalls(
    result: LoadResult,
    bindings: SymbolBindings,
    *,
    libc_model: str = "auto",
    entries: tuple[str, ...] = (),
    no_cache: bool = False,
    progress: Callable[[str], None] = lambda _msg: None,
    known: frozenset[int] | None = None,
    loaded: frozenset[str] = frozenset(),
) -> SyscallAnalysis:
    """Reachable syscalls of the root, with evidence, plus the start-up baseline.

    ``known`` (an object loaded at run time, :mod:`uk_depscan.syscalls.runtime`): only the reached
    syscalls not in it, with their chains, and nothing else (no baseline, breadth nor import reach:
    what the importer's report already has or does not take from a module); ``loaded``: real paths
    of objects already loaded with the importer, whose constructors its answer has followed."""
    from uk_depscan.syscalls.scan import scan_library

    arch = result.files[0].machine_name
    summaries: dict[int, OpenSummary] = {}
    sources: list[SummarySourceRecord] = []
    shipped = _shipped_for(libc_model, arch)
    for idx, obj in enumerate(result.tree.objects):
        elf = result.files.get(idx)
        name = obj.soname or obj.path.rsplit("/", 1)[-1]
        model_summary = _shipped_summary(shipped, name, libc_model)
        if model_summary is not None and idx != 0:
            summaries[idx] = model_summary
            sources.append(SummarySourceRecord(name, f"shipped {libc_model}", model_summary.provenance.get("build_id")))
            continue
        if elf is None or obj.error or not elf.arch_supported:
            sources.append(SummarySourceRecord(name, f"unavailable: {obj.error or 'architecture not analysed'}", None))
            continue
        progress(f"scanning {name} for syscalls")
        try:
            scan = scan_library(elf, no_cache=no_cache)
        except DepscanError as err:
            sources.append(SummarySourceRecord(name, f"unavailable: {err}", elf.build_id))
            continue
        summaries[idx] = EngineSummary(name, elf, scan)
        # the build-id cache is an implementation detail: a report must not depend on whether it was warm
        sources.append(SummarySourceRecord(name, "scanned", elf.build_id))
    store = None if no_cache else CacheStore()
    if store is not None:
        for s in summaries.values():
            if isinstance(s, EngineSummary):
                s.load_cached(store)
    progress("following imports through library summaries")
    fallback = _shipped_for("glibc" if libc_model in ("auto", "glibc") else libc_model, arch)
    bind = _bind_map(result, bindings, summaries, fallback, libc_model)
    root = summaries.get(0)
    roots = _root_entries(root, entries) if isinstance(root, EngineSummary) else []
    reached = close_over_bindings(roots, summaries, bind)
    if known is not None:
        return _lean(result, summaries, bind, reached, known, loaded, sources, libc_model)
    closed: dict[Node, int] = {}  # closures shared by the two: most of the nodes are the same
    strength = breadth(roots, summaries, bind, closed=closed)  # how directly the target itself makes each syscall
    imported = (
        import_reach(root.scan.graph.import_keys, summaries, bind, closed=closed)
        if isinstance(root, EngineSummary)
        else {}
    )
    _add_constructors(reached, summaries, bind, range(1, SHIPPED_BASE))
    baseline, rare = split_baseline(_baseline_roots(result, summaries, fallback, libc_model), summaries, bind)
    # function by function, down to the instruction (shipped tables: through the host's identical file)
    paths = PathSources(summaries, _host_files(result))
    reached = expand_chains(reached, paths)
    baseline = expand_chains(baseline, paths)
    # the reaches and paths computed here are stored once per run (uk_depscan.syscalls.memos.save_all)
    root_sites = root.scan.sites if isinstance(root, EngineSummary) else ()
    root_requests = root.scan.requests if isinstance(root, EngineSummary) else ()
    unknown = sum(1 for s in root_sites if not s.numbers)
    return SyscallAnalysis(
        reached,
        baseline,
        root_sites,
        root_requests,
        tuple(sources),
        libc_model,
        entries,
        unknown,
        strength,
        rare,
        imported,
    )


def _lean(
    result: LoadResult,
    summaries: dict[int, OpenSummary],
    bind: dict[tuple[int, str], Node | None],
    reached: dict[int, ReachedSyscall],
    known: frozenset[int],
    loaded: frozenset[str],
    sources: list[SummarySourceRecord],
    libc_model: str,
) -> SyscallAnalysis:
    """:func:`analyze_syscalls` with ``known``: what the root and the constructors of its newly
    loaded dependencies reach beyond ``known``, chains expanded for those only."""
    objects = result.tree.objects
    fresh = {i for i in range(1, min(len(objects), SHIPPED_BASE)) if os.path.realpath(objects[i].path) not in loaded}
    _add_constructors(reached, summaries, bind, fresh)
    new = {n: r for n, r in reached.items() if n not in known}
    new = expand_chains(new, PathSources(summaries, _host_files(result))) if new else new
    return SyscallAnalysis(new, {}, (), (), tuple(sources), libc_model, (), 0)


def _add_constructors(
    reached: dict[int, ReachedSyscall],
    summaries: Mapping[int, OpenSummary],
    bind: Mapping[tuple[int, str], Node | None],
    objects: Container[int],
) -> None:
    """Constructors of the dependencies in ``objects`` run at load too; they add to ``reached`` only
    what the target's own code does not already explain (so blame chains start in the target
    whenever they can)."""
    ctors = close_over_bindings([(i, INIT) for i in sorted(summaries) if i in objects], summaries, bind)
    reached.update({n: r for n, r in ctors.items() if n not in reached})


def _host_files(result: LoadResult) -> dict[str, ElfFile]:
    """Loaded objects by the name a shipped summary table uses (soname, else file name)."""
    out: dict[str, ElfFile] = {}
    for idx, obj in enumerate(result.tree.objects):
        elf = result.files.get(idx)
        if elf is not None and not obj.error and elf.arch_supported:
            out.setdefault(obj.soname or obj.path.rsplit("/", 1)[-1], elf)
    return out


def _shipped_for(model: str, arch: str) -> dict[str, TableSummary]:
    if model not in ("glibc", "musl"):
        return load_shipped("glibc", arch) if model == "auto" else {}
    return load_shipped(model, arch)


def scanned_under(soname: str, libc_model: str, arch: str) -> bool:
    """Whether :func:`analyze_syscalls` scans a dependency named ``soname`` under ``libc_model``
    (the libc and C++ runtime families take the shipped summaries of the glibc and musl models)."""
    return _shipped_summary(_shipped_for(libc_model, arch), soname, libc_model) is None


def _shipped_summary(shipped: Mapping[str, TableSummary], soname: str, model: str) -> TableSummary | None:
    if model not in ("glibc", "musl"):
        return None
    if model == "musl" and soname in LIBC_FAMILY:
        return shipped.get("libc.so")
    return shipped.get(soname) if soname in LIBC_FAMILY + CXX_FAMILY else None


def _root_entries(root: EngineSummary, entries: tuple[str, ...]) -> list[Node]:
    """The root's entry nodes: the whole object, or the exports matching ``entries`` (mangled or
    demangled globs) and the functions holding the code addresses among them (``0x…``, ``sub_…``),
    plus its constructors and destructors, which run at load and exit whatever the caller does.
    Functions whose address is stored in data are *not* roots by themselves: the reference graph
    reaches them from the code that loads the data holding them."""
    if not entries:
        return [(0, ALL)]
    at = [e for e in entries if is_address_entry(e)]
    globs = tuple(e for e in entries if e not in at)
    keys = [k for k, _ in root.scan.exports]
    chosen = [keys[i] for i in matching([k.split("@", 1)[0] for k in keys], globs)] if globs else []
    if globs and not chosen:
        raise UsageError(_no_match(root, globs))
    return [(0, k) for k in chosen] + [(0, _function_key(root, e)) for e in at] + [(0, INIT), (0, FINI)]


def is_address_entry(entry: str) -> bool:
    """Whether an ``--entry`` (or ``explain`` query) names a code address (``0x…``, ``sub_…``)."""
    return _ADDRESS_ENTRY.fullmatch(entry) is not None


def _function_key(root: EngineSummary, entry: str) -> str:
    """The entry key (``sub_<start>``) of the function holding the code address ``entry`` names,
    whichever spelling was given (``0x3e3ca4`` and ``sub_3e3ca0`` are one root, one report).  An
    address outside the object's executable sections or before its first function is a usage error:
    rooting there would silently reach nothing."""
    at = _ADDRESS_ENTRY.fullmatch(entry)
    assert at is not None, entry  # chosen by is_address_entry
    addr = int(at.group(1), 16)
    in_code = any(va <= addr < va + len(code) for _name, va, code in root.elf.iter_exec_regions())
    node = int(root.nodes_of([addr])[0]) if in_code else -1
    if node < 0:
        raise UsageError(f"{root.library}: --entry {entry} is not an address inside a function of its code")
    start = int(root.scan.graph.func_starts[node])
    key = f"sub_{start:x}"
    root.code_entries[key] = start
    return key


def _no_match(root: EngineSummary, entries: tuple[str, ...]) -> str:
    """The usage error for globs matching no export, with the closest export names: those whose
    name (demangled, without its parameter list) contains the glob's last ``::`` component, most
    similar first (difflib), else difflib's closest.  The CLI's error line escapes them (names
    from a binary are untrusted)."""
    names = sorted({k.split("@", 1)[0] for k, _ in root.scan.exports})
    bases = sorted({_demangled(n).split("(", 1)[0] for n in names})
    close: list[str] = []
    for glob in entries:
        plain = glob.replace("*", "").replace("?", "").split("(", 1)[0]
        core = plain.rsplit("::", 1)[-1]
        hits = [b for b in bases if core and core in b]
        if hits:
            ratio = {b: difflib.SequenceMatcher(None, plain, b).ratio() for b in hits}
            ranked = sorted(hits, key=lambda b: (-ratio[b], b))[:5]
        else:
            ranked = difflib.get_close_matches(plain, bases, n=5, cutoff=0.5)
        close += [n for n in ranked if n not in close]
    hint = f"; closest: {', '.join(close[:5])}" if close else ""
    return f"{root.library}: --entry {' '.join(entries)} matches none of its {len(names)} exported functions{hint}"


def _demangled(key: str) -> str:
    from uk_depscan.names import demangle

    return demangle(key.split("@", 1)[0])


def _bind_map(
    result: LoadResult,
    bindings: SymbolBindings,
    summaries: dict[int, OpenSummary],
    fallback: Mapping[str, TableSummary],
    model: str,
) -> dict[tuple[int, str], Node | None]:
    bind: dict[tuple[int, str], Node | None] = {}
    extra: dict[str, int] = {}
    for b in bindings.bindings:
        key = b.symbol.key
        if b.provider is not None:
            target = f"{b.symbol.name}@{b.provider_version}" if b.provider_version else b.symbol.name
            bind[(b.importer, key)] = (b.provider, target)
            continue
        lib = _fallback_library(b.symbol.version_file, model)
        if lib and lib in fallback:
            if lib not in extra:
                extra[lib] = SHIPPED_BASE + len(extra)
                summaries[extra[lib]] = fallback[lib]
            bind[(b.importer, key)] = (extra[lib], key)
    return bind


def _fallback_library(version_file: str | None, model: str) -> str | None:
    if version_file is None:
        return None
    if model == "musl" and version_file in LIBC_FAMILY:
        return "libc.so"
    return version_file


def _baseline_roots(
    result: LoadResult, summaries: dict[int, OpenSummary], fallback: Mapping[str, TableSummary], model: str
) -> list[Node]:
    roots: list[Node] = []
    by_name = {(o.soname or ""): i for i, o in enumerate(result.tree.objects)}
    interp = result.files[0].interp
    shipped_nodes: dict[str, int] = {}
    for soname, entry in MUSL_BASELINE_ENTRIES if model == "musl" else BASELINE_ENTRIES:
        idx = by_name.get(soname)
        # the shipped model first: it carries the split of ld.so's rare paths, made with the loader's
        # debug symbols (uk_depscan.syscalls.startup), which an installed ld.so lacks
        if soname in fallback and (soname.startswith("libc") or _arch_loader(result, soname)):
            node = shipped_nodes.setdefault(soname, SHIPPED_BASE + 500 + len(shipped_nodes))
            summaries[node] = fallback[soname]
            roots.append((node, entry))
        elif idx is not None and idx in summaries and model != "musl":
            roots.append((idx, entry))
    if interp and not roots:
        log.debug("no loader summary available for %s", interp)
    return roots


def _arch_loader(result: LoadResult, soname: str) -> bool:
    return ("x86-64" in soname) == (result.files[0].machine_name == "x86_64")


def syscall_report(analysis: SyscallAnalysis, arch: str, display: Callable[[str], str]) -> SyscallReport:
    """The report form: names from the target architecture's Linux table, sorted by number."""
    table = load_linux_table(arch)

    def name(n: int) -> str:
        # a number the table does not name is no syscall (see InvalidSyscallNumber), shown signed
        return table.name_of(n) or f"invalid({n - (1 << 64) if n >= 1 << 63 else n})"

    def finding(r: ReachedSyscall, with_breadth: bool = False) -> SyscallFinding:
        chain = tuple(EvidenceStep(EvidenceKind(s.kind), display(s.library), s.symbol, s.detail) for s in r.chain)
        kinds = tuple(EvidenceKind(k) for k in r.kinds)
        b = analysis.breadth.get(r.number)
        return SyscallFinding(
            r.number,
            name(r.number),
            r.failure_only,
            kinds,
            tuple(display(lib) for lib in r.libraries),
            chain,
            (Breadth(b.own_sites, b.imports, b.narrowest, b.narrowest_size) if b else Breadth(0, 0, None, 0))
            if with_breadth
            else None,
        )

    sites = tuple(
        SiteRecord(
            s.address,
            SiteKind(s.kind),
            tuple(s.numbers),
            tuple(name(n) for n in s.numbers),
            Confidence(s.confidence),
            s.reason,
            s.function,
            s.via,
        )
        for s in sorted(analysis.root_sites, key=lambda s: s.address)
    )
    # a number the table does not name is no syscall of this architecture: a finding, not a syscall
    reached = {n: r for n, r in analysis.reached.items() if table.name_of(n) is not None}
    baseline = {n: r for n, r in analysis.baseline.items() if table.name_of(n) is not None}
    invalid = tuple(
        invalid_number(r, display)
        for n, r in sorted({**analysis.baseline, **analysis.reached}.items())
        if n not in reached and n not in baseline
    )
    return SyscallReport(
        Arch(arch),
        LibcModel(analysis.libc_model),
        analysis.entries,
        tuple(finding(reached[n], with_breadth=True) for n in sorted(reached)),
        tuple(
            # failure-only (abort, assertion) or rare-path only: not what a start-up makes
            dataclasses.replace(finding(baseline[n]), rare=n in analysis.baseline_rare or baseline[n].failure_only)
            for n in sorted(baseline)
        ),
        sites,
        tuple(dataclasses.replace(s, library=display(s.library)) for s in analysis.sources),
        analysis.unknown_sites,
        request_records(analysis.root_requests, arch),
        tuple(sorted(invalid, key=lambda i: (i.number, i.library, i.site))),
        tuple(
            ImportReach(imp, tuple(n for n in (table.name_of(x) for x in sorted(nums)) if n is not None))
            for imp, nums in sorted(analysis.import_reach.items())
        ),
    )


def invalid_number(r: ReachedSyscall, display: Callable[[str], str]) -> InvalidSyscallNumber:
    """The finding for a reached number that is no syscall: signed as the program passes it."""
    signed = r.number - (1 << 64) if r.number >= 1 << 63 else r.number
    last = r.chain[-1]
    chain = tuple(EvidenceStep(EvidenceKind(s.kind), display(s.library), s.symbol, s.detail) for s in r.chain)
    return InvalidSyscallNumber(signed, display(last.library), last.symbol, last.detail, chain)
