"""The result model: one :class:`Report` per run, rendered by every output format.

Everything a stage hands to the next one or to a renderer is here, as frozen dataclasses, and every
closed set of values is an ``enum``.  This module imports nothing from the analysis stages (elf,
loader, syscalls, unikraft, tablegen, pipeline, inputs): they import their result types from here,
so a renderer or a consumer of the library needs only this module.

The enums are ``str``-valued (:class:`StrEnum`): a member compares equal to its value, and
``str()``, f-strings, jinja2 and ``json.dumps`` all produce the value, so the JSON form of a report
is the same as when these fields were plain strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

SCHEMA_VERSION = 1


class StrEnum(str, Enum):
    """``enum.StrEnum`` for Python 3.10: ``str(member)`` is its value (3.11 changed ``format()`` of
    mixed-in enums to the member name; overriding ``__str__`` pins the value on every version)."""

    def __str__(self) -> str:
        return str(self.value)


# -- closed sets ----------------------------------------------------------------------------------
class Arch(StrEnum):
    """The architectures whose syscalls are analysed, spelt as the Linux uapi and ELF tools do
    (Unikraft and Debian say ``arm64``; that spelling stays inside their table generators)."""

    X86_64 = "x86_64"
    AARCH64 = "aarch64"


class LibcModel(StrEnum):
    """Where libc's syscalls come from: the libraries on disk (auto), or the shipped tables."""

    AUTO = "auto"
    GLIBC = "glibc"
    MUSL = "musl"


class Route(StrEnum):
    """How the application would run on Unikraft: the Linux ELF under app-elfloader, rebuilt
    against lib-musl, or both side by side."""

    BOTH = "both"
    BINARY_COMPAT = "binary-compat"
    NATIVE = "native"


class FailOn(StrEnum):
    """Which findings make the exit code 1 (CI gating)."""

    ABSENT = "absent"
    STUB = "stub"
    ANY = "any"
    NEVER = "never"


class OutputFormat(StrEnum):
    TEXT = "text"
    JSON = "json"
    MD = "md"
    HTML = "html"
    DOT = "dot"


class GraphFormat(StrEnum):
    GRAPHML = "graphml"
    JSON = "json"
    DOT = "dot"


class FoundVia(StrEnum):
    """Which step of ld.so's search found a library (glibc elf/dl-load.c ``_dl_map_object``)."""

    ROOT = "root"
    DIRECT = "direct path"
    RPATH = "rpath"
    LD_LIBRARY_PATH = "LD_LIBRARY_PATH"
    RUNPATH = "runpath"
    LD_SO_CACHE = "ld.so.cache"
    LD_SO_CONF = "ld.so.conf"
    DEFAULT = "default path"
    INTERPRETER = "interpreter"


class LoaderOutcome(StrEnum):
    """What ld.so's ``open_verify`` makes of one candidate path: use it, skip it and keep
    searching (wrong class or machine, unreadable), stop with an error, or nothing there."""

    OK = "ok"
    SKIP = "skip"
    FATAL = "fatal"
    ABSENT = "absent"


class EvidenceKind(StrEnum):
    """One step of an evidence chain: where it starts (an entry of the target, or the start-up
    baseline), an import followed through its binding, or the syscall site that ends it."""

    ENTRY = "entry"
    IMPORT = "import"
    CALL = "call"  # a function called on the way, inside the object the previous step names
    REFERENCE = "ref"  # a piece of data the previous function loads, holding the next function's address
    DIRECT = "direct"
    WRAPPER = "wrapper"
    LOCAL_WRAPPER = "local_wrapper"
    SUMMARY = "summary"
    BASELINE = "baseline"
    MODULE = "module"  # a Python extension module the previous object imports at run time, by name
    DLOPEN = "dlopen"  # an object the previous object dlopens at run time, by a name in its data

    @property
    def names_library(self) -> bool:
        """Steps that happen inside a library worth naming in a one-line chain (an import's library
        is the importer, which the previous step already names)."""
        return self in _LIBRARY_STEPS


_LIBRARY_STEPS = frozenset(
    {
        EvidenceKind.ENTRY,
        EvidenceKind.DIRECT,
        EvidenceKind.WRAPPER,
        EvidenceKind.SUMMARY,
        EvidenceKind.LOCAL_WRAPPER,
        EvidenceKind.MODULE,
        EvidenceKind.DLOPEN,
    }
)


