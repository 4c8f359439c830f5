"""Speed work that must not change an answer: the reach cache, the decoded name tables."""

from __future__ import annotations

import itertools
import json
import signal
import sqlite3
from pathlib import Path

import pytest
from conftest import run_cli
from helpers_syscalls import build_syscall_fixture

from uk_depscan.cleanup import WHEEL_PREFIX
from uk_depscan.store import identity
from uk_depscan.store.cache import CACHE_FILE, CacheStore
from uk_depscan.syscalls import reachcache

SOURCES = [("x86_64/direct.c", []), ("common/wrappers.c", [])]
ARGS = ["--format", "json", "--libc", "glibc"]


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_syscall_fixture("x86_64", tmp_path_factory.mktemp("speed") / "target", "-O2", SOURCES)


def _rows(db: Path, kind: str) -> list[tuple[str, str, int, bytes, bytes]]:
    """The cache rows of one kind (``reach``, ``paths``, ``syscalls``): key, object, size, meta, data."""
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT key, object, size, meta, data FROM entries WHERE key LIKE ?", (f"{kind}/%",)
        ).fetchall()


def _poisons(meta: bytes, data: bytes) -> list[tuple[str, bytes, bytes]]:
    """(what, meta, data): the index damaged, or one entry's JSON."""
    doc = json.loads(meta)
    out = [("not JSON", b"{", data), ("wrong format", json.dumps({**doc, "format": 99}).encode(), data)]
    lengths = [doc["lengths"][0] + 1, *doc["lengths"][1:]]
    out.append(("lengths off", json.dumps({**doc, "lengths": lengths}).encode(), data))
    offsets = [sum(doc["lengths"][:i]) for i in range(len(doc["lengths"]) + 1)]
    entries = [json.loads(data[a:b]) for a, b in itertools.pairwise(offsets)]
    k = next(i for i, v in enumerate(entries) if v and v[0] and v[1])
    for what, change in (
        ("unknown site kind", lambda v: [[[v[0][0][0], "nope", *v[0][0][2:]]], v[1]]),
        ("bool as number", lambda v: [[[True, *v[0][0][1:]]], v[1]]),
        ("import index out of range", lambda v: [v[0], [10**6]]),
        ("non-integer import", lambda v: [v[0], ["open@GLIBC_2.2.5"]]),
    ):
        raw = [json.dumps(change(v) if i == k else v, separators=(",", ":")).encode() for i, v in enumerate(entries)]
        index = json.dumps({**doc, "lengths": [len(r) for r in raw]}).encode()
        out.append((what, index, b"".join(raw)))
    return out


def test_reach_cache_is_only_an_accelerator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lib: Path) -> None:
    monkeypatch.setenv("UK_DEPSCAN_CACHE_DIR", str(tmp_path))
    code, ref, err = run_cli(["scan", str(lib), *ARGS, "--no-cache"])
    assert code in (0, 1), err
    assert run_cli(["scan", str(lib), *ARGS])[1] == ref  # cold: computes and stores the reaches
    rows = _rows(tmp_path / CACHE_FILE, "reach")
    assert len(rows) == 1, "the target's reaches were not stored"
    key, obj, size, meta, data = rows[0]
    identity._process_memo.clear()
    reachcache._process.clear()  # as in a new process: the memo comes from the cache
    code, warm, err = run_cli(["scan", str(lib), *ARGS])
    assert warm == ref and "warning" not in err.lower()
    for what, bad_meta, bad_data in _poisons(meta, data):
        CacheStore(tmp_path).put(key, obj, size, bad_meta, bad_data)  # a valid digest: only decoding can refuse it
        reachcache._process.clear()
        code, out, err = run_cli(["scan", str(lib), *ARGS])
        assert out == ref, what
        assert err.count("ignoring the cached reaches of") == 1, (what, err)
        reachcache._process.clear()
        code, out, err = run_cli(["scan", str(lib), *ARGS])  # rewritten: a clean warm hit again
        assert out == ref and "ignoring" not in err, what
        assert _rows(tmp_path / CACHE_FILE, "reach")[0][3:] == (meta, data), what


