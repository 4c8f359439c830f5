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
from typing import Any

import networkx as nx

from uk_depscan.model import EvidenceKind, Report, SupportStatus, TargetReport
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
    """Targets, libraries and syscalls; symbol edges folded into target→syscall."""
    keep = {n for n, d in g.nodes(data=True) if d["kind"] in ("target", "library", "syscall")}
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
