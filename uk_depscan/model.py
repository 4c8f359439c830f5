"""The result objects: one :class:`Report` per run, rendered by every output format."""

from __future__ import annotations

from dataclasses import dataclass

from uk_depscan.elf.literals import BelowSyscall
from uk_depscan.inputs import Skipped
from uk_depscan.loader.binding import VersionProblem
from uk_depscan.loader.resolve import LoadTree
from uk_depscan.syscalls.requests import RequestRecord
from uk_depscan.unikraft.gaps import Gap, PlanStep, RouteFinding, SymbolGap

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ElfSummary:
    """Loader-relevant facts about one ELF object."""

    elf_class: int
    machine: str
    machine_supported: bool
    elf_type: str
    pie: bool
    interp: str | None
    soname: str | None
    needed: tuple[str, ...]
    rpath: str | None
    runpath: str | None
    build_id: str | None
    textrel: bool
    exec_stack: bool
    static_tls: bool
    tls_memsz: int | None
    ifuncs: tuple[str, ...]
    init_array: int
    fini_array: int
    dlopen_notes: tuple[str, ...]
    imports: int
    exports: int


@dataclass(frozen=True)
class ImportRecord:
    """One import of the target and the object the loader binds it to."""

    name: str
    version: str | None
    version_file: str | None
    binding: str
    sym_type: str
    provider: str | None

    @property
    def weak(self) -> bool:
        return self.binding == "WEAK"


@dataclass(frozen=True)
class EvidenceStep:
    """One edge of a chain: entry/import (name@version) or a syscall site (direct, wrapper, summary)."""

    kind: str
    library: str
    symbol: str
    detail: str


@dataclass(frozen=True)
class SyscallFinding:
    number: int
    name: str
    failure_only: bool
    kinds: tuple[str, ...]
    libraries: tuple[str, ...]
    chain: tuple[EvidenceStep, ...]


@dataclass(frozen=True)
class SiteRecord:
    """A syscall site in the target itself."""

    address: int
    kind: str
    numbers: tuple[int, ...]
    names: tuple[str, ...]
    confidence: str
    reason: str
    function: str | None
    via: str | None


@dataclass(frozen=True)
class SummarySourceRecord:
    library: str
    source: str
    build_id: str | None


@dataclass(frozen=True)
class SyscallReport:
    """Syscalls the target can reach, the start-up baseline, and where the answers came from."""

    arch: str
    libc_model: str
    entries: tuple[str, ...]
    syscalls: tuple[SyscallFinding, ...]
    baseline: tuple[SyscallFinding, ...]
    sites: tuple[SiteRecord, ...]
    sources: tuple[SummarySourceRecord, ...]
    unknown_sites: int
    requests: tuple[RequestRecord, ...] = ()


@dataclass(frozen=True)
class NativeRoute:
    """Rebuilding against Unikraft's lib-musl: which of the target's libc imports exist there."""

    libmusl_release: str
    musl_version: str
    symbols: tuple[SymbolGap, ...]

    def count(self, status: str) -> int:
        return sum(1 for s in self.symbols if s.status == status)


@dataclass(frozen=True)
class TargetReport:
    target: str
    elf: ElfSummary
    tree: LoadTree
    imports: tuple[ImportRecord, ...]
    version_problems: tuple[VersionProblem, ...]
    warnings: tuple[str, ...]
    syscalls: SyscallReport | None = None
    gaps: tuple[Gap, ...] = ()
    native: NativeRoute | None = None
    below: BelowSyscall | None = None
    route: tuple[RouteFinding, ...] = ()
    sha256: str | None = None

    @property
    def actionable_gaps(self) -> tuple[Gap, ...]:
        return tuple(g for g in self.gaps if g.tier != "P3")

    @property
    def unresolved(self) -> tuple[ImportRecord, ...]:
        return tuple(i for i in self.imports if i.provider is None and not i.weak)

    @property
    def unresolved_weak(self) -> tuple[ImportRecord, ...]:
        return tuple(i for i in self.imports if i.provider is None and i.weak)


@dataclass(frozen=True)
class SearchSettings:
    root: str
    library_path: tuple[str, ...]
    ld_so_conf: str | None
    use_cache: bool


@dataclass(frozen=True)
class MatrixRow:
    """One syscall across several targets: its Unikraft verdict and which targets need it."""

    name: str
    status: str
    tier: str
    action: str
    needed_by: tuple[bool, ...]


@dataclass(frozen=True)
class TableRef:
    """Which Unikraft support table the gaps were computed against."""

    release: str
    commit: str
    generator: str


@dataclass(frozen=True)
class Report:
    """Everything one run found; renderers compute nothing of their own."""

    tool_version: str
    command: str
    search: SearchSettings
    targets: tuple[TargetReport, ...]
    skipped: tuple[Skipped, ...]
    unikraft: TableRef | None = None
    plan: tuple[PlanStep, ...] = ()
    matrix: tuple[MatrixRow, ...] = ()
    schema_version: int = SCHEMA_VERSION

    @property
    def has_gaps(self) -> bool:
        return any(
            t.tree.missing
            or t.unresolved
            or t.version_problems
            or t.actionable_gaps
            or any(r.severity == "blocker" for r in t.route)
            for t in self.targets
        )
