"""Generate the Linux syscall argument table from the kernel's own ``SYSCALL_DEFINEn`` declarations.

    python -m uk_depscan.tablegen.linux_args --deb linux-source-6.12_6.12.107-1_all.deb \\
        [--src EXTRACTED_TREE] -o syscall_tables/linux_args/linux-6.12.json

Input: Debian's ``linux-source-<v>`` package (the kernel tree as ``usr/src/linux-source-<v>.tar.xz``);
its name, version and sha256 go into the table.  ``--src`` names an already extracted tree of the
same package (checked against the package's version) to skip the ~30 s extraction.

Method, per architecture (x86_64 and aarch64, the table names of ``syscall_tables/linux``):

1. The syscall list is the kernel's own table, with the ABIs a 64-bit build uses:
   ``arch/x86/entry/syscalls/syscall_64.tbl`` (``common``, ``64``; the ``x32`` rows belong to the
   x32 ABI) and ``arch/arm64/tools/syscall_64.tbl`` (``common``, ``64`` plus the
   ``syscall_abis_64`` of ``arch/arm64/kernel/Makefile.syscalls``).  Each row names its entry
   point (``sys_<fn>``), so ``uname`` is found as ``SYSCALL_DEFINE1(newuname, …)``.
2. Every ``SYSCALL_DEFINE<n>(fn, type, name, …)`` in a ``.c`` file outside other architectures'
   ``arch/`` directories (and ``arch/x86/um``, user-mode Linux) is a candidate for ``sys_<fn>``,
   with the ``#if`` branches around it.  ``COMPAT_SYSCALL_DEFINE`` (32-bit processes on a 64-bit
   kernel) is not a candidate.
3. Several candidates are decided by the kernel's own configuration: ``make ARCH=<arch>
   defconfig`` is run on the tree (into a temporary ``O=`` directory) and the ``#if`` conditions
   are evaluated with its ``.config`` plus the ``__ARCH_WANT_*`` macros the arch's
   ``asm/unistd.h`` defines under that configuration.  That is how ``clone`` gets
   ``(flags, newsp, parent_tid, child_tid, tls)`` on x86_64 and ``(…, parent_tid, tls, child_tid)``
   on arm64 (``select CLONE_BACKWARDS``).  Candidates left after that must have the same signature
   (``mm/mmap.c`` vs ``mm/nommu.c``, ``kernel/time/posix-timers.c`` vs ``posix-stubs.c``): the first
   is kept and the others listed as ``variants``.  Anything else stops the generator.
4. Rows whose entry point is ``sys_ni_syscall``, or that have no definition for the arch (the
   kernel's ``COND_SYSCALL`` weak alias returns ``-ENOSYS``), get ``nargs: null``.
5. With ``--manpages-deb`` (Debian's ``manpages-dev``), each row also names the section-2 page that
   documents it, following the package's symlinks and ``.so`` links (``newfstatat`` → ``fstatat(2)``);
   ``null`` when man-pages has no page for it (``io_uring_setup`` is documented by liburing).

Argument types are the declared ones with the sparse annotation ``__user`` dropped and spacing
normalised (``const char *const *``).  Nothing is resolved or guessed beyond that.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from uk_depscan.tablegen.cppcond import Branch, blank_comments, condition_stacks, stack_value

SCHEMA_VERSION = 1
GENERATOR_VERSION = 1
KIND = "linux-syscall-args"
DEFINE = re.compile(r"\bSYSCALL_DEFINE([0-6])\s*\(")
TYPE_TOKEN = re.compile(r"\*|[A-Za-z_]\w*")
SKIP_TOP = ("Documentation", "tools", "samples", "scripts", "LICENSES", "usr")


@dataclass(frozen=True)
class ArchSpec:
    name: str  # table key (syscall_tables/linux naming)
    kernel_arch: str  # make ARCH=
    table: str
    abis: tuple[str, ...]
    abis_makefile: str | None  # adds `syscall_abis_64 += …` (arm64)
    arch_dir: str
    excluded_dirs: tuple[str, ...]
    unistd_headers: tuple[str, ...]


ARCHES = (
    ArchSpec(
        "x86_64",
        "x86_64",
        "arch/x86/entry/syscalls/syscall_64.tbl",
        ("common", "64"),
        None,
        "arch/x86/",
        ("arch/x86/um/",),
        ("arch/x86/include/asm/unistd.h", "arch/x86/include/uapi/asm/unistd.h"),
    ),
    ArchSpec(
        "aarch64",
        "arm64",
        "arch/arm64/tools/syscall_64.tbl",
        ("common", "64"),
        "arch/arm64/kernel/Makefile.syscalls",
        "arch/arm64/",
        (),
        ("arch/arm64/include/asm/unistd.h", "arch/arm64/include/uapi/asm/unistd.h"),
    ),
)


@dataclass(frozen=True)
class Definition:
    fn: str
    nargs: int
    args: tuple[tuple[str, str], ...]  # (type, name)
    path: str
    line: int
    stack: tuple[Branch, ...]

    @property
    def site(self) -> str:
        return f"{self.path}:{self.line}"

    @property
    def signature(self) -> tuple[tuple[str, str], ...]:
        return self.args


class GenerationError(Exception):
    """The tree does not let the generator decide a row; the message names the row."""


# ----------------------------------------------------------------------------- parsing


def normalise_type(text: str) -> str:
    """``const char __user *const __user *`` → ``const char *const *``."""
    out = ""
    prev = ""
    for tok in TYPE_TOKEN.findall(text):
        if tok == "__user":
            continue
        if tok == "*":
            out += "*" if prev == "*" else " *"
        else:
            out += tok if prev == "*" or not out else f" {tok}"
        prev = tok
    return out


def parse_definitions(path: str, text: str) -> Iterator[Definition]:
    blanked = blank_comments(text)
    stacks: list[tuple[Branch, ...]] | None = None
    for m in DEFINE.finditer(blanked):
        line_start = blanked.rfind("\n", 0, m.start()) + 1
        if blanked[line_start : m.start()].lstrip().startswith("#"):
            continue  # a macro that wraps SYSCALL_DEFINE, not a definition
        end, depth = m.end(), 1
        while depth and end < len(blanked):
            depth += {"(": 1, ")": -1}.get(blanked[end], 0)
            end += 1
        parts = [" ".join(p.split()) for p in blanked[m.end() : end - 1].split(",")]
        nargs = int(m.group(1))
        if len(parts) != 1 + 2 * nargs:
            raise GenerationError(f"{path}: SYSCALL_DEFINE{nargs}({parts[0]}, …): {len(parts) - 1} type/name items")
        if stacks is None:
            stacks = condition_stacks(blanked)
        line = blanked.count("\n", 0, m.start()) + 1
        args = tuple((normalise_type(parts[1 + 2 * i]), parts[2 + 2 * i]) for i in range(nargs))
        yield Definition(parts[0], nargs, args, path, line, stacks[line - 1])


def scan_tree(root: Path, specs: tuple[ArchSpec, ...] = ARCHES) -> dict[str, list[Definition]]:
    """Every SYSCALL_DEFINE in the tree that a build for one of ``specs`` can compile, by entry point."""
    found: dict[str, list[Definition]] = {}
    for dirpath, dirnames, files in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        dirnames[:] = sorted(d for d in dirnames if any(_wanted_dir(rel_dir + d + "/", s) for s in specs))
        for name in sorted(files):
            if not name.endswith(".c"):
                continue
            text = (Path(dirpath) / name).read_text(encoding="utf-8", errors="replace")
            if "SYSCALL_DEFINE" not in text:
                continue
            for d in parse_definitions(rel_dir + name, text):
                found.setdefault(f"sys_{d.fn}", []).append(d)
    return found


def _wanted_dir(rel: str, spec: ArchSpec) -> bool:
    if rel.split("/", 1)[0] in SKIP_TOP:
        return False
    if rel.startswith("arch/") and rel != "arch/":
        return (rel.startswith(spec.arch_dir) or spec.arch_dir.startswith(rel)) and not any(
            rel.startswith(x) for x in spec.excluded_dirs
        )
    return True


def read_syscall_table(root: Path, spec: ArchSpec) -> tuple[tuple[str, ...], list[tuple[int, str, str]]]:
    """(ABIs used, [(nr, name, entry point)]) from the arch's ``.tbl``."""
    abis = list(spec.abis)
    if spec.abis_makefile:
        for line in (root / spec.abis_makefile).read_text().splitlines():
            m = re.match(r"\s*syscall_abis_64\s*\+?=\s*(.*)$", line)
            if m:
                abis += m.group(1).split()
    rows = []
    for line in (root / spec.table).read_text().splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) >= 3 and fields[1] in abis:
            rows.append((int(fields[0]), fields[2], fields[3] if len(fields) > 3 else "sys_ni_syscall"))
    return tuple(abis), rows


