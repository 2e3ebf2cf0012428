"""The switchable mechanisms (model/core/mechanisms.py) and the verdict indicators."""

import hashlib

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from mittelbau.core.categories import SIZE_CLASSES, START_YEAR
from mittelbau.core.indicators import competence_by_stage, middle_shrinks, stuck_share
from mittelbau.core.mechanisms import (
    NAMES,
    customer_power,
    draw_state,
    rising_bar,
    service_neglect,
)
from mittelbau.core.model import MittelbauModel, resolve_region_defaults
from mittelbau.core.population import synthesise
from mittelbau.core.region_data import load_region
from mittelbau.core.scenario import Scenario, make_params
from mittelbau.experiments.runs import simulate
from mittelbau.experiments.sensitivity import FactorError, factors, problem, to_overrides

# the state arrays that existed before the mechanisms, hashed after a run
FIELDS = (
    "industry",
    "size",
    "batch",
    "complexity",
    "position",
    "market",
    "financing_constraint",
    "service_strategy",
    "threatened",
    "techniques",
    "engagement",
    "bm",
    "dt",
    "dt_items",
)
# pinned fingerprints of these runs by the step without any mechanism code (the run-up model:
# 2000–2015, then the projection): they change only when the base dynamics or the calibrated
# defaults change (then re-pin them from a run with every mechanism off; last: learning in whole
# techniques and the dynamic fit v2)
BEFORE = [
    (dict(firms=2000, seed=1, years=20), "b7b4fe0c92f094d0"),
    (dict(firms=2000, seed=7, years=20, region="germany"), "986e873ed41c9fe2"),
    (
        dict(
            firms=2000,
            seed=3,
            years=12,
            funding_budget_eur=2e6,
            cooperation_projects_per_year=5,
            centres_number=2,
        ),
        # levers spend in the region's units since (an agent stands for population_scale
        # firms, rounded at random), and cooperation's project ties leave with an exiting
        # firm and its spillover skips former participants, funding carries what whole agents
        # spend beyond a year's budget or leave of it, and projects run their whole duration:
        # the pin is of that step, still without mechanisms
        "ac46b6703c15916e",
    ),
]
ALL_ON = {f"mech_{n}": "on" for n in NAMES}
# every mechanism on at rates where it does nothing
NEUTRAL = ALL_ON | {
    "neglect_effect": 0.0,
    "lockin_response": 1.0,
    "bar_growth": 0.0,
    "training_learning": 0.0,
    "capture_rate": 0.0,
    "slump_depth": 0.0,
    "leap_rate": 0.0,
}


def fingerprint(model: MittelbauModel) -> str:
    h = hashlib.sha256()
    for f in FIELDS:
        h.update(np.ascontiguousarray(getattr(model.state, f)).tobytes())
    h.update(model.firm_id.tobytes())
    h.update(np.stack(model.stage_counts).tobytes())
    return h.hexdigest()[:16]


@pytest.mark.parametrize(("overrides", "expected"), BEFORE)
def test_every_mechanism_off_reproduces_the_step_before_them(overrides, expected):
    assert fingerprint(MittelbauModel(**overrides).run()) == expected


def test_mechanisms_at_neutral_rates_shift_no_other_draw():
    """Switched on but doing nothing, the mechanisms draw from their own stream only: the run
    is the same, array for array, as with every mechanism off."""
    for overrides, _ in (BEFORE[0], BEFORE[2]):
        off = fingerprint(MittelbauModel(**overrides).run())
        assert fingerprint(MittelbauModel(**overrides, **NEUTRAL).run()) == off


def test_mechanism_state_follows_its_sources():
    """Service revenue share mean 10 % (sources §2.12); IT specialists 12 % of the smallest
    class and 43 % above it, training 18 % vs 43 % (sources §6.2)."""
    table = synthesise(load_region("stuttgart"), 40_000, np.random.default_rng(1))
    # service_revenue_mean 0 (the default) is the region's mean, filled in by the model
    params = resolve_region_defaults(make_params({}), load_region("stuttgart"))
    draw_state(table, params, np.random.default_rng(2))
    assert abs(table.service_revenue.mean() - 0.10) < 0.003
    assert table.service_revenue.min() >= 0.0 and table.service_revenue.max() <= 1.0
    small = table.size == 0
    assert abs(table.it_specialist[small].mean() - 0.12) < 0.01
    assert abs(table.it_specialist[~small].mean() - 0.43) < 0.01
    assert abs(table.trains[small].mean() - 0.18) < 0.01
    assert abs(table.trains[~small].mean() - 0.43) < 0.01
    assert not table.platform.any()


