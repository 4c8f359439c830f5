"""Loader exactness on the real ML wheels: every .so resolves like ld.so says (ldd on trusted files)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from conftest import have, ldd, run_cli

from uk_depscan.loader.resolve import resolve_tree

pytestmark = pytest.mark.realwheel


def _shared_objects(root: Path) -> list[Path]:
    return sorted(
        p for p in root.rglob("*.so*") if p.is_file() and not p.is_symlink() and p.read_bytes()[:4] == b"\x7fELF"
    )


@pytest.mark.parametrize("wheel", ["torch", "onnxruntime"])
def test_every_so_matches_ldd(wheel: str, real_wheels_dir: Path) -> None:
    if not have("ldd"):
        pytest.skip("ldd not available")
    root = real_wheels_dir / wheel
    if not root.is_dir():
        pytest.skip(f"{root} absent (bash bench/fetch_wheels.sh {wheel})")
    objects = _shared_objects(root)
    assert objects
    mismatches = []
    for so in objects:
        tree = resolve_tree(so).tree
        ours = {o.needed_name: os.path.realpath(o.path) for o in tree.objects[1:]}
        ours.update({m.needed_name: None for m in tree.missing})
        _, theirs = ldd(so)
        theirs = {k: v for k, v in theirs.items() if not k.startswith("linux-vdso")}
        if ours != theirs:
            mismatches.append((so, ours, theirs))
    assert not mismatches, mismatches[:3]


def test_deps_libtorch_cpu_is_fast(real_wheels_dir: Path) -> None:
    lib = real_wheels_dir / "torch" / "torch" / "lib" / "libtorch_cpu.so"
    if not lib.exists():
        pytest.skip("torch wheel absent")
    start = time.perf_counter()
    code, out, _ = run_cli(["deps", str(lib)])
    assert code == 0 and "libc10.so" in out
    assert time.perf_counter() - start < 2.0


def test_onnxruntime_wheel_scans_every_elf(real_wheels_dir: Path) -> None:
    wheels = sorted((real_wheels_dir.parent).glob("onnxruntime-1.31.1-*.whl"))
    if not wheels:
        pytest.skip("onnxruntime wheel file absent")
    code, out, err = run_cli(["deps", str(wheels[0]), "--format", "json"])
    assert code == 0, err
    import json

    targets = {t["target"].split("!/", 1)[1] for t in json.loads(out)["targets"]}
    assert "onnxruntime/capi/libonnxruntime.so.1.31.1" in targets
