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
from typing import Protocol

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


@dataclass(frozen=True)
class Site:
    """Where a syscall is made: ``kind`` is direct, wrapper, local_wrapper or summary."""

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
    found: dict[int, ReachedSyscall] = {}
    parents: dict[Node, tuple[Node | None, Step]] = {}
    deferred: list[tuple[Node, Node, Step]] = []
    queue: deque[Node] = deque()
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
            _visit(node, summaries, bind, parents, queue, deferred, found, failure_phase)
    return found


def _visit(
    node: Node,
    summaries: Mapping[int, OpenSummary],
    bind: Mapping[tuple[int, str], Node | None],
    parents: dict[Node, tuple[Node | None, Step]],
    queue: deque[Node],
    deferred: list[tuple[Node, Node, Step]],
    found: dict[int, ReachedSyscall],
    failure: bool,
) -> None:
    summary = summaries.get(node[0])
    if summary is None:
        return
    reach = summary.reach(node[1])
    if reach is None:
        return
    chain, nodes = _chain(node, parents)
    for site in reach.sites:
        step = Step(site.kind, summary.library, site.function, f"{site.address:#x}" if site.address is not None else "")
        _record(found, site.number, (*chain, step), failure or site.failure, nodes, site)
    for imp in reach.imports:
        target = bind.get((node[0], imp))
        if target is None or target in parents:
            continue
        step = Step("import", summary.library, imp)
        if imp.split("@", 1)[0] in FAILURE_FUNCTIONS and not failure:
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


def _record(
    found: dict[int, ReachedSyscall],
    number: int,
    chain: tuple[Step, ...],
    failure: bool,
    nodes: tuple[Node, ...] = (),
    site: Site | None = None,
) -> None:
    old = found.get(number)
    kinds = tuple(sorted({s.kind for s in chain} - {"entry", "import"}))
    libs = tuple(dict.fromkeys(s.library for s in chain))
    if old is None:
        found[number] = ReachedSyscall(number, chain, failure, kinds, libs, nodes, site)
        return
    merged_kinds = tuple(sorted(set(old.kinds) | set(kinds)))
    merged_libs = tuple(dict.fromkeys(old.libraries + libs))
    # a chain on normal paths beats one through a failure function, then the shorter one wins (the
    # kept chain is a failure chain exactly when the syscall is failure-only)
    if (old.failure_only, len(old.chain)) <= (failure, len(chain)):
        keep, keep_nodes, keep_site = old.chain, old.nodes, old.site
    else:
        keep, keep_nodes, keep_site = chain, nodes, site
    found[number] = ReachedSyscall(
        number, keep, old.failure_only and failure, merged_kinds, merged_libs, keep_nodes, keep_site
    )