def test_customer_power_counts_each_suppliers_larger_customers():
    """Per supplier, the share of its customers in a larger size class, checked row by row on a
    random network with suppliers that have no customers."""
    rng = np.random.default_rng(5)
    n = 400
    rows, cols = rng.integers(0, n, 1500), rng.integers(0, n, 1500)
    keep = rows % 7 != 0  # every seventh firm supplies no one
    customers = sparse.csr_array((np.ones(keep.sum()), (rows[keep], cols[keep])), shape=(n, n))
    customers.sum_duplicates()
    sizes = rng.integers(0, 5, n).astype(np.int8)
    power = customer_power(customers, sizes)
    for i in range(n):
        cust = customers.indices[customers.indptr[i] : customers.indptr[i + 1]]
        expected = (sizes[cust] > sizes[i]).sum() / len(cust) if len(cust) else 0.0
        assert power[i] == expected
    assert (power[::7] == 0).all() and 0.3 < power[power > 0].mean() < 0.9


def test_mechanism_formulas_on_constructed_firms():
    p = make_params({"neglect_effect": 1.0, "service_below_value": 0.5, "service_revenue_mean": 0.1})
    table = synthesise(load_region("stuttgart"), 4, np.random.default_rng(0))
    table.service_revenue = np.array([0.0, 0.05, 0.10, 0.10])
    power = np.array([0.0, 0.0, 0.0, 1.0])
    # shortfall below the mean, realised revenue halved for a supplier of larger customers only
    assert np.allclose(service_neglect(table, power, p), [2.0, 1.5, 1.0, 1.5])
    customers = sparse.csr_array((np.ones(3), ([0, 0, 1], [1, 2, 2])), shape=(4, 4))
    sizes = np.array([0, 1, 1, 3], dtype=np.int8)
    assert np.allclose(customer_power(customers, sizes), [1.0, 0.0, 0.0, 0.0])
    q = make_params({"bar_growth": 0.5, "bar_effect": 0.2, "it_specialist_bonus": 2.0})
    table.techniques = np.array([0.0, 3.0, 6.0, 1.0])
    table.it_specialist = np.array([False, False, False, True])
    assert np.allclose(rising_bar(table, 2016, q), 1.0)  # no jump in the first projected year
    # 2026: bar 8; shortfalls above max(competence, 3): 5, 5, 2, 5
    assert np.allclose(rising_bar(table, 2026, q), np.exp(-0.2 * np.array([5.0, 5.0, 2.0, 5.0])))
    # 2035: the bar would be 12.5 but stops at the ten techniques asked about; a firm with all
    # ten keeps its whole hazard, the others fall short of ten, not of 12.5
    table.techniques = np.array([10.0, 3.0, 10.0, 8.0])
    assert np.allclose(rising_bar(table, 2035, q), np.exp(-0.2 * np.array([0.0, 7.0, 0.0, 0.0])))


def test_a_leap_takes_the_other_mechanisms_gain_multipliers():
    """A leap is a DT and a BM gain at once: platform suppliers that cannot adopt
    (`capture_adoption_factor` 0) do not leap, nor do firms whose BM hazard the complete slump
    has taken (no service strategy, `slump_depth` 1); at neutral rates the leaps are as alone."""
    base = dict(firms=2000, seed=8, years=20, mech_leapfrog="on", leap_rate=0.2)

    def leapt(**kw) -> tuple[int, MittelbauModel]:
        m = MittelbauModel(**base, **kw).run()
        return int(sum(t[1, 3] for t in m.transitions[m.runup_years :])), m  # 1 → 3 from 2016

    alone, _ = leapt()
    assert alone > 100
    captured = dict(mech_platform_capture="on", capture_rate=0.5, capture_adoption_factor=0.0)
    _, m = leapt(**captured)
    assert m.state.platform.sum() > 0 and not (m.state.platform & m.state.dt).any()
    slumped, m = leapt(mech_delayed_slump="on", slump_delay=0, slump_depth=1.0)
    assert slumped < alone / 2  # leaps only of firms with a service strategy (500 when exempt)
    neutral, _ = leapt(
        mech_delayed_slump="on", slump_depth=0.0, mech_rising_bar="on", bar_effect=0.0, training_learning=0.0
    )
    assert neutral == alone


