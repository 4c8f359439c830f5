"""Generate a Unikraft syscall support table from a Unikraft source tree.

The method follows ``/work/shared/notes/unikraft-syscall-registry.md``:

* the number table is ``lib/syscall_shim/arch/<arch>/syscall.h.in`` (musl's names);
* a syscall is *provided* only when a ``Makefile.uk`` registers it with
  ``UK_PROVIDED_SYSCALLS-$(CONFIG_X) += name-nargs[suffix]``; every other
  number gets a generated ``-ENOSYS`` stub (``syscall_stubs.awk``), so it is
  ``absent``;
* the C definition (``UK_*SYSCALL*_DEFINE``) of a registered syscall is
  classified as implemented (full / partial / constant) or stub (enosys,
  enotsup, const_error, noop_success, fake, warn_stubbed ...), following
  single-call delegation up to three levels.

Everything is the "all options enabled" upper bound: conditions (Kconfig,
make ``ifeq``, ``#if``, compiled-if) are recorded, not evaluated.  All
functions are pure apart from :class:`SourceTree`, which reads a work tree or
``git --git-dir`` + ref.
"""

from __future__ import annotations

import bisect
import re
import subprocess
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from uk_depscan.errors import InputError
from uk_depscan.tablegen.kconfig import ROUTE_BINARY, ROUTE_NATIVE, provider_requirement

ROUTES = (ROUTE_BINARY, ROUTE_NATIVE)

GENERATOR_NAME = "uk_depscan.unikraft_gen"
GENERATOR_VERSION = 2  # 2: routes, provider requirements, kconfig section, option renames
LOUPE_GENERATOR_VERSION = 1  # the Loupe priors conversion is unchanged
ARCHES = ("x86_64", "arm64")
C_SUFFIXES = (".c", ".h", ".cpp", ".S")

# ---------------------------------------------------------------- source trees


class SourceTree:
    """Read-only view of a checkout: a work tree, or a git dir plus a ref."""

    def __init__(self, root: Path, *, git_dir: Path | None = None, ref: str | None = None) -> None:
        self.root = root
        self.git_dir = git_dir
        self.ref = ref
        self.commit = self._resolve_commit()
        self.files: list[str] = self._list_files()
        self._fileset = set(self.files)
        self._cache: dict[str, str] = {}

    @classmethod
    def open(cls, path: Path, ref: str | None = None) -> SourceTree:
        """Open ``path`` as a work tree, or as a git dir when ``ref`` is given or it is bare."""
        if not path.exists():
            raise InputError(f"{str(path)!r}: source tree does not exist")
        if ref is None and not (path / "HEAD").is_file():
            return cls(path)
        git_dir = path / ".git" if (path / ".git").exists() else path
        return cls(path, git_dir=git_dir, ref=ref or "HEAD")

    def _git(self, *args: str, data: bytes | None = None) -> bytes:
        cmd = ["git", f"--git-dir={self.git_dir}", *args]
        try:
            res = subprocess.run(cmd, input=data, capture_output=True, check=True)
        except (OSError, subprocess.CalledProcessError) as err:
            raise InputError(f"{' '.join(cmd[:4])!r} failed: {err}") from err
        return res.stdout

    def _resolve_commit(self) -> str | None:
        if self.git_dir is not None:
            return self._git("rev-parse", f"{self.ref}^{{commit}}").decode().strip()
        try:
            res = subprocess.run(
                ["git", "-C", str(self.root), "rev-parse", "HEAD"], capture_output=True, check=True, text=True
            )
        except (OSError, subprocess.CalledProcessError):
            return None
        # only trust it when root is the top of that repository
        top = subprocess.run(
            ["git", "-C", str(self.root), "rev-parse", "--show-toplevel"], capture_output=True, text=True, check=False
        )
        if Path(top.stdout.strip()).resolve() != self.root.resolve():
            return None
        return res.stdout.strip()

    def _list_files(self) -> list[str]:
        if self.git_dir is not None:
            out = self._git("ls-tree", "-r", "--name-only", "-z", str(self.commit))
            return sorted(p for p in out.decode("utf-8", "replace").split("\0") if p)
        return sorted(
            p.relative_to(self.root).as_posix()
            for p in self.root.rglob("*")
            if p.is_file() and ".git" not in p.relative_to(self.root).parts
        )

    def has(self, path: str) -> bool:
        return path in self._fileset

    def read(self, path: str) -> str | None:
        """Text of ``path`` (``None`` when absent)."""
        if path not in self._fileset:
            return None
        if path not in self._cache:
            self.prefetch([path])
        return self._cache[path]

    def prefetch(self, paths: Iterable[str]) -> None:
        """Read many files at once (one ``git cat-file --batch`` for git trees)."""
        todo = [p for p in paths if p in self._fileset and p not in self._cache]
        if not todo:
            return
        if self.git_dir is None:
            for p in todo:
                self._cache[p] = (self.root / p).read_bytes().decode("utf-8", "replace")
            return
        req = "".join(f"{self.commit}:{p}\n" for p in todo).encode()
        out = self._git("cat-file", "--batch", data=req)
        pos = 0
        for p in todo:
            nl = out.index(b"\n", pos)
            size = int(out[pos:nl].split()[2])
            self._cache[p] = out[nl + 1 : nl + 1 + size].decode("utf-8", "replace")
            pos = nl + 1 + size + 1


# ------------------------------------------------------------- make parsing

_MAKE_COND = re.compile(r"^\s*(ifeq|ifneq|ifdef|ifndef)\b\s*(.*)$")
_MAKE_ELSE = re.compile(r"^\s*else\b\s*(.*)$")
_MAKE_ENDIF = re.compile(r"^\s*endif\b")
_REG = re.compile(r"^\s*UK_PROVIDED_SYSCALLS(?:-(\S+?))?\s*[+:?]?=\s*(.*)$")
_REG_TOKEN = re.compile(r"^([A-Za-z0-9_]+)-([0-9]+)([a-z]*)$")
_SRCS = re.compile(r"^\s*([A-Z0-9_]+)_SRCS(?:-(\S+?))?\s*[+:?]?=\s*(.*)$")
_ADDLIB = re.compile(r"addlib(?:_s)?\s*,\s*(\w+)\s*(?:,\s*([^)\s]+\)?))?")
_CONFIG_REF = re.compile(r"^\$\(CONFIG_(\w+)\)$")


@dataclass(frozen=True)
class MakeLine:
    """One logical make line (continuations joined, comment dropped)."""

    text: str
    line: int
    conditions: tuple[str, ...]


def strip_make_comment(line: str) -> str:
    """Drop a ``#`` comment (an escaped ``\\#`` is kept)."""
    m = re.search(r"(?<!\\)#", line)
    return line[: m.start()] if m else line


