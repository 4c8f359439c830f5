"""``uk-depscan rootfs``: the root filesystem a binary-compatible unikernel needs.

Mounted by :func:`register` (from :mod:`uk_depscan.cli.main`), like the artifact commands.  The work
is :func:`uk_depscan.rootfs.build.build_rootfs`; this module parses options, writes the manifests
and chooses the exit code.
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path

import typer

from uk_depscan.artifacts.kconfig import DEFAULT_ROOTFS
from uk_depscan.cli.common import EXIT_GAPS, EXIT_OK, CommonOptions, command, emit
from uk_depscan.errors import UsageError

SHARED = ("root", "library_path", "ld_so_conf", "no_ld_cache", "unikraft", "verbose", "quiet", "traceback")


class ManifestFormat(str, Enum):
    text = "text"
    json = "json"


def rootfs_cmd(
    targets: list[str] = typer.Argument(..., help="ELF files, directories or wheels.", show_default=False),
    output: Path = typer.Option(
        Path(DEFAULT_ROOTFS),
        "--output",
        "-o",
        help="Directory to create, or FILE.cpio (newc archive). Manifests go beside it: OUT.manifest.{json,txt}.",
    ),
    manifest_only: bool = typer.Option(
        False, "--manifest-only", help="Write nothing; print the manifest (--format) on stdout."
    ),
    fmt: ManifestFormat = typer.Option(ManifestFormat.text, "--format", "-f", help="Manifest format on stdout."),
    force: bool = typer.Option(False, "--force", help="Replace OUT when it is a root filesystem uk-depscan wrote."),
    app_dir: str = typer.Option("/app", "--app-dir", help="In-guest directory for the targets and $ORIGIN libraries."),
    *,
    opts: CommonOptions,
) -> int:
    """Root filesystem for app-elfloader: interpreter, closure, dlopen targets, ld.so.cache, manifest.
    Exit 1 when a library is missing, a file was refused, or the tree does not resolve as planned."""
    from uk_depscan.rootfs.build import OutputSpec, RootfsOptions, build_rootfs, manifest_paths, source_date_epoch
    from uk_depscan.rootfs.manifest import render_manifest_json, render_manifest_text

    if not app_dir.startswith("/") or any(p in (".", "..") for p in app_dir.split("/")) or app_dir.strip("/") == "":
        raise UsageError(f"--app-dir {app_dir!r}: must be an absolute directory other than /, without . or ..")
    out = OutputSpec.for_path(output, manifest_only=manifest_only, force=force)
    options = RootfsOptions(app_dir=app_dir, unikraft=opts.unikraft, mtime=source_date_epoch())
    manifest = build_rootfs(targets, opts.search_config(), options, out)
    text, doc = render_manifest_text(manifest), render_manifest_json(manifest)
    if manifest_only:
        emit(doc if fmt is ManifestFormat.json else text, None)
    else:
        json_path, text_path = manifest_paths(output)
        emit(doc, json_path)
        emit(text, text_path)
        if not opts.quiet:
            sys.stderr.write(
                f"uk-depscan: wrote {output} ({manifest.output.value}): {len(manifest.files)} files, "
                f"{manifest.bytes} bytes; manifests {json_path.name}, {text_path.name}\n"
            )
    if not opts.quiet:
        for line in _problems(manifest):
            sys.stderr.write(f"uk-depscan: {line}\n")
    return EXIT_OK if manifest.complete else EXIT_GAPS


def _problems(manifest: object) -> list[str]:
    from uk_depscan.report.escape import for_terminal
    from uk_depscan.rootfs.model import Manifest

    assert isinstance(manifest, Manifest)
    out = [f"missing: {for_terminal(m.name)} needed by {for_terminal(m.needed_by)}" for m in manifest.missing]
    out += [f"refused: {for_terminal(r.source)}: {for_terminal(r.reason)}" for r in manifest.refused]
    out += [f"verification: {for_terminal(p)}" for p in manifest.verification.problems]
    return out


def register(app: typer.Typer) -> None:
    """Mount ``rootfs`` on ``app`` (idempotent: ``run()`` is called many times in one process)."""
    if "rootfs" not in {c.name for c in app.registered_commands}:
        command(app, "rootfs", *SHARED)(rootfs_cmd)
