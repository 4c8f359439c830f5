"""Loader emulation on fixture trees compiled at test time, checked against expectations and ld.so."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import NamedTuple

import pytest
from conftest import FIXTURES, compile_so, ldd, need

from uk_depscan.loader.paths import SearchConfig
from uk_depscan.loader.resolve import LoadTree, resolve_tree

CASES = sorted((FIXTURES / "loader" / "cases").glob("*.json"))


class Case(NamedTuple):
    spec: dict
    base: Path
    tree: LoadTree
    config: SearchConfig


def build_case(spec: dict, base: Path) -> None:
    for i, lib in enumerate(spec["libs"]):
        out = base / lib["out"]
        link = [base / name for name in lib.get("link", [])]
        if lib.get("program"):
            compile_program(out, FIXTURES / "loader" / "main.c", link, lib.get("runpath"))
            continue
        compile_so(
            out,
            [FIXTURES / "loader" / "lib.c"],
            arch=lib.get("arch", "x86_64"),
            link=link,
            rpath=lib.get("rpath"),
            runpath=lib.get("runpath"),
            define=f"func_{i}",
        )
    for lib in spec["libs"]:
        if lib.get("remove_after_build"):
            (base / lib["out"]).unlink()
    for link in spec.get("symlinks", []):
        (base / link["link"]).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(link["target"], base / link["link"])
    for f in spec.get("files", []):
        (base / f["path"]).parent.mkdir(parents=True, exist_ok=True)
        (base / f["path"]).write_text(f["text"])


@pytest.fixture(scope="module", params=CASES, ids=[c.stem for c in CASES])
def case(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Case:
    """One fixture tree, built once and resolved by our loader, for both the expectations and ld.so."""
    spec = json.loads(request.param.read_text())
    need(*spec.get("needs", []))
    base = tmp_path_factory.mktemp(request.param.stem)
    build_case(spec, base)
    config = SearchConfig(library_path=tuple(str(base / d) for d in spec.get("library_path", [])))
    return Case(spec, base, resolve_tree(base / spec["root"], config).tree, config)


def test_loader_case(case: Case) -> None:
    spec, base, tree = case.spec, case.base, case.tree
    by_name = {o.needed_name: o for o in tree.objects[1:]}
    missing = {m.needed_name: m for m in tree.missing}
    for name, want in spec["expect"].items():
        if want.get("missing"):
            check_missing(missing.get(name), by_name, want, base, name)
        else:
            check_found(by_name.get(name), want, base, name)


def test_loader_case_agrees_with_ld_so(case: Case) -> None:
    """ld.so's own answer for the same tree (``ldd`` on the fixture the test built, never on scanned input)."""
    need("ldd")
    compare_with_ld_so(case.spec, case.base, case.tree, case.config)


def compile_program(out: Path, src: Path, link: list[Path], runpath: str | None) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = ["gcc", "-o", str(out), str(src), "-Wl,--no-as-needed", *map(str, link)]
    if runpath:
        cmd += [f"-Wl,-rpath,{runpath}", "-Wl,--enable-new-dtags"]
    subprocess.run(cmd, check=True, capture_output=True)


def check_found(obj, want: dict, base: Path, name: str) -> None:
    assert obj is not None, f"{name} should be found"
    assert Path(obj.realpath) == (base / want["dir"] / name).resolve()
    assert obj.found_via == want["via"]
    assert want.get("detail_contains", "") in obj.via_detail
    if "rejected_dir" in want:
        rejected = {os.path.normpath(Path(a.path).parent): a.outcome for a in obj.tried}
        outcome = rejected[str(base / want["rejected_dir"])]
        assert want["rejected_contains"] in outcome


def check_missing(m, by_name: dict, want: dict, base: Path, name: str) -> None:
    assert name not in by_name, f"{name} should not be found"
    assert m is not None, f"{name} should be reported missing"
    assert want.get("reason_contains", "") in m.reason
    dirs = [os.path.normpath(Path(a.path).parent) for a in m.tried]  # ld.so keeps "a/../b" unnormalised
    if "first_tried_dir" in want:
        assert dirs[0] == os.path.normpath(base / want["first_tried_dir"])
    if "second_tried_dir" in want:
        assert dirs[1] == str(base / want["second_tried_dir"])
    if "not_tried_dir" in want:
        assert str(base / want["not_tried_dir"]) not in dirs
    assert all(Path(a.path).name == name for a in m.tried)


def compare_with_ld_so(spec: dict, base: Path, tree: LoadTree, config: SearchConfig) -> None:
    env = {"LD_LIBRARY_PATH": ":".join(config.library_path)} if config.library_path else {}
    code, theirs = ldd(base / spec["root"], env)
    if spec["ldd"] == "fails":
        assert code != 0 and tree.missing
        return
    if spec["ldd"] == "run":  # a trusted program built above: running it is ld.so's verdict
        assert subprocess.run([str(base / spec["root"])], check=False, capture_output=True).returncode == 0
        assert not tree.missing
        return
    ours = {o.needed_name: o.realpath for o in tree.objects[1:]}
    ours.update({m.needed_name: None for m in tree.missing})
    theirs = {k: v for k, v in theirs.items() if not k.startswith("linux-vdso")}
    assert ours == theirs


def test_ld_so_cache_is_read_again_when_it_changes(tmp_path: Path) -> None:
    """ldconfig's cache is parsed once per process while its stamp holds (every target of a wheel
    resolves against it), and again once the file is replaced: the second cache's entries, not the
    first's."""
    import shutil

    from uk_depscan.loader.paths import read_ld_so_cache

    need("ldconfig")
    ldconfig = shutil.which("ldconfig") or "ldconfig"
    x86_64 = 62
    cache = tmp_path / "ld.so.cache"
    for dirname, soname in (("one", "libfirst.so.1"), ("two", "libsecond.so.2")):
        compile_so(tmp_path / dirname / soname, [FIXTURES / "loader" / "lib.c"], soname=soname)
        conf = tmp_path / f"{dirname}.conf"
        conf.write_text(f"{tmp_path / dirname}\n")
        subprocess.run([ldconfig, "-X", "-C", str(cache), "-f", str(conf)], check=True, capture_output=True)
        found = read_ld_so_cache(str(cache), x86_64) or {}
        # ldconfig adds the trusted directories (/lib, /usr/lib) to those of the configuration
        assert found.get(soname) == str(tmp_path / dirname / soname), sorted(found)[:5]
        assert ("libfirst.so.1" in found) == (dirname == "one")
        found[soname] = "changed by the caller"  # a copy: the parsed cache stays as read
        assert (read_ld_so_cache(str(cache), x86_64) or {}).get(soname) == str(tmp_path / dirname / soname)
