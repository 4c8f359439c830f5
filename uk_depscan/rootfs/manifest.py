"""The root-filesystem manifest as JSON and as text.

JSON: ``kind``/``schema_version`` first-class, sorted keys, lists in the manifest's (sorted) order,
so two runs give the same bytes.  A path that is not valid UTF-8 is shown with U+FFFD and carries
its exact bytes, base64, in ``<key>_bytes`` beside it (the convention of the JSON report).  Text:
every string from a binary or a file name through :func:`uk_depscan.report.escape.for_terminal`
(one inert line each).
"""

from __future__ import annotations

import base64
import json
from typing import Any

from uk_depscan.report.escape import for_terminal
from uk_depscan.rootfs.model import (
    MANIFEST_KIND,
    MANIFEST_SCHEMA_VERSION,
    DlopenStatus,
    Entry,
    EntryKind,
    Manifest,
    PseudoStatus,
)

BYTES_SUFFIX = "_bytes"


def _text(key: str, value: str | None) -> dict[str, Any]:
    """``{key: value}``, plus ``key_bytes`` when ``value`` holds bytes that are not UTF-8."""
    if value is None:
        return {key: None}
    raw = value.encode("utf-8", "surrogateescape")
    shown = raw.decode("utf-8", "replace")
    out: dict[str, Any] = {key: shown}
    if shown != value:
        out[key + BYTES_SUFFIX] = base64.b64encode(raw).decode("ascii")
    return out


def _texts(key: str, values: tuple[str, ...]) -> dict[str, Any]:
    shown = [v.encode("utf-8", "surrogateescape").decode("utf-8", "replace") for v in values]
    out: dict[str, Any] = {key: shown}
    if shown != list(values):
        out[key + BYTES_SUFFIX] = [
            base64.b64encode(v.encode("utf-8", "surrogateescape")).decode("ascii") for v in values
        ]
    return out


def _entry(e: Entry) -> dict[str, Any]:
    return {
        **_text("path", e.path),
        "kind": e.kind.value,
        "role": e.role.value,
        "mode": f"{e.mode:04o}",
        "size": e.size,
        "sha256": e.sha256,
        **_text("link", e.link),
        **_text("source", e.source),
        **_text("found_via", e.found_via),
        **_texts("needed_by", e.needed_by),
    }


def manifest_to_dict(m: Manifest) -> dict[str, Any]:
    return {
        "kind": MANIFEST_KIND,
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "tool_version": m.tool_version,
        "arch": m.arch,
        "app_dir": m.app_dir,
        "mtime": m.mtime,
        "output": m.output.value,
        "complete": m.complete,
        "targets": [{**_text("source", s), **_text("path", g)} for s, g in m.targets],
        "totals": {
            "files": len(m.files),
            "bytes": m.bytes,
            "symlinks": sum(1 for e in m.entries if e.kind is EntryKind.SYMLINK),
            "directories": sum(1 for e in m.entries if e.kind is EntryKind.DIRECTORY),
            "dlopen_found": sum(1 for d in m.dlopen if d.status is not DlopenStatus.NOT_FOUND),
            "dlopen_not_found": sum(1 for d in m.dlopen if d.status is DlopenStatus.NOT_FOUND),
            "pseudo_files_provided": sum(1 for p in m.pseudo_files if p.status.provided),
            "pseudo_files_not_provided": sum(1 for p in m.pseudo_files if not p.status.provided),
            "missing": len(m.missing),
            "refused": len(m.refused),
        },
        "lookup": {
            "method": m.lookup.method.value,
            "cache": m.lookup.cache,
            "detail": m.lookup.detail,
            "directories": list(m.lookup.directories),
            "entries": [{**_text("name", n), **_text("path", p)} for n, p in m.lookup.entries],
        },
        "entries": [_entry(e) for e in m.entries],
        "dlopen": [
            {
                **_text("caller", d.caller),
                **_text("name", d.name),
                "evidence": d.evidence,
                "status": d.status.value,
                **_text("path", d.path),
                **_text("found_via", d.found_via),
                **_text("reason", d.reason),
                "tried": [{**_text("path", a.path), "outcome": a.outcome} for a in d.tried],
            }
            for d in m.dlopen
        ],
        "pseudo_files": {
            "unikraft": {
                "release": m.pseudo_table.release,
                "commit": m.pseudo_table.commit,
                "generator": m.pseudo_table.generator,
            },
            "files": [
                {
                    **_text("path", p.path),
                    "status": p.status.value,
                    "provided": p.status.provided,
                    "matched": p.matched,
                    "requires": p.requires,
                    "enable": list(p.enable),
                    "libraries": list(p.libraries),
                    "reason": p.reason,
                    **_texts("referenced_by", p.referenced_by),
                }
                for p in m.pseudo_files
            ],
        },
        "missing": [
            {
                **_text("name", x.name),
                **_text("needed_by", x.needed_by),
                **_text("reason", x.reason),
                "tried": [{**_text("path", a.path), "outcome": a.outcome} for a in x.tried],
            }
            for x in m.missing
        ],
        "refused": [
            {**_text("source", r.source), **_text("path", r.path), **_text("reason", r.reason)} for r in m.refused
        ],
        "verification": {
            "done": m.verification.done,
            "checked": m.verification.checked,
            "note": m.verification.note,
            "problems": list(m.verification.problems),
        },
        "warnings": [w.encode("utf-8", "surrogateescape").decode("utf-8", "replace") for w in m.warnings],
    }


