"""Shipped Unikraft syscall and lib-musl tables: provenance, byte stability, reference counts, loaders, CLI."""

from __future__ import annotations

import json
import re
from importlib.resources import files
from pathlib import Path

import pytest
from typer.testing import CliRunner

from uk_depscan.cli.tables import tables_app
from uk_depscan.errors import TableError
from uk_depscan.tablegen.unikraft import dump_json
from uk_depscan.unikraft import tables as uk

ROOT = files("uk_depscan.syscall_tables")
RELEASES = ["0.12.0", "0.14.0", "0.16.3", "0.17.0", "staging"]
COMMITS = {
    "0.12.0": "4c7352c0a5",
    "0.14.0": "70bc0af0bd",
    "0.16.3": "e453b74a2e",
    "0.17.0": "484ff209a5",
    "staging": "eaf6fda1d4",
}
# notes/unikraft-syscall-registry.md §2: x86_64 table, registered, implemented (full/partial/const), stub, absent
REFERENCE = {
    "0.12.0": (357, 163, 118, 109, 2, 7, 45, 194),
    "0.14.0": (357, 170, 119, 109, 3, 7, 51, 187),
    "0.16.3": (357, 177, 125, 113, 5, 7, 52, 180),
    "0.17.0": (369, 179, 126, 114, 5, 7, 53, 190),
    "staging": (369, 179, 126, 114, 5, 7, 53, 190),
}
HANDFUL = 3


def shipped(kind: str) -> list[Path]:
    return sorted(Path(str(p)) for p in (ROOT / kind).iterdir() if p.name.endswith(".json"))


def load(kind: str, release: str) -> dict:
    return json.loads((ROOT / kind / f"{release}.json").read_text(encoding="utf-8"))


# ----------------------------------------------------------------- shipped files


@pytest.mark.parametrize("kind", ["unikraft", "libmusl", "loupe"])
def test_shipped_files_are_byte_stable(kind: str) -> None:
    paths = shipped(kind)
    assert paths
    for p in paths:
        raw = p.read_text(encoding="utf-8")
        assert dump_json(json.loads(raw)) == raw, f"{p.name} is not in canonical form"


