"""``analyze()``: inputs → loader → binding → one :class:`~uk_depscan.model.Report`."""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import functools
import gc
import itertools
import logging
import multiprocessing as mp
import os
import resource
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import numpy as np

from uk_depscan import __version__
from uk_depscan.cleanup import check_interrupted, forked_pool, out_of_memory, pool_results
from uk_depscan.elf.file import ET_DYN, ET_EXEC, ElfFile, open_elf
from uk_depscan.elf.symbols import STT_GNU_IFUNC, dynamic_symbols, fini_array, init_array
from uk_depscan.errors import DepscanError, ResourceError
from uk_depscan.inputs import Inputs, MemberFilter, WheelLimits, collect_inputs
from uk_depscan.loader.binding import bind_symbols
from uk_depscan.loader.paths import SearchConfig
from uk_depscan.loader.pyimport import module_imports
from uk_depscan.loader.resolve import LoadResult, resolve_tree, resolve_with_dlopen
from uk_depscan.model import (
    BelowSyscall,
    Breadth,
    ElfSummary,
    Gap,
    ImportRecord,
    KconfigPlan,
    LibcModel,
    LoadTree,
    LoadVia,
    MatrixRow,
    NativeRoute,
    ObservationScope,
    ReachPath,
    Report,
    Route,
    SearchSettings,
    Skipped,
    SyscallFinding,
    SyscallReport,
    TableRef,
    TargetReport,
    VersionProblem,
)
from uk_depscan.report.views import build_target_views
from uk_depscan.store.cache import CacheStore
from uk_depscan.store.identity import object_identity
from uk_depscan.syscalls import cache as scan_cache
from uk_depscan.syscalls.linux import load_linux_table
from uk_depscan.syscalls.literalcache import cached_below_syscall
from uk_depscan.syscalls.memos import Unsaved, adopt_unsaved, take_unsaved
from uk_depscan.syscalls.memos import save_all as save_memos
from uk_depscan.syscalls.processes import scan_processes
from uk_depscan.syscalls.reach import analyze_syscalls, scanned_under, syscall_report
from uk_depscan.syscalls.runtime import LoadedAnswer, with_loaded
from uk_depscan.unikraft.gaps import (
    assess_all,
    binary_compat_findings,
    greedy_plan,
    native_symbol_gaps,
    plan_kconfig,
    work_items,
)
from uk_depscan.unikraft.observed import apply_observation
from uk_depscan.unikraft.tables import (
    LibmuslAvailability,
    LoupePrior,
    UnikraftTable,
    libmusl_for,
    load_loupe_priors,
    load_unikraft_table,
)

if TYPE_CHECKING:  # the strace reader is loaded only when --observed gives traces
    import multiprocessing.pool

    from uk_depscan.observe.strace import Trace

log = logging.getLogger(__name__)
_P = ParamSpec("_P")
_R = TypeVar("_R")
_Task = TypeVar("_Task")
_Out = TypeVar("_Out")


MUSL_WARNING = (
    "--libc musl under-reports: Debian's musl 1.2.3 libc.so has almost no unwind tables, so calls "
    "into its internal helpers (e.g. __syscall_cp behind read/write) are not followed; treat its "
    "syscall sets as a lower bound"
)


@dataclass(frozen=True)
class Options:
    """What the analysis should do beyond loading: syscalls, which libc model, which entry points."""

    symbols: bool = True
    syscalls: bool = True
    libc_model: LibcModel = LibcModel.AUTO
    entries: tuple[str, ...] = ()
    no_cache: bool = False
    unikraft: str | None = None
    unikraft_table: str | None = None
    route: Route = Route.BOTH
    libc_implied: bool = False  # the libc model was not given: musl, implied by --route native
    wheel_limits: WheelLimits | None = None  # None: the defaults
    select: MemberFilter | None = None  # --include/--exclude on directory and wheel members
    observed: tuple[str, ...] = ()  # strace -f traces of a real run (--observed): evidence for the gaps
    jobs: int = 1  # processes for several targets (--jobs); the report does not depend on it