# ----------------------------------------------------------------------------- configuration


def kernel_config(root: Path, spec: ArchSpec, work: Path) -> dict[str, str]:
    """``make ARCH=<arch> defconfig`` into ``work``: the symbols set to y/m."""
    out = work / f"config-{spec.kernel_arch}"
    proc = subprocess.run(
        ["make", "-s", "-C", str(root), f"ARCH={spec.kernel_arch}", f"O={out}", "defconfig"],
        check=False,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise GenerationError(f"make ARCH={spec.kernel_arch} defconfig failed: {proc.stderr.strip()[-400:]}")
    symbols = {}
    for line in (out / ".config").read_text().splitlines():
        m = re.match(r"(CONFIG_\w+)=(.*)$", line)
        if m:
            symbols[m.group(1)] = m.group(2)
    return symbols


class MacroOracle:
    """Values of the macros that decide definitions: CONFIG_* and the arch's __ARCH_WANT_*."""

    def __init__(self, config: dict[str, str], root: Path, spec: ArchSpec) -> None:
        self.config = config
        self.used: dict[str, bool | None] = {}
        self.wants: set[str] = set()
        for header in spec.unistd_headers:
            path = root / header
            if path.exists():
                self.wants |= self._defines(blank_comments(path.read_text()))

    def _defines(self, text: str) -> set[str]:
        names = set()
        for line, stack in zip(text.split("\n"), condition_stacks(text), strict=True):
            m = re.match(r"\s*#\s*define\s+(__ARCH_WANT_\w+)", line)
            if m and stack_value(stack, self._config_only) is True:
                names.add(m.group(1))
        return names

    def _config_only(self, name: str) -> bool | None:
        return self.config.get(name) in ("y", "m") if name.startswith("CONFIG_") else None

    def __call__(self, name: str) -> bool | None:
        if name.startswith("CONFIG_"):
            value: bool | None = self._config_only(name)
        elif name.startswith("__ARCH_WANT_"):
            value = name in self.wants
        else:
            value = None
        self.used[name] = value
        return value


# ----------------------------------------------------------------------------- choosing


def choose(entry: str, candidates: list[Definition], oracle: MacroOracle) -> dict[str, object]:
    """The row for one entry point: the definition the configuration compiles, or a stop."""
    live: list[Definition] = []
    excluded: list[Definition] = []
    for d in candidates:
        verdict = stack_value(d.stack, oracle)
        (excluded if verdict is False else live).append(d)
    if not live:
        note = f"no SYSCALL_DEFINE for {entry} in this architecture's build (COND_SYSCALL: -ENOSYS)"
        return {"entry": entry, "nargs": None, "args": None, "note": note}
    if len({d.signature for d in live}) > 1:
        sites = ", ".join(f"{d.site} {d.signature}" for d in live)
        raise GenerationError(f"{entry}: definitions with different signatures left undecided: {sites}")
    first = live[0]
    row: dict[str, object] = {
        "entry": entry,
        "nargs": first.nargs,
        "args": [{"type": t, "name": n} for t, n in first.args],
        "defined_at": first.site,
    }
    conditions = [b.text() for b in first.stack]
    if conditions:
        row["conditions"] = conditions
    if len(live) > 1:
        row["variants"] = [d.site for d in live[1:]]
    if excluded:
        row["excluded"] = [f"{d.site} ({' && '.join(b.text() for b in d.stack)})" for d in excluded]
    return row


def build_arch(root: Path, spec: ArchSpec, work: Path, found: dict[str, list[Definition]]) -> dict[str, Any]:
    abis, rows = read_syscall_table(root, spec)
    defs = {e: [d for d in ds if _wanted_dir(d.path, spec)] for e, ds in found.items()}
    oracle = MacroOracle(kernel_config(root, spec, work), root, spec)
    syscalls: dict[str, dict[str, object]] = {}
    for nr, name, entry in rows:
        if entry == "sys_ni_syscall":
            row: dict[str, object] = {"entry": entry, "nargs": None, "args": None, "note": "sys_ni_syscall: -ENOSYS"}
        else:
            row = choose(entry, defs.get(entry, []), oracle)
        if name in syscalls:
            raise GenerationError(f"{spec.table}: {name} listed twice")
        syscalls[name] = {"nr": nr, **row}
    return {
        "table": spec.table,
        "abis": list(abis),
        "kconfig": f"make ARCH={spec.kernel_arch} defconfig",
        "macros_used": {k: oracle.used[k] for k in sorted(oracle.used)},
        "syscalls": syscalls,
    }


# ----------------------------------------------------------------------------- provenance / driver


def deb_fields(deb: Path) -> dict[str, str]:
    def field(name: str) -> str:
        return subprocess.run(["dpkg-deb", "-f", str(deb), name], capture_output=True, text=True, check=True).stdout

    return {
        "package": field("Package").strip(),
        "version": field("Version").strip(),
        "architecture": field("Architecture").strip(),
        "deb": deb.name,
        "deb_sha256": hashlib.sha256(deb.read_bytes()).hexdigest(),
    }


def extract(deb: Path, work: Path) -> Path:
    """The kernel tree of a linux-source .deb, unpacked under ``work``."""
    unpacked = work / "deb"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(unpacked)], check=True, capture_output=True)
    tarballs = sorted((unpacked / "usr" / "src").glob("linux-source-*.tar.xz"))
    if len(tarballs) != 1:
        raise GenerationError(f"{deb}: expected one usr/src/linux-source-*.tar.xz, found {len(tarballs)}")
    with tarfile.open(tarballs[0]) as tar:
        tar.extractall(work / "src", filter="data")
    (tree,) = (work / "src").iterdir()
    return tree


