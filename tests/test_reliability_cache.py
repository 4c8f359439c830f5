"""The scan cache is only ever an accelerator: a crafted-cache corpus, patched binaries, the memo.

Every variant of the corpus starts from a good cache holding the entries of two fixture libraries
(the target and "another library": the same sources built -O0, so same export names at other
addresses), damages it one way, and runs ``uk-depscan scan TARGET --format json``.  The report
must be byte-identical to the ``--no-cache`` reference, with at most one warning; the run after
it must be a clean warm hit (no warning, entry valid).  The outcome counts are printed (-s).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import run_cli
from helpers_syscalls import build_syscall_fixture

from uk_depscan.elf.file import open_elf
from uk_depscan.store import cache as store_cache
from uk_depscan.store import identity
from uk_depscan.store.cache import CACHE_FILE, CacheStore, entry_digest
from uk_depscan.syscalls import cache as scan_cache
from uk_depscan.syscalls.scan import ENGINE_VERSION, scan_library

SOURCES = [
    ("x86_64/direct.c", []),
    ("common/wrappers.c", []),
    ("common/noplt.c", ["-fno-plt"]),
    ("../requests/requests.c", []),
]
ARGS = ["--format", "json", "--libc", "glibc"]
OUTCOMES: Counter[str] = Counter()


@dataclass
class Ctx:
    """What a variant may touch: the cache directory, the database, the two libraries' rows."""

    dir: Path
    db: Path
    key: str
    row: dict
    other: dict
    lib: Path
    tmp: Path


@pytest.fixture(scope="module")
def libs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("corpus")
    lib = build_syscall_fixture("x86_64", d / "target", "-O2", SOURCES)
    other = build_syscall_fixture("x86_64", d / "other", "-O0", SOURCES)
    return lib, other


