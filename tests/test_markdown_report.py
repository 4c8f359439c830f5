"""Markdown output: hostile strings from binaries stay inside their table cell; --fail-on gating."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

from conftest import FIXTURES, compile_so, run_cli

HOSTILE = "lib|x`<img src=x onerror=alert(1)>`\x1b[31m.so"


def test_hostile_soname_is_escaped(tmp_path: Path) -> None:
    lib = compile_so(tmp_path / "libhostile.so", [FIXTURES / "loader" / "lib.c"], soname=HOSTILE)
    code, out, _ = run_cli(["scan", str(lib), "--format", "md", "--libc", "glibc"])
    assert code in (0, 1)
    row = next(line for line in out.splitlines() if line.startswith("| soname |"))
    assert row.count("|") - row.count("\\|") == 3  # exactly the two cells' borders survive
    # CommonMark: a backslash-escaped "<" or "`" is literal text, so only unescaped ones could act
    assert "<img" not in out.replace("\\<img", "") and "\x1b" not in out
    assert "`<" not in out.replace("\\`\\<", "")


def _table_without_elfloader(tmp_path: Path) -> Path:
    """The staging table as `tables unikraft` writes it without --elfloader: arch_prctl is then absent."""
    doc = json.loads((files("uk_depscan.syscall_tables") / "unikraft" / "staging.json").read_text())
    for name in ("arch_prctl", "brk"):
        row = doc["syscalls"][name]
        row["providers"] = [p for p in row["providers"] if not p["external"]]
        row.pop("external_status", None)
        row["routes"]["binary-compat"] = dict(row["routes"]["native"])
    counts = doc["counts"]["routes"]["binary-compat"]
    counts["unverified"], counts["absent"] = counts["unverified"] - 2, counts["absent"] + 2
    out = tmp_path / "staging-no-elfloader.json"
    out.write_text(json.dumps(doc))
    return out


def test_fail_on_levels(tmp_path: Path) -> None:
    lib = compile_so(tmp_path / "libplain.so", [FIXTURES / "loader" / "lib.c"])
    table = _table_without_elfloader(tmp_path)
    codes = {
        level: run_cli(
            ["scan", str(lib), "--fail-on", level, "-q", "--format", "json", "--unikraft-table", str(table)]
        )[0]
        for level in ("never", "absent", "stub", "any")
    }
    # the start-up baseline needs arch_prctl, absent in a table without app-elfloader
    assert codes == {"never": 0, "absent": 1, "stub": 1, "any": 1}