def _path_poisons(meta: bytes) -> list[tuple[str, bytes]]:
    """(what, meta): the document damaged, or one stored path made impossible in the call graph."""
    doc = json.loads(meta)
    q, path = next((q, v) for q, v in sorted(doc["paths"].items()) if v and len(v) > 1)
    target = int(q.split("|")[2])

    def one(value: object) -> bytes:
        return json.dumps({**doc, "paths": {**doc["paths"], q: value}}).encode()

    return [
        ("not JSON", b"{"),
        ("wrong format", json.dumps({**doc, "format": 99}).encode()),
        ("paths not an object", json.dumps({**doc, "paths": []}).encode()),
        ("path of strings", one([str(n) for n in path])),
        ("node out of range", one([*path[:-1], 10**9])),
        ("negative node", one([-1, *path[1:]])),
        ("not to its target", one(path[:-1])),
        ("a step that is no edge", one([path[-1], *path])),
        ("a node twice", one([*path[:-1], *path])),
        ("empty path", one([])),
        ("names not an object", json.dumps({**doc, "names": []}).encode()),
        ("a name not a string", json.dumps({**doc, "names": {**doc["names"], "0": 7}}).encode()),
    ] + ([("wrong target in the question", one([target + 1]))] if target + 1 != path[-1] else [])


def test_path_cache_is_only_an_accelerator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lib: Path) -> None:
    """The chain paths stored beside the scan: a warm run reads them instead of searching the call
    graph, and every damaged form of them is one warning, the paths recomputed, the entry rewritten."""
    from uk_depscan.store import cache as store_cache
    from uk_depscan.syscalls import pathcache

    monkeypatch.setenv("UK_DEPSCAN_CACHE_DIR", str(tmp_path))
    code, ref, err = run_cli(["scan", str(lib), *ARGS, "--no-cache"])
    assert code in (0, 1), err
    assert run_cli(["scan", str(lib), *ARGS])[1] == ref  # cold: computes and stores the paths
    rows = _rows(tmp_path / CACHE_FILE, "paths")
    assert len(rows) == 1, "the target's chain paths were not stored"
    key, obj, size, meta, data = rows[0]
    assert any(v and len(v) > 1 for v in json.loads(meta)["paths"].values()), "no function-level path stored"
    assert json.loads(meta)["names"], "no function name stored"
    pathcache._process.clear()
    reachcache._process.clear()
    code, warm, err = run_cli(["scan", str(lib), *ARGS])
    assert warm == ref and "warning" not in err.lower()
    for what, bad_meta in _path_poisons(meta):
        CacheStore(tmp_path).put(key, obj, size, bad_meta, data)  # a valid digest: only decoding can refuse it
        pathcache._process.clear()
        store_cache._warned.clear()  # as in a new process
        code, out, err = run_cli(["scan", str(lib), *ARGS])
        assert out == ref, what
        assert err.count("ignoring the cached chain paths of") == 1, (what, err)
        pathcache._process.clear()
        code, out, err = run_cli(["scan", str(lib), *ARGS])  # rewritten: a clean warm hit again
        assert out == ref and "ignoring" not in err, what
        assert _rows(tmp_path / CACHE_FILE, "paths")[0][3] == meta, what


