"""Where each object of the closure goes in the guest, and where its bytes come from.

In-guest paths (the rule the manifest states):

* the **interpreter** at its ``PT_INTERP`` path (``/lib64/ld-linux-x86-64.so.2``): app-elfloader maps it
  from there;
* an object the loader found through the **system** search — ld.so.cache, ld.so.conf, the default
  directories, an absolute LD_LIBRARY_PATH (``-L``) or DT_RPATH/DT_RUNPATH entry, an absolute
  DT_NEEDED — at the path it was found at inside ``--root`` (the loader emulation reads absolute
  search directories inside the sysroot; the sysroot prefix is removed): the guest's ld.so finds it
  there again (through the cache, for what only LD_LIBRARY_PATH found: the guest has no environment);
* **application** objects — the targets, what an ``$ORIGIN`` entry of DT_RPATH/DT_RUNPATH found,
  relative paths — below the application directory (``/app``):
  the directory layout below their common ancestor is kept (one ancestor per wheel: its members'
  paths), so ``$ORIGIN``-relative lookups give the same files in the guest.

The bytes of a system object are read inside ``--root`` as a chroot, those of an application
object inside its common ancestor (or the wheel's extraction directory), never beyond
(:mod:`uk_depscan.rootfs.safefs`).  A library whose last path component is a symbolic link stays a
link when what it points to is in the image, or is a file in the same directory (the soname link
``libstdc++.so.6 -> libstdc++.so.6.0.30`` keeps its target beside it); any other link becomes a copy
of the file it leads to.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass, field

from uk_depscan.elf.file import ElfFile
from uk_depscan.inputs import Inputs, Target
from uk_depscan.loader.paths import INTERPRETERS, SearchConfig, expand_tokens, split_path_list, starts_with_origin
from uk_depscan.loader.resolve import DlopenEdge, LoadResult
from uk_depscan.model import BelowSyscall, FoundVia, LoadedObject
from uk_depscan.rootfs.model import Role
from uk_depscan.rootfs.safefs import Refused, SourceTree, read_link_in_tree

DEFAULT_APP_DIR = "/app"
MAX_LINK_CHAIN = 8


@dataclass
class Closure:
    """One target's closure: the loader's answer, the dlopen edges, and what each object names."""

    target: Target
    result: LoadResult
    dlopen: tuple[DlopenEdge, ...]
    below: dict[int, BelowSyscall] = field(default_factory=dict)


@dataclass
class Placed:
    """One object (or link target) placed in the guest."""

    guest: str
    tree: SourceTree
    rel: str  # inside tree
    shown: str  # the source as reports show it
    role: Role
    found_via: str | None
    link: str | None = None  # the entry is a symlink to this (relative) target
    needed_by: set[str] = field(default_factory=set)


@dataclass
class Layout:
    placed: dict[str, Placed]  # in-guest path -> placement
    guest_of: dict[tuple[int, int], str]  # (closure number, object index) -> in-guest path
    refused: list[tuple[str, str | None, str]]  # (source shown, in-guest path, reason)
    warnings: list[str]


def _origin(obj: LoadedObject, files: dict[int, ElfFile]) -> str:
    """$ORIGIN as :meth:`uk_depscan.loader.resolve._Walk._origin` computes it."""
    if obj.index == 0 and files[0].interp is not None:
        return os.path.dirname(obj.realpath)
    return os.path.dirname(obj.path) or "."


def _owners(tree_objs: tuple[LoadedObject, ...], obj: LoadedObject) -> Iterator[tuple[LoadedObject, str]]:
    """The objects whose DT_RUNPATH/DT_RPATH could have produced ``obj``'s directory, with that value."""
    if obj.loader is None:
        return
    loader = tree_objs[obj.loader]
    if obj.found_via is FoundVia.RUNPATH and loader.runpath:
        yield loader, loader.runpath
        return
    seen: set[int] = set()
    cur: LoadedObject | None = loader
    while cur is not None and cur.index not in seen:
        seen.add(cur.index)
        if cur.rpath:
            yield cur, cur.rpath
        cur = tree_objs[cur.loader] if cur.loader is not None else None
    if 0 not in seen and tree_objs[0].rpath:
        yield tree_objs[0], tree_objs[0].rpath or ""


