"""Markdown rendering for CI summaries and issues; every binary-derived string is escaped."""

from __future__ import annotations

from uk_depscan.model import EvidenceStep, GapRow, NativeRoute, NativeStatus, Report, RuntimeLoad, TargetReport, Tier
from uk_depscan.names import demangle, demangle_versioned
from uk_depscan.report.escape import for_markdown as md
from uk_depscan.report.views import target_views


def render_markdown(report: Report, **_: object) -> str:
    lines = ["# uk-depscan report", ""]
    if report.unikraft is not None:
        lines += [
            f"Unikraft table: **{md(report.unikraft.release)}** (commit `{md(report.unikraft.commit[:12])}`), "
            f"uk-depscan {md(report.tool_version)}",
            "",
        ]
    for t in report.targets:
        lines += _target(t)
    if report.matrix:
        heads = " | ".join(f"#{i + 1}" for i in range(len(report.targets)))
        lines += [
            "## Syscalls × targets",
            "",
            f"| tier | syscall | Unikraft | {heads} |",
            "|---|---|---|" + "---|" * len(report.targets),
        ]
        lines += [
            f"| {m.tier_label} | {md(m.name)} | {md(m.status_label)} | "
            + " | ".join("x" if n else "" for n in m.needed_by)
            + " |"
            for m in report.matrix
        ]
        lines += [""] + [f"- #{i + 1}: {md(t.target)}" for i, t in enumerate(report.targets)] + [""]
    if report.plan:
        lines += [
            "## Plan (greedy: finish the target that needs least, repeat)",
            "",
            "| step | new actions | fully supported after it |",
            "|---|---|---|",
        ]
        lines += [
            f"| {p.number} | {md(', '.join(p.actions)) or 'nothing new'} | {md(', '.join(p.completes))} |"
            for p in report.plan
        ]
        lines.append("")
    for s in report.skipped:
        lines.append(f"- skipped {md(s.path)}: {md(s.reason)}")
    return "\n".join(lines).rstrip() + "\n"


def _target(t: TargetReport) -> list[str]:
    e = t.elf
    out = [
        f"## {md(t.target)}",
        "",
        "| | |",
        "|---|---|",
        f"| object | ELF{e.elf_class} {md(e.machine)} {md(e.elf_type)}{' PIE' if e.pie else ''} |",
        f"| soname | {md(e.soname or '-')} |",
        f"| build-id | {md(e.build_id or '-')} |",
        f"| libraries | {len(t.tree.objects) - 1} loaded, {len(t.tree.missing)} missing |",
        f"| imports | {len(t.imports)} ({len(t.unresolved)} unresolved) |",
    ]
    if t.syscalls is not None:
        s = t.syscalls
        failure = sum(f.failure_only for f in s.syscalls)
        out.append(
            f"| syscalls | {len(s.syscalls) - failure} reachable, {failure} failure-only, "
            f"{sum(not f.rare for f in s.baseline)} start-up baseline (+ {sum(f.rare for f in s.baseline)} on rare "
            f"paths; libc model {md(s.libc_model)}) |"
        )
    out.append("")
    for m in t.tree.missing:
        out.append(f"- **missing** {md(m.needed_name)}: {md(m.reason)}")
    for r in t.route:
        out.append(f"- **binary-compat {md(r.severity)}** {md(r.object)}: {md(r.problem)}")
    out += _gaps(t)
    if t.below is not None and (t.below.pseudo_files or t.below.dlopen_targets):
        out += ["", "### Below the syscall level", ""]
        out += [f"- pseudo-file `{md(f)}`" for f in t.below.pseudo_files]
        out += [f"- dlopen target `{md(d.name)}` ({md(d.source)})" for d in t.below.dlopen_targets]
    if t.syscalls is not None and t.syscalls.runtime_loads:
        out += ["", "### Loaded at run time", ""]
        out += [f"- {_runtime_text(x)}" for x in t.syscalls.runtime_loads]
    if t.syscalls is not None and t.syscalls.requests:
        out += ["", "### Request codes (ioctl, fcntl, prctl, setsockopt)", ""]
        out += [
            f"- `{md(r.call)}` argument {r.arg_index}: {md(r.name)} ({r.sites} call site{'' if r.sites == 1 else 's'})"
            for r in t.syscalls.requests
        ]
    if t.native is not None:
        out += _native(t.native)
    return [*out, ""]


def _native(n: NativeRoute) -> list[str]:
    out = [
        "",
        f"### Native route (lib-musl {md(n.libmusl_release)}, musl {md(n.musl_version)})",
        "",
        f"{n.count(NativeStatus.AVAILABLE)} libc imports available, {n.count(NativeStatus.AVAILABLE_AS)} under their "
        f"source names, {n.count(NativeStatus.FORTIFY)} fortify entry points, {n.count(NativeStatus.MISSING)} missing.",
        "",
    ]
    out += [
        f"- `{md(g.name)}` ({md(g.status)}): {md(g.detail)}"
        for g in n.symbols
        if g.status in (NativeStatus.MISSING, NativeStatus.FORTIFY)
    ]
    return out


