"""The gap classes, likelihoods, actions and tiers of gaps.py and priority.py, exactly, on the shipped 0.17.0
table (binary-compatibility route); every expected likelihood is worked out by hand from the formula in
uk_depscan/unikraft/priority.py with its default weights."""

from __future__ import annotations

import pytest

from uk_depscan.model import Action, Breadth, Evidence, ReachPath, SupportStatus, Tier
from uk_depscan.unikraft import priority
from uk_depscan.unikraft.gaps import assess, assess_all, plan_kconfig
from uk_depscan.unikraft.options import options_for_syscalls
from uk_depscan.unikraft.tables import LoupePrior, load_loupe_priors, load_unikraft_table

N, S, F, R = ReachPath.NORMAL, ReachPath.STARTUP, ReachPath.FAILURE, ReachPath.RARE


@pytest.fixture(scope="module")
def full():  # type: ignore[no-untyped-def]
    return load_unikraft_table("0.17.0")


@pytest.fixture(scope="module")
def table(full):  # type: ignore[no-untyped-def]
    return full.for_route("binary-compat")


def prior(name: str, used: int, required: int, stubbable: int, fakeable: int) -> LoupePrior:
    return LoupePrior(name, used, required, stubbable, fakeable, "test")


def b(own: int, imports: int, narrowest: str | None, size: int) -> Breadth:
    return Breadth(own, imports, narrowest, size)


