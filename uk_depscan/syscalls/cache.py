"""The cache of syscall scans: key, entry format, and the validation every loaded field goes through.

Key: ``syscalls/<ENGINE_VERSION>/<arch>/<sha256 of the file>`` — the content identity of
:mod:`uk_depscan.store.identity`, not the build-id (a patched binary keeps its build-id and size
and must miss).  The entry is one row of :class:`uk_depscan.store.cache.CacheStore`:

* ``meta`` (UTF-8 JSON, an object with exactly :data:`META_KEYS`): the sites, local wrappers,
  import keys, exported functions, request sites and statistics, plus the format version, the
  key, the architecture, the file size and build-id it was computed from, and the element counts
  of the four arrays;
* ``data``: ``func_starts`` (``<u8``), ``indptr`` (``<i8``), ``indices`` (``<i4``) and
  ``data_starts`` (``<u8``, the reference graph's pieces of data) packed in that order, exactly
  ``8a + 8b + 4c + 8d`` bytes.

:func:`decode` checks every field before anything is built from it: JSON types (``bool`` is not an
int), integer ranges, closed vocabularies, the arrays' lengths and byte size, ``func_starts``
strictly increasing, ``indptr`` starting at 0, non-decreasing and ending at ``len(indices)``,
``indices`` inside the node range, and sizes against the ELF (the size and build-id recorded
must be the file's; no table can have more elements than the file has bytes).  Size limits are
applied before a byte is read (:func:`limits`), and the same limits decide whether a fresh scan
is stored at all, so an object whose scan is too large to cache is simply always scanned.
Any failure is one warning naming the file, a miss, and the entry replaced by the rescan.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from uk_depscan.store.cache import CacheStore, EntryProblem, cache_dir, warn_once
from uk_depscan.store.identity import FileStamp, ObjectIdentity, object_identity, stamp_of
from uk_depscan.store.jsondoc import strict_json

if TYPE_CHECKING:
    from uk_depscan.elf.file import ElfFile
    from uk_depscan.syscalls.scan import LibraryScan

log = logging.getLogger(__name__)
__all__ = ["CachedScan", "Slot", "cache_dir", "cache_key", "decode", "encode", "lookup", "store_scan"]

FORMAT = 2  # 2: data_starts (the reference graph's data nodes)
META_KEYS = frozenset(
    {"format", "key", "arch", "size", "build_id", "sites", "wrappers", "import_keys", "requests", "stats", "arrays"}
    | {"export_names", "export_addresses"}
)
# The scanner's closed vocabularies (uk_depscan.syscalls.scan); a value outside them is poison.
SITE_KINDS = frozenset({"direct", "int80", "sysenter", "svc", "wrapper_call", "local_wrapper_call"})
CONFIDENCES = frozenset({"exact", "multiple", "unknown"})
REQUEST_CALLS = frozenset({"ioctl", "fcntl", "fcntl64", "prctl", "setsockopt", "getsockopt"})
ARRAYS = (
    ("func_starts", "<u8", np.uint64),
    ("indptr", "<i8", np.int64),
    ("indices", "<i4", np.int32),
    ("data_starts", "<u8", np.uint64),
)
U64 = 1 << 64
MAX_STATS = 256
MAX_ARG_INDEX = 16


def limits(elf_size: int) -> tuple[int, int]:
    """(meta bytes, data bytes) allowed for a file of ``elf_size`` bytes.

    libtorch_cpu.so (434 MB) has 5 MB of meta and 15 MB of data; the bounds leave ~20x room
    yet keep the worst JSON parse proportional to the file, as the scan it replaces is.
    """
    return (1 << 20) + elf_size // 4, (1 << 20) + elf_size // 2


class CacheFormatError(Exception):
    """A field of a cached entry is not what the format says."""


@dataclass(frozen=True, eq=False)
class CachedScan:
    """A validated entry: plain values, ready for :func:`uk_depscan.syscalls.scan._from_cache`."""

    arch: str
    sites: tuple[dict[str, Any], ...]
    wrappers: tuple[dict[str, Any], ...]
    import_keys: tuple[str, ...]
    exports: tuple[tuple[str, int], ...]
    requests: tuple[dict[str, Any], ...]
    stats: dict[str, int | float]
    func_starts: np.ndarray
    indptr: np.ndarray
    indices: np.ndarray
    data_starts: np.ndarray


@dataclass(frozen=True)
class Slot:
    """Where the scan of one object lives in the cache, and what was found there."""

    key: str
    identity: ObjectIdentity
    stamp: FileStamp | None
    hit: CachedScan | None


def cache_key(identity: ObjectIdentity, arch: str, engine_version: str) -> str:
    return f"syscalls/{engine_version}/{arch}/{identity.sha256}"


# Entries this process has validated, by key: a library that many targets load (libc.so.6 and
# libtorch_cpu.so under most of the torch wheel's 136 targets) is read, digest-checked and parsed
# once per process, not once per target (the torch wheel, --jobs 1: 1 513 look-ups of 143 entries
# read 1 513 rows and parsed 644 of them again).  The key names the file's content, the
# architecture and the engine, so every valid entry under it is the same scan: a row another
# process writes meanwhile holds nothing this process needs.  Bounded by the entries' stored
# bytes, the least recently used out first (libtorch_cpu.so's is ~20 MB).  Per analysis: each run
# (:func:`uk_depscan.pipeline.analyze`) reads and checks the rows again.
# (cache directory, key) -> (stored bytes, the validated entry)
_decoded: OrderedDict[tuple[str, str], tuple[int, CachedScan]] = OrderedDict()
_DECODED_BYTES = 96 << 20


def forget_validated() -> None:
    """Start a new analysis: the entries validated so far are read and checked again when used."""
    _decoded.clear()


def _remember_decoded(key: tuple[str, str], nbytes: int, hit: CachedScan) -> None:
    _decoded[key] = (nbytes, hit)
    total = sum(n for n, _ in _decoded.values())
    while total > _DECODED_BYTES and len(_decoded) > 1:
        total -= _decoded.popitem(last=False)[1][0]


def key_of(elf: ElfFile, engine_version: str, store: CacheStore | None = None) -> str:
    """The cache key of ``elf``'s scan (its content identity: hashed unless memoised)."""
    return cache_key(object_identity(elf, memo=store or CacheStore()), elf.machine_name, engine_version)


