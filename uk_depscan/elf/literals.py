"""String references below the syscall level: pseudo-files and dlopen targets.

Unikraft's VFS must provide the ``/proc``, ``/sys`` and ``/dev`` files a library opens, and a
library ``dlopen``s objects its DT_NEEDED list never names.  Both show up as NUL-terminated
literals in read-only data; they are found with one C-level regex pass per section (no Python
object per byte).  dlopen targets also come from ``.note.dlopen`` (UAPI "ELF dlopen metadata").
Library-name literals are reported only when the object imports ``dlopen``, and are candidates:
nothing ties them to a particular call.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from uk_depscan.elf.file import ElfFile
from uk_depscan.elf.symbols import dynamic_symbols
from uk_depscan.model import BelowSyscall, DlopenTarget

SHT_PROGBITS, SHF_ALLOC, SHF_EXECINSTR = 1, 2, 4
MAX_FINDINGS = 2000
_PSEUDO = re.compile(rb"/(?:proc|sys|dev)(?:/[\x21-\x7e]*)?")
_LIBNAME = re.compile(rb"(?:[\w./+-]*/)?lib[\w+-]+(?:\.[\w+-]+)*\.so(?:\.\d+)*")
# Literal anchors searched with bytes.find (C speed); each hit is widened to its NUL-delimited
# string, which must match the pattern as a whole.
_ANCHORS = {_PSEUDO: (b"\0/proc", b"\0/sys", b"\0/dev"), _LIBNAME: (b".so",)}


# The pseudo-file anchors all start with NUL and hold none after it, so no two hits overlap and one
# regex pass (C-level search for the common prefix) finds every hit the three finds would.
_PSEUDO_HITS = re.compile(rb"\0/(?:proc|sys|dev)")


def _data_sections(elf: ElfFile) -> Iterator[bytearray]:
    """Each read-only data section, copied with a NUL in front (a string at the section start has
    no NUL before it); one copy at a time, which both searches read."""
    for sec in elf.sections:
        if sec.sh_type == SHT_PROGBITS and sec.sh_flags & SHF_ALLOC and not sec.sh_flags & SHF_EXECINSTR:
            view = elf.section_bytes(sec)
            raw = bytearray(len(view) + 1)
            raw[1:] = view
            yield raw


def _find(sections: Iterable[bytearray], pattern: re.Pattern[bytes]) -> list[str]:
    found: set[str] = set()
    for raw in sections:
        _find_in(raw, pattern, found)
    return sorted(found)


def _find_in(raw: bytearray, pattern: re.Pattern[bytes], found: set[str]) -> None:
    """Add the strings of one section matching ``pattern`` to ``found`` (up to MAX_FINDINGS)."""
    hits = [m.start() for m in _PSEUDO_HITS.finditer(raw)] if pattern is _PSEUDO else []
    for anchor in _ANCHORS[pattern]:
        if pattern is _PSEUDO:
            for pos in hits:
                if len(found) >= MAX_FINDINGS:
                    break
                if raw.startswith(anchor, pos):
                    _widen(raw, pos, pattern, found)
            continue
        pos = raw.find(anchor)
        while pos >= 0 and len(found) < MAX_FINDINGS:
            end = _widen(raw, pos, pattern, found)
            pos = raw.find(anchor, (end if end >= 0 else len(raw)))


def _widen(raw: bytearray, pos: int, pattern: re.Pattern[bytes], found: set[str]) -> int:
    """The NUL-delimited string around the hit at ``pos``, kept when the pattern matches all of it;
    returns where it ends (-1: at the end of the section)."""
    start = raw.rfind(b"\0", max(0, pos - 4096), pos + 1) + 1
    end = raw.find(b"\0", pos + 1)
    text = raw[start : end if end >= 0 else len(raw)]
    if pattern.fullmatch(text):
        found.add(text.decode("ascii", "replace"))
    return end


def dlopen_used(elf: ElfFile) -> bool:
    """Whether the object imports a dlopen: only then are library-name literals reported."""
    return bool(set(dynamic_symbols(elf).import_names.values()) & {"dlopen", "dlmopen", "__libc_dlopen_mode"})


def literal_strings(elf: ElfFile, libnames: bool) -> tuple[list[str], list[str] | None]:
    """(pseudo-file literals, library-name literals or None unless ``libnames``), each sorted: what
    :func:`below_syscall` reads from the data sections, and all of it (the cache stores it)."""
    pseudo: set[str] = set()
    names: set[str] = set()
    for raw in _data_sections(elf):  # each pattern sees the sections in order, as alone
        _find_in(raw, _PSEUDO, pseudo)
        if libnames:
            _find_in(raw, _LIBNAME, names)
    return sorted(pseudo), sorted(names) if libnames else None


def is_literal(text: str, pseudo: bool) -> bool:
    """Whether ``text`` is a string :func:`literal_strings` can return (to check a cached one)."""
    return text.isascii() and (_PSEUDO if pseudo else _LIBNAME).fullmatch(text.encode("ascii")) is not None


def below_syscall(elf: ElfFile, strings: tuple[list[str], list[str] | None] | None = None) -> BelowSyscall:
    """The pseudo-files and dlopen targets of ``elf``; ``strings``: :func:`literal_strings` of it,
    when already known."""
    uses_dlopen = dlopen_used(elf)
    pseudo, libnames = strings if strings is not None else literal_strings(elf, uses_dlopen)
    targets = {}
    for note in elf.dlopen_notes:
        names = note.get("soname", [])
        for name in names if isinstance(names, list) else [names]:
            targets[str(name)] = DlopenTarget(
                str(name), f".note.dlopen (feature={note.get('feature', '?')}, priority={note.get('priority', '?')})"
            )
    if uses_dlopen:
        for name in libnames or ():
            targets.setdefault(name, DlopenTarget(name, "string literal"))
    return BelowSyscall(tuple(pseudo), tuple(targets[k] for k in sorted(targets)), uses_dlopen)


# A NUL-delimited identifier or dotted name (a Python module name, as ``PyImport_ImportModule``
# takes it); the NUL before it is consumed, the one after only looked at, so adjacent strings match.
_MODULE_NAME = re.compile(rb"\0([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)(?=\0)")
MAX_NAME_LITERALS = 1 << 20  # identifier literals looked at per object (10.7 k in libtorch_python.so)


def module_name_literals(elf: ElfFile, packages: Iterable[str]) -> list[str]:
    """NUL-delimited literals of the read-only data that name a module of one of ``packages``
    (``numpy._core._multiarray_umath`` for ``numpy``): the package itself or a dotted name below it.
    One C-level regex pass per section whatever the number of packages (a site-packages directory
    holds hundreds); past MAX_NAME_LITERALS identifiers (a hostile file) the rest is not read."""
    tops = set(packages)
    found: set[str] = set()
    seen = 0
    for raw in _data_sections(elf):
        for m in _MODULE_NAME.finditer(raw):
            seen += 1
            if seen > MAX_NAME_LITERALS:
                return sorted(found)
            name = m.group(1).decode("ascii")
            if name.split(".", 1)[0] in tops:
                found.add(name)
    return sorted(found)
