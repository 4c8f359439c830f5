"""The invariant of each output channel, checked independently of uk_depscan.report.escape.

Used by the end-to-end hostile-name tests (test_output_safety.py) and by the property test
(test_channel_properties.py).  Each ``check_*`` raises AssertionError naming what is wrong.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import re
import shutil
import subprocess
import unicodedata
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from typing import Any

import networkx as nx
import pydot

# Unicode categories no human channel may carry raw: controls, format characters (bidi overrides
# and isolates, zero-width characters, BOM, ...), lone surrogates, line/paragraph separators.
HIDDEN = {"Cc", "Cf", "Cs", "Zl", "Zp"}


def hidden_chars(text: str, allowed: str = "\t") -> list[str]:
    """The characters of ``text`` a reader would not see as what they are."""
    return [
        c
        for c in text
        if c not in allowed
        and (unicodedata.category(c) in HIDDEN or 0xFDD0 <= ord(c) <= 0xFDEF or (ord(c) & 0xFFFE) == 0xFFFE)
    ]


def check_lines(text: str, what: str) -> list[str]:
    """Terminal text (stdout or stderr): lines split on LF only, none holding a hidden character,
    and all of it printable on a strict UTF-8 terminal."""
    text.encode("utf-8")  # no lone surrogate
    lines = text.split("\n") if text else []
    for i, line in enumerate(lines):
        bad = hidden_chars(line)
        assert not bad, f"{what}: line {i} carries {bad!r}: {line!r}"
    return lines[:-1] if text.endswith("\n") else lines


def check_stderr(text: str, *, lines: int | None = None, prefixes: tuple[str, ...] = ("uk-depscan: ",)) -> None:
    """stderr: clean lines, each one the tool wrote (its prefix): a newline in a name would forge
    a line that does not start with it."""
    got = check_lines(text, "stderr")
    if lines is not None:
        assert len(got) == lines, f"stderr: {len(got)} lines, expected {lines}: {text!r}"
    for line in got:
        assert line.startswith(prefixes), f"stderr: a line the tool did not write: {line!r}"


def _pipes(line: str) -> int:
    """Table-cell separators: pipes not escaped by an odd number of backslashes."""
    return sum(1 for m in re.finditer(r"(\\*)\|", line) if len(m.group(1)) % 2 == 0)


# a character reference CommonMark would decode (&#x202e; is U+202E), unless its & is escaped
_MD_REFERENCE = re.compile(r"(?<!\\)&(?:#[0-9]+|#[xX][0-9A-Fa-f]+|[A-Za-z][A-Za-z0-9]*);")


def check_markdown(text: str, baseline: str | None = None) -> None:
    """Markdown: clean lines, no character reference left to decode, and, against the same report
    without the hostile strings, the same lines with the same table cells."""
    lines = check_lines(text, "markdown")
    for line in lines:
        m = _MD_REFERENCE.search(line)
        assert m is None, f"markdown: character reference {m.group(0)!r} in {line!r}"
    if baseline is not None:
        base = check_lines(baseline, "baseline")
        assert len(lines) == len(base), "markdown: the hostile strings changed the lines"
        for line, ref in zip(lines, base, strict=True):
            assert _pipes(line) == _pipes(ref), f"markdown: table cells changed: {line!r}"


def _no_surrogates(value: Any, where: str = "") -> None:
    if isinstance(value, str):
        assert not re.search("[\ud800-\udfff]", value), f"json: lone surrogate at {where or '/'}: {value!r}"
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _no_surrogates(v, f"{where}/{i}")
    elif isinstance(value, dict):
        for k, v in value.items():
            _no_surrogates(k, where)
            _no_surrogates(v, f"{where}/{k}")


def check_json(text: str) -> Any:
    """JSON: ASCII (so valid UTF-8), parses, and holds valid Unicode only (no lone surrogate)."""
    assert text.isascii(), "json: not ASCII"
    doc = json.loads(text)
    _no_surrogates(doc)
    return doc


def exact(value: str) -> bytes:
    """The bytes a surrogate-escaped string names."""
    return value.encode("utf-8", "surrogateescape")


def check_path_bytes(obj: dict[str, Any], key: str, value: str) -> None:
    """``obj[key]`` shows ``value`` (undecodable bytes as U+FFFD) and ``obj[key + '_bytes']``, when
    there must be one, holds its exact bytes."""
    raw = exact(value)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        assert base64.b64decode(obj[key + "_bytes"], validate=True) == raw
    else:
        assert key + "_bytes" not in obj
    assert obj[key] == re.sub("[\udc80-\udcff]", "\ufffd", value)


class _Html(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.shape: list[tuple[str, tuple[str, ...]]] = []
        self.values: list[str] = []
        self.images: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.shape.append((tag, tuple(k for k, _ in attrs)))
        self.values += [v for _, v in attrs if v is not None]
        if tag == "img":
            self.images += [v for k, v in attrs if k == "src" and v]

    def handle_endtag(self, tag: str) -> None:
        self.shape.append(("/" + tag, ()))

    def handle_data(self, data: str) -> None:
        self.values.append(data)


@functools.lru_cache(maxsize=4)
def html_shape(text: str) -> list[tuple[str, tuple[str, ...]]]:
    """The elements and attribute names of a page, in order (cached: a baseline is compared often)."""
    parser = _Html()
    parser.feed(text)
    parser.close()
    return parser.shape


def check_html(text: str, baseline: str | None = None, *, svg: bool = True) -> None:
    """HTML: every text node and attribute value (character references decoded) free of hidden
    characters; the same elements and attributes as the report without the hostile strings; no
    picture embedded (the charts and the graph are inline SVG); each inline ``<svg>`` element
    well-formed XML on its own and clean, and (``svg``) at least one of them."""
    text.encode("utf-8")
    parser = _Html()
    parser.feed(text)
    parser.close()
    for v in parser.values:
        bad = hidden_chars(v, "\t\n")
        assert not bad, f"html: {bad!r} in {v[:200]!r}"
    assert not any(name.startswith("on") for _, attrs in parser.shape for name in attrs), "html: event handler"
    if baseline is not None:
        assert parser.shape == html_shape(baseline), "html: the hostile strings changed the document's elements"
    assert not parser.images, f"html: {len(parser.images)} pictures embedded, expected none"
    fragments = re.findall(r"<svg\b.*?</svg>", text, re.S)
    assert fragments or not svg, "html: no inline SVG (charts, graph)"
    for fragment in fragments:
        check_svg(fragment.encode("utf-8"))


def check_svg(svg: bytes) -> None:
    """SVG: well-formed XML (xml.etree), no hidden character in any text or attribute value."""
    root = ET.fromstring(svg)  # graphviz's output, in a test
    for el in root.iter():
        for v in [el.text or "", el.tail or "", *el.attrib.values()]:
            bad = hidden_chars(v, "\t\n")
            assert not bad, f"svg: {bad!r} in {v!r}"


def check_dot(text: str, *, nodes: int | None = None, pydot_parse: bool = True, graphviz: bool = False) -> None:
    """DOT: valid UTF-8 with no hidden character; parsed by pydot and (``graphviz``) accepted by
    ``dot -Tsvg`` with a clean SVG; ``nodes`` nodes in each (escaping merged or split none)."""
    check_lines(text, "dot")
    if pydot_parse:
        graphs = pydot.graph_from_dot_data(text)
        assert graphs is not None and len(graphs) == 1, "dot: pydot cannot parse it"
        names = {n.get_name() for n in graphs[0].get_nodes()} - {"node", "edge", "graph"}
        assert nodes is None or len(names) == nodes, f"dot: pydot reads {len(names)} nodes, expected {nodes}"
    if graphviz:
        dot = shutil.which("dot")
        assert dot is not None
        proc = subprocess.run([dot, "-Tsvg"], input=text.encode("utf-8"), capture_output=True, timeout=60, check=False)
        assert proc.returncode == 0, f"dot -Tsvg: {proc.stderr.decode(errors='replace')}"
        check_svg(proc.stdout)
        drawn = proc.stdout.count(b'class="node"')
        assert nodes is None or drawn == nodes, f"dot: graphviz draws {drawn} nodes, expected {nodes}"


def check_graphml(text: str, *, nodes: int | None = None) -> nx.MultiDiGraph:
    """GraphML: well-formed XML 1.0 (xml.etree), read back by networkx (``nodes`` of them), no
    control or invisible formatting character (newlines and tabs are data XML carries)."""
    root = ET.fromstring(text.encode("utf-8"))
    for el in root.iter():
        for v in [el.text or "", *el.attrib.values()]:
            bad = hidden_chars(v, "\t\n")
            assert not bad, f"graphml: {bad!r} in {v!r}"
    g = nx.read_graphml(io.BytesIO(text.encode("utf-8")))
    if nodes is not None:
        assert g.number_of_nodes() == nodes, f"graphml: {g.number_of_nodes()} nodes, expected {nodes}"
    return g
