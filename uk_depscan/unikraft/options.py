"""A satisfiable set of Kconfig options for a plan, from the closures the tables ship.

The tables (generator 2, ``kconfig`` section) carry, per syscall-providing option and per provider
requirement, the closure kconfiglib verified over each route's base configuration: what must be
``y``, what must stay ``n`` (``!X`` in a dependency) and what else it turns on.  Two options whose
closures disagree cannot both be enabled - e.g. ``LIBUKMMAP`` ``depends on !LIBPOSIX_MMAP`` - so
:func:`resolve_options` keeps the option that gives the wanted syscalls the better implementation,
records the alternative it rejected and what that costs, and substitutes, for each syscall the
rejected option was wanted for, another provider compatible with the set when one exists.

Option names are canonicalised through the table's ``option_renames`` first, so a plan written
against an older release's names resolves on a newer table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from uk_depscan.unikraft.tables import ROUTE_BINARY, ROUTE_NATIVE, Closure, Provider, UnikraftTable

# How much a provider's behaviour is worth when two options compete (a real implementation
# beats a constant, which beats partial paths, which beat stubs; stubs that fake success beat
# stubs that fail, since callers usually ignore success).
_BEHAVIOUR_WEIGHT = {
    "real": 8,
    "constant": 6,
    "real_partial": 4,
    "fake_success": 2,
    "error_other": 1,
    "error_enosys": 0,
    "unknown": 0,
}


@dataclass(frozen=True)
class EnabledOption:
    """One option of the plan, why it is there and what it brings."""

    option: str
    requires: str  # the Kconfig requirement resolved (the option, or the provider's ``X && Y``)
    syscalls: tuple[str, ...]  # wanted syscalls it enables
    requested: bool  # asked for (False: a substitute chosen by the resolver)
    closure_y: tuple[str, ...]
    keep_off: tuple[str, ...]
    drags_in: Mapping[str, str]
    turns_off: tuple[str, ...]
    already_on: bool  # on in the route's base configuration
    verified: bool


@dataclass(frozen=True)
class Alternative:
    """An option left out because it excludes an option that was kept."""

    option: str  # the rejected option
    conflicts_with: tuple[str, ...]  # kept options its closure excludes (or that exclude it)
    syscalls: tuple[str, ...]  # syscalls it was wanted for
    covered_by: Mapping[str, str]  # syscall -> option of the plan that provides it instead
    lost: tuple[str, ...]  # syscalls no option of the plan provides
    note: str


@dataclass(frozen=True)
class OptionPlan:
    route: str
    enable: tuple[str, ...]  # every option to set y (requested + closures), sorted
    keep_off: tuple[str, ...]  # options that must stay n
    options: tuple[EnabledOption, ...]
    alternatives: tuple[Alternative, ...]
    renamed: Mapping[str, tuple[str, ...]]  # requested name -> this release's name(s)
    unknown: tuple[str, ...]  # requested options the table has no closure for
    verified: bool  # every closure in the plan was verified by kconfiglib


def _closure(table: UnikraftTable, key: str, route: str) -> Closure | None:
    """Closure of an option (``CONFIG_X``) or of a provider requirement (``X && Y``) in ``route``."""
    if table.kconfig is None:
        return None
    facts = table.kconfig.options.get(key)
    if facts is not None and route in facts.closure:
        return facts.closure[route]
    req = table.kconfig.requirements.get(key.removeprefix("CONFIG_") if facts is not None else key)
    return req.get(route) if req is not None else None


def _provider_weight(p: Provider) -> int:
    return _BEHAVIOUR_WEIGHT.get(p.behavior, 0)


def option_syscalls(table: UnikraftTable, option: str, route: str) -> dict[str, int]:
    """Syscalls an option registers in ``route`` and the weight of each provider's behaviour."""
    out: dict[str, int] = {}
    for name, s in table.syscalls.items():
        for p in s.providers:
            if p.kconfig == option and route in p.routes and p.verified:
                out[name] = max(out.get(name, 0), _provider_weight(p))
    return out


