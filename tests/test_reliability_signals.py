"""Signals and kills: nothing left behind, a running scan never disturbed, reruns byte-identical.

The scans here run as real processes (signals are delivered to a process).  The slow wheel holds
copies of the host's libc and libstdc++ and a fixture, so a cold scan lasts seconds.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
import zipfile
from collections import Counter
from pathlib import Path

import pytest
from conftest import FIXTURES, compile_so

from uk_depscan.cleanup import OWNER_FILE, WHEEL_PREFIX, sweep_stale, temp_base, write_output
from uk_depscan.store.cache import CACHE_FILE

HOST_LIBS = ["/lib/x86_64-linux-gnu/libc.so.6", "/lib/x86_64-linux-gnu/libstdc++.so.6"]


def _env(tmp: Path, cache: Path) -> dict[str, str]:
    tmp.mkdir(parents=True, exist_ok=True)
    return dict(os.environ, TMPDIR=str(tmp), UK_DEPSCAN_CACHE_DIR=str(cache), OPENBLAS_NUM_THREADS="1")


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "uk_depscan", *args]


def _extraction_dirs(tmp: Path) -> list[Path]:
    return sorted(tmp.glob(WHEEL_PREFIX + "*"))


def _wait_for(predicate, proc: subprocess.Popen, timeout: float = 60.0) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.01)
    return False


@pytest.fixture(scope="module")
def slow_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    missing = [p for p in HOST_LIBS if not os.path.isfile(p)]
    if missing:
        pytest.skip(
            f"needs the Debian x86-64 libc6 and libstdc++6 at their multiarch paths (missing: {missing}): "
            "run on Debian/Ubuntu x86-64 with apt-get install libc6 libstdc++6"
        )
    d = tmp_path_factory.mktemp("slow")
    lib = compile_so(d / "libfix.so", [FIXTURES / "loader" / "lib.c"])
    whl = d / "slow-1.0-py3-none-any.whl"
    with zipfile.ZipFile(whl, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in HOST_LIBS:
            zf.write(p, f"pkg/{os.path.basename(p)}")
        zf.write(lib, "pkg/libfix.so")
        # Copies of libc with a few bytes appended after the section headers: still valid ELF, but
        # each has its own content identity, so each is scanned — a run long enough (seconds, even
        # as scans get faster) for a signal sent at a random moment to land inside it.
        libc = Path(HOST_LIBS[0]).read_bytes()
        for i in range(6):
            zf.writestr(f"pkg/copy{i}/libc.so.6", libc + f"copy {i}\n".encode())
    return whl


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name)
def test_signal_during_a_wheel_scan_leaves_nothing_behind(slow_wheel: Path, tmp_path: Path, sig: int) -> None:
    tmp, out = tmp_path / "t", tmp_path / "out" / "report.json"
    out.parent.mkdir()
    proc = subprocess.Popen(
        _cli("scan", str(slow_wheel), "--format", "json", "-o", str(out)),
        env=_env(tmp, tmp_path / "cache"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert _wait_for(lambda: any((d / "pkg").is_dir() for d in _extraction_dirs(tmp)), proc), proc.communicate()
    time.sleep(random.Random(sig).uniform(0.0, 0.5))
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, (proc.returncode, stderr)
    assert (
        stderr.strip().splitlines()[-1]
        == f"uk-depscan: interrupted by {signal.Signals(sig).name}; temporary files removed"
    )
    assert "Traceback" not in stderr and stdout == ""
    assert list(tmp.iterdir()) == []  # no extraction directory, nothing else
    assert list(out.parent.iterdir()) == []  # no report, no partial report


@pytest.mark.slow  # about 5 s here: several whole runs, one killed
def test_sigkill_leftovers_are_removed_by_the_next_run_only_when_unlocked(slow_wheel: Path, tmp_path: Path) -> None:
    tmp = tmp_path / "t"
    env = _env(tmp, tmp_path / "cache")
    proc = subprocess.Popen(_cli("deps", str(slow_wheel)), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert _wait_for(lambda: any((d / OWNER_FILE).exists() for d in _extraction_dirs(tmp)), proc)
    proc.kill()
    proc.wait()
    (stale,) = _extraction_dirs(tmp)
    # the next run removes it (its lock is free) and makes its own
    running = subprocess.Popen(
        _cli("scan", str(slow_wheel), "--format", "json"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert _wait_for(lambda: bool(_extraction_dirs(tmp)) and not stale.exists(), running)
    assert _wait_for(lambda: any((d / OWNER_FILE).exists() for d in _extraction_dirs(tmp)), running)
    (live,) = _extraction_dirs(tmp)
    # a third run while the second is still scanning: the second one's directory is held, so left alone
    quick = subprocess.run(
        _cli("deps", str(slow_wheel), "--format", "json"), env=env, capture_output=True, text=True, check=False
    )
    assert quick.returncode in (0, 1), quick.stderr
    assert live.exists() or running.poll() is not None, "a running scan's directory is never removed"
    assert running.poll() is None, "the scan should still be running here (make the wheel slower?)"
    out, err = running.communicate(timeout=300)
    assert running.returncode in (0, 1), err
    assert len(json.loads(out)["targets"]) == 3 + 6  # libc, libstdc++, libfix and the six libc copies
    assert _extraction_dirs(tmp) == []


def test_sweep_takes_only_free_locks(tmp_path: Path) -> None:
    held, free, young, old = (tmp_path / f"{WHEEL_PREFIX}{n}" for n in ("held", "free", "young", "old"))
    for d in (held, free, young, old):
        d.mkdir()
    for d in (held, free):
        (d / OWNER_FILE).write_text("1\n")
    fd = os.open(held, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another open file description: the sweeper's flock conflicts
    past = time.time() - 3600
    os.utime(old, (past, past))
    try:
        removed = sweep_stale(base=str(tmp_path))
    finally:
        os.close(fd)
    assert sorted(removed) == sorted([str(free), str(old)])
    assert held.exists() and young.exists()


def test_write_output_is_all_or_nothing(tmp_path: Path) -> None:
    target = tmp_path / "r.json"
    target.write_text("old")
    os.chmod(target, 0o640)
    write_output(target, "new")
    assert target.read_text() == "new" and (target.stat().st_mode & 0o777) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]  # no temporary file left
    link = tmp_path / "link.json"
    os.symlink(target, link)
    write_output(link, "through the link")
    assert link.is_symlink() and target.read_text() == "through the link"
    write_output(Path("/dev/null"), "into a device, in place")  # never renamed over a device node
    assert Path("/dev/null").is_char_device()


# -- kill -9 at random moments of cold scans, then a rerun that must be byte-identical --------------
KILLS = 30


def _cache_state(cache: Path) -> str:
    db = cache / CACHE_FILE
    if not db.exists():
        return "no database yet"
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as c:
            n = c.execute("SELECT count(*) FROM entries").fetchone()[0]
    except sqlite3.Error as err:
        return f"database unreadable ({err})"
    return f"database with {n} entries"


@pytest.mark.slow
def test_kill_9_at_random_moments_then_rerun_is_byte_identical(tmp_path: Path) -> None:
    src = tmp_path / "k.c"
    src.write_text(
        "#define _GNU_SOURCE\n#include <unistd.h>\n#include <sys/syscall.h>\n#include <stdio.h>\n"
        "long k(void) { return syscall(SYS_gettid) + 1; }\nint p(const char *s) { return puts(s); }\n"
    )
    lib = tmp_path / "libk.so"
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", str(lib), str(src)], check=True)
    args = ("scan", str(lib), "--format", "json")  # --libc auto: the host's libc is scanned (cold) too
    ref = subprocess.run(
        _cli(*args, "--no-cache"), env=_env(tmp_path / "t", tmp_path / "c0"), capture_output=True, check=False
    )
    assert ref.returncode in (0, 1), ref.stderr
    start = time.monotonic()
    cold = subprocess.run(_cli(*args), env=_env(tmp_path / "t", tmp_path / "c1"), capture_output=True, check=False)
    duration = time.monotonic() - start
    assert cold.stdout == ref.stdout
    rng = random.Random(20240611)
    tally: Counter[str] = Counter()
    worst = 0.0
    for i in range(KILLS):
        cache = tmp_path / f"kill{i}"
        env = _env(tmp_path / "t", cache)
        proc = subprocess.Popen(_cli(*args), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.05, duration))
        proc.kill()
        proc.wait()
        state = _cache_state(cache) if proc.returncode == -signal.SIGKILL else "finished before the kill"
        t0 = time.monotonic()
        rerun = subprocess.run(_cli(*args), env=env, capture_output=True, check=False)
        worst = max(worst, time.monotonic() - t0)
        assert rerun.stdout == ref.stdout, (i, state, rerun.stderr[-400:])
        assert b"Traceback" not in rerun.stderr and b"WARNING" not in rerun.stderr, (i, state, rerun.stderr[-400:])
        tally[state] += 1
    assert list((tmp_path / "t").iterdir()) == []
    print(
        f"\nkill -9 loop: cold scan {duration:.1f} s, {KILLS} kills, all reruns identical; longest rerun {worst:.1f} s"
    )
    print("  state at the kill:", dict(sorted(tally.items())))


def test_temp_base_chooses_like_tempfile_without_writing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Finding the temporary directory writes nothing into it: tempfile.gettempdir()'s probe file
    (a random 8-character name, created then removed) is what a SIGKILL at that moment left behind
    in the kill-and-rerun test.  The choice is tempfile's: $TMPDIR when usable, else the next one."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    before = sorted(tmp_path.iterdir())
    assert temp_base() == str(tmp_path) == tempfile.gettempdir()
    monkeypatch.setattr(tempfile, "tempdir", None)
    monkeypatch.setenv("TMPDIR", str(tmp_path / "missing"))
    assert temp_base() != str(tmp_path / "missing")
    assert sorted(tmp_path.iterdir()) == before


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the swallowed exception itself
def test_a_swallowed_interruption_still_stops_the_run() -> None:
    """SIGTERM whose exception CPython drops ("Exception ignored", as in the at-fork hook logging
    runs right after --jobs forks its pool): the next check raises it again, and nothing after the
    guarded block sees it."""
    from uk_depscan.cleanup import Interrupted, check_interrupted, signals_cleaned_up

    class SignalOnCollect:
        def __del__(self) -> None:
            os.kill(os.getpid(), signal.SIGTERM)  # the handler's Interrupted is raised in __del__: ignored

    with signals_cleaned_up():
        SignalOnCollect()  # collected at once (reference count 0): the exception is swallowed here
        with pytest.raises(Interrupted) as stop:
            check_interrupted()
        assert stop.value.exit_code == 128 + signal.SIGTERM
    check_interrupted()  # outside the run: handled, nothing raised
