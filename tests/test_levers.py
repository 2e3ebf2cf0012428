"""Policy levers: off is a no-op, budgets and capacities hold, effects, deadweight, targeting."""

import tomllib
from dataclasses import fields, replace

import numpy as np
import pytest

from mittelbau.core.model import MittelbauModel
from mittelbau.core.scenario import Scenario, load_scenario, make_params
from mittelbau.experiments.outputs import upward_moves
from mittelbau.experiments.runs import simulate
from mittelbau.levers import BY_LEVER, in_target, planned_public_cost, without_levers

FUNDING = dict(funding_budget_eur=1_000_000.0)
COOP = dict(cooperation_projects_per_year=8)
CENTRES = dict(centres_number=3)
ALL_ON = {**FUNDING, **COOP, **CENTRES}


def run(**kw):
    return MittelbauModel(**{"firms": 2000, "years": 8, "seed": 1, **kw}).run()


def same_run(a, b) -> bool:
    return np.array_equal(np.stack(a.stage_counts), np.stack(b.stage_counts)) and np.array_equal(
        np.stack(a.transitions), np.stack(b.transitions)
    )


def test_switched_off_levers_are_exactly_no_ops():
    base = run()
    tweaked = run(
        funding_grant_eur=10_000.0,
        funding_target="stage1",
        cooperation_hazard_factor=9.0,
        centres_reach=1.0,
        centres_hazard_factor=9.0,
    )
    assert same_run(base, tweaked) and tweaked.levers == []
    assert not same_run(base, run(**FUNDING))  # and a lever that is on does change the run


@pytest.mark.parametrize(
    "neutral",
    [
        dict(centres_number=3, centres_hazard_factor=1.0, centres_technique_gain=0.0),
        dict(funding_budget_eur=1_000_000.0, funding_purpose="bm", funding_hazard_factor=1.0),
    ],
    ids=["centres", "funding"],
)
def test_a_lever_that_changes_nothing_in_firms_leaves_the_run_as_it_was(neutral):
    """A programme reaching firms without changing them gives the run without it: its own
    draws (who applies, who is visited) come from its own stream and never shift the draws of
    the run, so a lever's effect is its effect and not a reshuffled run."""
    m = run(**neutral)
    reached = sum(r[3] for r in m.lever_records)
    assert reached > 100 and m.levers  # it was on and reached firms
    assert same_run(run(), m)


def test_a_runs_reach_counts_each_firm_any_programme_reached_once():
    """The run's record of reach is the union of its levers' (rows reset as firms exit): a firm
    two programmes reach counts once, so the total lies between the largest lever's and their
    sum; summary.json's policy block reports it."""
    m = MittelbauModel(firms=2000, years=8, seed=1, **ALL_ON)
    while m.running:
        m.step()
        union = np.logical_or.reduce([lv.reach.seen for lv in m.levers])
        assert np.array_equal(m.reach.seen, union), m.year
    each = [int(lv.reach.reached_by.sum()) for lv in m.levers]
    total = int(m.reach.reached_by.sum())
    assert max(each) <= total < sum(each)  # some firms were reached by two programmes
    assert MittelbauModel(firms=300, years=2, seed=1).run().reach is None  # no programme, no record
    s = simulate(Scenario("mix", "", make_params({"firms": 1000, "years": 4, "seed": 1, **ALL_ON}))).summary
    policy = s["policy"]
    assert sum(policy["firms_reached_by_size"].values()) == policy["firms_reached"] > 0
    assert sum(policy["firms_reached_by_start_stage"].values()) == policy["firms_reached"]
    one = simulate(Scenario("f", "", make_params({"firms": 1000, "years": 4, "seed": 1, **FUNDING}))).summary
    assert one["policy"]["firms_reached_by_size"] == one["levers"]["funding"]["firms_reached_by_size"]


def test_levers_outside_their_years_change_nothing():
    base = run()
    late = run(
        **ALL_ON,
        funding_start_year=2030,
        funding_end_year=2040,
        cooperation_start_year=2030,
        cooperation_end_year=2040,
        centres_start_year=2030,
        centres_end_year=2040,
    )
    assert same_run(base, late)
    assert sum(r[2] for r in late.lever_records) == 0