@pytest.mark.parametrize("kind", ["unikraft", "libmusl"])
def test_provenance_and_no_timestamps(kind: str) -> None:
    assert [p.stem for p in shipped(kind)] == sorted(RELEASES)
    for rel in RELEASES:
        doc = load(kind, rel)
        assert doc["schema_version"] == 1 and doc["release"] == rel
        assert doc["commit"].startswith(COMMITS[rel]) and len(doc["commit"]) == 40
        assert doc["generator"]["name"] in ("uk_depscan.unikraft_gen", "uk_depscan.libmusl_gen")
        assert doc["command"].startswith(f"uk-depscan tables {kind} ")
        text = (ROOT / kind / f"{rel}.json").read_text()
        assert not re.search(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d", text), "timestamp in a shipped table"
        assert not re.search(r'"(?:generated|timestamp|date|created)\w*"\s*:', text)
        assert "/tmp/" not in text and "/work/" not in text and "/home/" not in text


@pytest.mark.parametrize(
    "kind,schema", [("unikraft", "unikraft-syscalls"), ("libmusl", "unikraft-libmusl"), ("loupe", "unikraft-loupe")]
)
def test_json_schema(kind: str, schema: str) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    sch = json.loads((ROOT / "schema" / f"{schema}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(sch)
    for p in shipped(kind):
        jsonschema.validate(json.loads(p.read_text()), sch)


@pytest.mark.parametrize("release", RELEASES)
def test_counts_match_reference(release: str) -> None:
    c = load("unikraft", release)["counts"]
    got = (
        c["x86_64_table"],
        c["registered"],
        c["implemented"],
        c["implemented_full"],
        c["implemented_partial"],
        c["implemented_constant"],
        c["stub"],
        c["absent"],
    )
    assert got[0] == REFERENCE[release][0]
    for g, want in zip(got, REFERENCE[release], strict=True):
        assert abs(g - want) <= HANDFUL, (release, got, REFERENCE[release])
    assert c["unknown"] == 0 and c["registered_not_in_table"] == 0


def test_0_17_stub_kinds_and_libraries() -> None:
    c = load("unikraft", "0.17.0")["counts"]
    assert c["stub_kinds"] == {
        "fake(no_state)": 21,
        "noop_success": 11,
        "warn_stubbed_fake_success": 7,
        "enotsup": 6,
        "enosys": 2,
        "warn_stubbed": 2,
        "const_error(-ECHILD)": 2,
        "const_error(-EINTR)": 1,
        "const_error(-EPERM)": 1,
    }
    assert c["registrations_by_library"] == {
        "lib/vfscore": 46,
        "lib/posix-process": 21,
        "lib/posix-user": 18,
        "lib/posix-socket": 16,
        "lib/posix-time": 15,
        "lib/posix-fdio": 14,
        "lib/posix-poll": 10,
        "lib/uksignal": 10,
        "lib/posix-mmap": 6,
        "lib/ukmmap": 5,
        "lib/posix-fdtab": 4,
        "lib/posix-sysinfo": 4,
        "lib/uksched": 4,
        "lib/posix-timerfd": 3,
        "lib/posix-eventfd": 2,
        "lib/posix-futex": 2,
        "lib/posix-pipe": 2,
        "lib/ukrandom": 1,
    }


# ----------------------------------------------------------------- loaders


def test_list_and_default_newest() -> None:
    infos = uk.list_unikraft_tables()
    assert [i.release for i in infos] == RELEASES
    assert all(i.kind == "unikraft" and i.generator == "uk_depscan.unikraft_gen 2" for i in infos)
    assert uk.load_unikraft_table().release == "staging"
    assert uk.load_unikraft_table("RELEASE-0.16.3").release == "0.16.3"
    assert uk.load_unikraft_table("unikraft-0.17").release == "0.17.0"
    assert uk.load_libmusl_symbols("0.16").release == "0.16.3"
    assert [i.release for i in uk.list_libmusl_tables()] == RELEASES


@pytest.mark.parametrize("release", RELEASES)
def test_every_shipped_table_loads_and_validates(release: str) -> None:
    t = uk.load_unikraft_table(release)
    assert t.commit and t.commit.startswith(COMMITS[release])
    assert t.source == f"unikraft/{release}.json"
    assert t.counts["registered"] == sum(s.provided for s in t.syscalls.values())


def test_known_rows_0_17() -> None:
    t = uk.load_unikraft_table("0.17.0")
    assert (t.get("read").status, t.get("read").library) == ("implemented", "lib/posix-fdio")
    assert t.get("fstatat").name == "newfstatat"  # alias
    mremap = t.get("mremap")
    assert (mremap.status, mremap.detail, mremap.behavior, mremap.library) == (
        "stub",
        "noop_success",
        "fake_success",
        "lib/ukmmap",
    )
    mmap = t.get("mmap")
    assert [(p.library, p.kconfig) for p in mmap.providers] == [
        ("lib/posix-mmap", "CONFIG_LIBPOSIX_MMAP"),
        ("lib/ukmmap", "CONFIG_LIBUKMMAP"),
    ]
    assert [p.detail for p in t.get("mprotect").providers] == ["full", "warn_stubbed_fake_success"]
    gd = t.get("getdents")
    assert gd.extra_conditions[0] == "ifeq ($(CONFIG_LIBVFSCORE_NONLARGEFILE),y)"
    assert gd.provided_at == "lib/vfscore/Makefile.uk:68"
    clone = t.get("clone")
    assert clone.providers[0].registration == "clone-5e" and clone.kconfig == "CONFIG_LIBPOSIX_PROCESS_CLONE"
    brk = t.get("brk")
    assert brk.status == "absent" and brk.external_status == "implemented/full"  # app-elfloader 0.16.3, listed
    assert brk.routes["binary-compat"].status == "unverified" and brk.routes["native"].status == "absent"
    assert brk.providers[0].note == "app-elfloader 0.16.3, unverified for this release"
    assert (t.get("cachestat").status, t.get("cachestat").x86_64_nr) == ("absent", 451)
    assert t.by_number(0).name == "read" and t.by_number(63, "aarch64").name == "read"
    assert t.get("no_such_syscall") is None


def test_elfloader_in_0_16_3() -> None:
    t = uk.load_unikraft_table("0.16.3")
    brk, ap = t.get("brk"), t.get("arch_prctl")
    assert brk.status == "absent" and brk.external_status == "implemented/full"
    assert brk.providers[0].external and brk.providers[0].library == "app-elfloader"
    assert ap.external_status == "implemented/partial(stub_paths)"
    assert ap.providers[0].registration == "arch_prctl-3u"


# ----------------------------------------------------------------- validation of user tables


def _user_table(tmp_path: Path, mutate) -> Path:
    doc = load("unikraft", "0.17.0")
    mutate(doc)
    p = tmp_path / "mine.json"
    p.write_text(json.dumps(doc))
    return p


def test_user_table_loads(tmp_path: Path) -> None:
    p = _user_table(tmp_path, lambda d: d.update(release="custom"))
    t = uk.load_unikraft_table(path=p)
    assert (t.release, t.source) == ("custom", str(p))


def _set_status(doc: dict, key: str, **kw) -> None:
    doc["syscalls"][key].update(kw)


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda d: d.pop("syscalls"), "top level: missing key 'syscalls'"),
        (lambda d: d.update(schema_version=2), "unsupported schema_version 2"),
        (lambda d: _set_status(d, "read", status="supported"), "syscall 'read': status 'supported' not in"),
        (lambda d: _set_status(d, "read", behavior="fine"), "syscall 'read': behavior 'fine' not in"),
        (lambda d: _set_status(d, "read", library=None), "syscall 'read': status 'implemented' but no library"),
        (lambda d: _set_status(d, "read", x86_64_nr=-1), "syscall 'read': bad x86_64_nr -1"),
        (lambda d: _set_status(d, "read", name="write"), "row name 'write' differs from its key"),
        (lambda d: d["syscalls"]["read"]["providers"][0].pop("status"), "provider 0: missing key 'status'"),
        (lambda d: d["counts"].update(stub=1), "counts.stub is 1 but 53 rows have status 'stub'"),
        (lambda d: d.update(syscalls=[]), "'syscalls' must be dict, got list"),
    ],
)
def test_malformed_user_table(tmp_path: Path, mutate, message: str) -> None:
    p = _user_table(tmp_path, mutate)
    with pytest.raises(TableError) as exc:
        uk.load_unikraft_table(path=p, linux_tables={})
    text = str(exc.value)
    assert text.startswith(f"{p}: ") and message in text and "\n" not in text


