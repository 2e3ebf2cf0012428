"""Runs stepped together (core.batch.ModelBatch, experiments.runs.simulate_batch) give each
run's outputs exactly as the run alone: indicators, transitions, lever records, economics,
stage shares and summary, for replications of one point and for several parameter points."""

from __future__ import annotations

import json
from dataclasses import fields

import numpy as np
import pytest

from mittelbau.calibration.fit_report import load_targets, points_statistics, run_statistics, runs_statistics
from mittelbau.core import shared_runups
from mittelbau.core.batch import BATCH_KEYS, ModelBatch, batch_groups
from mittelbau.core.mechanisms import NAMES, switch
from mittelbau.core.model import Cohort, MittelbauModel, RunUpState
from mittelbau.core.outcomes import OUTCOMES, at_horizon
from mittelbau.core.parameters import BY_NAME
from mittelbau.core.population import FirmTable, normal_scores, synthesise, synthesise_runs
from mittelbau.core.region_data import load_region
from mittelbau.core.runup import RUNUP_PARAMETERS, clear_cache, runup_key, solve_runup, solve_runups
from mittelbau.core.scenario import Scenario, ScenarioError, make_params
from mittelbau.core.shared_runups import PROJECTION_PARAMETERS, clear_runup_states
from mittelbau.experiments.ensemble import replicate_seeds
from mittelbau.experiments.experiment import evaluate_points
from mittelbau.experiments.outputs import RunResult
from mittelbau.experiments.runs import (
    run_parameters,
    simulate,
    simulate_batch,
    simulate_outcomes,
    simulate_outcomes_batch,
)

SMALL = {"firms": 300, "years": 6}
LEVERS = {"funding_budget_eur": 3e6, "cooperation_projects_per_year": 4, "centres_number": 2}
MECHANISMS = {switch(n): "on" for n in NAMES}
TABLES = ("stage_shares", "transitions", "indicators", "levers", "economics")


def scenario(overrides: dict) -> Scenario:
    return Scenario("point", "", make_params({**SMALL, **overrides}))


def assert_same(batched: RunResult, alone: RunResult) -> None:
    for name in TABLES:
        a, b = getattr(batched, name), getattr(alone, name)
        assert list(a.columns) == list(b.columns) and list(a.dtypes) == list(b.dtypes), name
        assert a.equals(b), name
    assert json.dumps(batched.summary, sort_keys=True) == json.dumps(alone.summary, sort_keys=True)


def check(points: list[dict]) -> list[RunResult]:
    scenarios = [scenario(p) for p in points]
    clear_cache()
    batched = simulate_batch(scenarios)
    for got, s in zip(batched, scenarios, strict=True):
        clear_cache()  # each run alone solves its own run-up
        assert_same(got, simulate(s))
    return batched


def test_replications_of_one_point_are_each_run_alone():
    seeds = replicate_seeds(11, 4)
    results = check([{"seed": s} for s in seeds])
    moves = [tuple(r.transitions["firms"]) for r in results]
    assert len(set(moves)) == 4  # own streams: the replications differ


def test_replications_with_levers_and_mechanisms_are_each_run_alone():
    results = check([{"seed": s, **LEVERS, **MECHANISMS} for s in (3, 4, 5)])
    assert all(not r.levers.empty for r in results)
    assert all(r.summary["mechanisms"] == list(NAMES) for r in results)


def test_parameter_points_are_each_run_alone():
    """Different registry values (dynamics, pressure, run-up, a mechanism, levers on and off) in
    one batch; firms, region, run-up start and horizon shared."""
    points = [
        {"seed": 1, "exit_rate": 0.02, "digital_pressure_growth": 0.05},
        {"seed": 1, "exit_rate": 0.06, "bm_adoption_factor": 2.0, "dt_social_weight": 0.8},
        {"seed": 3, "dt_wave_start_year": 2009, "bm_start_odds": 0.3, "dt_loss_rate": 0.07},
        {"seed": 2, "mech_platform_capture": "on", "capture_rate": 0.3, **LEVERS},
        {"seed": 2, "employee_size_exponent": 0.0, "entrant_growth_years": 0, "funding_budget_eur": 1e6},
    ]
    results = check(points)
    assert len({r.summary["outcomes"]["middle_share"] for r in results}) == 5