def test_stuck_share_counts_exits_from_stage_one_as_stuck():
    start = np.array([1, 1, 1, 1, 2, 1])
    now = np.array([1, 2, 3, 1, 1, 1])
    exit_stage = np.array([0, 0, 0, 1, 0, 2])  # row 3 left from stage 1, row 5 after moving up
    # stuck: row 0 (still 1), row 3 (exit from 1); not: rows 1, 2 (moved up), row 5 (moved up first)
    assert stuck_share(start, now, exit_stage) == pytest.approx(2 / 5)
    small = np.array([True, True, False, False, True, False])
    assert stuck_share(start, now, exit_stage, small) == pytest.approx(1 / 2)
    assert np.isnan(stuck_share(start, now, exit_stage, np.zeros(6, bool)))
    assert middle_shrinks(np.array([0.3, 0.3, 0.4]), np.array([0.4, 0.28, 0.32]), 2.0)
    assert not middle_shrinks(np.array([0.3, 0.3, 0.4]), np.array([0.4, 0.281, 0.319]), 2.0)
    c = competence_by_stage(np.array([1.0, 3.0, 5.0, 9.0]), np.array([1, 1, 3, 3]))
    assert c[0] == 2.0 and np.isnan(c[1]) and c[2] == 7.0


def test_the_model_records_the_verdict_indicators():
    m = MittelbauModel(firms=3000, seed=4, years=10).run()
    ind = m.datacollector.get_model_vars_dataframe()
    runup, ind = ind.iloc[: m.runup_years], ind.iloc[m.runup_years :]
    assert runup["stuck_share"].isna().all() and runup["competence_gap"].isna().all()
    assert ind["year"].iloc[0] == 2015
    assert ind["stuck_share"].iloc[0] == 1.0  # every 2015 stage-1 firm is in stage 1 in 2015
    assert (np.diff(ind["stuck_share"]) <= 0.02).all()
    s = m.state
    gap = s.techniques[s.stage == 3].mean() - s.techniques[s.stage == 1].mean()
    assert ind["competence_gap"].iloc[-1] == pytest.approx(gap)


def test_stuck_shares_follow_the_2015_firms_traced_year_by_year():
    """The stuck shares recomputed from outside the model: the 2015 firms traced row by row
    (an exit hands its row to an entrant with a new id), each one's stage its last before it
    left; small are those of fewer than 100 employees in 2015."""
    m = MittelbauModel(firms=3000, seed=4, years=10, exit_rate=0.05)
    while m.year < START_YEAR:
        m.step()
    ids, stage0 = m.firm_id.copy(), m.state.stage.copy()
    small = m.state.size <= SIZE_CLASSES.index("50-99")
    last, gone = stage0.copy(), np.zeros(len(ids), dtype=bool)
    while m.running:
        before = m.state.stage.copy()
        m.step()
        left = ~gone & (m.firm_id != ids)
        last[left] = before[left]
        gone |= left
    stuck = np.where(gone, last, m.state.stage) == 1
    start1 = stage0 == 1
    ind = m.datacollector.get_model_vars_dataframe().iloc[-1]
    assert gone[start1].sum() > 100 and 0 < small[start1].mean() < 1  # both parts are tested
    assert ind["stuck_share"] == pytest.approx((stuck & start1).sum() / start1.sum(), rel=1e-12)
    small1 = start1 & small
    assert ind["stuck_share_small"] == pytest.approx((stuck & small1).sum() / small1.sum(), rel=1e-12)
    assert ind["stuck_share_small"] != ind["stuck_share"]
    closed = gone & (last == 1) & start1  # left the market from stage 1
    assert ind["stuck_closed_share"] == pytest.approx(closed.sum() / start1.sum(), rel=1e-12)
    assert 0 < ind["stuck_closed_share"] < ind["stuck_share"]


