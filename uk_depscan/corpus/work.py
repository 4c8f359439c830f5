"""The worker side: one input in, one compact :class:`InputResult` out (no database access).

Runs in a local process pool or on a Dask worker; everything it receives and returns is a
picklable value of :mod:`uk_depscan.corpus.model`.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from uk_depscan.cleanup import locked_tempdir
from uk_depscan.corpus.model import (
    ExportSummary,
    GapRow,
    InputFailure,
    InputKind,
    InputResult,
    ObjectFacts,
    Platform,
    ReachFact,
    TargetFacts,
    WorkItem,
)
from uk_depscan.errors import DepscanError, InputError
from uk_depscan.inputs import MemberFilter
from uk_depscan.model import Breadth, ReachPath, TargetReport
from uk_depscan.store.identity import object_identity
from uk_depscan.syscalls.linux import load_linux_table
from uk_depscan.unikraft.gaps import assess_all, plan_kconfig
from uk_depscan.unikraft.tables import LoupePrior, UnikraftTable, load_loupe_priors, load_unikraft_table

# PEP 427 wheel file name: {distribution}-{version}(-{build})?-{python}-{abi}-{platform}.whl
_WHEEL_NAME = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)(?:-\d[^-]*)?-[^-]+-[^-]+-(?P<plat>[^-]+)\.whl$")
_DIST_INFO = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)\.dist-info$")
PIP_TIMEOUT = 1800


def manylinux_platforms(platform: Platform) -> tuple[str, ...]:
    """PEP 600: a manylinux_2_28 system runs every manylinux_2_Y wheel with Y ≤ 28 (and the legacy
    manylinux2014 alias of 2_17); pip's ``--platform`` takes the tags literally, so all are passed."""
    arch = platform.arch
    tags = [f"manylinux_2_{y}_{arch}" for y in range(28, 16, -1)]
    return (*tags, f"manylinux2014_{arch}")


def download_spec(item: WorkItem, dest: str) -> str:
    """``pip download --only-binary=:all: --no-deps`` of one spec for the item's platform; the
    path of the one wheel it wrote."""
    assert item.platform is not None
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", "-d", dest]
    for tag in manylinux_platforms(item.platform):
        cmd += ["--platform", tag]
    cmd += ["--python-version", item.python_version or f"{sys.version_info[0]}.{sys.version_info[1]}"]
    for link in item.find_links:
        cmd += ["--find-links", link]
    if item.no_index:
        cmd.append("--no-index")
    cmd += ["--", item.value]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise InputError(f"{item.value}: pip download failed: {err}") from err
    if done.returncode != 0:
        last = [ln for ln in done.stderr.splitlines() if ln.startswith("ERROR")] or done.stderr.splitlines()[-1:]
        raise InputError(f"{item.value}: pip download failed: {' '.join(last)[:300]}")
    wheels = sorted(p for p in os.listdir(dest) if p.endswith(".whl"))
    if len(wheels) != 1:
        raise InputError(f"{item.value}: pip download wrote {len(wheels)} wheels, expected one")
    return os.path.join(dest, wheels[0])


def wheel_name(path: str) -> tuple[str, str, str]:
    """(package, version, architecture) from a wheel's file name (PEP 427; names normalised as PEP 503)."""
    m = _WHEEL_NAME.match(os.path.basename(path))
    if m is None:
        raise InputError(f"{path}: not a wheel file name (name-version-python-abi-platform.whl)")
    plat = m["plat"]
    arch = "aarch64" if "aarch64" in plat else "x86_64" if "x86_64" in plat else plat.rsplit("_", 1)[-1]
    return _normalise(m["name"]), m["version"], arch


