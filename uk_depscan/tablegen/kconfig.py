"""Evaluate Unikraft's Kconfig with kconfiglib, the way Unikraft's build does, and resolve option closures.

Unikraft's make runs its Kconfig front ends with the environment ``COMMON_CONFIG_ENV``
(top-level ``Makefile``: ``UK_BASE``, ``UK_APP``, ``KCONFIG_DIR``, ``KCONFIG_LIB_BASE``,
``KCONFIG_ELIB_DIRS`` …).  The top-level ``Config.uk`` reads those variables and calls helpers through
kconfiglib's ``$(shell,…)`` preprocessor function: ``support/build/config-submenu.sh`` (0.13+) or
``support/scripts/uk_build_configure.sh`` (≤ 0.12) write ``$(KCONFIG_DIR)/libs.uk``, ``plats.uk``,
``drivers.uk`` and ``app.uk`` (lists of ``source "<dir>/Config.uk"`` lines) and print their path, and
``arch/Config.uk`` asks ``$(CC) -dumpmachine`` for the default architecture.  :func:`build_environment`
reproduces that environment, minimally:

* the union of the variable names every supported release's ``COMMON_CONFIG_ENV`` uses (0.12 reads
  ``KCONFIG_LIB_DIR``/``KCONFIG_PLAT_DIR``/``KCONFIG_APP_DIR``; 0.14 ``KCONFIG_*_IN`` and ``*_BASE``;
  0.16+ ``KCONFIG_DIR`` and ``KCONFIG_EXCLUDEDIRS``), each computed as the Makefile does;
* the application (``UK_APP``/``KCONFIG_EAPP_DIR``) is app-elfloader for the binary-compatibility route;
  for the native route there is none, which make expresses as ``UK_APP = UK_BASE`` (``NO_APP=y``); external
  libraries (``KCONFIG_ELIB_DIRS``, make's ``L=``) are lib-musl;
* ``CC`` is a two-line stand-in that only answers ``-dumpmachine`` with the target triplet, so the
  architecture default is the one evaluated whatever the host compiler is;
* the helper scripts are the tree's own, run by kconfiglib's ``$(shell,…)`` as make would run them;
* the base configuration of a route is Kconfig's defaults plus the architecture choice, the KVM
  platform (``qemu/<arch>``) and, for the native route, ``LIBMUSL=y``.

kconfiglib is the PyPI release of the version Unikraft vendors in ``support/kconfiglib`` (14.1.0 in
0.14–0.17; 0.12 vendors 12.13.0): it is an optional dependency of the table generator only
(``pip install uk-depscan[tablegen]``), never of the analysis path.

Closures.  For each option the generator asks for, :class:`Solver` walks kconfiglib's parsed
expressions: an option is ``y`` only if its direct dependencies (``depends on``, enclosing ``if``
and menus) are ``y``; an invisible option also needs a ``default`` that is ``y`` or a symbol that
``select``s it; ``!X`` in a dependency is a conflict (``X`` must stay ``n``); ``A || B`` takes the first
alternative that is already on or satisfiable without a conflict.  The result (``y`` and ``n``
sets) is then *verified* by kconfiglib itself: set those values over the route's base
configuration, evaluate every symbol, and check that the option and its closure are ``y``, the
conflicts ``n`` and that kconfiglib emitted no "unsatisfied direct dependencies" warning.  What
else becomes ``y`` (selects, implies, defaults) is recorded as what the option drags in.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from uk_depscan.errors import InputError

ROUTE_BINARY = "binary-compat"
ROUTE_NATIVE = "native"
TRIPLETS = {"x86_64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu"}
ARCH_SYMBOL = {"x86_64": "ARCH_X86_64", "arm64": "ARCH_ARM_64"}
PLATFORM_SYMBOL = "PLAT_KVM"  # qemu/<arch>: the platform app-elfloader's defconfigs and kraft use
_VENDORED_VERSION = re.compile(r"^VERSION\s*=\s*\((\d+),\s*(\d+),\s*(\d+)\)", re.M)


def kconfiglib_module() -> Any:
    """The installed kconfiglib, or an :class:`InputError` saying how to get it."""
    if importlib.util.find_spec("kconfiglib") is None:
        raise InputError("kconfiglib is not installed (pip install 'uk-depscan[tablegen]', kconfiglib==14.1.0)")
    return importlib.import_module("kconfiglib")  # untyped module: used as Any


def kconfiglib_available() -> bool:
    return importlib.util.find_spec("kconfiglib") is not None


def vendored_version(text: str | None) -> str | None:
    """``VERSION = (14, 1, 0)`` in ``support/kconfiglib/kconfiglib.py`` -> ``14.1.0``."""
    m = _VENDORED_VERSION.search(text or "")
    return ".".join(m.groups()) if m else None


# ---------------------------------------------------------------- materialising git trees


def extract_git_tree(git_dir: Path, commit: str, dest: Path) -> Path:
    """``git archive COMMIT`` of ``git_dir`` unpacked into ``dest`` (regular files and dirs only)."""
    dest.mkdir(parents=True, exist_ok=True)
    cmd = ["git", f"--git-dir={git_dir}", "archive", "--format=tar", commit]
    try:
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as proc:
            assert proc.stdout is not None
            with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
                for member in tar:
                    _extract_member(tar, member, dest)
            if proc.wait() != 0:
                raise InputError(f"{str(git_dir)!r}: git archive {commit} failed")
    except (OSError, tarfile.TarError) as err:
        raise InputError(f"{str(git_dir)!r}: cannot extract {commit}: {err}") from err
    return dest


def _extract_member(tar: tarfile.TarFile, member: tarfile.TarInfo, dest: Path) -> None:
    """Regular files and directories inside ``dest`` only (links and devices are skipped)."""
    name = member.name
    if name.startswith("/") or ".." in Path(name).parts or not (member.isfile() or member.isdir()):
        return
    target = dest / name
    if member.isdir():
        target.mkdir(parents=True, exist_ok=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    src = tar.extractfile(member)
    if src is not None:
        target.write_bytes(src.read())
        target.chmod(0o755 if member.mode & 0o111 else 0o644)


# ---------------------------------------------------------------- environment


@dataclass(frozen=True)
class KconfigSetup:
    """Where the trees are on disk and which build is evaluated."""

    core: Path
    app: Path | None  # app-elfloader for the binary-compat route, None: no application
    libs: tuple[Path, ...]  # external libraries (make's L=)
    arch: str = "x86_64"


def _subdirs(path: Path, skip: Sequence[str] = ()) -> list[str]:
    return sorted(str(p) for p in path.iterdir() if p.is_dir() and p.name not in skip) if path.is_dir() else []


def build_environment(setup: KconfigSetup, work: Path) -> dict[str, str]:
    """The variables Unikraft's ``COMMON_CONFIG_ENV`` passes to Kconfig (every release's names)."""
    core = str(setup.core)
    # no application: make leaves CONFIG_UK_APP = CONFIG_UK_BASE, so NO_APP is y and no app menu is sourced
    app = str(setup.app) if setup.app is not None else core
    kdir = work / "kconfig"
    kdir.mkdir(parents=True, exist_ok=True)
    cc = work / "cc"
    cc.write_text(f"#!/bin/sh\n# stand-in: arch/Config.uk only asks -dumpmachine\necho {TRIPLETS[setup.arch]}\n")
    cc.chmod(0o755)
    elibs = [str(p) for p in setup.libs]
    return {
        "CONFIG_": "CONFIG_",
        "srctree": core,
        "CC": str(cc),
        "KCONFIG_FUNCTIONS": "uk_depscan_no_kconfigfunctions",  # never import a stray kconfigfunctions.py
        "BUILD_DIR": str(work),
        "KCONFIG_CONFIG": str(work / ".config"),
        "UK_CONFIG": str(work / ".config"),
        "UK_BASE": core,
        "UK_APP": app,
        "UK_NAME": "uk_depscan",
        "UK_ARCH": setup.arch,
        "HOST_ARCH": "x86_64",
        "HOST_GCC_VERSION": "12",
        "UK_FULLVERSION": "0.0.0",
        "UK_CODENAME": "uk-depscan",
        # 0.16+: config-submenu.sh writes $(KCONFIG_DIR)/{plats,drivers,libs,app}.uk
        "KCONFIG_DIR": str(kdir),
        "KCONFIG_EXCLUDEDIRS": "",
        "KCONFIG_DRIV_BASE": f"{core}/drivers",
        # 0.13-0.15 names (config-submenu.sh with explicit output files)
        "KCONFIG_LIB_IN": str(kdir / "libs.uk"),
        "KCONFIG_PLAT_IN": str(kdir / "plats.uk"),
        "KCONFIG_APP_IN": str(kdir / "app.uk"),
        "KCONFIG_LIB_BASE": f"{core}/lib",
        "KCONFIG_ELIB_DIRS": ":".join(elibs),
        "KCONFIG_PLAT_BASE": f"{core}/plat",
        "KCONFIG_EPLAT_DIRS": "",
        "KCONFIG_EAPP_DIR": app if setup.app is not None else "",
        # <= 0.12: uk_build_configure.sh takes directory lists (Makefile: find $(CONFIG_UK_LIB)/* ...)
        "KCONFIG_APP_DIR": app,
        "KCONFIG_LIB_DIR": " ".join([*_subdirs(setup.core / "lib"), f"{core}/lib", *elibs]),
        "KCONFIG_PLAT_DIR": " ".join([*_subdirs(setup.core / "plat", ("common", "drivers")), f"{core}/plat"]),
    }


@contextlib.contextmanager
def _environ(env: Mapping[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def documented_environment(setup: KconfigSetup, env: Mapping[str, str], labels: Mapping[Path, str]) -> dict[str, str]:
    """``env`` with local paths replaced by ``<unikraft>``, ``<app-elfloader>``, … (for the tables)."""
    out = {}
    for k, v in sorted(env.items()):
        for path, label in sorted(labels.items(), key=lambda pl: -len(str(pl[0]))):
            v = v.replace(str(path), f"<{label}>")
        out[k] = v
    return out


# ---------------------------------------------------------------- loading


@dataclass
class LoadedKconfig:
    """A parsed Kconfig tree plus how to reach its base configuration."""

    kconf: Any
    setup: KconfigSetup
    env: dict[str, str]
    base_y: dict[str, bool] = field(default_factory=dict)  # base config: name -> True
    enable_in_base: tuple[str, ...] = ()
    parse_warnings: tuple[str, ...] = ()

    def sym(self, name: str) -> Any:
        s = self.kconf.syms.get(name.removeprefix("CONFIG_"))
        return s if s is not None and s.nodes else None

    def reset(self) -> None:
        """Back to the route's base configuration (defaults + arch, platform, route libraries)."""
        self.kconf.unset_values()
        for name in self.enable_in_base:
            if (s := self.sym(name)) is not None:
                s.set_value(2)

    def rel(self, filename: str) -> str:
        """A Kconfig node's file relative to its tree, prefixed for an external tree."""
        p = Path(filename)
        if not p.is_absolute():
            return filename
        roots = [(self.setup.core, "")]
        if self.setup.app is not None:
            roots.append((self.setup.app, "app-elfloader:"))
        roots += [(lib, f"{lib.name}:") for lib in self.setup.libs]
        for root, prefix in roots:
            with contextlib.suppress(ValueError):
                return prefix + p.resolve().relative_to(root.resolve()).as_posix()
        return p.name