def iter_make_lines(text: str) -> Iterator[MakeLine]:
    """Yield logical lines with the make conditional stack in force.

    Each stack entry is a directive such as ``ifeq ($(CONFIG_X),y)``; an
    ``else`` branch turns the previous directives into ``!ifeq (...)``.
    """
    stack: list[list[str]] = []
    buf, start = "", 0
    for no, raw in enumerate(text.splitlines(), 1):
        if not buf:
            start = no
        if raw.endswith("\\"):
            buf += raw[:-1] + " "
            continue
        logical, buf = strip_make_comment(buf + raw), ""
        if m := _MAKE_COND.match(logical):
            stack.append([f"{m.group(1)} {m.group(2).strip()}"])
        elif (m := _MAKE_ELSE.match(logical)) and stack:
            frame = [c if c.startswith("!") else "!" + c for c in stack[-1]]
            if m.group(1) and (c := _MAKE_COND.match(m.group(1))):
                frame.append(f"{c.group(1)} {c.group(2).strip()}")
            stack[-1] = frame
        elif _MAKE_ENDIF.match(logical) and stack:
            stack.pop()
        elif logical.strip():
            yield MakeLine(logical, start, tuple(c for f in stack for c in f))


def kconfig_of(cond: str | None) -> str | None:
    """``$(CONFIG_X)`` -> ``CONFIG_X``; ``y``/absent -> ``None``."""
    if cond and (m := _CONFIG_REF.match(cond)):
        return "CONFIG_" + m.group(1)
    return None


@dataclass(frozen=True)
class Registration:
    """One ``UK_PROVIDED_SYSCALLS`` entry."""

    name: str
    nargs: int
    suffix: str
    library: str
    kconfig: str | None
    raw_condition: str | None
    make_conditions: tuple[str, ...]
    at: str


@dataclass(frozen=True)
class SrcEntry:
    """One source file listed in ``LIB<X>_SRCS-<cond>``."""

    pattern: str
    kconfig: str | None
    raw_condition: str | None
    make_conditions: tuple[str, ...]


@dataclass(frozen=True)
class MakefileInfo:
    """What one library's ``Makefile.uk`` tells us."""

    library: str
    libname: str | None
    lib_kconfig: str | None
    registrations: tuple[Registration, ...]
    sources: tuple[SrcEntry, ...]


def parse_makefile(text: str, path: str, library: str) -> MakefileInfo:
    """Parse registrations, source lists and ``addlib`` from one ``Makefile.uk``."""
    regs: list[Registration] = []
    srcs: list[SrcEntry] = []
    libname = lib_kconfig = None
    for ml in iter_make_lines(text):
        if (m := _ADDLIB.search(ml.text)) and libname is None:
            libname, lib_kconfig = m.group(1), kconfig_of(m.group(2))
        if m := _REG.match(ml.text):
            for tok in m.group(2).split():
                if t := _REG_TOKEN.match(tok):
                    regs.append(
                        Registration(
                            t.group(1),
                            int(t.group(2)),
                            t.group(3),
                            library,
                            kconfig_of(m.group(1)),
                            m.group(1),
                            ml.conditions,
                            f"{path}:{ml.line}",
                        )
                    )
        elif m := _SRCS.match(ml.text):
            for tok in m.group(3).split():
                pat = _source_pattern(tok.split("|")[0], library)
                if pat:
                    srcs.append(SrcEntry(pat, kconfig_of(m.group(2)), m.group(2), ml.conditions))
    return MakefileInfo(library, libname, lib_kconfig, tuple(regs), tuple(srcs))


def _source_pattern(token: str, library: str) -> str | None:
    m = re.match(r"^\$\(\w+_BASE\)/(.*)$", token)
    if not m:
        return None
    rel = re.sub(r"\$\([^)]*\)", "*", m.group(1))
    return f"{library}/{rel}" if library else rel


def compiled_condition(file: str, sources: Sequence[SrcEntry]) -> SrcEntry | None:
    """The ``SRCS`` entry under which ``file`` is compiled, if listed."""
    for s in sources:
        if PurePosixPath(file).match(s.pattern) and file.count("/") == s.pattern.count("/"):
            return s
    return None


# ---------------------------------------------------------------- Kconfig

_KC_START = re.compile(r"^\s*(config|menuconfig)\s+([A-Za-z0-9_]+)\s*$")
_KC_END = re.compile(
    r"^\s*(endmenu|endif|endchoice|choice)\s*$|^\s*(menu|comment|source|mainmenu)\s+\S"
    r"|^\s*if\s+[A-Z0-9_!(]"
)
_KC_IF = re.compile(r"^\s*if\s+(.+?)\s*$")


@dataclass(frozen=True)
class KconfigSym:
    """A ``config``/``menuconfig`` block."""

    name: str
    at: str
    type: str | None
    default: str | None
    depends_on: tuple[str, ...]
    selects: tuple[str, ...]


def parse_kconfig(text: str, path: str) -> dict[str, KconfigSym]:
    """Parse ``config`` blocks; a block ends at the next block keyword even inside help text."""
    out: dict[str, KconfigSym] = {}
    cur: dict[str, Any] | None = None
    ifs: list[str] = []
    in_help = False

    def flush() -> None:
        if cur is not None:
            deps = tuple(ifs) + tuple(cur["depends"])
            out.setdefault(
                cur["name"], KconfigSym(cur["name"], cur["at"], cur["type"], cur["default"], deps, tuple(cur["select"]))
            )

    for no, line in enumerate(text.splitlines(), 1):
        if m := _KC_START.match(line):
            flush()
            cur, in_help = (
                {"name": m.group(2), "at": f"{path}:{no}", "type": None, "default": None, "depends": [], "select": []},
                False,
            )
            continue
        if _KC_END.match(line):
            flush()
            cur, in_help = None, False
            if m := _KC_IF.match(line):
                ifs.append(m.group(1))
            elif line.strip() == "endif" and ifs:
                ifs.pop()
            continue
        if cur is None or in_help:
            continue
        s = line.strip()
        if s in ("help", "---help---"):
            in_help = True
        elif m := re.match(r"^(bool|tristate|int|hex|string)\b", s):
            cur["type"] = m.group(1)
        elif m := re.match(r"^def_(bool|tristate)\s+(.*)$", s):
            cur["type"], cur["default"] = m.group(1), cur["default"] or m.group(2)
        elif m := re.match(r"^default\s+(.*)$", s):
            cur["default"] = cur["default"] or m.group(1)
        elif m := re.match(r"^depends\s+on\s+(.*)$", s):
            cur["depends"].append(m.group(1))
        elif m := re.match(r"^select\s+(.*)$", s):
            cur["select"].append(m.group(1))
    flush()
    return out


# ---------------------------------------------------------------- C parsing

_LEX = re.compile(r"//[^\n]*|/\*.*?\*/|\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*'", re.S)


def _blank(s: str) -> str:
    return re.sub(r"[^\n]", " ", s)


def blank_c(text: str, *, strings: bool) -> str:
    """Blank comments (and string contents if ``strings``) keeping offsets and newlines."""

    def repl(m: re.Match[str]) -> str:
        tok = m.group(0)
        if tok[0] == "/":
            return _blank(tok)
        return tok[0] + _blank(tok[1:-1]) + tok[-1] if strings else tok

    return _LEX.sub(repl, text)


