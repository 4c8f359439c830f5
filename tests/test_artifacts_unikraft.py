"""The artifacts against a real Unikraft tree (``UK_DEPSCAN_UNIKRAFT_SRC``, a checkout such as RELEASE-0.17.0).

* the Kconfig fragment applied over a configured tree with kconfiglib, driven by Unikraft's own build
  (``make scriptconfig`` with ``scripts/kconfig_check.py``) — for the fixture and, with the real wheels,
  for libonnxruntime and libtorch_cpu;
* ``scripts/validate-unikraft.sh`` on the fixture scaffold: configure, ``print-syscalls``, build,
  ``gcc -fsyntax-only -Werror`` with the build's flags, boot under QEMU TCG, every call as the scaffold says.

Skipped cleanly without the checkout (and without make/gcc/qemu for the boot).
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
from conftest import FIXTURES, REPO, run_cli

from uk_depscan.artifacts.closure import NOT_CLOSED

MERGE_NOTE = re.compile(r"set more than once\. Old value")  # the override a fragment is for


@pytest.fixture(scope="module")
def uk_src() -> Path:
    src = os.environ.get("UK_DEPSCAN_UNIKRAFT_SRC")
    if not src:
        pytest.skip("UK_DEPSCAN_UNIKRAFT_SRC unset (a Unikraft checkout, e.g. RELEASE-0.17.0)")
    path = Path(src)
    if not (path / "version.mk").is_file() or not (path / "support" / "kconfiglib").is_dir():
        pytest.skip(f"{path}: not a Unikraft tree with support/kconfiglib")
    for tool in ("make", "gcc"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} not installed")
    return path


def release_of(src: Path) -> str:
    text = (src / "version.mk").read_text()
    parts = [re.search(rf"^{k}\s*=\s*(\S+)", text, re.M) for k in ("UK_VERSION", "UK_SUBVERSION", "UK_EXTRAVERSION")]
    return ".".join(m.group(1) for m in parts if m)


@pytest.fixture(scope="module")
def base_app(uk_src: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A configured application: KVM/QEMU x86_64 with nolibc, nothing else asked for."""
    app = tmp_path_factory.mktemp("kapp")
    (app / "Makefile").write_text(
        f"UK_ROOT ?= {uk_src}\nall:\n\t@$(MAKE) -C $(UK_ROOT) A=$(CURDIR)\n"
        "$(filter-out all,$(MAKECMDGOALS)):\n\t@$(MAKE) -C $(UK_ROOT) A=$(CURDIR) $(MAKECMDGOALS)\n"
    )
    (app / "Config.uk").write_text("config APPKCHECK\n\tbool\n\tdefault y\n")
    (app / "Makefile.uk").write_text("$(eval $(call addlib,appkcheck))\n")
    (app / "base.defconfig").write_text(
        "CONFIG_PLAT_KVM=y\nCONFIG_KVM_VMM_QEMU=y\nCONFIG_ARCH_X86_64=y\nCONFIG_LIBNOLIBC=y\n"
    )
    proc = subprocess.run(
        ["make", f"UK_DEFCONFIG={app / 'base.defconfig'}", "defconfig"],
        check=False,
        cwd=app,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-500:]
    return app


def kconfig_check(app: Path, uk_src: Path, fragment: Path, out: Path) -> dict:  # type: ignore[type-arg]
    # RELEASE-0.17.0's Makefile puts $(UK_CONFIGLIB) on scriptconfig's PYTHONPATH but defines only
    # CONFIGLIB (= support/kconfiglib): pass it, so the tree's own kconfiglib 14.1.0 is the one used.
    proc = subprocess.run(
        [
            "make",
            "-s",
            "scriptconfig",
            f"SCRIPT={REPO / 'scripts' / 'kconfig_check.py'}",
            f"SCRIPT_ARG={fragment}",
            f"UK_CONFIGLIB={uk_src / 'support' / 'kconfiglib'}",
        ],
        check=False,
        cwd=app,
        capture_output=True,
        text=True,
        env=dict(os.environ, UK_DEPSCAN_KCHECK_OUT=str(out)),
    )
    assert proc.returncode == 0, proc.stderr[-800:]
    return json.loads(out.read_text())  # type: ignore[no-any-return]


