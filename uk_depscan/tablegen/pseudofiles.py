"""Generate the table of pseudo-files (``/dev``, ``/proc``, ``/sys`` entries) a Unikraft tree provides.

Nothing here is a hand list: every row is derived from the tree's sources, with where it was found.

* **Filesystems**: every ``UK_FS_REGISTER(x)`` and the ``.vs_name`` of the ``struct vfscore_fs_type x``
  it registers (lib/vfscore's registry; ``mount(2)`` looks file systems up by that name).
* **Mounts**: every ``mount(src, "/path", "fstype", …)`` call whose path and type are string literals
  (lib/devfs's ``devfs_automount`` mounts devfs on ``/dev`` this way).  Mounts configured at run time
  (vfscore's fstab, ``vfs.fstab=`` boot parameters) are not in the sources and are not listed.
* **Devices**: every ``device_create(&drv, NAME, …)`` call (lib/devfs's registry, e.g. ``null``, ``zero``,
  lib/ukrandom's ``random``/``urandom``); ``NAME`` is a string literal or a ``#define`` of one in
  the same file.  A device appears under every literal mount point of ``devfs``.

Each row carries the Kconfig requirement under which that code is built: the library's ``addlib``
option, the ``LIB*_SRCS-$(CONFIG_X)`` option its file is compiled under, the make conditionals around
that line and the ``#if`` stack around the call (:func:`uk_depscan.tablegen.kconfig.provider_requirement`
reads the same conditions for syscall providers).  ``enable`` lists the options a user sets: the
requirement's options and, transitively, their simple ``depends on`` options, without hidden
(prompt-less) options that are ``select``-ed.  ``default`` is true only when every required option has
an unconditional ``default y`` (conditional defaults count as off: the row then says what to enable).

A path no filesystem of the tree serves — ``/proc/…`` and ``/sys/…`` in every release so far, since
Unikraft registers neither procfs nor sysfs — is simply not in the table; the consumer
(:mod:`uk_depscan.rootfs.pseudofiles`) reports it as not provided, naming the mount it would need.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from uk_depscan.tablegen.kconfig import iter_unique, make_condition_expr, pp_condition_expr, requirement_options
from uk_depscan.tablegen.unikraft import (
    C_SUFFIXES,
    KconfigSym,
    ScannedTree,
    SourceTree,
    blank_c,
    compiled_condition,
    line_of,
    pp_conditions_at,
    pp_stack_index,
    scan_tree,
)

GENERATOR_NAME = "uk_depscan.tablegen.pseudofiles"
GENERATOR_VERSION = 1
KIND = "unikraft-pseudofile-table"
SCANNED_DIRS = ("lib/", "drivers/", "plat/")  # app-elfloader and other libraries: the whole tree
DEVFS = "devfs"

_FS_REGISTER = re.compile(r"\bUK_FS_REGISTER\s*\(\s*(\w+)\s*\)")
_MOUNT = re.compile(r'\bmount\s*\(\s*[^,;]*,\s*"([^"]*)"\s*,\s*"([^"]*)"')
_DEVICE = re.compile(r"\bdevice_create\s*\(\s*[^,;]+,\s*([^,;]+?)\s*,")
_DEFINE = r'^[ \t]*#[ \t]*define[ \t]+{name}[ \t]+"([^"]*)"'
_IDENT = re.compile(r"[A-Za-z_]\w*")


@dataclass(frozen=True)
class Site:
    """Where a registration is, and the conditions under which it is built."""

    library: str
    at: str
    lib_kconfig: str | None
    compiled_if: tuple[str, ...]  # make-level conditions on the source file
    pp_conditions: tuple[str, ...]  # the #if stack around the call
    other: tuple[str, ...]  # conditions that are not about Kconfig options (recorded, not evaluated)

    @property
    def requires(self) -> str:
        parts = ([self.lib_kconfig.removeprefix("CONFIG_")] if self.lib_kconfig else []) + list(self.compiled_if)
        parts += [f"({c})" if ("||" in c or " " in c) else c for c in self.pp_conditions]
        return " && ".join(iter_unique(parts)) or "y"


def _site(st: ScannedTree, path: str, code: str, pos: int, pp_index: Any) -> Site:
    library = st.library_of(path)
    mk = st.makefiles.get(library)
    compiled: list[str] = []
    other: list[str] = []
    entry = compiled_condition(path, mk.sources) if mk else None
    if entry is not None:
        if entry.kconfig:
            compiled.append(entry.kconfig.removeprefix("CONFIG_"))
        elif entry.raw_condition not in (None, "y"):
            other.append(f"compiled if {entry.raw_condition}")
        for c in entry.make_conditions:
            (compiled if (e := make_condition_expr(c)) else other).append(e or c)
    pps: list[str] = []
    for c in pp_conditions_at(pp_index, line_of(code, pos)):
        (pps if (e := pp_condition_expr(c)) else other).append(e or f"#if {c}")
    loc = f"{path}:{line_of(code, pos)}" if st.label == "core" else f"{st.label}:{path}:{line_of(code, pos)}"
    return Site(
        library or st.label,
        loc,
        mk.lib_kconfig if mk else None,
        tuple(compiled),
        tuple(pps),
        tuple(other),
    )


def _string_value(arg: str, text: str) -> str | None:
    """A string literal argument, or the literal a same-file ``#define`` gives the identifier."""
    arg = arg.strip()
    if arg.startswith('"') and arg.endswith('"') and len(arg) >= 2:
        return arg[1:-1]
    if _IDENT.fullmatch(arg):
        m = re.search(_DEFINE.format(name=re.escape(arg)), text, re.M)
        return m.group(1) if m else None
    return None


