"""One escaping rule per output channel, for every string that came from a binary, a file name or
the command line.

Names are decoded with ``surrogateescape`` (ELF strings, ``os.fsdecode``): a byte that is not
UTF-8 is a lone surrogate U+DC80-U+DCFF in the string, which no UTF-8 output can encode.

=============  =================================================================================
channel        rule
=============  =================================================================================
terminal       :func:`for_terminal`, for stdout text and for all of stderr (errors, warnings,
               progress, summaries): one inert line, every character that could move, colour,
               reorder or hide text shown as a visible escape.
Markdown       :func:`for_markdown`: the terminal rule, then Markdown's metacharacters.
HTML           :func:`for_html` (the report template: autoescaping of the ``clean`` filter): the
               terminal rule, then HTML escaping.  The graph SVG is checked to be well-formed XML
               before it is embedded (:mod:`uk_depscan.report.html`).
DOT            :func:`dot_id` (quoted, injective), :func:`dot_label` (the terminal rule, then
               graphviz's own escapes); the text is valid UTF-8.
GraphML        :func:`for_xml`: the characters XML 1.0 cannot carry, and invisible formatting
               characters, shown as visible escapes; everything else exact.
JSON           :func:`for_json` over the whole document: strings exact (written as ASCII with
               ``\\u`` escapes), except that each undecodable byte becomes U+FFFD; beside a file
               path that is not valid UTF-8, ``<key>_bytes`` keeps its exact bytes (base64).
=============  =================================================================================

The visible escapes: ``\\xNN`` for an ASCII control character or an undecodable byte (its value),
``\\uNNNN``/``\\UNNNNNNNN`` for a C1 control, a bidirectional override or other format character
(Unicode category Cf: U+202A-U+202E, U+2066-U+2069, U+200B-U+200F, U+FEFF, ...), a line or
paragraph separator, a noncharacter or a lone surrogate.  In the human channels a backslash is
doubled, so the escaped form is unambiguous (``\\x1b`` is an escape, ``\\\\x1b`` a name that says so).
"""

from __future__ import annotations

import base64
import html
import re
import unicodedata
from typing import Any

# ASCII needing an escape in the human channels: C0 controls but tab (a newline would forge a
# report line, CR overwrite one, ESC start a terminal sequence), DEL, and the backslash itself.
_ASCII_HUMAN = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\\]")
# XML 1.0 (section 2.2, Char) has no C0 controls but tab, LF and CR; CR is escaped too, since a
# parser turns a literal CR into LF (section 2.11), and LF stays exact.
_ASCII_XML = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# Categories shown escaped outside ASCII: controls (C1), format characters (bidi overrides and
# isolates, zero-width characters, the BOM, ...), lone surrogates, line/paragraph separators.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def _is_noncharacter(code: int) -> bool:
    """Unicode noncharacters (U+FDD0-U+FDEF and the last two of every plane): not for interchange,
    and U+FFFE/U+FFFF are outside XML 1.0's Char."""
    return 0xFDD0 <= code <= 0xFDEF or (code & 0xFFFE) == 0xFFFE


def _hidden(c: str) -> bool:
    return unicodedata.category(c) in _HIDDEN_CATEGORIES or _is_noncharacter(ord(c))


def _escape_char(c: str) -> str:
    code = ord(c)
    if c == "\\":
        return "\\\\"
    if code < 0x80:
        return f"\\x{code:02x}"
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape: the original byte
        return f"\\x{code - 0xDC00:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _escape_match(m: re.Match[str]) -> str:
    return _escape_char(m.group(0))


def _visible(text: str, ascii_unsafe: re.Pattern[str]) -> str:
    if text.isascii():  # the common case: names and paths from real binaries
        return ascii_unsafe.sub(_escape_match, text)
    return "".join(
        (_escape_char(c) if ascii_unsafe.match(c) else c) if c < "\x80" else (_escape_char(c) if _hidden(c) else c)
        for c in text
    )


def for_terminal(text: str) -> str:
    """Terminal and stderr: one inert line.  No ANSI sequence, no control character but tab, no
    newline, no bidi override or other invisible character, nothing a UTF-8 terminal cannot
    print: each is a visible escape, and a backslash is doubled (the mapping is one-to-one)."""
    return _visible(text, _ASCII_HUMAN)


# Characters that make Markdown markup: emphasis, code spans, links, tables, headings, HTML tags,
# strikethrough (GFM), and the backslash itself.
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>|#!~])")
# A character reference (&amp; &#8238; &#x202e;) is decoded by CommonMark: escaping its '&' keeps
# "&#x202e;" from turning into a bidi override; a plain '&' (C++'s "const&") needs nothing.
_MD_ENTITY = re.compile(r"&(?=#[0-9]+;|#[xX][0-9A-Fa-f]+;|[A-Za-z][A-Za-z0-9]*;)")


