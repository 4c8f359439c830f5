"""Where ld.so looks: dynamic string tokens, ld.so.conf, ld.so.cache and default directories.

Pure path logic for :mod:`uk_depscan.loader.resolve`.  References are to glibc 2.36 (elf/dl-load.c,
elf/dl-cache.c, elf/ldconfig.c); behaviour that depends on the running kernel or CPU
(AT_PLATFORM, glibc-hwcaps subdirectories) is fixed per target architecture and stated.
"""

from __future__ import annotations

import glob
import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from uk_depscan.elf.file import EM_AARCH64, EM_X86_64, is_special_file
from uk_depscan.fs import pseudo_filesystem

# Debian's multiarch triplets and the interpreters the psABIs fix (PT_INTERP of every glibc program).
TRIPLETS = {EM_X86_64: "x86_64-linux-gnu", EM_AARCH64: "aarch64-linux-gnu"}
PLATFORMS = {EM_X86_64: "x86_64", EM_AARCH64: "aarch64"}
INTERPRETERS = {EM_X86_64: "/lib64/ld-linux-x86-64.so.2", EM_AARCH64: "/lib/ld-linux-aarch64.so.1"}
# dl-cache.c _dl_cache_check_flags: FLAG_ELF_LIBC6 | FLAG_X8664_LIB64 / FLAG_AARCH64_LIB64
CACHE_FLAGS = {EM_X86_64: 0x0303, EM_AARCH64: 0x0A03}
CACHE_MAGIC_NEW = b"glibc-ld.so.cache1.1"


@dataclass(frozen=True)
class SearchConfig:
    """Everything outside the objects that decides the search (see ``uk-depscan --help``)."""

    root: str = "/"
    library_path: tuple[str, ...] = ()
    ld_so_conf: str | None = None
    use_cache: bool = True
    platform: str | None = None
    lib: str | None = None
    default_dirs: tuple[str, ...] | None = None
    # sys.path directories searched for the Python extension modules an object imports by name,
    # after the one holding its own package (uk_depscan.loader.pyimport); host paths, not in root
    python_path: tuple[str, ...] = ()

    def in_root(self, path: str) -> str:
        """Map an absolute target path into the sysroot."""
        if self.root in ("", "/"):
            return path
        return os.path.join(self.root, path.lstrip("/"))


def default_dirs(config: SearchConfig, machine: int) -> tuple[str, ...]:
    """The compiled-in trusted directories (``ld.so --help`` "system search path").

    Debian builds glibc with slibdir=/lib/<triplet>, so its list is the multiarch pair then
    /lib and /usr/lib; other distributions use /lib64:/usr/lib64 (x86-64) or /lib:/usr/lib.
    Which layout applies is read off the root, since we never run its ld.so.
    """
    if config.default_dirs is not None:
        return config.default_dirs
    triplet = TRIPLETS.get(machine)
    if triplet and (
        os.path.isdir(config.in_root(f"/lib/{triplet}")) or os.path.isdir(config.in_root(f"/usr/lib/{triplet}"))
    ):
        return (f"/lib/{triplet}", f"/usr/lib/{triplet}", "/lib", "/usr/lib")
    if machine == EM_X86_64 and os.path.isdir(config.in_root("/usr/lib64")):
        return ("/lib64", "/usr/lib64")
    return ("/lib", "/usr/lib")


def lib_token(config: SearchConfig, machine: int) -> str:
    if config.lib:
        return config.lib
    triplet = TRIPLETS.get(machine)
    if triplet and os.path.isdir(config.in_root(f"/lib/{triplet}")):
        return f"lib/{triplet}"
    return "lib64" if machine == EM_X86_64 and os.path.isdir(config.in_root("/lib64")) else "lib"


def expand_tokens(entry: str, origin: str, config: SearchConfig, machine: int) -> str | None:
    """Expand $ORIGIN/${ORIGIN}, $LIB, $PLATFORM as ``_dl_dst_substitute`` does.

    Returns None for an unknown ``$TOKEN``: glibc drops such a path element
    (dl-load.c fillin_rpath → expand_dynamic_string_token → "empty" result).
    """
    values = {
        "ORIGIN": origin,
        "LIB": lib_token(config, machine),
        "PLATFORM": config.platform or PLATFORMS.get(machine, ""),
    }
    out, i = [], 0
    while i < len(entry):
        if entry[i] != "$":
            out.append(entry[i])
            i += 1
            continue
        name, i = _token_at(entry, i + 1)
        if name not in values:
            return None
        out.append(values[name])
    return "".join(out)


