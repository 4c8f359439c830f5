"""The ``uk-depscan`` command line.  The only package that talks to the terminal.

Exit codes: 0 no gaps, 1 gaps found (missing libraries, unresolved imports, unsupported
syscalls), 2 bad input or usage, 3 internal error.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Protocol, cast

import typer

from uk_depscan import __version__
from uk_depscan.cleanup import BoundedThread, c_function, run_guarded, start_thread
from uk_depscan.cli.common import (
    EXIT_GAPS,
    EXIT_INPUT,
    EXIT_INTERNAL,
    EXIT_OK,
    SHOW_TRACEBACK,
    CommonOptions,
    command,
    emit,
    install_log_handler,
    print_error,
    stderr_line,
    stderr_lines,
    terminal_width,
    use_color,
)
from uk_depscan.cli.usage import choice_hint, command_or_file
from uk_depscan.errors import DepscanError, ResourceError, UsageError
from uk_depscan.model import FailOn, GraphFormat, OutputFormat, Report, SupportStatus, TargetReport
from uk_depscan.report.escape import for_terminal

# typer ≥ 0.25 vendors its own click (no `click` package is installed); older typer re-exports
# click's classes.  Either way typer's BadParameter derives from the ClickException in use.
_USAGE_ERRORS: type[Exception] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


class _Showable(Protocol):
    """click's ClickException: prints itself as usage text."""

    message: str

    def show(self, file: IO[str] | None = None) -> None: ...


CORE_COMMANDS = ("scan", "deps", "explain", "graph", "diff")  # defined in this module
SUBCOMMANDS = {"scan", "deps", "tables", "explain", "graph", "diff", "cache", "kconfig", "scaffold", "rootfs", "corpus"}
# The shared options each command offers (uk_depscan.cli.common.SHARED), in --help order.
SEARCH = ("root", "library_path", "ld_so_conf", "no_ld_cache")
SELECT = ("jobs", "include", "exclude")
SCAN_OPTIONS = ("fmt", "output", *SEARCH, "python_path", "verbose", "quiet", "traceback", "libc", "entry", "no_cache",
                "unikraft", "unikraft_table", "fail_on", "route", "observed", *SELECT)  # fmt: skip
DEPS_OPTIONS = ("fmt", "output", *SEARCH, "verbose", "quiet", "traceback", *SELECT)
EXPLAIN_OPTIONS = ("fmt", "output", *SEARCH, "python_path", "quiet", "libc", "entry", "unikraft", "unikraft_table",
                   "traceback")  # fmt: skip
GRAPH_OPTIONS = ("output", *SEARCH, "python_path", "quiet", "libc", "unikraft", "traceback")
DIFF_OPTIONS = ("fmt", "output", "quiet", "libc", "unikraft", "traceback")

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="What must Unikraft provide for this ELF to work?  Reads ELF files, directories "
    "and wheels without executing them.",
)
TargetsArg = typer.Argument(..., help="ELF files, directories or wheels.", show_default=False)


def _render(report: Report, opts: CommonOptions, text_renderer: Callable[..., str]) -> None:
    if opts.fmt is OutputFormat.JSON:
        from uk_depscan.report.json_report import render_json

        emit(render_json(report), opts.output)
    elif opts.fmt is OutputFormat.MD:
        from uk_depscan.report.markdown import render_markdown

        emit(render_markdown(report), opts.output)
    elif opts.fmt is OutputFormat.HTML:
        from uk_depscan.report.html import render_html

        emit(render_html(report), opts.output)
    elif opts.fmt is OutputFormat.DOT:
        from uk_depscan.report.graph import build_graph, to_dot

        emit(to_dot(build_graph(report)), opts.output)
    else:
        text = text_renderer(report, color=use_color(opts.output), width=terminal_width(), verbose=opts.verbose)
        emit(text, opts.output)


@contextmanager
def _progress(quiet: bool) -> Iterator[Progress]:
    """Progress on stderr: a rich bar with the current step on a terminal, a periodic one-line
    status otherwise (a redirected 100 s scan is not silent); nothing with --quiet."""
    if quiet:
        yield Progress()
    elif sys.stderr.isatty():
        with _RichProgress() as p:
            yield p
    else:
        with StatusLines() as p:
            yield p


class Progress:
    """Where the analysis reports its steps (``note``) and finished targets (``advance``)."""

    def note(self, msg: str) -> None:
        pass

    def advance(self, done: int, total: int, target: str) -> None:
        pass


