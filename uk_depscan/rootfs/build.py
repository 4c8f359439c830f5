"""``build_rootfs()``: targets → closures with dlopen targets → layout → tree, archive or manifest.

Nothing scanned is executed: the closure comes from the loader emulation, the dlopen targets from
``.note.dlopen`` and library-name literals (:func:`uk_depscan.elf.literals.below_syscall`, only
for objects that import ``dlopen``), the guest's library lookup is an ``ld.so.cache`` written here
(:mod:`uk_depscan.rootfs.ldcache`), the pseudo-files are checked against the generated table.

Outputs are built beside their destination and renamed over it only when complete
(:func:`uk_depscan.cleanup.staged_output`), so an interrupted run leaves the previous output or
none.  A directory output is replaced (``force``) only when it is a root filesystem this tool made
(its ``.manifest.json`` says so): ``--force`` never deletes a directory of the user's.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import stat
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from uk_depscan import __version__
from uk_depscan.cleanup import locked_tempdir, staged_output
from uk_depscan.elf.file import ElfFile
from uk_depscan.elf.literals import below_syscall
from uk_depscan.errors import DepscanError, UsageError
from uk_depscan.inputs import Inputs, MemberFilter, Target, WheelLimits, collect_inputs
from uk_depscan.loader.paths import SearchConfig
from uk_depscan.loader.resolve import resolve_with_dlopen
from uk_depscan.model import Attempt, BelowSyscall
from uk_depscan.rootfs import cpio
from uk_depscan.rootfs.layout import DEFAULT_APP_DIR, Closure, Layout, Placed, found_via_text, plan_layout
from uk_depscan.rootfs.ldcache import build_cache
from uk_depscan.rootfs.model import (
    MANIFEST_KIND,
    DlopenRecord,
    DlopenStatus,
    Entry,
    EntryKind,
    Lookup,
    LookupMethod,
    Manifest,
    MissingRecord,
    OutputKind,
    PseudoFile,
    Refusal,
    Role,
    Verification,
)
from uk_depscan.rootfs.pseudofiles import PseudoTable, assess_pseudo_file, load_pseudofile_table
from uk_depscan.rootfs.safefs import Refused, TreeWriter, hash_fd, open_in_tree
from uk_depscan.rootfs.verify import verify_tree

CACHE_PATH, CONF_PATH = "/etc/ld.so.cache", "/etc/ld.so.conf"
DIR_MODE, LOOKUP_MODE = 0o755, 0o644


@dataclass(frozen=True)
class RootfsOptions:
    app_dir: str = DEFAULT_APP_DIR
    unikraft: str | None = None
    pseudo_table: Path | None = None
    mtime: int = 0
    wheel_limits: WheelLimits | None = None
    select: MemberFilter | None = None


@dataclass(frozen=True)
class OutputSpec:
    kind: OutputKind
    path: Path | None = None
    force: bool = False

    @classmethod
    def for_path(cls, path: Path | None, *, manifest_only: bool = False, force: bool = False) -> OutputSpec:
        if manifest_only or path is None:
            return cls(OutputKind.NONE, path, force)
        return cls(OutputKind.CPIO if path.name.endswith(".cpio") else OutputKind.DIRECTORY, path, force)


def manifest_paths(out: Path) -> tuple[Path, Path]:
    """Where the manifests of output ``out`` go: beside it, never inside the image."""
    return out.parent / f"{out.name}.manifest.json", out.parent / f"{out.name}.manifest.txt"


def source_date_epoch(environ: dict[str, str] | None = None) -> int:
    """``SOURCE_DATE_EPOCH`` (reproducible-builds.org) when set to a valid time, else 0."""
    value = (environ if environ is not None else os.environ).get("SOURCE_DATE_EPOCH", "")
    if not value:
        return 0
    if not (value.isascii() and value.isdigit()) or int(value) > 0xFFFFFFFF:  # cpio's mtime field is 32 bits
        raise UsageError(f"SOURCE_DATE_EPOCH={value!r}: not a time in seconds (0 to 4294967295)")
    return int(value)


# -- closures ---------------------------------------------------------------------------------------
def _closure(target: Target, config: SearchConfig) -> Closure:
    """The target's closure with every dlopen target, and what each object names below the syscalls."""
    below: dict[int, BelowSyscall] = {}

    def names(index: int, elf: ElfFile) -> Iterable[str]:
        below[index] = b = below_syscall(elf)
        return [t.name for t in b.dlopen_targets]

    result, edges = resolve_with_dlopen(target.path, config, names, display_name=target.path)
    return Closure(target, result, edges, below)


