"""Generator tests on a small synthetic Unikraft-like tree written by the tests (no network, no fetch)."""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from uk_depscan.cli.tables import tables_app
from uk_depscan.tablegen import unikraft as gen
from uk_depscan.tablegen.libmusl import build_libmusl_table, eval_condition, expand

# ----------------------------------------------------------------- the synthetic tree

NUMBERS_X86 = {
    "read": 0,
    "write": 1,
    "open": 2,
    "close": 3,
    "mmap": 9,
    "mprotect": 10,
    "brk": 12,
    "sched_yield": 24,
    "pause": 34,
    "getpid": 39,
    "clone": 56,
    "execve": 59,
    "wait4": 61,
    "kill": 62,
    "uname": 63,
    "getdents": 78,
    "creat": 85,
    "getuid": 102,
    "setuid": 105,
    "getppid": 110,
    "setsid": 112,
    "capget": 125,
    "arch_prctl": 158,
    "chroot": 161,
    "sync": 162,
    "settimeofday": 164,
    "futex": 202,
    "timer_create": 222,
    "times": 100,
    "getcwd": 79,
}
ARM_ONLY_ABSENT = {
    "read": 63,
    "write": 64,
    "close": 57,
    "mmap": 222,
    "getpid": 172,
    "clone": 220,
    "sync": 81,
    "futex": 98,
    "getcwd": 17,
}

