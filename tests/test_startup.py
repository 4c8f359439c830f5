"""The start-up baseline split (uk_depscan/syscalls/startup.py): the start-up part against what empty
programs really make (strace on x86-64, qemu-aarch64 -strace on aarch64), the rare part kept apart and
never P0 by itself."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, have, run_cli, strace_syscalls

from uk_depscan.elf.file import open_elf
from uk_depscan.syscalls.linux import load_linux_table
from uk_depscan.syscalls.startup import RARE_PATHS, RTLD_RARE_PATHS, canonical, is_rare
from uk_depscan.syscalls.summaries import ENTRY, load_shipped

pytestmark = pytest.mark.strace
EMPTY = FIXTURES / "programs" / "empty.c"
# the tracer's execve starts the program; exit_group is the program's own exit (its code reaches it)
NOT_START_UP = {"execve", "exit_group"}


def _report(exe: Path, *args: str) -> dict[str, Any]:
    code, out, err = run_cli(["scan", str(exe), "-f", "json", *args])
    assert code in (0, 1), err
    return json.loads(out)["targets"][0]  # type: ignore[no-any-return]


def _parts(t: dict[str, Any]) -> tuple[set[str], set[str], set[str]]:
    """(start-up part, rare part, normal-path syscalls the program's own code reaches)."""
    base = t["syscalls"]["baseline"]
    normal = {f["name"] for f in t["syscalls"]["reached"] if not f["failure_only"]}
    return {f["name"] for f in base if not f["rare"]}, {f["name"] for f in base if f["rare"]}, normal


def _same_loader(interp: Path, soname: str, arch: str) -> None:
    """The trace is of the installed glibc, the baseline of the shipped model: compare them only when
    they are the same build."""
    if not interp.exists():
        pytest.skip(f"{interp} not installed")
    shipped = load_shipped("glibc", arch)[soname].provenance.get("build_id")
    if open_elf(interp).build_id != shipped:
        pytest.skip(f"{interp} is not the shipped model's build ({shipped}): traces would differ")


def test_rare_path_names() -> None:
    assert canonical("__GI___getcwd", rtld=True) == "getcwd" and is_rare("__GI___getcwd", rtld=True)
    assert not is_rare("getcwd")  # libc.so.6's getcwd is an ordinary function
    assert canonical("open_verify.constprop.0") == "open_verify" and not is_rare("open_verify.constprop.0")
    assert is_rare("rtld_chain_load") and is_rare("_dl_fatal_printf@@GLIBC_PRIVATE")
    for name, why in {**RARE_PATHS, **RTLD_RARE_PATHS}.items():
        assert re.search(r"\b(elf|nptl|csu|sysdeps)/", why), f"{name}: no glibc source cited"


def test_shipped_split_of_ld_so() -> None:
    """The shipped glibc models carry the rare part of ld.so's entry point, made with libc6-dbg."""
    for arch, soname in (("x86_64", "ld-linux-x86-64.so.2"), ("aarch64", "ld-linux-aarch64.so.1")):
        ld = load_shipped("glibc", arch)[soname]
        entry = ld.entries[ENTRY]
        table = load_linux_table(arch)
        rare = {table.name_of(n) for n in entry.rare_syscalls}
        assert {"execve", "setitimer", "getcwd", "uname"} <= rare and rare & {"readlink", "readlinkat"}, (arch, rare)
        assert entry.rare_syscalls < entry.syscalls
        assert ld.provenance["rare_paths"]["package"] == "libc6-dbg"


def test_glibc_x86_64_start_up_is_what_an_empty_program_makes(tmp_path: Path, record_property) -> None:  # type: ignore[no-untyped-def]
    if not have("gcc"):
        pytest.skip("gcc not installed")
    _same_loader(Path("/lib64/ld-linux-x86-64.so.2"), "ld-linux-x86-64.so.2", "x86_64")
    exe = tmp_path / "empty"
    subprocess.run(["gcc", "-O1", "-o", str(exe), str(EMPTY)], check=True, capture_output=True)
    traced = strace_syscalls([str(exe)], tmp_path)
    for model in ("glibc", "auto"):
        startup, rare, normal = _parts(_report(exe, "--libc", model))
        assert startup == traced - NOT_START_UP, (model, sorted(startup ^ (traced - NOT_START_UP)))
        assert "exit_group" in normal  # the program's own exit(), not the start-up
        assert {"execve", "setitimer", "uname", "getcwd", "readlink", "write"} <= rare
        record_property(f"x86_64-{model}", f"start-up {len(startup)}, rare {len(rare)}, traced {len(traced)}")


# ld.so reads an object's program headers with pread64 only when they lie beyond its first read
# (elf/dl-load.c open_verify): x86-64's libc.so.6 has 14 of them and needs it, aarch64's does not.
LAYOUT_DEPENDENT = {"pread64"}


def test_glibc_aarch64_start_up_under_qemu(tmp_path: Path, record_property) -> None:  # type: ignore[no-untyped-def]
    """Against Debian's libc6:arm64 of the shipped model: set UK_DEPSCAN_ARM64_SYSROOT to a directory
    where it is unpacked (apt-get download libc6:arm64; dpkg-deb -x libc6_*_arm64.deb DIR); the
    cross toolchain's own sysroot (libc6-arm64-cross) is another build and is skipped."""
    cc, qemu = "aarch64-linux-gnu-gcc", "qemu-aarch64"
    sysroot = Path(os.environ.get("UK_DEPSCAN_ARM64_SYSROOT", "/usr/aarch64-linux-gnu"))
    if not (have(cc) and have(qemu)):
        pytest.skip(f"{cc} or {qemu} not installed")
    _same_loader(sysroot / "lib" / "ld-linux-aarch64.so.1", "ld-linux-aarch64.so.1", "aarch64")
    if not have("aarch64-linux-gnu-gcc"):
        pytest.skip("aarch64-linux-gnu-gcc not installed")
    exe = tmp_path / "empty"
    subprocess.run([cc, "-O1", "-o", str(exe), str(EMPTY)], check=True, capture_output=True)
    # strace under qemu-user would trace qemu; qemu's own -strace logs the guest's syscalls
    proc = subprocess.run([qemu, "-L", str(sysroot), "-strace", str(exe)], check=False, capture_output=True, text=True)
    table = load_linux_table("aarch64")
    traced = set()
    for line in proc.stderr.splitlines():
        m = re.match(r"\d+ (?:Unknown syscall (\d+)|(\w+)\()", line)
        if m:
            traced.add(table.name_of(int(m[1])) if m[1] else m[2])
    assert {"brk", "openat", "mmap"} <= traced, proc.stderr[:300]
    startup, rare, normal = _parts(_report(exe, "--libc", "glibc"))
    assert traced - NOT_START_UP <= startup, sorted(traced - NOT_START_UP - startup)
    assert startup - traced <= LAYOUT_DEPENDENT, sorted(startup - traced)
    assert "execve" in rare and "exit_group" in normal
    record_property("aarch64-glibc", f"start-up {len(startup)}, rare {len(rare)}, traced {len(traced)}")


def test_musl_start_up_rare_syscalls_never_p0(tmp_path: Path, record_property) -> None:  # type: ignore[no-untyped-def]
    """With --libc musl, what the engine attributes to musl's libc.so constructors (rt_sigqueueinfo,
    sched_setscheduler, tkill...) is not start-up: Debian's musl libc.so has no symbols to split it."""
    if not shutil.which("musl-gcc"):
        pytest.skip("musl-gcc not installed (apt-get install musl-tools)")
    exe = tmp_path / "empty"
    subprocess.run(["musl-gcc", "-O1", "-o", str(exe), str(EMPTY)], check=True, capture_output=True)
    traced = strace_syscalls([str(exe)], tmp_path)
    t = _report(exe, "--libc", "musl")
    startup, rare, _ = _parts(t)
    assert not {"rt_sigqueueinfo", "sched_setscheduler", "tkill"} & startup
    for g in t["gaps"]:
        if g["name"] in ("rt_sigqueueinfo", "sched_setscheduler", "tkill"):
            assert g["tier"] != "P0" and g["path"] != "start-up", g
    record_property(
        "musl-x86_64",
        f"start-up {sorted(startup)}, rare {len(rare)}, traced {sorted(traced - {'execve'})} "
        f"(traced and covered by the rare part: {sorted((traced - {'execve'}) & rare)})",
    )
