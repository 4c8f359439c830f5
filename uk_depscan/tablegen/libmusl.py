"""Generate the lib-musl availability table: which libc symbols a Unikraft build with lib-musl links.

lib-musl (unikraft/lib-musl) does not build musl with musl's own Makefile; it
lists musl source files in ``Makefile.uk.musl.<sublib>``, each included when
``CONFIG_LIBMUSL_<SUB>=y``.  We evaluate those lists with the default Kconfig
values (and ``CONFIG_UK_ARCH=x86_64``) over the pinned musl release's sources,
add lib-musl's glue (``LIBMUSLGLUE_SRCS-y``) and what Unikraft core defines
itself, and mark every other function declared in musl's public headers as
missing.  Symbols are approximate: column-0 non-static function definitions,
``weak_alias``/``strong_alias`` targets and ``.global`` in assembly.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from uk_depscan.tablegen.unikraft import SourceTree, blank_c, iter_make_lines, parse_kconfig, split_top

GENERATOR_NAME = "uk_depscan.libmusl_gen"
GENERATOR_VERSION = 2
DEFAULT_ARCH = "x86_64"
# Core libraries never linked together with lib-musl (they are the alternative libc).
CORE_EXCLUDED_LIBS = ("lib/nolibc", "lib/isrlib")

_INCLUDE = re.compile(r"^\s*-?include\s+(\S+)\s*$")
_ASSIGN = re.compile(r"^\s*([A-Za-z0-9_]+)(?:-(\S+?))?\s*([+:?]?=)\s*(.*)$")
_COMMENTED = re.compile(r"^\s*#\s*(LIBMUSL\w*_SRCS)-\S+\s*\+?=\s*\$\(LIBMUSL\)/(\S+)")
# column-0 definition head: optional return type, then `name(` or musl's macro-proof `(name)(`
_FUNC = re.compile(
    r"^(?!static\b|typedef\b|extern\b|return\b|else\b|#)"
    r"(?:[A-Za-z_][\w \t\*]*?[ \t\*])?\(?([A-Za-z_]\w*)\)?\s*\(",
    re.M,
)
_NOT_FUNCS = {"if", "while", "for", "switch", "sizeof", "return"}
_ALIAS = re.compile(r"\b(?:weak_alias|strong_alias)\s*\(\s*\w+\s*,\s*(\w+)\s*\)")
_ASM_GLOBAL = re.compile(r"^\s*\.glob(?:a)?l\s+(\w+)", re.M)
_SYS = re.compile(r"\bSYS_(\w+)")
_SOCKETCALL = re.compile(r"\bsocketcall(?:_cp)?\s*\(\s*(\w+)")
_NR = re.compile(r"^\s*#\s*define\s+__NR_(\w+)\s+", re.M)
_WEAK_AWK = re.compile(r"long (\w+)\(\) __attribute__ \(\(weak, alias")


# ---------------------------------------------------------------- make evaluation


def expand(text: str, env: Mapping[str, str]) -> str:
    """Expand ``$(VAR)``, ``$(filter ...)``, ``$(strip ...)`` (innermost first)."""
    inner = re.compile(r"\$\(([^()$]*)\)")
    while m := inner.search(text):
        body = m.group(1)
        if body.startswith("filter "):
            pats, _, words = body[len("filter ") :].partition(",")
            val = " ".join(w for w in words.split() if w in pats.split())
        elif body.startswith("strip "):
            val = " ".join(body[len("strip ") :].split())
        else:
            val = env.get(body.strip(), "")
        text = text[: m.start()] + val + text[m.end() :]
    return text


def eval_condition(directive: str, env: Mapping[str, str]) -> bool:
    """Evaluate ``ifeq (a,b)``, ``ifneq "a" "b"``, ``ifdef V`` (``!`` prefix negates)."""
    if directive.startswith("!"):
        return not eval_condition(directive[1:], env)
    kw, _, arg = directive.partition(" ")
    arg = arg.strip()
    if kw in ("ifdef", "ifndef"):
        defined = bool(env.get(expand(arg, env).strip(), ""))
        return defined if kw == "ifdef" else not defined
    if arg.startswith("(") and arg.endswith(")"):
        parts = split_top(arg[1:-1])
    else:
        parts = [p.strip("\"'") for p in re.findall(r"\"[^\"]*\"|'[^']*'", arg)]
    if len(parts) != 2:
        return False
    equal = expand(parts[0], env).strip() == expand(parts[1], env).strip()
    return equal if kw == "ifeq" else not equal


@dataclass(frozen=True)
class ListedFile:
    """One musl source named in a lib-musl source list."""

    path: str  # relative to the musl tree, e.g. src/string/memcpy.c
    makefile: str
    line: int
    variable: str
    compiled: bool
    conditions: tuple[str, ...]


@dataclass
class MakeState:
    """Variables and file lists while evaluating lib-musl's makefiles."""

    env: dict[str, str]
    lists: dict[str, list[ListedFile]]
    commented: list[tuple[str, str, int]]