def render_manifest_json(m: Manifest) -> str:
    return json.dumps(manifest_to_dict(m), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _size(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB" if n >= 1 << 20 else f"{n} B"


def render_manifest_text(m: Manifest) -> str:
    t = for_terminal
    out = [
        f"root filesystem for {', '.join(t(s) for s, _ in m.targets)} ({m.arch}), uk-depscan {m.tool_version}",
        f"output        {m.output.value}; mtime {m.mtime}; application directory {m.app_dir}",
        f"totals        {len(m.files)} files, {_size(m.bytes)}, "
        f"{sum(1 for e in m.entries if e.kind is EntryKind.SYMLINK)} symlinks, "
        f"{sum(1 for e in m.entries if e.kind is EntryKind.DIRECTORY)} directories",
        f"lookup        {t(m.lookup.detail)}",
    ]
    out += [f"target        {t(g)}  <- {t(s)}" for s, g in m.targets]
    out += ["", "entries (mode, size, path, role, how the loader finds it):"]
    for e in m.entries:
        if e.kind is EntryKind.DIRECTORY:
            continue
        what = f" -> {t(e.link)}" if e.link else ""
        via = f"  [{t(e.found_via)}]" if e.found_via else ""
        out.append(f"  {e.mode:04o} {e.size:>11} {t(e.path)}{what}  ({e.role.value}){via}")
    found = [d for d in m.dlopen if d.status is not DlopenStatus.NOT_FOUND]
    out += ["", f"dlopen targets: {len(found)} found, {len(m.dlopen) - len(found)} not found"]
    for d in m.dlopen:
        where = f" -> {t(d.path)}" if d.path else ""
        out.append(f"  {d.status.value:<14} {t(d.name)}{where}  (named by {t(d.caller)}: {t(d.evidence)})")
        if d.status is DlopenStatus.NOT_FOUND:
            out += [f"      tried {t(a.path)}: {t(a.outcome)}" for a in d.tried]
    provided = sum(1 for p in m.pseudo_files if p.status.provided)
    out += [
        "",
        f"pseudo-files: {provided} provided, {len(m.pseudo_files) - provided} not provided by Unikraft "
        f"{m.pseudo_table.release} ({m.pseudo_table.commit[:12]}, table {m.pseudo_table.generator})",
    ]
    for p in m.pseudo_files:
        label = {PseudoStatus.PROVIDED: "provided", PseudoStatus.NEEDS_KCONFIG: "needs-kconfig"}.get(
            p.status, "NOT provided"
        )
        out.append(f"  {label:<13} {t(p.path)}: {t(p.reason)}  (in {', '.join(t(r) for r in p.referenced_by)})")
    if m.missing:
        out += ["", f"missing libraries: {len(m.missing)}"]
        for x in m.missing:
            out.append(f"  {t(x.name)} needed by {t(x.needed_by)}: {t(x.reason)}")
    if m.refused:
        out += ["", f"refused: {len(m.refused)}"]
        out += [f"  {t(r.source)}: {t(r.reason)}" for r in m.refused]
    v = m.verification
    out += ["", f"verification  {t(v.note)}" + (f"; {len(v.problems)} problems" if v.problems else "")]
    out += [f"  {t(p)}" for p in v.problems]
    out += [f"warning: {t(w)}" for w in m.warnings]
    return "\n".join(out) + "\n"
