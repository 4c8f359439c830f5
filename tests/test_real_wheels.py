"""Loader exactness on the real ML wheels: every .so resolves like ld.so says.

``ldd`` runs only on a fixture program this test builds (never on a scanned input): the program's
one DT_NEEDED entry is the wheel library's absolute path, so ld.so maps that library the way it
maps any dependency and resolves the library's own DT_NEEDED from its DT_RUNPATH/$ORIGIN, and
our loader is asked about the same program.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from conftest import WHEELS_HINT, ldd, need, run_cli

from uk_depscan.loader.resolve import resolve_tree

pytestmark = pytest.mark.realwheel


def _shared_objects(root: Path) -> list[Path]:
    return sorted(
        p for p in root.rglob("*.so*") if p.is_file() and not p.is_symlink() and p.read_bytes()[:4] == b"\x7fELF"
    )


def _program_needing(so: Path, out: Path) -> Path:
    """A fixture executable whose only DT_NEEDED is ``so``'s absolute path (never run, only ldd'ed).

    The path gets into DT_NEEDED as the soname of a stub library the program links against; the
    program has no libc of its own (``-nostdlib``), so every object in its closure comes from ``so``.
    """
    out.mkdir(parents=True, exist_ok=True)
    src = out / "start.c"
    src.write_text("void _start(void) {}\n")
    stub = out / "libstub.so"
    cc = ["gcc", "-nostdlib", "-fPIC"]
    subprocess.run([*cc, "-shared", f"-Wl,-soname,{so}", "-o", str(stub), str(src)], check=True, capture_output=True)
    exe = out / "needs-it"
    subprocess.run([*cc, "-o", str(exe), str(src), "-Wl,--no-as-needed", str(stub)], check=True, capture_output=True)
    return exe


@pytest.mark.parametrize("wheel", ["torch", "onnxruntime"])
def test_every_so_matches_ldd(wheel: str, real_wheels_dir: Path, tmp_path: Path) -> None:
    need("gcc", "ldd")
    root = real_wheels_dir / wheel
    if not root.is_dir():
        pytest.skip(f"{wheel}: {WHEELS_HINT}")
    objects = _shared_objects(root)
    assert objects
    mismatches = []
    for i, so in enumerate(objects):
        exe = _program_needing(so, tmp_path / str(i))
        tree = resolve_tree(exe).tree
        # ldd names an object loaded by path by its file name; ours keeps the DT_NEEDED string
        ours = {os.path.basename(o.needed_name): os.path.realpath(o.path) for o in tree.objects[1:]}
        ours.update({m.needed_name: None for m in tree.missing})
        _, theirs = ldd(exe)
        theirs = {k: v for k, v in theirs.items() if not k.startswith("linux-vdso")}
        assert theirs[so.name] == os.path.realpath(so)  # the fixture really loads the wheel's library
        if ours != theirs:
            mismatches.append((so, ours, theirs))
    assert not mismatches, mismatches[:3]


def test_deps_libtorch_cpu_is_fast(real_wheels_dir: Path) -> None:
    lib = real_wheels_dir / "torch" / "torch" / "lib" / "libtorch_cpu.so"
    if not lib.exists():
        pytest.skip(f"torch: {WHEELS_HINT}")
    start = time.perf_counter()
    code, out, _ = run_cli(["deps", str(lib)])
    assert code == 0 and "libc10.so" in out
    assert time.perf_counter() - start < 2.0


def test_onnxruntime_wheel_scans_every_elf(real_wheels_dir: Path) -> None:
    wheels = sorted((real_wheels_dir.parent).glob("onnxruntime-1.31.1-*.whl"))
    if not wheels:
        pytest.skip(f"onnxruntime wheel file: {WHEELS_HINT}")
    code, out, err = run_cli(["deps", str(wheels[0]), "--format", "json"])
    assert code == 0, err
    import json

    targets = {t["target"].split("!/", 1)[1] for t in json.loads(out)["targets"]}
    assert "onnxruntime/capi/libonnxruntime.so.1.31.1" in targets
