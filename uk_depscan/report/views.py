"""Views: what the reports show, computed once from a :class:`~uk_depscan.model.Report`.

* per target (:class:`~uk_depscan.model.TargetViews`, carried by the report after
  :func:`with_views`): the Kconfig options to enable, the gaps with their evidence, the work still
  to do, counts by status and tier — text, JSON, Markdown and HTML all read these;
* ``explain``: the evidence chains matching a syscall name/number or an imported symbol.

The diff of two reports is :mod:`uk_depscan.report.diff`.

Like every module of :mod:`uk_depscan.report`, this imports only the model, never the engine.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

from uk_depscan.model import (
    Action,
    ChartBar,
    EvidenceKind,
    Gap,
    GapRow,
    ImportRecord,
    KconfigGroup,
    Report,
    RuntimeLoad,
    StrEnum,
    SupportStatus,
    SyscallFinding,
    TargetReport,
    TargetViews,
    Tier,
)
from uk_depscan.names import demangle


# -- per-target views -----------------------------------------------------------------------------
def with_views(report: Report) -> Report:
    """The report with every target's views computed (once; renderers only read them)."""
    return dataclasses.replace(
        report, targets=tuple(dataclasses.replace(t, views=build_target_views(t)) for t in report.targets)
    )


def target_views(t: TargetReport) -> TargetViews:
    """The views a renderer reads: those the report carries, or computed now for a report built by
    hand without :func:`with_views`."""
    return t.views if t.views is not None else build_target_views(t)


def build_target_views(t: TargetReport) -> TargetViews:
    evidence = _evidence(t)
    labels = library_labels(lib for f in evidence if f is not None for lib in f.libraries)
    rows = tuple(GapRow(g, f, _needed_via(f, labels)) for g, f in zip(t.gaps, evidence, strict=True))
    work = tuple(r for r in rows if r.gap.action is not Action.ENABLE)
    top = tuple(r for r in work if r.gap.tier.actionable)
    enable = [r.gap for r in rows if r.gap.action is Action.ENABLE]
    statuses = Counter(g.status for g in t.gaps)
    actions = Counter(g.action for g in t.gaps)
    groups = t.kconfig.groups if t.kconfig is not None else kconfig_groups(t.gaps)
    return TargetViews(
        kconfig_groups=groups,
        rows=rows,
        work=work,
        top_actions=top,
        status_counts=tuple(sorted(statuses.items(), key=lambda kv: kv[0].value)),
        tier_counts=_tiers(t.gaps),
        action_counts=tuple((a, actions[a]) for a in Action if actions.get(a)),
        enable_tier_counts=_tiers(enable),
        top_tier_counts=_tiers([r.gap for r in top]),
        kconfig_fragment=kconfig_fragment(groups),
        work_by_action=_by_action(top),
        status_tier=_status_tier(t.gaps),
        by_unikraft_library=_by_unikraft_library(t.gaps),
        by_dependency=_by_dependency(rows),
        filter_libraries=tuple(sorted({g.library or NOT_IN_UNIKRAFT for g in t.gaps})),
        filter_dependencies=tuple(sorted({lib for r in rows for lib in r.needed_via})),
    )


NOT_IN_UNIKRAFT = "not in Unikraft"
NO_OPTION = "its library"  # the group of enable gaps whose table row names no Kconfig option
_K = TypeVar("_K", SupportStatus, Tier)
# The order of the first screen's work list: what needs code first, what only needs checking last.
_WORK_ORDER = (Action.IMPLEMENT, Action.FAKE, Action.STUB, Action.INVESTIGATE, Action.KEEP)


def library_label(lib: str) -> str:
    """A library as the gap reasons name it (``needed via``, :func:`uk_depscan.pipeline._with_blame`):
    its last path component."""
    return lib.rsplit("/", 1)[-1]


def library_labels(libs: Iterable[str]) -> dict[str, str]:
    """Each library's label (:func:`library_label`), except that libraries whose labels would be
    the same keep their whole name: two objects loaded from different directories (or names from a
    binary that contain a '/') must not merge into one chart bar or filter choice."""
    libs = set(libs)
    counts = Counter(library_label(lib) for lib in libs)
    return {lib: library_label(lib) if counts[library_label(lib)] == 1 else lib for lib in libs}


def _needed_via(f: SyscallFinding | None, labels: dict[str, str]) -> tuple[str, ...]:
    return () if f is None else tuple(labels[lib] for lib in f.libraries)


def kconfig_fragment(groups: tuple[KconfigGroup, ...]) -> tuple[str, ...]:
    """``.config`` lines for the options a build must turn on beyond the route's base
    configuration (an option already on needs no line), each followed by what it drags in, in the
    groups' order; ``uk-depscan kconfig`` writes the commented fragment and a Kraftfile."""
    out: dict[str, None] = {}
    for k in groups:
        if not k.already_on:
            for option in (k.option, *k.drags_in):
                if option != NO_OPTION:
                    out.setdefault(f"{option}=y")
    return tuple(out)


