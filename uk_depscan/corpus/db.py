"""The corpus database: a versioned, documented SQLite schema (opened by :mod:`uk_depscan.store.db`).

Schema version 1 (``PRAGMA user_version``; ``application_id`` 0x756B6370, "ukcp")::

    objects          one row per analysed ELF, keyed by its content identity (sha256 of the bytes,
                     uk_depscan.store.identity): size, architecture, DT_SONAME, exported functions,
                     whether each export was summarised (above 5000 only <entry>, <init>, <all>)
    export_summaries per object and export: the syscall numbers its own code reaches, on normal
                     paths and only through failure functions (the engine's per-export summary)
    inputs           one row per analysed input: its content identity (the wheel's sha256; for a
                     directory the sha256 of its sorted member → object list) and the analysis
                     settings (tool version, --include/--exclude), package, version, architecture;
                     ``complete`` is set in the input's last transaction
    targets          per input and member: the object and the per-target facts (JSON: libc model,
                     unknown sites, every reached syscall with its path class and evidence breadth)
    target_releases  per target and Unikraft release: the table commit the gaps were computed with
                     (present even when there is no gap)
    release_gaps     per target, release and syscall: status, action, tier, Kconfig option, path
                     class, evidence, likelihood (uk_depscan.unikraft.gaps / priority)
    provenance       per input: where it came from (path, or spec + platform + Python version),
                     the tool version, the engine (local or the Dask scheduler) and when

Every write of a target (its object, export summaries, facts and gaps) is one transaction, so an
interrupted scan keeps every target already written; an input counts as done only once
``complete`` is set.  Only the client writes: workers return :mod:`uk_depscan.corpus.model` values.

A database of another schema version, or of another application, is refused (exit 2): there is
no older corpus version to migrate from, and a newer one is not ours to rewrite.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from uk_depscan.errors import InputError
from uk_depscan.store.db import Schema, StoreProblem, open_db

SCHEMA_VERSION = 1
APPLICATION_ID = 0x756B6370  # "ukcp"

DDL = (
    "CREATE TABLE objects (sha256 TEXT PRIMARY KEY, size INTEGER NOT NULL, arch TEXT NOT NULL, soname TEXT,"
    " export_count INTEGER NOT NULL, exports_summarised INTEGER NOT NULL)",
    "CREATE TABLE export_summaries (object TEXT NOT NULL REFERENCES objects(sha256), export TEXT NOT NULL,"
    " syscalls TEXT NOT NULL, failure_syscalls TEXT NOT NULL, PRIMARY KEY (object, export))",
    "CREATE TABLE inputs (id INTEGER PRIMARY KEY, content TEXT NOT NULL, settings TEXT NOT NULL,"
    " kind TEXT NOT NULL, filename TEXT NOT NULL, package TEXT NOT NULL, version TEXT NOT NULL,"
    " arch TEXT NOT NULL, complete INTEGER NOT NULL DEFAULT 0, UNIQUE (content, settings))",
    "CREATE TABLE targets (input INTEGER NOT NULL REFERENCES inputs(id), member TEXT NOT NULL,"
    " object TEXT NOT NULL REFERENCES objects(sha256), facts TEXT NOT NULL, PRIMARY KEY (input, member))",
    "CREATE TABLE target_releases (input INTEGER NOT NULL, member TEXT NOT NULL, release TEXT NOT NULL,"
    " table_commit TEXT, PRIMARY KEY (input, member, release))",
    "CREATE TABLE release_gaps (input INTEGER NOT NULL, member TEXT NOT NULL, release TEXT NOT NULL,"
    " syscall TEXT NOT NULL, status TEXT NOT NULL, action TEXT NOT NULL, tier TEXT NOT NULL, kconfig TEXT,"
    " path TEXT NOT NULL, evidence TEXT NOT NULL, likelihood REAL NOT NULL,"
    " PRIMARY KEY (input, member, release, syscall))",
    "CREATE TABLE provenance (input INTEGER PRIMARY KEY REFERENCES inputs(id), source TEXT NOT NULL,"
    " spec TEXT, platform TEXT, python_version TEXT, tool_version TEXT NOT NULL, engine TEXT NOT NULL,"
    " scanned_at TEXT NOT NULL)",
)
SCHEMA = Schema(APPLICATION_ID, SCHEMA_VERSION, DDL)


def open_corpus(path: Path) -> sqlite3.Connection:
    """Open (creating) the corpus database; a file that is not one of ours, or of another
    schema version, is bad input (exit 2), never rewritten."""
    if path.exists() and not path.is_file():
        raise InputError(f"{path}: not a regular file")
    try:
        return open_db(path, SCHEMA)
    except StoreProblem as problem:
        hint = " (this version reads corpus schema 1 only)" if problem.outdated else ""
        raise InputError(f"{problem.path}: {problem.problem}{hint}") from problem