def evaluate_makefile(tree: SourceTree, path: str, state: MakeState, active: bool, outer: tuple[str, ...] = ()) -> None:
    """Evaluate one makefile: assignments, ``*_SRCS-<cond>`` lists, includes (recursively)."""
    text = tree.read(path) or ""
    for no, raw in enumerate(text.splitlines(), 1):
        if m := _COMMENTED.match(raw):
            state.commented.append((m.group(2).split("|")[0], path, no))
    for ml in iter_make_lines(text):
        here = active and all(eval_condition(c, state.env) for c in ml.conditions)
        conds = outer + ml.conditions
        if m := _INCLUDE.match(ml.text):
            target = expand(m.group(1), {**state.env, "LIBMUSL_BASE": ""}).lstrip("/")
            if tree.has(target):
                evaluate_makefile(tree, target, state, here, conds)
        elif m := _ASSIGN.match(ml.text):
            _assign(state, m, here, conds, path, ml.line)


def _assign(state: MakeState, m: re.Match[str], active: bool, conds: tuple[str, ...], path: str, line: int) -> None:
    var, cond, op, value = m.group(1), m.group(2), m.group(3), m.group(4)
    if var.endswith("_SRCS") and var.startswith("LIBMUSL"):
        on = active and (cond is None or expand(cond, state.env).strip() == "y")
        items = state.lists.setdefault(var, [])
        if op in ("=", ":=") and on:
            # a `VAR-y =` reset un-builds what was listed so far (it stays "listed, not compiled")
            items[:] = [dataclasses.replace(f, compiled=False) for f in items]
        for tok in value.split():
            rel = re.sub(r"^\$\(LIBMUSL(?:_BASE)?\)/", "", tok.split("|")[0])
            if rel != tok.split("|")[0] or tok.startswith("$(LIBMUSL_BASE)"):
                glue = tok.startswith("$(LIBMUSL_BASE)")
                items.append(
                    ListedFile(
                        ("glue:" if glue else "") + rel,
                        path,
                        line,
                        var,
                        on,
                        conds + ((f"{var}-{cond}",) if cond and cond != "y" else ()),
                    )
                )
    elif cond is None and active and op in ("=", ":=") and var not in state.env:
        state.env[var] = value.strip()


def default_env(libmusl: SourceTree, arch: str, defines: Mapping[str, str]) -> dict[str, str]:
    """``CONFIG_*`` values of a default lib-musl build: Config.uk defaults plus ``select``s of LIBMUSL."""
    syms = parse_kconfig(libmusl.read("Config.uk") or "", "Config.uk")
    env = {"CONFIG_UK_ARCH": arch, "ARCH": arch, "CONFIG_LIBMUSL": "y", f"CONFIG_ARCH_{arch.upper()}": "y"}
    for name, sym in syms.items():
        if sym.default and sym.default.split()[0] == "y" and name.startswith("LIBMUSL_"):
            env[f"CONFIG_{name}"] = "y"
    if "LIBMUSL" in syms:
        for sel in syms["LIBMUSL"].selects:
            parts = sel.split()
            if len(parts) == 1:
                env[f"CONFIG_{parts[0]}"] = "y"
    env.update(defines)
    return env


