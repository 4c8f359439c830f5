"""Clean-up on every way a run can end: temporary directories and partial outputs.

* **SIGTERM, SIGHUP, SIGINT** (:func:`run_guarded`, installed where the CLI starts): the signal
  becomes an :class:`Interrupted` exception in the main thread, so every ``with``/``finally`` on
  the stack runs — the wheel extraction directory is removed, an output file being written is
  deleted, an SQLite transaction is rolled back — and the process exits ``128 + signal`` with
  one line on stderr.  A second signal during that clean-up is ignored rather than allowed to
  interrupt it.
* **SIGKILL** (or a power cut) cannot be caught, so every extraction directory is created by
  :func:`locked_tempdir`, which holds an exclusive ``flock(2)`` on the directory for as long as
  it exists.  The kernel drops the lock when its owner dies; the next run
  (:func:`sweep_stale`) removes the directories whose lock it *can* take, and therefore never
  touches one that a running scan still holds.
* **Outputs** are written by :func:`write_output` to a temporary file beside the target and
  renamed over it only when complete, so a report file is either the previous one or the new one.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import signal
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    import multiprocessing.pool
    import multiprocessing.process

WHEEL_PREFIX = "uk-depscan-wheel-"
OWNER_FILE = ".uk-depscan-owner"  # written once the lock is held: "this directory is complete and owned"
# A directory without its owner file may be one whose creator is between mkdtemp() and flock();
# only after this long is it taken to be the remains of a run killed in that instant.
UNOWNED_GRACE_SECONDS = 60
HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


class Interrupted(BaseException):
    """A termination signal arrived.  A BaseException, like KeyboardInterrupt, so that the
    ``except Exception`` of error reporting does not swallow it on its way to :func:`run_guarded`."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # the shell convention: 130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP


_live_paths: set[str] = set()  # removed at the latest when run_guarded() returns
_stopping: list[int] = []  # the signal being handled; one at most


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    if _stopping:  # already unwinding: let the clean-up finish
        return
    _stopping.append(signum)
    raise Interrupted(signum)


def check_interrupted() -> None:
    """Raise :class:`Interrupted` again for a signal whose first one was swallowed.

    A handler's exception raised while CPython runs an at-fork hook (logging's lock release right
    after ``fork()`` when ``--jobs`` starts its pool), a ``__del__`` or a weakref callback is printed
    as "Exception ignored" and dropped, and the run would carry on to a normal exit with the signal
    marked as handled.  Long loops call this between steps so such a signal still stops the run."""
    if _stopping:
        raise Interrupted(_stopping[0])