FILES: dict[str, str] = {
    "version.mk": "UK_VERSION = 0\nUK_SUBVERSION = 99\nUK_EXTRAVERSION = 1\n",
    "lib/syscall_shim/include/uk/syscall.h": "#define UK_LLSYSCALL_R_E_DEFINE(rtype, name, ...) x\n",
    "lib/syscall_shim/Makefile.uk": """\
        $(eval $(call addlib_s,libsyscall_shim,$(CONFIG_LIBSYSCALL_SHIM)))
        $(UK_PROVIDED_SYSCALLS_FILE):\x20
        \techo $(UK_PROVIDED_SYSCALLS-y) | tr ' ' '\\n' > $@
        """,
    # ---- posix-fdio: continuation, ifeq, else, commented registration
    "lib/posix-fdio/Makefile.uk": """\
        $(eval $(call addlib_s,libposix_fdio,$(CONFIG_LIBPOSIX_FDIO)))
        LIBPOSIX_FDIO_SRCS-y += $(LIBPOSIX_FDIO_BASE)/fdio.c
        UK_PROVIDED_SYSCALLS-$(CONFIG_LIBPOSIX_FDIO) += read-3 write-3 \\
        \tclose-1
        ifeq ($(CONFIG_LIBPOSIX_FDIO_NONLARGEFILE),y)
        UK_PROVIDED_SYSCALLS-$(CONFIG_LIBPOSIX_FDIO) += getdents-3
        else
        UK_PROVIDED_SYSCALLS-y += sync-0
        endif
        # UK_PROVIDED_SYSCALLS-$(CONFIG_LIBPOSIX_FDIO) += getcwd-2
        """,
    "lib/posix-fdio/Config.uk": """\
        menuconfig LIBPOSIX_FDIO
        \tbool "posix-fdio"
        \tdefault n
        \tselect LIBUKFILE
        if LIBPOSIX_FDIO
        config LIBPOSIX_FDIO_NONLARGEFILE
        \tbool "legacy getdents"
        \tdefault n
        \thelp
        \t  Enable the legacy getdents. If unsure,
        \t  default y is wrong here and must not be read.
        config LIBPOSIX_FDIO_EXTRA
        \tbool "extra"
        \tdefault y
        \tdepends on LIBUKDEBUG
        endif
        """,
    "lib/posix-fdio/fdio.c": """\
        #ifndef FDIO_GUARD
        #define FDIO_GUARD
        #define MY_DEF(x) UK_SYSCALL_R_DEFINE(int, x)
        static ssize_t do_write(int fd, const void *buf, size_t n)
        {
        \treturn uk_file_write(uk_fdtab_get(fd), buf, n);
        }

        UK_SYSCALL_R_DEFINE(ssize_t, read, int, fd, void *, buf, size_t, count)
        {
        \tif (fd < 0)
        \t\treturn -EBADF;
        \treturn uk_file_read(uk_fdtab_get(fd), buf, count);
        }

        UK_SYSCALL_R_DEFINE(ssize_t, write, int, fd, const void *, buf, size_t, n)
        {
        \treturn do_write(fd, buf, n);
        }

        UK_SYSCALL_R_DEFINE(int, close, int, fd) /* not yet { */
        {
        \t(void) fd;
        \treturn -ENOSYS;
        }

        #if CONFIG_LIBPOSIX_FDIO_NONLARGEFILE
        UK_SYSCALL_R_DEFINE(int, getdents, int, fd, void *, dirp, size_t, count)
        {
        \treturn vfs_getdents(fd, dirp, count);
        }
        #endif /* CONFIG_LIBPOSIX_FDIO_NONLARGEFILE */

        UK_SYSCALL_R_DEFINE(int, sync)
        {
        \treturn 0;
        }

        UK_SYSCALL_R_DEFINE(int, getcwd, char *, buf, size_t, size)
        {
        \treturn vfs_getcwd(buf, size);
        }
        #endif /* FDIO_GUARD */
        """,
    # ---- posix-process: every stub pattern, #if variants, arch headers, delegation
    "lib/posix-process/Makefile.uk": """\
        $(eval $(call addlib_s,libposix_process,$(CONFIG_LIBPOSIX_PROCESS)))
        LIBPOSIX_PROCESS_SRCS-y += $(LIBPOSIX_PROCESS_BASE)/process.c
        LIBPOSIX_PROCESS_SRCS-$(CONFIG_LIBPOSIX_PROCESS_CLONE) += $(LIBPOSIX_PROCESS_BASE)/clone.c
        UK_PROVIDED_SYSCALLS-$(CONFIG_LIBPOSIX_PROCESS_CLONE) += clone-5e
        UK_PROVIDED_SYSCALLS-$(CONFIG_LIBPOSIX_PROCESS) += getpid-0 getppid-0 getuid-0
        UK_PROVIDED_SYSCALLS-$(CONFIG_LIBPOSIX_PROCESS) += execve-3 wait4-4 setsid-0 kill-2
        UK_PROVIDED_SYSCALLS-$(CONFIG_LIBPOSIX_PROCESS) += setuid-1 capget-2 times-1 sched_yield-0
        UK_PROVIDED_SYSCALLS-$(CONFIG_LIBPOSIX_PROCESS) += settimeofday-2 timer_create-3 pause-0
        UK_PROVIDED_SYSCALLS-$(CONFIG_LIBPOSIX_PROCESS) += futex-6 open-3 creat-2 uname-1 chroot-1
        """,
    "lib/posix-process/Config.uk": """\
        menuconfig LIBPOSIX_PROCESS
        \tbool "posix-process"
        \tdefault n
        if LIBPOSIX_PROCESS
        \tconfig LIBPOSIX_PROCESS_CLONE
        \tbool "clone"
        \tdefault n
        \tselect LIBPOSIX_PROCESS_PIDS
        endif
        """,
    "lib/posix-process/clone.c": """\
        #if CONFIG_ARCH_X86_64
        UK_LLSYSCALL_R_E_DEFINE(int, clone,
        \t\t\tunsigned long, flags,
        \t\t\tvoid *, sp,
        \t\t\tunsigned long, tlsp)
        #else /* !CONFIG_ARCH_X86_64 */
        UK_LLSYSCALL_R_E_DEFINE(int, clone,
        \t\t\tunsigned long, flags,
        \t\t\tunsigned long, tlsp,
        \t\t\tvoid *, sp)
        #endif /* !CONFIG_ARCH_X86_64 */
        {
        \tstruct clone_args cl = { .flags = flags, .stack = (__u64) sp, .tls = tlsp };

        \treturn _clone(&cl, sizeof(cl), execenv);
        }
        """,
    "lib/posix-process/process.c": """\
        #define UNIKRAFT_PPID 0
        #if CONFIG_LIBPOSIX_PROCESS_PIDS
        UK_SYSCALL_R_DEFINE(int, getpid)
        {
        \treturn ukthread2pid(uk_thread_current());
        }
        #else /* !CONFIG_LIBPOSIX_PROCESS_PIDS */
        UK_SYSCALL_R_DEFINE(int, getpid)
        {
        \treturn UNIKRAFT_PID;
        }
        #endif

        UK_SYSCALL_R_DEFINE(pid_t, getppid)
        {
        \treturn UNIKRAFT_PPID;
        }

        UK_SYSCALL_R_DEFINE(uid_t, getuid)
        {
        \treturn 0;
        }

        UK_SYSCALL_R_DEFINE(int, execve, const char *, path, char *const *, argv, char *const *, envp)
        {
        \tuk_pr_err("execve(%s) not supported\\n", path);
        \treturn -ENOSYS;
        }

        UK_SYSCALL_R_DEFINE(pid_t, wait4, pid_t, pid, int *, st, int, opt, struct rusage *, ru)
        {
        \treturn -ECHILD;
        }

        UK_SYSCALL_R_DEFINE(pid_t, setsid)
        {
        \treturn (pid_t) -EPERM;
        }

        UK_SYSCALL_R_DEFINE(int, kill, pid_t, pid, int, sig)
        {
        \tint ok = 1, *unused = NULL;

        \tif (pid != 1)
        \t\treturn -ESRCH;
        \tif (sig < 0 || sig > NSIG)
        \t\treturn -EINVAL;
        \treturn ok ? 0 : -EINVAL;
        }

        UK_SYSCALL_DEFINE(int, setuid, uid_t, uid)
        {
        \terrno = EPERM;
        \treturn -1;
        }

        UK_SYSCALL_R_DEFINE(int, capget, void *, hdr, void *, data)
        {
        \treturn 0;
        }

        UK_SYSCALL_R_DEFINE(clock_t, times, struct tms *, buf)
        {
        \treturn -ENOTSUP;
        }

        UK_SYSCALL_R_DEFINE(int, sched_yield)
        {
        \tUK_WARN_STUBBED();
        \treturn 0;
        }

        static int uk_sys_settimeofday(const struct timeval *tv, void *tz)
        {
        \tUK_WARN_STUBBED();
        \treturn 0;
        }

        UK_SYSCALL_R_DEFINE(int, settimeofday, const struct timeval *, tv, void *, tz)
        {
        \treturn uk_sys_settimeofday(tv, tz);
        }

        UK_SYSCALL_R_DEFINE(int, timer_create, clockid_t, id, void *, sev, timer_t *, tid)
        {
        \tUK_WARN_STUBBED();
        \t*tid = 0;
        \treturn 0;
        }

        UK_SYSCALL_R_DEFINE(int, pause)
        {
        \tif (uk_signals_pending())
        \t\tuk_pr_warn("STUB: pause with pending signals\\n");
        \treturn uk_sched_block();
        }

        UK_SYSCALL_R_DEFINE(int, futex, uint32_t *, uaddr, int, op, uint32_t, val,
        \t\t    void *, t, uint32_t *, uaddr2, uint32_t, val3)
        {
        \tswitch (op) {
        \tcase FUTEX_WAIT:
        \t\treturn futex_wait(uaddr, val, t);
        \tdefault:
        \t\treturn -ENOSYS;
        \t}
        }

        int
        vfs_open(const char *path, int flags, mode_t mode)
        {
        \treturn uk_vfs_lookup_and_open(path, flags, mode);
        }

        UK_SYSCALL_R_DEFINE(int, open, const char *, path, int, flags, mode_t, mode)
        {
        \treturn vfs_open(path, flags, mode);
        }

        UK_SYSCALL_R_DEFINE(int, creat, const char *, path, mode_t, mode)
        {
        \treturn uk_syscall_r_open((long) path, O_CREAT | O_WRONLY | O_TRUNC, mode);
        }

        UK_SYSCALL_R_DEFINE(int, uname, struct utsname *, buf)
        {
        \tmemcpy(buf, &utsname, sizeof(struct utsname));
        \treturn 0;
        }

        UK_SYSCALL_R_DEFINE(int, chroot, const char *, path)
        {
        \tuk_pr_warn("chroot(%s) is not supported\\n", path);
        \treturn -ENOSYS;
        }
        """,
    # ---- two providers of mmap/mprotect
    "lib/posix-mmap/Makefile.uk": """\
        $(eval $(call addlib_s,libposix_mmap,$(CONFIG_LIBPOSIX_MMAP)))
        LIBPOSIX_MMAP_SRCS-y += $(LIBPOSIX_MMAP_BASE)/mmap.c
        UK_PROVIDED_SYSCALLS-$(CONFIG_LIBPOSIX_MMAP) += mmap-6 mprotect-3
        """,
    "lib/posix-mmap/Config.uk": 'menuconfig LIBPOSIX_MMAP\n\tbool "mmap"\n\tdefault n\n\tdepends on LIBUKVMEM\n',
    "lib/posix-mmap/mmap.c": """\
        UK_SYSCALL_DEFINE(void *, mmap, void *, addr, size_t, len, int, prot, int, flags, int, fd, off_t, off)
        {
        \treturn vmem_map(addr, len, prot, flags, fd, off);
        }

        UK_SYSCALL_R_DEFINE(int, mprotect, void *, addr, size_t, len, int, prot)
        {
        \treturn vmem_protect(addr, len, prot);
        }
        """,
    "lib/ukmmap/Makefile.uk": """\
        $(eval $(call addlib_s,libukmmap,$(CONFIG_LIBUKMMAP)))
        LIBUKMMAP_SRCS-y += $(LIBUKMMAP_BASE)/mmap.c
        UK_PROVIDED_SYSCALLS-$(CONFIG_LIBUKMMAP) += mmap-6 mprotect-3
        """,
    "lib/ukmmap/Config.uk": 'menuconfig LIBUKMMAP\n\tbool "ukmmap"\n\tdefault n\n\tdepends on !LIBPOSIX_MMAP\n',
    "lib/ukmmap/mmap.c": """\
        UK_SYSCALL_DEFINE(void *, mmap, void *, addr, size_t, len, int, prot, int, flags, int, fd, off_t, off)
        {
        \treturn uk_palloc(uk_alloc_get_default(), len / PAGE_SIZE);
        }

        UK_SYSCALL_R_DEFINE(int, mprotect, void *, addr, size_t, len, int, prot)
        {
        \tUK_WARN_STUBBED();
        \treturn 0;
        }
        """,
    "doc/example.c": "UK_SYSCALL_R_DEFINE(int, brk, void *, a)\n{\n\treturn 0;\n}\n",
}

