"""What the artifacts are made from: the report's gap rows, read through its JSON contract.

A report (fresh from :func:`uk_depscan.pipeline.analyze`, or saved with ``--format json``) is read
as its versioned JSON mapping (``report/schema/report-v1.schema.json``), so a saved report and a fresh
analysis take the same path, and the model's internal types can change freely.  Two things come out:

* the **syscall work**: every gap whose action is ``stub (ENOSYS)``, ``fake (return 0)``,
  ``implement`` or ``investigate`` (no Loupe data to choose between them: scaffolded as a logged
  ``-ENOSYS`` so a run shows whether it is reached at all), with its evidence chains (for the scaffold);
* the **option requests**: every Kconfig option a gap row names (``enable CONFIG_X``, and the
  option of a library whose existing stub or partial implementation the plan relies on), plus the
  make conditions the table records around the registration (``set_tid_address`` is registered only
  under ``ifeq ($(CONFIG_LIBPOSIX_PROCESS_CLONE),y)``), each with the syscalls it is for.

Several targets are merged: the union of their work, and for one syscall the strongest action
(implement > fake > stub), since a fake that satisfies one target breaks the one that needs the call.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from uk_depscan.errors import UsageError
from uk_depscan.model import Action, Route
from uk_depscan.names import demangle
from uk_depscan.unikraft.tables import SyscallSupport, UnikraftTable

# The actions that mean work in a syscall library (the report's labels: Action.label/from_label).
SCAFFOLDED = (Action.STUB, Action.INVESTIGATE, Action.FAKE, Action.IMPLEMENT)
STRENGTH = {Action.STUB: 0, Action.INVESTIGATE: 1, Action.FAKE: 2, Action.IMPLEMENT: 3}
UNVERIFIED = "unverified"  # the report's status of a row only an external provider of another release has
_MAKE_COND = re.compile(r"^ifn?eq \(\$\((CONFIG_[A-Za-z0-9_]+)\),y\)$")


@dataclass(frozen=True)
class Evidence:
    """One target's shortest chain to the syscall (raw text from the binary: sanitise on output)."""

    target: str
    chain: tuple[str, ...]
    failure_only: bool


@dataclass(frozen=True)
class SyscallWork:
    name: str
    action: Action
    tier: str
    status: str
    detail: str
    reasons: tuple[str, ...]
    evidence: tuple[Evidence, ...]


@dataclass(frozen=True)
class OptionUse:
    syscall: str
    role: str  # enables | keeps its stub | partial implementation | registration condition


@dataclass(frozen=True)
class OptionRequest:
    option: str
    uses: tuple[OptionUse, ...]
    # why the build may not get what the option promises: the table's note on an unverified provider
    # ("app-elfloader 0.16.3, unverified for this release; ...") with its registration and file
    unverified: tuple[str, ...] = ()

    @property
    def syscalls(self) -> tuple[str, ...]:
        return tuple(sorted({u.syscall for u in self.uses}))


@dataclass(frozen=True)
class TargetRef:
    name: str
    sha256: str | None


@dataclass(frozen=True)
class ArtifactPlan:
    targets: tuple[TargetRef, ...]
    arch: str  # x86_64 | aarch64 (ELF machine names)
    route: Route
    release: str
    commit: str | None
    tool_version: str
    work: tuple[SyscallWork, ...]
    options: tuple[OptionRequest, ...]
    notes: tuple[str, ...]

    @property
    def unikraft_arch(self) -> str:
        return {"aarch64": "arm64"}.get(self.arch, self.arch)


def build_plan(doc: Mapping[str, Any], route: Route, table: UnikraftTable) -> ArtifactPlan:
    """The plan of a report document (``report_to_dict`` output or a saved JSON report)."""
    if doc.get("schema_version") != 1 or not isinstance(doc.get("targets"), list):
        raise UsageError("not a uk-depscan report (schema_version 1)")
    ref = doc.get("unikraft") or {}
    if ref.get("release") not in (None, table.release) or ref.get("commit") not in (None, table.commit):
        raise UsageError(
            f"the report was made against Unikraft {ref.get('release')} ({ref.get('commit')}), "
            f"not {table.release} ({table.commit}): pass the same --unikraft/--unikraft-table"
        )
    analysed = [t for t in doc["targets"] if t.get("syscalls")]
    notes = [f"{t['target']}: no syscall analysis, left out" for t in doc["targets"] if not t.get("syscalls")]
    if not analysed:
        raise UsageError("no target with a syscall analysis: nothing to generate")
    arches = sorted({t["syscalls"]["arch"] for t in analysed})
    if len(arches) != 1:
        raise UsageError(f"targets of several architectures ({', '.join(arches)}): generate one per architecture")
    if route is Route.BOTH:
        raise UsageError("artifacts are made for one route: binary-compat or native")
    if route is Route.NATIVE and any(t.get("native_route") is None for t in analysed):
        raise UsageError("--route native: the report was not made with --route native (or both)")
    return ArtifactPlan(
        tuple(TargetRef(t["target"], t.get("sha256")) for t in analysed),
        arches[0],
        route,
        table.release,
        table.commit,
        str((doc.get("tool") or {}).get("version", "?")),
        _work(analysed),
        _options(analysed, table, route),
        tuple(notes),
    )