def match_paren(text: str, start: int, open_: str = "(", close: str = ")") -> int:
    """Index just after the bracket matching ``text[start]`` (``-1`` if unbalanced)."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == open_:
            depth += 1
        elif text[i] == close:
            depth -= 1
            if depth == 0:
                return i + 1
    return -1


def split_top(text: str, sep: str = ",") -> list[str]:
    """Split at ``sep`` outside brackets."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == sep and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts]


_DEFINE = re.compile(r"\b(UK_(?:LL)?SYSCALL(?:_R)?(?:_E|_U)?_DEFINE)\s*\(")
_DIRECT = re.compile(r"^long\s+uk_syscall_([re])_(\w+)\s*\(", re.M)
_PP = re.compile(r"^[ \t]*#[ \t]*(if|ifdef|ifndef|elif|else|endif|define)\b[ \t]*(.*)$", re.M)


@dataclass(frozen=True)
class Definition:
    """A C definition of ``uk_syscall_*_<name>``."""

    name: str
    macro: str
    file: str
    line: int
    params: tuple[str, ...]
    body: str  # comments blanked, strings kept
    code: str  # comments and strings blanked
    pp_conditions: tuple[str, ...]


def line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def pp_stack_index(code: str) -> tuple[list[int], list[tuple[str, ...]]]:
    """(line numbers, stack after that line) for every ``#if`` family directive."""
    lines: list[int] = [0]
    stacks: list[tuple[str, ...]] = [()]
    stack: list[tuple[list[str], str | None]] = []  # per #if: (earlier branches, current branch)
    dirs = list(_PP.finditer(code))
    for i, m in enumerate(dirs):
        kw, arg = m.group(1), m.group(2).strip()
        nxt = dirs[i + 1] if i + 1 < len(dirs) else None
        if kw == "define":
            continue
        if kw in ("if", "ifdef", "ifndef"):
            guard = (
                kw == "ifndef" and nxt is not None and nxt.group(1) == "define" and nxt.group(2).split()[:1] == [arg]
            )
            stack.append(
                ([], None if guard else {"if": arg, "ifdef": f"defined({arg})", "ifndef": f"!defined({arg})"}[kw])
            )
        elif kw in ("elif", "else") and stack:
            prior, cur = stack[-1]
            stack[-1] = (prior + ([cur] if cur else []), arg if kw == "elif" else None)
        elif kw == "endif" and stack:
            stack.pop()
        lines.append(line_of(code, m.start()))
        stacks.append(tuple(c for prior, cur in stack for c in [f"!({p})" for p in prior] + ([cur] if cur else [])))
    return lines, stacks


def pp_conditions_at(index: tuple[list[int], list[tuple[str, ...]]], line: int) -> tuple[str, ...]:
    lines, stacks = index
    return stacks[bisect.bisect_right(lines, line - 1) - 1]


_PP_DEFINE = re.compile(r"[ \t]*#[ \t]*define\b")


def _in_define(code: str, pos: int) -> bool:
    start = code.rfind("\n", 0, pos) + 1
    while True:
        if _PP_DEFINE.match(code, start):
            return True
        if start < 2 or code[start - 2] != "\\":
            return False
        start = code.rfind("\n", 0, start - 1) + 1


def _find_body(code: str, pos: int) -> int:
    """Offset of the ``{`` opening a body after a header ending at ``pos`` (``-1`` if none)."""
    n = len(code)
    while pos < n:
        if code[pos].isspace():
            pos += 1
        elif code[pos] == "#":
            while True:
                eol = code.find("\n", pos)
                if eol < 0:
                    return -1
                if code[eol - 1] != "\\":
                    break
                pos = eol + 1
            pos = eol + 1
        elif m := _DEFINE.match(code, pos):
            end = match_paren(code, m.end() - 1)
            if end < 0:
                return -1
            pos = end
        elif code[pos] == "{":
            return pos
        else:
            return -1
    return -1


def find_definitions(text: str, path: str) -> list[Definition]:
    """All ``UK_*SYSCALL*_DEFINE`` and direct ``long uk_syscall_[re]_x(...)`` definitions."""
    body_text = blank_c(text, strings=False)
    code = blank_c(text, strings=True)
    index = pp_stack_index(code)
    out: list[Definition] = []
    for m in _DEFINE.finditer(code):
        if _in_define(code, m.start()):
            continue
        end = match_paren(code, m.end() - 1)
        args = split_top(code[m.end() : end - 1]) if end > 0 else []
        if len(args) < 2 or not re.fullmatch(r"\w+", args[1]):
            continue
        params = tuple(_last_ident(a) for a in args[3::2])
        if d := _definition(code, body_text, path, index, m, end, args[1], m.group(1), params):
            out.append(d)
    for m in _DIRECT.finditer(code):
        end = match_paren(code, m.end() - 1)
        params = tuple(_last_ident(a) for a in split_top(code[m.end() : end - 1]) if a != "void")
        if end > 0 and (
            d := _definition(code, body_text, path, index, m, end, m.group(2), f"uk_syscall_{m.group(1)}", params)
        ):
            out.append(d)
    return out


def _last_ident(decl: str) -> str:
    ids = re.findall(r"[A-Za-z_]\w*", decl)
    return ids[-1] if ids else ""


def _definition(
    code: str,
    body_text: str,
    path: str,
    index: Any,
    m: re.Match[str],
    end: int,
    name: str,
    macro: str,
    params: tuple[str, ...],
) -> Definition | None:
    brace = _find_body(code, end)
    close = match_paren(code, brace, "{", "}") if brace >= 0 else -1
    if close < 0:
        return None
    line = line_of(code, m.start())
    return Definition(
        name, macro, path, line, params, body_text[brace:close], code[brace:close], pp_conditions_at(index, line)
    )


def find_function(code: str, body_text: str, fname: str) -> tuple[int, str, str, tuple[str, ...]] | None:
    """Column-0 definition of ``fname``: (offset, body, code body, params)."""
    pat = re.compile(rf"^(?:[A-Za-z_][\w \t\*]*?[ \t\*])?{re.escape(fname)}\s*\(", re.M)
    for m in pat.finditer(code):
        end = match_paren(code, m.end() - 1)
        if end < 0:
            continue
        rest = code[end : end + 200].lstrip()
        if not rest.startswith("{"):
            continue
        brace = code.index("{", end)
        close = match_paren(code, brace, "{", "}")
        if close < 0:
            continue
        params = tuple(_last_ident(a) for a in split_top(code[m.end() : end - 1]) if a.strip() != "void")
        return m.start(), body_text[brace:close], code[brace:close], params
    return None


# ---------------------------------------------------------------- classification

