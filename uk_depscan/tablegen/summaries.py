"""Generator of the shipped libc-family summaries (``uk-depscan tables summaries``).

Models:

* ``glibc``: Debian 12 (bookworm) libc6 (libc.so.6, libm, libpthread, librt, libdl, ld-linux),
  libstdc++6, libgcc-s1 and libgomp1 — the runtime a manylinux wheel meets on a typical host
  and what app-elfloader's binary-compatibility route loads.
* ``musl``: Debian's musl 1.2.3 (the version Unikraft's lib-musl pins) for the libc family; musl
  has no C++ runtime of its own, so libstdc++/libgcc_s/libgomp come from the glibc model and
  their libc imports are matched to musl's exports by name (stated in the table).

Every library records package, version, .deb sha256, build-id and its path in the package.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from uk_depscan.elf.file import ElfFile, open_elf
from uk_depscan.errors import DepscanError, UsageError
from uk_depscan.syscalls.startup import DebugInfo, common_sets
from uk_depscan.syscalls.summaries import ALL, ENTRY, INIT, EntryReach, TableSummary, summary_to_json
from uk_depscan.tablegen.debpkg import DebPackage, fetch_package

DebugPackage = DebPackage

GENERATOR = "uk_depscan.summaries_gen 1"
GLIBC_PACKAGES = ("libc6", "libstdc++6", "libgcc-s1", "libgomp1")
MUSL_PACKAGES = ("musl",)
GLIBC_SONAMES = (
    "libc.so.6",
    "libm.so.6",
    "libpthread.so.0",
    "librt.so.1",
    "libdl.so.2",
    "ld-linux-x86-64.so.2",
    "ld-linux-aarch64.so.1",
    "libstdc++.so.6",
    "libgcc_s.so.1",
    "libgomp.so.1",
)
MUSL_SONAMES = ("libc.so",)


# The start-up baseline's entries (uk_depscan.syscalls.reach.BASELINE_ENTRIES) and the packages holding
# their debug symbols: the rare-path split needs names of local functions and inline records.
BASELINE_KEYS = {"ld-linux-x86-64.so.2": ENTRY, "ld-linux-aarch64.so.1": ENTRY, "libc.so.6": "__libc_early_init"}
RTLD_SONAMES = ("ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1")
DEBUG_PACKAGES = {"libc6": "libc6-dbg"}
# musl's libc.so defines no constructors of its own (its _init is crti's empty stub, musl
# crt/x86_64/crti.s): what the engine attributes to ``<init>`` of Debian's stripped libc.so (no
# symbols, no unwind tables) comes from unknown function boundaries, so it is rare/unverified.
MUSL_UNVERIFIED = (INIT,)


def summarize_elf(
    elf: ElfFile, debug: DebugInfo | None = None, soname: str | None = None, addr2line: str = "addr2line"
) -> dict[str, EntryReach]:
    """Entry summaries of one library from the engine: every export plus ``<entry>``, ``<init>``
    and ``<all>``, each split into normal-path syscalls and those reached only through failure
    functions (the same split the analysis makes for libraries scanned on the spot).  The start-up
    baseline's entry of ld.so or libc.so.6 also records its rare-path syscalls when ``debug`` (the
    library's debug symbols) is given (uk_depscan.syscalls.startup)."""
    from uk_depscan.syscalls.reach import EngineSummary
    from uk_depscan.syscalls.scan import scan_library

    summary = EngineSummary(elf.name, elf, scan_library(elf))
    keys = sorted({k for k, _ in summary.scan.exports} | {ENTRY, INIT, ALL})
    base = BASELINE_KEYS.get(soname or "")
    split = [k for k in keys if base is not None and k.split("@", 1)[0] == base]
    common = (
        common_sets(summary, debug, split, rtld=soname in RTLD_SONAMES, addr2line=addr2line)
        if debug is not None and split
        else {}
    )
    entries = {}
    for key in keys:
        reach = summary.reach(key)
        if reach is None:
            continue
        normal = frozenset(s.number for s in reach.sites if not s.failure)
        failure = frozenset(s.number for s in reach.sites if s.failure) - normal
        rare = normal - common[key] if key in common else frozenset()
        entries[key] = EntryReach(normal, frozenset(reach.imports), failure, rare)
    return entries


def _debug_info(pkg: DebugPackage | None, elf: ElfFile) -> DebugInfo | None:
    """The separate debug file of ``elf`` in a -dbg package, found by build-id (the GDB layout)."""
    if pkg is None or not elf.build_id:
        return None
    path = pkg.root / "usr" / "lib" / "debug" / ".build-id" / elf.build_id[:2] / f"{elf.build_id[2:]}.debug"
    return DebugInfo.read(path) if path.is_file() else None