class SiteKind(StrEnum):
    """A syscall site in the target's code: a syscall instruction, or a call of a syscall() wrapper."""

    DIRECT = "direct"
    INT80 = "int80"
    SYSENTER = "sysenter"
    SVC = "svc"
    WRAPPER_CALL = "wrapper_call"
    LOCAL_WRAPPER_CALL = "local_wrapper_call"

    @property
    def is_wrapper_call(self) -> bool:
        return self in (SiteKind.WRAPPER_CALL, SiteKind.LOCAL_WRAPPER_CALL)


class Confidence(StrEnum):
    """How sure the number at a syscall site is: one value, several candidates, or none found."""

    EXACT = "exact"
    MULTIPLE = "multiple"
    UNKNOWN = "unknown"


class SupportStatus(StrEnum):
    """What a Unikraft release does with one syscall (see :mod:`uk_depscan.unikraft.gaps`)."""

    PROVIDED = "provided"
    NEEDS_KCONFIG = "needs-kconfig"
    PARTIAL = "partial"
    STUB = "stub"
    ABSENT = "absent"
    # registered only by an external provider of another release (app-elfloader 0.16.3 on a 0.17
    # core): neither provided (its registration does not build unchanged) nor absent (the code exists)
    UNVERIFIED = "unverified"

    @property
    def rank(self) -> int:
        """Within a tier: implementation work first, configuration last."""
        return _STATUS_RANK[self]


_STATUS_RANK = {
    SupportStatus.ABSENT: 0,
    SupportStatus.STUB: 1,
    SupportStatus.PARTIAL: 2,
    SupportStatus.UNVERIFIED: 3,
    SupportStatus.NEEDS_KCONFIG: 4,
    SupportStatus.PROVIDED: 5,
}


class Tier(StrEnum):
    """Porting priority, P0 (first) to P3 (nothing to do).  Ordered by :attr:`rank`, never by
    comparing the strings."""

    P0 = "P0"
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"

    @property
    def rank(self) -> int:
        return _TIER_RANK[self]

    @property
    def actionable(self) -> bool:
        """P3 means nothing is to be done (or only on failure paths)."""
        return self is not Tier.P3

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Tier):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Tier):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Tier):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Tier):
            return NotImplemented
        return self.rank >= other.rank


_TIER_RANK = {Tier.P0: 0, Tier.P1: 1, Tier.P2: 2, Tier.P3: 3}


class Action(StrEnum):
    """What to do about one syscall gap.  The Kconfig option of ``enable`` is the gap's
    ``kconfig`` field; :meth:`label` is the one-line wording the reports use."""

    IMPLEMENT = "implement"
    FAKE = "fake"
    STUB = "stub"
    KEEP = "keep"
    ENABLE = "enable"
    # not enough evidence to choose between implement, fake and stub (no Loupe data, no known
    # fallback): a stated uncertainty, counted apart from the work
    INVESTIGATE = "investigate"
    NONE = "none"

    def label(self, kconfig: str | None = None) -> str:
        if self is Action.ENABLE:
            return f"enable {kconfig}" if kconfig else "enable its library"
        return _ACTION_LABELS[self]

    @classmethod
    def from_label(cls, text: str) -> tuple[Action, str | None]:
        """The inverse of :meth:`label`: (action, Kconfig option of an ``enable``)."""
        if text == "enable its library":
            return cls.ENABLE, None
        if text.startswith("enable "):
            return cls.ENABLE, text.removeprefix("enable ")
        for action, label in _ACTION_LABELS.items():
            if label == text:
                return action, None
        raise ValueError(f"unknown action {text!r}")


_ACTION_LABELS = {
    Action.IMPLEMENT: "implement",
    Action.FAKE: "fake (return 0)",
    Action.STUB: "stub (ENOSYS)",
    Action.KEEP: "keep stub",
    Action.INVESTIGATE: "investigate",
    Action.NONE: "none",
}


