"""The Mesa model: a region's manufacturing SMEs moving between business-model stages."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import mesa
import numpy as np
import pandas as pd
from mesa.experimental.scenarios import Scenario as MesaScenario
from scipy import sparse

from mittelbau.core.categories import INDUSTRIES, SIZE_CLASSES, START_YEAR
from mittelbau.core.dynamics import (
    MOTIVES,
    BaseHazards,
    Boost,
    CapabilityChange,
    Exposure,
    capability_draws,
    change_capabilities,
    draw_gains_runs,
    exit_hazard,
    hazard_to_probability,
    learn_and_engage,
    learning_draws,
    trait_norms,
)
from mittelbau.core.economics import Economics
from mittelbau.core.firm import Firm
from mittelbau.core.indicators import competence_by_stage, stage_shares
from mittelbau.core.mechanisms import (
    NAMES,
    PARTNERS,
    Mechanisms,
    MechanismYear,
    customer_power,
    draw_state,
    draw_states,
    leapfrog_runs,
    start_of_year,
)
from mittelbau.core.network import degree, neighbour_shares, supplier_network
from mittelbau.core.outcomes import record_for_horizon, reporters
from mittelbau.core.population import FirmTable, cell_index, draw_survey_traits, synthesise, synthesise_stack
from mittelbau.core.propensities import load_propensities
from mittelbau.core.region_data import load_region
from mittelbau.core.runup import RunUp, pressure_index, runup_key, solve_runup
from mittelbau.core.scenario import Params, make_params
from mittelbau.core.shock import shock_exit_multiplier, shock_pressure
from mittelbau.core.stacking import (
    RowParams,
    StackedTables,
    block_diagonal,
    parts_of,
    per_row,
    stack_tables,
    table_rows,
)
from mittelbau.core.streams import Seeds, generator, settle
from mittelbau.levers import LeverYear, Reach, build_levers

# years of seeds a batch hashes at once: more saves passes, but seeds made ahead live until
# spawned and draw the garbage collector's full passes
SETTLE_YEARS = 3


class _Unset:
    """Marks a seed argument that was not given (None is Mesa's "fresh entropy")."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET = _Unset()
SeedArg = int | np.integer | np.random.SeedSequence | np.random.Generator | None | _Unset


def root_seed(value: Any) -> Any:
    """The run's root seed (an integer the registry accepts, recorded with the run) from
    anything Mesa accepts as `rng`: an integer as it is, None fresh from the operating
    system's entropy, a SeedSequence or Generator through one draw. Anything else is left
    to the registry's validation, whose error names the value and what is allowed."""
    if value is None:
        value = np.random.SeedSequence()
    if isinstance(value, np.random.SeedSequence):
        return int(value.generate_state(1, dtype=np.uint32)[0])
    if isinstance(value, np.random.Generator):
        return int(value.integers(2**32))
    if isinstance(value, np.integer):
        return int(value)
    return value


def _before_last(columns: dict[str, list]) -> dict[str, tuple]:
    """Each column's values but the last."""
    return {k: tuple(v[:-1]) for k, v in columns.items()}


@dataclass(frozen=True)
class RunUpState:
    """What a run's run-up leaves at 2015 for another run to take over
    (`MittelbauModel.adopt_runup`): its firms and network, the firms' ids, entry years and BM
    introductions, the year's moves and BM motives of every run-up year, the rows left in each
    year, its generator's state and the yearly streams spawned from its roots. Copies where the
    run changes them in place after 2015; read only."""

    state: FirmTable
    cell: np.ndarray
    customers: sparse.csr_array
    ties: sparse.csr_array
    firm_id: np.ndarray
    entry_year: np.ndarray
    bm_introduced: np.ndarray
    transitions: tuple[np.ndarray, ...]
    bm_motives: tuple[np.ndarray, ...]
    exits: tuple[np.ndarray, ...]
    generator_state: dict
    core_spawned: int
    mechanism_spawned: int
    # the records of the years before 2015 of a run keeping its records (None otherwise): its
    # stage counts and its DataCollector's values per reporter
    stage_counts: tuple[np.ndarray, ...] | None
    model_vars: dict[str, tuple] | None

    @classmethod
    def of(cls, m: MittelbauModel, exits: Sequence[np.ndarray]) -> RunUpState:
        """The run-up of `m` (at 2015, its streams `streams.Seeds`; `exits`: the rows its firms
        left in each year of it)."""
        if m.year != START_YEAR:
            raise ValueError(f"the run-up of a run at {m.year}; allowed: a run at {START_YEAR}")
        return cls(
            state=stack_tables([m.state]),
            cell=m.cell.copy(),
            customers=m.customers,
            ties=m.ties,
            firm_id=m.firm_id.copy(),
            entry_year=m.entry_year.copy(),
            bm_introduced=m.bm_introduced.copy(),
            transitions=tuple(m.transitions),
            bm_motives=tuple(m.bm_motives),
            exits=tuple(exits),
            generator_state=m.rng.bit_generator.state,
            core_spawned=m.rng.bit_generator.seed_seq.n_children_spawned,
            mechanism_spawned=m.mechanism_rng.bit_generator.seed_seq.n_children_spawned,
            stage_counts=None if m.outcomes_only else tuple(m.stage_counts[:-1]),
            model_vars=None if m.outcomes_only else _before_last(m.datacollector.model_vars),
        )

    @property
    def firms(self) -> int:
        return len(self.firm_id)


class MittelbauModel(mesa.Model):
    """Firms of one region, run up from `runup_start_year` to the 2015 survey state on
    construction, then stepped one year at a time.

    Build with a validated `Params` (see `mittelbau.core.scenario`) and/or keyword overrides
    of the registry defaults: `MittelbauModel(region="nord", firms=2000, rng=7)`. The seed
    follows Mesa: `rng=` (or `seed=`) takes an integer, a SeedSequence or Generator, or None
    for a fresh seed; left out, the run uses the seed of `params` (the registry default). A
    Mesa `scenario=` (SolaraViz passes one on Reset) gives its `rng` and registry overrides.
    `running` turns False at the horizon `years`, so `mesa.batch_run` stops there.
    `run_up=False` leaves the model at `runup_start_year` (a batch of runs runs the run-up of
    its members together); `populate=False` also leaves it without firms until `populate`.
    `runup=` takes the solved run-up of these parameters
    (`runup.solve_runups`, which solves those of a batch together); left out, it is solved here
    (cached). `outcomes_only=True` keeps only what the outcomes at the horizon read (for runs
    of which only those are kept): no firm economics, no tables (Mesa's DataCollector and the
    stage counts stay empty) and, from 2015 on, only the yearly outcomes the summaries at the
    horizon read (`yearly_outcomes`); none of this acts on the dynamics, and every draw stays
    as it is.
    """

    def __init__(
        self,
        params: Params | None = None,
        *,
        rng: SeedArg = UNSET,
        seed: SeedArg = UNSET,
        scenario: MesaScenario | None = None,
        run_up: bool = True,
        runup: RunUp | None = None,
        outcomes_only: bool = False,
        populate: bool = True,
        **overrides: Any,
    ) -> None:
        if rng is not UNSET and seed is not UNSET and rng is not None and seed is not None:
            raise ValueError(f"rng = {rng!r} and seed = {seed!r} given; allowed: one of them")
        # as Mesa's Model: a seed given beside rng=None is the seed
        given = rng if rng is not UNSET and (rng is not None or seed is UNSET) else seed
        if scenario is not None:
            extra = {k: v for k, v in scenario if k not in ("model", "rng")}
            overrides = {**extra, **overrides}
            if given is UNSET and scenario.rng is not None:
                given = scenario.rng
        if not isinstance(given, _Unset):
            overrides["seed"] = root_seed(given)
        if params is None:
            params = make_params(overrides)
        elif not isinstance(params, Params):
            raise TypeError(
                f"params = {type(params).__name__} {str(params)[:60]}; allowed: a parameter set "
                "(make_params({...}) or a scenario's .params), or the parameters as keywords"
            )
        elif overrides:
            params = params.with_overrides(overrides)
        super().__init__(rng=params.seed)
        self.region = load_region(params.region)
        params = resolve_region_defaults(params, self.region)
        self.params = params
        self.props = load_propensities()
        if runup is None:
            runup = solve_runup(params.region, params)
        elif runup.key != runup_key(params.region, params):
            raise ValueError(
                f"runup solved for {runup.key} given to a run of {runup_key(params.region, params)}; "
                "allowed: the run-up of the run's region and run-up parameters"
            )
        self.runup = runup
        self.first_year = self.runup.first_year
        self.outcomes_only = outcomes_only
        # stepped by a batch of runs (mittelbau.core.batch), not on its own
        self.batched = False
        if populate:
            start = self.runup.state_in(self.first_year)
            self.populate(synthesise(self.region, params.firms, self.rng, start))
            # the run-up: the same yearly dynamics up to the 2015 survey state
            if run_up:
                self.run_for(START_YEAR - self.first_year)

    def batch_streams(self) -> None:
        """Make the run's generator numpy's default generator of its seed spawning through
        `streams.Seeds` (the same generator and children), so that a batch of runs can hash the
        yearly streams of its runs together (`streams.settle`). Only before `populate`: the
        generator must not have drawn yet."""
        if hasattr(self, "state"):
            raise ValueError("batch_streams after populate; allowed: before the run's first draw")
        self.rng = generator(Seeds(self.params.seed))

    def populate_seeds(self) -> list[Seeds]:
        """The seeds `populate` spawns, not spawned yet: the levers' root, the mechanisms' root
        under it and the stream of the mechanism states under that, and the economics' root (a
        batch hashes those of its runs together before it populates them). Only for a run
        whose streams are `streams.Seeds` (`batch_streams`)."""
        seq = self.rng.bit_generator.seed_seq
        lever_root = seq.child(seq.n_children_spawned)
        mechanisms = lever_root.child(0)
        return [lever_root, mechanisms, mechanisms.child(0), lever_root.child(1)]

    def populate(self, firms: FirmTable) -> None:
        """The run's firms at `runup_start_year` (`population.synthesise` from the run's
        generator, its first draws) and all that follows from them: network, programmes,
        mechanism states, records. Called on construction, or by a batch of runs that
        synthesised the firms of all its runs together (`populate=False`)."""
        params = self.params
        self.state = firms
        self.cell = self._cells(self.state)
        self.customers = supplier_network(
            self.state.industry,
            self.state.position,
            params.customers_per_supplier,
            params.same_industry_ties,
            self.rng,
        )
        self.ties = (self.customers + self.customers.T).tocsr()
        self.ties.data[:] = 1.0
        self.tie_degree = degree(self.ties)
        self.customer_degree = degree(self.customers)
        # the ties without the cooperation projects' (`add_ties`) and their degrees
        self.network_ties, self.network_tie_degree = self.ties, self.tie_degree
        # a Firm agent is the handle of one row (a market slot); the firm occupying the row is
        # identified by firm_id and changes on exit and entry
        self.firm_id = np.arange(params.firms)
        self.entry_year = np.full(params.firms, self.first_year)
        # year of each firm's latest BM introduction in the run (0: none since the start), for
        # the hazard target of sources §4.1
        self.bm_introduced = np.zeros(params.firms, dtype=np.int64)
        self._start_streams(draw_mechanism_state=True)
        self._start_records()

    def _start_streams(self, draw_mechanism_state: bool) -> None:
        """The streams under the run's generator and what is built from them: the programmes,
        the mechanisms and their firm state (drawn or, when taken from another run, only
        spawned), the economics' root."""
        params = self.params
        # spawned in every run, levers or not, so the yearly streams stay aligned across runs
        lever_root = self.rng.spawn(1)[0]
        self.levers = build_levers(params, params.firms, lever_root)
        # the firms any programme reached (distinct firms), beside each lever's own record
        self.reach = Reach(params.firms) if self.levers else None
        # the switchable mechanisms (model/core/mechanisms.py) draw from their own root, a child
        # of the levers' root (which never spawns otherwise): their draws shift no other stream
        self.mechanisms = Mechanisms(params)
        self.mechanism_rng = lever_root.spawn(1)[0]
        states = self.mechanism_rng.spawn(1)[0]
        if draw_mechanism_state:
            draw_state(self.state, params, states)
        # each firm's customer power (`mechanisms.customer_power`), made when read (`power`)
        self._customer_power: np.ndarray | None = None
        # firm economics (model/core/economics.py) draw from a third child of the levers' root;
        # its accounting starts with the 2015 state (None during the run-up)
        self.economics_rng = lever_root.spawn(1)[0]
        self.economics: Economics | None = None

    def _start_records(self) -> None:
        """The verdicts' and records' state at the run's first year."""
        params = self.params
        # mean trait factors of the 2015 state (dynamics.trait_norms); None during the run-up
        self.trait_norms: tuple[np.ndarray, np.ndarray] | None = None
        # the Firm handles are made on the first request for agents (`_firm_handles`)
        self._firm_at: list[Firm] | None = None
        # the verdict indicators follow the 2015 firms (`_start_projection`, at the end of the
        # run-up): their stage then (0 before: no firm is followed yet), their size class then,
        # the firm holding each row then, and (once they exit) the stage they left from
        self.start_stage = np.zeros(params.firms, dtype=np.int8)
        self.start_small = np.zeros(params.firms, dtype=bool)
        self.start_firm = self.firm_id.copy()
        self.exit_stage = np.zeros(params.firms, dtype=np.int8)
        self.lever_records: list[tuple] = []  # year, lever, spent, reached, upward, deadweight

        self.stage_counts: list[np.ndarray] = []  # per year: (groups × 3) counts
        self.transitions: list[np.ndarray] = []  # per simulated year: 4 × 4 from/to (0 = outside)
        self.bm_motives: list[np.ndarray] = []
        # one reporter per yearly outcome of the outcome registry
        self.datacollector = mesa.DataCollector(model_reporters={"year": "year", **reporters()})
        # a run keeping only its outcomes records them here instead (`outcomes.record_for_horizon`)
        self.horizon_rows: dict[str, list] = {"year": [], **{name: [] for name in reporters()}}
        self._competence: np.ndarray | None = None
        self._record()
        self.running = self.year < START_YEAR + params.years

    def adopt_runup(self, runup: RunUpState) -> None:
        """Take a run-up (`RunUpState`, of a run at 2015 whose seed and parameters acting before
        2016 equal this run's: `shared_runups.runup_state_key`) as this run's own: its run-up alone
        would have been the same, firm for firm and draw for draw. For a run of a batch
        (`batch_streams`) not populated yet, keeping what the run-up's run kept (only the
        outcomes, or the records too: then the run-up years' records are taken as well). The
        run takes the firms, network, moves and stream positions; builds its own programmes
        from its own levers' stream and lets them drop the rows left in each year of the
        run-up, as they would have alone; then steps its clock to 2015 and makes its own 2015
        records (trait norms, verdicts, economics, outcomes) from its own parameters."""
        if (runup.stage_counts is None) != self.outcomes_only:
            kept = "its outcomes only" if self.outcomes_only else "its records"
            raise ValueError(
                f"a run-up taken over by a run keeping {kept} from one that did not; allowed: runs "
                "keeping the same (outcomes_only)"
            )
        if hasattr(self, "state"):
            raise ValueError("a run-up taken over by a populated run; allowed: a run not populated yet")
        if not isinstance(self.rng.bit_generator.seed_seq, Seeds):
            raise ValueError(
                "a run-up taken over by a run of numpy's seeding; allowed: a run after batch_streams"
            )
        self.state = stack_tables([runup.state])  # a copy: the runs step apart from here
        self.cell = runup.cell.copy()
        # the network (replaced, never changed in place, when cooperation adds ties)
        self.customers, self.ties = runup.customers, runup.ties
        self.tie_degree, self.customer_degree = degree(self.ties), degree(self.customers)
        self.network_ties, self.network_tie_degree = self.ties, self.tie_degree
        self.firm_id, self.entry_year = runup.firm_id.copy(), runup.entry_year.copy()
        self.bm_introduced = runup.bm_introduced.copy()
        # the run's own streams: its generator where the synthesis and the network left it, the
        # roots under it as `populate` spawns them
        self.rng.bit_generator.state = runup.generator_state
        self._start_streams(draw_mechanism_state=False)
        for rows in runup.exits:  # the programmes drop the rows left, as in the run-up alone
            for lever in self.levers:
                lever.drop_rows(rows)
            if self.reach is not None:
                self.reach.drop_rows(rows)
        # the yearly streams spawned in the run-up
        self.rng.bit_generator.seed_seq.n_children_spawned = runup.core_spawned
        self.mechanism_rng.bit_generator.seed_seq.n_children_spawned = runup.mechanism_spawned
        self._start_records()
        self.transitions, self.bm_motives = list(runup.transitions), list(runup.bm_motives)
        if runup.stage_counts is not None and runup.model_vars is not None:  # the run-up years' records
            self.stage_counts = list(runup.stage_counts)
            self.datacollector.model_vars = {k: list(v) for k, v in runup.model_vars.items()}
        self.batched = True
        for _ in range(self.runup_years):
            self.step()  # the clock only
        # the end of 2015 (`_RunYear.close`), with this run's parameters
        self._start_projection()
        self._end_year()

    # ---- agents: Firm handles made on demand --------------------------------------------------
    def _firm_handles(self) -> list[Firm]:
        """The Firm agent of each row, made with `Agent.create_agents` (and so registered with
        Mesa) on the first call. The step never needs them, so a run that asks for no agents
        spends no time or memory on one Python object per row."""
        if self._firm_at is None:
            n = len(self.firm_id)
            # a list, not a numpy object array: the garbage collector cannot see through the
            # latter, and the agent ↔ model cycle would keep every finished model alive
            self._firm_at = list(Firm.create_agents(self, n, row=np.arange(n)))
        return self._firm_at

    @property
    def firm_at(self) -> list[Firm]:
        """The Firm agent of each row (`firm_at[row]`), made on first use."""
        return self._firm_handles()

    @property
    def agents(self) -> mesa.agentset.AgentSet:
        """Mesa's set of all agents: one Firm per row, made on first use."""
        self._firm_handles()
        return super().agents

    @property
    def agents_by_type(self) -> dict[type, mesa.agentset.AgentSet]:
        """Mesa's agent sets by type (only `Firm`), made on first use."""
        self._firm_handles()
        return super().agents_by_type

    @property
    def agent_types(self) -> list[type]:
        """The agent types (`Firm`), made on first use."""
        self._firm_handles()
        return super().agent_types

    @functools.cached_property
    def suppliers(self) -> sparse.csr_array:
        """S[j, i] = 1 when firm i supplies firm j (`customers` transposed; the ties stay with
        the rows), made on first use: only the agents' `suppliers` read it."""
        return self.customers.T.tocsr()

    # ---- state views ------------------------------------------------------------------------
    def power(self) -> np.ndarray:
        """Each firm's customer power (`mechanisms.customer_power`), computed on the first
        request after entry changed the firms' sizes: only service neglect reads it."""
        if self._customer_power is None:
            self._customer_power = customer_power(self.customers, self.state.size)
        return self._customer_power

    @property
    def year(self) -> int:
        """The year of the current state; inside `step` (Mesa advances time first) the year
        being simulated, whose end state the step produces."""
        return self.first_year + int(self.time)

    @property
    def runup_years(self) -> int:
        """Simulated years of the run-up (records before the 2015 state)."""
        return START_YEAR - self.first_year

    @property
    def population_scale(self) -> float:
        """Firms of the region each agent stands for (`region_firms` / `firms`): agent sums
        × population_scale are the region's totals, and levers spend per agent in this unit."""
        return self.params.region_firms / self.params.firms

    @property
    def shares(self) -> np.ndarray:
        """Stage shares of all firms now."""
        return stage_shares(self.state.stage)

    def pressure_in(self, year: int) -> float:
        """Digital pressure index at the start of simulated `year` (1 at the start of 2016, the
        end of the 2015 survey year; linear, not below 0), raised in the shock's years
        (`mittelbau.core.shock`; nothing added by default)."""
        return pressure_index(year, self.params.digital_pressure_growth) + shock_pressure(year, self.params)

    def exposure(self) -> Exposure:
        """Adoption among peers, partners and customers at the start of the year, each relative
        to its expectation on the run-up's path (`Cohort.exposure`)."""
        return Cohort([self]).exposure()

    def base_hazards(self) -> BaseHazards:
        """Each firm's type hazards for the year being simulated (`dynamics.BaseHazards`,
        `Cohort.base_hazards`)."""
        return Cohort([self]).base_hazards(self.cell)

    @staticmethod
    def _cells(table) -> np.ndarray:
        return cell_index(table.industry, table.size, table.batch, table.complexity, table.service_strategy)

    # ---- the step -----------------------------------------------------------------------------
    def step(self) -> None:
        """One year: levers, exposures, exits, capability change, learning, entry, records
        (`Cohort.advance`: a single run is a cohort of one). A run stepped in a batch
        (`mittelbau.core.batch.ModelBatch`) only advances its clock here: the batch then steps
        its runs together."""
        if not self.batched:
            Cohort([self]).advance()

    def _start_projection(self) -> None:
        """At the 2015 state: the mean trait factors the hazards are normalised by from 2016
        (`dynamics.trait_norms`), the firms the verdict indicators follow, and the first firm
        table of the economics' accounting."""
        s = self.state
        self.trait_norms = trait_norms(s, self.params)
        self.start_stage = s.stage.copy()
        self.start_small = s.size <= SIZE_CLASSES.index("50-99")
        self.start_firm = self.firm_id.copy()
        self.exit_stage[:] = 0
        c = competence_by_stage(s.techniques, s.stage)
        self.start_gap = float(c[2] - c[0])  # the competence gap of the 2015 state
        if not self.outcomes_only:
            self.economics = Economics(s, self.params, self.population_scale, self.economics_rng.spawn(1)[0])

    def _end_year(self, stage: np.ndarray | None = None) -> None:
        """The year's records (`stage`: the firms' stages, when known); the run goes on until
        its horizon."""
        self._record(stage)
        self.running = self.year < START_YEAR + self.params.years

    def run(self) -> MittelbauModel:
        """Run to the horizon, `years` after 2015, from where the model is (2015 after the
        run-up; its first year with `run_up=False`); a model at its horizon stays there."""
        while self.running:
            self.step()
        return self

    # ---- entry and exit -----------------------------------------------------------------------
    def _enter(self, rows: np.ndarray, entrants: FirmTable, cells: np.ndarray) -> None:
        """Exiting firms have left; `entrants` of the region's structure (`Cohort.enter`, their
        rows of the table written already; read only by the economics) take their rows,
        keeping the row's value-chain position and customer–supplier ties (the market slot).
        The row's agent handle stays; the occupant gets a new firm_id and entry year. `cells`:
        the entrants' types."""
        self.firm_id[rows] = self.firm_id.max() + 1 + np.arange(len(rows))
        self.entry_year[rows] = self.year
        self.bm_introduced[rows] = 0
        for lever in self.levers:
            lever.drop_rows(rows)
        if self.reach is not None:
            self.reach.drop_rows(rows)
        if self.economics is not None:
            self.economics.enter(rows, entrants, self.economics_rng.spawn(1)[0])
        self._customer_power = None  # entrants change sizes
        self.cell[rows] = cells
        if self.ties is not self.network_ties:
            self._drop_project_ties(rows)

    def _drop_project_ties(self, rows: np.ndarray) -> None:
        """The cooperation projects' ties of the firms leaving `rows` leave with them: an entrant
        takes over the row's network ties (its market slot), not its predecessor's partners."""
        project = self.ties - self.network_ties  # the ties the network does not have
        project.eliminate_zeros()
        project = project.tocoo()
        gone = np.zeros(self.ties.shape[0], dtype=bool)
        gone[rows] = True
        keep = ~(gone[project.row] | gone[project.col])
        if keep.all():  # none of the leaving firms was in a project
            return
        kept = sparse.csr_array(
            (project.data[keep], (project.row[keep], project.col[keep])), shape=project.shape
        )
        ties = (self.network_ties + kept).tocsr()
        ties.data[:] = 1.0
        if ties.nnz == self.network_ties.nnz:  # no project tie left
            self.ties, self.tie_degree = self.network_ties, self.network_tie_degree
        else:
            self.ties, self.tie_degree = ties, degree(ties)

    def add_ties(self, groups: list[np.ndarray]) -> None:
        """Tie the firms of each group to one another (cooperation projects); the ties last
        while both firms stay (`_drop_project_ties`)."""
        if not groups:
            return
        pairs = [np.array(np.meshgrid(g, g)).reshape(2, -1) for g in groups]
        r, c = np.concatenate(pairs, axis=1)
        keep = r != c
        extra = sparse.csr_array((np.ones(keep.sum()), (r[keep], c[keep])), shape=self.ties.shape)
        self.ties = (self.ties + extra).tocsr()
        self.ties.data[:] = 1.0
        self.tie_degree = degree(self.ties)

    # ---- records ------------------------------------------------------------------------------
    def _record(self, stage: np.ndarray | None = None) -> None:
        """The year's records (`stage`: the firms' stages, when known)."""
        s = self.state
        stage = s.stage if stage is None else stage
        self._competence = None  # this year's, computed when read (`recorded_competence`)
        if self.outcomes_only:
            # only what the outcomes at the horizon read: no records of the run-up and no tables
            if self.year >= START_YEAR:
                self.recorded_shares = np.bincount(stage - 1, minlength=3) / len(s)
                record_for_horizon(self, self.horizon_rows, self.year == START_YEAR + self.params.years)
            return
        stage = stage - 1
        counts = [np.bincount(stage, minlength=3)[None, :]]
        for codes, k in ((s.size, len(SIZE_CLASSES)), (s.industry, len(INDUSTRIES))):
            counts.append(np.bincount(codes * 3 + stage, minlength=k * 3).reshape(k, 3))
        self.stage_counts.append(np.vstack(counts))
        self.recorded_shares = counts[0][0] / len(s)  # read by the reporters: computed once
        if self.economics is not None:
            first = self.firm_id == self.start_firm  # rows still held by a 2015 firm
            self.economics.record(s, first & (self.start_stage == 1) & (s.stage == 1))
        self.datacollector.collect(self)

    @property
    def recorded_competence(self) -> np.ndarray:
        """Mean digital techniques by stage in the year last recorded (nan before the 2015
        state: techniques are the 2015/16 survey readings), computed on first read."""
        if self._competence is None:
            s = self.state
            self._competence = (
                competence_by_stage(s.techniques, s.stage) if self.year >= START_YEAR else np.full(3, np.nan)
            )
        return self._competence

    def yearly_outcomes(self) -> pd.DataFrame:
        """The yearly outcomes recorded (Mesa's DataCollector table; for a run keeping only its
        outcomes, the years from 2015 with the values the summaries at the horizon read)."""
        if self.outcomes_only:
            return pd.DataFrame(self.horizon_rows)
        return self.datacollector.get_model_vars_dataframe().reset_index(drop=True)

    @property
    def motive_totals(self) -> dict[str, int]:
        """BM introductions per motive since 2015 (the run-up's are in `bm_motives`)."""
        since = self.bm_motives[self.runup_years :]
        total = np.sum(since, axis=0) if since else np.zeros(len(MOTIVES))
        return {m: int(c) for m, c in zip(MOTIVES, total, strict=True)}


def resolve_region_defaults(params: Params, region) -> Params:
    """Parameters whose 0 means 'the region's value' take it from the region file: the
    region's firm count and its mean service revenue share (sources §2.12)."""
    fill = {}
    if params.region_firms == 0:
        fill["region_firms"] = region.firms
    if params.service_revenue_mean == 0:
        fill["service_revenue_mean"] = region.service_revenue_mean
    if not fill:
        return params
    _valid_region_values(region.code)  # the region's values pass the registry's ranges
    return params.model_copy(update=fill)


@functools.cache
def _valid_region_values(code: str) -> None:
    """Validate a region's firm count and mean service revenue share as registry values
    (once per region; an error names the value and what is allowed)."""
    region = load_region(code)
    make_params(
        {"region_firms": region.firms, "service_revenue_mean": region.service_revenue_mean},
        f"region {code}",
    )


def combined_boost(n: int, actions: list[LeverYear]) -> Boost:
    """The levers' hazard multipliers multiply; any funding lifts the financing constraint."""
    boost = Boost.none(n)
    dt, bm, relief = boost.dt, boost.bm, boost.finance_relief
    for act in actions:
        if act.dt is not None:
            dt = dt * act.dt
        if act.bm is not None:
            bm = bm * act.bm
        if act.finance_relief is not None:
            relief = relief | act.finance_relief
    return Boost(dt, bm, relief)


def _ratio(x: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """x relative to its expectation `ref` (1 where nothing is expected)."""
    return np.divide(x, ref, out=np.ones_like(x, dtype=float), where=ref > 1e-12)


def _group_mean(x: np.ndarray, group: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Per firm: the mean of `x` over the firms of its group (`counts`: firms per group, at
    least 1)."""
    sums = np.bincount(group, weights=x.astype(float), minlength=len(counts))
    return (sums / counts)[group]


class Cohort:
    """Runs of the model of one region at the same year, stepped as one: each run draws from
    its own streams in the order of a run alone and keeps its own programmes, economics and
    records (`_RunYear`), while everything else runs once over the rows of all runs stacked
    (`mittelbau.core.stacking`): the mechanisms (each on the firms of the runs that switch it
    on), exposures, base hazards, exit and capability change, the gains' items and motives,
    leapfrogging, learning, the entrants and their rows, the year's moves. Every operation is
    elementwise per firm or sums within a run, so each run's numbers are exactly those of the
    run alone. One model is a cohort of one."""

    def __init__(self, runs: list[MittelbauModel]) -> None:
        regions = sorted({m.params.region for m in runs})
        if len(regions) > 1:
            raise ValueError(
                f"runs of regions {', '.join(regions)} stepped as one; allowed: runs of one region"
            )
        self.runs = runs
        self.single = len(runs) == 1
        self.sizes = [len(m.state) for m in runs]
        self.parts = parts_of(self.sizes)
        self.run = np.repeat(np.arange(len(runs)), self.sizes)  # each row's run
        self.params = runs[0].params if self.single else RowParams([m.params for m in runs], self.sizes)
        self.state = runs[0].state
        self._stacked = StackedTables(self.parts)
        # runs spawning through `streams.Seeds` (a batch's) hash their seeds together, a few
        # years ahead (`settle_ahead`)
        self.together = not self.single and all(isinstance(m.rng.bit_generator.seed_seq, Seeds) for m in runs)
        self._settled = 0  # years ahead whose seeds are hashed
        self._customers: tuple[sparse.csr_array, np.ndarray] | None = None
        self._types: tuple[np.ndarray, np.ndarray] | None = None
        self._ties: tuple[list[sparse.csr_array], sparse.csr_array, np.ndarray] | None = None
        self._network_ties: tuple[sparse.csr_array, np.ndarray] | None = None
        # this year's expected partner adoption and peer terms (`exposure`, `network_exposure`)
        self._partner_terms: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        # each run's rows left in each year, kept when a batch asks (`MittelbauModel.adopt_runup`)
        self.exits: list[list[np.ndarray]] | None = None

    def settle_ahead(self, years: int) -> int:
        """Hash the seeds of the core and mechanism streams of all runs for the year being
        simulated and the `years` − 1 after it in one pass (`streams.settle`; the runs' streams
        are `streams.Seeds`); returns `years`."""
        year = self.runs[0].year
        settle(
            [
                seeds
                for m in self.runs
                for ahead in range(years)
                for seeds in _RunYear.seeds(m, year + ahead > START_YEAR, ahead)
            ]
        )
        return years

    def stack(self, arrays: list[np.ndarray], axis: int = 0) -> np.ndarray:
        return arrays[0] if self.single else np.concatenate(arrays, axis=axis)

    def per_row(self, values: list[Any]) -> Any:
        return values[0] if self.single else per_row(values, self.sizes)

    def gather(self) -> None:
        """Stack the runs' tables (each run's own is used as it is when alone), reusing the
        columns of last year's stack that the runs still hold as views (`StackedTables`)."""
        self.state = self.runs[0].state if self.single else self._stacked.gather([m.state for m in self.runs])

    def spread(self) -> None:
        """Give each run its rows of the stack as its table (views)."""
        if not self.single:
            for m, view in zip(self.runs, self._stacked.spread(), strict=True):
                m.state = view

    def ties(self) -> tuple[sparse.csr_array, np.ndarray]:
        """The partner ties of the stacked runs and their degrees (rebuilt when a run's ties
        change: cooperation projects add ties)."""
        if self.single:
            return self.runs[0].ties, self.runs[0].tie_degree
        now = [m.ties for m in self.runs]
        if self._ties is None or any(a is not b for a, b in zip(self._ties[0], now, strict=True)):
            self._ties = (now, block_diagonal(now), np.concatenate([m.tie_degree for m in self.runs]))
        return self._ties[1], self._ties[2]

    def customers(self) -> tuple[sparse.csr_array, np.ndarray]:
        """The customer ties of the stacked runs and their degrees (fixed in a run)."""
        if self.single:
            return self.runs[0].customers, self.runs[0].customer_degree
        if self._customers is None:
            self._customers = (
                block_diagonal([m.customers for m in self.runs]),
                np.concatenate([m.customer_degree for m in self.runs]),
            )
        return self._customers

    def network_ties(self) -> tuple[sparse.csr_array, np.ndarray]:
        """The stacked runs' ties without the cooperation projects' and their degrees (fixed)."""
        if self.single:
            return self.runs[0].network_ties, self.runs[0].network_tie_degree
        if self._network_ties is None:
            ties = block_diagonal([m.network_ties for m in self.runs])
            self._network_ties = (ties, degree(ties))
        return self._network_ties

    def exposure(self, cells: np.ndarray | None = None) -> Exposure:
        """Adoption among peers, partners and customers at the start of the year, each relative
        to its expectation on the run-up's path (the 2015 expectation from 2016 on): the social
        terms do not shift the level the run-up is solved for, only deviations from it. Peers
        are the firms of the same industry in the same run (`cells`: `Cohort.cells`, found
        when not given). The partner term's parts stay for `network_exposure`."""
        s = self.state
        k = len(INDUSTRIES) * len(self.runs)
        group = s.industry if self.single else s.industry + len(INDUSTRIES) * self.run
        levels = [m.runup.levels_in(m.year - 1) for m in self.runs]
        cells = self.cells() if cells is None else cells
        e_bm = self.stack([bm for bm, _ in levels])[cells]
        e_dt = self.stack([dt for _, dt in levels])[cells]
        counts = np.maximum(np.bincount(group, minlength=k), 1)
        peer_bm, peer_dt, ref_bm, ref_dt = (_group_mean(x, group, counts) for x in (s.bm, s.dt, e_bm, e_dt))
        ties, tie_degree = self.ties()
        customers, customer_degree = self.customers()
        net_dt, ref_net_dt = neighbour_shares(ties, tie_degree, [s.dt, e_dt], [peer_dt, ref_dt])
        self._partner_terms = (e_dt, peer_dt, ref_dt)
        # final-product makers sell outside the region: their customers count as expected
        cust_bm, ref_cust_bm = neighbour_shares(customers, customer_degree, [s.bm, e_bm], [e_bm, e_bm])
        return Exposure(
            peer_bm=_ratio(peer_bm, ref_bm),
            social_dt=_ratio(net_dt + peer_dt, ref_net_dt + ref_dt),
            customer_bm=_ratio(cust_bm, ref_cust_bm),
        )

    def network_exposure(self, exposure: Exposure) -> Exposure:
        """The year's `exposure` (`Cohort.exposure`, just computed) with its partner term among
        the ties of the network alone, without the cooperation projects' — the deadweight's
        counterfactual; the peer and customer terms do not read the partner ties."""
        if self._partner_terms is None:
            raise ValueError("the network's exposure before the year's exposure; allowed: after `exposure`")
        e_dt, peer_dt, ref_dt = self._partner_terms
        ties, tie_degree = self.network_ties()
        net_dt, ref_net_dt = neighbour_shares(ties, tie_degree, [self.state.dt, e_dt], [peer_dt, ref_dt])
        return replace(exposure, social_dt=_ratio(net_dt + peer_dt, ref_net_dt + ref_dt))

    def leapfrog(
        self,
        exits: np.ndarray,
        before: np.ndarray,
        years: list[_RunYear],
        item_draw: np.ndarray,
        mech: MechanismYear | None,
    ) -> np.ndarray | None:
        """Leapfrogging of the runs that switch it on (`mechanisms.leapfrog_runs`, each run
        drawing from its own stream): stage-1 survivors that gained nothing this year, at the
        leap hazard times the year's DT and BM gain multipliers of the other mechanisms (`mech`;
        the levers' act on the firm's own hazards, not on a leap). Returns the firms that leapt
        (None when no run switches it on)."""
        flags = ["leapfrog" in m.mechanisms.on for m in self.runs]
        if not any(flags):
            return None
        where = True if all(flags) else np.repeat(flags, self.sizes)
        stayed = ~exits & (before == 1) & (self.state.stage == 1)
        leapers = [r for r, f in enumerate(flags) if f]
        rngs = [generator(years[r].mech_leap) for r in leapers]
        sizes = [self.sizes[r] for r in leapers]
        factor = 1.0 if mech is None else mech.dt_gain * mech.bm_gain
        return leapfrog_runs(self.state, stayed, item_draw, self.params, rngs, sizes, where, factor)

    def mechanisms(
        self,
        year: int,
        pressure: np.ndarray | float,
        years: list[_RunYear],
        unreached: FirmTable | None = None,
    ) -> MechanismYear | None:
        """The mechanisms' state updates at the start of the year (platform capture) and their
        hazard multipliers, for the runs stacked (`mechanisms.start_of_year`: each mechanism on
        the firms of the runs that switch it on); None when no run switches any on. With
        `unreached` (the firms without any programme contact): the multipliers of those firms,
        reached by no programme, and no update."""
        on_sets = [m.mechanisms.on for m in self.runs]
        if not any(on_sets):
            return None
        on: dict[str, np.ndarray | bool] = {}
        for name in NAMES:
            flags = [name in o for o in on_sets]
            if any(flags):
                on[name] = True if all(flags) else np.repeat(flags, self.sizes)
        u = self.stack(
            [
                np.ones(n) if y.u_capture is None else y.u_capture
                for y, n in zip(years, self.sizes, strict=True)
            ]
        )
        reached = self.stack([y.reached for y in years])
        if self.single:
            power = self.runs[0].power
        else:

            def power() -> np.ndarray:
                return customer_power(self.customers()[0], self.state.size)

        if unreached is not None:
            return start_of_year(
                unreached, year, pressure, np.zeros_like(reached), power, u, on, self.params, update=False
            )
        return start_of_year(self.state, year, pressure, reached, power, u, on, self.params)

    def unreached(
        self,
        years: list[_RunYear],
        exposure: Exposure,
        pressure: np.ndarray | float,
        mech: MechanismYear | None,
    ) -> tuple[FirmTable, Exposure, MechanismYear | None]:
        """The firms as they would be without any programme contact, for the deadweight's
        counterfactual (`dynamics.change_capabilities`): the engagement and techniques before
        the programmes changed them (`_RunYear.untouched`), their exposure among the partners of
        the network alone, and the mechanisms' multipliers with no firm reached."""
        s = self.state

        def untouched(k: int, column: np.ndarray) -> np.ndarray:  # a run without levers: as it is
            parts = zip(years, self.parts, strict=True)
            return self.stack([column[part] if y.untouched is None else y.untouched[k] for y, part in parts])

        state = replace(s, engagement=untouched(0, s.engagement), techniques=untouched(1, s.techniques))
        changed = any(m.ties is not m.network_ties for m in self.runs)
        seen = self.network_exposure(exposure) if changed else exposure
        year = self.runs[0].year
        return state, seen, None if mech is None else self.mechanisms(year, pressure, years, unreached=state)

    def cells(self) -> np.ndarray:
        """Each row's type, as a row of the runs' type tables stacked (`type_tables`)."""
        if self.single:
            return self.runs[0].cell
        return self.stack([m.cell for m in self.runs]) + self.run * len(self.runs[0].runup.h_bm)

    def type_tables(self) -> tuple[np.ndarray, np.ndarray]:
        """The runs' run-up hazards per type (`RunUp.h_dt`, `RunUp.h_bm`), stacked run by run."""
        if self._types is None:
            self._types = (
                self.stack([m.runup.h_dt for m in self.runs]),
                self.stack([m.runup.h_bm for m in self.runs]),
            )
        return self._types

    def base_hazards(self, cells: np.ndarray) -> BaseHazards:
        """Each firm's type hazards for the year being simulated: its run's run-up hazards of
        the firm's type (`cells`: `Cohort.cells`), switched off before the run's DT wave,
        times its projection factors from 2016 on, and (from 2016) the mean trait factors of
        the firm's size class and DT status in its run (`dynamics.trait_norms`)."""
        s, year = self.state, self.runs[0].year
        projecting = year > START_YEAR
        h_dt, h_bm = self.type_tables()
        wave = [year >= m.runup.dt_wave_start_year for m in self.runs]
        dt_factor = [
            w * (m.params.dt_adoption_factor if projecting else 1.0)
            for w, m in zip(wave, self.runs, strict=True)
        ]
        bm_factor = [m.params.bm_adoption_factor if projecting else 1.0 for m in self.runs]
        dt_loss = [m.params.dt_loss_rate if w else 0.0 for w, m in zip(wave, self.runs, strict=True)]
        dt_norm = bm_norm = None
        if projecting and self.runs[0].trait_norms:
            size = s.size if self.single else s.size + len(SIZE_CLASSES) * self.run
            dt_norm = self.stack([m.trait_norms[0] for m in self.runs])[size]
            bm_norm = self.stack([m.trait_norms[1] for m in self.runs])[size, s.dt.astype(int)]
        return BaseHazards(
            dt=h_dt[cells, s.bm.astype(np.int64)] * self.per_row(dt_factor),
            bm=h_bm[cells] * self.per_row(bm_factor),
            dt_loss=self.per_row(dt_loss),
            dt_norm=dt_norm,
            bm_norm=bm_norm,
        )

    def advance(self) -> None:
        """One year of every run: levers, exposures, exits, capability change, learning, entry,
        records."""
        year = self.runs[0].year
        if any(m.year != year for m in self.runs):
            raise ValueError(f"runs at years {[m.year for m in self.runs]}; allowed: runs at one year")
        # programmes start in 2016 at the earliest (registry): none acts in the run-up; the
        # mechanisms act from 2016, like traits, levers and learning: the run-up is solved
        # without them, so it still arrives at the 2015 survey state (their streams advance anyway)
        projecting = year > START_YEAR
        if self.together:
            # the seeds of the core and mechanism streams of the next few years, then the
            # economics' seeds of this year
            if self._settled == 0:
                self._settled = self.settle_ahead(SETTLE_YEARS)
            self._settled -= 1
            settle([seeds for m in self.runs for seeds in _RunYear.economics_seeds(m)])
        years = [_RunYear.start(m, year, projecting) for m in self.runs]
        self.gather()
        s, p = self.state, self.params
        pressure = self.per_row([y.pressure for y in years])
        cells, before = self.cells(), self.stack([y.before for y in years])
        exposure = self.exposure(cells)  # after the levers: cooperation adds ties
        mech = self.mechanisms(year, pressure, years) if projecting else None
        boost = None
        if any(y.actions for y in years):
            boosts = [
                combined_boost(n, [act for _, act in y.actions])
                for y, n in zip(years, self.sizes, strict=True)
            ]
            boost = Boost(
                *(self.stack([getattr(b, f) for b in boosts]) for f in ("dt", "bm", "finance_relief"))
            )
        # the shock's demand slump multiplies every exit hazard in its years (1.0 otherwise)
        slump = self.per_row([shock_exit_multiplier(year, m.params) for m in self.runs])
        h_exit = exit_hazard(s, pressure, p) * slump * (1.0 if mech is None else mech.exit)
        exits = self.stack([y.u_exit for y in years]) < hazard_to_probability(h_exit)
        u = self.stack([y.u for y in years], axis=1)
        base = self.base_hazards(cells)
        # the counterfactual of 'anyway' only in a year the programmes reach a firm: only the
        # moves of reached firms are counted against it
        reaching = boost is not None and any(y.reached.any() for y in years)
        unreached = self.unreached(years, exposure, pressure, mech) if reaching else None
        change = change_capabilities(s, base, exposure, pressure, ~exits, p, u, boost, mech, unreached)
        # the gains' DT items and motives, each run's from its side stream
        item_draw = self.runs[0].props.dt_item_draw
        motives = draw_gains_runs(s, change, item_draw, [y.side for y in years], self.run)
        leap = self.leapfrog(exits, before, years, item_draw, mech) if projecting else None
        if leap is not None and unreached is not None:
            # a leap 'anyway' where the firm would have been engaged enough without the programmes
            change.anyway[leap] &= unreached[0].engagement[leap] >= PARTNERS
        self.spread()
        for m, y, part, counts in zip(self.runs, years, self.parts, motives, strict=True):
            y.gained(m, change.rows(part), counts, None if leap is None else leap[part])
        if projecting:  # learning, each run's from its core stream (after its leapfrogging)
            draws = self.stack(
                [learning_draws(y.core, n) for y, n in zip(years, self.sizes, strict=True)], axis=1
            )
            learn_and_engage(self.state, pressure, p, draws)
        leaving = [
            y.finish(m, exits[part], change.rows(part))
            for m, y, part in zip(self.runs, years, self.parts, strict=True)
        ]
        if self.exits is not None:
            for kept, rows in zip(self.exits, leaving, strict=True):
                kept.append(rows)
        self.enter(leaving, years)
        stage = self.state.stage
        moves = self.transitions(before, exits, stage)
        for m, y, part, matrix in zip(self.runs, years, self.parts, moves, strict=True):
            y.close(m, matrix, stage[part])

    def transitions(self, before: np.ndarray, exits: np.ndarray, after: np.ndarray) -> np.ndarray:
        """Each run's moves of the year (runs × from × to, stages 1–3 and 0 = outside): the
        survivors' stages `before` and `after`, the `exits`' stages before, the entrants' after."""
        runs, stay = len(self.runs), ~exits
        flat = ((self.run * 4 + before) * 4 + after)[stay]
        matrix = np.bincount(flat, minlength=16 * runs).reshape(runs, 4, 4)
        left, entered = self.run[exits] * 4, 4 * runs
        matrix[:, 1:, 0] = np.bincount(left + before[exits], minlength=entered).reshape(runs, 4)[:, 1:]
        matrix[:, 0, 1:] = np.bincount(left + after[exits], minlength=entered).reshape(runs, 4)[:, 1:]
        return matrix

    def enter(self, leaving: list[np.ndarray], years: list[_RunYear]) -> None:
        """Entrants (`entrants`) into the rows each run's exits left: their mechanism states,
        each run's drawn from its own stream, and the rows of the table written once for the
        stack; then each run's own bookkeeping of its entrants (`MittelbauModel._enter`)."""
        sizes = [len(rows) for rows in leaving]
        entrants = self.entrants(leaving, years)
        entering = [r for r, k in enumerate(sizes) if k]
        if not entering:
            return
        draw_states(
            entrants,
            [self.runs[r].params for r in entering],
            [generator(years[r].mech_entry) for r in entering],
            [sizes[r] for r in entering],
        )
        rows = [part.start + r for part, r in zip(self.parts, leaving, strict=True)]
        self.state.replace_rows(self.stack(rows), entrants, keep=("position",))
        cells = MittelbauModel._cells(entrants)
        for r, part in enumerate(parts_of(sizes)):
            if sizes[r]:
                m = self.runs[r]
                # a run's own table of its entrants only where its economics reads them
                own = entrants if self.single or m.economics is None else table_rows(entrants, part)
                m._enter(leaving[r], own, cells[part])

    def entrants(self, leaving: list[np.ndarray], years: list[_RunYear]) -> FirmTable:
        """Each run's entrants for its exits' rows (the table of all runs' entrants, run by
        run), drawn from the run's entry stream and computed for all runs at once
        (`population.synthesise_stack`, each run's as drawn alone): like the firms of their
        type in the entry year (the 2015 state later)."""
        return synthesise_stack(
            self.runs[0].region,
            [len(rows) for rows in leaving],
            [y.entry for y in years],
            [m.runup.state_in(m.year) for m in self.runs],
        )


@dataclass
class _RunYear:
    """One run's part of a year: its streams and pressure, its programmes' actions and its
    mechanisms' multipliers (drawn before the stacked kernels), then its own bookkeeping."""

    year: int
    projecting: bool
    pressure: float
    core: np.random.Generator
    entry: np.random.Generator
    # the seeds of the streams of leapfrogging and of the entrants' mechanism states (numpy's
    # SeedSequence, or `Seeds` in a batch), made into generators only when a year draws from them
    mech_leap: np.random.SeedSequence | Seeds
    mech_entry: np.random.SeedSequence | Seeds
    before: np.ndarray
    actions: list[tuple[Any, LeverYear]]
    reached: np.ndarray  # reached by a programme this year
    u_capture: np.ndarray | None  # the mechanisms' draws at the start of the year
    u_exit: np.ndarray
    u: np.ndarray
    side: np.random.Generator
    # the engagement and techniques without any programme contact (None: no programme acts)
    untouched: tuple[np.ndarray, np.ndarray] | None
    motives: np.ndarray = field(init=False)

    @staticmethod
    def seeds(m: MittelbauModel, projecting: bool, ahead: int = 0) -> list[Seeds]:
        """The seeds of the core and mechanism streams `start` spawns (three of each a year),
        and of the side streams spawned from them, that a year draws from (not spawned yet):
        the year about to start, or that `ahead` years later (`projecting`: whether that year
        is after 2015). A batch hashes those of all its runs for a few years together
        (`Cohort.settle_ahead`)."""
        core, mech = m.rng.bit_generator.seed_seq, m.mechanism_rng.bit_generator.seed_seq
        i, k = core.n_children_spawned + 3 * ahead, mech.n_children_spawned + 3 * ahead
        # the core dynamics' stream and its side stream (`capability_draws`), the entrants',
        # and the entrants' mechanism states
        this = core.child(i)
        used = [this, this.child(0), core.child(i + 1), mech.child(k + 2)]
        if projecting:
            if m.levers:
                used.append(core.child(i + 2))
            if m.mechanisms:  # their start of the year, leapfrogging and its side stream of items
                leap = mech.child(k + 1)
                used += [mech.child(k), leap, leap.child(0)]
        return used

    @staticmethod
    def economics_seeds(m: MittelbauModel) -> list[Seeds]:
        """The seed of the economics' stream of the next year's entrants or of its 2015
        accounting (one a year at most; none in a run keeping only its outcomes)."""
        if m.outcomes_only:
            return []
        economics = m.economics_rng.bit_generator.seed_seq
        return [economics.child(economics.n_children_spawned)]

    @classmethod
    def start(cls, m: MittelbauModel, year: int, projecting: bool) -> _RunYear:
        s = m.state
        pressure = m.pressure_in(year)
        # one stream each for the core dynamics, the entrants and the levers, spawned anew every
        # year, so that a lever's own draws never shift the draws of the same-seed run without it
        # (their seeds: a generator is made only for a stream the year draws from)
        core, entry, lever_seeds = m.rng.bit_generator.seed_seq.spawn(3)
        core, entry = generator(core), generator(entry)
        mech_start, mech_leap, mech_entry = m.mechanism_rng.bit_generator.seed_seq.spawn(3)
        before = s.stage
        acting = m.levers if projecting else []
        lever_rng = generator(lever_seeds) if acting else None
        # the firms' engagement and techniques before this year's contacts, and without what
        # earlier contacts changed for good (`Lever.undo_contact`): the deadweight's counterfactual
        untouched = (s.engagement.copy(), s.techniques.copy()) if acting else None
        for lever in acting:
            lever.undo_contact(*untouched)
        actions = [(lever, lever.act(m, year, lever_rng)) for lever in acting]
        reached = np.zeros(len(s), dtype=bool)
        for lever, act in actions:
            lever.note_reach(act.reached, s)
            reached |= act.reached
        if acting:
            m.reach.note(reached, s)
        # the mechanisms' capture draws (with any mechanism on), one per firm
        u_capture = generator(mech_start).random(len(s)) if projecting and m.mechanisms else None
        u_exit = core.random(len(s))
        u, side = capability_draws(core, len(s))
        return cls(
            year,
            projecting,
            pressure,
            core,
            entry,
            mech_leap,
            mech_entry,
            before,
            actions,
            reached,
            u_capture,
            u_exit,
            u,
            side,
            untouched,
        )

    def gained(
        self, m: MittelbauModel, change: CapabilityChange, motives: np.ndarray, leap: np.ndarray | None
    ) -> None:
        """After the capability change, its gains' draws (`dynamics.draw_gains_runs`, the BM
        introductions per motive `motives`) and leapfrogging (`Cohort.leapfrog`, the firms that
        leapt): the year of each BM introduction."""
        self.motives = motives
        m.bm_introduced[change.gain_bm] = self.year
        if leap is not None:
            m.bm_introduced[leap] = self.year

    def finish(self, m: MittelbauModel, exits: np.ndarray, change: CapabilityChange) -> np.ndarray:
        """After learning (`dynamics.learn_and_engage`): training, the programmes' records and
        exit; returns the rows of the firms leaving (`Cohort.enter` fills them with entrants)."""
        s, year, before = m.state, self.year, self.before
        if self.projecting:
            m.mechanisms.after_learning(s)
        moved_up = ~exits & (s.stage > before) if self.actions else None
        for lever, act in self.actions:
            up = act.reached & moved_up
            m.lever_records.append(
                (
                    year,
                    lever.name,
                    act.spent_eur,
                    int(act.reached.sum()),
                    int(up.sum()),
                    int((up & change.anyway).sum()),
                )
            )
        rows = np.flatnonzero(exits)
        first = rows[m.firm_id[rows] == m.start_firm[rows]]  # 2015 firms leaving now
        m.exit_stage[first] = before[first]
        if m.economics is not None:
            m.economics.grow()
            m.economics.exit(rows, s, before[rows])
        return rows

    def close(self, m: MittelbauModel, matrix: np.ndarray, stage: np.ndarray) -> None:
        """After entry (`Cohort.enter`): the year's moves (`Cohort.transitions`: from × to, 0 =
        outside), the 2015 traits and verdicts, records (`stage`: the firms' stages now)."""
        s, year = m.state, self.year
        m.transitions.append(matrix)
        m.bm_motives.append(self.motives)
        if year == START_YEAR:
            # the 2015/16 survey traits, given the run-up's DT state; from 2016 they act on
            # the hazards, normalised so that each type's mean hazard carries on
            draw_survey_traits(s, self.core)
            m._start_projection()
        m._end_year(stage)
