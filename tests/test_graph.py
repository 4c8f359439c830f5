"""Graph exports load back: GraphML with networkx, DOT with pydot; JSON is deterministic."""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import pydot
from conftest import FIXTURES, compile_so, run_cli

NASTY = 'lib"quoted\\back{slash}.so'


def test_graph_exports_round_trip(tmp_path: Path) -> None:
    dep = compile_so(tmp_path / NASTY, [FIXTURES / "loader" / "lib.c"], soname=NASTY, define="provided_func")
    lib = compile_so(tmp_path / "libweak.so", [FIXTURES / "loader" / "weak.c"], link=[dep], runpath="$ORIGIN")
    outs = {}
    for fmt in ("graphml", "json", "dot"):
        code, out, err = run_cli(["graph", str(lib), "--format", fmt, "--libc", "glibc"])
        assert code == 0, err
        outs[fmt] = out
    g = nx.read_graphml(__import__("io").BytesIO(outs["graphml"].encode()))
    kinds = {d["kind"] for _, d in g.nodes(data=True)}
    assert {"target", "library", "symbol", "syscall"} <= kinds
    assert g.has_edge("sym:provided_func", f"export:{NASTY}:provided_func") and g.has_edge(
        f"export:{NASTY}:provided_func", f"lib:{NASTY}"
    )
    (dot,) = pydot.graph_from_dot_data(outs["dot"])
    names = {n.get_name().strip('"') for n in dot.get_nodes()}
    assert f"target:{lib}" in names and not any(n.startswith("sym:") for n in names)  # collapsed view
    doc = json.loads(outs["json"])
    assert doc["schema_version"] == 1 and doc == json.loads(
        run_cli(["graph", str(lib), "-f", "json", "--libc", "glibc"])[1]
    )
    assert {e["kind"] for e in doc["edges"]} >= {"needs", "imports", "binds-to", "defined-in", "reaches", "provided-by"}


def test_overview_is_capped_and_fits(tmp_path: Path) -> None:
    """The HTML report's collapsed graph: at most 60 nodes whatever the closure, inside 1400 x
    1000, every gap in exactly one box per layer but the libraries (one per library of its chain)."""
    import dataclasses

    from uk_depscan.model import Action, Gap, GapRow, SupportStatus, Tier
    from uk_depscan.report.graph import OVERVIEW_MAX_HEIGHT, OVERVIEW_WIDTH, OverviewLayer, overview
    from uk_depscan.report.json_report import report_from_dict

    doc = json.loads((Path(__file__).resolve().parent.parent / "reports" / "libtorch_cpu.so.json").read_text())
    t = report_from_dict(doc).targets[0]
    assert t.views is not None
    # 200 gaps over 40 made-up libraries and 50 Unikraft libraries: more than any cap
    rows = tuple(
        GapRow(
            Gap(f"sc{i}", SupportStatus.STUB, "", f"lib/uk{i % 50}", None, list(Action)[i % 7], Tier.P1, ()),
            None,
            ("libself.so", f"libdep{i % 40}.so", "libc.so.6"),
        )
        for i in range(200)
    )
    for case in (t.views.rows, rows):
        o = overview(dataclasses.replace(t, gaps=tuple(r.gap for r in case)), case)
        assert o is not None and len(o.nodes) <= 60
        assert o.width <= OVERVIEW_WIDTH and o.height <= OVERVIEW_MAX_HEIGHT
        assert all(n.x >= 0 and n.x + n.width <= o.width and n.y >= 0 and n.y + 22 <= o.height for n in o.nodes)
        for layer in (OverviewLayer.TARGET, OverviewLayer.UNIKRAFT, OverviewLayer.GAPS):
            assert sum(len(n.gaps) for n in o.nodes if n.layer is layer) == len(case)
        keys = {n.key for n in o.nodes}
        assert all(e.source in keys and e.target in keys for e in o.edges)
    assert any(n.label.startswith("+") and n.label.endswith(" more") for n in o.nodes)
