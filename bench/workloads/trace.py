"""Install the runtimes, run every workload under ``strace -f -k``, reduce the traces to per-library syscall
sets, and write the development set (bench/devset/).

    python bench/workloads/trace.py                 # everything (install, models, drivers, trace, reduce)
    python bench/workloads/trace.py --only torch_jit # one workload (the dev set is rebuilt from all reduced runs)
    python bench/workloads/trace.py --reduce-only    # re-reduce the traces already in bench/out/traces

Run from anywhere; paths are relative to the repository root.  Needs gcc, ptrace permission, root for
apt (build_strace.sh builds Debian's strace with libdw unwinding: ~10x faster -k than the packaged one),
and PyPI for the first install.  Workloads run one after the
other (the machine is shared).  Raw traces stay in bench/out/traces (git-ignored, large); the reduced
per-workload files and the aggregated dev set are written to bench/devset/ to be committed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

from workloads import RUNTIMES, WORKLOADS, Workload  # noqa: E402

from uk_depscan.observe.attribute import attribute  # noqa: E402
from uk_depscan.observe.strace import parse_trace  # noqa: E402

OUT = REPO / "bench" / "out"
DEVSET = REPO / "bench" / "devset"
# strace 6.1 from Debian's source package, built with libdw unwinding (build_strace.sh explains why)
STRACE_BIN = OUT / "strace" / "strace"
STRACE = ("bench/out/strace/strace", "-f", "-k", "-s", "128", "-o")
PYVER = "python3.11"


def rel(path: Path) -> str:
    return os.path.relpath(path, REPO)


def site_packages(venv: str) -> Path:
    return OUT / "venvs" / venv / "lib" / PYVER / "site-packages"


def run(cmd: list[str], **kw: object) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=REPO, **kw)  # type: ignore[call-overload]


def prepare(install: bool) -> None:
    if install:
        run(["bash", rel(HERE / "install.sh")])
    run(["bash", rel(HERE / "build_strace.sh")])
    models = OUT / "models"
    run([rel(OUT / "venvs/ort/bin/python"), rel(HERE / "make_onnx_models.py"), rel(models)])
    run([rel(OUT / "venvs/litert/bin/python"), rel(HERE / "make_tflite_models.py"), rel(models)])
    (OUT / "bin").mkdir(parents=True, exist_ok=True)
    for driver in ("ort_c_driver", "litert_c_driver"):
        run(["gcc", "-O1", "-Wall", "-o", rel(OUT / "bin" / driver), rel(HERE / f"{driver}.c"), "-ldl"])


def argv_of(w: Workload) -> list[str]:
    rt = RUNTIMES[w.runtime]
    fill = {
        "models": rel(OUT / "models"),
        "out": rel(OUT / "run" / w.name),
        "venv": rel(OUT / "venvs" / rt.venv),
        "site": rel(site_packages(rt.venv)),
        "bin": rel(OUT / "bin"),
    }
    return [a.format(**fill) for a in w.argv]


def trace_one(w: Workload) -> float:
    out = OUT / "run" / w.name
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    (OUT / "traces").mkdir(parents=True, exist_ok=True)
    trace = OUT / "traces" / f"{w.name}.trace"
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    start = time.monotonic()
    cmd = [*STRACE, rel(trace), "--", *argv_of(w)]
    print("+", " ".join(cmd), flush=True)
    with (out / "stdout.txt").open("w") as so, (out / "stderr.txt").open("w") as se:
        proc = subprocess.run(cmd, cwd=REPO, env=env, stdout=so, stderr=se, check=False)
    wall = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit(f"{w.name}: exit {proc.returncode}; see {rel(out)}/stderr.txt")
    print(f"  {w.name}: {wall:.1f} s, trace {trace.stat().st_size / 1e6:.1f} MB", flush=True)
    return wall


def package_libraries(runtime: str) -> dict[str, str]:
    """realpath -> site-packages-relative path of every shared object of the runtime's wheel."""
    site = site_packages(RUNTIMES[runtime].venv).resolve()
    found = {}
    for pkg in RUNTIMES[runtime].packages:
        for f in sorted((site / pkg).rglob("*.so*")):
            if f.is_file() and not f.is_symlink():
                found[str(f.resolve())] = f.relative_to(site).as_posix()
    return found


def reduce_one(w: Workload, wall: float | None) -> dict[str, object]:
    trace_path = OUT / "traces" / f"{w.name}.trace"
    trace = parse_trace(trace_path)
    libs = package_libraries(w.runtime)
    # the wheel's own objects count as each library's own code for the "through others" explanation
    att = attribute(trace, libs, own=lambda lib, obj: obj in libs)
    site = str(site_packages(RUNTIMES[w.runtime].venv).resolve())

    def show(path: str) -> str:
        return os.path.relpath(path, site) if path.startswith(site) else path

    libraries = {}
    for lib in att.libraries:
        if not lib.direct and not lib.derived:
            continue
        libraries[libs[lib.path]] = {
            "direct": dict(lib.direct),
            "derived": {n: c for n, c in lib.derived if n in lib.derived_names},
            "threads_created": lib.threads_created,
            "through_others": {n: show(o) for n, o in lib.through_others},
        }
    repo_real = str(REPO.resolve())
    return {
        "workload": w.name,
        "runtime": w.runtime,
        "wheel": RUNTIMES[w.runtime].wheel,
        "part": w.part,
        "what": w.what,
        "command": " ".join([*STRACE, rel(trace_path), "--", *argv_of(w)]),
        "wall_seconds": round(wall, 1) if wall is not None else None,
        "syscall_events": len(trace.syscalls),
        "processes_and_threads": len(trace.pids),
        "startup": dict(att.startup),
        "libraries": libraries,
        # other non-runtime objects with frames in the trace (the interpreter, numpy, drivers...)
        "other_objects": sorted(
            os.path.relpath(p, repo_real) if p.startswith(repo_real) else p for p in att.objects if p not in libs
        ),
    }


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tool_versions() -> dict[str, str]:
    def out(cmd: list[str]) -> str:
        return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip()

    return {
        "strace": out([str(STRACE_BIN), "-V"]).splitlines()[0] + " (Debian source package, built with libdw)",
        "glibc": out(["getconf", "GNU_LIBC_VERSION"]),
        "libc6_package": out(["dpkg-query", "-W", "-f", "${Version}", "libc6"]),
        "kernel": platform.release(),
        "machine": platform.machine(),
        "python": out([str(OUT / "venvs/ort/bin/python"), "-c", "import platform; print(platform.python_version())"]),
        "gcc": out(["gcc", "-dumpfullversion"]),
    }


