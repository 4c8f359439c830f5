"""The written tree checked by resolving the closure again inside it.

Each target is resolved with ``--root`` set to the tree, no LD_LIBRARY_PATH, and the tree's own
``/etc/ld.so.cache`` — the lookup the guest's ld.so has — by the same loader emulation
(:func:`uk_depscan.loader.resolve.resolve_with_dlopen`), the dlopen targets named as on the host.
Every DT_NEEDED and dlopen of every object must land on the in-guest path the layout chose (or be
missing in both).  This is what catches a library that only LD_LIBRARY_PATH found on the host and
that the cache must now name, or a cache entry shadowed by a DT_RUNPATH directory.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable

from uk_depscan.elf.file import ElfFile
from uk_depscan.errors import DepscanError
from uk_depscan.loader.paths import SearchConfig
from uk_depscan.loader.resolve import resolve_with_dlopen
from uk_depscan.rootfs.layout import Closure, Layout
from uk_depscan.rootfs.model import Verification

Edges = dict[tuple[str, str, str], str | None]  # (user, kind, name) -> in-guest target


def expected_edges(closures: list[Closure], layout: Layout) -> Edges:
    out: Edges = {}
    for ci, c in enumerate(closures):
        for src, name, dst, kind in [(e.source, e.needed_name, e.target, "needs") for e in c.result.tree.edges] + [
            (e.caller, e.name, e.target, "dlopens") for e in c.dlopen
        ]:
            user = layout.guest_of.get((ci, src))
            if user is not None:
                out.setdefault((user, kind, name), layout.guest_of.get((ci, dst)) if dst is not None else None)
    return out


def _guest(root: str, path: str) -> str:
    rel = os.path.relpath(os.path.normpath(os.path.abspath(path)), root)
    return "/" + rel.replace(os.sep, "/") if not rel.startswith("..") else f"(outside the tree) {path}"


def verify_tree(root: str, closures: list[Closure], layout: Layout, dlopen_names: dict[str, list[str]]) -> Verification:
    """Resolve every target again inside ``root`` (the written tree) and compare."""
    root = os.path.realpath(root)
    want = expected_edges(closures, layout)
    got: Edges = {}
    config = SearchConfig(root=root)
    problems: list[str] = []

    def names(_i: int, elf: ElfFile) -> Iterable[str]:
        return dlopen_names.get(_guest(root, elf.path.as_posix()), [])

    for ci, _c in enumerate(closures):
        start = layout.guest_of.get((ci, 0))
        if start is None:
            continue
        try:
            result, dl = resolve_with_dlopen(os.path.join(root, start.lstrip("/")), config, names)
        except DepscanError as err:
            problems.append(f"{start}: cannot be resolved in the tree: {err}")
            continue
        result.close()
        objs = result.tree.objects
        for src, name, dst, kind in [(e.source, e.needed_name, e.target, "needs") for e in result.tree.edges] + [
            (e.caller, e.name, e.target, "dlopens") for e in dl
        ]:
            got.setdefault(
                (_guest(root, objs[src].path), kind, name), _guest(root, objs[dst].path) if dst is not None else None
            )
    for key in sorted(set(want) | set(got), key=lambda k: (k[0], k[1], k[2])):
        if key in want and key in got and want[key] != got[key]:
            user, kind, name = key
            problems.append(
                f"{user} {kind} {name}: expected {want[key] or 'not found'}, the tree gives {got[key] or 'not found'}"
            )
    checked = sum(1 for k in want if k in got)
    unreached = sorted(posixpath.basename(k[2]) for k in want if k not in got and want[k] is not None)
    note = f"{checked} lookups resolved again inside the tree with its ld.so.cache and no LD_LIBRARY_PATH"
    if unreached:
        note += f"; {len(unreached)} not reached from the targets there"
    return Verification(True, checked, tuple(problems), note)
