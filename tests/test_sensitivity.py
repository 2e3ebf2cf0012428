"""Sensitivity analysis and scenario discovery: the plumbing against known answers, and the
model-side guarantees (unread parameters get no index, executors agree)."""

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from mittelbau.cli import app
from mittelbau.core.scenario import load_scenario
from mittelbau.experiments.discovery import prim_box
from mittelbau.experiments.executors import ExecutionError
from mittelbau.experiments.experiment import evaluate_points
from mittelbau.experiments.sensitivity import (
    FactorError,
    factors,
    morris,
    problem,
    seed_variance_share,
    sobol,
    stabilised_replications,
)
from mittelbau.experiments.sensitivity_study import run_study

ISHIGAMI = {"num_vars": 3, "names": ["x1", "x2", "x3"], "bounds": [[-np.pi, np.pi]] * 3}


def ishigami(X: np.ndarray) -> pd.DataFrame:
    a, b = 7.0, 0.1
    return pd.DataFrame(
        {"y": np.sin(X[:, 0]) + a * np.sin(X[:, 1]) ** 2 + b * X[:, 2] ** 4 * np.sin(X[:, 0])}
    )


def test_sobol_pipeline_recovers_the_ishigami_indices():
    """Analytic values for a = 7, b = 0.1: S1 = 0.314, 0.442, 0; ST = 0.558, 0.442, 0.244."""
    result = sobol(ISHIGAMI, ishigami, 2048, seed=3)
    idx = result.indices.set_index("factor")
    assert np.allclose(idx["S1"], [0.3139, 0.4424, 0.0], atol=0.04), idx["S1"]
    assert np.allclose(idx["ST"], [0.5576, 0.4424, 0.2437], atol=0.04), idx["ST"]
    assert result.second_order.empty
    conv = result.convergence[result.convergence["factor"] == "x1"]
    assert list(conv["N"]) == [256, 512, 1024, 2048]
    assert abs(conv["ST"].iloc[-1] - 0.5576) <= abs(conv["ST"].iloc[0] - 0.5576) + 0.02


def test_morris_pipeline_recovers_linear_effects():
    spec = {"num_vars": 3, "names": ["a", "b", "c"], "bounds": [[0, 1]] * 3}
    result = morris(spec, lambda X: pd.DataFrame({"y": 3 * X[:, 0] - X[:, 1]}), 10, seed=1)
    idx = result.indices.set_index("factor")
    assert np.allclose(idx["mu_star"], [3, 1, 0]) and np.allclose(idx["sigma"], 0, atol=1e-9)


def test_factors_come_from_the_registry():
    default = [p.name for p in factors()]
    assert "dt_adoption_factor" in default and "region" not in default and "seed" not in default
    assert not any(n.startswith(("funding_", "coop_", "centre")) for n in default)
    with_levers = [p.name for p in factors(include_levers=True)]
    assert "funding_budget_eur" in with_levers and "funding_start_year" not in with_levers
    spec = problem(factors(["dt_adoption_factor", "bm_loss_rate"]), grouped=False)
    assert spec["bounds"] == [[0.0, 5.0], [0.0, 0.2]]
    with pytest.raises(FactorError, match="unknown factor 'dt_rate'"):
        factors(["dt_rate"])
    with pytest.raises(FactorError, match="cannot vary"):
        factors(["region"])


@pytest.fixture(scope="module")
def tiny(root):
    return load_scenario(root / "scenarios" / "baseline.toml", ["firms=300", "years=4"])


@pytest.mark.slow
def test_an_unread_parameter_gets_no_total_index_and_executors_agree(tmp_path, tiny):
    """hollowing_threshold only defines the verdict: the middle-tier share never reads it, so
    with common random numbers its total index is exactly zero."""
    runs = {}
    for executor, workers in (("local", 1), ("local", 2), ("dask", 2)):
        runs[executor, workers] = run_study(
            "sobol",
            tiny,
            tmp_path / f"{executor}{workers}",
            8,
            ["dt_adoption_factor", "hollowing_threshold"],
            outputs=("middle_share",),
            replications=2,
            run_kw={"workers": workers, "executor": executor},
        )
    first = runs["local", 1]["indices"]
    idx = first.set_index("factor")
    assert idx.loc["hollowing_threshold", "ST"] == 0.0
    assert idx.loc["dt_adoption_factor", "ST"] > 0.2
    assert all(r["indices"].equals(first) for r in runs.values())
    for name in (
        "indices.csv",
        "convergence.csv",
        "sobol.png",
        "convergence.png",
        "seed_variance.csv",
        "sensitivity.md",
    ):
        assert (tmp_path / "local1" / name).exists(), name


def test_experiment_resumes_and_refuses_another_design(tmp_path, tiny):
    done = []
    points = [{"dt_adoption_factor": 0.01}, {"dt_adoption_factor": 0.2}]
    first = evaluate_points(tiny, points, 9, tmp_path, on_batch=done.append)
    assert sum(done) == 18 and len(first) == 18
    (tmp_path / "batches" / "batch-000001.csv").unlink()
    done.clear()
    again = evaluate_points(tiny, points, 9, tmp_path, on_batch=done.append)
    assert sum(done) == 2 and again.equals(first)  # only the lost batch (runs 16–17) reran
    assert (
        first.groupby("point")["seed"].apply(list).iloc[0]
        == first.groupby("point")["seed"].apply(list).iloc[1]
    )  # common random numbers
    with pytest.raises(ExecutionError, match="other points"):
        evaluate_points(tiny, points[:1], 9, tmp_path)


