"""The gap classes, actions and tiers of gaps.py, exactly, on the shipped 0.17.0 table."""

from __future__ import annotations

import pytest

from uk_depscan.unikraft.gaps import assess_all
from uk_depscan.unikraft.tables import LoupePrior, load_loupe_priors, load_unikraft_table


@pytest.fixture(scope="module")
def table():  # type: ignore[no-untyped-def]
    return load_unikraft_table("0.17.0")


def prior(name: str, used: int, required: int, stubbable: int, fakeable: int) -> LoupePrior:
    return LoupePrior(name, used, required, stubbable, fakeable, "test")


CASES = {
    # name: (startup, failure_only, prior or None) -> (status, action, tier)
    "read": ((False, False, prior("read", 110, 106, 4, 4)), ("needs-kconfig", "enable CONFIG_LIBPOSIX_FDIO", "P0")),
    "madvise": (
        (False, False, prior("madvise", 56, 2, 54, 48)),
        ("needs-kconfig", "enable CONFIG_LIBPOSIX_MMAP", "P1"),
    ),
    "arch_prctl": ((True, False, prior("arch_prctl", 110, 109, 1, 1)), ("absent", "implement", "P0")),
    "set_robust_list": ((True, False, prior("set_robust_list", 108, 6, 102, 100)), ("absent", "keep stub", "P3")),
    "clone3": ((False, False, None), ("absent", "keep stub", "P3")),  # glibc falls back to clone
    "io_uring_setup": ((False, False, None), ("absent", "implement", "P1")),
    "sched_getaffinity": ((False, False, prior("sched_getaffinity", 60, 4, 55, 43)), ("stub", "keep stub", "P3")),
    "mremap": ((False, False, prior("mremap", 6, 2, 4, 1)), ("stub", "implement", "P1")),
    "futex": ((True, False, prior("futex", 89, 21, 2, 68)), ("partial", "implement", "P0")),
    "kill": ((False, True, prior("kill", 20, 2, 3, 19)), ("stub", "keep stub", "P3")),
    "sched_getparam": ((False, False, prior("sched_getparam", 10, 0, 1, 9)), ("absent", "fake (return 0)", "P2")),
    "pselect6": ((False, True, prior("pselect6", 8, 5, 2, 2)), ("partial", "implement", "P3")),  # failure only
}


def test_classes_actions_tiers(table) -> None:  # type: ignore[no-untyped-def]
    names = {n: (spec[0], spec[1]) for n, (spec, _) in CASES.items()}
    priors = {n: spec[2] for n, (spec, _) in CASES.items() if spec[2] is not None}
    got = {g.name: (g.status, g.action_label, g.tier) for g in assess_all(names, table, priors)}
    assert got == {n: want for n, (_, want) in CASES.items()}


def test_sorted_by_tier_and_reasons_shown(table) -> None:  # type: ignore[no-untyped-def]
    gaps = assess_all(
        {"arch_prctl": (True, False), "clone3": (False, False), "read": (False, False)}, table, load_loupe_priors()
    )
    assert [g.tier for g in gaps] == sorted(g.tier for g in gaps)
    arch = next(g for g in gaps if g.name == "arch_prctl")
    assert any("start-up" in r for r in arch.reasons) and any(r.startswith("Loupe: used by 110") for r in arch.reasons)
    assert any("falls back to clone" in r for r in next(g for g in gaps if g.name == "clone3").reasons)


def test_native_route_classification() -> None:
    from uk_depscan.unikraft.gaps import native_symbol_gaps
    from uk_depscan.unikraft.tables import load_libmusl_symbols

    musl = load_libmusl_symbols("0.17.0")
    imports = (
        ("malloc", "GLIBC_2.2.5", "libc.so.6"),
        ("__memcpy_chk", "GLIBC_2.3.4", "libc.so.6"),
        ("fcntl64", "GLIBC_2.28", "libc.so.6"),
        ("__isoc99_sscanf", "GLIBC_2.7", "libc.so.6"),  # musl alias
        ("aligned_alloc", "GLIBC_2.16", "libc.so.6"),
        ("stderr", "GLIBC_2.2.5", "libc.so.6"),
        ("_ZdlPv", "GLIBCXX_3.4", "libstdc++.so.6"),
        ("__gmon_start__", None, None),
    )
    got = {g.name: g.status for g in native_symbol_gaps(imports, musl.has)}
    assert got == {
        "malloc": "available",
        "__memcpy_chk": "fortify",
        "fcntl64": "available-as",
        "__isoc99_sscanf": "available",
        "aligned_alloc": "missing",
        "stderr": "available",
    }


def test_binary_compat_findings(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A non-PIE program with an executable stack, built by the test, is flagged for app-elfloader."""
    import subprocess

    from conftest import FIXTURES, need, run_cli

    need("gcc")
    exe = tmp_path / "nopie"
    subprocess.run(
        ["gcc", "-no-pie", "-z", "execstack", "-o", str(exe), str(FIXTURES / "programs" / "empty.c")],
        check=True,
        capture_output=True,
    )
    import json

    code, out, _ = run_cli(["scan", str(exe), "--format", "json", "--libc", "glibc"])
    found = {
        (r["severity"], r["problem"].split(":")[0])
        for r in json.loads(out)["targets"][0]["binary_compat"]
        if r["object"] == str(exe)
    }
    assert found == {
        ("blocker", "not PIE (ET_EXEC)"),
        ("warning", "requests an executable stack (PT_GNU_STACK PF_X or absent)"),
    }
    assert code == 1


def test_greedy_plan_exact() -> None:
    from uk_depscan.unikraft.gaps import PlanStep, greedy_plan

    req = {
        "a.so": frozenset({"enable CONFIG_X", "implement: rseq"}),
        "b.so": frozenset({"enable CONFIG_X"}),
        "c.so": frozenset({"enable CONFIG_X", "implement: rseq", "fake (return 0): prctl"}),
        "d.so": frozenset(),
    }
    assert greedy_plan(req) == (
        PlanStep(0, (), ("d.so",)),
        PlanStep(1, ("enable CONFIG_X",), ("b.so",)),
        PlanStep(2, ("implement: rseq",), ("a.so",)),
        PlanStep(3, ("fake (return 0): prctl",), ("c.so",)),
    )
    assert [p.number for p in greedy_plan({"x": frozenset({"a"}), "y": frozenset({"a", "b"})})] == [1, 2]


def test_routes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """binary-compat includes the start-up baseline and loader flags; native drops them and adds libc symbols."""
    import json

    from conftest import FIXTURES, compile_so, run_cli

    lib = compile_so(tmp_path / "libplain.so", [FIXTURES / "loader" / "lib.c"])
    docs = {
        r: json.loads(run_cli(["scan", str(lib), "-f", "json", "--libc", "glibc", "--route", r])[1])["targets"][0]
        for r in ("both", "binary-compat", "native")
    }
    assert any(g["name"] == "arch_prctl" for g in docs["binary-compat"]["gaps"])  # ld.so start-up
    assert not any(g["name"] == "arch_prctl" for g in docs["native"]["gaps"])
    assert docs["binary-compat"]["native_route"] is None and docs["native"]["native_route"] is not None
    assert docs["both"]["gaps"] == docs["binary-compat"]["gaps"] and docs["both"]["native_route"] is not None
