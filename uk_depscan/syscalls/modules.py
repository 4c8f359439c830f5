"""What Python extension modules imported at run time add to a target's syscall answer.

The target's answer covers its DT_NEEDED closure.  A module it imports by name
(:mod:`uk_depscan.loader.pyimport`) is loaded by the interpreter with its own closure, so each is
analysed as a whole object (every export and constructor a root: the importer may call any function
of the module's C API table) and what it reaches, and the target does not already, is added with a
chain that starts at the import: ``module:numpy._core._multiarray_umath [libtorch_python.so] ->
entry:... [_multiarray_umath...so] -> ... -> direct:mbind [libscipy_openblas64_...so] @ 0x...``.
Such syscalls have no import or site of the target behind them: their breadth is empty, so their
evidence is ``indirect`` (:mod:`uk_depscan.unikraft.priority`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from uk_depscan.model import (
    Breadth,
    EvidenceKind,
    EvidenceStep,
    ImportedModule,
    SummarySourceRecord,
    SyscallFinding,
    SyscallReport,
)


@dataclass(frozen=True)
class ModuleAnswer:
    """One imported module as analysed: its label in chains (soname or file name), the importer's
    label, and its whole-object answer (None with ``error`` when it could not be analysed)."""

    name: str
    path: str
    label: str
    importer: str
    report: SyscallReport | None
    error: str | None = None


def with_modules(report: SyscallReport, target: str, answers: Sequence[ModuleAnswer]) -> SyscallReport:
    """``report`` (of the object labelled ``target``) with what ``answers`` add, in their order
    (breadth first from the target: a module's importer comes before it)."""
    if not answers:
        return report
    findings = {f.number: f for f in report.syscalls}
    prefix: dict[str, tuple[EvidenceStep, ...]] = {target: ()}
    records = []
    sources = list(report.sources)
    named = {s.library for s in sources}
    for a in answers:
        before = prefix.get(a.importer, ())
        steps = (*before, EvidenceStep(EvidenceKind.MODULE, a.importer, a.name, a.path))
        prefix.setdefault(a.label, steps)
        added = []
        for f in a.report.syscalls if a.report is not None else ():
            old = findings.get(f.number)
            # a normal path through the module beats a failure-only one of the target
            if old is not None and (f.failure_only or not old.failure_only):
                continue
            libraries = tuple(dict.fromkeys((target, *(s.library for s in steps), *f.libraries)))
            findings[f.number] = SyscallFinding(
                f.number,
                f.name,
                f.failure_only,
                f.kinds,
                libraries,
                (*steps, *f.chain),
                Breadth(0, 0, None, 0),
            )
            added.append(f.name)
        for s in a.report.sources if a.report is not None else ():
            if s.library not in named:
                named.add(s.library)
                sources.append(SummarySourceRecord(s.library, f"{s.source} (imported module {a.name})", s.build_id))
        records.append(ImportedModule(a.name, a.path, tuple(added), a.importer, a.error))
    return dataclasses.replace(
        report,
        syscalls=tuple(findings[n] for n in sorted(findings)),
        sources=tuple(sources),
        modules=tuple(records),
    )
