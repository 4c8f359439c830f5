"""Linux syscall tables from kernel UAPI headers: the parsing side of ``scripts/gen_linux_syscalls.py``.

The generator preprocesses ``<asm/unistd.h>`` of Debian's ``linux-libc-dev`` (``gcc -E -dM``)
and hands the macro dump to :func:`parse_header_text`; the functions are pure, so the tests run
them on literal header strings.  The runtime loader of the resulting tables is
:mod:`uk_depscan.syscalls.linux`.

Naming rule (see there): a syscall's name is the ``<name>`` of the kernel's ``__NR_<name>``
macro as seen by a 64-bit user-space build of that arch.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Mapping
from typing import Any

# ``__NR_<x>`` macros that are not syscalls: table sizes, range markers and number bases
# (the bases only occur on other arches, e.g. arm32/mips; listed so the parser stays general).
NOT_SYSCALLS = frozenset(
    {"syscalls", "arch_specific_syscall", "SYSCALL_BASE", "OABI_SYSCALL_BASE", "Linux", "Linux_syscalls"}
)

_DEFINE = re.compile(r"^\s*#\s*define\s+([A-Za-z_]\w*)(\([^)]*\))?[ \t]*(.*?)\s*$")
_IDENT = re.compile(r"(?<!\w)[A-Za-z_]\w*")  # not the x of 0x10
_INT_SUFFIX = re.compile(r"\b(0[xX][0-9a-fA-F]+|\d+)[uUlL]+\b")


def dump_table(doc: Mapping[str, Any]) -> str:
    """The one byte-stable serialisation of a table document (no timestamps anywhere)."""
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def parse_defines(text: str) -> dict[str, str]:
    """Object-like ``#define NAME BODY`` lines of ``text`` (e.g. ``cpp -dM`` output).

    Function-like macros are skipped: syscall numbers are always object-like.  Comments
    are stripped first so a raw header can be passed too.
    """
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    text = text.replace("\\\n", " ")
    out: dict[str, str] = {}
    for line in text.splitlines():
        m = _DEFINE.match(line)
        if m and not m.group(2):
            out[m.group(1)] = m.group(3)
    return out


def eval_macro(name: str, defines: Mapping[str, str], _depth: int = 0) -> int:
    """Integer value of macro ``name``, expanding other macros (``__NR3264_*``,
    ``__NR_SYSCALL_BASE``...) and evaluating + - * << >> | & ( ) on integer literals."""
    if _depth > 32:
        raise ValueError(f"macro {name}: expansion too deep (cycle?)")
    if name not in defines:
        raise ValueError(f"macro {name} is not defined")
    body = _INT_SUFFIX.sub(r"\1", defines[name])

    def expand(m: re.Match[str]) -> str:
        return str(eval_macro(m.group(0), defines, _depth + 1))

    expr = _IDENT.sub(expand, body)
    return _eval_int_expr(expr, name)


_ALLOWED_NODES = (
    ast.Expression,
    ast.BinOp,
    ast.UnaryOp,
    ast.Constant,
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.LShift,
    ast.RShift,
    ast.BitOr,
    ast.BitAnd,
    ast.USub,
    ast.UAdd,
    ast.Invert,
)


def _eval_int_expr(expr: str, name: str) -> int:
    # C integer literals like 0x10 / 010 must not become Python syntax errors or decimals.
    expr = re.sub(r"\b0([0-7]+)\b", r"0o\1", expr)
    try:
        tree = ast.parse(expr.strip() or "None", mode="eval")
    except SyntaxError as err:
        raise ValueError(f"macro {name}: cannot parse {expr!r}") from err
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES) or (isinstance(node, ast.Constant) and type(node.value) is not int):
            raise ValueError(f"macro {name}: unsupported expression {expr!r}")
    return int(eval(compile(tree, "<macro>", "eval"), {"__builtins__": {}}))  # noqa: S307 - AST-checked


def syscalls_from_defines(defines: Mapping[str, str]) -> dict[str, int]:
    """``{name: nr}`` for every ``__NR_<name>`` macro, with aliases resolved.

    Only ``__NR_`` (one underscore after NR) names are syscalls; ``__NR3264_*`` are the
    asm-generic intermediates that the 64-bit branch renames (``__NR_newfstatat``).
    """
    out: dict[str, int] = {}
    for macro in sorted(defines):
        if not macro.startswith("__NR_"):
            continue
        name = macro[len("__NR_") :]
        if name in NOT_SYSCALLS:
            continue
        out[name] = eval_macro(macro, defines)
    by_nr: dict[int, list[str]] = {}
    for name, nr in out.items():
        by_nr.setdefault(nr, []).append(name)
    dups = {nr: names for nr, names in by_nr.items() if len(names) > 1}
    if dups:
        raise ValueError(f"syscall numbers defined more than once: {dups}")
    return dict(sorted(out.items()))


def parse_header_text(text: str) -> dict[str, int]:
    """``{name: nr}`` of a header/``cpp -dM`` text already free of ``#if`` choices."""
    return syscalls_from_defines(parse_defines(text))
