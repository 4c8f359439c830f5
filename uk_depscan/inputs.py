"""What the user named: a file, a directory or a wheel, turned into ELF targets.

Wheels are untrusted zip files.  Members are never extracted by name: only regular-file
members whose names are relative and free of ``..`` are considered, each is streamed (with
its real decompressed size counted, not the size the header claims) into a private
temporary directory created by this process, and the whole archive is refused past a
compression-ratio or total-size limit.  Only ELF members are written; their relative
layout is kept so that ``$ORIGIN`` inside the wheel resolves as it would once installed.
"""

from __future__ import annotations

import os
import stat
import tempfile
import zipfile
import zlib
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from uk_depscan.elf.file import ELFMAG
from uk_depscan.errors import InputError
from uk_depscan.model import Skipped

MAX_WHEEL_TOTAL = 8 << 30  # bytes decompressed over the whole wheel
MAX_MEMBER_RATIO = 200  # decompressed / compressed, per member (zip bombs)
MAX_MEMBERS = 200_000
MAX_DIR_FILES = 200_000
CHUNK = 1 << 20


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

    def close(self) -> None:
        self.stack.close()

    def __enter__(self) -> Inputs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def collect_inputs(paths: list[str]) -> Inputs:
    """Expand user arguments into ELF targets; raise InputError for an unusable argument."""
    inputs = Inputs()
    try:
        for p in paths:
            _collect_one(p, inputs)
    except BaseException:
        inputs.close()
        raise
    if not inputs.targets:
        why = "; ".join(f"{s.path}: {s.reason}" for s in inputs.skipped[:3])
        inputs.close()
        raise InputError(f"{', '.join(paths)}: no ELF objects to scan" + (f" ({why})" if why else ""))
    return inputs


def _collect_one(p: str, inputs: Inputs) -> None:
    try:
        st = os.stat(p)
    except OSError as err:
        raise InputError(f"{p}: {_oserror(err)}") from err
    if stat.S_ISDIR(st.st_mode):
        _collect_dir(p, inputs)
    elif not stat.S_ISREG(st.st_mode):  # a FIFO would block the first read forever
        raise InputError(f"{p}: not a regular file (FIFO, socket or device)")
    elif _is_zip(p):
        _collect_wheel(p, inputs)
    else:
        inputs.targets.append(Target(p, p))


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


def _collect_dir(root: str, inputs: Inputs) -> None:
    """Every ELF file below ``root``; symlinks are not followed (no loops, no escapes)."""
    seen: set[tuple[int, int]] = set()
    count = 0
    for dirpath, dirnames, filenames in os.walk(
        root, onerror=lambda e: inputs.skipped.append(Skipped(getattr(e, "filename", root) or root, _oserror(e)))
    ):
        dirnames.sort()
        for name in sorted(filenames):
            count += 1
            if count > MAX_DIR_FILES:
                inputs.skipped.append(Skipped(root, f"more than {MAX_DIR_FILES} files; rest not scanned"))
                return
            _consider_file(os.path.join(dirpath, name), seen, inputs)


def _consider_file(path: str, seen: set[tuple[int, int]], inputs: Inputs) -> None:
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) in seen:
            return
        seen.add((st.st_dev, st.st_ino))
        with open(path, "rb") as fh:
            magic = fh.read(4)
    except OSError as err:
        inputs.skipped.append(Skipped(path, _oserror(err)))
        return
    if magic == ELFMAG:
        inputs.targets.append(Target(path, path))
    elif path.endswith(".so") or ".so." in os.path.basename(path):
        inputs.skipped.append(Skipped(path, "named like a shared object but not an ELF file"))


def _collect_wheel(p: str, inputs: Inputs) -> None:
    try:
        zf = inputs.stack.enter_context(zipfile.ZipFile(p))
        members = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
        raise InputError(f"{p}: not a valid wheel (zip archive): {err}") from err
    if len(members) > MAX_MEMBERS:
        raise InputError(f"{p}: refused: {len(members)} members (limit {MAX_MEMBERS})")
    tmp = inputs.stack.enter_context(tempfile.TemporaryDirectory(prefix="uk-depscan-wheel-"))
    inputs.prefixes[tmp] = f"{p}!"
    total = 0
    for info in members:
        name = _safe_member_name(info)
        if name is None:
            if not info.is_dir():
                inputs.skipped.append(Skipped(f"{p}!/{info.filename}", "unsafe or non-regular member ignored"))
            continue
        total += _extract_if_elf(zf, info, name, tmp, p, total, inputs)


def _safe_member_name(info: zipfile.ZipInfo) -> str | None:
    if info.is_dir() or stat.S_ISLNK(info.external_attr >> 16):
        return None
    name = info.filename.replace("\\", "/")
    pure = PurePosixPath(name)
    if pure.is_absolute() or ".." in pure.parts or not pure.parts or ":" in pure.parts[0]:
        return None
    return str(pure)


def _extract_if_elf(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, tmp: str, wheel: str, total: int, inputs: Inputs
) -> int:
    limit = max(info.compress_size, 1) * MAX_MEMBER_RATIO
    written = 0
    dest = Path(tmp, name)
    try:
        with zf.open(info) as src:
            head = src.read(4)
            if head != ELFMAG:
                if name.endswith(".so") or ".so." in PurePosixPath(name).name:
                    inputs.skipped.append(Skipped(f"{wheel}!/{name}", "named like a shared object but not an ELF file"))
                return 0
            dest.parent.mkdir(parents=True, exist_ok=True)
            with open(dest, "xb") as out:
                out.write(head)
                written = len(head)
                while chunk := src.read(CHUNK):
                    written += len(chunk)
                    if written > limit and written > (1 << 20):
                        raise InputError(
                            f"{wheel}: refused: member {name!r} decompresses more than "
                            f"{MAX_MEMBER_RATIO}x its compressed size (zip bomb?)"
                        )
                    if total + written > MAX_WHEEL_TOTAL:
                        raise InputError(f"{wheel}: refused: more than {MAX_WHEEL_TOTAL >> 30} GiB decompressed")
                    out.write(chunk)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, NotImplementedError) as err:
        raise InputError(f"{wheel}: corrupt member {name!r}: {err}") from err
    inputs.targets.append(Target(str(dest), f"{wheel}!/{name}"))
    return written
