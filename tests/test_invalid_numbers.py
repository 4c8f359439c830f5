"""A recovered number that is no syscall of the target architecture is a finding, never a gap (issue 14
item 5): x86-64 and aarch64."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import FIXTURES, need, run_cli

from uk_depscan.report.validate import first_problem

CC = {"x86_64": "gcc", "aarch64": "aarch64-linux-gnu-gcc"}


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_invalid_numbers_are_findings_not_gaps(arch: str, tmp_path: Path) -> None:
    need(CC[arch])
    lib = tmp_path / "libinvalid.so"
    src = FIXTURES / "invalid" / "invalid.c"
    subprocess.run([CC[arch], "-shared", "-nostdlib", "-fPIC", "-O1", "-o", str(lib), str(src)], check=True)
    code, out, err = run_cli(["scan", str(lib), "--format", "json", "--fail-on", "never"])
    assert code == 0, err
    doc = json.loads(out)
    assert first_problem(doc) is None
    s = doc["targets"][0]["syscalls"]
    got = [(i["number"], i["function"], i["library"], i["chain"][-1]["kind"]) for i in s["invalid_numbers"]]
    assert got == [(-1, "minus_one", "libinvalid.so", "direct"), (5000, "too_big", "libinvalid.so", "direct")]
    assert all(
        i["message"].startswith(f"invalid syscall number {i['number']} at site libinvalid.so:")
        for i in s["invalid_numbers"]
    )
    assert all(i["message"].endswith("(Linux returns ENOSYS)") for i in s["invalid_numbers"])
    assert "getppid" in {f["name"] for f in s["reached"]}
    numbers = {f["number"] for f in s["reached"] + s["baseline"]}
    assert not numbers & {5000, (1 << 64) - 1}
    gap_names = {g["name"] for g in doc["targets"][0]["gaps"]}
    assert "getppid" in gap_names and not any(n.startswith(("syscall_", "invalid")) for n in gap_names)
    # the text report says it once, the saved JSON reads back with it
    _, text, _ = run_cli(["scan", str(lib), "--fail-on", "never"])
    assert text.count("invalid syscall number -1 at site libinvalid.so:minus_one @ 0x") == 1
    assert "invalid syscall number 5000 at site libinvalid.so:too_big" in text
    from uk_depscan.report.json_report import report_from_dict

    back = report_from_dict(doc).targets[0].syscalls
    assert back is not None and [(i.number, i.function) for i in back.invalid] == [(-1, "minus_one"), (5000, "too_big")]
