"""Gaps against a Unikraft release and what to do about each one.

Classes (per reachable syscall, by name in the Unikraft table):

* ``provided``: implemented (full or constant) by a library that is on by default;
* ``needs-kconfig``: implemented, but only once ``CONFIG_X`` is enabled (Unikraft libraries are
  opt-in, so this is most provided syscalls: the action is the option to enable);
* ``partial``: implemented, with some paths returning an error (e.g. futex ops, ppoll sigmask);
* ``stub``: registered but a stub — the kind says what the application will see;
* ``absent``: not registered: the shim's generated stub returns ENOSYS.

Priority formula (documented in the README, tested in tests/test_gaps.py), per gap:

* Loupe ratios over the apps that used the syscall: ``stubbable = apps_stubbable/apps_using``,
  ``fakeable = apps_fakeable/apps_using``, ``required = apps_requiring/apps_using``; with no Loupe
  data, or fewer than :data:`MIN_APPS` apps, all three are treated as 0 (unknown).
* action: ``enable CONFIG_X`` for needs-kconfig; for absent/stub/partial: ``stub (ENOSYS)`` when
  stubbable ≥ 0.8, else ``fake (return 0)`` when fakeable ≥ 0.8, else ``implement``.  Nothing new
  is needed (action ``keep stub``) when the current behaviour already matches, when an existing
  stub is acceptable to Loupe (stubbable ≥ 0.8, or fakeable ≥ 0.8 for a stub that fakes success),
  or when glibc falls back to a syscall Unikraft provides on ENOSYS (:data:`GLIBC_FALLBACKS`).
* tier: P0 if the action is implement/enable and the syscall is on the start-up path (ld.so/libc
  initialisation) or Loupe found it required by ≥ 50 % of the apps using it; P1 for any other
  implement/enable (including syscalls Loupe has no data on); P2 for fake/stub work still to do;
  P3 when nothing is to be done or the syscall is reached only on failure paths.
"""

from __future__ import annotations

from collections.abc import Callable

from uk_depscan.model import (
    Action,
    Gap,
    NativeStatus,
    PlanStep,
    RouteFinding,
    Severity,
    SupportStatus,
    SymbolGap,
    Tier,
)
from uk_depscan.unikraft.tables import LoupePrior, SyscallSupport, UnikraftTable

STUB_OK, FAKE_OK = 0.8, 0.8
MIN_APPS = 5  # fewer Loupe apps than this: too small a sample to decide stub/fake/required
PROVIDED, NEEDS_KCONFIG, PARTIAL, STUB, ABSENT = (
    SupportStatus.PROVIDED,
    SupportStatus.NEEDS_KCONFIG,
    SupportStatus.PARTIAL,
    SupportStatus.STUB,
    SupportStatus.ABSENT,
)
# glibc 2.36 retries with an older syscall when the newer one returns ENOSYS:
# clone3 → clone (sysdeps/unix/sysv/linux/clone-internal.c), faccessat2 → faccessat
# (faccessat.c), statx → fstatat (statx.c fallback), epoll_pwait2 has no glibc caller but
# libraries probe it and fall back to epoll_pwait; rseq registration failure is tolerated (rseq.c).
GLIBC_FALLBACKS = {"clone3": "clone", "faccessat2": "faccessat", "statx": "newfstatat", "epoll_pwait2": "epoll_pwait"}


def classify(support: SyscallSupport | None) -> tuple[SupportStatus, str]:
    if support is None or support.status == "absent":
        return ABSENT, support.detail if support else "not in the release's syscall table"
    if support.status == "stub":
        return STUB, support.detail
    if support.detail.startswith("partial"):
        return PARTIAL, support.detail
    defaults = [p.kconfig_default for p in support.providers if not p.external]
    if support.kconfig and not any(d == "y" for d in defaults):
        return NEEDS_KCONFIG, support.detail
    return PROVIDED, support.detail


def assess(
    name: str,
    support: SyscallSupport | None,
    prior: LoupePrior | None,
    *,
    startup: bool,
    failure_only: bool,
    fallback_ok: bool = False,
) -> Gap:
    status, detail = classify(support)
    stubbable, fakeable, required = _ratios(prior)
    reasons = (
        [_loupe_reason(prior) if prior.used >= MIN_APPS else f"Loupe: only {prior.used} app(s), not used"]
        if prior
        else ["no Loupe data"]
    )
    if startup:
        reasons.append("on the start-up path (ld.so/libc initialisation)")
    if failure_only:
        reasons.append("reached only on failure paths")
    if support is not None and support.status == "stub":
        reasons.append(f"Unikraft stub: {support.detail} ({support.behavior})")
    action = _action(status, support, stubbable, fakeable)
    if fallback_ok and status in (ABSENT, STUB):
        action = Action.KEEP
        reasons.append(f"glibc falls back to {GLIBC_FALLBACKS[name]} on ENOSYS, which Unikraft provides")
    tier = _tier(action, startup, required, failure_only)
    return Gap(
        name,
        status,
        detail,
        support.library if support else None,
        support.kconfig if support else None,
        action,
        tier,
        tuple(reasons),
    )