def for_markdown(text: str) -> str:
    """The terminal rule, then Markdown's metacharacters and character references escaped, so a
    name cannot break a table, a code span or a line, nor add markup."""
    return _MD_ENTITY.sub(r"\\&", _MD_SPECIAL.sub(r"\\\1", for_terminal(text)))


def for_html(text: str) -> str:
    """The terminal rule, then HTML escaping (the report template's autoescaping of ``clean``)."""
    return html.escape(for_terminal(text), quote=True)


def for_xml(text: str) -> str:
    """GraphML ids and values: exact, except what XML 1.0 cannot carry (C0 controls but tab and
    LF, CR, DEL, C1 controls, undecodable bytes, U+FFFE/U+FFFF) and invisible formatting
    characters, which become visible escapes; the XML writer escapes ``<&>"``."""
    return _visible(text, _ASCII_XML)


def dot_id(text: str) -> str:
    """A quoted DOT ID, one-to-one with ``text`` (two names never become one node): the terminal
    rule, and ``&`` as ``&amp;`` since graphviz copies an ID into the SVG (``<title>``) leaving
    anything that looks like a character reference as it is (``&#27;`` is not XML 1.0)."""
    return '"' + dot_label(text) + '"'


def dot_label(text: str) -> str:
    """The inside of a quoted DOT label: the terminal rule, then graphviz's escapes: it decodes
    HTML character references in labels (``&#27;`` would reach the SVG as a control character),
    treats ``\\N``, ``\\G``, ``\\n``, ``\\l`` ... as escapes, and ends the string at ``"``."""
    return _dot_quote(for_terminal(text).replace("&", "&amp;"))


def _dot_quote(text: str) -> str:
    # DOT's quoted string (graphviz lib/cgraph/scan.l): \" is a quote and \\ a backslash pair
    return text.replace("\\", "\\\\").replace('"', '\\"')


# -- JSON ----------------------------------------------------------------------------------------
_SURROGATE = re.compile("[\ud800-\udfff]")
# Keys whose value is a file path a consumer may open (the root filesystem output): beside one
# that is not valid UTF-8, the document carries ``<key>_bytes``.
PATH_KEYS = frozenset({"target", "path", "realpath", "root", "ld_so_conf"})
BYTES_SUFFIX = "_bytes"


def exact_bytes(text: str) -> bytes:
    """The bytes a ``surrogateescape``-decoded string came from (another lone surrogate, only
    possible in a forged saved report, is kept as its three UTF-8-style bytes)."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        out = bytearray()
        for c in text:
            code = ord(c)
            out += bytes([code - 0xDC00]) if 0xDC80 <= code <= 0xDCFF else c.encode("utf-8", "surrogatepass")
        return bytes(out)


def json_text(text: str) -> str:
    """A JSON string value: exact, but each lone surrogate (an undecodable byte) is U+FFFD."""
    return text if text.isascii() else _SURROGATE.sub("\ufffd", text)


def has_undecodable(text: str) -> bool:
    return not text.isascii() and _SURROGATE.search(text) is not None


# A surrogate escape in ASCII JSON text: every string that for_json would mend (a lone surrogate,
# from an undecodable byte) is written with one (json's ensure_ascii), and so is a non-BMP
# character (a surrogate pair) or a literal backslash before "ud8".."udf": those only cost the
# slow path, the result is the same.
_SURROGATE_ESCAPE = re.compile(r"\\ud[89a-f]", re.IGNORECASE)


def json_needs_mending(ascii_json: str) -> bool:
    """Whether a document rendered as ASCII JSON without :func:`for_json` may differ from one
    rendered with it: only its strings holding surrogates change (U+FFFD, ``<key>_bytes``)."""
    return _SURROGATE_ESCAPE.search(ascii_json) is not None


def for_json(value: Any) -> Any:
    """A JSON document made valid Unicode throughout: every string through :func:`json_text`, and
    ``<key>_bytes`` (base64 of the exact bytes) added beside each :data:`PATH_KEYS` value that
    is not valid UTF-8.  Dict keys are the renderer's own (ASCII)."""
    if isinstance(value, str):
        return json_text(value)
    if isinstance(value, (list, tuple)):
        return [for_json(v) for v in value]
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, v in value.items():
            out[key] = for_json(v)
            if key in PATH_KEYS and isinstance(v, str) and has_undecodable(v):
                out[key + BYTES_SUFFIX] = base64.b64encode(exact_bytes(v)).decode("ascii")
        return out
    return value
