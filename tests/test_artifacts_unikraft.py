"""The artifacts against a real Unikraft tree (``UK_DEPSCAN_UNIKRAFT_SRC``, a checkout such as RELEASE-0.17.0).

* the Kconfig fragment applied with kconfiglib over the configuration its closure was computed for,
  driven by Unikraft's own build (``make scriptconfig`` with ``scripts/kconfig_check.py``): the native
  route over the core with lib-musl (``L=``, ``UK_DEPSCAN_LIBMUSL_SRC``), the binary-compatibility route
  with app-elfloader as the application (``A=``, ``UK_DEPSCAN_ELFLOADER_SRC``) and lib-musl — for the
  fixture and, with the real wheels, for libonnxruntime and libtorch_cpu;
* ``scripts/validate-unikraft.sh`` on the fixture scaffold (every kind of row): configure, ``print-syscalls``,
  build, ``gcc -fsyntax-only -Werror`` with the build's flags, boot under QEMU TCG, every call as the scaffold
  says, every fake and investigate definition warning once.

Skipped cleanly without the checkouts (and without make/gcc/qemu for the boot).  Nothing is written
into them: the configuration and build go to temporary directories (``C=``, ``O=``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FIXTURES, REPO, WHEELS_HINT, install_hint, run_cli

MERGE_NOTE = re.compile(r"set more than once\. Old value")  # the override a fragment is for
BASE = ("CONFIG_PLAT_KVM=y", "CONFIG_KVM_VMM_QEMU=y", "CONFIG_ARCH_X86_64=y", "CONFIG_LIBMUSL=y")


def _tree(var: str, marker: str) -> Path:
    src = os.environ.get(var)
    if not src:
        pytest.skip(f"{var} unset: set it to a source tree that has {marker} to run this test")
    path = Path(src)
    if not (path / marker).exists():
        pytest.skip(f"{var} names a tree without {marker}: set it to one that has it")
    return path


@pytest.fixture(scope="module")
def uk_src() -> Path:
    path = _tree("UK_DEPSCAN_UNIKRAFT_SRC", "support/kconfiglib")
    for tool in ("make", "gcc"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} not found: {install_hint(tool)}")
    return path


def release_of(src: Path) -> str:
    text = (src / "version.mk").read_text()
    parts = [re.search(rf"^{k}\s*=\s*(\S+)", text, re.M) for k in ("UK_VERSION", "UK_SUBVERSION", "UK_EXTRAVERSION")]
    return ".".join(m.group(1) for m in parts if m)


def route_base(route: str, uk_src: Path, work: Path) -> list[str]:
    """make arguments of the configured base of ``route`` (app and libraries as in the table's closures)."""
    libmusl = _tree("UK_DEPSCAN_LIBMUSL_SRC", "Config.uk")
    if route == "binary-compat":
        app = _tree("UK_DEPSCAN_ELFLOADER_SRC", "Config.uk")
    else:
        app = work / "app"
        app.mkdir(parents=True)
        (app / "Config.uk").write_text("config APPKCHECK\n\tbool\n\tdefault y\n")
        (app / "Makefile.uk").write_text("$(eval $(call addlib,appkcheck))\n")
    (work / "base.defconfig").write_text("\n".join(BASE) + "\n")
    args = ["make", "-s", "-C", str(uk_src), f"A={app}", f"L={libmusl}", f"C={work / '.config'}", f"O={work / 'build'}"]
    proc = subprocess.run(
        [*args, f"UK_DEFCONFIG={work / 'base.defconfig'}", "defconfig"], check=False, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-500:]
    return args


def kconfig_check(base: list[str], uk_src: Path, fragment: Path, out: Path) -> dict:  # type: ignore[type-arg]
    script = REPO / "scripts" / "kconfig_check.py"
    configlib = uk_src / "support" / "kconfiglib"
    proc = subprocess.run(
        [*base, "scriptconfig", f"SCRIPT={script}", f"SCRIPT_ARG={fragment}", f"UK_CONFIGLIB={configlib}"],
        check=False,
        capture_output=True,
        text=True,
        env=dict(os.environ, UK_DEPSCAN_KCHECK_OUT=str(out)),
    )
    assert proc.returncode == 0, proc.stderr[-800:]
    return json.loads(out.read_text())  # type: ignore[no-any-return]


def assert_fragment_applies(result: dict, fragment_text: str) -> None:  # type: ignore[type-arg]
    """Every option exists and ends as the fragment says, with no kconfiglib warning.  Only a fragment
    that states it is not closed may leave an option n, and then only for an unmet dependency."""
    opts = result["options"]
    assert opts and all(o["defined"] for o in opts.values()), [k for k, o in opts.items() if not o["defined"]]
    assert [w for w in result["warnings"] if not MERGE_NOTE.search(w)] == []
    off = {k: o for k, o in opts.items() if o["value"] != o["wanted"]}
    if "Dependency closure: closed" in fragment_text:
        assert off == {}
        return
    assert "not closed" in fragment_text
    for name, o in off.items():
        assert o["wanted"] == "y" and o["depends_on"] not in (None, "y"), name


@pytest.mark.parametrize(("case", "route"), [("x86_64", "binary-compat"), ("x86_64-native", "native")])
def test_fixture_fragment_over_the_tree(case: str, route: str, uk_src: Path, tmp_path: Path) -> None:
    fragment = FIXTURES / "golden" / "artifacts" / case / "kconfig" / "kconfig.fragment"
    base = route_base(route, uk_src, tmp_path)
    result = kconfig_check(base, uk_src, fragment, tmp_path / "out.json")
    assert result["kconfiglib"] == "14.1.0"
    assert_fragment_applies(result, fragment.read_text())


@pytest.mark.realwheel
@pytest.mark.parametrize("route", ["binary-compat", "native"])
@pytest.mark.parametrize(
    "relpath", ["onnxruntime/onnxruntime/capi/libonnxruntime.so.1.31.1", "torch/torch/lib/libtorch_cpu.so"]
)
def test_real_fragments_over_the_tree(
    relpath: str, route: str, uk_src: Path, tmp_path: Path, real_wheels_dir: Path
) -> None:
    """The fragment of a real library ends as written over the route's base, and it holds the whole
    KconfigPlan of the report it was made from (every option to enable, every option to keep off)."""
    lib = real_wheels_dir / relpath
    if not lib.exists():
        pytest.skip(f"{lib.name}: {WHEELS_HINT}")
    release = release_of(uk_src)
    code, out, err = run_cli(["scan", str(lib), "--unikraft", release, "--route", route, "-f", "json"])
    assert code in (0, 1), err
    (tmp_path / "report.json").write_text(out)
    code, text, err = run_cli(["kconfig", str(tmp_path / "report.json"), "--unikraft", release, "--route", route])
    assert code == 0, err
    (tmp_path / "fragment").write_text(text)
    result = kconfig_check(route_base(route, uk_src, tmp_path), uk_src, tmp_path / "fragment", tmp_path / "out.json")
    assert_fragment_applies(result, text)
    assert "Dependency closure: closed" in text  # the shipped 0.17.0 table carries closures for both routes
    plan = json.loads(out)["targets"][0]["kconfig"]
    wanted = {k: o["wanted"] for k, o in result["options"].items()}
    assert dict.fromkeys(plan["enable"], "y").items() <= wanted.items()
    assert dict.fromkeys(plan["keep_off"], "n").items() <= wanted.items()


@pytest.mark.slow
def test_validate_script_on_the_fixture_scaffold(uk_src: Path, tmp_path: Path) -> None:
    """Slow (about a minute): build and boot the fixture's scaffold; every call answers as the scaffold says.

    The fixture's plan registers implement and investigate rows only (its stub and fake rows belong to core
    libraries of the build); two absent rows the plan keeps are given a stub and a fake action in a copy of
    the report, so that every kind of definition is built, dispatched and checked (the fake's and the
    investigate rows' warnings included)."""
    if release_of(uk_src) != "0.17.0":
        pytest.skip("the fixture report was made against Unikraft 0.17.0")
    for tool in ("qemu-system-x86_64", "bc", "flex", "bison"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} not found: {install_hint(tool)}")
    doc = json.loads((FIXTURES / "artifacts" / "report-x86_64.json").read_text())
    forced = {"io_uring_setup": "fake (return 0)", "tgkill": "stub (ENOSYS)"}
    for g in doc["targets"][0]["gaps"]:
        g["action"] = forced.get(g["name"], g["action"])
    (tmp_path / "report.json").write_text(json.dumps(doc))
    uk_depscan = Path(sys.executable).parent / "uk-depscan"
    env = dict(os.environ, WORK=str(tmp_path / "work"), UK_DEPSCAN=str(uk_depscan))
    proc = subprocess.run(
        [str(REPO / "scripts" / "validate-unikraft.sh"), str(uk_src), str(tmp_path / "report.json")],
        check=False,
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout[-1500:] + proc.stderr[-1500:]
    manifest = json.loads((tmp_path / "work" / "scaffold" / "scaffold.json").read_text())
    n = len(manifest["syscalls"])
    assert {s["action"] for s in manifest["syscalls"]} == {"stub", "fake", "implement", "investigate"}
    assert f"uk-depscan-validate: PASS {n}/{n}" in proc.stdout
    assert "each of the 3 fake/investigate definitions warned once" in proc.stdout
    checks = (tmp_path / "work" / "checks.txt").read_text().splitlines()
    assert len(checks) == n and all(line.endswith(" ok") for line in checks)
