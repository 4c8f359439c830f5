"""Neutralising strings taken from binaries before they reach a terminal, Markdown or HTML."""

from __future__ import annotations

import html
import re

# Newlines are escaped too: a string from a binary is one line, and must not forge report lines.
# Lone surrogates are bytes that were not UTF-8 (names are decoded with "surrogateescape"):
# a UTF-8 stdout refuses to encode them, so they must be escaped too, not just controls.
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\ud800-\udfff]")


def _escape_char(c: str) -> str:
    code = ord(c)
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape: the original byte
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def for_terminal(text: str) -> str:
    """Neutralise ANSI escape sequences, control characters (tab excepted), newlines and undecodable
    bytes: each becomes a visible ``\\xNN`` escape, so the text is one inert line."""
    return _CONTROL.sub(lambda m: "".join(_escape_char(c) for c in m.group(0)), text)


def for_markdown(text: str) -> str:
    """Escape characters that break Markdown tables or inline code."""
    text = for_terminal(text)
    return re.sub(r"([\\`*_{}\[\]<>|#!])", r"\\\1", text)


def for_html(text: str) -> str:
    return html.escape(for_terminal(text), quote=True)
