"""The vectorised model: stage rule, bookkeeping, reproducibility, mechanisms in isolation."""

import re

import numpy as np
import pytest

from mittelbau.core.dynamics import MOTIVES, Exposure, bm_channels, hazard_to_probability, learning_steps
from mittelbau.core.firm import Firm
from mittelbau.core.indicators import stage_shares
from mittelbau.core.model import MittelbauModel

STILL = dict(
    dt_adoption_factor=0.0, bm_adoption_factor=0.0, bm_loss_rate=0.0, dt_loss_rate=0.0, exit_rate=0.0
)


def test_stage_rule_and_agents_every_step():
    m = MittelbauModel(firms=1500, seed=5, years=6)
    handles = set(m.agents)
    for _ in range(6):
        ids_before = m.firm_id.copy()
        m.step()
        replaced = m.firm_id != ids_before
        assert replaced.sum() == m.transitions[-1][0].sum()  # one new firm per entry
        assert (m.entry_year[replaced] == m.year).all() and len(set(m.firm_id)) == 1500
        assert set(m.agents) == handles
        s = m.state
        assert np.array_equal(s.stage, 1 + s.bm.astype(int) + s.dt.astype(int))
        assert len(m.agents) == 1500 and all(isinstance(a, Firm) for a in m.agents)
        rows = sorted(a.row for a in m.agents)
        assert rows == list(range(1500))
        sample = list(m.firm_at[::97])
        assert all(f.stage == 1 + f.bm + f.dt == s.stage[f.row] for f in sample)
        assert not s.dt_items[~s.dt].any() and s.dt_items[s.dt].any(axis=1).all()
    assert m.year == 2021 and m.time == 21  # 15 run-up years from 2000, then 6


def test_transitions_conserve_firms_and_reproduce_shares():
    m = MittelbauModel(firms=3000, seed=9, years=8).run()
    shares = m.datacollector.get_model_vars_dataframe()[["stage1", "stage2", "stage3"]].to_numpy()
    for k, t in enumerate(m.transitions):
        assert t[0, 0] == 0
        assert t[0].sum() == t[1:, 0].sum()  # every exit is replaced by one entrant
        start = t.sum(axis=1)[1:]  # firms by stage at the start of the year
        end = t.sum(axis=0)[1:]  # by stage at the end, entrants included, exits excluded
        assert np.allclose(start / 3000, shares[k])
        assert np.allclose(end / 3000, shares[k + 1])
    assert len(m.transitions) == 15 + 8


def test_nothing_moves_after_2015_when_all_rates_are_zero():
    m = MittelbauModel(firms=2000, seed=1, years=5, **STILL).run()
    df = m.datacollector.get_model_vars_dataframe()
    assert (df[df["year"] >= 2015][["stage1", "stage2", "stage3"]].nunique() == 1).all()
    assert sum(t[0].sum() for t in m.transitions[m.runup_years :]) == 0
    assert df["stage3"].iloc[0] < df["stage3"].iloc[m.runup_years] - 0.1  # the run-up moved


def test_learning_adds_whole_techniques_at_the_mean_rate():
    """competence_learning below 1 moves the survey's whole-technique bands (sources §4.4)."""
    u = np.random.default_rng(0).random(200_000)
    assert learning_steps(0.3, u).mean() == pytest.approx(0.3, abs=0.005)
    assert set(np.unique(learning_steps(1.25, u))) == {1.0, 2.0}
    assert learning_steps(1.25, u).mean() == pytest.approx(1.25, abs=0.005)
    runs = {
        c: MittelbauModel(firms=3000, seed=4, years=3, exit_rate=0.0, competence_learning=c).run()
        for c in (0.0, 0.3)
    }
    start = MittelbauModel(firms=3000, seed=4, years=0, exit_rate=0.0)
    t0, users = start.state.techniques, runs[0.3].state.dt
    assert (runs[0.0].state.techniques == t0).all()
    gained = (runs[0.3].state.techniques - t0)[users & start.state.dt & (t0 <= 7)]
    assert (gained == np.floor(gained)).all()
    assert gained.mean() == pytest.approx(0.9, abs=0.1)  # three years at 0.3


def test_only_losses_move_firms_down():
    m = MittelbauModel(
        firms=3000, seed=2, years=5, **{**STILL, "bm_loss_rate": 0.1, "dt_loss_rate": 0.1}
    ).run()
    total = np.sum(m.transitions[m.runup_years :], axis=0)
    assert total[1, 2] == total[1, 3] == total[2, 3] == 0
    assert total[3, 2] > 0 and total[2, 1] > 0


