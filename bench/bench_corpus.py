#!/usr/bin/env python3
"""The corpus demonstration: ``corpus scan`` of every wheel in a directory, locally and on Dask.

Usage: python bench/bench_corpus.py WHEEL_DIR [--subset GLOB ...] [--skip-full-dask] [--jobs 2]
       [--work DIR] [--out bench/RESULTS-corpus.md]

Runs, each as its own child process with a fresh scan cache (UK_DEPSCAN_CACHE_DIR), so no run
profits from another's cached library scans:

1. local, all wheels (``--jobs`` processes) into ``local.db``; then the same command again
   (nothing new: the re-run time) and ``corpus report`` for 0.17.0;
2. Dask, all wheels: a real ``dask scheduler`` and ``dask worker --nworkers JOBS --nthreads 1`` on
   127.0.0.1 (the same CPU budget as the local pool) into ``dask.db`` (``--skip-full-dask``: not);
3. local vs Dask on the ``--subset`` wheels, interleaved ``--rounds`` times, fresh caches;
4. the JSON reports of the local and Dask databases compared byte for byte.

Members under ``torch/bin/`` (protoc, torch_shm_manager) are excluded: tools, not libraries.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXCLUDE = ["--exclude", "torch/bin/*"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def timed(cmd: list[str], env: dict[str, str], log: Path) -> float:
    start = time.perf_counter()
    with open(log, "ab") as fh:
        rc = subprocess.run(cmd, stdout=fh, stderr=fh, env=env, check=False).returncode
    if rc != 0:
        sys.exit(f"failed ({rc}): {' '.join(cmd)} (see {log})")
    return time.perf_counter() - start


class Cluster:
    """A dask scheduler and workers on 127.0.0.1, torn down on exit."""

    def __init__(self, env: dict[str, str], jobs: int, log: Path) -> None:
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        dask = [str(Path(sys.executable).with_name("dask"))]
        self.log = open(log, "ab")  # noqa: SIM115 - closed in __exit__
        self.procs = [
            subprocess.Popen(
                [*dask, "scheduler", "--host", "127.0.0.1", "--port", str(self.port), "--no-dashboard"],
                stdout=self.log,
                stderr=self.log,
                env=env,
            ),
        ]
        time.sleep(3)
        self.procs.append(
            subprocess.Popen(
                [*dask, "worker", self.address, "--nworkers", str(jobs), "--nthreads", "1", "--memory-limit", "0",
                 "--no-dashboard", "--host", "127.0.0.1"],
                stdout=self.log, stderr=self.log, env=env,
            )
        )  # fmt: skip
        self._wait_workers(jobs, env)

    def _wait_workers(self, jobs: int, env: dict[str, str]) -> None:
        code = (
            "import sys; from distributed import Client; c = Client(sys.argv[1], timeout='30s');"
            " c.wait_for_workers(int(sys.argv[2]), timeout=120); c.close()"
        )
        subprocess.run([sys.executable, "-c", code, self.address, str(jobs)], env=env, check=True)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        for p in reversed(self.procs):
            p.terminate()
        for p in reversed(self.procs):
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.log.close()


def db_bytes(db: Path) -> int:
    return sum(p.stat().st_size for p in (db, db.with_name(db.name + "-wal")) if p.exists())


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("wheels", type=Path)
    ap.add_argument("--subset", nargs="*", default=["onnxruntime-1.2[03]*", "tflite*", "ai_edge_litert-1*"])
    ap.add_argument("--rounds", type=int, default=1, help="interleaved local/Dask rounds on the subset")
    ap.add_argument("--skip-full-dask", action="store_true")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--work", type=Path, default=HERE / "out" / "corpus")
    ap.add_argument("--out", type=Path, default=HERE / "RESULTS-corpus.md")
    args = ap.parse_args()
    wheels = sorted(str(p) for p in args.wheels.glob("*.whl"))
    subset = [w for w in wheels if any(fnmatch.fnmatch(os.path.basename(w), g) for g in args.subset)]
    if not wheels:
        sys.exit(f"no wheels in {args.wheels}")
    work = args.work
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    log = work / "log.txt"
    exe = [sys.executable, "-m", "uk_depscan", "corpus"]

    def env_with_cache(name: str) -> dict[str, str]:
        return {**os.environ, "UK_DEPSCAN_CACHE_DIR": str(work / f"cache-{name}")}

    def scan(db: Path, files: list[str], name: str, scheduler: str | None = None) -> float:
        sched = ["--scheduler", scheduler] if scheduler else []
        cmd = [*exe, "scan", *files, "--db", str(db), "-j", str(args.jobs), *EXCLUDE, *sched]
        return timed(cmd, env_with_cache(name), log)

    rows: list[tuple[str, str, float]] = []
    local_db = work / "local.db"
    t_local = scan(local_db, wheels, "local")
    rows.append((f"local, {args.jobs} processes", f"all {len(wheels)} wheels", t_local))
    t_rerun = scan(local_db, wheels, "local")
    rows.append(("local, re-run (nothing new)", f"all {len(wheels)} wheels", t_rerun))
    dask_db = work / "dask.db"
    if not args.skip_full_dask:
        with Cluster(env_with_cache("dask"), args.jobs, log) as c:
            t_dask = scan(dask_db, wheels, "dask", c.address)
        rows.append((f"Dask, 1 scheduler + {args.jobs} workers × 1 thread", f"all {len(wheels)} wheels", t_dask))
    for k in range(args.rounds):
        t = scan(work / f"sub-local-{k}.db", subset, f"sub-local-{k}")
        rows.append((f"local, {args.jobs} processes (round {k + 1})", f"subset: {len(subset)} wheels", t))
        with Cluster(env_with_cache(f"sub-dask-{k}"), args.jobs, log) as c:
            t = scan(work / f"sub-dask-{k}.db", subset, f"sub-dask-{k}", c.address)
        rows.append((f"Dask, {args.jobs} workers × 1 thread (round {k + 1})", f"subset: {len(subset)} wheels", t))

    def report(db: Path, fmt: str, extra: list[str]) -> str:
        cmd = [*exe, "report", "--db", str(db), "--format", fmt, *extra]
        return subprocess.run(cmd, capture_output=True, text=True, check=True, env=env_with_cache("local")).stdout

    same = "not compared (--skip-full-dask)"
    if not args.skip_full_dask:
        same = "identical" if report(local_db, "json", []) == report(dask_db, "json", []) else "DIFFERENT"
    sub_same = report(work / "sub-local-0.db", "json", []) == report(work / "sub-dask-0.db", "json", [])
    text = report(local_db, "text", ["--unikraft", "0.17.0"])
    (work / "report-0.17.0.txt").write_text(text)
    (work / "report.md").write_text(report(local_db, "md", []))
    import sqlite3

    conn = sqlite3.connect(local_db)
    objects, targets, summaries = (
        conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("objects", "targets", "export_summaries")
    )
    conn.close()
    size = db_bytes(local_db)
    # the step's work and how many libraries it completes (the names are in report-0.17.0.txt)
    plan = [
        ln.strip().split(": ", 1)[1].split(" fully covered (", 1)[0] + " fully covered"
        for ln in text.splitlines()
        if ln.strip().startswith("step ")
    ][:10]
    cmd = f"python bench/bench_corpus.py {args.wheels} --jobs {args.jobs}" + (
        " --skip-full-dask" if args.skip_full_dask else ""
    )
    md = [
        "# Corpus benchmark: `uk-depscan corpus scan`, local process pool vs Dask distributed",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores (shared with other jobs), Python "
        f"{platform.python_version()}.  Command: `{cmd}`",
        "",
        f"Wheels ({len(wheels)}): " + ", ".join(f"`{os.path.basename(w)}`" for w in wheels),
        "",
        "| engine | inputs | wall s | vs local |",
        "|---|---|---|---|",
    ]
    base = {r[1]: r[2] for r in rows if r[0].startswith("local,") and "re-run" not in r[0]}
    md += [f"| {e} | {i} | {t:.1f} | {t / base.get(i, t):.2f}x |" for e, i, t in rows]
    md += [
        "",
        f"Database: {objects} objects, {targets} targets (libraries in their wheels), {summaries} export "
        f"summary rows; {size / (1 << 20):.1f} MiB.",
        f"Reports of the local and the Dask database (JSON, all releases): {same}; subset: "
        f"{'identical' if sub_same else 'DIFFERENT'}.",
        "",
        "First ten steps of the ecosystem plan against Unikraft 0.17.0:",
        "",
        *(f"{k}. {s}" for k, s in enumerate(plan, 1)),
        "",
    ]
    args.out.write_text("\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
