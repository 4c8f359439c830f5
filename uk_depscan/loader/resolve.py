"""Dependency resolution exactly as glibc's ld.so does it, without executing anything.

The walk imitates ``_dl_map_object_deps`` (glibc elf/dl-deps.c): breadth-first over DT_NEEDED
in order, each name first matched against already-loaded objects (``_dl_name_match_p``: the
name an object was loaded under, the DT_NEEDED strings that resolved to it, and its DT_SONAME),
then searched by ``_dl_map_object`` (elf/dl-load.c) in this order:

1. DT_RPATH of the object that needs it, then of *its* loader, on up to the root — skipped
   entirely when the needing object has DT_RUNPATH; an object with both ignores its DT_RPATH
   (elf/get-dynamic-info.h);
2. LD_LIBRARY_PATH (``--library-path``);
3. DT_RUNPATH of the needing object only (never inherited);
4. ld.so.cache (or, with ``--ld-so-conf``, the directories ldconfig would have cached);
5. the default directories — 4 and 5 skipped when the needing object has DF_1_NODEFLIB.

Every candidate goes through ``open_verify``'s checks: a wrong ELFCLASS or machine is skipped
and the search continues; any other header defect (not ELF, bad data encoding/version/OSABI,
wrong e_type or e_phentsize) makes ld.so stop with an error for that dependency, which is
recorded as a missing library with the reason rather than aborting the scan.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from uk_depscan.elf.file import ET_DYN, ET_EXEC, ElfFile, ElfIdent, open_elf, read_ident
from uk_depscan.errors import DepscanError
from uk_depscan.fs import pseudo_filesystem
from uk_depscan.loader.paths import (
    INTERPRETERS,
    SearchConfig,
    default_dirs,
    expand_tokens,
    read_ld_so_cache,
    read_ld_so_conf,
    split_path_list,
    starts_with_origin,
)
from uk_depscan.model import Attempt, FoundVia, LoadedObject, LoaderOutcome, LoadTree, MissingLibrary, NeededEdge

log = logging.getLogger(__name__)
DF_1_NODEFLIB = 0x800
# Candidates (and search-path entries) on procfs, sysfs & co. are decided by the filesystem the
# path resolves into (uk_depscan.fs), so `/tmp/x -> /proc/self`, $ORIGIN links and --root are caught.
NOT_SEARCHED_PSEUDO = "not searched: pseudo-filesystem"
# ld.so gives up at the first missing library; we search every DT_NEEDED to report them all, so a
# hostile object with tens of thousands of entries must not cost a directory search each.
MAX_NEEDED_SEARCHED = 1024

ROOT, DIRECT, RPATH, LD_LIBRARY_PATH, RUNPATH = (
    FoundVia.ROOT,
    FoundVia.DIRECT,
    FoundVia.RPATH,
    FoundVia.LD_LIBRARY_PATH,
    FoundVia.RUNPATH,
)
LD_SO_CACHE, LD_SO_CONF, DEFAULT, INTERPRETER = (
    FoundVia.LD_SO_CACHE,
    FoundVia.LD_SO_CONF,
    FoundVia.DEFAULT,
    FoundVia.INTERPRETER,
)


@dataclass
class LoadResult:
    """The tree plus the open ELF files behind it, for the analysis stages."""

    tree: LoadTree
    files: dict[int, ElfFile] = field(default_factory=dict)

    def close(self) -> None:
        """Close every file (their maps and derived tables go once nothing else holds them)."""
        for elf in self.files.values():
            elf.close()


@dataclass
class _Candidate:
    path: str
    via: FoundVia
    detail: str


class _Walk:
    def __init__(self, root: ElfFile, config: SearchConfig, display: str) -> None:
        self.config = config
        self.machine = root.e_machine
        self.elf_class = root.elf_class
        self.objects: list[LoadedObject] = []
        self.files: dict[int, ElfFile] = {}
        self.names: dict[str, int] = {}
        self.file_ids: dict[tuple[int, int], int] = {}
        self.edges: list[NeededEdge] = []
        self.missing: list[MissingLibrary] = []
        self.notes: list[str] = []
        self._next = 0  # the next object whose DT_NEEDED run() searches
        self._cache_dirs = self._cache_source()
        self._add(root, root.path.as_posix(), display, None, None, ROOT, "the scanned object", ())
        self.interp = root.interp or INTERPRETERS.get(self.machine)
        self._interp_names = self._interpreter_names()

    # -- bookkeeping ------------------------------------------------------------------------
    def _add(
        self,
        elf: ElfFile | None,
        path: str,
        shown: str,
        needed_name: str | None,
        loader: int | None,
        via: FoundVia,
        detail: str,
        tried: tuple[Attempt, ...],
        error: str | None = None,
    ) -> int:
        idx = len(self.objects)
        dyn = elf.dynamic if elf is not None and error is None else None
        depth = 0 if loader is None else self.objects[loader].depth + 1
        obj = LoadedObject(
            idx,
            shown,
            _real(path),
            needed_name,
            loader,
            depth,
            via,
            detail,
            dyn.soname if dyn else None,
            dyn.needed if dyn else (),
            dyn.rpath if dyn and dyn.runpath is None else None,
            dyn.runpath if dyn else None,
            elf.machine_name if elf else "?",
            elf.elf_class if elf else 0,
            elf.build_id if elf is not None and error is None else None,
            tried,
            error,
        )
        self.objects.append(obj)
        if elf is not None:
            self.files[idx] = elf
        for name in (path, shown, needed_name, obj.soname):
            if name:
                self.names.setdefault(name, idx)
        try:
            st = os.stat(path)
            self.file_ids.setdefault((st.st_dev, st.st_ino), idx)
        except OSError:
            pass
        return idx

    def _cache_source(self) -> tuple[str, dict[str, str] | list[str]]:
        conf = self.config.ld_so_conf
        if conf is None and self.config.use_cache:
            cache = read_ld_so_cache(self.config.in_root("/etc/ld.so.cache"), self.machine)
            if cache is not None:
                return LD_SO_CACHE, cache
        path = conf or self.config.in_root("/etc/ld.so.conf")
        return LD_SO_CONF, read_ld_so_conf(path, self.config) if os.path.exists(path) else []

    # -- the walk ---------------------------------------------------------------------------
    def run(self) -> None:
        """Breadth-first over DT_NEEDED; resumable: a later call continues with objects added since."""
        while self._next < len(self.objects):
            i = self._next
            for name in self._needed_to_search(self.objects[i]):
                self.edges.append(NeededEdge(i, name, self._map_object(name, i)))
            self._next += 1

    def _needed_to_search(self, obj: LoadedObject) -> list[str]:
        """DT_NEEDED in order without repeats (a repeat matches the first, found or not), capped."""
        names = list(dict.fromkeys(obj.needed))
        if len(names) > MAX_NEEDED_SEARCHED:
            self.notes.append(
                f"{obj.path}: {len(names)} distinct DT_NEEDED entries; only the first "
                f"{MAX_NEEDED_SEARCHED} were searched"
            )
            names = names[:MAX_NEEDED_SEARCHED]
        return names

    def _interpreter_names(self) -> set[str]:
        """Names under which rtld's own link map matches (rtld.c: l_name = PT_INTERP, plus its soname)."""
        if self.interp is None:
            return set()
        names = {self.interp, os.path.basename(self.interp)}
        if pseudo_filesystem(self.config.in_root(self.interp)):
            return names
        try:
            with open_elf(self.config.in_root(self.interp)) as rtld:
                dyn = rtld.dynamic
            if dyn is not None and dyn.soname:
                names.add(dyn.soname)
        except DepscanError:
            pass
        return names

    def _map_object(self, name: str, loader: int) -> int | None:
        if name in self.names:
            return self.names[name]
        if name in self._interp_names:
            return self._load_interpreter(name, loader)
        if "/" in name:
            # an absolute name is opened as is, i.e. inside the root ld.so runs in (a chroot, the guest)
            path = self.config.in_root(name) if os.path.isabs(name) else name
            cands = iter([_Candidate(path, DIRECT, "DT_NEEDED contains a slash")])
        else:
            cands = self._search_order(name, loader)
        tried: list[Attempt] = []
        for cand in cands:
            kind, outcome = self._verify(cand.path)
            tried.append(Attempt(cand.path, outcome))
            if kind is LoaderOutcome.FATAL:
                self.missing.append(
                    MissingLibrary(name, loader, f"ld.so stops with an error: {cand.path}: {outcome}", tuple(tried))
                )
                return None
            if kind is LoaderOutcome.OK:
                return self._load(name, loader, cand, tuple(t for t in tried[:-1] if t.outcome != "absent"))
        self.missing.append(MissingLibrary(name, loader, _not_found_reason(tried), tuple(tried)))
        return None

    def _load(self, name: str, loader: int, cand: _Candidate, tried: tuple[Attempt, ...]) -> int:
        try:
            st = os.stat(cand.path)
            same = self.file_ids.get((st.st_dev, st.st_ino))
        except OSError:
            same = None
        if same is not None:  # dl-load.c: the same file under another name is not loaded twice
            self.names.setdefault(name, same)
            return same
        try:
            elf = open_elf(cand.path)
            # parse now what _add reads, so a corrupt object becomes a node with a reason
            elf.dynamic  # noqa: B018
            elf.build_id  # noqa: B018
            error = None
        except DepscanError as err:
            error = str(err)
            elf = None
        return self._add(elf, cand.path, cand.path, name, loader, cand.via, cand.detail, tried, error)

    def _search_order(self, name: str, loader: int) -> Iterator[_Candidate]:
        obj = self.objects[loader]
        if obj.runpath is None:
            yield from self._rpath_chain(name, loader)
        for d in self.config.library_path:
            for c in self._dirs_of(d, self.objects[0], LD_LIBRARY_PATH, "--library-path"):
                yield _Candidate(os.path.join(c, name), LD_LIBRARY_PATH, f"LD_LIBRARY_PATH entry {d}")
        if obj.runpath is not None:
            for d in self._dirs_of(obj.runpath, obj, RUNPATH, ""):
                yield _Candidate(os.path.join(d, name), RUNPATH, f"DT_RUNPATH of {_short(obj)} ({obj.runpath})")
        nodeflib = self._flags_1(loader) & DF_1_NODEFLIB
        if not nodeflib:
            yield from self._cache_candidates(name)
            for d in default_dirs(self.config, self.machine):
                yield _Candidate(os.path.join(self.config.in_root(d), name), DEFAULT, f"default directory {d}")

    def _rpath_chain(self, name: str, loader: int) -> Iterator[_Candidate]:
        # DT_RPATH of the loading object, then of its loader, up to the root (dl-load.c)
        cur: int | None = loader
        seen_root = False
        while cur is not None:
            o = self.objects[cur]
            seen_root |= cur == 0
            if o.rpath is not None:
                for d in self._dirs_of(o.rpath, o, RPATH, ""):
                    yield _Candidate(os.path.join(d, name), RPATH, f"DT_RPATH of {_short(o)} ({o.rpath})")
            cur = o.loader
        root = self.objects[0]
        if not seen_root and root.rpath is not None:
            for d in self._dirs_of(root.rpath, root, RPATH, ""):
                yield _Candidate(os.path.join(d, name), RPATH, f"DT_RPATH of {_short(root)} ({root.rpath})")

    def _origin(self, owner: LoadedObject) -> str:
        """$ORIGIN as glibc 2.36 computes it (checked against ld.so in the fixture tests).

        An executed program gets the directory of /proc/self/exe, i.e. of its real path.  Every
        other object (and a shared-library root, loaded like dlopen(path)) gets the directory of
        the path ld.so constructed for it, *without* resolving symlinks (dl-object.c
        _dl_new_object); a relative name stays relative to the working directory.
        """
        if owner.index == 0 and self.files[0].interp is not None:
            return os.path.dirname(owner.realpath)
        path = self.files[owner.index].path.as_posix() if owner.index == 0 else owner.path
        # ld.so would prefix the working directory to a relative name; the files found are the same
        # either way, and keeping it relative keeps reports free of the checkout's location.
        return os.path.dirname(path) or "."

    def _dirs_of(self, value: str, owner: LoadedObject, via: str, detail: str) -> list[str]:
        origin = self._origin(owner)
        out = []
        for entry in split_path_list(value):
            expanded = expand_tokens(entry, origin, self.config, self.machine)
            if expanded is None:
                continue
            if not starts_with_origin(entry) and os.path.isabs(expanded):
                expanded = self.config.in_root(expanded)
            out.append(expanded.rstrip("/") or "/")
        return out

    def _cache_candidates(self, name: str) -> Iterator[_Candidate]:
        kind, source = self._cache_dirs
        if kind == LD_SO_CACHE:
            assert isinstance(source, dict)
            if name in source:
                yield _Candidate(self.config.in_root(source[name]), LD_SO_CACHE, "ld.so.cache")
            return
        for d in source:
            assert isinstance(d, str)
            yield _Candidate(os.path.join(self.config.in_root(d), name), LD_SO_CONF, f"ld.so.conf directory {d}")

    def _flags_1(self, idx: int) -> int:
        elf = self.files.get(idx)
        return elf.dynamic.flags_1 if elf is not None and elf.dynamic else 0

    def _verify(self, path: str) -> tuple[LoaderOutcome, str]:
        pseudo = pseudo_filesystem(path)
        if pseudo:  # /proc/self/exe would be the scanner itself: never opened, the search goes on
            return LoaderOutcome.SKIP, f"{NOT_SEARCHED_PSEUDO} ({pseudo})"
        if not os.path.lexists(path) or not os.path.exists(path):
            return (
                (LoaderOutcome.ABSENT, "absent")
                if not os.path.lexists(path)
                else (LoaderOutcome.SKIP, _broken_link(path))
            )
        if os.path.isdir(path):
            return LoaderOutcome.FATAL, "cannot read file data: Is a directory"
        ident = read_ident(path)
        if isinstance(ident, str):
            return (LoaderOutcome.SKIP, ident) if ident.startswith("cannot read") else (LoaderOutcome.FATAL, ident)
        return verify_ident(ident, self.elf_class, self.machine)

    def _load_interpreter(self, name: str, loader: int) -> int | None:
        assert self.interp is not None
        path = self.config.in_root(self.interp)
        kind, outcome = self._verify(path)
        if kind is not LoaderOutcome.OK:
            self.notes.append(f"interpreter {self.interp} not available in the root: {outcome}")
            self.missing.append(
                MissingLibrary(name, loader, f"interpreter {self.interp}: {outcome}", (Attempt(path, outcome),))
            )
            return None
        detail = "PT_INTERP" if self.files[0].interp else "the architecture's standard interpreter"
        idx = self._load(name, loader, _Candidate(path, INTERPRETER, detail), ())
        for n in self._interp_names:
            self.names.setdefault(n, idx)
        return idx