def test_bm_loss_rate_matches_hazard():
    """Without service strategy the annual BM loss probability is 1 − exp(−bm_loss_rate)."""
    m = MittelbauModel(
        firms=20000, seed=4, years=1, **{**STILL, "bm_loss_rate": 0.2, "bm_loss_strategy_factor": 1.0}
    )
    had = m.state.bm.copy()
    m.step()
    lost = (had & ~m.state.bm).sum() / had.sum()
    expected = 1 - np.exp(-0.2)
    assert abs(lost - expected) < 4 * np.sqrt(expected * (1 - expected) / had.sum())


def test_bm_motives_follow_facts_4_2():
    """At the start (social exposures near their reference values, pressure 1) the motives of
    new BMs split as 34/28/20/18 (sources §4.2) within a few points."""
    m = MittelbauModel(firms=100_000, seed=3, years=1)
    m.step()
    counts = np.array([m.motive_totals[k] for k in MOTIVES])
    shares = counts / counts.sum()
    assert np.allclose(shares, [0.34, 0.28, 0.20, 0.18], atol=0.04), shares


def test_coupling_is_estimated_and_the_dynamics_keep_the_2015_association():
    """The run-up's DT hazards with and without a BM carry the 2015 within-type association
    (DT-on-BM log-odds 2.46 in the cross-section): the implied coupling is far above 1, and
    the projected years neither dissolve nor inflate the association."""
    m = MittelbauModel(firms=20000, seed=6, years=20)
    assert 10 < m.runup.coupling < 100, m.runup.coupling

    def log_odds_ratio(s) -> float:
        t = np.array(
            [[np.sum(~s.bm & ~s.dt), np.sum(~s.bm & s.dt)], [np.sum(s.bm & ~s.dt), np.sum(s.bm & s.dt)]]
        )
        return float(np.log(t[0, 0] * t[1, 1] / (t[0, 1] * t[1, 0])))

    start = log_odds_ratio(m.state)
    m.run()
    assert abs(log_odds_ratio(m.state) - start) < 0.5, (start, log_odds_ratio(m.state))


def test_pressure_raises_exits_of_exposed_stage1_firms():
    """Exposed = stage 1, simple products, threatened main BM: in 2016 (pressure 1) with factor 5
    their exit hazard is 6× the base rate; every other firm exits at the base rate."""
    m = MittelbauModel(firms=100_000, seed=8, years=1, pressure_exit_factor=5.0)
    s = m.state
    exposed = (s.stage == 1) & (s.complexity == 0) & s.threatened
    others = ~exposed
    ids = m.firm_id.copy()
    m.step()
    gone = m.firm_id != ids
    for group, hazard in ((exposed, 6 * 0.02), (others, 0.02)):
        expected = 1 - np.exp(-hazard)
        se = np.sqrt(expected * (1 - expected) / group.sum())
        assert abs(gone[group].mean() - expected) < 4 * se, (gone[group].mean(), expected, group.sum())
    assert exposed.sum() > 300  # enough exposed firms for the comparison to bite


def test_same_seed_same_run_other_seed_other_run():
    a = MittelbauModel(firms=2000, seed=42, years=5).run()
    b = MittelbauModel(firms=2000, seed=42, years=5).run()
    c = MittelbauModel(firms=2000, seed=43, years=5).run()
    assert np.array_equal(np.stack(a.stage_counts), np.stack(b.stage_counts))
    assert not np.array_equal(np.stack(a.stage_counts), np.stack(c.stage_counts))


def test_network_wires_suppliers_to_downstream_customers():
    # no exits, so no entrant of another industry has taken over a slot in the run-up
    m = MittelbauModel(firms=5000, seed=1, same_industry_ties=1.0, customers_per_supplier=2, exit_rate=0.0)
    pos, ind = m.state.position, m.state.industry
    rows, cols = m.customers.nonzero()
    assert not (pos[rows] == 0).any()  # final-product makers supply no one in the region
    assert (pos[cols] < pos[rows]).all()  # customers sit downstream
    assert (ind[rows] == ind[cols]).mean() > 0.99
    supplier = m.firm_at[rows[0]]
    assert m.firm_at[cols[0]] in supplier.customers and supplier in m.firm_at[cols[0]].suppliers