ELFLOADER: dict[str, str] = {
    "Makefile.uk": """\
        $(eval $(call addlib,appelfloader))
        APPELFLOADER_SRCS-$(CONFIG_APPELFLOADER_BRK) += $(APPELFLOADER_BASE)/brk.c
        UK_PROVIDED_SYSCALLS-$(CONFIG_APPELFLOADER_BRK) += brk-1
        UK_PROVIDED_SYSCALLS-$(CONFIG_APPELFLOADER_ARCH_PRCTL) += arch_prctl-3u
        """,
    "Config.uk": """\
        config APPELFLOADER_BRK
        \tbool "brk"
        \tdefault y
        \thelp
        \t\tProvide brk. The help text is indented.
        config APPELFLOADER_ARCH_PRCTL
        \tbool "arch_prctl"
        \tdefault y
        \tdepends on ARCH_X86_64
        """,
    "brk.c": "UK_LLSYSCALL_R_DEFINE(void *, brk, void *, addr)\n{\n\treturn heap_grow(addr);\n}\n",
    "arch_prctl.c": """\
        UK_LLSYSCALL_R_U_DEFINE(int, arch_prctl, int, code, unsigned long, addr, unsigned long, a2)
        {
        \tif (code == ARCH_SET_FS)
        \t\treturn set_fs(addr);
        \tuk_pr_warn("arch_prctl option %d not implemented\\n", code);
        \treturn -EINVAL;
        }
        """,
}


def _nr_header(numbers: dict[str, int]) -> str:
    return "".join(f"#define __NR_{n:<16} {v}\n" for n, v in sorted(numbers.items(), key=lambda kv: kv[1]))


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))
    return root