@contextlib.contextmanager
def forked_pool(
    processes: int,
    initializer: Callable[..., object] | None = None,
    initargs: tuple[object, ...] = (),
    *,
    niceness: int = 0,
) -> Iterator[multiprocessing.pool.Pool]:
    """A pool of forked workers that never outlives the block, whatever signal arrives.

    SIGTERM/SIGHUP/SIGINT are blocked while the workers are forked.  Otherwise the handler's
    :class:`Interrupted` can be raised in the instant after a ``fork()`` returns and before the
    pool has recorded the child: no one terminates that worker, it waits on its task queue for
    good and keeps the parent's stderr open (the clean CI run's SIGTERM test hung that way).  A
    pending signal is delivered once the pool exists, inside the block.  Each worker restores the
    default dispositions and unblocks them: it owns no temporary file, so it just dies, and this
    process cleans up.  Leaving the block terminates and joins the workers.

    ``niceness``: added to the workers' nice value (``nice(2)``), for work that should yield the
    cores to this process when both want them (it is on the critical path, they are not).
    """
    import multiprocessing
    import multiprocessing.pool

    previous = signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED_SIGNALS)
    pool = None
    try:
        before = set(multiprocessing.active_children())
        # constructed in two steps to keep the object when __init__ fails half-way
        pool = multiprocessing.pool.Pool.__new__(multiprocessing.pool.Pool)
        try:
            with _pool_threads_started_boundedly():
                pool.__init__(  # type: ignore[misc]
                    processes,
                    initializer=_worker_start,
                    initargs=(initializer, initargs, niceness, os.getpid()),
                    context=multiprocessing.get_context("fork"),
                )
        except BaseException as err:
            # Pool forks its workers, then starts three threads; under an address-space limit the
            # second or third cannot start ("can't start new thread", from pthread_create or from
            # BoundedThread when the thread died before running).  The forked workers would
            # hold stderr open for ever, and the first thread, already running, forks new ones
            # for every worker killed: it is stopped first.
            _abandon(pool, before)
            pool = None
            if out_of_memory(err):
                raise MemoryError(f"cannot start {processes} worker processes: {err}") from err
            raise
        threads = _watch(pool)
        _first_workers[id(pool)] = _worker_pids(pool)
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        check_interrupted()  # a signal an at-fork hook swallowed (see check_interrupted)
        yield pool
        pool.close()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        if pool is not None:
            _first_workers.pop(id(pool), None)
            if id(pool) in _broken:
                _broken.discard(id(pool))
                _abandon(pool, set(multiprocessing.active_children()) - set(getattr(pool, "_pool", ())))
            else:
                _stop(pool)
            for thread in threads:
                _watched_threads.discard(thread)
                _pool_thread_errors.pop(thread, None)


POOL_STOP_SECONDS = 10.0
POOL_POLL_SECONDS = 0.25
_T = TypeVar("_T")
_pool_thread_errors: dict[threading.Thread, BaseException] = {}


def pool_results(pool: multiprocessing.pool.Pool, results: multiprocessing.pool.IMapIterator[_T]) -> Iterator[_T]:
    """The items of ``results`` (``pool.imap``/``imap_unordered``), raising what broke the pool.

    A pool's result thread that fails to unpickle a result (MemoryError under an address-space
    limit, seen with the prefilter's arrays) dies, and an iterator over the results then waits for
    ever: the out-of-memory test hung 300 s.  The wait is in short slices; between them a dead
    handler thread's exception (recorded by :func:`_record_thread_error`, not printed) is raised
    here, in the main thread, where the run reports it as one line."""
    import multiprocessing

    from uk_depscan.errors import ResourceError

    workers = _first_workers.get(id(pool)) or _worker_pids(pool)
    while True:
        try:
            yield results.next(timeout=POOL_POLL_SECONDS)  # __next__ takes no timeout
        except StopIteration:
            return
        except multiprocessing.TimeoutError:
            for name in _POOL_THREADS[1:]:
                thread = getattr(pool, name, None)
                if isinstance(thread, threading.Thread) and not thread.is_alive():
                    error = _pool_thread_errors.pop(thread, None)
                    raise (error or RuntimeError(f"the worker pool's {name.strip('_')} thread ended")) from None
            # A worker killed from outside (the out-of-memory killer, a SIGKILL) takes its task with
            # it: the pool forks a new worker but never answers for that task, and the run waited
            # for ever.  Workers never exit on their own here (no maxtasksperchild), so a worker
            # that is no longer the pool's has died.
            gone = workers - _worker_pids(pool)
            if gone:
                _broken.add(id(pool))
                raise ResourceError(
                    f"worker process {min(gone)} was killed (out of memory?) and its work lost; try fewer --jobs"
                ) from None
            check_interrupted()


# The workers each pool of forked_pool started with, by id(pool) while the pool exists: a worker
# killed before a caller first waits on a result must be missed too (the pool replaces it at once).
_first_workers: dict[int, set[int]] = {}
# The pools (by id) that lost a worker: stopped without terminate(), which waits for the task queue's
# lock, for ever when the killed worker held it (it waits for a task with the lock taken).
_broken: set[int] = set()


