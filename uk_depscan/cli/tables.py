"""``uk-depscan tables ...``: generate, list and show the Unikraft support tables.

Mounted by :mod:`uk_depscan.cli.main` with ``app.add_typer(tables_app, name="tables")``.  This is
CLI layer: it may print (through :func:`~uk_depscan.cli.common.emit`; errors propagate to
:func:`~uk_depscan.cli.main.run`); the work is done by :mod:`uk_depscan.tablegen.unikraft`,
:mod:`uk_depscan.tablegen.libmusl` and :mod:`uk_depscan.unikraft.tables`.
"""

from __future__ import annotations

from pathlib import Path

import typer

from uk_depscan.cli.common import NotFoundError, emit, exits_on_error, stderr_line
from uk_depscan.cli.usage import syscall_name
from uk_depscan.errors import DepscanError, UsageError
from uk_depscan.model import Arch
from uk_depscan.report.escape import for_terminal
from uk_depscan.tablegen.libmusl import build_libmusl_table
from uk_depscan.tablegen.unikraft import SourceTree, build_loupe_doc, build_table, dump_json
from uk_depscan.unikraft import tables as uk

tables_app = typer.Typer(help="Unikraft syscall / lib-musl support tables.", no_args_is_help=True)


def _open(spec: str, ref: str | None = None) -> SourceTree:
    """``PATH`` or ``PATH@REF`` (``ref`` wins when given)."""
    path, _, at = spec.rpartition("@") if "@" in spec and not Path(spec).exists() else (spec, "", "")
    return SourceTree.open(Path(path), ref or at or None)


def _placeholder(name: str, tree: SourceTree) -> str:
    """``<name>@REF`` for the recorded command (local paths would make the output machine-dependent)."""
    return f"<{name}>@{tree.ref}" if tree.ref else f"<{name}>"


@tables_app.command("unikraft")
@exits_on_error
def cmd_unikraft(
    src: Path = typer.Option(..., "--src", help="Unikraft work tree, or git dir (with --ref)."),
    ref: str | None = typer.Option(None, "--ref", help="Tag/commit to read from a git dir."),
    elfloader: str | None = typer.Option(None, "--elfloader", help="app-elfloader tree: PATH[@REF]."),
    libmusl: str | None = typer.Option(
        None, "--libmusl", help="lib-musl tree: PATH[@REF] (an external library in the Kconfig evaluation)."
    ),
    release: str | None = typer.Option(None, "--release", help="Release label (default: from the ref)."),
    previous: Path | None = typer.Option(
        None, "--previous-table", help="Table of an older release: derive option renames against it."
    ),
    kconfig: bool | None = typer.Option(
        None,
        "--kconfig/--no-kconfig",
        help="Evaluate Kconfig with kconfiglib (default: when installed, pip install 'uk-depscan[tablegen]').",
    ),
    output: Path | None = typer.Option(None, "-o", "--output", help="Write here instead of stdout."),
) -> None:
    """Generate a syscall support table from a Unikraft checkout."""
    cmd = ["uk-depscan tables unikraft --src <unikraft>"] + ([f"--ref {ref}"] if ref else [])
    tree = SourceTree.open(src, ref)
    extras, libs = [], []
    if elfloader:
        el = _open(elfloader)
        extras.append(("app-elfloader", el))
        cmd.append(f"--elfloader {_placeholder('app-elfloader', el)}")
    if libmusl:
        lm = _open(libmusl)
        libs.append(("lib-musl", lm))
        cmd.append(f"--libmusl {_placeholder('lib-musl', lm)}")
    if release:
        cmd.append(f"--release {release}")
    prev = None
    if previous is not None:
        prev = uk.read_table_doc(previous)
        cmd.append(f"--previous-table syscall_tables/unikraft/{prev['release']}.json")
    if kconfig is not None:
        cmd.append("--kconfig" if kconfig else "--no-kconfig")
    doc = build_table(
        tree, release=release, extras=extras, libs=libs, command=" ".join(cmd), kconfig=kconfig, previous=prev
    )
    emit(dump_json(doc), output, announce=True)