def check_output(out: OutputSpec) -> None:
    """Refuse, before any work, to overwrite what is not ours or not asked to be replaced."""
    if out.path is None or out.kind is OutputKind.NONE:
        return
    manifest, _ = manifest_paths(out.path)
    exists = os.path.lexists(out.path) or os.path.lexists(manifest)
    if exists and not out.force:
        raise UsageError(f"{out.path}: already exists (use --force to replace it)")
    if not os.path.lexists(out.path):
        if not os.path.isdir(out.path.parent or "."):
            raise UsageError(f"{out.path}: its directory does not exist")
        return
    if out.kind is OutputKind.CPIO:
        if not stat.S_ISREG(os.lstat(out.path).st_mode):
            raise UsageError(f"{out.path}: exists and is not a regular file")
        return
    if not os.path.isdir(out.path) or os.path.islink(out.path) or not _ours(manifest):
        raise UsageError(
            f"{out.path}: exists and is not a root filesystem uk-depscan wrote (no {manifest.name} naming it); "
            "remove it yourself"
        )


def _ours(manifest: Path) -> bool:
    try:
        doc = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and doc.get("kind") == MANIFEST_KIND


# -- the library lookup -------------------------------------------------------------------------------
def library_lookup(closures: list[Closure], layout: Layout, warnings: list[str]) -> Lookup:
    """Every name the loader looked up (DT_NEEDED, dlopen, soname) with the in-guest path it found,
    in load order; the first answer for a name wins, as the host's resolution did."""
    chosen: dict[str, str] = {}
    for ci, c in enumerate(closures):
        pairs = [(e.needed_name, e.target) for e in c.result.tree.edges] + [(e.name, e.target) for e in c.dlopen]
        pairs += [(o.soname, o.index) for o in c.result.tree.objects if o.soname]
        for name, idx in pairs:
            guest = layout.guest_of.get((ci, idx)) if idx is not None else None
            if guest is None or not name or "/" in name:
                continue
            if chosen.setdefault(name, guest) != guest:
                warnings.append(f"ld.so.cache: {name} names {chosen[name]} and {guest}; the cache keeps {chosen[name]}")
    entries = tuple(sorted(chosen.items()))
    dirs = tuple(sorted({posixpath.dirname(g) for _, g in entries}))
    detail = (
        f"{CACHE_PATH} written for this tree ({len(entries)} names; ldconfig's format, glibc 2.32+); "
        f"{CONF_PATH} lists its directories so `ldconfig -r` would rebuild it"
    )
    return Lookup(LookupMethod.LD_SO_CACHE, CACHE_PATH, entries, dirs, detail)


# -- records ----------------------------------------------------------------------------------------
def _tried(attempts: tuple[Attempt, ...], inputs: Inputs) -> tuple[Attempt, ...]:
    return tuple(Attempt(inputs.display(a.path), a.outcome) for a in attempts)


def dlopen_records(closures: list[Closure], layout: Layout, inputs: Inputs) -> tuple[DlopenRecord, ...]:
    out: dict[tuple[str, str], DlopenRecord] = {}
    for ci, c in enumerate(closures):
        objs, needed = c.result.tree.objects, {e.target for e in c.result.tree.edges}
        for e in c.dlopen:
            caller = layout.guest_of.get((ci, e.caller))
            if caller is None:
                continue
            below = c.below.get(e.caller)
            evidence = next((t.source for t in below.dlopen_targets if t.name == e.name), "?") if below else "?"
            if e.target is None:
                miss = next(
                    (m for m in c.result.tree.missing if m.needed_by == e.caller and m.needed_name == e.name), None
                )
                rec = DlopenRecord(caller, e.name, evidence, DlopenStatus.NOT_FOUND,
                                   reason=inputs.display(miss.reason) if miss else "not found",
                                   tried=_tried(miss.tried, inputs) if miss else ())  # fmt: skip
            else:
                t = objs[e.target]
                fresh = t.loader == e.caller and t.needed_name == e.name and e.target not in needed
                rec = DlopenRecord(
                    caller,
                    e.name,
                    evidence,
                    DlopenStatus.FOUND if fresh else DlopenStatus.LOADED,
                    layout.guest_of.get((ci, e.target)),
                    found_via_text(t) if fresh else "already in the closure",
                )
            out.setdefault((caller, e.name), rec)
    return tuple(out[k] for k in sorted(out))


