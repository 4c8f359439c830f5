"""Terminal rendering with rich: a one-screen summary and a libtree-style dependency tree.

Strings from binaries go into ``rich.text.Text`` objects (never markup) after
:func:`~uk_depscan.report.escape.for_terminal`, so a symbol name cannot style or move the terminal.
"""

from __future__ import annotations

import io
from collections import Counter

from rich.console import Console
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from uk_depscan.model import (
    Action,
    EvidenceStep,
    FoundVia,
    Gap,
    LoadTree,
    MissingLibrary,
    NativeStatus,
    ReachPath,
    Report,
    Severity,
    SyscallReport,
    TargetReport,
    Tier,
)
from uk_depscan.names import demangle, demangle_versioned
from uk_depscan.report.escape import for_terminal
from uk_depscan.report.views import ExplainAnswer, QueryKind, target_views

VIA_STYLE = {
    FoundVia.ROOT: "bold",
    FoundVia.RPATH: "yellow",
    FoundVia.RUNPATH: "cyan",
    FoundVia.LD_LIBRARY_PATH: "magenta",
    FoundVia.LD_SO_CACHE: "green",
    FoundVia.LD_SO_CONF: "green",
    FoundVia.DEFAULT: "blue",
    FoundVia.INTERPRETER: "blue",
    FoundVia.DIRECT: "white",
}
TIER_STYLE = {Tier.P0: "bold red", Tier.P1: "yellow", Tier.P2: "cyan", Tier.P3: "dim"}


def _console(color: bool, width: int) -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(
        file=buf,
        force_terminal=color,
        no_color=not color,
        width=width,
        highlight=False,
        soft_wrap=False,
        emoji=False,
        markup=False,
    ), buf


def _t(text: str, style: str = "") -> Text:
    return Text(for_terminal(text), style=style)


def render_deps(report: Report, *, color: bool = False, width: int = 120, verbose: bool = False) -> str:
    con, buf = _console(color, width)
    for target in report.targets:
        con.print(deps_tree(target.tree, verbose))
        for note in target.tree.search_notes if verbose else ():
            con.print(_t(f"  note: {note}", "dim"))
    _print_skipped(con, report)
    return buf.getvalue()


def deps_tree(tree: LoadTree, verbose: bool = False) -> Tree:
    root = tree.objects[0]
    top = Tree(_t(root.path, "bold"))
    nodes = {0: top}
    missing_by: dict[int, list[MissingLibrary]] = {}
    for m in tree.missing:
        missing_by.setdefault(m.needed_by, []).append(m)
    for obj in tree.objects[1:]:
        label = _t(obj.needed_name or obj.path, "bold")
        label.append_text(_t(f" [{_via(obj.found_via, obj.via_detail)}]", VIA_STYLE.get(obj.found_via, "")))
        label.append_text(_t(f" {obj.path}", "dim"))
        if obj.error:
            label.append_text(_t(f"  unreadable: {obj.error}", "red"))
        parent = nodes.get(obj.loader if obj.loader is not None else 0, top)
        nodes[obj.index] = parent.add(label)
        for a in obj.tried if verbose else ():
            nodes[obj.index].add(_t(f"skipped {a.path}: {a.outcome}", "dim"))
    for idx, items in missing_by.items():
        for m in items:
            branch = nodes.get(idx, top).add(_t(f"{m.needed_name} ", "bold red") + _t(m.reason, "red"))
            for a in m.tried[: None if verbose else 12]:
                branch.add(_t(f"{a.path}: {a.outcome}", "dim"))
            if not verbose and len(m.tried) > 12:
                branch.add(_t(f"... {len(m.tried) - 12} more (use -v)", "dim"))
    return top


def _via(via: FoundVia, detail: str) -> str:
    if via in (FoundVia.RPATH, FoundVia.RUNPATH) and detail.startswith("DT_"):
        owner = detail.split(" of ", 1)[1].split(" (", 1)[0]
        return f"{via} of {owner}"
    return via


def render_summary(report: Report, *, color: bool = False, width: int = 120, verbose: bool = False) -> str:
    con, buf = _console(color, width)
    for target in report.targets:
        _summary_one(con, target, verbose)
    _print_matrix(con, report, verbose)
    _print_plan(con, report, verbose)
    _print_skipped(con, report)
    return buf.getvalue()


