"""A diff between two reports: what a new version adds or removes — libraries, imports (by
provider and version), symbol versions, syscalls, Unikraft gaps (with tier changes), pseudo-files,
dlopen targets, objects loaded at run time, request codes and binary-compatibility route findings —
so a CI job can diff today's build against a stored baseline (a saved JSON report is read back with
:func:`uk_depscan.report.json_report.load_report`).

A diff of two reports made under different assumptions (libc model, route, Unikraft release)
mixes real changes with changes of the assumptions: :attr:`DiffReport.warnings` says so, in every
format.  Renderers: text, JSON, Markdown and a self-contained HTML page; every string from a
binary goes through the escaping rule of its channel (:mod:`uk_depscan.report.escape`).
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass

from uk_depscan.model import Report, StrEnum, SupportStatus, TargetReport, Tier
from uk_depscan.report.escape import for_html, for_json, for_terminal
from uk_depscan.report.escape import for_markdown as md


class DiffKind(StrEnum):
    LIBRARY = "library"
    IMPORT = "import"
    SYMBOL_VERSION = "symbol-version"
    SYSCALL = "syscall"
    GAP = "gap"
    PSEUDO_FILE = "pseudo-file"
    DLOPEN = "dlopen-target"
    RUNTIME_LOAD = "runtime-load"
    REQUEST = "request-code"
    ROUTE = "route-finding"

    @property
    def heading(self) -> str:
        return _TITLES[self]


_TITLES = {
    DiffKind.LIBRARY: "libraries",
    DiffKind.IMPORT: "imports",
    DiffKind.SYMBOL_VERSION: "symbol versions",
    DiffKind.SYSCALL: "syscalls",
    DiffKind.GAP: "Unikraft gaps",
    DiffKind.PSEUDO_FILE: "pseudo-files",
    DiffKind.DLOPEN: "dlopen targets",
    DiffKind.RUNTIME_LOAD: "run-time loads",
    DiffKind.REQUEST: "request codes",
    DiffKind.ROUTE: "route findings",
}


class ChangeType(StrEnum):
    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"


@dataclass(frozen=True)
class Change:
    """One fact added, removed or (gaps only) changed; ``tier`` is the new side's tier of a gap;
    ``group`` is what the text groups it under (an import's provider)."""

    kind: DiffKind
    item: str
    change: ChangeType
    detail: str
    tier: Tier | None = None
    group: str = ""


@dataclass(frozen=True)
class DiffReport:
    old: str
    new: str
    changes: tuple[Change, ...]
    warnings: tuple[str, ...] = ()

    @property
    def new_gaps(self) -> tuple[Change, ...]:
        """Gaps to act on (P0-P2) that the new side has and the old one had not, or had otherwise."""
        return tuple(
            c
            for c in self.changes
            if c.kind is DiffKind.GAP
            and c.change in (ChangeType.ADDED, ChangeType.CHANGED)
            and c.tier is not None
            and c.tier.actionable
        )

    def count(self, kind: DiffKind, change: ChangeType) -> int:
        return sum(1 for c in self.changes if c.kind is kind and c.change is change)


@dataclass(frozen=True)
class _Fact:
    detail: str
    tier: Tier | None = None
    group: str = ""


def _basename(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def facts(report: Report) -> dict[DiffKind, dict[str, _Fact]]:
    """kind → {item: fact}, the union over the report's targets (a later target's fact wins)."""
    out: dict[DiffKind, dict[str, _Fact]] = {k: {} for k in DiffKind}
    for t in report.targets:
        for o in t.tree.objects[1:]:
            out[DiffKind.LIBRARY][o.needed_name or o.path] = _Fact(o.found_via.value)
        for imp in t.imports:
            provider = _basename(imp.provider) if imp.provider else "(unresolved)"
            item = f"{imp.name}@{imp.version}" if imp.version else imp.name
            out[DiffKind.IMPORT][item] = _Fact(provider, group=provider)
            if imp.version:
                out[DiffKind.SYMBOL_VERSION][imp.version] = _Fact(imp.version_file or "")
        for f in t.syscalls.syscalls + t.syscalls.baseline if t.syscalls else ():
            out[DiffKind.SYSCALL][f.name] = _Fact(", ".join(f.libraries))
        for g in t.gaps:
            if g.status is not SupportStatus.PROVIDED:
                out[DiffKind.GAP][g.name] = _Fact(f"{g.status} {g.tier}", g.tier)
        if t.below is not None:
            for p in t.below.pseudo_files:
                out[DiffKind.PSEUDO_FILE][p] = _Fact("")
            for d in t.below.dlopen_targets:
                out[DiffKind.DLOPEN][d.name] = _Fact(d.source)
        for x in t.syscalls.runtime_loads if t.syscalls else ():
            out[DiffKind.RUNTIME_LOAD][x.name] = _Fact(f"{x.via}: {_basename(x.path)}")
        for r in t.syscalls.requests if t.syscalls else ():
            out[DiffKind.REQUEST][f"{r.call}({r.name})"] = _Fact(f"{r.sites} call site" + ("s" if r.sites != 1 else ""))
        for rf in t.route:
            out[DiffKind.ROUTE][f"{_basename(rf.object)}: {rf.problem}"] = _Fact(rf.severity.value)
    return out


def _assumptions(t: TargetReport) -> dict[str, str]:
    return {
        "libc model": t.syscalls.libc_model.value if t.syscalls else "-",
        "route": t.kconfig.route if t.kconfig else ("native" if t.native is not None else "-"),
    }


def assumption_warnings(old: Report, new: Report) -> tuple[str, ...]:
    """What the two reports assumed differently: a change of libc model, route or Unikraft release
    changes syscalls and gaps with no change of the binary."""
    out = []
    a = {k: v for t in old.targets for k, v in _assumptions(t).items()}
    b = {k: v for t in new.targets for k, v in _assumptions(t).items()}
    a["Unikraft release"] = old.unikraft.release if old.unikraft else "-"
    b["Unikraft release"] = new.unikraft.release if new.unikraft else "-"
    for key in ("libc model", "route", "Unikraft release"):
        if a.get(key, "-") != b.get(key, "-"):
            out.append(
                f"{key} differs ({a.get(key, '-')} -> {b.get(key, '-')}): some changes below come from that, "
                "not from the binaries"
            )
    return tuple(out)


def diff_reports(old: Report, new: Report, old_name: str, new_name: str) -> DiffReport:
    a, b = facts(old), facts(new)
    changes = []
    for kind in DiffKind:
        for item in sorted(set(a[kind]) | set(b[kind])):
            if item not in a[kind]:
                f = b[kind][item]
                changes.append(Change(kind, item, ChangeType.ADDED, f.detail, f.tier, f.group))
            elif item not in b[kind]:
                f = a[kind][item]
                changes.append(Change(kind, item, ChangeType.REMOVED, f.detail, None, f.group))
            elif kind is DiffKind.GAP and a[kind][item] != b[kind][item]:
                detail = f"{a[kind][item].detail} -> {b[kind][item].detail}"
                changes.append(Change(kind, item, ChangeType.CHANGED, detail, b[kind][item].tier))
    # imports by provider, then version, then name; everything else by item
    order = list(DiffKind)
    changes.sort(
        key=lambda c: (order.index(c.kind), c.group, _version_of(c.item) if c.kind is DiffKind.IMPORT else "", c.item)
    )
    return DiffReport(old_name, new_name, tuple(changes), assumption_warnings(old, new))


def _version_of(item: str) -> str:
    return item.partition("@")[2]


# -- renderers ------------------------------------------------------------------------------------
_SIGN = {ChangeType.ADDED: "+", ChangeType.REMOVED: "-", ChangeType.CHANGED: "~"}


def _counts(d: DiffReport, kind: DiffKind) -> str:
    return ", ".join(
        f"{d.count(kind, c)} {c}" for c in ChangeType if c is not ChangeType.CHANGED or kind is DiffKind.GAP
    )


def render_diff_text(d: DiffReport) -> str:
    t = for_terminal
    lines = [f"diff {t(d.old)} -> {t(d.new)}"]
    lines += [f"warning: {t(w)}" for w in d.warnings]
    width = max(len(k.heading) for k in DiffKind)
    lines += [f"  {k.heading:<{width}}  {_counts(d, k)}" for k in DiffKind]
    for kind in DiffKind:
        items = [c for c in d.changes if c.kind is kind]
        if not items:
            continue
        lines += ["", f"{kind.heading}: {_counts(d, kind)}"]
        if kind is DiffKind.IMPORT:
            lines += _import_lines(items)
            continue
        lines += [f"  {_SIGN[c.change]} {t(c.item)}" + (f"  ({t(c.detail)})" if c.detail else "") for c in items]
    return "\n".join(lines) + "\n"


def _import_lines(items: list[Change]) -> list[str]:
    """Imports under their provider, with a count per symbol version."""
    out: list[str] = []
    for group in dict.fromkeys(c.group for c in items):
        mine = [c for c in items if c.group == group]
        per_version: dict[str, list[int]] = {}
        for c in mine:
            slot = per_version.setdefault(_version_of(c.item) or "unversioned", [0, 0])
            slot[c.change is ChangeType.REMOVED] += 1
        versions = ", ".join(f"{v} +{n[0]} -{n[1]}" for v, n in per_version.items())
        out.append(for_terminal(f"  {group}: {versions}"))
        out += [f"    {_SIGN[c.change]} {for_terminal(c.item)}" for c in mine]
    return out


def render_diff_json(d: DiffReport) -> str:
    doc = {
        "schema_version": 2,
        "kind": "diff",
        "old": d.old,
        "new": d.new,
        "warnings": list(d.warnings),
        "counts": {k.value: {c.value: d.count(k, c) for c in ChangeType} for k in DiffKind},
        "changes": [
            {"kind": c.kind, "item": c.item, "change": c.change, "detail": c.detail}
            | ({"provider": c.group} if c.kind is DiffKind.IMPORT else {})
            | ({"tier": c.tier.value} if c.tier is not None else {})
            for c in d.changes
        ],
    }
    return json.dumps(for_json(doc), indent=2, sort_keys=True) + "\n"


def render_diff_markdown(d: DiffReport) -> str:
    lines = [f"# uk-depscan diff: {md(d.old)} → {md(d.new)}", ""]
    lines += [f"> **warning:** {md(w)}" for w in d.warnings]
    lines += [*([""] if d.warnings else []), "| section | added | removed | changed |", "|---|---|---|---|"]
    lines += [
        f"| {k.heading} | {d.count(k, ChangeType.ADDED)} | {d.count(k, ChangeType.REMOVED)} | "
        f"{d.count(k, ChangeType.CHANGED)} |"
        for k in DiffKind
    ]
    for kind in DiffKind:
        items = [c for c in d.changes if c.kind is kind]
        if not items:
            continue
        head = "| change | provider | item |" if kind is DiffKind.IMPORT else "| change | item | detail |"
        lines += ["", f"## {kind.heading}", "", head, "|---|---|---|"]
        lines += [
            f"| {c.change} | {md(c.group if kind is DiffKind.IMPORT else c.item)} | "
            f"{md(c.item if kind is DiffKind.IMPORT else c.detail)} |"
            for c in items
        ]
    return "\n".join(lines) + "\n"


_CSS = (
    "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;max-width:80em}"
    "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left}"
    "td.n{text-align:right}code{white-space:nowrap}.added{color:#070}.removed{color:#a00}.changed{color:#850}"
    ".warn{background:#fff3cd;padding:.5em;border:1px solid #e0c060}"
)


def render_diff_html(d: DiffReport) -> str:
    """One self-contained page: no script, no external resource (the CSP forbids both)."""
    h = for_html
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        f"<title>uk-depscan diff: {h(d.old)} → {h(d.new)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>uk-depscan diff</h1><p><code>{h(d.old)}</code> → <code>{h(d.new)}</code></p>",
    ]
    out += [f'<p class="warn">warning: {h(w)}</p>' for w in d.warnings]
    out.append("<table><thead><tr><th>section</th><th>added</th><th>removed</th><th>changed</th></tr></thead><tbody>")
    out += [
        f'<tr><td><a href="#{k.value}">{html.escape(k.heading)}</a></td>'
        + "".join(f'<td class="n">{d.count(k, c)}</td>' for c in ChangeType)
        + "</tr>"
        for k in DiffKind
    ]
    out.append("</tbody></table>")
    for kind in DiffKind:
        items = [c for c in d.changes if c.kind is kind]
        if not items:
            continue
        second = "provider" if kind is DiffKind.IMPORT else "detail"
        out.append(f'<h2 id="{kind.value}">{html.escape(kind.heading)}</h2>')
        out.append(f"<table><thead><tr><th>change</th><th>item</th><th>{second}</th></tr></thead><tbody>")
        out += [
            f'<tr class="{c.change.value}"><td>{c.change.value}</td><td><code>{h(c.item)}</code></td>'
            f"<td>{h(c.group if kind is DiffKind.IMPORT else c.detail)}</td></tr>"
            for c in items
        ]
        out.append("</tbody></table>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"