def _gaps(t: TargetReport) -> list[str]:
    if not t.gaps:
        return []
    v = target_views(t)
    enable = sum(n for _, n in v.enable_tier_counts)
    out = [
        f"{len(v.rows)} syscalls; tiers {_tier_counts(v.tier_counts)}.",
        "",
        f"### Kconfig options to enable ({len(v.kconfig_groups)} options for {enable} syscalls: "
        f"{_tier_counts(v.enable_tier_counts)})",
        "",
    ]
    for k in v.kconfig_groups:
        extra = [
            *(["already on in the route's base configuration"] if k.already_on else []),
            *(
                [f"requires `{md(k.requires)}`"]
                if k.requires and k.requires != k.option.removeprefix("CONFIG_")
                else []
            ),
            *([f"drags in {md(', '.join(k.drags_in))}"] if k.drags_in else []),
            *([md(k.note)] if k.note else []),
        ]
        out.append(
            f"- `{md(k.option)}`: {len(k.syscalls)} syscalls ({md(', '.join(k.syscalls))})"
            + (f" — {k.tier}" if k.tier else "")
            + (f"; {'; '.join(extra)}" if extra else "")
        )
    out += [f"- left out: {md(a)}" for a in (t.kconfig.alternatives if t.kconfig is not None else ())]
    observed = t.observation is not None
    out += [
        "",
        f"### Gaps by priority (work: {len(v.top_actions)} rows, {_tier_counts(v.top_tier_counts)})",
        "",
        "| tier | syscall | Unikraft | action | likelihood | "
        + ("observed | " if observed else "")
        + "reasons | first evidence |",
        "|---|---|---|---|---|" + ("---|" if observed else "") + "---|---|",
    ]
    for row in v.work:
        g, chain = row.gap, row.evidence.chain if row.evidence else ()
        first = " → ".join(md(demangle(s.symbol.split("@", 1)[0])) for s in chain[:3])
        seen = ("yes | " if g.observed else "no | ") if observed else ""
        out.append(
            f"| {g.tier} | {md(g.name)} | {md(g.status)}: {md(g.detail)} | {md(g.action_label)} | "
            f"{g.likelihood:.2f} ({g.evidence}) | {seen}{md('; '.join(g.reasons))} | {first} |"
        )
    invalid = t.syscalls.invalid if t.syscalls is not None else ()
    out += ["", "### Invalid syscall numbers", "", *(f"- {md(i.message)}" for i in invalid)] if invalid else []
    return out + _chains(v.work) + _observation(t)


def _chains(rows: tuple[GapRow, ...]) -> list[str]:
    """The whole evidence chain of every row of work, function by function, down to the site."""
    lines = [f"- **{md(r.gap.name)}**: {_chain_text(r.evidence.chain)}" for r in rows if r.evidence is not None]
    return ["", "### Evidence chains", "", *lines] if lines else []


def _chain_text(chain: tuple[EvidenceStep, ...]) -> str:
    parts = []
    for s in chain:
        where = f" [{s.library}]" if s.kind.names_library else ""
        at = f" @ {s.detail}" if s.detail else ""
        parts.append(md(f"{s.kind}:{demangle_versioned(s.symbol)}{where}{at}"))
    return " → ".join(parts)


def _observation(t: TargetReport) -> list[str]:
    """``--observed``: what the traces showed for this target."""
    o, s = t.observation, t.syscalls
    if o is None or s is None:
        return []
    gaps = [g for g in t.gaps if g.observed is not None]
    out = [
        "",
        "### Observed in traced runs",
        "",
        f"Traces: {md(', '.join(o.traces))}; scope {md(o.scope)}: {md(o.rule)}.",
        "",
        f"- reachable syscalls: {sum(1 for f in s.syscalls if f.observed)} observed, "
        f"{sum(1 for f in s.syscalls if f.observed is False)} not observed",
        f"- start-up baseline: {sum(1 for f in s.baseline if f.observed)} of {len(s.baseline)} observed",
        f"- gaps: {sum(1 for g in gaps if g.observed)} observed, {sum(1 for g in gaps if not g.observed)} not observed",
    ]
    if o.unreached:
        out.append(f"- observed, not in the static answer: {md(' '.join(o.unreached))}")
    if o.unknown:
        out.append(f"- not syscalls of this architecture: {md(' '.join(o.unknown))}")
    return out


def _tier_counts(pairs: tuple[tuple[Tier, int], ...]) -> str:
    return ", ".join(f"{k} {n}" for k, n in pairs)


def _runtime_text(x: RuntimeLoad) -> str:
    return f"{md(x.via)} `{md(x.name)}` by {md(x.loader)}: {md(x.path)}; {md(x.outcome(', '))}"
