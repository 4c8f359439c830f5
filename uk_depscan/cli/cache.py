"""``uk-depscan cache info|clear``: look at or empty the scan cache (:mod:`uk_depscan.store.cache`)."""

from __future__ import annotations

import sys

import typer

from uk_depscan.store.cache import CacheStore

cache_app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="The scan cache: where it is, what it holds, and emptying it.  It only ever speeds runs up.",
)


def _mb(n: int) -> str:
    return f"{n / (1 << 20):.1f} MB"


@cache_app.command("info")
def info_cmd() -> int:
    """Location, size and contents of the cache (entries per producer, identity memo rows)."""
    info = CacheStore().info()
    lines = [
        f"directory   {info.directory}",
        f"database    {info.database} ({_mb(info.database_bytes) if info.database_bytes else 'not created yet'})",
        f"entries     {info.entries} ({_mb(info.entry_bytes)} of results)",
        *(f"  {producer:<22} {count}" for producer, count in info.by_producer),
        f"identities  {info.identities} memoised file digests",
    ]
    if info.legacy_files:
        lines.append(f"legacy      {info.legacy_files} files of the old JSON/npz format ({_mb(info.legacy_bytes)})")
    if info.problem:
        lines.append(f"problem     {info.problem} (the next scan replaces the database)")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


@cache_app.command("clear")
def clear_cmd() -> int:
    """Delete the cache database and old-format entry files (nothing else in the directory)."""
    store = CacheStore()
    count, freed = store.clear()
    sys.stdout.write(f"removed {count} files ({_mb(freed)}) from {store.directory}\n")
    return 0
