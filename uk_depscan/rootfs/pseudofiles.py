"""Pseudo-files the code names, against the generated table of what a Unikraft release provides.

The tables (``syscall_tables/unikraft_pseudofiles/<release>.json``) come from
:mod:`uk_depscan.tablegen.pseudofiles`, run on the Unikraft tree of each release; this module loads
and checks one and matches the literals :func:`uk_depscan.elf.literals.below_syscall` found.

Matching: the literal as written (a trailing ``/`` dropped); a printf conversion (``%d``, ``%s``,
``%lu``…) matches one path component, as ``/proc/self/task/%d/maps`` would be filled in.  A path the
table does not hold is *not provided*, and the reason names what is missing: no device of that
name under a devfs mount, or no filesystem of the release mounted there at all (Unikraft registers
no procfs or sysfs, so nothing under ``/proc`` or ``/sys`` is served).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from uk_depscan.errors import TableError
from uk_depscan.rootfs.model import PseudoFile, PseudoStatus, PseudoTableRef

TABLE_DIR = "unikraft_pseudofiles"
KIND = "unikraft-pseudofile-table"
_CONVERSION = re.compile(r"%[-+ #0']*\d*(?:\.\d+)?(?:hh|h|ll|l|z|j|t|L)?[diouxXsc]")


@dataclass(frozen=True)
class Way:
    requires: str
    enable: tuple[str, ...]
    default: bool
    libraries: tuple[str, ...]


@dataclass(frozen=True)
class PseudoTable:
    release: str
    commit: str
    generator: str
    files: Mapping[str, tuple[Way, ...]]
    mounts: tuple[tuple[str, str], ...]  # (path, fstype)
    filesystems: tuple[str, ...]
    devices: tuple[str, ...]

    @property
    def ref(self) -> PseudoTableRef:
        return PseudoTableRef(self.release, self.commit, self.generator)


def _release_key(name: str) -> tuple[int, tuple[int, ...], str]:
    if re.fullmatch(r"\d+(?:\.\d+)*", name):
        return (0, tuple(int(n) for n in name.split(".")), name)
    return (1, (), name)


def shipped_releases() -> list[str]:
    d = files("uk_depscan.syscall_tables") / TABLE_DIR
    names = [p.name[:-5] for p in d.iterdir() if p.name.endswith(".json")] if d.is_dir() else []
    return sorted(names, key=_release_key)


def load_pseudofile_table(release: str | None = None, path: Path | None = None) -> PseudoTable:
    """A shipped table (``release``; default the newest, as the syscall tables) or a file."""
    if path is not None:
        label, text = str(path), _read(path)
    else:
        releases = shipped_releases()
        if not releases:
            raise TableError("no pseudo-file tables shipped")
        rel = release or releases[-1]
        if rel not in releases:
            raise TableError(f"no pseudo-file table for Unikraft {rel!r} (shipped: {', '.join(releases)})")
        label = f"{TABLE_DIR}/{rel}.json"
        text = (files("uk_depscan.syscall_tables") / TABLE_DIR / f"{rel}.json").read_text(encoding="utf-8")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        raise TableError(f"{label}: not valid JSON: {err.msg} at line {err.lineno}") from err
    return _parse(doc, label)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise TableError(f"{path}: cannot read table: {err}") from err


def _require(cond: bool, label: str, msg: str) -> None:
    if not cond:
        raise TableError(f"{label}: {msg}")


def _parse(doc: Any, label: str) -> PseudoTable:
    _require(isinstance(doc, dict) and doc.get("kind") == KIND, label, f"not a {KIND}")
    _require(doc.get("schema_version") == 1, label, "unsupported schema_version")
    for key in ("release", "command"):
        _require(isinstance(doc.get(key), str), label, f"missing {key!r}")
    gen = doc.get("generator")
    _require(isinstance(gen, dict) and isinstance(gen.get("name"), str), label, "missing generator")
    rows = doc.get("files")
    _require(isinstance(rows, dict), label, "'files' must be an object")
    table: dict[str, tuple[Way, ...]] = {}
    for path, row in rows.items():
        where = f"{label}: files[{path!r}]"
        _require(path.startswith("/") and isinstance(row, dict), where, "bad row")
        ways = row.get("ways")
        _require(isinstance(ways, list) and bool(ways), where, "no 'ways'")
        table[path] = tuple(_way(w, where) for w in ways)
    mounts = doc.get("mounts", [])
    fss = doc.get("filesystems", [])
    devices = doc.get("devices", [])
    _require(all(isinstance(m, dict) for m in mounts + fss + devices), label, "bad mounts/filesystems/devices")
    return PseudoTable(
        doc["release"],
        str(doc.get("commit") or "unknown"),
        f"{gen['name']} {gen.get('version', '?')}",
        table,
        tuple((str(m["path"]), str(m["fstype"])) for m in mounts),
        tuple(sorted({str(f["name"]) for f in fss})),
        tuple(sorted({str(d["name"]) for d in devices if d.get("name")})),
    )


def _way(w: Any, where: str) -> Way:
    _require(isinstance(w, dict), where, "a way must be an object")
    req, enable, default, libs = w.get("requires"), w.get("enable"), w.get("default"), w.get("libraries")
    _require(isinstance(req, str) and isinstance(default, bool), where, "'requires'/'default' missing")
    _require(isinstance(enable, list) and all(isinstance(o, str) and o.startswith("CONFIG_") for o in enable),
             where, "'enable' must list CONFIG_ options")  # fmt: skip
    _require(isinstance(libs, list) and all(isinstance(x, str) for x in libs), where, "'libraries' must be a list")
    return Way(req, tuple(enable), default, tuple(libs))


# -- matching -----------------------------------------------------------------------------------------
def _pattern(literal: str) -> re.Pattern[str] | None:
    if "%" not in literal:
        return None
    parts = _CONVERSION.split(literal)
    return re.compile("[^/]*".join(re.escape(p) for p in parts) + r"\Z")


def assess_pseudo_file(literal: str, referenced_by: Iterable[str], table: PseudoTable) -> PseudoFile:
    """One pseudo-file literal against ``table``."""
    refs = tuple(sorted(set(referenced_by)))
    path = literal.rstrip("/") or "/"
    pattern = _pattern(path)
    matched = path if path in table.files else None
    if matched is None and pattern is not None:
        matched = next((p for p in sorted(table.files) if pattern.match(p)), None)
    if matched is None:
        return PseudoFile(literal, refs, PseudoStatus.NOT_PROVIDED, None, None, (), (), _why_not(path, table))
    ways = table.files[matched]
    default = next((w for w in ways if w.default), None)
    way = default or min(ways, key=lambda w: (len(w.enable), w.requires))
    status = PseudoStatus.PROVIDED if default else PseudoStatus.NEEDS_KCONFIG
    how = "built by default" if default else "enable " + " ".join(way.enable)
    reason = f"{matched} by {', '.join(way.libraries)}: {how}"
    return PseudoFile(literal, refs, status, matched, way.requires, way.enable, way.libraries, reason)


def _why_not(path: str, table: PseudoTable) -> str:
    mount = max(
        (m for m in table.mounts if path == m[0] or path.startswith(m[0].rstrip("/") + "/")),
        key=lambda m: len(m[0]),
        default=None,
    )
    if mount is not None and mount[0] != "/":
        names = ", ".join(table.devices) or "none"
        return f"under {mount[0]} ({mount[1]}), but no such entry is registered there (devices: {names})"
    top = "/" + path.strip("/").split("/", 1)[0]
    fss = ", ".join(table.filesystems) or "none"
    return f"no filesystem of Unikraft {table.release} serves {top} (file systems registered: {fss})"