def kconfig_env(core: SourceTree, libmusl: SourceTree, arch: str) -> dict[str, str]:
    """``CONFIG_*`` of the native route's base configuration, evaluated by kconfiglib.

    Bool options that are ``y``, and the string/int/hex values make conditions compare
    (``CONFIG_UK_ARCH``), as ``$(UK_CONFIG)`` would hold them after ``make olddefconfig``.
    """
    from uk_depscan.tablegen import kconfig as kc

    klib = kc.kconfiglib_module()
    with kc.temporary_work() as tmp:
        work = Path(tmp)
        core_dir = kc.materialize(core, work / "src" / "unikraft")
        lm_dir = kc.materialize(libmusl, work / "src" / "lib-musl")
        setup = kc.KconfigSetup(core_dir, None, (lm_dir,), arch)
        loaded = kc.load_kconfig(setup, work / "build", route_libs=("LIBMUSL",))
        env = {"ARCH": arch}
        for sym in loaded.kconf.unique_defined_syms:
            if sym.orig_type in (klib.BOOL, klib.TRISTATE):
                if sym.tri_value == 2:
                    env["CONFIG_" + sym.name] = "y"
            elif sym.str_value and sym.name in ("UK_ARCH",):
                env["CONFIG_" + sym.name] = sym.str_value
    return env


# ---------------------------------------------------------------- symbol extraction


_C_WORDS = {
    "if", "while", "for", "switch", "sizeof", "return", "__attribute__", "__asm__", "asm", "typeof",
    "int", "char", "short", "long", "unsigned", "signed", "void", "float", "double", "const", "volatile",
    "struct", "union", "enum", "static", "extern", "inline", "typedef", "restrict", "register", "_Noreturn",
    "hidden", "weak", "_Bool", "__inline", "__restrict",
}  # fmt: skip
_PP_LINE = re.compile(r"^[ \t]*#(?:[^\n]*\\\n)*[^\n]*", re.M)
_ATTR_TAIL = re.compile(r"(?:\s*__attribute__\s*\(\(.*?\)\))+\s*$", re.S)
_PAREN_NAME = re.compile(r"\(\s*([A-Za-z_]\w*)\s*\)\s*\(")
_CALL_NAME = re.compile(r"\b([A-Za-z_]\w*)\s*\(")


def c_symbols(text: str) -> list[str]:
    """Non-static definitions at file scope: functions (any declarator), data objects, alias targets.

    File-scope statements are cut at ``;`` and at the ``}`` closing a function body (brace and
    parenthesis depth 0), after comments, strings and preprocessor lines are blanked.  A function
    is a head ending in ``)`` followed by a body; its name is the first identifier followed by ``(``
    that is not a keyword, or musl's macro-proof ``(name)(``, so ``void (*signal(int, void
    (*)(int)))(int) {`` yields ``signal``.  A data object is a declaration with a type and no
    parameter list (``const struct in6_addr in6addr_any = …;``, ``int optind=1, opterr=1;``).
    ``static``, ``extern`` and ``typedef`` statements define nothing exported.
    """
    code = _PP_LINE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), blank_c(text, strings=True))
    names: set[str] = set(_ALIAS.findall(code))
    depth = paren = 0
    start = 0
    head = ""
    for i, ch in enumerate(code):
        if ch in "([":
            paren += 1
        elif ch in ")]":
            paren = max(0, paren - 1)
        elif ch == "{":
            if depth == 0:
                head = code[start:i]
            depth += 1
        elif ch == "}":
            depth = max(0, depth - 1)
            if depth == 0 and paren == 0 and _ATTR_TAIL.sub("", head).rstrip().endswith(")"):
                # a function body ends the statement, exported or not
                if _is_function_head(head) and (name := _function_name(head)) is not None:
                    names.add(name)
                start = i + 1
        elif ch == ";" and depth == 0 and paren == 0:
            names.update(_data_names(code[start:i]))
            start = i + 1
    return sorted(names)