def _ratios(prior: LoupePrior | None) -> tuple[float, float, float]:
    if prior is None or prior.used < MIN_APPS:
        return 0.0, 0.0, 0.0
    return prior.stubbable / prior.used, prior.fakeable / prior.used, prior.required / prior.used


def _loupe_reason(p: LoupePrior) -> str:
    return (
        f"Loupe: used by {p.used} apps, required by {p.required}, stubbable in {p.stubbable}, fakeable in {p.fakeable}"
    )


def _action(status: SupportStatus, support: SyscallSupport | None, stubbable: float, fakeable: float) -> Action:
    if status is PROVIDED:
        return Action.NONE
    if status is NEEDS_KCONFIG:
        return Action.ENABLE  # the option is the gap's kconfig (support.kconfig)
    wanted = Action.STUB if stubbable >= STUB_OK else Action.FAKE if fakeable >= FAKE_OK else Action.IMPLEMENT
    behaviour = support.behavior if support is not None else "error_enosys"
    if (wanted is Action.STUB and behaviour == "error_enosys") or (
        wanted is Action.FAKE and behaviour == "fake_success"
    ):
        return Action.KEEP
    if status is STUB and (stubbable >= STUB_OK or (fakeable >= FAKE_OK and behaviour == "fake_success")):
        return Action.KEEP
    if status is PARTIAL and wanted is not Action.IMPLEMENT:
        return Action.KEEP
    return wanted


def _tier(action: Action, startup: bool, required: float, failure_only: bool) -> Tier:
    if action in (Action.NONE, Action.KEEP) or failure_only:
        return Tier.P3
    if action in (Action.IMPLEMENT, Action.ENABLE):
        return Tier.P0 if startup or required >= 0.5 else Tier.P1
    return Tier.P2


def assess_all(
    names: dict[str, tuple[bool, bool]], table: UnikraftTable, priors: dict[str, LoupePrior]
) -> tuple[Gap, ...]:
    """``names``: syscall name → (on start-up path, failure-only); sorted by tier then name."""
    gaps = [
        assess(n, table.get(n), priors.get(n), startup=s, failure_only=f, fallback_ok=_fallback_provided(n, table))
        for n, (s, f) in names.items()
    ]
    return tuple(sorted(gaps, key=lambda g: (g.tier.rank, g.status.rank, g.name)))


def _fallback_provided(name: str, table: UnikraftTable) -> bool:
    older = GLIBC_FALLBACKS.get(name)
    return older is not None and classify(table.get(older))[0] in (PROVIDED, NEEDS_KCONFIG, PARTIAL)


# -- native route: rebuilding against Unikraft's lib-musl ----------------------------------------
LIBC_FILES = (
    "libc.so.6",
    "libm.so.6",
    "libpthread.so.0",
    "librt.so.1",
    "libdl.so.2",
    "ld-linux-x86-64.so.2",
    "ld-linux-aarch64.so.1",
)
# glibc binary-level names whose source-level spelling is another symbol: a rebuild uses the latter.
GLIBC_SOURCE_NAMES = {
    "__isoc99_sscanf": "sscanf",
    "__isoc99_fscanf": "fscanf",
    "__isoc99_scanf": "scanf",
    "__isoc99_vsscanf": "vsscanf",
    "__isoc99_vfscanf": "vfscanf",
    "__xstat": "stat",
    "__fxstat": "fstat",
    "__lxstat": "lstat",
    "__xstat64": "stat",
    "__fxstat64": "fstat",
    "__lxstat64": "lstat",
    "__fxstatat64": "fstatat",
    "__errno_location": "__errno_location",
}


# musl 1.2.3 defines these objects (src/stdio/stdin.c etc.); lib-musl's table is built from function
# definitions and aliases, so they are recognised here by name.
MUSL_DATA_OBJECTS = frozenset(
    {
        "stdin",
        "stdout",
        "stderr",
        "environ",
        "__environ",
        "optarg",
        "optind",
        "opterr",
        "optopt",
        "timezone",
        "daylight",
        "tzname",
        "program_invocation_name",
        "program_invocation_short_name",
        "signgam",
        "h_errno",
        "__progname",
        "__progname_full",
    }
)