@pytest.fixture(scope="module")
def uk_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("unikraft")
    files = dict(FILES)
    files["lib/syscall_shim/arch/x86_64/syscall.h.in"] = _nr_header(NUMBERS_X86)
    files["lib/syscall_shim/arch/arm64/syscall.h.in"] = _nr_header(ARM_ONLY_ABSENT)
    return write_tree(root, files)


@pytest.fixture(scope="module")
def el_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tree(tmp_path_factory.mktemp("elfloader"), ELFLOADER)


@pytest.fixture(scope="module")
def doc(uk_tree: Path, el_tree: Path) -> dict:
    tree = gen.SourceTree.open(uk_tree)
    return gen.build_table(tree, extras=[("app-elfloader", gen.SourceTree.open(el_tree))], command="test")


def line(tree: Path, rel: str, needle: str) -> str:
    """``rel:N`` of the first line containing ``needle`` in the file the test wrote."""
    for no, text in enumerate((tree / rel).read_text().splitlines(), 1):
        if needle in text:
            return f"{rel}:{no}"
    raise AssertionError(f"{needle!r} not in {rel}")


# ----------------------------------------------------------------- exact expectations

EXPECTED = {
    "read": ("implemented", "full"),
    "write": ("implemented", "full"),
    "close": ("stub", "enosys"),
    "getdents": ("implemented", "full"),
    "sync": ("stub", "noop_success"),
    "getcwd": ("absent", "generated_enosys_stub"),
    "clone": ("implemented", "full"),
    "getpid": ("implemented", "full"),
    "getppid": ("implemented", "constant(UNIKRAFT_PPID)"),
    "getuid": ("implemented", "constant(0)"),
    "execve": ("stub", "enosys"),
    "wait4": ("stub", "const_error(-ECHILD)"),
    "setsid": ("stub", "const_error(-EPERM)"),
    "kill": ("stub", "fake(no_state)"),
    "setuid": ("stub", "errno_EPERM"),
    "capget": ("stub", "noop_success"),
    "times": ("stub", "enotsup"),
    "sched_yield": ("stub", "warn_stubbed_fake_success"),
    "settimeofday": ("stub", "warn_stubbed_fake_success"),
    "timer_create": ("stub", "warn_stubbed"),
    "pause": ("implemented", "partial(stub_paths)"),
    "futex": ("implemented", "partial(enosys_paths)"),
    "open": ("implemented", "full"),
    "creat": ("implemented", "full"),
    "uname": ("implemented", "full"),
    "chroot": ("stub", "enosys"),
    "mmap": ("implemented", "full"),
    "mprotect": ("implemented", "full"),
    "brk": ("absent", "generated_enosys_stub"),
    "arch_prctl": ("absent", "generated_enosys_stub"),
}


def test_every_row_status_and_detail(doc: dict) -> None:
    got = {n: (r["status"], r["detail"]) for n, r in doc["syscalls"].items()}
    assert got == EXPECTED


def test_behaviors(doc: dict) -> None:
    beh = {n: r["behavior"] for n, r in doc["syscalls"].items()}
    assert beh["read"] == "real" and beh["pause"] == "real_partial" and beh["getuid"] == "constant"
    assert beh["kill"] == beh["sync"] == beh["sched_yield"] == beh["timer_create"] == "fake_success"
    assert beh["times"] == beh["wait4"] == beh["setuid"] == "error_other"
    assert beh["close"] == beh["getcwd"] == beh["execve"] == "error_enosys"


def test_counts(doc: dict) -> None:
    c = doc["counts"]
    assert (c["x86_64_table"], c["arm64_table"]) == (30, 9)
    assert (
        c["registered"],
        c["implemented"],
        c["implemented_full"],
        c["implemented_partial"],
        c["implemented_constant"],
        c["stub"],
        c["absent"],
    ) == (27, 14, 10, 2, 2, 13, 3)
    assert c["stub_kinds"] == {
        "enosys": 3,
        "noop_success": 2,
        "const_error(-ECHILD)": 1,
        "const_error(-EPERM)": 1,
        "fake(no_state)": 1,
        "errno_EPERM": 1,
        "enotsup": 1,
        "warn_stubbed_fake_success": 2,
        "warn_stubbed": 1,
    }
    assert c["registrations_by_library"] == {
        "lib/posix-fdio": 5,
        "lib/posix-process": 20,
        "lib/posix-mmap": 2,
        "lib/ukmmap": 2,
    }


def test_header_fields(doc: dict, uk_tree: Path) -> None:
    assert doc["schema_version"] == 1
    assert doc["release"] == "0.99.1" and doc["unikraft_version"] == "0.99.1"
    assert doc["commit"] is None and doc["ref"] is None
    assert doc["generator"] == {"name": "uk_depscan.unikraft_gen", "version": 2}
    assert doc["registration_suffixes"] == ["e"]
    assert doc["defined_not_registered"] == [
        {"name": "getcwd", "defined_at": line(uk_tree, "lib/posix-fdio/fdio.c", "int, getcwd")}
    ]
    assert "brk" not in [d["name"] for d in doc["defined_not_registered"]]  # doc/ is skipped