def _storage_words(stmt: str) -> set[str]:
    """Storage-class words among the declaration specifiers (before the first ``(`` or ``=``).

    ``buf[static N]`` in a parameter list is not a storage class.
    """
    specs = re.split(r"[(=]", stmt, maxsplit=1)[0]
    return set(re.findall(r"\b(static|extern|typedef)\b", specs))


def _is_function_head(head: str) -> bool:
    h = _ATTR_TAIL.sub("", head).rstrip()
    if not h.endswith(")") or _storage_words(h):
        return False
    depth = 0
    for ch in h:  # an initializer (``x = {...}``) is not a function
        depth += (ch in "([" and 1) or (ch in ")]" and -1) or 0
        if ch == "=" and depth == 0:
            return False
    return True


def _function_name(head: str) -> str | None:
    cands = [(m.start(), m.group(1)) for m in _PAREN_NAME.finditer(head) if m.group(1) not in _C_WORDS][:1]
    cands += [(m.start(), m.group(1)) for m in _CALL_NAME.finditer(head) if m.group(1) not in _C_WORDS][:1]
    return min(cands)[1] if cands else None


def _data_names(stmt: str) -> list[str]:
    """Names a file-scope data definition introduces (``[]`` for prototypes, macros, tags, typedefs)."""
    if _storage_words(stmt) or not stmt.strip():
        return []
    flat = re.sub(r"\s+", " ", _drop_braces(stmt)).strip()
    decls = _split_depth0(flat)
    first_lhs = _split_depth0(decls[0], "=")[0]
    if "(" in first_lhs:  # prototype, macro invocation, function-pointer object: not a plain data object
        return []
    out = []
    for i, d in enumerate(decls):
        lhs = re.sub(r"\[[^\]]*\]", "", _split_depth0(d, "=")[0]).strip()
        if re.search(r"\{\}\s*$", lhs) or "(" in lhs:
            continue  # ``struct x {...}`` with no declarator
        ids = list(re.findall(r"[A-Za-z_]\w*", lhs))
        if not ids or (i == 0 and len([t for t in ids if t not in ("const", "volatile")]) < 2):
            continue
        if ids[-1] not in _C_WORDS and not re.fullmatch(r"(?:struct|union|enum)\s+\w+", lhs):
            out.append(ids[-1])
    return out


def _drop_braces(text: str) -> str:
    out: list[str] = []
    depth = 0
    for ch in text:
        if ch == "{":
            if depth == 0:
                out.append("{")
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                out.append("}")
        elif depth == 0:
            out.append(ch)
    return "".join(out)


def _split_depth0(text: str, sep: str = ",") -> list[str]:
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def file_symbols(path: str, text: str) -> list[str]:
    """Symbols a C or assembly source file defines."""
    if path.endswith((".s", ".S")):
        return sorted(set(_ASM_GLOBAL.findall(text)))
    return c_symbols(text)


def file_syscalls(text: str) -> list[str]:
    """``SYS_<name>`` tokens and ``socketcall(name, ...)`` targets."""
    code = blank_c(text, strings=True)
    return sorted(set(_SYS.findall(code)) | set(_SOCKETCALL.findall(code)))


def public_api(musl: SourceTree) -> set[str]:
    """Function names declared in musl's public headers (``include/**.h``).

    The name is the first identifier followed by ``(`` at bracket depth 0 of a
    top-level declaration, so parameter names of function pointers and macro
    bodies (preprocessor lines are dropped) do not count.
    """
    out: set[str] = set()
    heads = [f for f in musl.files if f.startswith("include/") and f.endswith(".h")]
    musl.prefetch(heads)
    for f in heads:
        code = blank_c(musl.read(f) or "", strings=True)
        code = re.sub(r"^[ \t]*#(?:[^\n]*\\\n)*[^\n]*", "", code, flags=re.M)
        code = re.sub(r'extern\s+"[^"]*"\s*\{', "", code)
        for stmt in _top_level_statements(code):
            m = re.match(r"^\s*(?:extern\s+)?[A-Za-z_][\w\s\*]*?\b([a-z_]\w*)\s*\(", stmt)
            if m and not m.group(1).startswith("__") and not re.match(r"^\s*(?:typedef|static)\b", stmt):
                out.add(m.group(1))
    return out