def find_libraries(pkg: DebPackage, sonames: tuple[str, ...]) -> dict[str, Path]:
    """soname → file inside an unpacked package (regular ELF files only, first by path order)."""
    found: dict[str, Path] = {}
    for dirpath, _, files in sorted(os.walk(pkg.root)):
        for name in sorted(files):
            path = Path(dirpath, name)
            if path.is_symlink():
                continue
            try:
                dyn = open_elf(path).dynamic
            except DepscanError:
                continue
            soname = (dyn.soname if dyn else None) or name  # musl's libc.so has no DT_SONAME
            if soname in sonames and soname not in found:
                found[soname] = path
    return found


def generate(
    model: str, arch: str, workdir: Path | None = None, progress: Callable[[str], None] = lambda _: None
) -> str:
    """Fetch the model's packages for ``arch`` and return the summary table as JSON text."""
    if model not in ("glibc", "musl"):
        raise UsageError(f"unknown libc model {model!r}")
    with tempfile.TemporaryDirectory(prefix="uk-depscan-debs-") as tmp:
        base = workdir or Path(tmp)
        packages = list(GLIBC_PACKAGES) + (list(MUSL_PACKAGES) if model == "musl" else [])
        summaries: dict[str, TableSummary] = {}
        addr2line = _addr2line(arch)
        for name in packages:
            pkg = fetch_package(name, arch, base)
            dbg = (
                fetch_package(DEBUG_PACKAGES[name], arch, base) if name in DEBUG_PACKAGES and model == "glibc" else None
            )
            wanted: tuple[str, ...] = MUSL_SONAMES if name == "musl" else GLIBC_SONAMES
            if model == "musl" and name == "libc6":
                wanted = tuple(s for s in GLIBC_SONAMES if s.startswith(("libstdc", "libgcc", "libgomp")))
            for soname, path in sorted(find_libraries(pkg, wanted).items()):
                progress(f"{pkg.name} {pkg.version}: {soname}")
                elf = open_elf(path)
                prov: dict[str, Any] = dict(
                    pkg.provenance(), build_id=elf.build_id or "", path_in_package="/" + str(path.relative_to(pkg.root))
                )
                debug = _debug_info(dbg, elf) if soname in BASELINE_KEYS else None
                entries = summarize_elf(elf, debug, soname, addr2line)
                if debug is not None and dbg is not None:
                    prov["rare_paths"] = dict(
                        dbg.provenance(),
                        debug_file="/" + str(debug.path.relative_to(dbg.root)),
                        method="uk_depscan.syscalls.startup: rare-path functions blocked; inlined frames: addr2line -i",
                    )
                if name == "musl":
                    entries = {
                        k: EntryReach(
                            v.syscalls,
                            v.imports,
                            v.failure_syscalls,
                            v.syscalls if k in MUSL_UNVERIFIED else v.rare_syscalls,
                        )
                        for k, v in entries.items()
                    }
                summaries[soname] = TableSummary(soname, entries, prov)
    from uk_depscan.syscalls.scan import ENGINE_VERSION

    header = {
        "model": model,
        "arch": arch,
        "generator": GENERATOR,
        "engine_version": ENGINE_VERSION,
        "command": f"uk-depscan tables summaries --model {model} --arch {arch}",
        "notes": _notes(model),
    }
    return summary_to_json(summaries, header)


def _unverified(key: str, v: EntryReach) -> EntryReach:
    rare = v.syscalls if key in MUSL_UNVERIFIED else v.rare_syscalls
    return EntryReach(v.syscalls, v.imports, v.failure_syscalls, rare)


def _addr2line(arch: str) -> str:
    """binutils' addr2line for ``arch`` (the cross one for arm64 when installed)."""
    cross = {"aarch64": "aarch64-linux-gnu-addr2line"}.get(arch)
    return cross if cross and shutil.which(cross) else "addr2line"


def _notes(model: str) -> str:
    if model == "musl":
        return (
            "libc family from Debian musl 1.2.3 (libc.so: every libc/libm/libpthread/librt/libdl symbol); "
            "libstdc++/libgcc_s/libgomp from Debian 12 (glibc builds), their libc imports matched by name. "
            "INCOMPLETE: Debian's musl libc.so has almost no unwind tables, so calls into its internal "
            "helpers (__syscall_cp, malloc internals) are not followed and many exports under-report. "
            "libc.so <init>: all rare (unverified): musl's libc.so has no constructors of its own, the reach "
            "comes from unknown function boundaries; its start-up cannot be split without symbols."
        )
    return (
        "Debian 12 (bookworm) glibc 2.36 and GCC 12 runtime libraries. The start-up entries (ld.so <entry>, "
        "libc.so.6 __libc_early_init) carry their rare-path syscalls (4th set), split with libc6-dbg's symbols."
    )
