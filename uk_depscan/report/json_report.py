"""JSON rendering: an explicit, versioned mapping of :class:`~uk_depscan.model.Report`, and back.

:func:`report_to_dict` writes the committed schema (``schema/report-v1.schema.json``);
:func:`report_from_dict` reads a saved report back into a :class:`~uk_depscan.model.Report` after
checking it against that schema (a saved report is input like any other: it may be damaged or
forged).  Each target's ``views`` are derived data: written for consumers, recomputed on reading.
"""

from __future__ import annotations

import base64
import binascii
import gc
import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from uk_depscan.errors import InputError
from uk_depscan.model import (
    Action,
    Arch,
    Attempt,
    BelowSyscall,
    Breadth,
    Confidence,
    DlopenTarget,
    ElfSummary,
    Evidence,
    EvidenceKind,
    EvidenceStep,
    FoundVia,
    Gap,
    ImportReach,
    ImportRecord,
    InvalidSyscallNumber,
    KconfigGroup,
    KconfigPlan,
    LibcModel,
    LoadedObject,
    LoadTree,
    LoadVia,
    MatrixRow,
    MissingLibrary,
    NativeRoute,
    NativeStatus,
    NeededEdge,
    Observation,
    ObservationScope,
    PlanStep,
    ReachPath,
    Report,
    RequestRecord,
    RouteFinding,
    RuntimeLoad,
    SearchSettings,
    Severity,
    SiteKind,
    SiteRecord,
    Skipped,
    SummarySourceRecord,
    SupportStatus,
    SymbolGap,
    SyscallFinding,
    SyscallReport,
    TableRef,
    TargetReport,
    TargetViews,
    Tier,
    VersionProblem,
)
from uk_depscan.report.escape import BYTES_SUFFIX, for_json, json_needs_mending, json_text
from uk_depscan.report.validate import first_problem
from uk_depscan.report.views import ExplainAnswer, target_views, with_views


