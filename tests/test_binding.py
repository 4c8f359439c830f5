"""Symbol binding on compiled fixtures: versions, weak imports, providers in load order."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
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


def test_the_root_interposes_on_a_shared_tail(tmp_path: Path) -> None:
    """Targets that share their dependencies share the dependencies' bindings (memoised by the
    files' stamps), except where the root defines a symbol a dependency imports: the root comes first
    in the scope and provides it, as ld.so binds it; the same answers with the memo empty."""
    from uk_depscan.loader import binding

    prov = compile_so(tmp_path / "libprov.so", [SRC / "lib.c"], define="provided_func")
    weak = compile_so(tmp_path / "libweak.so", [SRC / "weak.c"], link=[prov], runpath="$ORIGIN")
    plain = compile_so(tmp_path / "libplain.so", [SRC / "lib.c"], define="other_func", link=[weak], runpath="$ORIGIN")
    interposer = compile_so(
        tmp_path / "libinterpose.so", [SRC / "lib.c"], define="provided_func", link=[weak], runpath="$ORIGIN"
    )

    def provider_of_weaks_import(root: Path) -> str | None:
        result = resolve_tree(root)
        (b,) = [b for b in bind_symbols(result).of(1) if b.symbol.name == "provided_func"]
        assert result.tree.objects[1].soname == "libweak.so"
        return result.tree.objects[b.provider].soname if b.provider is not None else None

    answers = []
    for fresh in (False, True):
        if fresh:
            binding._tails.clear()
        answers.append([provider_of_weaks_import(r) for r in (plain, interposer, plain, interposer)])
    assert answers[0] == answers[1] == ["libprov.so", "libinterpose.so", "libprov.so", "libinterpose.so"]
    assert binding._tails, "the dependencies' bindings were not memoised"


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


def test_gnu_hash_lookup_finds_what_the_name_table_holds(tmp_path: Path) -> None:
    """ld.so's path to a definition (Bloom filter, bucket, hash chain) against every definition
    listed by name, for every import of every object of a C++ closure (libstdc++, libm, libc, ld.so),
    for names defined and not; then a library whose DT_GNU_HASH is damaged binds the same through the
    name table."""
    from uk_depscan.elf.file import open_elf
    from uk_depscan.elf.symbols import dynamic_symbols, gnu_hashes

    def ref(name: bytes) -> int:
        h = 5381
        for c in name:
            h = (h * 33 + c) & 0xFFFFFFFF
        return h

    samples = [b"", b"a", b"printf", b"_ZNSt6vectorIiSaIiEE9push_backERKi" * 20, bytes(range(1, 256))]
    assert gnu_hashes(samples).tolist() == [ref(n) for n in samples]
    result = resolve_tree(host_libstdcxx())
    tables = {i: dynamic_symbols(elf) for i, elf in result.files.items()}
    names = sorted({s.name for t in tables.values() for s in t.iter_imports()} | {"no_such_symbol", ""})
    raw = [n.encode("utf-8", "surrogateescape") for n in names]
    checked = 0
    for t in tables.values():
        found = t.lookup(raw, gnu_hashes(raw))
        assert found is not None, "no DT_GNU_HASH on a Debian library"
        assert found == [t.definitions.get(n, []) for n in names]
        checked += sum(map(bool, found))
    assert checked > 100
    # a library whose DT_GNU_HASH has no buckets: ld.so would divide by zero; the name table answers
    prov = compile_so(tmp_path / "libprov.so", [SRC / "lib.c"], define="provided_func")
    user = compile_so(tmp_path / "libweak.so", [SRC / "weak.c"], link=[prov], runpath="$ORIGIN")
    good = [(b.symbol.key, b.provider, b.provider_version) for b in bind_symbols(resolve_tree(user)).bindings]
    with open_elf(prov) as elf:
        addr = elf.dyn_value("GNU_HASH")
        off = elf.vaddr_to_offset(addr, 16) if addr is not None else None
    assert off is not None, "the fixture has no DT_GNU_HASH"
    data = bytearray(prov.read_bytes())
    data[off : off + 4] = bytes(4)  # nbuckets = 0
    prov.write_bytes(bytes(data))
    damaged = resolve_tree(user)
    assert dynamic_symbols(damaged.files[1]).gnu_hash is None
    assert [(b.symbol.key, b.provider, b.provider_version) for b in bind_symbols(damaged).bindings] == good


def test_gnu_hash_walk_has_a_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past its budget of chain steps (a crafted table can chain every symbol in one bucket), a
    lookup gives the table up for good and the name table answers: the same definitions."""
    from uk_depscan.elf import symbols
    from uk_depscan.elf.symbols import dynamic_symbols, gnu_hashes

    result = resolve_tree(host_libstdcxx())
    tables = {i: dynamic_symbols(elf) for i, elf in result.files.items()}
    names = sorted({s.name for t in tables.values() for s in t.iter_imports()})
    raw = [n.encode("utf-8", "surrogateescape") for n in names] * 8
    monkeypatch.setattr(symbols, "HASH_WALK_FLOOR", 0)
    gave_up = [t for t in tables.values() if t.lookup(raw, gnu_hashes(raw)) is None]
    assert gave_up, "no table ran out of its budget"
    for t in gave_up:
        assert t.lookup(raw[:1], gnu_hashes(raw[:1])) is None  # for good
    before = [(b.importer, b.symbol.key, b.provider, b.provider_version) for b in bind_symbols(result).bindings]
    fresh = resolve_tree(host_libstdcxx())
    monkeypatch.setattr(symbols, "HASH_WALK_FLOOR", 1 << 16)
    after = [(b.importer, b.symbol.key, b.provider, b.provider_version) for b in bind_symbols(fresh).bindings]
    assert before == after