def directory_name(path: str) -> tuple[str, str]:
    """(package, version) of a directory: its ``*.dist-info`` (an extracted wheel), else its name."""
    try:
        infos = sorted(m for m in os.listdir(path) if _DIST_INFO.match(m))
    except OSError as err:
        raise InputError(f"{path}: {err.strerror or err}") from err
    if infos:
        m = _DIST_INFO.match(infos[0])
        assert m is not None
        return _normalise(m["name"]), m["version"]
    return os.path.basename(os.path.abspath(path)), "-"


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def settings_of(item: WorkItem) -> str:
    """What, beside the input's bytes, decides what is stored for it: tool version and member filter."""
    from uk_depscan import __version__

    parts = [f"uk-depscan {__version__}", *(f"include {p}" for p in item.include)]
    parts += [f"exclude {p}" for p in item.exclude]
    return "; ".join(parts)


def directory_content(path: str, include: tuple[str, ...], exclude: tuple[str, ...]) -> str:
    """The identity of a directory input: sha256 over its sorted (member, object identity) pairs."""
    from uk_depscan.inputs import collect_inputs

    select = MemberFilter(include, exclude) if include or exclude else None
    h = hashlib.sha256()
    with collect_inputs([path], select=select) as inputs:
        members = sorted((os.path.relpath(t.path, path), object_identity(t.path).sha256) for t in inputs.targets)
    for member, digest in members:
        h.update(os.fsencode(member) + b"\0" + digest.encode("ascii") + b"\n")
    return "sha256:" + h.hexdigest()


def gaps_for(
    reach: Iterable[ReachFact], arch: str, table: UnikraftTable, priors: Mapping[str, LoupePrior]
) -> tuple[GapRow, ...]:
    """A target's gaps against one release: the same model as ``uk-depscan scan`` on the
    binary-compatibility route (uk_depscan.pipeline.target_gaps), from the stored facts."""
    linux = load_linux_table(arch)
    names: dict[str, tuple[ReachPath, Breadth | None]] = {}
    for f in reach:
        if f.name not in linux:
            continue
        breadth = (
            Breadth(f.own_sites, f.imports or 0, f.narrowest, f.narrowest_size or 0)
            if f.own_sites is not None
            else None
        )
        names[f.name] = (ReachPath(f.path), breadth)
    route = "binary-compat"
    gaps, _plan = plan_kconfig(assess_all(names, table.for_route(route), priors), table, route, priors, names)
    return tuple(
        GapRow(
            g.name,
            g.status.value,
            g.action.value,
            g.tier.value,
            g.kconfig,
            g.path.value,
            g.evidence.value,
            round(g.likelihood, 6),
        )
        for g in gaps
    )


def reach_facts(report: TargetReport) -> tuple[ReachFact, ...]:
    from uk_depscan.pipeline import reach_paths

    if report.syscalls is None:
        return ()
    out = []
    for name, (path, b) in sorted(reach_paths(report.syscalls).items()):
        if b is None:
            out.append(ReachFact(name, path.value))
        else:
            out.append(ReachFact(name, path.value, b.own_sites, b.imports, b.narrowest, b.narrowest_size))
    return tuple(out)


def export_summaries(path: str, limit: int) -> tuple[int, bool, tuple[ExportSummary, ...]]:
    """The object's per-export summary, as the shipped libc summaries hold it (its own code: normal
    paths, and failure-only paths apart), from the scan the analysis has just cached.

    Returns (exported functions, whether each was summarised, the summaries).  Every export costs
    one call-graph walk (~3 ms in libtorch_cpu.so, whose 60 481 exports would take minutes against
    seconds for its whole analysis), so above ``limit`` exports only ``<entry>``, ``<init>`` and
    ``<all>`` are summarised.  Entries reaching no syscall are the absence of a row."""
    from uk_depscan.elf.file import open_elf
    from uk_depscan.syscalls.reach import EngineSummary
    from uk_depscan.syscalls.scan import scan_library
    from uk_depscan.syscalls.summaries import ALL, ENTRY, INIT

    with open_elf(path) as elf:
        summary = EngineSummary(elf.name, elf, scan_library(elf))
        exports = sorted({k for k, _ in summary.scan.exports})
        complete = len(exports) <= limit
        out = []
        for key in sorted({ENTRY, INIT, ALL, *(exports if complete else ())}):
            reach = summary.reach(key)
            if reach is None:
                continue
            normal = sorted({s.number for s in reach.sites if not s.failure})
            failure = sorted({s.number for s in reach.sites if s.failure} - set(normal))
            if normal or failure:
                out.append(ExportSummary(key, tuple(normal), tuple(failure)))
    return len(exports), complete, tuple(out)


