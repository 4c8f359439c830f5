"""Evidence chains down to the instruction: each object a chain passes through, function by function.

:func:`uk_depscan.syscalls.closure.close_over_bindings` keeps, per syscall, the shortest chain of
*objects* (``entry -> import -> import -> site``).  Inside every object scanned by the engine this
module fills in the functions between the object's entry and the import it calls (or the site it
reaches), so ``import:__cxa_atexit -> direct:sysmalloc @0x...`` becomes
``import:__cxa_atexit -> call:__libc_malloc -> call:sysmalloc -> direct:sysmalloc @0x...``.

No path is stored: a path is read off breadth-first predecessor links over the object's call graph
(the CSR arrays the scan cache already holds), computed once per (object, entry) and kept only for
the length of one analysis.  Each BFS level takes, for every newly reached function, the
lowest-address caller on the previous level, so the links and the chains are deterministic.

Where the chain starts at the whole-object pseudo entry (``<all>``: every function of the target is
a root), it starts at an *exported* function whenever one reaches the first import or site: the one
with the fewest calls to it, then the lowest address (a reverse BFS from the target).  Only when no
export, constructor or entry point reaches it does the chain start at the lowest-address direct
caller.  Objects known only from a shipped summary table (``--libc glibc|musl``) have no call graph
here: their part of the chain stays one ``summary`` step.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from uk_depscan.syscalls.closure import OpenSummary, ReachedSyscall, Site, Step
from uk_depscan.syscalls.pathcache import PathMemo, question
from uk_depscan.syscalls.summaries import ALL

if TYPE_CHECKING:
    from uk_depscan.elf.file import ElfFile
    from uk_depscan.syscalls.callgraph import CallGraph
    from uk_depscan.syscalls.reach import EngineSummary
    from uk_depscan.syscalls.scan import LazySymbolizer

CALL = "call"
# a path through the reference graph passes a piece of data: the function before it loads the data,
# which holds the address of the function after it (an address-taken call, issue 14 item 1)
REF = "ref"
NO_PARENT = -1


def bfs_links(
    indptr: np.ndarray, indices: np.ndarray, n_nodes: int, roots: np.ndarray, blocked: np.ndarray | None
) -> np.ndarray:
    """Predecessor links of a breadth-first walk: ``links[v]`` is the node ``v`` was first reached
    from (roots link to themselves, unreached nodes are :data:`NO_PARENT`).  Vectorised per level;
    the frontier is sorted, so each node's link is its lowest-numbered predecessor on that level."""
    links = np.full(n_nodes, NO_PARENT, np.int64)
    seen = np.zeros(n_nodes, np.bool_) if blocked is None else blocked.copy()
    frontier = np.unique(roots[(roots >= 0) & (roots < n_nodes)])
    frontier = frontier[~seen[frontier]]
    seen[frontier] = True
    links[frontier] = frontier
    while len(frontier):
        frontier, src = _next_level(indptr, indices, frontier, seen)
        links[frontier] = src
    return links


