"""Request codes (ioctl/fcntl/prctl/setsockopt) recovered at call sites, exactly, on a fixture."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import FIXTURES, need

from uk_depscan.elf.file import open_elf
from uk_depscan.syscalls.requests import decode_ioc, label, load_request_table, request_records
from uk_depscan.syscalls.scan import scan_library
from uk_depscan.tablegen.requests import defines_by_file, ioctl_candidates, parse_array_values, prctl_options


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
    # glibc headers may route fcntl to fcntl64: the records fold it into fcntl (64-bit)
    assert got == json.loads((FIXTURES / "requests" / "expect.json").read_text())["x86_64"]


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_shipped_tables_name_the_known_codes(arch: str) -> None:
    table = load_request_table(arch)
    assert table.source["package"] == "linux-libc-dev" and len(table.source["deb_sha256"]) == 64
    assert label(table, "ioctl", 0x2400) == "PERF_EVENT_IOC_ENABLE"
    assert label(table, "ioctl", 0x40049409) == "BTRFS_IOC_CLONE|FICLONE"  # one number, two headers
    assert label(table, "ioctl", 0x80045430) == "TIOCGPTN"
    assert label(table, "prctl", 3) == "PR_GET_DUMPABLE"
    assert label(table, "fcntl", 0x406) == "F_DUPFD_CLOEXEC"
    assert table.levels[1] == "SOL_SOCKET" and table.sockopt["SOL_SOCKET"][2] == ("SO_REUSEADDR",)
    # lock types share numbers with commands (F_RDLCK = F_DUPFD = 0) and are not commands
    assert table.fcntl[0] == ("F_DUPFD",)


def test_ioc_fields_of_an_unnamed_number() -> None:
    assert decode_ioc(0x80047899) == "_IOC(_IOC_READ,'x',0x99,4)"
    assert decode_ioc(0xC0106400 | 0x12) == "_IOC(_IOC_READ|_IOC_WRITE,'d',0x12,16)"
    assert decode_ioc(0x40000000 | (0x5C << 8)) == "_IOC(_IOC_WRITE,0x5c,0x0,0)"  # a backslash stays a number


def test_generator_parsing_on_literal_text() -> None:
    dump = (
        '# 1 "/inc/x86_64-linux-gnu/asm/ioctls.h" 1\n#define TCGETS 0x5401\n#define TIOCPKT_DATA 0\n'
        '# 1 "/inc/drm/drm.h" 1\n#define DRM_IOWR(nr,type) _IOWR(DRM_IOCTL_BASE,nr,type)\n'
        "#define DRM_IOCTL_VERSION DRM_IOWR(0x00, struct drm_version)\n#define DRM_IOCTL_ALIAS DRM_IOCTL_VERSION\n"
        "#define DRM_NAME_LEN 32\n"
    )
    macros = defines_by_file(dump, "/inc")
    assert macros["TCGETS"] == ("asm/ioctls.h", "0x5401") and "DRM_IOWR(" in macros
    found = ioctl_candidates(macros, {"TCGETS": 0x5401, "TIOCPKT_DATA": 0})
    assert found == {"TCGETS", "DRM_IOCTL_VERSION", "DRM_IOCTL_ALIAS"}
    assert prctl_options("#define PR_GET_X 3\n# define PR_X_ARG 1\n#define PR_SET_X 4 /* c */\n") == [
        "PR_GET_X",
        "PR_SET_X",
    ]
    asm = 'uk_values:\n\t.quad\t21505\n\t.zero\t16\n\t.xword\t-1\n\t.ident\t"GCC"\n'
    assert parse_array_values(asm, "uk_values") == [21505, 0, 0, 2**64 - 1]