def _print_matrix(con: Console, report: Report, verbose: bool) -> None:
    if not report.matrix:
        return
    con.print(_t("matrix (syscalls × targets; x = needed)", "bold"))
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for col in ("tier", "syscall", "unikraft", *(f"#{i + 1}" for i in range(len(report.targets)))):
        table.add_column(col)
    rows = [m for m in report.matrix if verbose or (m.tier is not None and m.tier.actionable)]
    for m in rows[: None if verbose else 40]:
        table.add_row(
            _t(m.tier_label, TIER_STYLE.get(m.tier, "") if m.tier is not None else ""),
            _t(m.name),
            _t(m.status_label),
            *(_t("x" if need else "·") for need in m.needed_by),
        )
    con.print(table)
    for i, t in enumerate(report.targets):
        con.print(_t(f"  #{i + 1} = {t.target}", "dim"))


def _print_plan(con: Console, report: Report, verbose: bool) -> None:
    if not report.plan:
        return
    con.print(_t("plan (greedy, Loupe-style: finish the target that needs least, repeat)", "bold"))
    for step in report.plan:
        actions = ", ".join(step.actions[: None if verbose else 12]) or "nothing new"
        more = f" (+{len(step.actions) - 12} more)" if not verbose and len(step.actions) > 12 else ""
        con.print(_t(f"  step {step.number}: {len(step.actions)} actions: {actions}{more}"))
        con.print(_t(f"          -> fully supported: {', '.join(step.completes)}", "green"))


def _summary_one(con: Console, t: TargetReport, verbose: bool) -> None:
    con.print(_t(t.target, "bold underline"))
    con.print(_facts(t))
    _provider_table(con, t)
    _problems(con, t, verbose)
    if t.syscalls is not None:
        _syscall_section(con, t.syscalls, verbose)
        _gap_section(con, t, verbose)
        _observation_section(con, t, verbose)
    _below_section(con, t, verbose)
    if t.syscalls is not None and t.syscalls.requests:
        reqs = ", ".join(f"{r.call}({r.name})" + (f"×{r.sites}" if r.sites > 1 else "") for r in t.syscalls.requests)
        con.print(_t(f"requests      {reqs}"))
    _native_section(con, t, verbose)
    for w in t.warnings:
        con.print(_t(f"  warning: {w}", "yellow"))
    con.print()


def _facts(t: TargetReport) -> Table:
    e = t.elf
    facts = Table.grid(padding=(0, 2))
    facts.add_row(
        _t("object"),
        _t(
            f"ELF{e.elf_class} {e.machine} {e.elf_type}{' PIE' if e.pie else ''}"
            + ("" if e.machine_supported else "  (architecture not analysed)")
        ),
    )
    facts.add_row(_t("soname"), _t(e.soname or "-"))
    facts.add_row(_t("build-id"), _t(e.build_id or "-"))
    if e.interp:
        facts.add_row(_t("interpreter"), _t(e.interp))
    for label, value in (("rpath", e.rpath), ("runpath", e.runpath)):
        if value:
            facts.add_row(_t(label), _t(value))
    flags = [n for n, on in (("TEXTREL", e.textrel), ("exec-stack", e.exec_stack), ("static-TLS", e.static_tls)) if on]
    facts.add_row(_t("loader flags"), _t(", ".join(flags) or "none", "yellow" if flags else ""))
    facts.add_row(
        _t("symbols"),
        _t(
            f"{e.imports} imported, {e.exports} exported, {len(e.ifuncs)} IFUNC, "
            f"TLS {e.tls_memsz if e.tls_memsz is not None else 'none'}"
        ),
    )
    libs = len(t.tree.objects) - 1
    facts.add_row(
        _t("libraries"), _t(f"{libs} loaded, {len(t.tree.missing)} missing", "red" if t.tree.missing else "green")
    )
    facts.add_row(
        _t("imports"),
        _t(
            f"{len(t.imports)}: {len(t.imports) - len(t.unresolved) - len(t.unresolved_weak)} bound, "
            f"{len(t.unresolved)} unresolved, {len(t.unresolved_weak)} weak unresolved",
            "red" if t.unresolved else "",
        ),
    )
    return facts


