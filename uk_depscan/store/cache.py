"""The on-disk cache: one SQLite database, only ever an accelerator.

Location: ``$UK_DEPSCAN_CACHE_DIR``, else ``$XDG_CACHE_HOME/uk-depscan``, else
``~/.cache/uk-depscan``; the database is ``uk-depscan-cache.sqlite3`` in it.  Tables:

* ``entries(key, object, size, meta, data, digest, stored)`` — one cached result per key.  ``key``
  names the producer, its version, the architecture and the object identity (e.g.
  ``syscalls/3/x86_64/<sha256>``); ``meta`` is UTF-8 JSON, ``data`` packed little-endian arrays;
  ``digest`` = sha256 over key, object, size, meta and data, so a row whose parts do not belong
  together (bit rot, a blob copied from another row) is detected before anything is decoded.
* ``identities(dev, ino, size, mtime_ns, ctime_ns, sha256, probe, used)`` — the file-stamp memo of
  :mod:`uk_depscan.store.identity`, at most :data:`MAX_IDENTITIES` rows (oldest dropped).

Every problem — a damaged, foreign or outdated database, a FIFO or device in its place, a
row of the wrong types or sizes, a digest mismatch — gives one warning (per problem, per
process), is treated as a miss, and the offending row or file is replaced.  Results never
depend on the cache: entries are validated by their readers before use, and a reader that
rejects an entry rescans.  Stale ``.tmp`` files (older than 10 minutes) left by older versions
are removed when the cache is opened.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from uk_depscan.fs import lstat_kind
from uk_depscan.store.db import Schema, StoreProblem, database_files, is_damage, open_db, remove_database
from uk_depscan.store.identity import FileStamp

log = logging.getLogger(__name__)

CACHE_FILE = "uk-depscan-cache.sqlite3"
SCHEMA = Schema(
    0x756B6463,  # "ukdc"
    1,
    (
        "CREATE TABLE entries (key TEXT PRIMARY KEY, object TEXT NOT NULL, size INTEGER NOT NULL, "
        "meta BLOB NOT NULL, data BLOB NOT NULL, digest BLOB NOT NULL, stored INTEGER NOT NULL) STRICT",
        "CREATE TABLE identities (dev INTEGER NOT NULL, ino INTEGER NOT NULL, size INTEGER NOT NULL, "
        "mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL, probe BLOB NOT NULL, "
        "used INTEGER NOT NULL, PRIMARY KEY (dev, ino)) STRICT",
        "CREATE INDEX identities_used ON identities (used)",
    ),
)
MAX_IDENTITIES = 100_000
STALE_TMP_SECONDS = 600
# Files of the cache's earlier file-per-entry format; never read, removed by `cache clear`.
LEGACY = re.compile(r"^(syscalls-.*\.(json|npz)|\.syscalls-.*\.tmp)$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

_warned: set[str] = set()
_swept: set[str] = set()


class EntryProblem(Exception):
    """A cached row that cannot be used (reported by the reader as one warning, then replaced).

    ``whole_database``: the row is larger than any entry this tool writes — tampering or damage
    of the file, not of one entry — and deleting it would cost time proportional to its size
    (SQLite walks every overflow page), so the whole database is replaced instead, in O(1).
    """

    def __init__(self, problem: str, *, whole_database: bool = False, reported: bool = False) -> None:
        super().__init__(problem)
        self.whole_database = whole_database
        self.reported = reported  # the store already warned (and replaced a damaged file): say nothing more


def cache_dir() -> Path:
    env = os.environ.get("UK_DEPSCAN_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "uk-depscan"


def warn_once(message: str) -> None:
    """One warning per distinct problem per process: a broken cache must not flood stderr."""
    if message not in _warned:
        _warned.add(message)
        log.warning("%s", message)


def _signed(x: int) -> int:
    """st_dev/st_ino are unsigned 64-bit; SQLite integers are signed."""
    return x - (1 << 64) if x >= 1 << 63 else x


def entry_digest(key: str, obj: str, size: int, meta: bytes, data: bytes) -> bytes:
    h = hashlib.sha256()
    for part in (key.encode("utf-8"), obj.encode("ascii", "replace"), str(size).encode("ascii"), meta, data):
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return h.digest()


@dataclass(frozen=True)
class StoredEntry:
    """A row whose digest matched: ``meta`` and ``data`` are still untrusted bytes to validate."""

    object: str
    size: int
    meta: bytes
    data: bytes


@dataclass(frozen=True)
class CacheInfo:
    directory: Path
    database: Path
    database_bytes: int
    entries: int
    entry_bytes: int
    by_producer: tuple[tuple[str, int], ...]
    identities: int
    legacy_files: int
    legacy_bytes: int
    problem: str | None


class CacheStore:
    """The cache database of one directory.  Each operation opens and closes its own connection:
    nothing is kept between calls, so a file replaced or removed meanwhile is simply reopened."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory if directory is not None else cache_dir()
        self.path = self.directory / CACHE_FILE
        self._session: sqlite3.Connection | None = None

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """Inside the block this store's operations share one connection (the end of a run writes
        the memos of ~300 libraries: opening and checking the database for each took 0.5 s)."""
        if self._session is not None:
            yield
            return
        with self.connect() as conn:
            self._session = conn
            try:
                yield
            finally:
                self._session = None

    # -- connections -------------------------------------------------------------------------------
    def _prepare_directory(self) -> str | None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as err:
            return f"cannot create {self.directory}: {err.strerror or err}"
        if not self.directory.is_dir():
            return f"{self.directory} is not a directory"
        key = str(self.directory)
        if key not in _swept:
            _swept.add(key)
            self._sweep_tmp()
        return None

    def _sweep_tmp(self) -> None:
        now = time.time()
        with contextlib.suppress(OSError), os.scandir(self.directory) as it:
            for e in it:
                if not (e.name.startswith(".") and e.name.endswith(".tmp")):
                    continue
                with contextlib.suppress(OSError):
                    st = e.stat(follow_symlinks=False)
                    if now - st.st_mtime > STALE_TMP_SECONDS and lstat_kind(e.path) in (
                        "regular file",
                        "symbolic link",
                    ):
                        os.unlink(e.path)

    @contextlib.contextmanager
    def connect(self, *, create: bool = True) -> Iterator[sqlite3.Connection | None]:
        """A checked connection, or None (after one warning) when the cache cannot be used."""
        if self._session is not None:
            yield self._session
            return
        if not create and lstat_kind(self.path) is None:
            yield None
            return
        problem = self._prepare_directory()
        if problem is not None:
            warn_once(f"scan cache disabled: {problem}")
            yield None
            return
        conn = self._open()
        if conn is None:
            yield None
            return
        try:
            yield conn
        finally:
            conn.close()

    def _open(self) -> sqlite3.Connection | None:
        try:
            return open_db(self.path, SCHEMA)
        except StoreProblem as first:
            if not first.replaceable:
                warn_once(f"scan cache disabled: {first}")
                return None
            if first.outdated:
                log.info("scan cache %s: %s; starting an empty one", self.path, first.problem)
            else:
                warn_once(f"scan cache {first}; replaced by an empty cache")
            remove_database(self.path)
        try:
            return open_db(self.path, SCHEMA)
        except StoreProblem as second:
            warn_once(f"scan cache disabled: {second}")
            return None

    def _damaged(self, err: sqlite3.Error) -> None:
        """A query failed: a damaged file is replaced, anything else only warned about."""
        if is_damage(err):
            warn_once(f"scan cache {self.path}: damaged ({err}); replaced by an empty cache")
            self._session = None  # the rest of a session opens the new file
            remove_database(self.path)
        else:
            warn_once(f"scan cache {self.path}: {err}")

    # -- entries -----------------------------------------------------------------------------------
    def get(self, key: str, *, max_meta: int, max_data: int) -> StoredEntry | None:
        """The row for ``key`` with its digest checked, None when absent; raises EntryProblem."""
        with self.connect(create=False) as conn:
            if conn is None:
                return None
            try:
                head = conn.execute(
                    "SELECT object, size, typeof(meta), length(meta), typeof(data), length(data), "
                    "typeof(digest), length(digest) FROM entries WHERE key = ?",
                    (key,),
                ).fetchone()
                if head is None:
                    return None
                obj, size, tmeta, nmeta, tdata, ndata, tdig, ndig = head
                if not (isinstance(obj, str) and _SHA256.match(obj)) or type(size) is not int or size < 0:
                    raise EntryProblem("object or size column of the wrong type")
                if (tmeta, tdata, tdig) != ("blob", "blob", "blob") or ndig != 32:
                    raise EntryProblem(f"columns of the wrong types ({tmeta}, {tdata}, {tdig})")
                if nmeta > max_meta or ndata > max_data:
                    raise EntryProblem(
                        f"{nmeta + ndata} bytes, more than the {max_meta + max_data} allowed", whole_database=True
                    )
                meta, data, digest = conn.execute(
                    "SELECT meta, data, digest FROM entries WHERE key = ?", (key,)
                ).fetchone()
            except sqlite3.Error as err:
                self._damaged(err)
                raise EntryProblem(f"unreadable: {err}", reported=True) from err
        if not isinstance(meta, bytes) or not isinstance(data, bytes) or not isinstance(digest, bytes):
            raise EntryProblem("columns changed type while being read")
        if digest != entry_digest(key, obj, size, meta, data):
            raise EntryProblem("digest mismatch: its parts do not belong together")
        return StoredEntry(obj, size, meta, data)

    def put(self, key: str, obj: str, size: int, meta: bytes, data: bytes) -> None:
        with self.connect() as conn:
            if conn is None:
                return
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.execute(
                        "INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (key, obj, size, meta, data, entry_digest(key, obj, size, meta, data), int(time.time())),
                    )
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as err:
                self._damaged(err)

    def reset(self) -> None:
        """Replace the database by an empty one (its files are removed; the next write creates it)."""
        self._session = None
        remove_database(self.path)

    def discard(self, key: str) -> None:
        with self.connect(create=False) as conn:
            if conn is None:
                return
            try:
                conn.execute("DELETE FROM entries WHERE key = ?", (key,))
            except sqlite3.Error as err:
                self._damaged(err)

    # -- the identity memo (uk_depscan.store.identity.IdentityMemo) ------------------------------------
    def recall(self, stamp: FileStamp) -> tuple[str, bytes] | None:
        with self.connect(create=False) as conn:
            if conn is None:
                return None
            try:
                row = conn.execute(
                    "SELECT sha256, probe FROM identities WHERE dev = ? AND ino = ? AND size = ? "
                    "AND mtime_ns = ? AND ctime_ns = ?",
                    (_signed(stamp.dev), _signed(stamp.ino), stamp.size, stamp.mtime_ns, stamp.ctime_ns),
                ).fetchone()
            except sqlite3.Error as err:
                self._damaged(err)
                return None
        if row is None:
            return None
        sha, probe = row
        if not (isinstance(sha, str) and _SHA256.match(sha) and isinstance(probe, bytes) and len(probe) == 32):
            warn_once(f"scan cache {self.path}: malformed identity memo row ignored")
            return None
        return sha, probe

    def remember(self, stamp: FileStamp, sha256: str, probe: bytes) -> None:
        with self.connect() as conn:
            if conn is None:
                return
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.execute(
                        "INSERT OR REPLACE INTO identities VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            _signed(stamp.dev),
                            _signed(stamp.ino),
                            stamp.size,
                            stamp.mtime_ns,
                            stamp.ctime_ns,
                            sha256,
                            probe,
                            time.time_ns(),
                        ),
                    )
                    excess = conn.execute("SELECT count(*) FROM identities").fetchone()[0] - MAX_IDENTITIES
                    if excess > 0:
                        conn.execute(
                            "DELETE FROM identities WHERE rowid IN "
                            "(SELECT rowid FROM identities ORDER BY used LIMIT ?)",
                            (excess,),
                        )
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as err:
                self._damaged(err)

    # -- info / clear ----------------------------------------------------------------------------------
    def _legacy(self) -> list[Path]:
        try:
            with os.scandir(self.directory) as it:
                return sorted(Path(e.path) for e in it if LEGACY.match(e.name) and not e.is_dir(follow_symlinks=False))
        except OSError:
            return []

    def info(self) -> CacheInfo:
        legacy = self._legacy()
        legacy_bytes = sum(p.lstat().st_size for p in legacy if p.exists())
        db_bytes = sum(p.lstat().st_size for p in _files(self.path))
        entries = identities = entry_bytes = 0
        producers: list[tuple[str, int]] = []
        problem = None
        if lstat_kind(self.path) is not None:
            try:
                conn = open_db(self.path, SCHEMA)
            except StoreProblem as err:
                problem = err.problem
            else:
                try:
                    entries, entry_bytes = conn.execute(
                        "SELECT count(*), coalesce(sum(length(meta) + length(data)), 0) FROM entries"
                    ).fetchone()
                    identities = conn.execute("SELECT count(*) FROM identities").fetchone()[0]
                    rows = conn.execute("SELECT key FROM entries").fetchall()
                    counts: dict[str, int] = {}
                    for (k,) in rows:
                        producer = "/".join(str(k).split("/")[:3])
                        counts[producer] = counts.get(producer, 0) + 1
                    producers = sorted(counts.items())
                except sqlite3.Error as err:
                    problem = str(err)
                finally:
                    conn.close()
        return CacheInfo(
            self.directory,
            self.path,
            db_bytes,
            int(entries),
            int(entry_bytes),
            tuple(producers),
            int(identities),
            len(legacy),
            legacy_bytes,
            problem,
        )

    def clear(self) -> tuple[int, int]:
        """Remove the database and legacy entry files (nothing else in the directory); (files, bytes)."""
        victims = [*_files(self.path), *self._legacy()]
        freed = 0
        count = 0
        for p in victims:
            try:
                size = p.lstat().st_size
                p.unlink()
            except OSError:
                continue
            freed += size
            count += 1
        return count, freed


def _files(path: Path) -> list[Path]:
    return [p for p in database_files(path) if lstat_kind(p) not in (None, "directory")]