class ReachPath(StrEnum):
    """How the target comes to make a syscall (strongest first; see :mod:`uk_depscan.unikraft.priority`)."""

    STARTUP = "start-up"  # every dynamically linked start-up makes it (ld.so, libc initialisation)
    NORMAL = "normal"  # the target's code (or a dependency's constructor) reaches it on a normal path
    RARE = "rare start-up"  # only ld.so's rare paths: errors, --list/--verify, auditing, profiling, re-exec
    FAILURE = "failure"  # only through failure functions (abort, assertion and fortify failures)


class Evidence(StrEnum):
    """How directly the target itself makes a syscall (strongest first)."""

    OWN_SITE = "own site"  # a syscall instruction or a syscall() call in the target's own code
    WRAPPER = "wrapper import"  # an import whose whole closure makes only a few syscalls (it wraps them)
    IMPORT = "import"  # an import of the target reaches it through library code
    INDIRECT = "indirect"  # only a dependency's constructor or a shared evidence chain reaches it
    STARTUP = "start-up"  # the start-up baseline alone


class NativeStatus(StrEnum):
    """A libc import of the target against lib-musl (the native route)."""

    AVAILABLE = "available"
    AVAILABLE_AS = "available-as"
    MISSING = "missing"
    FORTIFY = "fortify"


class Severity(StrEnum):
    BLOCKER = "blocker"
    WARNING = "warning"


# -- inputs ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Skipped:
    """An input inside a directory or wheel that was not analysed, and why."""

    path: str
    reason: str


# -- ELF facts ------------------------------------------------------------------------------------
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
class DlopenTarget:
    name: str
    source: str  # ".note.dlopen (feature=..., priority=...)" or "string literal"


@dataclass(frozen=True)
class BelowSyscall:
    """What Unikraft must provide below the syscall level: pseudo-files and dlopen targets."""

    pseudo_files: tuple[str, ...]
    dlopen_targets: tuple[DlopenTarget, ...]
    imports_dlopen: bool


# -- the loader's answer --------------------------------------------------------------------------
@dataclass(frozen=True)
class Attempt:
    """One candidate path ld.so would try, and what became of it."""

    path: str
    outcome: str


