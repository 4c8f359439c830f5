"""Gaps against a Unikraft release and what to do about each one.

Classes (per reachable syscall, by name in the route's view of the Unikraft table):

* ``provided``: implemented (full or constant) by a library that is on by default;
* ``needs-kconfig``: implemented, but only once ``CONFIG_X`` is enabled (Unikraft libraries are
  opt-in, so this is most provided syscalls: the action is the option to enable);
* ``unverified``: only app-elfloader of an older release registers it (0.16.3 on a 0.17 core: its
  registrations use 0.16's ``u`` suffix, renamed ``_E_`` in 0.17) - neither provided nor absent;
* ``partial``: implemented, with some paths returning an error (e.g. futex ops, ppoll sigmask);
* ``stub``: registered but a stub - the kind says what the application will see;
* ``absent``: not registered: the shim's generated stub returns ENOSYS.

Likelihood, action and tier come from :mod:`uk_depscan.unikraft.priority` (the model, its signals
and their sources); this module classifies, assembles the reasons and sorts.  Gaps are sorted by
tier, then by likelihood (most likely first), then status and name.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping

from uk_depscan.model import (
    Action,
    Breadth,
    Evidence,
    Gap,
    KconfigGroup,
    KconfigPlan,
    NativeStatus,
    PlanStep,
    ReachPath,
    RouteFinding,
    Severity,
    SupportStatus,
    SymbolGap,
)
from uk_depscan.unikraft import priority
from uk_depscan.unikraft.options import EnabledOption, options_for_syscalls
from uk_depscan.unikraft.tables import LoupePrior, SyscallSupport, UnikraftTable

MIN_APPS = priority.MIN_APPS
PROVIDED, NEEDS_KCONFIG, PARTIAL, STUB, ABSENT, UNVERIFIED = (
    SupportStatus.PROVIDED,
    SupportStatus.NEEDS_KCONFIG,
    SupportStatus.PARTIAL,
    SupportStatus.STUB,
    SupportStatus.ABSENT,
    SupportStatus.UNVERIFIED,
)
# statuses under which a fallback syscall counts as available (unverified: the code exists)
_AVAILABLE = (PROVIDED, NEEDS_KCONFIG, PARTIAL, UNVERIFIED)
_PATH_REASON = {
    ReachPath.STARTUP: "on the start-up path: every dynamically linked program makes it (ld.so, libc initialisation)",
    ReachPath.RARE: "start-up baseline, rare part only: ld.so's error, --list/--verify, auditing, profiling "
    "and re-exec paths (musl: what its stripped libc.so does not let us split): never needed by a normal start-up",
    ReachPath.FAILURE: "reached only on failure paths (abort, assertion and fortify failures)",
}


def classify(support: SyscallSupport | None) -> tuple[SupportStatus, str]:
    if support is None or support.status == "absent":
        return ABSENT, support.detail if support else "not in the release's syscall table"
    if support.status == "unverified":
        return UNVERIFIED, support.detail
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
    path: ReachPath = ReachPath.NORMAL,
    breadth: Breadth | None = None,
    fallback_provided: tuple[str, ...] | None = None,
    weights: priority.Weights = priority.WEIGHTS,
) -> Gap:
    """One gap: class, likelihood, action, tier and every reason that decided them."""
    status, detail = classify(support)
    launch = prior is not None and prior.name in priority.LAUNCH_ARTIFACTS
    if launch:  # the row describes how Loupe launched its benchmarks: neither prior nor shares
        prior = None
    evidence = priority.evidence_of(path, breadth)
    u = priority.usage(prior)
    value = priority.likelihood(path, evidence, breadth, u, weights)
    choice = priority.choose_action(name, status, support, prior, fallback_provided)
    tier = priority.tier(choice.action, path, value, weights)
    reasons = []
    if path in _PATH_REASON:
        reasons.append(_PATH_REASON[path])
    reasons.append(_evidence_reason(evidence, breadth))
    reasons.append(
        "Loupe's row counts the exec that launches every benchmark, not the apps' code: no Loupe data used"
        if launch
        else _loupe_reason(prior)
    )
    if name in priority.VDSO:
        reasons.append(
            "served by the vDSO on Linux, so traces under-count it; app-elfloader can supply a vDSO (CONFIG_VDSO)"
        )
    if support is not None and status is STUB:
        reasons.append(f"Unikraft stub: {support.detail} ({support.behavior})")
    reasons.extend(choice.reasons)
    reasons.append(f"likelihood {value:.2f}")
    return Gap(
        name,
        status,
        detail,
        support.library if support else None,
        support.kconfig if support else None,
        choice.action,
        tier,
        tuple(reasons),
        value,
        path,
        evidence,
    )


def _evidence_reason(ev: Evidence, b: Breadth | None) -> str:
    if ev is Evidence.STARTUP:
        return "evidence: the start-up baseline only (the target's own code does not reach it)"
    if b is None or ev is Evidence.INDIRECT:
        return (
            "evidence: only through a dependency's constructor, an object loaded at run time or a shared "
            "chain, not the target's imports"
        )
    parts = []
    if b.own_sites:
        parts.append(f"{b.own_sites} site(s) in the target's own code")
    if b.imports and b.narrowest:
        kind = "a wrapper" if b.narrowest_size <= priority.WRAPPER_MAX else "the narrowest"
        parts.append(
            f"{b.imports} of the target's imports reach it ({kind}: {b.narrowest}, "
            f"{b.narrowest_size} syscall{'s' if b.narrowest_size != 1 else ''})"
        )
    return "evidence: " + "; ".join(parts)


def _loupe_reason(p: LoupePrior | None) -> str:
    if p is None:
        return "no Loupe data (no prior: the static evidence alone sets the likelihood)"
    return (
        f"Loupe: used by {p.used}/{priority.LOUPE_WORKLOADS} apps, required by {p.required}, "
        f"stubbable in {p.stubbable}, fakeable in {p.fakeable}"
        + (f" (fewer than {MIN_APPS} apps: shares not used)" if p.used < MIN_APPS else "")
    )


def assess_all(
    names: Mapping[str, tuple[ReachPath, Breadth | None]],
    table: UnikraftTable,
    priors: Mapping[str, LoupePrior],
    weights: priority.Weights = priority.WEIGHTS,
) -> tuple[Gap, ...]:
    """``names``: syscall name -> (path class, evidence breadth); sorted by tier, likelihood, status, name."""
    gaps = [
        assess(
            n,
            table.get(n),
            priors.get(n),
            path=path,
            breadth=b,
            fallback_provided=fallback_provided(n, table),
            weights=weights,
        )
        for n, (path, b) in names.items()
    ]
    return tuple(sorted(gaps, key=lambda g: (g.tier.rank, -g.likelihood, g.status.rank, g.name)))


def fallback_provided(name: str, table: UnikraftTable) -> tuple[str, ...] | None:
    """The fallback syscalls of ``name`` when the release has every one of them, else None."""
    fb = priority.FALLBACKS.get(name)
    if fb is None or not all(classify(table.get(t))[0] in _AVAILABLE for t in fb.to):
        return None
    return fb.to


# -- Kconfig: one satisfiable option set for the enable gaps ----------------------------------------
def plan_kconfig(
    gaps: tuple[Gap, ...],
    table: UnikraftTable,
    route: str,
    priors: Mapping[str, LoupePrior],
    names: Mapping[str, tuple[ReachPath, Breadth | None]],
    weights: priority.Weights = priority.WEIGHTS,
) -> tuple[tuple[Gap, ...], KconfigPlan]:
    """Resolve the options of every ``enable`` gap (needs-kconfig) with
    :func:`~uk_depscan.unikraft.options.options_for_syscalls`, so that no two recommended options
    exclude each other and each says what it drags in.  A syscall whose only provider was left out
    (its option excludes a kept one: ``LIBUKMMAP`` for mremap against ``LIBPOSIX_MMAP``) is
    assessed again as absent, with the plan's note; one covered by another option of the plan is
    attributed to that option.  ``table`` is the full table (not a route view)."""
    wanted = [g.name for g in gaps if g.action is Action.ENABLE and g.status is NEEDS_KCONFIG]
    plan = options_for_syscalls(table, wanted, route)
    view = table.for_route(route)
    lost: dict[str, str] = {}
    covered: dict[str, str] = {}
    for alt in plan.alternatives:
        covered.update(alt.covered_by)
        lost.update(dict.fromkeys(alt.lost, f"its option cannot be enabled: {alt.note}"))
    by_option = {s: o.option for o in plan.options for s in o.syscalls}
    for g in gaps:  # a stub whose library the plan excludes is not there at all: ENOSYS
        row = view.get(g.name)
        if g.status in (STUB, PARTIAL) and row is not None and row.kconfig:
            clash = _excluded(table, row.kconfig, route, set(plan.enable), set(plan.keep_off))
            if clash:
                lost[g.name] = (
                    f"its {g.status} in {row.kconfig} is not built: that option cannot be enabled together with "
                    f"{', '.join(clash)}, which the plan keeps (generated ENOSYS stub)"
                )
    out = []
    for g in gaps:
        if g.name in lost:
            row = view.get(g.name)
            gone = (
                dataclasses.replace(row, status="absent", detail=lost[g.name], behavior="error_enosys") if row else None
            )
            path, b = names[g.name]
            again = assess(
                g.name,
                gone,
                priors.get(g.name),
                path=path,
                breadth=b,
                fallback_provided=fallback_provided(g.name, view),
                weights=weights,
            )
            out.append(dataclasses.replace(again, reasons=(lost[g.name], *again.reasons)))
            continue
        option = covered.get(g.name) or by_option.get(g.name)
        out.append(dataclasses.replace(g, kconfig=option) if option and option != g.kconfig else g)
    gaps_out = tuple(sorted(out, key=lambda g: (g.tier.rank, -g.likelihood, g.status.rank, g.name)))
    tiers = {g.name: g.tier for g in gaps_out}
    enabled = {g.name for g in gaps_out if g.action is Action.ENABLE}
    base = table.kconfig.routes[route].base_y if table.kconfig and route in table.kconfig.routes else frozenset()
    units: dict[str, list[EnabledOption]] = {}
    for o in plan.options:  # one option may come as several units (LIBPOSIX_PROCESS, LIBPOSIX_PROCESS && ...)
        units.setdefault(o.option, []).append(o)
    groups = []
    for option, parts in units.items():
        wanted_here = {n for o in parts for n in o.syscalls}
        mine = tuple(g.name for g in gaps_out if g.name in wanted_here and g.name in enabled and g.kconfig == option)
        if not mine:
            continue
        pulled = {x for o in parts for x in (*o.closure_y, *o.drags_in)}
        drags = tuple(sorted(pulled - base - {option}))
        best = min((tiers[n] for n in mine), key=lambda t: t.rank)
        already = option in base
        groups.append(KconfigGroup(option, mine, _conjunction([o.requires for o in parts]), drags, best, already))
    grouped = {n for k in groups for n in k.syscalls}
    groups += _leftover_groups([g for g in gaps_out if g.action is Action.ENABLE and g.name not in grouped])
    groups.sort(key=lambda k: (k.tier.rank if k.tier else 9, -len(k.syscalls), k.option))
    result = KconfigPlan(
        route, tuple(groups), plan.enable, plan.keep_off, tuple(a.note for a in plan.alternatives), plan.verified
    )
    return gaps_out, result


def _leftover_groups(gaps: list[Gap]) -> list[KconfigGroup]:
    """``enable`` rows outside the resolved plan, one group per option: unverified providers (an
    older app-elfloader: the option exists there, its registration is unverified here) and options
    the table has no Kconfig closure for - so that every ``enable`` row is in exactly one group."""
    by: dict[str, list[Gap]] = {}
    for g in gaps:
        by.setdefault(g.kconfig or "its library", []).append(g)
    out = []
    for option, mine in by.items():
        unverified = all(g.status is UNVERIFIED for g in mine)
        note = (
            "provided by app-elfloader of another release: verify that its registration builds here"
            if unverified
            else "no Kconfig closure in the table: dependencies not resolved"
        )
        best = min((g.tier for g in mine), key=lambda t: t.rank)
        out.append(KconfigGroup(option, tuple(g.name for g in mine), tier=best, note=note))
    return out


def _excluded(table: UnikraftTable, option: str, route: str, enable: set[str], keep_off: set[str]) -> list[str]:
    """Options of the plan that exclude ``option`` in ``route`` (its closure must keep one of them n,
    or needs one the plan keeps n); empty when it fits or nothing is known about it."""
    facts = table.kconfig.options.get(option) if table.kconfig is not None else None
    c = facts.closure.get(route) if facts is not None else None
    if c is None:
        return []
    return sorted((set(c.n) & enable) | (set(c.y) & keep_off))


def _conjunction(requirements: list[str]) -> str:
    """One Kconfig requirement from several (``A`` and ``A && B`` -> ``A && B``)."""
    atoms: list[str] = []
    for r in requirements:
        for a in r.split(" && ") if re.fullmatch(r"[A-Za-z0-9_]+( && [A-Za-z0-9_]+)*", r) else [f"({r})"]:
            if a not in atoms:
                atoms.append(a)
    return " && ".join(atoms)


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
    """What must be done for one target: Kconfig options once each, other actions per syscall
    (``investigate`` rows are an uncertainty, not work: counted apart)."""
    items = set()
    for g in gaps:
        if not g.tier.actionable or g.action is Action.INVESTIGATE:
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
