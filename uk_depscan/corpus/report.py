"""``corpus report``: the ecosystem views, computed from the database alone.

* the matrix, per Unikraft release: every syscall any target needs × each wheel (package, version,
  architecture), a cell being how many of that wheel's libraries need it, with the syscall's
  status and its strongest tier and action over the corpus;
* the plan, per release: Loupe's greedy ``support_plan`` (uk_depscan.unikraft.gaps.greedy_plan)
  over every library of every wheel, the work items being those of ``uk-depscan scan``
  (uk_depscan.unikraft.gaps.work_items) — one priority and action model, not a second one;
* the evolution, per release, package and architecture: which work items each version needs.

Everything is ordered by value, never by insertion, so the report of a database does not depend
on which worker finished first.
"""

from __future__ import annotations

import re
import sqlite3
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from uk_depscan.corpus.db import SCHEMA_VERSION, open_corpus
from uk_depscan.errors import InputError
from uk_depscan.model import Action, Evidence, Gap, PlanStep, ReachPath, SupportStatus, Tier
from uk_depscan.unikraft.gaps import greedy_plan, work_items


@dataclass(frozen=True)
class Wheel:
    package: str
    version: str
    arch: str
    filename: str
    libraries: int


@dataclass(frozen=True)
class MatrixRow:
    syscall: str
    status: str
    tier: str
    action: str  # the action label of the strongest-tier need
    cells: tuple[int, ...]  # per wheel (CorpusReport.wheels order): libraries needing it


@dataclass(frozen=True)
class Evolution:
    package: str
    arch: str
    versions: tuple[str, ...]
    rows: tuple[tuple[str, tuple[bool, ...]], ...]  # work or investigate item, per version (changing ones)
    constant: tuple[str, ...]  # work items every version needs


@dataclass(frozen=True)
class ReleaseView:
    release: str
    commit: str | None
    libraries: int
    matrix: tuple[MatrixRow, ...]
    plan: tuple[PlanStep, ...]
    investigate: tuple[str, ...]  # syscalls some library needs with the action "investigate"
    evolution: tuple[Evolution, ...]


@dataclass(frozen=True)
class CorpusReport:
    schema_version: int
    wheels: tuple[Wheel, ...]
    objects: int
    export_summaries: int
    releases: tuple[ReleaseView, ...]


def version_key(v: str) -> tuple[tuple[int, int | str], ...]:
    """Release order for the version strings of wheels (numbers compared as numbers)."""
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.findall(r"\d+|[A-Za-z]+", v))


def wheel_key(w: Wheel) -> tuple[str, tuple[tuple[int, int | str], ...], str, str]:
    return (w.package, version_key(w.version), w.version, w.arch)


def member_label(w: Wheel, member: str) -> str:
    """A wheel member as the corpus report names it: package, version, architecture and path."""
    return f"{w.package} {w.version} {w.arch}: {member}"


def build_report(db: Path, releases: tuple[str, ...] = ()) -> CorpusReport:
    if not db.is_file():
        raise InputError(f"{db}: no such corpus database")
    conn = open_corpus(db)
    try:
        return _build(conn, releases)
    finally:
        conn.close()


def _build(conn: sqlite3.Connection, wanted: tuple[str, ...]) -> CorpusReport:
    rows = conn.execute(
        "SELECT i.id, i.package, i.version, i.arch, i.filename, count(t.member) FROM inputs i"
        " LEFT JOIN targets t ON t.input = i.id WHERE i.complete = 1 GROUP BY i.id"
    ).fetchall()
    by_id = {int(r[0]): Wheel(str(r[1]), str(r[2]), str(r[3]), str(r[4]), int(r[5])) for r in rows}
    wheels = tuple(sorted(set(by_id.values()), key=wheel_key))
    present = [
        str(r)
        for (r,) in conn.execute(
            "SELECT DISTINCT tr.release FROM target_releases tr JOIN inputs i ON i.id = tr.input WHERE i.complete = 1"
        )
    ]
    releases = wanted or tuple(sorted(present, key=version_key))
    missing = [r for r in releases if r not in present]
    if missing and by_id:
        raise InputError(
            f"release {', '.join(missing)} not in the database (add it: uk-depscan corpus scan INPUT… --unikraft "
            f"{missing[0]} --db FILE; known: {', '.join(sorted(present, key=version_key)) or 'none'})"
        )
    objects = int(conn.execute("SELECT count(*) FROM objects").fetchone()[0])
    summaries = int(conn.execute("SELECT count(*) FROM export_summaries").fetchone()[0])
    views = tuple(_release_view(conn, r, by_id, wheels) for r in releases)
    return CorpusReport(SCHEMA_VERSION, wheels, objects, summaries, views)


