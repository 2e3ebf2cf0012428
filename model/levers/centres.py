"""Application centres / labs (sources §5.3, §4.10)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from mittelbau.core.categories import TARGETS
from mittelbau.core.registry_entry import Parameter
from mittelbau.levers.base import Lever, LeverSpec, LeverYear, agents_for, first_in_random_order, in_target

if TYPE_CHECKING:
    from mittelbau.core.model import MittelbauModel
    from mittelbau.core.scenario import Params


@dataclass
class Centres(Lever):
    """`centres_number` centres serve up to `centres_capacity` firms each per year. A share
    `centres_reach` of firms is within reach (drawn once per firm, entrants included). A firm
    in reach and in the target seeks access with probability `centres_demand_rate` ×
    (1 + techniques)/4 — digital front-runners most (sources §4.10) — times
    `dt_finance_factor` for constrained firms when access costs a fee. Seekers are served in
    random order up to capacity. A use adds `centres_technique_gain` techniques and multiplies
    the DT hazard by `centres_hazard_factor` that year. Public cost: running cost per centre
    and year; fees are reported as the firms' cost. Capacity counts firms of the region: an
    agent stands for `population_scale` of them, so capacity / scale agents are served
    (rounded at random)."""

    p: Params | None = None
    name: str = "centres"
    in_reach: np.ndarray = field(init=False)
    rng: np.random.Generator | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self.in_reach = self.rng.random(self.n) < self.p.centres_reach
        self.added = np.zeros(self.n)  # techniques the centres added to each firm, in all

    def act(self, model: MittelbauModel, year: int, rng: np.random.Generator) -> LeverYear:
        # imported here: the registry reads this module's spec, and should not pay for loading
        # the simulation (population synthesis, scipy) when it does
        from mittelbau.core.dynamics import MAX_TECHNIQUES

        p, s, scale = self.p, model.state, model.population_scale
        if not p.centres_start_year <= year <= p.centres_end_year:
            return LeverYear(np.zeros(self.n, dtype=bool), 0.0)
        prob = p.centres_demand_rate * (1 + s.techniques) / 4
        if p.centres_access_cost_eur > 0:
            prob = prob * np.where(s.financing_constraint, p.dt_finance_factor, 1.0)
        seekers = (
            self.in_reach & in_target(p.centres_target, s) & (rng.random(self.n) < np.minimum(prob, 1.0))
        )
        capacity = agents_for(p.centres_number * p.centres_capacity, scale, rng)
        users = first_in_random_order(seekers, capacity, rng)
        reached = np.zeros(self.n, dtype=bool)
        reached[users] = True
        before = s.techniques[users]
        s.techniques[users] = np.minimum(before + p.centres_technique_gain, MAX_TECHNIQUES)
        self.added[users] += s.techniques[users] - before
        self.firm_cost_eur += len(users) * p.centres_access_cost_eur * scale
        return LeverYear(
            reached=reached,
            spent_eur=float(p.centres_number * p.centres_running_cost_eur),
            dt=np.where(reached, p.centres_hazard_factor, 1.0),
        )

    def drop_rows(self, rows: np.ndarray) -> None:
        super().drop_rows(rows)
        self.in_reach[rows] = self.rng.random(len(rows)) < self.p.centres_reach
        self.added[rows] = 0.0

    def undo_contact(self, engagement: np.ndarray, techniques: np.ndarray) -> None:
        """The techniques of earlier visits taken out (none below 0)."""
        np.maximum(techniques - self.added, 0.0, out=techniques)


PARAMETERS = (
    Parameter(
        "centres_number",
        0,
        "centres",
        "Application centres / labs; 0 = none",
        "assumption: programme sizes are scenario choices (sources §5.3)",
        0,
        50,
        group="centres",
        control=True,
    ),
    Parameter(
        "centres_capacity",
        50,
        "firms/year",
        "Firms one centre serves per year",
        "assumption",
        1,
        1000,
        group="centres",
        control=True,
    ),
    Parameter(
        "centres_reach",
        0.5,
        "share",
        "Share of the region's firms within reach of a centre",
        "assumption: sources §4.10 (access bad or very bad for 31 %)",
        0.0,
        1.0,
        group="centres",
    ),
    Parameter(
        "centres_access_cost_eur",
        2_000.0,
        "€ per use",
        "Fee a firm pays for a use; constrained "
        "firms seek access less when it is positive (× dt_finance_factor)",
        "assumption",
        0.0,
        50_000.0,
        group="centres",
    ),
    Parameter(
        "centres_running_cost_eur",
        500_000.0,
        "€/centre/year",
        "Public running cost of a centre",
        "assumption: staff and equipment of a small application lab",
        0.0,
        1e7,
        group="centres",
    ),
    Parameter(
        "centres_target",
        "all",
        "-",
        "Who may use them: all (front-runners seek access most, "
        "sources §4.10), small, very_small, stage1, stage2",
        "sources §4.10, §5.3",
        choices=TARGETS,
        group="centres",
        control=True,
    ),
    Parameter(
        "centres_demand_rate",
        0.1,
        "1/year",
        "Annual probability that a firm within reach seeks access, scaled by (1 + techniques)/4",
        "assumption: sources §4.10 (front-runners criticise access most)",
        0.0,
        1.0,
        group="centres",
    ),
    Parameter(
        "centres_hazard_factor",
        2.0,
        "factor",
        "Multiplier of a user's DT adoption hazard in the year of use",
        "sources §4.5 (lacking technological prerequisites 28 % of low- vs 4 % of "
        "high-digital firms); size assumed",
        1.0,
        10.0,
        group="centres",
    ),
    Parameter(
        "centres_technique_gain",
        1.0,
        "techniques",
        "Digital techniques a user adds (up to 10)",
        "assumption",
        0.0,
        3.0,
        group="centres",
    ),
    Parameter(
        "centres_start_year",
        2016,
        "year",
        "First year the centres operate",
        "assumption",
        2016,
        2075,
        group="centres",
    ),
    Parameter(
        "centres_end_year",
        2035,
        "year",
        "Last year the centres operate",
        "assumption",
        2016,
        2075,
        group="centres",
    ),
)


def _caption(p: Params) -> str:
    return (
        f"{p.centres_number} application centre(s) × {p.centres_capacity} firms a year "
        f"(for {p.centres_target})"
    )


SPEC = LeverSpec(
    name="centres",
    title="Centres",
    order=3,
    switch="centres_number",
    target="centres_target",
    parameters=PARAMETERS,
    build=lambda params, n, rng: Centres(n=n, p=params, rng=rng),
    yearly_cost=lambda p: p.centres_number * p.centres_running_cost_eur,
    caption=_caption,
)