def test_replication_check_and_seed_variance_on_constructed_data():
    rng = np.random.default_rng(4)
    runs = pd.DataFrame({"y": rng.normal(10, 1, 400)})
    chosen, cv = stabilised_replications(runs, ["y"], tol=0.1)
    assert 2 <= chosen < 400 and abs(cv["y"].iloc[-1] - 0.1) < 0.02
    # between-point spread sd 3, within-point (seed) sd 1: seed share ≈ 1 / (1 + 9) = 0.1
    point_means = rng.normal(0, 3, 200)
    table = pd.DataFrame(
        [{"point": p, "y": m + rng.normal(0, 1)} for p, m in enumerate(point_means) for _ in range(10)]
    )
    share = seed_variance_share(table, ["y"])["y"]
    assert 0.07 < share < 0.13


def test_prim_finds_a_known_box():
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.random((3000, 4)), columns=["a", "b", "c", "d"])
    y = ((x["a"] > 0.7) & (x["b"] < 0.3)).to_numpy()
    box = prim_box(x, y, min_density=0.9)
    assert set(box["restricted"]) == {"a", "b"}
    assert abs(box["restricted"]["a"][0] - 0.7) < 0.03 and abs(box["restricted"]["b"][1] - 0.3) < 0.03
    assert box["coverage"] > 0.85 and box["density"] >= 0.9
    assert prim_box(x, np.zeros(3000, bool))["found"] is False


def test_cli_sensitivity_and_discovery(tmp_path, root):
    runner = CliRunner()
    base = str(root / "scenarios" / "baseline.toml")
    small = ["--set", "firms=300", "--set", "years=4", "--workers", "1", "--replications", "1"]
    res = runner.invoke(
        app,
        [
            "sensitivity",
            "morris",
            base,
            "--trajectories",
            "2",
            "--factors",
            "dt_adoption_factor,bm_adoption_factor,exit_rate",
            *small,
            "--out",
            str(tmp_path / "m"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "middle_share:" in res.output and (tmp_path / "m" / "morris.png").exists()
    idx = pd.read_csv(tmp_path / "m" / "indices.csv")
    assert set(idx["factor"]) == {"dt_adoption_factor", "bm_adoption_factor", "exit_rate"}
    res = runner.invoke(
        app,
        [
            "discover",
            base,
            "--samples",
            "40",
            "--factors",
            "dt_adoption_factor,bm_loss_rate,exit_rate,hollowing_threshold",
            "--set",
            "firms=300",
            "--set",
            "years=6",
            "--workers",
            "1",
            "--out",
            str(tmp_path / "p"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "p" / "prim.md").exists() and (tmp_path / "p" / "sample.csv").exists()
    bad = runner.invoke(app, ["sensitivity", "sobol", base, "--samples", "100", *small])
    assert bad.exit_code == 2 and "a power of two" in bad.output
    bad = runner.invoke(app, ["sensitivity", "morris", base, "--factors", "nope", *small])
    assert bad.exit_code == 2 and "unknown factor 'nope'" in bad.output


def test_second_order_indices_on_ishigami():
    """Ishigami's only interaction is x1–x3: S13 = 0.244, S12 = S23 = 0."""
    result = sobol(ISHIGAMI, ishigami, 1024, seed=5, second_order=True)
    s2 = result.second_order.set_index(["factor", "other"])["S2"]
    assert abs(s2["x1", "x3"] - 0.2437) < 0.08
    assert abs(s2["x1", "x2"]) < 0.08 and abs(s2["x2", "x3"]) < 0.08


def test_case_of_interest_parsing():
    from mittelbau.experiments.discovery import Case, parse_case
    from mittelbau.experiments.sensitivity import FactorError

    assert parse_case("hollowed") == Case()
    assert parse_case(" middle_share<0.2 ") == Case("middle_share", "<", 0.2)
    assert parse_case("polarisation_index >= 4e-1") == Case("polarisation_index", ">=", 0.4)
    runs = pd.DataFrame({"middle_share": [0.1, 0.2, 0.3]})
    assert parse_case("middle_share < 0.2").holds(runs).tolist() == [True, False, False]
    assert parse_case("middle_share <= 0.2").holds(runs).tolist() == [True, True, False]
    for bad in ("middle_share = 0.2", "nope < 1", "hollowed > 0", "middle_share < x"):
        with pytest.raises(FactorError, match="allowed: 'hollowed' or"):
            parse_case(bad)


def test_discovery_labels_points_by_the_case_and_finds_its_box(tmp_path, root):
    """The case 'middle_share < median' splits the sample in half; the labels in sample.csv are
    exactly the majority vote of the runs, and PRIM's box is denser than the sample."""
    from mittelbau.core.scenario import load_scenario
    from mittelbau.experiments.discovery import discover

    scen = load_scenario(root / "scenarios" / "baseline.toml", ["firms=300", "years=8"])
    names = ["bm_adoption_factor", "engagement_drift_rate", "exit_rate"]
    probe = discover(scen, tmp_path / "probe", 60, names, case="middle_share < 2")
    assert probe["found"] and probe["cases_of_interest"] == 60  # every share is below 2
    runs = pd.concat(pd.read_csv(p) for p in sorted((tmp_path / "probe" / "runs" / "batches").glob("*.csv")))
    cut = float(runs["middle_share"].median())
    found = discover(scen, tmp_path / "half", 60, names, case=f"middle_share < {cut}")
    sample = pd.read_csv(tmp_path / "half" / "sample.csv")
    expected = runs.sort_values("point")["middle_share"].to_numpy() < cut
    assert sample["case"].tolist() == expected.tolist()
    assert found["case"] == f"middle_share < {cut:g}" and found["cases_of_interest"] == expected.sum()
    assert found["density"] > expected.mean()
