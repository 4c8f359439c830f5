"""Kconfig dependency closure of the requested options: the one place the artifacts ask for it.

Tables of generator 2 carry a ``kconfig`` section: per option and route, the closure kconfiglib
verified over that route's base configuration (app-elfloader with lib-musl for binary-compat, lib-musl
for native) — what must be ``y``, what must stay ``n``, what it turns on and off.
:func:`resolve_kconfig` hands the requests to :func:`uk_depscan.unikraft.options.resolve_options`, which
keeps a satisfiable set (``CONFIG_LIBUKMMAP`` ``depends on !LIBPOSIX_MMAP``: the better implementation
wins, the other becomes a stated alternative) and closes it; this module only maps that answer to the
lines the artifacts print.  A table without that section (one generated without kconfiglib) gives the
requested options as they are, **marked as not closed**, and every artifact prints the statement.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from uk_depscan.artifacts.plan import OptionRequest
from uk_depscan.model import Route
from uk_depscan.unikraft.options import OptionPlan, resolve_options
from uk_depscan.unikraft.tables import UnikraftTable

NOT_CLOSED = "no closure data in this table: options listed as recommended, not closed"


@dataclass(frozen=True)
class ResolvedOption:
    option: str  # CONFIG_X
    value: str  # "y", or "n": must stay off
    uses: tuple[tuple[str, tuple[str, ...]], ...]  # (role, syscalls) - empty when only needed by others
    reason: str  # "requested" | "needed by CONFIG_Y" | "must stay n for CONFIG_Y" | …
    unverified: tuple[str, ...] = ()  # notes on providers of another release (OptionRequest.unverified)

    @property
    def syscalls(self) -> tuple[str, ...]:
        return tuple(sorted({s for _, names in self.uses for s in names}))


@dataclass(frozen=True)
class KconfigResolution:
    options: tuple[ResolvedOption, ...]
    closed: bool
    statement: str  # printed in every artifact
    notes: tuple[str, ...] = ()

    @property
    def enabled(self) -> frozenset[str]:
        return frozenset(o.option for o in self.options if o.value == "y")


def resolve_kconfig(table: UnikraftTable, requests: tuple[OptionRequest, ...], route: Route) -> KconfigResolution:
    """The options to set for ``requests`` in ``route``, closed over their dependencies when the table allows."""
    if table.kconfig is None or not requests:
        options = tuple(ResolvedOption(r.option, "y", _by_role(r), "requested", r.unverified) for r in requests)
        statement = f"Unikraft {table.release}: {NOT_CLOSED}" if requests else "nothing to resolve"
        return KconfigResolution(options, not requests, statement)
    plan = resolve_options(table, {r.option: r.syscalls for r in requests}, route.value)
    return _from_plan(table, plan, {r.option: r for r in requests}, route)


def _from_plan(
    table: UnikraftTable, plan: OptionPlan, requests: Mapping[str, OptionRequest], route: Route
) -> KconfigResolution:
    out: list[ResolvedOption] = []
    kept = {o.option for o in plan.options}
    for o in plan.options:
        req = requests.get(o.option)
        uses = _by_role(req) if req else (("substitute provider", o.syscalls),)
        reason = "requested" if o.requested else "substitute for a rejected option"
        extra = [f"turns on {k} ({v})" for k, v in sorted(o.drags_in.items())]
        extra += [f"turns off {k}" for k in o.turns_off]
        if o.already_on:
            extra.insert(0, f"already on in the {route.value} route's base configuration")
        unv = req.unverified if req else ()
        out.append(ResolvedOption(o.option, "y", uses, "; ".join([reason, *extra]), unv))
    for opt in plan.enable:
        if opt not in kept:
            by = sorted(o.option for o in plan.options if opt in o.closure_y)
            out.append(ResolvedOption(opt, "y", (), f"needed by {', '.join(by)} (Kconfig dependency)"))
    for opt in plan.keep_off:
        by = sorted(o.option for o in plan.options if opt in o.keep_off)
        out.append(ResolvedOption(opt, "n", (), f"must stay n for {', '.join(by)} (a !{opt[7:]} dependency)"))
    unknown = [o for o in plan.unknown if o not in kept]
    for opt in unknown:
        req = requests.get(opt)
        out.append(
            ResolvedOption(
                opt,
                "y",
                _by_role(req) if req else (),
                "requested; no closure data for it",
                req.unverified if req else (),
            )
        )
    notes = [a.note for a in plan.alternatives]
    notes += [f"{old} is {', '.join(new)} in Unikraft {table.release}" for old, new in sorted(plan.renamed.items())]
    closed = plan.verified and not unknown
    ev = table.kconfig.evaluator if table.kconfig else "?"
    base = table.kconfig.routes.get(route.value) if table.kconfig else None
    over = f"{base.app or 'no application'} with {', '.join(base.libraries) or 'no library'}" if base else "?"
    statement = (
        f"closed over Kconfig dependencies ({ev} closures in the Unikraft {table.release} table, {route.value} "
        f"route base: {over})"
        if closed
        else f"Unikraft {table.release}: not closed for {', '.join(unknown) or 'options kconfiglib could not verify'}"
    )
    order = {"y": 0, "n": 1}
    ranked = sorted(out, key=lambda r: (order[r.value], not r.uses, r.option))
    return KconfigResolution(tuple(ranked), closed, statement, tuple(notes))


def _by_role(r: OptionRequest) -> tuple[tuple[str, tuple[str, ...]], ...]:
    roles: dict[str, set[str]] = {}
    for u in r.uses:
        roles.setdefault(u.role, set()).add(u.syscall)
    return tuple((role, tuple(sorted(names))) for role, names in sorted(roles.items()))


def active_options(table: UnikraftTable, resolution: KconfigResolution, route: Route) -> dict[str, str]:
    """Options (``CONFIG_X``) on in the build the artifacts describe, and why: the route's base
    configuration (from the table) and the resolved plan.  A syscall one of them registers is that
    library's to provide; a generated override of it could never be built."""
    active: dict[str, str] = {}
    base = table.kconfig.routes.get(route.value) if table.kconfig else None
    if base is not None:
        who = base.app or "the route's libraries"
        for opt in sorted(base.base_y):
            active[opt] = f"on in the {route.value} route's base configuration ({who})"
    for opt in sorted(resolution.enabled):
        active.setdefault(opt, "enabled by the Kconfig plan (uk-depscan kconfig)")
    return active
