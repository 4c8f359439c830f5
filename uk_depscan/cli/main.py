"""The ``uk-depscan`` command line.  The only module that talks to the terminal.

Exit codes: 0 no gaps, 1 gaps found (missing libraries, unresolved imports, unsupported
syscalls), 2 bad input or usage, 3 internal error.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path

import typer

from uk_depscan import __version__
from uk_depscan.errors import DepscanError, UsageError
from uk_depscan.loader.paths import SearchConfig
from uk_depscan.model import Report

EXIT_OK, EXIT_GAPS, EXIT_INPUT, EXIT_INTERNAL = 0, 1, 2, 3
# typer ≥ 0.25 vendors its own click (no `click` package is installed); older typer re-exports
# click's classes.  Either way typer's BadParameter derives from the ClickException in use.
_USAGE_ERRORS = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
SUBCOMMANDS = {"scan", "deps", "tables", "explain", "graph", "diff", "kconfig", "scaffold"}

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="What must Unikraft provide for this ELF to work?  Reads ELF files, directories "
    "and wheels without executing them.",
)


class Format(str, Enum):
    text = "text"
    json = "json"
    md = "md"
    html = "html"
    dot = "dot"


class FailOn(str, Enum):
    absent = "absent"
    stub = "stub"
    any = "any"
    never = "never"


class LibcModel(str, Enum):
    auto = "auto"
    glibc = "glibc"
    musl = "musl"


LibcOpt = typer.Option(
    LibcModel.auto,
    "--libc",
    help="libc model: auto (libraries on disk, shipped glibc tables for missing ones), "
    "glibc (shipped Debian 12 glibc 2.36 tables), musl (shipped musl 1.2.3, native route).",
)
EntryOpt = typer.Option(
    None,
    "--entry",
    help="Only what these exported functions reach (glob on mangled or "
    "demangled names; repeatable). Constructors are always included.",
)
NoScanCacheOpt = typer.Option(False, "--no-cache", help="Do not read or write the per-library scan cache.")
UnikraftOpt = typer.Option(
    None,
    "--unikraft",
    help="Unikraft release table to compare against (default: newest shipped; see `uk-depscan tables list`).",
)
UnikraftTableOpt = typer.Option(
    None, "--unikraft-table", help="A Unikraft support table of your own (`uk-depscan tables unikraft --src ...`)."
)


class Route(str, Enum):
    both = "both"
    binary_compat = "binary-compat"
    native = "native"


RouteOpt = typer.Option(
    Route.both,
    "--route",
    help="binary-compat (app-elfloader runs the Linux ELF with glibc), "
    "native (rebuilt against lib-musl), or both side by side.",
)
FailOnOpt = typer.Option(FailOn.any, "--fail-on", help="Which gaps make the exit code 1 (CI gating).")
TargetsArg = typer.Argument(..., help="ELF files, directories or wheels.", show_default=False)
FormatOpt = typer.Option(Format.text, "--format", "-f", help="Output format.")
OutputOpt = typer.Option(None, "--output", "-o", help="Write the report here (opened only after success).")
RootOpt = typer.Option("/", "--root", help="Sysroot: resolve absolute search paths inside DIR.")
LibPathOpt = typer.Option(
    None, "--library-path", "-L", help="Directories searched like LD_LIBRARY_PATH (repeatable, or colon-separated)."
)
ConfOpt = typer.Option(None, "--ld-so-conf", help="Use this ld.so.conf (with includes) instead of ld.so.cache.")
NoCacheOpt = typer.Option(False, "--no-ld-cache", help="Ignore ROOT/etc/ld.so.cache; read ld.so.conf instead.")
VerboseOpt = typer.Option(0, "--verbose", "-v", count=True, help="More detail (rejected candidates, all symbols).")
QuietOpt = typer.Option(False, "--quiet", "-q", help="No summary on stderr.")
TracebackOpt = typer.Option(False, "--traceback", help="Show the Python traceback on errors.")


def _search_config(
    root: str, library_path: list[str] | None, ld_so_conf: Path | None, no_ld_cache: bool
) -> SearchConfig:
    if not os.path.isdir(root):
        raise UsageError(f"--root {root}: not a directory")
    dirs = tuple(d for entry in (library_path or []) for d in entry.split(":") if d)
    return SearchConfig(
        root=root, library_path=dirs, ld_so_conf=str(ld_so_conf) if ld_so_conf else None, use_cache=not no_ld_cache
    )


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as err:
        raise UsageError(f"{output}: cannot write: {err.strerror or err}") from err


def _render(report: Report, fmt: Format, output: Path | None, verbose: int, text_renderer: Callable[..., str]) -> None:
    if fmt is Format.json:
        from uk_depscan.report.json_report import render_json

        _emit(render_json(report), output)
        return
    if fmt is Format.md:
        from uk_depscan.report.markdown import render_markdown

        _emit(render_markdown(report), output)
        return
    if fmt is Format.html:
        from uk_depscan.report.html import render_html

        _emit(render_html(report), output)
        return
    if fmt is Format.dot:
        from uk_depscan.report.graph import build_graph, to_dot

        _emit(to_dot(build_graph(report)), output)
        return
    color = output is None and sys.stdout.isatty()
    _emit(text_renderer(report, color=color, verbose=bool(verbose)), output)


@contextmanager
def _progress(quiet: bool) -> Iterator[Callable[[str], None]]:
    """A spinner with the current step on stderr, only for a terminal and without --quiet."""
    if quiet or not sys.stderr.isatty():
        yield lambda _msg: None
        return
    from rich.console import Console
    from rich.markup import escape

    from uk_depscan.report.escape import for_terminal

    with Console(stderr=True).status("uk-depscan: starting") as status:
        yield lambda msg: status.update(f"uk-depscan: {escape(for_terminal(msg))}")


def _stderr_summary(report: Report, quiet: bool) -> None:
    if quiet:
        return
    for t in report.targets:
        gaps = f", {len(t.actionable_gaps)} Unikraft gaps to act on" if t.syscalls is not None else ""
        sys.stderr.write(
            f"uk-depscan: {t.target}: {len(t.tree.objects) - 1} libraries, "
            f"{len(t.tree.missing)} missing, {len(t.unresolved)} unresolved imports{gaps}\n"
        )


@app.command("scan")
def scan_cmd(
    targets: list[str] = TargetsArg,
    fmt: Format = FormatOpt,
    output: Path | None = OutputOpt,
    root: str = RootOpt,
    library_path: list[str] | None = LibPathOpt,
    ld_so_conf: Path | None = ConfOpt,
    no_ld_cache: bool = NoCacheOpt,
    verbose: int = VerboseOpt,
    quiet: bool = QuietOpt,
    traceback: bool = TracebackOpt,
    libc: LibcModel = LibcOpt,
    entry: list[str] | None = EntryOpt,
    no_cache: bool = NoScanCacheOpt,
    unikraft: str | None = UnikraftOpt,
    unikraft_table: Path | None = UnikraftTableOpt,
    fail_on: FailOn = FailOnOpt,
    route: Route = RouteOpt,
) -> int:
    """Summary of each target: loader facts, imports, reachable syscalls with evidence (default command)."""
    from uk_depscan.pipeline import Options, analyze
    from uk_depscan.report.text import render_summary

    options = Options(
        libc_model=libc.value,
        entries=tuple(entry or ()),
        no_cache=no_cache,
        unikraft=unikraft,
        unikraft_table=str(unikraft_table) if unikraft_table else None,
        route=route.value,
    )
    with _progress(quiet) as note:
        report = analyze(
            targets,
            _search_config(root, library_path, ld_so_conf, no_ld_cache),
            command="scan",
            options=options,
            progress=note,
        )
    _render(report, fmt, output, verbose, render_summary)
    if fmt is not Format.text or output is not None:
        _stderr_summary(report, quiet)
    return exit_code(report, fail_on)


def exit_code(report: Report, fail_on: FailOn) -> int:
    """--fail-on: any (default: every actionable gap, missing library or unresolved import),
    absent (only absent syscalls and missing libraries), stub (absent or stub), never."""
    if fail_on is FailOn.never:
        return EXIT_OK
    if fail_on is FailOn.any:
        return EXIT_GAPS if report.has_gaps else EXIT_OK
    statuses = {"absent"} if fail_on is FailOn.absent else {"absent", "stub"}
    bad = any(t.tree.missing or any(g.status in statuses and g.tier != "P3" for g in t.gaps) for t in report.targets)
    return EXIT_GAPS if bad else EXIT_OK


@app.command("deps")
def deps_cmd(
    targets: list[str] = TargetsArg,
    fmt: Format = FormatOpt,
    output: Path | None = OutputOpt,
    root: str = RootOpt,
    library_path: list[str] | None = LibPathOpt,
    ld_so_conf: Path | None = ConfOpt,
    no_ld_cache: bool = NoCacheOpt,
    verbose: int = VerboseOpt,
    quiet: bool = QuietOpt,
    traceback: bool = TracebackOpt,
) -> int:
    """Dependency tree, libtree-style: how each library was found, or every path tried."""
    from uk_depscan.pipeline import Options, analyze
    from uk_depscan.report.text import render_deps

    report = analyze(
        targets,
        _search_config(root, library_path, ld_so_conf, no_ld_cache),
        command="deps",
        options=Options(symbols=False, syscalls=False),
    )
    _render(report, fmt, output, verbose, render_deps)
    return EXIT_GAPS if any(t.tree.missing for t in report.targets) else EXIT_OK


@app.command("explain")
def explain_cmd(
    target: str = typer.Argument(..., help="ELF file, directory or wheel."),
    query: str = typer.Argument(..., help="Syscall name or number, or an imported symbol."),
    root: str = RootOpt,
    library_path: list[str] | None = LibPathOpt,
    ld_so_conf: Path | None = ConfOpt,
    no_ld_cache: bool = NoCacheOpt,
    libc: LibcModel = LibcOpt,
    entry: list[str] | None = EntryOpt,
    unikraft: str | None = UnikraftOpt,
    unikraft_table: Path | None = UnikraftTableOpt,
    traceback: bool = TracebackOpt,
) -> int:
    """Shortest evidence chains: target function -> import@version -> provider -> syscall site."""
    from uk_depscan.pipeline import Options, analyze
    from uk_depscan.report.text import render_explain

    options = Options(
        libc_model=libc.value,
        entries=tuple(entry or ()),
        unikraft=unikraft,
        unikraft_table=str(unikraft_table) if unikraft_table else None,
    )
    report = analyze(
        [target], _search_config(root, library_path, ld_so_conf, no_ld_cache), command="scan", options=options
    )
    _emit(render_explain(report, query, color=sys.stdout.isatty()), None)
    return EXIT_OK


class GraphFormat(str, Enum):
    graphml = "graphml"
    json = "json"
    dot = "dot"


@app.command("graph")
def graph_cmd(
    targets: list[str] = TargetsArg,
    fmt: GraphFormat = typer.Option(
        GraphFormat.dot, "--format", "-f", help="graphml, json or dot (dot is the collapsed view)."
    ),
    output: Path | None = OutputOpt,
    root: str = RootOpt,
    library_path: list[str] | None = LibPathOpt,
    ld_so_conf: Path | None = ConfOpt,
    no_ld_cache: bool = NoCacheOpt,
    libc: LibcModel = LibcOpt,
    unikraft: str | None = UnikraftOpt,
    traceback: bool = TracebackOpt,
) -> int:
    """The dependency/syscall graph: libraries, imports, syscalls, Unikraft libraries and Kconfig options."""
    from uk_depscan.pipeline import Options, analyze
    from uk_depscan.report.graph import build_graph, to_dot, to_graphml, to_json

    report = analyze(
        targets,
        _search_config(root, library_path, ld_so_conf, no_ld_cache),
        command="scan",
        options=Options(libc_model=libc.value, unikraft=unikraft),
    )
    g = build_graph(report)
    _emit({GraphFormat.graphml: to_graphml, GraphFormat.json: to_json, GraphFormat.dot: to_dot}[fmt](g), output)
    return EXIT_OK


@app.command("diff")
def diff_cmd(
    old: str = typer.Argument(..., help="Old: a saved --format json report, or a binary/wheel to analyse."),
    new: str = typer.Argument(..., help="New: likewise."),
    fmt: Format = FormatOpt,
    output: Path | None = OutputOpt,
    libc: LibcModel = LibcOpt,
    unikraft: str | None = UnikraftOpt,
    traceback: bool = TracebackOpt,
) -> int:
    """What a new version adds or removes: libraries, symbol versions, syscalls, Unikraft gaps.
    Exit code 1 when the new side has gaps (P0-P2) the old one did not."""
    from uk_depscan.report.diff import diff_reports, render_diff_json, render_diff_markdown, render_diff_text

    d = diff_reports(_report_doc(old, libc, unikraft), _report_doc(new, libc, unikraft), old, new)
    render = {Format.json: render_diff_json, Format.md: render_diff_markdown}.get(fmt, render_diff_text)
    _emit(render(d), output)
    return EXIT_GAPS if d.new_gaps else EXIT_OK


def _report_doc(arg: str, libc: LibcModel, unikraft: str | None) -> dict:  # type: ignore[type-arg]
    """A saved JSON report as is, or a fresh analysis of a binary in its JSON form."""
    import json

    from uk_depscan.pipeline import Options, analyze
    from uk_depscan.report.json_report import report_to_dict

    if arg.endswith(".json"):
        try:
            doc = json.loads(Path(arg).read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise UsageError(f"{arg}: not a readable uk-depscan JSON report: {err}") from err
        if not isinstance(doc, dict) or doc.get("schema_version") != 1 or "targets" not in doc:
            raise UsageError(f"{arg}: not a uk-depscan JSON report (schema_version 1)")
        return doc
    return report_to_dict(analyze([arg], options=Options(libc_model=libc.value, unikraft=unikraft)))


def _mount_optional_apps() -> None:
    from uk_depscan.cli.artifacts import register as register_artifacts

    register_artifacts(app)  # kconfig, scaffold (self-contained; idempotent)
    # run() is called many times in one process (tests, fuzzing): mounting again on every call
    # would grow app.registered_groups and make each run slower and larger than the last.
    if any(g.name == "tables" for g in app.registered_groups):
        return
    try:
        from uk_depscan.cli.tables import tables_app
    except ImportError:  # pragma: no cover - only while the module is absent
        return
    app.add_typer(tables_app, name="tables", help="Unikraft and Linux syscall tables: list, show, generate.")


def route(argv: list[str]) -> list[str]:
    """``uk-depscan TARGET...`` means ``uk-depscan scan TARGET...``."""
    if not argv or argv[0] in SUBCOMMANDS or argv[0] in ("--help", "-h", "--version"):
        return argv
    return ["scan", *argv]


def run(argv: list[str]) -> int:
    """Run the CLI on ``argv`` and return the exit code (used by tests in-process)."""
    if argv[:1] == ["--version"]:
        sys.stdout.write(f"uk-depscan {__version__}\n")
        return EXIT_OK
    show_tb = "--traceback" in argv
    logging.basicConfig(
        level=logging.DEBUG if argv.count("-v") > 1 or "-vv" in argv else logging.WARNING,
        format="uk-depscan: %(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    _mount_optional_apps()
    try:
        rv = typer.main.get_command(app).main(args=route(argv), prog_name="uk-depscan", standalone_mode=False)
        return int(rv) if isinstance(rv, int) else EXIT_OK
    except typer.Exit as ex:
        return int(ex.exit_code)
    except typer.Abort:
        sys.stderr.write("uk-depscan: aborted\n")
        return EXIT_INPUT
    except _USAGE_ERRORS as ex:
        ex.show(file=sys.stderr)
        return EXIT_INPUT
    except DepscanError as err:
        if show_tb:
            raise
        sys.stderr.write(f"uk-depscan: error: {err}\n")
        return err.exit_code
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as err:
        if show_tb:
            raise
        sys.stderr.write(f"uk-depscan: internal error: {type(err).__name__}: {err} (rerun with --traceback)\n")
        return EXIT_INTERNAL


def main() -> None:
    sys.exit(run(sys.argv[1:]))
