"""How directly the target makes each syscall: its own sites, and the imports whose closure makes it.

The reached set (:func:`uk_depscan.syscalls.closure.close_over_bindings`) keeps one shortest chain per
syscall; that says *that* the target can make a syscall, not how strongly the evidence points at it.
A porting engineer trusts "the target calls ``unlink``, which makes ``unlink``" far more than "the
target calls ``dlopen``, whose closure makes 60 syscalls, one of them ``unlink``".  So, per syscall,
on normal paths only (failure functions are not followed, failure-only sites not counted):

* ``own_sites``: sites in the target's own code (syscall instructions, ``syscall()`` calls);
* ``imports``: how many of the target's imports have a closure that makes it;
* ``narrowest``: the import with the smallest closure among those, and that closure's size.

Closures are computed once for every node reachable from the target's imports: Tarjan's strongly
connected components over the (object, entry) graph, syscall sets as integer bit masks, callees
before callers - linear in nodes and edges, however many imports share the same library code.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from uk_depscan.syscalls.closure import Node, OpenSummary, by_importer, is_failure

# Bit masks hold numbers below this; a recovered number outside the syscall tables (syscall(-1) is
# 2**64 - 1 once unsigned) is not a syscall and gets no breadth (the report names it elsewhere).
MAX_NUMBER = 4096


@dataclass(frozen=True)
class SyscallBreadth:
    """Per syscall number (see :class:`uk_depscan.model.Breadth`, its report form)."""

    own_sites: int
    imports: int
    narrowest: str | None
    narrowest_size: int


def breadth(
    roots: Iterable[Node],
    summaries: Mapping[int, OpenSummary],
    bind: Mapping[tuple[int, str], Node | None],
    root_object: int = 0,
    closed: dict[Node, int] | None = None,
) -> dict[int, SyscallBreadth]:
    """Syscall number -> breadth of the evidence, from the target's roots (nodes of ``root_object``).
    ``closed``: closures already computed (see :func:`_closures`), extended in place."""
    own: dict[int, int] = {}
    reached: set[str] = set()
    for node in roots:
        if node[0] != root_object or node[0] not in summaries:
            continue
        reach = summaries[node[0]].reach(node[1])
        if reach is None:
            continue
        for site in reach.sites:
            if not site.failure:
                own[site.number] = own.get(site.number, 0) + 1
        reached.update(reach.imports)  # C-level union; ``--entry 'at::*'`` has 19 k roots
    first = {i for i in reached if _normal(i)}
    targets = {imp: t for imp in sorted(first) if (t := bind.get((root_object, imp))) is not None}
    closed = _closures(targets.values(), summaries, bind, closed)
    count: dict[int, int] = {}
    best: dict[int, tuple[int, str]] = {}
    for imp, target in targets.items():
        bits = closed.get(target, 0)
        size = bits.bit_count()
        for n in _numbers(bits):
            count[n] = count.get(n, 0) + 1
            if n not in best or (size, imp) < best[n]:
                best[n] = (size, imp)
    out = {}
    for n in sorted(set(own) | set(count)):
        size, imp = best.get(n, (0, ""))  # only own sites: no import
        out[n] = SyscallBreadth(own.get(n, 0), count.get(n, 0), imp or None, size)
    return out


def import_reach(
    imports: Iterable[str],
    summaries: Mapping[int, OpenSummary],
    bind: Mapping[tuple[int, str], Node | None],
    root_object: int = 0,
    closed: dict[Node, int] | None = None,
) -> dict[str, frozenset[int]]:
    """Import key of ``root_object`` -> the syscalls its provider's closure makes on normal paths
    (what ``explain IMPORT`` answers, from a binary or a saved report).  Unbound imports reach nothing."""
    targets = {imp: t for imp in sorted(set(imports)) if (t := bind.get((root_object, imp))) is not None}
    closed = _closures(targets.values(), summaries, bind, closed)
    return {imp: frozenset(_numbers(closed.get(t, 0))) for imp, t in targets.items()}


def _normal(import_key: str) -> bool:
    return not is_failure(import_key)


@lru_cache(maxsize=4096)
def _numbers(bits: int) -> tuple[int, ...]:
    """The set bits of ``bits``, lowest first; memoised, as most closures share a few syscall sets."""
    out = []
    while bits:
        low = bits & -bits
        out.append(low.bit_length() - 1)
        bits ^= low
    return tuple(out)


def _closures(
    starts: Iterable[Node],
    summaries: Mapping[int, OpenSummary],
    bind: Mapping[tuple[int, str], Node | None],
    closed: dict[Node, int] | None = None,
) -> dict[Node, int]:
    """Node -> bit mask of the syscalls its closure makes on normal paths (iterative Tarjan).

    ``closed`` (extended in place and returned): closures of an earlier call over the same summaries
    and bindings.  A node's closure does not depend on where the walk started, and every node an
    earlier walk closed has its whole closure closed too, so those nodes are leaves here."""
    own_bits: dict[Node, int] = {}
    succ: dict[Node, list[Node]] = {}
    # importer -> import key -> provider, normal paths only (failure functions are not followed)
    normal = {o: {k: t for k, t in m.items() if _normal(k)} for o, m in by_importer(bind).items()}
    # Many nodes of one object reach the very same imports (libtorch_python.so's walk: 4.9 k nodes,
    # 807 distinct import sets, 856 k imports): their successor lists, and the closures of those
    # successors once all are closed, are made once per (object, imports).
    nxt_of: dict[tuple[int, tuple[str, ...]], list[Node]] = {}
    succ_key: dict[Node, tuple[int, tuple[str, ...]]] = {}
    succ_bits: dict[tuple[int, tuple[str, ...]], int] = {}

    def expand(node: Node) -> None:
        summary = summaries.get(node[0])
        reach = summary.reach(node[1]) if summary is not None else None
        bits, nxt = 0, []
        key: tuple[int, tuple[str, ...]] = (node[0], ())
        if reach is not None:
            for site in reach.sites:
                if not site.failure and 0 <= site.number < MAX_NUMBER:
                    bits |= 1 << site.number
            key = (node[0], reach.imports)
            known = nxt_of.get(key)
            if known is None:
                targets = normal.get(node[0], {})
                known = nxt_of[key] = [targets[imp] for imp in reach.imports if imp in targets]
            nxt = known
        own_bits[node], succ[node], succ_key[node] = bits, nxt, key

    index: dict[Node, int] = {}
    low: dict[Node, int] = {}
    on_stack: set[Node] = set()
    stack: list[Node] = []
    closed = {} if closed is None else closed
    for start in starts:
        if start in index or start in closed:
            continue
        expand(start)
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        work = [(start, iter(succ[start]))]
        while work:
            v, edges = work[-1]
            for w in edges:  # the next successor not closed yet (most are, callees first)
                if w in closed:
                    continue
                if w not in index:
                    expand(w)
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(succ[w])))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    u = work[-1][0]
                    low[u] = min(low[u], low[v])
                if low[v] == index[v]:
                    members = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        members.append(w)
                        if w == v:
                            break
                    # every successor outside the component is already closed (callees first)
                    bits = 0
                    for m in members:
                        bits |= own_bits[m]
                        known_bits = succ_bits.get(succ_key[m])
                        if known_bits is None:
                            known_bits, complete = 0, True
                            for w in succ[m]:
                                b = closed.get(w)
                                if b is None:  # a member of this component: its bits are in ``bits``
                                    complete = False
                                else:
                                    known_bits |= b
                            if complete:  # final: a closed node's closure never changes
                                succ_bits[succ_key[m]] = known_bits
                        bits |= known_bits
                    for m in members:
                        closed[m] = bits
    return closed
