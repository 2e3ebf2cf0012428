"""Cooperation programme (sources §5.2): joint projects of a few SMEs with one partner from
the digital economy or research."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from mittelbau.core.categories import ENGAGEMENT_LEVELS, TARGETS
from mittelbau.core.registry_entry import Parameter
from mittelbau.levers.base import Lever, LeverSpec, LeverYear, agents_for, first_in_random_order, in_target

if TYPE_CHECKING:
    from mittelbau.core.model import MittelbauModel
    from mittelbau.core.scenario import Params


@dataclass
class Cooperation(Lever):
    """Each year `cooperation_projects_per_year` projects form from applying target firms (application
    probability `cooperation_application_rate` × (1 + engagement)/2), `cooperation_firms_per_project` each, in
    random order. Members are tied to each other in the network, their engagement moves out to
    'partners' (digital-economy partner) or 'experts' (research partner), and their DT and BM
    hazards are multiplied by `cooperation_hazard_factor` while the project runs (its whole
    duration, past the programme's end year too). The ties last
    while both firms stay in the market (`MittelbauModel._drop_project_ties`). Afterwards, for
    `cooperation_spillover_years`, the hazards of their partners (project ties included) rise by
    `cooperation_spillover` × the participants' gain, except those of partners in their own
    spillover years: former participants do not gain twice. Cost:
    `cooperation_cost_per_project_eur` per project, booked in the year it starts (commitment),
    so a year's spending is its new projects times their cost. An agent
    stands for `population_scale` firms, so a project of agents stands for that many
    projects: `cooperation_projects_per_year` / scale of them start (rounded at random) and each
    costs scale × the cost of a project."""

    p: Params | None = None
    name: str = "cooperation"
    years_left: np.ndarray = field(init=False)
    spill_left: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.years_left = np.zeros(self.n, dtype=np.int64)
        self.spill_left = np.zeros(self.n, dtype=np.int64)
        # the engagement of each firm that ever joined a project before its first raised it
        self.joined = np.zeros(self.n, dtype=bool)
        self.engagement_before = np.zeros(self.n, dtype=np.int8)

    def act(self, model: MittelbauModel, year: int, rng: np.random.Generator) -> LeverYear:
        p, s, scale = self.p, model.state, model.population_scale
        finished = self.years_left == 1
        self.years_left = np.maximum(self.years_left - 1, 0)
        self.spill_left = np.maximum(self.spill_left - 1, 0)
        self.spill_left[finished] = p.cooperation_spillover_years
        projects: list[np.ndarray] = []
        # projects start in the programme's years and run their whole duration (booked in full
        # when they start), also beyond its end year
        if p.cooperation_start_year <= year <= p.cooperation_end_year:
            eligible = in_target(p.cooperation_target, s) & (self.years_left == 0)
            prob = np.minimum(1.0, p.cooperation_application_rate * (1 + s.engagement) / 2)
            applicants = eligible & (rng.random(self.n) < prob)
            k = p.cooperation_firms_per_project
            wanted = agents_for(p.cooperation_projects_per_year, scale, rng)
            members = first_in_random_order(applicants, wanted * k, rng)
            members = members[: len(members) // k * k]  # only complete projects start
            projects = list(members.reshape(-1, k))
            level = ENGAGEMENT_LEVELS.index("partners" if p.cooperation_partner == "digital" else "experts")
            for group in projects:
                self.years_left[group] = p.cooperation_duration
                first = group[~self.joined[group]]
                self.engagement_before[first] = s.engagement[first]
                self.joined[group] = True
                s.engagement[group] = np.maximum(s.engagement[group], level)
            model.add_ties(projects)
        reached = self.years_left > 0
        gain = p.cooperation_hazard_factor - 1.0
        spill = np.zeros(self.n)
        alumni = self.spill_left > 0
        if alumni.any() and p.cooperation_spillover > 0:
            # the partners of former participants, not the former participants themselves
            spill = ((model.ties @ alumni.astype(float) > 0) & ~alumni) * p.cooperation_spillover * gain
        factor = np.where(reached, p.cooperation_hazard_factor, 1.0 + spill)
        spent = len(projects) * p.cooperation_cost_per_project_eur * scale
        return LeverYear(reached=reached, spent_eur=float(spent), dt=factor, bm=factor)

    def drop_rows(self, rows: np.ndarray) -> None:
        super().drop_rows(rows)
        self.years_left[rows] = 0
        self.spill_left[rows] = 0
        self.joined[rows] = False

    def undo_contact(self, engagement: np.ndarray, techniques: np.ndarray) -> None:
        """Firms that joined a project: the engagement they had before the first raised it."""
        was = self.joined
        engagement[was] = np.minimum(engagement[was], self.engagement_before[was])


PARAMETERS = (
    Parameter(
        "cooperation_projects_per_year",
        0,
        "projects/year",
        "New cooperation projects started per year; 0 = no programme",
        "assumption: programme sizes are scenario choices (sources §5.2)",
        0,
        1000,
        group="cooperation",
        control=True,
    ),
    Parameter(
        "cooperation_firms_per_project",
        5,
        "firms",
        "SMEs per project (plus one partner)",
        "assumption: a small joint project along a value chain (sources §5.2)",
        2,
        30,
        group="cooperation",
    ),
    Parameter(
        "cooperation_duration", 2, "years", "Years a project runs", "assumption", 1, 5, group="cooperation"
    ),
    Parameter(
        "cooperation_cost_per_project_eur",
        250_000.0,
        "€ per project",
        "Public cost of one project over its duration (booked in the year it starts)",
        "assumption: typical funded joint project of a few SMEs with one partner",
        10_000.0,
        5e6,
        group="cooperation",
    ),
    Parameter(
        "cooperation_partner",
        "digital",
        "-",
        "Partner of each project: digital (a firm of the digital "
        "and service economy) or research (an institute)",
        "sources §5.2",
        choices=("digital", "research"),
        group="cooperation",
        control=True,
    ),
    Parameter(
        "cooperation_target",
        "all",
        "-",
        "Who may join: all, small (< 100), very_small (< 50), stage1, stage2",
        "sources §5.2 (very small manufacturers)",
        choices=TARGETS,
        group="cooperation",
        control=True,
    ),
    Parameter(
        "cooperation_application_rate",
        0.1,
        "1/year",
        "Annual probability that an eligible firm at engagement 'internal' asks to join; "
        "scaled by (1 + engagement level)/2",
        "assumption: sources §4.3 (firms ask for help finding cooperation partners)",
        0.0,
        1.0,
        group="cooperation",
    ),
    Parameter(
        "cooperation_hazard_factor",
        2.0,
        "factor",
        "Multiplier of the DT and BM adoption hazards of participants while the project runs",
        "sources §4.3 (firms cooperating with research institutes, customers and suppliers are "
        "at a markedly higher level); size assumed",
        1.0,
        10.0,
        group="cooperation",
    ),
    Parameter(
        "cooperation_spillover",
        0.25,
        "share",
        "Share of the participants' hazard gain passed to their partners after the project (not to "
        "partners in spillover years of their own)",
        "assumption: sources §5.2 (horizontal knowledge transfer)",
        0.0,
        1.0,
        group="cooperation",
    ),
    Parameter(
        "cooperation_spillover_years",
        3,
        "years",
        "Years the spillover lasts after a project",
        "assumption",
        0,
        10,
        group="cooperation",
    ),
    Parameter(
        "cooperation_start_year",
        2016,
        "year",
        "First year of new projects",
        "assumption",
        2016,
        2075,
        group="cooperation",
    ),
    Parameter(
        "cooperation_end_year",
        2035,
        "year",
        "Last year projects start (each runs its whole duration, booked in full when it starts)",
        "assumption",
        2016,
        2075,
        group="cooperation",
    ),
)


def _caption(p: Params) -> str:
    return (
        f"cooperation {p.cooperation_projects_per_year} projects a year ({p.cooperation_partner} "
        f"partner, for {p.cooperation_target})"
    )


SPEC = LeverSpec(
    name="cooperation",
    title="Cooperation",
    order=2,
    switch="cooperation_projects_per_year",
    target="cooperation_target",
    parameters=PARAMETERS,
    build=lambda params, n, rng: Cooperation(n=n, p=params),
    yearly_cost=lambda p: p.cooperation_projects_per_year * p.cooperation_cost_per_project_eur,
    caption=_caption,
)