def test_degrees_are_the_row_sums_of_the_networks():
    """Degrees read off the row pointers equal the row sums, also after cooperation projects
    have added ties."""
    m = MittelbauModel(firms=1500, seed=2, years=4, cooperation_projects_per_year=8).run()
    assert m.ties.nnz > m.customers.nnz + m.suppliers.nnz - m.customers.multiply(m.suppliers).nnz
    assert np.array_equal(m.tie_degree, np.asarray(m.ties.sum(axis=1)).ravel())
    assert np.array_equal(m.customer_degree, np.asarray(m.customers.sum(axis=1)).ravel())
    assert m.customers.indices.dtype == np.int32


@pytest.mark.parametrize("region", ["nord", "muenchen", "rhein-ruhr", "germany"])
def test_every_region_runs(region):
    from mittelbau.core.categories import STAGE_TOLERANCE

    m = MittelbauModel(firms=500, seed=1, years=2, region=region).run()
    assert m.region.code == region and np.isclose(stage_shares(m.state.stage).sum(), 1)
    # each region's run-up arrives at its own 2015 cross-section, not at another region's
    assert m.runup.stage_gap <= STAGE_TOLERANCE


def test_finished_models_are_freed():
    """Agents and model refer to each other; the cycle must stay visible to the garbage
    collector (a numpy object array of agents hid it), or long fits and ensembles leak."""
    import gc

    for seed in range(3):
        MittelbauModel(firms=300, seed=seed, years=2).run()
    gc.collect()
    assert not [o for o in gc.get_objects() if isinstance(o, MittelbauModel)]


def test_a_run_that_asks_for_no_agents_makes_none():
    import mesa

    m = MittelbauModel(firms=400, seed=3, years=3).run()
    registered = mesa.Model.agents.fget(m)  # Mesa's registry, read without asking for agents
    assert len(registered) == 0 and m.agent_id_counter == 1


def test_agents_made_on_demand_are_handles_on_the_rows():
    m = MittelbauModel(firms=700, seed=4, years=4)
    m.step()
    agents = m.agents
    assert len(agents) == 700 and m.agent_types == [Firm] and len(m.agents_by_type[Firm]) == 700
    assert sorted(a.unique_id for a in agents) == list(range(1, 701))
    assert [a.row for a in m.firm_at] == list(range(700)) and set(m.firm_at) == set(agents)
    m.step()
    m.step()  # the handles stay and read the rows' new occupants and states
    assert m.agents is agents and len(agents) == 700
    s = m.state
    assert [f.stage for f in m.firm_at] == s.stage.tolist()
    assert [f.firm_id for f in m.firm_at] == m.firm_id.tolist()
    assert [f.entry_year for f in m.firm_at] == m.entry_year.tolist()
    assert [f.digital_competence for f in m.firm_at] == (s.techniques / 10).tolist()


def test_mesa_batch_run_collects_agent_reporters():
    """Agent reporters ask for agents: Mesa's batch runner gets one record per row, the same
    stages as the arrays of the same-seed run that never made agents."""
    import mesa
    import pandas as pd

    class WithAgentReporters(MittelbauModel):
        def __init__(self, **kwargs) -> None:
            super().__init__(**kwargs)
            self.datacollector = mesa.DataCollector(
                model_reporters={"year": "year"}, agent_reporters={"stage": "stage", "firm_id": "firm_id"}
            )
            self.datacollector.collect(self)

    rows = pd.DataFrame(
        mesa.batch_run(
            WithAgentReporters,
            parameters={"firms": 250, "years": 3},
            rng=[11],
            max_steps=50,
            data_collection_period=-1,
            display_progress=False,
        )
    ).sort_values("AgentID")
    direct = MittelbauModel(firms=250, seed=11, years=3).run()
    assert len(rows) == 250 and (rows["year"] == 2018).all()
    assert rows["AgentID"].tolist() == list(range(1, 251))
    assert rows["stage"].tolist() == direct.state.stage.tolist()
    assert rows["firm_id"].tolist() == direct.firm_id.tolist()
    assert len(mesa.Model.agents.fget(direct)) == 0