def lookup(elf: ElfFile, engine_version: str, store: CacheStore | None = None) -> Slot:
    """Identify ``elf`` and return its validated cached scan, if any (one warning when unusable)."""
    store = store or CacheStore()
    stamp = stamp_of(elf)
    identity = object_identity(elf, memo=store)
    key = cache_key(identity, elf.machine_name, engine_version)
    mine = (str(store.directory), key)
    known = _decoded.get(mine)
    if known is not None:
        _decoded.move_to_end(mine)
        return Slot(key, identity, stamp, known[1])
    try:
        entry = store.get(key, max_meta=limits(elf.size)[0], max_data=limits(elf.size)[1])
        hit = decode(key, entry.object, entry.size, entry.meta, entry.data, elf, identity) if entry else None
        if entry is not None and hit is not None:
            _remember_decoded(mine, len(entry.meta) + len(entry.data), hit)
    except (EntryProblem, CacheFormatError) as err:
        if isinstance(err, EntryProblem) and err.reported:
            pass  # one warning per problem: the store said the file was damaged and replaced it
        elif isinstance(err, EntryProblem) and err.whole_database:
            warn_once(f"ignoring the cached syscall scan of {elf.name} ({err}); rescanning, the cache is replaced")
            store.reset()
        else:
            warn_once(f"ignoring the cached syscall scan of {elf.name} ({err}); rescanning, the entry is replaced")
            store.discard(key)
        hit = None
    return Slot(key, identity, stamp, hit)