def test_runs_with_different_mechanisms_on_are_each_run_alone():
    """Each mechanism switched on in some runs of a batch and off in others: the mechanisms,
    computed once for the stack, act on the firms of the runs that switch them on."""
    points = [
        {"seed": 4, **{switch(n): "on" for n in NAMES[::2]}, **LEVERS},
        {"seed": 5, **{switch(n): "on" for n in NAMES[1::2]}, "leap_rate": 0.2, "capture_rate": 0.3},
        {"seed": 6},
        {"seed": 7, switch("leapfrog"): "on", "leap_rate": 0.2, switch("lockin"): "on", **LEVERS},
    ]
    results = check(points)
    assert [r.summary["mechanisms"] for r in results] == [
        list(NAMES[::2]),
        list(NAMES[1::2]),
        [],
        ["lockin", "leapfrog"],
    ]


RUNUP_POINTS = [
    {},
    {"dt_wave_start_year": 2010, "dt_start_odds": 0.4},
    {"dt_wave_start_year": 2000, "bm_loss_rate": 0.03, "dt_loss_rate": 0.08},
    {"bm_start_odds": 0.5, "digital_pressure_growth": 0.1, "bm_weight_peers": 0.3},
    {},  # a point twice: solved once
]


def test_run_ups_solved_together_are_each_solved_alone():
    """Points differing in run-up parameters (the DT wave's start among them) stacked: each
    point's hazards and mean-field path are bit for bit those of the point alone."""
    params = [make_params(p) for p in RUNUP_POINTS]
    clear_cache()
    together = solve_runups("stuttgart", params)
    assert together[0] is together[4]
    assert solve_runups("stuttgart", params[1:2])[0] is together[1]  # cached
    for p, got in zip(params, together, strict=True):
        clear_cache()
        alone = solve_runup("stuttgart", p)
        assert got.key == alone.key == runup_key("stuttgart", p)
        assert (got.first_year, got.dt_wave_start_year) == (alone.first_year, alone.dt_wave_start_year)
        for name in ("h_bm", "h_dt", "expected", "target", "weight"):
            a, b = getattr(got, name), getattr(alone, name)
            assert a.shape == b.shape and a.tobytes() == b.tobytes(), name
    assert len({r.h_dt.tobytes() for r in together}) == 4
    assert [r.dt_wave_start_year for r in together[:3]] == [2003, 2010, 2000]
    assert len(RUNUP_PARAMETERS) == 11


def test_run_ups_solved_together_share_their_start_year():
    params = [make_params({}), make_params({"runup_start_year": 1998})]
    clear_cache()
    with pytest.raises(ValueError, match=r"runup_start_year = 1998, 2000; allowed: one start year"):
        solve_runups("stuttgart", params)


def test_a_run_takes_only_its_own_solved_run_up():
    params = make_params({**SMALL, "seed": 3, "dt_wave_start_year": 2008})
    own = solve_runup("stuttgart", params)
    assert MittelbauModel(params, runup=own).runup is own
    other = solve_runup("stuttgart", make_params({}))
    with pytest.raises(ValueError, match=r"runup solved for .* given to a run of .*allowed: the run-up"):
        MittelbauModel(params, runup=other)


def test_entrants_of_several_runs_are_each_drawn_alone():
    """Entrants of runs of 0, 1 and many firms, each from its own stream and run-up year,
    synthesised as one stack: each run's table is bit for bit that of `synthesise` alone, and
    each stream ends where it would alone (a run of none draws nothing)."""
    region = load_region("stuttgart")
    late = solve_runup("stuttgart", make_params({"dt_wave_start_year": 2010}))
    base = solve_runup("stuttgart", make_params({}))
    sizes = [5, 0, 120, 1, 33, 2]
    probs = [(base, late)[k % 2].state_in(2003 + 2 * k) for k in range(len(sizes))]
    streams = [np.random.default_rng(100 + k) for k in range(len(sizes))]
    together = synthesise_runs(region, sizes, streams, probs)
    for k, (n, p, got) in enumerate(zip(sizes, probs, together, strict=True)):
        rng = np.random.default_rng(100 + k)
        assert len(got) == n
        if n:
            alone = synthesise(region, n, rng, p)
            for f in fields(FirmTable):
                a, b = getattr(got, f.name), getattr(alone, f.name)
                assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), f.name
        assert rng.random() == streams[k].random()
    assert [len(t) for t in synthesise_runs(region, [0, 0], streams[:2], probs[:2])] == [0, 0]


