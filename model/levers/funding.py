"""Funding programme (sources §5.1): an annual budget pays grants to applying firms."""

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
class Funding(Lever):
    """Each year the running grants are paid first; what is left of the budget funds new
    applicants in random order (first come, first served) at one instalment (grant /
    duration) each. Eligible are target firms lacking what the grant pays for (DT, BM, or —
    coupled — either). Applying: `funding_application_rate` × (1 + engagement)/2, × 1.5 when
    financially constrained. While its grant runs, the hazard of the funded capability is
    multiplied by `funding_hazard_factor` and (DT and coupled grants) the firm's financing
    constraint is lifted. An agent stands for `population_scale` firms: its instalment costs
    that many instalments, and the budget left funds (budget left / instalment) firms of the
    region, i.e. that divided by the scale agents (rounded at random), so a budget means the
    same whatever the number of agents. Whole agents make a year spend a little more or less
    than its budget: the difference is carried to the next year (`balance`), so that the
    spending of the years together stays within one agent's grant of their budgets;
    budget left unspent for lack of applicants lapses, except up to one agent's instalment."""

    p: Params | None = None
    name: str = "funding"
    years_left: np.ndarray = field(init=False)
    # budget carried from the years before (€; negative: spent beyond their budgets)
    balance: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.years_left = np.zeros(self.n, dtype=np.int64)

    @property
    def instalment(self) -> float:
        return self.p.funding_grant_eur / self.p.funding_duration

    def act(self, model: MittelbauModel, year: int, rng: np.random.Generator) -> LeverYear:
        p, s, scale = self.p, model.state, model.population_scale
        self.years_left = np.maximum(self.years_left - 1, 0)
        if not p.funding_start_year <= year <= p.funding_end_year:
            self.years_left[:] = 0
            return LeverYear(np.zeros(self.n, dtype=bool), 0.0)
        running = self.years_left > 0
        agent = self.instalment * scale  # what a year of one agent's grant costs
        spent = running.sum() * agent
        lacking = {"dt": ~s.dt, "bm": ~s.bm, "coupled": ~(s.dt & s.bm)}[p.funding_purpose]
        eligible = in_target(p.funding_target, s) & lacking & ~running
        prob = p.funding_application_rate * (1 + s.engagement) / 2
        prob = np.minimum(1.0, prob * np.where(s.financing_constraint, 1.5, 1.0))
        applicants = eligible & (rng.random(self.n) < prob)
        left = p.funding_budget_eur + self.balance - spent
        affordable = agents_for(left / self.instalment, scale, rng)
        funded = first_in_random_order(applicants, affordable, rng)
        self.years_left[funded] = min(p.funding_duration, p.funding_end_year - year + 1)
        spent += len(funded) * agent
        self.balance = min(self.balance + p.funding_budget_eur - spent, agent)
        reached = self.years_left > 0
        factor = np.where(reached, p.funding_hazard_factor, 1.0)
        one = np.ones(self.n)
        return LeverYear(
            reached=reached,
            spent_eur=float(spent),
            dt=factor if p.funding_purpose in ("dt", "coupled") else one,
            bm=factor if p.funding_purpose in ("bm", "coupled") else one,
            finance_relief=reached & (p.funding_purpose != "bm"),
        )

    def drop_rows(self, rows: np.ndarray) -> None:
        super().drop_rows(rows)
        self.years_left[rows] = 0


PARAMETERS = (
    Parameter(
        "funding_budget_eur",
        0.0,
        "€/year",
        "Annual budget of the funding programme; 0 = no programme",
        "assumption: programme sizes are scenario choices (sources §5.1 names the instrument)",
        0.0,
        1e8,
        group="funding",
        control=True,
    ),
    Parameter(
        "funding_grant_eur",
        50_000.0,
        "€ per firm",
        "Grant per funded firm, paid in equal yearly instalments over the duration",
        "assumption: typical size of a state SME digitalisation grant",
        5_000.0,
        1e6,
        group="funding",
    ),
    Parameter(
        "funding_duration",
        2,
        "years",
        "Years a grant runs (and relaxes the financing constraint)",
        "assumption",
        1,
        5,
        group="funding",
    ),
    Parameter(
        "funding_target",
        "all",
        "-",
        "Who may apply: all, small (< 100 employees), very_small (< 50), stage1, stage2",
        "sources §5.1 (reach industrial SMEs); choice of scenario",
        choices=TARGETS,
        group="funding",
        control=True,
    ),
    Parameter(
        "funding_purpose",
        "coupled",
        "-",
        "What the grant pays for: dt (digital technology), bm "
        "(business-model development) or coupled (both: the study's recommendation)",
        "sources §5.1",
        choices=("dt", "bm", "coupled"),
        group="funding",
        control=True,
    ),
    Parameter(
        "funding_application_rate",
        0.2,
        "1/year",
        "Annual probability that an eligible firm at engagement 'internal' applies; scaled by "
        "(1 + engagement level)/2 and by 1.5 for financially constrained firms",
        "assumption: sources §4.3 (engaged firms seek help), §4.5 (financing the main obstacle "
        "of smaller firms)",
        0.0,
        1.0,
        group="funding",
    ),
    Parameter(
        "funding_hazard_factor",
        2.0,
        "factor",
        "Multiplier of the funded capability's adoption hazard while the grant runs",
        "assumption: sources §4.5 (time and resources the main obstacles, 46 %)",
        1.0,
        10.0,
        group="funding",
    ),
    Parameter(
        "funding_start_year",
        2016,
        "year",
        "First year of new grants",
        "assumption",
        2016,
        2075,
        group="funding",
    ),
    Parameter(
        "funding_end_year",
        2035,
        "year",
        "Last year the programme pays",
        "assumption",
        2016,
        2075,
        group="funding",
    ),
)


def _caption(p: Params) -> str:
    return f"funding €{p.funding_budget_eur:,.0f} a year ({p.funding_purpose}, for {p.funding_target})"


SPEC = LeverSpec(
    name="funding",
    title="Funding",
    order=1,
    switch="funding_budget_eur",
    target="funding_target",
    parameters=PARAMETERS,
    build=lambda params, n, rng: Funding(n=n, p=params),
    yearly_cost=lambda p: p.funding_budget_eur,
    caption=_caption,
)
