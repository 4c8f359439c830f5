"""Symbol binding on compiled fixtures: versions, weak imports, providers in load order."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import FIXTURES, compile_so, host_libstdcxx, need, run_cli

from uk_depscan.loader.binding import bind_symbols
from uk_depscan.loader.resolve import resolve_tree

SRC = FIXTURES / "loader"


def test_versioned_symbol_binds_to_the_recorded_version(tmp_path: Path) -> None:
    """A binary linked against foo@VER_1 keeps binding to VER_1 after libver gains foo@@VER_2."""
    old = compile_so(
        tmp_path / "old" / "libver.so", [SRC / "versioned_v1.c"], extra=[f"-Wl,--version-script={SRC / 'ver1.map'}"]
    )
    user_old = compile_so(tmp_path / "a" / "libuser_old.so", [SRC / "user.c"], link=[old], runpath="$ORIGIN/../new")
    new = compile_so(
        tmp_path / "new" / "libver.so", [SRC / "versioned_v2.c"], extra=[f"-Wl,--version-script={SRC / 'ver2.map'}"]
    )
    user_new = compile_so(tmp_path / "a" / "libuser_new.so", [SRC / "user.c"], link=[new], runpath="$ORIGIN/../new")
    for user, version in ((user_old, "VER_1"), (user_new, "VER_2")):
        result = resolve_tree(user)
        (foo,) = [b for b in bind_symbols(result).of(0) if b.symbol.name == "foo"]
        assert foo.symbol.version == version and foo.symbol.version_file == "libver.so"
        assert result.tree.objects[foo.provider].realpath == str(new)
        assert foo.provider_version == version


def test_missing_version_is_reported(tmp_path: Path) -> None:
    """Linked against VER_2, run against a libver.so that only has VER_1: ld.so refuses to start."""
    new = compile_so(
        tmp_path / "new" / "libver.so", [SRC / "versioned_v2.c"], extra=[f"-Wl,--version-script={SRC / 'ver2.map'}"]
    )
    user = compile_so(tmp_path / "a" / "libuser.so", [SRC / "user.c"], link=[new], runpath="$ORIGIN/../old")
    compile_so(
        tmp_path / "old" / "libver.so", [SRC / "versioned_v1.c"], extra=[f"-Wl,--version-script={SRC / 'ver1.map'}"]
    )
    problems = bind_symbols(resolve_tree(user)).version_problems
    assert [(p.file, p.version) for p in problems] == [("libver.so", "VER_2")]
    assert "version `VER_2' not found" in problems[0].reason


def test_weak_undefined_listed_separately(tmp_path: Path) -> None:
    prov = compile_so(tmp_path / "libprov.so", [SRC / "lib.c"], define="provided_func")
    user = compile_so(tmp_path / "libweak.so", [SRC / "weak.c"], link=[prov], runpath="$ORIGIN")
    bindings = bind_symbols(resolve_tree(user))
    assert [b.symbol.name for b in bindings.unresolved_weak if b.importer == 0] == ["maybe_missing"]
    assert [b.symbol.name for b in bindings.unresolved if b.importer == 0] == []
    (p,) = [b for b in bindings.of(0) if b.symbol.name == "provided_func"]
    assert p.provider == 1
    code, out, _ = run_cli(["scan", str(user), "--format", "json"])
    doc = json.loads(out)
    assert code == 1  # ld.so start-up needs arch_prctl, absent in every shipped Unikraft release
    assert any(g["name"] == "arch_prctl" and g["tier"] == "P0" for g in doc["targets"][0]["gaps"])
    assert doc["targets"][0]["unresolved_weak"] == ["maybe_missing"]
    assert doc["targets"][0]["unresolved"] == []


def test_first_definition_in_load_order_wins(tmp_path: Path) -> None:
    """Two libraries define provided_func; the one earlier in breadth-first order provides it."""
    first = compile_so(tmp_path / "libfirst.so", [SRC / "lib.c"], define="provided_func")
    second = compile_so(tmp_path / "libsecond.so", [SRC / "lib.c"], define="provided_func")
    user = compile_so(tmp_path / "libweak.so", [SRC / "weak.c"], link=[first, second], runpath="$ORIGIN")
    result = resolve_tree(user)
    (p,) = [b for b in bind_symbols(result).of(0) if b.symbol.name == "provided_func"]
    assert result.tree.objects[p.provider].soname == "libfirst.so"


def test_imports_match_readelf(tmp_path: Path) -> None:
    """Our imported-symbol list equals readelf's undefined dynamic symbols on a real object."""
    need("readelf")
    target = host_libstdcxx()
    out = subprocess.run(
        ["readelf", "--dyn-syms", "-W", str(target)], check=True, capture_output=True, text=True
    ).stdout
    theirs = {
        cols[7] for cols in map(str.split, out.splitlines()) if len(cols) >= 8 and cols[6] == "UND" and cols[0] != "0:"
    }
    from uk_depscan.elf.file import open_elf
    from uk_depscan.elf.symbols import dynamic_symbols

    assert {s.key for s in dynamic_symbols(open_elf(target)).iter_imports()} == theirs