def test_mesa_batch_run_runs_the_model_to_its_horizon():
    """Mesa's batch runner builds the model from keywords, seeds it through `seed=` (or
    `rng=`) and steps it while `running`: runs stop at `years`, not at `max_steps`."""
    import mesa
    import pandas as pd

    with pytest.warns(DeprecationWarning, match="iterations"):  # Mesa's wording; same as rng=[None] * 2
        rows = mesa.batch_run(
            MittelbauModel,
            parameters={"firms": 300, "years": [2, 4], "region": "nord"},
            iterations=2,
            max_steps=50,
            data_collection_period=1,
            display_progress=False,
        )
    df = pd.DataFrame(rows)
    # two iterations × (2000, the 15 run-up years to 2015, then 2 or 4 projected years)
    assert len(df) == 2 * ((16 + 2) + (16 + 4))
    ends = df.groupby("RunId").agg(years=("years", "first"), last=("year", "max"), steps=("Step", "max"))
    assert (ends["last"] == 2015 + ends["years"]).all() and (ends["steps"] == 15 + ends["years"]).all()
    assert {"stage2", "hollowed", "upward_rate"} <= set(df.columns)
    # iterations draw fresh seeds: the two 4-year runs differ
    four = df[(df["years"] == 4) & (df["year"] == 2019)]
    assert len(four[["stage1", "stage2", "stage3", "upward_rate"]].drop_duplicates()) == 2

    seeded = pd.DataFrame(
        mesa.batch_run(
            MittelbauModel,
            parameters={"firms": 300, "years": 2},
            rng=[7, 7, 8],
            max_steps=50,
            display_progress=False,
        )
    )
    direct = MittelbauModel(firms=300, seed=7, years=2).run().datacollector.get_model_vars_dataframe()
    assert len(seeded) == 3 and (seeded["year"] == 2017).all()
    cols = ["stage1", "stage2", "stage3", "upward_rate"]
    runs = [tuple(seeded[cols].iloc[k]) for k in range(3)]
    assert runs[0] == runs[1] == tuple(direct[cols].iloc[-1]) != runs[2]


def test_seed_arguments_follow_mesa():
    from mittelbau.core.scenario import ScenarioError, make_params

    params = make_params({"firms": 200, "seed": 11})
    assert MittelbauModel(params).params.seed == 11  # left out: the seed of params
    assert MittelbauModel(params, rng=12).params.seed == 12
    assert MittelbauModel(params, seed=np.int64(13)).params.seed == 13
    drawn = MittelbauModel(params, rng=np.random.default_rng(5)).params.seed
    assert drawn == int(np.random.default_rng(5).integers(2**32))  # one draw, recorded
    fresh = {MittelbauModel(firms=200, rng=None).params.seed for _ in range(3)}
    assert len(fresh) == 3  # None: fresh entropy, as in Mesa
    with pytest.raises(ValueError, match="allowed: one of them"):
        MittelbauModel(firms=200, rng=1, seed=2)
    assert MittelbauModel(firms=200, rng=None, seed=5).params.seed == 5  # the seed, as in Mesa
    with pytest.raises(ScenarioError, match="parameter 'seed' = -3 is invalid; allowed: an integer from 0"):
        MittelbauModel(firms=200, rng=-3)
    m = MittelbauModel(firms=200, years=0)
    assert not m.running and m.params.seed == 20170501  # the registry default
    m = MittelbauModel(firms=200, years=2, seed=3)
    m.step()
    assert m.running
    m.step()
    assert not m.running and m.year == 2017


def test_run_goes_to_the_horizon_from_where_the_model_is():
    """`run` steps while the run is running: after steps of its own, run twice, or from the
    run-up's start (`run_up=False`), it ends at the horizon, 2015 + years, as `run` alone does."""
    whole = MittelbauModel(firms=300, years=3, rng=1).run()
    stepped = MittelbauModel(firms=300, years=3, rng=1)
    stepped.step()
    assert stepped.run().year == 2018 == whole.year
    np.testing.assert_array_equal(stepped.state.stage, whole.state.stage)
    assert MittelbauModel(firms=300, years=2, rng=1).run().run().year == 2017
    early = MittelbauModel(firms=300, years=1, rng=1, run_up=False)
    assert early.year == early.first_year and early.running
    assert early.run().year == 2016 and not early.running


def test_solara_reset_rebuilds_the_plain_and_the_paired_model():
    """What SolaraViz's Reset does: rebuild the model's class from the controls' values plus
    a fresh Mesa scenario."""
    from mesa.visualization.solara_viz import _build_model_init_kwargs

    from mittelbau.dashboard.paired import PairedModel

    values = {"firms": 250, "years": 3, "seed": "21", "funding_budget_eur": 2e6}
    for cls in (MittelbauModel, PairedModel):
        model = cls(firms=200, seed=1)
        kwargs = _build_model_init_kwargs(
            model, values, add_scenario_when_empty=True, require_model_accepts_scenario=True
        )
        assert "scenario" in kwargs
        if cls is MittelbauModel:
            kwargs["seed"] = int(kwargs["seed"])  # the text field is the dashboard's
        fresh = cls(**kwargs)
        assert (fresh.params.firms, fresh.params.seed, fresh.params.funding_budget_eur) == (250, 21, 2e6)
        assert len(fresh.state) == 250 and fresh.running