def missing_records(closures: list[Closure], layout: Layout, inputs: Inputs) -> tuple[MissingRecord, ...]:
    out: dict[tuple[str, str], MissingRecord] = {}
    for ci, c in enumerate(closures):
        dl = {(e.caller, e.name) for e in c.dlopen if e.target is None}
        for m in c.result.tree.missing:
            user = layout.guest_of.get((ci, m.needed_by))
            if user is None or (m.needed_by, m.needed_name) in dl:
                continue
            rec = MissingRecord(m.needed_name, user, inputs.display(m.reason), _tried(m.tried, inputs))
            out.setdefault((user, m.needed_name), rec)
    return tuple(out[k] for k in sorted(out))


def pseudo_records(closures: list[Closure], layout: Layout, table: PseudoTable) -> tuple[PseudoFile, ...]:
    refs: dict[str, set[str]] = {}
    for ci, c in enumerate(closures):
        for idx, b in c.below.items():
            guest = layout.guest_of.get((ci, idx))
            for p in b.pseudo_files:
                if guest is not None:
                    refs.setdefault(p, set()).add(guest)
    return tuple(assess_pseudo_file(p, refs[p], table) for p in sorted(refs))


# -- materialising ------------------------------------------------------------------------------------
Sink = Callable[[Placed, int, int], tuple[int, str]]  # (placement, source fd, mode) -> (size, sha256)


def _lookup_files(lookup: Lookup, machine: int) -> dict[str, bytes]:
    cache = build_cache([(os.fsencode(n), os.fsencode(g)) for n, g in lookup.entries], machine)
    conf = "".join(f"{d}\n" for d in lookup.directories).encode("utf-8", "surrogateescape")
    return {CACHE_PATH: cache, CONF_PATH: conf}


def materialize(
    layout: Layout, extra: dict[str, bytes], sink: Sink, writer: TreeWriter | None, warnings: list[str]
) -> tuple[list[Entry], list[Refusal]]:
    """Read every placement inside its source tree, hand it to ``sink``; the entries as written."""
    entries: list[Entry] = []
    refused = [Refusal(s, g, r) for s, g, r in layout.refused]
    made: set[str] = set()

    def parents(path: str) -> None:
        parts = path.split("/")[1:-1]
        for i in range(1, len(parts) + 1):
            d = "/" + "/".join(parts[:i])
            if d not in made:
                made.add(d)
                if writer is not None:
                    writer.mkdir(d, DIR_MODE)
                entries.append(Entry(d, EntryKind.DIRECTORY, Role.PARENT, DIR_MODE, 0))

    for guest in sorted(set(layout.placed) | set(extra), key=os.fsencode):
        if guest in extra:
            parents(guest)
            data = extra[guest]
            if writer is not None:
                writer.write_bytes(guest, data, LOOKUP_MODE)
            entries.append(
                Entry(guest, EntryKind.FILE, Role.LOOKUP, LOOKUP_MODE, len(data), hashlib.sha256(data).hexdigest())
            )
            continue
        p = layout.placed[guest]
        needed_by = tuple(sorted(p.needed_by))
        if p.link is not None:
            parents(guest)
            if writer is not None:
                writer.symlink(guest, p.link)
            entries.append(
                Entry(guest, EntryKind.SYMLINK, p.role, 0o777, 0, None, p.link, p.shown, p.found_via, needed_by)
            )
            continue
        try:
            fd, _ = open_in_tree(p.tree, p.rel, p.shown)
        except Refused as err:
            refused.append(Refusal(p.shown, guest, str(err).removeprefix(f"{p.shown}: ")))
            continue
        except OSError as err:
            refused.append(Refusal(p.shown, guest, f"cannot read: {err.strerror or err}"))
            continue
        try:
            st = os.fstat(fd)
            mode = stat.S_IMODE(st.st_mode) & 0o777
            if not _host_agrees(p, st):
                warnings.append(
                    f"{p.shown}: read inside its source tree {p.tree.base} (symbolic links resolved there); "
                    "the host path leads to another file, which the loader analysis read"
                )
            parents(guest)
            size, digest = sink(p, fd, mode)
        finally:
            os.close(fd)
        entries.append(Entry(guest, EntryKind.FILE, p.role, mode, size, digest, None, p.shown, p.found_via, needed_by))
    return sorted(entries, key=lambda e: os.fsencode(e.path)), refused


def _host_agrees(p: Placed, st: os.stat_result) -> bool:
    """Is the file read inside the tree the one the host's path resolution gives (what the loader
    stage analysed)?  They differ only for a sysroot whose absolute symlinks name host files."""
    try:
        host = os.stat(os.path.join(p.tree.base, p.rel))
    except OSError:
        return False
    return (host.st_dev, host.st_ino) == (st.st_dev, st.st_ino)


def _hash_sink(_p: Placed, fd: int, _mode: int) -> tuple[int, str]:
    return hash_fd(fd)


