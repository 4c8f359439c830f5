"""The cache of per-entry reaches: what each export of a scanned library reaches inside it.

The closure (:mod:`uk_depscan.syscalls.closure`) asks a dependency's summary for the reach of
every export the target's chain enters; each answer is two breadth-first searches over the
library's call graph.  A warm analysis of libtorch_cpu.so asked for ~1 000 of them (0.9 s of a
2.7 s run), always the same ones, and an answer depends only on the library's scan: so the answers
are stored next to the scan, under a key made from the scan's (which holds the engine version,
the architecture and the file's content identity), and merged as new entries are computed.

The entry is untrusted like any cache row (:mod:`uk_depscan.syscalls.cache`): ``meta`` is the
index (entry names and the byte length of each), ``data`` the entries' JSON one after another;
every field is checked — JSON types, lengths adding up, the closed site kinds, import indices
inside the scan's import keys — and a bad entry is one warning, a miss and a rewrite.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from uk_depscan.store.cache import CacheStore, EntryProblem, warn_once
from uk_depscan.store.jsondoc import strict_json
from uk_depscan.syscalls.closure import Reach, Site
from uk_depscan.syscalls.memos import Registry, Where, store_for

log = logging.getLogger(__name__)

FORMAT = 2  # bump whenever a Reach can change for the same scan (closure.Site fields, failure rule)
SITE_KINDS = frozenset({"direct", "wrapper", "local_wrapper"})
U64 = 1 << 64
META_KEYS = frozenset({"format", "key", "entries", "lengths"})


class ReachFormatError(Exception):
    """A field of a cached reach entry is not what the format says."""


def reach_key(scan_key: str) -> str:
    """``syscalls/<engine>/<arch>/<sha256>`` → ``reach/<FORMAT>-<engine>/<arch>/<sha256>``."""
    _, engine, rest = scan_key.split("/", 2)
    return f"reach/{FORMAT}-{engine}/{rest}"


def limits(elf_size: int) -> tuple[int, int]:
    """(meta bytes, data bytes) allowed: like the scan's own entry, proportional to the file."""
    return (1 << 20) + elf_size // 8, (1 << 20) + elf_size // 4


class ReachMemo:
    """One library's reaches by entry: decoded (and validated) one entry at a time, when the
    closure first asks for it.  The union of what every target needed is stored, and libtorch_cpu.so
    under torch/lib has thousands of entries; a target needing ten must not decode them all.

    Stored entries stay raw bytes until asked for; one that fails validation is one warning,
    dropped (the caller computes it) and the memo is rewritten."""

    def __init__(self, name: str, import_keys: tuple[str, ...], raw: dict[str, bytes] | None = None) -> None:
        self.name = name
        self.import_keys = import_keys
        self._raw = raw or {}
        self._done: dict[str, Reach | None] = {}
        self._encoded: dict[str, bytes] | None = None  # stored forms of _done's entries, made when saved
        self._new: set[str] = set()  # entries the cache does not hold yet (computed here or handed over)
        self.damaged = False
        self.where: Where | None = None  # where the memo is stored (set by shared_memo)

    def __contains__(self, entry: str) -> bool:
        if entry in self._done:
            return True
        raw = self._raw.pop(entry, None)
        if raw is None:
            return False
        try:
            self._done[entry] = decode_entry(raw, self.import_keys)
        except ReachFormatError as err:
            warn_once(f"ignoring the cached reaches of {self.name} ({err}); recomputing, the entry is replaced")
            self.damaged = True
            return False
        return True

    def __getitem__(self, entry: str) -> Reach | None:
        if entry not in self:
            raise KeyError(entry)
        return self._done[entry]

    def __setitem__(self, entry: str, reach: Reach | None) -> None:
        self._done[entry] = reach
        self._new.add(entry)
        if self._encoded is not None:
            self._encoded.pop(entry, None)

    def __len__(self) -> int:
        return len(self._done) + len(self._raw)

    @property
    def dirty(self) -> bool:
        return self.damaged or bool(self._new)

    def adopt(self, other: ReachMemo) -> None:
        """Entries ``other`` has and this memo does not (another process's, stored meanwhile)."""
        for entry, raw in other._raw.items():
            if entry not in self._done:
                self._raw.setdefault(entry, raw)

    def hand_over(self) -> dict[str, bytes]:
        """The stored forms of the entries the cache does not hold, which the caller is to store
        (:func:`uk_depscan.syscalls.memos.take_unsaved`); this memo then counts them as stored."""
        encoded = self._encode_done()
        out = {e: self._raw[e] if e in self._raw else encoded[e] for e in sorted(self._new)}
        self._new.clear()
        return out

    def stored(self) -> None:
        """Every entry is in the cache now."""
        self._new.clear()
        self.damaged = False

    def take(self, entries: dict[str, bytes]) -> None:
        """Stored forms of entries another process computed (:meth:`hand_over`), to store with this
        memo's; decoded, and checked, only if this process asks for them."""
        for entry, raw in entries.items():
            if entry not in self._done and entry not in self._raw:
                self._raw[entry] = raw
                self._new.add(entry)

    def encoded(self) -> dict[str, bytes]:
        """Every entry's stored form."""
        out = dict(self._raw)
        out.update(self._encode_done())
        return out

    def _encode_done(self) -> dict[str, bytes]:
        """The stored forms of the decoded and computed entries, each encoded once per process: a
        ``--jobs`` worker hands a library's new entries over after each target (:meth:`hand_over`),
        and re-encoding all of libtorch_cpu.so's 5 k entries each time took a second of torch/lib."""
        if self._encoded is None:
            self._encoded = {}
        fresh = [e for e in self._done if e not in self._encoded]
        if fresh:
            index = {k: i for i, k in enumerate(self.import_keys)}
            self._encoded.update({e: encode_entry(self._done[e], index) for e in fresh})
        return self._encoded


