"""The Mesa model: a region's manufacturing SMEs moving between business-model stages."""

from __future__ import annotations

import functools
from typing import Any

import mesa
import numpy as np
from mesa.experimental.scenarios import Scenario as MesaScenario
from scipy import sparse

from mittelbau.core.categories import INDUSTRIES, SIZE_CLASSES, START_YEAR
from mittelbau.core.dynamics import (
    MOTIVES,
    BaseHazards,
    Boost,
    Exposure,
    change_capabilities,
    exit_hazard,
    hazard_to_probability,
    learn_and_engage,
    trait_norms,
)
from mittelbau.core.economics import Economics
from mittelbau.core.firm import Firm
from mittelbau.core.indicators import competence_by_stage, stage_shares
from mittelbau.core.mechanisms import Mechanisms, customer_power, draw_state
from mittelbau.core.network import degree, neighbour_share, supplier_network
from mittelbau.core.outcomes import reporters
from mittelbau.core.population import cell_index, draw_survey_traits, synthesise
from mittelbau.core.propensities import load_propensities
from mittelbau.core.region_data import load_region
from mittelbau.core.runup import pressure_index, solve_runup
from mittelbau.core.scenario import Params, make_params
from mittelbau.levers import LeverYear, build_levers


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


class MittelbauModel(mesa.Model):
    """Firms of one region, run up from `runup_start_year` to the 2015 survey state on
    construction, then stepped one year at a time.

    Build with a validated `Params` (see `mittelbau.core.scenario`) and/or keyword overrides
    of the registry defaults: `MittelbauModel(region="nord", firms=2000, rng=7)`. The seed
    follows Mesa: `rng=` (or `seed=`) takes an integer, a SeedSequence or Generator, or None
    for a fresh seed; left out, the run uses the seed of `params` (the registry default). A
    Mesa `scenario=` (SolaraViz passes one on Reset) gives its `rng` and registry overrides.
    `running` turns False at the horizon `years`, so `mesa.batch_run` stops there.
    """

    def __init__(
        self,
        params: Params | None = None,
        *,
        rng: SeedArg = UNSET,
        seed: SeedArg = UNSET,
        scenario: MesaScenario | None = None,
        **overrides: Any,
    ) -> None:
        if rng is not UNSET and seed is not UNSET and rng is not None and seed is not None:
            raise ValueError(f"rng = {rng!r} and seed = {seed!r} given; allowed: one of them")
        given = rng if rng is not UNSET else seed
        if scenario is not None:
            extra = {k: v for k, v in scenario if k not in ("model", "rng")}
            overrides = {**extra, **overrides}
            if given is UNSET and scenario.rng is not None:
                given = scenario.rng
        if not isinstance(given, _Unset):
            overrides["seed"] = root_seed(given)
        params = make_params(overrides) if params is None else params.with_overrides(overrides)
        super().__init__(rng=params.seed)
        self.region = load_region(params.region)
        params = resolve_region_defaults(params, self.region)
        self.params = params
        self.props = load_propensities()
        self.runup = solve_runup(params.region, params)
        self.first_year = self.runup.first_year
        self.state = synthesise(self.region, params.firms, self.rng, self.runup.state_in(self.first_year))
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
        # mean trait factors of the 2015 state (dynamics.trait_norms); None during the run-up
        self.trait_norms: tuple[np.ndarray, np.ndarray] | None = None
        # a Firm agent is the handle of one row (a market slot); the firm occupying the row is
        # identified by firm_id and changes on exit and entry
        self.firm_id = np.arange(params.firms)
        self.entry_year = np.full(params.firms, self.first_year)
        # year of each firm's latest BM introduction in the run (0: none since the start), for
        # the hazard target of sources §4.1
        self.bm_introduced = np.zeros(params.firms, dtype=np.int64)
        # the Firm handles are made on the first request for agents (`_firm_handles`)
        self._firm_at: list[Firm] | None = None
        # spawned in every run, levers or not, so the yearly streams stay aligned across runs
        lever_root = self.rng.spawn(1)[0]
        self.levers = build_levers(params, params.firms, lever_root)
        # the switchable mechanisms (model/core/mechanisms.py) draw from their own root, a child
        # of the levers' root (which never spawns otherwise): their draws shift no other stream
        self.mechanisms = Mechanisms(params)
        self.mechanism_rng = lever_root.spawn(1)[0]
        draw_state(self.state, params, self.mechanism_rng.spawn(1)[0])
        self.customer_power = customer_power(self.customers, self.state.size)
        # firm economics (model/core/economics.py) draw from a third child of the levers' root;
        # its accounting starts with the 2015 state (None during the run-up)
        self.economics_rng = lever_root.spawn(1)[0]
        self.economics: Economics | None = None
        # the verdict indicators follow the 2015 firms (`_start_verdicts`, at the end of the
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
        self._record()
        # the run-up: the same yearly dynamics up to the 2015 survey state
        self.run_for(START_YEAR - self.first_year)
        self.running = params.years > 0

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
        end of the 2015 survey year; linear, not below 0)."""
        return pressure_index(year, self.params.digital_pressure_growth)

    def exposure(self) -> Exposure:
        """Adoption among peers, partners and customers at the start of the year, each relative
        to its expectation on the run-up's path (the 2015 expectation from 2016 on): the social
        terms do not shift the level the run-up is solved for, only deviations from it."""
        s = self.state
        k = len(INDUSTRIES)
        expected = self.runup.state_in(self.year - 1)[self.cell]  # firms × BM × DT
        e_bm, e_dt = expected[:, 1].sum(axis=1), expected[:, :, 1].sum(axis=1)
        peer_bm, peer_dt = _group_mean(s.bm, s.industry, k), _group_mean(s.dt, s.industry, k)
        ref_bm, ref_dt = _group_mean(e_bm, s.industry, k), _group_mean(e_dt, s.industry, k)
        net_dt = neighbour_share(self.ties, self.tie_degree, s.dt, peer_dt)
        ref_net_dt = neighbour_share(self.ties, self.tie_degree, e_dt, ref_dt)
        # final-product makers sell outside the region: their customers count as expected
        cust_bm = neighbour_share(self.customers, self.customer_degree, s.bm, e_bm)
        ref_cust_bm = neighbour_share(self.customers, self.customer_degree, e_bm, e_bm)
        return Exposure(
            peer_bm=_ratio(peer_bm, ref_bm),
            social_dt=_ratio(net_dt + peer_dt, ref_net_dt + ref_dt),
            customer_bm=_ratio(cust_bm, ref_cust_bm),
        )

    def base_hazards(self) -> BaseHazards:
        """Each firm's type hazards for the year being simulated (`dynamics.BaseHazards`)."""
        p, year = self.params, self.year
        wave = year >= self.runup.dt_wave_start_year
        projecting = year > START_YEAR
        h_dt = self.runup.h_dt[self.cell, self.state.bm.astype(np.int64)]
        h_bm = self.runup.h_bm[self.cell]
        dt_norm, bm_norm = self.trait_norms if projecting and self.trait_norms else (None, None)
        return BaseHazards(
            dt=h_dt * (wave * (p.dt_adoption_factor if projecting else 1.0)),
            bm=h_bm * (p.bm_adoption_factor if projecting else 1.0),
            dt_loss=p.dt_loss_rate if wave else 0.0,
            dt_norm=dt_norm,
            bm_norm=bm_norm,
        )

    @staticmethod
    def _cells(table) -> np.ndarray:
        return cell_index(table.industry, table.size, table.batch, table.complexity, table.service_strategy)

    # ---- the step -----------------------------------------------------------------------------
    def step(self) -> None:
        """One year: levers, exposures, exits, capability change, learning, entry, records."""
        p, s = self.params, self.state
        pressure = self.pressure_in(self.year)
        # one stream each for the core dynamics, the entrants and the levers, spawned anew every
        # year, so that a lever's own draws never shift the draws of the same-seed run without it
        core, entry, lever_rng = self.rng.spawn(3)
        mech_start, mech_leap, mech_entry = self.mechanism_rng.spawn(3)
        before = s.stage
        # programmes start in 2016 at the earliest (registry): none acts in the run-up
        levers = self.levers if self.year > START_YEAR else []
        actions = [(lever, lever.act(self, self.year, lever_rng)) for lever in levers]
        for lever, act in actions:
            lever.note_reach(act.reached, s)
        exposure = self.exposure()  # after the levers: cooperation adds ties
        reached = np.zeros(len(s), dtype=bool)
        for _, act in actions:
            reached |= act.reached
        # the mechanisms act from 2016, like traits, levers and learning: the run-up is solved
        # without them, so it still arrives at the 2015 survey state (their streams advance anyway)
        projecting = self.year > START_YEAR
        mech = (
            self.mechanisms.start_year(s, self.year, pressure, reached, self.customer_power, mech_start)
            if projecting
            else None
        )
        h_exit = exit_hazard(s, pressure, p) * (1.0 if mech is None else mech.exit)
        exits = core.random(len(s)) < hazard_to_probability(h_exit)
        change = change_capabilities(
            s,
            self.base_hazards(),
            exposure,
            pressure,
            ~exits,
            p,
            self.props.dt_item_draw,
            core,
            boost=combined_boost(len(s), [act for _, act in actions]) if actions else None,
            mech=mech,
        )
        motives = change.bm_motives
        self.bm_introduced[change.gain_bm] = self.year
        if projecting:
            if self.mechanisms:
                stayed = ~exits & (before == 1) & (s.stage == 1)
                leap = self.mechanisms.after_change(s, stayed, self.props.dt_item_draw, mech_leap)
                self.bm_introduced[leap] = self.year
            learn_and_engage(s, pressure, p, core)
            self.mechanisms.after_learning(s)
        moved_up = ~exits & (s.stage > before)
        for lever, act in actions:
            up = act.reached & moved_up
            self.lever_records.append(
                (
                    self.year,
                    lever.name,
                    act.spent_eur,
                    int(act.reached.sum()),
                    int(up.sum()),
                    int((up & change.anyway).sum()),
                )
            )
        rows = np.flatnonzero(exits)
        first = rows[self.firm_id[rows] == self.start_firm[rows]]  # 2015 firms leaving now
        self.exit_stage[first] = before[first]
        if self.economics is not None:
            self.economics.grow()
            self.economics.exit(rows, s, before[rows])
        self._replace(rows, entry, mech_entry)
        after = s.stage
        stay = ~exits
        flat = before[stay].astype(np.int64) * 4 + after[stay]
        matrix = np.bincount(flat, minlength=16).reshape(4, 4)  # from × to, 0 = outside
        matrix[1:, 0] = np.bincount(before[exits], minlength=4)[1:]
        matrix[0, 1:] = np.bincount(after[exits], minlength=4)[1:]
        self.transitions.append(matrix)
        self.bm_motives.append(motives)
        if self.year == START_YEAR:
            # the 2015/16 survey traits, given the run-up's DT state; from 2016 they act on
            # the hazards, normalised so that each type's mean hazard carries on
            draw_survey_traits(s, core)
            self.trait_norms = trait_norms(s, p)
            self._start_verdicts()
        self._record()
        self.running = self.year < START_YEAR + p.years

    def _start_verdicts(self) -> None:
        """At the 2015 state: the firms the verdict indicators follow, and the first firm table
        of the economics' accounting."""
        s = self.state
        self.start_stage = s.stage.copy()
        self.start_small = s.size <= SIZE_CLASSES.index("50-99")
        self.start_firm = self.firm_id.copy()
        self.exit_stage[:] = 0
        self.economics = Economics(s, self.params, self.population_scale, self.economics_rng.spawn(1)[0])

    def run(self) -> MittelbauModel:
        """Run to the horizon: `years` after 2015."""
        if self.params.years:
            self.run_for(self.params.years)
        return self

    # ---- entry and exit -----------------------------------------------------------------------
    def _replace(self, rows: np.ndarray, rng: np.random.Generator, mech_rng: np.random.Generator) -> None:
        """Exiting firms leave; entrants of the region's structure take their rows, keeping the
        row's value-chain position and customer–supplier ties (the market slot). The row's
        agent handle stays; the occupant gets a new firm_id and entry year."""
        if len(rows) == 0:
            return
        self.firm_id[rows] = self.firm_id.max() + 1 + np.arange(len(rows))
        self.entry_year[rows] = self.year
        self.bm_introduced[rows] = 0
        for lever in self.levers:
            lever.drop_rows(rows)
        # entrants are like the firms of their type in the entry year (the 2015 state later)
        entrants = synthesise(self.region, len(rows), rng, self.runup.state_in(self.year))
        draw_state(entrants, self.params, mech_rng)
        self.state.replace_rows(rows, entrants, keep=("position",))
        if self.economics is not None:
            self.economics.enter(rows, entrants, self.economics_rng.spawn(1)[0])
        self.customer_power = customer_power(self.customers, self.state.size)
        self.cell[rows] = self._cells(entrants)

    def add_ties(self, groups: list[np.ndarray]) -> None:
        """Tie the firms of each group to one another (cooperation projects)."""
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
    def _record(self) -> None:
        s = self.state
        stage = s.stage - 1
        counts = [np.bincount(stage, minlength=3)[None, :]]
        for codes, k in ((s.size, len(SIZE_CLASSES)), (s.industry, len(INDUSTRIES))):
            counts.append(np.bincount(codes * 3 + stage, minlength=k * 3).reshape(k, 3))
        self.stage_counts.append(np.vstack(counts))
        self.recorded_shares = counts[0][0] / len(s)  # read by the reporters: computed once
        # techniques are the 2015/16 survey readings: no competence before the 2015 state
        self.recorded_competence = (
            competence_by_stage(s.techniques, s.stage) if self.year >= START_YEAR else np.full(3, np.nan)
        )
        if self.economics is not None:
            first = self.firm_id == self.start_firm  # rows still held by a 2015 firm
            self.economics.record(s, first & (self.start_stage == 1) & (s.stage == 1))
        self.datacollector.collect(self)

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
    return params.with_overrides(fill) if fill else params


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


def _group_mean(x: np.ndarray, group: np.ndarray, k: int) -> np.ndarray:
    """Per firm: the mean of `x` over the firms of its group."""
    sums = np.bincount(group, weights=x.astype(float), minlength=k)
    counts = np.bincount(group, minlength=k)
    return (sums / np.maximum(counts, 1))[group]
