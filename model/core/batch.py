"""Several runs of the model stepped together as one stack of rows (`model.Cohort`): R
replications and/or P parameter points, each with its own seed, streams and parameter values,
so that every run's records are exactly those of the run alone, at a fraction of the cost of
running them one by one (the vectorised kernels run once per year for all of them).

Within a batch the runs must share what fixes the rows and the years they step through: the
number of firms, the region, the first year of the run-up and the horizon (`BATCH_KEYS`).
`batch_groups` cuts a list of parameter sets into batches that do. Runs keeping only their
outcomes whose seeds and parameters acting before 2016 are equal run their run-up once
(`MittelbauModel.adopt_runup`), and later batches of the process take it over too; runs keeping
their records do so where they differ in the programmes' parameters alone
(`mittelbau.core.shared_runups`).
"""

from __future__ import annotations

from collections.abc import Sequence

from mittelbau.core.model import Cohort, MittelbauModel, RunUpState
from mittelbau.core.population import synthesise_runs
from mittelbau.core.runup import solve_runups
from mittelbau.core.scenario import Params
from mittelbau.core.shared_runups import RUNUP_STATES, keep_runup_state, keeps, runup_state_key
from mittelbau.core.streams import settle

# what every run of a batch shares: its rows (firms, region) and the years it steps through
BATCH_KEYS = ("firms", "region", "runup_start_year", "years")


def batch_key(params: Params) -> tuple:
    """The values of BATCH_KEYS: runs with equal keys can share a batch."""
    return tuple(getattr(params, k) for k in BATCH_KEYS)


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
    the outcomes at the horizon read (`MittelbauModel`). Runs share a run-up where their
    `runup_state_key`s are equal (`leader[i]`: i when run i ran its own run-up, the run of the
    batch whose run-up it took over, or None for one kept from an earlier batch)."""

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
        # runs share a run-up where their seeds and the parameters acting before 2016 (for runs
        # keeping their records: all but the programmes') are equal: one kept from an earlier
        # batch, or else the first such run of the batch runs it; the others take over its 2015
        # state (`adopt_runup`)
        self.runs: list[MittelbauModel] = []
        keys = [runup_state_key(p, outcomes_only) for p in params]
        taken = {k: RUNUP_STATES[k] for k in set(keys) if k in RUNUP_STATES}
        first: dict[tuple, int] = {}
        # each run's leader: itself when it runs its own run-up, the run of the batch whose
        # run-up it takes over, or None for one kept from an earlier batch
        self.leader: list[int | None] = [
            None if k in taken else first.setdefault(k, i) for i, k in enumerate(keys)
        ]
        leaders = [i for i, lead in enumerate(self.leader) if lead == i]
        if leaders:
            self._run_up([params[i] for i in leaders], [runups[i] for i in leaders], outcomes_only)
        followed = {lead for i, lead in enumerate(self.leader) if lead is not None and lead != i}
        for place, i in enumerate(leaders):
            if i in followed or keeps(params[i].firms):
                state = RunUpState.of(self.runs[place], self.cohort.exits[place])
                taken[keys[i]] = keep_runup_state(keys[i], state)
        if len(leaders) < len(params):
            self._take_over(params, runups, keys, taken, outcomes_only)

    def _run_up(self, params: list[Params], runups: list, outcomes_only: bool) -> None:
        """Build the runs of `params`, synthesising their firms together, and run them up to
        2015 as one cohort (keeping the rows left each year where others may take over the run-ups)."""
        self.runs = [
            MittelbauModel(p, run_up=False, runup=r, outcomes_only=outcomes_only, populate=False)
            for p, r in zip(params, runups, strict=True)
        ]
        for m in self.runs:
            m.batch_streams()
        # the seeds the runs spawn as they are populated, hashed together
        settle([seeds for m in self.runs for seeds in m.populate_seeds()])
        # the runs' firms, each run's drawn from its own generator, computed together
        first = self.runs[0]
        firms = synthesise_runs(
            first.region,
            [m.params.firms for m in self.runs],
            [m.rng for m in self.runs],
            [m.runup.state_in(m.first_year) for m in self.runs],
        )
        for m, table in zip(self.runs, firms, strict=True):
            m.populate(table)
            m.batched = True
        self.cohort = Cohort(self.runs)
        self.cohort.exits = [[] for _ in self.runs]
        for _ in range(first.runup_years):
            self.step()

    def _take_over(
        self,
        params: Sequence[Params],
        runups: list,
        keys: list[tuple],
        taken: dict[tuple, RunUpState],
        outcomes_only: bool,
    ) -> None:
        """Every run of `params` at 2015: those that ran their run-up as they are, the others
        taking over the run-up of their key (`taken`); then one cohort of all of them for the
        projection."""
        led = iter(self.runs)
        runs: list[MittelbauModel] = []
        followers: list[MittelbauModel] = []
        for i, p in enumerate(params):
            if self.leader[i] == i:
                runs.append(next(led))
                continue
            m = MittelbauModel(p, run_up=False, runup=runups[i], outcomes_only=outcomes_only, populate=False)
            m.batch_streams()
            runs.append(m)
            followers.append(m)
        settle([seeds for m in followers for seeds in m.populate_seeds()])
        for i, m in enumerate(runs):
            if self.leader[i] != i:
                m.adopt_runup(taken[keys[i]])
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
