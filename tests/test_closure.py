"""Closing open summaries over bindings: shortest chains, cycles, failure-only class."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest

from uk_depscan.syscalls.closure import Reach, Site, close_over_bindings
from uk_depscan.syscalls.evidence import breadth, import_reach


@dataclass
class FakeSummary:
    library: str
    entries: dict[str, Reach] = field(default_factory=dict)

    def reach(self, entry: str) -> Reach | None:
        return self.entries.get(entry)


def _setup():
    app = FakeSummary(
        "libapp.so",
        {"run": Reach((Site(1, "direct", "run", 0x10),), ("pthread_create@GLIBC_2.34", "abort@GLIBC_2.2.5"))},
    )
    libc = FakeSummary(
        "libc.so.6",
        {
            "pthread_create@GLIBC_2.34": Reach((Site(435, "direct", "__clone3", 0x20),), ("_dl_x@GLIBC_PRIVATE",)),
            "abort@GLIBC_2.2.5": Reach((Site(62, "direct", "raise", 0x30), Site(435, "direct", "x", 0x40)), ()),
        },
    )
    ld = FakeSummary(
        "ld-linux-x86-64.so.2",
        {"_dl_x@GLIBC_PRIVATE": Reach((Site(9, "direct", "_dl_map", 0x50),), ("pthread_create@GLIBC_2.34",))},
    )
    summaries = {0: app, 1: libc, 2: ld}
    bind = {
        (0, "pthread_create@GLIBC_2.34"): (1, "pthread_create@GLIBC_2.34"),
        (0, "abort@GLIBC_2.2.5"): (1, "abort@GLIBC_2.2.5"),
        (1, "_dl_x@GLIBC_PRIVATE"): (2, "_dl_x@GLIBC_PRIVATE"),
        (2, "pthread_create@GLIBC_2.34"): (1, "pthread_create@GLIBC_2.34"),
    }  # a cycle back into libc
    return summaries, bind


def test_chains_cycles_and_failure_only() -> None:
    summaries, bind = _setup()
    found = close_over_bindings([(0, "run")], summaries, bind)
    assert sorted(found) == [1, 9, 62, 435]
    assert not found[435].failure_only  # reached normally too
    assert found[62].failure_only  # kill only via abort
    chain = [(s.kind, s.library, s.symbol) for s in found[9].chain]
    assert chain == [
        ("entry", "libapp.so", "run"),
        ("import", "libapp.so", "pthread_create@GLIBC_2.34"),
        ("import", "libc.so.6", "_dl_x@GLIBC_PRIVATE"),
        ("direct", "ld-linux-x86-64.so.2", "_dl_map"),
    ]
    assert found[435].libraries == ("libapp.so", "libc.so.6")


def test_unresolved_import_is_a_dead_end() -> None:
    summaries, bind = _setup()
    del bind[(0, "pthread_create@GLIBC_2.34")]
    found = close_over_bindings([(0, "run")], summaries, bind)
    assert sorted(found) == [1, 62, 435] and found[435].failure_only


def _random_world(seed: int, unique: bool) -> tuple[dict[int, FakeSummary], dict[tuple[int, str], tuple[int, str]]]:
    """Four objects whose entries share a few import sets (the walks expand each set once per
    object) and call failure functions; ``unique``: each entry's set made its own by an unbound
    import, which changes no answer and defeats that sharing (the reference)."""
    rng = random.Random(seed)
    names = [f"f{i}@V" for i in range(12)] + ["abort@GLIBC_2.2.5", "__assert_fail@GLIBC_2.2.5"]
    shared = [tuple(sorted(rng.sample(names, rng.randint(0, 6)))) for _ in range(5)]
    summaries: dict[int, FakeSummary] = {}
    bind: dict[tuple[int, str], tuple[int, str]] = {}
    for o in range(4):
        entries = {}
        for key in names:
            imports = rng.choice(shared)
            if unique:
                imports = (*imports, f"unbound_{o}_{key}")
            sites = tuple(
                Site(rng.randrange(24), "direct", key, 0x10 * o, failure=rng.random() < 0.2)
                for _ in range(rng.randint(0, 2))
            )
            entries[key] = Reach(sites, imports)
        summaries[o] = FakeSummary(f"lib{o}.so", entries)
        for key in names:
            if rng.random() < 0.8:  # some imports unresolved
                bind[(o, key)] = (rng.randrange(4), rng.choice(names))
    return summaries, bind


@pytest.mark.parametrize("seed", range(40))
def test_shared_import_sets_give_the_answers_of_distinct_ones(seed: int) -> None:
    """close_over_bindings and the breadth closures skip or reuse the work of an import set already
    expanded in the same object (and walk phase); on random worlds with cycles, failure imports
    and unresolved ones, the answers are those of the same worlds where no two sets are shared."""
    shared = _random_world(seed, unique=False)
    distinct = _random_world(seed, unique=True)
    roots = [(0, "f0@V"), (0, "f1@V"), (0, "abort@GLIBC_2.2.5")]
    assert close_over_bindings(roots, *shared) == close_over_bindings(roots, *distinct)
    assert breadth(roots, *shared) == breadth(roots, *distinct)
    keys = [k for (o, k) in shared[1] if o == 0]
    assert import_reach(keys, *shared) == import_reach(keys, *distinct)
