"""Parameters a run's outcomes do not read (core.inert_parameters) leave the outcomes exactly as
they are, and an experiment gives a run differing from an earlier one only in them that run's
outcomes instead of running it (experiments.experiment.evaluate_points)."""

from __future__ import annotations

import json

import pandas as pd

from mittelbau.core.inert_parameters import (
    ECONOMICS_PARAMETERS,
    SCALE_PARAMETER,
    inert_parameters,
    outcome_key,
)
from mittelbau.core.mechanisms import NAMES, PARAMETERS, switch
from mittelbau.core.parameters import BY_NAME, REGISTRY
from mittelbau.core.scenario import Scenario, ScenarioError, make_params
from mittelbau.experiments import experiment
from mittelbau.experiments.runs import simulate_outcomes_batch
from mittelbau.levers import SPECS

BASE = {"firms": 300, "years": 12, "seed": 11}
LEVERS = {"funding_budget_eur": 3e6, "cooperation_projects_per_year": 4, "centres_number": 2}
MECHANISMS = {switch(n): "on" for n in NAMES}


def _ends(name: str) -> list:
    p = BY_NAME[name]
    return list(p.choices) if p.choices else [p.low, p.high]


def _variants(base: dict, names) -> list[dict]:
    """`base` with each of `names` at each end of its range (or each choice)."""
    out = []
    for name in sorted(names):
        for value in _ends(name):
            try:
                make_params({**base, name: value})
            except ScenarioError:  # an end that contradicts the base (a first year after the last)
                continue
            out.append({**base, name: value})
    return out


def _outcomes(points: list[dict]) -> list[str]:
    scenarios = [Scenario("p", "", make_params(p)) for p in points]
    return [json.dumps(o, sort_keys=True) for o in simulate_outcomes_batch(scenarios)]


def _claims() -> list[tuple[dict, list[dict]]]:
    """(a base, its variants in the parameters claimed inert there), every claim once."""
    claims = []
    for name in NAMES:  # each mechanism off, every other mechanism and programme on
        base = {**BASE, **LEVERS, **MECHANISMS, switch(name): "off"}
        claims.append((base, _variants(base, PARAMETERS[name])))
    for spec in SPECS:  # each programme off, the others and every mechanism on
        base = {**BASE, **LEVERS, **MECHANISMS, spec.switch: 0}
        claims.append((base, _variants(base, [p.name for p in spec.parameters if p.name != spec.switch])))
    on = {**BASE, **LEVERS, **MECHANISMS}
    claims.append((on, _variants(on, ECONOMICS_PARAMETERS - {SCALE_PARAMETER})))
    off = {**BASE, **MECHANISMS}
    claims.append((off, _variants(off, [SCALE_PARAMETER])))
    return claims


def test_parameters_claimed_inert_leave_the_outcomes_as_they_are():
    """Every parameter `inert_parameters` names, at each end of its range, under the condition
    that makes it inert and with everything else on, gives the same outcomes draw for draw, and
    the same outcome key."""
    claims = _claims()
    points = [p for base, variants in claims for p in [base, *variants]]
    results = iter(_outcomes(points))
    checked = set()
    for base, variants in claims:
        reference = next(results)
        names = inert_parameters(make_params(base))
        for point, got in zip(variants, results, strict=False):
            (name,) = [k for k in point if point[k] != base.get(k)] or [None]
            if name is None:  # the end is the base's own value
                continue
            assert name in names, name
            assert got == reference, f"{name} = {point[name]}"
            assert outcome_key(make_params(point)) == outcome_key(make_params(base)), name
            checked.add(name)
    claimed = {n for ns in PARAMETERS.values() for n in ns} | set(ECONOMICS_PARAMETERS)
    claimed |= {p.name for s in SPECS for p in s.parameters if p.name != s.switch}
    assert checked == claimed


def test_the_same_parameters_act_where_their_condition_does_not_hold():
    """The claims are conditional: each mechanism's parameters move the outcomes while it is on,
    a programme's while it is on, and the region's number of firms while a programme spends."""
    on = {**BASE, **LEVERS, **MECHANISMS}
    assert inert_parameters(make_params(on)) == ECONOMICS_PARAMETERS - {SCALE_PARAMETER}
    assert not inert_parameters(make_params(on), outcomes_only=False)
    groups = {name: _variants(on, PARAMETERS[name]) for name in NAMES}
    groups |= {s.name: _variants(on, [p.name for p in s.parameters if p.name != s.switch]) for s in SPECS}
    groups[SCALE_PARAMETER] = _variants(on, [SCALE_PARAMETER])
    points = [on] + [p for variants in groups.values() for p in variants]
    reference, *rest = _outcomes(points)
    results = iter(rest)
    for name, variants in groups.items():
        moved = [got != reference for _, got in zip(variants, results, strict=False)]
        assert any(moved), f"no parameter of {name} moved the outcomes"


