"""Application centres / labs (sources §5.3, §4.10)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mittelbau.core.dynamics import MAX_TECHNIQUES
from mittelbau.levers.base import Lever, LeverYear, agents_for, first_in_random_order, in_target


@dataclass
class ApplicationCentres(Lever):
    """`centres_number` centres serve up to `centre_capacity` firms each per year. A share
    `centres_reach` of firms is within reach (drawn once per firm, entrants included). A firm
    in reach and in the target seeks access with probability `centres_demand_rate` ×
    (1 + techniques)/4 — digital front-runners most (sources §4.10) — times
    `dt_finance_factor` for constrained firms when access costs a fee. Seekers are served in
    random order up to capacity. A use adds `centre_technique_gain` techniques and multiplies
    the DT hazard by `centre_hazard_factor` that year. Public cost: running cost per centre
    and year; fees are reported as the firms' cost. Capacity counts firms of the region: an
    agent stands for `population_scale` of them, so capacity / scale agents are served
    (rounded at random)."""

    p: object = None
    name: str = "application_centres"
    in_reach: np.ndarray = field(init=False)
    rng: np.random.Generator | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self.in_reach = self.rng.random(self.n) < self.p.centres_reach

    def act(self, model, year: int, rng: np.random.Generator) -> LeverYear:
        p, s, scale = self.p, model.state, model.population_scale
        if not p.centres_start_year <= year <= p.centres_end_year:
            return LeverYear(np.zeros(self.n, dtype=bool), 0.0)
        prob = p.centres_demand_rate * (1 + s.techniques) / 4
        if p.centre_access_cost_eur > 0:
            prob = prob * np.where(s.financing_constraint, p.dt_finance_factor, 1.0)
        seekers = (
            self.in_reach & in_target(p.centres_target, s) & (rng.random(self.n) < np.minimum(prob, 1.0))
        )
        capacity = agents_for(p.centres_number * p.centre_capacity, scale, rng)
        users = first_in_random_order(seekers, capacity, rng)
        reached = np.zeros(self.n, dtype=bool)
        reached[users] = True
        s.techniques[users] = np.minimum(s.techniques[users] + p.centre_technique_gain, MAX_TECHNIQUES)
        self.firm_cost_eur += len(users) * p.centre_access_cost_eur * scale
        return LeverYear(
            reached=reached,
            spent_eur=float(p.centres_number * p.centre_running_cost_eur),
            dt=np.where(reached, p.centre_hazard_factor, 1.0),
        )

    def drop_rows(self, rows: np.ndarray) -> None:
        super().drop_rows(rows)
        self.in_reach[rows] = self.rng.random(len(rows)) < self.p.centres_reach
