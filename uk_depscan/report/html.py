"""Self-contained HTML report: inline CSS/JS, the graph as an inline data-URI SVG, no network.

Every string from a binary goes through jinja2's autoescaping (``for_html`` semantics) and, in
addition, through :func:`~uk_depscan.report.escape.for_terminal` to make control characters
visible.  The graph SVG is rendered by graphviz (``dot``) when installed and embedded as an
``<img>`` data URI, where a browser never runs scripts; without graphviz the page says so.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
from importlib import resources

import jinja2

from uk_depscan.model import Report
from uk_depscan.names import demangle_versioned
from uk_depscan.report.escape import for_terminal
from uk_depscan.report.views import target_views


def _env() -> jinja2.Environment:
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["clean"] = for_terminal
    env.filters["demangle"] = demangle_versioned
    env.globals["views"] = target_views  # the views the report carries (uk_depscan.report.views)
    return env


def graph_svg_data_uri(report: Report) -> str | None:
    """The collapsed graph as a base64 SVG data URI, or None when graphviz is not installed."""
    dot = shutil.which("dot")
    if dot is None:
        return None
    from uk_depscan.report.graph import build_graph, to_dot

    try:
        proc = subprocess.run(
            [dot, "-Tsvg"], input=to_dot(build_graph(report)).encode(), capture_output=True, timeout=120, check=True
        )
    except (subprocess.SubprocessError, OSError):
        return None
    return "data:image/svg+xml;base64," + base64.b64encode(proc.stdout).decode("ascii")


def render_html(report: Report, **_: object) -> str:
    template = (resources.files("uk_depscan") / "report" / "templates" / "report.html.j2").read_text("utf-8")
    return _env().from_string(template).render(report=report, graph=graph_svg_data_uri(report))