def test_without_levers_switches_every_programme_off():
    p = without_levers(make_params(ALL_ON), keep=("cooperation",))
    assert p.funding_budget_eur == 0 and p.centres_number == 0 and p.cooperation_projects_per_year == 8
    assert set(BY_LEVER) == {"funding", "cooperation", "centres"}


def test_spending_within_budget_and_capacity_and_costs_add_up():
    """4,000 agents for 3,000 firms: each agent stands for 0.75 firms (population_scale), so
    an agent's instalment costs €18,750, 120 centre places serve 160 agents, and 8 projects
    are 10⅔ projects of agents (10 or 11 a year, at €187,500 each)."""
    m = run(
        firms=4000, region_firms=3000, years=12, **ALL_ON, funding_application_rate=1.0, centres_capacity=40
    )
    assert m.population_scale == 0.75
    recs = m.lever_records
    funding = np.array([r[2] for r in recs if r[1] == "funding"])
    # the years together use their budgets to within one agent's grant (two instalments), on
    # either side (random rounding, carried to the next year)
    years = np.arange(1, len(funding) + 1)
    assert np.all(np.abs(np.cumsum(funding) - 1_000_000.0 * years) <= 2 * 18_750.0 + 1e-6)
    centres = [r for r in recs if r[1] == "centres"]
    assert all(r[3] <= 160 for r in centres) and max(r[3] for r in centres) == 160
    assert all(r[2] == 3 * 500_000.0 for r in centres)
    coop = [r for r in recs if r[1] == "cooperation"]
    assert {r[2] for r in coop} <= {10 * 187_500.0, 11 * 187_500.0}  # projects booked at start
    assert all(r[3] <= 11 * 5 * 2 for r in coop)  # two cohorts of up to 11 projects × 5 agents
    total = sum(r[2] for r in recs)
    assert total == pytest.approx(planned_public_cost(m.params), rel=0.02)
    assert all(r[4] >= r[5] >= 0 for r in recs)  # deadweight is part of the upward moves


def test_a_budget_below_one_agent_is_spent_over_the_years_not_beyond():
    """€50,000 a year at 500 agents for 3,000 firms: an agent's instalment costs €150,000, a
    third of an agent a year. Without carrying the rounding, an agent funded in one year kept
    drawing its second instalment beyond later budgets (1.5 times the budget over the years);
    now the years together stay within one agent's grant (€300,000) of their budgets."""
    for seed in range(4):
        m = run(
            seed=seed,
            firms=500,
            region_firms=3000,
            years=20,
            funding_budget_eur=50_000.0,
            funding_application_rate=1.0,
        )
        spent = np.cumsum([r[2] for r in m.lever_records if r[1] == "funding"])
        budget = 50_000.0 * np.arange(1, len(spent) + 1)
        assert np.all(np.abs(spent - budget) <= 300_000.0 + 1e-6)
        assert spent[-1] > 0


def test_projects_started_in_the_end_year_run_their_whole_duration():
    m = run(firms=2000, years=4, cooperation_projects_per_year=12, cooperation_end_year=2016)
    coop = [r for r in m.lever_records if r[1] == "cooperation"]
    started, after = coop[0], coop[1]
    assert started[0] == 2016 and started[2] > 0 and started[3] > 0
    # 2017: no new project and nothing spent, the members of 2016 still in their projects
    assert after[0] == 2017 and after[2] == 0.0 and after[3] > 0
    assert all(r[3] == 0 for r in coop[2:])  # over after their two years