def load_kconfig(setup: KconfigSetup, work: Path, *, route_libs: Sequence[str] = ()) -> LoadedKconfig:
    """Parse ``<core>/Config.uk`` with kconfiglib under Unikraft's build environment."""
    klib = kconfiglib_module()
    top = setup.core / "Config.uk"
    if not top.is_file():
        raise InputError(f"{str(setup.core)!r}: no top-level Config.uk")
    env = build_environment(setup, work)
    with _environ(env):
        try:
            kconf = klib.Kconfig(str(top), warn=True, warn_to_stderr=False, suppress_traceback=True)
        except (klib.KconfigError, OSError) as err:
            raise InputError(f"{str(top)!r}: kconfiglib could not parse it: {str(err).strip()}") from err
    loaded = LoadedKconfig(kconf, setup, env, parse_warnings=tuple(kconf.warnings))
    arch = ARCH_SYMBOL[setup.arch]
    loaded.enable_in_base = tuple(n for n in (arch, PLATFORM_SYMBOL, *route_libs) if loaded.sym(n) is not None)
    loaded.reset()
    loaded.base_y = {s.name: True for s in kconf.unique_defined_syms if s.tri_value == 2}
    return loaded


# ---------------------------------------------------------------- closures


@dataclass
class _State:
    y: dict[str, None] = field(default_factory=dict)  # insertion-ordered sets
    n: dict[str, None] = field(default_factory=dict)
    undefined: dict[str, None] = field(default_factory=dict)
    unresolved: dict[str, None] = field(default_factory=dict)

    def copy(self) -> _State:
        return _State(dict(self.y), dict(self.n), dict(self.undefined), dict(self.unresolved))


