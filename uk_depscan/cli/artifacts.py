"""``uk-depscan kconfig`` and ``uk-depscan scaffold``: build artifacts from an analysis.

Self-contained: the two command functions only need the shared option declarations passed in by
:func:`register` and the :func:`emit`/:func:`write_files` helpers here, so they can be re-wired
onto another typer app when the CLI is restructured.  Each accepts ELF files, directories and
wheels (analysed as ``scan`` does, for one route) or a saved ``--format json`` report.
"""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from uk_depscan.cli.common import stderr_line
from uk_depscan.errors import UsageError

if TYPE_CHECKING:
    from uk_depscan.artifacts.plan import ArtifactPlan
    from uk_depscan.unikraft.tables import UnikraftTable

EXIT_OK = 0


class ArtifactRoute(str, Enum):
    binary_compat = "binary-compat"
    native = "native"


class LibcChoice(str, Enum):
    auto = "auto"
    glibc = "glibc"
    musl = "musl"


TargetsArg = typer.Argument(
    ..., help="ELF files, directories, wheels, or one saved `--format json` report.", show_default=False
)
RouteOpt = typer.Option(
    ArtifactRoute.binary_compat, "--route", help="binary-compat (app-elfloader) or native (lib-musl rebuild)."
)
UnikraftOpt = typer.Option(None, "--unikraft", help="Unikraft release table (default: newest shipped).")
UnikraftTableOpt = typer.Option(None, "--unikraft-table", help="A Unikraft support table of your own.")
LibcOpt = typer.Option(None, "--libc", help="libc model for the analysis (default: musl for native, else auto).")
TracebackOpt = typer.Option(False, "--traceback", help="Show the Python traceback on errors.")


def _report_doc(
    targets: list[str], route: ArtifactRoute, unikraft: str | None, table: Path | None, libc: LibcChoice | None
) -> dict[str, Any]:
    """The report as its JSON document: a saved one, or a fresh analysis for ``route``."""
    if len(targets) == 1 and targets[0].endswith(".json"):
        try:
            doc = json.loads(Path(targets[0]).read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise UsageError(f"{targets[0]}: not a readable uk-depscan JSON report: {err}") from err
        if not isinstance(doc, dict):
            raise UsageError(f"{targets[0]}: not a uk-depscan JSON report")
        return doc
    from uk_depscan.model import LibcModel, Route
    from uk_depscan.pipeline import Options, analyze
    from uk_depscan.report.json_report import report_to_dict

    model = LibcModel(libc.value) if libc else (LibcModel.MUSL if route is ArtifactRoute.native else LibcModel.AUTO)
    options = Options(
        libc_model=model, unikraft=unikraft, unikraft_table=str(table) if table else None, route=Route(route.value)
    )
    return report_to_dict(analyze(targets, options=options))


def _inputs(
    targets: list[str], route: ArtifactRoute, unikraft: str | None, table_path: Path | None, libc: LibcChoice | None
) -> tuple[ArtifactPlan, UnikraftTable]:
    from uk_depscan.artifacts.plan import build_plan
    from uk_depscan.model import Route
    from uk_depscan.unikraft.tables import load_unikraft_table

    doc = _report_doc(targets, route, unikraft, table_path, libc)
    release = unikraft or (doc.get("unikraft") or {}).get("release") if table_path is None else None
    table = load_unikraft_table(release, table_path)
    plan = build_plan(doc, Route(route.value), table)
    return plan, table


def kconfig_cmd(
    targets: list[str] = TargetsArg,
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write DIR/kconfig.fragment and DIR/Kraftfile (default: print to stdout)."
    ),
    kraftfile: bool = typer.Option(False, "--kraftfile", help="Print the Kraftfile instead of the .config fragment."),
    rootfs: str = typer.Option("./rootfs", "--rootfs", help="Root filesystem path for the Kraftfile (binary-compat)."),
    name: str | None = typer.Option(None, "--name", help="Application name in the Kraftfile."),
    route: ArtifactRoute = RouteOpt,
    unikraft: str | None = UnikraftOpt,
    unikraft_table: Path | None = UnikraftTableOpt,
    libc: LibcChoice | None = LibcOpt,
    traceback: bool = TracebackOpt,
) -> int:
    """Kconfig lines the plan needs: a .config fragment and a Kraftfile (spec v0.6), each option commented
    with the syscalls it is for."""
    from uk_depscan.artifacts.closure import active_options, resolve_kconfig
    from uk_depscan.artifacts.kconfig import boot_notes, render_kconfig
    from uk_depscan.unikraft.tables import load_libmusl_symbols

    plan, table = _inputs(targets, route, unikraft, unikraft_table, libc)
    resolution = resolve_kconfig(table, plan.options, plan.route)
    libmusl = None
    if route is ArtifactRoute.native:
        musl = load_libmusl_symbols(table.release)
        libmusl = musl.libmusl_commit
    boot = boot_notes(plan, active_options(table, resolution, plan.route))
    art = render_kconfig(plan, resolution, rootfs=rootfs, name=name, libmusl=libmusl, boot=boot)
    if output is not None:
        write_files(output, {"kconfig.fragment": art.fragment, "Kraftfile": art.kraftfile}, force=True)
        stderr_line(f"uk-depscan: wrote {output}/kconfig.fragment and {output}/Kraftfile")
    else:
        emit(art.kraftfile if kraftfile else art.fragment)
    if not resolution.closed:
        stderr_line(f"uk-depscan: note: {resolution.statement}")
    unverified = [o.option for o in resolution.options if o.unverified]
    if unverified:
        stderr_line(
            f"uk-depscan: note: unverified for Unikraft {plan.release}: {', '.join(unverified)} "
            "(a provider of another release; see the UNVERIFIED lines)"
        )
    for n in boot:
        stderr_line(f"uk-depscan: note: {n.option} can stop the boot on {plan.unikraft_arch}: see the BOOT lines")
    return EXIT_OK


