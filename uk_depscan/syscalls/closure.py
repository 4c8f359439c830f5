"""Closing per-library summaries over symbol bindings: which syscalls the target can reach, and why.

Each library contributes an *open* summary — for an entry point (an export key such as
``pthread_create@GLIBC_2.34``, or a pseudo entry like ``<entry>``/``<init>``): the syscall
sites it reaches inside the library and the imports it calls.  Imports are followed to the
object ld.so binds them to (:mod:`uk_depscan.loader.binding`), so ``libtorch_cpu.so → std::thread
→ libstdc++ → pthread_create → libc → clone3`` becomes one evidence chain.  The walk is
breadth-first, so each syscall keeps its *shortest* chain.

Error paths are a separate class: imports named in :data:`FAILURE_FUNCTIONS` (abort, assertion
and fortify failures) are walked only after everything else, and syscalls first reached
through them are marked ``failure_only`` rather than dropped (over-approximation is acceptable;
silent under-approximation is not).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple, Protocol, runtime_checkable

FAILURE_FUNCTIONS = frozenset(
    {
        "abort",
        "__assert_fail",
        "__assert_perror_fail",
        "__stack_chk_fail",
        "__fortify_fail",
        "__chk_fail",
        "__libc_fatal",
        "__libc_message",
        "_dl_signal_error",
        "__cxa_pure_virtual",
        "__cxa_bad_cast",
        "__cxa_bad_typeid",
        "_ZSt9terminatev",
        "__gxx_personality_v0_terminate",
        "_ZSt20__throw_length_errorPKc",
    }
)


@lru_cache(maxsize=1 << 16)
def is_failure(key: str) -> bool:
    """Whether an import or export key (``abort@GLIBC_2.2.5``) names a failure function; memoised,
    as the closures ask it for the same few thousand keys over and over."""
    return key.split("@", 1)[0] in FAILURE_FUNCTIONS


class Site(NamedTuple):
    """Where a syscall is made: ``kind`` is direct, wrapper, local_wrapper or summary.  A named
    tuple, not a frozen dataclass: a warm libtorch_cpu.so analysis reads 15 k of them from the
    reach cache, and a frozen dataclass's ``__init__`` costs several times a tuple's."""

    number: int
    kind: str
    function: str
    address: int | None = None
    failure: bool = False  # reachable from the entry only through a failure function


@dataclass(frozen=True)
class Reach:
    """What one entry point of one library reaches inside that library."""

    sites: tuple[Site, ...]
    imports: tuple[str, ...]


class OpenSummary(Protocol):
    """A library's per-entry reach, from the engine, a cache or a shipped table."""

    library: str

    def reach(self, entry: str) -> Reach | None: ...


@runtime_checkable
class BatchSummary(OpenSummary, Protocol):
    """An :class:`OpenSummary` that computes many entries faster together than one by one."""

    def prefetch(self, entries: Iterable[str]) -> None: ...


@dataclass(frozen=True)
class Step:
    """One edge of an evidence chain."""

    kind: str  # "entry", "import", "direct", "wrapper", "local_wrapper", "summary", "baseline"
    library: str
    symbol: str
    detail: str = ""


@dataclass(frozen=True)
class ReachedSyscall:
    number: int
    chain: tuple[Step, ...]
    failure_only: bool
    kinds: tuple[str, ...]
    libraries: tuple[str, ...]
    # the (object, entry) node of each object the chain passes through, and the site that ends it:
    # what :mod:`uk_depscan.syscalls.chains` follows function by function inside each object
    nodes: tuple[tuple[int, str], ...] = ()
    site: Site | None = None


Node = tuple[int, str]  # (object index, entry key)


class _Found:
    """What :func:`close_over_bindings` has found for one syscall so far (mutable while it walks;
    20 k sites reach libtorch_cpu.so's syscalls, and one frozen record per site was most of the walk)."""

    __slots__ = ("chain", "failure", "kinds", "libraries", "nodes", "site")

    def __init__(
        self,
        chain: tuple[Step, ...],
        failure: bool,
        kinds: set[str],
        libraries: dict[str, None],
        nodes: tuple[Node, ...],
        site: Site,
    ) -> None:
        self.chain, self.failure, self.kinds, self.libraries = chain, failure, kinds, libraries
        self.nodes, self.site = nodes, site

    def result(self, number: int) -> ReachedSyscall:
        return ReachedSyscall(
            number, self.chain, self.failure, tuple(sorted(self.kinds)), tuple(self.libraries), self.nodes, self.site
        )