@dataclass(frozen=True)
class Closure:
    """What must be ``y`` and ``n`` for a requirement, and what kconfiglib says about it."""

    y: tuple[str, ...]
    n: tuple[str, ...]
    undefined: tuple[str, ...]  # referenced symbols no Config.uk in the evaluated trees defines
    unresolved: tuple[str, ...]  # sub-expressions the solver could not satisfy
    verified: bool
    warnings: tuple[str, ...]
    drags_in: Mapping[str, str]  # CONFIG_X -> "select by CONFIG_Y" | "imply by ..." | "default"
    turns_off: tuple[str, ...] = ()  # on in the route's base configuration, off once this holds

    def as_dict(self) -> dict[str, Any]:
        return {
            "y": list(self.y),
            "n": list(self.n),
            "undefined": list(self.undefined),
            "unresolved": list(self.unresolved),
            "verified": self.verified,
            "warnings": list(self.warnings),
            "drags_in": dict(sorted(self.drags_in.items())),
            "turns_off": list(self.turns_off),
        }


class Solver:
    """Greedy resolution of Kconfig requirements over kconfiglib's parsed expressions."""

    def __init__(self, loaded: LoadedKconfig) -> None:
        self.k = loaded
        self.klib = kconfiglib_module()

    # -- requirement expressions given as text (our ``requires`` strings) --------------------------
    def parse(self, text: str) -> Any:
        """``A && (B || !C)`` over symbol names (``CONFIG_`` prefix optional) -> kconfiglib expression."""
        toks = re.findall(r"&&|\|\||!|\(|\)|[A-Za-z0-9_]+", text)
        pos = 0
        klib, kconf = self.klib, self.k.kconf

        def atom() -> Any:
            nonlocal pos
            tok = toks[pos]
            pos += 1
            if tok == "!":
                return (klib.NOT, atom())
            if tok == "(":
                e = disj()
                pos += 1  # ')'
                return e
            if tok == "y":
                return kconf.y
            if tok == "n":
                return kconf.n
            name = tok.removeprefix("CONFIG_")
            return kconf.syms.get(name) or _Undefined(name)

        def conj() -> Any:
            nonlocal pos
            e = atom()
            while pos < len(toks) and toks[pos] == "&&":
                pos += 1
                e = (klib.AND, e, atom())
            return e

        def disj() -> Any:
            nonlocal pos
            e = conj()
            while pos < len(toks) and toks[pos] == "||":
                pos += 1
                e = (klib.OR, e, conj())
            return e

        return disj() if toks else kconf.y

    # -- solving -----------------------------------------------------------------------------------
    def solve(self, expr: Any) -> _State:
        st = _State()
        if not self._need(expr, True, st, 0):
            st.unresolved.setdefault(self.klib.expr_str(expr) if not isinstance(expr, _Undefined) else expr.name)
        return st

    def _need(self, e: Any, want: bool, st: _State, depth: int) -> bool:
        klib = self.klib
        if depth > 60:
            return False
        if isinstance(e, _Undefined):
            st.undefined.setdefault("CONFIG_" + e.name)
            return not want
        if isinstance(e, klib.Symbol):
            if e.is_constant:
                return (e.name == "y") == want if e.name in ("y", "m", "n") else False
            return self._need_sym(e, want, st, depth)
        if isinstance(e, klib.Choice):
            return True
        op = e[0]
        if op == klib.NOT:
            return self._need(e[1], not want, st, depth + 1)
        if op in (klib.AND, klib.OR):
            both = (op == klib.AND) == want  # AND wanted y / OR wanted n: both operands
            if both:
                return self._need(e[1], want, st, depth + 1) and self._need(e[2], want, st, depth + 1)
            return self._either(e[1], e[2], want, st, depth)
        # relations (A = B, A != "x", …): decided by the base configuration, never changed
        return bool((klib.expr_value(e) == 2) == want)

    def _either(self, a: Any, b: Any, want: bool, st: _State, depth: int) -> bool:
        """One of two operands: prefer the one already true in the base configuration."""
        order = sorted((a, b), key=lambda x: 0 if (self.klib.expr_value(x) == 2) == want else 1)
        for cand in order:
            trial = st.copy()
            if self._need(cand, want, trial, depth + 1):
                st.y, st.n, st.undefined, st.unresolved = trial.y, trial.n, trial.undefined, trial.unresolved
                return True
        return False

    def _need_sym(self, s: Any, want: bool, st: _State, depth: int) -> bool:
        name = "CONFIG_" + s.name
        if not s.nodes:
            st.undefined.setdefault(name)
            return not want
        if not want:
            if name in st.y:
                return False
            st.n.setdefault(name)
            return True
        if name in st.n:
            return False
        if name in st.y:
            return True
        st.y.setdefault(name)
        deps = s.direct_dep
        if s.choice is not None:
            deps = (self.klib.AND, deps, s.choice.direct_dep)
        if not self._need(deps, True, st, depth + 1):
            return False
        if any(node.prompt for node in s.nodes):
            vis = [node.prompt[1] for node in s.nodes if node.prompt]
            return any(self._try(v, st, depth) for v in vis)
        # invisible: a default that is y under a satisfiable condition, else a selector
        for value, cond in s.defaults:
            trial = st.copy()
            if self._need(value, True, trial, depth + 1) and self._need(cond, True, trial, depth + 1):
                st.y, st.n, st.undefined = trial.y, trial.n, trial.undefined
                return True
        return self._need(s.rev_dep, True, st, depth + 1) if s.rev_dep is not self.k.kconf.n else False

    def _try(self, e: Any, st: _State, depth: int) -> bool:
        trial = st.copy()
        if self._need(e, True, trial, depth + 1):
            st.y, st.n, st.undefined, st.unresolved = trial.y, trial.n, trial.undefined, trial.unresolved
            return True
        return False

    # -- verification with kconfiglib --------------------------------------------------------------
    def verify(self, target: Sequence[str], st: _State) -> Closure:
        """Set the closure over the base configuration and let kconfiglib evaluate everything."""
        k, klib = self.k, self.klib
        k.reset()
        for name in st.y:
            if (s := k.sym(name)) is not None:
                s.set_value(2)
        for name in st.n:
            if (s := k.sym(name)) is not None:
                s.set_value(0)
        before = len(k.kconf.warnings)
        for s in k.kconf.unique_defined_syms:
            _ = s.tri_value  # evaluation emits the "unsatisfied direct dependencies" warnings
        warns = tuple(
            w.split("\n")[0] for w in k.kconf.warnings[before:] if "direct dependencies" in w or "unsatisfied" in w
        )
        del k.kconf.warnings[before:]
        wrong = [
            f"{n} must be y but is n"
            for n in iter_unique([*target, *st.y])
            if (s := k.sym(n)) is None or s.tri_value != 2
        ]
        wrong += [
            f"{n} must be n but is y ({self._why(s)})" for n in st.n if (s := k.sym(n)) is not None and s.tri_value != 0
        ]
        warns = tuple(wrong) + warns
        ok = not st.undefined and not st.unresolved and not warns
        drags: dict[str, str] = {}
        for s in k.kconf.unique_defined_syms:
            name = "CONFIG_" + s.name
            if s.tri_value != 2 or s.orig_type not in (klib.BOOL, klib.TRISTATE):
                continue
            if name in st.y or s.name in k.base_y or s.choice is not None:
                continue
            drags[name] = self._why(s)
        turns_off = tuple(
            sorted(
                "CONFIG_" + s.name
                for s in k.kconf.unique_defined_syms
                if s.name in k.base_y and s.tri_value == 0 and s.choice is None
            )
        )
        k.reset()
        return Closure(tuple(st.y), tuple(st.n), tuple(st.undefined), tuple(st.unresolved), ok, warns, drags, turns_off)

    def _why(self, s: Any) -> str:
        klib = self.klib
        for kind, rev in (("select", s.rev_dep), ("imply", s.weak_rev_dep)):
            for term in klib.split_expr(rev, klib.OR):
                if klib.expr_value(term) == 2:
                    sel = klib.split_expr(term, klib.AND)[0]
                    return f"{kind} by CONFIG_{getattr(sel, 'name', '?')}"
        return "default"

    def closure(self, requirement: str, target: Sequence[str] = ()) -> Closure:
        st = self.solve(self.parse(requirement))
        return self.verify(target, st)


