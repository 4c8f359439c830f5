"""What every command shares: its options (declared once), where its output goes, how it fails.

A command names the shared options it accepts; :func:`command` adds their declarations to its
signature for typer and hands the command one :class:`CommonOptions` instead of a dozen
parameters.  Output goes through :func:`emit`; everything on stderr through :func:`stderr_line`
(the terminal escaping rule) or :class:`StderrLogHandler`; an error becomes its one line and exit
code in :func:`print_error` — reached from :func:`uk_depscan.cli.main.run` for the main commands, and from
:func:`exits_on_error` for the ``tables`` sub-application, which also runs on its own.
``--traceback`` is read from the options the command was given, through :data:`SHOW_TRACEBACK`.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
import os
import shutil
import sys
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_type_hints

import typer

from uk_depscan.cleanup import write_output
from uk_depscan.errors import DepscanError, UsageError
from uk_depscan.loader.paths import SearchConfig
from uk_depscan.model import FailOn, LibcModel, OutputFormat, Route
from uk_depscan.report.escape import for_terminal

if TYPE_CHECKING:
    from uk_depscan.pipeline import Options

EXIT_OK, EXIT_GAPS, EXIT_INPUT, EXIT_INTERNAL = 0, 1, 2, 3
# Set by a command once its options are parsed; read by run() when an error reaches it.
SHOW_TRACEBACK: ContextVar[bool] = ContextVar("uk_depscan_show_traceback", default=False)


class NotFoundError(DepscanError):
    """A look-up found nothing (``tables show RELEASE NAME``): exit 1, like grep without a match."""

    exit_code = EXIT_GAPS


@dataclass(frozen=True)
class CommonOptions:
    """The options several commands take; a command that does not offer one gets its default."""

    fmt: OutputFormat = OutputFormat.TEXT
    output: Path | None = None
    root: str = "/"
    library_path: tuple[str, ...] = ()
    python_path: tuple[str, ...] = ()
    ld_so_conf: Path | None = None
    no_ld_cache: bool = False
    verbose: int = 0
    quiet: bool = False
    traceback: bool = False
    libc: LibcModel | None = None  # None: not given (auto, or musl under --route native)
    entry: tuple[str, ...] = ()
    no_cache: bool = False
    unikraft: str | None = None
    unikraft_table: Path | None = None
    fail_on: FailOn = FailOn.ANY
    route: Route = Route.BOTH
    observed: tuple[str, ...] = ()
    jobs: int | None = None  # None: the usable cores
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def search_config(self) -> SearchConfig:
        if not os.path.isdir(self.root):
            raise UsageError(f"--root {self.root}: not a directory")

        def listed(values: tuple[str, ...]) -> tuple[str, ...]:  # repeatable and colon-separated
            return tuple(d for entry in values for d in entry.split(":") if d)

        dirs = listed(self.library_path)
        conf = str(self.ld_so_conf) if self.ld_so_conf else None
        py = listed(self.python_path)
        for d in py:
            if not os.path.isdir(d):
                raise UsageError(f"--python-path {d}: not a directory")
        return SearchConfig(
            root=self.root, library_path=dirs, ld_so_conf=conf, use_cache=not self.no_ld_cache, python_path=py
        )

    @property
    def libc_model(self) -> LibcModel:
        """The libc model: as given, else musl for ``--route native`` (a rebuild against lib-musl
        runs musl's code, not glibc's), else auto."""
        if self.libc is not None:
            return self.libc
        return LibcModel.MUSL if self.route is Route.NATIVE else LibcModel.AUTO

    @property
    def processes(self) -> int:
        """--jobs, else the cores this process may run on (its affinity mask, not the machine's)."""
        if self.jobs is not None:
            if self.jobs < 1:
                raise UsageError(f"--jobs {self.jobs}: must be at least 1")
            return self.jobs
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1

    def analysis(self, *, symbols: bool = True, syscalls: bool = True) -> Options:
        from uk_depscan.inputs import MemberFilter
        from uk_depscan.pipeline import Options

        return Options(
            jobs=self.processes,
            select=MemberFilter(self.include, self.exclude) if self.include or self.exclude else None,
            symbols=symbols,
            syscalls=syscalls,
            libc_model=self.libc_model,
            libc_implied=self.libc is None and self.route is Route.NATIVE,
            entries=self.entry,
            no_cache=self.no_cache,
            unikraft=self.unikraft,
            unikraft_table=str(self.unikraft_table) if self.unikraft_table else None,
            route=self.route,
            observed=self.observed,
        )


# name -> (annotation typer parses, its declaration); the order a command lists them is --help's.
SHARED: dict[str, tuple[Any, Any]] = {
    "fmt": (OutputFormat, typer.Option(OutputFormat.TEXT, "--format", "-f", help="Output format.")),
    "output": (
        Path | None,
        typer.Option(None, "--output", "-o", help="Write the report here (opened only after success)."),
    ),
    "root": (str, typer.Option("/", "--root", help="Sysroot: resolve absolute search paths inside DIR.")),
    "library_path": (
        list[str] | None,
        typer.Option(
            None,
            "--library-path",
            "-L",
            help="Directories searched like LD_LIBRARY_PATH (repeatable, or colon-separated).",
        ),
    ),
    "python_path": (
        list[str] | None,
        typer.Option(
            None,
            "--python-path",
            help="Also search these directories (after the one holding the importer's package) for the "
            "Python extension modules an object imports by name: the virtual environment's "
            "site-packages when a wheel is scanned alone (repeatable, or colon-separated).",
        ),
    ),
    "ld_so_conf": (
        Path | None,
        typer.Option(None, "--ld-so-conf", help="Use this ld.so.conf (with includes) instead of ld.so.cache."),
    ),
    "no_ld_cache": (
        bool,
        typer.Option(False, "--no-ld-cache", help="Ignore ROOT/etc/ld.so.cache; read ld.so.conf instead."),
    ),
    "verbose": (
        int,
        typer.Option(0, "--verbose", "-v", count=True, help="More detail (rejected candidates, all symbols)."),
    ),
    "quiet": (bool, typer.Option(False, "--quiet", "-q", help="No summary and no progress on stderr.")),
    "traceback": (bool, typer.Option(False, "--traceback", help="Show the Python traceback on errors.")),
    "libc": (
        LibcModel | None,
        typer.Option(
            None,
            "--libc",
            help="libc model: auto (libraries on disk, shipped glibc tables for missing ones), "
            "glibc (shipped Debian 12 glibc 2.36 tables), musl (shipped musl 1.2.3). "
            "Default: musl with --route native, else auto.",
        ),
    ),
    "entry": (
        list[str] | None,
        typer.Option(
            None,
            "--entry",
            help="Only what these exported functions reach (glob on mangled or "
            "demangled names, or the function at a code address: 0x3e3ca0, sub_3e3ca0; "
            "repeatable). Constructors are always included.",
        ),
    ),
    "no_cache": (bool, typer.Option(False, "--no-cache", help="Do not read or write the per-library scan cache.")),
    "unikraft": (
        str | None,
        typer.Option(
            None,
            "--unikraft",
            help="Unikraft release table to compare against (default: newest shipped; see `uk-depscan tables list`).",
        ),
    ),
    "unikraft_table": (
        Path | None,
        typer.Option(
            None,
            "--unikraft-table",
            help="A Unikraft support table of your own (`uk-depscan tables unikraft --src ...`).",
        ),
    ),
    "fail_on": (FailOn, typer.Option(FailOn.ANY, "--fail-on", help="Which gaps make the exit code 1 (CI gating).")),
    "observed": (
        list[str] | None,
        typer.Option(
            None,
            "--observed",
            help="strace -f output of a real run (repeatable; -k stacks attribute syscalls to the target): "
            "marks syscalls and gaps observed / not observed and ranks observed gaps first.",
        ),
    ),
    "jobs": (
        int | None,
        typer.Option(
            None,
            "--jobs",
            "-j",
            help="Processes for several targets (directories, wheels, several files); the report is the "
            "same for every value. Default: the usable cores.",
        ),
    ),
    "include": (
        list[str] | None,
        typer.Option(
            None,
            "--include",
            help="Only members of directories and wheels matching GLOB (repeatable; a GLOB with / matches "
            "the relative path, else the file name).",
        ),
    ),
    "exclude": (
        list[str] | None,
        typer.Option(None, "--exclude", help="Skip members of directories and wheels matching GLOB (repeatable)."),
    ),
    "route": (
        Route,
        typer.Option(
            Route.BOTH,
            "--route",
            help="binary-compat (app-elfloader runs the Linux ELF with glibc), "
            "native (rebuilt against lib-musl), or both side by side.",
        ),
    ),
}
_SEQUENCES = (
    "library_path",
    "python_path",
    "entry",
    "observed",
    "include",
    "exclude",
)  # typer gives None or a list; the options object holds a tuple


def command(app: typer.Typer, name: str, *shared: str) -> Callable[[Callable[..., int]], Callable[..., int]]:
    """Register ``fn(<own parameters>, *, opts: CommonOptions)`` as command ``name`` of ``app``,
    offering the ``shared`` options after its own parameters, in that order."""
    unknown = [n for n in shared if n not in SHARED]
    if unknown:
        raise ValueError(f"no shared option {unknown}")

    def register(fn: Callable[..., int]) -> Callable[..., int]:
        hints = get_type_hints(fn)
        sig = inspect.signature(fn)
        own = [p.replace(annotation=hints[p.name]) for p in sig.parameters.values() if p.name != "opts"]
        offered = [
            inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=SHARED[n][1], annotation=SHARED[n][0])
            for n in shared
        ]

        def invoke(**kwargs: Any) -> int:
            values = {n: kwargs.pop(n) for n in shared}
            for n in _SEQUENCES:
                if n in values:
                    values[n] = tuple(values[n] or ())
            opts = dataclasses.replace(CommonOptions(), **values)
            SHOW_TRACEBACK.set(opts.traceback)
            # -vv: the library's debug log on stderr
            logging.getLogger().setLevel(logging.DEBUG if opts.verbose > 1 else logging.WARNING)
            return fn(**kwargs, opts=opts)

        # typer reads the parameters from the signature (with real types: annotations of the
        # command's module are strings under `from __future__ import annotations`)
        invoke.__signature__ = sig.replace(parameters=[*own, *offered], return_annotation=int)  # type: ignore[attr-defined]  # typer reads __signature__; functions do not declare it
        invoke.__name__, invoke.__qualname__, invoke.__doc__ = fn.__name__, fn.__qualname__, fn.__doc__
        app.command(name)(invoke)
        return fn

    return register