def _token_at(entry: str, i: int) -> tuple[str, int]:
    if entry.startswith("{", i):
        end = entry.find("}", i)
        return (entry[i + 1 : end], end + 1) if end > 0 else ("", len(entry))
    j = i
    while j < len(entry) and (entry[j].isalnum() or entry[j] == "_"):
        j += 1
    return entry[i:j], j


def split_path_list(value: str) -> list[str]:
    """Split DT_RPATH/DT_RUNPATH/LD_LIBRARY_PATH; an empty element means the current directory."""
    return [p if p else "." for p in value.split(":")]


def starts_with_origin(entry: str) -> bool:
    return entry.startswith(("$ORIGIN", "${ORIGIN}"))


# -- ld.so.conf -------------------------------------------------------------------------------
def read_ld_so_conf(path: str, config: SearchConfig, _depth: int = 0, _seen: set[str] | None = None) -> list[str]:
    """Directories of ld.so.conf in order, following ``include`` globs (ldconfig.c parse_conf)."""
    seen = _seen if _seen is not None else set()
    real = os.path.realpath(path)
    if _depth > 16 or real in seen:
        return []
    seen.add(real)
    if is_special_file(path) or pseudo_filesystem(path):  # a FIFO blocks, /dev/zero never ends
        return []
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    dirs: list[str] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("hwcap"):
            continue
        if line.startswith("include") and line[7:8] in (" ", "\t"):
            for pattern in line[8:].split():
                dirs += _include(pattern, path, config, _depth, seen)
            continue
        dirs += [d.split("=", 1)[0] for d in line.replace(",", " ").replace(":", " ").split()]
    return _dedupe(d.rstrip("/") or "/" for d in dirs)


def _include(pattern: str, conf: str, config: SearchConfig, depth: int, seen: set[str]) -> list[str]:
    if not pattern.startswith("/"):
        pattern = os.path.join(os.path.dirname(conf), pattern)
    elif config.root not in ("", "/") and not pattern.startswith(config.root):
        pattern = config.in_root(pattern)
    out: list[str] = []
    for inc in sorted(glob.glob(pattern)):
        out += read_ld_so_conf(inc, config, depth + 1, seen)
    return out


def _dedupe(items: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for d in items:
        if d not in seen:
            seen.add(d)
            out.append(d)
    return out


# -- ld.so.cache ------------------------------------------------------------------------------
def read_ld_so_cache(path: str, machine: int) -> dict[str, str] | None:
    """soname → path from a new-format ld.so.cache, keeping the first entry per soname whose
    flags match the architecture (dl-cache.c search_cache; glibc-hwcaps entries are skipped,
    see module docstring).  Returns None when the file is absent or not in the new format.
    """
    if is_special_file(path) or pseudo_filesystem(path):  # a FIFO blocks, /dev/zero never ends
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    # every target of a directory or wheel resolves against the same file (136 parses of it under
    # the torch wheel: 0.25 s): parsed once per process while its stamp is unchanged
    stamp = (path, machine, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if stamp not in _parsed_caches:
        if len(_parsed_caches) >= 16:
            _parsed_caches.clear()
        _parsed_caches[stamp] = _parse_ld_so_cache(path, machine)
    parsed = _parsed_caches[stamp]
    return dict(parsed) if parsed is not None else None


_parsed_caches: dict[tuple[str, int, int, int, int, int, int], dict[str, str] | None] = {}


def _parse_ld_so_cache(path: str, machine: int) -> dict[str, str] | None:
    try:
        data = Path(path).read_bytes()
    except OSError:
        return None
    start = data.find(CACHE_MAGIC_NEW)
    if start < 0 or len(data) < start + 48:
        return None
    nlibs, _ = struct.unpack_from("<II", data, start + 20)
    want = CACHE_FLAGS.get(machine)
    out: dict[str, str] = {}
    for i in range(min(nlibs, (len(data) - start - 48) // 24)):
        flags, key, value, _, hwcap = struct.unpack_from("<iIIIQ", data, start + 48 + 24 * i)
        if flags != want or hwcap != 0:
            continue
        name, target = _cstr(data, start + key), _cstr(data, start + value)
        if name and target:
            out.setdefault(name, target)
    return out


def _cstr(data: bytes, off: int) -> str:
    if not 0 <= off < len(data):
        return ""
    end = data.find(b"\0", off)
    return data[off : end if end >= 0 else len(data)].decode("utf-8", "surrogateescape")
