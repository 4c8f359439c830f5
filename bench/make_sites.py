"""Rebuild the traced workloads' installed environments, for scoring the libraries where they ran.

    python bench/make_sites.py            # -> bench/wheels/site/<runtime>/ (needs bench/fetch_wheels.sh first)
    python bench/score_advice.py --wheels bench/wheels/site --results bench/RESULTS-advice-installed.md

Each runtime of the dev set ran in a virtual environment holding its wheel and the packages
``devset.json`` lists under ``wheels.<runtime>.venv`` (NumPy among them).  A library analysed inside
that environment sees what the interpreter would import beside it (``uk_depscan.loader.pyimport``);
one analysed in the extracted wheel alone does not.  This script makes ``site/<runtime>/`` a
site-packages-like directory: links to the extracted wheel's top-level entries (``x/<runtime>/*``,
no copy of the 1 GB torch tree) plus the venv's packages, each fetched with pip as a binary wheel
for CPython 3.11 on manylinux x86-64 and extracted (our own downloads, fetched by exact version).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEVSET = REPO / "bench/devset/devset.json"
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")


def fetch(spec: str, into: Path) -> Path:
    """The wheel of ``spec`` (``name==version``), downloaded once into ``into``."""
    name, version = spec.split("==")
    stem = name.replace("-", "_").replace(".", "_").lower()
    have = [p for p in into.glob("*.whl") if p.name.lower().startswith(f"{stem}-{version}-")]
    if have:
        return have[0]
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"]
    cmd += ["--python-version", "3.11", "--implementation", "cp", "--abi", "cp311", "--abi", "abi3", "--abi", "none"]
    cmd += [arg for p in PLATFORMS for arg in ("--platform", p)] + ["--platform", "any", "-d", str(into), spec]
    subprocess.run(cmd, check=True)
    have = [p for p in into.glob("*.whl") if p.name.lower().startswith(f"{stem}-{version}-")]
    if not have:
        sys.exit(f"{spec}: pip saved no wheel named {stem}-{version}-*.whl in {into}")
    return have[0]


def make_site(runtime: str, venv: list[str], wheels: Path) -> Path:
    extracted = wheels / "x" / runtime
    if not extracted.is_dir():
        sys.exit(f"{extracted}: missing (run bench/fetch_wheels.sh {runtime})")
    site = wheels / "site" / runtime
    site.mkdir(parents=True, exist_ok=True)
    for entry in sorted(extracted.iterdir()):
        link = site / entry.name
        if not link.is_symlink() and not link.exists():
            link.symlink_to(os.path.relpath(entry, site))
    downloads = wheels / "venv-wheels"
    downloads.mkdir(exist_ok=True)
    for spec in venv:
        whl = fetch(spec, downloads)
        marker = site / f".{whl.name}.done"
        if not marker.exists():
            zipfile.ZipFile(whl).extractall(site)  # trusted: a wheel we just fetched by exact version
            marker.write_text("")
    return site


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devset", type=Path, default=DEVSET)
    ap.add_argument("--wheels", type=Path, default=Path(os.environ.get("UK_DEPSCAN_WHEEL_DIR", REPO / "bench/wheels")))
    ap.add_argument("runtimes", nargs="*", help="default: every runtime of the dev set")
    args = ap.parse_args()
    devset = json.loads(args.devset.read_text())
    for runtime, info in sorted(devset["wheels"].items()):
        if args.runtimes and runtime not in args.runtimes:
            continue
        site = make_site(runtime, info["venv"].split(), args.wheels)
        print(f"{runtime}: {site} ({info['venv']})")


if __name__ == "__main__":
    main()