def _compatible(y: set[str], n: set[str], c: Closure) -> list[str]:
    """Options of the plan ``c`` clashes with (empty: compatible)."""
    return sorted((set(c.y) & n) | (set(c.n) & y))


def resolve_options(
    table: UnikraftTable,
    wanted: Mapping[str, Iterable[str]] | Iterable[str],
    route: str = ROUTE_NATIVE,
) -> OptionPlan:
    """A satisfiable option set for ``wanted`` (options, or options -> the syscalls wanted from each).

    Greedy, highest value first: an option's value is the summed behaviour weight of the wanted
    syscalls it provides (all it provides when no syscalls are given).  An option whose closure
    clashes with what is already kept is rejected; for each syscall it was wanted for, the
    resolver looks for another provider whose requirement is compatible and adds it as a
    substitute, otherwise the syscall is reported lost with the alternative.
    """
    items = dict(wanted) if isinstance(wanted, Mapping) else dict.fromkeys(wanted, ())
    renamed: dict[str, tuple[str, ...]] = {}
    units: dict[str, tuple[str, set[str]]] = {}  # key -> (option, syscalls)
    for opt, sys in items.items():
        full = opt if opt.startswith("CONFIG_") else "CONFIG_" + opt
        canon = table.canonical_option(full)
        if canon != (full,):
            renamed[full] = canon
        for c in canon:
            units.setdefault(c, (c, set()))[1].update(sys)
    return _resolve(table, units, route, renamed)


def _resolve(
    table: UnikraftTable, units: Mapping[str, tuple[str, set[str]]], route: str, renamed: Mapping[str, tuple[str, ...]]
) -> OptionPlan:
    if route not in (ROUTE_BINARY, ROUTE_NATIVE):
        raise ValueError(f"unknown route {route!r}")
    values = {}
    for key, (opt, sys) in units.items():
        provided = option_syscalls(table, opt, route)
        if not sys:
            sys.update(provided)
        values[key] = sum(provided.get(s, 0) for s in sys)
    y: set[str] = set()
    n: set[str] = set()
    kept: list[EnabledOption] = []
    alts: list[Alternative] = []
    unknown: list[str] = []
    for key in sorted(units, key=lambda k: (-values[k], k)):
        opt, sys = units[key]
        c = _closure(table, key, route)
        if c is None:
            unknown.append(key)
            continue
        if not c.verified:  # kconfiglib could not make it y in this route (e.g. a base library selects a conflict)
            alts.append(_unbuildable(table, opt, c, sys, kept, route))
            _substitutes(table, sys, route, y, n, kept)
            continue
        clash = _compatible(y, n, c)
        if not clash:
            y |= set(c.y)
            n |= set(c.n)
            kept.append(_enabled(table, opt, key, sorted(sys), True, c, route))
            continue
        alts.append(_reject(table, opt, c, sys, kept, y, n, route, clash))
        _substitutes(table, sys, route, y, n, kept)
    return OptionPlan(
        route,
        tuple(sorted(y)),
        tuple(sorted(n)),
        tuple(kept),
        tuple(alts),
        MappingProxyType(dict(renamed)),
        tuple(sorted(unknown)),
        all(o.verified for o in kept),
    )


def _enabled(
    table: UnikraftTable, opt: str, key: str, syscalls: Sequence[str], requested: bool, c: Closure, route: str
) -> EnabledOption:
    base = table.kconfig.routes.get(route) if table.kconfig is not None else None
    return EnabledOption(
        opt,
        key if key != opt else opt.removeprefix("CONFIG_"),
        tuple(syscalls),
        requested,
        c.y,
        c.n,
        c.drags_in,
        c.turns_off,
        base is not None and opt in base.base_y,
        c.verified,
    )


def _provider_of(table: UnikraftTable, syscall: str, kept: Sequence[EnabledOption], route: str) -> str | None:
    s = table.get(syscall)
    if s is None:
        return None
    opts = {o.option for o in kept}
    for p in s.providers:
        if route in p.routes and p.verified and p.kconfig in opts:
            return p.kconfig
    return None


