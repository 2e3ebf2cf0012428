"""Several runs of the model stepped together as one stack of rows (`model.Cohort`): R
replications and/or P parameter points, each with its own seed, streams and parameter values,
so that every run's records are exactly those of the run alone, at a fraction of the cost of
running them one by one (the vectorised kernels run once per year for all of them).

Within a batch the runs must share what fixes the rows and the years they step through: the
number of firms, the region, the first year of the run-up and the horizon (`BATCH_KEYS`).
`batch_groups` cuts a list of parameter sets into batches that do. Runs keeping only their
outcomes whose seeds and parameters acting before 2016 are equal run their run-up once
(`PROJECTION_PARAMETERS`, `MittelbauModel.adopt_runup`).
"""

from __future__ import annotations

from collections.abc import Sequence

from mittelbau.core.model import Cohort, MittelbauModel
from mittelbau.core.parameters import REGISTRY
from mittelbau.core.population import synthesise_runs
from mittelbau.core.runup import solve_runups
from mittelbau.core.scenario import Params
from mittelbau.core.streams import settle

# what every run of a batch shares: its rows (firms, region) and the years it steps through
BATCH_KEYS = ("firms", "region", "runup_start_year", "years")

# parameters that act only from 2016 on: the programmes (they start in 2016 at the earliest),
# the mechanisms (but the service revenue drawn with the first firms), the projection's own
# dynamics (the adoption factors, traits and learning), the shock (from 2016), the economics
# (from the 2015 state), the verdict indicators and the survey measurement. Runs of one seed
# that differ only in these have the same run-up, firm for firm and draw for draw (tested for
# each, at the ends of its range); a batch of runs keeping only their outcomes runs such a
# run-up once (`ModelBatch`).
_PROJECTION_GROUPS = ("funding", "cooperation", "centres", "shock", "economics", "indicators", "measurement")
_PROJECTION_DYNAMICS = (
    "dt_adoption_factor",
    "dt_finance_factor",
    "dt_competence_effect",
    "engagement_effect",
    "bm_adoption_factor",
    "competence_learning",
    "engagement_drift_rate",
)
_RUNUP_MECHANISM_STATE = ("service_revenue_mean", "service_revenue_concentration")
PROJECTION_PARAMETERS = frozenset(
    [p.name for p in REGISTRY if p.group in _PROJECTION_GROUPS]
    + [p.name for p in REGISTRY if p.group == "mechanisms" and p.name not in _RUNUP_MECHANISM_STATE]
    + list(_PROJECTION_DYNAMICS)
)


def batch_key(params: Params) -> tuple:
    """The values of BATCH_KEYS: runs with equal keys can share a batch."""
    return tuple(getattr(params, k) for k in BATCH_KEYS)


def runup_state_key(params: Params) -> tuple:
    """What a run's run-up depends on: its seed and every parameter but PROJECTION_PARAMETERS.
    Runs with equal keys have the same run-up."""
    return tuple((k, v) for k, v in params.model_dump().items() if k not in PROJECTION_PARAMETERS)