@tables_app.command("libmusl")
@exits_on_error
def cmd_libmusl(
    libmusl: str = typer.Option(..., "--libmusl", help="lib-musl tree: PATH[@REF]."),
    musl: str = typer.Option(..., "--musl", help="musl sources of the pinned version: PATH[@REF]."),
    unikraft: str | None = typer.Option(None, "--unikraft", help="Unikraft core tree: PATH[@REF]."),
    release: str = typer.Option(..., "--release", help="Unikraft release label."),
    arch: str = typer.Option("x86_64", "--arch"),
    define: list[str] = typer.Option([], "--define", help="Override a config value: CONFIG_X=y."),
    output: Path | None = typer.Option(None, "-o", "--output"),
) -> None:
    """Generate the lib-musl availability table (symbols a default lib-musl build provides)."""
    lm, mu = _open(libmusl), _open(musl)
    core = _open(unikraft) if unikraft else None
    defines = _parse_defines(define)
    cmd = (
        f"uk-depscan tables libmusl --libmusl {_placeholder('lib-musl', lm)} --musl {_placeholder('musl', mu)}"
        + (f" --unikraft {_placeholder('unikraft', core)}" if core else "")
        + f" --release {release}"
        + (f" --arch {arch}" if arch != "x86_64" else "")
        + "".join(f" --define {k}={v}" for k, v in sorted(defines.items()))
    )
    doc = build_libmusl_table(lm, mu, core, release=release, arch=arch, defines=defines, command=cmd)
    emit(dump_json(doc), output, announce=True)


@tables_app.command("pseudofiles")
@exits_on_error
def cmd_pseudofiles(
    src: Path = typer.Option(..., "--src", help="Unikraft work tree, or git dir (with --ref)."),
    ref: str | None = typer.Option(None, "--ref", help="Tag/commit to read from a git dir."),
    elfloader: str | None = typer.Option(None, "--elfloader", help="app-elfloader tree: PATH[@REF]."),
    release: str = typer.Option(..., "--release", help="Release label."),
    output: Path | None = typer.Option(None, "-o", "--output"),
) -> None:
    """Generate the pseudo-file table (/dev, /proc, /sys entries a release provides, and under which options)."""
    from uk_depscan.tablegen.pseudofiles import build_pseudofile_table

    tree = SourceTree.open(src, ref)
    cmd = ["uk-depscan tables pseudofiles --src <unikraft>"] + ([f"--ref {ref}"] if ref else [])
    extras = []
    if elfloader:
        el = _open(elfloader)
        extras.append(("app-elfloader", el))
        cmd.append(f"--elfloader {_placeholder('app-elfloader', el)}")
    cmd.append(f"--release {release}")
    doc = build_pseudofile_table(tree, release=release, extras=extras, command=" ".join(cmd))
    emit(dump_json(doc), output, announce=True)


