"""What a new version adds or removes: syscalls, symbol versions, libraries, Unikraft gaps.

Works on the JSON form of two reports (a saved ``--format json`` file, or a fresh analysis of a
binary), so a CI job can diff today's build against a stored baseline.  Facts are the union
over each side's targets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

KINDS = ("library", "symbol-version", "syscall", "gap")


@dataclass(frozen=True)
class Change:
    kind: str
    item: str
    change: str  # added | removed | changed
    detail: str


@dataclass(frozen=True)
class DiffReport:
    old: str
    new: str
    changes: tuple[Change, ...]

    @property
    def new_gaps(self) -> tuple[Change, ...]:
        return tuple(
            c
            for c in self.changes
            if c.kind == "gap" and c.change in ("added", "changed") and not c.detail.endswith("P3")
        )


def facts(doc: dict[str, Any]) -> dict[str, dict[str, str]]:
    """kind → {item: description} for one report document."""
    out: dict[str, dict[str, str]] = {k: {} for k in KINDS}
    for t in doc.get("targets", []):
        for o in t["dependencies"]["load_order"][1:]:
            out["library"][o["needed_name"] or o["path"]] = o["found_via"]
        for imp in t["imports"]:
            if imp["version"]:
                out["symbol-version"][imp["version"]] = imp["version_file"] or ""
        sc = t.get("syscalls") or {}
        for f in sc.get("reached", []) + sc.get("baseline", []):
            out["syscall"][f["name"]] = ", ".join(f["libraries"])
        for g in t.get("gaps", []):
            if g["status"] != "provided":
                out["gap"][g["name"]] = f"{g['status']} {g['tier']}"
    return out


def diff_reports(old: dict[str, Any], new: dict[str, Any], old_name: str, new_name: str) -> DiffReport:
    a, b = facts(old), facts(new)
    changes = []
    for kind in KINDS:
        for item in sorted(set(a[kind]) | set(b[kind])):
            if item not in a[kind]:
                changes.append(Change(kind, item, "added", b[kind][item]))
            elif item not in b[kind]:
                changes.append(Change(kind, item, "removed", a[kind][item]))
            elif kind == "gap" and a[kind][item] != b[kind][item]:
                changes.append(Change(kind, item, "changed", f"{a[kind][item]} -> {b[kind][item]}"))
    return DiffReport(old_name, new_name, tuple(changes))


def render_diff_text(d: DiffReport) -> str:
    from uk_depscan.report.escape import for_terminal

    lines = [f"diff {for_terminal(d.old)} -> {for_terminal(d.new)}"]
    for kind in KINDS:
        items = [c for c in d.changes if c.kind == kind]
        lines.append(
            f"{kind}: {sum(c.change == 'added' for c in items)} added, "
            f"{sum(c.change == 'removed' for c in items)} removed, {sum(c.change == 'changed' for c in items)} changed"
        )
        sign = {"added": "+", "removed": "-", "changed": "~"}
        lines += [f"  {sign[c.change]} {for_terminal(c.item)}  ({for_terminal(c.detail)})" for c in items]
    return "\n".join(lines) + "\n"


def render_diff_json(d: DiffReport) -> str:
    import json

    return (
        json.dumps(
            {
                "schema_version": 1,
                "kind": "diff",
                "old": d.old,
                "new": d.new,
                "changes": [c.__dict__ for c in d.changes],
            },
            indent=2,
            sort_keys=True,
        )
        + "\n"
    )


def render_diff_markdown(d: DiffReport) -> str:
    from uk_depscan.report.escape import for_markdown as md

    lines = [
        f"# uk-depscan diff: {md(d.old)} → {md(d.new)}",
        "",
        "| kind | item | change | detail |",
        "|---|---|---|---|",
    ]
    lines += [f"| {c.kind} | {md(c.item)} | {c.change} | {md(c.detail)} |" for c in d.changes]
    return "\n".join(lines) + "\n"
