#!/usr/bin/env python3
"""Speed benchmark (issue 18): warm and cold full analysis vs ``objdump -d``, and several targets
(torch/lib, the torch wheel) at ``--jobs 1`` and ``--jobs 2``, cold and warm, each side by side
with its baseline in the same run.

Usage: python bench/bench_speed.py [--reps 3] [--before /work/main [--before-multi]] [--wheel-reps 1]
       [--skip-objdump] [--skip-wheel] [--out bench/RESULTS-speed.md]

* Every command runs as its own child process; wall time from perf_counter, peak RSS from
  wait4's rusage (which covers the child's reaped workers too), and the 1-minute load average
  just before the run (the machine is shared: read every figure with its load).
* Cases are interleaved: repetition r runs every case once before repetition r + 1 starts, so a
  burst of load from elsewhere hits all cases alike; the table gives the median.
* Cold = an empty cache directory of its own; warm = the cache directory the same target's first
  cold run filled.  Ratios: against ``objdump -d LIB > /dev/null`` (single library) and
  against ``--jobs 1`` (several targets).
* ``--before DIR`` adds the same single-library cases for another checkout (e.g. main), run by
  the same interpreter with that tree first on ``PYTHONPATH``; ``--before-multi`` the torch/lib
  and wheel cases too.
* The host's own ceiling for ``--jobs 2``: two ``torch/lib --jobs 1`` cold runs started together,
  each with its own cache (the same work split perfectly in two, with nothing shared and no
  coordination), against two such runs one after the other.  On a machine whose two cores run
  as fast together as alone this is 0.5x; a host that slows one vCPU when the other is busy
  shows it here, next to what ``--jobs 2`` achieves in the same run.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
TREE = HERE.parent
WHEELS = Path(os.environ.get("UK_DEPSCAN_WHEELS", HERE / "wheels" / "x"))
LIB = WHEELS / "torch" / "torch" / "lib" / "libtorch_cpu.so"
TORCH_LIB = WHEELS / "torch" / "torch" / "lib"


@dataclass
class Case:
    name: str
    cmd: list[str]
    env: dict[str, str]
    cache: str | None  # "cold": a fresh directory per run; "warm": one directory filled first; None: no cache use
    group: str
    baseline: bool = False
    copies: int = 1  # started together, each with its own cache; the ratio is to `copies` baseline runs
    runs: list[tuple[float, float, float, int]] = field(default_factory=list)  # (s, MiB, load, exit)
    cpu: list[float] = field(default_factory=list)  # user + system seconds (the child and its workers)


def run(cmd: list[str], envs: list[dict[str, str]]) -> tuple[float, float, float, int, float]:
    """(wall s, peak RSS MiB, load before, exit code, CPU s) of ``cmd`` started once per
    environment, all together (wall: until the last ends; RSS: the largest; CPU: the sum; exit:
    the highest): CPU time is what a loaded machine distorts least."""
    load = os.getloadavg()[0]
    start = time.perf_counter()
    with open(os.devnull, "wb") as null:
        # cwd "/": `python -m` puts the working directory first on sys.path, ahead of PYTHONPATH, so
        # run from a checkout every case would import that checkout (--before measured this tree)
        procs = [subprocess.Popen(cmd, stdout=null, stderr=null, env=env, cwd="/") for env in envs]
        ends = [os.wait4(proc.pid, 0) for proc in procs]
    wall = time.perf_counter() - start
    cpu = sum(u.ru_utime + u.ru_stime for _, _, u in ends)
    rss = max(u.ru_maxrss for _, _, u in ends) / 1024
    return wall, rss, load, max(os.waitstatus_to_exitcode(status) for _, status, _ in ends), cpu


def uk(tree: Path, args: list[str]) -> tuple[list[str], dict[str, str]]:
    # As installed by pip: the modules' bytecode is compiled once (main() runs compileall) and used.
    # With PYTHONDONTWRITEBYTECODE set and no .pyc, every run would compile ~60 modules (+0.3 s).
    env = dict(os.environ, PYTHONPATH=str(tree))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return [sys.executable, "-m", "uk_depscan", *args], env


def compile_tree(tree: Path) -> None:
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "uk_depscan")], check=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--wheel-reps", type=int, default=1)
    ap.add_argument("--before", type=Path, help="another checkout to run the single-library cases with")
    ap.add_argument("--before-multi", action="store_true", help="run the torch/lib and wheel cases with --before too")
    ap.add_argument("--skip-objdump", action="store_true")
    ap.add_argument("--skip-wheel", action="store_true")
    ap.add_argument("--skip-lib", action="store_true", help="skip the torch/lib cases")
    ap.add_argument("--out", type=Path, default=HERE / "RESULTS-speed.md")
    args = ap.parse_args()
    wheel = next(iter(sorted((HERE / "wheels").glob("torch-*.whl"))), None)
    if not LIB.exists():
        print(f"missing {LIB}: run bash bench/fetch_wheels.sh torch", file=sys.stderr)
        return 2
    scan = ["scan", "-q", "-f", "json"]
    cases: list[Case] = []
    trees = [("this tree", TREE)] + ([("before: " + str(args.before), args.before)] if args.before else [])
    for _, tree in trees:
        compile_tree(tree)
    for label, tree in trees:
        cmd, env = uk(tree, [*scan, str(LIB)])
        cases.append(Case(f"{label}: libtorch_cpu.so cold", cmd, env, "cold", "single"))
        cases.append(Case(f"{label}: libtorch_cpu.so warm", cmd, env, "warm", "single"))
    if not args.skip_objdump:
        cases.append(
            Case(
                "objdump -d libtorch_cpu.so > /dev/null",
                ["objdump", "-d", str(LIB)],
                dict(os.environ),
                None,
                "single",
                True,
            )
        )
    multi: list[tuple[str, Path, int]] = []
    if not args.skip_lib:
        multi.append(("torch/lib", TORCH_LIB, args.reps))
    if wheel is not None and not args.skip_wheel:
        multi.append(("torch wheel", wheel, args.wheel_reps))
    multi_trees = trees if args.before_multi else trees[:1]
    for what, target, _ in multi:
        for state in ("cold", "warm"):
            for label, tree in multi_trees:
                who = "" if tree == TREE else label + ": "
                for jobs in (1, 2):
                    cmd, env = uk(tree, [*scan, "--jobs", str(jobs), str(target)])
                    name, group = f"{who}{what} --jobs {jobs} {state}", f"{who}{what} {state}"
                    cases.append(Case(name, cmd, env, state, group, jobs == 1))
            if what == "torch/lib" and state == "cold":
                cmd, env = uk(TREE, [*scan, "--jobs", "1", str(target)])
                name = f"{what} --jobs 1 {state}, 2 copies at once (the host's ceiling for --jobs 2)"
                cases.append(Case(name, cmd, env, state, f"{what} {state}", copies=2))
    reps = {c.name: args.reps for c in cases}
    for c in cases:
        for what, _, n in multi:
            if c.name.rsplit(": ", 1)[-1].startswith(what + " "):  # after "before: DIR: "
                reps[c.name] = n
    base = Path(tempfile.mkdtemp(prefix="uk-depscan-bench-"))
    try:
        # warm = the cache directory the same target's first cold run filled (same tree, any --jobs):
        # no untimed fill runs, which would double the wheel's cost
        warm_dir: dict[str, Path] = {}
        for r in range(max(reps.values())):
            for i, c in enumerate(cases):
                if r >= reps[c.name]:
                    continue
                slot = (c.group if c.group != "single" else c.name).rsplit(" ", 1)[0]  # one target, one tree
                envs = [c.env]
                colds = [base / f"cold-{i}-{r}-{k}" for k in range(c.copies)]
                if c.cache == "cold":
                    envs = [dict(c.env, UK_DEPSCAN_CACHE_DIR=str(cold)) for cold in colds]
                elif c.cache == "warm":
                    envs = [dict(c.env, UK_DEPSCAN_CACHE_DIR=str(warm_dir[slot]))]
                *measured, cpu = run(c.cmd, envs)
                c.runs.append((measured[0], measured[1], measured[2], int(measured[3])))
                c.cpu.append(cpu)
                if c.cache == "cold" and slot not in warm_dir and c.copies == 1:
                    warm_dir[slot] = colds[0]
                elif c.cache == "cold":
                    for cold in colds:
                        shutil.rmtree(cold, ignore_errors=True)
                s, rss, load, code = c.runs[-1]
                print(
                    f"rep {r + 1}: {c.name}: {s:.2f} s, {rss:.0f} MiB, load {load:.1f}, exit {code}, cpu {cpu:.2f} s",
                    file=sys.stderr,
                )
    finally:
        shutil.rmtree(base, ignore_errors=True)
    rows = []
    baselines = {c.group: c for c in cases if c.baseline}
    for c in cases:
        med = statistics.median(s for s, _, _, _ in c.runs)
        b = baselines.get(c.group)
        ratio = f"{med / (c.copies * statistics.median(s for s, _, _, _ in b.runs)):.3f}x" if b else "-"
        every = ", ".join(f"{s:.2f}" for s, _, _, _ in c.runs)
        loads = ", ".join(f"{ld:.1f}" for _, _, ld, _ in c.runs)
        rss = max(m for _, m, _, _ in c.runs)
        codes = sorted({code for _, _, _, code in c.runs})
        base_name = (f"{c.copies} x " if c.copies > 1 else "") + b.name if b else "-"
        cpu_med = statistics.median(c.cpu)
        cells = [c.name, f"{med:.2f}", every, f"{ratio} vs {base_name}", f"{cpu_med:.2f}", f"{rss:.0f}", loads]
        rows.append("| " + " | ".join([*cells, str(codes)]) + " |")
    text = [
        "# Speed benchmark (issue 18)",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores (shared with other jobs: see the load column), "
        f"Python {platform.python_version()}.",
        f"Command: `python bench/bench_speed.py {' '.join(sys.argv[1:])}`",
        "",
        "Median of the runs listed; cases interleaved; load = 1-minute load average before each run.",
        "",
        "| case | median s | runs s | ratio | median CPU s | peak RSS MiB | load | exit |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        "",
    ]
    args.out.write_text("\n".join(text))
    print("\n".join(text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