def _problems(con: Console, t: TargetReport, verbose: bool) -> None:
    for m in t.tree.missing:
        con.print(_t(f"  missing {m.needed_name} (needed by {t.tree.objects[m.needed_by].path}): {m.reason}", "red"))
    for p in t.version_problems:
        con.print(_t(f"  {p.reason}", "red"))
    for sym in t.unresolved[: None if verbose else 20]:
        con.print(_t(f"  unresolved {demangle(sym.name)}" + (f"@{sym.version}" if sym.version else ""), "red"))
    for r in t.route:
        style = "red" if r.severity is Severity.BLOCKER else "yellow"
        con.print(_t(f"binary-compat {r.severity}: {r.object}: {r.problem}", style))


def _below_section(con: Console, t: TargetReport, verbose: bool) -> None:
    b = t.below
    if b is None or not (b.pseudo_files or b.dlopen_targets):
        return
    con.print(_t(f"below syscall {len(b.pseudo_files)} pseudo-files, {len(b.dlopen_targets)} dlopen targets", "bold"))
    if b.pseudo_files:
        con.print(_t("  files: " + " ".join(b.pseudo_files[: None if verbose else 25])))
    if b.dlopen_targets:
        con.print(_t("  dlopen: " + " ".join(d.name for d in b.dlopen_targets)))


def _native_section(con: Console, t: TargetReport, verbose: bool) -> None:
    n = t.native
    if n is None:
        return
    con.print(
        _t(
            f"native route  lib-musl {n.libmusl_release} (musl {n.musl_version}): "
            f"{n.count(NativeStatus.AVAILABLE)} libc imports available, {n.count(NativeStatus.AVAILABLE_AS)} under "
            f"their source names, {n.count(NativeStatus.FORTIFY)} fortify (__*_chk), "
            f"{n.count(NativeStatus.MISSING)} missing",
            "bold",
        )
    )
    missing = [g.name for g in n.symbols if g.status in (NativeStatus.MISSING, NativeStatus.FORTIFY)]
    if missing:
        more = " ..." if len(missing) > 30 and not verbose else ""
        con.print(_t("  " + " ".join(missing[: None if verbose else 30]) + more, "yellow"))


