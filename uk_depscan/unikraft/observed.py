"""Observation as an input of the priority model (``--observed``): the strongest evidence there is.

Separate from :mod:`uk_depscan.unikraft.gaps` so that the priority model calls it as one signal, and
so that nothing uses it unless traces were given (the scoring bench never passes any).  Given a gap
already assessed from the static evidence and Loupe's priors, and whether a traced run made that
syscall (in the target's code, or at start-up for a start-up gap):

* **observed**, and the action is implement or enable → **P0**, whatever Loupe says or whether the
  static analysis found it only on failure paths: the application really makes it;
* **not observed**, and the gap was P0 → **P1**: a trace is a lower bound of one run, so an
  unobserved gap is ranked below the observed ones, never dropped (traced-workloads.md);
* otherwise the tier stays (stub/fake work stays P2, nothing-to-do stays P3), with the observation
  in the reasons.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from uk_depscan.model import Action, Gap, Tier

OBSERVED = "observed in the traced run"
NOT_OBSERVED = "not observed in the traced run (a trace is a lower bound)"
OBSERVED_ONLY = "observed in the traced run but not in the static answer"


def observed_tier(gap: Gap, observed: bool) -> Gap:
    """The gap re-tiered with observation as the strongest evidence (module docstring)."""
    tier = gap.tier
    if observed and gap.action in (Action.IMPLEMENT, Action.ENABLE):
        tier = Tier.P0
    elif not observed and gap.tier is Tier.P0:
        tier = Tier.P1
    reason = OBSERVED if observed else NOT_OBSERVED
    # a traced run that made the syscall is certainty, whatever the static signals estimated
    likelihood = 1.0 if observed else gap.likelihood
    return dataclasses.replace(gap, tier=tier, observed=observed, likelihood=likelihood, reasons=(*gap.reasons, reason))


def apply_observation(
    gaps: Iterable[Gap], observed: frozenset[str], unreached: frozenset[str] = frozenset()
) -> tuple[Gap, ...]:
    """Every gap through :func:`observed_tier`, in the gap order (tier, likelihood, status, name); a gap of a
    syscall only the trace shows says so."""
    out = []
    for g in gaps:
        g = observed_tier(g, g.name in observed)
        if g.name in unreached:
            g = dataclasses.replace(g, reasons=(*g.reasons, OBSERVED_ONLY))
        out.append(g)
    return tuple(sorted(out, key=lambda g: (g.tier.rank, -g.likelihood, g.status.rank, g.name)))