def _zip_dir(src: Path, whl: Path) -> Path:
    import zipfile

    with zipfile.ZipFile(whl, "w", zipfile.ZIP_DEFLATED) as z:
        for p in sorted(src.rglob("*")):
            if p.is_file():
                z.write(p, p.relative_to(src).as_posix())
    return whl


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of several libraries, one needing another through $ORIGIN, plus a non-ELF."""
    from conftest import FIXTURES, compile_so

    d = tmp_path_factory.mktemp("tree") / "pkg"
    (d / "sub").mkdir(parents=True)
    prov = compile_so(d / "libprov.so", [FIXTURES / "loader" / "lib.c"], define="provided_func")
    compile_so(d / "sub" / "liba.so", [FIXTURES / "loader" / "weak.c"], link=[prov], runpath="$ORIGIN/..")
    compile_so(d / "libb.so", [FIXTURES / "loader" / "lib.c"])
    build_syscall_fixture("x86_64", d / "sys", "-O2", SOURCES)
    (d / "README").write_text("not an ELF")
    return d


@pytest.mark.parametrize("kind", ["directory", "wheel"])
def test_jobs_give_byte_identical_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tree: Path, kind: str
) -> None:
    """--jobs 1 and --jobs 2, cold and warm cache: the same bytes (targets merged in input order)."""
    monkeypatch.setenv("UK_DEPSCAN_CACHE_DIR", str(tmp_path / "cache"))
    target = str(tree if kind == "directory" else _zip_dir(tree, tmp_path / "pkg-1.0-py3-none-any.whl"))
    outs = []
    for jobs in ("1", "2", "2", "1"):
        code, out, err = run_cli(["scan", target, *ARGS, "--jobs", jobs, "-q"])
        assert code in (0, 1), err
        outs.append(out)
    assert len(json.loads(outs[0])["targets"]) >= 4
    assert outs[1] == outs[0] and outs[2] == outs[0] and outs[3] == outs[0]


def _stored_entries(db: Path) -> dict[str, tuple[str, ...]]:
    """What the cache holds per library: the reach entries' names, the chain paths' questions and
    named nodes."""
    out: dict[str, tuple[str, ...]] = {}
    for key, _, _, meta, _ in _rows(db, "reach"):
        out[key] = tuple(json.loads(meta)["entries"])
    for key, _, _, meta, _ in _rows(db, "paths"):
        doc = json.loads(meta)
        out[key] = (*sorted(doc["paths"]), *(f"name {n}" for n in sorted(doc["names"])))
    return out


@pytest.mark.parametrize("kind", ["directory", "wheel"])
def test_workers_reaches_are_stored_by_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tree: Path, kind: str
) -> None:
    """The reaches and chain paths a --jobs worker computes are handed to the process that runs the
    analysis, which stores them once for the run (uk_depscan.syscalls.memos): the cache then holds
    exactly what a --jobs 1 run stores, and a warm run finds every entry (nothing more is stored)."""
    target = str(tree if kind == "directory" else _zip_dir(tree, tmp_path / "pkg-1.0-py3-none-any.whl"))
    stored = {}
    for jobs in ("1", "2"):
        cache = tmp_path / f"cache{jobs}"
        monkeypatch.setenv("UK_DEPSCAN_CACHE_DIR", str(cache))
        code, _, err = run_cli(["scan", target, *ARGS, "--jobs", jobs, "-q"])
        assert code in (0, 1), err
        stored[jobs] = _stored_entries(cache / CACHE_FILE)
    assert len(stored["1"]) >= 4 and any(k.startswith("paths/") for k in stored["1"])
    assert stored["2"] == stored["1"]
    reachcache._process.clear()  # as in a new process
    code, _, err = run_cli(["scan", target, *ARGS, "--jobs", "2", "-q"])
    assert code in (0, 1), err
    assert _stored_entries(tmp_path / "cache2" / CACHE_FILE) == stored["1"]


def test_a_run_reads_each_scan_entry_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tree: Path) -> None:
    """A library every target needs (libc.so.6 here; libtorch_cpu.so's 20 MB entry under the torch
    wheel) is read from the cache, digest-checked and parsed once per run, not once per target; the
    next run reads it again."""
    import collections

    from uk_depscan.store.cache import CacheStore

    monkeypatch.setenv("UK_DEPSCAN_CACHE_DIR", str(tmp_path / "cache"))
    code, ref, err = run_cli(["scan", str(tree), *ARGS, "--jobs", "1", "-q"])  # fills the cache
    assert code in (0, 1), err
    reads: collections.Counter[str] = collections.Counter()
    get = CacheStore.get

    def counted(self: CacheStore, key: str, **kw: int) -> object:
        reads[key] += 1
        return get(self, key, **kw)

    monkeypatch.setattr(CacheStore, "get", counted)
    for _ in range(2):
        code, out, err = run_cli(["scan", str(tree), *ARGS, "--jobs", "1", "-q"])
        assert code in (0, 1) and out == ref, err
    scans = {k: n for k, n in reads.items() if k.startswith("syscalls/")}
    assert len(scans) >= 4 and set(scans.values()) == {2}, scans


@pytest.mark.parametrize("kind", ["directory", "wheel"])
def test_include_exclude_members(tmp_path: Path, tree: Path, kind: str) -> None:
    target = str(tree if kind == "directory" else _zip_dir(tree, tmp_path / "pkg-1.0-py3-none-any.whl"))
    code, out, err = run_cli(
        ["deps", target, "-f", "json", "--include", "lib*.so", "--exclude", "sub/*", "--exclude", "*-O2.so"]
    )
    assert code in (0, 1), err
    names = sorted(t["target"].rsplit("/", 1)[-1] for t in json.loads(out)["targets"])
    assert names == ["libb.so", "libprov.so"]
    code, _, err = run_cli(["deps", target, "--include", "nothing*"])
    assert code == 2 and "no ELF objects" in err


def test_jobs_must_be_positive(tree: Path) -> None:
    code, _, err = run_cli(["deps", str(tree), "--jobs", "0"])
    assert code == 2 and "--jobs 0" in err


def _session_members(sid: int) -> list[int]:
    """Processes of session ``sid`` still alive (zombies count as gone)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()  # after "(comm)": state ppid pgrp session ...
            if int(fields[3]) == sid and fields[0] != "Z":
                out.append(int(d.name))
    return out