def _worker_pids(pool: multiprocessing.pool.Pool) -> set[int]:
    """The process ids of ``pool``'s workers (a private attribute of multiprocessing.pool.Pool)."""
    workers = list(getattr(pool, "_pool", ()))  # one copy, taken under the GIL: its thread edits the list
    return {p.pid for p in workers if p.pid is not None}


_POOL_THREADS = ("_worker_handler", "_task_handler", "_result_handler")  # private attributes of Pool
_watched_threads: set[threading.Thread] = set()


def _watch(pool: multiprocessing.pool.Pool) -> list[threading.Thread]:
    """Route the exception that ends one of ``pool``'s threads to :func:`pool_results` instead of
    the default hook, which printed a traceback to stderr."""
    if threading.excepthook is not _record_thread_error:
        _previous_excepthook[:] = [threading.excepthook]
        threading.excepthook = _record_thread_error
    threads = [t for n in _POOL_THREADS if isinstance(t := getattr(pool, n, None), threading.Thread)]
    _watched_threads.update(threads)
    return threads


def _record_thread_error(args: threading.ExceptHookArgs) -> None:
    if args.thread in _watched_threads and args.exc_value is not None:
        _pool_thread_errors[args.thread] = args.exc_value
    elif _previous_excepthook:
        _previous_excepthook[0](args)


_previous_excepthook: list[Callable[[threading.ExceptHookArgs], object]] = []


def _stop(pool: multiprocessing.pool.Pool) -> None:
    """``terminate()`` and ``join()`` the pool, but never wait on them for ever: a SIGTERM during
    the pool's start-up once left its task thread waiting on a queue lock that no live process
    would release, and ``terminate()`` joins that thread (seen 1 in 70 interrupted runs).  When
    they have not finished in time, or failed, the workers are killed directly and the stuck
    threads, daemonic, end with the process."""
    import multiprocessing

    stopped: list[bool] = []

    def stop() -> None:
        # terminate() can fail too (MemoryError in its clean-up under an address-space limit, after
        # the result thread died of one): best effort, the kill below makes sure
        with contextlib.suppress(Exception):
            pool.terminate()
            pool.join()
            stopped.append(True)

    stopper = BoundedThread(target=stop, name="uk-depscan-pool-stop", daemon=True)
    if start_thread(stopper):
        stopper.join(POOL_STOP_SECONDS)
    # else the thread could not start (an address-space limit): the kill below
    if not stopped:
        _kill(multiprocessing.active_children())
        _cancel_finalizer(pool)


THREAD_START_SECONDS = 10.0


class _StartEvent(threading.Event):
    """A thread's "started" event whose untimed wait gives up.

    ``Thread.start()`` waits on its thread's private ``_started`` event without a timeout, and the
    new thread sets it from Python code.  When the new thread cannot run any Python code at all —
    a MemoryError in allocating its first frame, under an address-space limit — it ends (CPython
    reports the error as "Exception ignored in thread started by ...") and ``start()`` waits for
    ever: the clean CI run's out-of-memory test hung 300 s that way in the pool's stop thread."""

    def wait(self, timeout: float | None = None) -> bool:
        if timeout is not None:
            return super().wait(timeout)
        if super().wait(THREAD_START_SECONDS):
            return True
        raise RuntimeError(f"can't start new thread: not running after {THREAD_START_SECONDS:g} s")


