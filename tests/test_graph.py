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
