"""Neutralising strings taken from binaries before they reach a terminal, Markdown or HTML."""
from __future__ import annotations

import html
import re
from functools import lru_cache

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]|\x1b\[[0-?]*[ -/]*[@-~]")


def for_terminal(text: str) -> str:
    """Drop ANSI escape sequences and control characters; show them as ``\\xNN`` escapes."""
    return _CONTROL.sub(lambda m: "".join(f"\\x{ord(c):02x}" for c in m.group(0)), text)


def for_markdown(text: str) -> str:
    """Escape characters that break Markdown tables or inline code."""
    text = for_terminal(text)
    return re.sub(r"([\\`*_{}\[\]<>|#!])", r"\\\1", text)


def for_html(text: str) -> str:
    return html.escape(for_terminal(text), quote=True)


@lru_cache(maxsize=65536)
def demangle(name: str) -> str:
    """C++ demangling for human output; data keeps the mangled name."""
    if not name.startswith("_Z"):
        return name
    try:
        import cxxfilt

        return str(cxxfilt.demangle(name, external_only=False))
    except Exception:  # cxxfilt raises its own InvalidName and ctypes errors on garbage
        return name
