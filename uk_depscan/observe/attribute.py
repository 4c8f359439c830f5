"""Attribute the syscalls of a ``strace -f -k`` trace to the libraries whose code made them.

Rules (method: shared/notes/traced-workloads.md):

* **direct**: a syscall counts for library ``L`` when any frame of its ``-k`` stack lies in ``L``'s file
  (the path strace prints is the mapped file, i.e. the kernel's resolved path; give realpaths).
* **derived**: a thread whose creation stack passes through ``L`` is ``L``'s thread; its syscalls whose
  frames all lie in the C runtime (``is_runtime``: by default the distribution's library directories,
  where ld.so, libc, libstdc++, libgcc_s live) are thread lifecycle (``set_robust_list``, ``rseq``,
  ``madvise``, ``exit`` ...) and count as derived for ``L``.  Syscalls with a frame in another non-runtime
  object belong to that object, not to ``L``.  A thread created by runtime code alone (no non-runtime
  frame in its creation stack) inherits the libraries of the thread that created it.
* **through others**: a direct syscall whose innermost non-runtime frame is never the library's (or one
  of the objects given as its own) is listed apart with that object: the library called into code it
  does not link (the interpreter, a ``dlopen``-ed object's constructor), which a static answer for the
  library cannot be expected to contain.  It stays in ``direct`` (the rule above); the list explains.
* **start-up**: syscalls of a process's first thread from its ``execve`` until its first syscall with a
  non-runtime frame other than the outermost one (the executable's ``_start``): ld.so and libc
  initialisation.  They are nobody's; the ``execve`` itself (made by the tracer's child) is left out.
* **clone stacks**: glibc's ``clone3`` wrapper returns to the parent through code libunwind cannot step
  past, so strace prints one libc frame for it (seen with glibc 2.36 and strace 6.1).  When a
  ``clone``/``clone3``/``fork``/``vfork`` stack has no non-runtime frame, the stacks of the same thread's
  syscalls just before and after it stand in for it (in glibc's ``pthread_create`` these are the two
  ``rt_sigprocmask`` calls around ``clone3``).

A traced set is a lower bound for one run; use it for recall and ranking, never as "the rest is unused".
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from uk_depscan.observe.strace import Frame, Syscall, Trace

RUNTIME_DIRS = ("/lib/", "/lib64/", "/usr/lib/", "/usr/lib64/")
CREATORS = frozenset({"clone", "clone3", "fork", "vfork"})
EXECS = frozenset({"execve", "execveat"})


def default_is_runtime(path: str) -> bool:
    """The distribution's C runtime: objects under the system library directories."""
    return path.startswith(RUNTIME_DIRS)


@dataclass(frozen=True)
class LibrarySyscalls:
    """What one library made in one trace: syscall name → number of calls, direct and derived apart."""

    path: str
    direct: tuple[tuple[str, int], ...]
    derived: tuple[tuple[str, int], ...]
    threads_created: int
    # Direct syscalls never made with the library's own code nearest the syscall: the innermost
    # non-runtime frame was always another object (not one of ``own``), e.g. the interpreter or a
    # constructor of something the library's call made Python or ld.so load.  (syscall, that object).
    through_others: tuple[tuple[str, str], ...] = ()

    @property
    def direct_names(self) -> frozenset[str]:
        return frozenset(n for n, _ in self.direct)

    @property
    def derived_names(self) -> frozenset[str]:
        """Derived syscalls that are not also direct."""
        return frozenset(n for n, _ in self.derived) - self.direct_names


@dataclass(frozen=True)
class Attribution:
    """Per-library syscalls of a trace, the start-up syscalls, and every non-runtime object seen."""

    libraries: tuple[LibrarySyscalls, ...]
    startup: tuple[tuple[str, int], ...]
    objects: tuple[str, ...]


def _counted(names: Iterable[str]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(Counter(names).items()))