CASES = {
    # name: (path, breadth, prior) -> (status, action, tier, likelihood)
    # u = 1, import evidence: L = 1 - 0 * (1 - e) = 1
    "read": (
        (N, b(0, 20, "read@GLIBC_2.2.5", 7), prior("read", 110, 106, 4, 4)),
        ("needs-kconfig", "enable CONFIG_LIBPOSIX_FDIO", "P0", 1.0),
    ),
    # u = 56/110, e = max(0.15 * 3/14, 1 - 0.99^1) = 0.0321: L = 1 - 0.4909 * 0.9679 = 0.525 -> P1
    "madvise": (
        (N, b(0, 1, "free@GLIBC_2.2.5", 14), prior("madvise", 56, 2, 54, 48)),
        ("needs-kconfig", "enable CONFIG_LIBPOSIX_MMAP", "P1", 0.525),
    ),
    # start-up only: no evidence in the target (e = 0.05, prior discounted to 0); the start-up path makes it P0
    "arch_prctl": (
        (S, None, prior("arch_prctl", 110, 109, 1, 1)),
        ("unverified", "enable CONFIG_APPELFLOADER_ARCH_PRCTL", "P0", 0.05),
    ),
    # glibc tolerates its failure (dl-tls_init_tp.c): keep, and L < p0: P3
    "set_robust_list": ((S, None, prior("set_robust_list", 108, 6, 102, 100)), ("absent", "keep stub", "P3", 0.05)),
    # glibc falls back to clone (clone-internal.c), which 0.17 provides: keep; e = 1 - 0.99^2 = 0.0199
    "clone3": ((N, b(0, 2, "pthread_create@GLIBC_2.34", 40), None), ("absent", "keep stub", "P3", 0.02)),
    # an own site (e = 0.7, no prior): kept (libuv falls back to the thread pool) but exercised: P2, check the stub
    "io_uring_setup": ((N, b(1, 0, None, 0), None), ("absent", "keep stub", "P2", 0.7)),
    # no Loupe data, no fallback: a stated uncertainty, P2
    "io_uring_enter": ((N, b(1, 0, None, 0), None), ("absent", "investigate", "P2", 0.7)),
    # too few Loupe apps (< 5) for the shares: also investigate
    "sched_getparam": (
        (N, b(0, 5, "pthread_getschedparam@GLIBC_2.2.5", 3), prior("sched_getparam", 1, 0, 1, 1)),
        ("absent", "investigate", "P2", 0.505),
    ),
    # a fake-success stub defeats libgomp's fallback (fakeable 43/60 < 0.8): stub it; wrapper e = 0.5, u = 60/110
    "sched_getaffinity": (
        (N, b(0, 30, "sched_getaffinity@GLIBC_2.3.4", 1), prior("sched_getaffinity", 60, 4, 55, 43)),
        ("stub", "stub (ENOSYS)", "P1", 0.773),
    ),
    # glibc realloc falls back on any mremap failure; noop_success returns address 0 instead: stub it
    "mremap": (
        (N, b(0, 100, "realloc@GLIBC_2.2.5", 20), prior("mremap", 6, 2, 4, 1)),
        ("stub", "stub (ENOSYS)", "P1", 0.654),
    ),
    # fakeable 19/20 and Unikraft's stub fakes success: keep; failure path only: P3, L/10
    "kill": ((F, b(0, 1, "kill@GLIBC_2.2.5", 1), prior("kill", 20, 2, 3, 19)), ("stub", "keep stub", "P3", 0.059)),
    # fakeable 9/10: fake; u = 10/110, wrapper e = 0.5: L = 0.545 < p0: P2
    "sched_getscheduler": (
        (N, b(0, 5, "pthread_getschedparam@GLIBC_2.2.5", 3), prior("sched_getscheduler", 10, 0, 1, 9)),
        ("absent", "fake (return 0)", "P2", 0.545),
    ),
    # partial, neither stubbable nor fakeable: implement, but failure paths only: P3;
    # e = 0.15 * 3/7, u = 8/110: L = (1 - 0.9273 * 0.9357) / 10 = 0.013
    "pselect6": (
        (F, b(0, 1, "select@GLIBC_2.2.5", 7), prior("pselect6", 8, 5, 2, 2)),
        ("partial", "implement", "P3", 0.013),
    ),
    # ld.so's rare paths only (re-exec): never P0 by itself; Loupe's execve row counts the launch of
    # every benchmark: not used, so no data to choose with
    "execve": ((R, None, prior("execve", 110, 109, 1, 1)), ("stub", "investigate", "P3", 0.005)),
    # an existing Unikraft fake with too little Loupe data: not work (setuid, capget)
    "setuid": ((N, b(0, 1, "setuid@GLIBC_2.2.5", 4), prior("setuid", 4, 1, 1, 3)), ("stub", "keep stub", "P3", 0.145)),
    "capget": ((N, b(0, 1, "capget@GLIBC_2.2.5", 1), None), ("stub", "keep stub", "P3", 0.5)),
    # fakeable, but a fake 0 is file descriptor 0 (man 2 memfd_create): implement
    "memfd_create": (
        (N, b(0, 1, "memfd_create@GLIBC_2.27", 1), prior("memfd_create", 10, 1, 2, 9)),
        ("absent", "implement", "P1", 0.545),
    ),
}


def test_classes_actions_tiers_likelihoods(table) -> None:  # type: ignore[no-untyped-def]
    names = {n: (spec[0], spec[1]) for n, (spec, _) in CASES.items()}
    priors = {n: spec[2] for n, (spec, _) in CASES.items() if spec[2] is not None}
    got = {g.name: (g.status, g.action_label, g.tier, g.likelihood) for g in assess_all(names, table, priors)}
    assert got == {n: want for n, (_, want) in CASES.items()}


def test_likelihood_formula() -> None:
    w = priority.WEIGHTS
    # own site: e = 0.7, u = 0.5 -> 1 - 0.5 * 0.3
    assert priority.likelihood(N, Evidence.OWN_SITE, b(2, 0, None, 0), 0.5) == 0.85
    # many imports beat a weak narrowest import: e = 1 - 0.99^200
    assert priority.evidence_weight(Evidence.IMPORT, b(0, 200, "x", 50)) == pytest.approx(1 - 0.99**200)
    # the narrowest import: 0.15 * 3 / 6
    assert priority.evidence_weight(Evidence.IMPORT, b(0, 1, "x", 6)) == pytest.approx(0.075)
    # no evidence in the target: the prior does not count (indirect_prior 0), e = indirect
    assert priority.likelihood(N, Evidence.INDIRECT, None, 0.9) == w.indirect
    # failure-only keeps a tenth
    assert priority.likelihood(F, Evidence.OWN_SITE, b(1, 0, None, 0), None) == 0.07
    assert (w.p0, w.p1) == (0.6, 0.3)


