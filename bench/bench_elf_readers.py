#!/usr/bin/env python3
"""What uk-depscan reads from an ELF file, read by LIEF, by pyelftools and by our own reader.

Usage: python bench/bench_elf_readers.py [LIB] [--repeat N] [--out bench/RESULTS-elf-readers.md]
Default LIB: the torch wheel's libtorch_cpu.so ($UK_DEPSCAN_WHEELS, else bench/wheels/x; fill it with
``bash bench/fetch_wheels.sh torch``).  Needs the test extra (``pip install -e '.[test]'``: lief, pyelftools).

The work is the same for the three readers: every dynamic symbol with its name, binding, type and
section index, the version it needs (DT_VERNEED, for imports) or defines (DT_VERDEF, for exports)
resolved through DT_VERSYM, and every dynamic relocation (offset, type, symbol index, addend).
Each reader runs in its own child process (``--one READER``), all in this one run, so the numbers
are like for like: wall time of the child (interpreter start and imports included) and of the read
alone, and the child's peak RSS from ``wait4``.  LIEF is given a ParserConfig that skips what we do
not read (.symtab, notes, overlay); pyelftools is lazy by design and reads only what is asked.
The children report what they read (counts and a digest of the versioned names) and the run fails
if the three disagree, so no reader is timed doing less work.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WHEELS = Path(os.environ.get("UK_DEPSCAN_WHEELS", HERE / "wheels" / "x"))
DEFAULT = WHEELS / "torch" / "torch" / "lib" / "libtorch_cpu.so"
READERS = ("uk-depscan", "LIEF", "pyelftools")


# -- the three readers: each returns (symbols, versioned names digest, versioned count, relocations) ------
def read_ours(path: Path) -> tuple[int, str, int, int]:
    from uk_depscan.elf.file import open_elf
    from uk_depscan.elf.symbols import dynamic_symbols, elf_relocations

    elf = open_elf(path)
    syms = dynamic_symbols(elf)
    keys = [i.key for i in syms.iter_imports()] + [e.key for e in syms.iter_exports()]
    relocs = elf_relocations(elf)
    return syms.count, _digest(keys), sum("@" in k for k in keys), len(relocs.offset)


def read_lief(path: Path) -> tuple[int, str, int, int]:
    import lief

    lief.logging.disable()
    config = lief.ELF.ParserConfig()
    config.parse_symtab_symbols = False
    config.parse_notes = False
    config.parse_overlay = False
    start = time.perf_counter()
    b = lief.ELF.parse(str(path), config)
    PARSE_ONLY["s"] = time.perf_counter() - start
    keys = []
    for s in b.dynamic_symbols:
        if s.binding not in (
            lief.ELF.Symbol.BINDING.GLOBAL,
            lief.ELF.Symbol.BINDING.WEAK,
            lief.ELF.Symbol.BINDING.GNU_UNIQUE,
        ):
            continue
        if s.shndx == 0 and s.binding == lief.ELF.Symbol.BINDING.GNU_UNIQUE:
            continue
        v = s.symbol_version
        name = v.symbol_version_auxiliary.name if v is not None and v.has_auxiliary_version else None
        if s.shndx == 0:
            keys.append(f"{s.name}@{name}" if name else s.name)
        else:
            base = v is None or v.value & 0x7FFF <= 1 or _lief_is_base(b, v.value & 0x7FFF)
            keys.append(s.name if base or not name else f"{s.name}{'@' if v.value & 0x8000 else '@@'}{name}")
    cls = b.header.identity_class
    relocs = [(r.address, r.r_info(cls), r.addend) for r in (*b.dynamic_relocations, *b.pltgot_relocations)]
    return len(b.dynamic_symbols), _digest(keys), sum("@" in k for k in keys), len(relocs)


_LIEF_BASE: dict[int, bool] = {}
PARSE_ONLY: dict[str, float] = {}  # LIEF's own parse() call, before any Python walks its objects


def _lief_is_base(b: object, ndx: int) -> bool:
    if not _LIEF_BASE:
        for d in b.symbols_version_definition:  # type: ignore[attr-defined]
            _LIEF_BASE[d.ndx] = bool(d.flags & 1)
    return _LIEF_BASE.get(ndx, False)


def read_pyelftools(path: Path) -> tuple[int, str, int, int]:
    from elftools.elf.elffile import ELFFile

    with path.open("rb") as f:
        e = ELFFile(f)
        need, define = {}, {}
        vr = e.get_section_by_name(".gnu.version_r")
        for _, auxs in vr.iter_versions() if vr is not None else ():
            for a in auxs:
                need[a.entry.vna_other & 0x7FFF] = a.name
        vd = e.get_section_by_name(".gnu.version_d")
        for d, auxs in vd.iter_versions() if vd is not None else ():
            define[d.entry.vd_ndx] = (next(iter(auxs)).name, bool(d.entry.vd_flags & 1))
        versym = e.get_section_by_name(".gnu.version")
        dynsym = e.get_section_by_name(".dynsym")
        keys, count = [], 0
        for i, s in enumerate(dynsym.iter_symbols()):
            count += 1
            bind = s.entry.st_info.bind
            undef = s.entry.st_shndx == "SHN_UNDEF"
            if i == 0 or bind not in ("STB_GLOBAL", "STB_WEAK", "STB_GNU_UNIQUE", "STB_LOOS"):
                continue
            if undef and bind != "STB_GLOBAL" and bind != "STB_WEAK":
                continue
            raw = versym.get_symbol(i).entry["ndx"] if versym is not None else 1
            raw = raw if isinstance(raw, int) else 1  # VER_NDX_LOCAL / VER_NDX_GLOBAL
            if undef:
                name = need.get(raw & 0x7FFF)
                keys.append(f"{s.name}@{name}" if name else s.name)
            else:
                name, base = define.get(raw & 0x7FFF, (None, True))
                keys.append(s.name if base or not name else f"{s.name}{'@' if raw & 0x8000 else '@@'}{name}")
        relocs = [
            (r.entry.r_offset, r.entry.r_info_type, r.entry.r_info_sym, r.entry.get("r_addend", 0))
            for sec in e.iter_sections()
            if sec.header.sh_type in ("SHT_RELA", "SHT_REL") and sec.header.sh_flags & 0x2
            for r in sec.iter_relocations()
        ]
    return count, _digest(keys), sum("@" in k for k in keys), len(relocs)


def _digest(keys: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(keys)).encode("utf-8", "surrogateescape")).hexdigest()[:16]


def one(reader: str, path: Path) -> None:
    fn = {"uk-depscan": read_ours, "LIEF": read_lief, "pyelftools": read_pyelftools}[reader]
    start = time.perf_counter()
    symbols, digest, versioned, relocs = fn(path)
    print(
        json.dumps(
            {
                "read_s": time.perf_counter() - start,
                "symbols": symbols,
                "versioned": versioned,
                "digest": digest,
                "relocations": relocs,
                "parse_s": PARSE_ONLY.get("s"),
            }
        )
    )


# -- the parent: one child per reader and run -----------------------------------------------------------
def child_wait4(reader: str, path: Path) -> dict:
    start = time.perf_counter()
    r, w = os.pipe()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--one", reader, str(path)], stdout=w, stderr=subprocess.DEVNULL, close_fds=True
    )
    os.close(w)
    with os.fdopen(r) as pipe:
        out = pipe.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status):
        sys.exit(f"{reader} failed (rerun: python {__file__} --one {reader} {path})")
    doc = json.loads(out)
    doc.update(wall_s=wall, rss_mib=usage.ru_maxrss / 1024)
    return doc


def baseline_rss() -> float:
    """Peak RSS of a child Python that imports nothing: the floor under every row."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    _, _, usage = os.wait4(proc.pid, 0)
    return usage.ru_maxrss / 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("lib", nargs="?", type=Path, default=DEFAULT)
    ap.add_argument("--repeat", type=int, default=1, help="runs per reader; the table shows the fastest")
    ap.add_argument("--readers", default=",".join(READERS))
    ap.add_argument("--out", type=Path, default=HERE / "RESULTS-elf-readers.md")
    ap.add_argument("--one", metavar="READER", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        one(args.one, args.lib)
        return 0
    if not args.lib.is_file():
        print(
            f"{args.lib}: not found (run: bash bench/fetch_wheels.sh torch, or set UK_DEPSCAN_WHEELS)", file=sys.stderr
        )
        return 2
    readers = args.readers.split(",")
    load_before = os.getloadavg()[0]
    runs: dict[str, list[dict]] = {r: [] for r in readers}
    for i in range(args.repeat):
        for reader in readers:  # interleaved, so a burst of load on the machine hits every reader
            doc = child_wait4(reader, args.lib)
            runs[reader].append(doc)
            print(
                f"run {i + 1}/{args.repeat} {reader}: {doc['wall_s']:.2f} s, {doc['rss_mib']:.0f} MiB", file=sys.stderr
            )
    work = {r: {k: runs[r][0][k] for k in ("symbols", "versioned", "digest", "relocations")} for r in readers}
    if len({json.dumps(w, sort_keys=True) for w in work.values()}) != 1:
        print(f"the readers read different things: {json.dumps(work, indent=1)}", file=sys.stderr)
        return 1
    floor = baseline_rss()
    load_after = os.getloadavg()[0]
    ours = min(d["wall_s"] for d in runs["uk-depscan"]) if "uk-depscan" in runs else None
    w = work[readers[0]]
    size = args.lib.stat().st_size / (1 << 20)
    rows = []
    for reader in readers:
        best = min(runs[reader], key=lambda d: d["wall_s"])
        ratio = f"{best['wall_s'] / ours:.1f}x" if ours else "-"
        times = ", ".join(f"{d['wall_s']:.2f}" for d in runs[reader])
        rows.append(
            f"| {reader} | {best['wall_s']:.2f} | {best['read_s']:.2f} | {ratio} | "
            f"{max(d['rss_mib'] for d in runs[reader]):.0f} | {times} |"
        )
    command = "python bench/bench_elf_readers.py"
    command += "" if args.lib == DEFAULT else f" {args.lib}"
    command += "" if args.repeat == 1 else f" --repeat {args.repeat}"
    versions = {"LIEF": _version("lief"), "pyelftools": _version("pyelftools"), "uk-depscan": _version("uk-depscan")}
    text = [
        "# ELF readers: LIEF, pyelftools and ours on what uk-depscan reads",
        "",
        f"File: `{args.lib.name}` ({size:.0f} MiB): {w['symbols']} dynamic symbols ({w['versioned']} of the "
        f"imports/exports versioned), {w['relocations']} dynamic relocations; the three readers returned the "
        f"same names, versions and counts (digest {w['digest']}).",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, 1-minute load average {load_before:.1f} before and "
        f"{load_after:.1f} after the run"
        + (" (other jobs were running: timings are noisy)" if max(load_before, load_after) > 1.5 else "")
        + f"; Python {platform.python_version()}; "
        + ", ".join(f"{k} {v}" for k, v in versions.items())
        + ".",
        f"Command: `{command}`"
        + (" (default LIB: the torch 2.13.0 CPU wheel's libtorch_cpu.so)." if args.lib == DEFAULT else "."),
        "",
        "| reader | seconds (child, fastest run) | of which reading | vs ours | peak RSS MiB | all runs (s) |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        f"Peak RSS of a child Python that imports nothing: {floor:.0f} MiB.  Ours maps the file read-only, so its",
        "RSS counts the file pages it touched (shared with the page cache, not allocated).",
        *(
            [f"LIEF's own `parse()` call alone (C++, before Python walks its objects): {lief_parse:.2f} s."]
            if (lief_parse := min((d["parse_s"] for d in runs.get("LIEF", []) if d.get("parse_s")), default=0))
            else []
        ),
        "",
    ]
    args.out.write_text("\n".join(text))
    print("\n".join(text))
    return 0


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


if __name__ == "__main__":
    sys.exit(main())
