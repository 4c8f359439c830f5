"""One large object's scan: the prefilter split over forked processes, and the scan that runs
while a thread hashes the file.  Both are meant for libtorch_cpu.so-sized files; here their size
thresholds are lowered so that a fixture compiled at test time takes the same code paths."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from helpers_syscalls import build_syscall_fixture

from uk_depscan.elf.file import open_elf
from uk_depscan.store.identity import object_identity
from uk_depscan.syscalls import scan as scan_mod
from uk_depscan.syscalls.processes import processes, scan_processes


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    return build_syscall_fixture("x86_64", tmp_path_factory.mktemp("sys-x86_64"))


def _body(s: scan_mod.LibraryScan) -> dict:
    body = s.to_json()
    body["stats"] = {k: v for k, v in body["stats"].items() if not k.startswith("t_")}  # timings vary
    return body


def _graph(s: scan_mod.LibraryScan) -> tuple:
    g = s.graph
    arrays = [getattr(g, f).tolist() for f in ("func_starts", "indptr", "indices", "data_starts")]
    return (*arrays, g.import_keys)


def test_prefilter_over_processes_is_the_serial_scan(lib, monkeypatch):
    # small chunks, so that the fixture's .text makes several chunks of several ranges each
    monkeypatch.setattr(scan_mod, "CHUNK", 512)
    monkeypatch.setattr(scan_mod, "PARALLEL_MIN_BYTES", 0)
    pools = []
    real = scan_mod._in_pool
    monkeypatch.setattr(scan_mod, "_in_pool", lambda *a: pools.append(a[1]) or real(*a))
    with open_elf(lib) as elf:
        serial = scan_mod._scan(elf, "")
        assert not pools
        with scan_processes(2):
            parallel = scan_mod._scan(elf, "")
    assert pools == [2]
    assert serial.stats["branch_candidates"] > 0 and serial.sites
    assert _body(parallel) == _body(serial)
    assert _graph(parallel) == _graph(serial)
    assert processes() == 1  # the setting ends with its block


@pytest.mark.parametrize("route", ["shared memory", "some slots too small", "slots too small", "no shared memory"])
def test_pool_results_through_shared_memory_or_the_pipe(lib, monkeypatch, route):
    """The workers put their ranges' findings in the shared memory they inherit (_Arena); a range
    that does not fit its slot, or every range when the mapping cannot be made, comes back through
    the pipe.  Each way the scan is the serial one."""
    monkeypatch.setattr(scan_mod, "CHUNK", 512)
    monkeypatch.setattr(scan_mod, "PARALLEL_MIN_BYTES", 0)
    if route.endswith("slots too small"):
        monkeypatch.setattr(scan_mod, "ARENA_BYTES_PER_BYTE", 0)
        # a range's slot holds its groups' padding (6 groups x 5 fields x 8 bytes) and two candidates
        monkeypatch.setattr(scan_mod, "ARENA_SLOT_MIN", 6 * 5 * 8 + 2 * 17 if route.startswith("some") else 0)
    if route == "no shared memory":

        def no_room(size):
            raise OSError(12, "Cannot allocate memory")

        monkeypatch.setattr(scan_mod, "_shared_mapping", no_room)
    taken, made = [], []
    real_view, real_make = scan_mod._Arena.view, scan_mod._Arena.make
    monkeypatch.setattr(scan_mod._Arena, "view", lambda self, *a: taken.append(a[0]) or real_view(self, *a))
    monkeypatch.setattr(scan_mod._Arena, "make", classmethod(lambda cls, *a: made.append(real_make(*a)) or made[-1]))
    with open_elf(lib) as elf:
        serial = scan_mod._scan(elf, "")
        assert not made  # the serial scan makes none
        with scan_processes(2):
            parallel = scan_mod._scan(elf, "")
    assert _body(parallel) == _body(serial)
    assert _graph(parallel) == _graph(serial)
    assert len(made) == 1
    with open_elf(lib) as elf:
        tasks = len(scan_mod._Scanner(elf).prefilter_tasks())
    assert tasks >= 2 * scan_mod.PIECES
    if route == "shared memory":
        assert made[0] is not None and len(taken) == tasks  # every range, not one through the pipe
        with pytest.raises(ValueError):  # released once read
            made[0].mem.read(1)
    elif route == "some slots too small":  # the two routes in one scan
        assert made[0] is not None and 0 < len(taken) < tasks
    elif route == "slots too small":
        assert made[0] is not None and not taken
    else:
        assert made[0] is None and not taken


def test_chunking_does_not_change_the_scan(lib, monkeypatch):
    with open_elf(lib) as elf:
        whole = scan_mod._scan(elf, "")
        monkeypatch.setattr(scan_mod, "CHUNK", 256)
        chunked = scan_mod._scan(elf, "")
    # the prefilter's order differs; what the scan finds does not
    assert sorted(map(str, _body(chunked)["sites"])) == sorted(map(str, _body(whole)["sites"]))
    assert _graph(chunked) == _graph(whole)


def test_sorted_unique_is_np_unique():
    from uk_depscan.elf.frames import sorted_unique

    rng = np.random.default_rng(7)
    for n in (0, 1, 2, 1000):
        a = rng.integers(0, 50, n).astype(np.uint64)
        got = sorted_unique(a)
        assert got.dtype == a.dtype and got.tolist() == np.unique(a).tolist()


def test_scan_while_hashing_stores_and_reuses(lib, tmp_path, monkeypatch):
    monkeypatch.setenv("UK_DEPSCAN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(scan_mod, "SPECULATE_MIN_BYTES", 0)
    speculated = []
    real = scan_mod._scan_while_hashing
    monkeypatch.setattr(scan_mod, "_scan_while_hashing", lambda elf: speculated.append(elf.name) or real(elf))
    with open_elf(lib) as elf:
        cold = scan_mod.scan_library(elf)
        plain = scan_mod._scan(elf, cold.cache_key)
    assert len(speculated) == 1 and not cold.from_cache
    assert cold.cache_key.startswith("syscalls/") and cold.cache_key.endswith(object_identity(lib).sha256)
    assert _body(cold) == _body(plain)
    with open_elf(lib) as elf:  # the same file again in this process: the scan it just made
        assert scan_mod.scan_library(elf) is cold
    scan_mod._FRESH.clear()  # as in another process
    with open_elf(lib) as elf:  # the same file: its digest is memoised, the entry is used
        warm = scan_mod.scan_library(elf)
    assert len(speculated) == 1 and warm.from_cache and warm.cache_key == cold.cache_key
    # the same bytes under another name: an unknown stamp, so a speculative scan, then a cache hit
    copy = tmp_path / "copy.so"
    shutil.copyfile(lib, copy)
    with open_elf(copy) as elf:
        again = scan_mod.scan_library(elf)
    assert len(speculated) == 2 and again.from_cache and again.cache_key == cold.cache_key
    assert [s.to_json() for s in again.sites] == [s.to_json() for s in cold.sites]


@pytest.fixture(scope="module")
def requests_lib(tmp_path_factory):
    """ioctl/fcntl/prctl/setsockopt calls whose request codes the scan tracks."""
    import subprocess

    from conftest import FIXTURES, need

    need("gcc")
    out = tmp_path_factory.mktemp("requests") / "librequests.so"
    src = FIXTURES / "requests" / "requests.c"
    subprocess.run(["gcc", "-shared", "-fPIC", "-O1", "-o", str(out), str(src)], check=True, capture_output=True)
    return out


@pytest.mark.parametrize("which", ["syscall() calls", "request codes"])
@pytest.mark.parametrize("route", ["worker", "worker fails", "short answer"])
def test_calls_tracked_by_a_worker_are_this_process_tracking(lib, requests_lib, monkeypatch, which, route):
    """The calls whose argument the scan tracks (syscall()'s number, request codes) go to a pool
    worker when one is offered (call_tracker: the lone target's idle worker); the scan is the one
    that tracks them here.  A worker that fails, or answers for fewer calls than asked, leaves the
    tracking to this process, with the same result."""
    from uk_depscan.cleanup import forked_pool, pool_results

    path = lib if which == "syscall() calls" else requests_lib
    with open_elf(path) as elf:
        alone = scan_mod._scan(elf, "")
    here: list[int] = []  # calls tracked in this process (the worker's list is its own copy)
    real_track = scan_mod._track_call
    monkeypatch.setattr(scan_mod, "_track_call", lambda sc, addr, *a: here.append(addr) or real_track(sc, addr, *a))
    asked: list[list[tuple[int, int, str]]] = []
    with open_elf(path) as elf:
        assert scan_mod.prebuild_scanner(elf)  # no cache here: always built
        try:
            with forked_pool(1) as pool:  # forked after the scanner was built: its worker inherits it

                def tracker(p, calls):
                    asked.append(calls)
                    if route == "worker fails":

                        def fails():
                            raise RuntimeError("the worker pool's result_handler thread ended")

                        return fails
                    results = next(pool_results(pool, pool.imap(scan_mod.track_task, [(p, calls)])))
                    return lambda: results[:-1] if route == "short answer" else results

                with scan_mod.call_tracker(tracker):
                    offloaded = scan_mod._scan(elf, "")
        finally:
            scan_mod.release_prebuilt()
    assert len(asked) == 1 and asked[0]
    tracked = {addr for addr, _, _ in asked[0]}
    if route == "worker":
        assert not tracked & set(here)
    else:
        assert tracked <= set(here)
    assert _body(offloaded) == _body(alone) | {"stats": _body(offloaded)["stats"]}  # counts of decoding differ
    assert _graph(offloaded) == _graph(alone)
    assert offloaded.requests if which == "request codes" else offloaded.sites


def _set_then_sleep(event) -> None:
    import time

    event.set()
    time.sleep(30)


def test_a_process_forked_while_scanning_does_not_keep_the_lock(lib):
    """The scanning lock is a flock on the scanned file, which belongs to the open file: a process
    forked while it is held (a pool's worker, or the one the pool forks to replace a killed worker)
    kept it after this process released it, and this process's next scan of the file waited for
    that worker for ever.  The child closes its copy at once."""
    import fcntl
    import multiprocessing
    import os

    from uk_depscan.syscalls import cache as scan_cache

    ctx = multiprocessing.get_context("fork")
    running = ctx.Event()
    with open_elf(lib) as elf, scan_cache.scanning(elf) as waited:
        assert not waited
        child = ctx.Process(target=_set_then_sleep, args=(running,))
        child.start()
    assert running.wait(10)  # the child runs (the fork's own work is done)
    try:
        fd = os.open(lib, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError while the child holds it
        finally:
            os.close(fd)
    finally:
        child.kill()
        child.join()
