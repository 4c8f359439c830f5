"""A worker pool whose result thread dies (a result it cannot unpickle: MemoryError under an
address-space limit) must fail the run with that error, at once and without a traceback on
stderr; before, the wait for the result never ended."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from uk_depscan import cleanup
from uk_depscan.cleanup import forked_pool, pool_results


def _raise_memory_error() -> None:
    raise MemoryError("unpickling a result")


class _Boom:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (_raise_memory_error, ())  # runs where the result is unpickled: the parent's result thread


def _work(i: int) -> object:
    return _Boom() if i == 2 else i


def _on_alarm(_signum, _frame):  # type: ignore[no-untyped-def]
    raise AssertionError("pool_results waited for a result that will never come")


@pytest.mark.parametrize("ordered", [True, False])
def test_dead_result_thread_raises_its_error(ordered: bool, capfd: pytest.CaptureFixture[str]) -> None:
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(20)
    start = time.monotonic()
    try:
        with pytest.raises(MemoryError, match="unpickling a result"), forked_pool(2) as pool:
            results = pool.imap(_work, range(5)) if ordered else pool.imap_unordered(_work, range(5))
            for _ in pool_results(pool, results):
                pass
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert time.monotonic() - start < 10
    assert "Traceback" not in capfd.readouterr().err
    assert not multiprocessing.active_children()  # the block stopped its workers


def test_results_in_order_and_complete() -> None:
    with forked_pool(2) as pool:
        assert list(pool_results(pool, pool.imap(abs, range(-50, 50)))) == [abs(i) for i in range(-50, 50)]
        assert sorted(pool_results(pool, pool.imap_unordered(abs, range(10)))) == list(range(10))


def _dies_before_running(self: threading.Thread) -> None:
    # what a thread does when it cannot allocate its first Python frame: it ends before setting
    # the event Thread.start() waits on, and CPython reports the error as unraisable
    raise MemoryError("no frame for the new thread")


@pytest.fixture
def no_hang(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(cleanup, "THREAD_START_SECONDS", 0.5)
    monkeypatch.setattr(sys, "unraisablehook", sys.__unraisablehook__)  # prints, as outside pytest
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(20)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_a_thread_that_dies_before_running_is_not_waited_for(
    no_hang: None, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """The clean CI run's out-of-memory test hung 300 s in Thread.start() of the pool's stop thread
    ("Exception ignored in thread started by ... MemoryError" on stderr, then nothing)."""
    monkeypatch.setattr(cleanup.BoundedThread, "_bootstrap", _dies_before_running)
    hook = sys.unraisablehook
    assert not cleanup.start_thread(cleanup.BoundedThread(target=print, daemon=True))
    assert capfd.readouterr().err == ""  # the report of the failed thread is not printed
    assert sys.unraisablehook is hook  # and the hook is put back


def test_a_pool_whose_result_thread_dies_before_running(
    no_hang: None, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """Pool.__init__ starts its three threads itself: the third one failing that way is a
    MemoryError naming the pool, with no worker left behind and nothing on stderr."""
    real = cleanup.BoundedThread._bootstrap

    def bootstrap(self: threading.Thread) -> None:
        if "_handle_results" in self.name:
            _dies_before_running(self)
        real(self)  # type: ignore[arg-type]

    monkeypatch.setattr(cleanup.BoundedThread, "_bootstrap", bootstrap)
    with pytest.raises(MemoryError, match="cannot start 2 worker processes: can't start new thread"), forked_pool(2):
        pass
    assert capfd.readouterr().err == ""
    assert not multiprocessing.active_children()
    monkeypatch.undo()
    with forked_pool(2) as pool:  # and pools built afterwards are ordinary ones
        assert pool.apply(abs, (-3,)) == 3


def _my_niceness(_: object) -> int:
    return os.nice(0)


def test_background_pool_workers_yield_the_cores() -> None:
    """A pool forked with ``niceness`` runs its workers that much nicer than this process (the work
    off the critical path yields the cores to it); without, at this process's own value."""
    own = os.nice(0)
    with forked_pool(2, niceness=5) as pool:
        assert set(pool.map(_my_niceness, range(4))) == {min(own + 5, 19)}
    with forked_pool(2) as pool:
        assert set(pool.map(_my_niceness, range(4))) == {own}


