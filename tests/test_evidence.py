"""Evidence breadth (uk_depscan/syscalls/evidence.py) on a hand-built binding graph with known answers,
and on a fixture library compiled at test time."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import FIXTURES, compile_so, run_cli

from uk_depscan.syscalls.evidence import SyscallBreadth, breadth
from uk_depscan.syscalls.summaries import ALL, EntryReach, TableSummary


def _summary(name: str, entries: dict[str, tuple[set[int], set[str], set[int]]]) -> TableSummary:
    return TableSummary(
        name, {k: EntryReach(frozenset(s), frozenset(i), frozenset(f)) for k, (s, i, f) in entries.items()}
    )


def test_breadth_on_a_known_graph() -> None:
    root = _summary("root", {ALL: ({39}, {"a", "b", "abort"}, set())})
    lib = _summary(
        "lib",
        {
            "a": ({0}, {"c"}, set()),
            "c": ({1}, {"a"}, {60}),  # a <-> c is a cycle; 60 only on a failure path inside c
            "b": ({2, 3, 4, 5, 2**64 - 1}, set(), set()),  # syscall(-1): not a syscall number, ignored
            "abort": ({62}, set(), set()),
        },
    )
    bind = {
        (0, "a"): (1, "a"),
        (0, "b"): (1, "b"),
        (0, "abort"): (1, "abort"),
        (1, "c"): (1, "c"),
        (1, "a"): (1, "a"),
    }
    got = breadth([(0, ALL)], {0: root, 1: lib}, bind)
    assert got == {
        0: SyscallBreadth(0, 1, "a", 2),
        1: SyscallBreadth(0, 1, "a", 2),
        2: SyscallBreadth(0, 1, "b", 4),
        3: SyscallBreadth(0, 1, "b", 4),
        4: SyscallBreadth(0, 1, "b", 4),
        5: SyscallBreadth(0, 1, "b", 4),
        39: SyscallBreadth(1, 0, None, 0),  # the root's own site; abort (a failure function) not followed
    }


def test_narrowest_import_wins_and_ties_break_by_name() -> None:
    root = _summary("root", {ALL: (set(), {"wide", "narrow", "also_narrow"}, set())})
    lib = _summary(
        "lib",
        {"wide": ({0, 1, 2, 3}, set(), set()), "narrow": ({0}, set(), set()), "also_narrow": ({0}, set(), set())},
    )
    bind = {(0, k): (1, k) for k in ("wide", "narrow", "also_narrow")}
    got = breadth([(0, ALL)], {0: root, 1: lib}, bind)
    assert got[0] == SyscallBreadth(0, 3, "also_narrow", 1)
    assert got[3] == SyscallBreadth(0, 1, "wide", 4)


SOURCE = r"""
#include <unistd.h>
#include <sys/syscall.h>
int probe(void) { return (int)getpid(); }                 /* a wrapper import of getpid */
long direct(void) { return syscall(SYS_gettid); }        /* a syscall() call in its own code */
long invalid(void) { return syscall(-1); }               /* not a syscall: never a gap */
"""


def test_breadth_in_the_json_report(tmp_path: Path) -> None:
    """A library built here: getpid through its wrapper import, gettid from its own syscall() call."""
    src = tmp_path / "probe.c"
    src.write_text(SOURCE)
    lib = compile_so(tmp_path / "libprobe.so", [src], extra=["-lc"])
    code, out, err = run_cli(["scan", str(lib), "-f", "json", "--libc", "glibc"])
    assert code in (0, 1), err
    t = json.loads(out)["targets"][0]
    reached = {f["name"]: f["breadth"] for f in t["syscalls"]["reached"]}
    assert reached["getpid"] == {"own_sites": 0, "imports": 1, "narrowest": "getpid@GLIBC_2.2.5", "narrowest_size": 1}
    assert reached["gettid"]["own_sites"] == 1
    assert all(f["breadth"] is None for f in t["syscalls"]["baseline"])
    gaps = {g["name"]: g for g in t["gaps"]}
    assert gaps["getpid"]["evidence"] == "wrapper import" and gaps["gettid"]["evidence"] == "own site"
    linux = set(json.loads((FIXTURES.parent / "syscall_tables" / "linux" / "x86_64.json").read_text())["syscalls"])
    assert {g["name"] for g in t["gaps"]} <= linux  # syscall(-1) is not a gap, whatever the syscall stage says of it
    for g in t["gaps"]:
        assert 0.0 <= g["likelihood"] <= 1.0 and g["path"] in ("start-up", "normal", "rare start-up", "failure")
