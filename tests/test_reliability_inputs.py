"""Inputs that are not what they seem: pseudo-filesystems, object kinds, special files, memory limits."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FIXTURES, REPO, compile_so, need, run_cli

from uk_depscan.fs import pseudo_filesystem

NOT_SEARCHED = "not searched: pseudo-filesystem (proc)"


def _stub(tmp: Path, name: str) -> Path:
    """A library whose DT_NEEDED will name ``name`` (its soname)."""
    return compile_so(tmp / "stubs" / name, [FIXTURES / "loader" / "lib.c"], soname=name)


def _deps(args: list[str]) -> dict:
    code, out, err = run_cli(["deps", *args, "--format", "json"])
    assert code in (0, 1) and "Traceback" not in err, err
    return json.loads(out)


def _exe_attempts(doc: dict) -> list[dict]:
    (missing,) = [m for m in doc["targets"][0]["dependencies"]["missing"] if m["needed_name"] == "exe"]
    return missing["tried"]


def _loaded_paths(doc: dict) -> list[str]:
    return [o["realpath"] for o in doc["targets"][0]["dependencies"]["load_order"]]


@pytest.fixture(scope="module")
def exe_stub(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _stub(tmp_path_factory.mktemp("pfs"), "exe")


def _assert_scanner_not_loaded(doc: dict) -> None:
    python = os.path.realpath(sys.executable)
    assert python not in _loaded_paths(doc)
    assert not any("python" in os.path.basename(p) for p in _loaded_paths(doc))


def test_runpath_into_proc_self_is_not_searched(tmp_path: Path, exe_stub: Path) -> None:
    """DT_RUNPATH /proc/self + DT_NEEDED exe used to load the scanner's own Python."""
    lib = compile_so(tmp_path / "libp.so", [FIXTURES / "loader" / "lib.c"], link=[exe_stub], runpath="/proc/self")
    doc = _deps([str(lib)])
    _assert_scanner_not_loaded(doc)
    tried = _exe_attempts(doc)
    assert tried[0] == {"path": "/proc/self/exe", "outcome": NOT_SEARCHED}


def test_symlink_into_proc_is_caught_by_filesystem_type(tmp_path: Path, exe_stub: Path) -> None:
    """/tmp/x -> /proc/self: no path prefix gives it away, the filesystem type of the resolved path does."""
    link = tmp_path / "x"
    os.symlink("/proc/self", link)
    lib = compile_so(tmp_path / "libp.so", [FIXTURES / "loader" / "lib.c"], link=[exe_stub], runpath=str(link))
    doc = _deps([str(lib)])
    _assert_scanner_not_loaded(doc)
    assert _exe_attempts(doc)[0] == {"path": f"{link}/exe", "outcome": NOT_SEARCHED}
    # $ORIGIN-relative as well, and a link to the magic link itself
    (tmp_path / "o").mkdir()
    os.symlink("/proc/self/exe", tmp_path / "o" / "exe")
    lib2 = compile_so(tmp_path / "o" / "libq.so", [FIXTURES / "loader" / "lib.c"], link=[exe_stub], runpath="$ORIGIN")
    doc = _deps([str(lib2)])
    _assert_scanner_not_loaded(doc)
    assert _exe_attempts(doc)[0]["outcome"] == NOT_SEARCHED


def test_root_on_or_through_a_pseudo_filesystem(tmp_path: Path, exe_stub: Path) -> None:
    lib = compile_so(tmp_path / "libp.so", [FIXTURES / "loader" / "lib.c"], link=[exe_stub])
    root = tmp_path / "sysroot"
    (root / "lib").mkdir(parents=True)
    os.symlink("/proc/self", root / "lib" / "x86_64-linux-gnu")  # a sysroot directory that leads into procfs
    doc = _deps([str(lib), "--root", str(root), "--no-ld-cache"])
    _assert_scanner_not_loaded(doc)
    outcomes = {a["path"]: a["outcome"] for a in _exe_attempts(doc)}
    assert outcomes[f"{root}/lib/x86_64-linux-gnu/exe"] == NOT_SEARCHED
    # --root /proc/self/root: every candidate lies on procfs; the host's libraries never enter the report
    doc = _deps([str(lib), "--root", "/proc/self/root"])
    _assert_scanner_not_loaded(doc)
    assert all(a["outcome"] == NOT_SEARCHED for a in _exe_attempts(doc))
    assert len(_loaded_paths(doc)) == 1


