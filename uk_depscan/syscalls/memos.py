"""Per-process memos of what was computed over one library's scan, stored once per run.

The reaches (:mod:`uk_depscan.syscalls.reachcache`) and the chain paths
(:mod:`uk_depscan.syscalls.pathcache`) of a library are loaded from the cache the first time a
target needs them, shared by every later target of the process, and grow as targets ask for new
entries.  They are written back once, at the end of the run (:func:`save_all`), not after every
target: under the torch wheel each of 136 targets added a few entries to libtorch_cpu.so's ~4 MB
reach entry, and rewriting it after each one (reading it back first, to merge what other processes
stored) took 3.8 s of a cold ``--jobs 1`` run (53 s under the profiler) and 2.2 s of each
``--jobs 2`` worker.  A ``--jobs`` worker hands its new entries to the process that runs the
analysis (:func:`take_unsaved`, :func:`adopt_unsaved`) with each target's result.  Entries never
stored (the run interrupted) are only a slower next run: the cache is an accelerator.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from uk_depscan.store.cache import CacheStore


@dataclass(frozen=True)
class Where:
    """Where a library's memo is stored: its scan's cache key, the file's identity, the cache."""

    scan_key: str
    sha256: str
    elf_size: int
    directory: str


class Memo(Protocol):
    name: str
    where: Where | None
    damaged: bool

    @property
    def dirty(self) -> bool: ...

    def hand_over(self) -> Any:
        """The entries the cache does not hold, in a picklable form :meth:`take` accepts; the memo
        then counts them as stored."""

    def take(self, entries: Any) -> None:
        """Entries another process computed (:meth:`hand_over`), to store with this memo's."""


M = TypeVar("M", bound=Memo)


@dataclass(frozen=True)
class Unsaved:
    """One library's new entries, handed by a ``--jobs`` worker to the process that stores them."""

    kind: str  # the registry's
    name: str
    where: Where
    entries: Any


class Registry(Generic[M]):
    """One memo per library and cache directory, for the whole process."""

    MAX = 512  # libraries; past it the memos are stored and start again

    def __init__(
        self, kind: str, key: Callable[[str], str], empty: Callable[[str], M], flush: Callable[[M], None]
    ) -> None:
        self.kind = kind
        self._key = key  # scan key -> the memo's cache key
        self._empty = empty  # name -> a memo holding only handed-over entries (stored, never read)
        self._flush = flush
        self.memos: dict[tuple[str, str], M] = {}  # (cache directory, memo key) -> memo
        self._handed: dict[tuple[str, str], M] = {}  # workers' entries of libraries not loaded here
        _registries.append(self)

    def shared(self, where: Where, load: Callable[[], M]) -> M:
        """The process's memo of the library, ``load()``-ed from the cache on first use."""
        key = (where.directory, self._key(where.scan_key))
        memo = self.memos.get(key)
        if memo is None:
            if len(self.memos) >= self.MAX:
                self.save_all()
                self.memos.clear()
            memo = self.memos[key] = load()
            memo.where = where
            handed = self._handed.pop(key, None)
            if handed is not None:
                memo.take(handed.hand_over())
        return memo

    def take_unsaved(self) -> list[Unsaved]:
        out: list[Unsaved] = []
        for memo in self.memos.values():
            if memo.where is None or not memo.dirty:
                continue
            if memo.damaged:  # rewritten now, by the process that found the damage
                self._flush(memo)
            else:
                out.append(Unsaved(self.kind, memo.name, memo.where, memo.hand_over()))
        return out

    def adopt(self, u: Unsaved) -> None:
        key = (u.where.directory, self._key(u.where.scan_key))
        memo = self.memos.get(key)
        if memo is None:  # not `or`: a memo with no entries yet is falsy (ReachMemo has __len__)
            memo = self._handed.get(key)
        if memo is None:
            memo = self._handed[key] = self._empty(u.name)
            memo.where = u.where
        memo.take(u.entries)

    def dirty_memos(self) -> list[M]:
        return [m for m in [*self.memos.values(), *self._handed.values()] if m.dirty]

    def save_all(self) -> None:
        for memo in self.dirty_memos():
            self._flush(memo)
        self._handed.clear()


_registries: list[Registry[Any]] = []


def take_unsaved() -> list[Unsaved]:
    """Every memo's new entries in this process (a ``--jobs`` worker, after a target)."""
    return [u for r in _registries for u in r.take_unsaved()]


def adopt_unsaved(items: list[Unsaved]) -> None:
    """Keep a worker's new entries (:func:`take_unsaved`) for :func:`save_all`."""
    by_kind = {r.kind: r for r in _registries}
    for u in items:
        by_kind[u.kind].adopt(u)


def save_all() -> None:
    """Store every memo's new entries, this process's and those workers handed over: once per run,
    through one connection per cache directory (:func:`store_for`)."""
    directories = {m.where.directory for r in _registries for m in r.dirty_memos() if m.where is not None}
    try:
        with contextlib.ExitStack() as stack:
            for d in sorted(directories):
                _stores[d] = CacheStore(Path(d))
                stack.enter_context(_stores[d].session())
            for r in _registries:
                r.save_all()
    finally:
        _stores.clear()


_stores: dict[str, CacheStore] = {}  # cache directory -> the store save_all writes through


def store_for(directory: str) -> CacheStore:
    """The store of ``directory``: during :func:`save_all`, the one whose connection every write shares
    (opening and checking the database for each of ~300 memos took 0.5 s at the end of a wheel's run)."""
    return _stores.get(directory) or CacheStore(Path(directory))
