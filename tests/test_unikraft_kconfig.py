"""Kconfig closures and option renames on small synthetic Unikraft trees written by the tests.

Two releases of a toy tree: v1 has ``LIBPOSIX_PROCESS_PIDS``/``_CLONE`` (as Unikraft <= 0.17), v2
merges them into ``LIBPOSIX_PROCESS_MULTITHREADING`` (as newer releases do).  The generator must
derive the rename from the two tables, and the resolver must apply it from the table alone.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from uk_depscan.tablegen import unikraft as gen
from uk_depscan.tablegen.kconfig import make_condition_expr, pp_condition_expr, provider_requirement
from uk_depscan.unikraft import tables as uk
from uk_depscan.unikraft.options import options_for_syscalls, resolve_options

NUMBERS = {"mmap": 9, "mremap": 25, "getpid": 39, "clone": 56, "futex": 202, "set_tid_address": 218}

COMMON = {
    "version.mk": "UK_VERSION = 0\nUK_SUBVERSION = 99\nUK_EXTRAVERSION = 0\n",
    "lib/syscall_shim/include/uk/syscall.h": "#define UK_LLSYSCALL_R_E_DEFINE(rtype, name, ...) x\n",
    "lib/syscall_shim/arch/x86_64/syscall.h.in": "".join(f"#define __NR_{n} {v}\n" for n, v in NUMBERS.items()),
    "Config.uk": """\
        mainmenu "toy Unikraft"
        choice
        \tprompt "Architecture"
        config ARCH_X86_64
        \tbool "x86_64"
        config ARCH_ARM_64
        \tbool "arm64"
        endchoice
        source "lib/ukvmem/Config.uk"
        source "lib/posix-mmap/Config.uk"
        source "lib/ukmmap/Config.uk"
        source "lib/posix-process/Config.uk"
        source "lib/posix-futex/Config.uk"
        """,
    "lib/ukvmem/Config.uk": """\
        config LIBUKVMEM
        \tbool "ukvmem"
        \tselect PAGING
        config PAGING
        \tbool
        """,
    "lib/ukvmem/Makefile.uk": "$(eval $(call addlib_s,libukvmem,$(CONFIG_LIBUKVMEM)))\n",
    "lib/posix-mmap/Config.uk": """\
        config LIBPOSIX_MMAP
        \tbool "posix-mmap"
        \tdepends on LIBUKVMEM
        """,
    "lib/posix-mmap/Makefile.uk": """\
        $(eval $(call addlib_s,libposix_mmap,$(CONFIG_LIBPOSIX_MMAP)))
        LIBPOSIX_MMAP_SRCS-y += $(LIBPOSIX_MMAP_BASE)/mmap.c
        UK_PROVIDED_SYSCALLS-$(CONFIG_LIBPOSIX_MMAP) += mmap-6
        """,
    "lib/posix-mmap/mmap.c": """\
        UK_SYSCALL_R_DEFINE(void *, mmap, void *, addr, size_t, len, int, prot, int, flags, int, fd, long, off)
        {
        \treturn vma_map(addr, len, prot, flags, fd, off);
        }
        """,
    "lib/ukmmap/Config.uk": """\
        config LIBUKMMAP
        \tbool "ukmmap"
        \tdepends on !LIBPOSIX_MMAP
        """,
    "lib/ukmmap/Makefile.uk": """\
        $(eval $(call addlib_s,libukmmap,$(CONFIG_LIBUKMMAP)))
        LIBUKMMAP_SRCS-y += $(LIBUKMMAP_BASE)/mmap.c
        UK_PROVIDED_SYSCALLS-$(CONFIG_LIBUKMMAP) += mmap-6 mremap-5
        """,
    "lib/ukmmap/mmap.c": """\
        UK_SYSCALL_R_DEFINE(void *, mmap, void *, addr, size_t, len, int, prot, int, flags, int, fd, long, off)
        {
        \treturn uk_malloc(uk_alloc_get_default(), len);
        }
        UK_SYSCALL_R_DEFINE(void *, mremap, void *, old, size_t, olen, size_t, nlen, int, flags, void *, na)
        {
        \treturn 0;
        }
        """,
}

V1 = {
    **COMMON,
    "lib/posix-process/Config.uk": """\
        menuconfig LIBPOSIX_PROCESS
        \tbool "posix-process"
        if LIBPOSIX_PROCESS
        config LIBPOSIX_PROCESS_PIDS
        \tbool "process IDs"
        config LIBPOSIX_PROCESS_CLONE
        \tbool "clone"
        \tselect LIBPOSIX_PROCESS_PIDS
        endif
        """,
    "lib/posix-process/Makefile.uk": """\
        $(eval $(call addlib_s,libposix_process,$(CONFIG_LIBPOSIX_PROCESS)))
        LIBPOSIX_PROCESS_SRCS-y += $(LIBPOSIX_PROCESS_BASE)/process.c
        UK_PROVIDED_SYSCALLS-$(CONFIG_LIBPOSIX_PROCESS_PIDS) += getpid-0
        UK_PROVIDED_SYSCALLS-$(CONFIG_LIBPOSIX_PROCESS_CLONE) += clone-5e
        """,
    "lib/posix-process/process.c": """\
        UK_SYSCALL_R_DEFINE(int, getpid)
        {
        \treturn uk_pid_of(uk_thread_current());
        }
        UK_LLSYSCALL_R_E_DEFINE(int, clone, unsigned long, flags, void *, sp, int *, ptid, int *, ctid, long, tls)
        {
        \treturn do_clone(flags, sp, ptid, ctid, tls);
        }
        """,
    "lib/posix-futex/Config.uk": """\
        config LIBPOSIX_FUTEX
        \tbool "futex"
        """,
    "lib/posix-futex/Makefile.uk": """\
        $(eval $(call addlib_s,libposix_futex,$(CONFIG_LIBPOSIX_FUTEX)))
        LIBPOSIX_FUTEX_SRCS-y += $(LIBPOSIX_FUTEX_BASE)/futex.c
        UK_PROVIDED_SYSCALLS-$(CONFIG_LIBPOSIX_FUTEX) += futex-3
        ifeq ($(CONFIG_LIBPOSIX_PROCESS_CLONE),y)
        UK_PROVIDED_SYSCALLS-$(CONFIG_LIBPOSIX_FUTEX) += set_tid_address-1
        endif
        """,
    "lib/posix-futex/futex.c": """\
        UK_SYSCALL_R_DEFINE(int, futex, int *, uaddr, int, op, int, val)
        {
        \treturn futex_op(uaddr, op, val);
        }
        #if CONFIG_LIBPOSIX_PROCESS_CLONE
        UK_LLSYSCALL_R_DEFINE(int, set_tid_address, int *, tid)
        {
        \treturn store_tid(tid);
        }
        #endif
        """,
}

# v2: PIDS and CLONE merged into MULTITHREADING (what newer Unikraft releases do)
V2 = {
    **V1,
    "lib/posix-process/Config.uk": """\
        menuconfig LIBPOSIX_PROCESS
        \tbool "posix-process"
        if LIBPOSIX_PROCESS
        config LIBPOSIX_PROCESS_MULTITHREADING
        \tbool "process IDs and clone"
        endif
        """,
    "lib/posix-process/Makefile.uk": V1["lib/posix-process/Makefile.uk"]
    .replace("PROCESS_PIDS)", "PROCESS_MULTITHREADING)")
    .replace("PROCESS_CLONE)", "PROCESS_MULTITHREADING)"),
    "lib/posix-futex/Makefile.uk": V1["lib/posix-futex/Makefile.uk"].replace(
        "PROCESS_CLONE)", "PROCESS_MULTITHREADING)"
    ),
    "lib/posix-futex/futex.c": V1["lib/posix-futex/futex.c"].replace("PROCESS_CLONE", "PROCESS_MULTITHREADING"),
}


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))
    return root


def table_file(tmp: Path, name: str, doc: dict) -> uk.UnikraftTable:  # type: ignore[type-arg]
    path = tmp / f"{name}.json"
    path.write_text(gen.dump_json(doc))
    return uk.load_unikraft_table(path=path)


@pytest.fixture(scope="module")
def v1_doc(tmp_path_factory: pytest.TempPathFactory) -> dict:  # type: ignore[type-arg]
    pytest.importorskip("kconfiglib", reason="kconfiglib not installed: pip install -e '.[tablegen]'")
    root = write_tree(tmp_path_factory.mktemp("v1"), V1)
    return gen.build_table(gen.SourceTree.open(root), release="0.99.0", kconfig=True)


# ----------------------------------------------------------------- requirement text


def test_condition_translation() -> None:
    assert make_condition_expr("ifeq ($(CONFIG_X),y)") == "X"
    assert make_condition_expr("!ifeq ($(CONFIG_X),y)") == "!X"
    assert make_condition_expr("ifneq ($(CONFIG_X),y)") == "!X"
    assert make_condition_expr("ifeq (x86_64,$(CONFIG_UK_ARCH))") is None
    assert pp_condition_expr("CONFIG_A && !defined(CONFIG_B)") == "A && !B"
    assert pp_condition_expr("!(CONFIG_A)") == "!(A)"
    assert pp_condition_expr("__GNUC__ > 4") is None
    req, other = provider_requirement(
        {
            "kconfig": "CONFIG_LIBPOSIX_FUTEX",
            "make_conditions": ["ifeq ($(CONFIG_LIBPOSIX_PROCESS_CLONE),y)"],
            "pp_conditions": ["CONFIG_LIBPOSIX_PROCESS_CLONE", "__x86_64__"],
            "compiled_if": "y",
        }
    )
    assert req == "LIBPOSIX_FUTEX && LIBPOSIX_PROCESS_CLONE" and other == ["#if __x86_64__"]


# ----------------------------------------------------------------- closures with kconfiglib


def test_closures_of_the_toy_tree(v1_doc: dict) -> None:  # type: ignore[type-arg]
    k = v1_doc["kconfig"]
    assert k["evaluated"] and k["evaluator"] == {"name": "kconfiglib", "version": "14.1.0"}
    clone = k["options"]["CONFIG_LIBPOSIX_PROCESS_CLONE"]
    assert clone["depends_on"] == "LIBPOSIX_PROCESS" and clone["selects"] == [
        {"option": "CONFIG_LIBPOSIX_PROCESS_PIDS", "if": "LIBPOSIX_PROCESS"}
    ]
    c = clone["closure"]["native"]
    assert (c["y"], c["n"], c["verified"]) == (["CONFIG_LIBPOSIX_PROCESS_CLONE", "CONFIG_LIBPOSIX_PROCESS"], [], True)
    assert c["drags_in"] == {"CONFIG_LIBPOSIX_PROCESS_PIDS": "select by CONFIG_LIBPOSIX_PROCESS_CLONE"}
    mmap = k["options"]["CONFIG_LIBPOSIX_MMAP"]["closure"]["native"]
    assert mmap["y"] == ["CONFIG_LIBPOSIX_MMAP", "CONFIG_LIBUKVMEM"] and mmap["verified"]
    assert mmap["drags_in"] == {"CONFIG_PAGING": "select by CONFIG_LIBUKVMEM"}
    ukmmap = k["options"]["CONFIG_LIBUKMMAP"]
    assert ukmmap["conflicts"] == ["CONFIG_LIBPOSIX_MMAP"] and ukmmap["closure"]["native"]["n"] == [
        "CONFIG_LIBPOSIX_MMAP"
    ]
    (p,) = v1_doc["syscalls"]["set_tid_address"]["providers"]
    assert p["requires"] == "LIBPOSIX_FUTEX && LIBPOSIX_PROCESS_CLONE"
    req = k["requirements"][p["requires"]]["routes"]["native"]
    assert set(req["y"]) == {"CONFIG_LIBPOSIX_FUTEX", "CONFIG_LIBPOSIX_PROCESS_CLONE", "CONFIG_LIBPOSIX_PROCESS"}
    assert req["verified"]


def test_unsatisfiable_requirement_is_not_verified(tmp_path: Path) -> None:
    """A registration under a condition that contradicts its option's dependency must not verify."""
    pytest.importorskip("kconfiglib", reason="kconfiglib not installed: pip install -e '.[tablegen]'")
    files = dict(V1)
    files["lib/ukmmap/Makefile.uk"] = V1["lib/ukmmap/Makefile.uk"].replace(
        "UK_PROVIDED_SYSCALLS-$(CONFIG_LIBUKMMAP) += mmap-6 mremap-5",
        "UK_PROVIDED_SYSCALLS-$(CONFIG_LIBUKMMAP) += mmap-6\n        ifeq ($(CONFIG_LIBPOSIX_MMAP),y)\n"
        "        UK_PROVIDED_SYSCALLS-$(CONFIG_LIBUKMMAP) += mremap-5\n        endif",
    )
    doc = gen.build_table(gen.SourceTree.open(write_tree(tmp_path / "bad", files)), kconfig=True)
    (p,) = doc["syscalls"]["mremap"]["providers"]
    c = doc["kconfig"]["requirements"][p["requires"]]["routes"]["native"]
    assert p["requires"] == "LIBUKMMAP && LIBPOSIX_MMAP" and not c["verified"] and c["unresolved"]