def verify_ident(ident: ElfIdent, elf_class: int, machine: int) -> tuple[LoaderOutcome, str]:
    """``open_verify`` (glibc elf/dl-load.c) on a candidate's ELF header, for an LE 64/32-bit loader."""
    if ident.ei_class != (2 if elf_class == 64 else 1):
        return LoaderOutcome.SKIP, f"wrong ELF class: ELFCLASS{64 if ident.ei_class == 2 else 32}"
    if ident.ei_data != 1:
        return LoaderOutcome.FATAL, "ELF file data encoding not little-endian"
    if ident.ei_version != 1:
        return LoaderOutcome.FATAL, "ELF file version ident does not match current one"
    if ident.ei_osabi not in (0, 3):
        return LoaderOutcome.FATAL, "ELF file OS ABI invalid"
    if ident.ei_abiversion != 0 and not (ident.ei_osabi == 3 and ident.ei_abiversion < 5):
        return LoaderOutcome.FATAL, "ELF file ABI version invalid"
    if not ident.pad_zero:
        return LoaderOutcome.FATAL, "nonzero padding in e_ident"
    if ident.e_version != 1:
        return LoaderOutcome.FATAL, "ELF file version does not match current one"
    if ident.e_machine != machine:
        from uk_depscan.elf.file import MACHINE_NAMES

        return LoaderOutcome.SKIP, f"wrong machine: {MACHINE_NAMES.get(ident.e_machine, ident.e_machine)}"
    if ident.e_type not in (ET_DYN, ET_EXEC):
        return LoaderOutcome.FATAL, "only ET_DYN and ET_EXEC can be loaded"
    if ident.e_phentsize != (56 if elf_class == 64 else 32):
        return LoaderOutcome.FATAL, "ELF file's phentsize not the expected size"
    return LoaderOutcome.OK, "found"


