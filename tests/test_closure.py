"""Closing open summaries over bindings: shortest chains, cycles, failure-only class."""

from __future__ import annotations

from dataclasses import dataclass, field

from uk_depscan.syscalls.closure import Reach, Site, close_over_bindings


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
