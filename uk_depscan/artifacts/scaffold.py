"""``uk-depscan scaffold``: a Unikraft external library registering every syscall the plan stubs,
fakes, implements or investigates.

One library (``addlib_s``), one Kconfig option per syscall, one registration per syscall
(``UK_PROVIDED_SYSCALLS-$(CONFIG_<LIB>_<NAME>) += <name>-<nargs>[suffix]``) and one definition:

* ``stub`` → ``return -ENOSYS;`` (what Unikraft's generated stub answers, now explicit);
* ``fake`` → ``UK_WARN_STUBBED(); return 0;`` (``lib/ukdebug/include/uk/print.h``, warns once);
* ``implement`` → ``return -ENOSYS;`` with a ``TODO`` naming the evidence chain and the man page;
* ``investigate`` (no Loupe data to choose from) → ``uk_pr_warn_once(…); return -ENOSYS;`` with a
  ``TODO investigate`` and the same evidence: the warning, once per syscall, tells the engineer which
  of these a run really reaches (the stub the shim would generate answers the same, silently).

A syscall that a Unikraft library already registers (as a stub or a partial implementation) keeps
that registration when its library is on in the build the plan describes (the route's base
configuration, or an option the plan enables): two registrations of one name would give the shim's
generated dispatcher two ``case`` labels for one number.  It is listed as skipped, with the file that
holds the registration and what the plan wants changed there.  Otherwise its option ``depends on``
every such library being off.  Syscalls the release's number table lacks, or that the kernel does not
define for the arch, are listed as skipped with the reason.  Argument counts and types come from the
Linux table, never from a guess.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from uk_depscan.artifacts.argtable import ArgTable, SyscallArgs
from uk_depscan.artifacts.kconfig import header_lines, target_name
from uk_depscan.artifacts.plan import ArtifactPlan, SyscallWork
from uk_depscan.artifacts.sanitize import c_comment, hash_comment, identifier, kconfig_string
from uk_depscan.artifacts.scaffold_readme import INVESTIGATE_PREFIX, render_readme
from uk_depscan.artifacts.shim import ShimFacts, c_type, param_name
from uk_depscan.model import Action
from uk_depscan.unikraft.tables import Provider, SyscallSupport, UnikraftTable

EXPECTED = {Action.STUB: "-ENOSYS", Action.FAKE: "0", Action.IMPLEMENT: "-ENOSYS", Action.INVESTIGATE: "-ENOSYS"}
SOURCES = {
    Action.STUB: "stub.c",
    Action.FAKE: "fake.c",
    Action.IMPLEMENT: "implement.c",
    Action.INVESTIGATE: "investigate.c",
}
DEBUG_PREFIX = "uk-depscan scaffold: "
MANIFEST_VERSION = 1


def warning_of(action: Action, name: str) -> str | None:
    """The text the definition of ``name`` prints once at warning level (None: it prints nothing).

    fake: ``UK_WARN_STUBBED()`` prints ``"%s() stubbed"`` with ``__func__``, the definition macros'
    inner function ``__uk_syscall_r_<name>`` (lib/syscall_shim/include/uk/syscall.h), hence the suffix."""
    if action is Action.FAKE:
        return f"_{name}() stubbed"
    if action is Action.INVESTIGATE:
        return f"{INVESTIGATE_PREFIX}{name}() reached"
    return None


@dataclass(frozen=True)
class Entry:
    """One scaffolded syscall."""

    work: SyscallWork
    nr: int
    kernel: SyscallArgs
    macro: str
    suffix: str
    option: str  # Kconfig symbol without CONFIG_
    conflicts: tuple[str, ...]  # core/app options whose library registers the syscall already

    @property
    def name(self) -> str:
        return self.work.name

    @property
    def nargs(self) -> int:
        return len(self.kernel.args or ())

    @property
    def registration(self) -> str:
        return f"{self.name}-{self.nargs}{self.suffix}"

    @property
    def expected(self) -> str:
        return EXPECTED[self.work.action]

    @property
    def warning(self) -> str | None:
        return warning_of(self.work.action, self.name)


@dataclass(frozen=True)
class Skipped:
    name: str
    action: Action
    reason: str  # why it is not registered here
    change: str | None = None  # where the plan's work goes instead (a file of the library that registers it)
    reasons: tuple[str, ...] = ()  # the plan's reasons for the action (from the report)


@dataclass(frozen=True)
class Scaffold:
    library: str  # e.g. depscan_torch_cpu (addlib_s lib<library>)
    option: str  # LIBDEPSCAN_TORCH_CPU
    entries: tuple[Entry, ...]
    skipped: tuple[Skipped, ...]
    files: dict[str, str]


def plan_entries(
    plan: ArtifactPlan,
    table: UnikraftTable,
    args: ArgTable,
    shim: ShimFacts,
    option: str,
    active: Mapping[str, str],
) -> tuple[tuple[Entry, ...], tuple[Skipped, ...]]:
    """Entries for the plan's syscalls; ``active``: options on in the build (``CONFIG_X`` -> why)."""
    entries, skipped = [], []
    for w in plan.work:
        identifier(w.name, "syscall name")
        row = table.get(w.name)
        nr = None if row is None else (row.arm64_nr if plan.unikraft_arch == "arm64" else row.x86_64_nr)
        if row is None or nr is None:
            missing = f"not in Unikraft {table.release}'s {plan.unikraft_arch} syscall table: it cannot be registered"
            skipped.append(Skipped(w.name, w.action, missing, None, w.reasons))
            continue
        kernel = args.by_number(plan.arch, nr)
        problem = _kernel_problem(w.name, nr, kernel, plan, args, table)
        why, change = (problem, None) if problem else _shim_problem(w, row, plan.route.value, table, shim, active)
        if why or kernel is None:
            skipped.append(Skipped(w.name, w.action, why or "no kernel row", change, w.reasons))
            continue
        macro, suffix = shim.macro_for(w.name)
        conflicts = _conflicts(row, plan.route.value)
        entries.append(Entry(w, nr, kernel, macro, suffix, f"{option}_{w.name.upper()}", conflicts))
    return tuple(entries), tuple(skipped)


