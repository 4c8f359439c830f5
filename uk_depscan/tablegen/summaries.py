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
import tempfile
from collections.abc import Callable
from pathlib import Path

from uk_depscan.elf.file import ElfFile, open_elf
from uk_depscan.errors import DepscanError, UsageError
from uk_depscan.syscalls.summaries import ALL, ENTRY, INIT, EntryReach, TableSummary, summary_to_json
from uk_depscan.tablegen.debpkg import DebPackage, fetch_package

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


def summarize_elf(elf: ElfFile) -> dict[str, EntryReach]:
    """Entry summaries of one library from the engine: every export plus ``<entry>``, ``<init>``
    and ``<all>``, each split into normal-path syscalls and those reached only through failure
    functions (the same split the analysis makes for libraries scanned on the spot)."""
    from uk_depscan.syscalls.reach import EngineSummary
    from uk_depscan.syscalls.scan import scan_library

    summary = EngineSummary(elf.name, elf, scan_library(elf))
    entries = {}
    for key in sorted({k for k, _ in summary.scan.exports} | {ENTRY, INIT, ALL}):
        reach = summary.reach(key)
        if reach is None:
            continue
        normal = frozenset(s.number for s in reach.sites if not s.failure)
        failure = frozenset(s.number for s in reach.sites if s.failure) - normal
        entries[key] = EntryReach(normal, frozenset(reach.imports), failure)
    return entries


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
        for name in packages:
            pkg = fetch_package(name, arch, base)
            wanted: tuple[str, ...] = MUSL_SONAMES if name == "musl" else GLIBC_SONAMES
            if model == "musl" and name == "libc6":
                wanted = tuple(s for s in GLIBC_SONAMES if s.startswith(("libstdc", "libgcc", "libgomp")))
            for soname, path in sorted(find_libraries(pkg, wanted).items()):
                progress(f"{pkg.name} {pkg.version}: {soname}")
                elf = open_elf(path)
                prov = dict(
                    pkg.provenance(), build_id=elf.build_id or "", path_in_package="/" + str(path.relative_to(pkg.root))
                )
                summaries[soname] = TableSummary(soname, summarize_elf(elf), prov)
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


def _notes(model: str) -> str:
    if model == "musl":
        return (
            "libc family from Debian musl 1.2.3 (libc.so: every libc/libm/libpthread/librt/libdl symbol); "
            "libstdc++/libgcc_s/libgomp from Debian 12 (glibc builds), their libc imports matched by name. "
            "INCOMPLETE: Debian's musl libc.so has almost no unwind tables, so calls into its internal "
            "helpers (__syscall_cp, malloc internals) are not followed and many exports under-report."
        )
    return "Debian 12 (bookworm) glibc 2.36 and GCC 12 runtime libraries."
