"""`uk-depscan explain` returns the exact shortest evidence chain on a fixture."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import FIXTURES, need, run_cli
from helpers_chains import site_problem
from helpers_syscalls import symbol_address


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    need("gcc")
    out = tmp_path_factory.mktemp("explain") / "libexplain.so"
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-O1", "-o", str(out), str(FIXTURES / "explain" / "explain.c")],
        check=True,
        capture_output=True,
    )
    return out


def host_libc_is_shipped(lib: Path) -> tuple[Path, bool]:
    """The libc the loader binds ``lib`` to, and whether it is the very file the shipped glibc model
    was made from (same build-id): then chains continue inside it down to the instruction."""
    from uk_depscan.elf.file import open_elf
    from uk_depscan.loader.resolve import resolve_tree
    from uk_depscan.syscalls.summaries import load_shipped

    libc = next(Path(o.path) for o in resolve_tree(lib).tree.objects if o.soname == "libc.so.6")
    shipped = load_shipped("glibc", "x86_64")["libc.so.6"].provenance["build_id"]
    return libc, open_elf(libc).build_id == shipped


def test_chains_in_json(lib: Path) -> None:
    expect = json.loads((FIXTURES / "explain" / "expect.json").read_text())
    code, out, _ = run_cli(["scan", str(lib), "--format", "json", "--libc", "glibc"])
    assert code in (0, 1)
    reached = {f["name"]: f for f in json.loads(out)["targets"][0]["syscalls"]["reached"]}
    libc, same = host_libc_is_shipped(lib)
    for name, chain in expect.items():
        got = [[s["kind"], s["symbol"]] for s in reached[name]["chain"]]
        if chain[-1][0] == "summary" and same:  # the shipped model's part, followed in the host's file
            last = reached[name]["chain"][-1]
            assert last["kind"] == "direct" and last["library"] == "libc.so.6", (name, got)
            assert site_problem(libc, int(last["detail"], 16), "direct") is None
            got, chain = got[: len(chain) - 1], chain[:-1]
        assert got[: len(chain) - 1] == chain[:-1], name
        assert got[-1][0] == chain[-1][0] and chain[-1][1] in got[-1][1], (name, got)


def test_explain_command(lib: Path) -> None:
    code, out, err = run_cli(["explain", str(lib), "getrandom", "--libc", "glibc"])
    assert code == 0, err
    lines = [line.strip() for line in out.splitlines()]
    assert lines[1].startswith("getrandom (318) reached") and "unikraft:" in lines[1]
    assert lines[2] == "entry:seed_buffer [libexplain.so]"
    assert lines[3] == "└─ import:getrandom@GLIBC_2.25"
    if host_libc_is_shipped(lib)[1]:
        assert lines[4].startswith("└─ direct:getrandom [libc.so.6] @ 0x")
    else:
        assert lines[4] == "└─ summary:getrandom@GLIBC_2.25 [libc.so.6]"
    code, out, _ = run_cli(["explain", str(lib), "io_uring_setup"])
    assert code == 0 and "not reachable" in out


def test_explain_import_export_and_saved_report(lib: Path, tmp_path: Path) -> None:
    """An import: what it reaches through its provider; an export: what it reaches (--entry); the
    same import answered from a saved JSON report without re-analysis; an unknown name: exit 2."""
    code, out, err = run_cli(["explain", str(lib), "getrandom", "--libc", "glibc", "--format", "json"])
    assert code == 0, err
    syscall = json.loads(out)["answers"][0]
    assert syscall["kind"] == "syscall" and syscall["hits"][0]["finding"]["name"] == "getrandom"
    code, out, err = run_cli(["explain", str(lib), "getrandom@GLIBC_2.25", "--libc", "glibc", "--format", "json"])
    assert code == 0, err
    imp = json.loads(out)["answers"][0]
    assert (imp["kind"], imp["symbol"], Path(imp["provider"]).name) == ("import", "getrandom@GLIBC_2.25", "libc.so.6")
    assert "getrandom" in imp["reaches"]
    assert [s["symbol"] for s in imp["hits"][0]["finding"]["chain"]][:2] == ["seed_buffer", "getrandom@GLIBC_2.25"]
    code, out, err = run_cli(["explain", str(lib), "whoami", "--libc", "glibc", "--format", "json"])
    assert code == 0, err
    exp = json.loads(out)["answers"][0]
    assert exp["kind"] == "export" and exp["symbol"] == "whoami" and "gettid" in exp["reaches"]
    saved = tmp_path / "report.json"
    assert (
        run_cli(["scan", str(lib), "--libc", "glibc", "--format", "json", "-o", str(saved), "--fail-on", "never"])[0]
        == 0
    )
    code, out, err = run_cli(["explain", str(saved), "getrandom@GLIBC_2.25", "--format", "json"])
    assert code == 0, err
    assert json.loads(out)["answers"][0] == imp
    code, out, err = run_cli(["explain", str(saved), "getrandm"])
    assert code == 2 and "closest: getrandom" in err and not out


def test_explain_a_code_address(lib: Path, tmp_path: Path) -> None:
    """A code address (as chains name a function the object has no name for) answers what the
    function holding it reaches, like its export would (the address from ``nm``, the oracle); from a
    saved report, or outside the code, it is exit 2 with one line."""
    at = symbol_address(lib, "whoami")
    code, by_name, err = run_cli(["explain", str(lib), "whoami", "--libc", "glibc", "--format", "json"])
    assert code == 0, err
    for spelling in (f"0x{at:x}", f"sub_{at:x}", f"0x{at + 2:x}"):
        code, got, err = run_cli(["explain", str(lib), spelling, "--libc", "glibc", "--format", "json"])
        assert code == 0, err
        answer = json.loads(got)["answers"][0]
        assert (answer["kind"], answer["symbol"]) == ("function", spelling)
        assert answer["reaches"] == json.loads(by_name)["answers"][0]["reaches"]
        assert "gettid" in answer["reaches"]
    saved = tmp_path / "report.json"
    assert run_cli(["scan", str(lib), "--libc", "glibc", "-f", "json", "-o", str(saved), "--fail-on", "never"])[0] == 0
    for where, why in ((str(saved), "needs the binary"), (str(lib), "not an address inside a function")):
        code, got, err = run_cli(["explain", where, f"0x{at:x}" if where == str(saved) else "0x1"])
        assert code == 2 and not got and err.count("\n") == 1 and why in err, err