@dataclass(frozen=True)
class _Undefined:
    name: str


# ---------------------------------------------------------------- static option facts


def option_facts(loaded: LoadedKconfig, name: str) -> dict[str, Any] | None:
    """``depends on``, ``select``, ``imply``, defaults and conflicts of one option, as Kconfig text."""
    klib = kconfiglib_module()
    s = loaded.sym(name)
    if s is None:
        return None
    es = klib.expr_str

    def cond(c: Any) -> str | None:
        return None if c is loaded.kconf.y else es(c)

    node = s.nodes[0]
    return {
        "defined_at": f"{loaded.rel(node.filename)}:{node.linenr}",
        "type": klib.TYPE_TO_STR[s.orig_type],
        "prompt": any(n.prompt for n in s.nodes),
        "depends_on": None if s.direct_dep is loaded.kconf.y else es(s.direct_dep),
        "defaults": [{"value": es(v), "if": cond(c)} for v, c in s.defaults],
        "selects": [{"option": "CONFIG_" + t.name, "if": cond(c)} for t, c in s.selects],
        "implies": [{"option": "CONFIG_" + t.name, "if": cond(c)} for t, c in s.implies],
        "conflicts": sorted(conflicts_of(s.direct_dep)),
        "choice": bool(s.choice),
        "base_y": s.name in loaded.base_y,
    }