def test_normal_scores_rank_each_run_among_its_own():
    score = np.array([3, 1, 1, 2, 5, 5, 0, 7])
    sizes = [4, 1, 3]
    stacked = normal_scores(score, sizes)
    alone = np.concatenate([normal_scores(score[:4]), normal_scores(score[4:5]), normal_scores(score[5:])])
    assert stacked.tobytes() == alone.tobytes()
    assert stacked[4] == 0.0 and stacked[1] == stacked[2] < stacked[3] < stacked[0]


def test_a_batch_steps_its_runs_as_each_alone_year_by_year():
    params = [
        make_params({**SMALL, "seed": s, "bm_loss_rate": 0.01 * (1 + s), "dt_wave_start_year": 2001 + 3 * s})
        for s in range(3)
    ]
    clear_cache()
    batch = ModelBatch(params)
    alone = []
    for p in params:
        clear_cache()
        alone.append(MittelbauModel(p))
    for m, a in zip(batch.runs, alone, strict=True):
        assert m.year == a.year == 2015 and np.array_equal(m.state.stage, a.state.stage)
    while batch.running:
        batch.step()
        for m, a in zip(batch.runs, alone, strict=True):
            a.step()
            assert m.year == a.year
            assert np.array_equal(m.state.techniques, a.state.techniques)
            assert np.array_equal(m.firm_id, a.firm_id)
    assert [m.year for m in batch.runs] == [2021] * 3 and not any(m.running for m in batch.runs)


def test_runs_of_a_batch_share_firms_region_and_years():
    assert BATCH_KEYS == ("firms", "region", "runup_start_year", "years")
    for key, other in (("firms", 400), ("region", "nord"), ("years", 3), ("runup_start_year", 2001)):
        params = [make_params(SMALL), make_params({**SMALL, key: other})]
        with pytest.raises(ValueError, match=rf"runs of one batch with {key} = .*allowed: one value"):
            ModelBatch(params)
    with pytest.raises(ValueError, match="a batch of no runs"):
        ModelBatch([])
    runs = [MittelbauModel(make_params({**SMALL, "region": r}), run_up=False) for r in ("stuttgart", "nord")]
    with pytest.raises(ValueError, match="runs of regions nord, stuttgart stepped as one; allowed"):
        Cohort(runs)


def test_batch_groups_cut_by_key_and_size_in_order():
    ps = [make_params({**SMALL, "firms": f}) for f in (300, 400, 300, 300, 400)]
    assert batch_groups(ps, 2) == [[0, 2], [1, 4], [3]]
    assert batch_groups(ps, 16) == [[0, 2, 3], [1, 4]]
    assert batch_groups(ps, 16, rows=900) == [[0, 2, 3], [1, 4]]
    assert batch_groups(ps, 16, rows=800) == [[0, 2], [1, 4], [3]]
    assert batch_groups(ps, 16, rows=100) == [[0], [1], [2], [3], [4]]  # one run at least
    with pytest.raises(ValueError, match="batch size = 0"):
        batch_groups(ps, 0)


def test_outcomes_without_tables_are_those_of_the_summary_alone_and_batched():
    """Experiments keep only a run's outcomes (`simulate_outcomes`, `simulate_outcomes_batch`):
    exactly summary.json's outcomes, with and without levers (whose € per additional upward
    move needs the counterfactual run)."""
    points = [
        {"seed": 5},
        {"seed": 6, **LEVERS},
        {"seed": 7, **MECHANISMS},
        {"seed": 8, "funding_budget_eur": 1e6},
    ]
    scenarios = [scenario(p) for p in points]
    clear_cache()
    full = [r.summary["outcomes"] for r in simulate_batch(scenarios)]
    assert simulate_outcomes_batch(scenarios) == full
    assert [simulate_outcomes(s) for s in scenarios] == full
    costs = [o["cost_per_additional_upward_move"] for o in full]
    assert costs[0] is None and costs[2] is None and costs[1] is not None and costs[1] > 0
    assert json.dumps(full) == json.dumps(simulate_outcomes_batch(scenarios, batch_size=3))


