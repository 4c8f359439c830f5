"""The dependency/syscall graph (networkx) and its exports: GraphML, JSON (own schema), DOT.

The only module that imports networkx.  Built from a :class:`~uk_depscan.model.Report`, so it
adds no facts of its own.  Node ids are typed: ``target:``, ``lib:``, ``sym:`` (imports of the
target, ``name@version``), ``export:`` (the definition an import binds to), ``sys:``, ``uk:``
(Unikraft library), ``kconfig:``, ``file:`` (pseudo-files) and ``dlopen:``.  Edge kinds: ``needs``
(DT_NEEDED), ``imports``, ``binds-to`` (import → the exported definition), ``defined-in``
(definition → library), ``reaches`` (import or library → syscall, from the evidence chains),
``invokes`` (syscall site in the target), ``provided-by`` (syscall → Unikraft library),
``enabled-by`` (Unikraft library → Kconfig option), ``opens`` and ``dlopens``.

The collapsed view keeps targets, libraries and syscalls only: libtorch_cpu.so has 75 k symbols.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import networkx as nx

from uk_depscan.model import Action, EvidenceKind, GapRow, Report, StrEnum, SupportStatus, TargetReport
from uk_depscan.report.escape import dot_id, dot_label, for_json, for_xml

GRAPH_SCHEMA_VERSION = 1
STATUS_COLOURS = {
    SupportStatus.PROVIDED: "#2e7d32",
    SupportStatus.NEEDS_KCONFIG: "#1565c0",
    SupportStatus.PARTIAL: "#ef6c00",
    SupportStatus.STUB: "#f9a825",
    SupportStatus.ABSENT: "#c62828",
}


def build_graph(report: Report) -> nx.MultiDiGraph:
    g = nx.MultiDiGraph()
    for t in report.targets:
        _add_target(g, t)
    return g


def _node(g: nx.MultiDiGraph, node_id: str, kind: str, label: str, **attrs: Any) -> str:
    if node_id not in g:
        g.add_node(node_id, kind=kind, label=label, **{k: v for k, v in attrs.items() if v is not None})
    return node_id


def _edge(g: nx.MultiDiGraph, a: str, b: str, kind: str) -> None:
    if not any(d.get("kind") == kind for d in (g.get_edge_data(a, b) or {}).values()):
        g.add_edge(a, b, kind=kind)


def _lib_id(t: TargetReport, index: int) -> str:
    obj = t.tree.objects[index]
    return f"lib:{obj.soname or obj.path}"


def _add_target(g: nx.MultiDiGraph, t: TargetReport) -> None:
    root = _node(g, f"target:{t.target}", "target", t.target)
    ids = {0: root}
    for obj in t.tree.objects[1:]:
        ids[obj.index] = _node(g, _lib_id(t, obj.index), "library", obj.soname or obj.path, path=obj.path)
    for e in t.tree.edges:
        dst = (
            ids[e.target]
            if e.target is not None
            else _node(g, f"lib:{e.needed_name}", "library", e.needed_name, missing=True)
        )
        _edge(g, ids[e.source], dst, "needs")
    by_path = {o.path: ids[o.index] for o in t.tree.objects}
    for imp in t.imports:
        sym = _node(
            g,
            f"sym:{imp.name}@{imp.version}" if imp.version else f"sym:{imp.name}",
            "symbol",
            imp.name,
            version=imp.version,
        )
        _edge(g, root, sym, "imports")
        if imp.provider in by_path:
            lib = by_path[imp.provider]
            export = _node(
                g, f"export:{g.nodes[lib]['label']}:{sym[4:]}", "exported-symbol", imp.name, version=imp.version
            )
            _edge(g, sym, export, "binds-to")
            _edge(g, export, lib, "defined-in")
    _add_syscalls(g, t, root)
    _add_gaps(g, t)
    if t.below is not None:
        for f in t.below.pseudo_files:
            _edge(g, root, _node(g, f"file:{f}", "pseudo-file", f), "opens")
        for d in t.below.dlopen_targets:
            _edge(g, root, _node(g, f"dlopen:{d.name}", "dlopen-target", d.name, source=d.source), "dlopens")


def _add_syscalls(g: nx.MultiDiGraph, t: TargetReport, root: str) -> None:
    if t.syscalls is None:
        return
    for x in t.syscalls.runtime_loads:
        # by file: two names may load one file, and a module name may equal a library's
        node = _node(g, f"loaded:{x.path}", "loaded-at-run-time", x.name, path=x.path, via=x.via.value)
        _edge(g, root, node, "loads-at-run-time")
    for f in t.syscalls.syscalls + t.syscalls.baseline:
        sys_id = _node(g, f"sys:{f.name}", "syscall", f.name, number=f.number)
        imports = [s for s in f.chain if s.kind is EvidenceKind.IMPORT]
        if f in t.syscalls.syscalls and imports and imports[0].library == t.tree.objects[0].soname:
            key = imports[0].symbol
            _edge(g, f"sym:{key}" if f"sym:{key}" in g else root, sys_id, "reaches")
        elif f in t.syscalls.syscalls and not imports:
            _edge(g, root, sys_id, "invokes")
        for lib in f.libraries[1:] if f in t.syscalls.syscalls else f.libraries:
            _edge(g, _node(g, f"lib:{lib}", "library", lib), sys_id, "reaches")


def _add_gaps(g: nx.MultiDiGraph, t: TargetReport) -> None:
    for gap in t.gaps:
        sys_id = f"sys:{gap.name}"
        if sys_id not in g:
            continue
        # plain strings: node attributes are output data (GraphML types values by their Python type)
        g.nodes[sys_id].update(status=gap.status.value, tier=gap.tier.value, action=gap.action_label)
        if gap.library:
            uk = _node(g, f"uk:{gap.library}", "unikraft-library", gap.library)
            _edge(g, sys_id, uk, "provided-by")
            if gap.kconfig:
                _edge(g, uk, _node(g, f"kconfig:{gap.kconfig}", "kconfig", gap.kconfig), "enabled-by")


def collapsed(g: nx.MultiDiGraph) -> nx.DiGraph:
    """Targets, libraries, objects loaded at run time and syscalls; symbol edges folded into target→syscall."""
    keep = {n for n, d in g.nodes(data=True) if d["kind"] in ("target", "library", "loaded-at-run-time", "syscall")}
    out = nx.DiGraph()
    out.add_nodes_from((n, g.nodes[n]) for n in keep)
    for a, b, d in g.edges(data=True):
        if a in keep and b in keep:
            out.add_edge(a, b, kind=d["kind"])
        elif g.nodes[a]["kind"] == "symbol" and b in keep:
            for src in g.predecessors(a):
                if src in keep:
                    out.add_edge(src, b, kind="reaches")
    return out


def to_json(g: nx.MultiDiGraph) -> str:
    """Our own explicit schema (not networkx's node-link dump, whose keys change across releases)."""
    nodes = [{"id": n, **{k: d[k] for k in sorted(d)}} for n, d in sorted(g.nodes(data=True))]
    edges = sorted({(a, b, d["kind"]) for a, b, d in g.edges(data=True)})
    doc = {
        "schema_version": GRAPH_SCHEMA_VERSION,
        "nodes": nodes,
        "edges": [{"source": a, "target": b, "kind": k} for a, b, k in edges],
    }
    return json.dumps(for_json(doc), indent=1, sort_keys=True) + "\n"


def to_graphml(g: nx.MultiDiGraph) -> str:
    """GraphML (well-formed XML 1.0): ids and string values through
    :func:`~uk_depscan.report.escape.for_xml`, which is exact for every name XML can carry."""
    buf = io.BytesIO()
    nx.write_graphml(_stable(g, for_xml), buf)
    return buf.getvalue().decode("utf-8")


def to_dot(g: nx.MultiDiGraph) -> str:
    """Collapsed view as DOT (pydot), syscalls coloured by Unikraft status."""
    import pydot

    view = collapsed(g)
    dot = pydot.Dot(graph_type="digraph", rankdir="LR", fontname="Helvetica")
    for n, d in sorted(view.nodes(data=True)):
        shape = {"target": "box3d", "library": "box"}.get(d["kind"], "ellipse")
        colour = STATUS_COLOURS.get(d.get("status", ""), "#555555")
        lines = [d["label"]] + (
            [f"{d.get('tier', '')} {d.get('status', '')}".strip()] if d["kind"] == "syscall" else []
        )
        label = '"' + "\\n".join(dot_label(x) for x in lines if x) + '"'
        dot.add_node(pydot.Node(dot_id(n), label=label, shape=shape, color=colour))
    for a, b, d in sorted(view.edges(data=True)):
        dot.add_edge(pydot.Edge(dot_id(a), dot_id(b), label=d["kind"]))  # our own edge kinds
    return dot.to_string()


def _stable(g: nx.MultiDiGraph, clean: Callable[[str], str]) -> nx.MultiDiGraph:
    """A copy in sorted order, node ids and string values through ``clean``."""

    def attrs(d: dict[str, Any]) -> dict[str, Any]:
        return {k: clean(v) if isinstance(v, str) else v for k, v in d.items()}

    out = nx.MultiDiGraph()
    out.add_nodes_from(sorted(((clean(n), attrs(d)) for n, d in g.nodes(data=True)), key=lambda x: x[0]))
    out.add_edges_from(
        sorted(
            ((clean(a), clean(b), {"kind": clean(d["kind"])}) for a, b, d in g.edges(data=True)),
            key=lambda e: (e[0], e[1], e[2]["kind"]),
        )
    )
    return out


# -- the collapsed overview the HTML report draws ---------------------------------------------------
# target → libraries of the closure → Unikraft libraries (with their Kconfig options) → gap classes
# (one per action).  Laid out here, without graphviz, in four columns: the full graph above (75 k
# symbol nodes for libtorch_cpu.so) drawn by dot was over 16,000 px tall and unreadable.
OVERVIEW_WIDTH = 1400
OVERVIEW_MAX_HEIGHT = 1000
_MAX_PER_LAYER = (1, 14, 20, 10)  # ≤ 45 nodes, plus one "+N more" node per capped layer: ≤ 47
_COLUMNS = ((10, 200), (300, 240), (660, 330), (1130, 260))  # (x, width) of each layer's boxes
_ROW, _BOX, _TOP = 28, 22, 24  # vertical pitch, box height, room for the column titles
_CHAR = 7.3  # px per character of the 12 px monospace labels (DejaVu Sans Mono: 0.602 em)
OVERVIEW_TITLES = ("target", "libraries (whose code reaches the gaps)", "Unikraft library · option", "gaps, by action")


class OverviewLayer(StrEnum):
    TARGET = "target"
    LIBRARY = "library"
    UNIKRAFT = "unikraft"
    GAPS = "gaps"


@dataclass(frozen=True)
class OverviewNode:
    """One box: its layer, label (untrusted: escape on output), tooltip, the gap rows it stands
    for (name, tier, status, action), and where it is drawn (label already shortened to fit)."""

    key: int
    layer: OverviewLayer
    label: str
    title: str
    gaps: tuple[tuple[str, str, str, str], ...]
    x: float
    y: float
    width: float
    shown: str
    colour: str


@dataclass(frozen=True)
class OverviewEdge:
    source: int
    target: int
    weight: int
    path: str  # SVG path data (numbers only)
    stroke: float


@dataclass(frozen=True)
class Overview:
    nodes: tuple[OverviewNode, ...]
    edges: tuple[OverviewEdge, ...]
    width: int
    height: int
    columns: tuple[tuple[float, str], ...]  # (x, title)


_ACTION_COLOURS = {
    Action.IMPLEMENT: "#c62828",
    Action.FAKE: "#ef6c00",
    Action.STUB: "#b7791f",
    Action.INVESTIGATE: "#8e24aa",
    Action.KEEP: "#6b7280",
    Action.ENABLE: "#1565c0",
    Action.NONE: "#2e7d32",
}
_ACTION_ORDER = (
    Action.IMPLEMENT,
    Action.FAKE,
    Action.STUB,
    Action.INVESTIGATE,
    Action.KEEP,
    Action.ENABLE,
    Action.NONE,
)
_NOT_IN_UNIKRAFT = "not in Unikraft"
_OWN = "\0own"  # the target's own code, in the target and library layers (a key no name can be)


def _fit(text: str, width: float) -> str:
    room = max(4, int((width - 10) / _CHAR))
    return text if len(text) <= room else text[: room - 1] + "…"


def overview(t: TargetReport, rows: tuple[GapRow, ...]) -> Overview | None:
    """The laid-out overview of one target's gaps (None: no gaps).  Each layer keeps its biggest
    nodes (by gaps; ties in gap order, so the picture never depends on how names sort) up to its
    cap and folds the rest into one "+N more" node; rows are ordered by the barycentre of their
    neighbours (two sweeps), which untangles the edges of a four-layer graph well enough here."""
    if not rows:
        return None
    own = _OWN
    reached = {f.name for f in t.syscalls.syscalls} if t.syscalls is not None else set()
    members: list[dict[str, list[GapRow]]] = [{own: list(rows)}, {}, {}, {}]
    notes: dict[str, set[str]] = {}
    edges: dict[tuple[int, str, str], int] = {}
    for r in rows:
        g = r.gap
        # a reached syscall's chain starts in the target (its first library); the start-up
        # baseline's starts in ld.so: only the libraries after the target are dependencies
        deps = list(r.needed_via[1:] if g.name in reached else r.needed_via) or [own]
        uk = g.library or _NOT_IN_UNIKRAFT
        cls = g.action.value
        for d in deps:
            members[1].setdefault(d, []).append(r)
            edges[(0, own, d)] = edges.get((0, own, d), 0) + 1
            edges[(1, d, uk)] = edges.get((1, d, uk), 0) + 1
        members[2].setdefault(uk, []).append(r)
        if g.kconfig:
            notes.setdefault(uk, set()).add(g.kconfig)
        members[3].setdefault(cls, []).append(r)
        edges[(2, uk, cls)] = edges.get((2, uk, cls), 0) + 1
    # cap each layer: the biggest nodes stay, the rest become "+N more" (its key is fixed: "\0more")
    rename: list[dict[str, str]] = [{}, {}, {}, {}]
    more = [0, 0, 0, 0]
    for layer in (1, 2, 3):
        names = sorted(members[layer], key=lambda n: -len(members[layer][n]))  # ties: gap order
        for n in names[_MAX_PER_LAYER[layer] :]:
            rename[layer][n] = "\0more"
        if len(names) > _MAX_PER_LAYER[layer]:
            more[layer] = len(names) - _MAX_PER_LAYER[layer]
            merged = members[layer].setdefault("\0more", [])
            for n in names[_MAX_PER_LAYER[layer] :]:
                merged += members[layer].pop(n)
    folded: dict[tuple[int, str, str], int] = {}
    for (layer, a, b), w in edges.items():
        key = (layer, rename[layer].get(a, a), rename[layer + 1].get(b, b))
        folded[key] = folded.get(key, 0) + w
    # order: gap classes in action order; the others by barycentre, two sweeps
    order: list[list[str]] = [[own], [], [], []]
    order[3] = sorted(members[3], key=lambda c: _ACTION_ORDER.index(Action(c)) if c != "\0more" else 99)
    order[2] = sorted(members[2], key=lambda n: -len(members[2][n]))
    order[1] = sorted(members[1], key=lambda n: -len(members[1][n]))
    for _ in range(2):
        order[2] = _by_barycentre(order[2], order[3], folded, 2, forward=True)
        order[1] = _by_barycentre(order[1], order[2], folded, 1, forward=True)
        order[2] = _by_barycentre(order[2], order[1], folded, 1, forward=False)
    tallest = max(len(o) for o in order)
    height = min(OVERVIEW_MAX_HEIGHT, _TOP + tallest * _ROW + 10)
    nodes: list[OverviewNode] = []
    where: dict[tuple[int, str], OverviewNode] = {}
    for layer, names in enumerate(order):
        x, width = _COLUMNS[layer]
        top = _TOP + (tallest - len(names)) * _ROW / 2
        for i, name in enumerate(names):
            mine = members[layer][name]
            label = f"+{more[layer]} more" if name == "\0more" else _overview_label(t, layer, name, mine)
            note = ", ".join(sorted(notes.get(name, ())))
            count = f" · {len(mine)}"
            text = label + (f" · {note}" if note else "")
            node = OverviewNode(
                key=len(nodes),
                layer=tuple(OverviewLayer)[layer],
                label=text,
                title=f"{text}: {len(mine)} gap{'s' if len(mine) != 1 else ''}",
                gaps=tuple((r.gap.name, r.gap.tier.value, r.gap.status.value, r.gap.action_label) for r in mine),
                x=x,
                y=top + i * _ROW,
                width=width,
                shown=_fit(text, width - len(count) * _CHAR) + count,
                colour=_overview_colour(layer, name, mine),
            )
            nodes.append(node)
            where[(layer, name)] = node
    out_edges = []
    heaviest = max(folded.values())
    for (layer, a, b), w in folded.items():  # in gap order
        na, nb = where[(layer, a)], where[(layer + 1, b)]
        x1, y1, x2, y2 = na.x + na.width, na.y + _BOX / 2, nb.x, nb.y + _BOX / 2
        mid = (x1 + x2) / 2
        path = f"M{x1:.1f},{y1:.1f} C{mid:.1f},{y1:.1f} {mid:.1f},{y2:.1f} {x2:.1f},{y2:.1f}"
        out_edges.append(OverviewEdge(na.key, nb.key, w, path, round(1 + 5 * w / heaviest, 2)))
    columns = tuple((float(x), title) for (x, _), title in zip(_COLUMNS, OVERVIEW_TITLES, strict=True))
    return Overview(tuple(nodes), tuple(out_edges), OVERVIEW_WIDTH, int(height), columns)


def _overview_label(t: TargetReport, layer: int, name: str, mine: list[GapRow]) -> str:
    if name == _OWN:
        target = t.target.rsplit("/", 1)[-1]
        return target if layer == 0 else f"{target} (own code)"
    if layer == 3:
        return "enable an option" if name == Action.ENABLE.value else mine[0].gap.action_label
    return name


def _overview_colour(layer: int, name: str, mine: list[GapRow]) -> str:
    if layer == 3 and name != "\0more":
        return _ACTION_COLOURS[Action(name)]
    if layer == 2:
        worst = min((r.gap.status for r in mine), key=lambda s: s.rank)
        return STATUS_COLOURS.get(worst, "#8e24aa")
    return "#374151" if layer == 0 else "#546e7a"


def _by_barycentre(
    names: list[str], fixed: list[str], edges: dict[tuple[int, str, str], int], layer: int, *, forward: bool
) -> list[str]:
    """``names`` sorted by the weighted mean position of their neighbours in ``fixed`` (edges of
    ``layer``: names → fixed when ``forward``, fixed → names otherwise); ties keep their order."""
    pos = {n: i for i, n in enumerate(fixed)}
    total: dict[str, float] = {}
    weight: dict[str, int] = {}
    for (lay, a, b), w in edges.items():
        if lay != layer:
            continue
        me, other = (a, b) if forward else (b, a)
        if other in pos:
            total[me] = total.get(me, 0.0) + pos[other] * w
            weight[me] = weight.get(me, 0) + w
    current = {n: i for i, n in enumerate(names)}
    return sorted(names, key=lambda n: (total[n] / weight[n] if n in weight else current[n], current[n]))
