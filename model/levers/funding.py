"""Funding programme (sources §5.1): an annual budget pays grants to applying firms."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mittelbau.levers.base import Lever, LeverYear, agents_for, first_in_random_order, in_target


@dataclass
class Funding(Lever):
    """Each year the running grants are paid first; what is left of the budget funds new
    applicants in random order (first come, first served) at one instalment (grant /
    duration) each. Eligible are target firms lacking what the grant pays for (DT, BM, or —
    coupled — either). Applying: `funding_application_rate` × (1 + engagement)/2, × 1.5 when
    financially constrained. A funded firm's financing constraint is lifted and the hazard of
    the funded capability multiplied by `funding_hazard_factor` while its grant runs.
    An agent stands for `population_scale` firms: its grant costs that many grants, and the
    budget funds (budget left / grant cost) firms of the region, i.e. that divided by the
    scale agents (rounded at random), so a budget means the same whatever the number of
    agents."""

    p: object = None
    name: str = "funding"
    years_left: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.years_left = np.zeros(self.n, dtype=np.int64)

    @property
    def instalment(self) -> float:
        return self.p.funding_grant_eur / self.p.funding_duration

    def act(self, model, year: int, rng: np.random.Generator) -> LeverYear:
        p, s, scale = self.p, model.state, model.population_scale
        self.years_left = np.maximum(self.years_left - 1, 0)
        if not p.funding_start_year <= year <= p.funding_end_year:
            self.years_left[:] = 0
            return LeverYear(np.zeros(self.n, dtype=bool), 0.0)
        running = self.years_left > 0
        spent = running.sum() * self.instalment * scale
        lacking = {"dt": ~s.dt, "bm": ~s.bm, "coupled": ~(s.dt & s.bm)}[p.funding_purpose]
        eligible = in_target(p.funding_target, s) & lacking & ~running
        prob = p.funding_application_rate * (1 + s.engagement) / 2
        prob = np.minimum(1.0, prob * np.where(s.financing_constraint, 1.5, 1.0))
        applicants = eligible & (rng.random(self.n) < prob)
        affordable = agents_for((p.funding_budget_eur - spent) / self.instalment, scale, rng)
        funded = first_in_random_order(applicants, affordable, rng)
        self.years_left[funded] = min(p.funding_duration, p.funding_end_year - year + 1)
        spent += len(funded) * self.instalment * scale
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
