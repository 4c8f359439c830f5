"""kconfig/scaffold: sanitising, plan merging, macro choice, registrations vs definitions vs the Linux table,
hostile names, and the CLI's errors."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from pathlib import Path

import pytest
from conftest import FIXTURES, WHEELS_HINT, run_cli

from uk_depscan.artifacts.argtable import load_arg_table
from uk_depscan.artifacts.closure import NOT_CLOSED, active_options, resolve_kconfig
from uk_depscan.artifacts.kconfig import boot_notes, render_kconfig
from uk_depscan.artifacts.plan import build_plan
from uk_depscan.artifacts.sanitize import c_comment, hash_comment, identifier, yaml_string
from uk_depscan.artifacts.scaffold import build_scaffold
from uk_depscan.artifacts.shim import c_type, load_shim_facts, param_name
from uk_depscan.errors import UsageError
from uk_depscan.model import Action, Route
from uk_depscan.unikraft.tables import load_unikraft_table

REPORT = FIXTURES / "artifacts" / "report-x86_64.json"
GOLDEN = FIXTURES / "golden" / "artifacts"
HOSTILE = "lib*/evil\n$(shell touch /tmp/pwned)\\\n\"' */ #include <x>\x1b[31m.so"


def report() -> dict:  # type: ignore[type-arg]
    return json.loads(REPORT.read_text())


def artifacts(doc: dict, route: Route = Route.BINARY_COMPAT, table=None):  # type: ignore[no-untyped-def,type-arg]
    """What the two commands build from ``doc`` (the CLI's own sequence)."""
    table = table or load_unikraft_table("0.17.0")
    plan = build_plan(doc, route, table)
    resolution = resolve_kconfig(table, plan.options, plan.route)
    active = active_options(table, resolution, plan.route)
    kc = render_kconfig(plan, resolution, boot=boot_notes(plan, active))
    sc = build_scaffold(plan, table, load_arg_table(), load_shim_facts("0.17.0"), active=active)
    return plan, kc, sc


# ----------------------------------------------------------------------------- sanitising


def test_comment_and_string_escapes() -> None:
    c = c_comment("a */ b\n/* c ??= d")
    assert "*/" not in c and "/*" not in c and "\n" not in c and "??" not in c
    h = hash_comment("x\n$(shell rm -rf /) y\\")
    assert "\n" not in h and "$$(shell" in h and not h.endswith("\\")
    assert json.loads(yaml_string('a"b\nc')) == 'a"b\\x0ac'
    for bad in ("foo;bar", "1abc", "", "a b", "x\n"):
        with pytest.raises(UsageError):
            identifier(bad, "test")


def test_c_type_projection() -> None:
    assert c_type("unsigned long").text == "unsigned long"
    assert c_type("pid_t").text == "long" and c_type("const enum landlock_rule_type").text == "long"
    assert (c_type("struct io_uring_params *").text, c_type("struct io_uring_params *").tag) == (
        "struct io_uring_params *",
        "struct io_uring_params",
    )
    assert c_type("const char *const *").text == "const char *const *"
    assert c_type("const sigset_t *").text == "const void *" and c_type("u32 *").text == "void *"
    assert param_name("ret", 0) == "ret_arg" and param_name("execenv", 1) == "execenv_arg"


# ----------------------------------------------------------------------------- macros per release


@pytest.mark.parametrize(
    ("release", "macro", "suffix"),
    [
        ("0.17.0", "UK_LLSYSCALL_R_E_DEFINE", "e"),
        ("staging", "UK_LLSYSCALL_R_E_DEFINE", "e"),
        ("0.16.3", "UK_LLSYSCALL_R_U_DEFINE", "u"),
        ("0.12.0", "UK_LLSYSCALL_R_DEFINE", ""),
    ],
)
def test_execution_context_macro_comes_from_the_table(release: str, macro: str, suffix: str) -> None:
    """clone registers with the release's suffix in the tables; arch_prctl with app-elfloader's `u` in 0.16.3."""
    shim = load_shim_facts(release)
    assert shim.macro_for("arch_prctl") == (macro, suffix)
    assert shim.macro_for("io_uring_setup") == ("UK_LLSYSCALL_R_DEFINE", "")
    assert shim.probe == f"unikraft_shim/{release}.json" and "futex" in shim.printer_blocked


# ----------------------------------------------------------------------------- registrations


REG = re.compile(r"^UK_PROVIDED_SYSCALLS-\$\(CONFIG_(\w+)\) \+= (\w+)-(\d+)([a-z]*)$", re.M)
DEF = re.compile(r"^(UK_\w+_DEFINE)\(long, (\w+)((?:, [^,()]+, \w+)*)\)$", re.M)


def registrations_and_definitions(files: dict[str, str]) -> tuple[dict[str, tuple[int, str]], dict[str, int]]:
    regs = {m.group(2): (int(m.group(3)), m.group(4)) for m in REG.finditer(files["Makefile.uk"])}
    defs = {}
    for name, text in files.items():
        if name.endswith(".c"):
            for m in DEF.finditer(text):
                defs[m.group(2)] = m.group(3).count(",") // 2
    return regs, defs


@pytest.mark.parametrize("case", ["x86_64", "aarch64"])
def test_registration_counts_equal_definitions_and_the_linux_table(case: str) -> None:
    folder = GOLDEN / case / "scaffold"
    files = {p.name: p.read_text() for p in folder.iterdir()}
    regs, defs = registrations_and_definitions(files)
    manifest = json.loads(files["scaffold.json"])
    table, arch = load_arg_table(), {"x86_64": "x86_64", "aarch64": "aarch64"}[case]
    assert set(regs) == set(defs) == {s["name"] for s in manifest["syscalls"]} and regs
    for s in manifest["syscalls"]:
        kernel = table.by_number(arch, s["nr"])
        assert kernel is not None and kernel.name == s["name"]
        assert regs[s["name"]][0] == defs[s["name"]] == kernel.nargs == s["nargs"], s["name"]
        assert (regs[s["name"]][1] == "e") == (s["macro"] == "UK_LLSYSCALL_R_E_DEFINE")


@pytest.mark.realwheel
@pytest.mark.slow  # a full analysis of libtorch_cpu.so
def test_libtorch_scaffold_registrations_match(real_wheels_dir: Path, tmp_path: Path) -> None:
    """Every row of libtorch_cpu.so's plan that means work in a syscall library (implement, fake, stub,
    investigate) is registered, or skipped with the reason; a row a Unikraft library of the build
    registers names the file to change.  Registrations equal definitions equal the Linux table.

    No count is asserted: issue 16 asked for at least 20 registrations, and under the priority model
    of issue 15 the plan for this wheel against 0.17.0 has fewer rows that a new library may register
    (the rest are options to enable, kept stubs, or work in core libraries): see the README."""
    lib = real_wheels_dir / "torch" / "torch" / "lib" / "libtorch_cpu.so"
    if not lib.exists():
        pytest.skip(f"{lib.name}: {WHEELS_HINT}")
    code, out, err = run_cli(["scan", str(lib), "--unikraft", "0.17.0", "--route", "binary-compat", "-f", "json"])
    assert code in (0, 1), err
    (tmp_path / "report.json").write_text(out)
    saved = str(tmp_path / "report.json")
    code, _, err = run_cli(["scaffold", saved, "--unikraft", "0.17.0", "-o", str(tmp_path / "s")])
    assert code == 0, err
    files = {p.name: p.read_text() for p in (tmp_path / "s").iterdir()}
    regs, defs = registrations_and_definitions(files)
    manifest = json.loads(files["scaffold.json"])
    work = {
        g["name"]: g["action"]
        for g in json.loads(out)["targets"][0]["gaps"]
        if g["action"] in ("implement", "fake (return 0)", "stub (ENOSYS)", "investigate")
    }
    skipped = {s["name"]: s for s in manifest["skipped"]}
    assert set(regs) == set(defs) and regs
    assert set(regs) | set(skipped) == set(work) and not set(regs) & set(skipped)
    for s in manifest["syscalls"]:
        assert Action.from_label(work[s["name"]])[0].value == s["action"]
        assert regs[s["name"]][0] == defs[s["name"]] == load_arg_table().by_number("x86_64", s["nr"]).nargs  # type: ignore[union-attr]
    for s in skipped.values():
        assert s["reason"] and (s["change"] or "syscall table" in s["reason"]), s
    # a warn-stub that returns success where the plan wants ENOSYS: the core file to change, not an override
    if work.get("sched_getaffinity") == "stub (ENOSYS)":
        assert "lib/uksched/sched.c" in skipped["sched_getaffinity"]["change"]
        assert "return -ENOSYS" in skipped["sched_getaffinity"]["change"]


# ----------------------------------------------------------------------------- plan


def test_stub_rendering_and_action_merge() -> None:
    """Two targets: one stubs io_uring_setup, one fakes it and implements kill; the strongest action wins."""
    doc = report()
    t1 = doc["targets"][0]
    t2 = copy.deepcopy(t1)
    t2["target"] = "libother.so"
    for g in t1["gaps"]:
        if g["name"] == "io_uring_setup":
            g["action"] = "stub (ENOSYS)"
    for g in t2["gaps"]:
        if g["name"] == "io_uring_setup":
            g["action"] = "fake (return 0)"
    doc["targets"] = [t1, t2]
    plan, _, sc = artifacts(doc)
    work = {w.name: w for w in plan.work}
    assert work["io_uring_setup"].action is Action.FAKE
    assert {e.target for e in work["io_uring_setup"].evidence} == {"libfixture.so", "libother.so"}
    assert "UK_WARN_STUBBED();\n\treturn 0;" in sc.files["fake.c"]
    assert 'uk_pr_debug("uk-depscan scaffold: io_uring_setup: fake, returns 0\\n");' in sc.files["fake.c"]
    doc["targets"] = [t1]
    plan, _, sc = artifacts(doc)
    assert "stub.c" in sc.files and "return -ENOSYS;" in sc.files["stub.c"]
    stub = next(e for e in sc.entries if e.name == "io_uring_setup")
    assert stub.expected == "-ENOSYS" and "TODO" not in sc.files["stub.c"]


def with_ukmmap_mremap(doc: dict) -> dict:  # type: ignore[type-arg]
    """The fixture with mremap's row as a plan would give it for ``lib/ukmmap``'s stub (the plan of issue 15
    drops that provider itself, as an excluded alternative: here the artifacts must do it)."""
    for g in doc["targets"][0]["gaps"]:
        if g["name"] == "mremap":
            g.update(action="implement", status="stub", kconfig="CONFIG_LIBUKMMAP", library="lib/ukmmap")
    return doc


def test_closure_from_the_table_and_its_absence() -> None:
    """The shipped table closes the set (CONFIG_LIBUKVMEM for CONFIG_LIBPOSIX_MMAP, CONFIG_LIBUKMMAP left out
    as the alternative it excludes); a table without closures says so in every output."""
    _, kc, sc = artifacts(with_ukmmap_mremap(report()))
    assert "# Dependency closure: closed over Kconfig dependencies" in kc.fragment
    assert "CONFIG_LIBUKVMEM=y" in kc.fragment and "CONFIG_LIBUKMMAP=y" not in kc.fragment
    assert "CONFIG_LIBUKMMAP cannot be enabled together with CONFIG_LIBPOSIX_MMAP" in kc.fragment
    mremap = next(e for e in sc.entries if e.name == "mremap")  # ukmmap is kept off: the scaffold may register it
    assert mremap.conflicts == ("LIBUKMMAP",) and "depends on !LIBUKMMAP" in sc.files["Config.uk"]
    bare = dataclasses.replace(load_unikraft_table("0.17.0"), kconfig=None)
    _, kc, _ = artifacts(report(), table=bare)
    assert NOT_CLOSED in kc.fragment and NOT_CLOSED in kc.kraftfile
    assert "CONFIG_LIBPOSIX_MMAP=y" in kc.fragment and "CONFIG_LIBUKVMEM=y" not in kc.fragment


def test_investigate_rows_are_logged_enosys_with_a_todo() -> None:
    """No Loupe data: registered as -ENOSYS that warns once naming the syscall, TODO investigate + evidence."""
    _, _, sc = artifacts(report())
    inv = {e.name: e for e in sc.entries if e.work.action is Action.INVESTIGATE}
    assert set(inv) == {"process_vm_readv", "sched_get_priority_max"}
    src = sc.files["investigate.c"]
    for name, e in inv.items():
        assert e.expected == "-ENOSYS" and e.warning == f"uk-depscan investigate: {name}() reached"
        assert f'uk_pr_warn_once("uk-depscan investigate: {name}() reached: returns -ENOSYS' in src
        assert f"TODO investigate: does the target reach {name}" in src
        assert f"man {name}(2)" in src and f"libfixture.so:f_{name}" in src  # man page, evidence chain
    assert "UK_WARN_STUBBED" not in src.split("*/", 1)[1].replace("UK_WARN_STUBBED(), ", "")
    assert "CONFIG_LIBUKDEBUG_PRINTK_WARN" in sc.files["README.md"]
    manifest = json.loads(sc.files["scaffold.json"])
    assert {s["name"]: s["warning"] for s in manifest["syscalls"]}["fadvise64"] is None  # implement: silent


def test_investigate_sits_between_stub_and_fake_when_targets_merge() -> None:
    doc = report()
    t1 = doc["targets"][0]
    t2 = copy.deepcopy(t1)
    t2["target"] = "libother.so"
    actions = {"process_vm_readv": "stub (ENOSYS)", "sched_get_priority_max": "fake (return 0)"}
    for g in t2["gaps"]:
        g["action"] = actions.get(g["name"], g["action"])
    doc["targets"] = [t1, t2]
    work = {w.name: w for w in artifacts(doc)[0].work}
    assert work["process_vm_readv"].action is Action.INVESTIGATE  # no evidence either way: keep the log
    assert work["sched_get_priority_max"].action is Action.FAKE  # one target needs success


def test_core_registrations_name_the_file_to_change() -> None:
    """A stub/fake/implement/investigate row whose syscall a library of the build registers is skipped with
    the file and the change the plan wants there, and why the registration cannot be turned off."""
    _, _, sc = artifacts(report())
    skipped = {s.name: s for s in sc.skipped}
    aff = skipped["sched_getaffinity"]
    assert aff.action is Action.STUB and "lib/uksched" in aff.reason and "selected by" in aff.reason
    assert aff.change == "change sched_getaffinity in lib/uksched/sched.c:422 to return -ENOSYS (warn_stubbed today)"
    assert any("fallback" in r for r in aff.reasons)  # the plan's reason travels with it
    assert skipped["setsid"].change is not None and "return 0 with UK_WARN_STUBBED()" in skipped["setsid"].change
    assert skipped["kill"].change is not None and skipped["kill"].change.startswith("implement kill in lib/uksignal/")
    assert skipped["execve"].change is not None and skipped["execve"].change.startswith("investigate in lib/posix-")
    assert "enabled by the Kconfig plan" in skipped["kill"].reason
    readme = sc.files["README.md"]
    assert "**instead: change sched\\_getaffinity in lib/uksched/sched.c:422 to return -ENOSYS" in readme


def test_unverified_options_and_boot_notes() -> None:
    """arch_prctl/brk come from app-elfloader 0.16.3 on a 0.17.0 core: the option is there, marked UNVERIFIED
    with the table's note; CONFIG_LIBUKRANDOM (on in every KVM build) gets the RDSEED note on x86_64 only,
    and only for the commits it was read in."""
    _, kc, _ = artifacts(report())
    for raw in (kc.fragment, kc.kraftfile):
        text = " ".join(line.strip().lstrip("#").strip() for line in raw.splitlines())  # comments unwrapped
        assert "UNVERIFIED for Unikraft 0.17.0: CONFIG_APPELFLOADER_ARCH_PRCTL, CONFIG_APPELFLOADER_BRK" in text
        assert "UNVERIFIED: arch_prctl: app-elfloader 0.16.3, unverified for this release" in text
        assert "arch_prctl-3u at app-elfloader:Makefile.uk:13" in text
        assert "BOOT: CONFIG_LIBUKRANDOM (implied by CONFIG_PLAT_KVM" in text and "RDSEED (CPUID.07H:EBX)" in text
    arm = json.loads((FIXTURES / "artifacts" / "report-aarch64.json").read_text())
    assert "BOOT" not in artifacts(arm)[1].fragment
    other = dataclasses.replace(load_unikraft_table("0.17.0"), commit="0" * 40)
    doc = report()
    doc["unikraft"]["commit"] = other.commit
    plan = build_plan(doc, Route.BINARY_COMPAT, other)
    active = active_options(other, resolve_kconfig(other, plan.options, plan.route), plan.route)
    assert "CONFIG_LIBUKRANDOM" in active and boot_notes(plan, active) == ()


def test_registration_conditions_become_requests() -> None:
    """set_tid_address is registered only under ifeq ($(CONFIG_LIBPOSIX_PROCESS_CLONE),y) (lib/posix-futex)."""
    plan, _, _ = artifacts(report())
    req = {r.option: r for r in plan.options}
    assert "set_tid_address" in req["CONFIG_LIBPOSIX_PROCESS_CLONE"].syscalls
    assert any(u.role.startswith("registration condition") for u in req["CONFIG_LIBPOSIX_PROCESS_CLONE"].uses)


# ----------------------------------------------------------------------------- hostile input


def test_hostile_names_stay_inert_in_every_file() -> None:
    yaml = pytest.importorskip("yaml")
    doc = report()
    t = doc["targets"][0]
    t["target"] = HOSTILE
    for f in t["syscalls"]["reached"]:
        for step in f["chain"]:
            step["symbol"] = HOSTILE
    for g in t["gaps"]:
        g["reasons"] = [*g["reasons"], HOSTILE]
    _, kc, sc = artifacts(doc)
    files = {"kconfig.fragment": kc.fragment, "Kraftfile": kc.kraftfile, **sc.files}
    for name, text in files.items():
        assert "\x1b" not in text and "\n$(shell" not in text, name
        for line in text.splitlines():
            if "pwned" in line and not name.endswith((".c", ".md", ".json")):
                assert line.lstrip().startswith("#") or line.startswith("\t  "), (name, line)
    for name in (n for n in files if n.endswith(".c")):
        code = re.sub(r"/\*.*?\*/", "", files[name], flags=re.S)
        assert "pwned" not in code and "evil" not in code, name  # nothing escaped its comment
    parsed = yaml.safe_load(kc.kraftfile)
    assert parsed["spec"] == "v0.6" and parsed["targets"] == ["qemu/x86_64"] and parsed["rootfs"] == "./rootfs"
    values = parsed["unikraft"]["kconfig"]
    assert set(values.values()) == {"y", "n"} and values["CONFIG_LIBPOSIX_PROCESS"] == "y"
    assert json.loads(files["scaffold.json"])["targets"][0]["name"] == HOSTILE  # data keeps the raw name


def test_hostile_option_name_is_refused() -> None:
    doc = report()
    for g in doc["targets"][0]["gaps"]:
        if g["action"].startswith("enable "):
            g["kconfig"] = "CONFIG_X\n$(shell id)"
            break
    with pytest.raises(UsageError, match="not an identifier"):
        artifacts(doc)


# ----------------------------------------------------------------------------- CLI


def test_cli_prints_fragment_and_kraftfile(tmp_path: Path) -> None:
    code, out, err = run_cli(["kconfig", str(REPORT), "--unikraft", "0.17.0"])
    assert code == 0 and out.startswith("# Kconfig fragment")
    assert err.splitlines() == [  # closed, so no closure note; the unverified and boot notes
        "uk-depscan: note: unverified for Unikraft 0.17.0: CONFIG_APPELFLOADER_ARCH_PRCTL, CONFIG_APPELFLOADER_BRK "
        "(a provider of another release; see the UNVERIFIED lines)",
        "uk-depscan: note: CONFIG_LIBUKRANDOM can stop the boot on x86_64: see the BOOT lines",
    ]
    code, out, _ = run_cli(["kconfig", str(REPORT), "--unikraft", "0.17.0", "--kraftfile", "--rootfs", "out/root fs"])
    assert code == 0 and 'rootfs: "out/root fs"' in out


def test_cli_errors_are_one_line_with_exit_2(tmp_path: Path) -> None:
    mixed = report()
    arm = json.loads((FIXTURES / "artifacts" / "report-aarch64.json").read_text())
    mixed["targets"].append(arm["targets"][0])
    (tmp_path / "mixed.json").write_text(json.dumps(mixed))
    cases = [
        (["kconfig", str(tmp_path / "mixed.json"), "--unikraft", "0.17.0"], "several architectures"),
        (["kconfig", str(REPORT), "--unikraft", "0.17.0", "--route", "native"], "not made with --route native"),
        (["kconfig", str(REPORT), "--unikraft", "0.16.3"], "made against Unikraft 0.17.0"),
        (["scaffold", str(tmp_path / "nope.json"), "-o", str(tmp_path / "o")], "not a readable uk-depscan JSON"),
    ]
    for argv, message in cases:
        code, _, err = run_cli(argv)
        assert code == 2 and message in err and err.count("\n") == 1, (argv, err)
    out = tmp_path / "lib"
    assert run_cli(["scaffold", str(REPORT), "--unikraft", "0.17.0", "-o", str(out)])[0] == 0
    code, _, err = run_cli(["scaffold", str(REPORT), "--unikraft", "0.17.0", "-o", str(out)])
    assert code == 2 and "would overwrite" in err
