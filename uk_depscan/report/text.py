"""Terminal rendering with rich: a one-screen summary and a libtree-style dependency tree.

Strings from binaries go into ``rich.text.Text`` objects (never markup) after
:func:`~uk_depscan.report.escape.for_terminal`, so a symbol name cannot style or move the terminal.

Terminal-native: the caller gives the width (the CLI reads ``COLUMNS`` / the terminal); no line is
longer than it.  Lists of names wrap between names with a hanging indent (never inside a name or a
path: a word too long for the line is cut with an ellipsis); a table row is one line, its last
free-text column cut with an ellipsis (``-v`` prints every reason in full below the table).  No
line ends in spaces.  ``verbose``: 0 summary; 1 adds evidence chains, every gap row with its full
reasons and one row per import; 2 adds per-site detail: where each chain step is, how many own
sites and imports reach each syscall (the narrowest import), one row per syscall site of the target.
"""

from __future__ import annotations

import io
import re
import textwrap
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from uk_depscan.model import (
    Action,
    EvidenceStep,
    FoundVia,
    Gap,
    GapRow,
    LoadTree,
    MissingLibrary,
    NativeStatus,
    ReachPath,
    Report,
    Severity,
    SyscallReport,
    TargetReport,
    Tier,
)
from uk_depscan.names import demangle, demangle_versioned
from uk_depscan.report.escape import for_terminal
from uk_depscan.report.views import ExplainAnswer, QueryKind, target_views

if TYPE_CHECKING:  # rich is imported by the functions that draw: a --format json run needs none of it
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text
    from rich.tree import Tree

VIA_STYLE = {
    FoundVia.ROOT: "bold",
    FoundVia.RPATH: "yellow",
    FoundVia.RUNPATH: "cyan",
    FoundVia.LD_LIBRARY_PATH: "magenta",
    FoundVia.LD_SO_CACHE: "green",
    FoundVia.LD_SO_CONF: "green",
    FoundVia.DEFAULT: "blue",
    FoundVia.INTERPRETER: "blue",
    FoundVia.DIRECT: "white",
}
TIER_STYLE = {Tier.P0: "bold red", Tier.P1: "yellow", Tier.P2: "cyan", Tier.P3: "dim"}


def _console(color: bool, width: int) -> tuple[Console, io.StringIO]:
    from rich.console import Console

    buf = io.StringIO()
    return Console(
        file=buf,
        force_terminal=color,
        no_color=not color,
        width=width,
        highlight=False,
        soft_wrap=False,
        emoji=False,
        markup=False,
    ), buf


DEFAULT_WIDTH = 100  # a caller that knows no terminal (a file, a pipe without COLUMNS)
_TRAILING = re.compile(r"[ ]+((?:\x1b\[[0-9;]*m)*)$", re.M)


def _finish(buf: io.StringIO) -> str:
    """The rendered text without trailing spaces (rich pads table cells and grids to the width;
    with colours the padding sits before the closing escape sequence)."""
    return _TRAILING.sub(r"\1", buf.getvalue())


