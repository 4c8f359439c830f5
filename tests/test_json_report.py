"""JSON output: validated against the committed schema, deterministic, golden on a fixture."""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from conftest import FIXTURES, compile_so, run_cli

SCHEMA = json.loads((resources.files("uk_depscan") / "report" / "schema" / "report-v1.schema.json").read_text())


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("chain")
    src = FIXTURES / "loader" / "lib.c"
    bot = compile_so(base / "r" / "libbot.so", [src], define="provided_func")
    gone = compile_so(base / "gone" / "libgone.so", [src], define="gone_func")
    top = compile_so(base / "a" / "libtop.so", [FIXTURES / "loader" / "weak.c"], link=[bot, gone],
                     runpath="$ORIGIN/../r")
    gone.unlink()
    return top


@pytest.mark.parametrize("command", ["scan", "deps"])
def test_cli_json_validates_and_is_deterministic(chain: Path, command: str) -> None:
    code1, out1, _ = run_cli([command, str(chain), "--format", "json"])
    code2, out2, _ = run_cli([command, str(chain), "--format", "json"])
    assert code1 == code2 == 1  # libgone.so is missing: a gap
    assert out1 == out2
    doc = json.loads(out1)
    jsonschema.validate(doc, SCHEMA)
    assert doc["schema_version"] == 1


def test_golden_fixture_report(chain: Path) -> None:
    """Load order, how each library was found, the missing one and the import bindings."""
    _, out, _ = run_cli(["scan", str(chain), "--format", "json"])
    base = str(chain.parent.parent)
    t = json.loads(out.replace(base, "<base>"))["targets"][0]
    deps = t["dependencies"]
    assert [(o["needed_name"], o["found_via"], o["path"]) for o in deps["load_order"]] == [
        (None, "root", "<base>/a/libtop.so"),
        ("libbot.so", "runpath", "<base>/a/../r/libbot.so"),
    ]
    assert [(m["needed_name"], m["needed_by"], m["tried"][0]["path"]) for m in deps["missing"]] == [
        ("libgone.so", 0, "<base>/a/../r/libgone.so")]
    assert [(i["name"], i["binding"], i["provider"]) for i in t["imports"]] == [
        ("maybe_missing", "WEAK", None), ("provided_func", "GLOBAL", "<base>/a/../r/libbot.so")]
    assert t["unresolved"] == [] and t["unresolved_weak"] == ["maybe_missing"]


def test_output_file_written_only_on_success(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    code, _, _ = run_cli(["deps", str(tmp_path / "missing.so"), "--format", "json", "-o", str(out)])
    assert code == 2 and not out.exists()
