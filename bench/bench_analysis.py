#!/usr/bin/env python3
"""Whole-process benchmark of a full uk-depscan analysis (closure, summaries, gaps) vs objdump -d.

Usage: python bench/bench_analysis.py [LIB ...] [--skip-objdump] [--out bench/RESULTS-analysis.md]
Default LIB: the torch wheel's libtorch_cpu.so under $UK_DEPSCAN_WHEELS, else bench/wheels/x
(bash bench/fetch_wheels.sh torch).  Every command
runs as its own child; wall time from perf_counter, peak RSS from wait4's rusage of that child.
Runs: `deps`, a cold full analysis (--no-cache: every library of the closure scanned), the same
with the libc family from the shipped tables (--libc glibc), a warm run (cache), and
`objdump -d LIB > /dev/null` as the baseline, all in this one run so the ratio is like for like.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT = (
    Path(os.environ.get("UK_DEPSCAN_WHEELS", HERE / "wheels" / "x")) / "torch" / "torch" / "lib" / "libtorch_cpu.so"
)


def run(cmd: list[str]) -> tuple[float, float, int]:
    """(seconds, peak RSS in MiB, exit code) of one child process."""
    start = time.perf_counter()
    with open(os.devnull, "wb") as null:
        proc = subprocess.Popen(cmd, stdout=null, stderr=null)
        _, status, usage = os.wait4(proc.pid, 0)
    return time.perf_counter() - start, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("libs", nargs="*", type=Path)
    ap.add_argument("--skip-objdump", action="store_true")
    ap.add_argument("--out", type=Path, default=HERE / "RESULTS-analysis.md")
    args = ap.parse_args()
    libs = args.libs or [DEFAULT]
    exe = [sys.executable, "-m", "uk_depscan"]
    rows = []
    for lib in libs:
        if not lib.exists():
            print(f"missing {lib}: run bash bench/fetch_wheels.sh", file=sys.stderr)
            return 2
        cases = [
            ("deps", [*exe, "deps", str(lib)]),
            ("full analysis, cold (--no-cache)", [*exe, "scan", str(lib), "--no-cache", "-q", "-f", "json"]),
            (
                "full analysis, cold target + shipped glibc summaries (--no-cache --libc glibc)",
                [*exe, "scan", str(lib), "--no-cache", "--libc", "glibc", "-q", "-f", "json"],
            ),
            ("full analysis, cached", [*exe, "scan", str(lib), "-q", "-f", "json"]),
        ]
        if not args.skip_objdump:
            cases.append(("objdump -d > /dev/null (baseline)", ["objdump", "-d", str(lib)]))
        results = {name: run(cmd) for name, cmd in cases}
        base = results.get("objdump -d > /dev/null (baseline)")
        for name, (secs, rss, code) in results.items():
            ratio = f"{secs / base[0]:.3f}x" if base else "-"
            rows.append(f"| {lib.name} | {name} | {secs:.2f} | {ratio} | {rss:.0f} | {code} |")
            print(rows[-1])
    text = [
        "# Full-analysis benchmark",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}.",
        f"Command: `python bench/bench_analysis.py {' '.join(map(str, args.libs))}`",
        "",
        "| library | run | seconds | vs objdump | peak RSS MiB | exit |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
    ]
    args.out.write_text("\n".join(text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