def _chains(t: Mapping[str, Any]) -> dict[str, Evidence]:
    out: dict[str, Evidence] = {}
    syscalls = t["syscalls"]
    for f in list(syscalls.get("baseline", [])) + list(syscalls.get("reached", [])):  # the target's own wins
        steps = tuple(_step(s) for s in f["chain"])
        out[f["name"]] = Evidence(t["target"], steps, bool(f.get("failure_only")))
    return out


def _step(s: Mapping[str, Any]) -> str:
    """``import libtorch_cpu.so:kill@GLIBC_2.2.5``, ``direct libc.so.6:kill @0x3c265``."""
    detail = f" @{s['detail']}" if s.get("detail") else ""
    return f"{s['kind']} {s['library']}:{demangle(str(s['symbol']))}{detail}"


def _work(targets: Iterable[Mapping[str, Any]]) -> tuple[SyscallWork, ...]:
    merged: dict[str, SyscallWork] = {}
    for t in targets:
        chains = _chains(t)
        for g in t.get("gaps", []):
            action = _action(g["action"])
            if action not in SCAFFOLDED:
                continue
            ev = (chains[g["name"]],) if g["name"] in chains else ()
            old = merged.get(g["name"])
            if old is None or STRENGTH[action] > STRENGTH[old.action]:
                merged[g["name"]] = SyscallWork(
                    g["name"],
                    action,
                    g["tier"],
                    g["status"],
                    g["detail"],
                    tuple(g["reasons"]),
                    (old.evidence if old else ()) + ev,
                )
            else:
                tier = min(old.tier, g["tier"])
                merged[g["name"]] = SyscallWork(
                    old.name, old.action, tier, old.status, old.detail, old.reasons, old.evidence + ev
                )
    return tuple(merged[n] for n in sorted(merged))


def _action(label: str) -> Action | None:
    try:
        return Action.from_label(label)[0]
    except ValueError:
        return None  # an action this version does not know: not scaffolded


def _role(gap: Mapping[str, Any]) -> str | None:
    status, action = gap["status"], gap["action"]
    if action == "none":
        return None
    if action.startswith("enable "):
        return "enables, unverified for this release" if status == UNVERIFIED else "enables"
    if status == "stub":
        return "keeps its existing stub" if action == "keep stub" else f"existing stub (plan: {action})"
    if status == "partial":
        return "partial implementation" + ("" if action == "keep stub" else f" (plan: {action})")
    return None


def _options(targets: Iterable[Mapping[str, Any]], table: UnikraftTable, route: Route) -> tuple[OptionRequest, ...]:
    uses: dict[str, set[OptionUse]] = {}
    unverified: dict[str, set[str]] = {}
    for t in targets:
        for g in t.get("gaps", []):
            role = _role(g)
            if role is None or not g.get("kconfig"):
                continue
            uses.setdefault(g["kconfig"], set()).add(OptionUse(g["name"], role))
            if g["status"] == UNVERIFIED:
                unverified.setdefault(g["kconfig"], set()).add(unverified_note(table.get(g["name"]), g, route))
            for cond in registration_conditions(table.get(g["name"]), g["kconfig"]):
                uses.setdefault(cond, set()).add(OptionUse(g["name"], "registration condition (Makefile.uk ifeq)"))
    return tuple(
        OptionRequest(
            opt, tuple(sorted(uses[opt], key=lambda u: (u.syscall, u.role))), tuple(sorted(unverified.get(opt, ())))
        )
        for opt in sorted(uses)
    )


def unverified_note(row: SyscallSupport | None, gap: Mapping[str, Any], route: Route) -> str:
    """``arch_prctl: app-elfloader 0.16.3, unverified for this release; … (arch_prctl-3u at
    app-elfloader:Makefile.uk:13)``: the table's own note on the route, with the registration it is about."""
    rs = row.routes.get(route.value) if row is not None else None
    note = rs.note if rs is not None and rs.note else gap["detail"]
    regs = [
        f"{p.registration} at {p.provided_at}" if p.provided_at else p.registration
        for p in (row.providers if row is not None else ())
        if p.kconfig == gap["kconfig"] and not p.verified
    ]
    return f"{gap['name']}: {note}" + (f" ({'; '.join(regs)})" if regs else "")


def registration_conditions(row: SyscallSupport | None, option: str) -> tuple[str, ...]:
    """Options a ``make`` conditional around the registration needs (``ifeq ($(CONFIG_X),y)``)."""
    if row is None:
        return ()
    conds = []
    for p in row.providers:
        if p.kconfig != option:
            continue
        for c in p.make_conditions:
            m = _MAKE_COND.match(c.strip())
            if m and c.strip().startswith("ifeq"):
                conds.append(m.group(1))
    return tuple(sorted(set(conds)))
