"""What the user named: a file, a directory or a wheel, turned into ELF targets.

Decisions taken here, before any object is mapped:

* **Object kinds.**  Only what ld.so can map is analysed: ET_DYN and ET_EXEC.  A relocatable
  object (ET_REL, a ``.o``) or a core dump (ET_CORE) given as an argument is refused (exit 2)
  with the reason; inside a directory or wheel it is listed under ``skipped``.  There is no
  ``--relocatable`` mode: a ``.o`` has no dynamic section, PLT or GOT, its calls are zero
  displacements resolved through relocations, so the engine's branch prefilter and the whole
  loader view (DT_NEEDED, symbol versions, providers) have nothing to work on; a correct mode
  would be a relocation-driven call graph, a different engine.  Link the object first.
* **Special files** in a directory (FIFO, socket, device, dangling or looping symlink) are listed
  under ``skipped`` with their kind and never opened; symlinks to files or directories are not
  followed (no loops, no escapes from the tree).  Directories on a pseudo-filesystem (procfs,
  sysfs…) are not entered (:mod:`uk_depscan.fs`).
* **Wheels** are untrusted zip files.  Every member is checked *before anything is written*:
  its name (relative, no ``..``, no drive, at most :attr:`WheelLimits.max_name` bytes per component
  and :attr:`WheelLimits.max_path` in all, unique after normalisation, no file/directory clash),
  its kind (regular file; symlink members are skipped), its first bytes (ELF magic and an
  analysable ELF type — only those members are ever extracted), then its *declared* size and
  compression ratio and the running total against :class:`WheelLimits`.  zipfile never yields
  more than the declared size and checks the CRC at the end, so the declared figures bound what
  is written.  A bad member is skipped with its reason and the rest of the wheel is analysed.
  Members are streamed into a flock-ed private directory (:func:`uk_depscan.cleanup.locked_tempdir`)
  keeping their relative layout, so ``$ORIGIN`` resolves as it would once installed; each is
  hashed while it is written (its :mod:`object identity <uk_depscan.store.identity>`).
* **Selection.**  :class:`MemberFilter` (``--include/--exclude GLOB``) applies to member paths of
  wheels and to paths relative to a directory argument alike.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import os
import stat
import struct
import threading
import zipfile
import zlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

from uk_depscan.cleanup import locked_tempdir
from uk_depscan.elf.file import ELFMAG
from uk_depscan.errors import InputError
from uk_depscan.fs import kind_of, pseudo_filesystem
from uk_depscan.model import Skipped
from uk_depscan.store.identity import FileStamp, remember_digest

MAX_DIR_FILES = 200_000
CHUNK = 1 << 20
HEADER_BYTES = 64  # the ELF header; e_type sits at offset 16
ET_NONE, ET_REL, ET_EXEC, ET_DYN, ET_CORE = 0, 1, 2, 3, 4
SUPPORTED_ZIP_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)


@dataclass(frozen=True)
class WheelLimits:
    """Bounds on what a wheel may make us write, checked on declared sizes before writing.

    The defaults accept every real wheel of the target runtimes with a wide margin — the largest
    ELF member is libtorch_cpu.so (414 MiB, ratio 2.3:1; onnxruntime, tflite-runtime and
    ai-edge-litert members are ≤ 29 MiB and ≤ 8.7:1; the longest member path is 171 bytes) —
    and refuse a member that declares gigabytes from a few kilobytes.
    """

    max_member_bytes: int = 2 << 30
    max_total_bytes: int = 8 << 30
    max_ratio: int = 200  # declared / compressed size, per member
    ratio_floor: int = 1 << 20  # members declaring less are not ratio-checked (tiny files compress oddly)
    max_members: int = 200_000
    max_name: int = 255  # bytes per path component (NAME_MAX)
    max_path: int = 1024  # bytes per member path


@dataclass(frozen=True)
class MemberFilter:
    """``--include/--exclude GLOB`` on member paths (POSIX, relative to the wheel or directory).

    A pattern with a ``/`` is matched against the whole relative path, one without against the
    file name; ``*`` also matches ``/``.  With includes, a path must match one; it must match no
    exclude.
    """

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def accepts(self, relpath: str) -> bool:
        name = relpath.rsplit("/", 1)[-1]

        def match(pattern: str) -> bool:
            return fnmatch.fnmatchcase(relpath if "/" in pattern else name, pattern)

        if self.include and not any(match(p) for p in self.include):
            return False
        return not any(match(p) for p in self.exclude)


@dataclass(frozen=True)
class Target:
    """One ELF file to analyse: where it is on disk and what to call it."""

    path: str
    display: str


@dataclass
class Inputs:
    """Targets plus the skipped entries and the path translation for extracted wheels."""

    targets: list[Target] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    prefixes: dict[str, str] = field(default_factory=dict)
    stack: ExitStack = field(default_factory=ExitStack)

    def display(self, path: str) -> str:
        for real, shown in self.prefixes.items():
            if path == real or path.startswith(real + os.sep):
                return shown + path[len(real) :]
        return path

    def skip(self, path: str, reason: str) -> None:
        self.skipped.append(Skipped(path, reason))

    def close(self) -> None:
        self.stack.close()

    def __enter__(self) -> Inputs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def collect_inputs(
    paths: list[str], *, limits: WheelLimits | None = None, select: MemberFilter | None = None, threads: int = 1
) -> Inputs:
    """Expand user arguments into ELF targets; raise InputError for an unusable argument.
    ``threads``: how many of a wheel's members are extracted at once."""
    inputs = Inputs()
    limits = limits or WheelLimits()
    try:
        for p in paths:
            _collect_one(p, inputs, limits, select, threads)
    except BaseException:
        inputs.close()
        raise
    if not inputs.targets:
        why = "; ".join(f"{s.path}: {s.reason}" for s in inputs.skipped[:3])
        inputs.close()
        raise InputError(f"{', '.join(paths)}: no ELF objects to scan" + (f" ({why})" if why else ""))
    return inputs