def test_continuation_conditions_and_locations(doc: dict, uk_tree: Path) -> None:
    rows = doc["syscalls"]
    mk = "lib/posix-fdio/Makefile.uk"
    assert rows["close"]["provided_at"] == line(uk_tree, mk, "read-3 write-3")
    assert rows["getdents"]["provided_at"] == line(uk_tree, mk, "getdents-3")
    assert rows["getdents"]["extra_conditions"] == [
        "ifeq ($(CONFIG_LIBPOSIX_FDIO_NONLARGEFILE),y)",
        "#if CONFIG_LIBPOSIX_FDIO_NONLARGEFILE",
    ]
    assert rows["sync"]["kconfig"] is None
    assert rows["sync"]["extra_conditions"] == ["!ifeq ($(CONFIG_LIBPOSIX_FDIO_NONLARGEFILE),y)"]
    assert rows["read"]["defined_at"] == line(uk_tree, "lib/posix-fdio/fdio.c", "ssize_t, read")
    assert rows["read"]["extra_conditions"] == []  # include guard dropped
    p = rows["read"]["providers"][0]
    assert (p["library"], p["libname"], p["kconfig"], p["registration"], p["macro"]) == (
        "lib/posix-fdio",
        "libposix_fdio",
        "CONFIG_LIBPOSIX_FDIO",
        "read-3",
        "UK_SYSCALL_R_DEFINE",
    )
    assert p["kconfig_defined_at"] == "lib/posix-fdio/Config.uk:1"
    assert (p["kconfig_default"], p["kconfig_depends_on"]) == ("n", [])


def test_kconfig_help_text_does_not_swallow_next_block(uk_tree: Path) -> None:
    syms = gen.parse_kconfig((uk_tree / "lib/posix-fdio/Config.uk").read_text(), "Config.uk")
    assert syms["LIBPOSIX_FDIO_NONLARGEFILE"].default == "n"
    assert syms["LIBPOSIX_FDIO_EXTRA"].default == "y"
    assert syms["LIBPOSIX_FDIO_EXTRA"].depends_on == ("LIBPOSIX_FDIO", "LIBUKDEBUG")
    assert syms["LIBPOSIX_FDIO"].selects == ("LIBUKFILE",)


def test_arch_alternative_headers_and_compiled_if(doc: dict, uk_tree: Path) -> None:
    p = doc["syscalls"]["clone"]["providers"][0]
    assert p["registration"] == "clone-5e" and p["suffix_supported"] is True
    assert p["macro"] == "UK_LLSYSCALL_R_E_DEFINE"
    assert p["compiled_if"] == "CONFIG_LIBPOSIX_PROCESS_CLONE"
    assert p["kconfig_depends_on"] == ["LIBPOSIX_PROCESS"]
    assert [d["pp_conditions"] for d in p["all_definitions"]] == [["CONFIG_ARCH_X86_64"], ["!(CONFIG_ARCH_X86_64)"]]
    assert doc["syscalls"]["clone"]["extra_conditions"] == ["#if CONFIG_ARCH_X86_64"]


def test_pp_variants_best_wins(doc: dict, uk_tree: Path) -> None:
    row = doc["syscalls"]["getpid"]
    defs = row["providers"][0]["all_definitions"]
    assert [(d["detail"], d["pp_conditions"]) for d in defs] == [
        ("full", ["CONFIG_LIBPOSIX_PROCESS_PIDS"]),
        ("constant(UNIKRAFT_PID)", ["!(CONFIG_LIBPOSIX_PROCESS_PIDS)"]),
    ]
    assert row["extra_conditions"] == ["#if CONFIG_LIBPOSIX_PROCESS_PIDS"]


def test_delegation_chains(doc: dict, uk_tree: Path) -> None:
    rows = doc["syscalls"]
    proc = "lib/posix-process/process.c"
    assert rows["write"]["providers"][0]["followed"] == [
        f"do_write@{line(uk_tree, 'lib/posix-fdio/fdio.c', 'do_write(int fd')}"
    ]
    assert rows["settimeofday"]["providers"][0]["followed"] == [
        f"uk_sys_settimeofday@{line(uk_tree, proc, 'static int uk_sys_settimeofday')}"
    ]
    assert rows["creat"]["providers"][0]["followed"] == [
        "uk_syscall_r_open",
        f"vfs_open@{line(uk_tree, proc, 'vfs_open(const char')}",
    ]


def test_alternative_providers(doc: dict, uk_tree: Path) -> None:
    row = doc["syscalls"]["mprotect"]
    assert row["library"] == "lib/posix-mmap"
    assert [(p["library"], p["status"], p["detail"], p["kconfig"]) for p in row["providers"]] == [
        ("lib/posix-mmap", "implemented", "full", "CONFIG_LIBPOSIX_MMAP"),
        ("lib/ukmmap", "stub", "warn_stubbed_fake_success", "CONFIG_LIBUKMMAP"),
    ]
    assert row["providers"][1]["kconfig_depends_on"] == ["!LIBPOSIX_MMAP"]


def test_elfloader_is_listed_but_does_not_change_core_status(doc: dict) -> None:
    brk, ap = doc["syscalls"]["brk"], doc["syscalls"]["arch_prctl"]
    assert brk["status"] == "absent" and brk["external_status"] == "implemented/full"
    (p,) = brk["providers"]
    assert (p["source"], p["external"], p["provided_at"], p["defined_at"], p["kconfig_defined_at"]) == (
        "app-elfloader",
        True,
        "app-elfloader:Makefile.uk:3",
        "app-elfloader:brk.c:1",
        "app-elfloader:Config.uk:1",
    )
    assert p["compiled_if"] == "CONFIG_APPELFLOADER_BRK"
    (q,) = ap["providers"]
    assert q["registration"] == "arch_prctl-3u" and q["suffix_supported"] is False
    assert q["kconfig_defined_at"] == "app-elfloader:Config.uk:6" and q["kconfig_depends_on"] == ["ARCH_X86_64"]
    assert ap["external_status"] == "implemented/partial(stub_paths) (suffix not supported by this release)"
    assert doc["extra_sources"] == [{"name": "app-elfloader", "ref": None, "commit": None}]


