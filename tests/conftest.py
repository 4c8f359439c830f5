"""Shared test helpers: compilers, fixture builds, the CLI run in-process, and the per-test scan cache."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

# hypothesis (test_channel_properties) keeps caches in ./.hypothesis, written when its decorators
# run at collection: tests write only in temporary directories, so point it at one, made when the
# session is configured (not at import: a command-line error would leave it behind) and removed at exit
_HYPOTHESIS_HOME: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    _HYPOTHESIS_HOME.append(tempfile.mkdtemp(prefix="uk-depscan-hypothesis-"))
    with contextlib.suppress(ImportError):
        from hypothesis.configuration import set_hypothesis_home_dir

        set_hypothesis_home_dir(_HYPOTHESIS_HOME[-1])


def pytest_unconfigure(config: pytest.Config) -> None:
    while _HYPOTHESIS_HOME:
        shutil.rmtree(_HYPOTHESIS_HOME.pop(), ignore_errors=True)


REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures"
CROSS_CC = {"x86_64": "gcc", "aarch64": "aarch64-linux-gnu-gcc"}
# Debian package that provides each external tool the tests build with or compare against (the
# same packages .ci/run installs), so a skip says what to install rather than what is missing.
TOOL_PACKAGES = {
    "gcc": "gcc",
    "g++": "g++",
    "objdump": "binutils",
    "readelf": "binutils",
    "aarch64-linux-gnu-gcc": "gcc-aarch64-linux-gnu libc6-dev-arm64-cross",
    "aarch64-linux-gnu-g++": "g++-aarch64-linux-gnu",
    "aarch64-linux-gnu-objdump": "binutils-aarch64-linux-gnu",
    "aarch64-linux-gnu-readelf": "binutils-aarch64-linux-gnu",
    "strace": "strace",
    "ldd": "libc-bin",
    "dot": "graphviz",
    "chromium": "chromium",
    "make": "make",
    "qemu-system-x86_64": "qemu-system-x86",
}


def have(tool: str) -> bool:
    return shutil.which(tool) is not None


def install_hint(tool: str) -> str:
    """``"install gcc (apt-get install gcc)"``: what a skipped test needs, as an action."""
    return f"install {tool} (apt-get install {TOOL_PACKAGES.get(tool, tool)})"


def need(*tools: str) -> None:
    """Skip the calling test, naming what to install, unless every tool is on PATH."""
    missing = [t for t in tools if not have(t)]
    if missing:
        pytest.skip("; ".join(f"{t} not found: {install_hint(t)}" for t in missing))


@pytest.fixture(scope="session", autouse=True)
def _scan_cache_in_tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The scan cache of the whole session, in pytest's temporary directory, never ``~/.cache/uk-depscan``.

    Session-wide rather than per test: the cache is keyed by content and validated on every read, and
    a per-test cache made every test rescan the host's libc family (the strace recall tests 5x slower).
    The tests of the cache itself (cold against warm, corrupted entries) set UK_DEPSCAN_CACHE_DIR to
    their own directory with monkeypatch.  Session scope also covers module-scoped fixtures, which run
    before any function-scoped one.
    """
    cache = tmp_path_factory.mktemp("scan-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("UK_DEPSCAN_CACHE_DIR", str(cache))
        yield cache


@pytest.fixture(autouse=True)
def _no_scan_kept_from_another_test() -> None:
    """Each test starts without the in-memory scan a previous test's run kept (``scan._FRESH``, one
    run's own result): a test that runs the CLI cold, then warm, must scan in its cold run."""
    from uk_depscan.syscalls import scan

    scan._FRESH.clear()


def compile_so(
    out: Path,
    sources: list[Path],
    *,
    arch: str = "x86_64",
    soname: str | None = None,
    link: list[Path] = (),
    rpath: str | None = None,
    runpath: str | None = None,
    extra: list[str] = (),
    define: str | None = None,
) -> Path:
    """Build a -nostdlib shared object, so its DT_NEEDED list is exactly ``link``."""
    cc = CROSS_CC[arch]
    need(cc)
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        cc,
        "-shared",
        "-nostdlib",
        "-fPIC",
        "-O1",
        "-o",
        str(out),
        *map(str, sources),
        f"-Wl,-soname,{soname or out.name}",
        "-Wl,--no-as-needed",
        *map(str, link),
        *extra,
    ]
    if define:
        cmd.append(f"-DFUNC={define}")
    if rpath is not None:
        cmd += [f"-Wl,-rpath,{rpath}", "-Wl,--disable-new-dtags"]
    if runpath is not None:
        cmd += [f"-Wl,-rpath,{runpath}", "-Wl,--enable-new-dtags"]
    subprocess.run(cmd, check=True, capture_output=True)
    return out