def _by_action(top: tuple[GapRow, ...]) -> tuple[tuple[Action, tuple[GapRow, ...]], ...]:
    groups = ((a, tuple(r for r in top if r.gap.action is a)) for a in _WORK_ORDER)
    return tuple((a, rows) for a, rows in groups if rows)


def _segments(counts: Counter[_K], keys: Iterable[_K]) -> tuple[tuple[_K, int], ...]:
    return tuple((k, counts[k]) for k in keys if counts.get(k))


def _status_tier(gaps: tuple[Gap, ...]) -> tuple[ChartBar, ...]:
    """One bar per status present (implementation work first), segments by tier."""
    statuses = sorted({g.status for g in gaps}, key=lambda s: s.rank)
    return tuple(
        ChartBar(s.value, "", _segments(Counter(g.tier for g in gaps if g.status is s), Tier)) for s in statuses
    )


def _by_unikraft_library(gaps: tuple[Gap, ...]) -> tuple[ChartBar, ...]:
    """Gaps per Unikraft library (absent syscalls under "not in Unikraft"), most first (ties in the
    order of their first gap: the layout never depends on how names sort), each with
    the Kconfig option(s) that turn it on; segments by status."""
    mine: dict[str, list[Gap]] = {}
    for g in gaps:
        mine.setdefault(g.library or NOT_IN_UNIKRAFT, []).append(g)
    bars = (
        ChartBar(
            lib,
            ", ".join(sorted({g.kconfig for g in these if g.kconfig})),
            _segments(Counter(g.status for g in these), sorted(SupportStatus, key=lambda s: s.rank)),
        )
        for lib, these in mine.items()
    )
    return tuple(sorted(bars, key=lambda b: -b.total))  # ties: in gap order (the first gap of each)


def _by_dependency(rows: tuple[GapRow, ...]) -> tuple[ChartBar, ...]:
    """Per library of the closure: the gaps whose evidence chain runs through it (a gap counts
    once for each library of its chain), most first; segments by tier."""
    tiers: dict[str, Counter[Tier]] = {}
    for r in rows:
        for lib in r.needed_via:
            tiers.setdefault(lib, Counter())[r.gap.tier] += 1
    bars = (ChartBar(lib, "", _segments(c, Tier)) for lib, c in tiers.items())
    return tuple(sorted(bars, key=lambda b: -b.total))  # ties: in gap order


def _tiers(gaps: Iterable[Gap]) -> tuple[tuple[Tier, int], ...]:
    counts = Counter(g.tier for g in gaps)
    return tuple((tier, counts.get(tier, 0)) for tier in Tier)


def kconfig_groups(gaps: tuple[Gap, ...]) -> tuple[KconfigGroup, ...]:
    """One group per option that ``enable`` gaps wait for, syscalls in gap order, for a report
    without an option plan (built by hand, or read back from an older JSON): groups by tier, then
    syscall count (descending), then option name — the order the option plan uses too."""
    options: dict[str, list[Gap]] = {}
    for g in gaps:
        if g.action is Action.ENABLE and g.status in (SupportStatus.NEEDS_KCONFIG, SupportStatus.UNVERIFIED):
            options.setdefault(g.kconfig or NO_OPTION, []).append(g)
    groups = (
        KconfigGroup(option, tuple(g.name for g in mine), tier=min((g.tier for g in mine), key=lambda t: t.rank))
        for option, mine in options.items()
    )
    return tuple(sorted(groups, key=lambda k: (k.tier.rank if k.tier else 9, -len(k.syscalls), k.option)))


def _evidence(t: TargetReport) -> list[SyscallFinding | None]:
    """The chain shown beside each gap.  A syscall both reached and in the start-up baseline shows
    the target's own chain, the one the gap's "needed via" reason names (the pipeline's blame
    line, :func:`uk_depscan.pipeline._with_blame`): showing the baseline chain there made the
    "needed by" column say ``ld-linux-x86-64.so.2`` beside "needed via libonnxruntime.so.1"."""
    if t.syscalls is None:
        return [None] * len(t.gaps)
    chains = {f.name: f for f in t.syscalls.baseline + t.syscalls.syscalls}
    return [chains.get(g.name) for g in t.gaps]


# -- explain --------------------------------------------------------------------------------------
class ExplainScope(StrEnum):
    REACHED = "reached"
    BASELINE = "start-up baseline"


@dataclass(frozen=True)
class ExplainHit:
    scope: ExplainScope
    finding: SyscallFinding
    gap: Gap | None


class QueryKind(StrEnum):
    SYSCALL = "syscall"
    IMPORT = "import"
    EXPORT = "export"
    FUNCTION = "function"  # a code address (0x…, sub_…): the function holding it, exported or not
    LOADED = "loaded at run time"  # an object the target loads by name (uk_depscan.syscalls.runtime)