def test_arm64_numbers(doc: dict) -> None:
    rows = doc["syscalls"]
    assert (rows["read"]["x86_64_nr"], rows["read"]["arm64_nr"]) == (0, 63)
    assert (rows["open"]["x86_64_nr"], rows["open"]["arm64_nr"]) == (2, None)


def test_output_is_byte_stable(uk_tree: Path, el_tree: Path, doc: dict) -> None:
    again = gen.build_table(
        gen.SourceTree.open(uk_tree), extras=[("app-elfloader", gen.SourceTree.open(el_tree))], command="test"
    )
    assert gen.dump_json(again) == gen.dump_json(doc)
    assert gen.dump_json(json.loads(gen.dump_json(doc))) == gen.dump_json(doc)


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_git_dir_and_ref_give_the_same_rows(uk_tree: Path, doc: dict, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(uk_tree, repo)
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
        "GIT_AUTHOR_DATE": "2024-01-01T00:00:00Z",
        "GIT_COMMITTER_DATE": "2024-01-01T00:00:00Z",
        "HOME": str(tmp_path),
        "PATH": "/usr/bin:/bin",
    }
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "x"], ["tag", "RELEASE-0.99.1"]):
        subprocess.run(["git", "-C", str(repo), *cmd], check=True, env=env, capture_output=True)
    (repo / "lib/posix-fdio/fdio.c").write_text("/* work tree edit is ignored with --ref */\n")
    tree = gen.SourceTree.open(repo / ".git", "RELEASE-0.99.1")
    got = gen.build_table(tree, extras=[], command="test")
    assert got["release"] == "0.99.1" and len(got["commit"]) == 40 and got["ref"] == "RELEASE-0.99.1"
    strip = {
        n: {k: v for k, v in r.items() if k not in ("providers", "external_status", "routes")}
        for n, r in got["syscalls"].items()
    }
    want = {
        n: {k: v for k, v in r.items() if k not in ("providers", "external_status", "routes")}
        for n, r in doc["syscalls"].items()
    }
    assert strip == want