def paired_gain(lever: dict, seeds=range(6), group=None, **kw) -> np.ndarray:
    """Per seed: (upward moves or end share of stages 2–3 in `group`) with the lever minus without."""
    gains = []
    for seed in seeds:
        pair = [run(seed=seed, firms=4000, years=10, **kw, **extra) for extra in ({}, lever)]
        if group is None:
            gains.append(upward_moves(pair[1]) - upward_moves(pair[0]))
        else:
            rows = [1 + g for g in group]  # stage_counts rows: all, 4 size classes, industries
            shares = [1 - m.stage_counts[-1][rows, 0].sum() / m.stage_counts[-1][rows].sum() for m in pair]
            gains.append(shares[1] - shares[0])
    return np.array(gains)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("lever", "group"),
    [
        (dict(funding_budget_eur=2e6, funding_target="small"), [0, 1]),
        (dict(cooperation_projects_per_year=20, cooperation_target="very_small"), [0]),
        (dict(centres_number=4, centres_target="small"), [0, 1]),
    ],
)
def test_each_lever_lifts_its_target_group(lever, group):
    gain = paired_gain(lever, group=group)
    assert gain.mean() > 3 * gain.std(ddof=1) / np.sqrt(len(gain)), gain


@pytest.mark.slow
def test_a_larger_budget_never_does_less():
    small = paired_gain(dict(funding_budget_eur=1e6))
    large = paired_gain(dict(funding_budget_eur=3e6))
    diff = large - small
    assert diff.mean() > -2 * diff.std(ddof=1) / np.sqrt(len(diff))
    assert large.mean() > small.mean()


def deadweight_share(**kw) -> float:
    m = MittelbauModel(
        firms=4000,
        years=8,
        seed=3,
        funding_budget_eur=2e6,
        funding_purpose="dt",
        bm_adoption_factor=0.0,
        funding_application_rate=1.0,
        exit_rate=0.0,  # no entrants, which would arrive without the constraint set below
        **kw,
    )
    m.state.financing_constraint[:] = True
    m.run()
    ups = sum(r[4] for r in m.lever_records)
    assert ups > 0
    return sum(r[5] for r in m.lever_records) / ups


def test_deadweight_is_zero_when_funded_firms_could_not_move_unfunded():
    """Every firm is financially constrained and a constraint stops DT adoption entirely
    (dt_finance_factor = 0): funded firms move only because funding lifts the constraint."""
    assert deadweight_share(dt_finance_factor=0.0, funding_hazard_factor=1.0) == 0.0


def test_deadweight_rises_as_funding_goes_to_firms_about_to_move():
    """With no constraint to lift, a funded firm's unfunded hazard is 1/factor of its funded
    one: at factor 1 every funded move would have happened anyway."""
    shares = [deadweight_share(dt_finance_factor=1.0, funding_hazard_factor=f) for f in (10.0, 2.0, 1.0)]
    assert shares[0] < shares[1] < shares[2] == 1.0, shares


def contact_deadweight(**kw) -> tuple[float, int]:
    """Deadweight share of the reached firms' moves and the upward moves the programmes add
    against the same-seed run without them, for levers acting through the firms' state only
    (no hazard multiplier): cooperation's engagement and ties, centres' techniques."""
    params = {"firms": 3000, "years": 10, "seed": 5, **kw}
    m = MittelbauModel(**params).run()
    ups = sum(r[4] for r in m.lever_records)
    assert ups > 0
    base = MittelbauModel(**{**params, **{k: 0 for k in ("cooperation_projects_per_year", "centres_number")}})
    extra = upward_moves(m) - upward_moves(base.run())
    return sum(r[5] for r in m.lever_records) / ups, extra


COOPERATION_BY_STATE = dict(
    cooperation_projects_per_year=40,
    cooperation_hazard_factor=1.0,
    cooperation_spillover=0.0,
    cooperation_application_rate=1.0,
)
CENTRES_BY_STATE = dict(
    centres_number=10, centres_hazard_factor=1.0, centres_technique_gain=3.0, centres_reach=1.0
)


