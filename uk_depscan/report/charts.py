"""Inline SVG for the HTML report: the summary bar charts and the collapsed graph.

Drawn here, not by graphviz, and written inline (no ``<img>``, no external resource: the page's
Content-Security-Policy is unchanged).  Every label that came from a binary (library names,
syscall names, Kconfig options) goes through :func:`~uk_depscan.report.escape.for_html`: the
terminal rule makes hidden characters visible, then HTML escaping, whose output (``&lt;``,
``&amp;``, ``&quot;``, ``&#x27;``) is also well-formed XML, so each ``<svg>`` element parses
as XML on its own (the tests check that).  Numbers are formatted by us.
"""

from __future__ import annotations

from collections.abc import Mapping

from uk_depscan.model import ChartBar, SupportStatus, Tier
from uk_depscan.report.escape import for_html
from uk_depscan.report.graph import Overview

TIER_COLOURS: Mapping[SupportStatus | Tier, str] = {
    Tier.P0: "#c62828",
    Tier.P1: "#ef6c00",
    Tier.P2: "#1565c0",
    Tier.P3: "#9ca3af",
}
STATUS_COLOURS: Mapping[SupportStatus | Tier, str] = {
    SupportStatus.ABSENT: "#c62828",
    SupportStatus.STUB: "#f9a825",
    SupportStatus.PARTIAL: "#ef6c00",
    SupportStatus.UNVERIFIED: "#8e24aa",
    SupportStatus.NEEDS_KCONFIG: "#1565c0",
    SupportStatus.PROVIDED: "#2e7d32",
}
_DARK_TEXT = {"#f9a825": ' class="dark"'}  # white on amber is hard to read
MAX_BARS = 12  # a longer list folds its smallest bars into one "N more" bar
_W, _LABEL, _ROW, _BAR = 460, 150, 20, 14
_CHAR = 6.7  # px per character of the 11 px sans-serif labels, generously


def _e(text: str) -> str:
    return for_html(text)


def _fit(text: str, width: float) -> str:
    room = max(4, int(width / _CHAR))
    return text if len(text) <= room else text[: room - 1] + "…"


def bar_chart(
    bars: tuple[ChartBar, ...],
    colours: Mapping[SupportStatus | Tier, str],
    *,
    title: str,
    filter_key: str,
    table: str,
) -> str:
    """A horizontal stacked bar chart, one row per bar, a legend of the segment keys on top.
    Each row carries ``data-filter-key``/``data-filter-value``: clicking it filters the gap table
    ``table`` to that row (the page's script; without it the chart is still a picture)."""
    shown = list(bars[:MAX_BARS])
    rest = bars[MAX_BARS:]
    if rest:
        merged: dict[SupportStatus | Tier, int] = {}
        for b in rest:
            for k, n in b.segments:
                merged[k] = merged.get(k, 0) + n
        keys = [k for k in colours if k in merged]
        shown.append(ChartBar(f"{len(rest)} more", "", tuple((k, merged[k]) for k in keys)))
    used = [k for k in colours if any(k == s for b in shown for s, _ in b.segments)]
    legend, x, y = [], 4.0, 4
    for k in used:  # the legend, on as many lines as it needs
        if x + 20 + len(str(k)) * _CHAR > _W:
            x, y = 4.0, y + 16
        legend.append(f'<rect x="{x:.0f}" y="{y}" width="10" height="10" fill="{colours[k]}"/>')
        legend.append(f'<text x="{x + 13:.0f}" y="{y + 9}" class="legend">{_e(str(k))}</text>')
        x += 20 + len(str(k)) * _CHAR
    top = y + 22
    height = top + _ROW * len(shown) + 6
    scale = (_W - _LABEL - 50) / max((b.total for b in shown), default=1)
    out = [
        f'<svg class="chart" viewBox="0 0 {_W} {height}" role="img" aria-label="{_e(title)}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{_e(title)}</title>'
    ]
    out += legend
    for i, b in enumerate(shown):
        y = top + i * _ROW
        label = b.label + (f" · {b.note}" if b.note else "")
        folded = bool(rest) and i == len(shown) - 1
        attrs = (
            "" if folded else f' data-filter-key="{filter_key}" data-filter-value="{_e(b.label)}" data-table="{table}"'
        )
        out.append(f'<g class="bar"{attrs}><title>{_e(label)}: {_bar_title(b)}</title>')
        shown_label = _e(_fit(b.label, _LABEL - 8))  # the Kconfig option is in the tooltip
        out.append(f'<text x="{_LABEL - 6}" y="{y + _BAR - 3}" text-anchor="end" class="label">{shown_label}</text>')
        x = float(_LABEL)
        for k, n in b.segments:
            w = n * scale
            out.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{_BAR}" fill="{colours[k]}"/>')
            x += w
        out.append(f'<text x="{x + 4:.1f}" y="{y + _BAR - 3}" class="count">{b.total}</text></g>')
    out.append("</svg>")
    return "".join(out)


def _bar_title(b: ChartBar) -> str:
    return ", ".join(f"{k} {n}" for k, n in b.segments)


def overview_svg(o: Overview, tid: int) -> str:
    """The collapsed graph: boxes in four columns, weighted edges between adjacent columns; each
    box links to its node's list below the picture (``#gn-T-K``), where it expands."""
    out = [
        f'<svg class="overview" viewBox="0 0 {o.width} {o.height}" role="img" '
        f'aria-label="collapsed graph" xmlns="http://www.w3.org/2000/svg">'
    ]
    for x, title in o.columns:
        out.append(f'<text x="{x:.0f}" y="14" class="coltitle">{_e(title)}</text>')
    for e in o.edges:
        out.append(
            f'<path d="{e.path}" stroke-width="{e.stroke}" data-s="{e.source}" data-t="{e.target}" class="edge">'
            f"<title>{e.weight} gap{'s' if e.weight != 1 else ''}</title></path>"
        )
    for n in o.nodes:
        out.append(
            f'<a href="#gn-{tid}-{n.key}" class="node" data-node="{n.key}"><title>{_e(n.title)}</title>'
            f'<rect x="{n.x:.0f}" y="{n.y:.1f}" width="{n.width:.0f}" height="22" rx="4" fill="{n.colour}"/>'
            f'<text x="{n.x + 6:.0f}" y="{n.y + 15:.1f}"{_DARK_TEXT.get(n.colour, "")}>{_e(n.shown)}</text></a>'
        )
    out.append("</svg>")
    return "".join(out)