def man_pages(deb: Path, work: Path) -> dict[str, str]:
    """Syscall name → the man-pages section-2 page documenting it (``fstatat(2)``)."""
    dest = work / "manpages"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(dest)], check=True, capture_output=True)
    man2 = dest / "usr" / "share" / "man" / "man2"
    pages = {}
    for entry in sorted(man2.iterdir()):
        m = re.fullmatch(r"([A-Za-z0-9_]+)\.2(\.gz)?", entry.name)
        if not m:
            continue
        pages[m.group(1)] = _page_of(entry, man2)
    return pages


def _page_of(entry: Path, man2: Path, depth: int = 0) -> str:
    """The page ``entry`` resolves to, as ``name(section)``; links are followed a few levels."""
    if entry.is_symlink() and depth < 4:
        target = (entry.parent / os.readlink(entry)).resolve()
        if target.parent != man2.resolve() or not target.exists():
            return _page_name(target.name)
        return _page_of(target, man2, depth + 1)
    data = entry.read_bytes()
    text = gzip.decompress(data) if entry.name.endswith(".gz") else data
    m = re.match(rb"\.so\s+man(\d)\w*/([A-Za-z0-9_]+)\.(\d)", text.lstrip())
    if m and depth < 4:
        name, section = m.group(2).decode(), m.group(3).decode()
        target = man2 / f"{name}.2.gz"
        if section == "2" and target.exists():
            return _page_of(target, man2, depth + 1)
        return f"{name}({section})"
    return _page_name(entry.name)