def via_origin(c: Closure, obj: LoadedObject, config: SearchConfig) -> bool:
    """Did an ``$ORIGIN`` entry of a DT_RPATH/DT_RUNPATH produce the directory ``obj`` was found in?"""
    if obj.found_via not in (FoundVia.RPATH, FoundVia.RUNPATH):
        return False
    files, objs = c.result.files, c.result.tree.objects
    want = os.path.normpath(os.path.dirname(obj.path) or ".")
    machine = files[0].e_machine
    for owner, value in _owners(objs, obj):
        for entry in split_path_list(value):
            if not starts_with_origin(entry):
                continue
            expanded = expand_tokens(entry, _origin(owner, files), config, machine)
            if expanded is not None and os.path.normpath(expanded) == want:
                return True
    return False


def is_application(c: Closure, obj: LoadedObject, config: SearchConfig, inputs: Inputs) -> bool:
    if obj.index == 0:
        return True
    if obj.found_via is FoundVia.INTERPRETER:
        return False
    if not os.path.isabs(obj.path) or _wheel_of(obj.path, inputs) is not None:
        return True
    return via_origin(c, obj, config)


def _wheel_of(path: str, inputs: Inputs) -> str | None:
    for real in inputs.prefixes:
        if path == real or path.startswith(real + os.sep):
            return real
    return None


def _abs(path: str) -> str:
    return os.path.normpath(os.path.abspath(path))


