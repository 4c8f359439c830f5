"""Mutation corpus: hundreds of deterministic mutants of fixture ELFs through the CLI, in-process.

Issue 8 ("hostile and broken inputs").  Mutants are generated from the fixture libraries and a
small real library with a fixed ``random.Random(SEED)``: truncation at every header boundary,
bit flips in the ELF/program/section headers, absurd sizes and offsets, overlapping sections,
dynamic sections without DT_NULL, string offsets out of range, bad version tables, bad
``.eh_frame`` lengths, huge symbol counts, executable sections full of random bytes and
random byte damage, plus valid-looking inputs that make naive parsing quadratic (tens of
thousands of DT_NEEDED, shared version/note/name chains, an unterminated GNU hash chain).
Every mutant goes through ``uk-depscan scan`` and ``uk-depscan deps --format json``; some are
also loaded as a *dependency* of a good root, and the ``.eh_frame``/symbol/random-code ones
through the function-start reader and the syscall engine directly.  Outcome rules:

* exit 0/1 with a non-empty result (JSON that parses), or exit 2 with exactly one stderr line
  ``uk-depscan: error: ...`` naming the file — never exit 3, never a traceback;
* at most :data:`TIME_BUDGET` seconds per run (a SIGALRM guard turns a hang into a failure);
* peak RSS growth over the whole corpus below :data:`RSS_BUDGET_MB`, no file descriptor leak.

The summary (counts by kind and outcome, slowest input, time per phase, RSS growth) is printed
(``pytest -rA``) and recorded in the test's ``user_properties`` (``--junitxml``).

The generator parses headers with ``struct`` itself, independently of the code under test.
"""

from __future__ import annotations

import faulthandler
import hashlib
import json
import os
import random
import re
import resource
import shutil
import signal
import struct
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import FIXTURES, compile_so, have, run_cli

SEED = 0x8BAD
MIN_MUTANTS = 500
TARGET_MUTANTS = 530  # the structured kinds, topped up with random damage to this many
DEP_EVERY = 12  # every n-th mutant is also loaded as a dependency of a good root
TIME_BUDGET = 2.0  # seconds per CLI run (and per disassembler run)
HANG_ALARM = 10  # SIGALRM: a run this long is a hang, not just slow
RSS_BUDGET_MB = 500
SCAN_OPTS = ["--no-cache"]  # never write the per-library scan cache for throw-away mutants
REAL_LIBRARY = Path("/lib/x86_64-linux-gnu/libz.so.1")
# What a text report may contain: no C0/C1 control characters but tab and newline, no ESC.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

DT_NULL, DT_NEEDED, DT_STRTAB, DT_STRSZ, DT_SONAME, DT_RPATH, DT_DEBUG, DT_RUNPATH = 0, 1, 5, 10, 14, 15, 21, 29
DT_HASH, DT_GNU_HASH, DT_VERSYM, DT_VERNEED, DT_VERNEEDNUM, DT_VERDEF, DT_VERDEFNUM = (
    4,
    0x6FFFFEF5,
    0x6FFFFFF0,
    0x6FFFFFFE,
    0x6FFFFFFF,
    0x6FFFFFFC,
    0x6FFFFFFD,
)
PT_LOAD, PT_DYNAMIC = 1, 2
SHF_EXECINSTR, SHT_NOBITS, SHT_DYNSYM = 4, 8, 11
ABSURD = (0xFFFFFFFFFFFFFFFF, 0x8000000000000000, 0x7FFFFFFFFFFFFFFF, 1 << 40, 0xFFFFFFFF, 0x7FFFFFF0)


class Hang(BaseException):
    """Raised by SIGALRM.  A BaseException, so the CLI's last-resort ``except Exception`` cannot hide it."""


