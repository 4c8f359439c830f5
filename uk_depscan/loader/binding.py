"""Symbol binding: which loaded object provides each import, as ld.so's lookup decides.

Lookup scope is the global scope of the root: every object in load (breadth-first) order,
the root first (glibc elf/dl-lookup.c ``_dl_lookup_symbol_x`` over ``l_searchlist``).  The
first object with a matching definition wins, weak or not (glibc ignores weakness between
objects unless LD_DYNAMIC_WEAK).  Matching follows ``check_match``:

* a versioned reference ``foo@V`` accepts a definition of version ``V``; it also accepts a
  definition in an object without version info, or one with the base/global index when the
  reference is not hidden and the definition is not hidden;
* an unversioned reference accepts index 0–2 (unversioned, base, the oldest version) or the
  single non-hidden versioned definition.

Each object is searched through its DT_GNU_HASH table as ``do_lookup_x`` searches it (Bloom filter,
bucket, chain), so only the imported names are ever decoded; an object without one (or with a
malformed one) is searched by name over all its definitions instead.

Version requirements themselves are checked like dl-version.c ``match_symbol``: every
(DT_VERNEED file, version) must be defined by the loaded object of that name.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from uk_depscan.elf.symbols import VERSYM_HIDDEN, DynamicSymbols, ImportedSymbol, dynamic_symbols, gnu_hashes
from uk_depscan.errors import DepscanError
from uk_depscan.loader.resolve import LoadResult
from uk_depscan.model import VersionProblem
from uk_depscan.store.identity import FileStamp, stamp_of


@dataclass(frozen=True)
class Binding:
    importer: int
    symbol: ImportedSymbol
    provider: int | None
    provider_version: str | None


@dataclass(frozen=True)
class SymbolBindings:
    bindings: tuple[Binding, ...]
    version_problems: tuple[VersionProblem, ...]
    skipped: tuple[tuple[int, str], ...]

    def of(self, importer: int) -> tuple[Binding, ...]:
        return tuple(b for b in self.bindings if b.importer == importer)

    @property
    def unresolved(self) -> tuple[Binding, ...]:
        return tuple(b for b in self.bindings if b.provider is None and not b.symbol.weak)

    @property
    def unresolved_weak(self) -> tuple[Binding, ...]:
        return tuple(b for b in self.bindings if b.provider is None and b.symbol.weak)


def bind_symbols(result: LoadResult, importers: tuple[int, ...] | None = None) -> SymbolBindings:
    """Bind the imports of ``importers`` (default: every readable object) in the root's scope."""
    scope = [i for i in range(len(result.tree.objects)) if i in result.files and not result.tree.objects[i].error]
    tables: dict[int, DynamicSymbols] = {}
    skipped: list[tuple[int, str]] = []
    for i in scope:
        try:
            tables[i] = dynamic_symbols(result.files[i])
        except DepscanError as err:
            skipped.append((i, str(err)))
    stamps = _stamps(result, scope)
    bindings: list[Binding] = []
    problems: list[VersionProblem] = []
    for imp in importers if importers is not None else tuple(tables):
        if imp not in tables:
            continue
        try:
            bindings += _bind_object(imp, tables, scope, stamps)
            problems += _check_versions(imp, result, tables)
        except DepscanError as err:
            skipped.append((imp, str(err)))
    return SymbolBindings(tuple(bindings), tuple(problems), tuple(skipped))


@dataclass(frozen=True)
class _Imports:
    """One object's imports, ready to be looked up: each distinct name encoded and hashed once
    (imports may share one, hostile, name)."""

    symbols: tuple[ImportedSymbol, ...]
    hidden: tuple[bool, ...]
    which: tuple[int, ...]  # import -> its distinct name
    raw: tuple[bytes, ...]  # distinct names
    hashes: np.ndarray  # their GNU hashes


def _imports(syms: DynamicSymbols) -> _Imports:
    indices = syms.imported_indices().tolist()
    symbols = syms.imports_of(indices)
    hidden = [False] * len(indices)
    if syms.versym is not None and indices:
        needs = syms.version_needs
        for k, raw in enumerate(syms.versym[indices].tolist()):
            need = needs.get(raw & 0x7FFF)
            hidden[k] = bool(need and need.hidden)
    names = [s.name for s in symbols]
    distinct = {n: i for i, n in enumerate(dict.fromkeys(names))}
    raw = tuple(n.encode("utf-8", "surrogateescape") for n in distinct)
    hashes = gnu_hashes(list(raw)) if raw else np.zeros(0, np.uint32)
    return _Imports(tuple(symbols), tuple(hidden), tuple(distinct[n] for n in names), raw, hashes)


