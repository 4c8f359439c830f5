"""The root-filesystem manifest: what goes where in the guest, and why.

Frozen dataclasses and closed sets, like :mod:`uk_depscan.model` (which imports nothing from here:
the manifest is its own product, rendered by :mod:`uk_depscan.rootfs.manifest`).  Every path is
the *in-guest* path (absolute, normalised); ``source`` is the path shown for the file it comes from
(a wheel member as ``WHEEL!member``).  Paths are ``str`` decoded with ``surrogateescape``: a name
that is not UTF-8 keeps its bytes (``os.fsencode`` gives them back for the archive).
"""

from __future__ import annotations

from dataclasses import dataclass

from uk_depscan.model import Attempt, StrEnum

MANIFEST_KIND = "uk-depscan-rootfs-manifest"
MANIFEST_SCHEMA_VERSION = 1


class EntryKind(StrEnum):
    FILE = "file"
    SYMLINK = "symlink"
    DIRECTORY = "directory"


class Role(StrEnum):
    """Why an entry is in the root filesystem."""

    TARGET = "target"
    INTERPRETER = "interpreter"
    NEEDED = "needed"  # DT_NEEDED of something in the closure
    DLOPEN = "dlopen"  # a dlopen target, resolved from its caller
    LINK_TARGET = "link target"  # the file a library's symlink (e.g. its soname link) points to
    LOOKUP = "library lookup"  # /etc/ld.so.cache and /etc/ld.so.conf
    PARENT = "parent directory"


class LookupMethod(StrEnum):
    """How the guest's ld.so finds what no DT_RPATH/DT_RUNPATH names."""

    LD_SO_CACHE = "ld.so.cache"


class DlopenStatus(StrEnum):
    FOUND = "found"  # mapped from the caller: a new object, with its own closure
    LOADED = "already loaded"  # the name matches an object already in the closure
    NOT_FOUND = "not found"


class OutputKind(StrEnum):
    DIRECTORY = "directory"
    CPIO = "cpio"
    NONE = "manifest only"


class PseudoStatus(StrEnum):
    """A pseudo-file against the chosen Unikraft release's generated table."""

    PROVIDED = "provided"  # by the release's default configuration
    NEEDS_KCONFIG = "needs-kconfig"  # provided once the listed options are enabled
    NOT_PROVIDED = "not provided"  # no library of the release serves that path

    @property
    def provided(self) -> bool:
        return self is not PseudoStatus.NOT_PROVIDED


@dataclass(frozen=True)
class Entry:
    """One file, symlink or directory of the root filesystem."""

    path: str
    kind: EntryKind
    role: Role
    mode: int  # permission bits as written (setuid/setgid/sticky never are)
    size: int  # bytes of a file; 0 otherwise
    sha256: str | None = None
    link: str | None = None  # a symlink's target, relative
    source: str | None = None
    found_via: str | None = None
    needed_by: tuple[str, ...] = ()  # in-guest paths of the objects that need or dlopen it


@dataclass(frozen=True)
class DlopenRecord:
    caller: str  # in-guest path of the object whose code names the target
    name: str
    evidence: str  # ".note.dlopen (...)" or "string literal"
    status: DlopenStatus
    path: str | None = None  # in-guest path of what it maps
    found_via: str | None = None
    reason: str | None = None
    tried: tuple[Attempt, ...] = ()


@dataclass(frozen=True)
class PseudoFile:
    path: str  # as the code spells it (a literal; "%d" and the like kept)
    referenced_by: tuple[str, ...]
    status: PseudoStatus
    matched: str | None  # the table's path that serves it
    requires: str | None  # Kconfig expression of the way that serves it
    enable: tuple[str, ...]  # options to set for it
    libraries: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class MissingRecord:
    """A DT_NEEDED the loader cannot find: the guest will not start without it."""

    name: str
    needed_by: str
    reason: str
    tried: tuple[Attempt, ...]


@dataclass(frozen=True)
class Refusal:
    """Something the closure names that is not written, and why (a safety rule)."""

    source: str
    path: str | None
    reason: str


@dataclass(frozen=True)
class Lookup:
    method: LookupMethod
    cache: str  # in-guest path of the cache
    entries: tuple[tuple[str, str], ...]  # (name looked up, in-guest path), as the cache holds them
    directories: tuple[str, ...]  # the directories /etc/ld.so.conf lists (those of cached entries)
    detail: str


@dataclass(frozen=True)
class Verification:
    """The closure resolved again inside the written tree, by the same loader rules, with no
    LD_LIBRARY_PATH and the tree's own ld.so.cache: every object must land on the same in-guest path."""

    done: bool
    checked: int
    problems: tuple[str, ...]
    note: str


@dataclass(frozen=True)
class PseudoTableRef:
    release: str
    commit: str
    generator: str


@dataclass(frozen=True)
class Manifest:
    tool_version: str
    arch: str
    app_dir: str
    mtime: int
    output: OutputKind
    targets: tuple[tuple[str, str], ...]  # (source shown, in-guest path)
    entries: tuple[Entry, ...]
    lookup: Lookup
    dlopen: tuple[DlopenRecord, ...]
    pseudo_files: tuple[PseudoFile, ...]
    pseudo_table: PseudoTableRef
    missing: tuple[MissingRecord, ...]
    refused: tuple[Refusal, ...]
    verification: Verification
    warnings: tuple[str, ...]

    @property
    def files(self) -> tuple[Entry, ...]:
        return tuple(e for e in self.entries if e.kind is EntryKind.FILE)

    @property
    def bytes(self) -> int:
        return sum(e.size for e in self.entries if e.kind is EntryKind.FILE)

    @property
    def complete(self) -> bool:
        """Nothing the loader needs is missing or refused, and the tree re-resolved cleanly."""
        return not self.missing and not self.refused and not self.verification.problems
