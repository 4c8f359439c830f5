"""Linux syscall name <-> number tables (syscall_tables/linux/*.json) and their parser."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest

from uk_depscan.errors import TableError
from uk_depscan.syscalls.linux import ARCHES, load_linux_table, load_table_file, validate_table_doc
from uk_depscan.tablegen.linux import dump_table, parse_header_text

REPO = Path(__file__).resolve().parent.parent
HOST_X86_HEADER = Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h")

X86_ANCHORS = {
    "read": 0,
    "write": 1,
    "open": 2,
    "stat": 4,
    "fstat": 5,
    "mmap": 9,
    "dup2": 33,
    "clone": 56,
    "fork": 57,
    "epoll_wait": 232,
    "openat": 257,
    "newfstatat": 262,
    "getrandom": 318,
    "rseq": 334,
    "io_uring_setup": 425,
    "clone3": 435,
    # newer than bookworm's 6.1 headers; numbers Unikraft's tables also use
    "cachestat": 451,
    "fchmodat2": 452,
    "map_shadow_stack": 453,
    "futex_wait": 455,
    "mseal": 462,
}
AARCH64_ANCHORS = {
    "openat": 56,
    "read": 63,
    "write": 64,
    "newfstatat": 79,
    "fstat": 80,
    "clone": 220,
    "mmap": 222,
    "getrandom": 278,
    "rseq": 293,
    "io_uring_setup": 425,
    "clone3": 435,
    # asm-generic __NR3264_* pairs under their 64-bit (strace / glibc SYS_) names
    "fcntl": 25,
    "statfs": 43,
    "fstatfs": 44,
    "truncate": 45,
    "ftruncate": 46,
    "lseek": 62,
    "sendfile": 71,
    "fadvise64": 223,
    "cachestat": 451,
    "fchmodat2": 452,
    "listmount": 458,
}
# Legacy syscalls asm-generic never had: a name from the x86 table must not leak into aarch64.
AARCH64_ABSENT = (
    "open",
    "stat",
    "lstat",
    "dup2",
    "epoll_wait",
    "fork",
    "vfork",
    "pipe",
    "poll",
    "access",
    "fstatat",
    "fcntl64",
    "mmap2",
    "_llseek",
    "statfs64",
    "arch_specific_syscall",
    "syscalls",
)


def shipped_path(arch: str) -> Path:
    return Path(str(resources.files("uk_depscan.syscall_tables") / "linux" / f"{arch}.json"))


@pytest.mark.parametrize("arch,anchors", [("x86_64", X86_ANCHORS), ("aarch64", AARCH64_ANCHORS)])
def test_anchors(arch: str, anchors: dict[str, int]) -> None:
    tab = load_linux_table(arch)
    assert tab.arch == arch
    for name, nr in anchors.items():
        assert tab.number_of(name) == nr, name
        assert tab.name_of(nr) == name, nr


def test_aarch64_lacks_legacy_syscalls() -> None:
    tab = load_linux_table("aarch64")
    for name in AARCH64_ABSENT:
        assert tab.number_of(name) is None, name
        assert name not in tab.names
    assert tab.name_of(244) is None  # __NR_arch_specific_syscall: a range marker, not a syscall


def test_loader_api_and_aliases() -> None:
    x86 = load_linux_table("x86_64")
    assert load_linux_table("x86-64") is x86 and load_linux_table("amd64") is x86  # lru_cached
    assert load_linux_table("arm64") is load_linux_table("aarch64")
    assert x86.names == tuple(sorted(x86.names)) and len(x86.names) == len(x86.by_number) > 300
    assert all(x86.by_number[nr] == name for name, nr in x86.by_name.items())
    assert x86.name_of(10_000) is None and x86.number_of("no_such_syscall") is None
    assert set(x86.source) >= {"package", "version", "deb_sha256", "header", "generator", "command"}
    with pytest.raises(TableError):
        load_linux_table("riscv64")


@pytest.mark.parametrize("arch", ARCHES)
def test_provenance(arch: str) -> None:
    src = load_linux_table(arch).source
    assert src["package"] == "linux-libc-dev"
    assert len(src["deb_sha256"]) == 64 and int(src["deb_sha256"], 16) >= 0
    assert src["generator"] == "scripts/gen_linux_syscalls.py" and (REPO / src["generator"]).is_file()
    assert src["command"].startswith("python scripts/gen_linux_syscalls.py")


@pytest.mark.parametrize("arch", ARCHES)
def test_shipped_files_are_byte_stable(arch: str) -> None:
    raw = shipped_path(arch).read_bytes()
    assert dump_table(json.loads(raw)).encode("utf-8") == raw


@pytest.mark.parametrize("arch", ARCHES)
def test_shipped_files_match_schema(arch: str) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((REPO / "syscall_tables" / "schema" / "linux-syscalls.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(json.loads(shipped_path(arch).read_text()), schema)


@pytest.mark.skipif(not HOST_X86_HEADER.exists(), reason=f"{HOST_X86_HEADER} not installed")
def test_x86_64_matches_host_header() -> None:
    """Every syscall of this machine's header has the same number in the shipped table.

    Linux never renumbers or removes a syscall, so older host headers (bookworm: 6.1, max 450)
    are a subset (6.11 even filled a gap: uretprobe = 335); host headers at least as new as the
    shipped ones must match exactly."""
    host = parse_header_text(HOST_X86_HEADER.read_text())
    shipped = load_linux_table("x86_64")
    assert {name: shipped.number_of(name) for name in host} == host
    if max(host.values()) >= max(shipped.by_number):
        assert dict(shipped.by_name) == host


GENERIC_SNIPPET = """\
/* asm-generic style, already through cpp -dM (order is arbitrary there) */
#define __NR_newfstatat __NR3264_fstatat
#define __NR3264_fstatat 79
#define __NR_fstat __NR3264_fstat   /* alias */
#define __NR3264_fstat 80
#define __NR_openat 56
#define __NR_SYSCALL_BASE 0x10
#define __NR_based (__NR_SYSCALL_BASE + 5)
#define __NR_shifted ((1 << 3) | 2UL)
#define __NR_arch_specific_syscall 244
#define __NR_syscalls 451
#define __SYSCALL(x, y)
#define __NR_io_uring_setup \\
        425
