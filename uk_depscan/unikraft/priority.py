"""The priority model: how likely the target is to make a syscall, what to do about it, how urgently.

Every gap (a syscall the target can make, against one Unikraft release and route) gets

* a **likelihood** ``L`` in [0, 1]: the estimated probability that the target really makes the syscall
  when it runs, from the signals below (:func:`likelihood`);
* an **action** (:func:`choose_action`): ``enable`` the option that provides it, ``implement`` it,
  ``fake`` it (return 0), ``stub`` it (fail with ENOSYS), ``keep`` what Unikraft does today, or
  ``investigate`` when the evidence cannot decide;
* a **tier** P0-P3 (:func:`tier`) from the action, the path class and ``L``.

Signals, each with its reason (all shown in the gap's reasons):

1. *Path class* (:class:`~uk_depscan.model.ReachPath`): the exact start-up part of the baseline is
   made by every dynamically linked program (``L = 1``); a syscall reached only through failure
   functions (abort, assertion/fortify failures) or only on ld.so's rare paths (errors, ``--list``,
   auditing, profiling, re-exec) is made only when something already went wrong or a debugging
   feature is on: it is never P0 by itself (tier P3).
2. *Usage prior* ``u``: the share of Loupe's 110 real workloads (Lefeuvre et al., ASPLOS 2024;
   CC BY 4.0) that made the syscall at all.  Measured on the traced-workload development set it is
   the single best predictor of whether a library makes a syscall it can reach (ranking AUC 0.80 on
   libonnxruntime against 0.53 for Loupe's "required" share, which the previous model ranked by).
   A syscall Loupe has no data on has no prior: its likelihood rests on the static evidence alone.
3. *Strength of the static evidence* (:class:`~uk_depscan.model.Breadth`): a syscall instruction or
   ``syscall()`` call in the target's own code; an import of the target that is essentially a
   wrapper of the syscall (its whole closure makes at most :data:`WRAPPER_MAX` syscalls: ``unlink``
   makes ``unlink``); otherwise how many of the target's imports reach it, the more the likelier
   (a syscall behind ``malloc`` is reached from hundreds of imports, one behind ``getaddrinfo``
   from one).  Evidence and prior combine as independent reasons to believe the syscall is made
   (noisy-OR): ``L = 1 - (1 - u)(1 - e)``.
4. *Consequence* - Loupe's stubbable/fakeable shares over the apps that used the syscall (at least
   :data:`MIN_APPS` of them), the stub Unikraft already has (a fake that returns success is often
   enough), known fallbacks on ENOSYS in glibc, libstdc++, libgomp and common libraries
   (:data:`FALLBACKS`), failures callers tolerate (:data:`OPTIONAL`), and what a wrong stub breaks
   (:data:`ZERO_MEANS`: a fake 0 is a valid file descriptor, a NULL address, "you are the child").

No weight, rule or list here names a library: the knowledge is per syscall, with its source.
"""

from __future__ import annotations

from dataclasses import dataclass

from uk_depscan.model import Action, Breadth, Evidence, ReachPath, SupportStatus, Tier
from uk_depscan.unikraft.tables import LoupePrior, SyscallSupport

LOUPE_WORKLOADS = 110  # Loupe's benchmark workloads (syscall_tables/loupe, "workloads")
MIN_APPS = 5  # fewer Loupe apps than this: too small a sample for the stubbable/fakeable shares
STUB_OK = FAKE_OK = 0.8  # share of Loupe apps that still worked with ENOSYS / with a fake 0
WRAPPER_MAX = 3  # an import whose closure makes at most this many syscalls is a wrapper of each


@dataclass(frozen=True)
class Weights:
    """The constants of :func:`likelihood` and :func:`tier` (tuned on the development set's tuning
    part only; ``bench/score_advice.py`` reports the kept-aside part apart)."""

    own_site: float = 0.7  # e for a site in the target's own code
    wrapper: float = 0.5  # e for a wrapper import
    per_import: float = 0.01  # e = 1 - (1 - per_import)^imports for any other import evidence
    specific: float = 0.15  # e = specific * WRAPPER_MAX / size for an import whose closure makes size syscalls
    indirect: float = 0.05  # e without evidence in the target's code (start-up only, constructors)
    indirect_prior: float = 0.0  # share of the Loupe prior kept without evidence in the target's code
    p0: float = 0.6  # L at or above: P0 for implement/enable
    p1: float = 0.3  # L at or above: P1 (below: P2)


WEIGHTS = Weights()


# -- syscall knowledge, each entry with its source -------------------------------------------------
@dataclass(frozen=True)
class Fallback:
    """What a caller does when the syscall fails: ``on`` is the error that triggers it ("ENOSYS",
    or "any" when every failure does), ``to`` the syscalls it uses instead (empty: the caller goes
    on without), ``source`` where that is written."""

    to: tuple[str, ...]
    on: str
    source: str


