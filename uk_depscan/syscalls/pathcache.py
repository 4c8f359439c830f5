"""The cache of function-level chain paths: what :mod:`uk_depscan.syscalls.chains` found inside one
scanned library.

A chain is followed inside an object by breadth-first searches over its call graph: from an entry
forward to an import or a site, or (the whole-object pseudo entry) backward from the target to the
nearest export, which needs the reversed graph.  For libtorch_cpu.so that is a third of a warm
analysis (2.2 M edges reversed, then ~150 searches), and each answer depends only on the library's
scan.  So the answers are stored beside the scan, under a key made from the scan's (engine version,
architecture, content identity), as :mod:`uk_depscan.syscalls.reachcache` stores the reaches.

The entry is untrusted like any cache row: ``meta`` is one JSON object ``{format, key, paths}``
whose ``paths`` maps a question (:func:`question`) to a list of node numbers or ``null``.  The
document's shape is checked on load; each path is checked against the call graph when it is used
(:meth:`uk_depscan.syscalls.chains.ObjectPaths`): node numbers in range, every step an edge of the
graph, the right end points.  A bad entry is one warning, a recomputation and a rewrite.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from uk_depscan.store.cache import CacheStore, EntryProblem, warn_once
from uk_depscan.store.jsondoc import entry_meta
from uk_depscan.syscalls.memos import Registry, Where, store_for
from uk_depscan.syscalls.reachcache import limits

log = logging.getLogger(__name__)

# bump whenever a path or a name can change for the same scan (the search order or tie-breaks in
# chains.py, how LazySymbolizer names a function)
FORMAT = 2
META_KEYS = frozenset({"format", "key", "paths", "names"})
MAX_PATH = 1 << 16  # nodes in one stored path


class PathFormatError(Exception):
    """The cached paths are not what the format says."""


def path_key(scan_key: str) -> str:
    """``syscalls/<engine>/<arch>/<sha256>`` → ``paths/<FORMAT>-<engine>/<arch>/<sha256>``."""
    _, engine, rest = scan_key.split("/", 2)
    return f"paths/{FORMAT}-{engine}/{rest}"


def question(kind: str, failure: bool, target: int, entry: str = "") -> str:
    """The name a path is stored under: the search (``f`` forward from ``entry``, ``r`` back from
    ``target`` to the nearest export), whether failure paths were allowed, the target node."""
    return f"{kind}|{int(failure)}|{target}|{entry}"


class PathMemo:
    """One library's paths by question (unchecked until the graph checks them), and the names of the
    functions they pass through by node number (naming one needs the library's symbol tables)."""

    def __init__(self, name: str, raw: dict[str, Any] | None = None, names: dict[str, str] | None = None) -> None:
        self.name = name
        self.raw: dict[str, Any] = raw or {}
        self.names: dict[str, str] = names or {}
        self._new: tuple[set[str], set[str]] = (set(), set())  # questions and names the cache does not hold
        self.damaged = False
        self.where: Where | None = None  # where the memo is stored (set by shared_memo)

    def put(self, q: str, path: list[int] | None) -> None:
        self.raw[q] = path
        self._new[0].add(q)

    def name_node(self, node: int, name: str) -> None:
        self.names[str(node)] = name
        self._new[1].add(str(node))

    def drop(self, q: str, why: str) -> None:
        """A stored path the graph refused: one warning, recomputed, and the entry rewritten."""
        warn_once(f"ignoring the cached chain paths of {self.name} ({why}); recomputing, the entry is replaced")
        self.raw.pop(q, None)
        self.damaged = True

    @property
    def dirty(self) -> bool:
        return self.damaged or bool(self._new[0] or self._new[1])

    def hand_over(self) -> tuple[dict[str, Any], dict[str, str]]:
        """The paths and names the cache does not hold (:func:`uk_depscan.syscalls.memos.take_unsaved`);
        this memo then counts them as stored."""
        out = ({q: self.raw[q] for q in sorted(self._new[0])}, {n: self.names[n] for n in sorted(self._new[1])})
        self.stored()
        return out

    def stored(self) -> None:
        """Every path and name is in the cache now."""
        self._new[0].clear()
        self._new[1].clear()
        self.damaged = False

    def take(self, entries: tuple[dict[str, Any], dict[str, str]]) -> None:
        """Paths and names another process found (:meth:`hand_over`), to store with this memo's;
        checked against the call graph only if this process uses them."""
        paths, names = entries
        for q, v in paths.items():
            if q not in self.raw:
                self.raw[q] = v
                self._new[0].add(q)
        for n, name in names.items():
            if n not in self.names:
                self.names[n] = name
                self._new[1].add(n)


def load(name: str, scan_key: str, sha256: str, elf_size: int, store: CacheStore) -> PathMemo:
    """The stored paths of the library whose scan is ``scan_key`` (empty on a miss)."""
    key = path_key(scan_key)
    max_meta, max_data = limits(elf_size)
    try:
        entry = store.get(key, max_meta=max_meta, max_data=max_data)
        if entry is None:
            return PathMemo(name)
        if entry.object != sha256 or entry.size != elf_size or entry.data:
            raise PathFormatError("recorded object identity is not this file's")
        return PathMemo(name, *decode(entry.meta, key))
    except (EntryProblem, PathFormatError) as err:
        warn_once(f"ignoring the cached chain paths of {name} ({err}); recomputing, the entry is replaced")
        store.discard(key)
        memo = PathMemo(name)
        memo.damaged = True
        return memo


def decode(meta: bytes, key: str) -> tuple[dict[str, Any], dict[str, str]]:
    """(question -> path (a list of integers, unchecked against the graph) or None, node -> name)."""
    doc = entry_meta(meta, key, META_KEYS, FORMAT, PathFormatError)
    paths = doc["paths"]
    if type(paths) is not dict:
        raise PathFormatError("paths: not an object")
    for q, v in paths.items():
        if v is None:
            continue
        if type(v) is not list or not 0 < len(v) <= MAX_PATH or set(map(type, v)) - {int}:
            raise PathFormatError(f"path {q[:40]!r}: not a list of node numbers")
    names = doc["names"]
    if type(names) is not dict or set(map(type, names.values())) - {str}:
        raise PathFormatError("names: not an object of strings")
    return dict(paths), dict(names)


def flush(memo: PathMemo) -> None:
    """Store the memo when it has paths the cache does not, merged with what other processes stored
    meanwhile (``--jobs``)."""
    if not memo.dirty or memo.where is None:
        return
    scan_key, sha256, elf_size = memo.where.scan_key, memo.where.sha256, memo.where.elf_size
    store = store_for(memo.where.directory)
    stored = load(memo.name, scan_key, sha256, elf_size, store)
    for q, v in stored.raw.items():
        memo.raw.setdefault(q, v)
    for n, v in stored.names.items():
        memo.names.setdefault(n, v)
    key = path_key(scan_key)
    doc = {
        "format": FORMAT,
        "key": key,
        "paths": {q: memo.raw[q] for q in sorted(memo.raw)},
        "names": {n: memo.names[n] for n in sorted(memo.names)},
    }
    meta = json.dumps(doc, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")
    if len(meta) > limits(elf_size)[0]:
        log.debug("not caching the chain paths of %s: %d bytes exceed the limit", memo.name, len(meta))
        return
    store.put(key, sha256, elf_size, meta, b"")
    memo.stored()


# Per process: one memo per library, shared by every target that loads it, stored once per run
# (:func:`uk_depscan.syscalls.memos.save_all`).
_REGISTRY: Registry[PathMemo] = Registry("paths", path_key, PathMemo, flush)
_process = _REGISTRY.memos  # (cache directory, key) -> memo


def shared_memo(name: str, scan_key: str, sha256: str, elf_size: int, store: CacheStore) -> PathMemo:
    """The process's memo of the library's paths, loaded from the cache on first use."""
    where = Where(scan_key, sha256, elf_size, str(store.directory))
    return _REGISTRY.shared(where, lambda: load(name, scan_key, sha256, elf_size, store))