def test_a_worker_whose_parent_is_gone_dies_silently() -> None:
    """The parent leaves while its worker is still working (an out-of-memory exit): the worker's
    result finds no reader, and the worker ends without a traceback on the stderr it shares with
    the command (SIGPIPE's default action, as for any Unix filter)."""
    import subprocess
    import textwrap

    script = textwrap.dedent(
        """
        import os, time
        from uk_depscan.cleanup import forked_pool

        def slow(_):
            time.sleep(0.5)
            return b"result"

        with forked_pool(1) as pool:
            pool.apply_async(slow, (0,))
            time.sleep(0.1)
            os._exit(0)  # the parent gone, its worker still at work
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0
    assert "Traceback" not in proc.stderr and "BrokenPipeError" not in proc.stderr, proc.stderr


def _sleep_then(value: int) -> int:
    time.sleep(30)
    return value


def _wait_replaced(pool: object, pid: int) -> None:
    """Until the pool has replaced its killed worker ``pid`` (its maintaining thread does it at once)."""
    deadline = time.monotonic() + 10
    while pid in {p.pid for p in list(pool._pool)} and time.monotonic() < deadline:  # type: ignore[attr-defined]
        time.sleep(0.05)


@pytest.mark.parametrize("when", ["while waited on", "before the first wait"])
def test_a_killed_worker_fails_the_wait_at_once(when: str) -> None:
    """A worker killed from outside (the out-of-memory killer) takes its task with it; the pool forks
    a replacement but never answers for that task, and the run waited for ever.  The wait now ends
    with a ResourceError naming the worker, whether it died before or while the caller waited."""
    from uk_depscan.errors import ResourceError

    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(60)
    try:
        for _ in range(3):  # where the worker is when it is killed is a race: three tries
            start = time.monotonic()
            with forked_pool(1) as pool:
                victim = next(iter(p.pid for p in pool._pool))  # type: ignore[attr-defined]
                results = pool.imap(_sleep_then, [1])
                if when == "before the first wait":
                    os.kill(victim, signal.SIGKILL)
                    _wait_replaced(pool, victim)
                else:
                    threading.Timer(0.5, os.kill, (victim, signal.SIGKILL)).start()
                with pytest.raises(ResourceError, match=f"worker process {victim} was killed"):
                    next(pool_results(pool, results))
            # the pool stopped at once: not by terminate(), which waits for the task queue's lock,
            # held for ever by a worker killed while it waited for a task (10 s, then killed)
            assert time.monotonic() - start < 5
            assert not multiprocessing.active_children()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_workers_die_with_their_parent() -> None:
    """A parent killed by SIGKILL runs no clean-up; its pool's busy worker is ended with it
    (PR_SET_PDEATHSIG) instead of running its task to the end for nobody (an idle worker ends
    anyway: its task queue's last writer is gone)."""
    import subprocess
    import textwrap

    if not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux's")
    script = textwrap.dedent(
        """
        import sys, time
        from uk_depscan.cleanup import forked_pool

        with forked_pool(2) as pool:
            pool.map_async(time.sleep, [60, 60])
            time.sleep(0.5)  # both at work
            print(" ".join(str(p.pid) for p in pool._pool), flush=True)
            time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        workers = [int(w) for w in proc.stdout.readline().split()]
        assert len(workers) == 2
        proc.kill()
        proc.wait(10)
        deadline = time.monotonic() + 10
        while any(_alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(w) for w in workers)
    finally:
        proc.kill()
        proc.wait(10)


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (not a zombie: the killed workers' parent, gone, was init's)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