def test_evidence_classes() -> None:
    assert priority.evidence_of(S, None) is Evidence.STARTUP
    assert priority.evidence_of(S, b(0, 0, None, 0)) is Evidence.STARTUP
    assert priority.evidence_of(S, b(0, 3, "read@GLIBC_2.2.5", 1)) is Evidence.WRAPPER
    assert priority.evidence_of(N, b(1, 9, "x", 1)) is Evidence.OWN_SITE
    assert priority.evidence_of(N, b(0, 9, "x", priority.WRAPPER_MAX)) is Evidence.WRAPPER
    assert priority.evidence_of(N, b(0, 9, "x", priority.WRAPPER_MAX + 1)) is Evidence.IMPORT
    assert priority.evidence_of(N, None) is Evidence.INDIRECT


def test_tiers() -> None:
    t = priority.tier
    assert t(Action.ENABLE, S, 0.0) is Tier.P0  # the exact start-up path
    for path in (F, R):  # never P0 by itself
        assert t(Action.IMPLEMENT, path, 1.0) is Tier.P3
    assert [t(Action.IMPLEMENT, N, v) for v in (0.6, 0.59, 0.3, 0.29)] == [Tier.P0, Tier.P1, Tier.P1, Tier.P2]
    assert [t(Action.FAKE, N, v) for v in (0.6, 0.59)] == [Tier.P1, Tier.P2]
    assert [t(Action.KEEP, N, v) for v in (0.6, 0.59)] == [Tier.P2, Tier.P3]
    assert t(Action.INVESTIGATE, N, 1.0) is Tier.P2 and t(Action.NONE, S, 1.0) is Tier.P3


def test_every_fallback_and_tolerated_failure_cites_its_source() -> None:
    for name, fb in priority.FALLBACKS.items():
        assert fb.source and fb.on in ("ENOSYS", "any") and fb.to, name
        assert any(k in fb.source for k in ("glibc", "libstdc++", "libgomp", "libuv")), name
    assert all("glibc" in src for src in priority.OPTIONAL.values())


def test_fallback_needs_the_fallback_in_the_release(table) -> None:  # type: ignore[no-untyped-def]
    """clone3's fallback (clone) exists in 0.17; without it, no keep."""
    from uk_depscan.unikraft.gaps import fallback_provided

    assert fallback_provided("clone3", table) == ("clone",)
    assert fallback_provided("read", table) is None
    gone = assess("clone3", table.get("clone3"), None, path=N, breadth=b(0, 1, "x", 1), fallback_provided=None)
    assert gone.action is Action.INVESTIGATE


def test_sorted_by_tier_then_likelihood_and_reasons_shown(table) -> None:  # type: ignore[no-untyped-def]
    names = {
        "arch_prctl": (S, None),
        "clone3": (N, b(0, 1, "pthread_create@GLIBC_2.34", 40)),
        "read": (N, b(0, 4, "read@GLIBC_2.2.5", 7)),
        "mmap": (N, b(0, 400, "mmap@GLIBC_2.2.5", 1)),
        "getpid": (N, b(0, 1, "getpid@GLIBC_2.2.5", 1)),
    }
    gaps = assess_all(names, table, load_loupe_priors())
    keys = [(g.tier.rank, -g.likelihood) for g in gaps]
    assert keys == sorted(keys)
    arch = next(g for g in gaps if g.name == "arch_prctl")
    assert arch.status is SupportStatus.UNVERIFIED and arch.path is ReachPath.STARTUP
    assert any("start-up path" in r for r in arch.reasons) and any(
        r.startswith("Loupe: used by 110/110") for r in arch.reasons
    )
    assert any("app-elfloader" in r for r in arch.reasons)
    assert any("falls back to clone" in r for r in next(g for g in gaps if g.name == "clone3").reasons)
    assert all(any(r.startswith("likelihood ") for r in g.reasons) for g in gaps)


