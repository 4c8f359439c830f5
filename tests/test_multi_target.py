"""Several targets at once (matrix, plan) and `diff` between versions."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import FIXTURES, compile_so, run_cli


def test_matrix_plan_and_diff(tmp_path: Path) -> None:
    prov = compile_so(tmp_path / "libprov.so", [FIXTURES / "loader" / "lib.c"], define="provided_func")
    a = compile_so(tmp_path / "liba.so", [FIXTURES / "loader" / "weak.c"], link=[prov], runpath="$ORIGIN")
    b = compile_so(tmp_path / "libb.so", [FIXTURES / "loader" / "lib.c"])
    code, out, err = run_cli(["scan", str(a), str(b), "--format", "json", "--libc", "glibc", "--unikraft", "0.17.0"])
    assert code == 1, err
    doc = json.loads(out)
    rows = {m["syscall"]: m for m in doc["matrix"]}
    assert set(rows["arch_prctl"]["needed_by"]) == {str(a), str(b)}  # start-up path of both
    # app-elfloader 0.16.3's arch_prctl on a 0.17 core: its own status (unverified), neither provided nor
    # absent; on the start-up path of both, so P0
    assert rows["arch_prctl"]["tier"] == "P0" and rows["arch_prctl"]["status"] == "unverified"
    assert doc["plan"] and set(doc["plan"][-1]["completes"]) | {t for s in doc["plan"] for t in s["completes"]} == {
        str(a),
        str(b),
    }
    saved = tmp_path / "old.json"
    saved.write_text(out)
    code, diff_out, _ = run_cli(["diff", str(saved), str(saved), "--format", "json"])
    assert code == 0 and json.loads(diff_out)["changes"] == []
    code, diff_out, _ = run_cli(["diff", str(b), str(a), "--libc", "glibc", "--unikraft", "0.17.0", "--format", "json"])
    changes = {(c["kind"], c["item"], c["change"]) for c in json.loads(diff_out)["changes"]}
    assert ("library", "libprov.so", "added") in changes
    code, _, err = run_cli(["diff", str(tmp_path / "missing.json"), str(saved)])
    assert code == 2 and "not a readable uk-depscan JSON report" in err