@pytest.fixture(scope="module")
def pristine(libs: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """A cache directory with both entries, and the target's reference report."""
    lib, other = libs
    d = tmp_path_factory.mktemp("pristine")
    saved = os.environ.get("UK_DEPSCAN_CACHE_DIR")
    os.environ["UK_DEPSCAN_CACHE_DIR"] = str(d)
    try:
        code, ref, err = run_cli(["scan", str(lib), *ARGS, "--no-cache"])
        assert code in (0, 1), err
        for p in (lib, other):
            identity._process_memo.clear()  # as in a new process: the digest goes to the database memo
            run_cli(["scan", str(p), *ARGS])
    finally:
        if saved is None:
            del os.environ["UK_DEPSCAN_CACHE_DIR"]
        else:
            os.environ["UK_DEPSCAN_CACHE_DIR"] = saved
    assert (d / CACHE_FILE).is_file()
    with open_elf(lib) as elf:
        key = scan_cache.cache_key(identity.object_identity(elf), elf.machine_name, ENGINE_VERSION)
    return d, key, ref


def _rows(db: Path) -> dict[str, dict]:
    with contextlib.closing(sqlite3.connect(db)) as c:
        c.row_factory = sqlite3.Row
        return {r["key"]: dict(r) for r in c.execute("SELECT * FROM entries")}


def put(ctx: Ctx, *, key: str | None = None, redigest: bool = True, **cols: object) -> None:
    """Rewrite the target's row with ``cols`` changed (digest recomputed unless redigest=False)."""
    row = dict(ctx.row, **cols)
    row["key"] = key or ctx.key
    if redigest:
        row["digest"] = entry_digest(row["key"], row["object"], row["size"], row["meta"], row["data"])
    with contextlib.closing(sqlite3.connect(ctx.db)) as c, c:
        c.execute("DELETE FROM entries WHERE key = ?", (ctx.key,))
        c.execute(
            "INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?, ?)",
            (row["key"], row["object"], row["size"], row["meta"], row["data"], row["digest"], row["stored"]),
        )


def meta_of(ctx: Ctx) -> dict:
    return json.loads(ctx.row["meta"])


def with_meta(change: Callable[[dict], object]) -> Callable[[Ctx], None]:
    def mutate(ctx: Ctx) -> None:
        doc = meta_of(ctx)
        change(doc)
        put(ctx, meta=json.dumps(doc).encode())

    return mutate


def raw_meta(data: bytes) -> Callable[[Ctx], None]:
    return lambda ctx: put(ctx, meta=data)


def first_site(field: str, value: object) -> Callable[[dict], None]:
    def change(doc: dict) -> None:
        doc["sites"][0][field] = value

    return change


def set_key(k: str, value: object) -> Callable[[dict], None]:
    return lambda doc: doc.__setitem__(k, value)


def arrays_of(ctx: Ctx) -> tuple[list[int], bytes]:
    return meta_of(ctx)["arrays"], ctx.row["data"]


def with_arrays(change: Callable[[list], None]) -> Callable[[Ctx], None]:
    """Decode the entry's arrays (the layout the cache writes), let ``change`` edit them (a list of
    numpy arrays: func_starts, indptr, indices, …), store them back."""
    import numpy as np

    def mutate(ctx: Ctx) -> None:
        counts, data = arrays_of(ctx)
        dt = [d for _, d, _ in scan_cache.ARRAYS]
        arrs, off = [], 0
        for c, d in zip(counts, dt, strict=True):
            a = np.frombuffer(data, dtype=d, count=c, offset=off).copy()
            arrs.append(a)
            off += a.nbytes
        change(arrs)
        doc = meta_of(ctx)
        doc["arrays"] = [len(a) for a in arrs]
        put(ctx, meta=json.dumps(doc).encode(), data=b"".join(a.tobytes() for a in arrs))

    return mutate


def sql(*stmts: str) -> Callable[[Ctx], None]:
    def mutate(ctx: Ctx) -> None:
        with contextlib.closing(sqlite3.connect(ctx.db)) as c, c:
            for s in stmts:
                c.execute(s)

    return mutate


def replace_db(make: Callable[[Path, Ctx], None]) -> Callable[[Ctx], None]:
    def mutate(ctx: Ctx) -> None:
        for p in ctx.dir.glob(CACHE_FILE + "*"):
            p.unlink()
        make(ctx.db, ctx)

    return mutate


def _fifo(p: Path, _ctx: Ctx) -> None:
    os.mkfifo(p)


def _link(target: str) -> Callable[[Path, Ctx], None]:
    return lambda p, _ctx: os.symlink(target, p)


def _bytes(data: bytes) -> Callable[[Path, Ctx], None]:
    return lambda p, _ctx: p.write_bytes(data)


def _truncated(ctx: Ctx) -> None:
    data = ctx.db.read_bytes()
    ctx.db.write_bytes(data[: len(data) // 2])


def _page_flip(ctx: Ctx) -> None:
    """Overwrite one page in the middle of the file (where the entry's overflow pages live)."""
    data = bytearray(ctx.db.read_bytes())
    page = int.from_bytes(data[16:18], "big") or 65536
    mid = (len(data) // page // 2) * page
    data[mid : mid + page] = os.urandom(page)
    ctx.db.write_bytes(bytes(data))


def _sparse(p: Path, _ctx: Ctx) -> None:
    with open(p, "wb") as fh:
        fh.write(b"not sqlite" * 10)
        fh.truncate(2 << 30)


def _other_as_is(ctx: Ctx) -> None:
    o = ctx.other
    put(ctx, redigest=False, object=o["object"], size=o["size"], meta=o["meta"], data=o["data"], digest=o["digest"])


def _other_rekeyed(ctx: Ctx) -> None:
    """Another library's entry moved under this key with key, object and size columns made consistent."""
    doc = json.loads(ctx.other["meta"])
    doc["key"] = ctx.key
    put(ctx, meta=json.dumps(doc).encode(), data=ctx.other["data"])


def _other_data(ctx: Ctx) -> None:
    put(ctx, data=ctx.other["data"])


def _bad_memo(sha: str | None = None, probe: bytes | None = None) -> Callable[[Ctx], None]:
    def mutate(ctx: Ctx) -> None:
        with contextlib.closing(sqlite3.connect(ctx.db)) as c, c:
            c.execute(
                "UPDATE identities SET sha256 = coalesce(?, sha256), probe = coalesce(?, probe)",
                (sha if sha is not None else None, probe),
            )

    return mutate


def _memo_other(ctx: Ctx) -> None:
    _bad_memo(sha=ctx.other["object"])(ctx)


def _legacy(ctx: Ctx) -> None:
    (ctx.dir / f"syscalls-{ENGINE_VERSION}-x86_64-bid-00-1.json").write_text('{"key": [] }')
    (ctx.dir / f"syscalls-{ENGINE_VERSION}-x86_64-bid-00-1.npz").write_bytes(b"PK\x03\x04junk")


def _stale_tmp(ctx: Ctx) -> None:
    old = ctx.dir / ".syscalls-x.npz.tmp"
    old.write_bytes(b"x" * 100)
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    (ctx.dir / ".syscalls-young.json.tmp").write_bytes(b"y")


def _wal_garbage(ctx: Ctx) -> None:
    ctx.db.with_name(CACHE_FILE + "-wal").write_bytes(os.urandom(8192))


def _companion_fifo(suffix: str) -> Callable[[Ctx], None]:
    return lambda ctx: os.mkfifo(ctx.db.with_name(CACHE_FILE + suffix))


def _journal_dir(ctx: Ctx) -> None:
    ctx.db.with_name(CACHE_FILE + "-journal").mkdir()


def _dir_is_file(ctx: Ctx) -> None:
    shutil.rmtree(ctx.dir)
    ctx.dir.write_text("not a directory")


def _db_symlink_to_copy(ctx: Ctx) -> None:
    elsewhere = ctx.tmp / "elsewhere.sqlite3"
    shutil.copy(ctx.db, elsewhere)
    ctx.db.unlink()
    os.symlink(elsewhere, ctx.db)


def _int32_starts(ctx: Ctx) -> None:
    """func_starts written with the wrong dtype (4 bytes per element), the counts left as they were."""
    import numpy as np

    counts, data = arrays_of(ctx)
    starts = np.frombuffer(data, "<u8", count=counts[0]).astype("<i4")
    put(ctx, data=starts.tobytes() + data[8 * counts[0] :])


def _too_many_numbers(ctx: Ctx) -> None:
    size = open_elf(ctx.lib).size
    with_meta(first_site("numbers", [60] * (size + 1)))(ctx)


def _huge(column: str) -> Callable[[Ctx], None]:
    def mutate(ctx: Ctx) -> None:
        with contextlib.closing(sqlite3.connect(ctx.db)) as c, c:
            c.execute(f"UPDATE entries SET {column} = zeroblob(300000000) WHERE key = ?", (ctx.key,))

    return mutate


# name -> (mutation, what a correct run may do: "miss" = exactly one warning, "quiet" = no warning,
#          "any" = at most one warning)
VARIANTS: dict[str, tuple[Callable[[Ctx], None], str]] = {
    # -- the JSON half: wrong types, encodings, values ------------------------------------------------
    "json-list": (raw_meta(b"[]"), "miss"),
    "json-null": (raw_meta(b"null"), "miss"),
    "json-string": (raw_meta(b'"entry"'), "miss"),
    "json-number": (raw_meta(b"42"), "miss"),
    "json-deep-nesting": (raw_meta(b"[" * 200_000 + b"]" * 200_000), "miss"),
    "json-nan": (with_meta(set_key("stats", {"t": float("nan")})), "miss"),
    "json-infinity": (raw_meta(b'{"format": Infinity}'), "miss"),
    "json-invalid-utf8": (raw_meta(b'{"format": "\xff\xfe"}'), "miss"),
    "json-truncated": (lambda ctx: put(ctx, meta=ctx.row["meta"][: len(ctx.row["meta"]) // 2]), "miss"),
    "json-empty": (raw_meta(b""), "miss"),
    "json-huge-integer": (raw_meta(b'{"format": ' + b"9" * 100_000 + b"}"), "miss"),
    "json-missing-field": (with_meta(lambda d: d.pop("sites")), "miss"),
    "json-extra-field": (with_meta(set_key("extra", 1)), "miss"),
    "format-version": (with_meta(set_key("format", scan_cache.FORMAT + 1)), "miss"),
    "format-bool": (with_meta(set_key("format", True)), "miss"),
    "key-of-other-entry": (lambda ctx: with_meta(set_key("key", ctx.other["key"]))(ctx), "miss"),
    "arch-mismatch": (with_meta(set_key("arch", "aarch64")), "miss"),
    "size-mismatch": (with_meta(lambda d: d.__setitem__("size", d["size"] + 1)), "miss"),
    "build-id-mismatch": (with_meta(set_key("build_id", "00" * 20)), "miss"),
    "sites-not-list": (with_meta(set_key("sites", {})), "miss"),
    "site-address-negative": (with_meta(first_site("address", -1)), "miss"),
    "site-address-2^64": (with_meta(first_site("address", 1 << 64)), "miss"),
    "site-address-float": (with_meta(first_site("address", 1.5)), "miss"),
    "site-address-bool": (with_meta(first_site("address", True)), "miss"),
    "site-numbers-strings": (with_meta(first_site("numbers", ["60"])), "miss"),
    "site-numbers-too-many": (_too_many_numbers, "miss"),
    "site-kind-unknown": (with_meta(first_site("kind", "teleport")), "miss"),
    "site-confidence-unknown": (with_meta(first_site("confidence", "sure")), "miss"),
    "site-function-int": (with_meta(first_site("function", 7)), "miss"),
    "site-extra-field": (with_meta(first_site("extra", 0)), "miss"),
    "wrapper-arg-index": (with_meta(lambda d: d["wrappers"][0].__setitem__("arg_index", 99)), "miss"),
    "export-name-int": (with_meta(lambda d: d["export_names"].__setitem__(0, 5)), "miss"),
    "export-lengths-differ": (with_meta(lambda d: d["export_addresses"].pop()), "miss"),
    "export-address-negative": (with_meta(lambda d: d["export_addresses"].__setitem__(0, -8)), "miss"),
    "import-key-null": (with_meta(lambda d: d["import_keys"].__setitem__(0, None)), "miss"),
    "request-call-unknown": (with_meta(lambda d: d["requests"][0].__setitem__("call", "execve")), "miss"),
    "request-exact-int": (with_meta(lambda d: d["requests"][0].__setitem__("exact", 1)), "miss"),
    "stats-list": (with_meta(set_key("stats", [])), "miss"),
    "stats-string-value": (with_meta(set_key("stats", {"x": "y"})), "miss"),
    "arrays-two-counts": (with_meta(lambda d: d["arrays"].pop()), "miss"),
    "arrays-counts-vs-bytes": (with_meta(lambda d: d["arrays"].__setitem__(2, d["arrays"][2] + 1)), "miss"),
    # -- the array half: truncated, empty, foreign, wrong shapes and dtypes, bad indices ----------------
    "data-empty": (lambda ctx: put(ctx, data=b""), "miss"),
    "data-truncated": (lambda ctx: put(ctx, data=ctx.row["data"][:-3]), "miss"),
    "data-of-other-library": (_other_data, "miss"),
    "data-as-int32-starts": (_int32_starts, "miss"),
    "func-starts-unsorted": (with_arrays(lambda a: a[0].__setitem__(slice(0, 2), a[0][1::-1])), "miss"),
    "func-starts-duplicate": (with_arrays(lambda a: a[0].__setitem__(1, a[0][0])), "miss"),
    "indptr-not-zero-based": (with_arrays(lambda a: a[1].__setitem__(0, 1)), "miss"),
    "indptr-decreasing": (with_arrays(lambda a: a[1].__setitem__(1, a[1][-1] + 5)), "miss"),
    "indptr-short": (with_arrays(lambda a: a.__setitem__(1, a[1][:-1])), "miss"),
    "indices-out-of-range": (with_arrays(lambda a: a[2].__setitem__(0, len(a[0]) + 10_000)), "miss"),
    "indices-negative": (with_arrays(lambda a: a[2].__setitem__(0, -1)), "miss"),
    # -- the row: digest, identity columns, foreign entries, sizes --------------------------------------
    "digest-flip": (lambda ctx: put(ctx, redigest=False, meta=ctx.row["meta"].replace(b'"', b" ", 1)), "miss"),
    "object-column-other": (lambda ctx: put(ctx, object=ctx.other["object"]), "miss"),
    "object-column-not-hex": (lambda ctx: put(ctx, object="zz"), "miss"),
    "size-column": (lambda ctx: put(ctx, size=ctx.row["size"] + 4096), "miss"),
    "entry-of-other-library": (_other_as_is, "miss"),
    "entry-of-other-library-rekeyed": (_other_rekeyed, "miss"),
    "meta-300MB": (_huge("meta"), "miss"),
    "data-300MB": (_huge("data"), "miss"),
    # -- the identity memo ---------------------------------------------------------------------------
    "memo-names-other-library": (_memo_other, "quiet"),
    "memo-sha-not-hex": (_bad_memo(sha="xyz"), "miss"),
    "memo-probe-short": (_bad_memo(probe=b"\0"), "miss"),
    # -- the database file ---------------------------------------------------------------------------
    "db-fifo": (replace_db(_fifo), "miss"),
    "db-link-dev-zero": (replace_db(_link("/dev/zero")), "miss"),
    "db-link-dev-urandom": (replace_db(_link("/dev/urandom")), "miss"),
    "db-directory": (replace_db(lambda p, _c: p.mkdir()), "miss"),
    "db-empty-file": (replace_db(_bytes(b"")), "quiet"),
    "db-random-bytes": (replace_db(_bytes(os.urandom(8192))), "miss"),
    "db-sparse-2GB": (replace_db(_sparse), "miss"),
    "db-truncated": (_truncated, "miss"),
    "db-page-overwritten": (_page_flip, "any"),
    "db-socket": (replace_db(lambda p, _c: socket.socket(socket.AF_UNIX).bind(str(p))), "miss"),
    "db-link-to-valid-copy": (_db_symlink_to_copy, "miss"),
    "schema-extra-trigger": (
        sql("CREATE TRIGGER t AFTER INSERT ON entries BEGIN DELETE FROM identities; END"),
        "miss",
    ),
    "schema-extra-view": (sql("CREATE VIEW v AS SELECT key FROM entries"), "miss"),
    "schema-not-strict": (
        sql(
            "PRAGMA writable_schema = ON",
            "UPDATE sqlite_master SET sql = replace(sql, ') STRICT', ')') WHERE name = 'entries'",
        ),
        "miss",
    ),
    "application-id": (sql("PRAGMA application_id = 1234"), "miss"),
    "older-schema-version": (sql("PRAGMA user_version = 0"), "quiet"),
    "wal-fifo": (_companion_fifo("-wal"), "miss"),
    "wal-garbage": (_wal_garbage, "quiet"),
    "shm-fifo": (_companion_fifo("-shm"), "miss"),
    "journal-directory": (_journal_dir, "miss"),
    "cache-dir-is-a-file": (_dir_is_file, "miss"),
    "legacy-json-npz-files": (_legacy, "quiet"),
    "stale-tmp-files": (_stale_tmp, "quiet"),
}


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def _fresh_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a new process starts with: no memoised digests, no warnings given yet."""
    monkeypatch.setattr(identity, "_process_memo", {})
    monkeypatch.setattr(store_cache, "_warned", set())
    monkeypatch.setattr(store_cache, "_swept", set())


# slow as a whole, like the ELF mutant corpus: ~50 crafted entries (two of them 300 MB), each a full
# cold scan plus the poisoned read, about 20 s of CPU together
@pytest.mark.slow
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_crafted_cache_corpus(
    variant: str,
    libs: tuple[Path, Path],
    pristine: tuple[Path, str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    lib, _ = libs
    src, key, reference = pristine
    d = tmp_path / "cache"
    shutil.copytree(src, d)
    monkeypatch.setenv("UK_DEPSCAN_CACHE_DIR", str(d))
    rows = _rows(d / CACHE_FILE)
    other_key = next(k for k in rows if k != key)
    ctx = Ctx(d, d / CACHE_FILE, key, rows[key], rows[other_key], lib, tmp_path)
    mutate, expect = VARIANTS[variant]
    mutate(ctx)

    _fresh_process(monkeypatch)
    caplog.clear()
    start = time.perf_counter()
    code, out, err = run_cli(["scan", str(lib), *ARGS])
    elapsed = time.perf_counter() - start
    warned = _warnings(caplog)
    assert code in (0, 1) and "Traceback" not in err, (variant, code, err)
    assert out == reference, f"{variant}: the report differs from the --no-cache reference"
    assert len(warned) <= 1, (variant, warned)
    if expect == "miss":
        assert len(warned) == 1, (variant, "a damaged cache must be reported once", warned)
    elif expect == "quiet":
        assert not warned, (variant, warned)
    assert elapsed < 20, (variant, elapsed)
    if variant == "stale-tmp-files":
        assert not (d / ".syscalls-x.npz.tmp").exists() and (d / ".syscalls-young.json.tmp").exists()
    if variant == "db-link-to-valid-copy":
        assert (tmp_path / "elsewhere.sqlite3").is_file()  # the link is replaced, never its target

    # the entry was replaced: the next process gets a clean warm hit
    if variant != "cache-dir-is-a-file" and variant != "db-directory" and variant != "journal-directory":
        _fresh_process(monkeypatch)
        caplog.clear()
        code2, out2, _ = run_cli(["scan", str(lib), *ARGS])
        assert (code2, out2) == (code, reference) and not _warnings(caplog), variant
        with open_elf(lib) as elf:
            assert scan_cache.lookup(elf, ENGINE_VERSION).hit is not None, variant
        outcome = "clean miss (1 warning), then a valid entry" if warned else "silent recovery or hit"
    else:
        outcome = "cache disabled (1 warning), result unchanged"
    OUTCOMES[outcome] += 1
    OUTCOMES["_total"] += 1
    OUTCOMES["_max_seconds"] = max(OUTCOMES["_max_seconds"], round(elapsed * 1000))


def test_corpus_size_and_outcomes() -> None:
    """≥ 50 variants; printed tally (run after the corpus in file order)."""
    assert len(VARIANTS) >= 50
    if OUTCOMES:
        print("\ncrafted-cache corpus:", dict(OUTCOMES))


# -- identity: patched binaries, the memo ------------------------------------------------------------
GETPID = """
#define _GNU_SOURCE
#include <unistd.h>
#include <sys/syscall.h>
long which(void) { return syscall(SYS_getpid) + 1; }  /* a call, not a tail jump */
"""


def _getpid_lib(tmp: Path) -> Path:
    src = tmp / "getpid.c"
    src.write_text(GETPID)
    out = tmp / "libgetpid.so"
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", str(out), str(src), "-Wl,--build-id"], check=True)
    return out


def _patch_getpid_to_execve(path: Path, keep_times: bool) -> None:
    data = bytearray(path.read_bytes())
    at = data.find(bytes([0xBF, 39, 0, 0, 0]))  # mov edi, SYS_getpid
    assert at > 0 and data.find(bytes([0xBF, 39, 0, 0, 0]), at + 1) < 0
    st = path.stat()
    data[at + 1] = 59  # SYS_execve
    with open(path, "r+b") as fh:  # in place: same inode, same size, same build-id
        fh.write(data)
    if keep_times:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def _syscall_names(out: str) -> set[str]:
    doc = json.loads(out)
    return {n for s in doc["targets"][0]["syscalls"]["sites"] for n in s["names"]}


@pytest.mark.parametrize("keep_times", [False, True], ids=["mtime-changed", "mtime-restored"])
def test_patched_binary_with_same_build_id_and_size_misses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keep_times: bool
) -> None:
    monkeypatch.setenv("UK_DEPSCAN_CACHE_DIR", str(tmp_path / "cache"))
    lib = _getpid_lib(tmp_path)
    before = open_elf(lib).build_id, lib.stat().st_size, lib.stat().st_ino
    code, out, err = run_cli(["scan", str(lib), *ARGS])
    assert code in (0, 1), err
    assert "getpid" in _syscall_names(out) and "execve" not in _syscall_names(out)
    _patch_getpid_to_execve(lib, keep_times)
    assert (open_elf(lib).build_id, lib.stat().st_size, lib.stat().st_ino) == before
    _fresh_process(monkeypatch)  # a new process: only the database memo remains
    code, out, err = run_cli(["scan", str(lib), *ARGS])
    names = _syscall_names(out)
    assert "execve" in names and "getpid" not in names, names
    code, fresh, _ = run_cli(["scan", str(lib), *ARGS, "--no-cache"])
    assert out == fresh


def test_warm_run_does_not_rehash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, libs: tuple[Path, Path]) -> None:
    """The second process finds the digest in the memo (probe checked), not by hashing the file."""
    monkeypatch.setenv("UK_DEPSCAN_CACHE_DIR", str(tmp_path))
    _fresh_process(monkeypatch)
    lib, _ = libs
    calls: list[int] = []
    real = identity._full_digest

    def counting(reader: object) -> str:
        calls.append(1)
        return real(reader)  # type: ignore[arg-type]

    monkeypatch.setattr(identity, "_full_digest", counting)
    with open_elf(lib) as elf:
        first = scan_library(elf)
    assert not first.from_cache and len(calls) == 1
    _fresh_process(monkeypatch)
    with open_elf(lib) as elf:
        second = scan_library(elf)
    assert second.from_cache and len(calls) == 1
    # an identity the corpus can reuse, documented and stable
    ident = identity.object_identity(lib, memo=CacheStore())
    assert str(ident) == f"sha256:{ident.sha256}" and ident.size == lib.stat().st_size and len(calls) == 1


def test_identity_refuses_special_files(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="not a regular file"):
        identity.object_identity(fifo)


def test_cache_info_and_clear(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, libs: tuple[Path, Path]) -> None:
    monkeypatch.setenv("UK_DEPSCAN_CACHE_DIR", str(tmp_path))
    lib, _ = libs
    (tmp_path / "keep.txt").write_text("not ours")
    (tmp_path / "syscalls-3-x86_64-bid-ab-1.json").write_text("{}")
    run_cli(["scan", str(lib), *ARGS])
    code, out, _ = run_cli(["cache", "info"])
    # the target, plus the host's libc family when it is the very build the shipped model was made
    # from (--libc glibc follows evidence chains inside those files: uk_depscan.syscalls.chains)
    entries = re.search(r"^entries\s+(\d+)", out, re.M)
    assert code == 0 and entries and int(entries.group(1)) >= 1, out
    assert f"syscalls/{ENGINE_VERSION}/x86_64" in out and "legacy" in out
    assert f"reach/2-{ENGINE_VERSION}/x86_64" in out  # the scan's per-entry reaches (syscalls.reachcache)
    code, out, _ = run_cli(["cache", "clear"])
    assert code == 0 and out.startswith("removed 2 files")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]
    code, out, _ = run_cli(["cache", "info"])
    assert code == 0 and "entries     0" in out and "not created yet" in out


def test_cold_warm_and_no_cache_are_byte_identical(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, libs: tuple[Path, Path]
) -> None:
    monkeypatch.setenv("UK_DEPSCAN_CACHE_DIR", str(tmp_path))
    lib, _ = libs
    outs = [run_cli(["scan", str(lib), *ARGS, *extra])[1] for extra in ([], [], ["--no-cache"])]
    assert outs[0] == outs[1] == outs[2]


def test_a_session_shares_one_connection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The end of a run writes its memos through one connection (CacheStore.session); once the
    database is replaced inside the session (a damaged file, or reset), each operation opens it anew."""
    opened: list[Path] = []
    real_open = store_cache.open_db

    def counting(path: Path, *a: object, **kw: object) -> sqlite3.Connection:
        opened.append(path)
        return real_open(path, *a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(store_cache, "open_db", counting)
    store = store_cache.CacheStore(tmp_path)
    sha = "0" * 64
    with store.session():
        for i in range(5):
            store.put(f"k/{i}", sha, i, b"{}", b"data")
            assert store.get(f"k/{i}", max_meta=10, max_data=10) is not None
        assert len(opened) == 1
        store.reset()
        store.put("k/after", sha, 1, b"{}", b"data")
        assert len(opened) == 2 and store.get("k/0", max_meta=10, max_data=10) is None
        assert len(opened) == 3  # each operation on its own connection again
    assert store.get("k/after", max_meta=10, max_data=10) is not None and len(opened) == 4