def _page_name(filename: str) -> str:
    """``fstatat.2.gz`` → ``fstatat(2)``, ``getcwd.3.gz`` → ``getcwd(3)``."""
    stem, section = filename.split(".")[:2]
    return f"{stem}({section})"


def kernel_version(root: Path) -> str:
    fields = dict(re.findall(r"^(VERSION|PATCHLEVEL|SUBLEVEL)\s*=\s*(\d+)", (root / "Makefile").read_text(), re.M))
    return f"{fields['VERSION']}.{fields['PATCHLEVEL']}.{fields['SUBLEVEL']}"


def generate(deb: Path, src: Path | None, work: Path, manpages: Path | None = None) -> dict[str, object]:
    source = deb_fields(deb)
    root = src if src is not None else extract(deb, work)
    version = kernel_version(root)
    if not source["version"].startswith(version):
        raise GenerationError(f"{root}: kernel {version} does not match {source['deb']} ({source['version']})")
    source["tarball"] = f"usr/src/{source['package']}.tar.xz"
    found = scan_tree(root)
    arches = {spec.name: build_arch(root, spec, work, found) for spec in ARCHES}
    command = f"python -m uk_depscan.tablegen.linux_args --deb {source['deb']}"
    doc: dict[str, object] = {
        "schema_version": SCHEMA_VERSION,
        "kind": KIND,
        "kernel": version,
        "source": source,
        "generator": {"name": "uk_depscan.tablegen.linux_args", "version": GENERATOR_VERSION},
        "arches": arches,
    }
    if manpages is not None:
        pages = man_pages(manpages, work)
        doc["man_pages_source"] = deb_fields(manpages)
        command += f" --manpages-deb {manpages.name}"
        for arch in arches.values():
            for name, row in arch["syscalls"].items():
                row["man_page"] = pages.get(name)
    doc["command"] = command + " -o <out>"
    return doc


def dump(doc: dict[str, object]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--deb", type=Path, required=True, help="linux-source-<v>_*.deb (provenance, and the tree)")
    ap.add_argument("--src", type=Path, help="an already extracted tree of that package")
    ap.add_argument("--manpages-deb", type=Path, help="manpages-dev_*.deb: record each syscall's man page")
    ap.add_argument("-o", "--output", type=Path, required=True)
    args = ap.parse_args(argv)
    try:
        with tempfile.TemporaryDirectory(prefix="linux_args.") as tmp:
            doc = generate(args.deb, args.src, Path(tmp), args.manpages_deb)
    except (GenerationError, OSError, subprocess.CalledProcessError) as err:
        sys.stderr.write(f"linux_args: error: {err}\n")
        return 2
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(dump(doc), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