_STRIP_CALLS = re.compile(r"\b(?:UK_WARN_STUBBED|WARN_STUBBED|uk_pr_\w+|UK_ASSERT|UK_BUGON|UK_BUG_ON)\s*\(")
_MARKER_CALL = re.compile(r"\b(?:UK_)?WARN_STUBBED\s*\(")
_MARKER_TEXT = re.compile(r"stubbed|\bSTUB\b|not (?:yet )?(?:implemented|supported)", re.I)
_STRING = re.compile(r"\"(?:\\.|[^\"\\\n])*\"")
_CONTROL = re.compile(r"\b(?:if|switch|for|while|goto)\b|\?")
_CONST = re.compile(r"^\(?\s*(-?)\s*\(?\s*([A-Z_][A-Z0-9_]*|\d+|0x[0-9a-fA-F]+)\s*\)?\s*\)?$")
_ENOTSUP = {"-ENOTSUP", "-EOPNOTSUPP"}
_TRIVIAL_CALLS = {
    "memset",
    "memcpy",
    "sigemptyset",
    "sigfillset",
    "sigaddset",
    "sigdelset",
    "likely",
    "unlikely",
    "sizeof",
    "__builtin_memset",
    "__builtin_memcpy",
}
_KEYWORDS = {
    "if",
    "else",
    "switch",
    "case",
    "default",
    "for",
    "while",
    "do",
    "goto",
    "return",
    "break",
    "continue",
    "sizeof",
    "struct",
    "union",
    "enum",
    "const",
    "volatile",
    "static",
    "register",
    "unsigned",
    "signed",
    "long",
    "short",
    "int",
    "char",
    "void",
    "bool",
    "_Bool",
    "float",
    "double",
    "true",
    "false",
    "__unused",
    "__maybe_unused",
    "typeof",
    "__typeof__",
    "inline",
    "extern",
    "auto",
}
_TYPE_WORD = r"(?:unsigned|signed|long|short|int|char|void|bool|_Bool|float|double|\w+_t|__[us]\d+)"
_DECL = re.compile(
    rf"^\s*(?:(?:const|volatile|static|register)\s+)*(?:(?:struct|union|enum)\s+\w+|{_TYPE_WORD}"
    rf"(?:\s+{_TYPE_WORD})*)\s*(?:const\s+)?\**\s*(?:const\s+)?([A-Za-z_]\w*)\s*(.*)$",
    re.S,
)


@dataclass(frozen=True)
class Verdict:
    """Classification of one definition."""

    status: str  # implemented | stub
    detail: str  # full, partial(...), constant(X), enosys, enotsup, ...
    followed: tuple[str, ...] = ()


def strip_calls(text: str) -> str:
    """Drop logging/assert/stub-marker statements and ``(void)x;`` casts."""
    out, pos = [], 0
    for m in _STRIP_CALLS.finditer(text):
        if m.start() < pos:
            continue
        end = match_paren(text, m.end() - 1)
        if end < 0:
            continue
        semi = re.match(r"\s*;", text[end:])
        out.append(text[pos : m.start()])
        pos = end + (semi.end() if semi else 0)
    out.append(text[pos:])
    return re.sub(r"\(\s*void\s*\)\s*[A-Za-z_]\w*\s*;", "", "".join(out))


def normalise(body: str) -> str:
    """Inner statements of a ``{...}`` body, stripped of noise, whitespace collapsed."""
    inner = body.strip()
    if inner.startswith("{") and inner.endswith("}"):
        inner = inner[1:-1]
    return re.sub(r"\s+", " ", strip_calls(inner)).strip()


def has_stub_marker(body: str) -> bool:
    """``UK_WARN_STUBBED()`` or a string literal saying stub / not implemented."""
    return bool(_MARKER_CALL.search(body)) or any(_MARKER_TEXT.search(s.group(0)) for s in _STRING.finditer(body))


def const_value(expr: str) -> str | None:
    """``-ENOSYS``/``0``/``UK_DEFAULT_UID`` for a constant return expression."""
    expr = re.sub(r"^\(\s*(?:(?:unsigned|signed|long|int|short|char|[a-z_]\w*_t)\s*)+\)\s*", "", expr.strip())
    m = _CONST.match(expr)
    return f"{m.group(1)}{m.group(2)}" if m else None


def delegate_target(norm: str) -> str | None:
    """``f`` when the normalised body is exactly ``return f(args);``."""
    m = re.match(r"^return\s+(?:\(\s*\w+\s*\)\s*)?([A-Za-z_]\w*)\s*\(", norm)
    if not m:
        return None
    end = match_paren(norm, m.end() - 1)
    return m.group(1) if end > 0 and norm[end:].strip() == ";" else None


def classify_body(body: str, code: str, params: Sequence[str], name: str, nargs: int) -> Verdict:
    """Classify one body (rules of notes §1.6, first match wins)."""
    marker = has_stub_marker(body)
    norm = normalise(body)
    control = bool(_CONTROL.search(normalise(code)))
    returns = [r.strip() for r in re.findall(r"\breturn\b([^;]*);", norm)]
    if (m := re.fullmatch(r"return\s+([^;]*);", norm)) and (c := const_value(m.group(1))) is not None:
        return _const_verdict(c, marker, name, nargs)
    values = [const_value(r) for r in returns]
    if returns and all(v == "-ENOSYS" for v in values):
        return Verdict("stub", "enosys")
    if returns and all(v in _ENOTSUP for v in values):
        return Verdict("stub", "enotsup")
    if m := re.fullmatch(r"errno\s*=\s*(E[A-Z0-9]+)\s*;\s*return\s+-1\s*;", norm):
        return Verdict("stub", f"errno_{m.group(1)}")
    if marker:
        return Verdict("implemented", "partial(stub_paths)") if control else Verdict("stub", "warn_stubbed")
    if is_stateless_fake(normalise(code), params):
        return Verdict("stub", "fake(no_state)")
    if control and "-ENOSYS" in re.sub(r"\s+", "", norm):
        return Verdict("implemented", "partial(enosys_paths)")
    return Verdict("implemented", "full")


def _const_verdict(c: str, marker: bool, name: str, nargs: int) -> Verdict:
    if c == "-ENOSYS":
        return Verdict("stub", "enosys")
    if c in _ENOTSUP:
        return Verdict("stub", "enotsup")
    if c.startswith("-E"):
        return Verdict("stub", f"const_error({c})")
    if c == "0":
        if marker:
            return Verdict("stub", "warn_stubbed_fake_success")
        if nargs == 0 and name.startswith("get"):
            return Verdict("implemented", "constant(0)")
        return Verdict("stub", "noop_success")
    return Verdict("implemented", f"constant({c})")


def declared_locals(code: str) -> set[str]:
    """Names declared at the start of a statement (``int a, *b = 0;``, ``struct x y;``)."""
    names: set[str] = set()
    for stmt in re.split(r"[;{}]", code):
        m = _DECL.match(stmt)
        if not m or m.group(1) in _KEYWORDS:
            continue
        names.add(m.group(1))
        for part in split_top(m.group(2))[1:]:
            if d := re.match(r"^\**\s*([A-Za-z_]\w*)", part):
                names.add(d.group(1))
    return names