def test_musl_start_up_rare_syscalls_are_never_p0(table) -> None:  # type: ignore[no-untyped-def]
    """What ld.so/libc reaches only on rare paths (musl's rt_sigqueueinfo, sched_setscheduler, tkill) is P3."""
    names = dict.fromkeys(("rt_sigqueueinfo", "sched_setscheduler", "tkill"), (R, None))
    for g in assess_all(names, table, load_loupe_priors()):
        assert g.tier is Tier.P3 and not any("on the start-up path" in r for r in g.reasons), g


def test_kconfig_plan_is_satisfiable_and_covers_every_enable_row(full) -> None:  # type: ignore[no-untyped-def]
    names = {
        n: (N, b(0, 5, f"{n}@GLIBC_2.2.5", 1))
        for n in ("mmap", "munmap", "mprotect", "madvise", "mremap", "set_tid_address", "getpid", "read", "socket")
    }
    view = full.for_route("binary-compat")
    priors = load_loupe_priors()
    gaps, plan = plan_kconfig(assess_all(names, view, priors), full, "binary-compat", priors, names)
    enable = [g for g in gaps if g.action is Action.ENABLE]
    assert sorted(n for k in plan.groups for n in k.syscalls) == sorted(g.name for g in enable)
    assert not set(plan.enable) & set(plan.keep_off) and plan.verified
    groups = {k.option: k for k in plan.groups}
    futex = groups["CONFIG_LIBPOSIX_FUTEX"]
    assert futex.requires == "LIBPOSIX_FUTEX && LIBPOSIX_PROCESS_CLONE"
    assert "CONFIG_LIBPOSIX_PROCESS_CLONE" in futex.drags_in
    assert groups["CONFIG_LIBPOSIX_MMAP"].already_on  # implied by app-elfloader
    # mremap's only provider (LIBUKMMAP) excludes LIBPOSIX_MMAP: not built, ENOSYS, glibc's realloc copes
    mremap = next(g for g in gaps if g.name == "mremap")
    assert mremap.status is SupportStatus.ABSENT and mremap.action is Action.KEEP
    assert "CONFIG_LIBPOSIX_MMAP" in mremap.detail and "CONFIG_LIBUKMMAP" in mremap.detail
    assert "CONFIG_LIBUKMMAP" not in plan.enable
    assert (
        plan.enable
        == options_for_syscalls(
            full, [g.name for g in enable if g.status is SupportStatus.NEEDS_KCONFIG], "binary-compat"
        ).enable
    )


def test_native_route_classification() -> None:
    from uk_depscan.unikraft.gaps import native_symbol_gaps
    from uk_depscan.unikraft.tables import load_libmusl_symbols

    musl = load_libmusl_symbols("0.17.0")
    imports = (
        ("malloc", "GLIBC_2.2.5", "libc.so.6"),
        ("__memcpy_chk", "GLIBC_2.3.4", "libc.so.6"),
        ("fcntl64", "GLIBC_2.28", "libc.so.6"),
        ("__isoc99_sscanf", "GLIBC_2.7", "libc.so.6"),  # musl alias
        ("aligned_alloc", "GLIBC_2.16", "libc.so.6"),
        ("stderr", "GLIBC_2.2.5", "libc.so.6"),
        ("_ZdlPv", "GLIBCXX_3.4", "libstdc++.so.6"),
        ("__gmon_start__", None, None),
    )
    got = {g.name: g.status for g in native_symbol_gaps(imports, musl.has)}
    assert got == {
        "malloc": "available",
        "__memcpy_chk": "fortify",
        "fcntl64": "available-as",
        "__isoc99_sscanf": "available",
        "aligned_alloc": "missing",
        "stderr": "available",
    }