def _kernel_problem(
    name: str, nr: int, kernel: SyscallArgs | None, plan: ArtifactPlan, args: ArgTable, table: UnikraftTable
) -> str | None:
    if kernel is None or kernel.args is None:
        note = kernel.note if kernel else "no row"
        return f"Linux {args.kernel} has no {plan.arch} definition for number {nr} ({note})"
    if kernel.name != name:
        return f"number {nr} is {kernel.name} in Linux {args.kernel} but {name} in Unikraft {table.release}"
    return None


def _shim_problem(
    w: SyscallWork, row: SyscallSupport, route: str, table: UnikraftTable, shim: ShimFacts, active: Mapping[str, str]
) -> tuple[str | None, str | None]:
    """Why a generated registration of ``w`` could never be built in this release and route, and
    what to change instead in the library that registers it: ``(None, None)`` when it can be built."""
    name = w.name
    providers = [p for p in row.providers if route in p.routes]
    unconditional = [p for p in providers if not p.kconfig]
    if unconditional:
        libs = ", ".join(sorted({p.library for p in unconditional}))
        why = f"registered unconditionally by {libs}: a second registration cannot coexist"
        return why, _change(w, unconditional[0])
    if name in shim.printer_blocked:
        core = [p for p in row.providers if not p.external]
        why = (
            f"Unikraft {table.release}'s lib/syscall_shim/uk_prsyscall.c prints {name} with definitions only "
            f"its core provider's headers bring ({shim.probe}: {shim.printer_blocked[name]}): a registration "
            "from another library breaks the shim's build"
        )
        return why, _change(w, core[0]) if core else f"in a core library of Unikraft {table.release}"
    on = [(p, active[p.kconfig]) for p in providers if p.kconfig and p.kconfig in active]
    if on:
        p, state = on[0]
        why = (
            f"registered by {p.library} ({p.status}: {p.detail}) whenever {p.kconfig} is on, and it is {state}"
            f"{_held_on(table, p.kconfig or '', active)}: a second registration cannot coexist"
        )
        return why, _change(w, p)
    return None, None


