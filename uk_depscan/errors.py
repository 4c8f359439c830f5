"""Exception hierarchy.  The library raises; only ``cli.py`` turns these into exit codes."""

from __future__ import annotations


class DepscanError(Exception):
    """Base class of every error the CLI reports as one line."""

    exit_code = 2


class InputError(DepscanError):
    """The input is missing, unreadable, not ELF, of an unsupported kind, or refused (wheel limits)."""


class ElfFormatError(InputError):
    """The file is ELF but its headers or tables are corrupt."""


class ResourceError(DepscanError):
    """The machine ran out of something (memory, address space) while analysing an input: a limit
    of the environment, reported as bad input (exit 2), not as a bug."""


class TableError(DepscanError):
    """A shipped or user-supplied data table is missing or malformed."""


class UsageError(DepscanError):
    """The command line asks for something inconsistent."""
