"""The cache of per-entry reaches: what each export of a scanned library reaches inside it.

The closure (:mod:`uk_depscan.syscalls.closure`) asks a dependency's summary for the reach of
every export the target's chain enters; each answer is two breadth-first searches over the
library's call graph.  A warm analysis of libtorch_cpu.so asked for ~1 000 of them (0.9 s of a
2.7 s run), always the same ones, and an answer depends only on the library's scan: so the answers
are stored next to the scan, under a key made from the scan's (which holds the engine version,
the architecture and the file's content identity), and merged as new entries are computed.

The entry is untrusted like any cache row (:mod:`uk_depscan.syscalls.cache`): every field is
checked — JSON types, the closed site kinds, import keys that exist in the scan's graph — and a
bad entry is one warning, a miss and a rewrite.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from uk_depscan.store.cache import CacheStore, EntryProblem, warn_once
from uk_depscan.syscalls.closure import Reach, Site

log = logging.getLogger(__name__)

FORMAT = 1  # bump whenever a Reach can change for the same scan (closure.Site fields, failure rule)
SITE_KINDS = frozenset({"direct", "wrapper", "local_wrapper"})
U64 = 1 << 64


class ReachFormatError(Exception):
    """A field of a cached reach entry is not what the format says."""


def reach_key(scan_key: str) -> str:
    """``syscalls/<engine>/<arch>/<sha256>`` → ``reach/<FORMAT>-<engine>/<arch>/<sha256>``."""
    _, engine, rest = scan_key.split("/", 2)
    return f"reach/{FORMAT}-{engine}/{rest}"


def limits(elf_size: int) -> tuple[int, int]:
    """(meta bytes, data bytes) allowed: like the scan's own entry, proportional to the file."""
    return (1 << 20) + elf_size // 4, 0


def load(
    name: str, scan_key: str, sha256: str, elf_size: int, import_keys: tuple[str, ...], store: CacheStore
) -> dict[str, Reach | None]:
    """The stored reaches of the library whose scan is ``scan_key`` (empty on a miss)."""
    key = reach_key(scan_key)
    try:
        entry = store.get(key, max_meta=limits(elf_size)[0], max_data=1)
        if entry is None:
            return {}
        if entry.object != sha256 or entry.size != elf_size or entry.data:
            raise ReachFormatError("recorded object identity is not this file's")
        return decode(entry.meta, key, frozenset(import_keys))
    except (EntryProblem, ReachFormatError) as err:
        warn_once(f"ignoring the cached reaches of {name} ({err}); recomputing, the entry is replaced")
        store.discard(key)
        return {}


# Per process: one memo per library, shared by every target that loads it (a library's reaches
# are read and checked once per process, and what one target computes the next one reuses).
_process: dict[tuple[str, str], dict[str, Reach | None]] = {}  # (cache directory, key) -> memo
_saved: dict[tuple[str, str], int] = {}  # how many entries of each memo that cache already holds
_PROCESS_MAX = 512  # libraries; past it the memos start again (they are all saved by then)


def shared_memo(
    name: str, scan_key: str, sha256: str, elf_size: int, import_keys: tuple[str, ...], store: CacheStore
) -> dict[str, Reach | None]:
    """The process's memo of the library's reaches, loaded from the cache on first use."""
    key = (str(store.directory), reach_key(scan_key))
    memo = _process.get(key)
    if memo is None:
        if len(_process) >= _PROCESS_MAX:
            _process.clear()
            _saved.clear()
        memo = _process[key] = load(name, scan_key, sha256, elf_size, import_keys, store)
        _saved[key] = len(memo)
    return memo


def flush(
    name: str, scan_key: str, sha256: str, elf_size: int, import_keys: tuple[str, ...], store: CacheStore
) -> None:
    """Store the library's memo when it has entries the cache does not, merged with what other
    processes stored meanwhile (``--jobs``: workers that need the same library for different
    targets each add their entries; the last writer must not drop the others')."""
    key = (str(store.directory), reach_key(scan_key))
    memo = _process.get(key)
    if memo is not None and len(memo) > _saved.get(key, 0):
        for entry, reach in load(name, scan_key, sha256, elf_size, import_keys, store).items():
            memo.setdefault(entry, reach)
        save(scan_key, sha256, elf_size, memo, store)
        _saved[key] = len(memo)


def save(scan_key: str, sha256: str, elf_size: int, memo: dict[str, Reach | None], store: CacheStore) -> None:
    """Store ``memo`` (the entries already stored plus the new ones) unless it is too big."""
    meta = encode(reach_key(scan_key), memo)
    if len(meta) > limits(elf_size)[0]:
        log.debug("not caching the reaches of %s: %d bytes exceed the limit", scan_key, len(meta))
        return
    store.put(reach_key(scan_key), sha256, elf_size, meta, b"")


def encode(key: str, memo: dict[str, Reach | None]) -> bytes:
    entries = {
        entry: None
        if r is None
        else [[[s.number, s.kind, s.function, s.address, s.failure] for s in r.sites], list(r.imports)]
        for entry, r in sorted(memo.items())
    }
    doc = {"format": FORMAT, "key": key, "entries": entries}
    return json.dumps(doc, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")


def _reject_constant(name: str) -> Any:
    raise ReachFormatError(f"non-finite number {name} in the JSON")


def decode(meta: bytes, key: str, import_keys: frozenset[str]) -> dict[str, Reach | None]:
    try:
        doc = json.loads(meta.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise ReachFormatError(f"meta is not valid JSON: {str(err)[:80]}") from err
    if type(doc) is not dict or doc.keys() != {"format", "key", "entries"}:
        raise ReachFormatError("meta: not an object with the fields format, key, entries")
    if type(doc["format"]) is not int or doc["format"] != FORMAT or doc["key"] != key:
        raise ReachFormatError("format or key is not this entry's")
    if type(doc["entries"]) is not dict:
        raise ReachFormatError("entries: not an object")
    return {entry: _reach(v, import_keys) for entry, v in doc["entries"].items()}


def _reach(v: object, import_keys: frozenset[str]) -> Reach | None:
    if v is None:
        return None
    if type(v) is not list or len(v) != 2 or type(v[0]) is not list or type(v[1]) is not list:
        raise ReachFormatError("reach: not [sites, imports]")
    imports = v[1]
    if set(map(type, imports)) - {str}:
        raise ReachFormatError("reach: an import key is not a string")
    if not import_keys.issuperset(imports):
        raise ReachFormatError("reach: an import the library's call graph does not have")
    return Reach(tuple(_site(s) for s in v[0]), tuple(imports))


def _site(v: object) -> Site:
    if type(v) is not list or len(v) != 5:
        raise ReachFormatError("site: not a 5-element list")
    number, kind, function, address, failure = v
    if type(number) is not int or not -(1 << 63) <= number < U64:  # tracked values may be signed
        raise ReachFormatError("site number: not an integer in range")
    if type(kind) is not str or kind not in SITE_KINDS:
        raise ReachFormatError(f"site kind: not one of {sorted(SITE_KINDS)}")
    if type(function) is not str:
        raise ReachFormatError("site function: not a string")
    if address is not None and (type(address) is not int or not 0 <= address < U64):
        raise ReachFormatError("site address: not an integer in range")
    if type(failure) is not bool:
        raise ReachFormatError("site failure: not a boolean")
    return Site(number, kind, function, address, failure)
