"""The Linux syscall argument table: shipped file, its invariants, and the generator's decisions."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import jsonschema
import pytest
from conftest import REPO

from uk_depscan.artifacts.argtable import load_arg_table, validate_arg_doc
from uk_depscan.errors import TableError
from uk_depscan.tablegen import linux_args
from uk_depscan.tablegen.cppcond import Branch, condition_stacks, evaluate, stack_value
from uk_depscan.unikraft.tables import load_unikraft_table

SHIPPED = REPO / "syscall_tables" / "linux_args" / "linux-6.12.json"
SCHEMA = json.loads((REPO / "syscall_tables" / "schema" / "linux-syscall-args.schema.json").read_text())


def test_shipped_table_validates_and_reserialises_byte_identically() -> None:
    text = SHIPPED.read_text()
    doc = json.loads(text)
    jsonschema.validate(doc, SCHEMA)
    validate_arg_doc(doc, "shipped")
    assert linux_args.dump(doc) == text
    assert doc["source"]["package"] == "linux-source-6.12" and doc["kernel"] == "6.12.107"


def test_numbers_agree_with_the_shipped_linux_number_tables() -> None:
    """Same Debian kernel version as syscall_tables/linux (linux-libc-dev 6.12.107-1)."""
    table = load_arg_table()
    for arch in ("x86_64", "aarch64"):
        numbers = json.loads((REPO / "syscall_tables" / "linux" / f"{arch}.json").read_text())["syscalls"]
        rows = table.arches[arch]
        assert {n: r.nr for n, r in rows.items()} == numbers, arch


@pytest.mark.parametrize(("arch", "key"), [("x86_64", "x86_64_nr"), ("aarch64", "arm64_nr")])
def test_unikraft_names_equal_linux_names_by_number(arch: str, key: str) -> None:
    """Every number Unikraft 0.17.0 knows has the same name in the kernel's table (the README claim)."""
    table, uk = load_arg_table(), load_unikraft_table("0.17.0")
    checked = 0
    for name, row in uk.syscalls.items():
        nr = getattr(row, key)
        if nr is None:
            continue
        linux = table.by_number(arch, nr)
        assert linux is not None and linux.name == name, (arch, nr, name)
        checked += 1
    assert checked == {"x86_64_nr": 369, "arm64_nr": 312}[key]


def test_clone_argument_order_differs_by_arch() -> None:
    """kernel/fork.c: CONFIG_CLONE_BACKWARDS (arm64) puts tls before child_tidptr."""
    t = load_arg_table()
    x86, arm = t.get("x86_64", "clone"), t.get("arm64", "clone")
    assert x86 and arm
    assert [a.name for a in x86.args or ()] == ["clone_flags", "newsp", "parent_tidptr", "child_tidptr", "tls"]
    assert [a.name for a in arm.args or ()] == ["clone_flags", "newsp", "parent_tidptr", "tls", "child_tidptr"]
    assert x86.defined_at == "kernel/fork.c:2960" and arm.defined_at == "kernel/fork.c:2944"


def test_arch_specific_definitions_and_missing_ones() -> None:
    t = load_arg_table()
    mmap = t.get("arm64", "mmap")
    assert mmap and mmap.nargs == 6 and mmap.defined_at and mmap.defined_at.startswith("arch/arm64/")
    uname = t.get("x86_64", "uname")
    assert uname and uname.entry == "sys_newuname" and uname.man_page == "uname(2)"
    assert t.get("x86_64", "_sysctl").nargs is None  # type: ignore[union-attr]  # sys_ni_syscall
    shadow = t.get("arm64", "map_shadow_stack")
    assert shadow and shadow.nargs is None and "COND_SYSCALL" in (shadow.note or "")
    assert t.get("x86_64", "newfstatat").man_page == "stat(2)"  # type: ignore[union-attr]


def test_validation_rejects_inconsistent_rows() -> None:
    doc = json.loads(SHIPPED.read_text())
    doc["arches"]["x86_64"]["syscalls"]["read"]["nargs"] = 2
    with pytest.raises(TableError, match=r"read.*nargs items"):
        validate_arg_doc(doc, "t")
    doc = json.loads(SHIPPED.read_text())
    doc["arches"]["x86_64"]["syscalls"]["write"]["nr"] = 0
    with pytest.raises(TableError, match=r"write.*duplicated"):
        validate_arg_doc(doc, "t")


