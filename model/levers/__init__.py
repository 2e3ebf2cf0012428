"""Policy levers (sources §5): funding, cooperation programmes, application centres.

Each lever is a real mechanism with a budget or capacity, acting on firms through a small
hook (`Lever.act`, called once a year before the capabilities change). A lever whose size
parameter is 0 is not built at all, so "off" is exactly the model without it.
"""

from __future__ import annotations

import numpy as np

from mittelbau.levers.base import Lever, LeverYear, in_target
from mittelbau.levers.centres import ApplicationCentres
from mittelbau.levers.cooperation import Cooperation
from mittelbau.levers.funding import Funding

LEVER_NAMES = ("funding", "cooperation", "application_centres")

# The parameter whose value 0 means "no such programme", per lever.
SWITCH = {
    "funding": "funding_budget_eur",
    "cooperation": "coop_projects_per_year",
    "application_centres": "centres_number",
}


def enabled(params) -> list[str]:
    """Names of the levers a parameter set switches on."""
    return [name for name in LEVER_NAMES if getattr(params, SWITCH[name]) > 0]


def without_levers(params, keep: tuple[str, ...] = ()):
    """The same parameters with every lever but `keep` switched off."""
    return params.with_overrides({SWITCH[n]: 0 for n in LEVER_NAMES if n not in keep})


def build_levers(params, n: int, rng: np.random.Generator) -> list[Lever]:
    levers: list[Lever] = []
    on = enabled(params)
    if "funding" in on:
        levers.append(Funding(n=n, p=params))
    if "cooperation" in on:
        levers.append(Cooperation(n=n, p=params))
    if "application_centres" in on:
        levers.append(ApplicationCentres(n=n, p=params, rng=rng))
    return levers


def planned_public_cost(params, years: int | None = None) -> float:
    """Public money the scenario plans over the simulated years (start 2016): funding budget,
    cooperation projects and centres' running costs in their active years."""
    from mittelbau.core.categories import START_YEAR

    horizon = range(START_YEAR + 1, START_YEAR + 1 + (params.years if years is None else years))

    def active_years(start: int, end: int) -> int:
        return sum(1 for y in horizon if start <= y <= end)

    p = params
    funding = p.funding_budget_eur * active_years(p.funding_start_year, p.funding_end_year)
    coop = (
        p.coop_projects_per_year
        * p.coop_cost_per_project_eur
        * active_years(p.coop_start_year, p.coop_end_year)
    )
    centres = (
        p.centres_number * p.centre_running_cost_eur * active_years(p.centres_start_year, p.centres_end_year)
    )
    return float(funding + coop + centres)


__all__ = [
    "LEVER_NAMES",
    "Lever",
    "LeverYear",
    "build_levers",
    "enabled",
    "in_target",
    "planned_public_cost",
    "without_levers",
]
