"""Self-contained HTML report: inline CSS, a small inline script, inline SVG, no network.

The first screen answers "what do I do first?" (an ordered checklist from the target's views),
then summary charts and the collapsed graph drawn as inline SVG by :mod:`uk_depscan.report.charts`
(laid out by :func:`uk_depscan.report.graph.overview`, no graphviz: the full graph stays available
as GraphML/DOT from ``uk-depscan graph``).  Every string from a binary goes through the
``clean`` filter (:func:`~uk_depscan.report.escape.for_terminal`, then jinja2's autoescaping:
together :func:`~uk_depscan.report.escape.for_html`); the SVG is built with ``for_html`` too.
The Content-Security-Policy allows no fetch of any kind (``default-src 'none'``), inline style
and inline script only.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources

import jinja2
from markupsafe import Markup

from uk_depscan.model import Report, TargetReport
from uk_depscan.names import demangle_versioned
from uk_depscan.report.charts import STATUS_COLOURS, TIER_COLOURS, bar_chart, overview_svg
from uk_depscan.report.escape import for_terminal
from uk_depscan.report.graph import OverviewNode, overview
from uk_depscan.report.views import target_views


@dataclass(frozen=True)
class Figures:
    """One target's inline SVG (markup built with escaping) and the graph's nodes, whose lists
    the page shows below the picture."""

    status_tier: Markup
    by_library: Markup
    by_dependency: Markup
    graph: Markup
    graph_nodes: tuple[OverviewNode, ...]


def figures(t: TargetReport, tid: int) -> Figures | None:
    """None when the target has no gaps (nothing to chart)."""
    v = target_views(t)
    o = overview(t, v.rows)
    if o is None:
        return None
    table = f"gaps-{tid}"
    # Markup: the SVG is built by charts.py with every untrusted string through for_html
    return Figures(
        Markup(  # noqa: S704
            bar_chart(v.status_tier, TIER_COLOURS, title="gaps by status and tier", filter_key="status", table=table)
        ),
        Markup(  # noqa: S704
            bar_chart(
                v.by_unikraft_library,
                STATUS_COLOURS,
                title="gaps per Unikraft library",
                filter_key="library",
                table=table,
            )
        ),
        Markup(  # noqa: S704
            bar_chart(
                v.by_dependency, TIER_COLOURS, title="gaps reached through each library", filter_key="via", table=table
            )
        ),
        Markup(overview_svg(o, tid)),  # noqa: S704
        o.nodes,
    )


def _env() -> jinja2.Environment:
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["clean"] = for_terminal
    env.filters["demangle"] = demangle_versioned
    env.globals["views"] = target_views  # the views the report carries (uk_depscan.report.views)
    env.globals["figures"] = figures
    return env


@functools.lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    """Compiled once per process (a test renders many reports)."""
    text = (resources.files("uk_depscan") / "report" / "templates" / "report.html.j2").read_text("utf-8")
    return _env().from_string(text)


def render_html(report: Report, **_: object) -> str:
    return _template().render(report=report)