def test_not_json_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(TableError, match=r"bad\.json: not valid JSON"):
        uk.load_unikraft_table(path=bad)
    with pytest.raises(TableError, match=r"nope\.json: table file not found"):
        uk.load_unikraft_table(path=tmp_path / "nope.json")
    with pytest.raises(TableError, match=r"no shipped table for '9\.9' \(have: 0\.12\.0, "):
        uk.load_unikraft_table("9.9")


def test_linux_name_invariant_with_tiny_tables(tmp_path: Path) -> None:
    names = {"x86_64": {"read": 0, "write": 1}, "aarch64": {"read": 63, "write": 64}}
    doc = {
        "schema_version": 1,
        "release": "t",
        "commit": None,
        "generator": {"name": "x", "version": 1},
        "command": "",
        "counts": {},
        "syscalls": {},
    }
    row = {
        "name": "read",
        "status": "absent",
        "detail": "generated_enosys_stub",
        "behavior": "error_enosys",
        "providers": [],
        "extra_conditions": [],
        "x86_64_nr": 0,
        "arm64_nr": 63,
    }
    doc["syscalls"]["read"] = row
    uk.validate_unikraft_doc(doc, "t.json", names)
    doc["syscalls"]["nosuch"] = dict(row, name="nosuch", x86_64_nr=1, arm64_nr=None)
    with pytest.raises(
        TableError,
        match=r"t\.json: syscall 'nosuch' is not in the Linux x86_64 table "
        r"\(its number 1 is 'write' there\)",
    ):
        uk.validate_unikraft_doc(doc, "t.json", names)
    doc["syscalls"]["nosuch"]["x86_64_nr"] = 500  # unknown to this (older) Linux table: accepted
    uk.validate_unikraft_doc(doc, "t.json", names)
    doc["syscalls"]["read"]["arm64_nr"] = 64
    with pytest.raises(TableError, match="syscall 'read': arm64 number 64 but the Linux aarch64 table has 63"):
        uk.validate_unikraft_doc(doc, "t.json", names)