class _RichProgress(Progress):
    def __enter__(self) -> _RichProgress:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as Bar

        self._bar = Bar(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._bar.__enter__()
        self._task = self._bar.add_task(self._text("starting"), total=None)
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.__exit__(None, None, None)

    @staticmethod
    def _text(msg: str) -> str:
        from rich.markup import escape

        return escape(progress_text(msg))

    def note(self, msg: str) -> None:
        self._bar.update(self._task, description=self._text(msg))

    def advance(self, done: int, total: int, target: str) -> None:
        self._bar.update(self._task, completed=done, total=total, description=self._text(f"{target}: done"))


class StatusLines(Progress):
    """Not a terminal: the latest step as one escaped line every ``interval`` seconds, from a
    timer thread (a single step of a cold scan can last a minute), plus nothing when the run is
    shorter than one interval."""

    def __init__(self, interval: float = 10.0) -> None:
        import threading

        self.interval = interval
        self._latest = "starting"
        self._done = ""
        self._stop = threading.Event()
        self._start = time.monotonic()
        self._thread = BoundedThread(target=self._loop, name="uk-depscan-status", daemon=True)
        self._running = False

    def __enter__(self) -> StatusLines:
        self._running = start_thread(self._thread)  # progress is best effort: none without a thread
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._running:
            self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.emit()

    def line(self) -> str:
        return f"uk-depscan: [{time.monotonic() - self._start:.0f} s{self._done}] {self._latest}"

    def emit(self) -> None:
        try:
            stderr_line(self.line())
            sys.stderr.flush()
        except (OSError, ValueError):  # stderr closed under us: progress is best effort
            self._stop.set()

    def note(self, msg: str) -> None:
        self._latest = msg

    def advance(self, done: int, total: int, target: str) -> None:
        self._done = f", {done}/{total} targets"
        self._latest = f"{target}: done"


def progress_text(msg: str) -> str:
    """A progress step as the spinner shows it: the terminal rule (rich markup escaped besides)."""
    return for_terminal(f"uk-depscan: {msg}")


def _stderr_summary(report: Report, quiet: bool) -> None:
    if quiet:
        return
    from uk_depscan.report.views import target_views

    for t in report.targets:
        gaps = ""
        if t.syscalls is not None:
            v = target_views(t)
            enable = sum(n for _, n in v.enable_tier_counts)
            gaps = f", Unikraft: {enable} syscalls behind Kconfig options, {len(v.top_actions)} rows of work"
        stderr_line(
            f"uk-depscan: {t.target}: {len(t.tree.objects) - 1} libraries, "
            f"{len(t.tree.missing)} missing, {len(t.unresolved)} unresolved imports{gaps}"
        )


@command(app, "scan", *SCAN_OPTIONS)
def scan_cmd(targets: list[str] = TargetsArg, *, opts: CommonOptions) -> int:
    """Summary of each target: loader facts, imports, reachable syscalls with evidence (default command)."""
    from uk_depscan.pipeline import analyze
    from uk_depscan.report.text import render_summary

    config = opts.search_config()
    options = opts.analysis()
    with _progress(opts.quiet) as p:
        report = analyze(targets, config, command="scan", options=options, progress=p.note, advance=p.advance)
    _render(report, opts, render_summary)
    if opts.fmt is not OutputFormat.TEXT or opts.output is not None:
        _stderr_summary(report, opts.quiet)
    return exit_code(report, opts.fail_on)


def exit_code(report: Report, fail_on: FailOn) -> int:
    """--fail-on: any (default: every actionable gap, missing library or unresolved import),
    absent (only absent syscalls and missing libraries), stub (absent or stub), never."""
    if fail_on is FailOn.NEVER:
        return EXIT_OK
    if fail_on is FailOn.ANY:
        return EXIT_GAPS if report.has_gaps else EXIT_OK
    bad_status = {SupportStatus.ABSENT} if fail_on is FailOn.ABSENT else {SupportStatus.ABSENT, SupportStatus.STUB}
    bad = any(
        t.tree.missing or any(g.status in bad_status and g.tier.actionable for g in t.gaps) for t in report.targets
    )
    return EXIT_GAPS if bad else EXIT_OK


@command(app, "deps", *DEPS_OPTIONS)
def deps_cmd(targets: list[str] = TargetsArg, *, opts: CommonOptions) -> int:
    """Dependency tree, libtree-style: how each library was found, or every path tried."""
    from uk_depscan.pipeline import analyze
    from uk_depscan.report.text import render_deps

    options = opts.analysis(symbols=False, syscalls=False)
    config = opts.search_config()
    with _progress(opts.quiet) as p:
        report = analyze(targets, config, command="deps", options=options, progress=p.note, advance=p.advance)
    _render(report, opts, render_deps)
    return EXIT_GAPS if any(t.tree.missing for t in report.targets) else EXIT_OK


@command(app, "explain", *EXPLAIN_OPTIONS)
def explain_cmd(
    target: str = typer.Argument(..., help="ELF file, directory or wheel, or a saved --format json report."),
    query: str = typer.Argument(
        ...,
        help="A syscall name or number, an imported symbol, an exported one, a code address "
        "(0x3e3ca0, sub_3e3ca0), or an object loaded at run time.",
    ),
    *,
    opts: CommonOptions,
) -> int:
    """Why the target reaches a syscall (its shortest evidence chains, down to the instruction), what
    an import reaches and through which provider, what an export or the function at a code address
    reaches, or what an object the target loads at run time (a Python module, a dlopen target)
    adds.  A saved JSON report is read back, not re-analysed (an export's or a function's reach
    needs the binary).  Unknown name: exit 2."""
    import dataclasses

    from uk_depscan.pipeline import analyze
    from uk_depscan.report.text import render_explain
    from uk_depscan.report.views import (
        QueryKind,
        explain,
        explain_export,
        explain_import,
        explain_runtime_load,
        find_import,
        find_runtime_load,
    )
    from uk_depscan.syscalls.reach import is_address_entry

    saved = target.endswith(".json")
    report = _diff_side(target, opts) if saved else analyze([target], opts.search_config(), options=opts.analysis())
    q = query.strip()
    t = report.targets[0]
    if _names_syscall(t, q):
        answers = explain(report, q)
    elif (imp := find_import(t, q)) is not None:
        answers = (explain_import(t, imp),)
    elif (load := find_runtime_load(t, q)) is not None:
        answers = (explain_runtime_load(t, load),)
    elif is_address_entry(q):
        if saved:  # a saved report holds the reaches of its syscalls and imports, not of every function
            raise UsageError(f"{target}: {q} is a code address: what its function reaches needs the binary")
        # the function holding the address (an API-table slot, a chain's sub_…): exit 2 outside the code
        sub = analyze([target], opts.search_config(), options=dataclasses.replace(opts.analysis(), entries=(q,)))
        answers = (explain_export(sub.targets[0], q, QueryKind.FUNCTION),)
    elif not saved and (export := _find_export(t.target, target, q)) is not None:
        options = dataclasses.replace(opts.analysis(), entries=(export.split("@", 1)[0],))
        sub = analyze([target], opts.search_config(), options=options)
        answers = (explain_export(sub.targets[0], export),)
    else:
        raise UsageError(
            f"{target}: {q!r} names no syscall, import, export or object loaded at run time"
            f"{_closest(t, target, q, saved)}"
        )
    if opts.fmt is OutputFormat.JSON:
        from uk_depscan.report.json_report import explain_to_json

        emit(explain_to_json(answers, q), opts.output)
    else:
        emit(render_explain(answers, q, color=use_color(opts.output), width=terminal_width()), opts.output)
    return EXIT_OK


def _names_syscall(t: TargetReport, q: str) -> bool:
    from uk_depscan.syscalls.linux import load_linux_table

    if q.isdecimal():
        return True
    return t.syscalls is not None and q in load_linux_table(t.syscalls.arch.value)


def _export_keys(path: str) -> list[str]:
    from uk_depscan.elf.file import open_elf
    from uk_depscan.elf.symbols import dynamic_symbols

    try:
        elf = open_elf(path)
    except (DepscanError, OSError):
        return []  # a directory or wheel: exports are not looked up
    return [e.key for e in dynamic_symbols(elf).iter_exports() if e.sym_type in ("FUNC", "IFUNC")]


def _find_export(_display: str, path: str, q: str) -> str | None:
    from uk_depscan.names import demangle

    for key in _export_keys(path):
        base = key.split("@", 1)[0]
        if q in (key, base) or demangle(base) == q or demangle(base).startswith(q + "("):
            return key
    return None


def _closest(t: TargetReport, path: str, q: str, saved: bool) -> str:
    import difflib

    from uk_depscan.syscalls.linux import load_linux_table

    names = list(load_linux_table(t.syscalls.arch.value).names) if t.syscalls is not None else []
    names += [i.name for i in t.imports]
    names += [x.name for x in t.syscalls.runtime_loads] if t.syscalls is not None else []
    names += [] if saved else [k.split("@", 1)[0] for k in _export_keys(path)]
    close = difflib.get_close_matches(q, sorted(set(names)), n=5)
    return f"; closest: {', '.join(close)}" if close else ""


@command(app, "graph", *GRAPH_OPTIONS)
def graph_cmd(
    targets: list[str] = TargetsArg,
    fmt: GraphFormat = typer.Option(
        GraphFormat.DOT, "--format", "-f", help="graphml, json or dot (dot is the collapsed view)."
    ),
    *,
    opts: CommonOptions,
) -> int:
    """The dependency/syscall graph: libraries, imports, syscalls, Unikraft libraries and Kconfig options."""
    from uk_depscan.pipeline import analyze
    from uk_depscan.report.graph import build_graph, to_dot, to_graphml, to_json

    report = analyze(targets, opts.search_config(), command="scan", options=opts.analysis())
    g = build_graph(report)
    emit({GraphFormat.GRAPHML: to_graphml, GraphFormat.JSON: to_json, GraphFormat.DOT: to_dot}[fmt](g), opts.output)
    return EXIT_OK


@command(app, "diff", *DIFF_OPTIONS)
def diff_cmd(
    old: str = typer.Argument(..., help="Old: a saved --format json report, or a binary/wheel to analyse."),
    new: str = typer.Argument(..., help="New: likewise."),
    *,
    opts: CommonOptions,
) -> int:
    """What a new version adds or removes: libraries, symbol versions, syscalls, Unikraft gaps.
    Exit code 1 when the new side has gaps (P0-P2) the old one did not."""
    from uk_depscan.report import diff

    d = diff.diff_reports(_diff_side(old, opts), _diff_side(new, opts), old, new)
    renderers = {
        OutputFormat.TEXT: diff.render_diff_text,
        OutputFormat.JSON: diff.render_diff_json,
        OutputFormat.MD: diff.render_diff_markdown,
        OutputFormat.HTML: diff.render_diff_html,
    }
    render = renderers.get(opts.fmt)
    if render is None:
        raise UsageError(f"diff --format {opts.fmt}: not available for a diff (choose text, json, md or html)")
    emit(render(d), opts.output)
    return EXIT_GAPS if d.new_gaps else EXIT_OK


def _diff_side(arg: str, opts: CommonOptions) -> Report:
    """A saved JSON report read back, or a fresh analysis of a binary."""
    if arg.endswith(".json"):
        from uk_depscan.report.json_report import load_report

        return load_report(arg)
    from uk_depscan.pipeline import analyze

    return analyze([arg], options=opts.analysis())


def _mount_optional_apps() -> None:
    from uk_depscan.cli.artifacts import register as register_artifacts

    register_artifacts(app)  # kconfig, scaffold (self-contained; idempotent)
    from uk_depscan.cli.rootfs import register as register_rootfs

    register_rootfs(app)  # rootfs (idempotent)
    # run() is called many times in one process (tests, fuzzing): mounting again on every call
    # would grow app.registered_groups and make each run slower and larger than the last.
    if any(g.name == "tables" for g in app.registered_groups):
        return
    from uk_depscan.cli.tables import tables_app

    app.add_typer(tables_app, name="tables", help="Unikraft and Linux syscall tables: list, show, generate.")
    from uk_depscan.cli.cache import cache_app

    app.add_typer(cache_app, name="cache", help="The scan cache: info, clear.")
    from uk_depscan.cli.corpus import corpus_app

    app.add_typer(corpus_app, name="corpus", help="A corpus of wheels in one database: scan, report.")


def route(argv: list[str]) -> list[str]:
    """``uk-depscan TARGET...`` means ``uk-depscan scan TARGET...``."""
    if not argv or argv[0] in SUBCOMMANDS or argv[0] in ("--help", "-h", "--version"):
        return argv
    command_or_file(argv[0], SUBCOMMANDS)  # `uk-depscan dpes /bin/ls`: a typo, not a file to scan
    return ["scan", *argv]


def run(argv: list[str]) -> int:
    """Run the CLI on ``argv`` and return the exit code (used by tests in-process).

    The one place errors become messages: usage errors (typer), :class:`DepscanError` (one line,
    its exit code) and anything else (internal error, exit 3); ``--traceback`` re-raises instead."""
    if argv[:1] == ["--version"]:
        sys.stdout.write(f"uk-depscan {__version__}\n")
        return EXIT_OK
    SHOW_TRACEBACK.set(False)
    install_log_handler()
    logging.getLogger().setLevel(logging.WARNING)  # a command given -vv lowers it (cli.common.command)
    try:
        args = route(argv)
    except UsageError as err:  # a mistyped command (route() suggests the closest)
        return print_error(err)
    # The optional sub-applications import tablegen, pydantic and kconfig code (~0.2 s): mounted
    # only when the command line may need them (their own command, or the top-level --help).
    if args[:1] not in ([c] for c in CORE_COMMANDS):
        _mount_optional_apps()
    try:
        rv = typer.main.get_command(app).main(args=args, prog_name="uk-depscan", standalone_mode=False)
        return int(rv) if isinstance(rv, int) else EXIT_OK
    except typer.Exit as ex:
        return int(ex.exit_code)
    except typer.Abort:
        stderr_line("uk-depscan: aborted")
        return EXIT_INPUT
    except _USAGE_ERRORS as ex:
        usage = cast(_Showable, ex)
        # an option value typed or scripted from a file name; a wrong choice gets the closest one
        usage.message = for_terminal(choice_hint(usage.message))
        text = io.StringIO()
        usage.show(file=text)
        stderr_lines(text.getvalue())
        return EXIT_INPUT
    except DepscanError as err:
        if SHOW_TRACEBACK.get():
            raise
        return print_error(err)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except MemoryError as err:  # outside any one target (e.g. --jobs could not start its workers)
        if SHOW_TRACEBACK.get():
            raise
        return print_error(ResourceError(f"not enough memory ({err})" if str(err) else "not enough memory"))
    except Exception as err:
        if SHOW_TRACEBACK.get():
            raise
        stderr_line(f"uk-depscan: internal error: {type(err).__name__}: {err} (rerun with --traceback)")
        return EXIT_INTERNAL


def small_pages() -> None:
    """Turn off numpy's ``madvise(MADV_HUGEPAGE)`` on its large arrays in this process (and the
    pools it forks), unless ``NUMPY_MADVISE_HUGEPAGE`` says otherwise.

    Why: on a kernel whose transparent huge pages are ``madvise`` (the default of most
    distributions) numpy asks for 2 MB pages on every array of 4 MB or more, and the first touch of
    such a page makes the kernel zero all of it.  The scan's large arrays are touched sparsely (a
    bitmap over libtorch_cpu.so's 280 MB of code, scatter tables over its 340 k functions) and
    short-lived: ``clear_page_erms`` was 12-13 % of the CPU profile (``perf record``) of a cold
    ``--jobs 1`` run over torch/lib, and 0.08 % with 4 kB pages.  Interleaved cold runs, median of 5:
    torch/lib ``--jobs 1`` 7.23 → 6.50 s, ``--jobs 2`` 4.69 → 4.50 s, libtorch_cpu.so 3.18 → 2.79 s.
    Only the command line does this: a program that imports the library keeps its own setting."""
    if "NUMPY_MADVISE_HUGEPAGE" in os.environ:
        return  # the user's choice, which numpy applied at import
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray  # type: ignore[no-redef]
    setter = getattr(multiarray, "_set_madvise_hugepage", None)  # numpy >= 1.20, the switch its env var drives
    if setter is not None:
        setter(False)


# mallopt(3) parameters (glibc's malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_MMAP_THRESHOLD_MAX = 32 << 20  # glibc's ceiling for M_MMAP_THRESHOLD on 64-bit (HEAP_MAX_SIZE / 2)


def reused_heap() -> None:
    """Keep freed memory in glibc's heap for the next allocation instead of unmapping it, in this
    process (and the pools it forks), unless a ``MALLOC_*`` variable says otherwise.

    Why: the scan's numpy temporaries are a few MB to a few tens of MB each, made and freed by the
    hundred (the prefilter's per-range arrays, the graph's per-candidate arrays over 4.3 M branch
    candidates of libtorch_cpu.so).  glibc serves each from a fresh ``mmap`` above its threshold or
    returns the heap's free top to the kernel past its trim threshold, so every one is faulted in
    and zeroed by the kernel page by page again.  With the threshold at its ceiling and no trimming
    a cold libtorch_cpu.so run takes 18 % fewer page faults (389 k -> 320 k) and 0.13 s (5 %) less,
    interleaved runs, median of 7; the price is the heap's free blocks kept: peak RSS 933 -> 1041 MiB
    (the torch wheel's ``--jobs 2``: 756 -> 880 MiB; a 16 MB threshold: about half of both)."""
    if any(k.startswith("MALLOC_") for k in os.environ) or not sys.platform.startswith("linux"):
        return
    mallopt = c_function("mallopt")
    if mallopt is None:  # a C library without it
        return
    mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX)
    mallopt(_M_TRIM_THRESHOLD, 1 << 30)
    mallopt(_M_TOP_PAD, 16 << 20)


def main() -> None:
    small_pages()
    reused_heap()
    # SIGTERM/SIGHUP/SIGINT: temporary directories and partial outputs removed, exit 128 + signal
    sys.exit(run_guarded(run, sys.argv[1:]))