def _next_level(
    indptr: np.ndarray, indices: np.ndarray, frontier: np.ndarray, seen: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    starts = indptr[frontier]
    counts = indptr[frontier + 1] - starts
    total = int(counts.sum())
    if not total:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    offs = np.repeat(starts - np.concatenate(([0], np.cumsum(counts)[:-1])), counts) + np.arange(total)
    nxt = indices[offs].astype(np.int64)
    src = np.repeat(frontier, counts)
    fresh = ~seen[nxt]
    nxt, src = nxt[fresh], src[fresh]
    level, first = np.unique(nxt, return_index=True)
    seen[level] = True
    return level, src[first]


class ObjectPaths:
    """Function-level paths inside one engine-scanned object."""

    def __init__(self, summary: EngineSummary) -> None:
        self.summary = summary
        self.graph: CallGraph = summary.scan.graph
        self.memo: PathMemo | None = summary.path_memo  # the cached answers, when the scan is cached
        self._blocked: np.ndarray | None = None
        self._links: dict[tuple[str, bool], np.ndarray] = {}
        self._reverse: tuple[np.ndarray, np.ndarray] | None = None
        self._starts: np.ndarray | None = None
        self._names: LazySymbolizer | None = None

    # -- names ------------------------------------------------------------------------------------
    def name(self, node: int) -> str:
        """symtab/dynsym name of a function node (mangled; renderers demangle), else ``sub_<addr>``;
        a piece of data: ``data_<addr>`` (its start)."""
        if node >= self.graph.data_base:
            return f"data_{int(self.graph.data_starts[node - self.graph.data_base]):x}"
        if node >= self.graph.n_funcs:
            return self.graph.import_keys[node - self.graph.n_funcs]
        known = self.memo.names.get(str(node)) if self.memo is not None else None
        if known is not None:  # a string from the cache, escaped by every renderer like any name
            return known
        addr = int(self.graph.func_starts[node])
        if self._names is None:
            from uk_depscan.syscalls.scan import LazySymbolizer

            self._names = LazySymbolizer(self.summary.elf)
        name = self._names.name_at(addr) or f"sub_{addr:x}"
        if self.memo is not None:
            self.memo.name_node(node, name)
        return name

    def kind(self, node: int) -> str:
        """Step kind of a node on a path: a function called, or a piece of data passed through."""
        return REF if node >= self.graph.data_base else CALL

    def node_of(self, addr: int) -> int:
        return int(np.searchsorted(self.graph.func_starts, np.uint64(addr), side="right")) - 1

    def import_node(self, key: str) -> int | None:
        try:
            return self.graph.n_funcs + self.graph.import_keys.index(key)
        except ValueError:
            return None

    def site_for(self, entry: str, number: int, failure: bool) -> Site | None:
        """The site making ``number`` nearest to ``entry`` (fewest calls, then lowest address)."""
        reach = self.summary.reach(entry)
        if reach is None:
            return None
        best: tuple[int, int, Site] | None = None
        for site in reach.sites:
            if site.number != number or site.address is None or (site.failure and not failure):
                continue
            path = self.forward(entry, self.node_of(site.address), failure)
            if path is not None and (best is None or (len(path), site.address) < best[:2]):
                best = (len(path), site.address, site)
        return best[2] if best is not None else None

    @property
    def blocked(self) -> np.ndarray:
        """The failure functions (read only: the walks copy it); not needed when the paths are cached."""
        if self._blocked is None:
            self._blocked = self.summary.failure_mask()
        return self._blocked

    # -- paths ------------------------------------------------------------------------------------
    def forward(self, entry: str, target: int, failure: bool) -> list[int] | None:
        """Nodes from one of ``entry``'s functions to ``target`` (inclusive), fewest calls; paths that
        avoid failure functions first unless the syscall is made only on failure paths."""
        q = question("f", failure, target, entry)
        known, path = self._stored(q, target, entry)
        if not known:
            path = self._forward(entry, target, failure)
            if self.memo is not None:
                self.memo.put(q, path)
        return path

    def _forward(self, entry: str, target: int, failure: bool) -> list[int] | None:
        for avoid in (False,) if failure else (True, False):
            links = self._links_from(entry, avoid)
            if 0 <= target < len(links) and links[target] != NO_PARENT:
                return _walk(links, target)
        return None

    def _links_from(self, entry: str, avoid: bool) -> np.ndarray:
        key = (entry, avoid)
        if key not in self._links:
            g = self.graph
            roots = self.summary.root_nodes(entry)
            self._links[key] = bfs_links(g.indptr, g.indices, g.n_nodes, roots, self.blocked if avoid else None)
        return self._links[key]

    def from_exports(self, target: int, failure: bool) -> list[int] | None:
        """Path from the nearest exported function (or constructor, or entry point) to ``target``:
        fewest calls, then lowest address; else from the lowest-address direct caller."""
        q = question("r", failure, target)
        known, path = self._stored(q, target, None)
        if not known:
            path = self._from_exports(target, failure)
            if self.memo is not None:
                self.memo.put(q, path)
        return path

    def _stored(self, q: str, target: int, entry: str | None) -> tuple[bool, list[int] | None]:
        """(known, path) from the cache, the path checked against the call graph first."""
        if self.memo is None or q not in self.memo.raw:
            return False, None
        path = self.memo.raw[q]
        if path is None:
            return True, None
        why = self._refuse(path, target, entry)
        if why is not None:
            self.memo.drop(q, why)
            return False, None
        return True, list(path)

    def _refuse(self, path: list[int], target: int, entry: str | None) -> str | None:
        """Why a cached path cannot be one of this graph's (None: it can): every node in range,
        every step an edge, ending at ``target`` and (forward) starting at one of ``entry``'s functions."""
        g = self.graph
        if not path or path[-1] != target or min(path) < 0 or max(path) >= g.n_nodes:
            return "a path outside the call graph or not to its target"
        if len(set(path)) != len(path):  # a search's path never repeats a node (and the check stays linear)
            return "a path through a node twice"
        for u, w in itertools.pairwise(path):
            if not bool((g.indices[int(g.indptr[u]) : int(g.indptr[u + 1])] == w).any()):
                return "a path step that is no edge of the call graph"
        if entry is not None:
            roots = self.summary.root_nodes(entry)
            if not bool((roots == path[0]).any()):
                return "a path that does not start at its entry"
        return None

    def _from_exports(self, target: int, failure: bool) -> list[int] | None:
        for avoid in (False,) if failure else (True, False):
            path = self._reverse_search(target, self.blocked if avoid else None)
            if path is not None:
                return path
        return None

    def _reverse_search(self, target: int, blocked: np.ndarray | None) -> list[int] | None:
        rev_indptr, rev_indices = self._transposed()
        starts = self._start_mask()
        n = self.graph.n_nodes
        toward = np.full(n, NO_PARENT, np.int64)  # next node on the way to the target
        seen = np.zeros(n, np.bool_) if blocked is None else blocked.copy()
        seen[target] = True
        toward[target] = target
        frontier = np.asarray([target], np.int64)
        callers: np.ndarray | None = None
        while len(frontier):
            if bool(starts[frontier].any()):
                return _walk_forward(toward, int(frontier[starts[frontier]][0]))
            frontier, nxt = _next_level(rev_indptr, rev_indices, frontier, seen)
            toward[frontier] = nxt
            if callers is None:
                callers = frontier
        if callers is not None and len(callers):
            return _walk_forward(toward, int(callers[0]))
        return None

    def _transposed(self) -> tuple[np.ndarray, np.ndarray]:
        if self._reverse is None:
            g = self.graph
            src = np.repeat(np.arange(g.n_nodes, dtype=np.int64), np.diff(g.indptr))
            order = _grouping_order(g.indices, g.n_nodes)
            indptr = np.zeros(g.n_nodes + 1, np.int64)
            np.cumsum(np.bincount(g.indices, minlength=g.n_nodes), out=indptr[1:])
            self._reverse = (indptr, src[order])
        return self._reverse

    def _start_mask(self) -> np.ndarray:
        """Functions a chain may start at: exports, constructors and the ELF entry point."""
        if self._starts is None:
            from uk_depscan.syscalls.summaries import ENTRY, INIT

            g = self.graph
            mask = np.zeros(g.n_nodes, np.bool_)
            addrs = [a for _, a in self.summary.scan.exports]
            addrs += self.summary.addresses(INIT) + self.summary.addresses(ENTRY)
            if addrs and g.n_funcs:
                want = np.asarray(addrs, np.uint64)
                nodes = np.minimum(np.searchsorted(g.func_starts, want), g.n_funcs - 1)
                mask[nodes[g.func_starts[nodes] == want]] = True
            self._starts = mask
        return self._starts


def _grouping_order(values: np.ndarray, bound: int) -> np.ndarray:
    """``np.argsort(values, kind="stable")`` for non-negative values below ``bound``, as two radix
    passes: numpy sorts 8- and 16-bit keys by radix but 32-bit ones by timsort, and libtorch_cpu.so's
    2.2 M call edges took 0.1 s that way (a stable sort by the high half of an order stable by the
    low half is the stable order of the whole)."""
    if bound <= 1 << 16:
        return np.argsort(values.astype(np.uint16), kind="stable")
    low = np.argsort((values & 0xFFFF).astype(np.uint16), kind="stable")
    high = (values >> 16)[low].astype(np.uint8 if bound <= 1 << 24 else np.uint16)
    order: np.ndarray = low[np.argsort(high, kind="stable")]
    return order


def _walk(links: np.ndarray, target: int) -> list[int]:
    path = [target]
    while int(links[path[-1]]) != path[-1]:
        path.append(int(links[path[-1]]))
    return path[::-1]


def _walk_forward(toward: np.ndarray, start: int) -> list[int]:
    path = [start]
    while int(toward[path[-1]]) != path[-1]:
        path.append(int(toward[path[-1]]))
    return path


class PathSources:
    """Call graphs to follow chains in, per object of the closure, made once per analysis.

    An engine-scanned object is its own source.  An object known from a shipped summary table has
    no call graph; when the file the loader found for it has the build-id the table records, the
    table was made from that very file, so its engine scan (cached by content) gives the paths.
    Otherwise its part of a chain stays one ``summary`` step."""

    def __init__(self, summaries: Mapping[int, OpenSummary], hosts: Mapping[str, ElfFile] | None = None) -> None:
        self.summaries = summaries
        self.hosts = hosts or {}
        self._paths: dict[int, ObjectPaths | None] = {}
        self._by_library: dict[str, ObjectPaths | None] = {}

    def __call__(self, obj: int) -> ObjectPaths | None:
        if obj not in self._paths:
            self._paths[obj] = self._make(obj)
        return self._paths[obj]

    def _make(self, obj: int) -> ObjectPaths | None:
        from uk_depscan.syscalls.reach import EngineSummary
        from uk_depscan.syscalls.summaries import TableSummary

        s = self.summaries.get(obj)
        if isinstance(s, EngineSummary):
            return ObjectPaths(s)
        if not isinstance(s, TableSummary):
            return None
        if s.library not in self._by_library:
            self._by_library[s.library] = self._host_paths(s)
        return self._by_library[s.library]

    def _host_paths(self, table: object) -> ObjectPaths | None:
        from uk_depscan.errors import DepscanError
        from uk_depscan.syscalls.reach import EngineSummary
        from uk_depscan.syscalls.scan import scan_library
        from uk_depscan.syscalls.summaries import TableSummary

        assert isinstance(table, TableSummary)
        build_id = table.provenance.get("build_id")
        for s in self.summaries.values():  # already scanned (libc model auto): reuse it
            if isinstance(s, EngineSummary) and s.library == table.library and build_id and s.elf.build_id == build_id:
                return ObjectPaths(s)
        elf = self.hosts.get(table.library)
        if elf is None or not build_id or elf.build_id != build_id:
            return None
        try:
            return ObjectPaths(EngineSummary(table.library, elf, scan_library(elf)))
        except DepscanError:
            return None


def expand_chains(reached: Mapping[int, ReachedSyscall], paths_of: PathSources) -> dict[int, ReachedSyscall]:
    """Every chain of ``reached`` continued function by function inside each object with a call graph."""
    return {n: expand_chain(r, paths_of) for n, r in reached.items()}


def expand_chain(r: ReachedSyscall, paths_of: _PathsOf) -> ReachedSyscall:
    """One chain continued inside its objects (unchanged where an object has no call graph)."""
    if r.site is None or len(r.nodes) + 1 != len(r.chain):
        return r
    if r.site.address is None:  # a shipped summary's site: found again in the host file's graph
        op = paths_of(r.nodes[-1][0])
        site = op.site_for(r.nodes[-1][1], r.number, r.failure_only) if op is not None else None
        # not found (no host file with the table's build-id): that object stays one summary step,
        # the objects before it are still followed function by function
        if site is not None:
            step = Step(site.kind, r.chain[-1].library, site.function, f"{site.address:#x}")
            r = dataclasses.replace(r, site=site, chain=(*r.chain[:-1], step))
    out: list[Step] = []
    for i, (obj, entry) in enumerate(r.nodes):
        head = r.chain[i]  # the root step, or the import step that entered this object
        tail = r.chain[i + 1]  # the import step that leaves it, or the site step
        last = i == len(r.nodes) - 1
        op = paths_of(obj)
        path = _segment(op, entry, tail, last, r, root=i == 0) if op is not None else None
        if op is None or path is None:
            out.append(head)
            continue
        if i == 0 and (entry == ALL or entry in op.summary.code_entries):  # --entry by address: its name
            head = dataclasses.replace(head, symbol=op.name(path[0]))
        out.append(head)
        # a pseudo entry (<entry>, <init>, <address-taken>) names no function: name the one it starts at
        first = 0 if entry.startswith("<") and entry != ALL and len(path) > 1 else 1
        # between the entry's function and the target: the site's function (named by the site step)
        # or the import node (named by the import step)
        out.extend(Step(op.kind(f), tail.library, op.name(f)) for f in path[first:-1])
    site_step = r.chain[-1]
    last_obj = paths_of(r.nodes[-1][0])
    address = r.site.address if r.site is not None else None
    if last_obj is not None and site_step.symbol in ("?", "") and address is not None:
        site_step = dataclasses.replace(site_step, symbol=last_obj.name(last_obj.node_of(address)))
    out.append(site_step)
    return dataclasses.replace(r, chain=tuple(out))


def _segment(op: ObjectPaths, entry: str, tail: Step, last: bool, r: ReachedSyscall, root: bool) -> list[int] | None:
    if last:
        assert r.site is not None
        if r.site.address is None:
            return None
        target = op.node_of(r.site.address)
        if target < 0:
            return None
    else:
        node = op.import_node(tail.symbol)
        if node is None:
            return None
        target = node
    if root and entry == ALL:
        return op.from_exports(target, r.failure_only)
    return op.forward(entry, target, r.failure_only)


if TYPE_CHECKING:
    from collections.abc import Callable

    _PathsOf = Callable[[int], ObjectPaths | None]
