"""Layering: the reports and the result model import nothing from the analysis engine.

Walks the AST of every module (imports inside functions included), so a lazy import cannot hide.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "uk_depscan"
ENGINE = ("elf", "loader", "syscalls", "unikraft", "tablegen", "pipeline", "inputs")


def imported_modules(source: str, package: str) -> set[str]:
    """Every module ``source`` imports, absolute (relative imports resolved against ``package``);
    ``from a import b`` yields both ``a`` and ``a.b`` (b may be a module)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                parts = package.split(".")
                base = parts[: len(parts) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            out.add(module)
            out.update(f"{module}.{a.name}" for a in node.names)
    return out


def engine_imports(source: str, package: str) -> list[str]:
    return sorted(
        m
        for m in imported_modules(source, package)
        for e in ENGINE
        if m == f"uk_depscan.{e}" or m.startswith(f"uk_depscan.{e}.")
    )


def _package_of(path: Path) -> str:
    return ".".join(("uk_depscan", *path.relative_to(PACKAGE).parent.parts))


NEUTRAL = sorted(
    [*(PACKAGE / "report").rglob("*.py"), PACKAGE / "model.py", PACKAGE / "names.py", PACKAGE / "errors.py"]
)


@pytest.mark.parametrize("path", NEUTRAL, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_engine_imports(path: Path) -> None:
    assert engine_imports(path.read_text(encoding="utf-8"), _package_of(path)) == []


def test_model_imports_only_the_standard_library() -> None:
    found = imported_modules((PACKAGE / "model.py").read_text(encoding="utf-8"), "uk_depscan")
    assert {m.split(".")[0] for m in found} <= {"__future__", "dataclasses", "enum"}


def test_the_walk_sees_lazy_relative_and_from_package_imports() -> None:
    """The check can fail: each spelling of an engine import is caught."""
    source = (
        "from . import views\n"
        "from uk_depscan import inputs\n"
        "def f():\n"
        "    from ..syscalls import reach\n"
        "    import uk_depscan.pipeline\n"
        "    from .. import tablegen\n"
    )
    assert engine_imports(source, "uk_depscan.report") == [
        "uk_depscan.inputs",
        "uk_depscan.pipeline",
        "uk_depscan.syscalls",
        "uk_depscan.syscalls.reach",
        "uk_depscan.tablegen",
    ]