def host_libstdcxx() -> Path:
    """The host's libstdc++.so.6 (a real, large C++ library), located by the compiler, or skip.

    ``gcc -print-file-name`` only searches gcc's library directories; it never loads the file.
    """
    need("gcc")
    found = subprocess.run(
        ["gcc", "-print-file-name=libstdc++.so.6"], check=False, capture_output=True, text=True
    ).stdout.strip()
    if not os.path.isabs(found) or not os.path.exists(found):
        pytest.skip("the host has no libstdc++.so.6: install libstdc++6 (apt-get install libstdc++6)")
    return Path(os.path.realpath(found))


@pytest.fixture(scope="session")
def sockets_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The saved JSON report of ``fixtures/programs/sockets.c`` (a small socket server), glibc
    model, Unikraft 0.17.0: many Kconfig groups, gap rows with long reasons.  Scanned once per
    session; tests only read it."""
    need("gcc")  # builds the fixture program
    tmp = tmp_path_factory.mktemp("sockets")
    exe = tmp / "sockets"
    subprocess.run(["gcc", "-o", str(exe), str(FIXTURES / "programs" / "sockets.c")], check=True, capture_output=True)
    out = tmp / "sockets.json"
    code, _, err = run_cli(["scan", str(exe), "-f", "json", "-o", str(out), "--libc", "glibc", "--unikraft", "0.17.0"])
    assert code == 1, err
    return out


def run_cli(args: list[str]) -> tuple[int, str, str]:
    """Run ``uk-depscan`` in-process; return (exit code, stdout, stderr)."""
    from uk_depscan.cli.main import run

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = run(args)
    return code, out.getvalue(), err.getvalue()


def ldd(path: Path, env_extra: dict[str, str] | None = None) -> tuple[int, dict[str, str | None]]:
    """ld.so's own answer for a TRUSTED fixture built by the tests (never for scanned inputs)."""
    env = dict(os.environ, **(env_extra or {}))
    # not check=True: ldd's exit status is part of the answer (test_loader_fixtures' "fails" case)
    proc = subprocess.run(["ldd", str(path)], check=False, capture_output=True, text=True, env=env)
    found: dict[str, str | None] = {}
    for line in proc.stdout.splitlines():
        line = line.strip()
        if "=>" in line:
            name, rest = (s.strip() for s in line.split("=>", 1))
            target = rest.split(" (", 1)[0].strip()
            found[name] = None if target == "not found" else os.path.realpath(target)
        elif line.startswith("/"):
            p = line.split(" (", 1)[0]
            found[os.path.basename(p)] = os.path.realpath(p)
    return proc.returncode, found


WHEELS_HINT = (
    "real ML wheels not fetched: run `bash bench/fetch_wheels.sh` "
    "(or point UK_DEPSCAN_WHEELS at a directory of extracted wheels)"
)


@pytest.fixture(scope="session")
def real_wheels_dir() -> Path:
    """Extracted real ML wheels (bench/fetch_wheels.sh); tests using it skip when absent."""
    d = Path(os.environ.get("UK_DEPSCAN_WHEELS", REPO / "bench" / "wheels" / "x"))
    if not d.is_dir():
        pytest.skip(WHEELS_HINT)
    return d


def strace_syscalls(argv: list[str], tmp: Path) -> set[str]:
    """Syscall names a TRUSTED fixture program makes, traced with ``strace -f`` (skips without ptrace)."""
    need("strace")
    out = tmp / "trace.txt"
    # not check=True: a refused ptrace is a skip, decided below from strace's stderr
    proc = subprocess.run(["strace", "-f", "-qq", "-o", str(out), *argv], check=False, capture_output=True, text=True)
    if not out.exists() or "PTRACE" in proc.stderr.upper():
        pytest.skip(
            "strace cannot trace here (run where ptrace is allowed, e.g. a container with --cap-add SYS_PTRACE): "
            + proc.stderr.strip()[:120]
        )
    names = set()
    for line in out.read_text().splitlines():
        body = line.split(None, 1)[1] if line[:1].isdigit() else line
        head = body.split("(", 1)[0]
        if head.isidentifier() and "(" in body:
            names.add(head)
    return names