# -- the whole run ------------------------------------------------------------------------------------
def build_rootfs(paths: list[str], config: SearchConfig, options: RootfsOptions, out: OutputSpec) -> Manifest:
    """Everything ``uk-depscan rootfs`` does, except rendering the manifest."""
    check_output(out)
    table = load_pseudofile_table(options.unikraft, options.pseudo_table)
    warnings: list[str] = []
    with ExitStack() as stack:
        inputs = stack.enter_context(collect_inputs(paths, limits=options.wheel_limits, select=options.select))
        warnings += [f"{inputs.display(s.path)}: skipped: {s.reason}" for s in inputs.skipped]
        closures: list[Closure] = []
        stack.callback(_close, closures)
        for t in inputs.targets:
            closures.append(_closure(t, config))
        machine = _one_machine(closures)
        arch = closures[0].result.files[0].machine_name
        layout = plan_layout(closures, config, inputs, options.app_dir)
        warnings += layout.warnings
        lookup = library_lookup(closures, layout, warnings)
        extra = _lookup_files(lookup, machine)
        records = (dlopen_records(closures, layout, inputs), missing_records(closures, layout, inputs))
        pseudo = pseudo_records(closures, layout, table)
        names = _dlopen_names(closures, layout)
        entries, refused, verification = _write(out, layout, extra, closures, names, options.mtime, warnings)
        targets = tuple(
            (t.display, layout.guest_of[ci, 0]) for ci, t in enumerate(inputs.targets) if (ci, 0) in layout.guest_of
        )
    return Manifest(
        __version__,
        arch,
        posixpath.normpath("/" + options.app_dir.strip("/")),
        options.mtime,
        out.kind,
        targets,
        tuple(entries),
        lookup,
        records[0],
        pseudo,
        table.ref,
        records[1],
        tuple(refused),
        verification,
        tuple(warnings),
    )


def _close(closures: list[Closure]) -> None:
    for c in closures:
        c.result.close()


def _one_machine(closures: list[Closure]) -> int:
    machines = {c.result.files[0].e_machine for c in closures}
    if len(machines) > 1:
        names = sorted({c.result.files[0].machine_name for c in closures})
        raise UsageError(f"targets of several architectures ({', '.join(names)}): one root filesystem holds one")
    return int(machines.pop())


def _dlopen_names(closures: list[Closure], layout: Layout) -> dict[str, list[str]]:
    names: dict[str, list[str]] = {}
    for ci, c in enumerate(closures):
        for e in c.dlopen:
            guest = layout.guest_of.get((ci, e.caller))
            if guest is not None and e.name not in names.setdefault(guest, []):
                names[guest].append(e.name)
    return names


def _write(
    out: OutputSpec,
    layout: Layout,
    extra: dict[str, bytes],
    closures: list[Closure],
    names: dict[str, list[str]],
    mtime: int,
    warnings: list[str],
) -> tuple[list[Entry], list[Refusal], Verification]:
    if out.kind is OutputKind.NONE or out.path is None:
        entries, refused = materialize(layout, extra, _hash_sink, None, warnings)
        return entries, refused, Verification(False, 0, (), "not checked: no tree written (manifest only)")
    try:
        with ExitStack() as stack:
            if out.kind is OutputKind.CPIO:
                tree = Path(stack.enter_context(locked_tempdir("uk-depscan-rootfs-"))) / "tree"
            else:
                tree = stack.enter_context(staged_output(out.path, "new"))
            os.mkdir(tree, 0o755)
            writer = TreeWriter(str(tree), mtime)
            try:
                entries, refused = materialize(
                    layout, extra, lambda p, fd, mode: writer.write_file(p.guest, fd, mode), writer, warnings
                )
                writer.finish()
            finally:
                writer.close()
            verification = verify_tree(str(tree), closures, layout, names)
            if out.kind is OutputKind.CPIO:
                staged = stack.enter_context(staged_output(out.path, "cpio"))
                with open(staged, "xb") as fh:
                    cpio.write_cpio(fh, cpio.tree_entries(str(tree)), mtime)
                os.replace(staged, out.path)
            else:
                _install_tree(tree, out.path, stack)
    except OSError as err:
        raise UsageError(f"{out.path}: cannot write: {err.strerror or err}") from err
    except ValueError as err:  # a name or size the archive format cannot hold
        raise DepscanError(f"{out.path}: {err}") from err
    return entries, refused, verification


def _install_tree(tree: Path, dest: Path, stack: ExitStack) -> None:
    if os.path.lexists(dest):  # check_output made sure it is a tree of ours
        old = stack.enter_context(staged_output(dest, "old"))
        os.rename(dest, old)
    os.rename(tree, dest)