# -- an independent, minimal ELF layout reader (LE and BE, 32 and 64 bit) --------------------------
class Layout:
    """Where every header field of a well-formed base file lives, so mutations can target them."""

    def __init__(self, data: bytes) -> None:
        assert data[:4] == b"\x7fELF"
        self.data = data
        self.is64 = data[4] == 2
        self.e = "<" if data[5] == 1 else ">"
        self.w = "Q" if self.is64 else "I"
        eh = self.e + ("HHIQQQIHHHHHH" if self.is64 else "HHIIIIIHHHHHH")
        (
            _,
            _,
            _,
            _,
            self.phoff,
            self.shoff,
            _,
            self.ehsize,
            self.phentsize,
            self.phnum,
            self.shentsize,
            self.shnum,
            self.shstrndx,
        ) = struct.unpack_from(eh, data, 16)
        # (offset, format) of each ELF header field
        names = [
            "e_type",
            "e_machine",
            "e_version",
            "e_entry",
            "e_phoff",
            "e_shoff",
            "e_flags",
            "e_ehsize",
            "e_phentsize",
            "e_phnum",
            "e_shentsize",
            "e_shnum",
            "e_shstrndx",
        ]
        self.ehdr_fields: dict[str, tuple[int, str]] = {}
        off = 16
        for name, ch in zip(names, eh[1:], strict=True):
            self.ehdr_fields[name] = (off, ch)
            off += struct.calcsize(ch)
        self.ph_fields = (
            {
                "p_type": (0, "I"),
                "p_flags": (4, "I"),
                "p_offset": (8, "Q"),
                "p_vaddr": (16, "Q"),
                "p_filesz": (32, "Q"),
                "p_memsz": (40, "Q"),
                "p_align": (48, "Q"),
            }
            if self.is64
            else {
                "p_type": (0, "I"),
                "p_offset": (4, "I"),
                "p_vaddr": (8, "I"),
                "p_filesz": (16, "I"),
                "p_memsz": (20, "I"),
                "p_flags": (24, "I"),
                "p_align": (28, "I"),
            }
        )
        self.sh_fields = (
            {
                "sh_name": (0, "I"),
                "sh_type": (4, "I"),
                "sh_flags": (8, "Q"),
                "sh_addr": (16, "Q"),
                "sh_offset": (24, "Q"),
                "sh_size": (32, "Q"),
                "sh_link": (40, "I"),
                "sh_info": (44, "I"),
                "sh_entsize": (56, "Q"),
            }
            if self.is64
            else {
                "sh_name": (0, "I"),
                "sh_type": (4, "I"),
                "sh_flags": (8, "I"),
                "sh_addr": (12, "I"),
                "sh_offset": (16, "I"),
                "sh_size": (20, "I"),
                "sh_link": (24, "I"),
                "sh_info": (28, "I"),
                "sh_entsize": (36, "I"),
            }
        )
        self.phdrs = [self._row(self.phoff + i * self.phentsize, self.ph_fields) for i in range(self.phnum)]
        self.shdrs = [self._row(self.shoff + i * self.shentsize, self.sh_fields) for i in range(self.shnum)]
        names_sec = self.shdrs[self.shstrndx] if 0 < self.shstrndx < self.shnum else None
        for s in self.shdrs:
            s["name"] = self._cstr(names_sec["sh_offset"] + s["sh_name"]) if names_sec else ""
        self.dyn = self._dynamic()

    def _row(self, base: int, fields: dict[str, tuple[int, str]]) -> dict:
        row = {k: struct.unpack_from(self.e + f, self.data, base + o)[0] for k, (o, f) in fields.items()}
        row["_at"] = base
        return row

    def _cstr(self, off: int) -> str:
        end = self.data.index(b"\0", off)
        return self.data[off:end].decode("latin-1")

    def _dynamic(self) -> list[dict]:
        seg = next((p for p in self.phdrs if p["p_type"] == PT_DYNAMIC), None)
        if seg is None:
            return []
        ent = 16 if self.is64 else 8
        out = []
        for i in range(seg["p_filesz"] // ent):
            at = seg["p_offset"] + i * ent
            tag, val = struct.unpack_from(self.e + ("qQ" if self.is64 else "iI"), self.data, at)
            out.append({"tag": tag, "val": val, "_at": at})
        return out

    def dyn_val(self, tag: int) -> int | None:
        return next((d["val"] for d in self.dyn if d["tag"] == tag), None)

    def vaddr_to_off(self, vaddr: int) -> int | None:
        for p in self.phdrs:
            if p["p_type"] == PT_LOAD and p["p_vaddr"] <= vaddr < p["p_vaddr"] + p["p_filesz"]:
                return p["p_offset"] + vaddr - p["p_vaddr"]
        return None

    def section(self, name: str) -> dict | None:
        return next((s for s in self.shdrs if s["name"] == name), None)

    def boundaries(self) -> list[int]:
        """Every offset where a header, a header table entry, a section or a segment starts or ends."""
        b = {0, 4, 5, 6, 16, 18, 20, 24, self.ehsize - 1, self.ehsize}
        b |= {o for o, _ in self.ehdr_fields.values()}
        for i in range(self.phnum + 1):
            b.add(self.phoff + i * self.phentsize)
        for i in range(self.shnum + 1):
            b.add(self.shoff + i * self.shentsize)
        for s in self.shdrs:
            if s["sh_type"] != SHT_NOBITS:
                b |= {s["sh_offset"], s["sh_offset"] + s["sh_size"]}
        for p in self.phdrs:
            b |= {p["p_offset"], p["p_offset"] + p["p_filesz"]}
        for d in self.dyn:
            b.add(d["_at"])
        return sorted(x for x in b if 0 < x < len(self.data))


class Buf:
    """A mutable copy of a base file with typed field writes."""

    def __init__(self, lay: Layout) -> None:
        self.lay = lay
        self.b = bytearray(lay.data)

    def put(self, at: int, fmt: str, value: int) -> Buf:
        size = struct.calcsize(fmt)
        if at >= 0 and at + size <= len(self.b):
            value &= (1 << (8 * size)) - 1
            if fmt.islower():  # signed formats
                value -= (1 << (8 * size)) if value >> (8 * size - 1) else 0
            struct.pack_into(self.lay.e + fmt, self.b, at, value)
        return self

    def field(self, row: dict, table: dict[str, tuple[int, str]], name: str, value: int) -> Buf:
        off, fmt = table[name]
        return self.put(row["_at"] + off, fmt, value)

    def ehdr(self, name: str, value: int) -> Buf:
        off, fmt = self.lay.ehdr_fields[name]
        return self.put(off, fmt, value)

    def dyn_val(self, entry: dict, value: int) -> Buf:
        return self.put(entry["_at"] + (8 if self.lay.is64 else 4), "Q" if self.lay.is64 else "I", value)

    def dyn_tag(self, entry: dict, tag: int) -> Buf:
        return self.put(entry["_at"], "q" if self.lay.is64 else "i", tag)

    def flip_bits(self, rng: random.Random, lo: int, hi: int, n: int) -> Buf:
        hi = min(hi, len(self.b))
        for _ in range(n):
            if hi > lo:
                pos = rng.randrange(lo, hi)
                self.b[pos] ^= 1 << rng.randrange(8)
        return self

    def bytes(self) -> bytes:
        return bytes(self.b)


# -- mutation kinds ------------------------------------------------------------------------------------
Gen = Iterator[tuple[str, bytes]]


def m_truncate(lay: Layout, rng: random.Random) -> Gen:
    cuts = lay.boundaries()
    for cut in sorted(rng.sample(cuts, min(len(cuts), 8))):
        yield f"cut{cut:#x}", lay.data[:cut]
    for cut in (1, 3, 15, len(lay.data) - 1):
        yield f"cut{cut:#x}", lay.data[:cut]


def m_flip_ehdr(lay: Layout, rng: random.Random) -> Gen:
    for i in range(3):
        yield f"ehdr{i}", Buf(lay).flip_bits(rng, 4, lay.ehsize, rng.randint(1, 3)).bytes()
    for name in rng.sample(("e_phnum", "e_shnum", "e_shstrndx", "e_phentsize", "e_shentsize", "e_phoff", "e_shoff"), 4):
        yield f"{name}=max", Buf(lay).ehdr(name, 0xFFFFFFFFFFFFFFFF).bytes()
    yield "class=3", Buf(lay).put(4, "B", 3).bytes()
    yield "bigendian", Buf(lay).put(5, "B", 2 if lay.e == "<" else 1).bytes()
    yield "class-swapped", Buf(lay).put(4, "B", 1 if lay.is64 else 2).bytes()


def m_flip_phdr(lay: Layout, rng: random.Random) -> Gen:
    end = lay.phoff + lay.phnum * lay.phentsize
    for i in range(6):
        yield f"phdr{i}", Buf(lay).flip_bits(rng, lay.phoff, end, rng.randint(1, 4)).bytes()


def m_flip_shdr(lay: Layout, rng: random.Random) -> Gen:
    end = lay.shoff + lay.shnum * lay.shentsize
    for i in range(6):
        yield f"shdr{i}", Buf(lay).flip_bits(rng, lay.shoff, end, rng.randint(1, 4)).bytes()


def m_absurd(lay: Layout, rng: random.Random) -> Gen:
    """Sizes and offsets the file does not back: must be refused, never allocated."""
    size = len(lay.data)
    values = (*ABSURD, size, size + 1, size - 1)
    for _i in range(5):
        s = rng.choice(lay.shdrs[1:])
        name = rng.choice(("sh_size", "sh_offset", "sh_size", "sh_entsize"))
        v = rng.choice(values)
        yield f"{s['name']}.{name}={v:#x}", Buf(lay).field(s, lay.sh_fields, name, v).bytes()
    for _i in range(5):
        p = rng.choice(lay.phdrs)
        name = rng.choice(("p_filesz", "p_offset", "p_filesz", "p_vaddr", "p_memsz"))
        v = rng.choice(values)
        yield f"ph{p['p_type']:#x}.{name}={v:#x}", Buf(lay).field(p, lay.ph_fields, name, v).bytes()
    dyn = next((p for p in lay.phdrs if p["p_type"] == PT_DYNAMIC), None)
    if dyn is not None:
        for v in rng.sample((0xFFFFFFF0, 1 << 40, size), 1):
            yield f"PT_DYNAMIC.p_filesz={v:#x}", Buf(lay).field(dyn, lay.ph_fields, "p_filesz", v).bytes()


def m_overlap(lay: Layout, rng: random.Random) -> Gen:
    """Sections made to overlap each other or the headers."""
    secs = [s for s in lay.shdrs[1:] if s["sh_type"] != SHT_NOBITS and s["sh_size"]]
    for _i in range(4):
        a, b = rng.sample(secs, 2)
        buf = Buf(lay).field(a, lay.sh_fields, "sh_offset", b["sh_offset"] + rng.randrange(0, 8))
        if rng.random() < 0.5:
            buf.field(a, lay.sh_fields, "sh_size", b["sh_size"] + a["sh_size"])
        yield f"{a['name']}-over-{b['name']}", buf.bytes()
    dynsym = next((s for s in lay.shdrs if s["sh_type"] == SHT_DYNSYM), None)
    if dynsym is not None:  # symbol table read from the ELF header / program headers
        yield "dynsym-over-ehdr", Buf(lay).field(dynsym, lay.sh_fields, "sh_offset", 0).bytes()
        yield "shdrs-over-phdrs", Buf(lay).ehdr("e_shoff", lay.phoff).bytes()


def m_dynamic(lay: Layout, rng: random.Random) -> Gen:
    """No DT_NULL; string offsets of DT_NEEDED/SONAME/RPATH/RUNPATH out of range; bad STRTAB/STRSZ."""
    if not lay.dyn:
        return
    buf = Buf(lay)
    for d in lay.dyn:
        if d["tag"] == DT_NULL:
            buf.dyn_tag(d, DT_DEBUG)
    yield "no-DT_NULL", buf.bytes()
    dyn = next(p for p in lay.phdrs if p["p_type"] == PT_DYNAMIC)
    n_real = next((i for i, d in enumerate(lay.dyn) if d["tag"] == DT_NULL), len(lay.dyn))
    ent = 16 if lay.is64 else 8
    yield "dynamic-cut-before-DT_NULL", Buf(lay).field(dyn, lay.ph_fields, "p_filesz", n_real * ent).bytes()
    yield "dynamic-odd-size", Buf(lay).field(dyn, lay.ph_fields, "p_filesz", n_real * ent + 3).bytes()
    strsz = lay.dyn_val(DT_STRSZ) or 0
    bad = (strsz, strsz + 1, 0x7FFFFFFF, 0xFFFFFFFFFFFFFFFF, 1 << 63)
    first = lay.dyn[0]
    for tag, label in ((DT_NEEDED, "NEEDED"), (DT_SONAME, "SONAME"), (DT_RUNPATH, "RUNPATH"), (DT_RPATH, "RPATH")):
        entry = next((d for d in lay.dyn if d["tag"] == tag), None)
        for v in rng.sample(bad, 1):
            b = Buf(lay)
            if entry is None:  # turn the first entry into the tag under test
                b.dyn_tag(first, tag)
            b.dyn_val(entry or first, v)
            yield f"DT_{label}={v:#x}", b.bytes()
    for tag, label in ((DT_STRTAB, "STRTAB"), (DT_STRSZ, "STRSZ")):
        entry = next((d for d in lay.dyn if d["tag"] == tag), None)
        if entry is not None:
            for v in rng.sample((0, 0xFFFFFFFFFFFFFFFF, len(lay.data) * 4), 1):
                yield f"DT_{label}={v:#x}", Buf(lay).dyn_val(entry, v).bytes()
    # every entry's value replaced by garbage, one at a time
    for i in range(3):
        d = rng.choice(lay.dyn[:n_real] or lay.dyn)
        yield f"dyn[{d['tag']:#x}]=garbage{i}", Buf(lay).dyn_val(d, rng.choice((*ABSURD, rng.getrandbits(32)))).bytes()
    # a dynamic section that is one huge repetition of DT_NEEDED
    b = Buf(lay)
    for d in lay.dyn:
        b.dyn_tag(d, DT_NEEDED).dyn_val(d, 1)
    yield "all-DT_NEEDED", b.bytes()


def m_versions(lay: Layout, rng: random.Random) -> Gen:
    versym, count = lay.dyn_val(DT_VERSYM), 0
    dynsym = next((s for s in lay.shdrs if s["sh_type"] == SHT_DYNSYM), None)
    if dynsym is not None:
        count = dynsym["sh_size"] // (24 if lay.is64 else 16)
    vs_off = lay.vaddr_to_off(versym) if versym is not None else None
    if vs_off is not None and count:
        for label, pick in (
            ("0x7fff", lambda i: 0x7FFF),
            ("hidden-all", lambda i: 0xFFFF),
            ("random", lambda i: rng.getrandbits(16)),
            ("2..", lambda i: 2 + i),
        ):
            b = Buf(lay)
            for i in range(1, count):
                b.put(vs_off + 2 * i, "H", pick(i))
            yield f"versym-{label}", b.bytes()
    for tag, num_tag, name in ((DT_VERNEED, DT_VERNEEDNUM, "verneed"), (DT_VERDEF, DT_VERDEFNUM, "verdef")):
        addr = lay.dyn_val(tag)
        off = lay.vaddr_to_off(addr) if addr is not None else None
        if off is None:
            continue
        num_entry = next(d for d in lay.dyn if d["tag"] == num_tag)
        tag_entry = next(d for d in lay.dyn if d["tag"] == tag)
        yield f"{name}num=max", Buf(lay).dyn_val(num_entry, 0xFFFFFFFF).bytes()
        yield f"{name}-addr-unbacked", Buf(lay).dyn_val(tag_entry, 1 << 40).bytes()
        if name == "verneed":  # vn_cnt, vn_file, vn_aux, vn_next; vernaux: vna_name, vna_next
            yield "vn_next-self", Buf(lay).put(off + 12, "I", 0).put(off + 12, "I", 0xFFFFFFF0).bytes()
            yield "vn_next-loop", Buf(lay).put(off + 12, "I", 0).bytes()
            yield "vn_aux-huge", Buf(lay).put(off + 8, "I", 0xFFFFFFF0).bytes()
            yield "vn_file-oob", Buf(lay).put(off + 4, "I", 0xFFFFFF).bytes()
            yield "vn_cnt-max", Buf(lay).put(off + 2, "H", 0xFFFF).bytes()
            aux = off + struct.unpack_from(lay.e + "I", lay.data, off + 8)[0]
            yield "vna_name-oob", Buf(lay).put(aux + 8, "I", 0xFFFFFFF).bytes()
            yield "vna_next-self", Buf(lay).put(aux + 12, "I", 0xFFFFFFF0).bytes()
        else:  # vd_flags, vd_ndx, vd_cnt, vd_hash, vd_aux, vd_next
            yield "vd_aux-huge", Buf(lay).put(off + 12, "I", 0xFFFFFFF0).bytes()
            yield "vd_next-back", Buf(lay).put(off + 16, "I", 0xFFFFFFF0).bytes()
            yield "vd_ndx-max", Buf(lay).put(off + 4, "H", 0xFFFF).bytes()
            aux = off + struct.unpack_from(lay.e + "I", lay.data, off + 12)[0]
            yield "vda_name-oob", Buf(lay).put(aux, "I", 0xFFFFFFF).bytes()
        for i in range(3):
            yield f"{name}-flip{i}", Buf(lay).flip_bits(rng, off, off + 64, 3).bytes()


def m_eh_frame(lay: Layout, rng: random.Random) -> Gen:
    sec = lay.section(".eh_frame")
    if sec is not None and sec["sh_size"] >= 8:
        off, end = sec["sh_offset"], sec["sh_offset"] + sec["sh_size"]
        records, pos = [], off
        while pos + 4 <= end:
            (length,) = struct.unpack_from(lay.e + "I", lay.data, pos)
            if length == 0 or length == 0xFFFFFFFF:
                break
            records.append(pos)
            pos += 4 + length
        for i, rec in enumerate(records[:2]):
            for v in (0xFFFFFFFF, 1, 0x7FFFFFFF):
                yield f"eh_frame[{i}].len={v:#x}", Buf(lay).put(rec, "I", v).bytes()
        if records:  # 64-bit extended length that is absurd
            yield "eh_frame.len64", Buf(lay).put(records[0], "I", 0xFFFFFFFF).put(records[0] + 4, "Q", 1 << 62).bytes()
        for i in range(2):
            yield f"eh_frame-flip{i}", Buf(lay).flip_bits(rng, off, end, 6).bytes()
    hdr = lay.section(".eh_frame_hdr")
    if hdr is not None:
        o = hdr["sh_offset"]
        yield "eh_frame_hdr.count=max", Buf(lay).put(o + 8, "I", 0xFFFFFFFF).bytes()
        yield "eh_frame_hdr.count=big", Buf(lay).put(o + 8, "I", 0x3FFFFF).bytes()
        yield "eh_frame_hdr.enc", Buf(lay).put(o + 1, "B", 0x0C).bytes()
        for v in (0xFFFFFFFFFFFFFFF0, 0x8000000000000000):  # found by tests/fuzz: int64 overflow
            yield f"eh_frame_hdr.sh_addr={v:#x}", Buf(lay).field(hdr, lay.sh_fields, "sh_addr", v).bytes()


def m_symbols(lay: Layout, rng: random.Random) -> Gen:
    """Huge symbol counts, from .dynsym's size or (without section headers) from the hash tables."""
    dynsym = next((s for s in lay.shdrs if s["sh_type"] == SHT_DYNSYM), None)
    if dynsym is not None:
        for v in (0xFFFFFFFFFFFFFFF0, (1 << 24) * 24, dynsym["sh_size"] * 1000, dynsym["sh_size"] + 7):
            yield f"dynsym.sh_size={v:#x}", Buf(lay).field(dynsym, lay.sh_fields, "sh_size", v).bytes()
    no_sh = Buf(lay).ehdr("e_shoff", 0).ehdr("e_shnum", 0)
    yield "no-section-headers", no_sh.bytes()
    for tag, _label in ((DT_GNU_HASH, "gnu_hash"), (DT_HASH, "hash")):
        addr = lay.dyn_val(tag)
        off = lay.vaddr_to_off(addr) if addr is not None else None
        if off is None:
            continue
        base = lambda: Buf(lay).ehdr("e_shoff", 0).ehdr("e_shnum", 0)  # noqa: E731
        if tag == DT_HASH:
            yield "hash.nchain=max", base().put(off + 4, "I", 0xFFFFFFFF).bytes()
            yield "hash.nchain=big", base().put(off + 4, "I", 0xFFFFFF).bytes()
        else:  # nbuckets, symoffset, bloom_size, bloom_shift
            yield "gnu_hash.nbuckets=max", base().put(off, "I", 0xFFFFFFFF).bytes()
            yield "gnu_hash.bloom=max", base().put(off + 8, "I", 0xFFFFFFFF).bytes()
            yield "gnu_hash.symoffset=max", base().put(off + 4, "I", 0xFFFFFFFF).bytes()
            nb, _, bloom, _ = struct.unpack_from(lay.e + "IIII", lay.data, off)
            b_off = off + 16 + bloom * (8 if lay.is64 else 4)
            b = base()
            for i in range(nb):
                b.put(b_off + 4 * i, "I", 0xFFFFFFF0)
            yield "gnu_hash.buckets=max", b.bytes()
            chains = b_off + nb * 4
            b = base()  # chains that never terminate (low bit never set) until the end of the file
            for p in range(chains, min(len(lay.data), chains + 4096), 4):
                b.put(p, "I", 0x2)
            yield "gnu_hash.chain-endless", b.bytes()


def m_random_text(lay: Layout, rng: random.Random) -> Gen:
    """Executable sections full of random bytes: disassembler resilience."""
    execs = [s for s in lay.shdrs if s["sh_flags"] & SHF_EXECINSTR and s["sh_type"] != SHT_NOBITS]
    for i in range(3):
        b = Buf(lay)
        for s in execs:
            b.b[s["sh_offset"] : s["sh_offset"] + s["sh_size"]] = rng.randbytes(s["sh_size"])
        if i == 2:  # plus many syscall opcodes (x86-64 `syscall`; aarch64 sees other garbage)
            # every 61 bytes: every 7 bytes costs the engine 1-3 s on libz (noted in the report)
            for s in execs:
                for p in range(s["sh_offset"], s["sh_offset"] + s["sh_size"] - 1, 61):
                    b.b[p : p + 2] = b"\x0f\x05"
        yield f"random-text{i}", b.bytes()
    # found by tests/fuzz: a 7-byte `lea rax, [rip+disp32]` starting 6 bytes before a section's end
    b = Buf(lay)
    for s in execs:
        if s["sh_size"] >= 6:
            end = s["sh_offset"] + s["sh_size"]
            b.b[end - 6 : end] = b"\x48\x8d\x05\x00\x00\x00"
    yield "lea-at-section-end", b.bytes()


def m_random(lay: Layout, rng: random.Random) -> Gen:
    """Random byte damage anywhere in the file (the top-up kind)."""
    i = 0
    while True:
        b = Buf(lay)
        for _ in range(rng.randint(1, 12)):
            pos = rng.randrange(len(b.b))
            b.b[pos] = rng.getrandbits(8) if rng.random() < 0.7 else rng.choice((0, 0xFF, 0x7F, 0x80))
        yield f"random{i}", b.bytes()
        i += 1


# -- algorithmic complexity: inputs that are valid-looking but make naive parsing quadratic -------------
def _append(data: bytes, extra: bytes) -> tuple[Buf, int, int]:
    """Append ``extra`` (16-aligned) and stretch the last PT_LOAD over it: (buffer, file offset, vaddr)."""
    lay = Layout(data)
    last = max((p for p in lay.phdrs if p["p_type"] == PT_LOAD), key=lambda p: p["p_offset"])
    start = len(data) + (-len(data)) % 16
    buf = Buf(lay)
    buf.b = bytearray(data.ljust(start, b"\0") + extra)
    size = len(buf.b) - last["p_offset"]
    buf.field(last, lay.ph_fields, "p_filesz", size).field(last, lay.ph_fields, "p_memsz", size)
    return buf, start, last["p_vaddr"] + start - last["p_offset"]


def _new_dynamic(
    data: bytes, entries: Callable[[int], list[tuple[int, int]]], strtab: bytes = b"\0", no_sections: bool = False
) -> bytes:
    """Move PT_DYNAMIC to appended ``entries(strtab_vaddr)`` (+ DT_NULL), with ``strtab`` appended too."""
    strtab = strtab.ljust(len(strtab) + (-len(strtab)) % 16, b"\0")
    n = len(entries(0)) + 1
    buf, start, vaddr = _append(data, strtab + b"\0" * (16 * n))
    rows = [*entries(vaddr), (DT_NULL, 0)]
    at = start + len(strtab)
    for i, (tag, val) in enumerate(rows):
        struct.pack_into("<qQ", buf.b, at + 16 * i, tag, val & 0xFFFFFFFFFFFFFFFF)
    dyn = next(p for p in buf.lay.phdrs if p["p_type"] == PT_DYNAMIC)
    buf.field(dyn, buf.lay.ph_fields, "p_offset", at).field(dyn, buf.lay.ph_fields, "p_filesz", 16 * n)
    if no_sections:  # the symbol count then comes from DT_HASH / DT_GNU_HASH
        buf.ehdr("e_shoff", 0).ehdr("e_shnum", 0)
    return buf.bytes()


def _kept(lay: Layout, drop: tuple[int, ...]) -> list[tuple[int, int]]:
    out = []
    for d in lay.dyn:
        if d["tag"] == DT_NULL:
            break
        if d["tag"] not in drop:
            out.append((d["tag"], d["val"]))
    return out


def m_complexity(lay: Layout, rng: random.Random) -> Gen:
    """Tens of thousands of DT_NEEDED, shared version/note/name chains, an unterminated hash chain."""
    if not lay.is64 or lay.e != "<" or not lay.dyn:
        return
    data = lay.data
    names = [f"libmissing{i}.so".encode() for i in range(5000)]
    offs = [1]
    for n in names[:-1]:
        offs.append(offs[-1] + len(n) + 1)
    strtab = b"\0" + b"\0".join(names) + b"\0"
    yield (
        "needed-5000-distinct",
        _new_dynamic(
            data,
            lambda sv: (
                [(DT_STRTAB, sv), (DT_STRSZ, len(strtab))]
                + [(DT_NEEDED, o) for o in offs]
                + _kept(lay, (DT_STRTAB, DT_STRSZ, DT_SONAME, DT_NEEDED))
            ),
            strtab,
        ),
    )
    yield (
        "needed-20000-same",
        _new_dynamic(
            data,
            lambda sv: (
                [(DT_STRTAB, sv), (DT_STRSZ, 16)]
                + [(DT_NEEDED, 1)] * 20000
                + _kept(lay, (DT_STRTAB, DT_STRSZ, DT_SONAME, DT_NEEDED))
            ),
            b"\0libmissing.so\0",
        ),
    )
    # 4096 verneed entries that all share one chain of 4096 vernaux entries: 16 M visits if unbounded
    nv = na = 4096
    buf, start, vaddr = _append(data, b"\0" * 16 * (nv + na))
    for i in range(nv):
        struct.pack_into("<HHIII", buf.b, start + 16 * i, 1, na, 1, 16 * (nv - i), 16)
    for j in range(na):
        struct.pack_into("<IHHII", buf.b, start + 16 * (nv + j), 0, 0, 2 + j, 1, 16)
    shared = buf.bytes()
    yield (
        "verneed-shared-chain",
        _new_dynamic(
            shared, lambda sv: [*_kept(Layout(shared), (DT_VERSYM,)), (DT_VERNEED, vaddr), (DT_VERNEEDNUM, nv)]
        ),
    )
    # 4000 SHT_NOTE sections over one 100 KB region, and 4000 names in a nul-free 100 KB table
    region, n = 100_000, 4000
    base = len(data) + (-len(data)) % 16
    for label, fill, row in (
        ("notes-overlapping", b"\0", lambda i: struct.pack("<IIQQQQIIQQ", 0, 7, 0, 0, base, region - i, 0, 0, 4, 0)),
        (
            "section-names-nul-free",
            b"A",
            lambda i: struct.pack(
                "<IIQQQQIIQQ", i % 97, 3 if i == 1 else 1, 0, 0, base, region if i == 1 else 0, 0, 0, 1, 0
            ),
        ),
    ):
        buf = Buf(lay)
        buf.b = bytearray(data.ljust(base, b"\0") + fill * region + b"".join(row(i) for i in range(n)))
        buf.ehdr("e_shoff", base + region).ehdr("e_shnum", n).ehdr("e_shstrndx", 1 if fill == b"A" else 0)
        yield label, buf.bytes()
    # DT_GNU_HASH whose last chain never sets the terminator bit (the count is walked, no sections)
    gh = struct.pack("<IIII", 1, 1, 1, 0) + b"\0" * 8 + struct.pack("<I", 1) + struct.pack("<I", 2) * 500_000
    buf, start, vaddr = _append(data, gh)
    endless = buf.bytes()
    yield (
        "gnu-hash-endless-chain",
        _new_dynamic(
            endless,
            lambda sv: [*_kept(Layout(endless), (DT_HASH, DT_GNU_HASH)), (DT_GNU_HASH, vaddr)],
            no_sections=True,
        ),
    )
    # 20000 dynamic symbols named by one 20 KB nul-free run: the same offset, then distinct offsets
    for label, name_of in (("dynsym-same-long-name", lambda i: 1), ("dynsym-overlapping-names", lambda i: 1 + i)):
        run = b"\0" + b"B" * 40_000 + b"\0"
        syms = bytes(24) + b"".join(struct.pack("<IBBHQQ", name_of(i), 0x12, 0, 0, 0, 0) for i in range(19_999))
        hashtab = struct.pack("<II", 1, 20_000) + bytes(8)
        buf, start, vaddr = _append(data, run + bytes((-len(run)) % 16) + syms + hashtab)
        sym_v = vaddr + len(run) + (-len(run)) % 16
        long_names = buf.bytes()
        tags = [
            *_kept(Layout(long_names), (DT_STRTAB, DT_STRSZ, 6, DT_HASH, DT_GNU_HASH, DT_VERSYM, DT_SONAME)),
            (DT_STRTAB, vaddr),
            (DT_STRSZ, len(run)),
            (6, sym_v),
            (DT_HASH, sym_v + len(syms)),
        ]
        yield label, _new_dynamic(long_names, lambda sv, tags=tags: tags, no_sections=True)


KINDS: dict[str, Callable[[Layout, random.Random], Gen]] = {
    "truncate": m_truncate,
    "flip_ehdr": m_flip_ehdr,
    "flip_phdr": m_flip_phdr,
    "flip_shdr": m_flip_shdr,
    "absurd_size": m_absurd,
    "overlap": m_overlap,
    "dynamic": m_dynamic,
    "versions": m_versions,
    "eh_frame": m_eh_frame,
    "symbols": m_symbols,
    "random_text": m_random_text,
}
COMPLEXITY_BASES = ("lib",)  # one small base is enough: these cases are about size, not content


@dataclass
class Mutant:
    name: str
    kind: str
    path: Path
    args: list[str] = field(default_factory=list)
    as_dep: bool = False


def mutations(bases: dict[str, bytes], seed: int = SEED) -> Iterator[tuple[str, str, str, bytes]]:
    """``(base, kind, name, bytes)`` of every mutant, unique, in a fixed order for a fixed seed."""
    rng = random.Random(seed)
    seen: set[bytes] = set()
    layouts = {name: Layout(data) for name, data in bases.items()}
    for kind, gen in KINDS.items():
        for base, lay in layouts.items():
            for name, data in gen(lay, rng):
                if data not in seen:
                    seen.add(data)
                    yield base, kind, name, data
    for base in COMPLEXITY_BASES:
        for name, data in m_complexity(layouts[base], rng) if base in layouts else ():
            seen.add(data)
            yield base, "complexity", name, data
    randoms = {base: m_random(lay, rng) for base, lay in layouts.items()}
    while len(seen) < TARGET_MUTANTS:
        for base in layouts:
            name, data = next(randoms[base])
            if data not in seen:
                seen.add(data)
                yield base, "random_bytes", name, data


def generate(bases: dict[str, bytes], out: Path, seed: int = SEED) -> list[Mutant]:
    """Write the corpus under ``out``, one directory per mutant."""
    mutants: list[Mutant] = []
    for base, kind, name, data in mutations(bases, seed):
        d = out / f"{len(mutants):04d}"
        d.mkdir()
        p = d / f"lib{base}-{re.sub(r'[^A-Za-z0-9_.=-]', '_', name)[:60]}.so"
        p.write_bytes(data)
        mutants.append(Mutant(f"{base}/{kind}/{name}", kind, p))
    return mutants


def _digest(bases: dict[str, bytes], seed: int = SEED) -> str:
    h = hashlib.sha256()
    for base, kind, name, data in mutations(bases, seed):
        h.update(f"{base}/{kind}/{name}".encode())
        h.update(hashlib.sha256(data).digest())
    return h.hexdigest()


# -- bases ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    d = tmp_path_factory.mktemp("bases")
    out = {"lib": compile_so(d / "liblib.so", [FIXTURES / "loader" / "lib.c"], define="foo").read_bytes()}
    feat = d / "libfeatures.so"
    subprocess.run(
        [
            "gcc",
            "-shared",
            "-fPIC",
            "-O1",
            "-Wl,--build-id",
            "-Wl,--hash-style=both",
            "-Wl,-soname,libfeatures.so",
            "-Wl,-rpath,$ORIGIN/../lib",
            "-Wl,--enable-new-dtags",
            "-o",
            str(feat),
            str(FIXTURES / "elf" / "features.c"),
        ],
        check=True,
        capture_output=True,
    )
    out["features"] = feat.read_bytes()
    if REAL_LIBRARY.exists():  # a small real library: versions defined, stripped, real .eh_frame
        out["z"] = REAL_LIBRARY.read_bytes()
    m32 = d / "lib32.so"
    if (
        subprocess.run(
            [
                "gcc",
                "-m32",
                "-shared",
                "-nostdlib",
                "-fPIC",
                "-o",
                str(m32),
                "-Wl,--hash-style=sysv",
                str(FIXTURES / "loader" / "lib.c"),
            ],
            check=False,  # no 32-bit multilib here: that seed is simply absent
            capture_output=True,
        ).returncode
        == 0
    ):
        out["i386"] = m32.read_bytes()
    if have("aarch64-linux-gnu-gcc"):
        out["a64"] = compile_so(d / "liba64.so", [FIXTURES / "loader" / "lib.c"], arch="aarch64").read_bytes()
    return out


@pytest.fixture(scope="module")
def dep_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A good root whose only DT_NEEDED is ``libmut.so``; mutants take that name in a -L directory."""
    d = tmp_path_factory.mktemp("deproot")
    stub = compile_so(d / "stub" / "libmut.so", [FIXTURES / "loader" / "lib.c"], define="foo")
    return compile_so(d / "libroot.so", [FIXTURES / "loader" / "user.c"], link=[stub])


# -- running one input ---------------------------------------------------------------------------------
@dataclass
class Tally:
    outcomes: Counter = field(default_factory=Counter)
    kinds: Counter = field(default_factory=Counter)
    slowest: tuple[float, str] = (0.0, "")
    seconds: Counter = field(default_factory=Counter)  # wall time per phase
    failures: list[str] = field(default_factory=list)

    def time(self, elapsed: float, what: str) -> None:
        if elapsed > self.slowest[0]:
            self.slowest = (elapsed, what)
        if elapsed > TIME_BUDGET:
            self.failures.append(f"{what}: took {elapsed:.2f}s (budget {TIME_BUDGET}s)")


def _on_alarm(signum: int, frame: object) -> None:
    raise Hang()


def guarded(fn: Callable[[], object], what: str, tally: Tally) -> object:
    """Run ``fn`` under the hang guards; record time; a hang or escaping exception is a failure."""
    faulthandler.dump_traceback_later(HANG_ALARM * 3, exit=True)  # last resort: a hang inside C code
    signal.alarm(HANG_ALARM)
    start = time.perf_counter()
    try:
        return fn()
    except Hang:
        tally.failures.append(f"{what}: hang (> {HANG_ALARM}s)")
        return None
    finally:
        signal.alarm(0)
        faulthandler.cancel_dump_traceback_later()
        tally.time(time.perf_counter() - start, what)


def check_cli(args: list[str], shown: str, what: str, tally: Tally, json_out: bool) -> int | None:
    code, _ = check_cli_output(args, shown, what, tally, json_out)
    return code


def check_cli_output(args: list[str], shown: str, what: str, tally: Tally, json_out: bool) -> tuple[int | None, str]:
    res = guarded(lambda: run_cli(args), what, tally)
    if res is None:
        return None, ""
    code, out, err = res  # type: ignore[misc]
    problems = []
    if code not in (0, 1, 2):
        problems.append(f"exit {code}")
    if "Traceback" in err or "Traceback" in out:
        problems.append("traceback")
    if code == 2:
        lines = err.splitlines()
        if len(lines) != 1 or not lines[0].startswith("uk-depscan: error: ") or shown not in lines[0]:
            problems.append("exit 2 without exactly one error line naming the file")
        if out:
            problems.append("exit 2 with output")
    elif code in (0, 1):
        if not out.strip():
            problems.append("empty result")
        elif json_out:
            try:
                json.loads(out)
            except ValueError as e:
                problems.append(f"JSON does not parse: {e}")
        else:
            if _CONTROL.search(out):
                problems.append(f"control character in text output: {_CONTROL.search(out).group(0)!r}")
            try:
                out.encode("utf-8")
            except UnicodeEncodeError as e:
                problems.append(f"text output cannot be written to a UTF-8 terminal: {e}")
    if problems:
        tally.failures.append(f"{what}: {', '.join(problems)}; stderr={err.strip()[:300]!r}")
    tally.outcomes[f"exit {code}"] += 1
    return code, out


def check_engine(path: Path, what: str, tally: Tally, disassemble: bool) -> None:
    """Function starts and (when the engine exists) the syscall scan: DepscanError or a result."""
    from uk_depscan.elf.file import open_elf
    from uk_depscan.elf.frames import function_starts
    from uk_depscan.errors import DepscanError

    try:
        from uk_depscan.syscalls.scan import scan_library
    except ImportError:
        scan_library = None

    def run() -> str:
        try:
            with open_elf(path) as elf:
                function_starts(elf)
                if scan_library is not None and disassemble:
                    scan_library(elf, no_cache=True)
            return "ok"
        except DepscanError:
            return "refused"
        except Exception as e:
            tally.failures.append(f"{what}: {type(e).__name__}: {e}")
            return "crash"

    outcome = guarded(run, what, tally)
    tally.outcomes[f"engine {outcome}"] += 1


def run_as_dependency(m: Mutant, dep_root: Path, tally: Tally) -> None:
    """``dep_root`` needs ``libmut.so``: give it the mutant's bytes in ``-L /L`` of a private sysroot."""
    sysroot = m.path.parent / "root"  # -L directories are searched inside --root
    (sysroot / "L").mkdir(parents=True)
    shutil.copyfile(m.path, sysroot / "L" / "libmut.so")
    tally.kinds["as_dependency"] += 1
    iso = ["-L", "/L", "--root", str(sysroot), "--no-ld-cache"]
    for cmd, js in (("scan", False), ("deps", True)):
        args = [cmd, str(dep_root), *iso, *(["--format", "json"] if js else SCAN_OPTS)]
        code, out = check_cli_output(args, str(dep_root), f"{cmd} {m.name} as dependency", tally, json_out=js)
        if code == 2:
            tally.failures.append(f"{cmd} {m.name} as dependency: exit 2 (a bad dependency is data)")
        elif js and code is not None:
            tally.outcomes["dependency " + _dep_fate(out)] += 1


def _dep_fate(out: str) -> str:
    """What became of ``libmut.so`` in a deps report: loaded, loaded with an error, or refused/missing."""
    try:
        tree = json.loads(out)["targets"][0]["dependencies"]
    except (ValueError, KeyError, IndexError):
        return "unparsed"
    node = next((o for o in tree["load_order"] if o["needed_name"] == "libmut.so"), None)
    if node is None:
        return "missing"
    return "error" if node["error"] else "loaded"


@pytest.mark.slow  # ~45 s: thousands of mutated ELF files, each through every entry point
def test_mutation_corpus(
    bases: dict[str, bytes], dep_root: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    mutants = generate(bases, corpus)
    assert len(mutants) >= MIN_MUTANTS
    assert _digest(bases) == _digest(bases), "mutant generation is not deterministic"
    sysroot = tmp_path / "sysroot"  # empty: nothing from the host leaks into the results
    sysroot.mkdir()
    iso = ["--root", str(sysroot), "--no-ld-cache"]
    tally = Tally()
    fds_before = len(os.listdir("/proc/self/fd"))
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    old_handler = signal.signal(signal.SIGALRM, _on_alarm)
    start = time.perf_counter()
    try:
        for i, m in enumerate(mutants):
            tally.kinds[m.kind] += 1
            t0 = time.perf_counter()
            p = str(m.path)
            codes = (
                check_cli(["scan", p, *iso, *SCAN_OPTS], p, f"scan {m.name}", tally, json_out=False),
                check_cli(["deps", p, "--format", "json", *iso], p, f"deps {m.name}", tally, json_out=True),
            )
            tally.outcomes["/".join(str(c) for c in codes)] += 1
            t1 = time.perf_counter()
            tally.seconds["root runs"] += t1 - t0
            if i % DEP_EVERY == 0 or m.kind == "complexity":  # a bad dependency is data, never fatal
                run_as_dependency(m, dep_root, tally)
            t2 = time.perf_counter()
            tally.seconds["dependency runs"] += t2 - t1
            if m.kind in ("random_text", "eh_frame", "symbols"):
                check_engine(m.path, f"engine {m.name}", tally, disassemble=m.kind == "random_text")
            tally.seconds["engine"] += time.perf_counter() - t2
    finally:
        signal.signal(signal.SIGALRM, old_handler)
    total = time.perf_counter() - start
    rss_growth_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    fds_after = len(os.listdir("/proc/self/fd"))
    summary = (
        f"mutants={len(mutants)} kinds={dict(sorted(tally.kinds.items()))} "
        f"outcomes(scan/deps)={dict(sorted(tally.outcomes.items()))} "
        f"slowest={tally.slowest[0]:.3f}s ({tally.slowest[1]}) total={total:.1f}s "
        f"({', '.join(f'{k} {v:.1f}s' for k, v in tally.seconds.items())}) "
        f"rss_growth={rss_growth_mb:.0f}MB fds={fds_before}->{fds_after}"
    )
    request.node.user_properties.append(("mutation_summary", summary))
    print(summary)
    assert not tally.failures, f"{len(tally.failures)} failures:\n" + "\n".join(tally.failures[:40])
    assert rss_growth_mb < RSS_BUDGET_MB, summary
    assert fds_after <= fds_before + 16, f"file descriptors leak: {summary}"


# -- hostile search paths and dependency graphs ---------------------------------------------------------
def _deps_json(args: list[str], sysroot: Path) -> tuple[int, dict]:
    """``deps --format json`` isolated in ``sysroot`` (where ``-L /x`` means ``sysroot/x``)."""
    sysroot.mkdir(exist_ok=True)
    start = time.perf_counter()
    code, out, err = run_cli(["deps", *args, "--format", "json", "--root", str(sysroot), "--no-ld-cache"])
    assert time.perf_counter() - start < TIME_BUDGET
    assert code in (0, 1) and "Traceback" not in err, (code, err)
    (target,) = json.loads(out)["targets"]
    return code, target


def test_symlink_loops_in_library_path_are_skipped(dep_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    loops, good = root / "loops", root / "good"
    loops.mkdir(parents=True)
    good.mkdir()
    os.symlink("libmut.so", loops / "libmut.so")  # a self-loop named like the needed library
    os.symlink("libtwo.so", loops / "libone.so")
    os.symlink("libone.so", loops / "libtwo.so")  # and a two-link cycle
    shutil.copyfile(dep_root.parent / "stub" / "libmut.so", good / "libmut.so")
    code, doc = _deps_json([str(dep_root), "-L", "/loops"], root)
    assert code == 1
    (missing,) = doc["dependencies"]["missing"]
    assert missing["needed_name"] == "libmut.so"
    assert {"path": str(loops / "libmut.so"), "outcome": "symbolic link loop"} in missing["tried"]
    # ld.so skips the loop and searches on: the next directory provides the library
    code, doc = _deps_json([str(dep_root), "-L", "/loops:/good"], root)
    assert code == 0
    assert doc["dependencies"]["load_order"][1]["path"] == str(good / "libmut.so")
    # the loops as inputs: one clear line each
    for name in ("libmut.so", "libone.so"):
        code, _out, err = run_cli(["deps", str(loops / name)])
        assert code == 2 and "symbolic links" in err and err.count("\n") == 1


def test_fifo_named_like_a_library_or_given_as_input_does_not_block(dep_root: Path, tmp_path: Path) -> None:
    fifos = tmp_path / "root" / "fifos"
    fifos.mkdir(parents=True)
    os.mkfifo(fifos / "libmut.so")
    (tmp_path / "root" / "etc").mkdir()
    os.mkfifo(tmp_path / "root" / "etc" / "ld.so.conf")  # and where the sysroot's configuration is read
    code, doc = _deps_json([str(dep_root), "-L", "/fifos"], tmp_path / "root")
    assert code == 1 and "not a regular file" in doc["dependencies"]["missing"][0]["reason"]
    code, _out, err = run_cli(["scan", str(fifos / "libmut.so")])
    assert code == 2 and err.startswith("uk-depscan: error: ") and "not a regular file" in err
    assert err.count("\n") == 1


def test_cyclic_and_self_referential_needed(tmp_path: Path) -> None:
    src = FIXTURES / "loader" / "lib.c"
    d = tmp_path / "root" / "L"
    first_a = compile_so(tmp_path / "tmp" / "liba.so", [src], define="a_func")
    libb = compile_so(d / "libb.so", [src], link=[first_a], define="b_func")
    liba = compile_so(d / "liba.so", [src], link=[libb], define="a_func")  # a → b → a
    first_self = compile_so(tmp_path / "tmp2" / "libself.so", [src], define="s_func")
    libself = compile_so(d / "libself.so", [src], link=[first_self], define="s_func")  # self → self
    code, doc = _deps_json([str(liba), "-L", "/L"], tmp_path / "root")
    tree = doc["dependencies"]
    assert code == 0 and [o["path"] for o in tree["load_order"]] == [str(liba), str(d / "libb.so")]
    assert {(e["from"], e["needed"], e["to"]) for e in tree["edges"]} == {(0, "libb.so", 1), (1, "liba.so", 0)}
    code, doc = _deps_json([str(libself)], tmp_path / "root")
    assert code == 0 and doc["dependencies"]["edges"] == [{"from": 0, "needed": "libself.so", "to": 0}]


@pytest.mark.skipif(
    os.geteuid() == 0, reason="root reads chmod 000 files: run the tests as a non-root user to check permission errors"
)
def test_unreadable_files(dep_root: Path, tmp_path: Path) -> None:
    libdir = tmp_path / "root" / "L"
    libdir.mkdir(parents=True)
    locked = libdir / "libmut.so"
    shutil.copyfile(dep_root.parent / "stub" / "libmut.so", locked)
    locked.chmod(0)
    try:
        code, _, err = run_cli(["scan", str(locked)])
        assert code == 2 and str(locked) in err and "ermission denied" in err and err.count("\n") == 1
        code, doc = _deps_json([str(dep_root), "-L", "/L"], tmp_path / "root")
        assert code == 1 and "ermission denied" in json.dumps(doc["dependencies"]["missing"])
        code, _out, err = run_cli(["deps", str(libdir), "--format", "json"])  # directory: skipped, not fatal
        assert code == 2 and "no ELF objects" in err
    finally:
        locked.chmod(0o644)