def is_stateless_fake(code: str, params: Sequence[str]) -> bool:
    """True when the body touches only its parameters, locals, members and constants."""
    allowed = set(params) | declared_locals(code) | _KEYWORDS
    toks = re.findall(r"->|[A-Za-z_]\w*|\d\w*|\S", code)
    for i, tok in enumerate(toks):
        if not re.match(r"[A-Za-z_]", tok):
            continue
        prev = toks[i - 1] if i else ""
        nxt = toks[i + 1] if i + 1 < len(toks) else ""
        if prev in (".", "->", "struct", "union", "enum"):
            continue
        if nxt == "(" and tok not in _KEYWORDS:
            if not (tok in _TRIVIAL_CALLS or tok.isupper() or tok.startswith("uk_pr_")):
                return False
            continue
        if (
            tok in allowed
            or tok.endswith("_t")
            or re.fullmatch(r"[A-Z_][A-Z0-9_]*", tok)
            or re.fullmatch(r"__[us]\d+", tok)
        ):
            continue
        return False
    return True


# ---------------------------------------------------------------- scanning a tree

_NR = re.compile(r"^\s*#\s*define\s+__NR_(\w+)\s+(\d+)\b", re.M)
_STATUS_RANK = {"full": 0, "constant": 1, "partial": 2}


@dataclass
class ScannedTree:
    """Everything the generator extracted from one tree."""

    tree: SourceTree
    label: str  # "core" or an extra source name
    makefiles: dict[str, MakefileInfo]  # library dir -> info
    kconfig: dict[str, KconfigSym]
    definitions: dict[str, list[Definition]]  # syscall name -> definitions
    _code_cache: dict[str, tuple[str, str]]

    def library_of(self, path: str) -> str:
        """Directory of the nearest ``Makefile.uk`` above ``path`` (``lib/vfscore``; ``""`` = tree root)."""
        return library_of(path, self.makefiles)


def library_of(path: str, lib_dirs: Mapping[str, Any] | set[str]) -> str:
    """Nearest ancestor directory of ``path`` that holds a ``Makefile.uk``."""
    parent = PurePosixPath(path).parent
    while str(parent) not in ("", "."):
        if str(parent) in lib_dirs:
            return str(parent)
        parent = parent.parent
    return ""


def merge_makefiles(parsed: Sequence[MakefileInfo]) -> MakefileInfo:
    """Several ``Makefile.uk`` of one library directory (only the first ``addlib`` counts)."""
    first = parsed[0]
    return MakefileInfo(
        first.library,
        next((m.libname for m in parsed if m.libname), None),
        next((m.lib_kconfig for m in parsed if m.lib_kconfig), None),
        tuple(r for m in parsed for r in m.registrations),
        tuple(s for m in parsed for s in m.sources),
    )


def scan_tree(tree: SourceTree, label: str = "core") -> ScannedTree:
    """Parse every ``Makefile.uk``, ``Config.uk`` and C definition of a tree."""
    mk = [f for f in tree.files if PurePosixPath(f).name == "Makefile.uk"]
    kc = [f for f in tree.files if PurePosixPath(f).name == "Config.uk"]
    csrc = [f for f in tree.files if f.endswith(C_SUFFIXES) and not _excluded(f)]
    tree.prefetch(mk + kc + csrc)
    by_dir: dict[str, list[MakefileInfo]] = {}
    for f in mk:
        lib = str(PurePosixPath(f).parent).removeprefix(".")
        by_dir.setdefault(lib, []).append(parse_makefile(tree.read(f) or "", f, lib))
    makefiles = {lib: merge_makefiles(parsed) for lib, parsed in by_dir.items()}
    kconfig: dict[str, KconfigSym] = {}
    for f in kc:
        for k, v in parse_kconfig(tree.read(f) or "", f).items():
            kconfig.setdefault(k, v)
    defs: dict[str, list[Definition]] = {}
    for f in csrc:
        text = tree.read(f) or ""
        if "_DEFINE" in text or "uk_syscall_" in text:
            for d in find_definitions(text, f):
                defs.setdefault(d.name, []).append(d)
    return ScannedTree(tree, label, makefiles, kconfig, defs, {})


def _excluded(path: str) -> bool:
    return path.startswith(("doc/", "support/", "lib/syscall_shim/include/", "tests/")) or "/tests/" in path


def parse_numbers(tree: SourceTree) -> dict[str, dict[str, int]]:
    """``{arch: {name: nr}}`` from ``lib/syscall_shim/arch/<arch>/syscall.h.in``."""
    out = {}
    for arch in ARCHES:
        text = tree.read(f"lib/syscall_shim/arch/{arch}/syscall.h.in")
        out[arch] = {m.group(1): int(m.group(2)) for m in _NR.finditer(text or "")}
    if not out["x86_64"]:
        raise InputError(f"{str(tree.root)!r}: no lib/syscall_shim/arch/x86_64/syscall.h.in (not a Unikraft tree?)")
    return out


def supported_suffixes(tree: SourceTree) -> list[str]:
    """Registration suffixes this release's syscall_shim understands (``u`` 0.16, ``e`` 0.17+)."""
    text = tree.read("lib/syscall_shim/include/uk/syscall.h") or ""
    return [
        s for s, mac in (("e", "UK_LLSYSCALL_R_E_DEFINE"), ("u", "UK_LLSYSCALL_R_U_DEFINE")) if f"define {mac}" in text
    ]


def read_version(tree: SourceTree) -> str | None:
    """``UK_VERSION.UK_SUBVERSION.UK_EXTRAVERSION`` from ``version.mk`` or ``Makefile``."""
    for f in ("version.mk", "Makefile"):
        text = tree.read(f) or ""
        vals = dict(re.findall(r"^(UK_(?:SUB|EXTRA)?VERSION)\s*[:?]?=\s*(\S*)", text, re.M))
        if "UK_VERSION" in vals:
            return ".".join(
                v for v in (vals["UK_VERSION"], vals.get("UK_SUBVERSION"), vals.get("UK_EXTRAVERSION")) if v
            )
    return None


def _code_for(st: ScannedTree, path: str) -> tuple[str, str]:
    if path not in st._code_cache:
        text = st.tree.read(path) or ""
        st._code_cache[path] = (blank_c(text, strings=True), blank_c(text, strings=False))
    return st._code_cache[path]


Helper = tuple[str, int, str, str, tuple[str, ...]]  # file, line, body, code body, params


def find_helper(st: ScannedTree, library: str, fname: str, near: str) -> Helper | None:
    """Definition of a helper function: same file first, then the same library."""
    files = [near] + [
        f
        for f in st.tree.files
        if f != near and f.endswith(C_SUFFIXES) and st.library_of(f) == library and not _excluded(f)
    ]
    for f in files:
        code, body_text = _code_for(st, f)
        if fname not in code:
            continue
        if hit := find_function(code, body_text, fname):
            off, body, cbody, params = hit
            return f, line_of(code, off), body, cbody, params
    return None


