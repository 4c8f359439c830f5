"""Object identity: what an analysed file *is*, independent of its name and of its build-id.

``object_identity(path | ElfFile)`` is the sha256 of the file's bytes plus its size.  A GNU
build-id is not identity: it is a linker-chosen label that survives binary patching (a
``syscall(SYS_getpid)`` patched to ``execve`` keeps the build-id and the size), and a hostile
file can copy any build-id it likes.  Every cache entry and every corpus row is keyed on this.

Hashing libtorch_cpu.so (434 MB) costs ~0.35 s, so the digest is memoised per *file stamp* —
(st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns) of the open file, taken with ``fstat`` on the
descriptor that is actually read, never by path.  ``st_ctime`` is the guard that matters: any
write or ``utime`` sets it to the current time and user space cannot set it back, so a file
patched in place (even with its mtime restored) gets a new stamp.  A memo hit is accepted only
if a *probe* — the sha256 of the size, the first and last 64 KiB and 16 pages spread over the
file (192 KiB read) — matches as well, bound to the digest (:func:`memo_token`), so a memo row that
belongs to another file (a reused inode number, a copied database, a digest column damaged on
its own) is caught before it can name the wrong cache entry.

The persistent memo is the cache database (:class:`uk_depscan.store.cache.CacheStore`); without
one, digests are memoised for the life of the process only.  Threat model: anyone who can write
the user's cache directory can forge a consistent entry, as they could edit the user's shell
profile; the identity guards against accidents, stale data and copies, not against that writer.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from uk_depscan.cleanup import BoundedThread, start_thread

if TYPE_CHECKING:
    from uk_depscan.elf.file import ElfFile

PROBE_EDGE = 64 << 10
PROBE_PAGES = 16
PROBE_PAGE = 4096
HASH_STEP = 16 << 20
_PROCESS_MEMO_LIMIT = 1 << 16


@dataclass(frozen=True)
class FileStamp:
    """What changes whenever a file's content can have changed (see the module docstring)."""

    dev: int
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileStamp:
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@dataclass(frozen=True)
class ObjectIdentity:
    """The content identity of one file: ``sha256`` (64 lowercase hex digits) and ``size`` in bytes."""

    sha256: str
    size: int

    def __str__(self) -> str:
        return f"sha256:{self.sha256}"


class IdentityMemo(Protocol):
    """A persistent stamp → (sha256, :func:`memo_token`) memo (the cache database implements it)."""

    def recall(self, stamp: FileStamp) -> tuple[str, bytes] | None: ...

    def remember(self, stamp: FileStamp, sha256: str, probe: bytes) -> None: ...


# Digests this process computed itself (or was told by the wheel extraction that wrote the file):
# trusted without a probe.
_process_memo: dict[FileStamp, str] = {}


def remember_digest(stamp: FileStamp, sha256: str) -> None:
    """Record a digest computed while writing a file (the wheel extraction hashes as it streams)."""
    if len(_process_memo) >= _PROCESS_MEMO_LIMIT:
        _process_memo.clear()
    _process_memo[stamp] = sha256


def stamp_of(elf: ElfFile) -> FileStamp | None:
    """The stamp of the descriptor ``elf`` mapped.

    Falls back to ``stat(elf.path)`` should the reader keep no descriptor: the path may by then
    name another file, but a memo row made from that stamp still carries the probe of the bytes
    actually hashed, so it can never vouch for different content.
    """
    fh = getattr(elf, "_fh", None)
    fileno = getattr(fh, "fileno", None)
    try:
        st = os.fstat(fileno()) if callable(fileno) else os.stat(elf.path)
    except (OSError, ValueError):
        return None
    return FileStamp.of(st) if stat.S_ISREG(st.st_mode) else None


class _Reader(Protocol):
    size: int

    def read(self, offset: int, n: int) -> bytes | memoryview: ...


class _MappedReader:
    def __init__(self, elf: ElfFile) -> None:
        self.view = elf.data.data.cast("B")
        self.size = len(self.view)

    def read(self, offset: int, n: int) -> memoryview:
        return self.view[offset : offset + n]


class _FdReader:
    def __init__(self, fd: int, size: int) -> None:
        self.fd = fd
        self.size = size

    def read(self, offset: int, n: int) -> bytes:
        return os.pread(self.fd, n, offset)