def test_a_run_keeping_only_outcomes_keeps_every_record_they_read():
    """`outcomes_only`: no economics, no tables, no records before 2015; from 2015 on the yearly
    outcomes the summaries at the horizon read, equal to those of the full run: every year for
    those summarised over the years, the horizon year for those read there."""
    params = make_params({**SMALL, **LEVERS, **MECHANISMS, "seed": 12})
    full, lean = MittelbauModel(params).run(), MittelbauModel(params, outcomes_only=True).run()
    assert full.economics is not None and len(full.economics.records) == 7 and lean.economics is None
    a = full.yearly_outcomes()
    b = lean.yearly_outcomes()
    assert len(a) == full.runup_years + 7 and len(b) == 7 and list(b["year"]) == list(range(2015, 2022))
    assert len(lean.datacollector.get_model_vars_dataframe()) == 0 and lean.stage_counts == []
    projected = a.iloc[full.runup_years :].reset_index(drop=True)
    for o in OUTCOMES.values():
        if not o.yearly:
            continue
        if o.horizon == "end":  # read in the horizon year only
            assert b[o.name].iloc[:-1].isna().all(), o.name
            assert b[o.name].iloc[-1:].astype(object).equals(projected[o.name].iloc[-1:].astype(object))
        else:
            assert b[o.name].astype(object).equals(projected[o.name].astype(object)), o.name
    assert at_horizon(a, {}) == at_horizon(b, {})
    assert np.array_equal(np.stack(full.transitions), np.stack(lean.transitions))
    assert full.lever_records == lean.lever_records and len(full.lever_records) > 0
    assert np.array_equal(full.state.stage, lean.state.stage)


def test_a_scenario_with_levers_runs_its_counterfactuals():
    params = make_params({**SMALL, **LEVERS})
    runs = run_parameters(params)
    assert len(runs) == 5 and runs[0] == params
    assert runs[1].funding_budget_eur == 0 and runs[1].centres_number == 0
    assert [r.funding_budget_eur > 0 for r in runs[2:]] == [True, False, False]


@pytest.mark.slow
def test_one_worker_two_workers_and_dask_give_identical_batched_points(tmp_path):
    """Points of an experiment are stepped in batches; the executor changes nothing."""
    base = scenario({"seed": 5})
    points = [{"exit_rate": 0.02 + 0.005 * k, "mech_lockin": "on" if k % 2 else "off"} for k in range(10)]
    tables = {}
    for executor, workers in (("local", 1), ("local", 2), ("dask", 2)):
        tables[executor, workers] = evaluate_points(
            base, points, 2, tmp_path / f"{executor}{workers}", executor=executor, workers=workers
        )
    first = tables["local", 1]
    assert len(first) == 20 and first["middle_share"].nunique() > 10
    for key, table in tables.items():
        assert table.equals(first), key
    seed = replicate_seeds(5, 2)[1]
    alone = simulate(Scenario("point", "", make_params({**SMALL, **points[3], "seed": seed})))
    row = first[(first["point"] == 3) & (first["replicate"] == 1)].iloc[0]
    assert row["middle_share"] == alone.summary["outcomes"]["middle_share"]


def test_fit_statistics_of_runs_stepped_together_are_those_of_each_run():
    targets = [t for t in load_targets() if t["population"] == "stuttgart"]
    seeds = [4, 9]
    together = runs_statistics("stuttgart", targets, seeds, 300)
    assert [run_statistics("stuttgart", targets, s, 300) for s in seeds] == together
    assert together[0] != together[1] and len(together[0]) == len(targets)


def test_fit_statistics_of_distinct_points_stepped_together_are_those_of_each_run():
    """Pairs of parameter overrides and seeds (distinct run-ups among them), cut into batches
    of two: each pair's statistics are those of its run alone."""
    targets = [t for t in load_targets() if t["population"] == "stuttgart"]
    pairs = [
        ({"bm_loss_rate": 0.01, "competence_learning": 0.2}, 4),
        ({"bm_loss_rate": 0.05}, 4),
        ({"bm_loss_rate": 0.01, "competence_learning": 0.2}, 9),
        (None, 9),
        ({"engagement_drift_rate": 0.2, "bm_adoption_factor": 1.5}, 11),
    ]
    together = points_statistics("stuttgart", targets, pairs, 300, batch_size=2)
    assert together == [run_statistics("stuttgart", targets, s, 300, o) for o, s in pairs]
    assert len({tuple(v.values()) for v in together}) == len(pairs)


