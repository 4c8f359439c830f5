"""The compact results a corpus worker sends back to the client (picklable frozen dataclasses).

A worker analyses one input (a wheel, a directory or a requirement spec it downloads) and returns
only what the database keeps: per target, its object identity and the syscalls it reaches with
their path class and evidence breadth (what :mod:`uk_depscan.unikraft.gaps` ranks them by); per
object, its per-export summary.  Evidence chains, load trees and imports stay on the worker.
"""

from __future__ import annotations

from dataclasses import dataclass

from uk_depscan.model import StrEnum

# one call-graph walk per export (uk_depscan.corpus.work.export_summaries): ~15 s at this size
EXPORT_SUMMARY_LIMIT = 5000


class InputKind(StrEnum):
    WHEEL = "wheel"
    DIRECTORY = "directory"
    SPEC = "spec"


class Platform(StrEnum):
    """The manylinux platforms a requirement spec is downloaded for (PEP 600 tags)."""

    X86_64 = "manylinux_2_28_x86_64"
    AARCH64 = "manylinux_2_28_aarch64"

    @property
    def arch(self) -> str:
        return "x86_64" if self is Platform.X86_64 else "aarch64"


@dataclass(frozen=True)
class WorkItem:
    """What a worker is given: a path or a spec, never an open file or a database handle."""

    kind: InputKind
    value: str  # the wheel or directory path, or the requirement spec
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    platform: Platform | None = None  # specs only
    python_version: str | None = None  # specs only
    find_links: tuple[str, ...] = ()  # specs only: pip --find-links
    no_index: bool = False  # specs only: pip --no-index
    releases: tuple[str, ...] = ()  # Unikraft releases to compute the gaps for
    export_limit: int = EXPORT_SUMMARY_LIMIT  # objects with more exports: <entry>/<init>/<all> only


@dataclass(frozen=True)
class ReachFact:
    """One syscall a target reaches: the facts :func:`uk_depscan.unikraft.gaps.assess` ranks by."""

    name: str
    path: str  # ReachPath value
    own_sites: int | None = None  # Breadth fields; None: start-up baseline (no breadth)
    imports: int | None = None
    narrowest: str | None = None
    narrowest_size: int | None = None


@dataclass(frozen=True)
class GapRow:
    """One gap of one target against one release (a :class:`uk_depscan.model.Gap`, flattened)."""

    syscall: str
    status: str
    action: str
    tier: str
    kconfig: str | None
    path: str
    evidence: str
    likelihood: float


@dataclass(frozen=True)
class ExportSummary:
    """What one export of an object reaches by its own code (the engine's per-export summary)."""

    export: str
    syscalls: tuple[int, ...]
    failure_syscalls: tuple[int, ...]


@dataclass(frozen=True)
class ObjectFacts:
    sha256: str
    size: int
    arch: str
    soname: str | None
    export_count: int  # exported functions
    exports_summarised: bool  # False: more than the limit, only <entry>, <init>, <all> summarised
    exports: tuple[ExportSummary, ...]


@dataclass(frozen=True)
class TargetFacts:
    """One analysed ELF of an input, in its input's context (its wheel's siblings resolved)."""

    member: str  # path inside the wheel or directory (POSIX)
    obj: ObjectFacts
    libc_model: str
    unknown_sites: int
    reach: tuple[ReachFact, ...]
    gaps: tuple[tuple[str, str | None, tuple[GapRow, ...]], ...]  # (release, table commit, gaps)


@dataclass(frozen=True)
class InputResult:
    """Everything a worker found for one input."""

    item: WorkItem
    content: str  # "sha256:…" of the wheel; of the (member, object) list for a directory
    filename: str  # the wheel's file name, or the directory's base name
    package: str
    version: str
    arch: str
    targets: tuple[TargetFacts, ...]
    skipped: tuple[tuple[str, str], ...]  # (member, reason)
    seconds: float


@dataclass(frozen=True)
class InputFailure:
    """An input the worker could not use (one line, as the CLI reports bad input)."""

    item: WorkItem
    problem: str
