"""File-system facts the readers need before they open anything: file kinds and pseudo-filesystems.

Pseudo-filesystems (procfs, sysfs, debugfs, …) expose kernel state as files and *magic links*:
``/proc/self/exe`` is whatever program reads it, ``/proc/self/root`` the reader's own root, and
``/proc/kmsg`` blocks.  A search path or candidate that leads into one would make the report
describe the scanner instead of the scanned object, so :func:`pseudo_filesystem` resolves a path
component by component and asks the kernel (``statfs(2)`` ``f_type``) for the filesystem of every
directory *before* it looks anything up inside it.  A prefix test on the path would miss
``/tmp/x → /proc/self``, a symlinked ``--root`` and ``$ORIGIN`` links; the walk sees them all and
never even ``lstat``s inside a pseudo-filesystem.
"""

from __future__ import annotations

import ctypes
import os
import stat
from functools import lru_cache

# linux/magic.h.  tmpfs/devtmpfs (0x01021994) are absent on purpose: they hold ordinary files
# (/tmp, /dev/shm), and device nodes in /dev are refused by the regular-file checks anyway.
PSEUDO_FILESYSTEMS = {
    0x9FA0: "proc",
    0x62656572: "sysfs",
    0x64626720: "debugfs",
    0x74726163: "tracefs",
    0x73636673: "securityfs",
    0x27E0EB: "cgroup",
    0x63677270: "cgroup2",
    0x1CD1: "devpts",
    0xCAFE4A11: "bpf",
    0x6165676C: "pstore",
    0x62656570: "configfs",
    0xDE5E81E4: "efivarfs",
    0x65735543: "fusectl",
    0x19800202: "mqueue",
    0x6E736673: "nsfs",
    0x42494E4D: "binfmt_misc",
    0xF97CFF8C: "selinuxfs",
    0x43415D53: "smackfs",
}
MAX_SYMLINKS = 40  # Linux's MAXSYMLINKS: the same limit the kernel applies to one lookup

_KINDS = (
    (stat.S_ISREG, "regular file"),
    (stat.S_ISDIR, "directory"),
    (stat.S_ISLNK, "symbolic link"),
    (stat.S_ISFIFO, "FIFO"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
)


def kind_of(mode: int) -> str:
    """'regular file', 'directory', 'symbolic link', 'FIFO', 'socket', 'character device', …"""
    for test, name in _KINDS:
        if test(mode):
            return name
    return "special file"


def lstat_kind(path: str | os.PathLike[str]) -> str | None:
    """The kind of ``path`` itself (a symlink is not followed); None when it does not exist."""
    try:
        return kind_of(os.lstat(path).st_mode)
    except FileNotFoundError:
        return None
    except OSError as err:
        return f"unreadable entry ({err.strerror or err})"


class _Statfs(ctypes.Structure):
    # struct statfs begins with `__fsword_t f_type` (a long on every Linux ABI we target); the
    # rest is room for the remaining fields (120 bytes on 64-bit Linux).
    _fields_ = (("f_type", ctypes.c_long), ("_rest", ctypes.c_byte * 248))


@lru_cache(maxsize=1)
def _statfs_function() -> object | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.statfs
    except (OSError, AttributeError):  # not Linux/glibc/musl: no pseudo-filesystem knowledge
        return None
    fn.argtypes = (ctypes.c_char_p, ctypes.POINTER(_Statfs))
    fn.restype = ctypes.c_int
    return fn


@lru_cache(maxsize=4096)
def filesystem_magic(directory: str) -> int | None:
    """``statfs(directory).f_type``, or None when it cannot be asked.  Cached: the mounts under
    one directory do not change during a run, and the loader asks for the same few directories
    for every candidate."""
    fn = _statfs_function()
    if fn is None:
        return None
    buf = _Statfs()
    if fn(os.fsencode(directory), ctypes.byref(buf)) != 0:  # type: ignore[operator]
        return None
    return int(buf.f_type) & 0xFFFFFFFF


def _pseudo_name(directory: str) -> str | None:
    magic = filesystem_magic(directory)
    return PSEUDO_FILESYSTEMS.get(magic) if magic is not None else None


def pseudo_filesystem(path: str | os.PathLike[str]) -> str | None:
    """Name of the pseudo-filesystem that resolving ``path`` would enter, else None.

    Resolution follows symlinks like the kernel does (relative links against the directory that
    holds them, absolute ones from ``/``, at most 40), but asks ``statfs`` about each directory
    before looking inside it, so magic links in procfs are never followed.  A component that does
    not exist ends the walk: nothing below it can be opened.
    """
    raw = os.fspath(path)
    if not raw:
        return None
    start = "/" if raw.startswith("/") else os.getcwd()
    pending = [c for c in raw.split("/") if c][::-1]  # a stack: next component last
    current = start
    name = _pseudo_name(current)
    if name:
        return name
    hops = 0
    while pending:
        comp = pending.pop()
        if comp == ".":
            continue
        if comp == "..":
            current = os.path.dirname(current) or "/"
            continue
        name = _pseudo_name(current)
        if name:
            return name
        candidate = os.path.join(current, comp)
        try:
            st = os.lstat(candidate)
        except OSError:
            return None
        if stat.S_ISLNK(st.st_mode):
            hops += 1
            if hops > MAX_SYMLINKS:
                return None
            try:
                target = os.readlink(candidate)
            except OSError:
                return None
            if target.startswith("/"):
                current = "/"
            pending.extend(c for c in reversed(target.split("/")) if c)
            continue
        current = candidate
    return _pseudo_name(current)  # the object itself: a mount point, or a file bind-mounted in