@pytest.mark.parametrize(
    ("lever", "acts", "inert"),
    [
        (
            COOPERATION_BY_STATE,
            {"engagement_effect": 1.0},
            {"engagement_effect": 0.0, "dt_social_weight": 0.0},
        ),
        (CENTRES_BY_STATE, {"dt_competence_effect": 0.5}, {"dt_competence_effect": 0.0}),
    ],
)
def test_deadweight_undoes_what_a_programme_changed_in_the_firm(lever, acts, inert):
    """A lever without a hazard multiplier acts through what it changes in the firm (engagement
    and ties, techniques): where that raises the hazard, the moves it adds are not counted as
    happening anyway (deadweight below 1); where the changed traits do not act on the hazard,
    every move of a reached firm would have happened anyway (deadweight 1)."""
    share, extra = contact_deadweight(**lever, **acts)
    assert share < 0.9 and extra > 0, (share, extra)
    assert contact_deadweight(**lever, **inert)[0] == 1.0


def test_deadweight_counts_a_lockin_lifted_by_the_programme():
    """With lock-in on at response 0, locked-in stage-1 firms cannot adopt unless a programme
    reaches them: a funded firm of theirs that moves would not have moved anyway."""
    free = deadweight_share(dt_finance_factor=1.0, funding_hazard_factor=1.0)
    assert free == 1.0  # no constraint, no multiplier: every funded move would have happened
    locked = deadweight_share(
        dt_finance_factor=1.0, funding_hazard_factor=1.0, mech_lockin="on", lockin_response=0.0
    )
    assert locked < free


@pytest.mark.parametrize(
    ("lever", "target"),
    [
        ("funding", "very_small"),
        ("funding", "stage1"),
        ("cooperation", "small"),
        ("cooperation", "stage2"),
        ("centres", "stage1"),
        ("centres", "very_small"),
    ],
)
def test_firms_outside_the_target_never_receive_the_lever(lever, target):
    key = BY_LEVER[lever].target
    m = MittelbauModel(firms=3000, years=6, seed=2, **ALL_ON, **{key: target})
    (lv,) = [x for x in m.levers if x.name == lever]
    admitted = []
    original = lv.note_reach

    def check(reached, state):  # called with the state at the start of the year
        new = reached & ~lv.reach.seen if lever != "centres" else reached
        assert not (new & ~in_target(target, state)).any()
        admitted.append(int(new.sum()))
        original(reached, state)

    lv.note_reach = check
    m.run()
    assert sum(admitted) > 0


def test_cooperation_ties_members_and_moves_engagement_out():
    m = MittelbauModel(
        firms=2000,
        region_firms=2000,  # one firm per agent: 10 projects are 10 projects of agents
        years=1,
        seed=4,
        cooperation_projects_per_year=10,
        cooperation_partner="research",
        exit_rate=0.0,
    )
    ties_before = m.ties.nnz
    m.step()
    (coop,) = m.levers
    members = np.flatnonzero(coop.years_left > 0)
    assert len(members) == 50
    assert m.ties.nnz > ties_before
    assert (m.state.engagement[members] == 3).all()  # research partner: 'experts'


def _ties_of(m, row, matrix=None) -> set[int]:
    ties = m.ties if matrix is None else matrix
    return set(ties.indices[ties.indptr[row] : ties.indptr[row + 1]].tolist())


def _replace_firm(m, row: int) -> None:
    """The firm in `row` leaves and an entrant (here: a copy of it) takes the row."""
    entrant = replace(m.state, **{f.name: getattr(m.state, f.name)[[row]] for f in fields(m.state)})
    m._enter(np.array([row]), entrant, m.cell[[row]])