def _top_level_statements(code: str) -> list[str]:
    """Statements at brace depth 0 (struct/union bodies are skipped)."""
    out: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in code:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth = max(0, depth - 1)
            if depth == 0:
                cur = []
                continue
        if depth:
            continue
        if ch == ";":
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    return out


def core_symbols(core: SourceTree) -> dict[str, str]:
    """Public-looking functions Unikraft core defines (symbol -> file:line)."""
    out: dict[str, str] = {}
    files = [
        f
        for f in core.files
        if f.startswith("lib/") and f.endswith(".c") and not f.startswith(CORE_EXCLUDED_LIBS) and "/tests/" not in f
    ]
    core.prefetch(files)
    for f in files:
        text = core.read(f) or ""
        code = blank_c(text, strings=True)
        for name in c_symbols(text):
            m = re.search(rf"^[^\n]*\b{re.escape(name)}\s*\(", code, re.M)
            out.setdefault(name, f"{f}:{code.count(chr(10), 0, m.start()) + 1}" if m else f)
    for f in core.files:
        if f.startswith("lib/syscall_shim/") and f.endswith(".awk"):
            for name in _WEAK_AWK.findall(core.read(f) or ""):
                out.setdefault(name, f"{f} (generated weak alias)")
    return out


# ---------------------------------------------------------------- table assembly


def musl_version(libmusl: SourceTree) -> str | None:
    for f in ("Makefile.uk", "Library.uk"):
        if m := re.search(r"^LIBMUSL_VERSION\s*[:?]?=\s*(\S+)", libmusl.read(f) or "", re.M):
            return m.group(1)
    return None


def build_libmusl_table(
    libmusl: SourceTree,
    musl: SourceTree,
    core: SourceTree | None,
    *,
    release: str,
    arch: str = DEFAULT_ARCH,
    defines: Mapping[str, str] | None = None,
    command: str = "",
    kconfig: bool | None = None,
) -> dict[str, Any]:
    """Generate the availability document for one release.

    The configuration is a default lib-musl build: with kconfiglib and the core tree (``kconfig``
    ``None`` = when both are there), Kconfig's own evaluation of the native route's base
    (defaults + architecture + KVM platform + ``LIBMUSL=y``, see :mod:`.kconfig`); otherwise the
    ``default y`` options of lib-musl's ``Config.uk`` plus ``LIBMUSL``'s ``select``s.
    """
    from uk_depscan.tablegen import kconfig as kc

    if kconfig is None:
        kconfig = core is not None and kc.kconfiglib_available() and core.has("Config.uk")
    if kconfig and core is not None:
        env, config_source = kconfig_env(core, libmusl, arch), "kconfiglib"
        env.update(defines or {})
    else:
        env, config_source = default_env(libmusl, arch, defines or {}), "Config.uk defaults (regex)"
    state = MakeState(dict(env), {}, [])
    mk = [f for f in libmusl.files if f.startswith("Makefile.uk")]
    libmusl.prefetch([*mk, "Config.uk"])
    evaluate_makefile(libmusl, "Makefile.uk", state, True)
    listed = [f for items in state.lists.values() for f in items]
    x86 = set(_NR.findall(musl.read(f"arch/{arch}/bits/syscall.h.in") or ""))
    musl.prefetch(f.path for f in listed if not f.path.startswith("glue:"))
    libmusl.prefetch(f.path[5:] for f in listed if f.path.startswith("glue:"))
    files: dict[str, dict[str, Any]] = {}
    symbols: dict[str, str] = {}
    for lf in sorted(listed, key=lambda f: (not f.compiled, f.path)):
        rec = _file_record(lf, musl, libmusl, x86)
        prev = files.get(lf.path)
        if prev is None or (rec["compiled"] and not prev["compiled"]):
            files[lf.path] = rec
    for path, rec in sorted(files.items()):
        if rec["compiled"]:
            for s in rec["symbols"]:
                symbols.setdefault(s, path)
    core_syms = core_symbols(core) if core is not None else {}
    api = public_api(musl)
    core_supplied = {s: at for s, at in core_syms.items() if s in api and s not in symbols}
    never_listed = _never_listed(musl, files, arch, {p for p, _, _ in state.commented})
    missing = sorted(s for s in api if s not in symbols and s not in core_supplied)
    return {
        "schema_version": 1,
        "kind": "libmusl-availability",
        "release": release,
        "arch": arch,
        "commit": core.commit if core else None,
        "generator": {"name": GENERATOR_NAME, "version": GENERATOR_VERSION},
        "command": command,
        "source": {
            "unikraft": {"ref": core.ref if core else None, "commit": core.commit if core else None},
            "lib-musl": {"ref": libmusl.ref, "commit": libmusl.commit},
            "musl": {"ref": musl.ref, "commit": musl.commit, "version": musl_version(libmusl)},
        },
        "config": {k: v for k, v in sorted(env.items()) if k.startswith(("CONFIG_", "ARCH"))},
        "config_source": config_source,
        "counts": _counts(files, symbols, core_supplied, missing, state, never_listed),
        "symbols": symbols,
        "core_symbols": core_supplied,
        "missing": missing,
        "commented_out": sorted({p for p, _, _ in state.commented}),
        "never_listed": never_listed,
        "listed_not_compiled": {p: r["makefile"] for p, r in sorted(files.items()) if not r["compiled"]},
        "files": {p: _compact(r) for p, r in sorted(files.items()) if r["compiled"]},
    }