def _fs_name(var: str, text: str) -> str | None:
    m = re.search(rf"\b{re.escape(var)}\s*=\s*\{{[^}}]*?\.vs_name\s*=\s*\"([^\"]*)\"", text, re.S)
    return m.group(1) if m else None


@dataclass(frozen=True)
class Found:
    filesystems: tuple[tuple[str, Site], ...]
    mounts: tuple[tuple[str, str, Site], ...]  # (path, fstype, site)
    devices: tuple[tuple[str | None, str, Site], ...]  # (name or None when unresolved, argument text, site)


def find_registrations(st: ScannedTree) -> Found:
    fss: list[tuple[str, Site]] = []
    mounts: list[tuple[str, str, Site]] = []
    devices: list[tuple[str | None, str, Site]] = []
    files = [f for f in st.tree.files if f.endswith(C_SUFFIXES) and _scanned(f, st.label)]
    st.tree.prefetch(files)
    for path in files:
        text = st.tree.read(path) or ""
        if not any(k in text for k in ("UK_FS_REGISTER", "device_create", "mount")):
            continue
        code = blank_c(text, strings=False)  # comments blanked, literals kept
        index = pp_stack_index(code)
        for m in _FS_REGISTER.finditer(code):
            if _in_macro_definition(code, m.start()):
                continue
            name = _fs_name(m.group(1), code)
            if name:
                fss.append((name, _site(st, path, code, m.start(), index)))
        for m in _MOUNT.finditer(code):
            mounts.append((m.group(1), m.group(2), _site(st, path, code, m.start(), index)))
        for m in _DEVICE.finditer(code):
            if _in_macro_definition(code, m.start()) or _is_declaration(code, m.start()):
                continue
            devices.append((_string_value(m.group(1), code), m.group(1), _site(st, path, code, m.start(), index)))
    return Found(tuple(fss), tuple(mounts), tuple(devices))


def _scanned(path: str, label: str) -> bool:
    if "/tests/" in path or path.startswith(("tests/", "doc/", "support/")):
        return False
    return label != "core" or path.startswith(SCANNED_DIRS)


def _in_macro_definition(code: str, pos: int) -> bool:
    start = code.rfind("\n", 0, pos) + 1
    return bool(re.match(r"[ \t]*#", code[start:pos]))


def _is_declaration(code: str, pos: int) -> bool:
    """``device_create(struct driver *drv, …)``: the definition or a prototype, not a call."""
    head = code[pos : pos + 200]
    return bool(re.match(r"device_create\s*\(\s*(?:const\s+)?struct\b", head))


# -- Kconfig ------------------------------------------------------------------------------------
_PROMPT = re.compile(r'^\s*(?:(?:bool|tristate|string|int|hex)\s+"|prompt\s+")')


def _has_prompt(sym: KconfigSym, tree: SourceTree) -> bool:
    """Does the ``config`` block at ``sym.at`` declare a prompt (a user-settable option)?"""
    path, _, line = sym.at.rpartition(":")
    lines = (tree.read(path) or "").splitlines()[int(line) :]
    for raw in lines:
        if re.match(r"^\s*(config|menuconfig|endif|endmenu|if|menu|choice|endchoice|source|comment)\b", raw):
            return False
        if re.match(r"^\s*(help|---help---)\s*$", raw):
            return False
        if _PROMPT.match(raw):
            return True
    return False


def _depends_closure(options: Iterable[str], kconfig: Mapping[str, KconfigSym]) -> list[str]:
    """Options plus, transitively, the options their ``depends on`` lines require (only plain
    conjunctions of names: anything else is left to the Kconfig tools)."""
    out: list[str] = []
    todo = list(options)
    while todo:
        name = todo.pop(0)
        if name in out:
            continue
        out.append(name)
        sym = kconfig.get(name)
        for dep in sym.depends_on if sym else ():
            parts = [p.strip() for p in dep.split("&&")]
            if all(_IDENT.fullmatch(p) for p in parts):
                todo += parts
    return out


