"""JSON rendering: an explicit, versioned mapping of :class:`~uk_depscan.model.Report`."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from uk_depscan.loader.resolve import LoadTree
from uk_depscan.model import Report, SyscallFinding, SyscallReport, TargetReport


def report_to_dict(report: Report) -> dict[str, Any]:
    return {
        "schema_version": report.schema_version,
        "tool": {"name": "uk-depscan", "version": report.tool_version},
        "command": report.command,
        "search": {
            "root": report.search.root,
            "library_path": list(report.search.library_path),
            "ld_so_conf": report.search.ld_so_conf,
            "use_ld_so_cache": report.search.use_cache,
        },
        "targets": [target_to_dict(t) for t in report.targets],
        "skipped": [{"path": s.path, "reason": s.reason} for s in report.skipped],
        "plan": [{"step": p.number, "actions": list(p.actions), "completes": list(p.completes)} for p in report.plan],
        "matrix": [
            {
                "syscall": m.name,
                "status": m.status,
                "tier": m.tier,
                "action": m.action,
                "needed_by": [t.target for t, need in zip(report.targets, m.needed_by) if need],
            }
            for m in report.matrix
        ],
        "unikraft": None
        if report.unikraft is None
        else {
            "release": report.unikraft.release,
            "commit": report.unikraft.commit,
            "generator": report.unikraft.generator,
        },
    }


def target_to_dict(t: TargetReport) -> dict[str, Any]:
    elf = asdict(t.elf)
    elf["needed"] = list(t.elf.needed)
    return {
        "target": t.target,
        "sha256": t.sha256,
        "elf": elf,
        "dependencies": tree_to_dict(t.tree),
        "imports": [
            {
                "name": i.name,
                "version": i.version,
                "version_file": i.version_file,
                "binding": i.binding,
                "type": i.sym_type,
                "provider": i.provider,
            }
            for i in t.imports
        ],
        "unresolved": sorted(i.name if not i.version else f"{i.name}@{i.version}" for i in t.unresolved),
        "unresolved_weak": sorted(i.name if not i.version else f"{i.name}@{i.version}" for i in t.unresolved_weak),
        "version_problems": [{"file": p.file, "version": p.version, "reason": p.reason} for p in t.version_problems],
        "warnings": list(t.warnings),
        "syscalls": syscalls_to_dict(t.syscalls) if t.syscalls is not None else None,
        "gaps": [
            {
                "name": g.name,
                "status": g.status,
                "detail": g.detail,
                "library": g.library,
                "kconfig": g.kconfig,
                "action": g.action,
                "tier": g.tier,
                "reasons": list(g.reasons),
            }
            for g in t.gaps
        ],
        "binary_compat": [{"severity": r.severity, "object": r.object, "problem": r.problem} for r in t.route],
        "below_syscall": None
        if t.below is None
        else {
            "pseudo_files": list(t.below.pseudo_files),
            "imports_dlopen": t.below.imports_dlopen,
            "dlopen_targets": [{"name": d.name, "source": d.source} for d in t.below.dlopen_targets],
        },
        "native_route": None
        if t.native is None
        else {
            "libmusl_release": t.native.libmusl_release,
            "musl_version": t.native.musl_version,
            "symbols": [
                {"name": g.name, "version": g.version, "status": g.status, "detail": g.detail} for g in t.native.symbols
            ],
        },
    }


def finding_to_dict(f: SyscallFinding) -> dict[str, Any]:
    return {
        "number": f.number,
        "name": f.name,
        "failure_only": f.failure_only,
        "kinds": list(f.kinds),
        "libraries": list(f.libraries),
        "chain": [{"kind": s.kind, "library": s.library, "symbol": s.symbol, "detail": s.detail} for s in f.chain],
    }


def syscalls_to_dict(s: SyscallReport) -> dict[str, Any]:
    return {
        "arch": s.arch,
        "libc_model": s.libc_model,
        "entries": list(s.entries),
        "reached": [finding_to_dict(f) for f in s.syscalls],
        "baseline": [finding_to_dict(f) for f in s.baseline],
        "sites": [
            {
                "address": x.address,
                "kind": x.kind,
                "numbers": list(x.numbers),
                "names": list(x.names),
                "confidence": x.confidence,
                "reason": x.reason,
                "function": x.function,
                "via": x.via,
            }
            for x in s.sites
        ],
        "sources": [{"library": x.library, "source": x.source, "build_id": x.build_id} for x in s.sources],
        "unknown_sites": s.unknown_sites,
        "requests": [
            {"call": r.call, "arg_index": r.arg_index, "value": r.value, "name": r.name, "sites": r.sites}
            for r in s.requests
        ],
    }


def tree_to_dict(tree: LoadTree) -> dict[str, Any]:
    return {
        "load_order": [
            {
                "index": o.index,
                "path": o.path,
                "realpath": o.realpath,
                "needed_name": o.needed_name,
                "loaded_by": o.loader,
                "depth": o.depth,
                "found_via": o.found_via,
                "via_detail": o.via_detail,
                "soname": o.soname,
                "needed": list(o.needed),
                "rpath": o.rpath,
                "runpath": o.runpath,
                "machine": o.machine,
                "class": o.elf_class,
                "build_id": o.build_id,
                "error": o.error,
                "rejected_candidates": [{"path": a.path, "outcome": a.outcome} for a in o.tried],
            }
            for o in tree.objects
        ],
        "edges": [{"from": e.source, "needed": e.needed_name, "to": e.target} for e in tree.edges],
        "missing": [
            {
                "needed_name": m.needed_name,
                "needed_by": m.needed_by,
                "reason": m.reason,
                "tried": [{"path": a.path, "outcome": a.outcome} for a in m.tried],
            }
            for m in tree.missing
        ],
        "notes": list(tree.search_notes),
    }


def render_json(report: Report) -> str:
    return json.dumps(report_to_dict(report), indent=2, sort_keys=True, ensure_ascii=True) + "\n"
