"""README.md of a generated syscall library: what it is, how to add it to a build, what each entry does."""

from __future__ import annotations

from typing import TYPE_CHECKING

from uk_depscan.artifacts.argtable import ArgTable
from uk_depscan.artifacts.kconfig import header_lines
from uk_depscan.artifacts.plan import ArtifactPlan
from uk_depscan.artifacts.sanitize import markdown
from uk_depscan.artifacts.shim import ShimFacts
from uk_depscan.model import Action

INVESTIGATE_PREFIX = "uk-depscan investigate: "  # what investigate definitions warn with (scaffold.py)

if TYPE_CHECKING:
    from uk_depscan.artifacts.scaffold import Entry, Skipped


def render_readme(
    plan: ArtifactPlan,
    library: str,
    option: str,
    entries: tuple[Entry, ...],
    skipped: tuple[Skipped, ...],
    args: ArgTable,
    shim: ShimFacts,
) -> str:
    counts = {a: sum(1 for e in entries if e.work.action is a) for a in Action}
    out = [f"# lib{library}", ""]
    out += [markdown(line) + "  " for line in header_lines(plan, f"Unikraft library lib{library}")]
    out += [
        "",
        f"{len(entries)} syscalls: {counts[Action.STUB]} stubbed (`-ENOSYS`), {counts[Action.FAKE]} faked "
        f"(`UK_WARN_STUBBED(); return 0;`), {counts[Action.IMPLEMENT]} to implement (`-ENOSYS` and a `TODO` "
        f"naming the evidence and the man page until then), {counts[Action.INVESTIGATE]} to investigate "
        f"(a logged `-ENOSYS`, below); {len(skipped)} skipped (below).",
        "",
        "**Investigate** rows are syscalls the target's code can reach for which the plan has no evidence to "
        "choose between implementing, faking and stubbing (no Loupe data, no known fallback). Each is registered "
        "here as an explicit `-ENOSYS` that prints, the first time it is called, "
        f"`{INVESTIGATE_PREFIX}<name>() reached: returns -ENOSYS, ...` at warning level, with a "
        "`TODO investigate: …` and the evidence chain next to its definition: run the workload and the log says "
        "which of them it really makes; the ones it never makes can stay as they are (without this library the "
        "shim answers the same `-ENOSYS`, logged only at debug level with `CONFIG_LIBSYSCALL_SHIM_DEBUG`, on "
        "every call of every unregistered syscall). Faked rows warn the same way (`UK_WARN_STUBBED()`). Unikraft "
        "prints warnings only with `CONFIG_LIBUKDEBUG_PRINTK_WARN=y` (or `_INFO`); its default, "
        "`CONFIG_LIBUKDEBUG_PRINTK_ERR`, hides them.",
        "",
        "## Add it to a build",
        "",
        "1. Put this directory next to your application and list it in the application's `Makefile`:",
        f"   `LIBS := $(LIBS):$(CURDIR)/lib{library}` (the `L=` list of Unikraft's build; with a Kraftfile, a",
        "   `libraries:` entry whose `source:` is this directory).",
        f"2. `make menuconfig` → *Library Configuration* → enable `{option}` (`CONFIG_{option}=y`); every syscall",
        "   has its own option below it, on by default.",
        "3. `make print-syscalls` lists every registration of the configuration, these included.",
        "",
        f"Release: Unikraft {markdown(plan.release)}. Definitions use `{shim.plain_macro}`"
        + (
            f" (`{shim.suffix_macro}` and the `{shim.suffix}` registration suffix for syscalls that need the "
            "caller's execution context)"
            if shim.suffix_macro
            else ""
        )
        + ", as the release's own code does (from the shipped table, `uk_depscan.artifacts.shim`).",
        "",
        "Argument counts and types: Linux "
        + markdown(args.kernel)
        + " `SYSCALL_DEFINEn` ("
        + markdown(args.provenance)
        + "). The C spells them with C types only (kernel scalar typedefs as `long`, which is how the shim "
        "passes every argument; pointers to kernel typedefs as `void *`; `struct` tags forward-declared); each "
        "definition's comment gives the kernel's own signature.",
        "",
        "This library joins the build `uk-depscan kconfig` describes for the same plan and route: a syscall that "
        "a Unikraft library registers there (the route's base configuration, or an option the plan enables) is "
        "left to that library and listed below as skipped, with the file where the work belongs. Any other "
        "provider's option is a `depends on !…` of the syscall's option: two registrations of one name cannot "
        "coexist in the shim.",
        "",
        "## Syscalls",
        "",
        "| syscall | action | returns | registration | option | tier | Unikraft today | Linux | man |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for e in entries:
        off = f" (off while {', '.join(e.conflicts)})" if e.conflicts else ""
        out.append(
            f"| `{e.name}` | {e.work.action.value} | `{e.expected}` | `{e.registration}` | `CONFIG_{e.option}`{off} "
            f"| {markdown(e.work.tier)} | {markdown(e.work.status)} ({markdown(e.work.detail)}) "
            f"| {markdown(e.kernel.defined_at or '?')} | {markdown(e.kernel.man_page or '-')} |"
        )
    if skipped:
        out += [
            "",
            "## Skipped",
            "",
            "Not registered here: why, where the plan's work goes instead, and the plan's reasons.",
            "",
        ]
        for s in skipped:
            out.append(f"- `{s.name}` ({s.action.value}): {markdown(s.reason)}")
            if s.change:
                out.append(f"  - **instead: {markdown(s.change)}**")
            out += [f"  - plan: {markdown(r)}" for r in s.reasons]
    out += ["", "Generated: do not edit by hand; regenerate with `uk-depscan scaffold`.", ""]
    return "\n".join(out)