def object_kind_problem(head: bytes) -> str | None:
    """Why an ELF header names something ld.so cannot map as a program or library, else None."""
    if len(head) < 18 or head[:4] != ELFMAG or head[5] not in (1, 2):
        return None  # not ours to judge: the ELF reader reports truncation and bad encodings
    (e_type,) = struct.unpack_from("<H" if head[5] == 1 else ">H", head, 16)
    if e_type in (ET_DYN, ET_EXEC):
        return None
    if e_type == ET_REL:
        return "relocatable object (ET_REL, e.g. a .o): not loadable; link it into a shared object or program first"
    if e_type == ET_CORE:
        return "core dump (ET_CORE): a memory image, not a program or library"
    return f"ELF type {e_type:#x}: neither an executable (ET_EXEC) nor a shared object (ET_DYN)"


def _collect_one(p: str, inputs: Inputs, limits: WheelLimits, select: MemberFilter | None, threads: int) -> None:
    try:
        st = os.stat(p)
    except OSError as err:
        raise InputError(f"{p}: {_oserror(err)}") from err
    if stat.S_ISDIR(st.st_mode):
        pseudo = pseudo_filesystem(p)
        if pseudo:
            raise InputError(f"{p}: on a pseudo-filesystem ({pseudo}): not scanned")
        _collect_dir(p, inputs, select)
    elif not stat.S_ISREG(st.st_mode):  # a FIFO would block the first read forever
        raise InputError(f"{p}: not a regular file ({kind_of(st.st_mode)})")
    elif _is_zip(p):
        _collect_wheel(p, inputs, limits, select, threads)
    else:
        problem = object_kind_problem(_head(p))
        if problem:
            raise InputError(f"{p}: {problem}")
        inputs.targets.append(Target(p, p))


def _head(p: str) -> bytes:
    try:
        with open(p, "rb") as fh:
            return fh.read(HEADER_BYTES)
    except OSError:
        return b""  # the ELF reader reports it with its own wording


def _oserror(err: OSError) -> str:
    if err.errno == 40:
        return "too many levels of symbolic links (symlink loop)"
    return (err.strerror or str(err)).lower().rstrip(".") if err.strerror else str(err)


def _is_zip(p: str) -> bool:
    if p.endswith((".whl", ".zip")):
        return True
    try:
        with open(p, "rb") as fh:
            return fh.read(4) == b"PK\x03\x04"
    except OSError:
        return False


