"""Golden outputs of `kconfig` and `scaffold` on the fixture reports, and what a fresh analysis gives.

`UK_DEPSCAN_UPDATE_GOLDEN=1 pytest tests/test_artifacts_golden.py` rewrites fixtures/golden/artifacts/.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import FIXTURES, compile_so, run_cli

GOLDEN = FIXTURES / "golden" / "artifacts"
CASES = {
    # case: (report, route, with scaffold)
    "x86_64": ("report-x86_64.json", "binary-compat", True),
    "aarch64": ("report-aarch64.json", "binary-compat", True),
    "x86_64-native": ("report-x86_64-native.json", "native", True),
}
UPDATE = os.environ.get("UK_DEPSCAN_UPDATE_GOLDEN") == "1"


def produce(case: str, out: Path) -> dict[str, str]:
    report, route, with_scaffold = CASES[case]
    src = str(FIXTURES / "artifacts" / report)
    code, _, err = run_cli(["kconfig", src, "--unikraft", "0.17.0", "--route", route, "-o", str(out / "kconfig")])
    assert code == 0, err
    if with_scaffold:
        code, _, err = run_cli(["scaffold", src, "--unikraft", "0.17.0", "--route", route, "-o", str(out / "scaffold")])
        assert code == 0, err
    return {str(p.relative_to(out)): p.read_text() for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_outputs(case: str, tmp_path: Path) -> None:
    produced = produce(case, tmp_path)
    expected_dir = GOLDEN / case
    if UPDATE:
        shutil.rmtree(expected_dir, ignore_errors=True)
        for rel, text in produced.items():
            (expected_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            (expected_dir / rel).write_text(text)
    expected = {str(p.relative_to(expected_dir)): p.read_text() for p in sorted(expected_dir.rglob("*")) if p.is_file()}
    assert sorted(produced) == sorted(expected)
    for rel in expected:
        assert produced[rel] == expected[rel], f"{case}/{rel} differs from the golden file"


def test_golden_scaffolds_cover_the_fixture_rows() -> None:
    """The cases the fixture was written for are in the goldens, for the reasons expected."""
    x86 = json.loads((GOLDEN / "x86_64" / "scaffold" / "scaffold.json").read_text())
    regs = {s["name"]: s for s in x86["syscalls"]}
    skipped = {s["name"]: s for s in x86["skipped"]}
    assert {n: s["action"] for n, s in regs.items()} == {
        "fadvise64": "implement",
        "process_vm_readv": "investigate",
        "sched_get_priority_max": "investigate",
    }
    assert regs["fadvise64"]["registration"] == "fadvise64-4" and regs["fadvise64"]["warning"] is None
    assert "uk_prsyscall.c" in skipped["futex"]["reason"] and "not in Unikraft 0.17.0" in skipped["uretprobe"]["reason"]
    assert "lib/posix-futex/futex.c" in skipped["futex"]["change"]
    assert "enabled by the Kconfig plan" in skipped["kill"]["reason"]  # lib/uksignal's stub is kept by the plan
    assert "base configuration" in skipped["sched_getaffinity"]["reason"]
    assert skipped["sched_getaffinity"]["change"].startswith("change sched_getaffinity in lib/uksched/sched.c")
    assert "arch_prctl" not in regs and "arch_prctl" not in skipped  # an option (unverified), not a registration
    fragment = (GOLDEN / "x86_64" / "kconfig" / "kconfig.fragment").read_text()
    assert "# UNVERIFIED: arch_prctl: app-elfloader 0.16.3" in fragment
    assert "CONFIG_APPELFLOADER_ARCH_PRCTL=y" in fragment
    native = json.loads((GOLDEN / "x86_64-native" / "scaffold" / "scaffold.json").read_text())
    arch_prctl = next(s for s in native["syscalls"] if s["name"] == "arch_prctl")
    assert (arch_prctl["registration"], arch_prctl["macro"]) == ("arch_prctl-2e", "UK_LLSYSCALL_R_E_DEFINE")
    arm = json.loads((GOLDEN / "aarch64" / "scaffold" / "scaffold.json").read_text())
    assert arm["arch"] == "arm64" and "arch_prctl" not in {s["name"] for s in arm["syscalls"]}
    kraft = (GOLDEN / "aarch64" / "kconfig" / "Kraftfile").read_text()
    assert "  - qemu/arm64\n" in kraft and "qemu/x86_64" not in kraft and "BOOT" not in kraft
    kraft_native = (GOLDEN / "x86_64-native" / "kconfig" / "Kraftfile").read_text()
    assert "libraries:\n  musl:\n" in kraft_native and "template:" not in kraft_native
    assert "rootfs:" not in kraft_native and "UNVERIFIED" not in kraft_native


def test_fresh_analysis_gives_the_same_report_and_scaffold(tmp_path: Path) -> None:
    """The library built now from syscalls.c and analysed now gives the saved report's gap rows and the same
    scaffold (the goldens are about the generators; this ties them to the analysis they are fed, and fails
    when the analysis or the priority model moves: then regenerate the reports, see fixtures/artifacts/)."""
    lib = compile_so(tmp_path / "libfixture.so", [FIXTURES / "artifacts" / "syscalls.c"])
    out = tmp_path / "s"
    code, _, err = run_cli(["scaffold", str(lib), "--unikraft", "0.17.0", "-o", str(out)])
    assert code == 0, err
    fresh = json.loads((out / "scaffold.json").read_text())
    saved = json.loads((GOLDEN / "x86_64" / "scaffold" / "scaffold.json").read_text())
    assert fresh["syscalls"] == saved["syscalls"] and fresh["skipped"] == saved["skipped"]
    code, out_json, err = run_cli(["scan", str(lib), "--unikraft", "0.17.0", "--route", "binary-compat", "-f", "json"])
    assert code in (0, 1), err
    report = json.loads((FIXTURES / "artifacts" / "report-x86_64.json").read_text())
    rows = lambda doc: {(g["name"], g["action"], g["status"]) for g in doc["targets"][0]["gaps"]}  # noqa: E731
    assert rows(json.loads(out_json)) == rows(report)
