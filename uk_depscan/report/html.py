"""Self-contained HTML report: inline CSS/JS, the graph as an inline data-URI SVG, no network.

Every string from a binary goes through jinja2's autoescaping (``for_html`` semantics) and, in
addition, through :func:`~uk_depscan.report.escape.for_terminal` to make control characters and
invisible formatting characters visible.  The graph SVG is rendered by graphviz (``dot``) from
the escaped DOT when installed, checked to be well-formed XML 1.0 with no control or invisible
formatting character, and embedded as an ``<img>`` data URI, where a browser never runs scripts;
without graphviz, or when the check fails, the page says so instead.
"""

from __future__ import annotations

import base64
import functools
import shutil
import subprocess
import xml.parsers.expat
from importlib import resources

import jinja2

from uk_depscan.model import Report
from uk_depscan.names import demangle_versioned
from uk_depscan.report.escape import for_terminal, for_xml
from uk_depscan.report.views import target_views


def _env() -> jinja2.Environment:
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["clean"] = for_terminal
    env.filters["demangle"] = demangle_versioned
    env.globals["views"] = target_views  # the views the report carries (uk_depscan.report.views)
    return env


def graph_svg_data_uri(report: Report) -> tuple[str | None, str | None]:
    """The collapsed graph as a base64 SVG data URI, or None and why not (None: graphviz is not
    installed)."""
    dot = shutil.which("dot")
    if dot is None:
        return None, None
    from uk_depscan.report.graph import build_graph, to_dot

    try:
        proc = subprocess.run(
            [dot, "-Tsvg"], input=to_dot(build_graph(report)).encode(), capture_output=True, timeout=120, check=True
        )
    except (subprocess.SubprocessError, OSError) as err:
        return None, f"graphviz failed: {err}"
    problem = svg_problem(proc.stdout)
    if problem is not None:
        return None, f"graphviz wrote an SVG that is not safe to embed: {problem}"
    return "data:image/svg+xml;base64," + base64.b64encode(proc.stdout).decode("ascii"), None


def svg_problem(svg: bytes) -> str | None:
    """None when ``svg`` is well-formed XML 1.0 whose text and attribute values hold no control or
    invisible formatting character; else what is wrong.  expat reads no external DTD, and an
    entity declaration is refused (graphviz writes none)."""
    parser = xml.parsers.expat.ParserCreate()
    values: list[str] = []

    def no_entities(name: str, *_: object) -> None:
        raise ValueError(f"entity declaration {name!r}")

    def element(_name: str, attrs: dict[str, str]) -> None:
        values.extend(attrs.values())

    parser.EntityDeclHandler = no_entities
    parser.StartElementHandler = element
    parser.CharacterDataHandler = values.append
    try:
        parser.Parse(svg, True)
    except (xml.parsers.expat.ExpatError, ValueError) as err:
        return str(err)
    hidden = next((v for v in values if for_xml(v) != v), None)
    return None if hidden is None else f"hidden characters in {for_xml(hidden)!r}"


@functools.lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    """Compiled once per process (a test renders many reports)."""
    text = (resources.files("uk_depscan") / "report" / "templates" / "report.html.j2").read_text("utf-8")
    return _env().from_string(text)


def render_html(report: Report, **_: object) -> str:
    graph, graph_problem = graph_svg_data_uri(report)
    return _template().render(report=report, graph=graph, graph_problem=graph_problem)