FALLBACKS: dict[str, Fallback] = {
    "clone3": Fallback(("clone",), "ENOSYS", "glibc 2.36 sysdeps/unix/sysv/linux/clone-internal.c (__clone_internal)"),
    "faccessat2": Fallback(("faccessat",), "ENOSYS", "glibc 2.36 sysdeps/unix/sysv/linux/faccessat.c (__faccessat)"),
    "statx": Fallback(
        ("newfstatat",), "ENOSYS", "glibc 2.36 sysdeps/unix/sysv/linux/statx.c (statx_generic on ENOSYS)"
    ),
    "preadv2": Fallback(("preadv",), "ENOSYS", "glibc 2.36 sysdeps/unix/sysv/linux/preadv2.c (flags == 0)"),
    "pwritev2": Fallback(("pwritev",), "ENOSYS", "glibc 2.36 sysdeps/unix/sysv/linux/pwritev2.c (flags == 0)"),
    "close_range": Fallback(
        ("close",), "any", "glibc 2.36 sysdeps/unix/sysv/linux/closefrom.c (__closefrom_fallback closes in a loop)"
    ),
    "getrandom": Fallback(
        ("openat", "read"), "ENOSYS", "glibc 2.36 stdlib/arc4random.c (reads /dev/urandom when getrandom is ENOSYS)"
    ),
    "epoll_pwait2": Fallback(
        ("epoll_pwait",), "ENOSYS", "libuv src/unix/linux.c (uv__io_poll: epoll_pwait2 disabled after ENOSYS)"
    ),
    "io_uring_setup": Fallback(
        ("pread64", "pwrite64"),
        "any",
        "libuv src/unix/linux.c (uv__iou_init: without a ring, file operations run on the thread pool)",
    ),
    "mremap": Fallback(
        ("mmap", "munmap"),
        "any",
        "glibc 2.36 malloc/malloc.c (__libc_realloc: mremap_chunk fails -> malloc, memcpy, munmap_chunk)",
    ),
    "sendfile": Fallback(
        ("read", "write"),
        "ENOSYS",
        "libstdc++ 12 src/filesystem/ops-common.h (do_copy_file: on ENOSYS or EINVAL, a streambuf copy)",
    ),
    "sched_getaffinity": Fallback(
        ("openat", "read"),
        "any",
        "libgomp 12 config/linux/proc.c (gomp_init_num_threads: sysconf(_SC_NPROCESSORS_ONLN), which glibc 2.36 "
        "sysdeps/unix/sysv/linux/getsysstats.c reads from /sys/devices/system/cpu/online)",
    ),
}

# Failures the caller tolerates with no fallback at all (the feature is simply off).
OPTIONAL: dict[str, str] = {
    "rseq": "glibc 2.36 sysdeps/nptl/dl-tls_init_tp.c (rseq registration failure leaves __rseq_size 0)",
    "set_robust_list": "glibc 2.36 sysdeps/nptl/dl-tls_init_tp.c (a failure only disables robust mutexes)",
}

# What a 0 return means (man 2 <name>, RETURN VALUE): a fake that "returns 0" is not harmless there.
_FD = "a fake 0 is file descriptor 0 (stdin)"
_ADDR = "a fake 0 is the NULL address"
_CHILD = "a fake 0 tells the caller it is the new child"
_EOF = "a fake 0 is end of file / no progress"
ZERO_MEANS: dict[str, str] = {
    **dict.fromkeys(
        (
            "open",
            "openat",
            "openat2",
            "creat",
            "socket",
            "accept",
            "accept4",
            "dup",
            "eventfd2",
            "epoll_create1",
            "memfd_create",
            "timerfd_create",
            "inotify_init1",
            "pidfd_open",
            "io_uring_setup",
            "perf_event_open",
            "signalfd4",
            "userfaultfd",
        ),
        _FD,
    ),
    **dict.fromkeys(("mmap", "mremap", "shmat", "brk"), _ADDR),
    **dict.fromkeys(("clone", "clone3", "fork", "vfork"), _CHILD),
    **dict.fromkeys(("read", "pread64", "readv", "recvfrom", "recvmsg", "write", "pwrite64", "writev"), _EOF),
}

# Served by the vDSO on Linux (x86-64: clock_gettime, gettimeofday, time, getcpu; aarch64:
# clock_gettime, gettimeofday, clock_getres): glibc calls them without entering the kernel when
# AT_SYSINFO_EHDR is set (sysdeps/unix/sysv/linux/dl-vdso-setup.c), so strace and Loupe under-count
# them; app-elfloader can supply a vDSO (CONFIG_VDSO, its vdso/ directory).
VDSO = frozenset({"clock_gettime", "gettimeofday", "time", "getcpu", "clock_getres"})


