"""The cache of an object's string literals below the syscall level (:mod:`uk_depscan.elf.literals`).

Finding the pseudo-file and library-name literals reads every read-only data section: 25 MB for
libtorch_cpu.so, a tenth of a warm analysis.  The answer depends only on the file's bytes, so it is
stored under the object's content identity (the key the scan cache uses), as two sorted lists.

The entry is untrusted like any cache row: ``meta`` is ``{format, key, pseudo, libnames}``; every
string must be one the search can return (ASCII, matching its pattern as a whole), each list sorted
without repeats and within the search's bound.  A bad entry is one warning, a search and a rewrite.
"""

from __future__ import annotations

import itertools
import json
from typing import TYPE_CHECKING, Any

from uk_depscan.elf.literals import MAX_FINDINGS, below_syscall, dlopen_used, is_literal, literal_strings
from uk_depscan.store.cache import CacheStore, EntryProblem, warn_once
from uk_depscan.store.identity import object_identity
from uk_depscan.store.jsondoc import entry_meta

if TYPE_CHECKING:
    from uk_depscan.elf.file import ElfFile
    from uk_depscan.model import BelowSyscall

FORMAT = 1  # bump whenever literals.literal_strings can answer differently for the same file
META_KEYS = frozenset({"format", "key", "pseudo", "libnames"})
MAX_META = 1 << 20  # 2 x 2000 strings of a few hundred bytes at most


class LiteralFormatError(Exception):
    """The cached literals are not what the format says."""


def cached_below_syscall(elf: ElfFile, store: CacheStore | None) -> BelowSyscall:
    """:func:`~uk_depscan.elf.literals.below_syscall`, its data-section search answered from the
    cache when it holds this file's (``store`` None: no cache)."""
    if store is None:
        return below_syscall(elf)
    sha = object_identity(elf, memo=store).sha256
    key = f"literals/{FORMAT}/{sha}"
    uses_dlopen = dlopen_used(elf)
    strings = _load(elf, key, sha, store)
    if strings is not None and (strings[1] is not None or not uses_dlopen):
        return below_syscall(elf, strings)
    strings = literal_strings(elf, uses_dlopen)
    doc = {"format": FORMAT, "key": key, "pseudo": strings[0], "libnames": strings[1]}
    meta = json.dumps(doc, ensure_ascii=True, separators=(",", ":")).encode("ascii")
    if len(meta) <= MAX_META:
        store.put(key, sha, elf.size, meta, b"")
    return below_syscall(elf, strings)


def _load(elf: ElfFile, key: str, sha: str, store: CacheStore) -> tuple[list[str], list[str] | None] | None:
    try:
        entry = store.get(key, max_meta=MAX_META, max_data=0)
        if entry is None:
            return None
        if entry.object != sha or entry.size != elf.size or entry.data:
            raise LiteralFormatError("recorded object identity is not this file's")
        return decode(entry.meta, key)
    except (EntryProblem, LiteralFormatError) as err:
        warn_once(f"ignoring the cached literals of {elf.name} ({err}); searching again, the entry is replaced")
        store.discard(key)
        return None


def decode(meta: bytes, key: str) -> tuple[list[str], list[str] | None]:
    doc = entry_meta(meta, key, META_KEYS, FORMAT, LiteralFormatError)
    pseudo, libnames = doc["pseudo"], doc["libnames"]
    _check(pseudo, True)
    if libnames is not None:
        _check(libnames, False)
    return pseudo, libnames


def _check(values: Any, pseudo: bool) -> None:
    what = "pseudo" if pseudo else "libnames"
    if type(values) is not list or len(values) > MAX_FINDINGS or set(map(type, values)) - {str}:
        raise LiteralFormatError(f"{what}: not a list of at most {MAX_FINDINGS} strings")
    if any(a >= b for a, b in itertools.pairwise(values)):
        raise LiteralFormatError(f"{what}: not sorted without repeats")
    if not all(is_literal(v, pseudo) for v in values):
        raise LiteralFormatError(f"{what}: a string the search cannot find")