# -- Report -> dict -------------------------------------------------------------------------------
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
            # only when given: reports of runs without it stay byte-identical to earlier ones
            **({"python_path": list(report.search.python_path)} if report.search.python_path else {}),
        },
        "targets": [target_to_dict(t) for t in report.targets],
        "skipped": [{"path": s.path, "reason": s.reason} for s in report.skipped],
        "plan": [{"step": p.number, "actions": list(p.actions), "completes": list(p.completes)} for p in report.plan],
        "matrix": [
            {
                "syscall": m.name,
                "status": m.status_label,
                "tier": m.tier_label,
                "action": m.action_label,
                "needed_by": [t.target for t, need in zip(report.targets, m.needed_by, strict=True) if need],
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
        "gaps": [gap_to_dict(g) for g in t.gaps],
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
        "kconfig": None if t.kconfig is None else kconfig_to_dict(t.kconfig),
        "views": views_to_dict(target_views(t)),
        **({} if t.observation is None else {"observation": observation_to_dict(t)}),
    }


def observation_to_dict(t: TargetReport) -> dict[str, Any]:
    """``--observed``: what the traces showed for this target, with the counts the reports show."""
    o = t.observation
    assert o is not None
    gaps = [g for g in t.gaps if g.observed is not None]
    return {
        "traces": list(o.traces),
        "scope": o.scope,
        "rule": o.rule,
        "matched": list(o.matched),
        "syscalls": list(o.syscalls),
        "process": list(o.process),
        "startup": list(o.startup),
        "unreached": list(o.unreached),
        "unknown": list(o.unknown),
        "counts": {
            "gaps_observed": sum(1 for g in gaps if g.observed),
            "gaps_not_observed": sum(1 for g in gaps if not g.observed),
            "reached_observed": sum(1 for f in t.syscalls.syscalls if f.observed) if t.syscalls else 0,
            "reached_not_observed": sum(1 for f in t.syscalls.syscalls if f.observed is False) if t.syscalls else 0,
        },
    }


def _group(k: KconfigGroup) -> dict[str, Any]:
    return {
        "option": k.option,
        "syscalls": list(k.syscalls),
        "requires": k.requires,
        "drags_in": list(k.drags_in),
        "tier": None if k.tier is None else k.tier.value,
        "already_on": k.already_on,
        "note": k.note,
    }


def kconfig_to_dict(k: KconfigPlan) -> dict[str, Any]:
    return {
        "route": k.route,
        "options": [_group(g) for g in k.groups],
        "enable": list(k.enable),
        "keep_off": list(k.keep_off),
        "alternatives": list(k.alternatives),
        "verified": k.verified,
    }


def gap_to_dict(g: Gap) -> dict[str, Any]:
    return {
        "name": g.name,
        "status": g.status,
        "detail": g.detail,
        "library": g.library,
        "kconfig": g.kconfig,
        "action": g.action_label,
        "tier": g.tier,
        "reasons": list(g.reasons),
        **({} if g.observed is None else {"observed": g.observed}),
        "likelihood": g.likelihood,
        "path": g.path,
        "evidence": g.evidence,
    }


def views_to_dict(v: TargetViews) -> dict[str, Any]:
    return {
        "kconfig_groups": [_group(k) for k in v.kconfig_groups],
        "top_actions": [
            {"syscall": r.gap.name, "tier": r.gap.tier, "action": r.gap.action_label} for r in v.top_actions
        ],
        "counts": {
            "status": {k.value: n for k, n in v.status_counts},
            "tier": {k.value: n for k, n in v.tier_counts},
            "action": {k.value: n for k, n in v.action_counts},
            "enable_tier": {k.value: n for k, n in v.enable_tier_counts},
            "top_tier": {k.value: n for k, n in v.top_tier_counts},
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
        **({} if f.observed is None else {"observed": f.observed}),
        "breadth": None if f.breadth is None else asdict(f.breadth),
        "rare": f.rare,
    }


def _step_from_dict(x: dict[str, Any]) -> EvidenceStep:
    return EvidenceStep(EvidenceKind(x["kind"]), x["library"], x["symbol"], x["detail"])


def import_reach_to_dict(reach: tuple[ImportReach, ...]) -> dict[str, Any]:
    """Import keys, each with an index into ``sets`` (thousands of imports share a few syscall sets)."""
    sets: dict[tuple[str, ...], int] = {}
    index = [sets.setdefault(r.syscalls, len(sets)) for r in reach]
    # keys are names from the binary: a list of strings (escaped like any value), not dict keys
    return {"keys": [r.key for r in reach], "set_index": index, "sets": [list(k) for k in sets]}


def _import_reach_from_dict(doc: dict[str, Any] | None) -> tuple[ImportReach, ...]:
    if not doc:
        return ()
    sets = [tuple(x) for x in doc["sets"]]
    return tuple(ImportReach(k, sets[i]) for k, i in zip(doc["keys"], doc["set_index"], strict=True))


def invalid_to_dict(i: InvalidSyscallNumber) -> dict[str, Any]:
    return {
        "number": i.number,
        "library": i.library,
        "function": i.function,
        "site": i.site,
        "message": i.message,
        "chain": [{"kind": s.kind, "library": s.library, "symbol": s.symbol, "detail": s.detail} for s in i.chain],
    }


def syscalls_to_dict(s: SyscallReport) -> dict[str, Any]:
    return {
        "arch": s.arch,
        "libc_model": s.libc_model,
        "entries": list(s.entries),
        "reached": [finding_to_dict(f) for f in s.syscalls],
        "baseline": [finding_to_dict(f) for f in s.baseline],
        # additive (schema_version stays 1): present only when a recovered number is no syscall
        **({"invalid_numbers": [invalid_to_dict(i) for i in s.invalid]} if s.invalid else {}),
        **({"import_reach": import_reach_to_dict(s.import_reach)} if s.import_reach else {}),
        **({"runtime_loads": [asdict(x) for x in s.runtime_loads]} if s.runtime_loads else {}),
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
    """The report as JSON: ASCII, valid Unicode throughout, exact bytes of non-UTF-8 paths in
    ``<key>_bytes`` (:func:`~uk_depscan.report.escape.for_json`)."""
    was = gc.isenabled()
    gc.disable()  # a tree of ~100 k fresh containers and no cycles: the collector's passes are waste
    try:
        return document_text(report_to_dict(report)) + "\n"
    finally:
        if was:
            gc.enable()


def document_text(doc: Any) -> str:
    """``dumps(for_json(doc))``.  for_json walks every value (a ninth of torch/lib's 0.5 s of
    rendering) and changes only strings holding surrogates, which the ASCII text shows: the walk
    runs when they are there."""
    text = dumps(doc)
    return dumps(for_json(doc)) if json_needs_mending(text) else text


def dumps(doc: Any) -> str:
    """``json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=True)``, byte for byte.

    The standard library's C encoder does not indent (CPython 3.11), and its pure-Python one spends
    a generator frame per value: a fifth of a warm libtorch_cpu.so analysis for a 1 MB report.  This
    one appends to one list, with the C string escaper; anything it does not expect (a non-string
    key, an unknown type) goes back to ``json.dumps``, which also raises the errors."""
    out: list[str] = []
    try:
        _emit(doc, out, "\n")
    except _Unexpected:
        return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=True)
    return "".join(out)


class _Unexpected(Exception):
    pass


_escape = json.encoder.encode_basestring_ascii


def _emit(v: Any, out: list[str], nl: str) -> None:
    # the checks in json.encoder._make_iterencode's order: str, None, True, False, int, float, list, dict
    if isinstance(v, str):
        out.append(_escape(v))
    elif v is None:
        out.append("null")
    elif v is True:
        out.append("true")
    elif v is False:
        out.append("false")
    elif isinstance(v, int):
        out.append(int.__repr__(v))
    elif isinstance(v, float):
        out.append(_float(v))
    elif isinstance(v, (list, tuple)):
        if not v:
            out.append("[]")
            return
        inner = nl + "  "
        sep = "[" + inner
        for x in v:
            leaf = _LEAVES.get(type(x))  # most values are strings and ints: no call for them
            if leaf is not None:
                out.append(sep + leaf(x))
            else:
                out.append(sep)
                _emit(x, out, inner)
            sep = "," + inner
        out.append(nl + "]")
    elif isinstance(v, dict):
        if not v:
            out.append("{}")
            return
        if not all(isinstance(k, str) for k in v):  # json.dumps converts and sorts these its own way
            raise _Unexpected
        inner = nl + "  "
        sep = "{" + inner
        for k in sorted(v):
            x = v[k]
            leaf = _LEAVES.get(type(x))
            if leaf is not None:
                out.append(sep + _escape(k) + ": " + leaf(x))
            else:
                out.append(sep + _escape(k) + ": ")
                _emit(x, out, inner)
            sep = "," + inner
        out.append(nl + "}")
    else:
        raise _Unexpected


# Exact types only (a str or int subclass, such as an enum member, takes _emit's path, as in json.dumps).
_LEAVES: dict[type, Callable[[Any], str]] = {
    str: _escape,
    int: int.__repr__,
    bool: lambda b: "true" if b else "false",
    type(None): lambda _: "null",
}


def _float(v: float) -> str:
    if v != v:
        return "NaN"
    if v in (float("inf"), float("-inf")):
        return "Infinity" if v > 0 else "-Infinity"
    return float.__repr__(v)


# -- dict -> Report -------------------------------------------------------------------------------
def load_report(path: str) -> Report:
    """A saved ``--format json`` report; :class:`~uk_depscan.errors.InputError` naming the file
    when it is unreadable, not JSON, or not a schema_version 1 report."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise InputError(f"{path}: not a readable uk-depscan JSON report: {err}") from err
    if not isinstance(doc, dict) or doc.get("schema_version") != 1 or "targets" not in doc:
        raise InputError(f"{path}: not a uk-depscan JSON report (schema_version 1)")
    try:
        return report_from_dict(doc)
    except InputError as err:
        raise InputError(f"{path}: {err}") from err


def report_from_dict(doc: dict[str, Any]) -> Report:
    """The :class:`Report` a :func:`report_to_dict` document describes, with its views recomputed.

    Raises :class:`~uk_depscan.errors.InputError` when the document does not follow the schema or
    names a value outside a closed set (a tier, an action, a site kind)."""
    problem = first_problem(doc)
    if problem is not None:
        raise InputError(f"not a uk-depscan JSON report (schema_version 1): {problem}")
    try:
        return with_views(_report(_exact_paths(doc)))
    except ValueError as err:  # an enum given a value the schema leaves open
        raise InputError(f"not a uk-depscan JSON report (schema_version 1): {err}") from err


def _exact_paths(value: Any) -> Any:
    """The document with each ``<key>_bytes`` put back into ``<key>`` as the exact (surrogate-
    escaped) string it was written from, and dropped."""
    if isinstance(value, list):
        return [_exact_paths(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {k: _exact_paths(v) for k, v in value.items() if not k.endswith(BYTES_SUFFIX)}
    for key, encoded in value.items():
        if key.endswith(BYTES_SUFFIX) and isinstance(encoded, str):
            try:
                raw = base64.b64decode(encoded, validate=True)
            except binascii.Error as err:
                raise ValueError(f"{key}: not base64") from err
            out[key[: -len(BYTES_SUFFIX)]] = raw.decode("utf-8", "surrogateescape")
    return out


def _report(d: dict[str, Any]) -> Report:
    s = d["search"]
    targets = tuple(_target(t) for t in d["targets"])
    names = [json_text(t.target) for t in targets]  # as the matrix names them: exact bytes only in target_bytes
    uk = d["unikraft"]
    return Report(
        tool_version=d["tool"]["version"],
        command=d["command"],
        search=SearchSettings(
            s["root"], tuple(s["library_path"]), s["ld_so_conf"], s["use_ld_so_cache"], tuple(s.get("python_path", ()))
        ),
        targets=targets,
        skipped=tuple(Skipped(x["path"], x["reason"]) for x in d["skipped"]),
        unikraft=None if uk is None else TableRef(uk["release"], uk["commit"], uk["generator"]),
        plan=tuple(PlanStep(p["step"], tuple(p["actions"]), tuple(p["completes"])) for p in d["plan"]),
        matrix=tuple(_matrix_row(m, names) for m in d["matrix"]),
        schema_version=d["schema_version"],
    )


def _matrix_row(m: dict[str, Any], targets: list[str]) -> MatrixRow:
    action, kconfig = Action.from_label(m["action"]) if m["action"] else (None, None)
    return MatrixRow(
        name=m["syscall"],
        status=None if m["status"] == "unknown" else SupportStatus(m["status"]),
        tier=None if m["tier"] == "-" else Tier(m["tier"]),
        action=action,
        kconfig=kconfig,
        needed_by=tuple(t in m["needed_by"] for t in targets),
    )


def _target(t: dict[str, Any]) -> TargetReport:
    below, native = t["below_syscall"], t["native_route"]
    return TargetReport(
        target=t["target"],
        elf=_elf(t["elf"]),
        tree=_tree(t["dependencies"]),
        imports=tuple(
            ImportRecord(i["name"], i["version"], i["version_file"], i["binding"], i["type"], i["provider"])
            for i in t["imports"]
        ),
        version_problems=tuple(
            VersionProblem(None, p["file"], p["version"], p["reason"]) for p in t["version_problems"]
        ),
        warnings=tuple(t["warnings"]),
        syscalls=None if t["syscalls"] is None else _syscalls(t["syscalls"]),
        gaps=tuple(_gap(g) for g in t["gaps"]),
        native=None
        if native is None
        else NativeRoute(
            native["libmusl_release"],
            native["musl_version"],
            tuple(
                SymbolGap(g["name"], g["version"], NativeStatus(g["status"]), g["detail"]) for g in native["symbols"]
            ),
        ),
        below=None
        if below is None
        else BelowSyscall(
            tuple(below["pseudo_files"]),
            tuple(DlopenTarget(x["name"], x["source"]) for x in below["dlopen_targets"]),
            below["imports_dlopen"],
        ),
        route=tuple(RouteFinding(Severity(r["severity"]), r["object"], r["problem"]) for r in t["binary_compat"]),
        sha256=t["sha256"],
        observation=_observation(t.get("observation")),
        kconfig=_kconfig(t.get("kconfig")),  # absent from reports written before the option plan
    )


def _kconfig(k: dict[str, Any] | None) -> KconfigPlan | None:
    if k is None:
        return None
    groups = tuple(
        KconfigGroup(
            g["option"],
            tuple(g["syscalls"]),
            g["requires"],
            tuple(g["drags_in"]),
            Tier(g["tier"]) if g["tier"] else None,
            g["already_on"],
            g["note"],
        )
        for g in k["options"]
    )
    return KconfigPlan(
        k["route"], groups, tuple(k["enable"]), tuple(k["keep_off"]), tuple(k["alternatives"]), k["verified"]
    )


def _observation(o: dict[str, Any] | None) -> Observation | None:
    if o is None:
        return None
    return Observation(
        tuple(o["traces"]),
        ObservationScope(o["scope"]),
        tuple(o["matched"]),
        o["rule"],
        tuple(o["syscalls"]),
        tuple(o["process"]),
        tuple(o["startup"]),
        tuple(o["unreached"]),
        tuple(o["unknown"]),
    )


def _elf(e: dict[str, Any]) -> ElfSummary:
    return ElfSummary(
        e["elf_class"],
        e["machine"],
        e["machine_supported"],
        e["elf_type"],
        e["pie"],
        e["interp"],
        e["soname"],
        tuple(e["needed"]),
        e["rpath"],
        e["runpath"],
        e["build_id"],
        e["textrel"],
        e["exec_stack"],
        e["static_tls"],
        e["tls_memsz"],
        tuple(e["ifuncs"]),
        e["init_array"],
        e["fini_array"],
        tuple(e["dlopen_notes"]),
        e["imports"],
        e["exports"],
    )


def _gap(g: dict[str, Any]) -> Gap:
    action, _ = Action.from_label(g["action"])
    return Gap(
        g["name"],
        SupportStatus(g["status"]),
        g["detail"],
        g["library"],
        g["kconfig"],
        action,
        Tier(g["tier"]),
        tuple(g["reasons"]),
        float(g.get("likelihood", 0.0)),
        ReachPath(g.get("path", ReachPath.NORMAL.value)),
        Evidence(g.get("evidence", Evidence.IMPORT.value)),
        g.get("observed"),
    )


def _tree(d: dict[str, Any]) -> LoadTree:
    def attempts(items: list[dict[str, Any]]) -> tuple[Attempt, ...]:
        return tuple(Attempt(a["path"], a["outcome"]) for a in items)

    objects = tuple(
        LoadedObject(
            o["index"],
            o["path"],
            o["realpath"],
            o["needed_name"],
            o["loaded_by"],
            o["depth"],
            FoundVia(o["found_via"]),
            o["via_detail"],
            o["soname"],
            tuple(o["needed"]),
            o["rpath"],
            o["runpath"],
            o["machine"],
            o["class"],
            o["build_id"],
            attempts(o["rejected_candidates"]),
            o["error"],
        )
        for o in d["load_order"]
    )
    return LoadTree(
        objects,
        tuple(NeededEdge(e["from"], e["needed"], e["to"]) for e in d["edges"]),
        tuple(
            MissingLibrary(m["needed_name"], m["needed_by"], m["reason"], attempts(m["tried"])) for m in d["missing"]
        ),
        tuple(d["notes"]),
    )


def _syscalls(s: dict[str, Any]) -> SyscallReport:
    def finding(f: dict[str, Any]) -> SyscallFinding:
        chain = tuple(EvidenceStep(EvidenceKind(c["kind"]), c["library"], c["symbol"], c["detail"]) for c in f["chain"])
        kinds = tuple(EvidenceKind(k) for k in f["kinds"])
        b = f.get("breadth")  # absent from reports written before the priority model (additive field)
        breadth = None if b is None else Breadth(b["own_sites"], b["imports"], b["narrowest"], b["narrowest_size"])
        return SyscallFinding(
            f["number"],
            f["name"],
            f["failure_only"],
            kinds,
            tuple(f["libraries"]),
            chain,
            breadth,
            bool(f.get("rare", False)),
            f.get("observed"),
        )

    sites = tuple(
        SiteRecord(
            x["address"],
            SiteKind(x["kind"]),
            tuple(x["numbers"]),
            tuple(x["names"]),
            Confidence(x["confidence"]),
            x["reason"],
            x["function"],
            x["via"],
        )
        for x in s["sites"]
    )
    return SyscallReport(
        arch=Arch(s["arch"]),
        libc_model=LibcModel(s["libc_model"]),
        entries=tuple(s["entries"]),
        syscalls=tuple(finding(f) for f in s["reached"]),
        baseline=tuple(finding(f) for f in s["baseline"]),
        sites=sites,
        sources=tuple(SummarySourceRecord(x["library"], x["source"], x["build_id"]) for x in s["sources"]),
        unknown_sites=s["unknown_sites"],
        requests=tuple(
            RequestRecord(r["call"], r["arg_index"], r["value"], r["name"], r["sites"]) for r in s["requests"]
        ),
        invalid=tuple(
            InvalidSyscallNumber(
                i["number"],
                i["library"],
                i["function"],
                i["site"],
                tuple(
                    EvidenceStep(EvidenceKind(x["kind"]), x["library"], x["symbol"], x["detail"]) for x in i["chain"]
                ),
            )
            for i in s.get("invalid_numbers", ())
        ),
        import_reach=_import_reach_from_dict(s.get("import_reach")),
        runtime_loads=tuple(
            RuntimeLoad(x["name"], x["path"], LoadVia(x["via"]), tuple(x["added"]), x["loader"], x["error"])
            for x in s.get("runtime_loads", ())
        ),
    )


def explain_to_json(answers: tuple[ExplainAnswer, ...], query: str) -> str:
    """``explain --format json``: per target, what the query is, what it reaches, and the chains."""
    doc = {
        "query": query,
        "answers": [
            {
                "target": a.target,
                "analysed": a.analysed,
                "kind": a.kind,
                "symbol": a.symbol,
                "provider": a.provider,
                "reaches": list(a.reaches),
                "hits": [
                    {
                        "scope": h.scope,
                        "finding": finding_to_dict(h.finding),
                        "gap": None
                        if h.gap is None
                        else {"status": h.gap.status, "tier": h.gap.tier, "action": h.gap.action},
                    }
                    for h in a.hits
                ],
            }
            for a in answers
        ],
    }
    return json.dumps(for_json(doc), indent=2, sort_keys=True, ensure_ascii=True) + "\n"
