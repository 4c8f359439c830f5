"""Score uk-depscan's answers against the traced-workload development set (bench/devset/devset.json).

    python bench/score_advice.py                       # both libc models, writes bench/RESULTS-advice.md
    python bench/score_advice.py --libc glibc --only libtorch_cpu.so --no-write
    python bench/score_advice.py --libc glibc --python-path-from bench/wheels/site \
        --results bench/RESULTS-advice-python-path.md   # wheels alone, --python-path at their environments

For every library of the dev set the analysis runs through the command line (``uk-depscan LIB --format
json``; never ``--observed``), so the bench does not depend on the package's internals.  Libraries are
read from the extracted wheels (``--wheels``, default $UK_DEPSCAN_WHEELS or bench/wheels/x, made by
bench/fetch_wheels.sh); each file's sha256 must equal the dev set's.

Metrics (per library, then per part; the traced set T of a library in a part is the union, over the
part's workloads, of its direct and derived syscalls; start-up syscalls are not the library's):

* recall: |T ∩ S| / |T| where S, the static answer, is every syscall name of the report's
  ``syscalls.reached`` (failure-only included) and ``syscalls.baseline``; the misses are listed.
* size ratio: |S| / |T|.
* ranking AUC over the report's gap rows: rows are ranked by tier (P0 first), then in the report's own
  order; the AUC is the probability that a row whose syscall was traced ranks above one that was not
  (pairs of equal rank count half); undefined when either kind is missing.  "tier AUC" ranks by the
  tier alone (rows of one tier tie).
* P0-implement precision: of the gap rows with tier P0 and action ``implement``, the share traced.
* non-syscall gaps: gap rows whose name is not a Linux syscall of the target's architecture
  (syscall_tables/linux/<arch>.json).

Totals per part: recall and P0 precision pooled over libraries (sums of counts), AUCs and size ratio
averaged over the libraries where they are defined, non-syscall gaps summed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEVSET = REPO / "bench" / "devset" / "devset.json"
RESULTS = REPO / "bench" / "RESULTS-advice.md"
TIERS = ("P0", "P1", "P2", "P3")
PARTS = ("tuning", "kept-aside")
PRIMARY_LIBC = "glibc"  # the shipped Debian 12 model: the same answer on every machine


@dataclass(frozen=True)
class GapRow:
    name: str
    tier: str
    action: str


@dataclass(frozen=True)
class LibraryScore:
    """Scores of one library's report against one traced set."""

    traced: int
    static: int
    hits: int
    misses: tuple[str, ...]
    auc: float | None
    tier_auc: float | None
    p0_implement: int
    p0_implement_traced: int
    non_syscall_gaps: tuple[str, ...]
    gaps: int
    gaps_traced: int

    @property
    def recall(self) -> float | None:
        return self.hits / self.traced if self.traced else None

    @property
    def ratio(self) -> float | None:
        return self.static / self.traced if self.traced else None

    @property
    def p0_precision(self) -> float | None:
        return self.p0_implement_traced / self.p0_implement if self.p0_implement else None


def auc(ranks_pos: Sequence[float], ranks_neg: Sequence[float]) -> float | None:
    """P(a positive ranks before a negative), lower rank = earlier, equal ranks count half."""
    if not ranks_pos or not ranks_neg:
        return None
    wins = 0.0
    for p in ranks_pos:
        for n in ranks_neg:
            wins += 1.0 if p < n else 0.5 if p == n else 0.0
    return wins / (len(ranks_pos) * len(ranks_neg))


def score_library(
    traced: Iterable[str], static: Iterable[str], gaps: Sequence[GapRow], linux_names: Iterable[str]
) -> LibraryScore:
    """Score one report (its static set and gap rows, in report order) against one traced set."""
    t, s, linux = set(traced), set(static), set(linux_names)
    order = sorted(range(len(gaps)), key=lambda i: (TIERS.index(gaps[i].tier), i))
    position = {i: rank for rank, i in enumerate(order)}
    pos = [i for i, g in enumerate(gaps) if g.name in t]
    neg = [i for i, g in enumerate(gaps) if g.name not in t]
    p0 = [g for g in gaps if g.tier == "P0" and g.action == "implement"]
    return LibraryScore(
        traced=len(t),
        static=len(s),
        hits=len(t & s),
        misses=tuple(sorted(t - s)),
        auc=auc([position[i] for i in pos], [position[i] for i in neg]),
        tier_auc=auc([TIERS.index(gaps[i].tier) for i in pos], [TIERS.index(gaps[i].tier) for i in neg]),
        p0_implement=len(p0),
        p0_implement_traced=sum(1 for g in p0 if g.name in t),
        non_syscall_gaps=tuple(sorted({g.name for g in gaps if g.name not in linux})),
        gaps=len(gaps),
        gaps_traced=len(pos),
    )


