#!/usr/bin/env python3
"""Cost of every hostile case, each in its own process: wall time and peak RSS (wait4 rusage).

Usage: python bench/bench_hostile.py [--out bench/RESULTS-hostile.md]

Cases: the crafted-cache corpus of tests/test_reliability_cache.py (every variant applied to a
good cache, then `uk-depscan scan TARGET --format json --libc glibc`), and hostile wheels built
here (a 3 GB sparse member, a 64 MiB zip bomb, duplicate/clashing/over-long member names).
For each: exit code, whether the report equals the --no-cache reference, warnings, seconds, MiB.
Not a timing benchmark: it bounds what hostile input can cost.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import warnings
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from helpers_syscalls import build_syscall_fixture  # noqa: E402
from test_reliability_cache import SOURCES, VARIANTS, Ctx  # noqa: E402
from test_reliability_wheels import GB3, _declare  # noqa: E402

from uk_depscan.store.cache import CACHE_FILE  # noqa: E402

ARGS = ["--format", "json", "--libc", "glibc"]


# The child reports its own VmHWM (peak RSS of its address space) as the last stderr line: wait4's
# ru_maxrss would include this parent's RSS at fork time, which Linux carries into the child's maximum.
CHILD = (
    "import sys; from uk_depscan.cli.main import run; rc = run(sys.argv[1:]); "
    "sys.stderr.write('\\nVmHWM ' + open('/proc/self/status').read().split('VmHWM:')[1].split()[0] + '\\n'); "
    "sys.exit(rc)"
)


def run(argv: list[str], env: dict[str, str]) -> tuple[int, bytes, bytes, float, float]:
    """(exit code, stdout, stderr, seconds, peak RSS MiB) of one child."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, *argv], env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    err, _, hwm = proc.stderr.rstrip(b"\n").rpartition(b"\nVmHWM ")
    return proc.returncode, proc.stdout, err, elapsed, int(hwm or 0) / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="uk-depscan-hostile-"))
    rows: list[tuple[str, str, str, int, float, float]] = []
    try:
        lib = build_syscall_fixture("x86_64", work / "target", "-O2", SOURCES)
        other = build_syscall_fixture("x86_64", work / "other", "-O0", SOURCES)
        env = dict(os.environ, UK_DEPSCAN_CACHE_DIR=str(work / "pristine"), TMPDIR=str(work))
        ref = run(["scan", str(lib), *ARGS, "--no-cache"], env)[1]
        for p in (lib, other):
            run(["scan", str(p), *ARGS], env)
        with contextlib.closing(sqlite3.connect(work / "pristine" / CACHE_FILE)) as c:
            keys = {r[0]: r for r in c.execute("SELECT * FROM entries")}
        cols = ["key", "object", "size", "meta", "data", "digest", "stored"]
        for name, (mutate, _) in sorted(VARIANTS.items()):
            d = work / "v" / name
            shutil.copytree(work / "pristine", d / "cache")
            rowmap = {k: dict(zip(cols, v, strict=True)) for k, v in keys.items()}
            target_key = next(k for k, r in rowmap.items() if r["size"] == lib.stat().st_size)
            other_key = next(k for k in rowmap if k != target_key)
            ctx = Ctx(d / "cache", d / "cache" / CACHE_FILE, target_key, rowmap[target_key], rowmap[other_key], lib, d)
            mutate(ctx)
            venv = dict(env, UK_DEPSCAN_CACHE_DIR=str(d / "cache"))
            code, out, err, secs, rss = run(["scan", str(lib), *ARGS], venv)
            same = "identical" if out == ref else "DIFFERENT"
            rows.append((f"cache: {name}", same, f"{err.count(b'WARNING')} warning(s)", code, secs, rss))
            shutil.rmtree(d)
        elf = lib.read_bytes()
        warnings.simplefilter("ignore")
        wheels: dict[str, list[tuple[str, bytes]]] = {
            "wheel: 3 GB sparse member": [("pkg/libok.so", elf), ("pkg/libbomb.so", elf)],
            "wheel: 64 MiB zip bomb member": [("pkg/libok.so", elf), ("pkg/libbomb.so", elf[:64] + bytes(64 << 20))],
            "wheel: dup/clash/long names": [
                ("pkg/libok.so", elf),
                ("pkg/libd.so", elf),
                ("pkg/libd.so", elf),
                ("pkg/libf.so", elf),
                ("pkg/libf.so/x.so", elf),
                ("pkg/" + "l" * 300 + ".so", elf),
                ("/".join(["d" * 100] * 42) + "/x.so", elf),
            ],
        }
        for name, members in wheels.items():
            whl = work / f"{len(rows)}-1.0-py3-none-any.whl"
            with zipfile.ZipFile(whl, "w", zipfile.ZIP_DEFLATED) as zf:
                for n, data in members:
                    zf.writestr(n, data)
            if "sparse" in name:
                _declare(whl, "pkg/libbomb.so", GB3)
            code, out, err, secs, rss = run(["deps", str(whl), "--format", "json"], env)
            rows.append((name, "report" if out else "no report", err.decode()[-60:].strip(), code, secs, rss))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lines = [
        "| case | result | stderr | exit | s | MiB |",
        "|---|---|---|---|---|---|",
        *(f"| {n} | {s} | {w} | {c} | {t:.2f} | {m:.0f} |" for n, s, w, c, t, m in rows),
    ]
    worst_t = max(rows, key=lambda r: r[4])
    worst_m = max(rows, key=lambda r: r[5])
    summary = (
        f"\n{len(rows)} cases; reports identical: {sum(r[1] == 'identical' for r in rows)}; "
        f"longest {worst_t[4]:.2f} s ({worst_t[0]}); largest RSS {worst_m[5]:.0f} MiB ({worst_m[0]})\n"
    )
    text = "\n".join(lines) + "\n" + summary
    sys.stdout.write(text)
    if args.out:
        args.out.write_text(f"# Hostile cases (python bench/bench_hostile.py)\n\n{text}")


if __name__ == "__main__":
    main()