@dataclass(frozen=True)
class ExplainAnswer:
    """One target's answer; ``analysed`` is False when its syscalls were not analysed.  For an import
    or an export, ``symbol`` is the matched key, ``reaches`` the syscalls it reaches and ``provider``
    (imports) the object the loader binds it to; ``hits`` are then the chains that pass through it.
    For an object loaded at run time, ``symbol`` is the name it is loaded by, ``provider`` the file
    found and ``reaches`` what only it adds to the target's answer."""

    target: str
    analysed: bool
    hits: tuple[ExplainHit, ...]
    kind: QueryKind = QueryKind.SYSCALL
    symbol: str = ""
    provider: str | None = None
    reaches: tuple[str, ...] = ()


def find_import(t: TargetReport, query: str) -> ImportRecord | None:
    """The import of ``t`` named by ``query`` (mangled, ``name@version`` or demangled), if any."""
    q = query.strip()
    for imp in t.imports:
        key = f"{imp.name}@{imp.version}" if imp.version else imp.name
        if _symbol_matches(key, q):
            return imp
    return None


def explain_import(t: TargetReport, imp: ImportRecord) -> ExplainAnswer:
    """What one import reaches (through its provider) and the reported chains that pass through it."""
    key = f"{imp.name}@{imp.version}" if imp.version else imp.name
    if t.syscalls is None:
        return ExplainAnswer(t.target, False, (), QueryKind.IMPORT, key, imp.provider)
    reach = next((r.syscalls for r in t.syscalls.import_reach if r.key == key), ())
    through = _explain_one(t, key)
    hits = tuple(
        h for h in through.hits if any(st.kind is EvidenceKind.IMPORT and st.symbol == key for st in h.finding.chain)
    )
    return ExplainAnswer(t.target, True, hits, QueryKind.IMPORT, key, imp.provider, reach)


def find_runtime_load(t: TargetReport, query: str) -> RuntimeLoad | None:
    """The object ``t`` loads at run time named by ``query`` (the name it is loaded by, or its file
    name), if any."""
    q = query.strip()
    loads = t.syscalls.runtime_loads if t.syscalls is not None else ()
    return next((x for x in loads if q in (x.name, x.path.rsplit("/", 1)[-1])), None)


def explain_runtime_load(t: TargetReport, load: RuntimeLoad) -> ExplainAnswer:
    """What one object loaded at run time adds to the answer, and the chains that start with its load."""
    assert t.syscalls is not None  # find_runtime_load found it there
    hits = tuple(
        ExplainHit(ExplainScope.REACHED, f, next((g for g in t.gaps if g.name == f.name), None))
        for f in t.syscalls.syscalls
        if any(st.kind in _LOAD_STEPS and st.symbol == load.name and st.detail == load.path for st in f.chain)
    )
    return ExplainAnswer(t.target, True, hits, QueryKind.LOADED, load.name, load.path, load.added)


_LOAD_STEPS = (EvidenceKind.MODULE, EvidenceKind.DLOPEN)


def explain_export(t: TargetReport, export: str, kind: QueryKind = QueryKind.EXPORT) -> ExplainAnswer:
    """``t`` analysed with ``--entry export``: what that export (or the function at that code
    address, ``kind`` FUNCTION) reaches."""
    if t.syscalls is None:
        return ExplainAnswer(t.target, False, (), kind, export)
    return ExplainAnswer(t.target, True, (), kind, export, None, tuple(f.name for f in t.syscalls.syscalls))


def explain(report: Report, query: str) -> tuple[ExplainAnswer, ...]:
    """Per target: the findings named by ``query`` (a syscall name or number), or else the findings
    whose chain starts at or imports ``query`` (mangled, ``name@version`` or demangled name, or a
    demangled prefix up to its parameter list)."""
    return tuple(_explain_one(t, query.strip()) for t in report.targets)


def _explain_one(t: TargetReport, q: str) -> ExplainAnswer:
    if t.syscalls is None:
        return ExplainAnswer(t.target, False, ())
    groups = ((ExplainScope.REACHED, t.syscalls.syscalls), (ExplainScope.BASELINE, t.syscalls.baseline))
    found = [(scope, f) for scope, fs in groups for f in fs if q in (f.name, str(f.number))]
    if not found:
        found = [
            (scope, f)
            for scope, fs in groups
            for f in fs
            if any(_symbol_matches(st.symbol, q) for st in f.chain if st.kind in _SYMBOL_STEPS)
        ]
    gaps: dict[str, Gap] = {}
    for g in t.gaps:
        gaps.setdefault(g.name, g)
    return ExplainAnswer(t.target, True, tuple(ExplainHit(scope, f, gaps.get(f.name)) for scope, f in found))


_SYMBOL_STEPS = (EvidenceKind.IMPORT, EvidenceKind.ENTRY)


def _symbol_matches(symbol: str, query: str) -> bool:
    base = symbol.split("@", 1)[0]
    return query in (symbol, base) or demangle(base) == query or demangle(base).startswith(query + "(")
