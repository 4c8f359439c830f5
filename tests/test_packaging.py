"""pyproject's explicit package list covers every directory that must be installed.

The list is explicit (the tables in syscall_tables/ install as uk_depscan.syscall_tables), so a new
subpackage or data directory that is not added to it would be missing from ``pip install .`` while
editable installs, and so the rest of this suite, still work.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import REPO

tomllib = pytest.importorskip("tomllib", reason="tomllib needs Python >= 3.11: run this test on 3.11 or newer")


def _setuptools() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]


def _installed_dirs() -> set[str]:
    """Dotted names of every directory below the two roots that holds a file to install."""
    roots = {"uk_depscan": REPO / "uk_depscan", "uk_depscan.syscall_tables": REPO / "syscall_tables"}
    out = set()
    for name, root in roots.items():
        for f in root.rglob("*"):
            if f.is_file() and "__pycache__" not in f.parts:
                rel = f.parent.relative_to(root).parts
                out.add(".".join((name, *rel)))
    return out


def test_every_directory_is_a_listed_package() -> None:
    listed = set(_setuptools()["packages"])
    missing = _installed_dirs() - listed
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {sorted(missing)}"
    assert not listed - _installed_dirs(), "pyproject lists packages that do not exist"


def test_every_data_file_is_matched_by_package_data() -> None:
    data = _setuptools()["package-data"]
    roots = {"uk_depscan": REPO / "uk_depscan", "uk_depscan.syscall_tables": REPO / "syscall_tables"}
    unmatched = []
    for name, root in roots.items():
        for f in root.rglob("*"):
            if not f.is_file() or f.suffix in (".py", ".pyc") or "__pycache__" in f.parts:
                continue
            package = ".".join((name, *f.parent.relative_to(root).parts))
            if not any(Path(f.name).match(pattern) for pattern in data.get(package, [])):
                unmatched.append(str(f.relative_to(REPO)))
    assert not unmatched, f"add a package-data pattern in pyproject.toml for: {unmatched}"
