"""``uk-depscan corpus scan|report``: many inputs into one database, one ecosystem report out.

Mounted by :mod:`uk_depscan.cli.main`; the work is done by :mod:`uk_depscan.corpus` (the scan's
client and workers, the report's views and renderers).
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from uk_depscan.cli.common import emit, exits_on_error, stderr_line
from uk_depscan.corpus.model import Platform
from uk_depscan.errors import UsageError
from uk_depscan.model import StrEnum

corpus_app = typer.Typer(
    help="A corpus of wheels in one SQLite database: scan (locally or on Dask), report.", no_args_is_help=True
)


class CorpusFormat(StrEnum):
    TEXT = "text"
    JSON = "json"
    MD = "md"
    HTML = "html"


@corpus_app.command("scan")
@exits_on_error
def cmd_scan(
    inputs: list[str] = typer.Argument(..., help="Wheels, directories, or requirement specs (with --platform)."),
    db: Path = typer.Option(..., "--db", help="The corpus database (created when absent)."),
    platform: Platform | None = typer.Option(None, "--platform", help="Platform a requirement spec is downloaded for."),
    python_version: str | None = typer.Option(
        None, "--python-version", help="Python version of a downloaded spec (default: this interpreter's)."
    ),
    find_links: list[str] = typer.Option([], "--find-links", help="pip --find-links for specs (repeatable)."),
    no_index: bool = typer.Option(False, "--no-index", help="pip --no-index for specs."),
    include: list[str] = typer.Option([], "--include", help="Only members matching GLOB (repeatable)."),
    exclude: list[str] = typer.Option([], "--exclude", help="Skip members matching GLOB (repeatable)."),
    unikraft: list[str] = typer.Option([], "--unikraft", help="Releases to assess (default: every shipped table)."),
    scheduler: str | None = typer.Option(
        None, "--scheduler", help="Dask distributed scheduler tcp://HOST:PORT (default: local processes)."
    ),
    jobs: int = typer.Option(0, "--jobs", "-j", help="Local worker processes (default: the CPU count)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress lines."),
) -> None:
    """Analyse every input not yet in the database; store each object once under its content identity."""
    from uk_depscan.corpus.scan import ScanOptions, scan

    if jobs < 0:
        raise UsageError(f"--jobs {jobs}: must be ≥ 0")
    if scheduler is not None and not scheduler.startswith(("tcp://", "tls://")):
        raise UsageError(f"--scheduler {scheduler}: expected tcp://HOST:PORT")
    opts = ScanOptions(
        tuple(include),
        tuple(exclude),
        platform,
        python_version,
        tuple(find_links),
        no_index,
        tuple(unikraft),
        scheduler,
        jobs or os.cpu_count() or 1,
    )
    summary = scan(inputs, db, opts, note=(lambda _m: None) if quiet else stderr_line)
    stderr_line(
        f"corpus: {summary.inputs} inputs, {summary.analysed} analysed, {summary.already_known} already known, "
        f"{len(summary.failed)} failed; {summary.targets_written} targets, {summary.new_objects} new objects, "
        f"{summary.releases_added} release assessments added; {summary.seconds:.1f} s"
    )
    for problem in summary.failed:
        stderr_line(f"uk-depscan: error: {problem}")
    if summary.failed:
        raise typer.Exit(2)


@corpus_app.command("report")
@exits_on_error
def cmd_report(
    db: Path = typer.Option(..., "--db", help="The corpus database."),
    unikraft: list[str] = typer.Option([], "--unikraft", help="Releases to report (default: all in the database)."),
    fmt: CorpusFormat = typer.Option(CorpusFormat.TEXT, "--format", "-f", help="Output format."),
    output: Path | None = typer.Option(None, "-o", "--output", help="Write here instead of stdout."),
) -> None:
    """The ecosystem matrix, the greedy plan over the whole corpus and the gap evolution per package."""
    from uk_depscan.corpus import render
    from uk_depscan.corpus.report import build_report

    report = build_report(db, tuple(unikraft))
    renderer = {
        CorpusFormat.TEXT: render.render_text,
        CorpusFormat.JSON: render.render_json,
        CorpusFormat.MD: render.render_markdown,
        CorpusFormat.HTML: render.render_html,
    }[fmt]
    emit(renderer(report), output, announce=True)