def classify_definition(
    st: ScannedTree, d: Definition, nargs: int, depth: int = 0, seen: frozenset[str] = frozenset()
) -> Verdict:
    """Classify ``d``, following a single-call delegation up to three levels."""
    return _classify(st, d.name, st.library_of(d.file), d.file, d.body, d.code, d.params, nargs, depth, seen | {d.name})


def _classify(
    st: ScannedTree,
    name: str,
    library: str,
    file: str,
    body: str,
    code: str,
    params: Sequence[str],
    nargs: int,
    depth: int,
    seen: frozenset[str],
) -> Verdict:
    target = delegate_target(normalise(code))
    if target and depth < 3:
        if m := re.fullmatch(r"uk_syscall_[re]_(\w+)", target):
            other = m.group(1)
            cands = _defs_for(st, other, library)
            if cands and other not in seen:
                v = best_verdict([classify_definition(st, c, nargs, depth + 1, seen) for c in cands])
                return Verdict(v.status, v.detail, (f"uk_syscall_r_{other}", *v.followed))
        elif hit := find_helper(st, library, target, file):
            f, line, hbody, hcode, hparams = hit
            v = _classify(st, name, library, f, hbody, hcode, hparams, nargs, depth + 1, seen)
            return Verdict(v.status, v.detail, (f"{target}@{f}:{line}", *v.followed))
    return classify_body(body, code, params, name, nargs)


def _defs_for(st: ScannedTree, name: str, library: str) -> list[Definition]:
    defs = st.definitions.get(name, [])
    same = [d for d in defs if st.library_of(d.file) == library]
    return same or defs


def verdict_rank(v: Verdict) -> tuple[int, int]:
    """Sort key: implemented full < constant < partial < stub."""
    if v.status == "implemented":
        return 0, _STATUS_RANK.get(v.detail.split("(")[0], 3)
    return (1, 0) if v.status == "stub" else (2, 0)


def best_verdict(vs: Sequence[Verdict]) -> Verdict:
    return min(vs, key=verdict_rank) if vs else Verdict("unknown", "registered_without_definition")


BEHAVIOR = {
    "full": "real",
    "partial": "real_partial",
    "constant": "constant",
    "noop_success": "fake_success",
    "fake": "fake_success",
    "warn_stubbed_fake_success": "fake_success",
    "warn_stubbed": "fake_success",
    "enosys": "error_enosys",
    "errno_ENOSYS": "error_enosys",
    "generated_enosys_stub": "error_enosys",
    "not_in_release_syscall_table": "error_enosys",
    "enotsup": "error_other",
    "const_error": "error_other",
    "registered_without_definition": "unknown",
}


def behavior_of(detail: str) -> str:
    """Collapse a detail into the behaviour enum."""
    key = detail.split("(")[0]
    if key.startswith("errno_") and key != "errno_ENOSYS":
        return "error_other"
    return BEHAVIOR.get(key, "unknown")


# ---------------------------------------------------------------- table assembly


def _loc(st: ScannedTree, at: str) -> str:
    return at if st.label == "core" else f"{st.label}:{at}"


def provider_record(st: ScannedTree, reg: Registration, suffixes: Sequence[str]) -> dict[str, Any]:
    """One provider (registration + best definition) as a JSON object."""
    mk = st.makefiles[reg.library]
    judged = [(d, classify_definition(st, d, reg.nargs)) for d in _defs_for(st, reg.name, reg.library)]
    judged.sort(key=lambda dv: (verdict_rank(dv[1]), dv[0].file, dv[0].line))
    verdict = judged[0][1] if judged else best_verdict([])
    best = judged[0][0] if judged else None
    sym = st.kconfig.get(reg.kconfig[len("CONFIG_") :]) if reg.kconfig else None
    rec: dict[str, Any] = {
        "source": st.label,
        "library": reg.library or st.label,
        "libname": mk.libname,
        "registration": f"{reg.name}-{reg.nargs}{reg.suffix}",
        "provided_at": _loc(st, reg.at),
        "kconfig": reg.kconfig,
        "kconfig_defined_at": _loc(st, sym.at) if sym else None,
        "kconfig_default": sym.default if sym else None,
        "kconfig_depends_on": list(sym.depends_on) if sym else [],
        "make_conditions": list(reg.make_conditions),
        "suffix_supported": not reg.suffix or reg.suffix in suffixes,
        "status": verdict.status,
        "detail": verdict.detail,
        "behavior": behavior_of(verdict.detail),
        "followed": list(verdict.followed),
        "macro": best.macro if best else None,
        "defined_at": _loc(st, f"{best.file}:{best.line}") if best else None,
        "pp_conditions": list(best.pp_conditions) if best else [],
        "compiled_if": _compiled_if(st, best.file) if best else None,
        # app-elfloader's registrations exist only in an app-elfloader build: the binary-compatibility
        # route; core registrations serve both routes
        "routes": [ROUTE_BINARY] if st.label == "app-elfloader" else [ROUTE_BINARY, ROUTE_NATIVE],
    }
    rec["requires"], rec["requires_other"] = provider_requirement(rec)
    if len(judged) > 1:  # alternative definitions (#if variants, per-arch headers)
        rec["all_definitions"] = [
            {"at": _loc(st, f"{d.file}:{d.line}"), "detail": v.detail, "pp_conditions": list(d.pp_conditions)}
            for d, v in judged
        ]
    return rec


def _compiled_if(st: ScannedTree, file: str) -> str | None:
    mk = st.makefiles.get(st.library_of(file))
    entry = compiled_condition(file, mk.sources) if mk else None
    if entry is None:
        return None
    cond = entry.kconfig or entry.raw_condition or "y"
    return " && ".join([cond, *entry.make_conditions])


def extra_conditions(p: Mapping[str, Any]) -> list[str]:
    """Conditions beyond the registration's Kconfig option."""
    out = list(p["make_conditions"]) + [f"#if {c}" for c in p["pp_conditions"]]
    if p["compiled_if"] and p["compiled_if"] not in ("y", p["kconfig"]):
        out.append(f"compiled if {p['compiled_if']}")
    return out


def build_rows(
    core: ScannedTree,
    extras: Sequence[ScannedTree],
    numbers: Mapping[str, Mapping[str, int]],
    suffixes: Sequence[str],
    release: str | None = None,
    version: str | None = None,
) -> dict[str, dict[str, Any]]:
    """One row per syscall name (number tables plus anything registered)."""
    regs: dict[str, list[tuple[ScannedTree, Registration]]] = {}
    for st in (core, *extras):
        for mk in sorted(st.makefiles.values(), key=lambda m: m.library):
            for r in mk.registrations:
                regs.setdefault(r.name, []).append((st, r))
    names = (
        set(numbers["x86_64"]) | set(numbers["arm64"]) | {n for n, rs in regs.items() if any(s is core for s, _ in rs)}
    )
    rows = {}
    for name in sorted(names):
        provs = [provider_record(st, r, suffixes) for st, r in regs.get(name, [])]
        for p in provs:
            p["external"] = p["source"] != "core"
            if p["external"]:
                ext = next(e for e in extras if e.label == p["source"])
                p["verified"], p["note"] = external_verified(ext, {release, version}, p["suffix_supported"])
        rows[name] = make_row(name, provs, numbers)
    return rows