def _search(
    imports: _Imports, tables: dict[int, DynamicSymbols], scope: list[int]
) -> list[tuple[int | None, str | None]]:
    """(provider, its version) of every import, ``scope`` searched in order, the first matching
    definition winning.  Each object is asked for all the still-unbound names at once through its
    DT_GNU_HASH table (:meth:`DynamicSymbols.lookup`, ld.so's own path to a definition), so the names
    of the definitions are never all decoded; an object without a usable table answers from
    :attr:`DynamicSymbols.definitions`."""
    symbols, which, raw = imports.symbols, imports.which, imports.raw
    found: list[tuple[int | None, str | None]] = [(None, None)] * len(symbols)
    pending = list(range(len(symbols)))
    for obj in scope:
        table = tables.get(obj)
        if table is None or not pending:
            continue
        asked = sorted({which[k] for k in pending})
        answers = table.lookup([raw[u] for u in asked], imports.hashes[asked])
        defs_of = dict(zip(asked, answers, strict=True)) if answers is not None else None
        left = []
        for k in pending:
            defs = defs_of[which[k]] if defs_of is not None else table.definitions.get(symbols[k].name)
            match = _match(symbols[k].version, imports.hidden[k], defs, table.versym is not None) if defs else None
            if match is None:
                left.append(k)
            else:
                found[k] = (obj, match[1])
        pending = left
    return found


# The bindings of a dependency's imports in the scope that follows the root, by the files' stamps:
# the targets of a directory or wheel share a few such tails (the torch wheel's 136 targets, 22), and
# each bound libtorch_cpu.so's 1.1 k imports and those of its whole closure again.  The root comes
# first in the scope (dl-lookup.c), so a dependency's import binds to the root when the root defines
# it and otherwise where it binds in the tail: only the root is searched per target.
_TailKey = tuple[FileStamp, tuple[FileStamp, ...]]
_tails: dict[_TailKey, tuple[_Imports, list[tuple[int | None, str | None]]]] = {}
_TAILS_BUDGET = 1 << 18  # imports held (the torch wheel's 136 targets: 33 k); past it the memo starts again
_held = [0]


def _stamps(result: LoadResult, scope: list[int]) -> dict[int, FileStamp] | None:
    """The stamp of each object's mapped file (device, inode, size, times; changes whenever its
    content can have), or None when one cannot be read."""
    out = {}
    for i in scope:
        stamp = stamp_of(result.files[i])
        if stamp is None:
            return None
        out[i] = stamp
    return out


def _bind_object(
    imp: int, tables: dict[int, DynamicSymbols], scope: list[int], stamps: dict[int, FileStamp] | None
) -> list[Binding]:
    """Every import of ``imp`` looked up in ``scope`` order, the first matching definition winning."""
    root, tail = scope[0], scope[1:]
    if stamps is None or imp == root:
        imports = _imports(tables[imp])
        found = _search(imports, tables, scope)
    else:
        key = (stamps[imp], tuple(stamps[i] for i in tail))
        known = _tails.get(key)
        if known is None:
            imports = _imports(tables[imp])
            if _held[0] + len(imports.symbols) > _TAILS_BUDGET:
                _tails.clear()
                _held[0] = 0
            _held[0] += len(imports.symbols)
            in_tail = _search(imports, tables, tail)
            position = {obj: k for k, obj in enumerate(tail)}
            _tails[key] = (imports, [(None if p is None else position[p], v) for p, v in in_tail])
        else:
            imports, at = known
            in_tail = [(None if p is None else tail[p], v) for p, v in at]
        in_root = _search(imports, tables, [root])
        found = [r if r[0] is not None else t for r, t in zip(in_root, in_tail, strict=True)]
    return [Binding(imp, sym, *where) for sym, where in zip(imports.symbols, found, strict=True)]


def _match(
    version: str | None, hidden: bool, defs: list[tuple[int, str | None, int]], has_versym: bool
) -> tuple[int, str | None, int] | None:
    if not has_versym:
        return defs[0]
    if version is not None:
        for d in defs:
            if d[1] == version:
                return d
        for d in defs:
            if not hidden and d[1] is None and not d[2] & VERSYM_HIDDEN:
                return d
        return None
    for d in defs:
        if d[2] & 0x7FFF < 3:
            return d
    visible = [d for d in defs if not d[2] & VERSYM_HIDDEN]
    return visible[0] if visible else None


def _check_versions(imp: int, result: LoadResult, tables: dict[int, DynamicSymbols]) -> list[VersionProblem]:
    syms = tables[imp]
    targets = {e.needed_name: e.target for e in result.tree.edges if e.source == imp}
    out = []
    for need in {(n.file, n.name, n.weak) for n in syms.version_needs.values()}:
        file, version, weak = need
        target = targets.get(file)
        if target is None or target not in tables:
            continue
        defined = {name for name, base in tables[target].version_defs.values() if not base}
        if tables[target].version_defs and version not in defined and not weak:
            out.append(
                VersionProblem(
                    imp, file, version, f"version `{version}' not found (required by {result.tree.objects[imp].path})"
                )
            )
    return sorted(out, key=lambda p: (p.file, p.version))