def _reject(
    table: UnikraftTable,
    opt: str,
    c: Closure,
    syscalls: set[str],
    kept: list[EnabledOption],
    y: set[str],
    n: set[str],
    route: str,
    clash: Sequence[str],
) -> Alternative:
    against = sorted({o.option for o in kept if set(o.closure_y) & set(clash) or set(o.keep_off) & set(c.y)})
    covered = {s: p for s in sorted(syscalls) if (p := _provider_of(table, s, kept, route)) is not None}
    lost = tuple(sorted(set(syscalls) - set(covered)))
    note = (
        f"{opt} cannot be enabled together with {', '.join(against) or ', '.join(clash)} "
        f"({'it requires ' + ', '.join(sorted(set(c.n) & y)) + ' to stay n' if set(c.n) & y else ''}"
        f"{'; ' if set(c.n) & y and set(c.y) & n else ''}"
        f"{'it needs ' + ', '.join(sorted(set(c.y) & n)) + ' which the plan keeps n' if set(c.y) & n else ''}); "
        f"kept the option with the better implementation of the wanted syscalls"
        + (f"; lost: {', '.join(lost)}" if lost else "")
        + f"; the alternative is {opt} instead of {', '.join(against) or 'them'}"
    )
    return Alternative(opt, tuple(against), tuple(sorted(syscalls)), MappingProxyType(covered), lost, note)


def _unbuildable(
    table: UnikraftTable, opt: str, c: Closure, syscalls: set[str], kept: list[EnabledOption], route: str
) -> Alternative:
    covered = {s: p for s in sorted(syscalls) if (p := _provider_of(table, s, kept, route)) is not None}
    lost = tuple(sorted(set(syscalls) - set(covered)))
    why = "; ".join(c.warnings) or "its closure is not satisfiable"
    return Alternative(
        opt,
        (),
        tuple(sorted(syscalls)),
        MappingProxyType(covered),
        lost,
        f"{opt} cannot be enabled in the {route} route: {why}",
    )


def _substitutes(
    table: UnikraftTable, syscalls: Iterable[str], route: str, y: set[str], n: set[str], kept: list[EnabledOption]
) -> None:
    """Other providers of a rejected option's syscalls that fit the plan (added to ``kept``, ``y``, ``n``)."""
    have = {o.option for o in kept}
    for name in sorted(syscalls):
        s = table.get(name)
        if s is None or _provider_of(table, name, kept, route) is not None:
            continue
        cands = sorted(
            (p for p in s.providers if route in p.routes and p.verified and p.kconfig and p.kconfig not in have),
            key=lambda p: -_provider_weight(p),
        )
        for p in cands:
            assert p.kconfig is not None
            key = p.requires or p.kconfig
            c = _closure(table, key, route) or _closure(table, p.kconfig, route)
            if c is None or not c.verified or _compatible(y, n, c):
                continue
            y |= set(c.y)
            n |= set(c.n)
            have.add(p.kconfig)
            kept.append(_enabled(table, p.kconfig, key, [name], False, c, route))
            break


def options_for_syscalls(table: UnikraftTable, syscalls: Iterable[str], route: str = ROUTE_NATIVE) -> OptionPlan:
    """The options a route needs for these syscalls, resolved to a satisfiable set.

    Each syscall is enabled by its best provider in that route; the unit resolved is that
    provider's full requirement (``LIBPOSIX_FUTEX && LIBPOSIX_PROCESS_CLONE`` for set_tid_address),
    so extra conditions recorded in the tables are part of the plan.  Rows that are absent or only
    ``unverified`` in the route need no option and are skipped.
    """
    view = table.for_route(route)
    units: dict[str, tuple[str, set[str]]] = {}
    for name in syscalls:
        s = view.get(name)
        r = s.routes.get(route) if s is not None else None
        kconfig = r.kconfig if r is not None else (s.kconfig if s is not None else None)
        if s is None or s.status in ("absent", "unverified") or not kconfig:
            continue
        req = r.requires if r is not None and r.requires else kconfig
        key = kconfig if req == kconfig.removeprefix("CONFIG_") else req
        units.setdefault(key, (kconfig, set()))[1].add(s.name)
    return _resolve(table, units, route, {})