def _held_on(table: UnikraftTable, option: str, active: Mapping[str, str]) -> str:
    """``, selected by CONFIG_Y``: options of the build that force ``option`` on (the table's
    ``select`` facts), so that turning it off is no way to drop the registration."""
    facts = table.kconfig.options if table.kconfig is not None else {}
    by = sorted(o for o, f in facts.items() if option in f.selects and o in active)
    return f", selected by {', '.join(by)}" if by else ""


def _change(w: SyscallWork, p: Provider) -> str:
    """What the plan wants done in the existing definition of provider ``p``."""
    where = p.defined_at or p.provided_at or p.library
    if w.action is Action.IMPLEMENT:
        return f"implement {w.name} in {where} ({p.detail} today)"
    if w.action is Action.STUB:
        return f"change {w.name} in {where} to return -ENOSYS ({p.detail} today)"
    if w.action is Action.FAKE:
        return f"change {w.name} in {where} to return 0 with UK_WARN_STUBBED() ({p.detail} today)"
    return f"investigate in {where} whether the target reaches {w.name} ({p.detail} today)"


def _conflicts(row: SyscallSupport, route: str) -> tuple[str, ...]:
    options = {p.kconfig.removeprefix("CONFIG_") for p in row.providers if p.kconfig and route in p.routes}
    return tuple(sorted(identifier(o, "Kconfig option") for o in options))


def build_scaffold(
    plan: ArtifactPlan,
    table: UnikraftTable,
    args: ArgTable,
    shim: ShimFacts,
    *,
    name: str | None = None,
    active: Mapping[str, str] | None = None,
) -> Scaffold:
    """The library; ``active`` are the options on in the build it joins (route base and Kconfig plan)."""
    library = identifier(name, "library name") if name else f"depscan_{target_name(plan)}"
    option = f"LIB{library.upper()}"
    on = dict(active or {})
    for opt in sorted(shim.minimal_on):
        on.setdefault(f"CONFIG_{opt}", f"on in Unikraft {shim.release}'s minimal image ({shim.probe})")
    entries, skipped = plan_entries(plan, table, args, shim, option, on)
    files = {
        "Config.uk": render_config_uk(plan, option, library, entries),
        "Makefile.uk": render_makefile_uk(plan, option, library, entries),
        "README.md": render_readme(plan, library, option, entries, skipped, args, shim),
        "scaffold.json": render_manifest(plan, library, option, entries, skipped, args),
    }
    for action, source in SOURCES.items():
        chosen = [e for e in entries if e.work.action is action]
        if chosen:
            files[source] = render_source(plan, action, chosen, args, library)
    return Scaffold(library, option, entries, skipped, files)


# ----------------------------------------------------------------------------- Kconfig / Make


def render_config_uk(plan: ArtifactPlan, option: str, library: str, entries: tuple[Entry, ...]) -> str:
    out = [f"# {hash_comment(line)}" for line in header_lines(plan, f"Config.uk of lib{library}")]
    targets = ", ".join(t.name.replace("\\", "/").rsplit("/", 1)[-1] for t in plan.targets)
    out += [
        "",
        f"menuconfig {option}",
        f'\tbool "{kconfig_string(library)}: syscalls the uk-depscan plan stubs, fakes, implements or investigates"',
        "\tdefault n",
        "\tselect LIBSYSCALL_SHIM",
        "\tselect LIBUKDEBUG",
        "\thelp",
        f"\t  Generated for {kconfig_string(targets)} against Unikraft {kconfig_string(plan.release)}.",
        "\t  One option per syscall below; see README.md.",
        "",
        f"if {option}",
        "",
        f"config {option}_DEBUG",
        '\tbool "Print a debug line from each definition when it is called"',
        "\tdefault n",
        "\thelp",
        "\t  Compiles these sources with UK_DEBUG, so every call logs one uk_pr_debug() line.",
    ]
    for e in entries:
        out += ["", f"config {e.option}", f'\tbool "{e.name}: {_what(e)}"', "\tdefault y"]
        if e.conflicts:
            out.append("\tdepends on " + " && ".join(f"!{c}" for c in e.conflicts))
        out += ["\thelp", f"\t  {kconfig_string(_help(e))}"]
        if e.conflicts:
            libs = kconfig_string(", ".join(e.conflicts))
            out.append(f"\t  Off while {libs} is on: that library registers {e.name} itself.")
    out += ["", "endif", ""]
    return "\n".join(out)


