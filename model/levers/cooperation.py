"""Cooperation programme (sources §5.2): joint projects of a few SMEs with one partner from
the digital economy or research."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mittelbau.core.categories import ENGAGEMENT_LEVELS
from mittelbau.levers.base import Lever, LeverYear, agents_for, first_in_random_order, in_target


@dataclass
class Cooperation(Lever):
    """Each year `coop_projects_per_year` projects form from applying target firms (application
    probability `coop_application_rate` × (1 + engagement)/2), `coop_firms_per_project` each, in
    random order. Members are tied to each other in the network, their engagement moves out to
    'partners' (digital-economy partner) or 'experts' (research partner), and their DT and BM
    hazards are multiplied by `coop_hazard_factor` while the project runs. Afterwards, for
    `coop_spillover_years`, their network partners' hazards rise by `coop_spillover` × the
    participants' gain. Cost: `coop_cost_per_project_eur` per project, booked in the year it
    starts (commitment), so a year's spending is its new projects times their cost. An agent
    stands for `population_scale` firms, so a project of agents stands for that many
    projects: `coop_projects_per_year` / scale of them start (rounded at random) and each
    costs scale × the cost of a project."""

    p: object = None
    name: str = "cooperation"
    years_left: np.ndarray = field(init=False)
    spill_left: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.years_left = np.zeros(self.n, dtype=np.int64)
        self.spill_left = np.zeros(self.n, dtype=np.int64)

    def act(self, model, year: int, rng: np.random.Generator) -> LeverYear:
        p, s, scale = self.p, model.state, model.population_scale
        finished = self.years_left == 1
        self.years_left = np.maximum(self.years_left - 1, 0)
        self.spill_left = np.maximum(self.spill_left - 1, 0)
        self.spill_left[finished] = p.coop_spillover_years
        projects: list[np.ndarray] = []
        if not p.coop_start_year <= year <= p.coop_end_year:
            self.years_left[:] = 0
        else:
            eligible = in_target(p.coop_target, s) & (self.years_left == 0)
            prob = np.minimum(1.0, p.coop_application_rate * (1 + s.engagement) / 2)
            applicants = eligible & (rng.random(self.n) < prob)
            k = p.coop_firms_per_project
            wanted = agents_for(p.coop_projects_per_year, scale, rng)
            members = first_in_random_order(applicants, wanted * k, rng)
            members = members[: len(members) // k * k]  # only complete projects start
            projects = list(members.reshape(-1, k))
            duration = min(p.coop_duration, p.coop_end_year - year + 1)
            level = ENGAGEMENT_LEVELS.index("partners" if p.coop_partner == "digital" else "experts")
            for group in projects:
                self.years_left[group] = duration
                s.engagement[group] = np.maximum(s.engagement[group], level)
            model.add_ties(projects)
        reached = self.years_left > 0
        gain = p.coop_hazard_factor - 1.0
        spill = np.zeros(self.n)
        alumni = (self.spill_left > 0).astype(float)
        if alumni.any() and p.coop_spillover > 0:
            spill = (model.ties @ alumni > 0) * p.coop_spillover * gain
        factor = np.where(reached, p.coop_hazard_factor, 1.0 + spill)
        spent = len(projects) * p.coop_cost_per_project_eur * scale
        return LeverYear(reached=reached, spent_eur=float(spent), dt=factor, bm=factor)

    def drop_rows(self, rows: np.ndarray) -> None:
        super().drop_rows(rows)
        self.years_left[rows] = 0
        self.spill_left[rows] = 0
