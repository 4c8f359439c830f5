"""What a generated syscall definition must look like for one Unikraft release, from the tables.

* **Macros.** The shipped Unikraft tables record, per provider, the macro its definition uses
  (``UK_SYSCALL_R_DEFINE``, ``UK_LLSYSCALL_R_DEFINE``, ``UK_LLSYSCALL_R_U_DEFINE`` in 0.16,
  ``UK_LLSYSCALL_R_E_DEFINE`` in 0.17, …) and the registration suffixes the release's awk scripts
  accept (``registration_suffixes``: ``u`` in 0.16, ``e`` in 0.17).  The scaffold uses the low-level
  raw variant ``UK_LLSYSCALL_R_DEFINE`` when the release has it (0.5 and later): it defines
  ``uk_syscall_r_<name>``/``uk_syscall_e_<name>`` without a libc-style ``<name>()`` wrapper, which
  with nolibc could clash with the libc's own declaration and which lib-musl turns off anyway
  (``LIBSYSCALL_SHIM_NOWRAPPER``); otherwise ``UK_SYSCALL_R_DEFINE``.
* **Execution context.** A syscall that some release registers with a suffix (``clone-5e``,
  app-elfloader's ``arch_prctl-3u``) needs the caller's register context (thread pointer, stack);
  its scaffold definition uses this release's suffix macro, taken from the provider that has it in
  the table, and the registration gets the suffix.  A release without suffixes gets the plain macro.
* **Shim build constraints.** ``lib/syscall_shim/uk_prsyscall.c`` pretty-prints some syscalls with
  definitions that only their core provider's headers bring (0.17: ``futex``, ``mmap``, ``uname``);
  registering one of those from another library breaks the shim's build.  The probe table
  ``syscall_tables/unikraft_shim/<release>.json`` (:mod:`uk_depscan.tablegen.ukshim`, a real compile per
  name) lists them; without a probe for the release that check is reported as not done.
* **Argument types** come from the Linux table (:mod:`uk_depscan.artifacts.argtable`); the generated
  C spells them with C's own types only, so it compiles against any Unikraft libc: a scalar kernel
  typedef (``pid_t``, ``umode_t``, ``u32``) or enum becomes ``long`` (the shim passes every argument
  as a register-width ``long`` and casts it to the declared type: ``UK_S_ARG_CAST_ACTUAL``); a pointer
  keeps its pointee when that is a C type or a ``struct``/``union`` tag (forward-declared, opaque),
  else points to ``void``.  The kernel's own spelling is kept next to each definition in a comment.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

from uk_depscan.errors import TableError

RAW_LL = "UK_LLSYSCALL_R_DEFINE"
RAW = "UK_SYSCALL_R_DEFINE"
_REG = re.compile(r"^([A-Za-z0-9_]+)-([0-9]+)([a-z]*)$")
_BUILTIN = frozenset({"void", "char", "short", "int", "long", "signed", "unsigned", "float", "double", "_Bool"})
_QUALIFIERS = frozenset({"const", "volatile", "restrict"})
# Identifiers the definition macros use inside the functions they emit (lib/syscall_shim/include/
# uk/syscall.h: `long ret;`, `int _errno`, the execution context `execenv`/`_execenv`): a parameter
# with one of these names would be redeclared.
RESERVED_PARAMS = frozenset({"ret", "_errno", "errno", "execenv", "_execenv"})


@dataclass(frozen=True)
class ShimFacts:
    release: str
    macros: frozenset[str]  # definition macros the release's own code uses
    suffix: str | None  # the release's execution-context registration suffix
    suffix_macro: str | None  # … and the macro that goes with it
    execenv_syscalls: frozenset[str]  # registered with a suffix by some shipped release or this one
    printer_blocked: Mapping[str, str] = field(default_factory=dict)  # name -> compiler error (probe)
    probe: str | None = None  # the probe table used, None when the release has none
    minimal_on: frozenset[str] = frozenset()  # LIB* options on in the release's minimal image (probe)

    @property
    def plain_macro(self) -> str:
        return RAW_LL if RAW_LL in self.macros else RAW

    def macro_for(self, name: str) -> tuple[str, str]:
        """(definition macro, registration suffix) for syscall ``name``."""
        if name in self.execenv_syscalls and self.suffix and self.suffix_macro:
            return self.suffix_macro, self.suffix
        return self.plain_macro, ""


def _read(path: Path | None, release: str) -> dict[str, Any]:
    label = str(path) if path else f"unikraft/{release}.json"
    try:
        if path is not None:
            text = path.read_text(encoding="utf-8")
        else:
            text = (files("uk_depscan.syscall_tables") / "unikraft" / f"{release}.json").read_text(encoding="utf-8")
        doc = json.loads(text)
    except (OSError, ValueError) as err:
        raise TableError(f"{label}: cannot read the table's shim facts: {err}") from err
    if not isinstance(doc, dict) or not isinstance(doc.get("syscalls"), dict):
        raise TableError(f"{label}: not a Unikraft syscall table")
    return doc


def _registrations(doc: Mapping[str, Any]) -> Iterable[tuple[str, str, str]]:
    for name, row in doc["syscalls"].items():
        for p in row.get("providers", ()):
            m = _REG.match(str(p.get("registration", "")))
            if m:
                yield name, m.group(3), str(p.get("macro", ""))


def _shipped_docs() -> Iterable[dict[str, Any]]:
    folder = files("uk_depscan.syscall_tables") / "unikraft"
    for res in sorted(folder.iterdir(), key=lambda r: r.name):
        if res.name.endswith(".json"):
            yield json.loads(res.read_text(encoding="utf-8"))


def load_shim_facts(release: str, path: Path | None = None) -> ShimFacts:
    """Facts of ``release`` (shipped) or of the table at ``path`` (a user's generated table)."""
    doc = _read(path, release)
    regs = list(_registrations(doc))
    macros = frozenset(m for _, _, m in regs if m)
    suffixes = [str(s) for s in doc.get("registration_suffixes", [])]
    suffix = suffixes[0] if suffixes else None
    suffix_macro = next((m for _, s, m in regs if suffix and s == suffix and m), None)
    execenv = {n for n, s, _ in regs if s}
    for other in _shipped_docs():
        execenv |= {n for n, s, _ in _registrations(other) if s}
    rel = str(doc.get("release", release))
    blocked, on, probe = _probe(rel, doc.get("commit"))
    return ShimFacts(rel, macros, suffix, suffix_macro, frozenset(execenv), blocked, probe, on)


def _probe(release: str, commit: object) -> tuple[Mapping[str, str], frozenset[str], str | None]:
    """The shipped shim probe of ``release`` when it was made on the table's commit."""
    res = files("uk_depscan.syscall_tables") / "unikraft_shim" / f"{release}.json"
    if not res.is_file():
        return {}, frozenset(), None
    label = f"unikraft_shim/{release}.json"
    try:
        doc = json.loads(res.read_text(encoding="utf-8"))
        printed = doc["printed"]
        blocked = {str(n): str(r.get("error", "")) for n, r in printed.items() if not r["builds_without_provider"]}
        on = frozenset(str(o) for o in doc["minimal_on"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise TableError(f"{label}: malformed shim probe: {err}") from err
    if commit and doc.get("commit") and doc["commit"] != commit:
        return {}, frozenset(), None  # a probe of another commit says nothing about this tree
    return blocked, on, label


# ----------------------------------------------------------------------------- C types


@dataclass(frozen=True)
class CType:
    text: str  # what the generated C says
    tag: str | None  # "struct x" / "union x" to forward-declare


def c_type(kernel_type: str) -> CType:
    """The C spelling of a kernel argument type (see the module docstring)."""
    tokens = re.findall(r"\*|[A-Za-z_]\w*", kernel_type)
    depth = tokens.count("*")
    first_star = tokens.index("*") if depth else len(tokens)
    base = [t for t in tokens[:first_star] if t not in _QUALIFIERS]
    if depth == 0:
        if base and all(t in _BUILTIN for t in base):
            return CType(" ".join(base), None)
        return CType("long", None)
    if base and base[0] in ("struct", "union") and len(base) == 2:
        return CType(_spell(tokens), f"{base[0]} {base[1]}")
    if base and all(t in _BUILTIN for t in base):
        return CType(_spell(tokens), None)
    # pointer to a kernel typedef: keep qualifiers and depth, point to void
    words = [t for t in tokens[:first_star] if t in _QUALIFIERS] + ["void"]
    return CType(_spell(words + tokens[first_star:]), None)


def _spell(tokens: list[str]) -> str:
    out, prev = "", ""
    for tok in tokens:
        if tok == "*":
            out += "*" if prev == "*" else " *"
        else:
            out += tok if prev == "*" or not out else f" {tok}"
        prev = tok
    return out


def param_name(name: str, index: int) -> str:
    """The kernel's parameter name, unless the definition macros use it themselves."""
    if not re.fullmatch(r"[A-Za-z_]\w*", name):
        return f"arg{index}"
    return f"{name}_arg" if name in RESERVED_PARAMS else name