# ---- both outcomes are reachable --------------------------------------------------------------
# fast adoption from 2016 and no losses drain stage 2 into stage 3; with stage-1 lock-in (and no
# engagement drift out of it, few exits) the middle is not refilled from below: two worlds
HOLLOW = {
    "bm_adoption_factor": 5.0,
    "dt_adoption_factor": 5.0,
    "bm_loss_rate": 0.0,
    "dt_loss_rate": 0.0,
    "engagement_drift_rate": 0.0,
    "exit_rate": 0.005,
    "mech_lockin": "on",
    "lockin_response": 0.0,
}


def _headline(**overrides) -> dict:
    params = make_params({"firms": 4000, "seed": 11, **overrides})
    return simulate(Scenario("point", "", params)).summary["headline"]


def test_a_registry_point_where_the_middle_hollows_out_by_2035():
    h = _headline(**HOLLOW)
    assert h["hollowed"] and h["year_hollowed"] <= 2035
    assert h["hollowing_ratio"][1] < 0.45
    assert h["middle_shrinks"] and h["middle_share_change_pp"] < -15
    assert h["stuck_share"] > 0.45


def test_the_same_point_without_lockin_and_the_defaults_do_not_hollow():
    h = _headline(**(HOLLOW | {"mech_lockin": "off"}))
    assert not h["hollowed"] and h["hollowing_ratio"][1] > 0.7
    h = _headline()  # 1.55 in 2035 after the run-up (the 2015 state starts at 0.9)
    assert not h["hollowed"] and h["hollowing_ratio"][1] > 1.2


# ---- each mechanism moves the verdicts the way docs/odd.md says ------------------------------
# a slower point than the defaults, so that stage 1 stays large enough for the ratio to be read
SLOW = {"dt_adoption_factor": 0.5, "bm_adoption_factor": 0.5}
DIRECTIONS = [  # mechanism, extra rates, sign of the change in HR (0: none), sign of stuck share
    ("service_neglect", {}, +1, +1),
    ("lockin", {}, -1, +1),
    ("rising_bar", {}, 0, +1),
    ("platform_capture", {"capture_rate": 0.3, "capture_exit_factor": 5.0}, 0, +1),
    ("delayed_slump", {}, -1, +1),
    ("leapfrog", {}, +1, -1),
]


def _ends(overrides: dict, seeds: range) -> pd.DataFrame:
    rows = []
    for seed in seeds:
        m = MittelbauModel(firms=20_000, seed=seed, years=20, **SLOW, **overrides).run()
        rows.append(m.datacollector.get_model_vars_dataframe().iloc[-1])
    return pd.DataFrame(rows)[["hollowing_ratio", "stuck_share"]].reset_index(drop=True)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "rates", "hr_sign", "stuck_sign"), DIRECTIONS, ids=[d[0] for d in DIRECTIONS]
)
def test_each_mechanism_moves_the_verdicts_as_documented(name, rates, hr_sign, stuck_sign):
    """On against off with common random numbers (same seeds, the mechanism's own stream)."""
    seeds = range(6)
    diff = _ends({f"mech_{name}": "on", **rates}, seeds) - _ends(rates, seeds)
    mean, se = diff.mean(), diff.std(ddof=1) / np.sqrt(len(seeds))
    z = mean / se
    assert np.sign(mean["stuck_share"]) == stuck_sign and abs(z["stuck_share"]) > 3, (mean, z)
    if hr_sign:
        assert np.sign(mean["hollowing_ratio"]) == hr_sign and abs(z["hollowing_ratio"]) > 3, (mean, z)
    else:  # no change worth reading: common random numbers make a tiny one significant
        assert abs(mean["hollowing_ratio"]) < 0.05, (mean, z)


