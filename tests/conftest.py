"""Shared test helpers: compilers, fixture builds, the CLI run in-process."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

# hypothesis (test_channel_properties) keeps caches in ./.hypothesis, written when its decorators
# run at collection: tests write only in temporary directories, so point it at one, removed at exit
_HYPOTHESIS_HOME = tempfile.mkdtemp(prefix="uk-depscan-hypothesis-")
with contextlib.suppress(ImportError):
    from hypothesis.configuration import set_hypothesis_home_dir

    set_hypothesis_home_dir(_HYPOTHESIS_HOME)


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_HYPOTHESIS_HOME, ignore_errors=True)


REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures"
CROSS_CC = {"x86_64": "gcc", "aarch64": "aarch64-linux-gnu-gcc"}


def have(tool: str) -> bool:
    return shutil.which(tool) is not None


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
    if not have(cc):
        pytest.skip(f"{cc} not installed")
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
    proc = subprocess.run(["ldd", str(path)], capture_output=True, text=True, env=env)
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


@pytest.fixture(scope="session")
def real_wheels_dir() -> Path:
    """Extracted real ML wheels (bench/fetch_wheels.sh); tests using it skip when absent."""
    d = Path(os.environ.get("UK_DEPSCAN_WHEELS", REPO / "bench" / "wheels" / "x"))
    if not d.is_dir():
        pytest.skip(f"real wheels not present in {d} (run bench/fetch_wheels.sh)")
    return d


def strace_syscalls(argv: list[str], tmp: Path) -> set[str]:
    """Syscall names a TRUSTED fixture program makes, traced with ``strace -f`` (skips without ptrace)."""
    if not have("strace"):
        pytest.skip("strace not installed")
    out = tmp / "trace.txt"
    proc = subprocess.run(["strace", "-f", "-qq", "-o", str(out), *argv], capture_output=True, text=True)
    if not out.exists() or "PTRACE" in proc.stderr.upper():
        pytest.skip(f"strace unusable here: {proc.stderr.strip()[:120]}")
    names = set()
    for line in out.read_text().splitlines():
        body = line.split(None, 1)[1] if line[:1].isdigit() else line
        head = body.split("(", 1)[0]
        if head.isidentifier() and "(" in body:
            names.add(head)
    return names