def native_symbol_gaps(
    imports: tuple[tuple[str, str | None, str | None], ...], has: Callable[[str], bool]
) -> tuple[SymbolGap, ...]:
    """Classify the target's libc imports ``(name, version, version_file)`` against lib-musl.

    ``has(name) -> bool`` is lib-musl's availability (symbols built by default Kconfig plus what
    Unikraft core supplies).  Fortify entry points (``__*_chk``) and glibc-only names are reported
    with what a rebuild would need instead.
    """
    out = []
    for name, version, file in imports:
        if file not in LIBC_FILES:
            continue
        out.append(_native_one(name, version, has))
    # available last; the others by status name (available-as, fortify, missing), then symbol
    return tuple(sorted(out, key=lambda g: (g.status is NativeStatus.AVAILABLE, g.status.value, g.name)))


def _native_one(name: str, version: str | None, has: Callable[[str], bool]) -> SymbolGap:
    if has(name):
        return SymbolGap(name, version, NativeStatus.AVAILABLE, "")
    if name in MUSL_DATA_OBJECTS:
        return SymbolGap(
            name, version, NativeStatus.AVAILABLE, "data object defined by musl (the lib-musl table lists functions)"
        )
    if name.startswith("__") and name.endswith("_chk"):
        plain = name[2:-4]
        hint = f" ({plain} is available)" if has(plain) else ""
        return SymbolGap(
            name, version, NativeStatus.FORTIFY, f"_FORTIFY_SOURCE entry point: rebuild without fortification{hint}"
        )
    source = GLIBC_SOURCE_NAMES.get(name) or (name[:-2] if name.endswith("64") else None)
    if source and source != name and has(source):
        return SymbolGap(
            name, version, NativeStatus.AVAILABLE_AS, f"glibc binary name; a rebuild against musl uses {source}"
        )
    return SymbolGap(
        name, version, NativeStatus.MISSING, "not built by lib-musl (default Kconfig) nor supplied by Unikraft core"
    )


# -- binary-compatibility route: what app-elfloader needs from the objects themselves ------------
def binary_compat_findings(
    objects: tuple[tuple[str, str, bool, bool, bool, bool, bool], ...],
) -> tuple[RouteFinding, ...]:
    """``objects``: (path, elf_type, is_root, pie, textrel, exec_stack, static_tls) per loaded object.

    app-elfloader loads position-independent programs only (kraftkit checks DF_1_PIE), maps text
    read-only (TEXTREL needs writable text), and gives threads non-executable stacks; an object
    with DF_STATIC_TLS that is dlopen'ed (a Python extension, say) needs static TLS space the
    loader must reserve up front.
    """
    blocker, warning = Severity.BLOCKER, Severity.WARNING
    out = []
    for path, etype, is_root, pie, textrel, exec_stack, static_tls in objects:
        if is_root and etype == "EXEC":
            out.append(RouteFinding(blocker, path, "not PIE (ET_EXEC): app-elfloader loads only PIE programs"))
        if textrel:
            out.append(RouteFinding(blocker, path, "TEXTREL: relocations in read-only text"))
        if exec_stack:
            out.append(RouteFinding(warning, path, "requests an executable stack (PT_GNU_STACK PF_X or absent)"))
        if static_tls and is_root and etype == "DYN" and not pie:
            out.append(
                RouteFinding(warning, path, "DF_STATIC_TLS in a library that is dlopen'ed: needs surplus static TLS")
            )
    return tuple(out)


# -- several targets: Loupe's greedy support plan ------------------------------------------------
def work_items(gaps: tuple[Gap, ...]) -> frozenset[str]:
    """What must be done for one target: Kconfig options once each, other actions per syscall."""
    items = set()
    for g in gaps:
        if not g.tier.actionable:
            continue
        items.add(g.action_label if g.action is Action.ENABLE else f"{g.action_label}: {g.name}")
    return frozenset(items)


def greedy_plan(requirements: dict[str, frozenset[str]]) -> tuple[PlanStep, ...]:
    """Loupe's ``support_plan``: repeatedly finish the target needing the fewest new items.

    Each step lists the new work and every target it makes fully supported (several when their
    needs are covered at once); targets needing nothing are completed by step 0.
    """
    done: set[str] = set()
    left = dict(requirements)
    steps: list[tuple[tuple[str, ...], tuple[str, ...]]] = []
    while left:
        target = min(left, key=lambda t: (len(left[t] - done), t))
        new = tuple(sorted(left[target] - done))
        done |= set(new)
        complete = tuple(sorted(t for t in left if left[t] <= done))
        for t in complete:
            del left[t]
        steps.append((new, complete))
    first = 0 if steps and not steps[0][0] else 1  # step 0 exists only for targets needing nothing
    return tuple(PlanStep(i + first, new, complete) for i, (new, complete) in enumerate(steps))