# ----------------------------------------------------------------------------- generator units


def test_normalise_type() -> None:
    assert linux_args.normalise_type("const char __user *const __user *") == "const char *const *"
    assert linux_args.normalise_type("struct iocb __user * __user *") == "struct iocb **"
    assert linux_args.normalise_type("unsigned   long") == "unsigned long"


def test_cpp_conditions_and_three_valued_evaluation() -> None:
    text = (
        "#ifndef _G\n#define _G\n#ifdef CONFIG_A\nx\n#elif defined(CONFIG_B) && !CONFIG_C\ny\n"
        "#else\nz\n#endif\n#endif\n"
    )
    stacks = condition_stacks(text)
    assert stacks[3] == (Branch("defined(CONFIG_A)"),)  # include guard dropped
    assert stacks[5] == (Branch("defined(CONFIG_B) && !CONFIG_C", ("defined(CONFIG_A)",)),)
    assert stacks[7] == (Branch("1", ("defined(CONFIG_A)", "defined(CONFIG_B) && !CONFIG_C")),)
    cfg = {"CONFIG_A": False, "CONFIG_B": True}.get
    assert stack_value(stacks[3], cfg) is False
    assert stack_value(stacks[5], cfg) is None  # CONFIG_C unknown: undecided, never guessed
    assert evaluate("CONFIG_A || CONFIG_B", cfg) is True
    assert evaluate("CONFIG_B == 1", cfg) is None


KERNEL_FILES = {
    "Makefile": "VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 107\n",
    "arch/x86/entry/syscalls/syscall_64.tbl": "0\tcommon\tread\tsys_read\n56\tcommon\tclone\tsys_clone\n"
    "63\tcommon\tuname\tsys_newuname\n156\t64\t_sysctl\tsys_ni_syscall\n512\tx32\trt_sigaction\tcompat_sys_rt_sigaction\n",
    "arch/arm64/tools/syscall_64.tbl": "63\tcommon\tread\tsys_read\n220\tcommon\tclone\tsys_clone\n"
    "453\tcommon\tmap_shadow_stack\tsys_map_shadow_stack\n",
    "arch/arm64/kernel/Makefile.syscalls": "syscall_abis_64 += renameat rlimit memfd_secret\n",
    "arch/x86/include/asm/unistd.h": "#ifdef CONFIG_X86_32\n# define __ARCH_WANT_SYS_IPC\n#else\n"
    "# define __ARCH_WANT_SYS_TIME\n#endif\n#define __ARCH_WANT_SYS_CLONE\n",
    "arch/arm64/include/asm/unistd.h": "#define __ARCH_WANT_SYS_CLONE\n",
    "fs/read_write.c": "/* SYSCALL_DEFINE3(read, in a comment) */\n"
    "SYSCALL_DEFINE3(read, unsigned int, fd, char __user *, buf,\n\t\tsize_t, count)\n{\n}\n",
    "kernel/sys.c": "SYSCALL_DEFINE1(newuname, struct new_utsname __user *, name)\n{\n}\n",
    "kernel/fork.c": "#ifdef __ARCH_WANT_SYS_CLONE\n#ifdef CONFIG_CLONE_BACKWARDS\n"
    "SYSCALL_DEFINE5(clone, unsigned long, f, unsigned long, sp,\n"
    "\t\tint __user *, p, unsigned long, tls, int __user *, c)\n"
    "#else\n"
    "SYSCALL_DEFINE5(clone, unsigned long, f, unsigned long, sp,\n"
    "\t\tint __user *, p, int __user *, c, unsigned long, tls)\n"
    "#endif\n{\n}\n#endif\n",
    "arch/x86/kernel/shstk.c": "SYSCALL_DEFINE3(map_shadow_stack, unsigned long, addr,\n"
    "\t\tunsigned long, size, unsigned int, flags)\n",
    "arch/x86/um/syscalls_64.c": "SYSCALL_DEFINE2(newuname, int, a, int, b)\n",
    "tools/x.c": "SYSCALL_DEFINE0(read)\n",
}