def test_cli_generator(uk_tree: Path, el_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "t.json"
    res = CliRunner().invoke(
        tables_app,
        ["unikraft", "--src", str(uk_tree), "--elfloader", str(el_tree), "--release", "synthetic", "-o", str(out)],
    )
    assert res.exit_code == 0, res.output
    got = json.loads(out.read_text())
    assert got["release"] == "synthetic"
    assert got["command"] == (
        "uk-depscan tables unikraft --src <unikraft> --elfloader <app-elfloader> --release synthetic"
    )
    assert {n: (r["status"], r["detail"]) for n, r in got["syscalls"].items()} == EXPECTED


def test_cli_generator_bad_source(tmp_path: Path) -> None:
    res = CliRunner().invoke(tables_app, ["unikraft", "--src", str(tmp_path)])
    assert res.exit_code == 2
    assert "not a Unikraft tree" in res.output


# ----------------------------------------------------------------- unit checks


def test_make_lines_condition_stack() -> None:
    text = "ifeq ($(A),y)\nX += 1\nelse ifeq ($(B),y)\nX += 2\nelse\nX += 3\nendif\nX += 4 # c\n"
    got = [(m.text.strip(), m.conditions) for m in gen.iter_make_lines(text)]
    assert got == [
        ("X += 1", ("ifeq ($(A),y)",)),
        ("X += 2", ("!ifeq ($(A),y)", "ifeq ($(B),y)")),
        ("X += 3", ("!ifeq ($(A),y)", "!ifeq ($(B),y)")),
        ("X += 4", ()),
    ]


def test_blank_c_keeps_offsets() -> None:
    src = 'a /* { */ "x}" // }\nb'
    out = gen.blank_c(src, strings=True)
    assert len(out) == len(src) and "{" not in out and "}" not in out and out.endswith("\nb")


def test_make_expansion_and_conditions() -> None:
    env = {"CONFIG_UK_ARCH": "x86_64", "CONFIG_A": "y"}
    assert expand("$(filter y,$(CONFIG_A) $(CONFIG_B))", env) == "y"
    assert eval_condition("ifeq (x86_64,$(CONFIG_UK_ARCH))", env)
    assert not eval_condition("!ifeq (x86_64,$(CONFIG_UK_ARCH))", env)
    assert eval_condition("ifneq ($(CONFIG_LIBPOSIX_SYSINFO),y)", env)
    assert eval_condition("ifdef CONFIG_A", env) and not eval_condition("ifdef CONFIG_B", env)


# ----------------------------------------------------------------- lib-musl on a synthetic tree

LIBMUSL = {
    "Config.uk": """\
        menuconfig LIBMUSL
          bool "musl"
          default n
          select LIBMUSL_STRING
        if LIBMUSL
        config LIBMUSL_STRING
          bool "string"
          default y
        config LIBMUSL_MATH
          bool "math"
          default y
        config LIBMUSL_COMPLEX
          bool "complex"
          default n
        endif
        """,
    "Makefile.uk": """\
        LIBMUSL_VERSION=1.2.3
        LIBMUSLGLUE_SRCS-y += $(LIBMUSL_BASE)/mem.c
        ifeq ($(CONFIG_LIBMUSL_STRING),y)
        include $(LIBMUSL_BASE)/Makefile.uk.musl.string
        endif
        ifeq ($(CONFIG_LIBMUSL_MATH),y)
        include $(LIBMUSL_BASE)/Makefile.uk.musl.math
        endif
        ifeq ($(CONFIG_LIBMUSL_COMPLEX),y)
        include $(LIBMUSL_BASE)/Makefile.uk.musl.complex
        endif
        """,
    "Makefile.uk.musl.string": """\
        LIBMUSL_STRING_SRCS-y += $(LIBMUSL)/src/string/memcpy.c
        LIBMUSL_STRING_SRCS-y += $(LIBMUSL)/src/string/getc.c
        # LIBMUSL_STRING_SRCS-y += $(LIBMUSL)/src/string/strdup.c
        LIBMUSL_STRING_SRCS-$(CONFIG_LIBUKSWRAND) += $(LIBMUSL)/src/string/getrandom.c
        """,
    "Makefile.uk.musl.math": """\
        LIBMUSL_MATH_SRCS-y += $(LIBMUSL)/src/math/fabs.c
        ifeq (x86_64,$(CONFIG_UK_ARCH))
        LIBMUSL_MATH_SRCS-y =
        LIBMUSL_MATH_SRCS-y += $(LIBMUSL)/src/math/x86_64/fabs.s|x86_64
        else ifeq (arm64,$(CONFIG_UK_ARCH))
        LIBMUSL_MATH_SRCS-y += $(LIBMUSL)/src/math/aarch64/fabs.c|arm64
        endif
        """,
    "Makefile.uk.musl.complex": "LIBMUSL_COMPLEX_SRCS-y += $(LIBMUSL)/src/complex/cabs.c\n",
    "mem.c": "void *malloc(size_t n)\n{\n\treturn uk_malloc(uk_alloc_get_default(), n);\n}\n",
}
MUSL = {
    "arch/x86_64/bits/syscall.h.in": "#define __NR_read 0\n#define __NR_getrandom 318\n",
    "include/string.h": "void *memcpy (void *__restrict, const void *__restrict, size_t);\n"
    "char *strdup (const char *);\nint getc_unlocked(FILE *);\n"
    "#define strdupa(x) strcpy(alloca(strlen(x)+1),x)\n",
    "include/stdlib.h": "void *malloc (size_t);\nvoid *aligned_alloc(size_t, size_t);\n"
    "void qsort (void *, size_t, size_t, int (*)(const void *, const void *));\n"
    "int getrandom(void *, size_t, unsigned);\n",
    "include/complex.h": "double cabs(double complex);\ntypedef struct { int q; } cx_t;\n",
    "include/math.h": "double fabs(double);\n",
    "src/string/memcpy.c": "void *memcpy(void *restrict d, const void *restrict s, size_t n)\n{\n\treturn d;\n}\n",
    "src/string/getc.c": "static int helper(void) { return 0; }\nint (getc_unlocked)(FILE *f)\n{\n"
    "\treturn __syscall(SYS_read, 0, 0, 0) + __syscall(SYS_fstat64, 0);\n}\n"
    "weak_alias(getc_unlocked, _IO_getc_unlocked);\n",
    "src/string/strdup.c": "char *strdup(const char *s)\n{\n\treturn 0;\n}\n",
    "src/string/getrandom.c": "int getrandom(void *b, size_t n, unsigned f)\n{\n\treturn syscall(SYS_getrandom);\n}\n",
    "src/math/fabs.c": "double fabs(double x)\n{\n\treturn x;\n}\n",
    "src/math/x86_64/fabs.s": ".global fabs\n.type fabs,@function\nfabs:\n\tret\n",
    "src/math/aarch64/fabs.c": "double fabs(double x)\n{\n\treturn x;\n}\n",
    "src/complex/cabs.c": "double cabs(double complex z)\n{\n\treturn 0;\n}\n",
    "src/stdlib/qsort.c": "void qsort(void *b, size_t n, size_t w, int (*c)(const void *, const void *))\n{\n}\n",
}
CORE = {
    "lib/posix-environ/qsort_impl.c": "void qsort(void *b, size_t n, size_t w, void *c)\n{\n}\n",
    "lib/nolibc/string.c": "void *aligned_alloc(size_t a, size_t n)\n{\n\treturn 0;\n}\n",
}


def test_libmusl_synthetic(tmp_path: Path) -> None:
    lm = gen.SourceTree.open(write_tree(tmp_path / "lm", LIBMUSL))
    mu = gen.SourceTree.open(write_tree(tmp_path / "musl", MUSL))
    core = gen.SourceTree.open(write_tree(tmp_path / "uk", CORE))
    d = build_libmusl_table(lm, mu, core, release="synthetic", command="test")
    assert d["symbols"] == {
        "memcpy": "src/string/memcpy.c",
        "getc_unlocked": "src/string/getc.c",
        "_IO_getc_unlocked": "src/string/getc.c",
        "fabs": "src/math/x86_64/fabs.s",
        "malloc": "glue:mem.c",
    }
    assert d["core_symbols"] == {"qsort": "lib/posix-environ/qsort_impl.c:1"}
    # aligned_alloc only exists in nolibc (never linked with musl); complex is off by default;
    # getrandom's list entry needs CONFIG_LIBUKSWRAND; strdup's entry is commented out.
    assert d["missing"] == ["aligned_alloc", "cabs", "getrandom", "strdup"]
    assert d["commented_out"] == ["src/string/strdup.c"]
    assert d["never_listed"] == ["src/stdlib/qsort.c"]
    assert d["listed_not_compiled"] == {
        "src/complex/cabs.c": "Makefile.uk.musl.complex:1",
        "src/math/aarch64/fabs.c": "Makefile.uk.musl.math:6",
        "src/math/fabs.c": "Makefile.uk.musl.math:1",
        "src/string/getrandom.c": "Makefile.uk.musl.string:4",
    }
    getc = d["files"]["src/string/getc.c"]
    assert getc == {
        "makefile": "Makefile.uk.musl.string:2",
        "conditions": ["ifeq ($(CONFIG_LIBMUSL_STRING),y)"],
        "symbols": ["_IO_getc_unlocked", "getc_unlocked"],
        "syscalls": ["read"],
        "syscalls_other_arch": ["fstat64"],
    }
    assert d["source"]["musl"]["version"] == "1.2.3"
    assert "CONFIG_LIBMUSL_COMPLEX" not in d["config"] and d["config"]["CONFIG_LIBMUSL_MATH"] == "y"
    assert d["counts"]["compiled_files"] == 4 and d["counts"]["missing"] == 4
    d2 = build_libmusl_table(lm, mu, core, release="synthetic", command="test", defines={"CONFIG_LIBMUSL_COMPLEX": "y"})
    assert d2["symbols"]["cabs"] == "src/complex/cabs.c" and "cabs" not in d2["missing"]


def test_cli_libmusl_generator_and_bad_define(tmp_path: Path) -> None:
    lm, mu = write_tree(tmp_path / "lm", LIBMUSL), write_tree(tmp_path / "musl", MUSL)
    out = tmp_path / "m.json"
    r = CliRunner()
    res = r.invoke(
        tables_app,
        [
            "libmusl",
            "--libmusl",
            str(lm),
            "--musl",
            str(mu),
            "--release",
            "x",
            "--define",
            "CONFIG_LIBMUSL_COMPLEX=y",
            "-o",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    got = json.loads(out.read_text())
    assert got["symbols"]["cabs"] == "src/complex/cabs.c" and got["core_symbols"] == {}
    assert got["command"] == (
        "uk-depscan tables libmusl --libmusl <lib-musl> --musl <musl> --release x --define CONFIG_LIBMUSL_COMPLEX=y"
    )
    res = r.invoke(
        tables_app, ["libmusl", "--libmusl", str(lm), "--musl", str(mu), "--release", "x", "--define", "COMPLEX"]
    )
    assert res.exit_code == 2 and "expected CONFIG_NAME=value" in res.output


def test_pp_condition_stack_with_guard_elif_else() -> None:
    code = "#ifndef G\n#define G\n#if !(A)\nx\n#elif B\ny\n#else\nz\n#endif\nw\n#endif\n"
    idx = gen.pp_stack_index(code)
    assert [gen.pp_conditions_at(idx, n) for n in (4, 6, 8, 10)] == [
        ("!(A)",),
        ("!(!(A))", "B"),
        ("!(!(A))", "!(B)"),
        (),
    ]


def test_0_16_style_u_suffix(tmp_path: Path, el_tree: Path) -> None:
    files = dict(FILES)
    files["lib/syscall_shim/include/uk/syscall.h"] = "#define UK_LLSYSCALL_R_U_DEFINE(rtype, name, ...) x\n"
    files["lib/posix-process/Makefile.uk"] = FILES["lib/posix-process/Makefile.uk"].replace("clone-5e", "clone-5u")
    files["lib/posix-process/clone.c"] = FILES["lib/posix-process/clone.c"].replace("_E_DEFINE", "_U_DEFINE")
    files["lib/syscall_shim/arch/x86_64/syscall.h.in"] = _nr_header(NUMBERS_X86)
    root = write_tree(tmp_path / "uk016", files)
    d = gen.build_table(gen.SourceTree.open(root), extras=[("app-elfloader", gen.SourceTree.open(el_tree))])
    assert d["registration_suffixes"] == ["u"] and d["counts"]["arm64_table"] == 0
    clone = d["syscalls"]["clone"]
    assert (clone["status"], clone["detail"]) == ("implemented", "full")
    p = clone["providers"][0]
    assert (p["registration"], p["macro"], p["suffix_supported"]) == ("clone-5u", "UK_LLSYSCALL_R_U_DEFINE", True)
    assert d["syscalls"]["arch_prctl"]["external_status"] == "implemented/partial(stub_paths)"
    assert d["syscalls"]["read"]["arm64_nr"] is None


def test_libmusl_symbols_complex_declarators_and_data() -> None:
    """musl's ``signal`` returns a function pointer; ``in6addr_any``, ``optind`` are data objects."""
    from uk_depscan.tablegen.libmusl import c_symbols

    text = textwrap.dedent(
        """\
        #include <signal.h>
        static int helper(int x) { return x; }
        static reg_errcode_t
        tre_static(int x)
        {
        \treturn helper(x);
        }
        void (*signal(int sig, void (*func)(int)))(int)
        {
        \treturn helper(sig) ? SIG_ERR : func;
        }
        weak_alias(signal, bsd_signal);
        int (isalpha)(int c) { return c; }
        hidden int __lookup(struct address buf[static 48], int n) { return n; }
        const struct in6_addr in6addr_any = IN6ADDR_ANY_INIT;
        char *optarg;
        int optind=1, opterr=1, optopt;
        static int hidden_state = 3;
        extern int declared_elsewhere;
        int prototype_only(int);
        struct tag;
        struct tagged { int a; } instance;
        enum { A, B };
        """
    )
    assert c_symbols(text) == [
        "__lookup", "bsd_signal", "in6addr_any", "instance", "isalpha", "optarg", "opterr", "optind", "optopt",
        "signal",
    ]  # fmt: skip