def test_binary_compat_findings(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A non-PIE program with an executable stack, built by the test, is flagged for app-elfloader."""
    import subprocess

    from conftest import FIXTURES, need, run_cli

    need("gcc")
    exe = tmp_path / "nopie"
    subprocess.run(
        ["gcc", "-no-pie", "-z", "execstack", "-o", str(exe), str(FIXTURES / "programs" / "empty.c")],
        check=True,
        capture_output=True,
    )
    import json

    code, out, _ = run_cli(["scan", str(exe), "--format", "json", "--libc", "glibc"])
    found = {
        (r["severity"], r["problem"].split(":")[0])
        for r in json.loads(out)["targets"][0]["binary_compat"]
        if r["object"] == str(exe)
    }
    assert found == {
        ("blocker", "not PIE (ET_EXEC)"),
        ("warning", "requests an executable stack (PT_GNU_STACK PF_X or absent)"),
    }
    assert code == 1


def test_greedy_plan_exact() -> None:
    from uk_depscan.unikraft.gaps import PlanStep, greedy_plan

    req = {
        "a.so": frozenset({"enable CONFIG_X", "implement: rseq"}),
        "b.so": frozenset({"enable CONFIG_X"}),
        "c.so": frozenset({"enable CONFIG_X", "implement: rseq", "fake (return 0): prctl"}),
        "d.so": frozenset(),
    }
    assert greedy_plan(req) == (
        PlanStep(0, (), ("d.so",)),
        PlanStep(1, ("enable CONFIG_X",), ("b.so",)),
        PlanStep(2, ("implement: rseq",), ("a.so",)),
        PlanStep(3, ("fake (return 0): prctl",), ("c.so",)),
    )
    assert [p.number for p in greedy_plan({"x": frozenset({"a"}), "y": frozenset({"a", "b"})})] == [1, 2]


def test_routes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """binary-compat includes the start-up baseline and loader flags; native drops them and adds libc symbols."""
    import json

    from conftest import FIXTURES, compile_so, run_cli

    lib = compile_so(tmp_path / "libplain.so", [FIXTURES / "loader" / "lib.c"])
    docs = {
        r: json.loads(run_cli(["scan", str(lib), "-f", "json", "--libc", "glibc", "--route", r])[1])["targets"][0]
        for r in ("both", "binary-compat", "native")
    }
    assert any(g["name"] == "arch_prctl" for g in docs["binary-compat"]["gaps"])  # ld.so start-up
    assert not any(g["name"] == "arch_prctl" for g in docs["native"]["gaps"])
    assert docs["binary-compat"]["native_route"] is None and docs["native"]["native_route"] is not None
    assert docs["both"]["gaps"] == docs["binary-compat"]["gaps"] and docs["both"]["native_route"] is not None


def test_route_native_implies_musl_unless_libc_is_given(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from conftest import FIXTURES, compile_so, run_cli

    lib = compile_so(tmp_path / "libplain.so", [FIXTURES / "loader" / "lib.c"])

    def target(*args: str) -> dict:  # type: ignore[type-arg]
        code, out, err = run_cli(["scan", str(lib), "-f", "json", *args])
        assert code in (0, 1), err
        return json.loads(out)["targets"][0]  # type: ignore[no-any-return]

    native = target("--route", "native")
    assert native["syscalls"]["libc_model"] == "musl"
    assert any("implied by --route native" in w for w in native["warnings"])
    given = target("--route", "native", "--libc", "glibc")
    assert given["syscalls"]["libc_model"] == "glibc" and not any("implied" in w for w in given["warnings"])
    assert target()["syscalls"]["libc_model"] == "auto"