def conflicts_of(expr: Any) -> set[str]:
    """Symbols that must be ``n`` for ``expr`` to hold: ``!X`` in the top-level ``&&`` chain."""
    klib = kconfiglib_module()
    out: set[str] = set()
    for term in klib.split_expr(expr, klib.AND):
        if (
            isinstance(term, tuple)
            and term[0] == klib.NOT
            and isinstance(term[1], klib.Symbol)
            and not term[1].is_constant
        ):
            out.add("CONFIG_" + term[1].name)
    return out


# ---------------------------------------------------------------- provider requirements

_MAKE_Y = re.compile(r"^(!?)(ifeq|ifneq)\s*\(\s*\$\(CONFIG_(\w+)\)\s*,\s*y\s*\)$")
_MAKE_DEF = re.compile(r"^(!?)(ifdef|ifndef)\s+CONFIG_(\w+)$")
_PP_TOKEN = re.compile(r"\s*(defined\s*\(\s*CONFIG_\w+\s*\)|defined\s+CONFIG_\w+|CONFIG_\w+|&&|\|\||!|\(|\)|\S+)")


def make_condition_expr(cond: str) -> str | None:
    """``ifeq ($(CONFIG_X),y)`` -> ``X``; its ``else`` branch -> ``!X``; other conditions -> ``None``."""
    if m := _MAKE_Y.match(cond.strip()):
        neg = (m.group(1) == "!") != (m.group(2) == "ifneq")
        return ("!" if neg else "") + m.group(3)
    if m := _MAKE_DEF.match(cond.strip()):
        neg = (m.group(1) == "!") != (m.group(2) == "ifndef")
        return ("!" if neg else "") + m.group(3)
    return None