def external_verified(ext: ScannedTree, core: set[str | None], suffix_ok: bool) -> tuple[bool, str | None]:
    """An external provider counts as verified only when its release is the core's release.

    app-elfloader is released together with the core (RELEASE-x tags in both repositories).  The
    newest app-elfloader obtainable is 0.16.3; its registrations use 0.16's ``u`` suffix, which 0.17
    renamed ``e``, so on a newer core it does not build unchanged: its rows are reported with their
    own status, never as provided (``unverified``).
    """
    ext_release = default_release(ext.tree.ref, None) if ext.tree.ref else None
    label = (
        f"{ext.label} {ext_release}" if ext_release and ext_release != "unknown" else f"{ext.label} (release unknown)"
    )
    if ext_release is not None and ext_release in core and suffix_ok:
        return True, None
    why = "" if suffix_ok else "; its registration suffix is not understood by this release's syscall_shim"
    return False, f"{label}, unverified for this release{why}"


def make_row(name: str, provs: list[dict[str, Any]], numbers: Mapping[str, Mapping[str, int]]) -> dict[str, Any]:
    """Pick the best core provider; external ones are listed but do not change the status."""
    x86, arm = numbers["x86_64"].get(name), numbers["arm64"].get(name)
    core = sorted(
        (p for p in provs if not p["external"]), key=lambda p: verdict_rank(Verdict(p["status"], p["detail"]))
    )
    row: dict[str, Any] = {
        "name": name,
        "x86_64_nr": x86,
        "arm64_nr": arm,
        "in_release_table": x86 is not None or arm is not None,
        "providers": provs,
    }
    if core:
        b = core[0]
        row.update(
            status=b["status"],
            detail=b["detail"],
            behavior=b["behavior"],
            library=b["library"],
            kconfig=b["kconfig"],
            extra_conditions=extra_conditions(b),
            provided_at=b["provided_at"],
            defined_at=b["defined_at"],
        )
    else:
        detail = "generated_enosys_stub" if row["in_release_table"] else "not_in_release_syscall_table"
        row.update(
            status="absent",
            detail=detail,
            behavior="error_enosys",
            library=None,
            kconfig=None,
            extra_conditions=[],
            provided_at=None,
            defined_at=None,
        )
    ext = [p for p in provs if p["external"]]
    if ext:
        e = min(ext, key=lambda p: verdict_rank(Verdict(p["status"], p["detail"])))
        row["external_status"] = f"{e['status']}/{e['detail']}" + (
            "" if e["suffix_supported"] else " (suffix not supported by this release)"
        )
    row["routes"] = {route: route_status(row, provs, route) for route in ROUTES}
    return row


def route_status(row: Mapping[str, Any], provs: Sequence[Mapping[str, Any]], route: str) -> dict[str, Any]:
    """Status of a row in one route: the best provider that route builds.

    Core providers serve both routes; app-elfloader's serve the binary-compatibility route only.  An
    external provider whose release differs from the core's (``verified: false``) never makes a row
    provided: when it is the only provider the row is ``unverified``, with its note.
    """
    usable = [p for p in provs if route in p["routes"] and p.get("verified", True)]
    pending = [p for p in provs if route in p["routes"] and not p.get("verified", True)]
    if usable:
        b = min(usable, key=lambda p: (verdict_rank(Verdict(p["status"], p["detail"])), p["external"]))
        return {
            "status": b["status"],
            "detail": b["detail"],
            "behavior": b["behavior"],
            "source": b["source"],
            "library": b["library"],
            "kconfig": b["kconfig"],
            "requires": b["requires"],
        }
    if pending:
        b = min(pending, key=lambda p: verdict_rank(Verdict(p["status"], p["detail"])))
        return {
            "status": "unverified",
            "detail": b["detail"],
            "behavior": b["behavior"],
            "source": b["source"],
            "library": b["library"],
            "kconfig": b["kconfig"],
            "requires": b["requires"],
            "note": b["note"],
        }
    return {
        "status": "absent",
        "detail": row["detail"],
        "behavior": "error_enosys",
        "source": None,
        "library": None,
        "kconfig": None,
        "requires": None,
    }


def count_rows(rows: Mapping[str, Mapping[str, Any]], numbers: Mapping[str, Mapping[str, int]]) -> dict[str, Any]:
    """Summary counts (core only; ``absent`` counts names of the release's x86_64 table)."""
    reg = [r for r in rows.values() if r["status"] != "absent"]
    impl = [r for r in reg if r["status"] == "implemented"]
    kinds: dict[str, int] = {}
    libs: dict[str, int] = {}
    for r in reg:
        if r["status"] == "stub":
            kinds[r["detail"]] = kinds.get(r["detail"], 0) + 1
        for p in r["providers"]:
            if not p["external"]:
                libs[p["library"]] = libs.get(p["library"], 0) + 1
    return {
        "x86_64_table": len(numbers["x86_64"]),
        "arm64_table": len(numbers["arm64"]),
        "registered": len(reg),
        "implemented": len(impl),
        "implemented_full": sum(r["detail"] == "full" for r in impl),
        "implemented_partial": sum(r["detail"].startswith("partial") for r in impl),
        "implemented_constant": sum(r["detail"].startswith("constant") for r in impl),
        "stub": sum(r["status"] == "stub" for r in reg),
        "unknown": sum(r["status"] == "unknown" for r in reg),
        "absent": sum(r["status"] == "absent" and r["x86_64_nr"] is not None for r in rows.values()),
        "registered_not_in_table": sum(not r["in_release_table"] for r in reg),
        "stub_kinds": kinds,
        "registrations_by_library": libs,
        # per route, over the release's x86_64 table (as ``absent`` above)
        "routes": {
            route: {
                st: sum(r["routes"][route]["status"] == st and r["x86_64_nr"] is not None for r in rows.values())
                for st in ("implemented", "stub", "unverified", "absent", "unknown")
            }
            for route in ROUTES
        },
    }


def defined_not_registered(core: ScannedTree, rows: Mapping[str, Mapping[str, Any]]) -> list[dict[str, str]]:
    """Core definitions no ``Makefile.uk`` registers (unreachable by number)."""
    out: list[dict[str, str]] = []
    for name, defs in sorted(core.definitions.items()):
        if name not in rows or rows[name]["status"] == "absent":
            out.extend({"name": name, "defined_at": f"{d.file}:{d.line}"} for d in defs)
    return out