def _broken_link(path: str) -> str:
    """A symlink ld.so cannot open (ENOENT or ELOOP): it skips it and searches on."""
    try:
        os.stat(path)
    except OSError as err:
        if err.errno == errno.ELOOP:
            return "symbolic link loop"
    return "dangling symlink"


def _real(path: str) -> str:
    """The resolved path; relative when the given one is, so reports do not embed the checkout's location."""
    real = os.path.realpath(path)
    return real if os.path.isabs(path) else os.path.relpath(real)


def _not_found_reason(tried: list[Attempt]) -> str:
    rejected = [t for t in tried if t.outcome not in ("absent",)]
    if any(t.outcome.startswith("wrong ELF class") for t in rejected):
        return "not found (only wrong-class candidates: " + ", ".join(t.path for t in rejected) + ")"
    if rejected:
        return "not found (rejected: " + "; ".join(f"{t.path}: {t.outcome}" for t in rejected) + ")"
    return f"not found in {len(tried)} places"


def _short(obj: LoadedObject) -> str:
    return obj.soname or os.path.basename(obj.path)


def resolve_tree(
    path: str | os.PathLike[str], config: SearchConfig | None = None, display_name: str | None = None
) -> LoadResult:
    """Resolve the DT_NEEDED closure of ``path``; only a bad root raises."""
    config = config or SearchConfig()
    root = open_elf(path, display_name=display_name)
    root.dynamic  # noqa: B018 - a corrupt root is fatal, dependencies are not
    walk = _Walk(root, config, display_name or str(path))
    walk.run()
    return LoadResult(_tree_of(walk, config), walk.files)