def pp_condition_expr(cond: str) -> str | None:
    """A ``#if`` condition over ``CONFIG_X`` / ``defined(CONFIG_X)`` -> Kconfig text (else ``None``).

    ``CONFIG_X`` is 1 in ``uk/config.h`` exactly when the bool option is ``y``, so ``#if CONFIG_X``
    and ``#ifdef CONFIG_X`` both mean ``X``.
    """
    out, pos = [], 0
    while pos < len(cond):
        m = _PP_TOKEN.match(cond, pos)
        if not m:
            break
        tok = m.group(1)
        pos = m.end()
        if tok in ("&&", "||", "!", "(", ")"):
            out.append(tok)
        elif sym := re.search(r"CONFIG_(\w+)", tok):
            out.append(sym.group(1))
        else:
            return None
    text = " ".join(out).replace("( ", "(").replace(" )", ")").replace("! ", "!")
    return text or None


def provider_requirement(p: Mapping[str, Any]) -> tuple[str, list[str]]:
    """Kconfig text that makes this provider's registration and chosen definition active.

    The registration's option, the make conditions around it, the ``#if`` stack of the chosen
    definition and the option its file is compiled under.  Conditions that are not about Kconfig
    options are returned apart (they are recorded, not evaluated).
    """
    parts: list[str] = []
    other: list[str] = []
    if p.get("kconfig"):
        parts.append(str(p["kconfig"]).removeprefix("CONFIG_"))
    for c in p.get("make_conditions", []):
        (parts if (e := make_condition_expr(c)) else other).append(e or c)
    for c in p.get("pp_conditions", []):
        e = pp_condition_expr(c)
        (parts if e else other).append(f"({e})" if e and ("||" in e or " " in e) else e or f"#if {c}")
    ci = p.get("compiled_if")
    if ci and ci != "y":
        for c in ci.split(" && "):
            e = c.removeprefix("CONFIG_") if re.fullmatch(r"CONFIG_\w+", c) else make_condition_expr(c)
            (parts if e else other).append(e or f"compiled if {c}")
    seen: dict[str, None] = {}
    for x in parts:
        seen.setdefault(x)
    return " && ".join(seen) or "y", other