# -- directories ----------------------------------------------------------------------------------
def _collect_dir(root: str, inputs: Inputs, select: MemberFilter | None) -> None:
    """Every ELF file below ``root``; symlinks are not followed (no loops, no escapes)."""
    seen: set[tuple[int, int]] = set()
    count = 0
    for dirpath, dirnames, filenames in os.walk(
        root, onerror=lambda e: inputs.skip(getattr(e, "filename", root) or root, _oserror(e))
    ):
        dirnames.sort()
        for d in list(dirnames):
            pseudo = pseudo_filesystem(os.path.join(dirpath, d))
            if pseudo:  # e.g. scanning / would otherwise walk /proc and /sys
                dirnames.remove(d)
                inputs.skip(os.path.join(dirpath, d), f"not searched: pseudo-filesystem ({pseudo})")
        for name in sorted(filenames):
            count += 1
            if count > MAX_DIR_FILES:
                inputs.skip(root, f"more than {MAX_DIR_FILES} files; rest not scanned")
                return
            path = os.path.join(dirpath, name)
            if select is not None and not select.accepts(os.path.relpath(path, root).replace(os.sep, "/")):
                continue
            _consider_file(path, seen, inputs)


def _special(path: str, st: os.stat_result) -> str | None:
    """Why a directory entry is not read (its kind), or None for a regular file."""
    if stat.S_ISREG(st.st_mode):
        return None
    if not stat.S_ISLNK(st.st_mode):
        return f"{kind_of(st.st_mode)}: special file, not read"
    try:
        target = os.stat(path)
    except OSError as err:
        return "symbolic link loop" if err.errno == 40 else "dangling symbolic link"
    if stat.S_ISREG(target.st_mode) or stat.S_ISDIR(target.st_mode):
        return ""  # a link to a file or directory: not followed, by design, and not worth a line
    return f"symbolic link to a {kind_of(target.st_mode)}: special file, not read"


def _consider_file(path: str, seen: set[tuple[int, int]], inputs: Inputs) -> None:
    try:
        st = os.lstat(path)
        why = _special(path, st)
        if why is not None:
            if why:
                inputs.skip(path, why)
            return
        if (st.st_dev, st.st_ino) in seen:
            return
        seen.add((st.st_dev, st.st_ino))
        # O_NONBLOCK: should the entry have become a FIFO since the lstat, open must not wait
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                inputs.skip(path, "changed into a special file while being scanned, not read")
                return
            head = fh.read(HEADER_BYTES)
    except OSError as err:
        inputs.skip(path, _oserror(err))
        return
    if head[:4] == ELFMAG:
        problem = object_kind_problem(head)
        if problem:
            inputs.skip(path, problem)
        else:
            inputs.targets.append(Target(path, path))
    elif path.endswith(".so") or ".so." in os.path.basename(path):
        inputs.skip(path, "named like a shared object but not an ELF file")


# -- wheels -----------------------------------------------------------------------------------------
def _collect_wheel(p: str, inputs: Inputs, limits: WheelLimits, select: MemberFilter | None, threads: int) -> None:
    try:
        zf = inputs.stack.enter_context(zipfile.ZipFile(p))
        members = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as err:
        raise InputError(f"{p}: not a valid wheel (zip archive): {err}") from err
    if len(members) > limits.max_members:
        raise InputError(f"{p}: refused: {len(members)} members (limit {limits.max_members})")
    plan = _plan_members(p, members, limits, inputs)
    markers = [name for _, name in plan if name.endswith("/__init__.py")]
    if select is not None:
        plan = [(info, name) for info, name in plan if select.accepts(name)]
    if not plan:
        return
    tmp = inputs.stack.enter_context(locked_tempdir())
    inputs.prefixes[tmp] = f"{p}!"
    _extract_elves(zf, plan, tmp, p, limits, inputs, threads)
    _package_markers(markers, tmp)


def _package_markers(names: list[str], tmp: str) -> None:
    """An empty ``__init__.py`` where the wheel has one: the extracted tree keeps the wheel's
    packages, so a member that imports a module by name finds it as in an installed tree
    (:mod:`uk_depscan.loader.pyimport` reads only that the file exists; its content is not needed).
    The names are the plan's, already checked (no ``..``, not absolute, no clash)."""
    for name in names:
        dest = Path(tmp, name)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644))
        except OSError:
            continue  # a marker is a hint: without it the module is not found, nothing worse