def test_stacked_tables_reuse_what_the_runs_still_hold():
    """The stack kept between years: a column every run still holds as its view is reused
    (what runs wrote into it is there), a column a run replaced is stacked anew, and each
    run's table always equals its rows of the stack."""
    from mittelbau.core.stacking import COLUMNS, StackedTables, parts_of, stack_tables

    region = load_region("stuttgart")
    tables = synthesise_runs(
        region, [5, 7], [np.random.default_rng(1), np.random.default_rng(2)], [None, None]
    )
    stacked = StackedTables(parts_of([5, 7]))
    with pytest.raises(ValueError, match="spread before gather"):
        stacked.spread()
    first = stacked.gather(tables)
    views = stacked.spread()
    views[1].techniques[0] = 99.0  # written in place: in the stack
    views[0].engagement = np.full(5, 3, dtype=np.int8)  # replaced: stacked anew
    again = stacked.gather(views)
    assert again.techniques is first.techniques and again.techniques[5] == 99.0
    assert again.engagement is not first.engagement and (again.engagement[:5] == 3).all()
    expected = stack_tables(views)
    assert all(np.array_equal(getattr(again, c), getattr(expected, c)) for c in COLUMNS)
    # the stack's columns replaced (as the step replaces BM and DT): the views follow
    again.bm = ~again.bm
    views = stacked.spread()
    assert np.array_equal(views[1].bm, again.bm[5:]) and np.shares_memory(views[1].bm, again.bm)
    assert np.array_equal(views[0].engagement, np.full(5, 3))


def _runup_print(m: MittelbauModel) -> bytes:
    """Everything a run holds at 2015 that its run-up made: firms, ids, moves, motives."""
    parts = [np.ascontiguousarray(getattr(m.state, f.name)).tobytes() for f in fields(m.state)]
    parts += [m.firm_id.tobytes(), m.entry_year.tobytes(), m.bm_introduced.tobytes(), m.cell.tobytes()]
    parts += [np.stack(m.transitions).tobytes(), np.stack(m.bm_motives).tobytes()]
    return b"".join(parts)


def test_projection_parameters_leave_the_run_up_as_it_is():
    """Every parameter of PROJECTION_PARAMETERS, at each end of its range (or each choice),
    leaves the 2015 state of a run with every lever and mechanism on exactly as it is: the
    claim that lets runs differing only in them share one run-up. Each is tested live (its
    lever or mechanism on), and the test fails for a parameter that acts before 2016."""
    base = {"firms": 200, "seed": 5, **LEVERS, **MECHANISMS}
    reference = _runup_print(MittelbauModel(make_params(base)))
    tested = set()
    for name in sorted(PROJECTION_PARAMETERS):
        p = BY_NAME[name]
        values = list(p.choices) if p.choices else [p.low, p.high]
        for value in values:
            try:
                params = make_params({**base, name: value})
            except ScenarioError:  # an end that contradicts the base (a lever's first year after its last)
                continue
            assert _runup_print(MittelbauModel(params)) == reference, f"{name} = {value}"
            tested.add(name)
    assert tested == PROJECTION_PARAMETERS
    acting = make_params({**base, "exit_rate": BY_NAME["exit_rate"].high})
    assert _runup_print(MittelbauModel(acting)) != reference  # the test sees a parameter that acts


def test_runs_sharing_a_run_up_are_each_the_run_alone():
    """Runs keeping only their outcomes whose seeds and parameters acting before 2016 are equal
    run their run-up once: the others take over the first one's 2015 state, in the batch and
    in the batches after it. Each run is still exactly the run alone: programmes (the centres
    draw for the rows left in the run-up), mechanisms, the projection's dynamics and the
    population scale differ between them."""
    points = [
        {},
        {"dt_adoption_factor": 2.0, "bm_adoption_factor": 0.5},
        {"mech_leapfrog": "on", "leap_rate": 0.15},
        {"centres_number": 2, "centres_capacity": 60, "centres_reach": 0.5},
        {"centres_number": 2, "centres_capacity": 60, "centres_reach": 0.9, "region_firms": 9000},
        {"funding_budget_eur": 1.5e6, "funding_target": "small"},
        {"cooperation_projects_per_year": 5, "mech_platform_capture": "on"},
        {"mech_rising_bar": "on", "mech_lockin": "on", "exit_rate": 0.05},  # its own run-up
    ]
    params = [make_params({**SMALL, "seed": s, **p}) for s in (3, 4) for p in points]
    clear_runup_states()
    batch = ModelBatch(params, outcomes_only=True)
    # two seeds × (the shared run-up, the one with its own exit rate)
    assert sorted({lead for lead in batch.leader}) == [0, 7, 8, 15]
    later = ModelBatch(params[::-1], outcomes_only=True)  # every run-up kept from the first batch
    assert later.leader == [None] * len(params)
    for p, m, again in zip(params, batch.run(), later.run()[::-1], strict=True):
        alone = MittelbauModel(p, outcomes_only=True).run()
        for run in (m, again):
            assert run.yearly_outcomes().equals(alone.yearly_outcomes())
            assert _runup_print(run) == _runup_print(alone)
            assert run.lever_records == alone.lever_records and np.array_equal(
                run.exit_stage, alone.exit_stage
            )
    assert len(batch.runs[3].lever_records) > 0