def load(
    name: str, scan_key: str, sha256: str, elf_size: int, import_keys: tuple[str, ...], store: CacheStore
) -> ReachMemo:
    """The stored reaches of the library whose scan is ``scan_key`` (empty on a miss)."""
    key = reach_key(scan_key)
    max_meta, max_data = limits(elf_size)
    try:
        entry = store.get(key, max_meta=max_meta, max_data=max_data)
        if entry is None:
            return ReachMemo(name, import_keys)
        if entry.object != sha256 or entry.size != elf_size:
            raise ReachFormatError("recorded object identity is not this file's")
        return ReachMemo(name, import_keys, decode_index(entry.meta, entry.data, key))
    except (EntryProblem, ReachFormatError) as err:
        warn_once(f"ignoring the cached reaches of {name} ({err}); recomputing, the entry is replaced")
        store.discard(key)
        memo = ReachMemo(name, import_keys)
        memo.damaged = True
        return memo


def flush(memo: ReachMemo) -> None:
    """Store the library's memo when it has entries the cache does not, merged with what other
    processes stored meanwhile (``--jobs``: workers that need the same library for different
    targets each add their entries; the last writer must not drop the others')."""
    if not memo.dirty or memo.where is None:
        return
    scan_key, sha256, elf_size = memo.where.scan_key, memo.where.sha256, memo.where.elf_size
    store = store_for(memo.where.directory)
    memo.adopt(load(memo.name, scan_key, sha256, elf_size, memo.import_keys, store))
    entries = memo.encoded()
    names = sorted(entries)
    key = reach_key(scan_key)
    meta = json.dumps(
        {"format": FORMAT, "key": key, "entries": names, "lengths": [len(entries[n]) for n in names]},
        ensure_ascii=True,
        separators=(",", ":"),
    ).encode("ascii")
    data = b"".join(entries[n] for n in names)
    max_meta, max_data = limits(elf_size)
    if len(meta) > max_meta or len(data) > max_data:
        log.debug("not caching the reaches of %s: %d + %d bytes exceed the limits", memo.name, len(meta), len(data))
        return
    store.put(key, sha256, elf_size, meta, data)
    memo.stored()


# Per process: one memo per library, shared by every target that loads it (a library's reaches
# are read once per process, and what one target computes the next one reuses), stored once per
# run (:func:`uk_depscan.syscalls.memos.save_all`).
_REGISTRY: Registry[ReachMemo] = Registry("reach", reach_key, lambda name: ReachMemo(name, ()), flush)
_process = _REGISTRY.memos  # (cache directory, key) -> memo