def _plan_members(
    wheel: str, members: list[zipfile.ZipInfo], limits: WheelLimits, inputs: Inputs
) -> list[tuple[zipfile.ZipInfo, str]]:
    """Regular-file members with safe, unique, non-clashing names, in archive order."""
    named: list[tuple[zipfile.ZipInfo, str]] = []
    dirs: set[str] = set()
    for info in members:
        if info.is_dir():
            dirs.add(str(PurePosixPath(info.filename.replace("\\", "/"))))
            continue
        name, problem = _member_name(info, limits)
        if problem:
            inputs.skip(f"{wheel}!/{info.filename}", problem)
            continue
        named.append((info, name))
    counts = Counter(name for _, name in named)
    files = set(counts)
    below = {parent for f in files for parent in _parents(f)}  # every directory some member needs
    reported: set[str] = set()
    plan = []
    for info, name in named:
        problem = None
        if counts[name] > 1:
            problem = f"duplicate member name ({counts[name]} entries): which one an installer keeps is undefined"
        elif name in dirs or name in below:
            problem = "file/directory conflict: this path is also a directory of the wheel"
        elif any(parent in files for parent in _parents(name)):
            problem = "file/directory conflict: a parent of this path is a file of the wheel"
        if problem:
            if name not in reported:
                reported.add(name)
                inputs.skip(f"{wheel}!/{name}", problem)
            continue
        plan.append((info, name))
    return plan


def _parents(name: str) -> list[str]:
    parts = name.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def _member_name(info: zipfile.ZipInfo, limits: WheelLimits) -> tuple[str, str | None]:
    if stat.S_ISLNK(info.external_attr >> 16):
        return "", "symbolic link member: never created"
    raw = info.filename.replace("\\", "/")
    pure = PurePosixPath(raw)
    if pure.is_absolute() or ".." in pure.parts or not pure.parts or ":" in pure.parts[0]:
        return "", "unsafe member path (absolute, drive-qualified or containing '..'): never written"
    name = str(pure)
    encoded = name.encode("utf-8", "surrogateescape")
    if len(encoded) > limits.max_path:
        return "", f"member path of {len(encoded)} bytes, longer than the {limits.max_path} allowed"
    longest = max(len(part.encode("utf-8", "surrogateescape")) for part in pure.parts)
    if longest > limits.max_name:
        return "", f"path component of {longest} bytes, longer than the {limits.max_name} allowed"
    return name, None


def _limit_problem(info: zipfile.ZipInfo, total: int, limits: WheelLimits) -> str | None:
    return _member_problem(info, limits) or _total_problem(info, total, limits)


def _total_problem(info: zipfile.ZipInfo, total: int, limits: WheelLimits) -> str | None:
    """What refuses the member after ``total`` bytes of earlier members."""
    if total + info.file_size > limits.max_total_bytes:
        return f"would bring the wheel's extracted total past the limit of {limits.max_total_bytes} bytes"
    return None


def _member_problem(info: zipfile.ZipInfo, limits: WheelLimits) -> str | None:
    """What refuses the member whatever else the wheel holds."""
    size, packed = info.file_size, max(info.compress_size, 1)
    if info.flag_bits & 0x1:
        return "encrypted member"
    if info.compress_type not in SUPPORTED_ZIP_METHODS:
        return f"unsupported compression method {info.compress_type}"
    if size > limits.max_member_bytes:
        return f"declares {size} bytes, more than the per-member limit of {limits.max_member_bytes}"
    if size > limits.ratio_floor and size > packed * limits.max_ratio:
        return (
            f"declares {size} bytes from {info.compress_size} compressed: ratio {size // packed}:1 "
            f"above the limit of {limits.max_ratio}:1 (zip bomb?)"
        )
    return None