def test_sigterm_with_jobs_leaves_no_worker(tmp_path: Path) -> None:
    """The parent's clean-up terminates the pool: no worker outlives an interrupted --jobs run."""
    import os
    import signal
    import subprocess
    import sys
    import time
    import zipfile

    host = ["/lib/x86_64-linux-gnu/libc.so.6", "/lib/x86_64-linux-gnu/libstdc++.so.6"]
    if not all(os.path.isfile(p) for p in host):
        pytest.skip(f"needs the Debian x86-64 multiarch libraries {host} (apt-get install libc6 libstdc++6)")
    whl = tmp_path / "slow-1.0-py3-none-any.whl"
    with zipfile.ZipFile(whl, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in host:
            zf.write(p, f"pkg/{os.path.basename(p)}")
    env = dict(os.environ, UK_DEPSCAN_CACHE_DIR=str(tmp_path / "cache"), TMPDIR=str(tmp_path))
    proc = subprocess.Popen(
        [sys.executable, "-m", "uk_depscan", "scan", str(whl), "--jobs", "2", "-f", "json"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    end = time.monotonic() + 60
    while len(_session_members(proc.pid)) < 3 and time.monotonic() < end and proc.poll() is None:
        time.sleep(0.05)  # the parent and its two workers
    if proc.poll() is not None:
        pytest.fail(f"finished before it could be interrupted: {proc.communicate()}")
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    time.sleep(0.5)
    assert _session_members(proc.pid) == [], "a worker outlived its parent"
    assert not list(tmp_path.glob(WHEEL_PREFIX + "*")), "an extraction directory was left behind"


@pytest.mark.parametrize("kind", ["directory", "wheel"])
def test_shared_objects_are_each_scanned_once_largest_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tree: Path, kind: str
) -> None:
    """--jobs first scans the distinct objects of all closures (libprov.so is a target and liba.so's
    dependency: listed once), largest first; the libc family only when the libc model scans it.
    Each is a file a worker can open, a wheel member's under its extracted path (its report shows
    ``x.whl!/member``: taken for a path, it was never scanned first, and the torch wheel's
    libtorch_cpu.so target was sent to the workers that do not inherit its scan, which scanned the
    434 MB again)."""
    import os

    from uk_depscan.inputs import collect_inputs
    from uk_depscan.loader.paths import SearchConfig
    from uk_depscan.model import LibcModel
    from uk_depscan.pipeline import Options, _shared_objects, _Work

    target = str(tree if kind == "directory" else _zip_dir(tree, tmp_path / "pkg-1.0-py3-none-any.whl"))

    def shared(**opts: object) -> list[tuple[str, int]]:
        with collect_inputs([target]) as inputs:
            objects, uses = _shared_objects(_Work(SearchConfig(), inputs, Options(**opts), ()))  # type: ignore[arg-type]
            assert len(uses) == len(inputs.targets) and set().union(*uses) == set(objects)
            assert all(os.path.isfile(p) for p in objects), objects
            if objects:  # each target scans its own file
                assert all(os.path.realpath(t.path) in u for t, u in zip(inputs.targets, uses, strict=True))
            return [(os.path.basename(p), os.path.getsize(p)) for p in objects]

    auto = shared()
    assert len(auto) == len(set(auto))
    assert [size for _, size in auto] == sorted((size for _, size in auto), reverse=True)
    names = [name for name, _ in auto]
    assert {"libprov.so", "liba.so", "libb.so"} <= set(names) and "libc.so.6" in names
    assert names.count("libprov.so") == 1
    assert "libc.so.6" not in [name for name, _ in shared(libc_model=LibcModel.GLIBC)]
    assert shared(no_cache=True) == [] and shared(syscalls=False) == []
    # the scan cache then holds one scan per distinct object: nothing was scanned twice
    monkeypatch.setenv("UK_DEPSCAN_CACHE_DIR", str(tmp_path / "cache"))
    code, _, err = run_cli(["scan", target, "-f", "json", "--jobs", "2", "-q"])
    assert code in (0, 1), err
    assert len(_rows(tmp_path / "cache" / CACHE_FILE, "syscalls")) == len(auto)


def test_no_mapped_file_outlives_its_target(tree: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each target's ElfFiles are closed when its report is made: with the cyclic collector not
    running (paused during each target), an ElfFile and its derived tables form a cycle that kept
    every target's maps alive — one process grew to 3.4 GB on the 136 targets of the torch wheel."""
    import gc

    from uk_depscan.elf.file import ElfFile
    from uk_depscan.pipeline import Options, analyze

    monkeypatch.setenv("UK_DEPSCAN_CACHE_DIR", str(tmp_path / "cache"))
    gc.collect()
    was = gc.isenabled()
    gc.disable()
    try:
        report = analyze([str(tree)], options=Options(jobs=1))
        mapped = [o for o in gc.get_objects() if isinstance(o, ElfFile) and "_map" in o.__dict__]
    finally:
        if was:
            gc.enable()
    assert len(report.targets) >= 4
    assert mapped == [], [o.name for o in mapped]


@pytest.mark.parametrize("member", ["", "sub/liba.so", "sys/libsys-x86_64-O2.so"])
def test_largest_object_prefilter_in_the_pool_is_the_same_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tree: Path, member: str
) -> None:
    """--jobs with a large object (thresholds lowered so the fixtures count as large): its prefilter
    ranges run in the pool's workers, each building its own scanner or inheriting the prebuilt
    one, while this process finishes the scan (a directory: the workers then analyse the targets;
    one target: they scan its other objects, and this process analyses it, and a free worker
    tracks the scan's syscall() calls); the report is the bytes of --jobs 1."""
    from uk_depscan.syscalls import scan as scan_mod

    monkeypatch.setattr(scan_mod, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(scan_mod, "CHUNK", 512)
    used: list[int] = []
    real = scan_mod.prefilter_executor

    def spy(run):  # type: ignore[no-untyped-def]
        def counted(path, tasks, meanwhile):  # type: ignore[no-untyped-def]
            used.append(len(tasks))
            return run(path, tasks, meanwhile)

        return real(counted)

    monkeypatch.setattr(scan_mod, "prefilter_executor", spy)
    tracked: list[int] = []  # per tracker call: how many calls its worker answered for
    real_tracker = scan_mod.call_tracker

    def tracker_spy(run):  # type: ignore[no-untyped-def]
        def counted(path, calls):  # type: ignore[no-untyped-def]
            fetch = run(path, calls)

            def answer():  # type: ignore[no-untyped-def]
                got = fetch()
                tracked.append(len(got))
                return got

            return answer

        return real_tracker(counted)

    monkeypatch.setattr(scan_mod, "call_tracker", tracker_spy)
    outs = []
    for jobs, cache in (("1", "a"), ("2", "b"), ("2", "b")):
        monkeypatch.setenv("UK_DEPSCAN_CACHE_DIR", str(tmp_path / cache))
        code, out, err = run_cli(["scan", str(tree / member), *ARGS, "--jobs", jobs, "-q"])
        assert code in (0, 1), err
        outs.append(out)
    assert len(used) == 1 and used[0] >= scan_mod.PIECES  # cold --jobs 2 only: split into ranges; warm: no scan
    assert outs[1] == outs[0] and outs[2] == outs[0]
    # a lone target's worker tracked the syscall() calls (liba.so makes none; a directory's workers are busy)
    assert (len(tracked) == 1 and tracked[0] > 0) if member.startswith("sys/") else not tracked
    assert not scan_mod._PREBUILT and not scan_mod._WORKER_SCANNER  # released in this process


_REAL: dict[str, object] = {}  # the function a test replaced, for _dies_once (inherited by the forked workers)


def _dies_once(arg: object) -> object:
    """A pool task that kills its worker (the out-of-memory killer's SIGKILL) the first time any
    process runs it, then behaves as the function it replaced."""
    import os

    try:
        os.close(os.open(os.environ["UK_DEPSCAN_TEST_DIE_ONCE"], os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return _REAL["run"](arg)  # type: ignore[operator]
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("not reached")


def _waited_for_ever(_signum: int, _frame: object) -> None:
    raise AssertionError("the run waited for a result that will never come")


@pytest.mark.parametrize("victim", ["prefilter_task", "track_task", "_prescan_all"])
def test_a_killed_worker_of_a_lone_target_leaves_the_same_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tree: Path, victim: str
) -> None:
    """A worker of the lone large target's pool killed from outside (one of the prefilter's ranges,
    the tracked calls, or the scans of the other objects): the pool never answers for its task, and
    the run waited for ever.  Now the wait fails at once, what was lost is done again by this
    process, and the report is --jobs 1's."""
    from uk_depscan import pipeline
    from uk_depscan.syscalls import scan as scan_mod

    monkeypatch.setattr(scan_mod, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(scan_mod, "CHUNK", 512)
    target = str(tree / "sys" / "libsys-x86_64-O2.so")
    monkeypatch.setenv("UK_DEPSCAN_CACHE_DIR", str(tmp_path / "a"))
    code, expected, err = run_cli(["scan", target, *ARGS, "--jobs", "1", "-q"])
    assert code in (0, 1), err
    marker = tmp_path / "killed"
    monkeypatch.setenv("UK_DEPSCAN_TEST_DIE_ONCE", str(marker))
    module = pipeline if victim == "_prescan_all" else scan_mod
    monkeypatch.setitem(_REAL, "run", getattr(module, victim))
    monkeypatch.setattr(module, victim, _dies_once)
    monkeypatch.setenv("UK_DEPSCAN_CACHE_DIR", str(tmp_path / "b"))
    signal.signal(signal.SIGALRM, _waited_for_ever)
    signal.alarm(120)
    try:
        code2, out, err2 = run_cli(["scan", target, *ARGS, "--jobs", "2", "-q"])
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
    assert marker.exists()  # a worker was killed
    assert (code2, out, err2) == (code, expected, err)


def test_second_pool_that_cannot_start_leaves_the_targets_to_the_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tree: Path
) -> None:
    """--jobs over a directory with a large object forks a second pool for the targets that need
    it; when that pool cannot start (MemoryError: no room for its workers), the first pool's
    workers analyse them: the same bytes as --jobs 1."""
    from uk_depscan import pipeline
    from uk_depscan.syscalls import scan as scan_mod

    monkeypatch.setattr(scan_mod, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(scan_mod, "CHUNK", 512)
    real = pipeline.forked_pool
    calls: list[int] = []

    def second_fails(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 2:
            raise MemoryError("cannot start 2 worker processes: can't start new thread")
        return real(*args, **kwargs)

    outs = []
    for jobs, cache in (("1", "a"), ("2", "b")):
        monkeypatch.setenv("UK_DEPSCAN_CACHE_DIR", str(tmp_path / cache))
        if jobs == "2":
            monkeypatch.setattr(pipeline, "forked_pool", second_fails)
        code, out, err = run_cli(["scan", str(tree), *ARGS, "--jobs", jobs, "-q"])
        assert code in (0, 1), err
        outs.append(out)
    assert len(calls) == 2  # the second pool was asked for, and refused
    assert outs[1] == outs[0]


@pytest.mark.parametrize("member", ["", "sub/liba.so"])
@pytest.mark.parametrize("store_pool_starts", [True, False])
def test_large_scan_is_stored_by_a_forked_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tree: Path, member: str, store_pool_starts: bool
) -> None:
    """--jobs: the large object's cache entry is written by a worker forked after its scan (the
    second pool of a directory, a one-worker pool for a lone target), which inherits the scan,
    while this process goes on; when no such worker can start, this process writes it.  Either
    way the entry is there: the warm run scans nothing and gives the same bytes."""
    import os
    import time

    from uk_depscan import pipeline
    from uk_depscan.syscalls import cache as scan_cache
    from uk_depscan.syscalls import scan as scan_mod

    monkeypatch.setattr(scan_mod, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(scan_mod, "CHUNK", 512)
    monkeypatch.setenv("UK_DEPSCAN_CACHE_DIR", str(tmp_path / "cache"))
    log = tmp_path / "stores"
    real_store, real_executor, real_pool = scan_cache.store_scan, scan_mod.prefilter_executor, pipeline.forked_pool
    large: list[str] = []

    parent = os.getpid()

    def store(slot, elf, scan, store=None):  # type: ignore[no-untyped-def]
        if os.getpid() != parent:
            time.sleep(1.0)  # a slow worker: the analysis here must not miss the entry and scan again
        with open(log, "a") as fh:  # from whichever process writes it
            fh.write(f"{os.getpid()} {elf.path}\n")
        real_store(slot, elf, scan, store)

    def executor(run):  # type: ignore[no-untyped-def]
        def recorded(path, tasks, meanwhile):  # type: ignore[no-untyped-def]
            large.append(path)
            return run(path, tasks, meanwhile)

        return real_executor(recorded)

    pools: list[int] = []

    def pool(*args, **kwargs):  # type: ignore[no-untyped-def]
        pools.append(1)
        if len(pools) == 2 and not store_pool_starts:
            raise MemoryError("cannot start 1 worker processes: can't start new thread")
        return real_pool(*args, **kwargs)

    monkeypatch.setattr(scan_cache, "store_scan", store)
    monkeypatch.setattr(scan_mod, "prefilter_executor", executor)
    monkeypatch.setattr(pipeline, "forked_pool", pool)
    outs = []
    for _ in range(2):
        code, out, err = run_cli(["scan", str(tree / member), *ARGS, "--jobs", "2", "-q"])
        assert code in (0, 1), err
        outs.append(out)
    assert len(large) == 1 and outs[1] == outs[0]  # cold: one large scan; warm: it was stored
    writers = [int(line.split(" ", 1)[0]) for line in log.read_text().splitlines() if line.endswith(f" {large[0]}")]
    assert len(writers) == 1
    assert (writers[0] != os.getpid()) is store_pool_starts
    assert not scan_mod._PENDING


@pytest.mark.parametrize(("env", "expected"), [(None, "False"), ("1", "True"), ("0", "False")])
def test_command_line_turns_off_numpy_huge_pages(env, expected):
    """uk_depscan.cli.main.small_pages: numpy's madvise(MADV_HUGEPAGE) off in the command's process
    (and the pools it forks) unless NUMPY_MADVISE_HUGEPAGE says otherwise.  Checked through numpy's
    own switch, which returns the previous setting."""
    import os
    import subprocess
    import sys

    code = (
        "from uk_depscan.cli.main import small_pages; small_pages()\n"
        "try:\n    from numpy._core import multiarray\n"
        "except ImportError:\n    from numpy.core import multiarray\n"
        "print(multiarray._set_madvise_hugepage(False))\n"
    )
    environ = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    if env is not None:
        environ["NUMPY_MADVISE_HUGEPAGE"] = env
    out = subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == expected


@pytest.mark.parametrize("env", [None, "MALLOC_ARENA_MAX"])
def test_command_line_keeps_freed_memory_for_reuse(env: str | None) -> None:
    """uk_depscan.cli.main.reused_heap: a freed 24 MB block (the size of the scan's temporaries)
    stays in the heap for the next allocation instead of going back to the kernel, unless a
    MALLOC_* variable says how malloc should behave.  Observed through the process's resident size."""
    import os
    import subprocess
    import sys

    code = (
        "import os\nfrom uk_depscan.cli.main import reused_heap; reused_heap()\n"
        "def rss(): return int(open('/proc/self/statm').read().split()[1]) * os.sysconf('SC_PAGE_SIZE')\n"
        "block = b'x' * (24 << 20); before = rss(); del block\n"
        "print(round((before - rss()) / (1 << 20)))\n"
    )
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    if env is not None:
        environ[env] = "8"
    out = subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True, text=True, check=True)
    returned = int(out.stdout)  # MB given back to the kernel by the free
    assert returned < 4 if env is None else returned >= 20


def test_handed_entries_join_the_memo_this_process_loaded(tmp_path: Path) -> None:
    """A worker's new entries go into the memo this process already loaded for that library, even
    one with no entries yet (a memo with none is falsy): one memo, one write."""
    from uk_depscan.store.cache import CacheStore
    from uk_depscan.syscalls import memos

    store = CacheStore(tmp_path)
    key = "syscalls/6/x86_64/" + "a" * 64
    memo = reachcache.shared_memo("libx.so", key, "a" * 64, 100, ("open@GLIBC_2.2.5",), store)
    try:
        assert len(memo) == 0 and not memo.dirty
        where = memos.Where(key, "a" * 64, 100, str(tmp_path))
        memos.adopt_unsaved([memos.Unsaved("reach", "libx.so", where, {"entry": b"null"})])
        assert memo.dirty and "entry" in memo and memo["entry"] is None
        assert not reachcache._REGISTRY._handed
    finally:
        reachcache._process.clear()
        reachcache._REGISTRY._handed.clear()
