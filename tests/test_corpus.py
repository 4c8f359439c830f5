"""``uk-depscan corpus scan|report``: identity, re-runs, interruption, schema, escaping, specs.

Wheels are built here from the C fixtures in fixtures/corpus (compiled at test time); the
expected syscall sets are in fixtures/corpus/expect.json.
"""

from __future__ import annotations

import json
import sqlite3
import zipfile
from pathlib import Path

import pytest
from conftest import compile_so, run_cli

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "corpus"
EXPECT = json.loads((FIX / "expect.json").read_text())


def build_wheel(out_dir: Path, version: str, work: Path, extra: dict[str, bytes] | None = None) -> Path:
    """corpusfix-VERSION: libcore.so (two versions) and libcommon.so (identical in both)."""
    build = work / f"build-{version}"
    defines = ["-DV2", f"-DCORPUS_V2_NR={EXPECT['v2_nr']}"] if version == "2.0" else []
    core = compile_so(build / "libcore.so", [FIX / "core.c"], extra=defines)
    common = work / "libcommon.so"
    if not common.exists():
        compile_so(common, [FIX / "common.c"])
    out_dir.mkdir(parents=True, exist_ok=True)
    whl = out_dir / f"corpusfix-{version}-py3-none-manylinux_2_28_x86_64.whl"
    with zipfile.ZipFile(whl, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("corpusfix/libcore.so", core.read_bytes())
        zf.writestr("corpusfix/libcommon.so", common.read_bytes())
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
        info = f"corpusfix-{version}.dist-info"
        zf.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: corpusfix\nVersion: {version}\n")
        tag = "Tag: py3-none-manylinux_2_28_x86_64"
        zf.writestr(f"{info}/WHEEL", f"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: false\n{tag}\n")
        zf.writestr(f"{info}/RECORD", "")
    return whl


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    work = tmp_path_factory.mktemp("corpus-wheels")
    return [build_wheel(work / "dist", v, work) for v in ("1.0", "2.0")]


def rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def scan(db: Path, *inputs: object, extra: tuple[str, ...] = ()) -> tuple[int, str, str]:
    return run_cli(["corpus", "scan", *map(str, inputs), "--db", str(db), "-j", "1", "--unikraft", "0.17.0", *extra])


def normal_reach(db: Path, member: str, version: str) -> list[str]:
    facts = rows(
        db,
        "SELECT t.facts FROM targets t JOIN inputs i ON i.id = t.input"
        f" WHERE t.member = '{member}' AND i.version = '{version}'",
    )
    assert len(facts) == 1
    doc = json.loads(str(facts[0][0]))
    return sorted(r["name"] for r in doc["reach"] if r["path"] == "normal")


def test_each_object_stored_once_and_rerun_adds_nothing(tmp_path: Path, wheels: list[Path]) -> None:
    db = tmp_path / "c.db"
    code, _out, err = scan(db, *wheels)
    assert code == 0, err
    # libcommon.so is byte-identical in both wheels: one object row, two target rows
    assert rows(db, "SELECT count(*) FROM objects") == [(3,)]
    assert rows(db, "SELECT count(*) FROM targets") == [(4,)]
    assert rows(db, "SELECT count(DISTINCT object) FROM targets WHERE member = 'corpusfix/libcommon.so'") == [(1,)]
    for version in ("1.0", "2.0"):
        assert normal_reach(db, "corpusfix/libcore.so", version) == EXPECT["core"][version]
        assert normal_reach(db, "corpusfix/libcommon.so", version) == EXPECT["common"]
    # the per-export summary of libcore 2.0 names core_new's syscall number
    summaries = rows(db, "SELECT export, syscalls FROM export_summaries WHERE export = 'core_new'")
    assert summaries == [("core_new", str(EXPECT["v2_nr"]))]
    before = rows(db, "SELECT * FROM release_gaps ORDER BY 1, 2, 3, 4")
    code, _out, err = scan(db, *wheels)
    assert code == 0, err
    assert "0 analysed, 2 already known" in err
    assert rows(db, "SELECT * FROM release_gaps ORDER BY 1, 2, 3, 4") == before
    # a new release on a re-run: assessed from the stored facts, nothing analysed again
    code, _out, err = scan(db, *wheels, extra=("--unikraft", "0.16.3"))
    assert code == 0, err
    assert "0 analysed, 2 already known" in err and "4 release assessments added" in err
    assert rows(db, "SELECT count(DISTINCT release) FROM target_releases") == [(2,)]


def test_report_plan_matrix_and_evolution(tmp_path: Path, wheels: list[Path]) -> None:
    db = tmp_path / "c.db"
    assert scan(db, *wheels)[0] == 0
    code, out, err = run_cli(["corpus", "report", "--db", str(db), "--format", "json"])
    assert code == 0, err
    doc = json.loads(out)
    (view,) = doc["releases"]
    assert view["release"] == "0.17.0" and view["libraries"] == 4
    assert [(w["package"], w["version"]) for w in doc["wheels"]] == [("corpusfix", "1.0"), ("corpusfix", "2.0")]
    matrix = {m["syscall"]: m["cells"] for m in view["matrix"]}
    added = EXPECT["added_in_2.0"]
    assert matrix[added] == [0, 1]  # only the 2.0 wheel's libcore needs it
    assert matrix["sched_yield"] == [1, 1]
    # the plan covers every library exactly once, and its work is every library's work
    completes = [c for step in view["plan"] for c in step["completes"]]
    assert sorted(completes) == sorted(set(completes)) and len(completes) == 4
    (evo,) = view["evolution"]
    assert evo["versions"] == ["1.0", "2.0"]
    changing = dict(evo["rows"])
    assert [marks for item, marks in changing.items() if item.endswith(f": {added}")] == [[False, True]]
    # the 1.0 libraries need a subset of the 2.0 ones: the greedy plan finishes them first
    first = view["plan"][0]["completes"]
    assert any("corpusfix 1.0" in c for c in first)
    md_added = added.replace("_", "\\_")  # Markdown escapes its metacharacters
    for fmt, needle, name in (
        ("text", "plan (greedy", added),
        ("md", "### Plan", md_added),
        ("html", "<h3>Plan</h3>", added),
    ):
        code, out, _ = run_cli(["corpus", "report", "--db", str(db), "--format", fmt])
        assert code == 0 and needle in out and name in out


def test_interrupted_scan_keeps_what_was_written(
    tmp_path: Path, wheels: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from uk_depscan.corpus import scan as scan_mod

    db = tmp_path / "c.db"
    real = scan_mod._write_gaps
    calls = []

    def interrupted(*args: object, **kwargs: object) -> None:
        calls.append(args)
        if len(calls) == 2:  # the second target of the first input
            raise KeyboardInterrupt
        real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(scan_mod, "_write_gaps", interrupted)
    with pytest.raises(KeyboardInterrupt):
        scan_mod.scan([str(wheels[0])], db, scan_mod.ScanOptions(releases=("0.17.0",)))
    # the first target's transaction was committed, the second's rolled back, the input not complete
    assert rows(db, "SELECT count(*) FROM targets") == [(1,)]
    assert rows(db, "SELECT complete FROM inputs") == [(0,)]
    monkeypatch.setattr(scan_mod, "_write_gaps", real)
    summary = scan_mod.scan([str(wheels[0])], db, scan_mod.ScanOptions(releases=("0.17.0",)))
    assert (summary.analysed, summary.already_known, summary.new_objects) == (1, 0, 1)
    assert rows(db, "SELECT count(*) FROM targets") == [(2,)]
    assert rows(db, "SELECT complete FROM inputs") == [(1,)]


def test_foreign_or_newer_database_is_refused(tmp_path: Path, wheels: list[Path]) -> None:
    db = tmp_path / "c.db"
    assert scan(db, wheels[0])[0] == 0
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA user_version = 2")
    conn.close()
    for argv in (["corpus", "report", "--db", str(db)], ["corpus", "scan", str(wheels[0]), "--db", str(db)]):
        code, _out, err = run_cli(argv)
        assert code == 2
        assert "schema version 2" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t (x)")
    conn.close()
    code, _out, err = run_cli(["corpus", "report", "--db", str(other)])
    assert code == 2 and "not a uk-depscan database" in err
    code, _out, err = run_cli(["corpus", "report", "--db", str(tmp_path / "absent.db")])
    assert code == 2 and "no such corpus database" in err


def test_bad_inputs_are_one_line_exit_2(tmp_path: Path) -> None:
    code, _out, err = run_cli(["corpus", "scan", str(tmp_path / "nope.whl"), "--db", str(tmp_path / "c.db")])
    assert code == 2 and "no such file" in err
    code, _out, err = run_cli(["corpus", "scan", "onnxruntime==1.20.1", "--db", str(tmp_path / "c.db")])
    assert code == 2 and "needs --platform" in err
    code, _out, err = run_cli(["corpus", "scan", str(tmp_path), "--db", str(tmp_path / "c.db"), "-q"])
    assert code == 2 and "no ELF objects" in err and "Traceback" not in err


def test_names_from_wheels_are_escaped(tmp_path: Path) -> None:
    work = tmp_path / "w"
    hostile = "corpusfix/lib\x1b[31m<b>evil</b>.so"
    whl = build_wheel(work / "dist", "1.0", work)
    with zipfile.ZipFile(whl, "a") as zf:
        zf.writestr(hostile, (work / "libcommon.so").read_bytes())
    db = tmp_path / "c.db"
    assert scan(db, whl)[0] == 0
    for fmt in ("text", "md", "html", "json"):
        code, out, _ = run_cli(["corpus", "report", "--db", str(db), "--format", fmt])
        assert code == 0
        assert "\x1b" not in out
        assert "evil" in out
        if fmt == "html":
            assert "<b>" not in out


def test_requirement_spec_downloaded_with_pip(tmp_path: Path, wheels: list[Path]) -> None:
    db = tmp_path / "c.db"
    links = wheels[0].parent
    argv = ["corpusfix==2.0", "--platform", "manylinux_2_28_x86_64", "--python-version", "3.11"]
    code, _out, err = scan(db, *argv, extra=("--find-links", str(links), "--no-index"))
    assert code == 0, err
    assert rows(db, "SELECT package, version, arch, kind FROM inputs") == [("corpusfix", "2.0", "x86_64", "spec")]
    assert rows(db, "SELECT spec, platform, python_version FROM provenance") == [
        ("corpusfix==2.0", "manylinux_2_28_x86_64", "3.11")
    ]
    assert normal_reach(db, "corpusfix/libcore.so", "2.0") == EXPECT["core"]["2.0"]
    # pinned and complete: not downloaded again
    code, _out, err = scan(db, *argv, extra=("--find-links", str(links), "--no-index"))
    assert code == 0 and "0 analysed, 1 already known" in err
    code, _out, err = scan(db, "corpusfix==9.9", *argv[1:], extra=("--find-links", str(links), "--no-index"))
    assert code == 2 and "pip download failed" in err


def test_directory_input_named_by_its_dist_info(tmp_path: Path, wheels: list[Path]) -> None:
    tree = tmp_path / "tree"
    with zipfile.ZipFile(wheels[1]) as zf:
        zf.extractall(tree)  # trusted: the wheel this test built
    db = tmp_path / "c.db"
    code, _out, err = scan(db, tree)
    assert code == 0, err
    assert rows(db, "SELECT kind, package, version, arch FROM inputs") == [("directory", "corpusfix", "2.0", "x86_64")]
    assert normal_reach(db, "corpusfix/libcore.so", "2.0") == EXPECT["core"]["2.0"]
    # the same objects as in the wheel: scanning the wheel too adds its input, no object
    assert scan(db, wheels[1])[0] == 0
    assert rows(db, "SELECT count(*) FROM objects") == [(2,)]
    # the directory is known by its content: a changed member makes it new again
    assert "1 already known" in scan(db, tree)[2]
    (tree / "corpusfix" / "libcore.so").write_bytes((tree / "corpusfix" / "libcommon.so").read_bytes())
    assert "0 already known" in scan(db, tree)[2]