def close_over_bindings(
    roots: Iterable[Node],
    summaries: Mapping[int, OpenSummary],
    bind: Mapping[tuple[int, str], Node | None],
    root_kind: str = "entry",
) -> dict[int, ReachedSyscall]:
    """Walk from ``roots`` through summaries and bindings; return syscall number → evidence.

    ``bind[(importer, import_key)]`` is the (provider object, provider export key) the loader
    chose, or None for an unresolved import.
    """
    found: dict[int, _Found] = {}
    parents: dict[Node, tuple[Node | None, Step]] = {}
    deferred: list[tuple[Node, Node, Step]] = []
    queue: deque[Node] = deque()
    batched: set[Node] = set()
    expanded: set[tuple[int, tuple[str, ...]]] = set()
    targets = by_importer(bind)
    for node in roots:
        if node not in parents:
            parents[node] = (
                None,
                Step(root_kind, summaries[node[0]].library if node[0] in summaries else "?", node[1]),
            )
            queue.append(node)
    for failure_phase in (False, True):
        if failure_phase:
            for child, parent, step in deferred:
                if child not in parents:
                    parents[child] = (parent, step)
                    queue.append(child)
        while queue:
            node = queue.popleft()
            if node not in batched and isinstance(summary := summaries.get(node[0]), BatchSummary):
                # every queued entry of this library is visited: compute their reaches together
                batch = [node, *(n for n in queue if n[0] == node[0] and n not in batched)]
                batched.update(batch)
                summary.prefetch([n[1] for n in batch])
            _visit(node, summaries, targets.get(node[0], {}), parents, queue, deferred, found, failure_phase, expanded)
    return {n: f.result(n) for n, f in found.items()}


def by_importer(bind: Mapping[tuple[int, str], Node | None]) -> dict[int, dict[str, Node]]:
    """``bind`` as importer -> import key -> provider node, unresolved imports left out: the walks
    look up every import of every reach (850 k look-ups for libtorch_python.so), and a per-object
    dict spares a key tuple per look-up."""
    out: dict[int, dict[str, Node]] = {}
    for (importer, key), target in bind.items():
        if target is not None:
            out.setdefault(importer, {})[key] = target
    return out


def _visit(
    node: Node,
    summaries: Mapping[int, OpenSummary],
    targets: Mapping[str, Node],
    parents: dict[Node, tuple[Node | None, Step]],
    queue: deque[Node],
    deferred: list[tuple[Node, Node, Step]],
    found: dict[int, _Found],
    failure: bool,
    expanded: set[tuple[int, tuple[str, ...]]],
) -> None:
    summary = summaries.get(node[0])
    if summary is None:
        return
    reach = summary.reach(node[1])
    if reach is None:
        return
    if reach.sites:
        _record_sites(found, reach.sites, summary.library, *_chain(node, parents), failure)
    # Another node of this object that reached the same imports was expanded before: each of
    # their providers has a parent already, or (a failure import, in the first phase) is deferred
    # ahead of this one and given one when the second phase starts, so expanding again changes
    # nothing.  (libtorch_python.so: 4.9 k nodes, 807 distinct import sets.)
    seen = (node[0], reach.imports)
    if seen in expanded:
        return
    expanded.add(seen)
    for imp in reach.imports:
        target = targets.get(imp)
        if target is None or target in parents:
            continue
        step = Step("import", summary.library, imp)
        if not failure and is_failure(imp):
            deferred.append((target, node, step))
            continue
        parents[target] = (node, step)
        queue.append(target)


def _chain(node: Node, parents: dict[Node, tuple[Node | None, Step]]) -> tuple[tuple[Step, ...], tuple[Node, ...]]:
    steps: list[Step] = []
    nodes: list[Node] = []
    cur: Node | None = node
    while cur is not None:
        parent, step = parents[cur]
        steps.append(step)
        nodes.append(cur)
        cur = parent
    return tuple(reversed(steps)), tuple(reversed(nodes))


_NOT_KINDS = frozenset({"entry", "import"})  # steps that lead to a syscall but do not say how it is made


def _record_sites(
    found: dict[int, _Found],
    sites: tuple[Site, ...],
    library: str,
    prefix: tuple[Step, ...],
    nodes: tuple[Node, ...],
    failure: bool,
) -> None:
    """Record every site of one node, reached by the chain ``prefix`` (which each site's own step ends).

    Per syscall: the kinds and libraries of every chain that reaches it are merged; the chain kept
    is one on normal paths over one through a failure function, then the shorter, then the first
    found (the kept chain is a failure chain exactly when the syscall is failure-only)."""
    prefix_kinds = {s.kind for s in prefix} - _NOT_KINDS
    libraries = (*dict.fromkeys(s.library for s in prefix), library)
    length = len(prefix) + 1
    merged: set[int] = set()  # syscalls whose libraries already hold this chain's
    for site in sites:
        fail = failure or site.failure
        old = found.get(site.number)
        if old is not None:
            if site.kind not in _NOT_KINDS:
                old.kinds.add(site.kind)
            if site.number not in merged:
                merged.add(site.number)
                for lib in libraries:
                    old.libraries.setdefault(lib)
            if old.failure or len(old.chain) > length:  # else nothing of this chain can win
                if (old.failure, len(old.chain)) > (fail, length):
                    old.chain, old.nodes, old.site = (*prefix, _site_step(site, library)), nodes, site
                old.failure = old.failure and fail
            continue
        kinds = prefix_kinds | ({site.kind} - _NOT_KINDS)
        found[site.number] = _Found(
            (*prefix, _site_step(site, library)), fail, kinds, dict.fromkeys(libraries), nodes, site
        )
        merged.add(site.number)


def _site_step(site: Site, library: str) -> Step:
    return Step(site.kind, library, site.function, f"{site.address:#x}" if site.address is not None else "")