def _gap(row: tuple[object, ...]) -> Gap:
    """A stored gap row as the model's Gap (what work_items reads: tier, action, Kconfig option)."""
    name, status, action, tier, kconfig, path, evidence, likelihood = row
    try:
        return Gap(
            str(name),
            SupportStatus(str(status)),
            "",
            None,
            None if kconfig is None else str(kconfig),
            Action(str(action)),
            Tier(str(tier)),
            (),
            float(likelihood),  # type: ignore[arg-type]
            ReachPath(str(path)),
            Evidence(str(evidence)),
        )
    except (ValueError, TypeError) as err:
        raise InputError(f"corpus database: malformed gap row for {name!r} ({err})") from err


def _release_view(
    conn: sqlite3.Connection, release: str, by_id: dict[int, Wheel], wheels: tuple[Wheel, ...]
) -> ReleaseView:
    commit_row = conn.execute("SELECT max(table_commit) FROM target_releases WHERE release = ?", (release,)).fetchone()
    gaps: dict[tuple[int, str], list[Gap]] = defaultdict(list)
    for r in conn.execute(
        "SELECT input, member, syscall, status, action, tier, kconfig, path, evidence, likelihood FROM release_gaps"
        " WHERE release = ?",
        (release,),
    ):
        if int(r[0]) in by_id:
            gaps[(int(r[0]), str(r[1]))].append(_gap(tuple(r[2:])))
    targets = [
        (int(i), str(m))
        for i, m in conn.execute("SELECT input, member FROM target_releases WHERE release = ?", (release,))
        if int(i) in by_id
    ]
    column = {w: k for k, w in enumerate(wheels)}
    # libraries: one per (wheel, member); equal wheels stored twice (other settings) count once
    requirements: dict[str, frozenset[str]] = {}
    cells: dict[str, list[int]] = {}
    best: dict[str, Gap] = {}
    investigate: set[str] = set()
    per_wheel_items: dict[Wheel, set[str]] = defaultdict(set)
    for key in sorted(set(targets)):
        w = by_id[key[0]]
        label = member_label(w, key[1])
        if label in requirements:
            continue
        gs = tuple(gaps.get(key, ()))
        requirements[label] = work_items(gs)
        # the evolution shows the uncertain gaps too: a syscall a new version starts to need is news
        # whether or not the model can yet say what to do about it
        unsure = {f"{g.action_label}: {g.name}" for g in gs if g.action is Action.INVESTIGATE and g.tier.actionable}
        per_wheel_items[w] |= requirements[label] | unsure
        for g in gs:
            cells.setdefault(g.name, [0] * len(wheels))[column[w]] += 1
            b = best.get(g.name)
            if b is None or (g.tier.rank, -g.likelihood, g.action.value) < (b.tier.rank, -b.likelihood, b.action.value):
                best[g.name] = g
            if g.action is Action.INVESTIGATE and g.tier.actionable:
                investigate.add(g.name)
    matrix = tuple(
        sorted(
            (
                MatrixRow(n, best[n].status.value, best[n].tier.value, best[n].action_label, tuple(c))
                for n, c in cells.items()
            ),
            key=lambda m: (Tier(m.tier).rank, -sum(1 for c in m.cells if c), m.syscall),
        )
    )
    return ReleaseView(
        release,
        None if commit_row is None or commit_row[0] is None else str(commit_row[0]),
        len(requirements),
        matrix,
        greedy_plan(requirements),
        tuple(sorted(investigate)),
        _evolution(wheels, per_wheel_items),
    )


def _evolution(wheels: tuple[Wheel, ...], items: dict[Wheel, set[str]]) -> tuple[Evolution, ...]:
    groups: dict[tuple[str, str], list[Wheel]] = defaultdict(list)
    for w in wheels:
        groups[(w.package, w.arch)].append(w)
    out = []
    for (package, arch), ws in sorted(groups.items()):
        versions = tuple(w.version for w in ws)
        every = sorted(set().union(*(items.get(w, set()) for w in ws)))
        marks = [(i, tuple(i in items.get(w, set()) for w in ws)) for i in every]
        rows = tuple(sorted(((i, m) for i, m in marks if not all(m)), key=lambda r: (-sum(r[1]), r[0])))
        constant = tuple(i for i, m in marks if all(m))
        out.append(Evolution(package, arch, versions, rows, constant))
    return tuple(out)
