"""The advice bench's metrics (bench/score_advice.py) on a tiny synthetic case scored by hand."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from score_advice import GapRow, auc, report_facts, score_library, totals

LINUX = {"read", "write", "mmap", "futex", "openat", "close", "ioctl"}
TRACED = {"read", "write", "mmap", "futex"}
STATIC = {"read", "write", "mmap", "openat", "close", "ioctl"}
# in report order; ranked by tier, then this order: openat, mmap, write | ioctl, syscall_... | futex
GAPS = [
    GapRow("ioctl", "P1", "implement"),
    GapRow("openat", "P0", "implement"),
    GapRow("mmap", "P0", "enable CONFIG_LIBPOSIX_MMAP"),
    GapRow("write", "P0", "implement"),
    GapRow("futex", "P3", "keep stub"),
    GapRow("syscall_18446744073709551615", "P1", "implement"),
]


def test_hand_computed_scores() -> None:
    s = score_library(TRACED, STATIC, GAPS, LINUX)
    assert (s.traced, s.static, s.hits, s.misses) == (4, 6, 3, ("futex",))
    assert s.recall == pytest.approx(0.75) and s.ratio == pytest.approx(1.5)
    # ranks: openat 0, mmap 1, write 2, ioctl 3, syscall_.. 4, futex 5; traced rows mmap, write, futex.
    # mmap beats ioctl and syscall_.. (2 of 3), write the same (2), futex none: 4 of 9 pairs.
    assert s.auc == pytest.approx(4 / 9)
    # by tier alone: mmap and write tie with openat (P0: half each) and beat both P1 rows: 2.5 + 2.5 + 0
    assert s.tier_auc == pytest.approx(5 / 9)
    assert (s.p0_implement, s.p0_implement_traced, s.p0_precision) == (2, 1, 0.5)
    assert s.non_syscall_gaps == ("syscall_18446744073709551615",)
    assert (s.gaps, s.gaps_traced) == (6, 3)


def test_auc_edge_cases() -> None:
    assert auc([0, 1], [2, 3]) == 1.0
    assert auc([2, 3], [0, 1]) == 0.0
    assert auc([1], [1]) == 0.5
    assert auc([], [1]) is None and auc([1], []) is None


def test_undefined_scores_and_totals() -> None:
    empty = score_library(set(), {"read"}, [GapRow("read", "P0", "implement")], LINUX)
    assert empty.recall is None and empty.ratio is None and empty.auc is None
    assert empty.p0_precision == 0.0
    none_traced = score_library({"read"}, {"read"}, [GapRow("read", "P3", "keep stub")], LINUX)
    assert none_traced.auc is None and none_traced.p0_precision is None and none_traced.recall == 1.0
    full = score_library(TRACED, STATIC, GAPS, LINUX)
    tot = totals([full, none_traced])
    # recall and P0 precision pool the counts; AUC and size ratio average the defined values
    assert (tot.hits, tot.traced) == (4, 5) and tot.recall == pytest.approx(0.8)
    assert tot.auc == pytest.approx(4 / 9) and tot.ratio == pytest.approx((1.5 + 1.0) / 2)
    assert (tot.p0_implement, tot.p0_implement_traced) == (2, 1) and tot.non_syscall_gaps == 1


def test_report_facts_reads_the_json_shape() -> None:
    row = {"failure_only": False, "kinds": [], "libraries": [], "chain": [], "number": 0}
    report = {
        "targets": [
            {
                "syscalls": {
                    "arch": "x86_64",
                    "reached": [dict(row, name="read"), dict(row, name="ioctl", failure_only=True)],
                    "baseline": [dict(row, name="mmap")],
                },
                "gaps": [{"name": "ioctl", "tier": "P1", "action": "implement", "status": "absent"}],
            }
        ]
    }
    arch, static, gaps = report_facts(report)
    assert arch == "x86_64" and static == {"read", "ioctl", "mmap"}
    assert gaps == [GapRow("ioctl", "P1", "implement")]