def _t(text: str, style: str = "") -> Text:
    from rich.text import Text

    return Text(for_terminal(text), style=style)


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 syscall``, ``2 syscalls`` (``many`` for irregular plurals)."""
    return f"{n} {word if n == 1 else many or word + 's'}"


def _wrap(con: Console, text: str, style: str = "", *, indent: int | None = None) -> None:
    """Print ``text`` wrapped between words to the console width, continuation lines indented
    (``indent`` columns, default: the text's own indent + 2); a single word longer than a line
    is cut with an ellipsis rather than broken inside a name or path."""
    from rich.text import Text

    lead = len(text) - len(text.lstrip(" "))
    hang = " " * (lead + 2 if indent is None else indent)
    lines = textwrap.wrap(
        for_terminal(text.lstrip(" ")),
        width=max(con.width, 20),
        initial_indent=" " * lead,
        subsequent_indent=hang,
        break_long_words=False,
        break_on_hyphens=False,
    )
    for line in lines or [""]:
        con.print(Text(line, style=style), no_wrap=True, overflow="ellipsis")


Cell = tuple[str, str]  # (text, style)


def _cut(text: str, width: int) -> str:
    from rich.cells import cell_len, set_cell_size

    return text if cell_len(text) <= width else set_cell_size(text, max(width - 1, 0)) + "…"


def _grid(
    con: Console,
    header: tuple[str, ...],
    rows: Sequence[tuple[Cell, ...]],
    *,
    shrink: tuple[int, ...],
    right: tuple[int, ...] = (),
    caps: dict[int, int] | None = None,
) -> None:
    """A table of one line per row: columns as wide as their widest cell, two spaces apart; when
    that is wider than the console, the ``shrink`` columns (first listed, first cut) give up room
    down to 8 cells, their cells cut with an ellipsis (``caps``: column → widest it may be when
    the table does not fit).  Identifiers in the other columns stay whole."""
    from rich.cells import cell_len
    from rich.text import Text

    cells = [[(for_terminal(text), style) for text, style in row] for row in rows]
    widths = [max([len(h), *(cell_len(r[i][0]) for r in cells)]) for i, h in enumerate(header)]
    excess = sum(widths) + 2 * (len(widths) - 1) - con.width
    for i, cap in (caps or {}).items():
        if excess > 0 and widths[i] > cap:
            excess -= widths[i] - cap
            widths[i] = cap
    for i in shrink:
        if excess <= 0:
            break
        give = min(excess, max(widths[i] - 8, 0))
        widths[i] -= give
        excess -= give

    def line(parts: list[Cell]) -> Text:
        out = Text()
        for i, (text, style) in enumerate(parts):
            cut = _cut(text, widths[i])
            pad = " " * (widths[i] - cell_len(cut))
            out.append("  " if i else "")
            out.append(pad + cut if i in right else cut, style=style)
            if i not in right:
                out.append(pad)
        return out

    con.print(line([(h, "bold") for h in header]), no_wrap=True, overflow="ellipsis")
    for row in cells:
        con.print(line(row), no_wrap=True, overflow="ellipsis")


def render_deps(report: Report, *, color: bool = False, width: int = DEFAULT_WIDTH, verbose: int = 0) -> str:
    con, buf = _console(color, width)
    for target in report.targets:
        con.print(deps_tree(target.tree, bool(verbose)), no_wrap=True, overflow="ellipsis")
        for note in target.tree.search_notes if verbose else ():
            _wrap(con, f"  note: {note}", "dim")
    _print_skipped(con, report)
    return _finish(buf)


def deps_tree(tree: LoadTree, verbose: bool = False) -> Tree:
    from rich.tree import Tree

    root = tree.objects[0]
    top = Tree(_t(root.path, "bold"))
    nodes = {0: top}
    missing_by: dict[int, list[MissingLibrary]] = {}
    for m in tree.missing:
        missing_by.setdefault(m.needed_by, []).append(m)
    for obj in tree.objects[1:]:
        label = _t(obj.needed_name or obj.path, "bold")
        label.append_text(_t(f" [{_via(obj.found_via, obj.via_detail)}]", VIA_STYLE.get(obj.found_via, "")))
        label.append_text(_t(f" {obj.path}", "dim"))
        if obj.error:
            label.append_text(_t(f"  unreadable: {obj.error}", "red"))
        parent = nodes.get(obj.loader if obj.loader is not None else 0, top)
        nodes[obj.index] = parent.add(label)
        for a in obj.tried if verbose else ():
            nodes[obj.index].add(_t(f"skipped {a.path}: {a.outcome}", "dim"))
    for idx, items in missing_by.items():
        for m in items:
            branch = nodes.get(idx, top).add(_t(f"{m.needed_name} ", "bold red") + _t(m.reason, "red"))
            for a in m.tried[: None if verbose else 12]:
                branch.add(_t(f"{a.path}: {a.outcome}", "dim"))
            if not verbose and len(m.tried) > 12:
                branch.add(_t(f"... {len(m.tried) - 12} more (use -v)", "dim"))
    return top


def _via(via: FoundVia, detail: str) -> str:
    if via in (FoundVia.RPATH, FoundVia.RUNPATH) and detail.startswith("DT_"):
        owner = detail.split(" of ", 1)[1].split(" (", 1)[0]
        return f"{via} of {owner}"
    return via


def render_summary(report: Report, *, color: bool = False, width: int = DEFAULT_WIDTH, verbose: int = 0) -> str:
    con, buf = _console(color, width)
    for target in report.targets:
        _summary_one(con, target, verbose)
    _print_matrix(con, report, bool(verbose))
    _print_plan(con, report, bool(verbose))
    _print_skipped(con, report)
    return _finish(buf)


def _print_matrix(con: Console, report: Report, verbose: bool) -> None:
    from rich.table import Table

    if not report.matrix:
        return
    _wrap(con, "matrix (syscalls × targets; x = needed)", "bold")
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for col in ("tier", "syscall", "unikraft", *(f"#{i + 1}" for i in range(len(report.targets)))):
        table.add_column(col)
    rows = [m for m in report.matrix if verbose or (m.tier is not None and m.tier.actionable)]
    for m in rows[: None if verbose else 40]:
        table.add_row(
            _t(m.tier_label, TIER_STYLE.get(m.tier, "") if m.tier is not None else ""),
            _t(m.name),
            _t(m.status_label),
            *(_t("x" if need else "·") for need in m.needed_by),
        )
    con.print(table, no_wrap=True, overflow="ellipsis")
    for i, t in enumerate(report.targets):
        _wrap(con, f"  #{i + 1} = {t.target}", "dim")


def _print_plan(con: Console, report: Report, verbose: bool) -> None:
    if not report.plan:
        return
    _wrap(con, "plan (greedy, Loupe-style: finish the target that needs least, repeat)", "bold")
    for step in report.plan:
        actions = ", ".join(step.actions[: None if verbose else 12]) or "nothing new"
        more = f" (+{len(step.actions) - 12} more)" if not verbose and len(step.actions) > 12 else ""
        _wrap(con, f"  step {step.number}: {plural(len(step.actions), 'action')}: {actions}{more}", indent=10)
        _wrap(con, f"          -> fully supported: {', '.join(step.completes)}", "green")


def _summary_one(con: Console, t: TargetReport, verbose: int) -> None:
    _wrap(con, t.target, "bold underline")
    con.print(_facts(t), no_wrap=True, overflow="ellipsis")
    _provider_table(con, t)
    if verbose:
        _import_rows(con, t)
    _problems(con, t, bool(verbose))
    if t.syscalls is not None:
        _syscall_section(con, t.syscalls, verbose)
        _gap_section(con, t, bool(verbose))
        _observation_section(con, t, bool(verbose))
    _below_section(con, t, bool(verbose))
    _runtime_section(con, t)
    if t.syscalls is not None and t.syscalls.requests:
        reqs = ", ".join(f"{r.call}({r.name})" + (f"×{r.sites}" if r.sites > 1 else "") for r in t.syscalls.requests)
        _wrap(con, f"requests      {reqs}", indent=_LABEL)
    _native_section(con, t, bool(verbose))
    for w in t.warnings:
        _wrap(con, f"  warning: {w}", "yellow")
    con.print()


_LABEL = 14  # width of the section labels ("syscalls      "): continuation lines align after them


def _import_rows(con: Console, t: TargetReport) -> None:
    """``-v``: one row per import (symbol, version, provider)."""
    rows = [
        ((demangle(i.name), ""), (i.version or "-", ""), (i.provider or "(unresolved)", "" if i.provider else "red"))
        for i in t.imports
    ]
    if rows:
        _grid(con, ("import", "version", "provider"), rows, shrink=(0, 2))


def _facts(t: TargetReport) -> Table:
    from rich.table import Table

    e = t.elf
    facts = Table.grid(padding=(0, 2))
    facts.add_row(
        _t("object"),
        _t(
            f"ELF{e.elf_class} {e.machine} {e.elf_type}{' PIE' if e.pie else ''}"
            + ("" if e.machine_supported else "  (architecture not analysed)")
        ),
    )
    facts.add_row(_t("soname"), _t(e.soname or "-"))
    facts.add_row(_t("build-id"), _t(e.build_id or "-"))
    if e.interp:
        facts.add_row(_t("interpreter"), _t(e.interp))
    for label, value in (("rpath", e.rpath), ("runpath", e.runpath)):
        if value:
            facts.add_row(_t(label), _t(value))
    flags = [n for n, on in (("TEXTREL", e.textrel), ("exec-stack", e.exec_stack), ("static-TLS", e.static_tls)) if on]
    facts.add_row(_t("loader flags"), _t(", ".join(flags) or "none", "yellow" if flags else ""))
    facts.add_row(
        _t("symbols"),
        _t(
            f"{e.imports} imported, {e.exports} exported, {len(e.ifuncs)} IFUNC, "
            f"TLS {e.tls_memsz if e.tls_memsz is not None else 'none'}"
        ),
    )
    libs = len(t.tree.objects) - 1
    facts.add_row(
        _t("libraries"), _t(f"{libs} loaded, {len(t.tree.missing)} missing", "red" if t.tree.missing else "green")
    )
    facts.add_row(
        _t("imports"),
        _t(
            f"{len(t.imports)}: {len(t.imports) - len(t.unresolved) - len(t.unresolved_weak)} bound, "
            f"{len(t.unresolved)} unresolved, {len(t.unresolved_weak)} weak unresolved",
            "red" if t.unresolved else "",
        ),
    )
    return facts


def _problems(con: Console, t: TargetReport, verbose: bool) -> None:
    for m in t.tree.missing:
        _wrap(con, f"  missing {m.needed_name} (needed by {t.tree.objects[m.needed_by].path}): {m.reason}", "red")
    for p in t.version_problems:
        _wrap(con, f"  {p.reason}", "red")
    for sym in t.unresolved[: None if verbose else 20]:
        _wrap(con, f"  unresolved {demangle(sym.name)}" + (f"@{sym.version}" if sym.version else ""), "red")
    for r in t.route:
        style = "red" if r.severity is Severity.BLOCKER else "yellow"
        _wrap(con, f"binary-compat {r.severity}: {r.object}: {r.problem}", style)


def _below_section(con: Console, t: TargetReport, verbose: bool) -> None:
    b = t.below
    if b is None or not (b.pseudo_files or b.dlopen_targets):
        return
    _wrap(
        con,
        f"below syscall {plural(len(b.pseudo_files), 'pseudo-file')}, {plural(len(b.dlopen_targets), 'dlopen target')}",
        "bold",
    )
    if b.pseudo_files:
        _wrap(con, "  files: " + " ".join(b.pseudo_files[: None if verbose else 25]))
    if b.dlopen_targets:
        _wrap(con, "  dlopen: " + " ".join(d.name for d in b.dlopen_targets))


def _runtime_section(con: Console, t: TargetReport) -> None:
    loads = t.syscalls.runtime_loads if t.syscalls is not None else ()
    if not loads:
        return
    _wrap(con, f"loaded at run time: {len(loads)}", "bold")
    for x in loads:
        _wrap(con, f"  {x.via} {x.name} ({x.loader} -> {x.path}): {x.outcome()}", indent=4)


def _native_section(con: Console, t: TargetReport, verbose: bool) -> None:
    n = t.native
    if n is None:
        return
    _wrap(
        con,
        f"native route  lib-musl {n.libmusl_release} (musl {n.musl_version}): "
        f"{plural(n.count(NativeStatus.AVAILABLE), 'libc import')} available, {n.count(NativeStatus.AVAILABLE_AS)} "
        f"under their source names, {n.count(NativeStatus.FORTIFY)} fortify (__*_chk), "
        f"{n.count(NativeStatus.MISSING)} missing",
        "bold",
        indent=_LABEL,
    )
    missing = [g.name for g in n.symbols if g.status in (NativeStatus.MISSING, NativeStatus.FORTIFY)]
    if missing:
        more = " ..." if len(missing) > 30 and not verbose else ""
        _wrap(con, "  " + " ".join(missing[: None if verbose else 30]) + more, "yellow")


def _syscall_section(con: Console, s: SyscallReport, verbose: int) -> None:
    normal = [f for f in s.syscalls if not f.failure_only]
    failure = [f for f in s.syscalls if f.failure_only]
    kinds: dict[str, int] = {}
    for f in s.syscalls:
        for k in f.kinds:
            kinds[k.value] = kinds.get(k.value, 0) + 1
    scope = (
        "exports matching " + ", ".join(s.entries) + " + constructors + address-taken functions"
        if s.entries
        else "whole object"
    )
    _wrap(
        con,
        f"syscalls      {len(normal)} reachable + {len(failure)} only on failure paths "
        f"({scope}; libc model {s.libc_model}); start-up baseline {sum(not f.rare for f in s.baseline)} "
        f"(+ {sum(f.rare for f in s.baseline)} on rare paths)",
        "bold",
        indent=_LABEL,
    )
    _wrap(con, "  by evidence: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
    wrapped = sum(1 for x in s.sites if x.kind.is_wrapper_call)
    _wrap(
        con,
        f"  sites in the target: {len(s.sites) - wrapped} direct, {plural(wrapped, 'syscall() wrapper call')}, "
        f"{s.unknown_sites} with unknown number",
    )
    _wrap(con, "  " + " ".join(f.name for f in normal), "cyan")
    if failure:
        _wrap(con, "  failure paths only: " + " ".join(f.name for f in failure), "dim", indent=4)
    for f in s.syscalls if verbose else ():  # -vv: where each step is (the call or syscall site)
        steps = (_step(x) + (f" @ {x.detail}" if verbose > 1 and x.detail else "") for x in f.chain)
        _wrap(con, f"    {f.name}: " + " -> ".join(steps), "dim", indent=8)
        b = f.breadth
        if verbose > 1 and b is not None:
            narrowest = (
                f"; narrowest {demangle_versioned(b.narrowest)} (makes {plural(b.narrowest_size, 'syscall')})"
                if b.narrowest
                else ""
            )
            _wrap(
                con,
                f"      {plural(b.own_sites, 'own site')}, {plural(b.imports, 'import')} reaching it{narrowest}",
                "dim",
                indent=8,
            )
    for i in s.invalid:
        _wrap(con, f"  {i.message}", "yellow")
        if verbose:
            _wrap(con, "    " + " -> ".join(_step(x) for x in i.chain), "dim", indent=8)
    if verbose > 1:
        _site_rows(con, s)


def _site_rows(con: Console, s: SyscallReport) -> None:
    """``-vv``: every syscall site of the target: address, kind, number(s), confidence, function."""
    rows = [
        (
            (f"{x.address:#x}", ""),
            (x.kind.value, ""),
            (" ".join(x.names) or (x.reason or "unknown"), ""),
            (x.confidence.value, ""),
            (demangle(x.function) if x.function else "-", ""),
            (x.via or "-", ""),
        )
        for x in s.sites
    ]
    if rows:
        _grid(con, ("site", "kind", "syscalls", "confidence", "function", "via"), rows, shrink=(4, 5, 2))


def _gap_section(con: Console, t: TargetReport, verbose: bool) -> None:
    v = target_views(t)
    rows = len(v.rows)
    _wrap(
        con,
        f"unikraft      {plural(rows, 'syscall')}: " + ", ".join(f"{k} {n}" for k, n in v.status_counts),
        "bold",
        indent=_LABEL,
    )
    _wrap(con, f"  tiers       {_counts(v.tier_counts)} (all {plural(rows, 'row')})", indent=_LABEL)
    enable = sum(n for _, n in v.enable_tier_counts)
    if v.kconfig_groups:
        already = sum(1 for k in v.kconfig_groups if k.already_on)
        _wrap(
            con,
            f"  enable      {plural(len(v.kconfig_groups), 'option')} for {plural(enable, 'syscall')} "
            f"({_counts(v.enable_tier_counts)})"
            + (f"; {already} already on in the route's base configuration" if already else ""),
            indent=_LABEL,
        )
    for group in v.kconfig_groups:
        names = group.syscalls
        more = ", ..." if len(names) > 8 and not verbose else ""
        extra = []
        if group.already_on:
            extra.append("already on: keep it")
        if group.requires and group.requires != group.option.removeprefix("CONFIG_"):
            extra.append(f"requires {group.requires}")
        if group.drags_in:
            extra.append("drags in " + ", ".join(group.drags_in))
        if group.note:
            extra.append(group.note)
        _wrap(
            con,
            f"    {group.tier or '-'} {group.option}: {plural(len(names), 'syscall')} "
            f"({', '.join(names[: None if verbose else 8])}{more})" + (f" [{'; '.join(extra)}]" if extra else ""),
            indent=7,
        )
    for note in t.kconfig.alternatives if t.kconfig is not None else ():
        _wrap(con, f"    left out: {note}", "yellow", indent=7)
    top = v.top_actions
    acts = Counter(r.gap.action for r in top)
    _wrap(
        con,
        f"  work        {plural(len(top), 'row')} ({_counts(v.top_tier_counts)}): "
        + (", ".join(f"{_action_word(a)} {acts[a]}" for a in Action if acts.get(a)) or "none"),
        indent=_LABEL,
    )
    work = v.work if verbose else top
    shown = work[: None if verbose else 15]
    if shown:
        _gap_table(con, t, shown)
    if not verbose and len(work) > 15:
        _wrap(con, f"  ... {len(work) - 15} more (-v for all, --format json for everything)", "dim")
    if verbose:
        for row in shown:  # the reasons the table cut, in full
            reasons = [r for r in row.gap.reasons if not _observation_reason(r)]
            _wrap(con, f"  {row.gap.name}: " + "; ".join(reasons), "dim", indent=6)


def _gap_table(con: Console, t: TargetReport, rows: tuple[GapRow, ...]) -> None:
    """One line per gap whatever the width: identifiers whole, the reasons and then the Unikraft
    detail cut with an ellipsis to the room left."""
    observed = t.observation is not None
    header = ("tier", "syscall", "unikraft", "action", "L", *(("observed",) if observed else ()), "why")
    cells = []
    for row in rows:
        g = row.gap
        seen = (("yes", "green") if g.observed else ("no", "dim"),) if observed else ()
        why = "; ".join(r for r in _short_reasons(g) if not _observation_reason(r))
        cells.append(
            (
                (g.tier.value, TIER_STYLE[g.tier]),
                (g.name, ""),
                (f"{g.status}: {g.detail}", ""),
                (g.action_label, ""),
                (f"{g.likelihood:.2f}", ""),
                *seen,
                (why, ""),
            )
        )
    _grid(con, header, cells, shrink=(len(header) - 1, 2), caps={2: 28})


def _observation_reason(reason: str) -> bool:
    """The observed / not observed reason, which the gap table shows as its own column."""
    return reason == "observed in the traced run" or reason.startswith("not observed in the traced run")


def _observation_section(con: Console, t: TargetReport, verbose: bool) -> None:
    """``--observed``: what the traces showed for this target, and how it ranked the gaps."""
    o, s = t.observation, t.syscalls
    if o is None or s is None:
        return
    seen = [f for f in s.syscalls if f.observed]
    unseen = [f for f in s.syscalls if f.observed is False]
    base = sum(1 for f in s.baseline if f.observed)
    gaps = [g for g in t.gaps if g.observed is not None]
    p0 = sum(1 for g in gaps if g.tier.rank == 0)
    traces = ", ".join(x.rsplit("/", 1)[-1] for x in o.traces)
    _wrap(
        con,
        f"observed      {traces}: scope {o.scope}, {plural(len(o.syscalls), 'syscall')} counted for the target",
        "bold",
        indent=_LABEL,
    )
    _wrap(con, f"  {o.rule}", "dim")
    _wrap(
        con,
        f"  reachable: {len(seen)} observed, {len(unseen)} not observed; start-up baseline: {base} of "
        f"{len(s.baseline)} observed; gaps: {sum(1 for g in gaps if g.observed)} observed, "
        f"{sum(1 for g in gaps if not g.observed)} not observed, P0 {p0}",
    )
    if o.unreached:
        _wrap(con, "  observed, not in the static answer: " + " ".join(o.unreached), "yellow")
    if o.unknown:
        _wrap(con, "  not syscalls of this architecture: " + " ".join(o.unknown), "dim")
    if verbose:
        _wrap(con, "  observed: " + " ".join(f.name for f in seen), "green")
        _wrap(con, "  not observed: " + " ".join(f.name for f in unseen), "dim")


def _counts(pairs: tuple[tuple[Tier, int], ...]) -> str:
    return ", ".join(f"{k} {n}" for k, n in pairs)


def _action_word(a: Action) -> str:
    return {Action.KEEP: "keep (check the stub)", Action.NONE: "none"}.get(a, a.value)


_DETAIL_PREFIXES = (
    "evidence: ",
    "Loupe: used by",
    "no Loupe data",
    "likelihood ",
    "needed via ",
    "on the start-up path",
    "start-up baseline, rare part only",
    "reached only on failure paths",
    "Unikraft stub: ",
)


def _short_reasons(g: Gap) -> list[str]:
    """The reasons that decided the action and tier, without the signal details (``-v`` and JSON
    carry every reason)."""
    head = f"{g.evidence}" + ("" if g.path is ReachPath.NORMAL else f", {g.path}")
    return [head, *(_short_reason(r) for r in g.reasons if not r.startswith(_DETAIL_PREFIXES) and r != g.detail)]


def _short_reason(reason: str) -> str:
    return reason.split(" (glibc ", 1)[0].split(" (libgomp ", 1)[0].split(" (libuv ", 1)[0].split(" (libstdc++ ", 1)[0]


def _step(step: EvidenceStep) -> str:
    where = f" [{step.library}]" if step.kind.names_library else ""
    return f"{step.kind}:{demangle_versioned(step.symbol)}{where}"


def _provider_table(con: Console, t: TargetReport) -> None:
    counts: dict[str, dict[str, int]] = {}
    for imp in t.imports:
        prov = imp.provider or "(unresolved)"
        versions = counts.setdefault(prov, {})
        versions[imp.version or "-"] = versions.get(imp.version or "-", 0) + 1
    rows = [
        ((prov, ""), (str(sum(versions.values())), ""), (", ".join(_newest(versions)), ""))
        for prov, versions in sorted(counts.items(), key=lambda kv: -sum(kv[1].values()))
    ]
    if rows:
        _grid(con, ("provider", "imports", "newest versions"), rows, shrink=(2, 0), right=(1,))


def _newest(versions: dict[str, int]) -> list[str]:
    return sorted((v for v in versions if v != "-"), key=_version_key)[-3:]


def _version_key(v: str) -> tuple[str, tuple[int, ...]]:
    name, _, num = v.partition("_")
    return (name, tuple(int(x) if x.isdecimal() else 0 for x in num.split(".")))


def _print_skipped(con: Console, report: Report) -> None:
    for s in report.skipped:
        _wrap(con, f"skipped {s.path}: {s.reason}", "yellow")


def render_explain(
    answers: tuple[ExplainAnswer, ...], query: str, *, color: bool = False, width: int = DEFAULT_WIDTH
) -> str:
    """Evidence chains for a syscall name/number or an imported symbol, per target
    (:func:`uk_depscan.report.views.explain`)."""
    con, buf = _console(color, width)
    for a in answers:
        if not a.analysed:
            _wrap(con, f"{a.target}: no syscall analysis (architecture not analysed)", "yellow")
            continue
        _wrap(con, a.target, "bold underline")
        if a.kind is QueryKind.LOADED:
            _wrap(con, f"  {a.kind}: {a.symbol} ({a.provider}): adds {plural(len(a.reaches), 'syscall')}", "bold")
            if a.reaches:
                _wrap(con, "  " + " ".join(a.reaches), "cyan")
            if a.hits:
                _wrap(con, "  chains that start with its load:")
        elif a.kind is not QueryKind.SYSCALL:
            via = f", bound to {a.provider}" if a.provider else (", unbound" if a.kind is QueryKind.IMPORT else "")
            _wrap(
                con,
                f"  {a.kind} {demangle_versioned(a.symbol)}{via}: reaches {plural(len(a.reaches), 'syscall')}",
                "bold",
            )
            if a.reaches:
                _wrap(con, "  " + " ".join(a.reaches), "cyan")
            if a.hits:
                _wrap(con, "  shortest chains that pass through it:")
        elif not a.hits:
            _wrap(con, f"  {query}: not reachable from this target (nor in the start-up baseline)", "green")
        for hit in a.hits:
            f, gap = hit.finding, hit.gap
            status = f"  [unikraft: {gap.status} {gap.detail}, {gap.tier} {gap.action_label}]" if gap else ""
            failure = " — only on failure paths" if f.failure_only else ""
            _wrap(con, f"  {f.name} ({f.number}) {hit.scope}{failure}{status}", "bold")
            for i, step in enumerate(f.chain):
                indent = f"    {'  ' * i}{'└─ ' if i else ''}"
                _wrap(con, indent + _step(step) + (f" @ {step.detail}" if step.detail else ""))
    return _finish(buf)
