"""A ``newc`` (SVR4, magic ``070701``) cpio writer, standard library only.

The format is the one Linux initramfs and Unikraft's lib/ukcpio read (``ukcpio_valid_magic``; the
header fields are 8 hex digits each, the name and the data padded to 4 bytes, ``TRAILER!!!`` last).
ukcpio extracts each entry at ``<dest>/<name>`` and creates no parent directories, so every parent
comes before its children — sorting the names as bytes does that, since a name sorts before every
name it is a prefix of.  Names are relative (no leading ``/``): ukcpio prefixes the mount point.

Deterministic: entries in byte order of their names, inode numbers counted from 1 in that order,
uid/gid 0, the given mtime, no device numbers; identical inputs give identical bytes.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import BinaryIO

MAGIC = b"070701"
TRAILER = "TRAILER!!!"
MAX_FILESIZE = 0xFFFFFFFF  # the field is 8 hex digits
CHUNK = 1 << 20


@dataclass(frozen=True)
class CpioEntry:
    """``name`` relative, as bytes; ``mode`` with its file-type bits; ``data`` opens the content
    (files) — a symlink's content is its target, given as ``link``."""

    name: bytes
    mode: int
    size: int = 0
    link: bytes | None = None
    data: Callable[[], BinaryIO] | None = None


def _pad(n: int) -> bytes:
    return b"\0" * (-n % 4)


def header(ino: int, mode: int, nlink: int, mtime: int, size: int, name: bytes) -> bytes:
    fields = (ino, mode, 0, 0, nlink, mtime, size, 0, 0, 0, 0, len(name) + 1, 0)
    head = MAGIC + b"".join(b"%08X" % f for f in fields) + name + b"\0"
    return head + _pad(len(head))


def write_cpio(out: BinaryIO, entries: Iterable[CpioEntry], mtime: int) -> int:
    """Write the archive; returns its size in bytes.  Raises ValueError for an entry the format
    cannot hold (a file of 4 GiB or more, a name with NUL, an absolute or ``..`` name)."""
    total = 0
    for ino, e in enumerate(sorted(entries, key=lambda e: e.name), 1):
        _check_name(e.name)
        if stat.S_ISLNK(e.mode):
            body = e.link or b""
            total += _write(out, header(ino, e.mode, 1, mtime, len(body), e.name) + body + _pad(len(body)))
        elif stat.S_ISDIR(e.mode):
            total += _write(out, header(ino, e.mode, 2, mtime, 0, e.name))
        elif stat.S_ISREG(e.mode):
            if e.size > MAX_FILESIZE:
                raise ValueError(f"{e.name!r}: {e.size} bytes: a newc archive holds files below 4 GiB")
            total += _write(out, header(ino, e.mode, 1, mtime, e.size, e.name))
            total += _copy(out, e)
        else:
            raise ValueError(f"{e.name!r}: mode {e.mode:o} is not a file, directory or symlink")
    return total + _write(out, header(0, 0, 1, 0, 0, TRAILER.encode()))


def _check_name(name: bytes) -> None:
    parts = name.split(b"/")
    if not name or name.startswith(b"/") or b"\0" in name or any(p in (b"", b".", b"..") for p in parts):
        raise ValueError(f"unsafe archive name {name!r}")


def _write(out: BinaryIO, data: bytes) -> int:
    out.write(data)
    return len(data)


def _copy(out: BinaryIO, e: CpioEntry) -> int:
    assert e.data is not None
    done = 0
    with e.data() as src:
        while done < e.size and (chunk := src.read(min(CHUNK, e.size - done))):
            out.write(chunk)
            done += len(chunk)
    if done != e.size:
        raise ValueError(f"{e.name!r}: changed size while archived ({done} of {e.size} bytes)")
    return done + _write(out, _pad(done))


def tree_entries(root: str) -> list[CpioEntry]:
    """Every entry below ``root`` (not followed: links stay links), for an archive of that tree."""
    out: list[CpioEntry] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames) + sorted(filenames):
            path = os.path.join(dirpath, name)
            rel = os.fsencode(os.path.relpath(path, root))
            st = os.lstat(path)
            perm = stat.S_IMODE(st.st_mode) & 0o777
            if stat.S_ISLNK(st.st_mode):
                out.append(CpioEntry(rel, stat.S_IFLNK | 0o777, link=os.fsencode(os.readlink(path))))
            elif stat.S_ISDIR(st.st_mode):
                out.append(CpioEntry(rel, stat.S_IFDIR | perm))
            elif stat.S_ISREG(st.st_mode):
                out.append(CpioEntry(rel, stat.S_IFREG | perm, st.st_size, data=_opener(path)))
            else:
                raise ValueError(f"{path}: not a file, directory or symlink")
    return out


def _opener(path: str) -> Callable[[], BinaryIO]:
    def open_it() -> BinaryIO:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        return os.fdopen(fd, "rb")

    return open_it
