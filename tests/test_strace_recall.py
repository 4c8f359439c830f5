"""Static answer vs strace on ground-truth programs (issue 4): recall 100 %, baseline covers start-up."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import FIXTURES, have, install_hint, strace_syscalls

from uk_depscan.loader.binding import bind_symbols
from uk_depscan.loader.resolve import resolve_tree
from uk_depscan.syscalls.linux import load_linux_table
from uk_depscan.syscalls.reach import analyze_syscalls

pytestmark = pytest.mark.strace
SPEC = json.loads((FIXTURES / "programs" / "programs.json").read_text())["programs"]
# execve is the tracer starting the program, not something the program's code does.
NOT_FROM_PROGRAM = {"execve"}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("programs")
    made = {}
    for name, spec in SPEC.items():
        if not have(spec["cc"]):
            continue
        exe = out / name
        subprocess.run(
            [spec["cc"], "-O1", "-o", str(exe), str(FIXTURES / "programs" / spec["src"]), *spec["flags"]],
            check=True,
            capture_output=True,
        )
        made[name] = exe
    return made


@pytest.fixture(scope="module")
def baseline_trace(built: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    if "empty" not in built:
        pytest.skip(f"gcc not found: {install_hint('gcc')}")
    return strace_syscalls([str(built["empty"])], tmp_path_factory.mktemp("trace-empty")) - NOT_FROM_PROGRAM


def static_sets(exe: Path, model: str) -> tuple[set[str], set[str], set[str]]:
    """(normal-path syscalls, start-up baseline, failure-path-only syscalls)."""
    result = resolve_tree(exe)
    analysis = analyze_syscalls(result, bind_symbols(result), libc_model=model)
    table = load_linux_table(result.files[0].machine_name)
    normal = {table.name_of(n) for n, r in analysis.reached.items() if not r.failure_only}
    failure = {table.name_of(n) for n, r in analysis.reached.items() if r.failure_only}
    return normal, {table.name_of(n) for n in analysis.baseline}, failure


@pytest.mark.parametrize("name", sorted(SPEC))
@pytest.mark.parametrize("model", ["auto", "glibc"])
def test_static_contains_every_traced_syscall(
    name: str, model: str, built: dict[str, Path], baseline_trace: set[str], tmp_path: Path, record_property
) -> None:  # type: ignore[no-untyped-def]
    if name not in built:
        pytest.skip(f"{SPEC[name]['cc']} not found: {install_hint(SPEC[name]['cc'])}")
    traced = strace_syscalls([str(built[name])], tmp_path) - NOT_FROM_PROGRAM
    for anchor in SPEC[name].get("must_trace", []):
        assert anchor in traced, f"the trace itself lacks {anchor}: fixture broken"
    for group in SPEC[name].get("must_trace_any", []):
        assert traced & set(group), group
    static, baseline, failure = static_sets(built[name], model)
    assert baseline_trace <= baseline, f"baseline misses {sorted(baseline_trace - baseline)}"
    missed = traced - baseline - static  # the traced runs succeed: their syscalls must be on normal paths
    assert not missed, f"static analysis misses traced syscalls {sorted(missed)}"
    answer = static | baseline
    record_property(
        "sizes",
        f"{name}/{model}: normal {len(static)} + baseline {len(baseline)} = {len(answer)} "
        f"(+{len(failure - answer)} failure-only), traced {len(traced)}, "
        f"ratio {len(answer) / len(traced):.2f}",
    )
    assert len(answer) <= 3 * len(traced), (len(answer), len(traced))