def _extract_elves(
    zf: zipfile.ZipFile,
    plan: list[tuple[zipfile.ZipInfo, str]],
    tmp: str,
    wheel: str,
    limits: WheelLimits,
    inputs: Inputs,
    threads: int,
) -> None:
    """Extract the analysable ELF members of ``plan`` into ``tmp``: the same targets, skips (in the
    same order) and limits as extracting one member after the other in archive order, with the
    members written by ``threads`` threads (zlib, sha256 and the writes release the GIL: the torch
    wheel's 578 MB of ELF members took 3.4 s, its 434 MB libtorch_cpu.so alone 1.6 s).

    First each member's header is read, in archive order, to decide what it is; then the members
    that can be extracted are written, the largest first, counting every earlier one as written;
    then, in archive order again, each is accepted or refused with the running total of the bytes
    really written (a member written for nothing is removed; one refused only because an earlier
    member counted that then failed is written now)."""
    decided: list[tuple[zipfile.ZipInfo, str, str | bytes]] = []  # member, name, its head or why skipped
    early: list[tuple[int, zipfile.ZipInfo, Path, bytes]] = []  # written before the outcomes are known
    total = 0  # their bytes: what the total's limit bounds
    for info, name in plan:
        verdict = _decide(zf, info, name, limits)
        if verdict is None:
            continue
        if isinstance(verdict, bytes) and _total_problem(info, total, limits) is None:  # its own limits passed
            total += info.file_size
            early.append((len(decided), info, Path(tmp, name), verdict))
        decided.append((info, name, verdict))
    outcomes: dict[int, tuple[int, str] | str] = {}
    stop, opening = threading.Event(), threading.Lock()
    try:
        with ThreadPoolExecutor(max_workers=max(1, min(threads, len(early), 8))) as pool:
            futures = {
                k: pool.submit(_write_member, zf, info, head, dest, stop, opening)
                for k, info, dest, head in sorted(early, key=lambda e: (-e[1].file_size, e[0]))
            }
            outcomes = {k: f.result() for k, f in sorted(futures.items())}
    finally:
        stop.set()  # an error or a signal here: the other threads stop at their next chunk
    total = 0
    for k, (info, name, verdict) in enumerate(decided):
        shown, dest = f"{wheel}!/{name}", Path(tmp, name)
        if isinstance(verdict, str):
            inputs.skip(shown, verdict)
            continue
        problem = _total_problem(info, total, limits)  # the member's own limits passed (_decide)
        outcome = outcomes.get(k)
        if problem:
            if isinstance(outcome, tuple):
                with contextlib.suppress(OSError):
                    dest.unlink()
            inputs.skip(shown, problem)
            continue
        if outcome is None:  # refused while counting a member that then failed: written now
            outcome = _write_member(zf, info, verdict, dest, None, opening)
        if isinstance(outcome, str):
            inputs.skip(shown, f"corrupt or unwritable member: {outcome}")
            continue
        written, digest = outcome
        total += written
        remember_digest(FileStamp.of(os.stat(dest)), digest)
        inputs.targets.append(Target(str(dest), shown))


def _decide(zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, limits: WheelLimits) -> bytes | str | None:
    """The member's header when it is an ELF object ld.so can map within its own limits (the
    wheel's total is the caller's); why it is skipped; None for a file that is not ELF."""
    try:
        with zf.open(info) as src:
            head = _read_head(src)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, NotImplementedError) as err:
        return f"corrupt or unwritable member: {err}"
    if head[:4] != ELFMAG:
        named_so = name.endswith(".so") or ".so." in PurePosixPath(name).name
        return "named like a shared object but not an ELF file" if named_so else None
    return object_kind_problem(head) or _member_problem(info, limits) or head


def _write_member(
    zf: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    head: bytes,
    dest: Path,
    stop: threading.Event | None,
    opening: threading.Lock,
) -> tuple[int, str] | str:
    """Stream one member to ``dest``: (bytes written, sha256), or why it failed (nothing is left).

    ``opening`` is held while the member is opened and closed: ZipFile counts the users of its file
    without a lock (``_fileRefCnt``), and a count lost between two threads closes the file under the
    others; the reads themselves take ZipFile's own lock, the inflating none."""
    written = 0
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        with opening:
            src = zf.open(info)
        with contextlib.ExitStack() as closing:
            closing.callback(_closed_under, opening, src)
            out = closing.enter_context(open(dest, "xb"))
            while chunk := src.read(CHUNK):
                if stop is not None and stop.is_set():
                    raise OSError("extraction stopped")
                if written == 0 and chunk[: len(head)] != head:
                    raise ValueError("member changed while it was read")
                written += len(chunk)
                if written > info.file_size:  # zipfile stops at the declared size; belt and braces
                    raise ValueError("member longer than it declares")
                digest.update(chunk)
                out.write(chunk)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, NotImplementedError) as err:
        with contextlib.suppress(OSError):
            dest.unlink()
        return str(err)
    return written, digest.hexdigest()


def _closed_under(lock: threading.Lock, src: IO[bytes]) -> None:
    with lock:
        src.close()


def _read_head(src: IO[bytes]) -> bytes:
    head = b""
    while len(head) < HEADER_BYTES:
        part = src.read(HEADER_BYTES - len(head))
        if not part:
            break
        head += part
    return head
