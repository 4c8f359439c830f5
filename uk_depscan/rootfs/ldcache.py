"""``/etc/ld.so.cache`` for the guest, written in glibc's format (no ldconfig is run).

The "new" format of glibc 2.32 and later (sysdeps/generic/dl-cache.h, what ldconfig writes by
default): a 48-byte ``struct cache_file_new`` header (magic ``glibc-ld.so.cache`` + ``1.1``,
``nlibs``, ``len_strings``, the endianness ``flags``, ``extension_offset`` 0 = no extension), then
``nlibs`` 24-byte ``struct file_entry_new`` (``flags``, ``key`` and ``value`` string offsets from the
start of the file, ``osversion`` 0, ``hwcap`` 0), then the strings.  ld.so binary-searches the
entries (dl-cache.c ``search_cache``) with ``_dl_cache_libcmp``, so they are sorted as ldconfig
sorts them (ldconfig.c/cache.c ``compare``: *descending* by that comparison).  ``flags`` per entry
is ``FLAG_ELF_LIBC6`` with the architecture's flag (``_dl_cache_check_flags``: x86-64
``FLAG_X8664_LIB64``, AArch64 ``FLAG_AARCH64_LIB64``), as :data:`uk_depscan.loader.paths.CACHE_FLAGS`.

``_dl_cache_libcmp`` compares runs of digits as numbers (C ``int``, so wrapping is reproduced)
and other characters as C ``char`` — signed on x86-64, unsigned on AArch64 — which matters only
for names with bytes ≥ 0x80.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Sequence

from uk_depscan.elf.file import EM_AARCH64
from uk_depscan.loader.paths import CACHE_FLAGS

MAGIC = b"glibc-ld.so.cache1.1"
HEADER = struct.Struct("<20sIIB3xI12x")  # magic+version, nlibs, len_strings, flags, extension_offset
ENTRY = struct.Struct("<iIIIQ")
ENDIAN_LITTLE = 2  # cache_file_new_flags_endian_little


def _c_int(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


def libcmp(a: bytes, b: bytes, *, signed_char: bool) -> int:
    """``_dl_cache_libcmp`` (elf/dl-cache.c) on two names."""

    def ch(s: bytes, i: int) -> int:
        if i >= len(s):
            return 0
        c = s[i]
        return c - 256 if signed_char and c >= 0x80 else c

    def digit(c: int) -> bool:
        return 0x30 <= c <= 0x39

    i = j = 0
    while ch(a, i) != 0:
        c1, c2 = ch(a, i), ch(b, j)
        if digit(c1):
            if not digit(c2):
                return 1
            v1 = v2 = 0
            while digit(ch(a, i)):
                v1 = _c_int(v1 * 10 + ch(a, i) - 0x30)
                i += 1
            while digit(ch(b, j)):
                v2 = _c_int(v2 * 10 + ch(b, j) - 0x30)
                j += 1
            if v1 != v2:
                return _c_int(v1 - v2)
        elif digit(c2):
            return -1
        elif c1 != c2:
            return c1 - c2
        else:
            i += 1
            j += 1
    return ch(a, i) - ch(b, j)


def build_cache(entries: Sequence[tuple[bytes, bytes]], machine: int) -> bytes:
    """The cache for ``(name, path)`` pairs (paths in-guest, absolute).  A name given twice keeps
    its first path (the caller decides which one the guest must find)."""
    flags = CACHE_FLAGS[machine]
    signed = machine != EM_AARCH64
    first: dict[bytes, bytes] = {}
    for name, path in entries:
        first.setdefault(name, path)

    def descending(x: bytes, y: bytes) -> int:
        return libcmp(y, x, signed_char=signed)

    keys = sorted(first, key=functools.cmp_to_key(descending))
    strings = bytearray()
    offsets: dict[bytes, int] = {}
    base = HEADER.size + ENTRY.size * len(keys)

    def intern(s: bytes) -> int:
        if s not in offsets:
            offsets[s] = base + len(strings)
            strings.extend(s + b"\0")
        return offsets[s]

    rows = [ENTRY.pack(flags, intern(k), intern(first[k]), 0, 0) for k in keys]
    head = HEADER.pack(MAGIC, len(keys), len(strings), ENDIAN_LITTLE, 0)
    return head + b"".join(rows) + bytes(strings)


def read_cache(data: bytes) -> list[tuple[int, bytes, bytes]]:
    """``(flags, name, path)`` in file order: for tests and ``rootfs`` verification."""
    if not data.startswith(MAGIC) or len(data) < HEADER.size:
        raise ValueError("not a new-format ld.so.cache")
    _, nlibs, _, _, _ = HEADER.unpack_from(data)
    out = []
    for i in range(nlibs):
        flags, key, value, _, _ = ENTRY.unpack_from(data, HEADER.size + ENTRY.size * i)
        out.append((flags, data[key : data.index(b"\0", key)], data[value : data.index(b"\0", value)]))
    return out