def requirement_options(requirement: str) -> list[str]:
    """``CONFIG_`` names mentioned positively or negatively in a requirement."""
    return sorted({"CONFIG_" + t for t in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", requirement) if t not in ("y", "n")})


def iter_unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def temporary_work() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="uk-depscan-kconfig-")


# ---------------------------------------------------------------- the tables' ``kconfig`` section


def materialize(tree: Any, dest: Path) -> Path:
    """A directory holding ``tree``'s files: its work tree, or its commit extracted into ``dest``."""
    if tree.git_dir is None:
        return Path(tree.root)
    return extract_git_tree(Path(tree.git_dir), str(tree.commit), dest)


def evaluate(
    core_tree: Any,
    extras: Sequence[tuple[str, Any]],
    libs: Sequence[tuple[str, Any]],
    rows: Mapping[str, Mapping[str, Any]],
    arch: str = "x86_64",
) -> dict[str, Any]:
    """Evaluate Kconfig for both routes and resolve every provider's requirement.

    Returns the tables' ``kconfig`` section plus ``defined_options`` (every option either
    evaluation defines; used for rename detection and dropped before writing).
    """
    klib = kconfiglib_module()
    with temporary_work() as tmp:
        work = Path(tmp)
        core = materialize(core_tree, work / "src" / "unikraft")
        ext_dirs = {label: materialize(t, work / "src" / label) for label, t in extras}
        lib_dirs = {label: materialize(t, work / "src" / label) for label, t in libs}
        app = ext_dirs.get("app-elfloader")
        setups = {
            ROUTE_BINARY: (KconfigSetup(core, app, tuple(lib_dirs.values()), arch), ()),
            ROUTE_NATIVE: (KconfigSetup(core, None, tuple(lib_dirs.values()), arch), ("LIBMUSL",)),
        }
        loaded = {
            route: load_kconfig(setup, work / f"build-{route}", route_libs=libs_on)
            for route, (setup, libs_on) in setups.items()
        }
        labels = {
            core: "unikraft",
            **{p: lbl for lbl, p in ext_dirs.items()},
            **{p: lbl for lbl, p in lib_dirs.items()},
        }
        labels[work] = "work"
        section = _section(loaded, rows, labels, klib)
    return section


def _section(
    loaded: Mapping[str, LoadedKconfig], rows: Mapping[str, Mapping[str, Any]], labels: Mapping[Path, str], klib: Any
) -> dict[str, Any]:
    requirements: dict[str, dict[str, Any]] = {}
    providing: dict[str, set[str]] = {}
    for row in rows.values():
        for p in row["providers"]:
            req = p["requires"]
            entry = requirements.setdefault(req, {"routes": {}})
            for route in p["routes"]:
                entry["routes"].setdefault(route, None)
            if p["kconfig"]:
                providing.setdefault(p["kconfig"], set()).update(p["routes"])
    mentioned: set[str] = set()
    for req, entry in sorted(requirements.items()):
        for route in sorted(entry["routes"]):
            c = Solver(loaded[route]).closure(req, requirement_options_positive(req))
            entry["routes"][route] = c.as_dict()
            mentioned |= set(c.y) | set(c.n)
        mentioned |= set(requirement_options(req))
    options: dict[str, Any] = {}
    for opt in sorted(mentioned | set(providing)):
        facts = None
        for route in (ROUTE_NATIVE, ROUTE_BINARY):
            facts = facts or option_facts(loaded[route], opt)
        if facts is None:
            options[opt] = {"defined": False}
            continue
        facts = {"defined": True, **facts}
        facts["base_y"] = {
            route: (k.sym(opt) is not None and k.sym(opt).name in k.base_y) for route, k in sorted(loaded.items())
        }
        if opt in providing:
            facts["closure"] = {
                route: Solver(loaded[route]).closure(opt.removeprefix("CONFIG_"), [opt]).as_dict()
                for route in sorted(providing[opt])
                if loaded[route].sym(opt) is not None
            }
        options[opt] = facts
    defined = sorted({"CONFIG_" + s.name for k in loaded.values() for s in k.kconf.unique_defined_syms})
    any_loaded = next(iter(loaded.values()))
    return {
        "evaluated": True,
        "evaluator": {"name": "kconfiglib", "version": ".".join(map(str, klib.VERSION))},
        "vendored_kconfiglib": vendored_version(_read(any_loaded.setup.core / "support/kconfiglib/kconfiglib.py")),
        "arch": any_loaded.setup.arch,
        "routes": {
            route: {
                "app": "app-elfloader" if k.setup.app is not None else None,
                "libraries": [labels.get(p, p.name) for p in k.setup.libs],
                "enabled": ["CONFIG_" + n for n in k.enable_in_base],
                "base_y": sorted("CONFIG_" + n for n in k.base_y),
                "environment": documented_environment(k.setup, k.env, labels),
                "parse_warnings": [w.split("\n")[0] for w in k.parse_warnings],
            }
            for route, k in sorted(loaded.items())
        },
        "options": options,
        "requirements": dict(sorted(requirements.items())),
        "defined_options": defined,
    }


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def requirement_options_positive(requirement: str) -> list[str]:
    """Options a requirement names without ``!`` (what must end ``y`` when it holds and is a conjunction)."""
    if "||" in requirement:
        return []
    return [
        "CONFIG_" + t
        for t in re.findall(r"(?<![!A-Za-z0-9_])([A-Za-z_][A-Za-z0-9_]*)", requirement)
        if t not in ("y", "n")
    ]
