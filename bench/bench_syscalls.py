#!/usr/bin/env python3
"""Benchmark of the syscall extraction engine (not a test).

Measures, each in its own process (wall time and peak RSS from ``wait4``):
  1. a full uncached syscall scan (direct sites, wrapper sites, call graph) of the library;
  2. ``objdump -d <lib> > /dev/null`` of the same library, in the same run, for scale;
  3. a cached re-scan (the cache is filled by an extra warm-up scan into a temporary directory).

Usage:  python bench/bench_syscalls.py [LIB] [--write bench/RESULTS.md] [--repeat N]
LIB defaults to $UK_DEPSCAN_WHEELS/torch/torch/lib/libtorch_cpu.so (UK_DEPSCAN_WHEELS defaults
to bench/wheels/x, which ``bash bench/fetch_wheels.sh torch`` fills).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCAN = r"""
import json, sys, time
t0 = time.perf_counter()
from uk_depscan.elf.file import open_elf
from uk_depscan.syscalls.scan import scan_library
with open_elf(sys.argv[1]) as elf:
    s = scan_library(elf, no_cache=sys.argv[2] == "1")
    out = {"sites": len(s.sites), "from_cache": s.from_cache, "edges": s.graph.n_edges,
           "functions": s.graph.n_funcs, "wrappers": len(s.wrappers),
           "by_kind": {}, "in_process_s": round(time.perf_counter() - t0, 3), "stats": s.stats}
    for site in s.sites:
        out["by_kind"][site.kind] = out["by_kind"].get(site.kind, 0) + 1
print(json.dumps(out))
"""


def default_lib() -> Path:
    for base in (os.environ.get("UK_DEPSCAN_WHEELS"), str(HERE / "wheels" / "x")):
        if base and (Path(base) / "torch/torch/lib/libtorch_cpu.so").is_file():
            return Path(base) / "torch/torch/lib/libtorch_cpu.so"
    sys.exit("libtorch_cpu.so not found: set UK_DEPSCAN_WHEELS or run bench/fetch_wheels.sh")


def measure(cmd: list[str], env: dict[str, str] | None = None, stdout=subprocess.PIPE) -> tuple[float, int, str]:
    """(wall seconds, peak RSS bytes, stdout) of one child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.PIPE, env=env)
    out = proc.stdout.read().decode() if proc.stdout else ""
    err = proc.stderr.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        sys.exit(f"{cmd[0]} failed ({proc.returncode}): {err[-2000:]}")
    return wall, usage.ru_maxrss * 1024, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("lib", nargs="?", type=Path, default=None)
    ap.add_argument("--write", type=Path, default=None, help="write a markdown report here")
    ap.add_argument("--repeat", type=int, default=1, help="uncached scans to run (best is reported)")
    ap.add_argument("--skip-objdump", action="store_true")
    args = ap.parse_args()
    lib = args.lib or default_lib()
    py = sys.executable
    env = dict(os.environ, PYTHONPATH=str(HERE.parent) + os.pathsep + os.environ.get("PYTHONPATH", ""))

    scans = [measure([py, "-c", SCAN, str(lib), "1"], env) for _ in range(max(1, args.repeat))]
    scan_wall, scan_rss, scan_out = min(scans, key=lambda r: r[0])
    info = json.loads(scan_out)

    objdump_wall = objdump_rss = None
    if not args.skip_objdump:
        with open(os.devnull, "wb") as devnull:
            objdump_wall, objdump_rss, _ = measure(["objdump", "-d", str(lib)], stdout=devnull)

    with tempfile.TemporaryDirectory() as cache:
        cenv = dict(env, UK_DEPSCAN_CACHE_DIR=cache)
        fill_wall, _, _ = measure([py, "-c", SCAN, str(lib), "0"], cenv)
        cached_wall, cached_rss, cached_out = measure([py, "-c", SCAN, str(lib), "0"], cenv)
        cached = json.loads(cached_out)
        assert cached["from_cache"] and cached["sites"] == info["sites"]
        cache_bytes = sum(p.stat().st_size for p in Path(cache).iterdir())

    mb = 1 << 20
    rows = [
        ("syscall scan, uncached (whole process)", scan_wall, scan_rss),
        ("scan + cache write (first cached run)", fill_wall, None),
        ("syscall scan, cached re-scan (whole process)", cached_wall, cached_rss),
    ]
    if objdump_wall is not None:
        rows.insert(1, ("objdump -d > /dev/null", objdump_wall, objdump_rss))
    print(f"library: {lib} ({lib.stat().st_size / mb:.0f} MB)")
    for name, wall, rss in rows:
        print(f"  {name:48s} {wall:8.2f} s   " + (f"peak RSS {rss / mb:7.0f} MB" if rss else ""))
    if objdump_wall:
        print(f"  ratio scan/objdump: {scan_wall / objdump_wall:.3f}")
    print(
        f"  result: {info['sites']} sites {info['by_kind']}, {info['functions']} functions, "
        f"{info['edges']} call-graph edges, {info['wrappers']} local wrappers; cache {cache_bytes / mb:.1f} MB"
    )
    print(f"  in-process phases: {info['stats']}")

    if args.write:
        cmd = (
            "python bench/bench_syscalls.py "
            + (f"{args.lib} " if args.lib else "")
            + (f"--repeat {args.repeat} " if args.repeat > 1 else "")
            + f"--write {args.write}"
        )
        lines = [
            "# Syscall extraction benchmark",
            "",
            f"Command: `{cmd.replace('  ', ' ')}`  ",
            f"Library: `{lib}` ({lib.stat().st_size / mb:.0f} MB)  ",
            f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
            "",
            "Each row is a separate process; wall time and peak RSS (`ru_maxrss` from `wait4`).",
            "",
            "| run | wall time | peak RSS |",
            "|---|---:|---:|",
        ]
        for name, wall, rss in rows:
            lines.append(f"| {name} | {wall:.2f} s | {f'{rss / mb:.0f} MB' if rss else '—'} |")
        lines.append("")
        if objdump_wall:
            lines.append(f"Ratio uncached scan / objdump: **{scan_wall / objdump_wall:.3f}** (target ≤ 0.1).  ")
        lines += [
            f"Peak RSS of the scan: **{scan_rss / mb:.0f} MB** (target ≤ 1536 MB); "
            f"cached re-scan: **{cached_wall:.2f} s** (target ≤ 1 s).",
            "",
            f"Result: {info['sites']} sites {info['by_kind']}, {info['functions']} functions, "
            f"{info['edges']} call-graph edges, {info['wrappers']} local wrappers; "
            f"cache entry {cache_bytes / mb:.1f} MB.",
            "",
            f"In-process phase times (s): `{json.dumps(info['stats'])}`",
            "",
        ]
        args.write.write_text("\n".join(lines))


if __name__ == "__main__":
    main()
