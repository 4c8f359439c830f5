"""Compact function-level call graph of one library (CSR over numpy arrays) and reachability.

Nodes ``0 .. n_funcs-1`` are function starts (sorted addresses, ``func_starts``); nodes
``n_funcs .. n_funcs+n_imports-1`` are imported symbols (``import_keys``, "name@VERSION").
Edges are direct calls and jumps between functions, PLT calls, and GOT calls/jumps; there is
no Python object per edge.  Only import nodes and functions have identity; a syscall *site*
is attached to its containing function by :mod:`uk_depscan.syscalls.scan`.
"""

from __future__ import annotations

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

    @property
    def n_funcs(self) -> int:
        return len(self.func_starts)

    @property
    def n_nodes(self) -> int:
        return len(self.func_starts) + len(self.import_keys)

    @property
    def n_edges(self) -> int:
        return len(self.indices)

    @classmethod
    def from_edges(
        cls, func_starts: np.ndarray, src: np.ndarray, dst: np.ndarray, import_keys: tuple[str, ...]
    ) -> CallGraph:
        n = len(func_starts) + len(import_keys)
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
        return cls(np.asarray(func_starts, np.uint64), indptr, d, import_keys)

    def function_containing(self, addr: int) -> int | None:
        i = int(np.searchsorted(self.func_starts, np.uint64(addr), side="right")) - 1
        return i if i >= 0 else None

    def function_at(self, addr: int) -> int | None:
        i = int(np.searchsorted(self.func_starts, np.uint64(addr)))
        if i < len(self.func_starts) and int(self.func_starts[i]) == addr:
            return i
        return None

    def successors(self, node: int) -> np.ndarray:
        return self.indices[self.indptr[node] : self.indptr[node + 1]]

    def callees_of(self, addr: int) -> tuple[list[int], list[str]]:
        """(function start addresses, import keys) a function calls directly."""
        node = self.function_at(addr)
        if node is None:
            return [], []
        succ = self.successors(node)
        funcs = [int(self.func_starts[s]) for s in succ if s < self.n_funcs]
        imps = [self.import_keys[s - self.n_funcs] for s in succ if s >= self.n_funcs]
        return funcs, imps

    def reachable(self, roots: Iterable[int], blocked: np.ndarray | None = None) -> np.ndarray:
        """Boolean mask over nodes reachable from the root *nodes* (inclusive), by frontier BFS.

        ``blocked`` (a node mask) is never entered nor reported: reachability *avoiding* those
        nodes, e.g. failure functions such as ``abort``.
        """
        seen = np.zeros(self.n_nodes, bool) if blocked is None else blocked.copy()
        frontier = np.unique(np.asarray(list(roots), np.int64))
        frontier = frontier[(frontier >= 0) & (frontier < self.n_nodes)]
        frontier = frontier[~seen[frontier]]
        seen[frontier] = True
        indptr, indices = self.indptr, self.indices
        while len(frontier):
            starts = indptr[frontier]
            counts = indptr[frontier + 1] - starts
            total = int(counts.sum())
            if not total:
                break
            offs = np.repeat(starts - np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
            nxt = indices[offs + np.arange(total)]
            nxt = np.unique(nxt[~seen[nxt]])
            seen[nxt] = True
            frontier = nxt.astype(np.int64)
        if blocked is not None:
            seen &= ~blocked
        return seen

    def sccs(self) -> tuple[np.ndarray, int]:
        """Strongly connected components (iterative Tarjan); returns (component of node, count).

        Components are numbered in reverse topological order: callees before callers.
        """
        n = self.n_nodes
        indptr, indices = self.indptr.tolist(), self.indices.tolist()
        index = [-1] * n
        low = [0] * n
        on = [False] * n
        comp = [-1] * n
        stack: list[int] = []
        counter = 0
        ncomp = 0
        for root in range(n):
            if index[root] != -1:
                continue
            work = [(root, indptr[root])]
            index[root] = low[root] = counter
            counter += 1
            stack.append(root)
            on[root] = True
            while work:
                v, ei = work[-1]
                if ei < indptr[v + 1]:
                    work[-1] = (v, ei + 1)
                    w = indices[ei]
                    if index[w] == -1:
                        index[w] = low[w] = counter
                        counter += 1
                        stack.append(w)
                        on[w] = True
                        work.append((w, indptr[w]))
                    elif on[w] and index[w] < low[v]:
                        low[v] = index[w]
                    continue
                work.pop()
                if work:
                    u = work[-1][0]
                    if low[v] < low[u]:
                        low[u] = low[v]
                if low[v] == index[v]:
                    while True:
                        w = stack.pop()
                        on[w] = False
                        comp[w] = ncomp
                        if w == v:
                            break
                    ncomp += 1
        return np.asarray(comp, np.int64), ncomp

    def closure_bits(self, node_bits: dict[int, int]) -> list[int]:
        """Per node, the OR of ``node_bits`` over everything it reaches (SCC condensation + ints)."""
        comp, ncomp = self.sccs()
        cbits = [0] * ncomp
        for node, bits in node_bits.items():
            cbits[int(comp[node])] |= bits
        # condensation edges; components are numbered callee-first, so one pass in order works
        src_nodes = np.repeat(np.arange(self.n_nodes), np.diff(self.indptr))
        cs, cd = comp[src_nodes], comp[self.indices]
        m = cs != cd
        if m.any():
            key = np.sort(cs[m] * ncomp + cd[m])  # sorted by caller component, deduplicated
            key = key[np.concatenate(([True], key[1:] != key[:-1]))]
            cs_l, cd_l = (key // ncomp).tolist(), (key % ncomp).tolist()
            for a, b in zip(cs_l, cd_l):  # cs ascending: every callee component (smaller) is final
                cbits[a] |= cbits[b]
        return [cbits[int(c)] for c in comp.tolist()]

    def memory_bytes(self) -> int:
        return self.func_starts.nbytes + self.indptr.nbytes + self.indices.nbytes + sys.getsizeof(self.import_keys)
