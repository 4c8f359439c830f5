"""The CLI's shared options and its one error path (uk_depscan.cli.common, uk_depscan.cli.main.run)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import run_cli

from uk_depscan.cli.common import SHARED, CommonOptions
from uk_depscan.cli.main import DEPS_OPTIONS, DIFF_OPTIONS, EXPLAIN_OPTIONS, GRAPH_OPTIONS, SCAN_OPTIONS
from uk_depscan.errors import InputError


def test_traceback_is_read_from_its_option(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.so")
    code, out, err = run_cli(["deps", missing])
    assert (code, out, err) == (2, "", f"uk-depscan: error: {missing}: no such file or directory\n")
    with pytest.raises(InputError):
        run_cli(["deps", missing, "--traceback"])
    # a target that happens to be called --traceback is a file name, not the option
    code, _, err = run_cli(["deps", "--", "--traceback"])
    assert code == 2 and err == "uk-depscan: error: --traceback: no such file or directory\n"


def test_tables_errors_take_the_same_path() -> None:
    code, out, err = run_cli(["tables", "show", "0.17.0", "nosuch"])
    assert (code, out) == (2, "")  # not a syscall at all: a usage error (README: exit 2)
    assert err == "uk-depscan: error: nosuch: not a Linux syscall name or number\n"
    code, out, err = run_cli(["tables", "show", "0.17.0", "madvize"])
    assert code == 2 and err.endswith("(did you mean `madvise`?)\n")
    code, out, err = run_cli(["tables", "show", "0.1"])
    assert code == 2 and out == "" and err.startswith("uk-depscan: error: ") and "'0.1'" in err


def test_unwritable_output_is_one_line(tmp_path: Path) -> None:
    target = tmp_path / "nodir" / "out.json"
    code, out, err = run_cli(["deps", sys.executable, "--format", "json", "-o", str(target)])
    assert (code, out) == (2, "")
    assert err == f"uk-depscan: error: {target}: cannot write: No such file or directory\n"


def test_shared_options_declared_once() -> None:
    """Every option a command shares is one declaration; the options object covers them all."""
    fields = {f.name for f in CommonOptions.__dataclass_fields__.values()}
    assert set(SHARED) == fields
    for names in (SCAN_OPTIONS, DEPS_OPTIONS, EXPLAIN_OPTIONS, GRAPH_OPTIONS, DIFF_OPTIONS):
        assert len(set(names)) == len(names) and set(names) <= fields
        assert "traceback" in names


@pytest.mark.parametrize("command", ["scan", "deps", "explain", "graph", "diff"])
def test_each_command_offers_traceback(command: str) -> None:
    code, out, _ = run_cli([command, "--help"])
    assert code == 0 and "--traceback" in out
