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
from collections.abc import Iterable
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
        indptr, indices = self.indptr, self.indices
        frontier = np.asarray(list(roots), np.int64)
        frontier = frontier[(frontier >= 0) & (frontier < self.n_nodes)]
        while len(frontier):
            frontier = frontier[~seen[frontier]]
            pos = np.arange(len(frontier))
            slot[frontier] = pos
            frontier = frontier[slot[frontier] == pos]
            seen[frontier] = True
            starts = indptr[frontier]
            counts = indptr[frontier + 1] - starts
            total = int(counts.sum())
            if not total:
                break
            offs = np.repeat(starts - np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
            frontier = indices[offs + np.arange(total)].astype(np.int64)
        if blocked is not None:
            seen &= ~blocked
        return seen

    def memory_bytes(self) -> int:
        arrays = self.func_starts.nbytes + self.data_starts.nbytes + self.indptr.nbytes + self.indices.nbytes
        return arrays + sys.getsizeof(self.import_keys)
