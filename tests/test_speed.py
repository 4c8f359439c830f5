"""Speed work that must not change an answer: the reach cache, the decoded name tables."""

from __future__ import annotations

import itertools
import json
import sqlite3
from pathlib import Path

import pytest
from conftest import run_cli
from helpers_syscalls import build_syscall_fixture

from uk_depscan.store import identity
from uk_depscan.store.cache import CACHE_FILE, CacheStore
from uk_depscan.syscalls import reachcache

SOURCES = [("x86_64/direct.c", []), ("common/wrappers.c", [])]
ARGS = ["--format", "json", "--libc", "glibc"]


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_syscall_fixture("x86_64", tmp_path_factory.mktemp("speed") / "target", "-O2", SOURCES)


def _reach_rows(db: Path) -> list[tuple[str, str, int, bytes, bytes]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT key, object, size, meta, data FROM entries WHERE key LIKE 'reach/%'").fetchall()


def _poisons(meta: bytes, data: bytes) -> list[tuple[str, bytes, bytes]]:
    """(what, meta, data): the index damaged, or one entry's JSON."""
    doc = json.loads(meta)
    out = [("not JSON", b"{", data), ("wrong format", json.dumps({**doc, "format": 99}).encode(), data)]
    lengths = [doc["lengths"][0] + 1, *doc["lengths"][1:]]
    out.append(("lengths off", json.dumps({**doc, "lengths": lengths}).encode(), data))
    offsets = [sum(doc["lengths"][:i]) for i in range(len(doc["lengths"]) + 1)]
    entries = [json.loads(data[a:b]) for a, b in itertools.pairwise(offsets)]
    k = next(i for i, v in enumerate(entries) if v and v[0] and v[1])
    for what, change in (
        ("unknown site kind", lambda v: [[[v[0][0][0], "nope", *v[0][0][2:]]], v[1]]),
        ("bool as number", lambda v: [[[True, *v[0][0][1:]]], v[1]]),
        ("import index out of range", lambda v: [v[0], [10**6]]),
        ("non-integer import", lambda v: [v[0], ["open@GLIBC_2.2.5"]]),
    ):
        raw = [json.dumps(change(v) if i == k else v, separators=(",", ":")).encode() for i, v in enumerate(entries)]
        index = json.dumps({**doc, "lengths": [len(r) for r in raw]}).encode()
        out.append((what, index, b"".join(raw)))
    return out


def test_reach_cache_is_only_an_accelerator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lib: Path) -> None:
    monkeypatch.setenv("UK_DEPSCAN_CACHE_DIR", str(tmp_path))
    code, ref, err = run_cli(["scan", str(lib), *ARGS, "--no-cache"])
    assert code in (0, 1), err
    assert run_cli(["scan", str(lib), *ARGS])[1] == ref  # cold: computes and stores the reaches
    rows = _reach_rows(tmp_path / CACHE_FILE)
    assert len(rows) == 1, "the target's reaches were not stored"
    key, obj, size, meta, data = rows[0]
    identity._process_memo.clear()
    reachcache._process.clear()  # as in a new process: the memo comes from the cache
    code, warm, err = run_cli(["scan", str(lib), *ARGS])
    assert warm == ref and "warning" not in err.lower()
    for what, bad_meta, bad_data in _poisons(meta, data):
        CacheStore(tmp_path).put(key, obj, size, bad_meta, bad_data)  # a valid digest: only decoding can refuse it
        reachcache._process.clear()
        code, out, err = run_cli(["scan", str(lib), *ARGS])
        assert out == ref, what
        assert err.count("ignoring the cached reaches of") == 1, (what, err)
        reachcache._process.clear()
        code, out, err = run_cli(["scan", str(lib), *ARGS])  # rewritten: a clean warm hit again
        assert out == ref and "ignoring" not in err, what
        assert _reach_rows(tmp_path / CACHE_FILE)[0][3:] == (meta, data), what


def _zip_dir(src: Path, whl: Path) -> Path:
    import zipfile

    with zipfile.ZipFile(whl, "w", zipfile.ZIP_DEFLATED) as z:
        for p in sorted(src.rglob("*")):
            if p.is_file():
                z.write(p, p.relative_to(src).as_posix())
    return whl


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of several libraries, one needing another through $ORIGIN, plus a non-ELF."""
    from conftest import FIXTURES, compile_so

    d = tmp_path_factory.mktemp("tree") / "pkg"
    (d / "sub").mkdir(parents=True)
    prov = compile_so(d / "libprov.so", [FIXTURES / "loader" / "lib.c"], define="provided_func")
    compile_so(d / "sub" / "liba.so", [FIXTURES / "loader" / "weak.c"], link=[prov], runpath="$ORIGIN/..")
    compile_so(d / "libb.so", [FIXTURES / "loader" / "lib.c"])
    build_syscall_fixture("x86_64", d / "sys", "-O2", SOURCES)
    (d / "README").write_text("not an ELF")
    return d


@pytest.mark.parametrize("kind", ["directory", "wheel"])
def test_jobs_give_byte_identical_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tree: Path, kind: str
) -> None:
    """--jobs 1 and --jobs 2, cold and warm cache: the same bytes (targets merged in input order)."""
    monkeypatch.setenv("UK_DEPSCAN_CACHE_DIR", str(tmp_path / "cache"))
    target = str(tree if kind == "directory" else _zip_dir(tree, tmp_path / "pkg-1.0-py3-none-any.whl"))
    outs = []
    for jobs in ("1", "2", "2", "1"):
        code, out, err = run_cli(["scan", target, *ARGS, "--jobs", jobs, "-q"])
        assert code in (0, 1), err
        outs.append(out)
    assert len(json.loads(outs[0])["targets"]) >= 4
    assert outs[1] == outs[0] and outs[2] == outs[0] and outs[3] == outs[0]


@pytest.mark.parametrize("kind", ["directory", "wheel"])
def test_include_exclude_members(tmp_path: Path, tree: Path, kind: str) -> None:
    target = str(tree if kind == "directory" else _zip_dir(tree, tmp_path / "pkg-1.0-py3-none-any.whl"))
    code, out, err = run_cli(
        ["deps", target, "-f", "json", "--include", "lib*.so", "--exclude", "sub/*", "--exclude", "*-O2.so"]
    )
    assert code in (0, 1), err
    names = sorted(t["target"].rsplit("/", 1)[-1] for t in json.loads(out)["targets"])
    assert names == ["libb.so", "libprov.so"]
    code, _, err = run_cli(["deps", target, "--include", "nothing*"])
    assert code == 2 and "no ELF objects" in err


def test_jobs_must_be_positive(tree: Path) -> None:
    code, _, err = run_cli(["deps", str(tree), "--jobs", "0"])
    assert code == 2 and "--jobs 0" in err