def scaffold_cmd(
    targets: list[str] = TargetsArg,
    output: Path = typer.Option(..., "--output", "-o", help="Directory of the generated library (created)."),
    name: str | None = typer.Option(None, "--name", help="Library name (default depscan_<target>)."),
    force: bool = typer.Option(False, "--force", help="Overwrite files already in the output directory."),
    route: ArtifactRoute = RouteOpt,
    unikraft: str | None = UnikraftOpt,
    unikraft_table: Path | None = UnikraftTableOpt,
    libc: LibcChoice | None = LibcOpt,
    traceback: bool = TracebackOpt,
) -> int:
    """A Unikraft external library registering every syscall the plan stubs, fakes, implements or investigates."""
    from uk_depscan.artifacts.argtable import load_arg_table
    from uk_depscan.artifacts.closure import active_options, resolve_kconfig
    from uk_depscan.artifacts.scaffold import build_scaffold
    from uk_depscan.artifacts.shim import load_shim_facts

    plan, table = _inputs(targets, route, unikraft, unikraft_table, libc)
    shim = load_shim_facts(table.release, unikraft_table)
    # The library joins the build `kconfig` describes: what that build registers is left to it.
    active = active_options(table, resolve_kconfig(table, plan.options, plan.route), plan.route)
    sc = build_scaffold(plan, table, load_arg_table(), shim, name=name, active=active)
    write_files(output, sc.files, force=force)
    kinds = ("stub", "fake", "implement", "investigate")
    by_action = {a: sum(1 for e in sc.entries if e.work.action.value == a) for a in kinds}
    stderr_line(
        f"uk-depscan: wrote lib{sc.library} to {output}: {len(sc.entries)} syscalls "
        f"({', '.join(f'{by_action[a]} {a}' for a in kinds)}), {len(sc.skipped)} skipped (README.md)"
    )
    return EXIT_OK


def emit(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def write_files(directory: Path, contents: dict[str, str], *, force: bool) -> None:
    """Write generated files; refuses to replace existing ones unless ``force``."""
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"{directory}: exists and is not a directory")
    clash = sorted(n for n in contents if (directory / n).exists())
    if clash and not force:
        raise UsageError(f"{directory}: would overwrite {', '.join(clash)} (use --force)")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for fname, text in sorted(contents.items()):
            (directory / fname).write_text(text, encoding="utf-8")
    except OSError as err:
        raise UsageError(f"{directory}: cannot write: {err.strerror or err}") from err


def register(app: typer.Typer) -> None:
    """Mount both commands on ``app`` (idempotent: ``run()`` is called many times in one process)."""
    names = {c.name for c in app.registered_commands}
    if "kconfig" not in names:
        app.command("kconfig")(kconfig_cmd)
    if "scaffold" not in names:
        app.command("scaffold")(scaffold_cmd)
