"""Making text safe for the generated C, Make, Kconfig, YAML and Markdown files.

Everything that came out of a scanned binary (library file names, symbol names, evidence details)
is untrusted: it may hold newlines, comment terminators, ``$(shell …)``, quotes or control bytes.
It only ever reaches a generated file through one of these functions, each of which returns one
inert line for its context.  Identifiers that become code (syscall names, Kconfig symbols) are not
escaped but *checked* (:func:`identifier`), and a mismatch is an error, never a silent rewrite.
"""

from __future__ import annotations

import json
import re

from uk_depscan.errors import UsageError
from uk_depscan.report.escape import for_markdown, for_terminal

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SLUG = re.compile(r"[^a-z0-9_]+")
MAX_COMMENT = 400  # a comment is a pointer to the evidence, not the evidence


def identifier(text: str, what: str) -> str:
    """``text`` when it is a C/Kconfig/Make identifier; otherwise a :class:`UsageError`."""
    if not _IDENT.fullmatch(text):
        raise UsageError(f"{what} {for_terminal(text)!r} is not an identifier; refusing to generate code from it")
    return text


def slug(text: str, fallback: str) -> str:
    """A lower-case identifier made from ``text`` (a library name from a file name)."""
    s = _SLUG.sub("_", text.lower()).strip("_")
    if not s or s[0].isdigit():
        s = f"{fallback}_{s}" if s else fallback
    return s[:48].rstrip("_")


def one_line(text: str) -> str:
    """Control characters, newlines and undecodable bytes made visible (``\\xNN``), length capped."""
    flat = for_terminal(text)
    return flat if len(flat) <= MAX_COMMENT else flat[: MAX_COMMENT - 3] + "..."


def c_comment(text: str) -> str:
    """Text for inside ``/* … */``: no comment terminator, no trigraph, one line."""
    flat = one_line(text)
    flat = flat.replace("*/", "*\\/").replace("/*", "/\\*").replace("??", "?\\?")
    return flat


def hash_comment(text: str) -> str:
    """Text for a ``#`` comment in Make, Kconfig, .config or YAML: one line, no continuation.

    A trailing backslash would continue a Make comment onto the next line; ``$`` is harmless in a
    comment but is doubled so the line stays inert if someone uncomments it.
    """
    flat = one_line(text).replace("$", "$$")
    return flat + " " if flat.endswith("\\") else flat


def yaml_string(text: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML 1.2 double-quoted scalars)."""
    return json.dumps(one_line(text), ensure_ascii=True)


def kconfig_string(text: str) -> str:
    """A Kconfig prompt/help string: double quotes and backslashes removed, one line."""
    return one_line(text).replace("\\", "/").replace('"', "'")


def markdown(text: str) -> str:
    return for_markdown(one_line(text))