def batch_groups(params: Sequence[Params], most: int, rows: int | None = None) -> list[list[int]]:
    """Indices of `params` cut into batches of at most `most` runs with equal keys, and at most
    `rows` firms in all (at least one run each), in the order of their first run (each batch
    keeps the order of its runs)."""
    if most < 1:
        raise ValueError(f"batch size = {most} is invalid; allowed: 1 or more")
    open_: dict[tuple, list[int]] = {}
    groups: list[list[int]] = []
    for i, p in enumerate(params):
        key = batch_key(p)
        size = most if rows is None else max(1, min(most, rows // p.firms))
        group = open_.get(key)
        if group is None or len(group) >= size:
            group = open_[key] = []
            groups.append(group)
        group.append(i)
    return groups


class ModelBatch:
    """The runs of `params` (each with its own seed), built and run up together (the run-up
    hazards of their distinct parameter points solved together: `runup.solve_runups`), then
    stepped one year at a time with `step` or to the horizon with `run`. `runs[i]` is the model
    of `params[i]`: read its records as those of a run alone. `outcomes_only=True` keeps only what
    the outcomes at the horizon read (`MittelbauModel`); such runs share a run-up where their
    `runup_state_key`s are equal (`leader[i]`: the run whose run-up run i took over, i itself
    when it ran its own)."""

    def __init__(self, params: Sequence[Params], outcomes_only: bool = False) -> None:
        if not params:
            raise ValueError("a batch of no runs; allowed: one or more parameter sets")
        keys = [batch_key(p) for p in params]
        for k, name in enumerate(BATCH_KEYS):
            values = sorted({str(key[k]) for key in keys})
            if len(values) > 1:
                raise ValueError(
                    f"runs of one batch with {name} = {', '.join(values)}; allowed: one value of each "
                    f"of {', '.join(BATCH_KEYS)} per batch (batch_groups cuts runs into such batches)"
                )
        # the run-ups of the batch's distinct parameter points, solved together
        runups = solve_runups(params[0].region, params)
        # runs keeping only their outcomes share a run-up where their seeds and the parameters
        # acting before 2016 are equal: the first such run of the batch leads, the others take
        # over its 2015 state (`MittelbauModel.adopt_runup`)
        keys = [runup_state_key(p) if outcomes_only else i for i, p in enumerate(params)]
        first: dict = {}
        self.leader = [first.setdefault(k, i) for i, k in enumerate(keys)]  # each run's leader
        leaders = sorted(first.values())
        self.runs = [
            MittelbauModel(p, run_up=False, runup=runups[i], outcomes_only=outcomes_only, populate=False)
            for i, p in ((i, params[i]) for i in leaders)
        ]
        for m in self.runs:
            m.batch_streams()
        # the seeds the runs spawn as they are populated, hashed together
        settle([seeds for m in self.runs for seeds in m.populate_seeds()])
        # the runs' firms, each run's drawn from its own generator, computed together
        first_run = self.runs[0]
        firms = synthesise_runs(
            first_run.region,
            [m.params.firms for m in self.runs],
            [m.rng for m in self.runs],
            [m.runup.state_in(m.first_year) for m in self.runs],
        )
        for m, table in zip(self.runs, firms, strict=True):
            m.populate(table)
            m.batched = True
        self.cohort = Cohort(self.runs)
        sharing = len(leaders) < len(params)
        if sharing:
            self.cohort.exits = [[] for _ in self.runs]
        for _ in range(first_run.runup_years):
            self.step()
        if sharing:
            self._take_over(params, runups, dict(zip(leaders, range(len(leaders)), strict=True)))

    def _take_over(self, params: Sequence[Params], runups: list, at: dict[int, int]) -> None:
        """Every run of `params` at 2015: the leaders (`at`: each leader's place among the runs
        run up) as they are, the others taking over their leader's run-up; then one cohort of
        all of them for the projection."""
        led, exits = self.runs, self.cohort.exits
        runs: list[MittelbauModel] = []
        followers: list[tuple[MittelbauModel, int]] = []  # each with its leader's place
        for i, p in enumerate(params):
            lead = self.leader[i]
            if lead == i:
                runs.append(led[at[i]])
                continue
            m = MittelbauModel(p, run_up=False, runup=runups[i], outcomes_only=True, populate=False)
            m.batch_streams()
            runs.append(m)
            followers.append((m, at[lead]))
        settle([seeds for m, _ in followers for seeds in m.populate_seeds()])
        for m, r in followers:
            m.adopt_runup(led[r], exits[r])
        self.runs = runs
        self.cohort = Cohort(runs)

    def __len__(self) -> int:
        return len(self.runs)

    @property
    def running(self) -> bool:
        return self.runs[0].running

    def step(self) -> None:
        """One year of every run: each model's clock advances (Mesa), then the cohort steps."""
        for m in self.runs:
            m.step()
        self.cohort.advance()

    def run(self) -> list[MittelbauModel]:
        """Run to the horizon; returns the runs."""
        for _ in range(self.runs[0].params.years):
            self.step()
        return self.runs
