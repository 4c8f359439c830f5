"""The client side of ``corpus scan``: decide what is new, hand it to workers, write what comes back.

Only this module writes the database.  Each target is one transaction (its object, the object's
export summaries, the target's facts and its gaps per release), and an input is marked complete
in its own last transaction: an interrupted scan keeps everything already written and re-analyses
at most the inputs it had not finished.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from uk_depscan.corpus.db import open_corpus
from uk_depscan.corpus.model import (
    GapRow,
    InputFailure,
    InputKind,
    InputResult,
    Platform,
    ReachFact,
    TargetFacts,
    WorkItem,
)
from uk_depscan.corpus.work import analyse, directory_content, gaps_for, settings_of
from uk_depscan.errors import InputError, UsageError
from uk_depscan.store.identity import object_identity
from uk_depscan.unikraft.tables import list_unikraft_tables, load_loupe_priors, load_unikraft_table


@dataclass(frozen=True)
class ScanOptions:
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    platform: Platform | None = None
    python_version: str | None = None
    find_links: tuple[str, ...] = ()
    no_index: bool = False
    releases: tuple[str, ...] = ()  # empty: every shipped Unikraft table
    scheduler: str | None = None  # tcp://HOST:PORT: Dask distributed; None: local processes
    jobs: int = 1


@dataclass(frozen=True)
class ScanSummary:
    inputs: int
    analysed: int
    already_known: int
    failed: tuple[str, ...]
    targets_written: int
    new_objects: int
    releases_added: int
    seconds: float


def default_releases() -> tuple[str, ...]:
    return tuple(t.release for t in list_unikraft_tables())


def work_items(args: Iterable[str], opts: ScanOptions, releases: tuple[str, ...]) -> list[WorkItem]:
    """Each argument as a work item: an existing directory or file, else a requirement spec
    (which needs ``--platform``)."""
    items = []
    for arg in args:
        kind: InputKind
        if os.path.isdir(arg):
            kind = InputKind.DIRECTORY
        elif os.path.lexists(arg):
            kind = InputKind.WHEEL
        elif "/" in arg or arg.endswith(".whl"):
            raise InputError(f"{arg}: no such file or directory")
        elif opts.platform is None:
            raise UsageError(f"{arg}: not a file or directory; a requirement spec needs --platform")
        else:
            kind = InputKind.SPEC
        value = os.path.abspath(arg) if kind is not InputKind.SPEC else arg
        spec_only = kind is InputKind.SPEC
        items.append(
            WorkItem(
                kind,
                value,
                opts.include,
                opts.exclude,
                opts.platform if spec_only else None,
                (opts.python_version or _python()) if spec_only else None,
                tuple(os.path.abspath(p) for p in opts.find_links) if spec_only else (),
                opts.no_index if spec_only else False,
                releases,
            )
        )
    return items


def _python() -> str:
    import sys

    return f"{sys.version_info[0]}.{sys.version_info[1]}"


def scan(args: list[str], db: Path, opts: ScanOptions, note: Callable[[str], None] = lambda _m: None) -> ScanSummary:
    start = time.perf_counter()
    releases = opts.releases or default_releases()
    for r in releases:
        load_unikraft_table(r)  # an unknown release is bad input before any analysis
    items = work_items(args, opts, releases)
    conn = open_corpus(db)
    try:
        todo: list[tuple[WorkItem, int | None]] = []
        known: list[tuple[WorkItem, int | None]] = []
        for item in items:
            row = _known_input(conn, item)
            (known if row is not None else todo).append((item, row))
        added = sum(_add_releases(conn, input_id, releases) for _, input_id in known if input_id is not None)
        note(f"{len(items)} inputs: {len(known)} already in the database, {len(todo)} to analyse")
        engine = f"dask {opts.scheduler}" if opts.scheduler else f"local, {opts.jobs} process(es)"
        failed: list[str] = []
        written = new_objects = analysed = 0
        for n, res in enumerate(_run([i for i, _ in todo], opts), 1):
            if isinstance(res, InputFailure):
                failed.append(res.problem)
                note(f"[{n}/{len(todo)}] {res.problem}")
                continue
            t, o = write_result(conn, res, engine)
            written, new_objects, analysed = written + t, new_objects + o, analysed + 1
            note(
                f"[{n}/{len(todo)}] {res.package} {res.version} {res.arch}: {len(res.targets)} targets, "
                f"{o} new objects, {res.seconds:.1f} s"
            )
    finally:
        conn.close()
    return ScanSummary(
        len(items), analysed, len(known), tuple(failed), written, new_objects, added, time.perf_counter() - start
    )


def _known_input(conn: sqlite3.Connection, item: WorkItem) -> int | None:
    """The id of a complete input with the same content and settings, else None."""
    settings = settings_of(item)
    if item.kind is InputKind.SPEC:
        if "==" not in item.value or "*" in item.value:
            return None  # an unpinned spec may name a new release: always asked again
        row = conn.execute(
            "SELECT i.id FROM inputs i JOIN provenance p ON p.input = i.id WHERE p.spec = ? AND p.platform = ?"
            " AND p.python_version = ? AND i.settings = ? AND i.complete = 1",
            (item.value, item.platform.value if item.platform else None, item.python_version, settings),
        ).fetchone()
        return None if row is None else int(row[0])
    try:
        if item.kind is InputKind.DIRECTORY:
            content = directory_content(item.value, item.include, item.exclude)
        else:
            content = str(object_identity(item.value))
    except (OSError, ValueError) as err:
        raise InputError(f"{item.value}: {err}") from err
    row = conn.execute(
        "SELECT id FROM inputs WHERE content = ? AND settings = ? AND complete = 1", (content, settings)
    ).fetchone()
    return None if row is None else int(row[0])


def _add_releases(conn: sqlite3.Connection, input_id: int, releases: tuple[str, ...]) -> int:
    """Gaps for releases a known input was not yet assessed against, from its stored facts."""
    priors = load_loupe_priors()
    added = 0
    for member, arch, facts in conn.execute(
        "SELECT t.member, o.arch, t.facts FROM targets t JOIN objects o ON o.sha256 = t.object WHERE t.input = ?"
        " ORDER BY t.member",
        (input_id,),
    ).fetchall():
        have = {
            r
            for (r,) in conn.execute(
                "SELECT release FROM target_releases WHERE input = ? AND member = ?", (input_id, member)
            )
        }
        reach = decode_reach(str(facts))
        for release in releases:
            if release in have:
                continue
            table = load_unikraft_table(release)
            with _transaction(conn):
                _write_gaps(
                    conn, input_id, str(member), release, table.commit, gaps_for(reach, str(arch), table, priors)
                )
            added += 1
    return added


def _run(items: list[WorkItem], opts: ScanOptions) -> Iterator[InputResult | InputFailure]:
    if not items:
        return
    if opts.scheduler:
        yield from _run_dask(items, opts.scheduler)
    elif opts.jobs <= 1:
        for item in items:
            yield analyse(item)
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        # spawn: a fresh interpreter per worker, nothing inherited from the client (open database)
        with ProcessPoolExecutor(max_workers=opts.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(analyse, item) for item in items]
            try:
                for fut in as_completed(futures):
                    yield fut.result()
            except BaseException:
                for fut in futures:
                    fut.cancel()
                raise


def _run_dask(items: list[WorkItem], address: str) -> Iterator[InputResult | InputFailure]:
    try:
        from distributed import Client, as_completed  # type: ignore[import-untyped,unused-ignore]
    except ImportError as err:
        raise UsageError("--scheduler needs Dask: pip install 'uk-depscan[distributed]'") from err
    try:
        client = Client(address, timeout="20s")  # type: ignore[no-untyped-call,unused-ignore]
    except (OSError, TimeoutError) as err:
        raise InputError(f"--scheduler {address}: cannot connect: {err}") from err
    try:
        # pure=False: two equal items are still two analyses (the database decides what is new)
        futures = client.map(analyse, items, pure=False)
        for fut in as_completed(futures):  # type: ignore[no-untyped-call,unused-ignore]
            res = fut.result()
            if not isinstance(res, (InputResult, InputFailure)):
                raise TypeError(f"a Dask worker returned {type(res).__name__}")
            yield res
    finally:
        client.close()  # type: ignore[no-untyped-call,unused-ignore]


class _transaction:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_rest: object) -> None:
        self.conn.execute("ROLLBACK" if exc_type is not None else "COMMIT")


def encode_facts(t: TargetFacts) -> str:
    doc = {"libc_model": t.libc_model, "unknown_sites": t.unknown_sites, "reach": [asdict(f) for f in t.reach]}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


def decode_reach(text: str) -> tuple[ReachFact, ...]:
    """The reach facts of a stored target, checked field by field (the file may be anyone's)."""
    try:
        doc = json.loads(text)
        out = []
        for r in doc["reach"]:
            opt_int = [r.get(k) for k in ("own_sites", "imports", "narrowest_size")]
            if not isinstance(r["name"], str) or not isinstance(r["path"], str):
                raise TypeError("name/path")
            if any(v is not None and (not isinstance(v, int) or isinstance(v, bool)) for v in opt_int):
                raise TypeError("counts")
            narrowest = r.get("narrowest")
            if narrowest is not None and not isinstance(narrowest, str):
                raise TypeError("narrowest")
            out.append(ReachFact(r["name"], r["path"], opt_int[0], opt_int[1], narrowest, opt_int[2]))
        return tuple(out)
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise InputError(f"corpus database: malformed target facts ({err})") from err


def write_result(conn: sqlite3.Connection, res: InputResult, engine: str) -> tuple[int, int]:
    """Write one input's result; returns (targets written, new objects)."""
    settings = settings_of(res.item)
    with _transaction(conn):
        conn.execute(
            "INSERT OR IGNORE INTO inputs (content, settings, kind, filename, package, version, arch)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (res.content, settings, res.item.kind.value, res.filename, res.package, res.version, res.arch),
        )
        input_id = int(
            conn.execute(
                "SELECT id FROM inputs WHERE content = ? AND settings = ?", (res.content, settings)
            ).fetchone()[0]
        )
    new_objects = 0
    for t in res.targets:
        with _transaction(conn):
            new = conn.execute(
                "INSERT OR IGNORE INTO objects VALUES (?, ?, ?, ?, ?, ?)",
                (t.obj.sha256, t.obj.size, t.obj.arch, t.obj.soname, t.obj.export_count, int(t.obj.exports_summarised)),
            ).rowcount
            if new:
                new_objects += 1
                conn.executemany(
                    "INSERT OR IGNORE INTO export_summaries VALUES (?, ?, ?, ?)",
                    [(t.obj.sha256, e.export, _nums(e.syscalls), _nums(e.failure_syscalls)) for e in t.obj.exports],
                )
            conn.execute(
                "INSERT OR REPLACE INTO targets (input, member, object, facts) VALUES (?, ?, ?, ?)",
                (input_id, t.member, t.obj.sha256, encode_facts(t)),
            )
            for release, commit, gaps in t.gaps:
                _write_gaps(conn, input_id, t.member, release, commit, gaps)
    with _transaction(conn):
        item = res.item
        conn.execute(
            "INSERT OR REPLACE INTO provenance VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                input_id,
                item.value if item.kind is not InputKind.SPEC else f"pip download {item.value}",
                item.value if item.kind is InputKind.SPEC else None,
                item.platform.value if item.platform else None,
                item.python_version,
                settings.split(";", 1)[0],
                engine,
                datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            ),
        )
        conn.execute("UPDATE inputs SET complete = 1 WHERE id = ?", (input_id,))
    return len(res.targets), new_objects


def _nums(values: tuple[int, ...]) -> str:
    return ",".join(str(v) for v in values)


def _write_gaps(
    conn: sqlite3.Connection, input_id: int, member: str, release: str, commit: str | None, gaps: Iterable[GapRow]
) -> None:
    conn.execute("DELETE FROM release_gaps WHERE input = ? AND member = ? AND release = ?", (input_id, member, release))
    conn.executemany(
        "INSERT INTO release_gaps VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                input_id,
                member,
                release,
                g.syscall,
                g.status,
                g.action,
                g.tier,
                g.kconfig,
                g.path,
                g.evidence,
                g.likelihood,
            )
            for g in gaps
        ],
    )
    conn.execute("INSERT OR REPLACE INTO target_releases VALUES (?, ?, ?, ?)", (input_id, member, release, commit))
