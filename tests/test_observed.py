"""``--observed TRACE``: a fixture library traced at test time, the marks in every format, the
priority rules, a malformed trace (exit 2 naming the line), and process scope without stacks."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import FIXTURES, have, run_cli

from uk_depscan.model import Action, Gap, SupportStatus, Tier
from uk_depscan.report.json_report import load_report, render_json
from uk_depscan.unikraft.observed import NOT_OBSERVED, OBSERVED, apply_observation, observed_tier

SRC = FIXTURES / "observed"
RELEASE = "0.17.0"


def trace_fixture(tmp: Path, stacks: bool = True) -> tuple[Path, Path]:
    """(libwork.so, trace of prog running it under strace -f [-k])."""
    if not have("gcc") or not have("strace"):
        pytest.skip("needs gcc and strace")
    lib, prog, trace = tmp / "libwork.so", tmp / "prog", tmp / ("k.trace" if stacks else "plain.trace")
    if not lib.exists():
        subprocess.run(["gcc", "-shared", "-fPIC", "-O1", "-o", str(lib), str(SRC / "work.c")], check=True)
        subprocess.run(["gcc", "-o", str(prog), str(SRC / "prog.c"), str(lib), f"-Wl,-rpath,{tmp}"], check=True)
    cmd = ["strace", "-f", *(["-k"] if stacks else []), "-o", str(trace), str(prog)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not trace.exists():
        pytest.skip(f"strace unusable here: {proc.stderr.strip()[:120]}")
    if stacks and " > " not in trace.read_text():
        pytest.skip("this strace prints no -k stacks")
    return lib, trace


def scan(lib: Path, *extra: str) -> dict:  # type: ignore[type-arg]
    code, out, err = run_cli([str(lib), "--libc", "glibc", "--unikraft", RELEASE, "-f", "json", *extra])
    assert code in (0, 1), err
    return json.loads(out)["targets"][0]  # type: ignore[no-any-return]


@pytest.mark.strace
def test_library_scope_marks_and_ranks(tmp_path: Path) -> None:
    lib, trace = trace_fixture(tmp_path)
    before = scan(lib)
    after = scan(lib, "--observed", str(trace))
    o = after["observation"]
    assert o["scope"] == "library" and o["matched"] == [str(lib)]
    # libwork's own code made getpid and uname; sysinfo is reachable but the run never took that path
    assert {"getpid", "uname"} <= set(o["syscalls"]) and "sysinfo" not in o["syscalls"]
    reached = {f["name"]: f["observed"] for f in after["syscalls"]["reached"]}
    assert reached["getpid"] is True and reached["uname"] is True and reached["sysinfo"] is False
    gaps = {g["name"]: g for g in after["gaps"]}
    old = {g["name"]: g for g in before["gaps"]}
    for name in ("getpid", "uname"):  # observed, action "enable CONFIG_...": P0 whatever it was
        assert gaps[name]["observed"] is True and gaps[name]["tier"] == "P0", gaps[name]
        assert old[name]["tier"] in ("P0", "P1")
    assert gaps["sysinfo"]["observed"] is False and gaps["sysinfo"]["tier"] != "P0"
    # a start-up gap counts as observed when the process made it at start-up
    assert gaps["arch_prctl"]["observed"] is True and gaps["brk"]["observed"] is True
    # no gap lost: observation re-ranks, never removes
    assert set(old) <= set(gaps)
    assert "observed" not in before["gaps"][0] and "observation" not in before  # additive fields only
    assert o["counts"]["gaps_observed"] + o["counts"]["gaps_not_observed"] == len(after["gaps"])


@pytest.mark.strace
def test_every_format_shows_it(tmp_path: Path) -> None:
    lib, trace = trace_fixture(tmp_path)
    common = [str(lib), "--libc", "glibc", "--unikraft", RELEASE, "--observed", str(trace)]
    _, text, _ = run_cli([*common, "-v"])
    assert "observed      k.trace: scope library" in text and "not observed:" in text
    _, md, _ = run_cli([*common, "-f", "md"])
    assert "| observed |" in md and "### Observed in traced runs" in md
    _, html, _ = run_cli([*common, "-f", "html"])
    assert "<th>observed</th>" in html and "Observed in traced runs" in html
    out = tmp_path / "r.json"
    run_cli([*common, "-f", "json", "-o", str(out)])
    back = load_report(str(out))  # validated against the schema, read back with the marks
    assert back.targets[0].observation is not None
    assert render_json(back) == out.read_text()


@pytest.mark.strace
def test_without_stacks_the_whole_process_counts(tmp_path: Path) -> None:
    lib, trace = trace_fixture(tmp_path, stacks=False)
    o = scan(lib, "--observed", str(trace))["observation"]
    assert o["scope"] == "process" and o["matched"] == [] and "every syscall of the traced processes" in o["rule"]
    assert {"execve", "getpid", "uname"} <= set(o["syscalls"])


def test_malformed_trace_is_exit_2_naming_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.trace"
    bad.write_text('123 openat(AT_FDCWD, "/x", O_RDONLY) = 3\nthis is not strace output\n')
    lib = FIXTURES / "observed" / "work.c"  # never read: the trace is parsed before any analysis
    code, out, err = run_cli([str(lib), "--observed", str(bad)])
    assert code == 2 and out == ""
    assert err.startswith("uk-depscan: error: ") and f"{bad}:2: not a strace line" in err
    assert len(err.splitlines()) == 1
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    code, _, err = run_cli([str(lib), "--observed", str(fifo)])
    assert code == 2 and "not a regular file" in err


def _gap(name: str, action: Action, tier: Tier) -> Gap:
    return Gap(name, SupportStatus.ABSENT, "", None, None, action, tier, ("static",))


@pytest.mark.parametrize(
    ("action", "tier", "observed", "want"),
    [
        (Action.IMPLEMENT, Tier.P1, True, Tier.P0),  # observed beats Loupe
        (Action.IMPLEMENT, Tier.P3, True, Tier.P0),  # failure-only statically, but the run made it
        (Action.ENABLE, Tier.P1, True, Tier.P0),
        (Action.IMPLEMENT, Tier.P0, False, Tier.P1),  # not observed: ranked below the observed ones
        (Action.FAKE, Tier.P2, True, Tier.P2),  # stub/fake work stays P2
        (Action.KEEP, Tier.P3, True, Tier.P3),  # nothing to do stays nothing to do
        (Action.IMPLEMENT, Tier.P1, False, Tier.P1),
    ],
)
def test_observed_tier_rules(action: Action, tier: Tier, observed: bool, want: Tier) -> None:
    g = observed_tier(_gap("x", action, tier), observed)
    assert g.tier is want and g.observed is observed
    assert g.reasons == ("static", OBSERVED if observed else NOT_OBSERVED)


def test_apply_observation_keeps_gap_order() -> None:
    gaps = [_gap("b", Action.IMPLEMENT, Tier.P0), _gap("a", Action.IMPLEMENT, Tier.P1)]
    out = apply_observation(gaps, frozenset({"a"}), frozenset({"a"}))
    assert [(g.name, g.tier) for g in out] == [("a", Tier.P0), ("b", Tier.P1)]
    assert out[0].reasons[-1] == "observed in the traced run but not in the static answer"