# Loupe rows that describe how the benchmarks were launched, not what their code does: the exec
# that starts each traced app is in its trace (execve: used by 110/110 apps, "required" by 109, the
# counts themselves say so).  Such a row is not used at all: no usage prior, no stub/fake shares.
LAUNCH_ARTIFACTS = frozenset({"execve"})


# -- signals ----------------------------------------------------------------------------------------
def usage(prior: LoupePrior | None) -> float | None:
    """Share of Loupe's workloads that made the syscall; None when Loupe has no row for it (or the
    row counts the benchmarks' launch, :data:`LAUNCH_ARTIFACTS`)."""
    if prior is None or prior.name in LAUNCH_ARTIFACTS:
        return None
    return min(1.0, prior.used / LOUPE_WORKLOADS)


def evidence_of(path: ReachPath, b: Breadth | None) -> Evidence:
    if path is ReachPath.STARTUP and (b is None or not (b.own_sites or b.imports)):
        return Evidence.STARTUP
    if b is None:
        return Evidence.INDIRECT
    if b.own_sites:
        return Evidence.OWN_SITE
    if b.imports and b.narrowest_size <= WRAPPER_MAX:
        return Evidence.WRAPPER
    return Evidence.IMPORT if b.imports else Evidence.INDIRECT


def evidence_weight(ev: Evidence, b: Breadth | None, w: Weights = WEIGHTS) -> float:
    """``e``: how strongly the static evidence alone says the target's code makes the syscall.

    An own site or a wrapper import counts as such; any other import by how specific it is (its
    closure's size, ``WRAPPER_MAX / size`` of ``specific``) and by how many imports reach the
    syscall (``1 - (1 - per_import)^imports``), whichever is stronger."""
    if b is None or ev in (Evidence.INDIRECT, Evidence.STARTUP):
        return w.indirect
    spread = 1.0 - (1.0 - w.per_import) ** b.imports
    if ev is Evidence.OWN_SITE:
        return max(w.own_site, spread)
    if ev is Evidence.WRAPPER:
        return max(w.wrapper, spread)
    specific = w.specific * WRAPPER_MAX / b.narrowest_size if b.narrowest_size else 0.0
    return max(specific, spread)


def likelihood(path: ReachPath, ev: Evidence, b: Breadth | None, u: float | None, w: Weights = WEIGHTS) -> float:
    """How likely the *target's own code* makes the syscall: ``L = 1 - (1 - p)(1 - e)``.

    ``p`` is the Loupe prior ``u``; without any evidence in the target's code (the start-up baseline
    alone, a dependency's constructor) only ``indirect_prior`` of it.  The start-up path itself does not
    enter ``L``: every program makes those syscalls whatever the target does, which :func:`tier`
    expresses (P0 for work on the start-up path).  Failure-only and rare-start-up syscalls keep a
    tenth of ``L``: they are made only when something went wrong or a debugging feature is on."""
    e = evidence_weight(ev, b, w)
    own = ev in (Evidence.OWN_SITE, Evidence.WRAPPER, Evidence.IMPORT)
    prior = (u or 0.0) * (1.0 if own else w.indirect_prior)
    value = 1.0 - (1.0 - prior) * (1.0 - e)
    if path in (ReachPath.FAILURE, ReachPath.RARE):
        value *= 0.1
    return round(value, 3)


# -- action ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Choice:
    action: Action
    reasons: tuple[str, ...]


def _ratios(prior: LoupePrior | None) -> tuple[float, float, float] | None:
    if prior is None or prior.used < MIN_APPS:
        return None
    return prior.stubbable / prior.used, prior.fakeable / prior.used, prior.required / prior.used