def test_directory_on_a_pseudo_filesystem_is_refused() -> None:
    code, out, err = run_cli(["deps", "/proc/self"])
    assert code == 2 and out == "" and "pseudo-filesystem (proc)" in err and err.count("\n") == 1


def test_pseudo_filesystem_walk_never_looks_inside_procfs(tmp_path: Path) -> None:
    os.symlink("/proc/self", tmp_path / "x")
    assert pseudo_filesystem(tmp_path / "x" / "exe") == "proc"
    assert pseudo_filesystem("/sys/kernel") == "sysfs"
    assert pseudo_filesystem(tmp_path) is None and pseudo_filesystem(REPO) is None
    assert pseudo_filesystem(tmp_path / "missing" / "lib.so") is None


@pytest.mark.strace
def test_pseudo_filesystem_candidates_are_never_opened(tmp_path: Path, exe_stub: Path) -> None:
    """strace the scan: nothing below the procfs link is opened (or even stat-ed) by the loader."""
    need("strace")
    link = tmp_path / "x"
    os.symlink("/proc/self", link)
    lib = compile_so(tmp_path / "libp.so", [FIXTURES / "loader" / "lib.c"], link=[exe_stub], runpath=str(link))
    trace = tmp_path / "trace"
    env = dict(os.environ, UK_DEPSCAN_CACHE_DIR=str(tmp_path / "c"))
    proc = subprocess.run(
        [
            "strace",
            "-f",
            "-qq",
            "-e",
            "trace=%file",
            "-o",
            str(trace),
            sys.executable,
            "-m",
            "uk_depscan",
            "deps",
            str(lib),
        ],
        capture_output=True,
        check=False,
        text=True,
        env=env,
    )
    if not trace.exists() or "PTRACE" in proc.stderr.upper():
        pytest.skip(
            "strace cannot trace here (run where ptrace is allowed, e.g. a container with --cap-add SYS_PTRACE): "
            + proc.stderr.strip()[:120]
        )
    lines = trace.read_text().splitlines()
    assert not [line for line in lines if f'"{link}/exe"' in line or '"/proc/self/exe"' in line]


# -- object kinds -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def objects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("kinds")
    rel = d / "thing.o"
    subprocess.run(["gcc", "-c", "-fPIC", "-o", str(rel), str(FIXTURES / "loader" / "lib.c")], check=True)
    good = compile_so(d / "libgood.so", [FIXTURES / "loader" / "lib.c"])
    return {"rel": rel, "good": good, "dir": d}


def _core_dump(tmp: Path) -> Path:
    """A real core dump of a trusted fixture program that aborts (kernel.core_pattern permitting)."""
    src = tmp / "crash.c"
    src.write_text("#include <stdlib.h>\nint main(void) { abort(); }\n")
    prog = tmp / "crash"
    subprocess.run(["gcc", "-o", str(prog), str(src)], check=True)
    work = tmp / "core-dir"
    work.mkdir()

    def allow_core() -> None:
        resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))

    proc = subprocess.run([str(prog)], cwd=work, preexec_fn=allow_core, capture_output=True, check=False)
    assert proc.returncode == -signal.SIGABRT
    cores = [p for p in work.iterdir() if p.name.startswith("core")]
    if not cores:
        pytest.skip(
            f"no core file written (kernel.core_pattern = {Path('/proc/sys/kernel/core_pattern').read_text()!r}): "
            "run where core files go to the working directory (sysctl kernel.core_pattern=core)"
        )
    return cores[0]


def test_relocatable_object_argument_exits_2(objects: dict[str, Path]) -> None:
    for cmd in ("scan", "deps"):
        code, out, err = run_cli([cmd, str(objects["rel"])])
        assert code == 2 and out == "" and err.count("\n") == 1, err
        assert str(objects["rel"]) in err and "relocatable object (ET_REL" in err


