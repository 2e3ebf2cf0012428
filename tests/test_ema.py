"""EMA Workbench interoperability: the model as an EMA `Model` from the registries, run by
`perform_experiments` and analysed by EMA's PRIM as it stands."""

import warnings

import numpy as np
import pytest

from mittelbau.core.parameters import BY_NAME, REGISTRY
from mittelbau.core.scenario import load_scenario, make_params
from mittelbau.experiments.ema import OUTCOMES, ema_model, evaluate, lever_parameters
from mittelbau.experiments.experiment import run_outputs
from mittelbau.experiments.sensitivity import UNREAD_BY_STUDIES

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from ema_workbench import SequentialEvaluator, perform_experiments
    from ema_workbench.analysis import prim


def test_the_ema_model_takes_roles_ranges_and_outcomes_from_the_registries():
    model = ema_model()
    uncertainties = {u.name: u for u in model.uncertainties}
    levers = {lv.name: lv for lv in model.levers}
    # the numeric uncertainties (the run-up's start years among them) and the mechanism switches
    # (categorical); the economics' parameters no outcome of an experiment reads stay fixed
    assert set(uncertainties) == {
        p.name
        for p in REGISTRY
        if p.role == "uncertainty"
        and (not p.choices or p.group == "mechanisms")
        and p.name not in UNREAD_BY_STUDIES
    }
    assert {"runup_start_year", "dt_wave_start_year"} <= set(uncertainties)
    assert "region_firms" in uncertainties and "discount_rate" not in uncertainties
    assert [c.value for c in uncertainties["mech_lockin"].categories] == ["off", "on"]
    assert all(BY_NAME[n].role == "lever" for n in levers)
    assert "funding_start_year" not in levers and "funding_target" in levers
    budget = levers["funding_budget_eur"]
    assert (budget.lower_bound, budget.upper_bound) == (0.0, 5e6)  # exploration, not 0–1e8
    centres = levers["centres_number"].upper_bound
    assert centres == 10 and isinstance(centres, int)
    assert [c.value for c in levers["cooperation_partner"].categories] == ["digital", "research"]
    assert [o.name for o in model.outcomes] == list(OUTCOMES)
    constants = {c.name: c.value for c in model.constants}
    assert constants["seed"] == BY_NAME["seed"].default and "dt_adoption_factor" not in constants
    assert set(constants) | set(uncertainties) | set(levers) == set(BY_NAME)


def test_a_lever_named_as_an_uncertainty_is_not_also_a_lever():
    model = ema_model(uncertainties=["funding_budget_eur", "exit_rate"])
    assert [u.name for u in model.uncertainties] == ["funding_budget_eur", "exit_rate"]
    assert "funding_budget_eur" not in {lv.name for lv in model.levers}


def test_what_the_scenario_sets_stays_a_constant():
    from mittelbau.experiments.sensitivity import FactorError

    scenario = load_scenario(None, ["exit_rate=0.05", "mech_lockin=on"])
    model = ema_model(scenario)
    assert not {"exit_rate", "mech_lockin"} & {u.name for u in model.uncertainties}
    constants = {c.name: c.value for c in model.constants}
    assert constants["exit_rate"] == 0.05 and constants["mech_lockin"] == "on"
    with pytest.raises(FactorError, match="factor 'exit_rate' is set by the scenario"):
        ema_model(scenario, uncertainties=["exit_rate"])


def test_unknown_lever_names_are_refused_with_the_allowed_ones():
    with pytest.raises(ValueError, match="lever 'exit_rate' is unknown; allowed: funding_budget_eur"):
        lever_parameters(["exit_rate"])


def test_evaluate_accepts_what_ema_samples():
    values = {**make_params({"firms": 200, "years": 3}).model_dump(), "customers_per_supplier": np.int64(4)}
    values["funding_budget_eur"] = np.float64(2e5)
    out = evaluate(**values)
    assert set(out) == set(OUTCOMES)
    direct = run_outputs(
        make_params({"firms": 200, "years": 3, "funding_budget_eur": 2e5, "customers_per_supplier": 4})
    )
    assert out["middle_share"] == direct["middle_share"] and out["upward_rate"] == direct["upward_rate"]


def test_perform_experiments_then_prim_runs_without_glue():
    scenario = load_scenario(None, ["firms=300", "years=5"])
    model = ema_model(
        scenario,
        uncertainties=["bm_adoption_factor", "exit_rate", "customers_per_supplier"],
        levers=["funding_budget_eur", "funding_target"],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        experiments, outcomes = perform_experiments(
            model,
            scenarios=16,
            policies=2,
            evaluator=SequentialEvaluator(model),
            uncertainty_sampling_kwargs={"rng": 7},
            lever_sampling_kwargs={"rng": 8},
        )
    assert len(experiments) == 32 and set(outcomes) == set(OUTCOMES)
    assert experiments["customers_per_supplier"].dtype.kind == "i"
    assert set(experiments["funding_target"].astype(str)) <= set(BY_NAME["funding_target"].choices)
    # one experiment re-run by hand gives the same outcomes: constants and samples reach the run
    row = experiments.iloc[5]
    again = run_outputs(
        make_params(
            {
                "firms": 300,
                "years": 5,
                **{k: row[k] for k in ("bm_adoption_factor", "exit_rate", "customers_per_supplier")},
                "funding_budget_eur": row["funding_budget_eur"],
                "funding_target": str(row["funding_target"]),
            }
        )
    )
    assert outcomes["middle_share"][5] == pytest.approx(again["middle_share"])
    # few upward moves happen where BM adoption is slow: PRIM bounds it from above
    slow = outcomes["upward_rate"] < np.median(outcomes["upward_rate"])
    with warnings.catch_warnings():  # the library's own pandas deprecation notices
        warnings.simplefilter("ignore")
        box = prim.Prim(experiments, slow).find_box()
    last = box.box_lims[-1]
    assert box.peeling_trajectory["density"].iloc[-1] >= 0.8
    assert last["bm_adoption_factor"].iloc[1] < 3.0
