"""What objects loaded at run time add to a target's syscall answer.

The target's answer covers its DT_NEEDED closure.  An object it loads later by a name its data holds
— a Python extension module it imports (:mod:`uk_depscan.loader.pyimport`), a library it dlopens
(:func:`uk_depscan.loader.resolve.resolve_with_dlopen`) — comes with its own closure, so each is
analysed as a whole object (every export and constructor a root: the loader may call any function
it looks up, and a module's C-API table makes any of its functions callable) and what it reaches,
and the target does not already, is added with a chain that starts at the load:
``module:numpy._core._multiarray_umath [libtorch_python.so] -> entry:... [_multiarray_umath...so]
-> ... -> wrapper:alloc_mmap [libscipy_openblas64_...so] @ 0x...``.  Such syscalls have no import or
site of the target behind them: their breadth is empty, so their evidence is ``indirect``
(:mod:`uk_depscan.unikraft.priority`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from uk_depscan.model import (
    Breadth,
    EvidenceStep,
    LoadVia,
    RuntimeLoad,
    SummarySourceRecord,
    SyscallFinding,
    SyscallReport,
)


@dataclass(frozen=True)
class LoadedAnswer:
    """One object loaded at run time, as analysed: its label in chains (soname or file name), the
    loader's label, and its whole-object answer (None with ``error`` when it could not be analysed)."""

    name: str
    path: str
    via: LoadVia
    label: str
    loader: str
    report: SyscallReport | None
    error: str | None = None


def with_loaded(report: SyscallReport, target: str, answers: Sequence[LoadedAnswer]) -> SyscallReport:
    """``report`` (of the object labelled ``target``) with what ``answers`` add, in their order
    (breadth first from the target: an object's loader comes before it)."""
    if not answers:
        return report
    findings = {f.number: f for f in report.syscalls}
    prefix: dict[str, tuple[EvidenceStep, ...]] = {target: ()}
    records = []
    sources = list(report.sources)
    named = {s.library for s in sources}
    for a in answers:
        steps = (*prefix.get(a.loader, ()), EvidenceStep(a.via.step, a.loader, a.name, a.path))
        prefix.setdefault(a.label, steps)
        added = []
        for f in a.report.syscalls if a.report is not None else ():
            old = findings.get(f.number)
            # a normal path through the loaded object beats a failure-only one of the target
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
                sources.append(SummarySourceRecord(s.library, f"{s.source} (loaded at run time: {a.name})", s.build_id))
        records.append(RuntimeLoad(a.name, a.path, a.via, tuple(added), a.loader, a.error))
    return dataclasses.replace(
        report,
        syscalls=tuple(findings[n] for n in sorted(findings)),
        sources=tuple(sources),
        runtime_loads=tuple(records),
    )
