"""Opening an SQLite database the tool owns, without trusting the file.

Why SQLite (stdlib) rather than files: one entry is one row written in one transaction, so there
is no pair of files to bind together, no temporary file to leave behind, and no archive format
to parse (the npz halves of the old cache could be truncated zips or declare 10^12-element
arrays); concurrent runs are serialised by SQLite's own locking; a process killed mid-write
leaves the database as it was before the transaction (rollback journal / WAL recovery).

What :func:`open_db` checks before any use, raising :class:`StoreProblem`:

* the database and its ``-wal``/``-shm``/``-journal`` companions are regular files or absent —
  not a FIFO (an open or read would block), a device (``/dev/zero`` never ends) or a symlink;
* the header's ``application_id`` and ``user_version`` are ours;
* ``sqlite_master`` holds exactly the objects our DDL creates — no extra trigger or view whose
  SQL could run when we write (``trusted_schema`` is off as well).

Rows are still validated field by field by their readers: SQLite's column types are advisory
for a file someone else wrote.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from uk_depscan.fs import lstat_kind

COMPANIONS = ("-wal", "-shm", "-journal")
# Errors that mean "the file is not a (healthy) database": replacing it is the remedy.  Busy,
# locked, read-only, permission or I/O errors are about the environment and are left alone.
_DAMAGE = {"SQLITE_CORRUPT", "SQLITE_NOTADB", "SQLITE_FORMAT", "SQLITE_SCHEMA", "SQLITE_MISMATCH", "SQLITE_ERROR"}


@dataclass(frozen=True)
class Schema:
    """What a database of one kind must contain: header identifiers and the DDL that creates it."""

    application_id: int
    version: int
    ddl: tuple[str, ...]


class StoreProblem(Exception):
    """A database cannot be used as it is.

    ``replaceable``: the file itself is wrong (damaged, foreign, outdated, not a regular file) and
    a cache may delete it; otherwise the environment is (permissions, a directory in the way).
    ``outdated``: written by another schema version of this tool — an upgrade, not damage.
    """

    def __init__(self, path: Path, problem: str, *, replaceable: bool, outdated: bool = False) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem
        self.replaceable = replaceable
        self.outdated = outdated


def database_files(path: Path) -> tuple[Path, ...]:
    return (path, *(path.with_name(path.name + suffix) for suffix in COMPANIONS))


def is_damage(err: sqlite3.Error) -> bool:
    name = getattr(err, "sqlite_errorname", None)  # Python ≥ 3.11
    if name is None:
        return isinstance(err, sqlite3.DatabaseError) and not isinstance(err, sqlite3.OperationalError)
    return any(str(name) == d or str(name).startswith(d + "_") for d in _DAMAGE)


def open_db(path: Path, schema: Schema, *, timeout: float = 10.0) -> sqlite3.Connection:
    """Connect to ``path``, creating the schema in a new file; raise :class:`StoreProblem`."""
    for p in database_files(path):
        kind = lstat_kind(p)
        if kind not in (None, "regular file"):
            raise StoreProblem(p, f"is a {kind}, not a regular file", replaceable=kind != "directory")
    try:
        conn = sqlite3.connect(str(path), timeout=timeout, isolation_level=None)
    except sqlite3.Error as err:
        raise StoreProblem(path, f"cannot open: {err}", replaceable=False) from err
    try:
        conn.execute("PRAGMA trusted_schema = OFF")
        conn.execute("PRAGMA cell_size_check = ON")
        _check_or_create(conn, path, schema)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")  # WAL: a crash loses at most the last commits, never consistency
    except StoreProblem:
        conn.close()
        raise
    except sqlite3.Error as err:
        conn.close()
        raise StoreProblem(path, f"not a usable database: {err}", replaceable=is_damage(err)) from err
    return conn


def _check_or_create(conn: sqlite3.Connection, path: Path, schema: Schema) -> None:
    if _header(conn) == (0, 0) and not _objects(conn):
        conn.execute("BEGIN IMMEDIATE")
        try:
            if not _objects(conn):  # another process may have created it meanwhile
                for stmt in schema.ddl:
                    conn.execute(stmt)
                conn.execute(f"PRAGMA application_id = {int(schema.application_id)}")
                conn.execute(f"PRAGMA user_version = {int(schema.version)}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    app, version = _header(conn)
    if app != schema.application_id:
        raise StoreProblem(path, f"not a uk-depscan database (application_id {app:#x})", replaceable=True)
    if version != schema.version:
        raise StoreProblem(
            path, f"schema version {version}, this version uses {schema.version}", replaceable=True, outdated=True
        )
    found = _objects(conn)
    if found != expected_objects(schema):
        extra = sorted(f"{t} {n}" for t, n, _, _ in found - expected_objects(schema))
        missing = sorted(f"{t} {n}" for t, n, _, _ in expected_objects(schema) - found)
        raise StoreProblem(
            path,
            "unexpected schema ("
            + "; ".join(filter(None, [_listed("extra", extra), _listed("missing", missing)]))
            + ")",
            replaceable=True,
        )


def _listed(label: str, items: list[str]) -> str:
    return f"{label}: {', '.join(items[:4])}" if items else ""


def _header(conn: sqlite3.Connection) -> tuple[int, int]:
    app = conn.execute("PRAGMA application_id").fetchone()[0]
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    return int(app) & 0xFFFFFFFF, int(version)


def _objects(conn: sqlite3.Connection) -> frozenset[tuple[str, str, str, str | None]]:
    rows = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall()
    return frozenset((str(t), str(n), str(tb), s if s is None else str(s)) for t, n, tb, s in rows)


@lru_cache(maxsize=8)
def expected_objects(schema: Schema) -> frozenset[tuple[str, str, str, str | None]]:
    """sqlite_master as our DDL makes it (SQLite keeps the statement text as given)."""
    conn = sqlite3.connect(":memory:")
    try:
        for stmt in schema.ddl:
            conn.execute(stmt)
        return _objects(conn)
    finally:
        conn.close()


def remove_database(path: Path) -> list[Path]:
    """Delete the database and its companions (never a directory); return what was removed."""
    removed = []
    for p in database_files(path):
        if lstat_kind(p) in (None, "directory"):
            continue
        try:
            os.unlink(p)
            removed.append(p)
        except FileNotFoundError:
            pass
    return removed
