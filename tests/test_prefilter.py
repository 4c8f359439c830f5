"""The x86-64 byte prefilter's building blocks: the pattern positions (a superset of every exact
pattern, tested block by block) and the address set that keeps direct branches to known targets."""

from __future__ import annotations

import numpy as np
import pytest
from test_batch_reach import host_library

from uk_depscan.elf.file import open_elf
from uk_depscan.syscalls import scan as scan_mod
from uk_depscan.syscalls.scan import _AddressSet, _positions

SSE = [0x10, 0x12, 0x16, 0x28, 0x6F, 0x7E]


def _exact(c: np.ndarray, lo: int, hi: int) -> dict[str, np.ndarray]:
    """Every offset in [lo, hi) where a pattern the scan uses starts, by the plain definition (bytes
    past the end of ``c`` do not exist, so a pattern needing them does not start there)."""
    pad = np.concatenate([c, np.zeros(4, np.uint8)])
    b0, b1, b2 = pad[lo:hi], pad[lo + 1 : hi + 1], pad[lo + 2 : hi + 2]
    room = np.arange(lo, hi)
    rip = (b2 & 0xC7) == 0x05
    tests = {
        "call": (b0 & 0xFE) == 0xE8,
        "of": (b0 == 0x0F)
        & (((b1 & 0xF0) == 0x80) | (b1 == 0x05) | (b1 == 0x34) | (np.isin(b1, SSE) & rip & (room + 2 < len(c)))),
        "ff": (b0 == 0xFF) & ((b1 == 0x15) | (b1 == 0x25)),
        "rex": ((b0 & 0xFB) == 0x48) & ((b1 == 0x8D) | (b1 == 0x8B)) & rip & (room + 2 < len(c)),
        "vex": (b0 == 0xC5) & np.isin(b2, SSE) & (room + 2 < len(c)),
        "int80": (b0 == 0xCD) & (b1 == 0x80),
    }
    return {k: np.flatnonzero(v & (room + 1 < len(c))) + lo for k, v in tests.items()}


def _check(c: np.ndarray, lo: int, hi: int) -> int:
    got = _positions(c, lo, hi)
    first = {"call": (0xFE, 0xE8), "of": (0xFF, 0x0F), "ff": (0xFF, 0xFF), "rex": (0xFB, 0x48)}
    first |= {"vex": (0xFF, 0xC5), "int80": (0xFF, 0xCD)}
    found = 0
    for name, want in _exact(c, lo, hi).items():
        have = getattr(got, name)
        assert np.all(np.diff(have) > 0), name  # sorted, no repeats
        assert np.isin(want, have).all(), (name, np.setdiff1d(want, have)[:5])  # a superset
        mask, value = first[name]
        assert ((have >= lo) & (have < hi)).all() and ((c[have] & mask) == value).all(), name
        found += len(want)
    return found


@pytest.mark.parametrize("seed", range(4))
def test_positions_cover_every_pattern_on_planted_bytes(seed: int, monkeypatch) -> None:
    """Random bytes with every pattern planted many times, including across block boundaries and
    in the last bytes of the buffer; small blocks so that there are many."""
    monkeypatch.setattr(scan_mod, "BLOCK", 257)
    rng = np.random.default_rng(seed)
    c = rng.integers(0, 256, 20_000).astype(np.uint8)
    planted = [[0xE8], [0x0F, 0x84], [0x0F, 0x05], [0x0F, 0x34], [0xFF, 0x15], [0xFF, 0x25], [0x48, 0x8D, 0x05]]
    planted += [[0x4C, 0x8B, 0x3D], [0x0F, 0x28, 0x05], [0xC5, 0xF8, 0x10, 0x05], [0xCD, 0x80]]
    for at in rng.integers(0, len(c) - 4, 2_000):
        pattern = planted[int(at) % len(planted)]
        c[at : at + len(pattern)] = pattern
    c[-2:] = [0x0F, 0x05]
    for lo, hi in ((0, len(c) - 1), (0, len(c)), (257 * 3 - 2, 257 * 9 + 1), (len(c) - 3, len(c))):
        assert _check(c, lo, hi) > 0 or hi - lo < 4


def test_positions_cover_every_pattern_in_host_libc() -> None:
    with open_elf(host_library("libc.so.6")) as elf:
        code = max((np.frombuffer(mv, np.uint8) for _, _, mv in elf.iter_exec_regions()), key=len)
        assert _check(code, 0, len(code) - 1) > 10_000


@pytest.mark.parametrize("bitmap", [True, False])
def test_address_set_membership(bitmap: bool, monkeypatch) -> None:
    if not bitmap:  # a span too wide for a bitmap (a crafted file): binary search
        monkeypatch.setattr(_AddressSet, "MAX_BITMAP", 0)
    rng = np.random.default_rng(1)
    members = rng.integers(0x1000, 0x90000, 3_000).astype(np.uint64)
    s = _AddressSet(np.concatenate([members, members[:10]]))  # duplicates allowed
    assert (s.bitmap is not None) == bitmap
    probes = np.concatenate(
        [
            members,
            rng.integers(0, 0xA0000, 20_000).astype(np.uint64),
            np.array([0, 0xFFF, 0x90000, 2**63, 2**64 - 1], np.uint64),  # below, at and past the ends
        ]
    )
    assert np.array_equal(s.contains(probes), np.isin(probes, members))
    assert not _AddressSet(np.zeros(0, np.uint64)).contains(probes).any()