def test_every_mechanism_parameter_belongs_to_one_mechanism():
    listed = [n for ns in PARAMETERS.values() for n in ns]
    mechanism_params = {p.name for p in REGISTRY if p.group == "mechanisms" and not p.choices}
    assert sorted(listed) == sorted(mechanism_params) and set(PARAMETERS) == set(NAMES)


def test_an_experiment_runs_once_what_its_runs_share(tmp_path, monkeypatch):
    """Points differing only in parameters that do not act share their runs: the table is the
    one of running every run, and only the distinct runs are run."""
    base = make_params({"firms": 300, "years": 8, "mech_leapfrog": "on"})
    points = [
        {},
        {"discount_rate": 0.07},  # the economics: not kept
        {"bar_growth": 0.4},  # the rising bar is off
        {"leap_rate": 0.1},  # the leapfrogging is on: acts
        {"leap_rate": 0.1, "slump_depth": 0.9, "funding_grant_eur": 90_000.0},  # shares with 3
    ]
    ran = []
    run_batch = experiment.run_batch
    monkeypatch.setattr(experiment, "run_batch", lambda b: ran.append(len(b.runs)) or run_batch(b))
    done: list[int] = []
    s = Scenario("s", "", base)
    shared = experiment.evaluate_points(s, points, 3, tmp_path / "a", on_batch=done.append)
    assert sum(ran) == 6 and sum(done) == 15  # two distinct points × 3 replicates
    alone = experiment.evaluate_points(s, points, 3, tmp_path / "b", reuse_equal_runs=False)
    assert sum(ran) == 6 + 15
    pd.testing.assert_frame_equal(shared, alone)
    assert shared.loc[shared.point == 4, "slump_depth"].eq(0.9).all()  # each run keeps its parameters
    middle = shared.set_index(["point", "replicate"])["middle_share"]
    assert not middle.loc[3].equals(middle.loc[0])


def test_a_study_says_which_runs_it_ran_and_a_factor_nothing_reads_scores_zero(tmp_path):
    from mittelbau.experiments.sensitivity_study import run_study

    s = Scenario("s", "", make_params({"firms": 200, "years": 5}))
    found = run_study("sobol", s, tmp_path, 8, ["exit_rate", "discount_rate"], replications=1)
    # 8 × (2 + 2) points, which differ from A or B only in the discount rate: 16 distinct
    assert found["runs"] == 32
    page = found["page"].read_text(encoding="utf-8")
    assert "16 of the runs were run" in page
    assert (
        "1 of the factors at any point, so their first- and total-order indices are zero by construction"
        in page
    )
    assert "are sampling noise): discount_rate." in page
    # one replication per point: the seeds' share cannot be estimated, and no output is warned
    # about for it
    assert "not estimable with one replication per point" in page
    assert not any("seeds is undefined" in n for n in found["warnings"])
    idx = found["indices"].set_index(["output", "factor"])
    assert (idx.xs("discount_rate", level="factor")[["S1", "ST"]] == 0).all().all()
    assert (idx.xs("exit_rate", level="factor")["ST"] > 0).any()


def test_discovery_leaves_out_of_prim_the_factors_no_outcome_reads(tmp_path):
    """A factor that no run's outcomes read (here the economics' discount rate) cannot bound
    where a case occurs: PRIM does not see it, and prim.md says so; a factor that acts stays."""
    from mittelbau.experiments.discovery import discover

    s = Scenario("s", "", make_params({"firms": 200, "years": 5}))
    names = ["exit_rate", "discount_rate"]
    probe = discover(s, tmp_path / "probe", 40, names, case="middle_share < 2")
    assert probe["unread"] == ["discount_rate"]
    runs = pd.read_parquet(tmp_path / "probe" / "runs" / "runs.parquet")
    cut = float(runs["middle_share"].median())
    found = discover(s, tmp_path / "half", 40, names, case=f"middle_share < {cut}")
    assert found["found"] and found["unread"] == ["discount_rate"]
    assert "discount_rate" not in found["restricted"]
    page = (tmp_path / "half" / "prim.md").read_text(encoding="utf-8")
    assert "Left out of PRIM, as no run's outcomes read them: discount_rate." in page
    sample = pd.read_csv(tmp_path / "half" / "sample.csv")
    assert "discount_rate" in sample  # the sample keeps every factor
