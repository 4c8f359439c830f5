"""Python extension modules an object imports at run time, by a name written in its data.

A Python extension that calls ``PyImport_ImportModule("numpy._core._multiarray_umath")`` (NumPy's
``import_array()``, inlined into every user of NumPy's C API: libtorch_python.so, the ONNX Runtime
and TensorFlow Lite bindings) makes the interpreter ``dlopen`` that module, and with it the module's
own DT_NEEDED closure (NumPy's OpenBLAS, whose thread start-up calls ``mbind``).  None of it is in
the importer's DT_NEEDED closure, so a static answer that stops there misses what the import runs.

The importer names the module, so the module can be found the way the interpreter finds it: in the
directory that holds the importer's top-level package (``site-packages``, or a wheel's root), then
in the ``--python-path`` directories.  Only names that resolve there to an *extension module* are
followed; importing a package also runs its ``__init__.py`` files, which may import more (Python
code is not analysed: an unsound spot, stated in README "What the syscall answer means").  Nothing
ties a literal to a particular call, so the names are candidates, like dlopen's library-name
literals (:mod:`uk_depscan.elf.literals`).
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass

from uk_depscan.elf.file import ElfFile
from uk_depscan.elf.literals import module_name_literals
from uk_depscan.elf.symbols import dynamic_symbols

# CPython's C API for importing by name (Include/import.h); PyImport_ImportModuleEx is a macro
# over PyImport_ImportModuleLevel, PyImport_Import takes the name as an object made from a literal.
IMPORT_FUNCTIONS = frozenset(
    {
        "PyImport_ImportModule",
        "PyImport_ImportModuleNoBlock",
        "PyImport_ImportModuleLevel",
        "PyImport_ImportModuleLevelObject",
        "PyImport_Import",
    }
)
# Where a package tree starts: these directories are sys.path entries, never packages.
_SITE_DIRS = frozenset({"site-packages", "dist-packages"})
_MAX_UP = 8  # directories climbed from the importer to its top-level package
_MAX_LISTING = 10_000  # entries read from one directory (an untrusted tree may be huge)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class ModuleImport:
    """One module name the object's data holds, and the extension module file it resolves to."""

    name: str
    path: str  # the extension module (the interpreter's pick: see :func:`_extension`)


def imports_modules(elf: ElfFile) -> bool:
    """Whether the object imports one of CPython's import-by-name functions."""
    return not IMPORT_FUNCTIONS.isdisjoint(dynamic_symbols(elf).import_names.values())


def site_root(path: str) -> str | None:
    """The ``sys.path`` directory that holds the package ``path`` lies in: the parent of its
    outermost package (a directory with ``__init__.py``), or a ``site-packages`` directory met on
    the way up.  ``torch/lib/libtorch_python.so`` lies in package ``torch`` (``lib`` is a plain
    directory inside it): the root is the directory holding ``torch``.  None: in no package."""
    # the path as given, links kept: the interpreter searches sys.path, where the importer was
    # installed, whatever a link in that tree points to
    d = os.path.dirname(os.path.abspath(path))
    top = None
    for _ in range(_MAX_UP):
        if os.path.basename(d) in _SITE_DIRS:
            return d
        if _is_file(os.path.join(d, "__init__.py")):
            top = d
        elif top is not None:
            return d
        parent = os.path.dirname(d)
        if parent == d:
            break
        d = parent
    return os.path.dirname(top) if top is not None else None


def module_imports(elf: ElfFile, path: str, python_path: tuple[str, ...] = ()) -> tuple[ModuleImport, ...]:
    """The extension modules ``elf`` (at ``path``) names in its data and imports at run time,
    sorted by name; () when it imports no import function, or lies in no package tree and no
    ``python_path`` is given.

    The search path is the directory holding the importer's package, then ``python_path`` (the
    ``--python-path`` directories: a virtual environment's site-packages when a wheel is scanned
    alone).  As in the interpreter, the first directory that holds a name's top-level package is
    the only one searched for it: a regular package shadows a same-named one further down the
    path (importlib's ``PathFinder`` stops at the first match, and a package's ``__path__`` is its
    own directory)."""
    if not imports_modules(elf):
        return ()
    root = site_root(path)
    roots = list(dict.fromkeys([*([root] if root is not None else []), *python_path]))
    tops = [set(_top_level(r)) for r in roots]
    out = []
    listings: dict[str, list[str]] = {}  # hundreds of names share a few directories
    for name in module_name_literals(elf, set().union(*tops)):
        parts = name.split(".")
        first = next(r for r, top in zip(roots, tops, strict=True) if parts[0] in top)
        found = _extension(first, parts, listings, elf.machine_name)
        if found is not None:
            out.append(ModuleImport(name, found))
    return tuple(out)


def _top_level(root: str) -> list[str]:
    """Names importable from ``root`` at the top: packages and extension modules."""
    names = []
    for entry in _listing(root):
        full = os.path.join(root, entry)
        if _IDENT.fullmatch(entry) and _is_file(os.path.join(full, "__init__.py")):
            names.append(entry)
        elif entry.endswith(".so") and _IDENT.fullmatch(entry.split(".", 1)[0]) and _is_file(full):
            names.append(entry.split(".", 1)[0])
    return sorted(set(names))


def _extension(root: str, parts: list[str], listings: dict[str, list[str]], machine: str) -> str | None:
    """The extension module file of the dotted name ``parts`` under ``root``: ``a/b/c.<tag>.so`` or
    ``a/b/c.so`` inside packages ``a`` and ``a/b``.  Several tagged files: the interpreter takes the
    first of its ``importlib.machinery.EXTENSION_SUFFIXES`` (``.cpython-311-x86_64-linux-gnu.so``,
    ``.abi3.so``, ``.so``) — here a tag naming the importer's architecture (``machine``) first, then
    the most specific tag, then the name, whatever the listing order."""
    d = root
    for part in parts[:-1]:
        d = os.path.join(d, part)
        if "__init__.py" not in _listed(listings, d) or not _is_file(os.path.join(d, "__init__.py")):
            return None
    last = parts[-1]
    hits = [
        e
        for e in _listed(listings, d)
        if e.endswith(".so")
        and (e == last + ".so" or (e.startswith(last + ".") and e.count(".") == 2))
        and _is_file(os.path.join(d, e))
    ]
    if not hits:
        return None
    hits.sort(key=lambda e: (f"-{machine}-" not in e, e == last + ".so", e.endswith(".abi3.so"), e))
    return os.path.join(d, hits[0])


def _listed(listings: dict[str, list[str]], d: str) -> list[str]:
    if d not in listings:
        listings[d] = _listing(d)
    return listings[d]


def _listing(d: str) -> list[str]:
    try:
        with os.scandir(d) as it:
            out = []
            for e in it:
                out.append(e.name)
                if len(out) >= _MAX_LISTING:
                    break
            return out
    except OSError:
        return []


def _is_file(path: str) -> bool:
    """A regular file (following links: installed trees link), never a FIFO or device to hang on."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False