class _Threads:
    """Per-thread event order, effective stacks and which thread created which."""

    def __init__(self, trace: Trace, is_runtime: Callable[[str], bool]) -> None:
        self.is_runtime = is_runtime
        self.by_pid: dict[int, list[Syscall]] = defaultdict(list)
        for ev in trace.syscalls:
            self.by_pid[ev.pid].append(ev)
        self.stacks: dict[tuple[int, int], tuple[Frame, ...]] = {}
        self.parent: dict[int, int] = {}
        self.creation: dict[int, tuple[Frame, ...]] = {}
        for pid, events in self.by_pid.items():
            for i, ev in enumerate(events):
                stack = ev.stack
                if ev.name in CREATORS and not self.foreign(stack):
                    near = [events[j].stack for j in (i - 1, i + 1) if 0 <= j < len(events)]
                    stack = stack + tuple(f for s in near for f in s)
                self.stacks[pid, ev.line] = stack
                child = _child_pid(ev)
                if child is not None and child not in self.parent:
                    self.parent[child] = pid
                    self.creation[child] = stack

    def foreign(self, stack: tuple[Frame, ...]) -> bool:
        """Does the stack hold a frame of a non-runtime object (a mapped file, not e.g. ``[vdso]``)?"""
        return any(f.path.startswith("/") and not self.is_runtime(f.path) for f in stack)

    def stack(self, ev: Syscall) -> tuple[Frame, ...]:
        return self.stacks.get((ev.pid, ev.line), ev.stack)

    def creators(self, pid: int) -> frozenset[str]:
        """Objects in the creation stack of a thread (or, if only runtime code created it, of its creator)."""
        seen: set[int] = set()
        while pid in self.creation and pid not in seen:
            seen.add(pid)
            paths = frozenset(
                f.path for f in self.creation[pid] if f.path.startswith("/") and not self.is_runtime(f.path)
            )
            if paths:
                return paths
            pid = self.parent[pid]
        return frozenset()


def _child_pid(ev: Syscall) -> int | None:
    if ev.name not in CREATORS or ev.value is None or not (ev.value.isascii() and ev.value.isdigit()):
        return None
    child = int(ev.value)
    return child if child > 0 else None


def startup_syscalls(trace: Trace, is_runtime: Callable[[str], bool] = default_is_runtime) -> list[Syscall]:
    """Start-up syscalls of every process in the trace (see the module docstring); needs ``-k`` stacks."""
    threads = _Threads(trace, is_runtime)
    out: list[Syscall] = []
    for events in threads.by_pid.values():
        # A process's first thread is one that execs, or the trace's first pid; its start-up begins after
        # its last successful exec.
        execs = [i for i, ev in enumerate(events) if ev.name in EXECS and ev.value == "0"]
        if not execs:
            continue
        for ev in events[execs[-1] + 1 :]:
            frames = ev.stack[:-1]  # the outermost frame is the executable's _start
            if not ev.stack or threads.foreign(frames):
                break
            out.append(ev)
    return out


def _innermost_foreign(stack: tuple[Frame, ...], is_runtime: Callable[[str], bool]) -> str | None:
    return next((f.path for f in stack if f.path.startswith("/") and not is_runtime(f.path)), None)


def attribute(
    trace: Trace,
    libraries: Iterable[str],
    is_runtime: Callable[[str], bool] = default_is_runtime,
    own: Callable[[str, str], bool] | None = None,
) -> Attribution:
    """Direct and derived syscalls of each library (given by the path strace prints for it).

    ``own(library, object)`` says whether ``object`` counts as the library's own code for the
    ``through_others`` list (default: only the library itself); it never changes ``direct``.
    """
    is_own = own or (lambda lib, obj: lib == obj)
    threads = _Threads(trace, is_runtime)
    wanted = sorted(set(libraries))
    direct: dict[str, list[str]] = {lib: [] for lib in wanted}
    derived: dict[str, list[str]] = {lib: [] for lib in wanted}
    created: Counter[str] = Counter()
    own_names: dict[str, set[str]] = {lib: set() for lib in wanted}
    other: dict[str, dict[str, str]] = {lib: {} for lib in wanted}
    objects: set[str] = set()
    owners = {pid: threads.creators(pid) for pid in threads.by_pid}
    for pid in threads.parent:
        for lib in owners.get(pid, frozenset()) & direct.keys():
            created[lib] += 1
    startup = startup_syscalls(trace, is_runtime)
    before_code = {(ev.pid, ev.line) for ev in startup}
    for ev in trace.syscalls:
        if (ev.pid, ev.line) in before_code:
            continue  # start-up: nobody's (the executable's outermost _start frame is on these stacks)
        stack = threads.stack(ev)
        paths = {f.path for f in stack if f.path}
        objects.update(p for p in paths if p.startswith("/") and not is_runtime(p))
        inner = _innermost_foreign(stack, is_runtime)
        for lib in paths & direct.keys():
            direct[lib].append(ev.name)
            if inner is not None and not is_own(lib, inner):
                other[lib].setdefault(ev.name, inner)
            else:
                own_names[lib].add(ev.name)
        if not threads.foreign(stack):
            for lib in owners.get(ev.pid, frozenset()) & derived.keys():
                derived[lib].append(ev.name)
    return Attribution(
        tuple(
            LibrarySyscalls(
                lib,
                _counted(direct[lib]),
                _counted(derived[lib]),
                created[lib],
                tuple(sorted((n, o) for n, o in other[lib].items() if n not in own_names[lib])),
            )
            for lib in wanted
        ),
        _counted(ev.name for ev in startup),
        tuple(sorted(objects)),
    )