def _parse_defines(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, eq, val = item.partition("=")
        if not eq or not key.startswith("CONFIG_"):
            raise UsageError(f"--define {item!r}: expected CONFIG_NAME=value")
        out[key] = val
    return out


@tables_app.command("loupe")
@exits_on_error
def cmd_loupe(
    csv_path: Path = typer.Option(..., "--csv", help="loupedb-syscall-priors.csv"),
    output: Path | None = typer.Option(None, "-o", "--output"),
) -> None:
    """Convert the Loupe priors CSV (CC BY 4.0) to the shipped JSON."""
    try:
        text = csv_path.read_text(encoding="utf-8")
    except OSError as err:
        raise DepscanError(f"{str(csv_path)!r}: {err.strerror}") from err
    emit(dump_json(build_loupe_doc(text, source=csv_path.name)), output, announce=True)


@tables_app.command("summaries")
@exits_on_error
def cmd_summaries(
    model: str = typer.Option("glibc", "--model", help="glibc (Debian 12) or musl (1.2.3)"),
    arch: str = typer.Option("x86_64", "--arch", help="x86_64 or aarch64 (arm64 needs dpkg multiarch)"),
    workdir: Path | None = typer.Option(None, "--workdir", help="Keep downloaded .debs here"),
    output: Path | None = typer.Option(None, "-o", "--output", help="e.g. syscall_tables/summaries/MODEL-ARCH.json"),
) -> None:
    """Generate the shipped libc-family syscall summaries from Debian packages (apt-get download)."""
    from uk_depscan.tablegen.summaries import generate

    text = generate(model, arch, workdir, progress=stderr_line)
    emit(text, output, announce=True)


@tables_app.command("list")
@exits_on_error
def cmd_list() -> None:
    """List the shipped tables with their provenance."""
    infos = uk.list_unikraft_tables() + uk.list_libmusl_tables()
    lines = [
        f"{i.kind:9} {i.release:10} commit {i.commit or '-':12.12} {i.file}  ({i.generator}) {i.summary}" for i in infos
    ]
    prior = uk.loupe_provenance()
    lines.append(f"loupe     priors     {prior['file']}  ({prior['license']}; {prior['source']})")
    emit(_text(lines), None)


def _text(lines: list[str]) -> str:
    """Lines for the terminal: a table may be one a user generated from any source tree."""
    return "".join(f"{for_terminal(line)}\n" for line in lines)


@tables_app.command("show")
@exits_on_error
def cmd_show(
    version: str = typer.Argument(..., help="Release, e.g. 0.17.0 or staging."),
    syscall: str | None = typer.Argument(None, help="Show one syscall in detail: a name or a number."),
    arch: Arch = typer.Option(Arch.X86_64, "--arch", help="Architecture a syscall number is given in."),
) -> None:
    """Show one shipped table (summary), or one syscall's row."""
    table = uk.load_unikraft_table(version)
    head = f"Unikraft {table.release} (commit {table.commit}) from {table.source}; generator {table.generator}"
    if syscall is None:
        emit(_text([head]), None)
        emit(_summary(table), None)
        return
    try:
        name = syscall_name(syscall, arch.value)
    except UsageError:
        if table.get(syscall) is None:
            raise
        name = syscall  # a name only the Unikraft table knows (an alias)
    s = table.get(name)
    emit(_text([head]), None)
    if s is None:  # a Linux syscall the release does not register: a miss, like grep's
        raise NotFoundError(f"{name!r} is not in the Unikraft {table.release} table")
    emit(_row(s, table), None)


def _summary(table: uk.UnikraftTable) -> str:
    c = table.counts
    lines = [
        f"registered {c['registered']}  implemented {c['implemented']} (full {c['implemented_full']}/"
        f"partial {c['implemented_partial']}/constant {c['implemented_constant']})  stub {c['stub']}  "
        f"absent {c['absent']}"
    ]
    lines += [
        f"  route {route:13} " + "  ".join(f"{k} {v}" for k, v in by.items())
        for route, by in sorted(c.get("routes", {}).items())
    ]
    if table.kconfig is None:
        lines.append("  kconfig: not evaluated (table generated without kconfiglib)")
    else:
        lines.append(f"  kconfig: evaluated with {table.kconfig.evaluator} ({table.kconfig.arch})")
    lines += [f"  renamed option: {old} -> {', '.join(new)}" for old, new in sorted(table.option_renames.items())]
    for name, s in sorted(table.syscalls.items()):
        extra = [
            f"{route}: {r.status}" + (f" ({r.note})" if r.note else f" via {r.source}")
            for route, r in sorted(s.routes.items())
            if r.status != s.status or r.source not in ("core", None)
        ]
        if s.status != "absent" or s.external_status:
            lines.append(
                f"  {name:24} {s.status:12} {s.detail:28} {s.library or '-'}"
                + (f"  [{'; '.join(extra)}]" if extra else "")
                + (f"  [external: {s.external_status}]" if s.external_status and not extra else "")
            )
    return _text(lines)


def _row(s: uk.SyscallSupport, table: uk.UnikraftTable) -> str:
    numbers = ((Arch.X86_64, s.x86_64_nr), (Arch.AARCH64, s.arm64_nr))  # the table keeps Unikraft's "arm64"
    nrs = ", ".join(f"{arch} nr {'-' if nr is None else nr}" for arch, nr in numbers)
    lines = [f"{s.name}: {s.status} / {s.detail} (behavior {s.behavior}); {nrs}"]
    lines += [f"  {key}: {getattr(s, key)}" for key in _ROW_FIELDS if getattr(s, key)]
    lines += [f"  condition: {c}" for c in s.extra_conditions]
    for route, r in sorted(s.routes.items()):
        where = f" via {r.library} ({r.kconfig or 'always'})" if r.library else ""
        lines.append(f"  route {route}: {r.status} / {r.detail}{where}" + (f" -- {r.note}" if r.note else ""))
    for p in s.providers:
        lines.append(
            f"  provider {p.library} ({p.registration}, {p.kconfig or 'always'}): {p.status}/{p.detail}"
            f" at {p.defined_at}"
            + (" [external]" if p.external else "")
            + f" routes {','.join(p.routes)}"
            + (f" [{p.note}]" if p.note else "")
        )
        lines += _closure_lines(p.requires, table)
    return _text(lines)


def _closure_lines(requires: str | None, table: uk.UnikraftTable) -> list[str]:
    if not requires or table.kconfig is None:
        return []
    return [
        f"    {route}: needs {requires}; closure y: {', '.join(c.y) or '-'}"
        + (f"; must stay n: {', '.join(c.n)}" if c.n else "")
        + (f"; drags in: {', '.join(c.drags_in)}" if c.drags_in else "")
        + (f"; turns off: {', '.join(c.turns_off)}" if c.turns_off else "")
        + ("" if c.verified else "; NOT verified by kconfiglib")
        for route, c in sorted(table.kconfig.requirements.get(requires, {}).items())
    ]


_ROW_FIELDS = ("library", "kconfig", "provided_at", "defined_at", "external_status")
