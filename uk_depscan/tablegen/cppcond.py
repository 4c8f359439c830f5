"""C preprocessor conditions in source text: which ``#if`` branches enclose a line, and their value.

Used by the offline generators that read C sources without compiling them (the Linux syscall
argument table).  Only the subset of the preprocessor those sources use for configuration is
understood: ``#if/#ifdef/#ifndef/#elif/#else/#endif`` nesting, and expressions made of
``defined(X)``/``defined X``, ``IS_ENABLED(X)``, identifiers, integers, ``!``, ``&&``, ``||`` and
parentheses.  Evaluation is three-valued: anything else (an unknown macro, a comparison) is
``None`` (undecided), never guessed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

DIRECTIVE = re.compile(r"^\s*#\s*(if|ifdef|ifndef|elif|else|endif|define)\b(.*)$")
TOKEN = re.compile(r"\s*(defined|IS_ENABLED|&&|\|\||!|\(|\)|[A-Za-z_]\w*|\d+[uUlL]*)")


@dataclass(frozen=True)
class Branch:
    """One enclosing branch: ``expr`` must be true and every ``excluded`` earlier branch false."""

    expr: str
    excluded: tuple[str, ...] = ()

    def text(self) -> str:
        parts = [f"!({e})" for e in self.excluded]
        return " && ".join([*parts, self.expr] if self.expr != "1" else parts or ["1"])


def blank_comments(text: str) -> str:
    """Comments replaced by spaces, same length and newlines, so offsets and line numbers hold."""

    def blank(m: re.Match[str]) -> str:
        return re.sub(r"[^\n]", " ", m.group())

    return re.sub(r"/\*.*?\*/|//[^\n]*", blank, text, flags=re.S)


def join_continuations(lines: list[str]) -> list[str]:
    """Backslash-continued directive lines joined onto their first line (later ones blanked)."""
    out = list(lines)
    i = 0
    while i < len(out):
        j = i
        while out[j].endswith("\\") and j + 1 < len(out):
            out[i] = out[i][:-1] + " " + out[j + 1]
            out[j + 1] = ""
            j += 1
        i = j + 1
    return out


def condition_stacks(text: str) -> list[tuple[Branch, ...]]:
    """For every line of ``text`` (comments already blanked), the branches that enclose it.

    An include guard (``#ifndef X`` directly followed by ``#define X``) encloses nothing.
    """
    lines = join_continuations(text.split("\n"))
    stack: list[list[Branch]] = []  # per #if level: the branches seen so far, last = current
    guards: set[int] = set()  # depths whose #if is an include guard
    out: list[tuple[Branch, ...]] = []
    for idx, line in enumerate(lines):
        out.append(tuple(frames[-1] for d, frames in enumerate(stack) if d not in guards))
        m = DIRECTIVE.match(line)
        if not m:
            continue
        kind, rest = m.group(1), m.group(2).strip()
        if kind in ("if", "ifdef", "ifndef"):
            expr = {"if": rest, "ifdef": f"defined({rest})", "ifndef": f"!defined({rest})"}[kind]
            stack.append([Branch(expr)])
            if kind == "ifndef" and _is_guard(lines, idx, rest):
                guards.add(len(stack) - 1)
        elif kind in ("elif", "else") and stack:
            prior = tuple(b.expr for b in stack[-1])
            stack[-1].append(Branch(rest if kind == "elif" else "1", prior))
        elif kind == "endif" and stack:
            guards.discard(len(stack) - 1)
            stack.pop()
    return out


def _is_guard(lines: list[str], idx: int, name: str) -> bool:
    for nxt in lines[idx + 1 :]:
        if nxt.strip():
            m = DIRECTIVE.match(nxt)
            return bool(m and m.group(1) == "define" and m.group(2).split()[:1] == [name])
    return False


def evaluate(expr: str, value: Callable[[str], bool | None]) -> bool | None:
    """Three-valued value of a preprocessor expression; ``value(name)`` answers for one macro."""
    tokens = list(TOKEN.findall(expr))
    if "".join(tokens).replace(" ", "") != re.sub(r"\s+", "", expr):
        return None  # operators this evaluator does not know (==, <, arithmetic)
    parser = _Parser(tokens, value)
    try:
        result = parser.or_expr()
    except IndexError:
        return None
    return result if parser.pos == len(tokens) else None


def branch_value(branch: Branch, value: Callable[[str], bool | None]) -> bool | None:
    results = [evaluate(branch.expr, value)] + [_not(evaluate(e, value)) for e in branch.excluded]
    if any(r is False for r in results):
        return False
    return True if all(r is True for r in results) else None


def stack_value(stack: tuple[Branch, ...], value: Callable[[str], bool | None]) -> bool | None:
    results = [branch_value(b, value) for b in stack]
    if any(r is False for r in results):
        return False
    return True if all(r is True for r in results) else None


def _not(v: bool | None) -> bool | None:
    return None if v is None else not v


def _and(a: bool | None, b: bool | None) -> bool | None:
    if a is False or b is False:
        return False
    return True if a is True and b is True else None


def _or(a: bool | None, b: bool | None) -> bool | None:
    if a is True or b is True:
        return True
    return False if a is False and b is False else None


class _Parser:
    def __init__(self, tokens: list[str], value: Callable[[str], bool | None]) -> None:
        self.tokens, self.pos, self.value = tokens, 0, value

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def or_expr(self) -> bool | None:
        v = self.and_expr()
        while self.peek() == "||":
            self.take()
            v = _or(v, self.and_expr())
        return v

    def and_expr(self) -> bool | None:
        v = self.unary()
        while self.peek() == "&&":
            self.take()
            v = _and(v, self.unary())
        return v

    def unary(self) -> bool | None:
        tok = self.take()
        if tok == "!":
            return _not(self.unary())
        if tok == "(":
            v = self.or_expr()
            if self.take() != ")":
                raise IndexError
            return v
        if tok in ("defined", "IS_ENABLED"):
            paren = self.peek() == "("
            if paren:
                self.take()
            name = self.take()
            if paren and self.take() != ")":
                raise IndexError
            return self.value(name)
        if tok[0].isdigit():
            return int(re.sub(r"[uUlL]+$", "", tok)) != 0
        return self.value(tok)
