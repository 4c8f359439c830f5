"""Kconfig dependency closure of the requested options: the one place the artifacts ask for it.

Today's shipped tables record, per provider, the option that registers a syscall and its
``depends on`` line, but not a resolved closure (what each option drags in through ``depends on``
and ``select``, and which options exclude each other).  Until the tables carry one (generator 2's
``kconfig`` section, issue 15), :func:`resolve_kconfig` returns the requested options as they are,
**marked as not closed**, and every artifact prints that statement: a fragment of recommended
options may leave some of them ``n`` when applied (``CONFIG_LIBPOSIX_MMAP`` needs
``CONFIG_LIBUKVMEM``; ``CONFIG_LIBUKMMAP`` and ``CONFIG_LIBPOSIX_MMAP`` exclude each other).

When closure data lands, only this function changes: it maps the table's resolution into
:class:`KconfigResolution` (extra options with the reason they are needed, options that must stay
off, rejected alternatives as notes) and sets ``closed``.
"""

from __future__ import annotations

from dataclasses import dataclass

from uk_depscan.artifacts.plan import OptionRequest, Route
from uk_depscan.unikraft.tables import UnikraftTable

NOT_CLOSED = "no closure data in this table: options listed as recommended, not closed"


@dataclass(frozen=True)
class ResolvedOption:
    option: str  # CONFIG_X
    value: str  # "y" (or "n": must stay off)
    uses: tuple[tuple[str, tuple[str, ...]], ...]  # (role, syscalls) - empty when only dragged in
    reason: str  # "requested" | "needed by CONFIG_Y (select)" | …

    @property
    def syscalls(self) -> tuple[str, ...]:
        return tuple(sorted({s for _, names in self.uses for s in names}))


@dataclass(frozen=True)
class KconfigResolution:
    options: tuple[ResolvedOption, ...]
    closed: bool
    statement: str  # printed in every artifact
    notes: tuple[str, ...] = ()


def resolve_kconfig(table: UnikraftTable, requests: tuple[OptionRequest, ...], route: Route) -> KconfigResolution:
    """The options to set for ``requests`` in ``route``, closed over their dependencies when the table allows."""
    del route  # used once the tables carry per-route closures
    options = tuple(ResolvedOption(r.option, "y", _by_role(r), "requested") for r in requests)
    return KconfigResolution(options, False, f"Unikraft {table.release}: {NOT_CLOSED}")


def _by_role(r: OptionRequest) -> tuple[tuple[str, tuple[str, ...]], ...]:
    roles: dict[str, set[str]] = {}
    for u in r.uses:
        roles.setdefault(u.role, set()).add(u.syscall)
    return tuple((role, tuple(sorted(names))) for role, names in sorted(roles.items()))