def stderr_line(text: str) -> None:
    """One line on stderr through the terminal rule (:func:`~uk_depscan.report.escape.for_terminal`):
    a file or symbol name in it cannot forge a line, move the cursor or reorder the text.  Every
    message the CLI writes to stderr comes through here or :class:`StderrLogHandler`."""
    sys.stderr.write(for_terminal(text) + "\n")


def stderr_lines(text: str) -> None:
    """Several lines (usage text): each its own escaped line, split on newlines only."""
    for line in text.rstrip("\n").split("\n"):
        stderr_line(line)


class StderrLogHandler(logging.Handler):
    """The library's log records (warnings; with -vv debug) on stderr, one escaped line each, on
    the ``sys.stderr`` of the moment (a test, or a second run in one process, may have replaced it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stderr_line(f"uk-depscan: {record.levelname}: {record.getMessage()}")
        except (OSError, ValueError, TypeError):  # a closed stream, a bad format string
            self.handleError(record)


def install_log_handler() -> None:
    """Route the root logger to :class:`StderrLogHandler` (once per process)."""
    root = logging.getLogger()
    if not any(isinstance(h, StderrLogHandler) for h in root.handlers):
        root.addHandler(StderrLogHandler())


def print_error(err: DepscanError) -> int:
    """The one-line message of every error the CLI reports; returns its exit code."""
    stderr_line(f"uk-depscan: error: {err}")
    return err.exit_code


def exits_on_error(fn: Callable[..., None]) -> Callable[..., None]:
    """For commands of a sub-application that may run on its own (typer's test runner): the
    error line and exit code of :func:`print_error`, as :func:`uk_depscan.cli.main.run` gives."""

    @functools.wraps(fn)
    def guarded(*args: Any, **kwargs: Any) -> None:
        try:
            fn(*args, **kwargs)
        except DepscanError as err:
            if SHOW_TRACEBACK.get():
                raise
            raise typer.Exit(print_error(err)) from err

    return guarded


def terminal_width() -> int:
    """Columns for text output: ``COLUMNS`` when set, else the terminal's width, else 100 (a pipe
    or a file: wide enough for one gap row per line, narrow enough to read)."""
    from uk_depscan.report.text import DEFAULT_WIDTH

    return max(shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns, 40)


def use_color(output: Path | None) -> bool:
    """Colours only on a terminal, and never when ``NO_COLOR`` is set to anything (no-color.org)."""
    return output is None and sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def emit(text: str, output: Path | None, *, announce: bool = False) -> None:
    """The command's result: to stdout, or to ``output`` (``announce``: say so on stderr)."""
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        write_output(output, text)  # all or nothing, even when the run is interrupted
    except OSError as err:
        raise UsageError(f"{output}: cannot write: {err.strerror or err}") from err
    if announce:
        stderr_line(f"wrote {output}")