def _what(e: Entry) -> str:
    return {
        Action.STUB: "stub, returns -ENOSYS",
        Action.FAKE: "fake, returns 0",
        Action.IMPLEMENT: "to implement (returns -ENOSYS until then)",
        Action.INVESTIGATE: "to investigate (warns once, returns -ENOSYS)",
    }[e.work.action]


def _help(e: Entry) -> str:
    man = f", man {e.kernel.man_page}" if e.kernel.man_page else ""
    return f"{e.work.tier}, Unikraft status {e.work.status}; Linux {e.kernel.defined_at}{man}."


def render_makefile_uk(plan: ArtifactPlan, option: str, library: str, entries: tuple[Entry, ...]) -> str:
    var = library.upper()
    out = [f"# {hash_comment(line)}" for line in header_lines(plan, f"Makefile.uk of lib{library}")]
    out += ["", f"$(eval $(call addlib_s,lib{library},$(CONFIG_{option})))", ""]
    for action, source in SOURCES.items():
        if any(e.work.action is action for e in entries):
            out.append(f"LIB{var}_SRCS-y += $(LIB{var}_BASE)/{source}")
    out.append(f"LIB{var}_CFLAGS-$(CONFIG_{option}_DEBUG) += -DUK_DEBUG")
    out += ["", "# One registration per syscall, each under its own option (Config.uk): name-<nargs>[suffix]."]
    for e in entries:
        out.append(f"# {e.name}: {e.work.action.value}, returns {e.expected}")
        out.append(f"UK_PROVIDED_SYSCALLS-$(CONFIG_{e.option}) += {e.registration}")
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------------- C


def definition(e: Entry) -> tuple[str, set[str]]:
    """The macro header of ``e`` and the struct/union tags it names."""
    tags, params = set(), []
    for i, a in enumerate(e.kernel.args or ()):
        ct = c_type(a.type)
        if ct.tag:
            tags.add(ct.tag)
        params += [ct.text, param_name(a.name, i)]
    return f"{e.macro}({', '.join(['long', e.name, *params])})", tags


def _kernel_signature(e: Entry) -> str:
    args = ", ".join(a.type + ("" if a.type.endswith("*") else " ") + a.name for a in e.kernel.args or ())
    where = e.kernel.defined_at or "?"
    if e.kernel.variants:  # equally-typed alternatives (mm/nommu.c, process_32.c …): Kbuild picks one
        where += f" (or {', '.join(e.kernel.variants)})"
    return f"{where}: {e.kernel.entry}({args or 'void'})"


def _comment(plan: ArtifactPlan, e: Entry) -> list[str]:
    w = e.work
    lines = [f"{e.name}: {w.action.value} ({w.tier}; Unikraft {plan.release}: {w.status}, {w.detail})"]
    lines.append(f"Linux {_kernel_signature(e)}")
    if w.action in (Action.IMPLEMENT, Action.INVESTIGATE):
        man = f"man {e.kernel.man_page}" if e.kernel.man_page else "no man-pages entry (see the kernel source above)"
        todo = (
            f"TODO implement {e.name} - {man}"
            if w.action is Action.IMPLEMENT
            else f"TODO investigate: does the target reach {e.name} when it runs, and does it cope with ENOSYS? "
            f"Then implement, fake or stub it - {man}"
        )
        lines.insert(0, todo)
        for ev in w.evidence or ():
            lines.append(
                f"Needed by {ev.target}: {' -> '.join(ev.chain)}" + (" (failure paths only)" if ev.failure_only else "")
            )
        if not w.evidence:
            lines.append("Needed by the start-up baseline or a target without an evidence chain in the report")
    lines += [f"Why: {r}" for r in w.reasons]
    return [" * " + c_comment(line) for line in lines]