def test_project_ties_leave_with_the_firm_and_stay_among_the_others():
    """An entrant takes over its row's network ties, not its predecessor's project partners;
    the project ties of the members that stay last after the project."""
    m = MittelbauModel(
        firms=1000, region_firms=1000, years=6, seed=3, cooperation_projects_per_year=20, exit_rate=0.0
    )
    m.step()
    (coop,) = m.levers
    members = np.flatnonzero(coop.years_left > 0)
    network = {int(r): _ties_of(m, r, m.network_ties) for r in members}
    before = m.ties
    _replace_firm(m, int(np.flatnonzero(~coop.joined)[0]))  # leaving, it takes no project tie along
    assert m.ties is before
    leaver = int(members[0])
    stayers = sorted(_ties_of(m, leaver) - network[leaver])  # its project's other members
    assert len(stayers) == 4 and set(stayers) <= set(members.tolist())
    _replace_firm(m, leaver)
    assert _ties_of(m, leaver) == network[leaver]  # the slot's network ties alone
    for r in stayers:
        assert leaver not in _ties_of(m, r) or leaver in network[r]
        assert set(stayers) - {r} <= _ties_of(m, r)  # the others stay tied
    assert (m.ties != m.ties.T).nnz == 0
    assert np.array_equal(m.tie_degree, np.diff(m.ties.indptr))
    for _ in range(4):  # the project is over: its ties are not
        m.step()
    assert set(stayers) - {stayers[0]} <= _ties_of(m, stayers[0])


def test_spillover_reaches_partners_not_the_former_participants():
    m = MittelbauModel(
        firms=1000,
        region_firms=1000,
        years=0,
        seed=5,
        cooperation_projects_per_year=20,
        cooperation_duration=1,
        cooperation_spillover=0.5,
        cooperation_hazard_factor=3.0,
        cooperation_end_year=2016,
    )
    (coop,) = m.levers
    coop.act(m, 2016, np.random.default_rng(1))
    alumni = coop.years_left > 0
    year = coop.act(m, 2017, np.random.default_rng(2))  # the projects are over, spillover begins
    partners = (m.ties @ alumni.astype(float) > 0) & ~alumni
    assert alumni.sum() == 100 and partners.any()
    assert np.all(year.dt[alumni] == 1.0)  # the former participants: no second gain
    assert np.allclose(year.dt[partners], 1.0 + 0.5 * 2.0)
    assert np.all(year.dt[~alumni & ~partners] == 1.0)


def test_equal_budget_scenarios_plan_equal_public_money(root):
    folder = root / "scenarios" / "equal-budget"
    costs = {f.stem: planned_public_cost(load_scenario(f).params) for f in folder.glob("*.toml")}
    assert set(costs) == {"funding", "cooperation", "centres", "mix"}
    assert len(set(costs.values())) == 1 and next(iter(costs.values())) == 30_000_000.0


def test_every_scenario_file_loads_and_describes_itself(root):
    for f in list((root / "scenarios").rglob("*.toml")):
        scen = load_scenario(f)
        data = tomllib.loads(f.read_text())
        assert (len(scen.description) > 80 and "sources §" in data["description"]) or (
            f.stem == "baseline"
        ), f


def test_undoing_contact_takes_out_every_earlier_visit_and_project():
    """The deadweight's counterfactual takes out what a programme changed for good: the
    techniques of every earlier centre visit (not only the last), and the engagement a firm had
    before its first cooperation project (not the one its first project raised)."""
    m = MittelbauModel(
        firms=300,
        years=0,
        seed=2,
        centres_number=50,
        centres_reach=1.0,
        centres_demand_rate=1.0,
        centres_technique_gain=1.0,
    )
    centres = m.levers[0]
    start = m.state.techniques.copy()
    for year in (2016, 2017):
        centres.act(m, year, np.random.default_rng(year))
    twice = centres.added >= 2
    assert twice.any()
    techniques = m.state.techniques.copy()
    centres.undo_contact(m.state.engagement.copy(), techniques)
    assert np.array_equal(techniques[twice], np.maximum(start[twice], 0.0))

    coop = MittelbauModel(
        firms=300, years=0, seed=2, cooperation_projects_per_year=40, cooperation_duration=1
    )
    lever = coop.levers[0]
    before = coop.state.engagement.copy()
    for year in (2016, 2017, 2018):
        lever.act(coop, year, np.random.default_rng(year))
    engagement = coop.state.engagement.copy()
    lever.undo_contact(engagement, coop.state.techniques.copy())
    assert lever.joined.sum() > 0
    assert np.array_equal(engagement[lever.joined], np.minimum(coop.state.engagement, before)[lever.joined])