def _gc_paused(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run ``fn`` with the cyclic garbage collector off (as it was, afterwards).

    A target's analysis allocates millions of small objects (decoded cache entries, sites, chains)
    and makes few reference cycles; the collector's repeated passes over that growing heap were
    ~0.15 s of CPU of a one-second warm libtorch_cpu.so run.  Reference counting still frees
    everything that is not a cycle; the one big cycle, an ElfFile and the tables derived from it,
    is broken when :func:`analyze_target` closes the target's files."""

    @functools.wraps(fn)
    def paused(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        was = gc.isenabled()
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            if was:
                gc.enable()

    return paused


def analyze(
    paths: list[str],
    config: SearchConfig | None = None,
    *,
    command: str = "scan",
    options: Options | None = None,
    progress: Callable[[str], None] | None = None,
    advance: Callable[[int, int, str], None] | None = None,
) -> Report:
    """Analyse every ELF named by ``paths`` (files, directories, wheels).

    Raises :class:`~uk_depscan.errors.InputError` when an argument itself is unusable;
    a target that fails inside a directory or wheel is reported as skipped.
    """
    config = config or SearchConfig()
    options = options or Options()
    note = progress or (lambda _msg: None)
    scan_cache.forget_validated()
    # parsed first: a malformed trace is bad input (exit 2) before any long analysis
    traces: tuple[Trace, ...] = ()
    if options.observed and options.syscalls:
        from uk_depscan.observe.observed import load_traces

        traces = load_traces(options.observed)
    # the Unikraft facts before any analysis: a bad table is bad input, and every target's gaps are
    # classified where the target is analysed (a --jobs worker: in parallel)
    unikraft = _load_unikraft(options) if options.syscalls else None
    with collect_inputs(paths, limits=options.wheel_limits, select=options.select, threads=options.jobs) as inputs:
        single = len(inputs.targets) == 1
        reports: list[TargetReport] = []
        skipped = list(inputs.skipped)
        work = _Work(config, inputs, options, traces, unikraft)
        total = len(inputs.targets)
        done: dict[int, TargetReport | DepscanError] = {}
        # one target: --jobs processes share its largest object's scan; several: one process each
        with scan_processes(options.jobs if single else 1):
            for i, outcome in _outcomes(work, options.jobs, note):
                check_interrupted()
                if isinstance(outcome, DepscanError) and single:
                    raise outcome
                done[i] = outcome
                if advance is not None:
                    advance(len(done), total, inputs.targets[i].display)
        save_memos()  # the reaches and chain paths this run computed, once (uk_depscan.syscalls.memos)
        for i, target in enumerate(inputs.targets):  # target order, whatever order they finished in
            outcome = done[i]
            if isinstance(outcome, DepscanError):
                skipped.append(Skipped(target.display, str(outcome).removeprefix(f"{target.display}: ")))
            else:
                reports.append(outcome)
    settings = SearchSettings(config.root, config.library_path, config.ld_so_conf, config.use_cache, config.python_path)
    table = unikraft.table if unikraft is not None else None
    # a table of one's own may not record its commit; the report schema wants a string
    ref = TableRef(table.release, table.commit or "unknown", table.generator) if table is not None else None
    plan = (
        greedy_plan({r.target: work_items(r.gaps) for r in reports if r.syscalls is not None})
        if table is not None and len(reports) > 1
        else ()
    )
    matrix = syscall_matrix(reports) if len(reports) > 1 else ()
    skipped.sort(key=lambda s: s.path)
    # every target's views were computed with its report (_finished)
    return Report(__version__, command, settings, tuple(reports), tuple(skipped), ref, plan, matrix)


@dataclass(frozen=True)
class _Work:
    """What every target's analysis shares; a forked worker inherits it instead of unpickling it."""

    config: SearchConfig
    inputs: Inputs
    options: Options
    traces: tuple[Trace, ...]
    unikraft: _Unikraft | None = None


@dataclass(frozen=True)
class _Unikraft:
    """The Unikraft facts every target's gaps are classified against."""

    table: UnikraftTable
    priors: dict[str, LoupePrior]
    musl: LibmuslAvailability | None


def _load_unikraft(options: Options) -> _Unikraft:
    table = _unikraft_table(options)
    return _Unikraft(table, load_loupe_priors(), libmusl_for(table))


def _finished(report: TargetReport, work: _Work) -> TargetReport:
    """The target's report as the whole report holds it: observation applied, gaps classified for
    the route, views computed (each depends on this target alone)."""
    if work.traces:
        report = with_observation(report, work.traces)
    if work.unikraft is not None:
        u = work.unikraft
        report = _route_view(report, u.table, u.priors, u.musl, work.options.route)
    return dataclasses.replace(report, views=build_target_views(report))


def _analyze_one(work: _Work, i: int, note: Callable[[str], None]) -> TargetReport | DepscanError:
    """Target ``i``'s report, or the error that makes it skipped (raised again for a lone target)."""
    target = work.inputs.targets[i]
    try:
        note(f"{target.display}: resolving dependencies")
        try:
            report = analyze_target(target.path, target.display, work.config, work.inputs, work.options, note)
            return _finished(report, work)
        except DepscanError as err:
            if isinstance(err.__cause__, OSError) and out_of_memory(err.__cause__):  # mmap refused
                raise _out_of_memory(target.path, target.display) from err
            raise
        except (MemoryError, OSError, RuntimeError) as err:
            if out_of_memory(err):
                raise _out_of_memory(target.path, target.display) from err
            raise
    except DepscanError as err:
        return err


_WORKER_STATE: dict[str, _Work] = {}  # "work": what a forked worker inherits from its parent


def _worker_init(work: _Work) -> None:
    _WORKER_STATE["work"] = work  # passed by fork, not pickled


class _Job(enum.Enum):
    """What a pool task does with its argument."""

    PRESCAN = "prescan"  # scan the object at this path into the cache
    ANALYZE = "analyze"  # analyse the target of this index
    STORE = "store"  # write the large scan's cache entry this worker inherited (argument unused)


_Outcome = tuple[int, TargetReport | DepscanError, list[Unsaved]]


def _in_worker(task: tuple[_Job, int | str]) -> _Outcome | None:
    """A task of the pool: for :attr:`_Job.ANALYZE` the target's index and outcome, with the
    reaches and chain paths it computed for the parent to store once (:func:`save_memos`); else None."""
    job, what = task
    if job is _Job.PRESCAN:
        _prescan(str(what))
        return None
    if job is _Job.STORE:
        from uk_depscan.syscalls.scan import store_pending

        store_pending()
        return None
    outcome = _analyze_one(_WORKER_STATE["work"], int(what), lambda _msg: None)
    return int(what), outcome, take_unsaved()


def _outcomes(work: _Work, jobs: int, note: Callable[[str], None]) -> Iterator[tuple[int, TargetReport | DepscanError]]:
    """(target index, outcome) of every target as each finishes; the caller merges them in
    target order, so the report's JSON is byte-identical for every ``jobs``.

    Several targets and ``jobs > 1``: a pool of forked processes (the analysis is CPU-bound
    Python; threads would share one core).  Fork, not spawn: the workers inherit the imported
    engine, the extracted wheel's file digests (:func:`uk_depscan.store.identity.remember_digest`)
    and the shared work (``initargs`` under fork) without pickling.  The distinct objects of all
    closures are scanned first (:func:`_shared_objects`).  The largest, when it is large enough
    for its prefilter to be split (libtorch_cpu.so, which every other scan and analysis of
    torch/lib waits for: a worker alone took 6.6 s on it while the other worker, done with the
    rest, waited), is scanned by this process with its prefilter ranges run by the pool's workers;
    queued behind those ranges, the workers then scan the other objects and analyse the targets
    that do not need it while this process finishes that scan; the targets that need it are
    analysed by a second pool, forked once the scan is done so that its workers inherit it.  A
    target whose objects are still being scanned elsewhere waits for that scan (the scan cache's
    lock) instead of repeating it.  One target: :func:`_one_target_with_pool`.
    """
    n = len(work.inputs.targets)
    if jobs <= 1 or "fork" not in mp.get_all_start_methods():
        for i in range(n):
            yield i, _analyze_one(work, i, note)
        return
    if n == 1:
        yield 0, _one_target_with_pool(work, jobs, note)
        return
    jobs = min(jobs, n)
    note(f"analysing {n} targets with {jobs} processes")
    shared, uses = _shared_objects(work)
    big = _take_large(shared)
    # the targets that do not need the large object can run while this process finishes its scan;
    # then longest first, by the count of imports (each a closure walk into its provider:
    # libtorch_python.so's 5.7 k take 3 s, libtorch_cpu.so's 1.1 k 1 s, a 434 MB file)
    cost = {i: (_import_count(t.path), _size(t.path)) for i, t in enumerate(work.inputs.targets)}
    order = sorted(range(n), key=lambda i: (big in uses[i], -cost[i][0], -cost[i][1], i))
    big_elf = _prebuilt(big) if big is not None else None  # before the fork: the workers inherit it
    if big is not None and big_elf is None:
        shared.insert(0, big)  # cached, or not readable here: a worker looks it up like any other
    prescans: list[tuple[_Job, int | str]] = [(_Job.PRESCAN, p) for p in shared]
    # with a large object, the first pool's work after its ranges (other objects, small targets)
    # is off the critical path, which is this process finishing the large scan: it yields the cores
    nice = BACKGROUND_NICENESS if big_elf is not None else 0
    try:
        with forked_pool(jobs, _worker_init, (work,), niceness=nice) as pool:  # no worker outlives an error or a signal
            if big_elf is None:
                tasks = [*prescans, *((_Job.ANALYZE, i) for i in order)]
                yield from _outcomes_of(pool_results(pool, pool.imap_unordered(_in_worker, tasks)))
                return
            # The targets that need the large object are analysed by a second pool, forked once
            # this process has scanned it: its workers inherit the scan (scan._FRESH) instead of
            # each reading back and validating the 20 MB entry for every such target (0.14 s each,
            # nine of torch/lib's eleven).  The first pool's workers go on with the other objects
            # and targets meanwhile.
            first = [*prescans, *((_Job.ANALYZE, i) for i in order if big not in uses[i])]
            rest: list[tuple[_Job, int | str]] = [(_Job.ANALYZE, i) for i in order if big in uses[i]]
            early = _scan_large_then(pool, jobs, big_elf, _in_worker, first, note)
            with contextlib.ExitStack() as stack:
                # no room for more workers: the first pool's run them too
                late_pool = _pool_if_room(stack, jobs, work)
                if _store_in(late_pool):  # first, beside the longest target
                    rest.insert(0, (_Job.STORE, ""))
                late_pool = late_pool or pool
                late = pool_results(late_pool, late_pool.imap_unordered(_in_worker, rest))
                yield from _outcomes_of(early)
                yield from _outcomes_of(late)
    finally:
        if big_elf is not None:
            big_elf.close()


def _pool_if_room(
    stack: contextlib.ExitStack, jobs: int, work: _Work, *, niceness: int = 0
) -> multiprocessing.pool.Pool | None:
    """A pool of ``jobs`` workers (:func:`forked_pool`) that lives as long as ``stack``, or None
    when there is no memory to start one (the caller then does without)."""
    try:
        return stack.enter_context(forked_pool(jobs, _worker_init, (work,), niceness=niceness))
    except MemoryError:
        return None


def _outcomes_of(results: Iterator[_Outcome | None]) -> Iterator[tuple[int, TargetReport | DepscanError]]:
    for outcome in results:
        check_interrupted()
        if outcome is not None:
            i, report, unsaved = outcome
            adopt_unsaved(unsaved)
            yield i, report


# nice(2) increment of a pool whose work after the large object's prefilter ranges is off the
# critical path (this process finishing that scan, then the second pool's targets, the longest
# first): under CFS a nice-19 process weighs 15 against a nice-0 one's 1024, so it runs when a
# core is free and otherwise waits.  Nice 5 (weight 335) left libtorch_python.so's analysis a
# quarter of its core short while the first pool's small targets ran: torch/lib --jobs 2 cold,
# 8 interleaved pairs, median 9.94 s at nice 19 against 10.37 s at nice 5 (7 of 8 pairs faster).
BACKGROUND_NICENESS = 19


def _one_target_with_pool(work: _Work, jobs: int, note: Callable[[str], None]) -> TargetReport | DepscanError:
    """A lone target whose closure holds an object large enough for its prefilter to be split
    (libtorch_cpu.so): this process scans it with the ranges run by a pool's workers, which then
    scan the closure's other objects into the cache while this process finishes that scan (1.3 s
    of libtorch_cpu.so's after the ranges, in which the workers were idle and the other ten
    objects, 0.5 s, waited for their turn); this process then analyses the target, finding the
    large scan in memory and the others in the cache.  Without such an object, or without the
    cache, or when no pool can start: the plain analysis, whose scan splits its own prefilter.
    The large scan's cache entry is written by a one-worker pool forked after it (:func:`_store_in`)."""
    from uk_depscan.syscalls.scan import pending_store, release_prebuilt

    shared, _ = _shared_objects(work)
    big = _take_large(shared)
    big_elf = _prebuilt(big) if big is not None else None
    if big_elf is None:
        return _analyze_one(work, 0, note)
    try:
        with contextlib.ExitStack() as stack:
            pool = _pool_if_room(stack, jobs, work, niceness=BACKGROUND_NICENESS)
            if pool is None:  # no room for the workers: the analysis alone says what it can
                release_prebuilt()
                return _analyze_one(work, 0, note)
            # one task, so one worker: the scan's end in this process keeps a core of its own
            prescans = _scan_large_then(pool, jobs, big_elf, _prescan_all, [tuple(shared)], note, track=jobs > 1)
            stored: Iterator[object] = iter(())
            store_pool = _pool_if_room(stack, 1, work) if pending_store() else None
            if _store_in(store_pool) and store_pool is not None:
                stored = pool_results(store_pool, store_pool.imap_unordered(_in_worker, [(_Job.STORE, "")]))
            report = _analyze_one(work, 0, note)
            # done by now (the analysis needed each object), or nearly (the store): nothing is cut
            # short; a worker killed meanwhile (pool_results: ResourceError) took with it only work
            # the analysis has done itself, or a cache entry the next run writes
            with contextlib.suppress(ResourceError):
                for _ in itertools.chain(prescans, stored):
                    check_interrupted()
            return report
    finally:
        big_elf.close()


def _store_in(pool: multiprocessing.pool.Pool | None) -> bool:
    """Hand the large scan's cache entry, which :func:`_scan_large_then` left unwritten
    (:func:`uk_depscan.syscalls.scan.deferred_store`), to ``pool``: forked after that scan, its
    workers inherit it.  True when the caller is to queue the :attr:`_Job.STORE` task there; with
    no pool this process writes the entry now, and without an entry there is nothing to do."""
    from uk_depscan.syscalls.scan import drop_pending, pending_store, store_pending

    if not pending_store():
        return False
    if pool is None:
        store_pending()
        return False
    drop_pending()
    return True


def _scan_large_then(
    pool: multiprocessing.pool.Pool,
    jobs: int,
    big_elf: ElfFile,
    run: Callable[[_Task], _Out],
    tasks: list[_Task],
    note: Callable[[str], None],
    *,
    track: bool = False,
) -> Iterator[_Out]:
    """Scan ``big_elf`` (built by :func:`_prebuilt`) in this process with its prefilter ranges run by
    ``pool``'s ``jobs`` workers; ``run(task)`` of each of ``tasks`` is queued behind the ranges, so
    the workers go on with them while this process finishes the scan.  Returns their results.
    ``track``: fewer ``tasks`` than workers, so one is free to track the scan's calls
    (:func:`uk_depscan.syscalls.scan.call_tracker`); queued behind busy workers, this process
    would only wait for it."""
    from uk_depscan.syscalls.scan import (
        call_tracker,
        deferred_store,
        prefilter_executor,
        prefilter_task,
        release_prebuilt,
        scan_library,
        track_task,
    )

    rest: list[Iterator[_Out]] = []

    def submit_rest() -> None:
        if not rest:
            rest.append(pool_results(pool, pool.imap_unordered(run, tasks)))

    def prefilter(path: str, ranges: list[tuple[int, int, int, int, int]], meanwhile: Callable[[], None]) -> list[Any]:
        results = pool.imap(prefilter_task, [(path, r) for r in ranges], chunksize=1)
        submit_rest()
        meanwhile()
        return list(pool_results(pool, results))

    def tracked(path: str, calls: list[tuple[int, int, str]]) -> Callable[[], list[Any]]:
        results = pool_results(pool, pool.imap(track_task, [(path, calls)]))
        return lambda: next(results)

    note(f"scanning {big_elf.path} for syscalls with {jobs} processes")
    # its cache entry is written by a worker forked after it (_store_in), while this process goes on
    with contextlib.ExitStack() as scope:
        scope.enter_context(prefilter_executor(prefilter))
        if track:
            scope.enter_context(call_tracker(tracked))
        scope.enter_context(deferred_store())
        scope.enter_context(contextlib.suppress(DepscanError, MemoryError, OSError))
        scan_library(big_elf)
    release_prebuilt()
    check_interrupted()
    submit_rest()  # the scan was cached after all, or failed before its prefilter
    return rest[0]


def _prebuilt(path: str) -> ElfFile | None:
    """The large object opened, with its scanner built (:func:`uk_depscan.syscalls.scan.prebuild_scanner`);
    None when its scan is cached already or it cannot be read here (the pool's workers then
    look it up or scan it like any other object)."""
    from uk_depscan.syscalls.scan import prebuild_scanner

    elf = None
    try:
        elf = open_elf(path)
        if prebuild_scanner(elf):
            return elf
    except (DepscanError, MemoryError, OSError):
        pass
    if elf is not None:
        elf.close()
    return None


def _take_large(shared: list[str]) -> str | None:
    """The first (largest) of ``shared``, taken out of it, when it is large enough for its prefilter
    to be split over processes (:data:`uk_depscan.syscalls.scan.PARALLEL_MIN_BYTES`)."""
    from uk_depscan.syscalls.scan import PARALLEL_MIN_BYTES

    return shared.pop(0) if shared and _size(shared[0]) >= PARALLEL_MIN_BYTES else None


def _shared_objects(work: _Work) -> tuple[list[str], list[set[str]]]:
    """The distinct objects the targets' syscall stages will scan, largest first, and the set of
    those each target scans.

    Every target of a directory or wheel scans its whole DT_NEEDED closure, and the closures
    overlap: all eleven ELFs of ``torch/lib`` need libtorch_cpu.so, so with one pool over the
    targets a second worker soon waits on the first's scan of it (the scan cache's lock) and the
    pool runs one object at a time.  Scanning each distinct object once first, largest first
    (longest-processing-time order), keeps every worker busy; the targets then find warm scans.
    Without the cache there is nothing to share, and the report does not depend on this step.
    """
    options = work.options
    uses: list[set[str]] = [set() for _ in work.inputs.targets]
    if options.no_cache or not (options.symbols and options.syscalls):
        return [], uses
    sizes: dict[str, int] = {}
    for i, target in enumerate(work.inputs.targets):
        try:
            result = resolve_tree(target.path, work.config, display_name=target.display)
        except DepscanError:
            continue  # the target's own analysis reports it
        for idx, obj in enumerate(result.tree.objects):
            elf = result.files.get(idx)
            if elf is None or obj.error or not elf.arch_supported:
                continue
            name = obj.soname or obj.path.rsplit("/", 1)[-1]
            if idx and not scanned_under(name, options.libc_model, elf.machine_name):
                continue
            path = os.path.realpath(obj.realpath)  # not obj.path: a wheel member's root shows as "x.whl!/member"
            sizes.setdefault(path, elf.size)
            uses[i].add(path)
        result.close()
    return sorted(sizes, key=lambda p: (-sizes[p], p)), uses


def _prescan_all(paths: tuple[str, ...]) -> None:
    for path in paths:
        _prescan(path)


def _prescan(path: str) -> None:
    """Scan one shared object into the cache (in a pool worker); a failure is left for the target
    that needs it to report, with its own context."""
    from uk_depscan.syscalls.scan import scan_library

    with contextlib.suppress(DepscanError, MemoryError, OSError):
        scan_library(open_elf(path))


def _import_count(path: str) -> int:
    """Undefined dynamic symbols of the ELF at ``path`` (0 when it cannot be read)."""
    try:
        with open_elf(path) as elf:
            dyn = dynamic_symbols(elf)
            return int((dyn.table["shndx"] == 0).sum()) if dyn.count else 0
    except (DepscanError, MemoryError, OSError):
        return 0


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _out_of_memory(path: str, display: str) -> ResourceError:
    """MemoryError or a failed mmap (ENOMEM) as one line with the figures.

    ``ulimit -v`` on libtorch_cpu.so used to surface as "internal error: MemoryError" (exit 3): a
    limit of the environment is bad input for this run (exit 2), not a bug.
    """
    try:
        mapped = f"{os.stat(path).st_size >> 20} MB mapped"
    except OSError:
        mapped = "size unknown"
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    limit = f"; address-space limit {soft >> 20} MB" if soft != resource.RLIM_INFINITY else ""
    return ResourceError(f"not enough memory to analyse {display} ({mapped}{limit})")


def syscall_matrix(reports: list[TargetReport]) -> tuple[MatrixRow, ...]:
    """Every syscall any target needs (reached or start-up), with its gap verdict (the last
    target's), tier-sorted; a syscall without a verdict comes first."""
    verdict = {g.name: g for r in reports for g in r.gaps}
    needed = [{f.name for f in r.syscalls.syscalls + r.syscalls.baseline} if r.syscalls else set() for r in reports]
    names = sorted(set[str]().union(*needed))
    rows = []
    for n in names:
        g = verdict.get(n)
        need = tuple(n in s for s in needed)
        if g is None:
            rows.append(MatrixRow(n, None, None, None, None, need))
        else:
            rows.append(MatrixRow(n, g.status, g.tier, g.action, g.kconfig, need))
    return tuple(sorted(rows, key=lambda r: (r.tier.rank if r.tier else -1, -sum(r.needed_by), r.name)))


def _unikraft_table(options: Options) -> UnikraftTable:
    path = Path(options.unikraft_table) if options.unikraft_table else None
    return load_unikraft_table(options.unikraft, path)


def _route_view(
    r: TargetReport, table: UnikraftTable, priors: dict[str, LoupePrior], musl: LibmuslAvailability | None, route: Route
) -> TargetReport:
    """binary-compat: the Linux ELF under app-elfloader with glibc — start-up baseline included,
    loader flags checked.  native: rebuilt against lib-musl — the glibc loader never runs, so no
    baseline and no loader flags, plus the libc-symbol check.  both: side by side.  Each route
    reads the table as that route builds it (app-elfloader's syscalls count for binary-compat only)."""
    warnings = r.warnings
    if musl is None and route is not Route.BINARY_COMPAT:
        warnings += (
            f"native route: no lib-musl availability table for Unikraft {table.release} "
            "(libc-symbol check skipped; `uk-depscan tables libmusl` generates one)",
        )
    if route is Route.NATIVE:
        gaps, plan = target_gaps(r, table, priors, "native", with_baseline=False)
        return dataclasses.replace(
            r,
            gaps=gaps,
            kconfig=plan,
            native=native_route(r, musl) if musl is not None else None,
            route=(),
            warnings=warnings,
        )
    native = native_route(r, musl) if route is Route.BOTH and musl is not None else None
    gaps, plan = target_gaps(r, table, priors, "binary-compat")
    return dataclasses.replace(r, gaps=gaps, kconfig=plan, native=native, warnings=warnings)


def native_route(report: TargetReport, musl: LibmuslAvailability) -> NativeRoute:
    imports = tuple((i.name, i.version, i.version_file) for i in report.imports)
    return NativeRoute(musl.release, musl.musl_version or "unknown", native_symbol_gaps(imports, musl.has))


def target_gaps(
    report: TargetReport, table: UnikraftTable, priors: dict[str, LoupePrior], route: str, with_baseline: bool = True
) -> tuple[tuple[Gap, ...], KconfigPlan | None]:
    """Everything reachable, plus (binary-compatibility route) the start-up baseline, each with its
    path class and the breadth of its evidence (see :mod:`uk_depscan.unikraft.priority`); the
    ``enable`` gaps' options resolved to one satisfiable set.  ``table`` is the full table.  Only
    names of the target architecture's Linux syscalls become gaps: a recovered number that is not
    one (``syscall(-1)``) is reported by the syscall stage, never planned for."""
    if report.syscalls is None:
        return (), None
    linux = load_linux_table(report.syscalls.arch.value)
    names = {n: v for n, v in reach_paths(report.syscalls, with_baseline).items() if n in linux}
    obs = report.observation
    if obs is not None and obs.scope is ObservationScope.LIBRARY:
        for n in obs.unreached:  # the target's code made it, the static answer missed it
            if n in linux:
                names.setdefault(n, (ReachPath.NORMAL, None))
    view = table.for_route(route)
    gaps, plan = plan_kconfig(assess_all(names, view, priors), table, route, priors, names)
    findings = {f.name: f for f in report.syscalls.baseline}
    findings.update({f.name: f for f in report.syscalls.syscalls})  # the target's own chain wins
    gaps = tuple(_with_blame(g, findings.get(g.name)) for g in gaps)
    if obs is None:
        return gaps, plan
    from uk_depscan.observe.observed import observed_for_gaps

    baseline = {f.name for f in report.syscalls.baseline} if with_baseline else set()
    return apply_observation(gaps, observed_for_gaps(obs, baseline), frozenset(obs.unreached)), plan


def with_observation(r: TargetReport, traces: tuple[Trace, ...]) -> TargetReport:
    """The target with what the traces observed, and every reached and start-up syscall marked."""
    from uk_depscan.observe.observed import observe

    if r.syscalls is None:
        return r
    s = r.syscalls
    reached, baseline = {f.name for f in s.syscalls}, {f.name for f in s.baseline}
    names = {os.path.basename(r.target.rsplit("!", 1)[-1])} | ({r.elf.soname} if r.elf.soname else set())
    obs = observe(
        traces,
        names=names,
        sha256=r.sha256,
        arch_names=load_linux_table(s.arch),
        reached=reached,
        baseline=baseline,
    )
    mine, process = set(obs.syscalls), set(obs.process)
    marked = dataclasses.replace(
        s,
        syscalls=tuple(dataclasses.replace(f, observed=f.name in mine) for f in s.syscalls),
        baseline=tuple(dataclasses.replace(f, observed=f.name in process) for f in s.baseline),
    )
    warnings = r.warnings
    if obs.scope is ObservationScope.LIBRARY and not obs.matched:
        warnings += (f"--observed: {obs.rule}",)
    return dataclasses.replace(r, syscalls=marked, observation=obs, warnings=warnings)


_PATH_ORDER = (ReachPath.STARTUP, ReachPath.NORMAL, ReachPath.RARE, ReachPath.FAILURE)


def reach_paths(s: SyscallReport, with_baseline: bool = True) -> dict[str, tuple[ReachPath, Breadth | None]]:
    """Syscall name -> (strongest path class, breadth of the target's evidence)."""
    out: dict[str, tuple[ReachPath, Breadth | None]] = {
        f.name: (ReachPath.FAILURE if f.failure_only else ReachPath.NORMAL, f.breadth) for f in s.syscalls
    }
    for f in s.baseline if with_baseline else ():
        path = ReachPath.RARE if f.rare else ReachPath.STARTUP
        old = out.get(f.name)
        if old is None or _PATH_ORDER.index(path) < _PATH_ORDER.index(old[0]):
            out[f.name] = (path, old[1] if old else None)
    return out


def _with_blame(gap: Gap, f: SyscallFinding | None) -> Gap:
    """Add which libraries the shortest evidence chain runs through (the blame, in one line)."""
    if f is None:
        return gap
    libs = [lib.rsplit("/", 1)[-1] for lib in f.libraries]
    return dataclasses.replace(
        gap,
        reasons=(*gap.reasons, f"needed via {len(libs)} librar{'y' if len(libs) == 1 else 'ies'}: {', '.join(libs)}"),
    )


@_gc_paused
def analyze_target(
    path: str,
    display: str,
    config: SearchConfig,
    inputs: Inputs,
    options: Options,
    note: Callable[[str], None] = lambda _msg: None,
) -> TargetReport:
    result = resolve_tree(path, config, display_name=display)
    try:
        return _analyze_loaded(result, display, inputs, options, note, config)
    finally:
        # The report holds no ElfFile.  Closed here, each file's map and derived tables go as soon
        # as nothing else uses them; left to the collector, an ElfFile and its tables form a cycle
        # that outlives the target (the collector is paused during it), and a wheel of 136 targets
        # that all load libtorch_cpu.so grew one process to 3.4 GB.
        result.close()


def _analyze_loaded(
    result: LoadResult,
    display: str,
    inputs: Inputs,
    options: Options,
    note: Callable[[str], None],
    config: SearchConfig,
) -> TargetReport:
    root = result.files[0]
    warnings: list[str] = []
    if not root.arch_supported:
        warnings.append(
            f"{root.machine_name} ELFCLASS{root.elf_class}: read, but only x86_64 and aarch64 are analysed for syscalls"
        )
    imports: tuple[ImportRecord, ...] = ()
    problems: tuple[VersionProblem, ...] = ()
    syscalls = None
    below = cached_below_syscall(root, None if options.no_cache else CacheStore()) if options.syscalls else None
    if options.symbols:
        imports, problems, syscalls = _bind_and_scan(result, inputs, options, warnings, note)
        if syscalls is not None:
            syscalls = _with_runtime_loads(result, syscalls, below, config, inputs, options, note)
    route = binary_compat_findings(tuple(_route_facts(result, inputs))) if options.syscalls else ()
    # input provenance: the object identity, memoised (the syscall scan above has just computed it)
    digest = object_identity(root, memo=None if options.no_cache else CacheStore()).sha256 if options.syscalls else None
    return TargetReport(
        display,
        summarize_elf(root, options.symbols),
        _display_tree(result, inputs),
        imports,
        problems,
        tuple(warnings),
        syscalls,
        below=below,
        route=route,
        sha256=digest,
    )


def _bind_and_scan(
    result: LoadResult, inputs: Inputs, options: Options, warnings: list[str], note: Callable[[str], None]
) -> tuple[tuple[ImportRecord, ...], tuple[VersionProblem, ...], SyscallReport | None]:
    """Symbol binding, then (when asked and the architecture is analysed) the syscall stage;
    appends what it had to skip to ``warnings``."""
    root = result.files[0]
    bindings = bind_symbols(result)
    tree = result.tree
    imports = tuple(
        sorted(
            (
                ImportRecord(
                    b.symbol.name,
                    b.symbol.version,
                    b.symbol.version_file,
                    b.symbol.binding,
                    b.symbol.sym_type,
                    inputs.display(tree.objects[b.provider].path) if b.provider is not None else None,
                )
                for b in bindings.of(0)
            ),
            key=lambda r: (r.name, r.version or ""),
        )
    )
    warnings += [f"{inputs.display(tree.objects[i].path)}: symbols skipped: {why}" for i, why in bindings.skipped]
    if options.syscalls and options.libc_implied:
        warnings.append(
            f"libc model {options.libc_model}: implied by --route native (a rebuild against lib-musl runs "
            "musl's code); pass --libc to choose another"
        )
    if options.syscalls and options.libc_model is LibcModel.MUSL:
        warnings.append(MUSL_WARNING)
    syscalls = None
    if options.syscalls and root.arch_supported:
        analysis = analyze_syscalls(
            result,
            bindings,
            libc_model=options.libc_model,
            entries=options.entries,
            no_cache=options.no_cache,
            progress=note,
        )
        syscalls = syscall_report(analysis, root.machine_name, inputs.display)
    return imports, tuple(bindings.version_problems), syscalls


MAX_RUNTIME_LOADS = 16  # objects loaded at run time analysed per target (each brings its own closure)


def _with_runtime_loads(
    result: LoadResult,
    syscalls: SyscallReport,
    below: BelowSyscall | None,
    config: SearchConfig,
    inputs: Inputs,
    options: Options,
    note: Callable[[str], None],
) -> SyscallReport:
    """The answer plus what the objects the target loads at run time by a name in its data reach:
    Python extension modules it imports (:mod:`uk_depscan.loader.pyimport`) and libraries it
    dlopens (:mod:`uk_depscan.syscalls.runtime`); what those load in turn too, breadth first, up to
    MAX_RUNTIME_LOADS."""
    root = result.files[0]
    store = None if options.no_cache else CacheStore()
    loaded = {os.path.realpath(o.path) for o in result.tree.objects if not o.error}
    queue = [(*x, _label(result, 0, inputs)) for x in _loads_of(root, below, config, loaded)]
    if not queue:
        return syscalls
    seen = {os.path.realpath(root.path)}
    # a loaded object's chains are wanted only for what the answer does not have yet on a normal path
    known = {f.number for f in syscalls.syscalls if not f.failure_only}
    answers: list[LoadedAnswer] = []
    while queue and len(answers) < MAX_RUNTIME_LOADS:
        name, path, via, loader = queue.pop(0)
        if os.path.realpath(path) in seen:
            continue
        seen.add(os.path.realpath(path))
        shown = inputs.display(path)
        note(f"analysing {name}, loaded at run time")
        try:
            mres = resolve_tree(path, config, display_name=shown)
        except ResourceError:
            raise
        except DepscanError as err:  # one bad object is a line of the report, never the target's failure
            answers.append(LoadedAnswer(name, shown, via, os.path.basename(path), loader, None, str(err)))
            continue
        label = _label(mres, 0, inputs)
        try:
            elf = mres.files[0]
            if elf.e_machine != root.e_machine or not elf.arch_supported:
                why = f"{elf.machine_name} ELFCLASS{elf.elf_class}: not the target's architecture"
                answers.append(LoadedAnswer(name, shown, via, label, loader, None, why))
                continue
            analysis = analyze_syscalls(
                mres,
                bind_symbols(mres),
                libc_model=options.libc_model,
                no_cache=options.no_cache,
                progress=note,
                known=frozenset(known),
                loaded=frozenset(loaded),
            )
            report = syscall_report(analysis, elf.machine_name, inputs.display)
            loaded.update(os.path.realpath(o.path) for o in mres.tree.objects if not o.error)
            more = _loads_of(elf, cached_below_syscall(elf, store), config, loaded)
        except ResourceError:
            raise
        except DepscanError as err:
            answers.append(LoadedAnswer(name, shown, via, label, loader, None, str(err)))
            continue
        finally:
            mres.close()
        known.update(f.number for f in report.syscalls if not f.failure_only)
        answers.append(LoadedAnswer(name, shown, via, label, loader, report))
        queue += [(*x, label) for x in more]
    for name, path, via, loader in queue:  # past the bound: named, not analysed
        if os.path.realpath(path) not in seen:
            seen.add(os.path.realpath(path))
            why = f"past the first {MAX_RUNTIME_LOADS} objects loaded at run time"
            answers.append(LoadedAnswer(name, inputs.display(path), via, os.path.basename(path), loader, None, why))
    return with_loaded(syscalls, _label(result, 0, inputs), answers)


def _loads_of(
    elf: ElfFile, below: BelowSyscall | None, config: SearchConfig, loaded: set[str]
) -> list[tuple[str, str, LoadVia]]:
    """What ``elf`` loads at run time by a name in its data: the Python modules it imports (sorted by
    name), then the libraries it dlopens that are found (as glibc's dlopen searches from it: its
    DT_RPATH/DT_RUNPATH, the cache, the default directories) and not already loaded with it — an
    object of its closure is in the answer through the imports bound to it."""
    modules = module_imports(elf, str(elf.path), config.python_path)
    out = [(m.name, m.path, LoadVia.PYTHON_IMPORT) for m in modules]
    names = [t.name for t in below.dlopen_targets] if below is not None else []
    if names:
        res, edges = resolve_with_dlopen(elf.path, config, lambda i, _elf: names if i == 0 else ())
        try:
            for e in edges:
                path = res.tree.objects[e.target].path if e.target is not None else None
                if path is not None and e.target != 0 and os.path.realpath(path) not in loaded:
                    out.append((e.name, path, LoadVia.DLOPEN))
        finally:
            res.close()
    return out


def _label(result: LoadResult, idx: int, inputs: Inputs) -> str:
    """An object's name in evidence chains, as the syscall stage writes it (soname, else file name)."""
    obj = result.tree.objects[idx]
    return inputs.display(obj.soname or obj.path.rsplit("/", 1)[-1])


def _route_facts(result: LoadResult, inputs: Inputs) -> Iterator[tuple[str, str, bool, bool, bool, bool, bool]]:
    for idx, elf in sorted(result.files.items()):
        etype = {ET_EXEC: "EXEC", ET_DYN: "DYN"}.get(elf.e_type, "?")
        yield (
            inputs.display(result.tree.objects[idx].path),
            etype,
            idx == 0,
            elf.is_pie,
            elf.textrel,
            elf.exec_stack,
            elf.static_tls,
        )


def summarize_elf(elf: ElfFile, symbols: bool = True) -> ElfSummary:
    dyn = elf.dynamic
    n_imp = n_exp = 0
    ifuncs: tuple[str, ...] = ()
    if symbols:
        syms = dynamic_symbols(elf)
        n_imp, n_exp = len(syms.imported_indices()), len(syms.defined_indices())
        defined = syms.defined_indices()
        kinds = syms.table["info"][defined] & 0xF if len(defined) else np.zeros(0)
        ifuncs = tuple(sorted(syms.names[int(i)] for i in defined[kinds == STT_GNU_IFUNC]))
    etype = {ET_EXEC: "EXEC", ET_DYN: "DYN"}.get(elf.e_type, f"ET_{elf.e_type}")
    tls = elf.tls
    return ElfSummary(
        elf.elf_class,
        elf.machine_name,
        elf.arch_supported,
        etype,
        elf.is_pie,
        elf.interp,
        dyn.soname if dyn else None,
        dyn.needed if dyn else (),
        dyn.rpath if dyn else None,
        dyn.runpath if dyn else None,
        elf.build_id,
        elf.textrel,
        elf.exec_stack,
        elf.static_tls,
        tls.memsz if tls else None,
        ifuncs,
        len(init_array(elf)),
        len(fini_array(elf)),
        tuple(_note_text(n) for n in elf.dlopen_notes),
        n_imp,
        n_exp,
    )


def _note_text(note: dict[str, object]) -> str:
    sonames = note.get("soname")
    names = ", ".join(str(s) for s in sonames) if isinstance(sonames, list) else str(sonames)
    return f"{names} (feature={note.get('feature', '?')}, priority={note.get('priority', '?')})"


def _display_tree(result: LoadResult, inputs: Inputs) -> LoadTree:
    tree = result.tree
    objs = tuple(
        dataclasses.replace(
            o,
            path=inputs.display(o.path),
            realpath=inputs.display(o.realpath),
            tried=tuple(dataclasses.replace(a, path=inputs.display(a.path)) for a in o.tried),
        )
        for o in tree.objects
    )
    missing = tuple(
        dataclasses.replace(
            m,
            reason=_translate(m.reason, inputs),
            tried=tuple(dataclasses.replace(a, path=inputs.display(a.path)) for a in m.tried),
        )
        for m in tree.missing
    )
    return dataclasses.replace(tree, objects=objs, missing=missing)


def _translate(text: str, inputs: Inputs) -> str:
    for real, shown in inputs.prefixes.items():
        text = text.replace(real, shown)
    return text