def choose_action(
    name: str,
    status: SupportStatus,
    support: SyscallSupport | None,
    prior: LoupePrior | None,
    fallback_provided: tuple[str, ...] | None,
) -> Choice:
    """What to do about one syscall, with the reasons that decided it.

    ``fallback_provided``: the fallback syscalls of :data:`FALLBACKS` that the release provides
    (None when the syscall has no known fallback, or one the release lacks)."""
    if status is SupportStatus.PROVIDED:
        return Choice(Action.NONE, ("provided by a library that is on by default",))
    if status is SupportStatus.NEEDS_KCONFIG:
        lib = support.library if support is not None else "its library"
        opt = support.kconfig if support is not None else "its option"
        behaviour = f" ({support.detail})" if support is not None and support.detail != "full" else ""
        return Choice(Action.ENABLE, (f"implemented by {lib}{behaviour} once {opt} is enabled",))
    if status is SupportStatus.UNVERIFIED:
        return Choice(
            Action.ENABLE,
            ("implemented by app-elfloader of an older release: verify that its registration builds on this one",),
        )
    behaviour = support.behavior if support is not None else "error_enosys"
    fails_enosys = status is SupportStatus.ABSENT or behaviour == "error_enosys"
    fb = FALLBACKS.get(name)
    if fb is not None and fallback_provided is not None:
        to = ", ".join(fallback_provided) or "nothing"
        if fails_enosys or (fb.on == "any" and behaviour in ("error_other", "error_enosys")):
            why = f"on failure the caller falls back to {to}, which Unikraft provides ({fb.source})"
            return Choice(Action.KEEP, (why,))
        ratios = _ratios(prior)
        fake_ok = ratios is not None and ratios[1] >= FAKE_OK and name not in ZERO_MEANS
        if status is SupportStatus.STUB and behaviour == "fake_success" and not fake_ok:
            return Choice(
                Action.STUB,
                (
                    f"the stub returns success instead of failing, so the caller's fallback to {to} "
                    f"(which Unikraft provides) never runs: make it fail with ENOSYS ({fb.source})",
                ),
            )
    if name in OPTIONAL and fails_enosys:
        return Choice(Action.KEEP, (f"callers tolerate its failure ({OPTIONAL[name]})",))
    ratios = _ratios(prior)
    zero = ZERO_MEANS.get(name)
    if ratios is None:
        if status is SupportStatus.STUB and behaviour == "fake_success" and zero is None:
            return Choice(Action.KEEP, ("no Loupe evidence against Unikraft's existing fake (it returns success)",))
        if status is SupportStatus.PARTIAL:
            return Choice(Action.KEEP, ("partial implementation; no Loupe evidence that the missing paths matter",))
        why = "no Loupe data" if prior is None else f"Loupe has only {prior.used} app(s) using it"
        return Choice(Action.INVESTIGATE, (f"{why}: cannot tell implement from fake or stub",))
    stubbable, fakeable, _ = ratios
    if stubbable >= STUB_OK:
        if fails_enosys:
            return Choice(Action.KEEP, (f"stubbable in {stubbable:.0%} of Loupe apps; it already fails with ENOSYS",))
        if status is SupportStatus.STUB and behaviour == "fake_success" and fakeable >= FAKE_OK:
            return Choice(Action.KEEP, (f"fakeable in {fakeable:.0%} of Loupe apps; Unikraft's stub fakes success",))
        if status is SupportStatus.PARTIAL:
            return Choice(Action.KEEP, (f"stubbable in {stubbable:.0%} of Loupe apps; the missing paths may fail",))
        return Choice(Action.STUB, (f"stubbable in {stubbable:.0%} of Loupe apps",))
    if fakeable >= FAKE_OK and zero is None:
        if status is SupportStatus.STUB and behaviour == "fake_success":
            return Choice(Action.KEEP, (f"fakeable in {fakeable:.0%} of Loupe apps; Unikraft's stub fakes success",))
        if status is SupportStatus.PARTIAL:
            return Choice(Action.KEEP, (f"fakeable in {fakeable:.0%} of Loupe apps; the missing paths may fail",))
        return Choice(Action.FAKE, (f"fakeable in {fakeable:.0%} of Loupe apps",))
    why = f"Loupe: stubbable in {stubbable:.0%}, fakeable in {fakeable:.0%} of the apps using it"
    if zero is not None and fakeable >= FAKE_OK:
        why += f"; not faked: {zero} (man 2 {name})"
    if status is SupportStatus.STUB and behaviour == "fake_success":
        why += "; Unikraft's fake is not enough"
    return Choice(Action.IMPLEMENT, (why,))


# -- tier ----------------------------------------------------------------------------------------------
def tier(action: Action, path: ReachPath, value: float, w: Weights = WEIGHTS) -> Tier:
    """P0/P1 for implement/enable by likelihood (work on the exact start-up path is P0); P1/P2 for
    fake/stub work; P2 for ``investigate`` and for an existing stub the target will very likely
    exercise (``keep`` with ``L >= p0``: check that its behaviour suffices for this target); P3 when
    nothing is to be done, or the syscall is made only on failure or rare start-up paths."""
    if action is Action.NONE or path in (ReachPath.FAILURE, ReachPath.RARE):
        return Tier.P3
    if action is Action.KEEP:
        return Tier.P2 if value >= w.p0 else Tier.P3
    if action is Action.INVESTIGATE:
        return Tier.P2
    if action in (Action.IMPLEMENT, Action.ENABLE):
        if path is ReachPath.STARTUP or value >= w.p0:
            return Tier.P0
        return Tier.P1 if value >= w.p1 else Tier.P2
    return Tier.P1 if value >= w.p0 else Tier.P2