def test_hazards_become_annual_probabilities():
    """1 − exp(−h) without cancellation for small h, for one hazard and for an array (whose
    values it leaves alone)."""
    h = np.array([0.0, 1e-12, 0.1, 2.0, 50.0])
    kept = h.copy()
    p = hazard_to_probability(h)
    assert np.array_equal(p, -np.expm1(-h))
    assert np.allclose(p[2:], 1.0 - np.exp(-h[2:]), rtol=1e-15, atol=0)
    assert p[1] == pytest.approx(1e-12, rel=1e-9) and p[0] == 0.0 and p[-1] == 1.0
    assert np.array_equal(h, kept)
    assert hazard_to_probability(0.5) == pytest.approx(1.0 - np.exp(-0.5), rel=1e-15)


def test_bm_channels_are_the_motive_weights_times_what_firms_see():
    """Columns in MOTIVES order: intrinsic weight, peers' weight × peer exposure, customers'
    weight × customer exposure, competition weight × pressure; per firm where parameters are."""
    params = MittelbauModel(firms=100, run_up=False).params
    exposure = Exposure(
        peer_bm=np.array([1.0, 2.0, 0.5]), social_dt=np.ones(3), customer_bm=np.array([1.0, 0.0, 3.0])
    )
    channels = bm_channels(exposure, 1.5, params)
    assert channels.shape == (3, len(MOTIVES))
    assert np.array_equal(channels[:, 0], np.full(3, params.bm_weight_intrinsic))
    assert np.array_equal(channels[:, 1], params.bm_weight_peers * exposure.peer_bm)
    assert np.array_equal(channels[:, 2], params.bm_weight_customers * exposure.customer_bm)
    assert np.array_equal(channels[:, 3], np.full(3, params.bm_weight_competition * 1.5))
    per_firm = bm_channels(exposure, np.array([1.0, 2.0, 3.0]), params)
    assert np.array_equal(per_firm[:, 3], params.bm_weight_competition * np.array([1.0, 2.0, 3.0]))


def test_trait_norms_of_a_size_class_whose_firms_cannot_adopt_are_one():
    """At a `dt_finance_factor` of 0, a size class whose firms without DT are all financially
    constrained has a mean DT trait factor of 0: its norm is 1 (nothing to keep), so their
    hazards stay 0 and a funded firm's (finance relief) stays finite."""
    from mittelbau.core.dynamics import dt_traits, trait_norms
    from mittelbau.core.scenario import make_params

    m = MittelbauModel(make_params({"firms": 300, "years": 0, "dt_finance_factor": 0.0}))
    s = m.state
    cls = int(np.bincount(s.size[~s.dt]).argmax())
    s.financing_constraint[(s.size == cls) & ~s.dt] = True
    dt_norm, _ = trait_norms(s, m.params)
    assert dt_norm[cls] == 1.0 and np.isfinite(dt_norm).all() and (dt_norm > 0).all()
    traits = dt_traits(s, m.params, finance_relief=True) / dt_norm[s.size]
    assert np.isfinite(traits).all()
    assert (dt_traits(s, m.params)[(s.size == cls) & ~s.dt] == 0).all()
    s.financing_constraint[(s.size == cls) & ~s.dt] = False  # a factor above 0: its mean as before
    assert trait_norms(s, m.params)[0][cls] > 0


def test_the_python_entry_points_name_an_argument_of_the_wrong_type(tmp_path):
    """What a notebook gets wrong first: a dict for a parameter set, a parameter set for a
    scenario, one scenario for a list, a string for a number or for a list of assignments —
    each a TypeError naming the argument and what is allowed, before anything is written."""
    from mittelbau import load_scenario, run_ensemble, simulate

    scenario = load_scenario(None, ["firms=200", "years=1"])
    cases = [
        (lambda: MittelbauModel({"firms": 500}), "params = dict"),
        (lambda: simulate(scenario.params), "allowed: a Scenario"),
        (lambda: run_ensemble(scenario, 2, tmp_path / "e"), "allowed: a list of Scenario"),
        (lambda: run_ensemble([scenario], "2", tmp_path / "e"), "replications = '2'"),
        (lambda: load_scenario(None, "firms=500"), "e.g. ['firms=500']"),
    ]
    for call, said in cases:
        with pytest.raises(TypeError, match=re.escape(said)):
            call()
    assert not (tmp_path / "e").exists()