def test_resolver_on_the_toy_tree(v1_doc: dict, tmp_path: Path) -> None:  # type: ignore[type-arg]
    t = table_file(tmp_path, "v1", v1_doc)
    plan = options_for_syscalls(t, ["mmap", "mremap", "set_tid_address", "getpid"], "native")
    assert "CONFIG_LIBPOSIX_MMAP" in plan.enable and "CONFIG_LIBUKMMAP" not in plan.enable
    assert {"CONFIG_LIBPOSIX_FUTEX", "CONFIG_LIBPOSIX_PROCESS_CLONE", "CONFIG_LIBUKVMEM"} <= set(plan.enable)
    (alt,) = plan.alternatives
    assert (alt.option, alt.lost, alt.covered_by) == ("CONFIG_LIBUKMMAP", ("mremap",), {})
    # mremap alone: LIBUKMMAP is fine, and must keep LIBPOSIX_MMAP off
    only = options_for_syscalls(t, ["mremap"], "native")
    assert only.enable == ("CONFIG_LIBUKMMAP",) and only.keep_off == ("CONFIG_LIBPOSIX_MMAP",)


# ----------------------------------------------------------------- renames


@pytest.mark.parametrize("with_kconfig", [False, True])
def test_rename_derived_from_two_releases(tmp_path: Path, with_kconfig: bool) -> None:
    if with_kconfig:
        pytest.importorskip("kconfiglib", reason="kconfiglib not installed: pip install -e '.[tablegen]'")
    v1 = gen.build_table(gen.SourceTree.open(write_tree(tmp_path / "v1", V1)), release="0.99.0", kconfig=with_kconfig)
    v2 = gen.build_table(
        gen.SourceTree.open(write_tree(tmp_path / "v2", V2)), release="0.99.1", kconfig=with_kconfig, previous=v1
    )
    merged = ["CONFIG_LIBPOSIX_PROCESS_MULTITHREADING"]
    assert v2["option_renames"] == {
        "CONFIG_LIBPOSIX_PROCESS_CLONE": {"to": merged, "since": "0.99.0", "evidence": ["clone", "set_tid_address"]},
        "CONFIG_LIBPOSIX_PROCESS_PIDS": {"to": merged, "since": "0.99.0", "evidence": ["getpid"]},
    }
    # unchanged tree: nothing renamed
    again = gen.build_table(gen.SourceTree.open(tmp_path / "v1"), release="0.99.2", kconfig=with_kconfig, previous=v1)
    assert again["option_renames"] == {}
    t2 = table_file(tmp_path, "v2", v2)
    assert t2.canonical_option("LIBPOSIX_PROCESS_PIDS") == tuple(merged)
    if with_kconfig:  # a plan written with the old names resolves on the new table
        plan = resolve_options(t2, {"CONFIG_LIBPOSIX_PROCESS_CLONE": ["clone"], "CONFIG_LIBPOSIX_FUTEX": []}, "native")
        assert plan.renamed == {"CONFIG_LIBPOSIX_PROCESS_CLONE": tuple(merged)}
        assert "CONFIG_LIBPOSIX_PROCESS_MULTITHREADING" in plan.enable and plan.verified
        assert "CONFIG_LIBPOSIX_PROCESS_CLONE" not in plan.enable


def test_chained_renames(tmp_path: Path) -> None:
    v1 = gen.build_table(gen.SourceTree.open(write_tree(tmp_path / "v1", V1)), release="0.99.0", kconfig=False)
    v2 = gen.build_table(
        gen.SourceTree.open(write_tree(tmp_path / "v2", V2)), release="0.99.1", kconfig=False, previous=v1
    )
    v3_files = {k: v.replace("MULTITHREADING", "THREADS") for k, v in V2.items()}
    v3 = gen.build_table(
        gen.SourceTree.open(write_tree(tmp_path / "v3", v3_files)), release="0.99.2", kconfig=False, previous=v2
    )
    assert v3["option_renames"]["CONFIG_LIBPOSIX_PROCESS_MULTITHREADING"]["to"] == ["CONFIG_LIBPOSIX_PROCESS_THREADS"]
    assert v3["option_renames"]["CONFIG_LIBPOSIX_PROCESS_CLONE"]["to"] == ["CONFIG_LIBPOSIX_PROCESS_THREADS"]