@pytest.fixture
def mini_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for rel, text in KERNEL_FILES.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    configs = {"x86_64": {"CONFIG_X86_64": "y"}, "arm64": {"CONFIG_CLONE_BACKWARDS": "y"}}
    monkeypatch.setattr(linux_args, "kernel_config", lambda root, spec, work: configs[spec.kernel_arch])
    return tmp_path


def test_generator_decisions_on_a_miniature_tree(mini_kernel: Path, tmp_path: Path) -> None:
    found = linux_args.scan_tree(mini_kernel)
    x86 = linux_args.build_arch(mini_kernel, linux_args.ARCHES[0], tmp_path, found)
    arm = linux_args.build_arch(mini_kernel, linux_args.ARCHES[1], tmp_path, found)
    sx, sa = x86["syscalls"], arm["syscalls"]
    assert set(sx) == {"read", "clone", "uname", "_sysctl"}  # the x32 row is another ABI
    assert sx["read"]["args"] == [
        {"type": "unsigned int", "name": "fd"},
        {"type": "char *", "name": "buf"},
        {"type": "size_t", "name": "count"},
    ]
    assert [a["name"] for a in sx["clone"]["args"]] == ["f", "sp", "p", "c", "tls"]
    assert [a["name"] for a in sa["clone"]["args"]] == ["f", "sp", "p", "tls", "c"]
    assert sx["clone"]["excluded"] and sa["clone"]["excluded"]
    assert sx["uname"]["defined_at"] == "kernel/sys.c:1" and "variants" not in sx["uname"]  # arch/x86/um ignored
    assert sx["_sysctl"]["nargs"] is None and sa["map_shadow_stack"]["nargs"] is None  # x86-only definition
    assert x86["macros_used"]["__ARCH_WANT_SYS_CLONE"] is True and arm["abis"][-1] == "memfd_secret"


def test_generator_stops_on_an_undecidable_difference(mini_kernel: Path, tmp_path: Path) -> None:
    (mini_kernel / "kernel" / "fork.c").write_text(
        "#ifdef __SOME_ARCH_MACRO\nSYSCALL_DEFINE1(clone, int, a)\n#else\nSYSCALL_DEFINE1(clone, long, a)\n#endif\n"
    )
    with pytest.raises(linux_args.GenerationError, match="different signatures"):
        linux_args.build_arch(mini_kernel, linux_args.ARCHES[0], tmp_path, linux_args.scan_tree(mini_kernel))


def test_man_page_links_are_followed(tmp_path: Path) -> None:
    man2 = tmp_path / "usr" / "share" / "man" / "man2"
    man3 = tmp_path / "usr" / "share" / "man" / "man3"
    man2.mkdir(parents=True)
    man3.mkdir(parents=True)
    (man2 / "stat.2.gz").write_bytes(gzip.compress(b".TH STAT 2\n"))
    (man2 / "fstatat.2.gz").write_bytes(gzip.compress(b".so man2/stat.2\n"))
    os.symlink("fstatat.2.gz", man2 / "newfstatat.2.gz")
    (man3 / "getcwd.3.gz").write_bytes(gzip.compress(b".TH GETCWD 3\n"))
    os.symlink("../man3/getcwd.3.gz", man2 / "getcwd.2.gz")
    pages = {e.name.split(".")[0]: linux_args._page_of(e, man2) for e in man2.iterdir()}
    assert pages == {"stat": "stat(2)", "fstatat": "stat(2)", "newfstatat": "stat(2)", "getcwd": "getcwd(3)"}


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("UK_DEPSCAN_LINUX_DEB"),
    reason="UK_DEPSCAN_LINUX_DEB unset: set it to a linux-source .deb (apt-get download linux-source-6.12)",
)
def test_regenerating_reproduces_the_shipped_table(tmp_path: Path) -> None:
    """Slow (~30 s): the generator on the package named in the table gives the same bytes."""
    deb = Path(os.environ["UK_DEPSCAN_LINUX_DEB"])
    src = os.environ.get("UK_DEPSCAN_LINUX_SRC")
    man = os.environ.get("UK_DEPSCAN_MANPAGES_DEB")
    doc = linux_args.generate(deb, Path(src) if src else None, tmp_path, Path(man) if man else None)
    if man is None:
        pytest.skip("UK_DEPSCAN_MANPAGES_DEB unset: set it to a manpages-dev .deb (apt-get download manpages-dev)")
    assert linux_args.dump(doc) == SHIPPED.read_text()
