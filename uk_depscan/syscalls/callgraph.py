"""Compact function-level call graph of one library (CSR over numpy arrays) and reachability.

Nodes ``0 .. n_funcs-1`` are function starts (sorted addresses, ``func_starts``); nodes
``n_funcs .. n_funcs+n_imports-1`` are imported symbols (``import_keys``, "name@VERSION");
the last ``n_data`` nodes are pieces of relocated data (``data_starts``, sorted: a piece runs to
the next start).  Edges are direct calls and jumps between functions, PLT calls, GOT
calls/jumps and address-taken references: code → a function or a piece of data whose address it
loads, data → the functions, imports and data its relocated words point to (the reference graph
of :mod:`uk_depscan.syscalls.scan`).  There is no Python object per edge.  A syscall *site*
is attached to its containing function by :mod:`uk_depscan.syscalls.scan`.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)  # numpy fields: identity equality and hash
class CallGraph:
    func_starts: np.ndarray  # uint64, sorted, unique
    indptr: np.ndarray  # int64, len n_nodes + 1
    indices: np.ndarray  # int32 targets
    import_keys: tuple[str, ...]
    data_starts: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.uint64))  # uint64, sorted

    @property
    def n_funcs(self) -> int:
        return len(self.func_starts)

    @property
    def n_imports(self) -> int:
        return len(self.import_keys)

    @property
    def n_data(self) -> int:
        return len(self.data_starts)

    @property
    def data_base(self) -> int:
        """Node number of the first piece of data."""
        return len(self.func_starts) + len(self.import_keys)

    @property
    def n_nodes(self) -> int:
        return len(self.func_starts) + len(self.import_keys) + len(self.data_starts)

    @property
    def n_edges(self) -> int:
        return len(self.indices)

    @classmethod
    def from_edges(
        cls,
        func_starts: np.ndarray,
        src: np.ndarray,
        dst: np.ndarray,
        import_keys: tuple[str, ...],
        data_starts: np.ndarray | None = None,
    ) -> CallGraph:
        data = np.zeros(0, np.uint64) if data_starts is None else np.asarray(data_starts, np.uint64)
        n = len(func_starts) + len(import_keys) + len(data)
        src = np.asarray(src, np.int64)
        dst = np.asarray(dst, np.int64)
        keep = src != dst
        key = np.sort(src[keep] * n + dst[keep])
        if len(key):
            key = key[np.concatenate(([True], key[1:] != key[:-1]))]
        s = key // n
        d = (key % n).astype(np.int32)
        indptr = np.zeros(n + 1, np.int64)
        np.cumsum(np.bincount(s, minlength=n), out=indptr[1:])
        return cls(np.asarray(func_starts, np.uint64), indptr, d, import_keys, data)

    def function_at(self, addr: int) -> int | None:
        i = int(np.searchsorted(self.func_starts, np.uint64(addr)))
        if i < len(self.func_starts) and int(self.func_starts[i]) == addr:
            return i
        return None

    def reachable(self, roots: Iterable[int], blocked: np.ndarray | None = None) -> np.ndarray:
        """Boolean mask over nodes reachable from the root *nodes* (inclusive), by frontier BFS.

        ``blocked`` (a node mask) is never entered nor reported: reachability *avoiding* those
        nodes, e.g. failure functions such as ``abort``.
        """
        seen = np.zeros(self.n_nodes, bool) if blocked is None else blocked.copy()
        # Each level is deduplicated by a scatter/gather over ``slot`` (the last position a node
        # was written to wins), not by np.unique: the closure runs thousands of small BFS per
        # warm analysis and np.unique's hashing dominated them (profile in bench/RESULTS-speed.md).
        slot = np.empty(self.n_nodes, np.int64)
        frontier = np.asarray(list(roots), np.int64)
        frontier = frontier[(frontier >= 0) & (frontier < self.n_nodes)]
        while len(frontier):
            frontier = _distinct(frontier[~seen[frontier]], slot)
            seen[frontier] = True
            frontier, _counts = self._successors(frontier)
        if blocked is not None:
            seen &= ~blocked
        return seen

    def reach_bits(self, root_sets: Sequence[np.ndarray], blocked: np.ndarray | None = None) -> np.ndarray:
        """``uint64`` per node: bit ``i`` is set when the node is reachable from the root nodes
        ``root_sets[i]`` (at most 64 sets), with :meth:`reachable`'s semantics for each set.

        One propagation answers 64 searches.  A per-entry search is dominated by numpy's per-call
        overhead, one round of about fifteen calls per level of the graph (2 ms per entry, 10 s for the
        5 k entries libtorch_python.so needs of libtorch_cpu.so), whereas here a round serves every set:
        each node passes on only the bits that reached it in the previous round, so a bit crosses an
        edge once and there are as many rounds as the deepest set has levels."""
        if len(root_sets) > 64:
            raise ValueError("at most 64 root sets per propagation")
        n = self.n_nodes
        bits = np.zeros(n, np.uint64)
        if not root_sets:
            return bits
        roots = np.concatenate([np.asarray(r, np.int64) for r in root_sets])
        vals = np.repeat(
            np.left_shift(np.uint64(1), np.arange(len(root_sets), dtype=np.uint64)), [len(r) for r in root_sets]
        )
        keep = (roots >= 0) & (roots < n)
        roots, vals = roots[keep], vals[keep]
        if blocked is not None:
            keep = ~blocked[roots]
            roots, vals = roots[keep], vals[keep]
        np.bitwise_or.at(bits, roots, vals)
        slot = np.empty(n, np.int64)
        acc = np.zeros(n, np.uint64)  # bits arriving this round, by node (zeroed again after use)
        frontier = _distinct(roots, slot)
        delta = bits[frontier]
        while len(frontier):
            dst, counts = self._successors(frontier)
            val = np.repeat(delta, counts)
            if blocked is not None:
                keep = ~blocked[dst]
                dst, val = dst[keep], val[keep]
            np.bitwise_or.at(acc, dst, val)
            frontier = _distinct(dst, slot)
            delta = acc[frontier] & ~bits[frontier]
            acc[frontier] = 0
            new = delta != 0
            frontier, delta = frontier[new], delta[new]
            bits[frontier] |= delta
        return bits

    def _successors(self, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The targets of every edge out of ``nodes`` (int64, grouped by source in ``nodes``' order)
        and the number of edges out of each."""
        starts = self.indptr[nodes]
        counts = self.indptr[nodes + 1] - starts
        total = int(counts.sum())
        offs = np.repeat(starts - (np.cumsum(counts) - counts), counts) + np.arange(total)
        return self.indices[offs].astype(np.int64), counts

    def memory_bytes(self) -> int:
        arrays = self.func_starts.nbytes + self.data_starts.nbytes + self.indptr.nbytes + self.indices.nbytes
        return arrays + sys.getsizeof(self.import_keys)


def _distinct(nodes: np.ndarray, slot: np.ndarray) -> np.ndarray:
    """``nodes`` without repeats, in order of last occurrence (``slot`` is scratch space of one int64 per
    node: a scatter/gather, cheaper than np.unique's sort for the many small arrays of a propagation)."""
    pos = np.arange(len(nodes))
    slot[nodes] = pos
    out: np.ndarray = nodes[slot[nodes] == pos]
    return out
