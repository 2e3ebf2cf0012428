"""The outcome registry: one entry reaches every output, and its names and kinds hold."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mittelbau.core.model import MittelbauModel
from mittelbau.core.outcomes import OUTCOMES, Outcome, at_horizon, reporters
from mittelbau.core.scenario import Scenario, make_params
from mittelbau.experiments.discovery import parse_case
from mittelbau.experiments.experiment import evaluate_points
from mittelbau.experiments.outputs import write_run
from mittelbau.experiments.report import horizon_outcomes, outcome_table
from mittelbau.experiments.runs import simulate
from mittelbau.experiments.sensitivity_study import default_outputs


def exit_share(model) -> float | None:
    """Share of the firms at the start of a year that exit during it."""
    if not model.transitions:
        return None
    t = model.transitions[-1]
    return float(t[1:, 0].sum() / t[1:].sum())


EXITS = Outcome("exit_share", "exit share", "exits in a year / firms", "share", float, "mean", exit_share)
MANY_EXITS = Outcome(
    "many_exits",
    "many exits",
    "exit share above 5 %",
    "-",
    bool,
    "ever",
    lambda m: (exit_share(m) or 0) > 0.05,
)


@pytest.fixture
def registered(monkeypatch):
    """Two outcomes added to the registry, one entry each and nothing else."""
    monkeypatch.setitem(OUTCOMES, EXITS.name, EXITS)
    monkeypatch.setitem(OUTCOMES, MANY_EXITS.name, MANY_EXITS)


def test_an_outcome_added_in_one_place_reaches_every_output(registered, tmp_path):
    params = make_params({"firms": 400, "years": 4, "seed": 3, "exit_rate": 0.06})
    result = simulate(Scenario("dummy", "", params))
    ind = result.indicators
    # the model's reporters: a column per year (the run-up's too), none before the first simulated year
    assert list(ind.columns[-2:]) == ["exit_share", "many_exits"]
    moves = pd.DataFrame(result.transitions)
    exits = moves[(moves.to_stage == 0)].groupby("year")["firms"].sum() / 400
    assert np.isnan(ind["exit_share"].iloc[0])
    assert np.allclose(ind["exit_share"].iloc[1:].to_numpy(), exits.to_numpy())
    assert 0.02 < ind["exit_share"].iloc[1:].mean() < 0.1
    # the summary at the horizon, as the entry's horizon says, over the projected years only
    o = result.summary["outcomes"]
    assert o["exit_share"] == pytest.approx(exits[exits.index > 2015].mean(), abs=1e-6)
    assert o["many_exits"] is bool((exits[exits.index >= 2015] > 0.05).any())
    assert result.summary["definitions"]["exit_share"]["unit"] == "share"
    # the run's files
    write_run(result, tmp_path / "run", figure=False)
    written = pd.read_csv(tmp_path / "run" / "indicators.csv")
    assert written["exit_share"].iloc[1:].to_numpy() == pytest.approx(exits.to_numpy(), abs=1e-6)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["outcomes"]["exit_share"] == o["exit_share"]
    # sampled experiments: a column each, of the outcome's kind
    runs = evaluate_points(Scenario("dummy", "", params), [{}, {"exit_rate": 0.01}], 2, tmp_path / "exp")
    assert {"exit_share", "many_exits"} <= set(runs.columns)
    assert runs["many_exits"].dtype == bool
    high, low = runs.groupby("point")["exit_share"].mean()  # exit rates 0.06 and 0.01
    assert high > 2 * low
    # discovery cases and the ensemble report's table
    assert str(parse_case("many_exits")) == "many_exits"
    assert parse_case("exit_share > 0.05").output == "exit_share"
    ens = {
        "manifest": {"scenarios": {"dummy": {}}},
        "summaries": [{"scenario": "dummy", "replicate": 0, "seed": 3, "summary": result.summary}],
    }
    assert horizon_outcomes(ens)["exit_share"].iloc[0] == o["exit_share"]
    assert any(line.startswith("| `exit_share` | share |") for line in outcome_table(ens))
    # a number some runs have no value of says how many runs it is over
    undefined = {**result.summary, "outcomes": {**o, "exit_share": None}}
    ens["summaries"].append({"scenario": "dummy", "replicate": 1, "seed": 4, "summary": undefined})
    row = next(line for line in outcome_table(ens) if line.startswith("| `exit_share` |"))
    assert row.endswith("(1 of 2 runs) |")
    assert not next(line for line in outcome_table(ens) if line.startswith("| `stuck_share` |")).endswith(
        "runs) |"
    )


def test_one_name_and_one_kind_per_outcome_everywhere(tmp_path):
    params = make_params({"firms": 300, "years": 3, "seed": 8})
    runs = evaluate_points(Scenario("kinds", "", params), [{}], 1, tmp_path)
    seed = int(runs["seed"].iloc[0])  # the replicate's seed, spawned from the scenario's
    result = simulate(Scenario("kinds", "", params.with_overrides({"seed": seed})))
    ind, o = result.indicators, result.summary["outcomes"]
    yearly = [name for name, x in OUTCOMES.items() if x.yearly]
    assert list(ind.columns) == ["year", *yearly] and list(reporters()) == yearly
    assert list(o) == list(OUTCOMES)
    for name, outcome in OUTCOMES.items():
        assert o[name] is None or isinstance(o[name], outcome.kind), name
    # upward_rate is the yearly rate per year and its mean over the simulated years at the horizon
    assert o["upward_rate"] == pytest.approx(ind.loc[ind["year"] > 2015, "upward_rate"].mean(), abs=1e-6)
    assert runs["hollowed"].dtype == bool and bool(runs["hollowed"].iloc[0]) == o["hollowed"]
    assert runs["upward_rate"].iloc[0] == o["upward_rate"] and runs["middle_share"].iloc[0] == o["stage2"]
    assert default_outputs() == (
        "middle_share",
        "polarisation_index",
        "hollowing_ratio",
        "upward_rate",
        "stuck_share",
        "stuck_share_small",
        "competence_gap",
    )
    assert runs["middle_shrinks"].iloc[0] == o["middle_shrinks"]
    assert runs["stuck_share"].iloc[0] == o["stuck_share"] == pytest.approx(ind["stuck_share"].iloc[-1])


def test_horizon_summaries_of_a_constructed_table():
    # a run-up year (2014) first: hollowed and fast then, which no summary at the horizon sees
    yearly = pd.DataFrame(
        {
            "year": [2014, 2015, 2016, 2017],
            **{f"stage{k}": [0.3, 0.3, 0.3, 0.3] for k in (1, 2, 3)},
            "middle_share": [0.1, 0.4, 0.3, 0.2],
            "polarisation_index": [0.5, 0.1, 0.2, 0.3],
            "hollowing_ratio": [0.2, 1.0, 0.4, np.inf],
            "hollowed": [True, False, True, False],
            "upward_rate": [0.9, 0.5, 0.1, 0.3],
            "middle_shrinks": [None, False, False, True],
            "stuck_share": [np.nan, 1.0, 0.8, 0.7],
            "stuck_share_small": [np.nan, 1.0, 0.9, 0.85],
            "stuck_closed_share": [np.nan, 0.0, 0.3, 0.4],
            "competence_gap": [np.nan, 2.0, 2.5, 3.0],
            "competence_gap_widens": [None, False, True, True],
        }
    )
    policy = {"policy": {"cost_per_additional_upward_move_eur": 1234.5}}
    o = at_horizon(yearly, policy)
    assert o["middle_share"] == 0.2 and o["hollowing_ratio"] == np.inf
    assert o["hollowed"] is True  # hollowed in some year from 2015 to the horizon
    assert at_horizon(yearly.assign(hollowed=[True, False, False, False]), policy)["hollowed"] is False
    assert o["upward_rate"] == pytest.approx(0.2)  # the years after 2015: 2015's move is the run-up's
    assert o["middle_shrinks"] is True and o["competence_gap_widens"] is True
    assert o["stuck_share"] == 0.7 and o["stuck_share_small"] == 0.85 and o["competence_gap"] == 3.0
    assert o["stuck_closed_share"] == 0.4
    assert o["cost_per_additional_upward_move"] == 1234.5
    assert at_horizon(yearly, {"policy": None})["cost_per_additional_upward_move"] is None
    # the run-up's miss of 2015 is the run's, read from its summary
    assert at_horizon(yearly, {"runup": {"stage_share_gap": 0.0123}})["runup_gap"] == 0.0123
    assert o["runup_gap"] is None  # a summary without a run-up part


def test_an_entry_states_a_kind_and_a_summary_that_exist():
    with pytest.raises(ValueError, match=r"kind .* allowed: bool, float"):
        Outcome("n", "n", "d", "-", int, "end", lambda m: 1)
    with pytest.raises(ValueError, match="horizon 'last' is invalid; allowed: end, mean, ever, run"):
        Outcome("n", "n", "d", "-", float, "last", lambda m: 1.0)
    with pytest.raises(ValueError, match="give per_year with a yearly horizon"):
        Outcome("n", "n", "d", "-", float, "run", lambda m: 1.0)


def test_model_reporters_are_the_registry(registered):
    m = MittelbauModel(firms=200, seed=1, years=1)
    assert "exit_share" in m.datacollector.model_reporters
    m.step()
    assert m.datacollector.get_model_vars_dataframe()["exit_share"].iloc[-1] == exit_share(m)
