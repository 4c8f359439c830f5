"""Rendering of a diff between two reports (:func:`uk_depscan.report.views.diff_reports`): what a
new version adds or removes — libraries, symbol versions, syscalls, Unikraft gaps — so a CI job can
diff today's build against a stored baseline."""

from __future__ import annotations

import json

from uk_depscan.report.escape import for_json, for_terminal
from uk_depscan.report.escape import for_markdown as md
from uk_depscan.report.views import ChangeType, DiffKind, DiffReport

_SIGN = {ChangeType.ADDED: "+", ChangeType.REMOVED: "-", ChangeType.CHANGED: "~"}


def render_diff_text(d: DiffReport) -> str:
    lines = [f"diff {for_terminal(d.old)} -> {for_terminal(d.new)}"]
    for kind in DiffKind:
        items = [c for c in d.changes if c.kind is kind]
        counts = {change: sum(c.change is change for c in items) for change in ChangeType}
        lines.append(
            f"{kind}: {counts[ChangeType.ADDED]} added, {counts[ChangeType.REMOVED]} removed, "
            f"{counts[ChangeType.CHANGED]} changed"
        )
        lines += [f"  {_SIGN[c.change]} {for_terminal(c.item)}  ({for_terminal(c.detail)})" for c in items]
    return "\n".join(lines) + "\n"


def render_diff_json(d: DiffReport) -> str:
    doc = {
        "schema_version": 1,
        "kind": "diff",
        "old": d.old,
        "new": d.new,
        "changes": [{"kind": c.kind, "item": c.item, "change": c.change, "detail": c.detail} for c in d.changes],
    }
    return json.dumps(for_json(doc), indent=2, sort_keys=True) + "\n"


def render_diff_markdown(d: DiffReport) -> str:
    lines = [
        f"# uk-depscan diff: {md(d.old)} → {md(d.new)}",
        "",
        "| kind | item | change | detail |",
        "|---|---|---|---|",
    ]
    lines += [f"| {c.kind} | {md(c.item)} | {c.change} | {md(c.detail)} |" for c in d.changes]
    return "\n".join(lines) + "\n"