def assert_fragment_applies(result: dict, fragment_text: str) -> None:  # type: ignore[type-arg]
    """Every option exists; with a closed resolution every one ends y with no warning.  Without closure
    data (stated in the fragment), an option may end n only because a dependency the fragment does not
    ask for is unmet - which is exactly what the statement says - and there is no other warning."""
    opts = result["options"]
    assert opts and all(o["defined"] for o in opts.values()), [k for k, o in opts.items() if not o["defined"]]
    warnings = [w for w in result["warnings"] if not MERGE_NOTE.search(w)]
    assert warnings == []
    off = {k: o for k, o in opts.items() if o["value"] != "y"}
    if NOT_CLOSED not in fragment_text:
        assert off == {}
        return
    for name, o in off.items():
        assert o["depends_on"] not in (None, "y"), name  # it ended n for a dependency, not for nothing


def test_fixture_fragment_over_the_tree(uk_src: Path, base_app: Path, tmp_path: Path) -> None:
    fragment = FIXTURES / "golden" / "artifacts" / "x86_64" / "kconfig" / "kconfig.fragment"
    result = kconfig_check(base_app, uk_src, fragment, tmp_path / "out.json")
    assert result["kconfiglib"] == "14.1.0"
    assert_fragment_applies(result, fragment.read_text())


@pytest.mark.realwheel
@pytest.mark.parametrize(
    "relpath", ["onnxruntime/onnxruntime/capi/libonnxruntime.so.1.31.1", "torch/torch/lib/libtorch_cpu.so"]
)
def test_real_fragments_over_the_tree(
    relpath: str, uk_src: Path, base_app: Path, tmp_path: Path, real_wheels_dir: Path
) -> None:
    lib = real_wheels_dir / relpath
    if not lib.exists():
        pytest.skip(f"{lib} absent")
    code, text, err = run_cli(["kconfig", str(lib), "--unikraft", release_of(uk_src)])
    assert code == 0, err
    (tmp_path / "fragment").write_text(text)
    result = kconfig_check(base_app, uk_src, tmp_path / "fragment", tmp_path / "out.json")
    assert_fragment_applies(result, text)
    off = sorted(k for k, o in result["options"].items() if o["value"] != "y")
    print(f"{lib.name}: {len(result['options'])} options, ending n without closure: {off}")


def test_validate_script_on_the_fixture_scaffold(uk_src: Path, tmp_path: Path) -> None:
    """Slow (about a minute): build and boot the fixture's scaffold; every call answers as the scaffold says."""
    if release_of(uk_src) != "0.17.0":
        pytest.skip("the fixture report was made against Unikraft 0.17.0")
    for tool in ("qemu-system-x86_64", "bc", "flex", "bison"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} not installed")
    uk_depscan = Path(sys.executable).parent / "uk-depscan"
    env = dict(os.environ, WORK=str(tmp_path / "work"), UK_DEPSCAN=str(uk_depscan))
    proc = subprocess.run(
        [
            str(REPO / "scripts" / "validate-unikraft.sh"),
            str(uk_src),
            str(FIXTURES / "artifacts" / "report-x86_64.json"),
        ],
        check=False,
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout[-1500:] + proc.stderr[-1500:]
    manifest = json.loads((tmp_path / "work" / "scaffold" / "scaffold.json").read_text())
    n = len(manifest["syscalls"])
    assert f"uk-depscan-validate: PASS {n}/{n}" in proc.stdout
    checks = (tmp_path / "work" / "checks.txt").read_text().splitlines()
    assert len(checks) == n and all(line.endswith(" ok") for line in checks)