"""


def test_parser_on_literal_header() -> None:
    assert parse_header_text(GENERIC_SNIPPET) == {
        "newfstatat": 79,
        "fstat": 80,
        "openat": 56,
        "based": 21,
        "shifted": 10,
        "io_uring_setup": 425,
    }


def test_parser_on_plain_unistd_64_text() -> None:
    text = "#ifndef _ASM_UNISTD_64_H\n#define _ASM_UNISTD_64_H\n#define __NR_read 0\n#define __NR_write 1\n#endif\n"
    assert parse_header_text(text) == {"read": 0, "write": 1}


@pytest.mark.parametrize(
    "text",
    [
        "#define __NR_a __NR_undefined\n",
        "#define __NR_a 1\n#define __NR_b 1\n",  # duplicate number
        "#define __NR_a (foo(1))\n",  # not an integer expression
        "#define __NR_a __NR_b\n#define __NR_b __NR_a\n",  # cycle
    ],
)
def test_parser_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_header_text(text)


def _valid_doc() -> dict:
    return {
        "schema_version": 1,
        "arch": "x86_64",
        "source": {
            "package": "linux-libc-dev",
            "version": "1",
            "deb_sha256": "0" * 64,
            "header": "h",
            "generator": "g",
            "command": "c",
        },
        "syscalls": {"read": 0, "write": 1},
    }


def _broken(change) -> dict:
    doc = _valid_doc()
    change(doc)
    return doc


@pytest.mark.parametrize(
    "doc,problem",
    [
        (_broken(lambda d: d.update(schema_version=2)), "schema_version"),
        (_broken(lambda d: d.update(arch="mips")), "arch"),
        (_broken(lambda d: d["source"].pop("deb_sha256")), "deb_sha256"),
        (_broken(lambda d: d["syscalls"].update({"not-an-ident": 5})), "identifier"),
        (_broken(lambda d: d["syscalls"].update(dup=1)), "used by both"),
        (_broken(lambda d: d["syscalls"].update(neg=-1)), "non-negative"),
        (_broken(lambda d: d["syscalls"].update(text="3")), "non-negative"),
        (_broken(lambda d: d["syscalls"].update(flag=True)), "non-negative"),
        (_broken(lambda d: d.update(syscalls={})), "syscalls"),
    ],
)
def test_malformed_table_raises_with_file_name(tmp_path: Path, doc: dict, problem: str) -> None:
    path = tmp_path / "bad-x86_64.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(TableError) as exc:
        load_table_file(path)
    assert str(exc.value).startswith(f"{path}: ") and problem in str(exc.value)


def test_unparsable_or_missing_file_raises_with_file_name(tmp_path: Path) -> None:
    bad = tmp_path / "broken.json"
    bad.write_text("{not json")
    for path in (bad, tmp_path / "missing.json"):
        with pytest.raises(TableError, match=path.name):
            load_table_file(path)


def test_valid_doc_round_trips(tmp_path: Path) -> None:
    doc = _valid_doc()
    validate_table_doc(doc, "x")
    path = tmp_path / "ok.json"
    path.write_text(dump_table(doc))
    tab = load_table_file(path)
    assert tab.number_of("write") == 1 and tab.name_of(0) == "read" and tab.names == ("read", "write")