@dataclass(frozen=True)
class DlopenEdge:
    """``dlopen(name)`` called from object ``caller``: the object it maps (None: not found, and
    then ``tree.missing`` has the entry for ``name`` needed by ``caller``, with the paths tried)."""

    caller: int
    name: str
    target: int | None


def resolve_with_dlopen(
    path: str | os.PathLike[str],
    config: SearchConfig | None,
    dlopen_names: Callable[[int, ElfFile], Iterable[str]],
    display_name: str | None = None,
) -> tuple[LoadResult, tuple[DlopenEdge, ...]]:
    """The DT_NEEDED closure plus what the objects ``dlopen``: ``dlopen_names(index, elf)`` names
    the targets object ``index`` opens; each is mapped as glibc's ``dlopen`` maps it from that
    caller — ``_dl_map_object`` with the caller as loader (dl-open.c dl_open_worker: the caller's
    link map from the return address), so the same order as for DT_NEEDED: an already loaded object
    of that name, then the caller's DT_RPATH chain (unless it has DT_RUNPATH), LD_LIBRARY_PATH, the
    caller's DT_RUNPATH, the cache, the default directories; a name with a slash is opened as is.
    Each target brings its own DT_NEEDED closure, and its own dlopen targets, to a fixed point."""
    config = config or SearchConfig()
    root = open_elf(path, display_name=display_name)
    root.dynamic  # noqa: B018 - a corrupt root is fatal, dependencies are not
    walk = _Walk(root, config, display_name or str(path))
    walk.run()
    edges: list[DlopenEdge] = []
    done: set[tuple[int, str]] = set()
    i = 0
    while i < len(walk.objects):
        elf = walk.files.get(i)
        if elf is not None and walk.objects[i].error is None:
            for name in dlopen_names(i, elf):
                if (i, name) not in done:
                    done.add((i, name))
                    edges.append(DlopenEdge(i, name, walk._map_object(name, i)))
            walk.run()
        i += 1
    return LoadResult(_tree_of(walk, config), walk.files), tuple(edges)


def _tree_of(walk: _Walk, config: SearchConfig) -> LoadTree:
    kind = walk._cache_dirs[0]
    notes = (
        f"library cache: {kind}" + ("" if kind == LD_SO_CACHE else " (directories, emulating ldconfig)"),
        "default directories: " + ":".join(default_dirs(config, walk.machine)),
        *walk.notes,
    )
    return LoadTree(tuple(walk.objects), tuple(walk.edges), tuple(walk.missing), notes)


__all__ = [
    "Attempt",
    "DlopenEdge",
    "LoadResult",
    "LoadTree",
    "LoadedObject",
    "MissingLibrary",
    "NeededEdge",
    "resolve_tree",
    "resolve_with_dlopen",
    "verify_ident",
]
