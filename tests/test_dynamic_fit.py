"""Dynamic calibration: distance, seeds, recovery of a known parameter, the committed set."""

import tomllib

import pandas as pd
import pytest

from mittelbau.calibration.dynamic_fit import (
    FITTED,
    PARAMETER_FILE,
    FitResult,
    distance,
    dynamic_targets,
    fit,
    particle_seed,
    simulate,
    write_parameter_set,
)
from mittelbau.core.parameters import BY_NAME


def test_targets_of_the_fit_are_the_behavioural_ones():
    ids = {t["id"] for t in dynamic_targets()}
    assert "bm_introduced_within_3_years" in ids and "motive_peers" in ids
    assert all(t["year"] > 2015 for t in dynamic_targets())


def test_loss_is_zero_on_data_made_by_the_model_itself():
    targets = dynamic_targets()
    truth = {"competence_learning": 0.3}
    synthetic = simulate(truth, 11, 4000, targets)
    assert distance(simulate(truth, 11, 4000, targets), synthetic, targets) == 0.0
    noise = distance(simulate(truth, 12, 4000, targets), synthetic, targets)
    wrong = distance(simulate({"competence_learning": 2.0}, 12, 4000, targets), synthetic, targets)
    assert noise < wrong / 5


def test_an_upper_bound_target_adds_only_above_its_bound():
    targets = [t for t in dynamic_targets() if t.get("bound") == "upper"]
    (t,) = targets
    observed = {t["id"]: t["value"]}
    assert distance({t["id"]: t["value"] - 0.2}, observed, targets) == 0.0
    assert distance({t["id"]: t["value"] + 0.1}, observed, targets) > 5


def test_particle_seeds_follow_the_particle():
    a = particle_seed({"x": 0.1, "y": 2.0}, 7)
    assert a == particle_seed({"y": 2.0, "x": 0.1}, 7)
    assert a != particle_seed({"x": 0.1000001, "y": 2.0}, 7) and a != particle_seed({"x": 0.1, "y": 2.0}, 8)


@pytest.mark.slow
def test_fit_recovers_a_known_parameter_on_a_reduced_problem(tmp_path):
    """The 2016 engagement shares (sources §4.3) identify the engagement drift."""
    targets = dynamic_targets()
    truth = 0.12
    observed = simulate({"engagement_drift_rate": truth}, 5, 3000, targets)
    result = fit(
        tmp_path,
        ("engagement_drift_rate",),
        observed,
        population_size=40,
        generations=4,
        firms=3000,
        seed=3,
        resume=False,
    )
    row = result.posterior.iloc[0]
    assert row.q05 <= truth <= row.q95 and abs(row["median"] - truth) < 0.05
    assert row.sd_ratio < 0.9  # narrower than the prior after four short generations
    again = fit(
        tmp_path,
        ("engagement_drift_rate",),
        observed,
        population_size=40,
        generations=4,
        firms=3000,
        seed=3,
        resume=True,
    )  # finished: nothing reruns
    assert again.evaluations == result.evaluations
    with pytest.raises(ValueError, match="another design"):
        fit(
            tmp_path,
            ("engagement_drift_rate",),
            observed,
            population_size=40,
            generations=4,
            firms=2000,
            seed=3,
            resume=True,
        )


def test_parameter_set_is_versioned_and_round_trips(tmp_path):
    post = pd.DataFrame(
        [
            {
                "parameter": "competence_learning",
                "median": 0.1,
                "mean": 0.1,
                "sd": 0.01,
                "q05": 0.08,
                "q95": 0.12,
                "prior_sd": 0.14,
                "sd_ratio": 0.07,
            }
        ]
    )
    path = tmp_path / "set.toml"
    result = FitResult(post, 8, 12.5, 4000)
    write_parameter_set(result, {"population": 200, "seed": 1}, path)
    write_parameter_set(result, {"population": 200, "seed": 1}, path)
    data = tomllib.loads(path.read_text())
    assert data["version"] == 2 and data["competence_learning"]["median"] == 0.1


def test_registry_defaults_are_the_committed_fit():
    if not PARAMETER_FILE.exists():
        pytest.fail("calibration/dynamic_parameters.toml is not committed")
    fitted = tomllib.loads(PARAMETER_FILE.read_text())
    identified = [n for n in FITTED if n in fitted]
    assert identified and set(identified) | set(fitted["not_identified"]) == set(FITTED)
    for name in identified:
        assert BY_NAME[name].default == pytest.approx(fitted[name]["median"])
        assert BY_NAME[name].source.startswith("calibrated: calibration/dynamic_parameters.toml")
    for name in fitted["not_identified"]:
        assert BY_NAME[name].source.startswith("assumption")
