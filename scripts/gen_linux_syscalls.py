#!/usr/bin/env python3
"""Generate ``syscall_tables/linux/{x86_64,aarch64}.json`` from Debian's kernel UAPI headers.

    python scripts/gen_linux_syscalls.py [--suite trixie] [--version V] [--deb-dir DIR] [--out syscall_tables/linux]

Source: the ``linux-libc-dev`` package of Debian ``--suite`` (default trixie: Linux 6.12, which
knows the syscalls up to 462 that current Unikraft tables and binaries use; bookworm's 6.1 stops
at 450).  The suite's package index is fetched with ``apt-get update`` into a private temporary
apt state (``-o Dir::State::Lists=...``), so the machine's apt configuration is not touched;
then ``apt-get download linux-libc-dev[=V]``.  Since 6.6 the package is ``Architecture: all``
and carries every arch's ``/usr/include/<triplet>/asm``; for an older, per-arch suite the arm64
package is downloaded as ``linux-libc-dev:arm64``.  ``--suite system`` uses the machine's own
apt sources instead.  ``--deb-dir DIR`` skips downloading and uses the
``linux-libc-dev_*_{all,amd64,arm64}.deb`` already in DIR (offline, byte-reproducible).
Each .deb is unpacked with ``dpkg-deb -x`` into a temporary directory, never into the repo.

Why the C preprocessor: ``asm/unistd.h`` picks its numbers with ``#if``s (x86: ``__i386__`` /
``__ILP32__`` choose unistd_32/x32/64.h; arm64 up to 6.10: ``__ARCH_WANT_*`` and
``__BITS_PER_LONG`` blocks of asm-generic/unistd.h; arm64 from 6.11: a generated unistd_64.h).
``gcc -E -dM -nostdinc -undef`` with only the arch's own predefines and the unpacked include
dirs evaluates exactly the choices a 64-bit user-space build of that arch sees, whatever the
header layout; the host gcc is enough.  The ``__NR_<name>`` values (possibly aliases such as
``__NR_newfstatat`` -> ``__NR3264_fstatat`` -> 79) are then resolved by
``uk_depscan.tablegen.linux.parse_header_text``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from uk_depscan.syscalls.linux import SCHEMA_VERSION, validate_table_doc  # noqa: E402
from uk_depscan.tablegen.linux import dump_table, parse_header_text  # noqa: E402

PACKAGE = "linux-libc-dev"
DEFAULT_SUITE = "trixie"
MIRROR = "http://deb.debian.org/debian"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
GENERATOR = "scripts/gen_linux_syscalls.py"
COMMAND = "python scripts/gen_linux_syscalls.py"


@dataclass(frozen=True)
class ArchSpec:
    arch: str  # table name
    deb_arch: str  # Debian architecture of a per-arch package
    triplet: str  # multiarch include dir holding asm/
    predefines: tuple[str, ...]  # what the arch's compiler predefines that the headers test


ARCHES = (
    ArchSpec("x86_64", "amd64", "x86_64-linux-gnu", ("__x86_64__", "__LP64__", "__linux__")),
    ArchSpec("aarch64", "arm64", "aarch64-linux-gnu", ("__aarch64__", "__LP64__", "__linux__")),
)


@dataclass(frozen=True)
class Deb:
    path: Path
    package: str
    version: str
    architecture: str
    sha256: str


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, **kw)  # failure reported below
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)}: failed: {proc.stderr.strip()[-800:]}")
    return proc


def inspect_deb(path: Path) -> Deb:
    def field(name: str) -> str:
        return run(["dpkg-deb", "-f", str(path), name]).stdout.strip()

    return Deb(
        path, field("Package"), field("Version"), field("Architecture"), hashlib.sha256(path.read_bytes()).hexdigest()
    )


# ----------------------------------------------------------------------------- fetching


def apt_options(suite: str, state: Path) -> list[str]:
    """apt-get options for a private apt state holding only ``suite`` (system config untouched)."""
    if suite == "system":
        return []
    parts = state / "sources.list.d"
    for sub in (parts, state / "lists" / "partial", state / "cache" / "archives" / "partial"):
        sub.mkdir(parents=True, exist_ok=True)
    (parts / "debian.sources").write_text(
        f"Types: deb\nURIs: {MIRROR}\nSuites: {suite}\nComponents: main\nSigned-By: {KEYRING}\n"
    )
    return [
        "-o",
        "Dir::Etc::SourceList=/dev/null",
        "-o",
        f"Dir::Etc::SourceParts={parts}",
        "-o",
        f"Dir::State::Lists={state / 'lists'}",
        "-o",
        f"Dir::Cache={state / 'cache'}",
        "-o",
        "APT::Architectures::=amd64",
        "-o",
        "APT::Architectures::=arm64",
    ]


def download(suite: str, version: str | None, work: Path) -> Path:
    """Download the package(s) into ``work/debs``; returns that directory."""
    debs = work / "debs"
    debs.mkdir()
    opts = apt_options(suite, work / "apt")
    if opts:
        run(["apt-get", *opts, "update"])
    pin = f"={version}" if version else ""
    run(["apt-get", *opts, "download", f"{PACKAGE}{pin}"], cwd=debs)
    first = inspect_deb(next(debs.glob("*.deb")))
    if first.architecture != "all":
        # Per-arch package (suites before Linux 6.6): fetch every other arch through multiarch.
        for spec in ARCHES:
            if spec.deb_arch != first.architecture:
                run(["apt-get", *opts, "download", f"{PACKAGE}:{spec.deb_arch}{pin}"], cwd=debs)
    return debs


def find_deb(directory: Path, spec: ArchSpec) -> Path:
    debs = sorted(directory.glob(f"{PACKAGE}_*_{spec.deb_arch}.deb")) + sorted(directory.glob(f"{PACKAGE}_*_all.deb"))
    if len(debs) != 1:
        sys.exit(f"{directory}: expected exactly one {PACKAGE}_*_{{{spec.deb_arch},all}}.deb, found {len(debs)}")
    return debs[0]


# ----------------------------------------------------------------------------- evaluating


def cpp_cmd(inc: Path, spec: ArchSpec, *flags: str) -> list[str]:
    return [
        "gcc",
        "-E",
        *flags,
        "-nostdinc",
        "-undef",
        *(f"-D{d}" for d in spec.predefines),
        "-I",
        str(inc / spec.triplet),
        "-I",
        str(inc),
        "-x",
        "c",
        "-",
    ]


def preprocess(root: Path, spec: ArchSpec) -> tuple[str, list[str]]:
    """``cpp -dM`` of ``<asm/unistd.h>`` against the unpacked package only, and the headers it read."""
    inc = root / "usr" / "include"
    src = "#include <asm/unistd.h>\n"
    macros = run(cpp_cmd(inc, spec, "-dM"), input=src).stdout
    deps = run(cpp_cmd(inc, spec, "-M", "-MT", "x"), input=src).stdout.replace("\\\n", " ").split()[1:]
    # Package-relative include paths as a compiler sees them (symlinks into /usr/lib/linux/uapi
    # not followed), in inclusion order, for the provenance record.
    headers = ["/" + os.path.relpath(os.path.normpath(d), root) for d in deps if d != "-"]
    return macros, headers


def build(spec: ArchSpec, deb: Deb, work: Path, suite: str) -> dict:
    if deb.package != PACKAGE or deb.architecture not in (spec.deb_arch, "all"):
        sys.exit(f"{deb.path}: is {deb.package}:{deb.architecture}, expected {PACKAGE}:{spec.deb_arch} or :all")
    root = work / "unpacked" / deb.path.stem
    if not root.exists():
        root.parent.mkdir(parents=True, exist_ok=True)
        run(["dpkg-deb", "-x", str(deb.path), str(root)])
    macros, headers = preprocess(root, spec)
    syscalls = parse_header_text(macros)
    source = {
        "package": deb.package,
        "version": deb.version,
        "architecture": deb.architecture,
        "deb": deb.path.name,
        "deb_sha256": deb.sha256,
        "header": " -> ".join(headers),
        "method": (
            f"gcc -E -dM -nostdinc -undef {' '.join('-D' + d for d in spec.predefines)} "
            f"-I usr/include/{spec.triplet} -I usr/include on '#include <asm/unistd.h>'; "
            "every __NR_<name> macro resolved to an integer"
        ),
        "generator": GENERATOR,
        "command": COMMAND if suite == DEFAULT_SUITE else f"{COMMAND} --suite {suite}",
    }
    if suite != "system":
        source["suite"] = f"Debian {suite} ({MIRROR})"
    doc = {"schema_version": SCHEMA_VERSION, "arch": spec.arch, "source": source, "syscalls": syscalls}
    validate_table_doc(doc, f"{spec.arch} (generated)")
    return doc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--suite",
        default=DEFAULT_SUITE,
        help=f"Debian suite to fetch {PACKAGE} from (default {DEFAULT_SUITE}; 'system': this machine's apt sources)",
    )
    ap.add_argument("--version", help=f"exact {PACKAGE} version to download")
    ap.add_argument("--deb-dir", type=Path, help=f"use {PACKAGE}_*_{{all,amd64,arm64}}.deb from here; no download")
    ap.add_argument("--out", type=Path, default=REPO / "syscall_tables" / "linux")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gen_linux_syscalls.") as tmp:
        work = Path(tmp)
        debs = args.deb_dir if args.deb_dir else download(args.suite, args.version, work)
        for spec in ARCHES:
            deb = inspect_deb(find_deb(debs, spec))
            doc = build(spec, deb, work, args.suite)
            out = args.out / f"{spec.arch}.json"
            out.write_text(dump_table(doc), encoding="utf-8")
            print(
                f"wrote {out}: {len(doc['syscalls'])} syscalls (max {max(doc['syscalls'].values())}) "
                f"from {deb.package} {deb.version} ({deb.architecture})",
                file=sys.stderr,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
