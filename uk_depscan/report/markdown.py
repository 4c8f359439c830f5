"""Markdown rendering for CI summaries and issues; every binary-derived string is escaped."""

from __future__ import annotations

from uk_depscan.model import Report, TargetReport
from uk_depscan.report.escape import demangle
from uk_depscan.report.escape import for_markdown as md


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
            f"| {m.tier} | {md(m.name)} | {md(m.status)} | " + " | ".join("x" if n else "" for n in m.needed_by) + " |"
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
            f"{len(s.baseline)} start-up baseline (libc model {md(s.libc_model)}) |"
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
    if t.syscalls is not None and t.syscalls.requests:
        out += ["", "### Request codes (ioctl, fcntl, prctl, setsockopt)", ""]
        out += [
            f"- `{md(r.call)}` argument {r.arg_index}: {md(r.name)} ({r.sites} call sites)" for r in t.syscalls.requests
        ]
    if t.native is not None:
        n = t.native
        out += [
            "",
            f"### Native route (lib-musl {md(n.libmusl_release)}, musl {md(n.musl_version)})",
            "",
            f"{n.count('available')} libc imports available, {n.count('available-as')} under their source names, "
            f"{n.count('fortify')} fortify entry points, {n.count('missing')} missing.",
            "",
        ]
        out += [
            f"- `{md(g.name)}` ({md(g.status)}): {md(g.detail)}"
            for g in n.symbols
            if g.status in ("missing", "fortify")
        ]
    return out + [""]


def _gaps(t: TargetReport) -> list[str]:
    if not t.gaps:
        return []
    options: dict[str, list[str]] = {}
    for g in t.gaps:
        if g.status == "needs-kconfig":
            options.setdefault(g.action.removeprefix("enable "), []).append(g.name)
    out = ["### Kconfig options to enable", ""]
    out += [
        f"- `{md(opt)}`: {len(names)} syscalls ({md(', '.join(names))})"
        for opt, names in sorted(options.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    ]
    out += [
        "",
        "### Gaps by priority",
        "",
        "| tier | syscall | Unikraft | action | reasons | first evidence |",
        "|---|---|---|---|---|---|",
    ]
    chains = {f.name: f.chain for f in (t.syscalls.syscalls + t.syscalls.baseline)} if t.syscalls else {}
    for g in t.gaps:
        if g.status == "needs-kconfig":
            continue
        chain = chains.get(g.name, ())
        first = " → ".join(md(demangle(s.symbol.split("@", 1)[0])) for s in chain[:3])
        out.append(
            f"| {g.tier} | {md(g.name)} | {md(g.status)}: {md(g.detail)} | {md(g.action)} | "
            f"{md('; '.join(g.reasons))} | {first} |"
        )
    return out