def probe_digest(reader: _Reader) -> bytes:
    """sha256 over the size, the first and last 64 KiB and 16 evenly spread 4 KiB pages."""
    size = reader.size
    h = hashlib.sha256(size.to_bytes(8, "little"))
    spans = [(0, PROBE_EDGE)]
    spans += [(k * size // (PROBE_PAGES + 1), PROBE_PAGE) for k in range(1, PROBE_PAGES + 1)]
    spans.append((max(0, size - PROBE_EDGE), PROBE_EDGE))
    for off, n in spans:
        h.update(reader.read(off, min(n, max(0, size - off))))
    return h.digest()


def memo_token(probe: bytes, sha256: str) -> bytes:
    """What the memo stores beside a digest: the probe bound to that digest, so a row whose digest
    column alone changed (or was copied from another file's row) fails the check like a wrong probe."""
    return hashlib.sha256(probe + sha256.encode("ascii")).digest()


def _full_digest(reader: _Reader) -> str:
    h = hashlib.sha256()
    for off in range(0, reader.size, HASH_STEP):
        h.update(reader.read(off, HASH_STEP))  # hashlib releases the GIL on large buffers
    return h.hexdigest()


def _identify(reader: _Reader, stamp: FileStamp | None, memo: IdentityMemo | None) -> ObjectIdentity:
    if stamp is not None and stamp.size == reader.size:
        known = _process_memo.get(stamp)
        if known is not None:
            return ObjectIdentity(known, reader.size)
        if memo is not None:
            row = memo.recall(stamp)
            if row is not None and row[1] == memo_token(probe_digest(reader), row[0]):
                _process_memo[stamp] = row[0]
                return ObjectIdentity(row[0], reader.size)
    pending = _pending.get(stamp) if stamp is not None and stamp.size == reader.size else None
    digest = pending.result() if pending is not None else _full_digest(reader)
    if stamp is not None and stamp.size == reader.size:
        remember_digest(stamp, digest)
        if memo is not None:
            memo.remember(stamp, digest, memo_token(probe_digest(reader), digest))
    return ObjectIdentity(digest, reader.size)


class _Digest:
    """A sha256 being computed by a background thread (:func:`digest_in_background`)."""

    def __init__(self, reader: _Reader) -> None:
        self._reader = reader
        self._digest = ""
        self._error: Exception | None = None
        self.thread = BoundedThread(target=self._run, name="uk-depscan-sha256", daemon=True)

    def _run(self) -> None:
        try:
            self._digest = _full_digest(self._reader)
        except Exception as err:  # noqa: BLE001 - handed to the waiting caller, which raises it
            self._error = err

    def result(self) -> str:
        self.thread.join()
        if self._error is not None:
            raise self._error
        return self._digest


# Digests being computed in the background, by file stamp.
_pending: dict[FileStamp, _Digest] = {}


def memoised(elf: ElfFile, memo: IdentityMemo | None) -> bool:
    """Whether the identity of ``elf``'s file is known without hashing it (memo hit for its stamp;
    the probe is not checked here, :func:`object_identity` still does)."""
    stamp = stamp_of(elf)
    if stamp is None:
        return False
    return stamp in _process_memo or (memo is not None and memo.recall(stamp) is not None)


@contextlib.contextmanager
def digest_in_background(elf: ElfFile) -> Iterator[None]:
    """Within the block, the sha256 of ``elf``'s mapped bytes is computed by a thread, and
    :func:`object_identity` of the same file (same stamp) waits for it instead of hashing again.

    hashlib releases the GIL while it hashes a large buffer, so a caller that expects to analyse
    a file it has never seen (a cold cache) overlaps the 0.45 s digest of a 434 MB library with
    its own work.  The thread only reads the mapping; it is joined when the block ends."""
    stamp = stamp_of(elf)
    if stamp is None or stamp in _pending or stamp in _process_memo:
        yield
        return
    pending = _Digest(_MappedReader(elf))
    if not start_thread(pending.thread):  # no memory for a thread: object_identity hashes in line
        yield
        return
    _pending[stamp] = pending
    try:
        yield
    finally:
        pending.thread.join()
        _pending.pop(stamp, None)


def object_identity(obj: str | os.PathLike[str] | ElfFile, *, memo: IdentityMemo | None = None) -> ObjectIdentity:
    """The content identity of a file (a path) or of the bytes an :class:`ElfFile` mapped.

    ``memo``: a persistent memo (e.g. ``CacheStore()``) so that a file unchanged since the last
    run is not hashed again.  Raises OSError for a path that cannot be read, ValueError for one
    that is not a regular file (a FIFO would block, a device never end).
    """
    if not isinstance(obj, (str, os.PathLike)):
        return _identify(_MappedReader(obj), stamp_of(obj), memo)
    # O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused right after.
    fd = os.open(obj, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"{os.fspath(obj)}: not a regular file")
        return _identify(_FdReader(fd, st.st_size), FileStamp.of(st), memo)
    finally:
        os.close(fd)
