"""Reading sources inside their tree and writing the root filesystem inside the output, nowhere else.

**Sources.**  Every file the loader found is read through :func:`open_in_tree`, which resolves the
path one component at a time from a directory descriptor of its *source tree* (``openat`` with
``O_NOFOLLOW``; symlinks read with ``readlinkat`` and followed by hand, at most 40 as Linux does):

* the system tree (``--root``, default ``/``) is a chroot: an absolute link target starts again at
  the tree's root and ``..`` stops there — a sysroot's ``/lib64/ld-linux-x86-64.so.2 ->
  /lib/x86_64-linux-gnu/…`` names the sysroot's loader, as it will in the guest, never the host's;
* an application tree (the directory holding the targets and what ``$ORIGIN`` finds, a wheel's
  extraction directory) is closed: a link that leads above it, or to an absolute path outside it,
  is refused (:class:`Refused`), so a hostile ``libfoo.so -> /etc/shadow`` or ``-> ../../..`` in a
  wheel or directory never brings a host file into the image.

Only regular files are opened (``O_NONBLOCK``, checked again with ``fstat`` after the open: a FIFO
never blocks us), and never on a pseudo-filesystem (``fstatfs`` of the opened file).

**Output.**  :class:`TreeWriter` creates entries below a directory it made itself, walking each
in-guest path from the root's descriptor with ``O_NOFOLLOW`` and creating with ``O_EXCL``: no
``..``, no absolute name, no symlink (even one planted meanwhile) leads out of it.  Permission bits
are kept, setuid/setgid/sticky dropped (the image is unpacked by root, in the guest).  Timestamps
are set last, directories deepest first (writing a child changes its directory's mtime).
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache

from uk_depscan.errors import DepscanError
from uk_depscan.fs import MAX_SYMLINKS, PSEUDO_FILESYSTEMS, kind_of

CHUNK = 1 << 20
MODE_BITS = 0o777  # what is kept of a source's mode
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class Refused(DepscanError):
    """A source that the safety rules do not let into the image (the reason is the message)."""


@dataclass(frozen=True)
class SourceTree:
    """Where a source may be read from: ``base`` (a real, resolved directory) and how an absolute
    symlink target inside it is read (``chroot``: from ``base``; otherwise it must lie inside ``base``)."""

    base: str
    chroot: bool

    def relative(self, path: str) -> str | None:
        """``path`` relative to the base, lexically (None when it is not below it)."""
        norm = os.path.normpath(os.path.abspath(path))
        if self.chroot and self.base == "/":
            return norm.lstrip("/")
        if norm == self.base:
            return ""
        prefix = self.base.rstrip("/") + "/"
        return norm[len(prefix) :] if norm.startswith(prefix) else None


# -- fstatfs: the filesystem of an open file ----------------------------------------------------------
class _Statfs(ctypes.Structure):
    _fields_ = (("f_type", ctypes.c_long), ("_rest", ctypes.c_byte * 248))


@lru_cache(maxsize=1)
def _fstatfs() -> object | None:
    try:
        fn = ctypes.CDLL(None, use_errno=True).fstatfs
    except (OSError, AttributeError):
        return None
    fn.argtypes = (ctypes.c_int, ctypes.POINTER(_Statfs))
    fn.restype = ctypes.c_int
    return fn


def fd_pseudo_filesystem(fd: int) -> str | None:
    """Name of the pseudo-filesystem holding the open file ``fd`` (procfs, sysfs, …), else None."""
    fn = _fstatfs()
    if fn is None:
        return None
    buf = _Statfs()
    if fn(fd, ctypes.byref(buf)) != 0:  # type: ignore[operator]
        return None
    return PSEUDO_FILESYSTEMS.get(int(buf.f_type) & 0xFFFFFFFF)


# -- reading inside a tree ------------------------------------------------------------------------------
class _Walker:
    """Descriptor-based resolution of one path inside a :class:`SourceTree`."""

    def __init__(self, tree: SourceTree, shown: str) -> None:
        self.tree, self.shown = tree, shown
        self.stack = [os.open(tree.base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)]
        self.names: list[str] = []
        self.hops = 0

    def close(self) -> None:
        for fd in self.stack:
            os.close(fd)
        self.stack = []

    def to_root(self) -> None:
        for fd in self.stack[1:]:
            os.close(fd)
        del self.stack[1:]
        self.names = []

    def up(self) -> None:
        if len(self.stack) == 1:
            if self.tree.chroot:
                return  # "/.." is "/" in a chroot
            raise Refused(f"{self.shown}: leads above its source tree {self.tree.base}")
        os.close(self.stack.pop())
        self.names.pop()

    def follow(self, name: str, pending: list[str]) -> None:
        self.hops += 1
        if self.hops > MAX_SYMLINKS:
            raise Refused(f"{self.shown}: too many levels of symbolic links")
        target = os.readlink(name, dir_fd=self.stack[-1])
        if not target:
            raise Refused(f"{self.shown}: empty symbolic link")
        if target.startswith("/"):
            # chroot: from the tree's root; closed tree: only a path inside it, taken from its root
            inside = target if self.tree.chroot else self.tree.relative(target)
            if inside is None:
                raise Refused(
                    f"{self.shown}: symbolic link {'/'.join([*self.names, name])} -> {target} leads out of its "
                    f"source tree {self.tree.base}"
                )
            self.to_root()
            target = inside
        pending.extend(reversed([c for c in target.split("/") if c]))

    def enter(self, name: str) -> None:
        fd = os.open(name, _DIR_FLAGS, dir_fd=self.stack[-1])
        self.stack.append(fd)
        self.names.append(name)
        pseudo = fd_pseudo_filesystem(fd)
        if pseudo:
            raise Refused(f"{self.shown}: on a pseudo-filesystem ({pseudo})")

    def walk(self, rel: str, *, last_link: bool) -> tuple[int, str]:
        """(descriptor of the parent directory, last name), every symlink on the way followed (the
        last one too unless ``last_link``)."""
        pending = [c for c in rel.split("/") if c][::-1]
        if not pending:
            raise Refused(f"{self.shown}: is the source tree itself")
        while pending:
            name = pending.pop()
            if name == ".":
                continue
            if name == "..":
                self.up()
                continue
            try:
                st = os.stat(name, dir_fd=self.stack[-1], follow_symlinks=False)
            except FileNotFoundError as err:
                raise Refused(f"{self.shown}: no such file ({'/'.join([*self.names, name])})") from err
            if stat.S_ISLNK(st.st_mode) and (pending or not last_link):
                self.follow(name, pending)
                continue
            if not pending:
                return self.stack[-1], name
            if not stat.S_ISDIR(st.st_mode):
                raise Refused(f"{self.shown}: {'/'.join([*self.names, name])} is not a directory")
            self.enter(name)
        raise Refused(f"{self.shown}: names a directory, not a file")


def open_in_tree(tree: SourceTree, rel: str, shown: str) -> tuple[int, str]:
    """Open the regular file ``rel`` of ``tree`` for reading; returns (descriptor, its path
    relative to the tree after every symlink).  Raises :class:`Refused`; OSError for I/O problems."""
    walker = _Walker(tree, shown)
    try:
        parent, name = walker.walk(rel, last_link=False)
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=parent)
        st = os.fstat(fd)
        pseudo = fd_pseudo_filesystem(fd)
        if not stat.S_ISREG(st.st_mode) or pseudo:
            os.close(fd)
            why = f"on a pseudo-filesystem ({pseudo})" if pseudo else f"not a regular file ({kind_of(st.st_mode)})"
            raise Refused(f"{shown}: {why}")
        return fd, "/".join([*walker.names, name])
    except OSError as err:
        if err.errno == errno.ELOOP:  # O_NOFOLLOW met a link that was swapped in meanwhile
            raise Refused(f"{shown}: changed into a symbolic link while being read") from err
        raise
    finally:
        walker.close()


def read_link_in_tree(tree: SourceTree, rel: str, shown: str) -> str | None:
    """The target of ``rel`` itself when it is a symbolic link (its directories resolved inside
    ``tree``), else None."""
    walker = _Walker(tree, shown)
    try:
        parent, name = walker.walk(rel, last_link=True)
        st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        return os.readlink(name, dir_fd=parent) if stat.S_ISLNK(st.st_mode) else None
    finally:
        walker.close()


def hash_fd(fd: int) -> tuple[int, str]:
    """(size, sha256) of an open file, read from its start."""
    h = hashlib.sha256()
    size = 0
    os.lseek(fd, 0, os.SEEK_SET)
    while chunk := os.read(fd, CHUNK):
        h.update(chunk)
        size += len(chunk)
    return size, h.hexdigest()


# -- writing the tree ------------------------------------------------------------------------------------
def guest_components(path: str) -> list[str]:
    """The components of an in-guest path; raises ValueError for anything that could leave the
    output (empty, ``.``/``..``, NUL) — the layout never produces one, this is the last guard."""
    parts = path.split("/")
    if not path.startswith("/") or any(p in ("", ".", "..") or "\0" in p for p in parts[1:]) or path == "/":
        raise ValueError(f"unsafe in-guest path {path!r}")
    return parts[1:]


class TreeWriter:
    """Creates entries below ``root`` (a directory this run made, empty) and nowhere else."""

    def __init__(self, root: str, mtime: int) -> None:
        self.root = root
        self.mtime = mtime
        self.fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self.dirs: dict[str, int] = {}  # in-guest directory -> mode, for the final timestamp pass

    def close(self) -> None:
        os.close(self.fd)

    @contextmanager
    def _parent(self, path: str) -> Iterator[tuple[int, str]]:
        parts = guest_components(path)
        fds: list[int] = []
        try:
            cur = self.fd
            for name in parts[:-1]:
                cur = os.open(name, _DIR_FLAGS, dir_fd=cur)
                fds.append(cur)
            yield cur, parts[-1]
        finally:
            for fd in fds:
                os.close(fd)

    def mkdir(self, path: str, mode: int) -> None:
        with self._parent(path) as (parent, name):
            os.mkdir(name, 0o700, dir_fd=parent)
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent)  # never a link planted after the mkdir
            try:
                os.fchmod(fd, mode & MODE_BITS)
            finally:
                os.close(fd)
        self.dirs[path] = mode

    def write_file(self, path: str, src: int, mode: int) -> tuple[int, str]:
        """Copy the open file ``src``; returns (size, sha256) of what was written."""
        h = hashlib.sha256()
        size = 0
        with self._parent(path) as (parent, name):
            fd = os.open(
                name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=parent
            )
            try:
                os.lseek(src, 0, os.SEEK_SET)
                while chunk := os.read(src, CHUNK):
                    h.update(chunk)
                    size += len(chunk)
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(fd, view) :]
                os.fchmod(fd, mode & MODE_BITS)
                os.utime(fd, (self.mtime, self.mtime))
            finally:
                os.close(fd)
        return size, h.hexdigest()

    def write_bytes(self, path: str, data: bytes, mode: int) -> None:
        with self._parent(path) as (parent, name):
            fd = os.open(
                name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=parent
            )
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fchmod(fd, mode & MODE_BITS)
                os.utime(fd, (self.mtime, self.mtime))
            finally:
                os.close(fd)

    def symlink(self, path: str, target: str) -> None:
        with self._parent(path) as (parent, name):
            os.symlink(target, name, dir_fd=parent)
            os.utime(name, (self.mtime, self.mtime), dir_fd=parent, follow_symlinks=False)

    def finish(self) -> None:
        """Directory timestamps, deepest first; then the root's."""
        for path in sorted(self.dirs, key=lambda p: (-p.count("/"), p)):
            with self._parent(path) as (parent, name):
                os.utime(name, (self.mtime, self.mtime), dir_fd=parent, follow_symlinks=False)
        os.utime(self.fd, (self.mtime, self.mtime))