def wheels() -> dict[str, dict[str, str]]:
    found = {}
    for rt in RUNTIMES.values():
        name = (OUT / "venvs" / rt.venv / ".installed").read_text().strip()
        found[rt.wheel] = {"file": name, "sha256": sha256(OUT / "wheels" / name)}
        freeze = (OUT / "venvs" / rt.venv / "freeze.txt").read_text().splitlines()
        # the runtime itself is installed from the file above ("name @ file://..."); list the rest
        found[rt.wheel]["venv"] = " ".join(sorted(p for p in freeze if " @ " not in p))
    return found


def aggregate(reduced: list[dict[str, object]]) -> dict[str, object]:
    libraries: dict[str, dict[str, object]] = {}
    for r in reduced:
        runtime = str(r["runtime"])
        site = site_packages(RUNTIMES[runtime].venv)
        for relpath, sets in r["libraries"].items():  # type: ignore[attr-defined]
            lib = libraries.setdefault(
                relpath,
                {"wheel": r["wheel"], "path_in_wheel": relpath, "sha256": sha256(site / relpath), "parts": {}},
            )
            part = lib["parts"].setdefault(  # type: ignore[attr-defined]
                r["part"],
                {"workloads": [], "direct": set(), "derived": set(), "startup": set(), "own": set(), "others": {}},
            )
            part["workloads"].append(r["workload"])
            part["own"] |= set(sets["direct"]) - set(sets["through_others"])
            part["others"].update(sets["through_others"])
            part["direct"] |= set(sets["direct"])
            part["derived"] |= set(sets["derived"])
            part["startup"] |= set(r["startup"])  # type: ignore[arg-type]
    for lib in libraries.values():
        for part in lib["parts"].values():  # type: ignore[attr-defined]
            part["derived"] -= part["direct"]
            for key in ("direct", "derived", "startup"):
                part[key] = sorted(part[key])
            part["traced"] = sorted(set(part["direct"]) | set(part["derived"]))
            # direct syscalls seen only with another object's code nearest the syscall (see attribute.py)
            own, others = part.pop("own"), part.pop("others")
            part["through_others"] = {n: o for n, o in sorted(others.items()) if n not in own}
    return dict(sorted(libraries.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", action="append", help="trace only this workload (repeatable)")
    ap.add_argument("--no-install", action="store_true", help="use the venvs already in bench/out/venvs")
    ap.add_argument("--reduce-only", action="store_true", help="do not run anything; reduce existing traces")
    args = ap.parse_args()
    chosen = [w for w in WORKLOADS if not args.only or w.name in args.only]
    if args.only and len(chosen) != len(set(args.only)):
        sys.exit(f"unknown workload in {args.only}; known: {[w.name for w in WORKLOADS]}")
    (DEVSET / "workloads").mkdir(parents=True, exist_ok=True)
    if not args.reduce_only:
        prepare(install=not args.no_install)
    for w in chosen:
        dest = DEVSET / "workloads" / f"{w.name}.json"
        wall = None
        if args.reduce_only and dest.exists():
            wall = json.loads(dest.read_text())["wall_seconds"]
        if not args.reduce_only:
            wall = trace_one(w)
        reduced = reduce_one(w, wall)
        dest.write_text(json.dumps(reduced, indent=1, sort_keys=True) + "\n")
        print(f"  reduced {w.name}: {len(reduced['libraries'])} libraries", flush=True)  # type: ignore[arg-type]
    reduced_all = [
        json.loads((DEVSET / "workloads" / f"{w.name}.json").read_text())
        for w in WORKLOADS
        if (DEVSET / "workloads" / f"{w.name}.json").exists()
    ]
    devset = {
        "schema": 1,
        "made_by": "python bench/workloads/trace.py",
        "method": "bench/devset/README.md; shared/notes/traced-workloads.md",
        "versions": tool_versions(),
        "wheels": wheels(),
        "tracing_wall_seconds": round(sum(r["wall_seconds"] or 0 for r in reduced_all), 1),
        "workloads": {
            r["workload"]: {k: r[k] for k in ("runtime", "wheel", "part", "what", "command", "wall_seconds")}
            | {"startup": sorted(r["startup"]), "libraries": sorted(r["libraries"])}
            for r in reduced_all
        },
        "libraries": aggregate(reduced_all),
    }
    (DEVSET / "devset.json").write_text(json.dumps(devset, indent=1, sort_keys=True) + "\n")
    print(f"wrote {rel(DEVSET / 'devset.json')}: {len(devset['libraries'])} libraries, {len(reduced_all)} workloads")


if __name__ == "__main__":
    main()