def analyse(item: WorkItem) -> InputResult | InputFailure:
    """The worker entry point: never raises for bad input (an :class:`InputFailure` instead)."""
    try:
        if item.kind is InputKind.SPEC:
            # the project's private, flock-ed temporary directory: a killed worker's download is
            # swept by the next run (uk_depscan.cleanup), like a wheel's extraction directory
            with locked_tempdir() as tmp:
                return _analyse_path(item, download_spec(item, tmp))
        return _analyse_path(item, item.value)
    except DepscanError as err:
        return InputFailure(item, str(err))


def _analyse_path(item: WorkItem, path: str) -> InputResult:
    from uk_depscan.inputs import collect_inputs
    from uk_depscan.loader.paths import SearchConfig
    from uk_depscan.pipeline import Options, analyze_target
    from uk_depscan.syscalls.memos import save_all as save_memos

    start = time.perf_counter()
    select = MemberFilter(item.include, item.exclude) if item.include or item.exclude else None
    if os.path.isdir(path):
        package, version = directory_name(path)
        arch = ""
        content = directory_content(path, item.include, item.exclude)
    else:
        package, version, arch = wheel_name(path)
        content = str(object_identity(path))
    tables = [load_unikraft_table(r) for r in item.releases]
    priors = load_loupe_priors()
    config, options = SearchConfig(), Options()
    targets: list[TargetFacts] = []
    with collect_inputs([path], select=select) as inputs:
        skipped = [(_member(s.path, path), s.reason) for s in inputs.skipped]
        for target in inputs.targets:
            member = _member(target.display, path)
            try:
                report = analyze_target(target.path, target.display, config, inputs, options)
                if report.syscalls is None or report.sha256 is None:
                    skipped.append((member, "architecture not analysed for syscalls"))
                    continue
                n_exports, complete, exports = export_summaries(target.path, item.export_limit)
            except MemoryError:
                skipped.append((member, "not enough memory to analyse it"))
                continue
            except DepscanError as err:
                skipped.append((member, str(err).removeprefix(f"{target.display}: ")))
                continue
            reach = reach_facts(report)
            a = report.syscalls.arch.value
            obj = ObjectFacts(
                report.sha256, os.stat(target.path).st_size, a, report.elf.soname, n_exports, complete, exports
            )
            gaps = tuple((tb.release, tb.commit, gaps_for(reach, a, tb, priors)) for tb in tables)
            targets.append(
                TargetFacts(member, obj, report.syscalls.libc_model.value, report.syscalls.unknown_sites, reach, gaps)
            )
    save_memos()  # the reaches and chain paths computed for these targets (uk_depscan.syscalls.memos)
    if not arch:
        arch = ",".join(sorted({t.obj.arch for t in targets})) or "-"
    return InputResult(
        item,
        content,
        os.path.basename(os.path.abspath(path)),
        package,
        version,
        arch,
        tuple(sorted(targets, key=lambda t: t.member)),
        tuple(sorted(skipped)),
        time.perf_counter() - start,
    )


def _member(display: str, root: str) -> str:
    """The member path inside the wheel (``wheel!/a/b.so``) or directory, POSIX, no leading slash."""
    if "!" in display and display.startswith(root):
        return display.split("!", 1)[1].lstrip("/")
    rel = os.path.relpath(display, root) if os.path.isabs(display) == os.path.isabs(root) else display
    return Path(rel).as_posix()