def build_table(
    core_tree: SourceTree,
    *,
    release: str | None = None,
    extras: Sequence[tuple[str, SourceTree]] = (),
    libs: Sequence[tuple[str, SourceTree]] = (),
    command: str = "",
    kconfig: bool | None = None,
    previous: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Generate the whole table document for one Unikraft tree.

    ``extras`` are external syscall providers (app-elfloader); ``libs`` are external libraries that
    take part in the Kconfig evaluation only (lib-musl).  ``kconfig``: evaluate Kconfig with
    kconfiglib (``None``: when kconfiglib is installed and the tree has a top-level ``Config.uk``).
    ``previous``: the table of an older release, from which option renames are derived.
    """
    numbers = parse_numbers(core_tree)
    suffixes = supported_suffixes(core_tree)
    core = scan_tree(core_tree)
    ext = [scan_tree(t, label) for label, t in extras]
    version = read_version(core_tree)
    label = release or default_release(core_tree.ref, version)
    rows = build_rows(core, ext, numbers, suffixes, release=label, version=version)
    from uk_depscan.tablegen import kconfig as kc

    if kconfig is None:
        kconfig = kc.kconfiglib_available() and core_tree.has("Config.uk")
    ksection = (
        kc.evaluate(core_tree, extras, libs, rows)
        if kconfig
        else {"evaluated": False, "reason": "not evaluated (kconfiglib not installed or no top-level Config.uk)"}
    )
    listed = ksection.get("defined_options")
    defined: set[str] = set(listed if isinstance(listed, list) else ()) or {
        "CONFIG_" + k for st in (core, *ext) for k in st.kconfig
    }
    ksection.pop("defined_options", None)
    renames = derive_renames(previous, rows, defined) if previous is not None else {}
    return {
        "schema_version": 1,
        "kind": "unikraft-syscall-table",
        "release": release or default_release(core_tree.ref, version),
        "commit": core_tree.commit,
        "ref": core_tree.ref,
        "unikraft_version": version,
        "generator": {"name": GENERATOR_NAME, "version": GENERATOR_VERSION},
        "command": command,
        "source": {"repo": "unikraft/unikraft", "ref": core_tree.ref, "commit": core_tree.commit},
        "extra_sources": [{"name": label, "ref": t.ref, "commit": t.commit} for label, t in extras],
        "arch_tables": {a: f"lib/syscall_shim/arch/{a}/syscall.h.in" for a in ARCHES},
        "registration_suffixes": suffixes,
        "counts": count_rows(rows, numbers),
        "defined_not_registered": defined_not_registered(core, rows),
        "kconfig": ksection,
        "option_renames": renames,
        "syscalls": rows,
    }


def derive_renames(
    previous: Mapping[str, Any], rows: Mapping[str, Mapping[str, Any]], defined: set[str]
) -> dict[str, dict[str, Any]]:
    """Options of an older table that this release no longer defines, mapped to their successors.

    Evidence, per syscall: the options the older release's providers required, against the
    options this release's providers of the same syscall require.  An option that vanished is
    renamed to the options that appear in its place (several old options merging into one, e.g.
    ``LIBPOSIX_PROCESS_PIDS`` and ``_CLONE`` into ``_MULTITHREADING``, give two entries with the
    same target).  Renames the older table already carried are chained through.
    """
    from uk_depscan.tablegen.kconfig import requirement_options

    def reqs(provs: Sequence[Mapping[str, Any]]) -> set[str]:
        out: set[str] = set()
        for p in provs:
            text = p.get("requires") or provider_requirement(p)[0]
            out |= set(requirement_options(text))
        return out

    votes: dict[str, dict[str, set[str]]] = {}
    for name, old_row in previous.get("syscalls", {}).items():
        new_row = rows.get(name)
        if new_row is None:
            continue
        before, after = reqs(old_row.get("providers", [])), reqs(new_row["providers"])
        for gone in sorted(before - after):
            if gone in defined:
                continue
            for succ in sorted(after - before):
                votes.setdefault(gone, {}).setdefault(succ, set()).add(name)
    out: dict[str, dict[str, Any]] = {}
    prev_release = str(previous.get("release"))
    for gone, succs in sorted(votes.items()):
        best = max(len(v) for v in succs.values())
        targets = sorted(s for s, v in succs.items() if len(v) == best)
        out[gone] = {
            "to": targets,
            "since": prev_release,
            "evidence": sorted(set().union(*(succs[t] for t in targets))),
        }
    for old, rec in previous.get("option_renames", {}).items():  # chain older renames through
        to = [t2 for t in rec["to"] for t2 in (out[t]["to"] if t in out else [t])]
        out.setdefault(old, {**rec, "to": sorted(set(to))})
    return dict(sorted(out.items()))


def default_release(ref: str | None, version: str | None) -> str:
    """``RELEASE-0.17.0`` -> ``0.17.0``; otherwise the ref name or the tree's version."""
    if ref and (m := re.fullmatch(r"(?:refs/tags/)?RELEASE-(.+)", ref)):
        return m.group(1)
    if ref and ref != "HEAD":
        return ref
    return version or "unknown"


def dump_json(doc: Any) -> str:
    """The one serialisation every shipped table uses."""
    import json

    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


# ---------------------------------------------------------------- Loupe priors

LOUPE_ATTRIBUTION = (
    'Loupe database (unikraft/loupedb), CC BY 4.0; Lefeuvre et al., "Loupe: Driving the '
    'Development of OS Compatibility Layers", ASPLOS 2024'
)


def build_loupe_doc(csv_text: str, *, source: str = "loupedb-syscall-priors.csv") -> dict[str, Any]:
    """Loupe priors CSV (syscall,apps_using,apps_requiring,apps_stubbable,apps_fakeable) -> JSON document."""
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(csv_text)))
    want = ["syscall", "apps_using", "apps_requiring", "apps_stubbable", "apps_fakeable"]
    if not rows or list(rows[0].keys()) != want:
        raise InputError(f"{source!r}: expected columns {want}")
    syscalls = {
        r["syscall"]: {
            "used": int(r["apps_using"]),
            "required": int(r["apps_requiring"]),
            "stubbable": int(r["apps_stubbable"]),
            "fakeable": int(r["apps_fakeable"]),
        }
        for r in rows
    }
    return {
        "schema_version": 1,
        "kind": "loupe-priors",
        "attribution": LOUPE_ATTRIBUTION,
        "license": "CC-BY-4.0",
        "license_url": "https://creativecommons.org/licenses/by/4.0/",
        "source": "unikraft/loupedb dyn.csv files of the 110 benchmark workloads, counted into " + source,
        "workloads": 110,
        "columns": {
            "used": "workloads that made the syscall at all (traced)",
            "required": "workloads that broke when it returned ENOSYS and when it returned 0",
            "stubbable": "workloads that still worked when it returned ENOSYS",
            "fakeable": "workloads that still worked when it returned 0 without doing anything",
        },
        "generator": {"name": GENERATOR_NAME, "version": LOUPE_GENERATOR_VERSION},
        "command": f"uk-depscan tables loupe --csv {source} -o syscall_tables/loupe/loupedb-syscall-priors.json",
        "syscalls": syscalls,
    }
