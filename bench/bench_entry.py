#!/usr/bin/env python3
"""``--entry GLOB`` against the whole object: reached-syscall set sizes and wall time, side by side.

Usage: python bench/bench_entry.py [--repeat 3] [--out bench/RESULTS-entry.md] [--case LIB=GLOB ...]
Default cases (libraries under $UK_DEPSCAN_WHEELS, else bench/wheels/x; bash bench/fetch_wheels.sh):
libonnxruntime.so.1.31.1 with ``OrtGetApiBase``, libtorch_cpu.so with ``at::_ops::matmul::call*`` and
``at::*``.
Every run is ``uk-depscan scan LIB --libc glibc -f json -o OUT [--entry GLOB]`` in its own child,
after one warm-up run that fills the scan cache (so both sides time the reachability, not the
disassembly); wall time is the median of ``--repeat`` runs.  The ratio is entry / whole.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WHEELS = Path(os.environ.get("UK_DEPSCAN_WHEELS", HERE / "wheels" / "x"))
CASES = (
    (WHEELS / "onnxruntime" / "onnxruntime" / "capi" / "libonnxruntime.so.1.31.1", "OrtGetApiBase"),
    (WHEELS / "torch" / "torch" / "lib" / "libtorch_cpu.so", "at::_ops::matmul::call*"),
    (WHEELS / "torch" / "torch" / "lib" / "libtorch_cpu.so", "at::*"),  # 19 k exports: the demangling path
)


def run(lib: Path, entry: str | None, out: Path) -> tuple[float, set[str]]:
    """(seconds, reached syscall names) of one analysis in a child process."""
    cmd = [sys.executable, "-m", "uk_depscan", "scan", str(lib), "--libc", "glibc", "-q", "-f", "json", "-o", str(out)]
    cmd += ["--entry", entry] if entry else []
    start = time.perf_counter()
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True)
    took = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.strip()}")
    doc = json.loads(out.read_text())
    return took, {s["name"] for s in doc["targets"][0]["syscalls"]["reached"]}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=HERE / "RESULTS-entry.md")
    ap.add_argument("--case", action="append", help="LIB=GLOB (repeatable)")
    args = ap.parse_args()
    cases = [(Path(c.split("=", 1)[0]), c.split("=", 1)[1]) for c in args.case] if args.case else list(CASES)
    lines = [
        "# `--entry` against the whole object",
        "",
        f"Command: `python bench/bench_entry.py --repeat {args.repeat}` ({platform.node()}, "
        f"{os.cpu_count()} cores, shared: times move by tens of percent). Scan cache warm on both sides; "
        "seconds are the median of the runs.",
        "",
        "| library | --entry | whole: syscalls | entry: syscalls | share | whole s | entry s | time ratio |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    dropped = []
    with tempfile.TemporaryDirectory(prefix="uk-depscan-bench-entry-") as tmp:
        for lib, glob in cases:
            if not lib.exists():
                print(f"missing {lib}: run bash bench/fetch_wheels.sh", file=sys.stderr)
                return 2
            out = Path(tmp) / "out.json"
            run(lib, None, out)  # warm-up: fills the scan cache
            whole_t, entry_t = [], []
            whole: set[str] = set()
            entry: set[str] = set()
            for _ in range(args.repeat):
                t, whole = run(lib, None, out)
                whole_t.append(t)
                t, entry = run(lib, glob, out)
                entry_t.append(t)
            w, e = statistics.median(whole_t), statistics.median(entry_t)
            lines.append(
                f"| {lib.name} | `{glob}` | {len(whole)} | {len(entry)} | {len(entry) / len(whole):.0%} "
                f"| {w:.2f} | {e:.2f} | {e / w:.2f}× |"
            )
            dropped.append(f"- {lib.name}, `{glob}` drops: {', '.join(sorted(whole - entry)) or 'nothing'}")
    lines += ["", *dropped, ""]
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