def _syscall_section(con: Console, s: SyscallReport, verbose: bool) -> None:
    normal = [f for f in s.syscalls if not f.failure_only]
    failure = [f for f in s.syscalls if f.failure_only]
    kinds: dict[str, int] = {}
    for f in s.syscalls:
        for k in f.kinds:
            kinds[k.value] = kinds.get(k.value, 0) + 1
    scope = (
        "exports matching " + ", ".join(s.entries) + " + constructors + address-taken functions"
        if s.entries
        else "whole object"
    )
    con.print(
        _t(
            f"syscalls      {len(normal)} reachable + {len(failure)} only on failure paths "
            f"({scope}; libc model {s.libc_model}); start-up baseline {sum(not f.rare for f in s.baseline)} "
            f"(+ {sum(f.rare for f in s.baseline)} on rare paths)",
            "bold",
        )
    )
    con.print(_t("  by evidence: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))))
    wrapped = sum(1 for x in s.sites if x.kind.is_wrapper_call)
    con.print(
        _t(
            f"  sites in the target: {len(s.sites) - wrapped} direct, {wrapped} syscall() wrapper calls, "
            f"{s.unknown_sites} with unknown number"
        )
    )
    con.print(_t("  " + " ".join(f.name for f in normal), "cyan"))
    if failure:
        con.print(_t("  failure paths only: " + " ".join(f.name for f in failure), "dim"))
    for f in s.syscalls if verbose else ():
        con.print(_t(f"    {f.name}: " + " -> ".join(_step(x) for x in f.chain), "dim"))
    for i in s.invalid:
        con.print(_t(f"  {i.message}", "yellow"))
        if verbose:
            con.print(_t("    " + " -> ".join(_step(x) for x in i.chain), "dim"))


def _gap_section(con: Console, t: TargetReport, verbose: bool) -> None:
    v = target_views(t)
    rows = len(v.rows)
    con.print(
        _t(
            f"unikraft      {rows} syscalls: " + ", ".join(f"{k} {n}" for k, n in v.status_counts),
            "bold",
        )
    )
    con.print(_t(f"  tiers       {_counts(v.tier_counts)} (all {rows} rows)"))
    enable = sum(n for _, n in v.enable_tier_counts)
    if v.kconfig_groups:
        already = sum(1 for k in v.kconfig_groups if k.already_on)
        con.print(
            _t(
                f"  enable      {len(v.kconfig_groups)} options for {enable} syscalls ({_counts(v.enable_tier_counts)})"
                + (f"; {already} already on in the route's base configuration" if already else "")
            )
        )
    for group in v.kconfig_groups:
        names = group.syscalls
        more = ", ..." if len(names) > 8 and not verbose else ""
        extra = []
        if group.already_on:
            extra.append("already on: keep it")
        if group.requires and group.requires != group.option.removeprefix("CONFIG_"):
            extra.append(f"requires {group.requires}")
        if group.drags_in:
            extra.append("drags in " + ", ".join(group.drags_in))
        if group.note:
            extra.append(group.note)
        con.print(
            _t(
                f"    {group.tier or '-'} {group.option}: {len(names)} syscalls "
                f"({', '.join(names[: None if verbose else 8])}{more})" + (f" [{'; '.join(extra)}]" if extra else "")
            )
        )
    for note in t.kconfig.alternatives if t.kconfig is not None else ():
        con.print(_t(f"    left out: {note}", "yellow"))
    top = v.top_actions
    acts = Counter(r.gap.action for r in top)
    con.print(
        _t(
            f"  work        {len(top)} rows ({_counts(v.top_tier_counts)}): "
            + (", ".join(f"{_action_word(a)} {acts[a]}" for a in Action if acts.get(a)) or "none")
        )
    )
    work = v.work if verbose else top
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    observed = t.observation is not None
    for col in ("tier", "syscall", "unikraft", "action", "L", *(("observed",) if observed else ()), "why"):
        table.add_column(col, overflow="fold")
    for row in work[: None if verbose else 15]:
        g = row.gap
        seen = (_t("yes" if g.observed else "no", "green" if g.observed else "dim"),) if observed else ()
        table.add_row(
            _t(g.tier, TIER_STYLE[g.tier]),
            _t(g.name),
            _t(f"{g.status}: {g.detail}"),
            _t(g.action_label),
            _t(f"{g.likelihood:.2f}"),
            *seen,
            _t("; ".join(r for r in (g.reasons if verbose else _short_reasons(g)) if not _observation_reason(r))),
        )
    if work:
        con.print(table)
    if not verbose and len(work) > 15:
        con.print(_t(f"  ... {len(work) - 15} more (-v for all, --format json for everything)", "dim"))


def _observation_reason(reason: str) -> bool:
    """The observed / not observed reason, which the gap table shows as its own column."""
    return reason == "observed in the traced run" or reason.startswith("not observed in the traced run")


def _observation_section(con: Console, t: TargetReport, verbose: bool) -> None:
    """``--observed``: what the traces showed for this target, and how it ranked the gaps."""
    o, s = t.observation, t.syscalls
    if o is None or s is None:
        return
    seen = [f for f in s.syscalls if f.observed]
    unseen = [f for f in s.syscalls if f.observed is False]
    base = sum(1 for f in s.baseline if f.observed)
    gaps = [g for g in t.gaps if g.observed is not None]
    p0 = sum(1 for g in gaps if g.tier.rank == 0)
    traces = ", ".join(x.rsplit("/", 1)[-1] for x in o.traces)
    con.print(_t(f"observed      {traces}: scope {o.scope}, {len(o.syscalls)} syscalls counted for the target", "bold"))
    con.print(_t(f"  {o.rule}", "dim"))
    con.print(
        _t(
            f"  reachable: {len(seen)} observed, {len(unseen)} not observed; start-up baseline: {base} of "
            f"{len(s.baseline)} observed; gaps: {sum(1 for g in gaps if g.observed)} observed, "
            f"{sum(1 for g in gaps if not g.observed)} not observed, P0 {p0}"
        )
    )
    if o.unreached:
        con.print(_t("  observed, not in the static answer: " + " ".join(o.unreached), "yellow"))
    if o.unknown:
        con.print(_t("  not syscalls of this architecture: " + " ".join(o.unknown), "dim"))
    if verbose:
        con.print(_t("  observed: " + " ".join(f.name for f in seen), "green"))
        con.print(_t("  not observed: " + " ".join(f.name for f in unseen), "dim"))


def _counts(pairs: tuple[tuple[Tier, int], ...]) -> str:
    return ", ".join(f"{k} {n}" for k, n in pairs)


def _action_word(a: Action) -> str:
    return {Action.KEEP: "keep (check the stub)", Action.NONE: "none"}.get(a, a.value)


_DETAIL_PREFIXES = (
    "evidence: ",
    "Loupe: used by",
    "no Loupe data",
    "likelihood ",
    "needed via ",
    "on the start-up path",
    "start-up baseline, rare part only",
    "reached only on failure paths",
    "Unikraft stub: ",
)


def _short_reasons(g: Gap) -> list[str]:
    """The reasons that decided the action and tier, without the signal details (``-v`` and JSON
    carry every reason)."""
    head = f"{g.evidence}" + ("" if g.path is ReachPath.NORMAL else f", {g.path}")
    return [head, *(_short_reason(r) for r in g.reasons if not r.startswith(_DETAIL_PREFIXES) and r != g.detail)]


def _short_reason(reason: str) -> str:
    return reason.split(" (glibc ", 1)[0].split(" (libgomp ", 1)[0].split(" (libuv ", 1)[0].split(" (libstdc++ ", 1)[0]


def _step(step: EvidenceStep) -> str:
    where = f" [{step.library}]" if step.kind.names_library else ""
    return f"{step.kind}:{demangle_versioned(step.symbol)}{where}"


def _provider_table(con: Console, t: TargetReport) -> None:
    counts: dict[str, dict[str, int]] = {}
    for imp in t.imports:
        prov = imp.provider or "(unresolved)"
        versions = counts.setdefault(prov, {})
        versions[imp.version or "-"] = versions.get(imp.version or "-", 0) + 1
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    table.add_column("provider")
    table.add_column("imports", justify="right")
    table.add_column("newest versions")
    for prov, versions in sorted(counts.items(), key=lambda kv: -sum(kv[1].values())):
        newest = sorted((v for v in versions if v != "-"), key=_version_key)[-3:]
        table.add_row(_t(prov), _t(str(sum(versions.values()))), _t(", ".join(newest)))
    con.print(table)


def _version_key(v: str) -> tuple[str, tuple[int, ...]]:
    name, _, num = v.partition("_")
    return (name, tuple(int(x) if x.isdecimal() else 0 for x in num.split(".")))


def _print_skipped(con: Console, report: Report) -> None:
    for s in report.skipped:
        con.print(_t(f"skipped {s.path}: {s.reason}", "yellow"))


def render_explain(answers: tuple[ExplainAnswer, ...], query: str, *, color: bool = False, width: int = 120) -> str:
    """Evidence chains for a syscall name/number or an imported symbol, per target
    (:func:`uk_depscan.report.views.explain`)."""
    con, buf = _console(color, width)
    for a in answers:
        if not a.analysed:
            con.print(_t(f"{a.target}: no syscall analysis (architecture not analysed)", "yellow"))
            continue
        con.print(_t(a.target, "bold underline"))
        if a.kind is not QueryKind.SYSCALL:
            via = f", bound to {a.provider}" if a.provider else (", unbound" if a.kind is QueryKind.IMPORT else "")
            con.print(_t(f"  {a.kind} {demangle_versioned(a.symbol)}{via}: reaches {len(a.reaches)} syscalls", "bold"))
            if a.reaches:
                con.print(_t("  " + " ".join(a.reaches), "cyan"))
            if a.hits:
                con.print(_t("  shortest chains that pass through it:"))
        elif not a.hits:
            con.print(_t(f"  {query}: not reachable from this target (nor in the start-up baseline)", "green"))
        for hit in a.hits:
            f, gap = hit.finding, hit.gap
            status = f"  [unikraft: {gap.status} {gap.detail}, {gap.tier} {gap.action_label}]" if gap else ""
            failure = " — only on failure paths" if f.failure_only else ""
            con.print(_t(f"  {f.name} ({f.number}) {hit.scope}{failure}{status}", "bold"))
            for i, step in enumerate(f.chain):
                indent = f"    {'  ' * i}{'└─ ' if i else ''}"
                con.print(_t(indent + _step(step) + (f" @ {step.detail}" if step.detail else "")))
    return buf.getvalue()