def test_shipped_names_agree_with_linux_tables() -> None:
    linux = uk._linux_tables()
    if linux is None:
        pytest.skip("Linux syscall tables not shipped yet")
    for rel in RELEASES:
        uk.validate_unikraft_doc(load("unikraft", rel), rel, linux)
    rows = load("unikraft", "0.17.0")["syscalls"]
    assert all(n in linux["x86_64"] for n, r in rows.items() if r["x86_64_nr"] is not None and r["x86_64_nr"] < 447)


# ----------------------------------------------------------------- lib-musl


@pytest.mark.parametrize("release", RELEASES)
def test_libmusl_availability(release: str) -> None:
    m = uk.load_libmusl_symbols(release)
    assert m.musl_version == "1.2.3" and m.commit.startswith(COMMITS[release])
    for sym in ("aligned_alloc", "malloc_usable_size", "memfd_create"):
        assert not m.has(sym) and sym in m.missing
    for sym in ("malloc", "free", "printf", "pthread_create", "memcpy", "read", "opendir", "getenv"):
        assert m.has(sym), sym
    assert m.provider("malloc") == "glue:mem.c"
    assert m.provider("opendir").startswith("lib/vfscore/")
    assert m.syscalls_of("read") == ("read",)


def test_libmusl_counts_and_pins() -> None:
    d = load("libmusl", "0.16.3")
    assert d["source"]["lib-musl"]["commit"].startswith("fd1abc9257")
    assert d["source"]["musl"]["commit"].startswith("7a43f6fea9") and d["source"]["musl"]["ref"] == "v1.2.3"
    assert d["config"]["CONFIG_UK_ARCH"] == "x86_64" and "CONFIG_LIBMUSL_COMPLEX" not in d["config"]
    assert d["counts"]["compiled_files"] == 1217 and d["counts"]["commented_out"] == 78
    assert load("libmusl", "0.12.0")["config"]["CONFIG_LIBMUSL_COMPLEX"] == "y"
    assert (
        uk.load_libmusl_symbols("0.16.3").provider("syscall")
        == "lib/syscall_shim/uk_syscall.awk (generated weak alias)"
    )


def test_libmusl_malformed(tmp_path: Path) -> None:
    doc = load("libmusl", "0.16.3")
    doc["missing"].append("malloc")
    p = tmp_path / "m.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(TableError, match=r"m\.json: symbols both missing and provided: \['malloc'\]"):
        uk.load_libmusl_symbols(path=p)


# ----------------------------------------------------------------- CLI


def test_cli_list() -> None:
    res = CliRunner().invoke(tables_app, ["list"])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert sum(line.startswith("unikraft ") for line in lines) == 5
    assert "0.17.0     commit 484ff209a526 unikraft/0.17.0.json" in res.output
    assert "registered 179, implemented 126, stub 53, absent 190" in res.output
    assert "libmusl   0.16.3" in res.output and "CC-BY-4.0" in res.output


def test_cli_show() -> None:
    r = CliRunner()
    res = r.invoke(tables_app, ["show", "0.17.0"])
    assert res.exit_code == 0
    assert "Unikraft 0.17.0 (commit 484ff209a5265bc4b2366041f149534922d0e5c8)" in res.output
    assert "registered 179  implemented 126 (full 114/partial 5/constant 7)  stub 53  absent 190" in res.output
    res = r.invoke(tables_app, ["show", "0.17.0", "mremap"])
    assert res.exit_code == 0
    assert "mremap: stub / noop_success (behavior fake_success); x86_64 nr 25, aarch64 nr 216" in res.output
    assert "provided_at: lib/ukmmap/Makefile.uk:6" in res.output
    res = r.invoke(tables_app, ["show", "0.17.0", "nosuch"])
    assert res.exit_code == 2 and "nosuch: not a Linux syscall name or number" in res.output
    by_number = r.invoke(tables_app, ["show", "0.17.0", "25"])  # x86_64 25 is mremap
    assert by_number.exit_code == 0 and by_number.output == r.invoke(tables_app, ["show", "0.17.0", "mremap"]).output
    arm = r.invoke(tables_app, ["show", "0.17.0", "216", "--arch", "aarch64"])
    assert arm.exit_code == 0 and "mremap: stub" in arm.output
    res = r.invoke(tables_app, ["show", "0.1"])
    assert res.exit_code == 2 and "no shipped table for '0.1'" in res.output
