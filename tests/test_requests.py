"""Request codes (ioctl/fcntl/prctl/setsockopt) recovered at call sites, exactly, on a fixture."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import FIXTURES, need

from uk_depscan.elf.file import open_elf
from uk_depscan.syscalls.requests import request_records
from uk_depscan.syscalls.scan import scan_library


def test_request_codes(tmp_path: Path) -> None:
    need("gcc")
    out = tmp_path / "librequests.so"
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-O1", "-o", str(out), str(FIXTURES / "requests" / "requests.c")],
        check=True,
        capture_output=True,
    )
    got = [
        [r.call, r.arg_index, r.name, r.sites]
        for r in request_records(scan_library(open_elf(out), no_cache=True).requests)
    ]
    # glibc headers may route fcntl to fcntl64; compare on the base name
    got = [[c.removesuffix("64"), a, n, s] for c, a, n, s in got]
    assert got == json.loads((FIXTURES / "requests" / "expect.json").read_text())["x86_64"]