def _compact(rec: Mapping[str, Any]) -> dict[str, Any]:
    """Drop empty lists and the ``compiled`` flag from a compiled file's record."""
    return {
        k: v
        for k, v in rec.items()
        if k not in ("compiled", "variable") and v not in ([], None) and not (k == "exists" and v)
    }


def _file_record(lf: ListedFile, musl: SourceTree, libmusl: SourceTree, x86: set[str]) -> dict[str, Any]:
    glue = lf.path.startswith("glue:")
    text = (libmusl.read(lf.path[5:]) if glue else musl.read(lf.path)) or ""
    sys_all = file_syscalls(text)
    return {
        "makefile": f"{lf.makefile}:{lf.line}",
        "variable": lf.variable,
        "compiled": lf.compiled,
        "conditions": list(lf.conditions),
        "exists": bool(text),
        "symbols": file_symbols(lf.path, text) if lf.compiled else [],
        "syscalls": [s for s in sys_all if s in x86],
        "syscalls_other_arch": [s for s in sys_all if s not in x86],
    }


def _never_listed(musl: SourceTree, files: Mapping[str, Any], arch: str, commented: set[str]) -> list[str]:
    """musl generic + ``arch`` sources that no lib-musl list names (not even commented out)."""
    out = []
    for f in musl.files:
        if not f.startswith("src/") or not f.endswith((".c", ".s", ".S")) or f in files or f in commented:
            continue
        parts = f.split("/")
        if len(parts) == 3 or (len(parts) == 4 and parts[2] == arch):
            out.append(f)
    return out


def _counts(
    files: Mapping[str, Mapping[str, Any]],
    symbols: Mapping[str, str],
    core: Mapping[str, str],
    missing: Sequence[str],
    state: MakeState,
    never: Sequence[str],
) -> dict[str, int]:
    compiled = [p for p, r in files.items() if r["compiled"]]
    return {
        "listed_files": len(files),
        "compiled_files": len(compiled),
        "compiled_glue_files": sum(p.startswith("glue:") for p in compiled),
        "commented_out": len({p for p, _, _ in state.commented}),
        "never_listed": len(never),
        "symbols": len(symbols),
        "symbols_public": sum(not s.startswith("_") for s in symbols),
        "core_symbols": len(core),
        "missing": len(missing),
        "syscalls_used": len({s for p in compiled for s in files[p]["syscalls"]}),
    }