class _Planner:
    def __init__(self, closures: list[Closure], config: SearchConfig, inputs: Inputs, app_dir: str) -> None:
        self.closures, self.config, self.inputs = closures, config, inputs
        self.app_dir = posixpath.normpath("/" + app_dir.strip("/"))
        self.system = SourceTree(os.path.realpath(config.root), chroot=True)
        self.layout = Layout({}, {}, [], [])
        self.app: dict[tuple[int, int], bool] = {}
        for ci, c in enumerate(closures):
            for obj in c.result.tree.objects:
                if obj.error is None:
                    self.app[ci, obj.index] = is_application(c, obj, config, inputs)
        fs_dirs = [
            os.path.dirname(_abs(c.result.tree.objects[i].path))
            for (ci, i), app in self.app.items()
            if app and _wheel_of((c := closures[ci]).result.tree.objects[i].path, inputs) is None
        ]
        self.fs_base = os.path.commonpath(fs_dirs) if fs_dirs else None

    def guest_and_source(self, ci: int, obj: LoadedObject) -> tuple[str, SourceTree, str]:
        """(in-guest path, source tree, path inside it) of one object; raises Refused."""
        c = self.closures[ci]
        if obj.found_via is FoundVia.INTERPRETER:
            interp = c.result.files[0].interp or INTERPRETERS.get(c.result.files[0].e_machine, "")
            guest = posixpath.normpath("/" + interp.lstrip("/"))
            rel = self.system.relative(obj.path)
        elif self.app[ci, obj.index]:
            return self._application(obj)
        else:
            rel = self.system.relative(obj.path)
            guest = "/" + (rel or "")
        if not rel:
            raise Refused(f"{self.inputs.display(obj.path)}: outside --root {self.config.root}")
        return guest, self.system, rel

    def _application(self, obj: LoadedObject) -> tuple[str, SourceTree, str]:
        wheel = _wheel_of(obj.path, self.inputs)
        base = wheel if wheel is not None else self.fs_base
        assert base is not None
        rel = os.path.relpath(_abs(obj.path), _abs(base)).replace(os.sep, "/")
        if rel.startswith("../") or rel in ("..", "."):
            raise Refused(f"{self.inputs.display(obj.path)}: not below the application tree {base}")
        return posixpath.join(self.app_dir, rel), SourceTree(os.path.realpath(base), chroot=False), rel

    def run(self) -> Layout:
        for ci, c in enumerate(self.closures):
            for obj in c.result.tree.objects:
                if obj.error is not None:
                    self.layout.refused.append((self.inputs.display(obj.path), None, f"unusable object: {obj.error}"))
                    continue
                self._place(ci, obj)
        for ci, c in enumerate(self.closures):
            self._needed_by(ci, c)
        for p in list(self.layout.placed.values()):
            self._links(p)
        return self.layout

    def _role(self, ci: int, obj: LoadedObject) -> Role:
        if obj.index == 0:
            return Role.TARGET
        if obj.found_via is FoundVia.INTERPRETER:
            return Role.INTERPRETER
        dlopened = {e.target for e in self.closures[ci].dlopen if e.target is not None}
        needed = {e.target for e in self.closures[ci].result.tree.edges if e.target is not None}
        return Role.DLOPEN if obj.index in dlopened and obj.index not in needed else Role.NEEDED

    def _place(self, ci: int, obj: LoadedObject) -> None:
        shown = self.inputs.display(obj.path)
        try:
            guest, tree, rel = self.guest_and_source(ci, obj)
        except Refused as err:
            self.layout.refused.append((shown, None, str(err)))
            return
        via = found_via_text(obj) if obj.found_via is not FoundVia.ROOT else None
        have = self.layout.placed.get(guest)
        if have is None:
            self.layout.placed[guest] = Placed(guest, tree, rel, shown, self._role(ci, obj), via)
        elif (have.tree, have.rel) != (tree, rel) and not _same_file(have, tree, rel):
            self.layout.warnings.append(f"{guest}: {shown} and {have.shown} both belong there; keeping {have.shown}")
        self.layout.guest_of[ci, obj.index] = guest

    def _needed_by(self, ci: int, c: Closure) -> None:
        edges = [(e.source, e.target) for e in c.result.tree.edges] + [(e.caller, e.target) for e in c.dlopen]
        for src, dst in edges:
            if dst is None or (ci, dst) not in self.layout.guest_of or (ci, src) not in self.layout.guest_of:
                continue
            target, user = self.layout.guest_of[ci, dst], self.layout.guest_of[ci, src]
            if target != user:
                self.layout.placed[target].needed_by.add(user)

    def _links(self, p: Placed) -> None:
        """Keep a final-component symlink when its target is in the image or beside it."""
        cur = p
        for _ in range(MAX_LINK_CHAIN):
            try:
                link = read_link_in_tree(cur.tree, cur.rel, cur.shown)
            except (Refused, OSError):
                return  # reading the file itself reports the problem
            if link is None:
                return
            here = posixpath.dirname(cur.guest)
            dest = (
                posixpath.normpath(link)
                if link.startswith("/") and cur.tree.chroot
                else posixpath.normpath(posixpath.join(here, link))
                if not link.startswith("/")
                else None
            )
            if dest is None or dest == cur.guest:
                return
            if dest in self.layout.placed:
                cur.link = posixpath.relpath(dest, here)
                return
            if "/" in link:
                return  # elsewhere and not in the image: copied as a file
            rel = posixpath.join(posixpath.dirname(cur.rel), link)
            shown = self.inputs.display(os.path.join(cur.tree.base, rel))
            nxt = Placed(dest, cur.tree, rel, shown, Role.LINK_TARGET, f"symbolic link {cur.guest} -> {link}")
            self.layout.placed[dest] = nxt
            cur.link = link
            cur = nxt


def found_via_text(obj: LoadedObject) -> str:
    """``runpath: DT_RUNPATH of libx.so ($ORIGIN)``; just ``ld.so.cache`` when the detail says no more."""
    value = obj.found_via.value
    return value if obj.via_detail in ("", value) else f"{value}: {obj.via_detail}"


def _same_file(p: Placed, tree: SourceTree, rel: str) -> bool:
    try:
        a = os.stat(os.path.join(p.tree.base, p.rel))
        b = os.stat(os.path.join(tree.base, rel))
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def plan_layout(closures: list[Closure], config: SearchConfig, inputs: Inputs, app_dir: str) -> Layout:
    return _Planner(closures, config, inputs, app_dir).run()