@dataclass(frozen=True)
class Totals:
    libraries: int
    recall: float | None
    hits: int
    traced: int
    ratio: float | None
    auc: float | None
    tier_auc: float | None
    p0_precision: float | None
    p0_implement: int
    p0_implement_traced: int
    non_syscall_gaps: int


def _mean(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def totals(scores: Sequence[LibraryScore]) -> Totals:
    hits, traced = sum(s.hits for s in scores), sum(s.traced for s in scores)
    p0, p0t = sum(s.p0_implement for s in scores), sum(s.p0_implement_traced for s in scores)
    return Totals(
        libraries=len(scores),
        recall=hits / traced if traced else None,
        hits=hits,
        traced=traced,
        ratio=_mean(s.ratio for s in scores),
        auc=_mean(s.auc for s in scores),
        tier_auc=_mean(s.tier_auc for s in scores),
        p0_precision=p0t / p0 if p0 else None,
        p0_implement=p0,
        p0_implement_traced=p0t,
        non_syscall_gaps=sum(len(s.non_syscall_gaps) for s in scores),
    )


# --- running the analysis -----------------------------------------------------------------------------


def report_facts(report: Mapping[str, object]) -> tuple[str, set[str], list[GapRow]]:
    """(arch, static syscall set, gap rows in report order) of a one-target JSON report."""
    target = report["targets"][0]  # type: ignore[index]
    sc = target["syscalls"]
    static = {r["name"] for r in sc["reached"]} | {r["name"] for r in sc["baseline"]}
    gaps = [GapRow(g["name"], g["tier"], g["action"]) for g in target["gaps"]]
    return str(sc["arch"]), static, gaps


def linux_syscalls(arch: str) -> set[str]:
    table = REPO / "syscall_tables" / "linux" / f"{arch}.json"
    return set(json.loads(table.read_text())["syscalls"])


def analyse(
    path: Path, libc: str | None, env: Mapping[str, str], python_path: Path | None = None
) -> tuple[dict[str, object], float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.json"
        cmd = ["uk-depscan", str(path), "--format", "json", "-o", str(out)]
        if libc:
            cmd += ["--libc", libc]
        if python_path is not None:
            cmd += ["--python-path", str(python_path)]
        start = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(env), check=False)
        took = time.monotonic() - start
        if proc.returncode not in (0, 1) or not out.exists():
            sys.exit(f"uk-depscan failed ({proc.returncode}) on {path}: {proc.stderr.strip()[-400:]}")
        return json.loads(out.read_text()), took


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --- output -------------------------------------------------------------------------------------------


def fmt(v: float | None, pct: bool = False) -> str:
    if v is None:
        return "–"
    return f"{100 * v:.1f} %" if pct else f"{v:.2f}"


def table(rows: list[tuple[str, LibraryScore]], total: Totals) -> list[str]:
    out = [
        "| library | traced | static | recall | size ratio | AUC | tier AUC | P0 implement (traced) "
        "| non-syscall gaps |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, s in rows:
        out.append(
            f"| {name} | {s.traced} | {s.static} | {fmt(s.recall, True)} | {fmt(s.ratio)} | {fmt(s.auc)} | "
            f"{fmt(s.tier_auc)} | {s.p0_implement} ({s.p0_implement_traced}) | {len(s.non_syscall_gaps)} |"
        )
    out.append(
        f"| **total** ({total.libraries}) | {total.traced} | | **{fmt(total.recall, True)}** | {fmt(total.ratio)} | "
        f"**{fmt(total.auc)}** | {fmt(total.tier_auc)} | {total.p0_implement} ({total.p0_implement_traced}) = "
        f"**{fmt(total.p0_precision, True)}** | {total.non_syscall_gaps} |"
    )
    return out


def devset_table(devset: Mapping[str, object]) -> list[str]:
    """What the dev set holds: per library its workloads and traced set sizes per part."""
    out = [
        f"Dev set: {len(devset['workloads'])} workloads, {len(devset['libraries'])} libraries; "  # type: ignore[arg-type]
        f"strace: {devset['versions']['strace']}; glibc {devset['versions']['glibc']}; "  # type: ignore[index]
        f"kernel {devset['versions']['kernel']}; tracing wall time {devset['tracing_wall_seconds']} s.",
        "",
        "| library (wheel) | tuning workloads | traced: direct + derived | kept-aside workloads "
        "| traced: direct + derived |",
        "|---|---|---:|---|---:|",
    ]
    for key, lib in devset["libraries"].items():  # type: ignore[attr-defined]
        cells = []
        for part in PARTS:
            p = lib["parts"].get(part)
            cells += (
                [", ".join(p["workloads"]), f"{len(p['traced'])}: {len(p['direct'])} + {len(p['derived'])}"]
                if p
                else ["–", "–"]
            )
        out.append(f"| {Path(key).name} ({lib['wheel']}) | {' | '.join(cells)} |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devset", type=Path, default=DEVSET)
    ap.add_argument("--wheels", type=Path, default=Path(os.environ.get("UK_DEPSCAN_WHEELS", REPO / "bench/wheels/x")))
    ap.add_argument("--libc", action="append", choices=["glibc", "default"], help="libc model(s); default both")
    ap.add_argument("--only", action="append", help="library file name or path in wheel (repeatable)")
    ap.add_argument("--no-write", action="store_true", help="print, do not write the results file")
    ap.add_argument(
        "--results",
        type=Path,
        default=RESULTS,
        help="results file (default bench/RESULTS-advice.md; the installed environments of bench/make_sites.py: "
        "bench/RESULTS-advice-installed.md)",
    )
    ap.add_argument(
        "--python-path-from",
        type=Path,
        help="give each library --python-path DIR/<wheel>: the wheels alone with their traced environments' "
        "site-packages (the trees of bench/make_sites.py)",
    )
    args = ap.parse_args()
    devset = json.loads(args.devset.read_text())
    models = args.libc or [PRIMARY_LIBC, "default"]
    libs = {
        k: v for k, v in devset["libraries"].items() if not args.only or k in args.only or Path(k).name in args.only
    }
    env = dict(os.environ)
    lines = [
        "# Advice scores against the traced-workload development set",
        "",
        f"Command: `{shlex.join(['python', 'bench/score_advice.py', *sys.argv[1:]])}` "
        f"(dev set: `bench/devset/devset.json`, made by `{devset['made_by']}`; metrics: docstring of "
        "`bench/score_advice.py`). Primary libc model: `--libc glibc` (the shipped Debian 12 tables, "
        "identical on every machine); `default` is the command's default (`--libc auto`, this host's libraries).",
        "",
        *devset_table(devset),
        "",
    ]
    failed_check = []
    for model in models:
        libc = None if model == "default" else model
        per_part: dict[str, list[tuple[str, LibraryScore]]] = {p: [] for p in PARTS}
        misses: list[str] = []
        timings = []
        for key, lib in libs.items():
            path = args.wheels / lib["wheel"] / lib["path_in_wheel"]
            if not path.is_file():
                sys.exit(f"{path}: missing (run bench/fetch_wheels.sh or pass --wheels)")
            if sha256(path) != lib["sha256"]:
                failed_check.append(f"{path}: sha256 differs from the dev set's")
                continue
            py = args.python_path_from / lib["wheel"] if args.python_path_from else None
            report, took = analyse(path, libc, env, py)
            timings.append(f"{Path(key).name} {took:.0f} s")
            arch, static, gaps = report_facts(report)
            linux = linux_syscalls(arch)
            for part in PARTS:
                if part not in lib["parts"]:
                    continue
                s = score_library(lib["parts"][part]["traced"], static, gaps, linux)
                per_part[part].append((Path(key).name, s))
                if s.misses:
                    via = lib["parts"][part].get("through_others", {})
                    shown = [f"{m} (only through {Path(via[m]).name})" if m in via else m for m in s.misses]
                    misses.append(f"- {part}, {Path(key).name}: {', '.join(shown)}")
            print(f"[{model}] {key}: {took:.0f} s", file=sys.stderr, flush=True)
        cmd_shape = "uk-depscan LIB --format json -o REPORT" + (f" --libc {libc}" if libc else "")
        lines += [f"## libc model: {model}" + (" (primary)" if model == PRIMARY_LIBC else ""), "", f"`{cmd_shape}`", ""]
        for part in PARTS:
            rows = per_part[part]
            lines += [f"### {part}", "", *table(rows, totals([s for _, s in rows])), ""]
        lines += ["Misses (traced, not in the static answer):", "", *(misses or ["- none"]), ""]
        lines += [f"Analysis time per library (noisy, shared machine): {', '.join(timings)}", ""]
    if failed_check:
        lines += ["Skipped (file differs from the dev set):", "", *(f"- {f}" for f in failed_check), ""]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        args.results.write_text(text)


if __name__ == "__main__":
    main()
