"""Unikraft facts the porting advice relies on: routes, Kconfig closures, satisfiable option sets, lib-musl.

Shipped-table tests run everywhere.  Tests that regenerate from a real Unikraft tree read
``UK_DEPSCAN_UNIKRAFT_SRC`` (a checkout or a git dir; with a git dir the tags are used),
``UK_DEPSCAN_ELFLOADER_SRC`` and ``UK_DEPSCAN_LIBMUSL_SRC`` and skip with the reason otherwise.
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import pytest
from conftest import FIXTURES, compile_so, run_cli
from typer.testing import CliRunner

from uk_depscan.cli.tables import tables_app
from uk_depscan.tablegen.unikraft import dump_json
from uk_depscan.unikraft import tables as uk
from uk_depscan.unikraft.gaps import native_symbol_gaps
from uk_depscan.unikraft.options import options_for_syscalls, resolve_options

RELEASES = ["0.12.0", "0.14.0", "0.16.3", "0.17.0", "staging"]
MATCHING_ELFLOADER = {"0.12.0", "0.14.0", "0.16.3"}  # app-elfloader has a tag of the same release


# ----------------------------------------------------------------- routes


@pytest.mark.parametrize("release", RELEASES)
def test_arch_prctl_in_binary_compat_route(release: str) -> None:
    table = uk.load_unikraft_table(release)
    row = table.get("arch_prctl")
    assert row is not None and row.status == "absent"  # core never registers it (<= 0.17)
    bc = row.routes[uk.ROUTE_BINARY]
    assert bc.source == "app-elfloader" and bc.kconfig == "CONFIG_APPELFLOADER_ARCH_PRCTL"
    if release in MATCHING_ELFLOADER:
        assert bc.status == "implemented" and bc.note is None
    else:  # app-elfloader 0.16.3 on a 0.17 core: neither provided nor absent
        assert bc.status == "unverified"
        assert bc.note is not None and bc.note.startswith("app-elfloader 0.16.3, unverified for this release")
    assert row.routes[uk.ROUTE_NATIVE].status == "absent"  # app-elfloader is not part of a native build
    view = table.for_route(uk.ROUTE_BINARY)
    v = view.get("arch_prctl")
    assert v is not None and v.status == bc.status and v.status != "absent"
    assert all(uk.ROUTE_BINARY in p.routes for p in v.providers)
    assert table.for_route(uk.ROUTE_NATIVE).get("arch_prctl").status == "absent"  # type: ignore[union-attr]
    if bc.status == "unverified":
        assert "unverified for this release" in v.detail  # every consumer printing the detail says so
    # made once per table and route; a view's own views are its own (its rows are the route's already)
    assert table.for_route(uk.ROUTE_BINARY) is view and view.for_route(uk.ROUTE_NATIVE) is not table.for_route(
        uk.ROUTE_NATIVE
    )


@pytest.mark.parametrize("release", RELEASES)
def test_route_counts_and_core_rows_unchanged(release: str) -> None:
    doc = json.loads(dump_json(_doc(release)))
    c = doc["counts"]
    native, binary = c["routes"]["native"], c["routes"]["binary-compat"]
    assert (native["implemented"], native["stub"], native["absent"]) == (c["implemented"], c["stub"], c["absent"])
    external = {n for n, r in doc["syscalls"].items() if any(p["external"] for p in r["providers"])}
    assert external == {"arch_prctl", "brk"}
    moved = 2 if release in MATCHING_ELFLOADER else 0
    assert binary["implemented"] == c["implemented"] + moved and binary["unverified"] == 2 - moved
    assert binary["absent"] == c["absent"] - 2


def _doc(release: str) -> dict:  # type: ignore[type-arg]
    from importlib.resources import files

    return json.loads((files("uk_depscan.syscall_tables") / "unikraft" / f"{release}.json").read_text())


def test_tables_show_states_unverified() -> None:
    res = CliRunner().invoke(tables_app, ["show", "0.17.0", "arch_prctl"])
    assert res.exit_code == 0, res.output
    assert "route binary-compat: unverified" in res.output
    assert "app-elfloader 0.16.3, unverified for this release" in res.output
    assert "route native: absent" in res.output
    summary = CliRunner().invoke(tables_app, ["show", "0.17.0"]).output
    assert "route binary-compat" in summary and "unverified 2" in summary
    assert "arch_prctl" in summary and "kconfig: evaluated with kconfiglib 14.1.0" in summary
    shown = CliRunner().invoke(tables_app, ["show", "0.16.3", "arch_prctl"]).output
    assert "route binary-compat: implemented" in shown and "unverified" not in shown


# ----------------------------------------------------------------- Kconfig closures


@pytest.mark.parametrize("release", RELEASES)
def test_every_provider_has_a_closure(release: str) -> None:
    t = uk.load_unikraft_table(release)
    assert t.kconfig is not None and t.kconfig.evaluator == "kconfiglib 14.1.0"
    for s in t.syscalls.values():
        for p in s.providers:
            assert p.requires is not None and p.requires in t.kconfig.requirements, (s.name, p.requires)
            for route in p.routes:
                c = t.kconfig.requirements[p.requires][route]
                assert not set(c.y) & set(c.n)
                if p.kconfig and c.verified:
                    assert p.kconfig in c.y


def test_set_tid_address_needs_clone_and_futex() -> None:
    t = uk.load_unikraft_table("0.17.0")
    row = t.get("set_tid_address")
    assert row is not None
    (p,) = row.providers
    assert p.requires == "LIBPOSIX_FUTEX && LIBPOSIX_PROCESS_CLONE"
    c = t.kconfig.requirements[p.requires]["native"]  # type: ignore[union-attr]
    assert c.verified and {"CONFIG_LIBPOSIX_FUTEX", "CONFIG_LIBPOSIX_PROCESS_CLONE"} <= set(c.y)
    plan = options_for_syscalls(t, ["set_tid_address"], "binary-compat")
    assert {"CONFIG_LIBPOSIX_FUTEX", "CONFIG_LIBPOSIX_PROCESS_CLONE"} <= set(plan.enable)


def test_posix_mmap_needs_ukvmem_and_excludes_ukmmap() -> None:
    t = uk.load_unikraft_table("0.17.0")
    assert t.kconfig is not None
    mmap = t.kconfig.options["CONFIG_LIBPOSIX_MMAP"]
    assert mmap.depends_on == "LIBUKVMEM"
    assert set(mmap.closure["native"].y) == {"CONFIG_LIBPOSIX_MMAP", "CONFIG_LIBUKVMEM"}
    # lib-musl implies LIBUKMMAP: in the native route enabling LIBPOSIX_MMAP switches it off
    assert mmap.closure["native"].turns_off == ("CONFIG_LIBUKMMAP",)
    ukmmap = t.kconfig.options["CONFIG_LIBUKMMAP"]
    assert ukmmap.conflicts == ("CONFIG_LIBPOSIX_MMAP",)
    assert ukmmap.closure["native"].n == ("CONFIG_LIBPOSIX_MMAP",)


@pytest.mark.parametrize("route", ["native", "binary-compat"])
def test_mmap_mremap_plan_is_satisfiable(route: str) -> None:
    """mmap's best provider is LIBPOSIX_MMAP, mremap's only provider LIBUKMMAP: they exclude each other."""
    t = uk.load_unikraft_table("0.17.0")
    plan = options_for_syscalls(t, ["mmap", "munmap", "mprotect", "madvise", "mremap"], route)
    assert "CONFIG_LIBPOSIX_MMAP" in plan.enable and "CONFIG_LIBUKMMAP" not in plan.enable
    (alt,) = plan.alternatives
    assert alt.option == "CONFIG_LIBUKMMAP" and alt.conflicts_with == ("CONFIG_LIBPOSIX_MMAP",)
    assert alt.lost == ("mremap",)
    assert "instead of CONFIG_LIBPOSIX_MMAP" in alt.note
    # asked the other way round, the better implementation still wins
    plan2 = resolve_options(
        t, {"CONFIG_LIBUKMMAP": ["mremap", "mmap"], "CONFIG_LIBPOSIX_MMAP": ["mmap", "mprotect"]}, route
    )
    assert "CONFIG_LIBPOSIX_MMAP" in plan2.enable and plan2.alternatives[0].option == "CONFIG_LIBUKMMAP"
    assert plan2.alternatives[0].covered_by == {"mmap": "CONFIG_LIBPOSIX_MMAP"}


def test_unbuildable_option_is_never_recommended() -> None:
    """0.12.0: lib-musl selects LIBUKMMAP and LIBPOSIX_MMAP depends on !LIBUKMMAP, so no native build has it."""
    t = uk.load_unikraft_table("0.12.0")
    c = t.kconfig.options["CONFIG_LIBPOSIX_MMAP"].closure["native"]  # type: ignore[union-attr]
    assert not c.verified and any("select by CONFIG_LIBMUSL" in w for w in c.warnings)
    plan = options_for_syscalls(t, ["mmap", "mprotect"], "native")
    assert "CONFIG_LIBPOSIX_MMAP" not in plan.enable and "CONFIG_LIBUKMMAP" in plan.enable
    assert plan.alternatives[0].option == "CONFIG_LIBPOSIX_MMAP"
    assert "cannot be enabled in the native route" in plan.alternatives[0].note


@pytest.mark.parametrize("route", ["native", "binary-compat"])
@pytest.mark.parametrize("release", RELEASES)
def test_no_conflicting_options_in_any_recommended_set(release: str, route: str) -> None:
    """Every syscall with a provider at once: the set is satisfiable and each closure was verified."""
    t = uk.load_unikraft_table(release)
    plan = options_for_syscalls(t, list(t.syscalls), route)
    assert plan.enable and plan.verified and not plan.unknown
    assert not set(plan.enable) & set(plan.keep_off)
    for a, b in itertools.combinations(plan.options, 2):
        assert not set(a.closure_y) & set(b.keep_off) and not set(b.closure_y) & set(a.keep_off), (a.option, b.option)
    for alt in plan.alternatives:  # every rejected option names why
        assert alt.note and alt.option not in plan.enable


def test_renamed_option_resolves_on_newer_table() -> None:
    """0.17 renamed LIBUKSWRAND (getrandom) to LIBUKRANDOM; the table carries the rename, not the code."""
    t = uk.load_unikraft_table("0.17.0")
    assert t.option_renames["CONFIG_LIBUKSWRAND"] == ("CONFIG_LIBUKRANDOM",)
    plan = resolve_options(t, ["CONFIG_LIBUKSWRAND"], "native")
    assert plan.renamed == {"CONFIG_LIBUKSWRAND": ("CONFIG_LIBUKRANDOM",)} and "CONFIG_LIBUKRANDOM" in plan.enable
    assert uk.load_unikraft_table("0.16.3").option_renames == {}


# ----------------------------------------------------------------- lib-musl


@pytest.mark.parametrize("release", RELEASES)
def test_libmusl_builds_signal_and_in6addr_any(release: str) -> None:
    musl = uk.load_libmusl_symbols(release)
    assert musl.provider("signal") == "src/signal/signal.c"
    assert musl.provider("in6addr_any") == "src/network/in6addr_any.c"
    assert musl.has("bsd_signal") and musl.has("stdin") and musl.has("optind")
    gaps = native_symbol_gaps(
        (("signal", "GLIBC_2.2.5", "libc.so.6"), ("in6addr_any", "GLIBC_2.2.5", "libc.so.6")), musl.has
    )
    assert [(g.name, g.status) for g in gaps] == [("in6addr_any", "available"), ("signal", "available")]


# ----------------------------------------------------------------- tables of releases not shipped


def _foreign_table(tmp_path: Path, release: str) -> Path:
    """The 0.16.3 table relabelled as another release (what `tables unikraft` writes for a checkout)."""
    doc = _doc("0.16.3")
    doc["release"] = release
    out = tmp_path / f"{release}.json"
    out.write_text(dump_json(doc))
    return out


def test_unikraft_table_of_an_unshipped_release(tmp_path: Path) -> None:
    table = _foreign_table(tmp_path, "0.16.2")
    assert uk.libmusl_for(uk.load_unikraft_table(path=table)) is None
    lib = compile_so(tmp_path / "libx.so", [FIXTURES / "loader" / "lib.c"])
    code, out, err = run_cli(["scan", str(lib), "--libc", "glibc", "--unikraft-table", str(table), "--format", "json"])
    assert code in (0, 1), err
    doc = json.loads(out)
    (target,) = doc["targets"]
    assert any("no lib-musl availability table for Unikraft 0.16.2" in w for w in target["warnings"])
    code, out, err = run_cli(
        ["scan", str(lib), "--libc", "glibc", "--unikraft-table", str(table), "--route", "binary-compat"]
    )
    assert code in (0, 1) and "no shipped table" not in err


# ----------------------------------------------------------------- against a real Unikraft tree


def _src(var: str) -> Path:
    path = os.environ.get(var)
    if not path or not Path(path).exists():
        pytest.skip(f"{var} not set: point it at a unikraft/unikraft checkout or git dir to run this test")
    return Path(path)


@pytest.mark.parametrize("release", ["0.16.3", "0.17.0"])
def test_regenerated_table_matches_shipped(release: str, tmp_path: Path) -> None:
    """kconfiglib closure check on the real tree: regeneration is byte-identical and every closure verified."""
    pytest.importorskip("kconfiglib", reason="kconfiglib not installed: pip install -e '.[tablegen]'")
    uk_src, el_src = _src("UK_DEPSCAN_UNIKRAFT_SRC"), _src("UK_DEPSCAN_ELFLOADER_SRC")
    lm_src = _src("UK_DEPSCAN_LIBMUSL_SRC")
    prev = {"0.16.3": "0.14.0", "0.17.0": "0.16.3"}[release]
    lm_ref = {"0.16.3": "RELEASE-0.16.3", "0.17.0": "fd1abc9257b40a74c69b3a40467a453bf8892439"}[release]
    from importlib.resources import files

    prev_path = Path(str(files("uk_depscan.syscall_tables") / "unikraft" / f"{prev}.json"))
    out = tmp_path / f"{release}.json"
    res = CliRunner().invoke(
        tables_app,
        ["unikraft", "--src", str(uk_src), "--ref", f"RELEASE-{release}", "--elfloader", f"{el_src}@RELEASE-0.16.3",
         "--libmusl", f"{lm_src}@{lm_ref}", "--release", release, "--previous-table", str(prev_path), "-o", str(out)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    got = json.loads(out.read_text())
    assert got["kconfig"] == _doc(release)["kconfig"]
    assert got["syscalls"] == _doc(release)["syscalls"]
    for opt, facts in got["kconfig"]["options"].items():
        for route, c in facts.get("closure", {}).items():
            assert c["verified"], (opt, route, c["warnings"])


def test_generated_0_16_2_table_accepted(tmp_path: Path) -> None:
    pytest.importorskip("kconfiglib", reason="kconfiglib not installed: pip install -e '.[tablegen]'")
    uk_src, el_src = _src("UK_DEPSCAN_UNIKRAFT_SRC"), _src("UK_DEPSCAN_ELFLOADER_SRC")
    out = tmp_path / "0.16.2.json"
    res = CliRunner().invoke(
        tables_app,
        ["unikraft", "--src", str(uk_src), "--ref", "RELEASE-0.16.2",
         "--elfloader", f"{el_src}@RELEASE-0.16.2", "-o", str(out)],
    )  # fmt: skip
    if res.exit_code != 0 and "RELEASE-0.16.2" in res.output:
        pytest.skip(f"the Unikraft source has no RELEASE-0.16.2 tag: {res.output.strip()[:120]}")
    assert res.exit_code == 0, res.output
    table = uk.load_unikraft_table(path=out)
    assert table.release == "0.16.2" and table.kconfig is not None
    assert table.get("arch_prctl").routes["binary-compat"].status == "implemented"  # type: ignore[union-attr]
    lib = compile_so(tmp_path / "libx.so", [FIXTURES / "loader" / "lib.c"])
    code, _out, err = run_cli(["scan", str(lib), "--libc", "glibc", "--unikraft-table", str(out)])
    assert code in (0, 1), err