class BoundedThread(threading.Thread):
    """A thread whose ``start()`` raises RuntimeError("can't start new thread: ...") instead of
    waiting for ever on a thread that died before running (see :class:`_StartEvent`).  Relies on
    ``threading.Thread``'s private ``_started`` attribute (CPython 3.8-3.13)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._started = _StartEvent()


@contextlib.contextmanager
def _unraisable_quiet() -> Iterator[None]:
    """While threads start, the report of a thread that failed before running is dropped: the
    failure reaches the caller as :class:`BoundedThread`'s RuntimeError, and the report is a
    traceback on stderr that would break the one-line contract.  The hook is a builtin because a
    Python hook needs a frame, which is exactly what that thread failed to allocate."""
    previous = sys.unraisablehook
    sys.unraisablehook = bool
    try:
        yield
    finally:
        sys.unraisablehook = previous


def start_thread(thread: BoundedThread) -> bool:
    """Start ``thread``; False when it cannot start (no memory or address space for it)."""
    try:
        with _unraisable_quiet():
            thread.start()
    except RuntimeError as err:
        if out_of_memory(err):
            return False
        raise
    return True


class _ThreadingForPool:
    """``multiprocessing.pool``'s view of the threading module while a Pool is built: its three
    handler threads are :class:`BoundedThread` (Pool.__init__ creates and starts them in one go)."""

    Thread = BoundedThread

    def __getattr__(self, name: str) -> object:
        return getattr(threading, name)


@contextlib.contextmanager
def _pool_threads_started_boundedly() -> Iterator[None]:
    import multiprocessing.pool

    module = multiprocessing.pool
    real = getattr(module, "threading")  # noqa: B009 - not in the module's typed interface
    setattr(module, "threading", _ThreadingForPool())  # noqa: B010 - a module attribute of another type
    try:
        with _unraisable_quiet():
            yield
    finally:
        setattr(module, "threading", real)  # noqa: B010


def _cancel_finalizer(pool: multiprocessing.pool.Pool) -> None:
    """The pool's own clean-up, run when the object is freed (a private multiprocessing.util.Finalize),
    takes the task queue's lock first: a worker killed while it held the lock leaves it taken for
    ever, and the freeing thread (the main one) waited there (seen under an address-space limit)."""
    finalizer = getattr(pool, "_terminate", None)
    cancel = getattr(finalizer, "cancel", None)
    if callable(cancel):
        cancel()


def _abandon(pool: multiprocessing.pool.Pool, before: set[multiprocessing.process.BaseProcess]) -> None:
    """Stop what a Pool whose __init__ failed has started (private attributes of
    multiprocessing.pool.Pool: its worker-maintaining thread re-forks killed workers while its
    state is RUN)."""
    import multiprocessing.pool

    handler = getattr(pool, "_worker_handler", None)
    if isinstance(handler, threading.Thread):
        handler._state = multiprocessing.pool.TERMINATE  # type: ignore[attr-defined]
        notifier = getattr(pool, "_change_notifier", None)
        if notifier is not None:
            with contextlib.suppress(Exception):
                notifier.put(None)
        if handler.is_alive():
            handler.join(POOL_STOP_SECONDS)
    _kill([c for c in multiprocessing.active_children() if c not in before])
    _cancel_finalizer(pool)


def _kill(children: list[multiprocessing.process.BaseProcess]) -> None:
    for child in children:
        child.kill()
    for child in children:
        child.join(POOL_STOP_SECONDS)  # reaped: no zombie, and nothing left for the caller to see


def out_of_memory(err: BaseException) -> bool:
    """Whether ``err`` is how a lack of memory or address space shows when it is not a MemoryError:
    a thread that cannot start, a shared library that cannot be mapped (capstone's, loaded when the
    first disassembly needs it), an mmap refused with ENOMEM."""
    if isinstance(err, MemoryError):
        return True
    if isinstance(err, RuntimeError):
        return "can't start new thread" in str(err)
    if isinstance(err, OSError):
        return err.errno == errno.ENOMEM or "failed to map segment" in str(err) or "Cannot allocate memory" in str(err)
    return False


def _worker_start(
    initializer: Callable[..., object] | None, initargs: tuple[object, ...], niceness: int, parent: int
) -> None:
    _die_with(parent)
    for s in HANDLED_SIGNALS:
        signal.signal(s, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, HANDLED_SIGNALS)
    # A worker whose parent is gone (an out-of-memory exit while the worker was sending its result)
    # dies of SIGPIPE, silently, as a Unix filter does: Python ignores the signal, so the write would
    # raise BrokenPipeError instead, and multiprocessing prints that traceback on the stderr the
    # worker shares with the command (seen once in the clean CI run's address-space-limit test).
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    if niceness:
        with contextlib.suppress(OSError):  # a priority is a hint: without it the work is the same
            os.nice(niceness)
    if initializer is not None:
        initializer(*initargs)


def c_function(name: str) -> Callable[..., int] | None:
    """The function ``name`` of the C library this interpreter runs on (through ctypes), or None
    when it has none (``mallopt`` is glibc's) or ctypes cannot load it."""
    import ctypes

    try:
        fn: Callable[..., int] = getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):
        return None
    return fn