def shared_memo(
    name: str, scan_key: str, sha256: str, elf_size: int, import_keys: tuple[str, ...], store: CacheStore
) -> ReachMemo:
    """The process's memo of the library's reaches, loaded from the cache on first use."""
    where = Where(scan_key, sha256, elf_size, str(store.directory))
    return _REGISTRY.shared(where, lambda: load(name, scan_key, sha256, elf_size, import_keys, store))


def encode_entry(r: Reach | None, index: dict[str, int]) -> bytes:
    """``null`` or ``[[site, ...], [import index, ...]]``: imports as indices into the scan's
    import keys (a tenth of the bytes of the names, and checked by a range test)."""
    if r is None:
        return b"null"
    doc = [[[s.number, s.kind, s.function, s.address, s.failure] for s in r.sites], [index[k] for k in r.imports]]
    # ensure_ascii: function names decoded with surrogateescape round-trip exactly as \udcXX escapes
    return json.dumps(doc, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")


def _json(raw: bytes, what: str) -> Any:
    return strict_json(raw, what, ReachFormatError)


def decode_index(meta: bytes, data: bytes, key: str) -> dict[str, bytes]:
    """entry -> its raw bytes, after checking the index (names, lengths adding up to ``data``)."""
    doc = _json(meta, "meta")
    if type(doc) is not dict or doc.keys() != META_KEYS:
        raise ReachFormatError(f"meta: not an object with the fields {sorted(META_KEYS)}")
    if type(doc["format"]) is not int or doc["format"] != FORMAT or doc["key"] != key:
        raise ReachFormatError("format or key is not this entry's")
    names, lengths = doc["entries"], doc["lengths"]
    if type(names) is not list or type(lengths) is not list or len(names) != len(lengths):
        raise ReachFormatError("entries and lengths: not two lists of one length")
    if set(map(type, names)) - {str} or set(map(type, lengths)) - {int}:
        raise ReachFormatError("entries: not strings, or lengths: not integers")
    if (lengths and min(lengths) < 1) or sum(lengths) != len(data) or len(set(names)) != len(names):
        raise ReachFormatError("lengths do not add up to the data, or an entry appears twice")
    out: dict[str, bytes] = {}
    off = 0
    for n, length in zip(names, lengths, strict=True):
        out[n] = data[off : off + length]
        off += length
    return out


def decode_entry(raw: bytes, import_keys: tuple[str, ...]) -> Reach | None:
    v = _json(raw, "reach")
    if v is None:
        return None
    if type(v) is not list or len(v) != 2 or type(v[0]) is not list or type(v[1]) is not list:
        raise ReachFormatError("reach: not [sites, imports]")
    imports = v[1]
    if set(map(type, imports)) - {int}:
        raise ReachFormatError("reach: an import index is not an integer")
    if imports and (min(imports) < 0 or max(imports) >= len(import_keys)):
        raise ReachFormatError("reach: an import the library's call graph does not have")
    return Reach(_sites(v[0]), tuple(import_keys[i] for i in imports))


def _sites(rows: list[Any]) -> tuple[Site, ...]:
    """Every site of one entry, checked column by column with C-level passes (the ALL entry of
    libtorch_cpu.so has thousands); a row that fails is checked alone for the error message."""
    if not rows:
        return ()
    if set(map(type, rows)) == {list} and set(map(len, rows)) == {5}:
        numbers, kinds, functions, addresses, failures = zip(*rows, strict=True)
        addrs = [a for a in addresses if a is not None]
        if (
            set(map(type, numbers)) == {int}
            and min(numbers) >= -(1 << 63)  # tracked values may be signed
            and max(numbers) < U64
            and set(map(type, kinds)) == {str}
            and set(kinds) <= SITE_KINDS
            and set(map(type, functions)) == {str}
            and set(map(type, addrs)) <= {int}
            and (not addrs or (min(addrs) >= 0 and max(addrs) < U64))
            and set(map(type, failures)) == {bool}
        ):
            return tuple(map(Site, numbers, kinds, functions, addresses, failures))
    return tuple(_site(s) for s in rows)  # raises on the first bad row


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