@dataclass(frozen=True)
class LoadedObject:
    index: int
    path: str
    realpath: str
    needed_name: str | None
    loader: int | None
    depth: int
    found_via: FoundVia
    via_detail: str
    soname: str | None
    needed: tuple[str, ...]
    rpath: str | None
    runpath: str | None
    machine: str
    elf_class: int
    build_id: str | None
    tried: tuple[Attempt, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class MissingLibrary:
    needed_name: str
    needed_by: int
    reason: str
    tried: tuple[Attempt, ...]


@dataclass(frozen=True)
class NeededEdge:
    source: int
    needed_name: str
    target: int | None


@dataclass(frozen=True)
class LoadTree:
    """The resolved closure in ld.so load order (index 0 is the root)."""

    objects: tuple[LoadedObject, ...]
    edges: tuple[NeededEdge, ...]
    missing: tuple[MissingLibrary, ...]
    search_notes: tuple[str, ...]

    @property
    def root(self) -> LoadedObject:
        return self.objects[0]


@dataclass(frozen=True)
class VersionProblem:
    """A symbol version the importer needs that its provider does not define."""

    importer: int | None  # object index; None when read back from a saved report (JSON omits it)
    file: str
    version: str
    reason: str


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


# -- syscalls -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EvidenceStep:
    """One edge of a chain: entry/import (name@version) or a syscall site (direct, wrapper, summary)."""

    kind: EvidenceKind
    library: str
    symbol: str
    detail: str


@dataclass(frozen=True)
class Breadth:
    """How directly the target's own code makes one syscall, on normal paths (failure paths aside).

    ``imports`` counts the target's imports whose closure (through every object the loader binds
    them to) makes the syscall; ``narrowest`` is the one among them whose closure makes the fewest
    syscalls, ``narrowest_size`` that number: an import that makes little else (``read`` makes
    ``read``) is stronger evidence than one that makes everything (``dlopen``)."""

    own_sites: int
    imports: int
    narrowest: str | None
    narrowest_size: int


@dataclass(frozen=True)
class SyscallFinding:
    number: int
    name: str
    failure_only: bool
    kinds: tuple[EvidenceKind, ...]
    libraries: tuple[str, ...]
    chain: tuple[EvidenceStep, ...]
    breadth: Breadth | None = None  # None: start-up baseline, or a report read back without it
    rare: bool = False  # baseline only: reached only on ld.so's rare paths (see ReachPath.RARE)
    observed: bool | None = None  # None: no trace given (--observed)


@dataclass(frozen=True)
class SiteRecord:
    """A syscall site in the target itself."""

    address: int
    kind: SiteKind
    numbers: tuple[int, ...]
    names: tuple[str, ...]
    confidence: Confidence
    reason: str
    function: str | None
    via: str | None


@dataclass(frozen=True)
class SummarySourceRecord:
    library: str
    source: str
    build_id: str | None


@dataclass(frozen=True)
class RequestRecord:
    """One (call, argument, value) with how many call sites pass it; value None = not recovered."""

    call: str
    arg_index: int
    value: int | None
    name: str
    sites: int


@dataclass(frozen=True)
class InvalidSyscallNumber:
    """A recovered syscall number that is no syscall of the target architecture (negative, or not in
    its table: ``syscall(-1)``).  Linux answers it with -ENOSYS (``do_syscall_64``/``invoke_syscall``
    fall through to ``sys_ni_syscall``), so it is reported as a finding, never a gap nor a plan step."""

    number: int  # as the program passes it, signed: syscall(-1) is -1, not 2**64 - 1
    library: str
    function: str
    site: str  # instruction address ("0x..."), "" when the evidence ends at a summary
    chain: tuple[EvidenceStep, ...]

    @property
    def message(self) -> str:
        where = f"{self.library}:{self.function}" + (f" @ {self.site}" if self.site else "")
        return f"invalid syscall number {self.number} at site {where} (Linux returns ENOSYS)"


@dataclass(frozen=True)
class ImportReach:
    """What one import of the target reaches through the object it is bound to (normal paths)."""

    key: str  # name@version
    syscalls: tuple[str, ...]  # by number


class LoadVia(StrEnum):
    """How an object not in the DT_NEEDED closure is loaded at run time, by a name the loader's data
    holds (:mod:`uk_depscan.loader.pyimport`, :func:`uk_depscan.loader.resolve.resolve_with_dlopen`)."""

    PYTHON_IMPORT = "python import"  # PyImport_ImportModule("a.b.c"): the interpreter dlopens a/b/c.<tag>.so
    DLOPEN = "dlopen"  # dlopen("libx.so"), found as glibc's dlopen searches from the caller

    @property
    def step(self) -> EvidenceKind:
        return EvidenceKind.MODULE if self is LoadVia.PYTHON_IMPORT else EvidenceKind.DLOPEN


@dataclass(frozen=True)
class RuntimeLoad:
    """An object the target (or an object it loads so) loads at run time, analysed as a whole object
    with its own closure."""

    name: str  # as the loader's data writes it: a module name, or dlopen's argument
    path: str  # the file found for it
    via: LoadVia
    added: tuple[str, ...]  # syscalls (by number) only this object's closure adds to the target's answer
    loader: str  # the object whose data names it: the target, or an object loaded before
    error: str | None = None  # why it could not be analysed (then ``added`` is empty)

    def outcome(self, sep: str = " ") -> str:
        """What the load did to the answer, as every renderer words it."""
        if self.error:
            return f"not analysed: {self.error}"
        return "adds " + sep.join(self.added) if self.added else "adds nothing"


@dataclass(frozen=True)
class SyscallReport:
    """Syscalls the target can reach, the start-up baseline, and where the answers came from."""

    arch: Arch
    libc_model: LibcModel
    entries: tuple[str, ...]
    syscalls: tuple[SyscallFinding, ...]
    baseline: tuple[SyscallFinding, ...]
    sites: tuple[SiteRecord, ...]
    sources: tuple[SummarySourceRecord, ...]
    unknown_sites: int
    requests: tuple[RequestRecord, ...] = ()
    invalid: tuple[InvalidSyscallNumber, ...] = ()  # recovered numbers that are no syscall (never gaps)
    import_reach: tuple[ImportReach, ...] = ()  # per bound import of the target (explain, from JSON too)
    runtime_loads: tuple[RuntimeLoad, ...] = ()  # objects loaded at run time: Python modules, dlopen targets


# -- Unikraft -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Gap:
    """One syscall the target needs, against one Unikraft release, with what to do about it."""

    name: str
    status: SupportStatus
    detail: str
    library: str | None
    kconfig: str | None
    action: Action
    tier: Tier
    reasons: tuple[str, ...]
    likelihood: float = 0.0  # estimated probability the target really makes it (unikraft.priority)
    path: ReachPath = ReachPath.NORMAL
    evidence: Evidence = Evidence.IMPORT
    observed: bool | None = None  # None: no trace given (--observed)

    @property
    def action_label(self) -> str:
        return self.action.label(self.kconfig)


@dataclass(frozen=True)
class SymbolGap:
    name: str
    version: str | None
    status: NativeStatus
    detail: str


@dataclass(frozen=True)
class NativeRoute:
    """Rebuilding against Unikraft's lib-musl: which of the target's libc imports exist there."""

    libmusl_release: str
    musl_version: str
    symbols: tuple[SymbolGap, ...]

    def count(self, status: NativeStatus | str) -> int:
        return sum(1 for s in self.symbols if s.status == status)


@dataclass(frozen=True)
class RouteFinding:
    """What app-elfloader cannot load, or loads with a caveat (binary-compatibility route)."""

    severity: Severity
    object: str
    problem: str


@dataclass(frozen=True)
class PlanStep:
    number: int
    actions: tuple[str, ...]
    completes: tuple[str, ...]


@dataclass(frozen=True)
class TableRef:
    """Which Unikraft support table the gaps were computed against."""

    release: str
    commit: str
    generator: str


class ObservationScope(StrEnum):
    """What a trace's syscalls are counted for: the target's own code (``strace -k`` stacks name
    the target's file: direct calls and its threads' lifecycle), or the traced processes as a whole."""

    LIBRARY = "library"
    PROCESS = "process"


@dataclass(frozen=True)
class Observation:
    """What ``strace -f`` traces of a real run (``--observed``) show for one target.

    ``syscalls``: names counted for the target (its code, or the whole process: ``scope``);
    ``process``: every name the traced processes made; ``startup``: the start-up syscalls (before any
    non-runtime code ran; with stacks only); ``unreached``: counted for the target but in neither the
    static answer nor the start-up baseline; ``unknown``: names that are not syscalls of the
    target's architecture (``???``, another architecture's trace)."""

    traces: tuple[str, ...]
    scope: ObservationScope
    matched: tuple[str, ...]
    rule: str
    syscalls: tuple[str, ...]
    process: tuple[str, ...]
    startup: tuple[str, ...]
    unreached: tuple[str, ...]
    unknown: tuple[str, ...]


# -- views: computed once from the facts (uk_depscan.report.views), read by every renderer --------
@dataclass(frozen=True)
class KconfigGroup:
    """``enable CONFIG_X``: the needs-kconfig syscalls that one option provides, and (from the
    satisfiable option plan, :func:`uk_depscan.unikraft.options.options_for_syscalls`) what the
    option needs (``requires``: its Kconfig requirement, e.g. ``LIBPOSIX_FUTEX && LIBPOSIX_PROCESS_CLONE``)
    and what enabling it drags in (dependencies, selects, implies, defaults)."""

    option: str
    syscalls: tuple[str, ...]
    requires: str = ""
    drags_in: tuple[str, ...] = ()  # turned on with it, beyond the route's base configuration
    tier: Tier | None = None  # the most urgent tier among its syscalls
    already_on: bool = False  # on in the route's base configuration (e.g. implied by app-elfloader)
    note: str = ""  # e.g. an unverified provider (app-elfloader of another release)


@dataclass(frozen=True)
class KconfigPlan:
    """The options a target's ``enable`` gaps need, resolved to a satisfiable set: ``enable`` every
    option to set y (closures included), ``keep_off`` the options that must stay n, and a note per
    option left out because it excludes one that was kept (the alternative, and what it costs)."""

    route: str
    groups: tuple[KconfigGroup, ...]  # per option: the target's syscalls it enables
    enable: tuple[str, ...]
    keep_off: tuple[str, ...]
    alternatives: tuple[str, ...]
    verified: bool  # every closure in the plan was verified by kconfiglib when the tables were made


@dataclass(frozen=True)
class GapRow:
    """A gap with the evidence chain the reports show for it (None: no finding of that name) and
    the libraries that chain runs through, as the gap's "needed via" reason names them."""

    gap: Gap
    evidence: SyscallFinding | None
    needed_via: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChartBar:
    """One bar of a summary chart: a label (a Unikraft library, a dependency), an optional note
    (its Kconfig option) and its segments (count per status or per tier, in enum order, zeros
    left out); the HTML report draws them (:mod:`uk_depscan.report.charts`)."""

    label: str
    note: str
    segments: tuple[tuple[SupportStatus | Tier, int], ...]

    @property
    def total(self) -> int:
        return sum(n for _, n in self.segments)


@dataclass(frozen=True)
class TargetViews:
    """What the renderers show of one target, computed once.

    ``kconfig_groups`` are sorted by tier, then syscall count (descending), then option name;
    ``rows`` are the gaps in gap order with their evidence; ``work`` the rows whose action is not a
    Kconfig option; ``top_actions`` the work still to do (tiers P0-P2: implement, fake, stub,
    investigate, and kept stubs to check).  Every count is over the rows it names:
    ``status_counts`` (statuses present) and ``tier_counts`` (every tier) over all rows,
    ``action_counts`` (actions present) over all rows, ``enable_tier_counts`` over the ``enable``
    rows and ``top_tier_counts`` over ``top_actions``."""

    kconfig_groups: tuple[KconfigGroup, ...]
    rows: tuple[GapRow, ...]
    work: tuple[GapRow, ...]
    top_actions: tuple[GapRow, ...]
    status_counts: tuple[tuple[SupportStatus, int], ...]
    tier_counts: tuple[tuple[Tier, int], ...]
    action_counts: tuple[tuple[Action, int], ...] = ()
    enable_tier_counts: tuple[tuple[Tier, int], ...] = ()
    top_tier_counts: tuple[tuple[Tier, int], ...] = ()
    # -- the HTML report's first screen and charts (not written to JSON: derived, and HTML-only) --
    # ``kconfig_fragment``: .config lines for the options not on in the route's base configuration
    # (and what they drag in); ``work_by_action``: ``top_actions`` grouped by action, implement
    # first; ``status_tier``: one bar per status, segments by tier; ``by_unikraft_library``: gaps per
    # Unikraft library (segments by status); ``by_dependency``: gaps whose chain runs through each
    # library of the closure (segments by tier); ``filter_*``: the values the gap-table filters offer.
    kconfig_fragment: tuple[str, ...] = ()
    work_by_action: tuple[tuple[Action, tuple[GapRow, ...]], ...] = ()
    status_tier: tuple[ChartBar, ...] = ()
    by_unikraft_library: tuple[ChartBar, ...] = ()
    by_dependency: tuple[ChartBar, ...] = ()
    filter_libraries: tuple[str, ...] = ()
    filter_dependencies: tuple[str, ...] = ()


# -- one target, one run --------------------------------------------------------------------------
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
    views: TargetViews | None = None
    observation: Observation | None = None
    kconfig: KconfigPlan | None = None

    @property
    def actionable_gaps(self) -> tuple[Gap, ...]:
        return tuple(g for g in self.gaps if g.tier.actionable)

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
    python_path: tuple[str, ...] = ()  # --python-path: where imported Python modules are also searched


@dataclass(frozen=True)
class MatrixRow:
    """One syscall across several targets: its Unikraft verdict and which targets need it.

    ``status``/``tier``/``action`` are None for a syscall no target has a verdict for (the
    start-up baseline under ``--route native``)."""

    name: str
    status: SupportStatus | None
    tier: Tier | None
    action: Action | None
    kconfig: str | None
    needed_by: tuple[bool, ...]

    @property
    def status_label(self) -> str:
        return "unknown" if self.status is None else self.status.value

    @property
    def tier_label(self) -> str:
        return "-" if self.tier is None else self.tier.value

    @property
    def action_label(self) -> str:
        return "" if self.action is None else self.action.label(self.kconfig)


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
            or any(r.severity is Severity.BLOCKER for r in t.route)
            for t in self.targets
        )
