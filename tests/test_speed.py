"""Speed work that must not change an answer: the reach cache, the decoded name tables."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from conftest import run_cli
from helpers_syscalls import build_syscall_fixture

from uk_depscan.store import identity
from uk_depscan.store.cache import CACHE_FILE, CacheStore

SOURCES = [("x86_64/direct.c", []), ("common/wrappers.c", [])]
ARGS = ["--format", "json", "--libc", "glibc"]


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_syscall_fixture("x86_64", tmp_path_factory.mktemp("speed") / "target", "-O2", SOURCES)


def _reach_rows(db: Path) -> list[tuple[str, str, int, bytes]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT key, object, size, meta FROM entries WHERE key LIKE 'reach/%'").fetchall()


def _poisons(meta: bytes) -> list[tuple[str, bytes]]:
    doc = json.loads(meta)
    entry, value = next((e, v) for e, v in doc["entries"].items() if v and v[0])
    out = [("not JSON", b"{"), ("wrong format", json.dumps({**doc, "format": 99}).encode())]
    for what, change in (
        ("unknown site kind", lambda v: [[[v[0][0][0], "nope", *v[0][0][2:]]], v[1]]),
        ("bool as number", lambda v: [[[True, *v[0][0][1:]]], v[1]]),
        ("foreign import", lambda v: [v[0], ["no_such_import@X"]]),
        ("non-string import", lambda v: [v[0], [[1]]]),
    ):
        out.append((what, json.dumps({**doc, "entries": {**doc["entries"], entry: change(value)}}).encode()))
    return out


def test_reach_cache_is_only_an_accelerator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lib: Path) -> None:
    monkeypatch.setenv("UK_DEPSCAN_CACHE_DIR", str(tmp_path))
    code, ref, err = run_cli(["scan", str(lib), *ARGS, "--no-cache"])
    assert code in (0, 1), err
    assert run_cli(["scan", str(lib), *ARGS])[1] == ref  # cold: computes and stores the reaches
    rows = _reach_rows(tmp_path / CACHE_FILE)
    assert len(rows) == 1, "the target's reaches were not stored"
    key, obj, size, meta = rows[0]
    identity._process_memo.clear()
    code, warm, err = run_cli(["scan", str(lib), *ARGS])
    assert warm == ref and "warning" not in err.lower()
    for what, bad in _poisons(meta):
        CacheStore(tmp_path).put(key, obj, size, bad, b"")  # a valid digest: only decoding can refuse it
        code, out, err = run_cli(["scan", str(lib), *ARGS])
        assert out == ref, what
        assert err.count("ignoring the cached reaches of") == 1, (what, err)
        code, out, err = run_cli(["scan", str(lib), *ARGS])  # rewritten: a clean warm hit again
        assert out == ref and "ignoring" not in err, what