def requirement_facts(requires: str, st: ScannedTree) -> dict[str, Any]:
    """``enable`` (the options a user sets) and ``default`` for one requirement."""
    positive = [o.removeprefix("CONFIG_") for o in requirement_options(requires) if f"!{o[7:]}" not in requires]
    closure = _depends_closure(sorted(positive), st.kconfig)
    selected = {s.split()[0] for sym in st.kconfig.values() for s in sym.selects}
    enable = sorted(
        f"CONFIG_{o}" for o in closure if o in st.kconfig and (_has_prompt(st.kconfig[o], st.tree) or o not in selected)
    )
    default = bool(closure) and all(
        (sym := st.kconfig.get(o)) is not None and (sym.default or "").strip() == "y" for o in closure
    )
    unknown = sorted(f"CONFIG_{o}" for o in closure if o not in st.kconfig)
    facts: dict[str, Any] = {"enable": enable, "default": default or requires == "y"}
    if unknown:
        facts["undeclared"] = unknown  # e.g. HAVE_* options an architecture selects
    return facts


# -- the table --------------------------------------------------------------------------------------
def _site_doc(site: Site) -> dict[str, Any]:
    doc: dict[str, Any] = {"library": site.library, "at": site.at, "requires": site.requires}
    if site.other:
        doc["requires_other"] = list(site.other)
    return doc


def _and(*requirements: str) -> str:
    parts = [r for r in requirements if r != "y"]
    return " && ".join(iter_unique(p for r in parts for p in r.split(" && "))) or "y"


def build_pseudofile_table(
    tree: SourceTree,
    *,
    release: str,
    extras: Sequence[tuple[str, SourceTree]] = (),
    command: str,
) -> dict[str, Any]:
    """The table document for one tree (plus extra trees such as app-elfloader)."""
    scanned = [scan_tree(tree)] + [scan_tree(t, label) for label, t in extras]
    core = scanned[0]
    found = [find_registrations(st) for st in scanned]
    filesystems = sorted(
        ({"name": n, **_site_doc(s)} for f in found for n, s in f.filesystems), key=lambda d: (d["name"], d["at"])
    )
    mounts = sorted(
        ({"path": p, "fstype": t, **_site_doc(s)} for f in found for p, t, s in f.mounts),
        key=lambda d: (d["path"], d["fstype"], d["at"]),
    )
    devices = sorted(
        (
            {"name": n, "argument": arg, **_site_doc(s)} if n is None else {"name": n, **_site_doc(s)}
            for f in found
            for n, arg, s in f.devices
        ),
        key=lambda d: (d["name"] or "", d["at"]),
    )
    files: dict[str, dict[str, Any]] = {}
    for m in (m for m in mounts if m["fstype"] == DEVFS):
        _add_file(files, m["path"], "directory", _and(m["requires"]), [m["library"]], [m["at"]], core)
        for d in (d for d in devices if d["name"]):
            path = f"{m['path'].rstrip('/')}/{d['name']}"
            _add_file(
                files, path, "device", _and(d["requires"], m["requires"]), [d["library"], m["library"]],
                [d["at"], m["at"]], core,
            )  # fmt: skip
    return {
        "kind": KIND,
        "schema_version": 1,
        "release": release,
        "commit": tree.commit,
        "ref": tree.ref,
        "source": {"repo": "unikraft/unikraft", "commit": tree.commit, "ref": tree.ref},
        "extra_sources": [{"name": label, "commit": t.commit, "ref": t.ref} for label, t in extras],
        "generator": {"name": GENERATOR_NAME, "version": GENERATOR_VERSION},
        "command": command,
        "filesystems": filesystems,
        "mounts": mounts,
        "devices": devices,
        "files": dict(sorted(files.items())),
        "counts": {
            "filesystems": len(filesystems),
            "mounts": len(mounts),
            "devices": len(devices),
            "files": len(files),
            "unresolved_devices": sum(1 for d in devices if d["name"] is None),
        },
    }


def _add_file(
    files: dict[str, dict[str, Any]],
    path: str,
    kind: str,
    requires: str,
    libraries: list[str],
    at: list[str],
    st: ScannedTree,
) -> None:
    """One provided path; a path provided several ways keeps every way (any one suffices)."""
    row = {"kind": kind, "requires": requires, "libraries": iter_unique(libraries), "at": at}
    row.update(requirement_facts(requires, st))
    entry = files.setdefault(str(PurePosixPath(path)), {"kind": kind, "ways": []})
    if row not in entry["ways"]:
        entry["ways"].append({k: v for k, v in row.items() if k != "kind"})