# The descriptors of the scanning locks this process holds.  A process forked while one is held (a
# pool's worker, or the worker the pool forks to replace one that was killed) gets a copy of the
# descriptor, and flock belongs to the open file: the lock outlived this process's release, and its
# next scan of the same file waited for that worker for ever.  The child closes its copies at once.
_held_locks: set[int] = set()


def _close_inherited_locks() -> None:
    for fd in _held_locks:
        with contextlib.suppress(OSError):
            os.close(fd)  # the child's copy only: the parent still holds the lock
    _held_locks.clear()


os.register_at_fork(after_in_child=_close_inherited_locks)


@contextlib.contextmanager
def scanning(elf: ElfFile) -> Iterator[bool]:
    """Held while this process scans ``elf`` for the cache: an exclusive ``flock`` on the file
    itself (no lock file to leave behind).  Yields True when another process held it — it was
    scanning the same file (``--jobs``: most of torch/lib needs libtorch_cpu.so) — so the caller
    looks the cache up again instead of scanning a second time.  Any failure: no lock, no wait."""
    try:
        fd = os.open(elf.path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        yield False
        return
    _held_locks.add(fd)
    try:
        waited = False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            waited = True
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            pass  # a filesystem without flock: scan without the lock
        yield waited
    finally:
        _held_locks.discard(fd)
        os.close(fd)  # releases the lock


def store_scan(slot: Slot, elf: ElfFile, scan: LibraryScan, store: CacheStore | None = None) -> None:
    """Cache ``scan`` under ``slot.key`` unless the file changed while it was scanned or it is too big."""
    if slot.stamp is None or stamp_of(elf) != slot.stamp:
        log.debug("not caching the scan of %s: its file changed during the scan (or has no stamp)", elf.name)
        return
    meta, data = encode(slot.key, elf, scan)
    max_meta, max_data = limits(elf.size)
    if len(meta) > max_meta or len(data) > max_data:
        log.debug("not caching the scan of %s: %d + %d bytes exceed the limits", elf.name, len(meta), len(data))
        return
    (store or CacheStore()).put(slot.key, slot.identity.sha256, elf.size, meta, data)


def encode(key: str, elf: ElfFile, scan: LibraryScan) -> tuple[bytes, bytes]:
    body = scan.to_json()
    arrays = [np.ascontiguousarray(getattr(scan.graph, name), dtype=le) for name, le, _ in ARRAYS]
    meta = {
        "format": FORMAT,
        "key": key,
        "arch": scan.arch,
        "size": elf.size,
        "build_id": elf.build_id,
        "sites": body["sites"],
        "wrappers": body["wrappers"],
        "import_keys": body["import_keys"],
        "export_names": [k for k, _ in scan.exports],
        "export_addresses": [a for _, a in scan.exports],
        "requests": body["requests"],
        "stats": body["stats"],
        "arrays": [len(a) for a in arrays],
    }
    # ensure_ascii: names decoded with surrogateescape round-trip exactly as \udcXX escapes
    text = json.dumps(meta, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    return text.encode("ascii"), b"".join(a.tobytes() for a in arrays)


# -- validation ----------------------------------------------------------------------------------------


def _int(v: object, what: str, lo: int = 0, hi: int = U64) -> int:
    if type(v) is not int or not lo <= v < hi:
        raise CacheFormatError(f"{what}: not an integer in [{lo}, {hi})")
    return v


def _str(v: object, what: str) -> str:
    if type(v) is not str:
        raise CacheFormatError(f"{what}: not a string")
    return v


def _opt_str(v: object, what: str) -> str | None:
    return None if v is None else _str(v, what)


def _list(v: object, what: str, limit: int) -> list[Any]:
    if type(v) is not list:
        raise CacheFormatError(f"{what}: not a list")
    if len(v) > limit:
        raise CacheFormatError(f"{what}: {len(v)} elements, more than the file allows ({limit})")
    return v


def _record(v: object, what: str, keys: frozenset[str]) -> dict[str, Any]:
    if type(v) is not dict or v.keys() != keys:
        raise CacheFormatError(f"{what}: not an object with exactly the fields {sorted(keys)}")
    return v


def _one_of(v: object, what: str, allowed: frozenset[str]) -> str:
    if type(v) is not str or v not in allowed:
        raise CacheFormatError(f"{what}: not one of {sorted(allowed)}")
    return v


def _values(v: object, what: str, limit: int) -> tuple[int, ...]:
    # tracked values are unsigned or signed 64-bit quantities
    return tuple(_int(n, what, -(1 << 63), U64) for n in _list(v, what, limit))


SITE_KEYS = frozenset({"address", "kind", "numbers", "confidence", "reason", "function", "function_addr", "via"})
WRAPPER_KEYS = frozenset({"address", "name", "arg_index", "via"})
REQUEST_KEYS = frozenset({"address", "call", "arg_index", "values", "exact", "function"})


def _site(v: object, n: int) -> dict[str, Any]:
    d = _record(v, "site", SITE_KEYS)
    fa = d["function_addr"]
    return {
        "address": _int(d["address"], "site address"),
        "kind": _one_of(d["kind"], "site kind", SITE_KINDS),
        "numbers": _values(d["numbers"], "site numbers", n),
        "confidence": _one_of(d["confidence"], "site confidence", CONFIDENCES),
        "reason": _str(d["reason"], "site reason"),
        "function": _opt_str(d["function"], "site function"),
        "function_addr": None if fa is None else _int(fa, "site function_addr"),
        "via": _opt_str(d["via"], "site via"),
    }


def _wrapper(v: object) -> dict[str, Any]:
    d = _record(v, "wrapper", WRAPPER_KEYS)
    return {
        "address": _int(d["address"], "wrapper address"),
        "name": _opt_str(d["name"], "wrapper name"),
        "arg_index": _int(d["arg_index"], "wrapper arg_index", 0, MAX_ARG_INDEX),
        "via": _str(d["via"], "wrapper via"),
    }


def _request(v: object, n: int) -> dict[str, Any]:
    d = _record(v, "request", REQUEST_KEYS)
    if type(d["exact"]) is not bool:
        raise CacheFormatError("request exact: not a boolean")
    return {
        "address": _int(d["address"], "request address"),
        "call": _one_of(d["call"], "request call", REQUEST_CALLS),
        "arg_index": _int(d["arg_index"], "request arg_index", 0, MAX_ARG_INDEX),
        "values": _values(d["values"], "request values", n),
        "exact": d["exact"],
        "function": _opt_str(d["function"], "request function"),
    }


def _exports(names: object, addresses: object, limit: int) -> tuple[tuple[str, int], ...]:
    """Exported functions, stored as two parallel lists and checked with C-level passes
    (libtorch_cpu.so has 60 k of them: a Python loop per pair would double the warm load)."""
    keys = _list(names, "export_names", limit)
    addrs = _list(addresses, "export_addresses", limit)
    if len(keys) != len(addrs):
        raise CacheFormatError("export_names and export_addresses differ in length")
    if set(map(type, keys)) - {str}:
        raise CacheFormatError("export name: not a string")
    if set(map(type, addrs)) - {int} or (addrs and (min(addrs) < 0 or max(addrs) >= U64)):
        raise CacheFormatError(f"export address: not an integer in [0, {U64})")
    return tuple(zip(keys, addrs, strict=True))


def _stats(v: object) -> dict[str, int | float]:
    if type(v) is not dict or len(v) > MAX_STATS:
        raise CacheFormatError("stats: not a small object")
    for k, x in v.items():
        if type(x) not in (int, float):
            raise CacheFormatError(f"stats {k!r}: not a number")
    return v


def _parse_meta(meta: bytes) -> dict[str, Any]:
    return _record(strict_json(meta, "meta", CacheFormatError), "meta", META_KEYS)


def decode(
    key: str, obj: str, size: int, meta: bytes, data: bytes, elf: ElfFile, identity: ObjectIdentity
) -> CachedScan:
    """Validate one stored entry against ``key`` and the ELF it claims to describe."""
    if obj != identity.sha256 or size != elf.size:
        raise CacheFormatError("recorded object identity is not this file's")
    doc = _parse_meta(meta)
    n = elf.size  # no table of a scan can have more elements than the file has bytes
    if doc["format"] != FORMAT or type(doc["format"]) is not int:
        raise CacheFormatError(f"format {doc['format']!r}, expected {FORMAT}")
    if doc["key"] != key:
        raise CacheFormatError("recorded key is not the one looked up")
    if doc["arch"] != elf.machine_name or not key.split("/")[2:3] == [elf.machine_name]:
        raise CacheFormatError("architecture mismatch")
    if doc["size"] != elf.size or type(doc["size"]) is not int or doc["build_id"] != elf.build_id:
        raise CacheFormatError("recorded size or build-id is not this file's")
    sites = tuple(_site(s, n) for s in _list(doc["sites"], "sites", n))
    wrappers = tuple(_wrapper(w) for w in _list(doc["wrappers"], "wrappers", n))
    import_keys = tuple(_list(doc["import_keys"], "import_keys", n))
    if set(map(type, import_keys)) - {str}:
        raise CacheFormatError("import key: not a string")
    exports = _exports(doc["export_names"], doc["export_addresses"], n)
    requests = tuple(_request(r, n) for r in _list(doc["requests"], "requests", n))
    stats = _stats(doc["stats"])
    counts = [_int(c, "array length", 0, 2 * n + 2) for c in _list(doc["arrays"], "arrays", len(ARRAYS))]
    if len(counts) != len(ARRAYS):
        raise CacheFormatError("arrays: wrong number of arrays")
    func_starts, indptr, indices, data_starts = _arrays(data, counts)
    _check_graph(func_starts, indptr, indices, len(import_keys), data_starts)
    return CachedScan(
        doc["arch"], sites, wrappers, import_keys, exports, requests, stats, func_starts, indptr, indices, data_starts
    )


def _arrays(data: bytes, counts: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    sizes = [c * np.dtype(le).itemsize for c, (_, le, _) in zip(counts, ARRAYS, strict=True)]
    if sum(sizes) != len(data):
        raise CacheFormatError(f"data is {len(data)} bytes, its arrays need {sum(sizes)}")
    out = []
    off = 0
    for c, (_, le, native), nbytes in zip(counts, ARRAYS, sizes, strict=True):
        out.append(np.frombuffer(data, dtype=le, count=c, offset=off).astype(native))  # a writeable copy
        off += nbytes
    return out[0], out[1], out[2], out[3]


def _check_graph(
    func_starts: np.ndarray, indptr: np.ndarray, indices: np.ndarray, n_imports: int, data_starts: np.ndarray
) -> None:
    n_nodes = len(func_starts) + n_imports + len(data_starts)
    if len(data_starts) > 1 and not bool(np.all(data_starts[1:] > data_starts[:-1])):
        raise CacheFormatError("data_starts not strictly increasing")
    if len(indptr) != n_nodes + 1:
        raise CacheFormatError(f"indptr has {len(indptr)} entries for {n_nodes} nodes")
    if len(func_starts) > 1 and not bool(np.all(func_starts[1:] > func_starts[:-1])):
        raise CacheFormatError("func_starts not strictly increasing")
    if int(indptr[0]) != 0 or int(indptr[-1]) != len(indices) or bool(np.any(np.diff(indptr) < 0)):
        raise CacheFormatError("indptr is not a valid CSR row index")
    if len(indices) and (int(indices.min()) < 0 or int(indices.max()) >= n_nodes):
        raise CacheFormatError("indices outside the node range")