_PR_SET_PDEATHSIG = 1  # prctl(2), linux/prctl.h
# The signal asked for: not SIGKILL, because the kernel sends it when the *thread* that forked the
# worker ends, and the pool's maintaining thread, which forks the replacement of a killed worker,
# ends with the pool: a replacement killed then, while it waited for a task holding the task
# queue's lock, left terminate() waiting for that lock (10 s, until _stop killed everything).
_PARENT_GONE = signal.SIGUSR2


def _die_with(parent: int) -> None:
    """End this worker when ``parent`` dies.  A parent killed by SIGKILL runs no clean-up, and its
    workers waited on their task queue for ever, each holding its share of the mapped objects
    (prctl ``PR_SET_PDEATHSIG``; Linux only, elsewhere nothing is done).  The signal also comes
    when only the forking thread ends: the worker then goes on (its parent is still ``parent``)."""
    prctl = c_function("prctl") if sys.platform.startswith("linux") else None
    if prctl is None:
        return

    def gone(_signum: int, _frame: FrameType | None) -> None:
        if os.getppid() != parent:
            os._exit(1)

    signal.signal(_PARENT_GONE, gone)
    prctl(_PR_SET_PDEATHSIG, int(_PARENT_GONE), 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the request took effect: no signal will come
        os._exit(1)


def _remove(path: str) -> None:
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError:
        pass  # nothing more can be done; the flock sweep of the next run is the backstop


def _remove_live() -> None:
    for path in sorted(_live_paths):
        _remove(path)
    _live_paths.clear()


@contextlib.contextmanager
def signals_cleaned_up() -> Iterator[None]:
    """Turn SIGTERM/SIGHUP/SIGINT into :class:`Interrupted` for the duration (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _stopping.clear()
    previous = {s: signal.signal(s, _on_signal) for s in HANDLED_SIGNALS}
    try:
        yield
    finally:
        _remove_live()
        for s, handler in previous.items():
            signal.signal(s, handler)
        _stopping.clear()  # handled: check_interrupted() outside this run must not see it


def run_guarded(run: Callable[[list[str]], int], argv: list[str]) -> int:
    """Run the CLI with signal clean-up; on a signal, one line on stderr and exit 128 + signal."""
    sweep_stale()
    with signals_cleaned_up():
        try:
            code = run(argv)
            check_interrupted()  # a signal swallowed after the last check (see check_interrupted)
            return code
        except Interrupted as stop:
            name = signal.Signals(stop.signum).name
            with contextlib.suppress(OSError):  # SIGHUP: the terminal may be gone
                sys.stderr.write(f"uk-depscan: interrupted by {name}; temporary files removed\n")
                sys.stderr.flush()
            return stop.exit_code


# -- extraction directories -----------------------------------------------------------------------
def temp_base() -> str:
    """The directory ``tempfile`` would choose ($TMPDIR, $TEMP, $TMP, then /tmp, /var/tmp, /usr/tmp:
    the first usable one), found without :func:`tempfile.gettempdir`'s probe: that probe creates
    and removes a randomly named file in the directory, and a run killed (SIGKILL) in between leaves
    that file behind for good — seen once in 30 kill-and-rerun rounds."""
    if tempfile.tempdir is not None:
        return tempfile.tempdir
    # only ever a base for mkdtemp (unique name, mode 0700), as tempfile's own list uses them
    defaults = ["/tmp", "/var/tmp", "/usr/tmp"]  # noqa: S108
    candidates = [os.environ.get(v) for v in ("TMPDIR", "TEMP", "TMP")] + defaults
    for d in candidates:
        if d and os.path.isdir(d) and os.access(d, os.W_OK | os.X_OK):
            return d
    return tempfile.gettempdir()  # none usable: let tempfile decide (and report) as it always has


@contextlib.contextmanager
def locked_tempdir(prefix: str = WHEEL_PREFIX) -> Iterator[str]:
    """A private temporary directory, flock-ed for its whole life and removed on the way out."""
    path = tempfile.mkdtemp(prefix=prefix, dir=temp_base())
    _live_paths.add(path)
    fd = -1
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        fcntl.flock(fd, fcntl.LOCK_EX)  # blocking: a sweeper holds it for an instant at most
        with open(os.path.join(path, OWNER_FILE), "x", encoding="ascii") as fh:
            fh.write(f"{os.getpid()}\n")
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        _live_paths.discard(path)
        if fd >= 0:
            os.close(fd)  # the lock goes only once the directory is gone


def sweep_stale(prefix: str = WHEEL_PREFIX, base: str | None = None) -> list[str]:
    """Remove extraction directories left by killed runs: those whose flock can be taken now.

    Returns the directories removed.  A directory held by a live run is skipped (its lock is
    taken); so is one of another user, and a young one without its owner file (a run between
    ``mkdtemp`` and ``flock``).
    """
    base = base or temp_base()
    removed: list[str] = []
    try:
        entries = [e for e in os.scandir(base) if e.name.startswith(prefix)]
    except OSError:
        return removed
    for entry in entries:
        if not entry.is_dir(follow_symlinks=False):
            continue
        try:
            fd = os.open(entry.path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # held: a scan is running in it
                continue
            st = os.fstat(fd)
            if st.st_uid != os.getuid() or not stat.S_ISDIR(st.st_mode):
                continue
            owned = os.path.exists(os.path.join(entry.path, OWNER_FILE))
            if not owned and time.time() - st.st_mtime < UNOWNED_GRACE_SECONDS:
                continue
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.path)
        finally:
            os.close(fd)
    return removed


# -- outputs ----------------------------------------------------------------------------------------
@contextlib.contextmanager
def staged_output(path: Path, label: str = "tmp") -> Iterator[Path]:
    """A free sibling name of ``path`` to build an output in (a file or a directory tree), removed
    on every way out — signals included — unless the caller has renamed it over ``path`` by then."""
    tmp = path.parent / f".{path.name}.uk-depscan-{os.getpid()}.{label}"
    _remove(str(tmp))  # a leftover of a run that had this pid
    _live_paths.add(str(tmp))
    try:
        yield tmp
    finally:
        _live_paths.discard(str(tmp))
        _remove(str(tmp))


def write_output(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that no reader (and no interrupted run) sees half of it.

    Regular files (or a new name) get a temporary sibling renamed over them; anything else
    (``/dev/stdout``, a FIFO, a terminal) is written in place, since renaming over it would
    replace the device node rather than write to it.  Raises OSError.
    """
    path = Path(os.path.realpath(path))  # through a symlink, as open() would: the link stays a link
    try:
        st: os.stat_result | None = os.stat(path)
    except FileNotFoundError:
        st = None
    if st is not None and not stat.S_ISREG(st.st_mode):
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        return
    tmp = str(path.parent / f".{path.name}.uk-depscan-{os.getpid()}.tmp")
    _live_paths.add(tmp)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            if st is not None:
                os.fchmod(fh.fileno(), stat.S_IMODE(st.st_mode))
        os.replace(tmp, path)
    finally:
        _live_paths.discard(tmp)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