# ---- the switches are categorical factors -------------------------------------------------------
def test_switches_are_categorical_factors():
    names = [p.name for p in factors()]
    assert {f"mech_{n}" for n in NAMES} <= set(names) and "leap_rate" in names
    chosen = factors(["mech_lockin", "lockin_response"])
    assert problem(chosen)["bounds"] == [[0.0, 1.0], [0.0, 1.0]]
    assert to_overrides(np.array([0.49, 0.2]), chosen) == {"mech_lockin": "off", "lockin_response": 0.2}
    assert to_overrides(np.array([0.5, 0.2]), chosen)["mech_lockin"] == "on"
    with pytest.raises(FactorError, match="cannot vary"):
        factors(["funding_target"])


@pytest.mark.slow
def test_discovery_names_the_mechanism_that_hollows(tmp_path):
    """Over the hollowing point's rates (lock-in's response at 0) with four switches and the
    exit rate free, PRIM's box requires lock-in (14 % of the points hollow out, box density 80 %)."""
    from mittelbau.core.scenario import load_scenario
    from mittelbau.experiments.discovery import discover

    names = ["mech_lockin", "mech_leapfrog", "mech_delayed_slump", "mech_service_neglect", "exit_rate"]
    base = [f"{k}={v}" for k, v in HOLLOW.items() if k not in names]
    scen = load_scenario(None, ["firms=2000", *base])
    found = discover(scen, tmp_path, 64, names, run_kw={"workers": 1})
    assert 0.05 < found["share"] < 0.5 and found["verdicts"]["hollowed"] == found["share"]
    assert found["restricted"]["mech_lockin"][0] > 0  # lock-in on
    assert found["density"] > 2 * found["share"]
    page = (tmp_path / "prim.md").read_text()
    assert "| mech_lockin | on | on | off, on |" in page
    assert f"Cases of interest: {found['cases_of_interest']} of 64 points" in page


def test_switching_a_mechanism_off_shifts_no_draw_of_the_others():
    """Lock-in alone, and lock-in with the five others on at rates where they do nothing, give
    the same run: each mechanism's draws come from its own stream."""
    base = {"firms": 2000, "seed": 5, "years": 15, "mech_lockin": "on"}
    others = {k: v for k, v in NEUTRAL.items() if k not in ("mech_lockin", "lockin_response")}
    alone = MittelbauModel(**base).run()
    together = MittelbauModel(**base, **others).run()
    assert fingerprint(alone) == fingerprint(together)
    assert fingerprint(alone) != fingerprint(MittelbauModel(**(base | {"mech_lockin": "off"})).run())


def test_ensemble_report_gives_the_verdicts_as_shares_of_runs():
    from mittelbau.experiments.report import verdict_probabilities

    def run(scenario, replicate, shrinks, widens, stuck):
        head = {
            "middle_shrinks": shrinks,
            "competence_gap_widens": widens,
            "stuck_share": stuck,
            "stuck_share_small": stuck + 0.1,
        }
        return {"scenario": scenario, "replicate": replicate, "summary": {"headline": head}}

    ens = {
        "manifest": {"scenarios": {"a": {}, "b": {}}},
        "summaries": [
            run("a", 0, True, True, 0.2),
            run("a", 1, False, True, 0.4),
            run("a", 2, True, None, 0.3),
            run("a", 3, True, False, 0.5),
            run("b", 0, False, False, 0.1),
        ],
    }
    table = verdict_probabilities(ens).set_index("scenario")
    assert table.loc["a", "p_middle_shrinks"] == 0.75 and table.loc["a", "runs"] == 4
    assert table.loc["a", "p_competence_gap_widens"] == pytest.approx(2 / 3)  # unknown gap left out
    assert table.loc["a", "stuck_share"] == pytest.approx(0.35)
    assert table.loc["a", "stuck_share_small"] == pytest.approx(0.45)
    assert table.loc["a", "stuck_share_low"] < 0.35 < table.loc["a", "stuck_share_high"]
    assert table.loc["b", "p_middle_shrinks"] == 0.0 and np.isnan(table.loc["b", "stuck_share_low"])