def render_source(plan: ArtifactPlan, action: Action, entries: list[Entry], args: ArgTable, library: str) -> str:
    head = header_lines(plan, f"{SOURCES[action]}: syscalls to {action.value}")
    out = ["/*", *[" * " + c_comment(line) for line in head]]
    out += [
        " * Argument types: Linux " + c_comment(args.kernel) + " SYSCALL_DEFINEn, spelled in plain C (README.md).",
        " */",
        "",
    ]
    out += [
        "#include <errno.h>",
        "#include <uk/config.h>",
        "#include <uk/syscall.h>",
        "#include <uk/print.h> /* uk_pr_debug(), UK_WARN_STUBBED(), uk_pr_warn_once() */",
    ]
    bodies, tags = [], set()
    for e in entries:
        header, used = definition(e)
        tags |= used
        # One debug line per call, compiled in only with the library's _DEBUG option (UK_DEBUG for
        # these files): how a validation run proves the dispatchers reach this definition.
        trace = f'\tuk_pr_debug("{DEBUG_PREFIX}{e.name}: {action.value}, returns {e.expected}\\n");'
        if action is Action.FAKE:
            body = ["\tUK_WARN_STUBBED();", "\treturn 0;"]
        elif action is Action.INVESTIGATE:
            # once per syscall, at warning level: which of these a run reaches (README.md)
            where = f"lib{library}/{SOURCES[action]}"
            body = [f'\tuk_pr_warn_once("{e.warning}: returns -ENOSYS, see {where}\\n");', "\treturn -ENOSYS;"]
        else:
            body = ["\treturn -ENOSYS;"]
        body.insert(0, trace)
        bodies += ["", f"#if CONFIG_{e.option}", "/*", *_comment(plan, e), " */", header, "{", *body, "}", "#endif"]
    if tags:
        out += ["", "/* Kernel argument types, opaque here: only pointers to them are passed. */"]
        out += [f"{identifier_tag(t)};" for t in sorted(tags)]
    return "\n".join(out + bodies) + "\n"


def identifier_tag(tag: str) -> str:
    kind, name = tag.split(" ", 1)
    return f"{kind} {identifier(name, 'type tag')}"


# ----------------------------------------------------------------------------- manifest


def render_manifest(
    plan: ArtifactPlan,
    library: str,
    option: str,
    entries: tuple[Entry, ...],
    skipped: tuple[Skipped, ...],
    args: ArgTable,
) -> str:
    doc = {
        "manifest_version": MANIFEST_VERSION,
        "library": library,
        "option": option,
        "debug_option": f"{option}_DEBUG",
        "debug_prefix": DEBUG_PREFIX,
        "unikraft": {"release": plan.release, "commit": plan.commit},
        "arch": plan.unikraft_arch,
        "route": plan.route.value,
        "linux_args": {"kernel": args.kernel, "table": args.label},
        "targets": [{"name": t.name, "sha256": t.sha256} for t in plan.targets],
        "syscalls": [
            {
                "name": e.name,
                "action": e.work.action.value,
                "returns": e.expected,
                "nr": e.nr,
                "nargs": e.nargs,
                "registration": e.registration,
                "macro": e.macro,
                "option": e.option,
                "depends_off": list(e.conflicts),
                "tier": e.work.tier,
                "warning": e.warning,
            }
            for e in entries
        ],
        "skipped": [
            {"name": s.name, "action": s.action.value, "reason": s.reason, "change": s.change} for s in skipped
        ],
    }
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=True) + "\n"