def test_run_ups_kept_for_later_batches_hold_a_bounded_number_of_firms(monkeypatch):
    monkeypatch.setattr(shared_runups, "RUNUP_STATES_FIRMS", 700)
    clear_runup_states()
    params = [make_params({**SMALL, "seed": s}) for s in range(4)]  # 300 firms each
    ModelBatch(params, outcomes_only=True)
    assert len(shared_runups.RUNUP_STATES) == 2  # the last two: 600 firms
    assert ModelBatch(params[2:], outcomes_only=True).leader == [None, None]
    assert ModelBatch(params[:1], outcomes_only=True).leader == [0]
    big = make_params({**SMALL, "firms": 800, "seed": 9})
    ModelBatch([big, big], outcomes_only=True)  # more firms than may be kept: shared, not kept
    assert [r.firms for r in shared_runups.RUNUP_STATES.values()] == [300, 300]
    # the firms kept in all are counted as run-ups come and go, a run-up kept again counted once
    assert shared_runups.RUNUP_STATES.firms == 600
    key, state = next(iter(shared_runups.RUNUP_STATES.items()))
    shared_runups.keep_runup_state(key, state)
    assert shared_runups.RUNUP_STATES.firms == 600
    assert list(shared_runups.RUNUP_STATES)[-1] == key  # now the most recently kept
    clear_runup_states()
    assert shared_runups.RUNUP_STATES.firms == 0


def test_a_run_takes_over_only_a_run_up_that_kept_what_it_keeps():
    params = make_params({**SMALL, "seed": 3})
    lean = RunUpState.of(MittelbauModel(params, outcomes_only=True), [])
    follower = MittelbauModel(params, run_up=False, populate=False)
    follower.batch_streams()
    with pytest.raises(
        ValueError, match=r"keeping its records from one that did not; allowed: runs keeping the same"
    ):
        follower.adopt_runup(lean)
    unbatched = MittelbauModel(params, outcomes_only=True, run_up=False, populate=False)
    with pytest.raises(ValueError, match="allowed: a run after batch_streams"):
        unbatched.adopt_runup(lean)
    built = MittelbauModel(params, outcomes_only=True, run_up=False)
    with pytest.raises(ValueError, match="by a populated run; allowed: a run not populated yet"):
        built.adopt_runup(lean)
    with pytest.raises(ValueError, match="the run-up of a run at 2000; allowed: a run at 2015"):
        RunUpState.of(built, [])


def test_a_scenario_and_its_counterfactual_runs_share_their_run_up_with_their_records():
    """Runs keeping their records share a run-up only where they differ in the programmes'
    parameters alone: a scenario and its counterfactual runs. Every table of each is that of
    the run alone (the run-up years' records included)."""
    clear_runup_states()
    params = make_params({**SMALL, **LEVERS, **MECHANISMS, "seed": 21})
    runs = [*run_parameters(params), make_params({**SMALL, **LEVERS, "seed": 21, "hollowing_threshold": 0.6})]
    batch = ModelBatch(runs)
    assert batch.leader == [0, 0, 0, 0, 0, 5]  # the indicators' parameter is read in the run-up's records
    for p, m in zip(runs, batch.run(), strict=True):
        alone = MittelbauModel(p).run()
        assert m.yearly_outcomes().equals(alone.yearly_outcomes())
        assert np.array_equal(np.stack(m.stage_counts), np.stack(alone.stage_counts))
        assert _runup_print(m) == _runup_print(alone) and m.lever_records == alone.lever_records
        assert np.stack(m.economics.records).tobytes() == np.stack(alone.economics.records).tobytes()