def test_core_dump_argument_exits_2(tmp_path: Path) -> None:
    core = _core_dump(tmp_path)
    code, out, err = run_cli(["scan", str(core)])
    assert code == 2 and out == "" and err.count("\n") == 1 and "core dump (ET_CORE)" in err, err


def test_object_kinds_and_special_files_inside_a_directory(objects: dict[str, Path], tmp_path: Path) -> None:
    d = tmp_path / "tree"
    d.mkdir()
    shutil.copy(objects["good"], d / "libgood.so")
    shutil.copy(objects["rel"], d / "thing.o")
    try:
        shutil.copy(_core_dump(tmp_path), d / "core")
        with_core = True
    except pytest.skip.Exception:
        with_core = False
    os.mkfifo(d / "fifo.so")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(d / "sock"))
    os.symlink(d / "absent.so", d / "dangling.so")
    os.symlink(d / "loop.so", d / "loop.so")
    os.symlink(d / "fifo.so", d / "to-fifo.so")
    try:
        os.mknod(d / "null", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
        with_device = True
    except PermissionError:
        with_device = False
    code, out, err = run_cli(["deps", str(d), "--format", "json"])
    sock.close()
    assert code == 0, err
    doc = json.loads(out)
    assert [t["target"] for t in doc["targets"]] == [str(d / "libgood.so")]
    reasons = {Path(s["path"]).name: s["reason"] for s in doc["skipped"]}
    assert reasons["thing.o"].startswith("relocatable object (ET_REL")
    assert reasons["fifo.so"] == "FIFO: special file, not read"
    assert reasons["sock"] == "socket: special file, not read"
    assert reasons["dangling.so"] == "dangling symbolic link"
    assert reasons["loop.so"] == "symbolic link loop"
    assert reasons["to-fifo.so"] == "symbolic link to a FIFO: special file, not read"
    if with_core:
        assert reasons["core"].startswith("core dump (ET_CORE)")
    if with_device:
        assert reasons["null"] == "character device: special file, not read"


# -- memory limits ---------------------------------------------------------------------------------
BIG = """
__asm__(".text\\n.globl pad\\n.type pad, @function\\npad:\\n.skip 268435456, 0x90\\nret\\n");
int f(void) { return 1; }
"""


def _vm_peak_of(argv: list[str], env: dict[str, str]) -> int:
    code = (
        "import resource, runpy, sys; sys.argv = " + repr(argv) + "\n"
        "import uk_depscan.cli.main, uk_depscan.pipeline, numpy, capstone\n"
        "print(open('/proc/self/status').read().split('VmPeak:')[1].split()[0])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return int(out.stdout.strip()) << 10


@pytest.mark.slow  # over 5 s here: runs a scan until the address-space limit stops it
def test_out_of_memory_is_exit_2_with_the_figure(tmp_path: Path) -> None:
    """Under an address-space limit the 256 MB object cannot be analysed: one line, exit 2, never exit 3."""
    src = tmp_path / "big.c"
    src.write_text(BIG)
    big = tmp_path / "libbig.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-O1", "-o", str(big), str(src)], check=True)
    env = dict(os.environ, UK_DEPSCAN_CACHE_DIR=str(tmp_path / "c"), OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    base = _vm_peak_of(["uk-depscan"], env)
    seen_oom = False
    for extra_mb in (64, 160, 320, 640):
        limit = base + (extra_mb << 20)

        def cap(limit: int = limit) -> None:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

        proc = subprocess.run(
            [sys.executable, "-m", "uk_depscan", "scan", str(big), "--libc", "glibc", "-q", "--no-cache"],
            capture_output=True,
            check=False,
            text=True,
            env=env,
            preexec_fn=cap,
            timeout=300,
        )
        assert "Traceback" not in proc.stderr and proc.returncode != 3, (extra_mb, proc.stderr[-500:])
        if proc.returncode == 2:
            assert proc.stderr.count("\n") == 1, proc.stderr
            assert f"not enough memory to analyse {big} (256 MB mapped; address-space limit" in proc.stderr
            seen_oom = True
        else:
            assert proc.returncode in (0, 1), (extra_mb, proc.stderr)
    assert seen_oom
