"""Sensitivity analysis and scenario discovery: the plumbing against known answers, and the
model-side guarantees (unread parameters get no index, executors agree)."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import footprint, left_behind
from typer.testing import CliRunner

from mittelbau.cli import app
from mittelbau.core.inert_parameters import SCALE_PARAMETER
from mittelbau.core.parameters import REGISTRY
from mittelbau.core.scenario import load_scenario
from mittelbau.experiments.discovery import prim_box
from mittelbau.experiments.executors import ExecutionError
from mittelbau.experiments.experiment import evaluate_points, run_order
from mittelbau.experiments.sensitivity import (
    MAX_REPLICATIONS,
    UNREAD_BY_STUDIES,
    FactorError,
    factors,
    held_factors,
    morris,
    noise_replications,
    problem,
    seed_variance_share,
    sobol,
    to_overrides,
)
from mittelbau.experiments.sensitivity_study import PILOT_RUNS, run_study

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
    # a small study's convergence table has no rows of a base sample or two, whose indices say
    # nothing (Ishigami's S1 of x1 is above 3 on one)
    small = sobol(ISHIGAMI, ishigami, 16, seed=3).convergence
    assert sorted(set(small["N"])) == [8, 16]


def test_morris_pipeline_recovers_linear_effects():
    spec = {"num_vars": 3, "names": ["a", "b", "c"], "bounds": [[0, 1]] * 3}
    result = morris(spec, lambda X: pd.DataFrame({"y": 3 * X[:, 0] - X[:, 1]}), 10, seed=1)
    idx = result.indices.set_index("factor")
    assert np.allclose(idx["mu_star"], [3, 1, 0]) and np.allclose(idx["sigma"], 0, atol=1e-9)


def test_factors_come_from_the_registry():
    default = [p.name for p in factors()]
    assert "dt_adoption_factor" in default and "region" not in default and "seed" not in default
    assert not any(n.startswith(("funding_", "cooperation_", "centre")) for n in default)
    assert "mech_lockin" in default and "middle_shrink_pp" not in default  # a switch varies, a setting not
    with_levers = [p.name for p in factors(include_levers=True)]
    assert "funding_budget_eur" in with_levers and "funding_start_year" not in with_levers
    # the economics, which no output of a study reads, are no default factor, but the region's
    # firm count (programmes spend per firm); named, they vary (and score zero)
    assert "discount_rate" in UNREAD_BY_STUDIES and len(UNREAD_BY_STUDIES) == 19
    assert not UNREAD_BY_STUDIES & set(with_levers) and SCALE_PARAMETER in default
    uncertain = {p.name for p in REGISTRY if p.role == "uncertainty"}
    assert uncertain - set(default) == UNREAD_BY_STUDIES  # the run-up's start years among them
    assert {"runup_start_year", "dt_wave_start_year"} <= set(default)
    assert [p.name for p in factors(["discount_rate"])] == ["discount_rate"]
    # --levers adds the lever settings to named factors too (a lever named stays once)
    lever_names = [n for n in with_levers if n not in default]
    both = [p.name for p in factors(["exit_rate", "funding_budget_eur"], include_levers=True)]
    assert both[:2] == ["exit_rate", "funding_budget_eur"] and sorted(both[2:] + both[1:2]) == sorted(
        lever_names
    )
    spec = problem(factors(["dt_adoption_factor", "bm_loss_rate"]), grouped=False)
    # bm_loss_rate over its exploration range: where the run-up can reach the 2015 state
    assert spec["bounds"] == [[0.0, 5.0], [0.0, 0.06]]
    with pytest.raises(FactorError, match="unknown factor 'dt_rate'"):
        factors(["dt_rate"])
    with pytest.raises(FactorError, match="cannot vary"):
        factors(["region"])


def test_a_parameter_the_scenario_sets_is_held_not_varied():
    held = {"exit_rate": 0.05, "mech_lockin": "on", "firms": 300}
    default = [p.name for p in factors(held=held)]
    assert "exit_rate" not in default and "mech_lockin" not in default
    assert len(default) == len(factors()) - 2
    assert held_factors(held) == {"exit_rate": 0.05, "mech_lockin": "on"}
    # named factors hold nothing of their own; the lever settings --levers adds to them, what is set
    funding = {"funding_budget_eur": 1e6, "exit_rate": 0.05}
    assert held_factors(funding, True, ["bm_loss_rate"]) == {"funding_budget_eur": 1e6}
    assert held_factors(funding, False, ["bm_loss_rate"]) == {}
    assert held_factors(funding, True, ["funding_budget_eur"]) == {}
    with pytest.raises(FactorError, match=r"factor 'exit_rate' is set by the scenario .* drop its setting"):
        factors(["bm_loss_rate", "exit_rate"], held=held)
    with pytest.raises(FactorError, match="factor 'firms' cannot vary"):  # whether set or not
        factors(["firms"], held=held)


def test_integer_factors_give_every_value_of_their_range_the_same_share():
    """Rounding a uniform draw over [low, high] gives each end half the share of the values
    between; the sampling interval is widened by half a unit each side instead."""
    chosen = factors(["customers_per_supplier", "slump_delay", "bm_loss_rate"])
    spec = problem(chosen)
    assert spec["bounds"] == [[0.5, 10.5], [-0.5, 20.5], [0.0, 0.06]]
    grid = (np.arange(2100) + 0.5) / 2100  # evenly over each interval
    rows = np.column_stack([lo + grid * (hi - lo) for lo, hi in spec["bounds"]])
    values = pd.DataFrame([to_overrides(r, chosen) for r in rows])
    assert set(values["customers_per_supplier"].value_counts()) == {210}
    assert set(values["slump_delay"].value_counts()) == {100}
    assert values["customers_per_supplier"].between(1, 10).all()
    ends = np.array([[0.5, -0.5, 0.0], [10.5, 20.5, 0.2]])  # the intervals' very ends stay inside
    assert [to_overrides(r, chosen)["slump_delay"] for r in ends] == [0, 20]


@pytest.mark.parametrize(("region", "low", "high"), [("stuttgart", 2000, 4500), ("germany", 30000, 50000)])
def test_the_regions_firms_are_explored_over_its_files_range(region, low, high):
    """The registry lets a scenario set the region's firms anywhere from 0 (its file's count)
    to a million; a study explores the range the region file states, never the 0 that stands
    for the file's count."""
    (scale,) = [p for p in factors(region=region) if p.name == SCALE_PARAMETER]
    spec = problem([scale])
    assert spec["bounds"] == [[low - 0.5, high + 0.5]]
    values = [
        to_overrides(np.array([x]), [scale])[SCALE_PARAMETER] for x in np.linspace(*spec["bounds"][0], 50)
    ]
    assert min(values) == low and max(values) == high
    (named,) = factors([SCALE_PARAMETER], region=region)
    assert (named.explore_low, named.explore_high) == (low, high)


@pytest.fixture(scope="module")
def tiny(root):
    return load_scenario(root / "scenarios" / "baseline.toml", ["firms=300", "years=4"])


@pytest.mark.slow
def test_an_unread_parameter_gets_no_total_index_and_executors_agree(tmp_path, tiny):
    """hollowing_threshold only defines the verdict: the middle-tier share never reads it, so
    with common random numbers its total index is exactly zero."""
    runs = {}
    for executor, workers in (("local", 1), ("local", 2), ("dask", 2)):
        before = footprint()
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
        assert not left_behind(before), executor  # the Dask cluster's servers and workers end with it
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
    shutil.rmtree(tmp_path / "batches" / "batch-000001")
    done.clear()
    again = evaluate_points(tiny, points, 9, tmp_path, on_batch=done.append)
    assert sum(done) == 2 and again.equals(first)  # only the lost batch (runs 16–17) reran
    # a damaged batch file is recomputed and said so, never used
    data = tmp_path / "batches" / "batch-000000" / "runs.parquet"
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    done.clear()
    told: list[str] = []
    again = evaluate_points(tiny, points, 9, tmp_path, on_batch=done.append, on_damaged=told.append)
    assert sum(done) == 16 and again.equals(first)
    assert len(told) == 1 and "batch-000000 is damaged (runs.parquet does not match its checksum)" in told[0]
    # the batches form one Parquet dataset of every run's outcomes; runs.parquet adds each
    # run's parameters from the design: the table returned
    dataset = pd.read_parquet(tmp_path / "batches").sort_values(["point", "replicate"])
    assert len(dataset) == 18 and "dt_adoption_factor" not in dataset
    assert dataset["scenario"].unique().tolist() == [tiny.name] and "middle_share" in dataset
    table = pd.read_parquet(tmp_path / "runs.parquet")
    pd.testing.assert_frame_equal(table, first)
    assert table.groupby("point")["dt_adoption_factor"].unique().map(list).tolist() == [[0.01], [0.2]]
    assert table["firms"].unique().tolist() == [tiny.params.firms]
    assert list(table.columns[:5]) == ["scenario", "point", "replicate", "seed", "region"]
    assert (
        first.groupby("point")["seed"].apply(list).iloc[0]
        == first.groupby("point")["seed"].apply(list).iloc[1]
    )  # common random numbers
    with pytest.raises(ExecutionError, match="another design: fewer points \\(2 there, 1 asked\\)"):
        evaluate_points(tiny, points[:1], 9, tmp_path)
    with pytest.raises(ExecutionError, match="other factor values at some of the 2 points there"):
        evaluate_points(tiny, [points[1], points[0]], 9, tmp_path)
    other = [{"exit_rate": 0.01}, {"exit_rate": 0.02}, {"exit_rate": 0.03}]
    with pytest.raises(ExecutionError, match=r"other factors \(dt_adoption_factor there; exit_rate asked\)"):
        evaluate_points(tiny, other, 9, tmp_path)


def test_a_grown_design_keeps_the_runs_the_folder_holds(tmp_path, tiny):
    """A design whose first points are those of the folder's (a sample grown from its seed)
    runs into it: the full batches kept, the folder's last (partial) batch rerun without being
    called damaged, the table that of the grown design run afresh. A design that changes an
    earlier point, or has fewer points, is still refused."""
    points = [{"dt_adoption_factor": 0.01 * (k + 1)} for k in range(5)]
    evaluate_points(tiny, points[:3], 9, tmp_path)  # 27 runs: batches of 16 and 11
    done: list[int] = []
    told: list[str] = []

    def stop(runs: int) -> None:  # the grown design interrupted before its first batch
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        evaluate_points(tiny, points, 9, tmp_path, on_kept=stop)
    assert not (tmp_path / "runs.parquet").exists()  # no table of the smaller design left
    grown = evaluate_points(tiny, points, 9, tmp_path, on_batch=done.append, on_damaged=told.append)
    assert sum(done) == 45 - 16 and told == []  # batch 0 kept; batch 1 (now full) and 2 run
    fresh = evaluate_points(tiny, points, 9, tmp_path / "fresh")
    pd.testing.assert_frame_equal(grown, fresh)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "runs.parquet"), fresh)
    changed = [{"dt_adoption_factor": 0.5}, *points[1:], {"dt_adoption_factor": 0.09}]
    with pytest.raises(ExecutionError, match="another design: other factor values at some of the 5 points"):
        evaluate_points(tiny, changed, 9, tmp_path)
    with pytest.raises(ExecutionError, match="another design: fewer points \\(5 there, 4 asked\\)"):
        evaluate_points(tiny, points[:4], 9, tmp_path)
    # a design of one batch is continued only by one that starts with its points: another
    # design of more points is refused (its runs would replace the folder's)
    evaluate_points(tiny, points[:1], 9, tmp_path / "one")
    with pytest.raises(ExecutionError, match="other factor values at some of the 1 points there"):
        evaluate_points(tiny, [{"dt_adoption_factor": 0.05}, *points[1:3]], 9, tmp_path / "one")


def test_run_order_puts_what_a_design_adds_after_the_runs_it_had():
    assert run_order([(2, 2)]) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert run_order([(1, 2), (2, 2)]) == run_order([(2, 2)])  # more points: as run afresh
    # more replications: the new replicates of every point after the runs there were; then
    # more points with every replicate
    assert run_order([(2, 1), (2, 2), (3, 2)]) == [(0, 0), (1, 0), (0, 1), (1, 1), (2, 0), (2, 1)]
    assert run_order([(1, 1), (2, 3)]) == [(0, 0), (1, 0), (0, 1), (0, 2), (1, 1), (1, 2)]


def test_more_replications_keep_the_runs_the_folder_holds(tmp_path, tiny):
    """A design with more replications (and points) than the folder's runs into it: its runs
    first, kept (but its last, partial batch), then the new replicates; the table that of the
    design run afresh, every run's outcomes its own (runs of a point that only repeats another
    have that point's). The folder resumes with the same command and refuses fewer replications."""
    points = [{"dt_adoption_factor": 0.01}, {"dt_adoption_factor": 0.2}, {"dt_adoption_factor": 0.01}]
    evaluate_points(tiny, points[:2], 9, tmp_path)  # 18 distinct runs: batches of 16 and 2
    done: list[int] = []
    kept: list[int] = []
    told: list[str] = []
    grown = evaluate_points(
        tiny, points, 12, tmp_path, on_batch=done.append, on_kept=kept.append, on_damaged=told.append
    )
    # batch 0 kept: its 16 runs, and the 9 of point 2 that repeat point 0's replicates 0–8
    assert kept == [25] and sum(done) == 36 - 25 and told == []
    manifest = json.loads((tmp_path / "experiment.json").read_text())
    assert manifest["segments"] == [[2, 9], [3, 12]] and manifest["distinct_runs"] == 24
    fresh = evaluate_points(tiny, points, 12, tmp_path / "fresh")
    assert "segments" not in json.loads((tmp_path / "fresh" / "experiment.json").read_text())
    pd.testing.assert_frame_equal(grown, fresh)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "runs.parquet"), fresh)
    by_run = grown.set_index(["point", "replicate"])["middle_share"]
    assert by_run[2].tolist() == by_run[0].tolist() != by_run[1].tolist()
    assert by_run[0].nunique() > 1  # each replicate its own seed
    done.clear()
    again = evaluate_points(tiny, points, 12, tmp_path, on_batch=done.append)
    assert done == [] and again.equals(grown)
    # then more points: their runs after those of both designs before
    more = [*points, {"dt_adoption_factor": 0.1}]
    done.clear()
    grown = evaluate_points(tiny, more, 12, tmp_path, on_batch=done.append)
    # 48 runs: the 24 distinct runs there and point 3's 12; the folder's last batch, partial (8
    # runs, standing for 11), runs again with the first 8 of point 3
    assert done == [8 + 8 + 3, 4] and json.loads((tmp_path / "experiment.json").read_text())["segments"] == [
        [2, 9],
        [3, 12],
        [4, 12],
    ]
    pd.testing.assert_frame_equal(grown, evaluate_points(tiny, more, 12, tmp_path / "fresh4"))
    with pytest.raises(ExecutionError, match="fewer replications \\(12 there, 10 asked\\)"):
        evaluate_points(tiny, more, 10, tmp_path)


@pytest.mark.parametrize(
    ("method", "small", "large", "per", "replications"),
    [("sobol", 8, 16, 4, (2, 2)), ("morris", 6, 12, 3, (2, 2)), ("sobol", 8, 8, 4, (2, 3))],
)
def test_a_larger_study_continues_the_one_in_its_folder(
    tmp_path, tiny, method, small, large, per, replications
):
    """More `--samples` (Sobol), `--trajectories` (Morris) or `--replications` into the same
    folder runs only what the larger design adds (its first points are the smaller one's, from
    the same seed; its new replicates come after), says how many runs it kept, and finds what a
    fresh study of that size finds."""
    chosen, outputs = ["dt_adoption_factor", "exit_rate"], ("middle_share",)
    before, after = replications
    run_study(method, tiny, tmp_path / "grown", small, chosen, outputs=outputs, replications=before)
    counts: dict[str, list[int]] = {"grown": [], "fresh": []}
    kept: dict[str, list[int]] = {"grown": [], "fresh": []}
    found = {
        name: run_study(
            method,
            tiny,
            tmp_path / name,
            large,
            chosen,
            outputs=outputs,
            replications=after,
            on_batch=counts[name].append,
            run_kw={"on_kept": kept[name].append},
        )
        for name in counts
    }
    pd.testing.assert_frame_equal(found["grown"]["indices"], found["fresh"]["indices"])
    total = large * per * after
    assert found["grown"]["runs"] == found["fresh"]["runs"] == total
    assert sum(counts["fresh"]) == total and kept["fresh"] == []
    # the smaller study's runs are kept, but those of its last batch when it was partial
    assert small * per * before - 16 < kept["grown"][0] <= small * per * before
    assert sum(counts["grown"]) + kept["grown"][0] == total


def test_a_study_rerun_without_its_pilot_leaves_none_of_its_files(tmp_path, tiny):
    """Run again with the replications its pilot chose, a study keeps its runs but has no pilot:
    the pilot's table goes, and the seeds' share of the variance is there only when estimable."""
    chosen, outputs = ["dt_adoption_factor", "exit_rate"], ("middle_share",)
    first = run_study("sobol", tiny, tmp_path, 8, chosen, outputs=outputs)
    assert (tmp_path / "replications.csv").exists() and (tmp_path / "seed_variance.csv").exists()
    for name in ("replications.csv", "seed_variance.csv"):  # both name their first column
        assert pd.read_csv(tmp_path / name).columns[0] == "output"
    again = run_study("sobol", tiny, tmp_path, 8, chosen, outputs=outputs, replications=first["replications"])
    pd.testing.assert_frame_equal(again["indices"], first["indices"])
    assert not (tmp_path / "replications.csv").exists()
    assert (tmp_path / "seed_variance.csv").exists() == (first["replications"] > 1)


def test_a_study_that_fails_as_it_writes_its_results_leaves_those_before_it_whole(
    tmp_path, tiny, monkeypatch
):
    """The result files of a study (indices, sample, figures, page) are put in place together
    once all are written: a larger study into the folder that fails while writing them (a full
    disk, say) leaves the smaller study's files as they were, none of its own."""
    from mittelbau.experiments import sensitivity_study

    chosen, outputs = ["exit_rate"], ("middle_share",)
    run_study("sobol", tiny, tmp_path, 8, chosen, outputs=outputs, replications=1)
    before = {f.name: f.read_bytes() for f in tmp_path.iterdir() if f.is_file()}
    assert {"indices.csv", "samples.parquet", "sensitivity.md", "sobol.png"} <= set(before)

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sensitivity_study, "write_page", full)
    with pytest.raises(OSError, match="No space left"):
        run_study("sobol", tiny, tmp_path, 16, chosen, outputs=outputs, replications=1)
    after = {f.name: f.read_bytes() for f in tmp_path.iterdir() if f.is_file()}
    assert after == before
    assert not list(tmp_path.glob(".*.tmp-*"))


def test_groups_of_one_registry_group_are_refused_before_anything_runs(tmp_path, root):
    base = str(root / "scenarios" / "baseline.toml")
    out = tmp_path / "g"
    factors = ["--factors", "dt_adoption_factor,dt_finance_factor", "--groups"]
    settings = ["--samples", "8", "--set", "firms=300", "--out", str(out)]
    res = CliRunner().invoke(app, ["sensitivity", "sobol", base, *factors, *settings])
    assert res.exit_code == 2 and "--groups with factors of one registry group (dynamics)" in res.output
    assert not out.exists()


def test_the_command_counts_only_the_runs_it_runs(tmp_path, root):
    """Rerun with more --samples into the same folder, the command says how many runs it kept
    and its progress counts the others: it ends at their total."""
    base = str(root / "scenarios" / "baseline.toml")
    command = ["sensitivity", "sobol", base, "--factors", "dt_adoption_factor,exit_rate"]
    small = ["--set", "firms=300", "--set", "years=4", "--workers", "1", "--replications", "2"]
    out = ["--out", str(tmp_path / "s")]
    runner = CliRunner()
    first = runner.invoke(app, [*command, "--samples", "8", *small, *out])
    assert first.exit_code == 0, first.output
    assert "kept" not in first.output and "sobol: 64/64 runs" in first.output
    grown = runner.invoke(app, [*command, "--samples", "16", *small, *out])
    assert grown.exit_code == 0, grown.output
    assert "sobol: 64 runs kept from the output folder" in grown.output
    assert "sobol: 64/64 runs" in grown.output and "sobol: 128 runs" in grown.output
    more = runner.invoke(app, [*command, "--samples", "16", *small[:-1], "3", *out])
    assert more.exit_code == 0, more.output
    assert "sobol: 128 runs kept from the output folder" in more.output
    assert "sobol: 64/64 runs" in more.output and "sobol: 192 runs" in more.output


def _pilot(rng, points: int, reps: int, spread: float, noise: float, common: float = 0.0) -> pd.DataFrame:
    """Constructed pilot outputs under common random numbers: a point effect (sd `spread`), a
    seed effect shared by every point (sd `common`) and noise (sd `noise`)."""
    y = (
        rng.normal(0, spread, (points, 1))
        + rng.normal(0, common, (1, reps))
        + rng.normal(0, noise, (points, reps))
    )
    return pd.DataFrame(
        {
            "point": np.repeat(np.arange(points), reps),
            "replicate": np.tile(np.arange(reps), points),
            "y": y.ravel(),
        }
    )


def test_replications_follow_the_noise_against_the_spread_of_the_points():
    """The replications make the seeds' share of the replicate means' variance at most
    NOISE_SHARE: noise² (1 − s) / (s · spread²), the seeds' common part left aside (it shifts
    every point alike); 1 for quiet outputs, the most for noisy ones or where no output shows
    a signal, and not growing with the pilot's size."""
    rng = np.random.default_rng(4)
    chosen, table = noise_replications(_pilot(rng, 4000, 2, 1.0, 1.0, common=5.0), ["y"])
    assert 17 <= chosen <= 21  # 0.95 / 0.05 = 19
    assert abs(table.loc["y", "noise_variance"] - 1) < 0.1 and abs(table.loc["y", "point_variance"] - 1) < 0.1
    assert abs(table.loc["y", "noise_share_one_run"] - 0.5) < 0.05
    assert noise_replications(_pilot(rng, 16, 2, 1.0, 0.1), ["y"])[0] == 1
    assert noise_replications(_pilot(rng, 16, 2, 1.0, 3.0), ["y"])[0] == MAX_REPLICATIONS  # 171, capped
    assert noise_replications(_pilot(rng, 16, 2, 0.0, 1.0), ["y"])[0] == MAX_REPLICATIONS  # no signal
    # the same noise, pilots of 16 and 64 points: the same median choice (0.09 · 0.95 / 0.05 → 2)
    medians = [
        np.median([noise_replications(_pilot(rng, n, 2, 1.0, 0.3), ["y"])[0] for _ in range(200)])
        for n in (16, 64)
    ]
    assert medians == [2.0, 2.0]
    # a constant output needs one; an output without signal is left out of the choice
    quiet = _pilot(rng, 16, 2, 1.0, 0.1).assign(c=1.0, z=rng.normal(0, 1, 32))
    chosen, table = noise_replications(quiet, ["y", "c", "z"])
    assert chosen == 1 and table.loc["c", "replications_needed"] == 1
    assert np.isnan(table.loc["z", "replications_needed"]) or table.loc["z", "replications_needed"] > 1
    # a constant output has no noise share (no variance at all), not a share of 0
    assert np.isnan(table.loc["c", "noise_share_one_run"])
    # an infinite value (a hollowing ratio once a pole empties) is a missing one: its point is
    # left out, as a point without a value is, instead of making every variance undefined
    wild = quiet.assign(y=quiet["y"].where(quiet.index != 5, np.inf))
    chosen_wild, table_wild = noise_replications(wild, ["y"])
    tame, table_tame = noise_replications(wild[wild["point"] != wild.loc[5, "point"]], ["y"])
    assert chosen_wild == tame == 1
    assert table_wild.loc["y", "point_variance"] == table_tame.loc["y", "point_variance"] > 0
    # an output with a value at fewer than two points has no numbers, and no error
    empty = quiet.assign(y=np.where(quiet["point"] > 0, np.inf, 1.0))
    assert noise_replications(empty, ["y", "c"])[1].loc["y"].isna().all()


def test_a_study_measuring_more_seed_noise_than_allowed_says_so():
    """With replications the study measures the seeds' share itself; above NOISE_SHARE the
    reader is told, as the pilot's estimate is when its choice was capped."""
    from mittelbau.experiments.sensitivity_study import index_warnings

    indices = pd.DataFrame({"output": ["a", "b"], "S1": 0.1, "ST": 0.2, "S1_conf": 0.01, "ST_conf": 0.01})
    shares = pd.Series({"a": 0.127, "b": 0.077})  # b above the 5 % aimed at, within the estimate's noise
    notes = index_warnings("sobol", indices, ["a", "b"], shares, 1024, measured=True)
    assert notes == [
        "a: the seeds make 12.7% of the variance of its replicate means, more than twice the 5% "
        "aimed at; every total index carries about that much noise — use more --replications"
    ]
    assert index_warnings("sobol", indices, ["a", "b"], shares, 1024, measured=False) == []
    # a constant output of a grouped Morris study (σ undefined for groups) is said to be constant
    constant = pd.DataFrame(
        {
            "output": "c",
            "factor": ["g1", "g2"],
            "mu_star": 0.0,
            "mu_star_conf": 0.0,
            "mu": 0.0,
            "sigma": np.nan,
        }
    )
    said = index_warnings("morris", constant, ["c"], None, 8)
    assert said == ["c: it did not vary over the sample, so every index is zero"]
    morris = pd.DataFrame(
        {"output": ["a", "b"], "mu_star": 0.1, "mu_star_conf": 0.01, "mu": 0.1, "sigma": 0.1}
    )
    assert (
        "every μ* carries about that much noise"
        in index_warnings("morris", morris, ["a"], shares, 8, True)[0]
    )


def test_seed_variance_share_on_constructed_data():
    """Points of spread sd 3, seeds shifting every point alike (sd 2) and noise differing
    between points (sd 1), 10 replicates: the seeds' share of the replicate means' variance is
    the noise a mean keeps, 1/10 / (9 + 1/10) ≈ 1.1 % — not the common shift, which moves every
    point alike and leaves the indices as they are, nor the noise of a single run."""
    rng = np.random.default_rng(4)
    point_means, shifts = rng.normal(0, 3, 200), rng.normal(0, 2, 10)
    table = pd.DataFrame(
        [
            {"point": p, "replicate": r, "y": m + shifts[r] + rng.normal(0, 1)}
            for p, m in enumerate(point_means)
            for r in range(10)
        ]
    )
    share = seed_variance_share(table, ["y"])["y"]
    assert 0.007 < share < 0.016, share
    one = seed_variance_share(table[table["replicate"] < 2], ["y"])["y"]
    assert 0.04 < one < 0.08  # two replicates keep half the noise: 0.5 / 9.5


def test_prim_finds_a_known_box():
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.random((3000, 4)), columns=["a", "b", "c", "d"])
    y = ((x["a"] > 0.7) & (x["b"] < 0.3)).to_numpy()
    box = prim_box(x, y, min_density=0.9)
    assert set(box["restricted"]) == {"a", "b"}
    assert abs(box["restricted"]["a"][0] - 0.7) < 0.03 and abs(box["restricted"]["b"][1] - 0.3) < 0.03
    assert box["coverage"] > 0.85 and box["density"] >= 0.9 and box["dense"]
    # a's box is cut from below only, b's from above only: the other side is the sample's
    # extreme, no limit; both cuts are far from chance
    assert box["cut"] == {"a": [True, False], "b": [False, True]}
    assert box["qp_values"]["a"][0] < 1e-6 and np.isnan(box["qp_values"]["a"][1])
    assert np.isnan(box["qp_values"]["b"][0]) and box["qp_values"]["b"][1] < 1e-6
    assert prim_box(x, np.zeros(3000, bool))["found"] is False
    # cases scattered at random: no box reaches the density asked, and the result says so
    noise = prim_box(x, rng.random(3000) < 0.2, min_density=0.9)
    assert noise["found"] and not noise["dense"] and noise["density"] < 0.9


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
    # the sample is stored with its outcomes: SALib analyses it again to the same indices
    import json

    from SALib.analyze import morris as morris_analyze

    stored = pd.read_parquet(tmp_path / "m" / "samples.parquet")
    spec = json.loads((tmp_path / "m" / "problem.json").read_text())
    X = stored[spec["factors"]].to_numpy()
    for output in ("middle_share", "polarisation_index"):
        again = morris_analyze.analyze(
            spec["problem"], X, stored[output].to_numpy(), num_levels=spec["num_levels"]
        )
        mine = idx[idx["output"] == output].set_index("factor").loc[again["names"], "mu_star"]
        assert np.allclose(mine.to_numpy(), again["mu_star"], rtol=1e-5, atol=1e-9)
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
    bad = runner.invoke(
        app, ["sensitivity", "sobol", base, "--samples", "10", *small[:6], "--out", str(tmp_path / "s10")]
    )
    assert bad.exit_code == 2 and "--samples = 10 is invalid" in bad.output and "a power of two" in bad.output
    assert not (tmp_path / "s10").exists()  # refused before the pilot ran or anything was written
    bad = runner.invoke(app, ["sensitivity", "morris", base, "--factors", "nope", *small])
    assert bad.exit_code == 2 and "unknown factor 'nope'" in bad.output
    # a --set of a factor: refused when the factor is named, held when the factors are the default
    bad = runner.invoke(
        app,
        [
            "sensitivity",
            "morris",
            base,
            "--factors",
            "exit_rate,bm_loss_rate",
            "--set",
            "exit_rate=0.05",
            *small,
        ],
    )
    assert bad.exit_code == 2 and "factor 'exit_rate' is set by the scenario" in bad.output
    res = runner.invoke(
        app,
        [
            "discover",
            base,
            "--samples",
            "12",
            "--set",
            "exit_rate=0.05",
            "--set",
            "firms=200",
            "--set",
            "years=2",
            "--workers",
            "1",
            "--out",
            str(tmp_path / "held"),
        ],
    )
    assert res.exit_code == 0, res.output
    sample = pd.read_csv(tmp_path / "held" / "sample.csv")
    assert "exit_rate" not in sample.columns and "customers_per_supplier" in sample.columns
    assert (sample["customers_per_supplier"] % 1 == 0).all()  # the values the runs had
    assert (pd.read_parquet(tmp_path / "held" / "runs" / "runs.parquet")["exit_rate"] == 0.05).all()
    assert "Held at the scenario's values (its file or --set), not varied: `exit_rate` = 0.05." in (
        (tmp_path / "held" / "prim.md").read_text()
    )


def test_a_case_on_an_outcome_no_point_has_says_so(tmp_path, root):
    from mittelbau.experiments.discovery import discover

    scen = load_scenario(root / "scenarios" / "baseline.toml", ["firms=100", "years=2"])
    names = ["exit_rate", "bm_loss_rate"]
    found = discover(scen, tmp_path / "d", 8, names, case="cost_per_additional_upward_move < 1")
    assert not found["found"] and found["undefined"]  # no programme: no cost per move anywhere
    assert "`cost_per_additional_upward_move` has no value at any sampled point" in (
        (tmp_path / "d" / "prim.md").read_text()
    )
    found = discover(scen, tmp_path / "e", 8, names, case="middle_share > 2")
    assert not found["found"] and not found["undefined"]
    assert "No sampled point has `middle_share > 2`" in (tmp_path / "e" / "prim.md").read_text()


def test_box_limits_are_given_in_the_values_the_runs_had():
    from mittelbau.core.parameters import BY_NAME
    from mittelbau.experiments.discovery import _as_run

    assert _as_run(BY_NAME["runup_start_year"], 1997.5, 2004.5) == [1998.0, 2004.0]
    assert _as_run(BY_NAME["runup_start_year"], 1998.0, 2005.0) == [1998.0, 2005.0]
    assert _as_run(BY_NAME["mech_lockin"], 0.0, 0.5) == [0.0, 0.0]  # off only
    assert _as_run(BY_NAME["mech_lockin"], 0.5, 1.0) == [1.0, 1.0]  # on only
    assert _as_run(BY_NAME["exit_rate"], 0.0123, 0.05) == [0.0123, 0.05]


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
    # a box of the whole space restricts nothing, and says so; its table has its columns
    assert probe["restricted"] == {}
    assert (
        "it restricts no factor: the whole sampled space already has the density asked"
        in (tmp_path / "probe" / "prim.md").read_text()
    )
    box = pd.read_csv(tmp_path / "probe" / "prim_box.csv")
    assert box.empty and list(box.columns) == [
        "factor",
        "low",
        "high",
        "low_cut",
        "high_cut",
        "qp_low",
        "qp_high",
    ]
    runs = pd.read_parquet(tmp_path / "probe" / "runs" / "batches")  # one dataset of all runs
    cut = float(runs["middle_share"].median())
    found = discover(scen, tmp_path / "half", 60, names, case=f"middle_share < {cut}")
    sample = pd.read_csv(tmp_path / "half" / "sample.csv")
    expected = runs.sort_values("point")["middle_share"].to_numpy() < cut
    assert sample["case"].tolist() == expected.tolist()
    assert found["case"] == f"middle_share < {cut:g}" and found["cases_of_interest"] == expected.sum()
    assert found["density"] > expected.mean()
    # the sample is stored with its outcomes: X and the replicate means Y beside the label
    stored = pd.read_parquet(tmp_path / "half" / "sample.parquet")
    means = runs.groupby("point")["middle_share"].mean().to_numpy()
    assert list(stored.columns[:3]) == names and np.allclose(stored["middle_share"], means)


def test_discovery_of_another_case_over_the_same_runs_leaves_no_box_of_the_first(tmp_path, root):
    from mittelbau.core.scenario import load_scenario
    from mittelbau.experiments.discovery import discover

    scen = load_scenario(root / "scenarios" / "baseline.toml", ["firms=300", "years=5"])
    names = ["bm_adoption_factor", "exit_rate"]
    assert discover(scen, tmp_path, 30, names, case="middle_share < 2")["found"]
    assert (tmp_path / "prim_box.csv").exists() and (tmp_path / "prim_trajectory.csv").exists()
    assert not discover(scen, tmp_path, 30, names, case="middle_share < 0")["found"]  # the same runs
    assert not (tmp_path / "prim_box.csv").exists() and not (tmp_path / "prim_trajectory.csv").exists()
    assert "No sampled point has `middle_share < 0`" in (tmp_path / "prim.md").read_text()


def test_a_morris_figure_of_groups_ranks_every_group_by_mu_star(tmp_path, monkeypatch):
    """SALib gives a group of several factors no σ: the figure ranks the groups by μ* instead
    of dropping them from a μ*–σ scatter."""
    from mittelbau.experiments import sensitivity_study

    drawn = {}
    monkeypatch.setattr(
        sensitivity_study, "save_figure", lambda fig, path: drawn.setdefault("fig", fig) and path
    )
    groups = ["runup", "dynamics", "network", "mechanisms"]
    indices = pd.DataFrame(
        {
            "output": "middle_share",
            "factor": groups,
            "mu_star": [0.07, 0.03, 0.01, 0.02],
            "mu_star_conf": 0.01,
            "mu": 0.0,
            "sigma": [np.nan, np.nan, 0.004, np.nan],
        }
    )
    sensitivity_study.plot_morris(indices, tmp_path / "m.png")
    ax = drawn["fig"].axes[0]
    bars = {t.get_text(): b.get_width() for t, b in zip(ax.get_yticklabels(), ax.patches, strict=True)}
    assert bars == dict(zip(groups, indices["mu_star"], strict=True))
    assert [t.get_text() for t in ax.get_yticklabels()] == ["network", "mechanisms", "dynamics", "runup"]


def test_discovery_labels_a_point_by_the_majority_of_its_replicates(tmp_path, root):
    """With three replicates a point is a case of interest when the case holds in two or three
    of them, not in one: the sample has points of each count, and the labels follow the vote."""
    from mittelbau.core.scenario import load_scenario
    from mittelbau.experiments.discovery import discover

    scen = load_scenario(root / "scenarios" / "baseline.toml", ["firms=300", "years=8"])
    names = ["bm_adoption_factor", "exit_rate"]
    discover(scen, tmp_path / "probe", 30, names, replications=3, case="middle_share < 2")
    runs = pd.read_parquet(tmp_path / "probe" / "runs" / "batches")
    cut = float(runs["middle_share"].median())
    discover(scen, tmp_path / "vote", 30, names, replications=3, case=f"middle_share < {cut}")
    votes = (runs["middle_share"] < cut).groupby(runs["point"]).sum().sort_index()
    assert set(votes) >= {1, 2}  # both sides of the majority are in the sample
    sample = pd.read_csv(tmp_path / "vote" / "sample.csv")
    assert sample["case"].tolist() == (votes >= 2).tolist()


def test_discovery_leaves_out_the_points_where_the_case_has_no_value(tmp_path, root, monkeypatch):
    """A replicate without a value of the case's outcome has no vote; a point where no
    replicate has one is neither a case nor not one, and PRIM does not see it (an undefined
    comparison would otherwise count as 'not a case')."""
    from mittelbau.core.outcomes import OUTCOMES
    from mittelbau.core.scenario import load_scenario
    from mittelbau.experiments import discovery

    shares = [[0.4, 0.4], [np.nan, 0.4], [np.nan, np.nan], [0.6, 0.6], [0.6, np.nan], [0.4, 0.6]]
    rows = [
        {"point": k, "replicate": r, "seed": r, **{o: 0.0 for o in OUTCOMES}, "middle_share": v}
        for k, pair in enumerate(shares)
        for r, v in enumerate(pair)
    ]
    monkeypatch.setattr(discovery, "evaluate_points", lambda *a, **k: pd.DataFrame(rows))
    scen = load_scenario(root / "scenarios" / "baseline.toml", ["firms=300"])
    found = discovery.discover(scen, tmp_path / "d", len(shares), ["exit_rate"], case="middle_share < 0.5")
    sample = pd.read_csv(tmp_path / "d" / "sample.csv")
    assert sample["case_defined"].tolist() == [True, True, False, True, True, True]
    assert sample["case"].tolist() == [True, True, False, False, False, False]  # a tie is not a case
    assert found["cases_of_interest"] == 2 and found["n"] == 5 and found["undefined_points"] == 1
    assert found["share"] == pytest.approx(2 / 5)
    page = (tmp_path / "d" / "prim.md").read_text()
    assert "Cases of interest: 2 of 5 points (40%); 1 of the 6 points have no value of `middle_share`" in page
    # a price no move was bought at is no price low enough, and a high one: infinite
    prices = [[np.nan, 250_000.0], [np.nan, np.nan], [200_000.0, 250_000.0]]
    rows[:] = [
        {
            "point": k,
            "replicate": r,
            "seed": r,
            **{o: 0.0 for o in OUTCOMES},
            "cost_per_additional_upward_move": v,
        }
        for k, pair in enumerate(prices)
        for r, v in enumerate(pair)
    ]
    for case, labels in (("< 300000", [False, False, True]), ("> 300000", [False, True, False])):
        discovery.discover(
            scen, tmp_path / "p", 3, ["exit_rate"], case=f"cost_per_additional_upward_move {case}"
        )
        sample = pd.read_csv(tmp_path / "p" / "sample.csv")
        assert sample["case"].tolist() == labels and sample["case_defined"].all(), case


def test_study_counts_its_runs_pilot_included_and_warns_at_small_n(tmp_path, tiny):
    """The progress total is known before the sample runs: first the pilot and one replication
    per point, then pilot plus points × replications; at 8 base samples the intervals are too
    wide and the page says so."""
    totals, done = [], []
    found = run_study(
        "sobol",
        tiny,
        tmp_path,
        8,
        ["dt_adoption_factor", "hollowing_threshold"],
        outputs=("middle_share", "hollowed"),
        on_batch=done.append,
        on_total=totals.append,
        run_kw={"workers": 1},
    )
    points = 8 * (2 + 2)
    assert totals == [PILOT_RUNS + points, PILOT_RUNS + points * found["replications"]]
    assert sum(done) == totals[-1] == PILOT_RUNS + found["runs"]
    notes = found["warnings"]
    assert any(n.startswith("middle_share: ") and "too uncertain to rank" in n for n in notes), notes
    page = (tmp_path / "sensitivity.md").read_text()
    assert "**Warnings**" in page and "nan%" not in page
    # the pilot's table: each output's variances and the replications it needs; the most is run
    pilot = pd.read_csv(tmp_path / "replications.csv", index_col="output")
    assert list(pilot.index) == ["middle_share", "hollowed"]
    needs = pilot["replications_needed"].dropna()
    assert found["replications"] == (
        min(MAX_REPLICATIONS, int(needs.max())) if len(needs) else MAX_REPLICATIONS
    )
    assert (
        "Replications chosen from a pilot of 16 points (Latin hypercube over the factors) × 2 seeds" in page
    )


def test_sample_sizes_are_known_before_sampling():
    from SALib.sample import morris as morris_sample
    from SALib.sample import sobol as sobol_sample

    from mittelbau.experiments.sensitivity import sample_points

    one_group = ["dt_adoption_factor", "bm_adoption_factor", "exit_rate"]
    two_groups = [*one_group, "customers_per_supplier"]
    with pytest.raises(FactorError, match="one registry group"):  # one group: a single index
        problem(factors(one_group), grouped=True)
    for names, grouped in ((one_group, False), (two_groups, True)):
        spec = problem(factors(names), grouped)
        assert sample_points("morris", spec, 3) == len(morris_sample.sample(spec, 3, num_levels=4, seed=1))
        for second in (False, True):
            x = sobol_sample.sample(spec, 8, calc_second_order=second, seed=1)
            assert sample_points("sobol", spec, 8, second) == len(x)


def test_sobol_samples_are_checked_before_the_pilot_runs(tmp_path, tiny):
    with pytest.raises(FactorError, match="--samples = 10 is invalid"):
        run_study("sobol", tiny, tmp_path / "s", 10, ["dt_adoption_factor"])
    with pytest.raises(FactorError, match="unknown factor 'nope'"):
        run_study("morris", tiny, tmp_path / "m", 2, ["nope"])
    assert not list(tmp_path.iterdir())  # nothing written, not even the folder


def test_progress_lines_for_output_that_is_not_a_terminal():
    from mittelbau.cli import ProgressLines

    now = [0.0]
    said: list[str] = []
    lines = ProgressLines("morris", every=30, echo=said.append, clock=lambda: now[0])
    lines.set_total(100)
    for t in (10, 20, 40, 70):
        now[0] = t
        lines.advance(10)
    assert said == [  # a line once 30 s have passed since the last: at 40 s and at 70 s
        "morris: 30/100 runs, 0:00:40 elapsed, about 0:01:33 left",
        "morris: 40/100 runs, 0:01:10 elapsed, about 0:01:45 left",
    ]
    now[0] = 200
    lines.advance(60)
    assert said[-1] == "morris: 100/100 runs, 0:03:20 elapsed, about 0:00:00 left"


def test_a_failed_batch_is_reported_and_the_rest_of_its_piece_of_work_kept(tmp_path, tiny, monkeypatch):
    """Batches go to a worker in pieces of work (`GROUP_BATCHES`), their points' run-ups solved
    together first (one solve for the piece); a batch that fails is reported with its points
    and seeds while the other batches of its piece are written, and a rerun completes it."""
    from mittelbau.core import runup
    from mittelbau.experiments import experiment

    points = [{"bm_loss_rate": v} for v in (0.02, 0.03, 0.04, 0.05)]  # four run-ups, 40 runs, 3 batches
    solved = []
    solve, run_batch = runup._solve, experiment.run_batch
    monkeypatch.setattr(
        runup, "_solve", lambda region, values: solved.append(len(values)) or solve(region, values)
    )

    def failing(batch):
        if batch.index == 1:
            raise RuntimeError("no run today")
        return run_batch(batch)

    monkeypatch.setattr(experiment, "run_batch", failing)
    runup.clear_cache()
    with pytest.raises(
        ExecutionError, match=r"(?s)1 of 3 batches failed.*batch 1 \(points 1–3, seeds .*no run today"
    ):
        evaluate_points(tiny, points, 10, tmp_path)
    assert solved == [4]  # all four run-ups in one solve, none solved again by a batch
    assert sorted(p.name for p in (tmp_path / "batches").iterdir()) == ["batch-000000", "batch-000002"]
    monkeypatch.setattr(experiment, "run_batch", run_batch)
    done = []
    table = evaluate_points(tiny, points, 10, tmp_path, on_batch=done.append)
    assert done == [16] and len(table) == 40
    assert table.groupby("point")["bm_loss_rate"].first().tolist() == [0.02, 0.03, 0.04, 0.05]


def test_a_piece_of_work_presolves_no_more_run_ups_than_the_cache_keeps(tiny, monkeypatch):
    """Solving more run-ups ahead than the cache keeps would drop the first before their
    batches run: a piece of work presolves the first CACHE_SIZE distinct ones, in run order."""
    from mittelbau.core import runup
    from mittelbau.experiments import experiment

    base = {k: v for k, v in tiny.params.model_dump().items() if k != "seed"}
    runs = [(p, 0, 7, {"bm_loss_rate": 0.01 + 0.0001 * p}) for p in range(runup.CACHE_SIZE + 5)]
    batches = [
        experiment.Batch(0, tiny.name, base, tuple(runs[:40])),
        experiment.Batch(1, tiny.name, base, tuple(runs[40:])),
    ]
    solved = []
    monkeypatch.setattr(runup, "_solve", lambda region, values: solved.append(values) or [None] * len(values))
    runup.clear_cache()
    try:
        experiment.presolve(batches)
    finally:
        runup.clear_cache()  # the stand-in run-ups go
    assert [len(v) for v in solved] == [runup.CACHE_SIZE]
    assert [v[runup.RUNUP_PARAMETERS.index("bm_loss_rate")] for v in solved[0][:2]] == [0.01, 0.0101]


def test_pieces_of_work_leave_every_worker_work_to_share():
    from mittelbau.experiments.experiment import GROUP_BATCHES, Batch, pieces

    batches = [Batch(i, "s", {}, ()) for i in range(40)]
    assert [len(p) for p in pieces(batches, 1)] == [GROUP_BATCHES] * 5
    assert [len(p) for p in pieces(batches * 2, 2)] == [GROUP_BATCHES] * 10
    assert [len(p) for p in pieces(batches, 2)] == [5] * 8  # four pieces a worker at least
    assert [len(p) for p in pieces(batches[:3], 2)] == [1, 1, 1]
    assert [b.index for p in pieces(batches, 3) for b in p] == list(range(40))  # in order


def test_a_study_of_one_replication_reports_the_pilots_seed_share(tmp_path, tiny, monkeypatch):
    """With one replication per point the runs hold no within-point variance: the page and
    seed_variance.csv give the pilot's estimate of the seeds' share instead, said to be so."""
    from mittelbau.experiments import sensitivity_study

    pilot = pd.DataFrame(
        {"noise_share_one_run": [0.02], "replications_needed": [1.0]},
        index=pd.Index(["middle_share"], name="output"),
    )
    monkeypatch.setattr(sensitivity_study, "choose_replications", lambda *a: (1, pilot))
    found = run_study("sobol", tiny, tmp_path, 8, ["dt_adoption_factor"], outputs=("middle_share",))
    page = found["page"].read_text(encoding="utf-8")
    assert found["replications"] == 1 and "from the pilot" in page and "- middle_share: 2.0%" in page
    assert "1 factor from the registry, 24 model runs, 1 replication per point (common" in page
    assert pd.read_csv(tmp_path / "seed_variance.csv", index_col=0).iloc[0, 0] == 0.02
    assert not any("seeds is undefined" in n for n in found["warnings"])


def test_a_study_of_factors_no_run_reads_gives_zero_indices_not_an_error(tmp_path, tiny):
    """Every output is constant when no run reads any factor (an economics parameter, say):
    each gets indices of zero and a warning, and the study writes its page and figures."""
    found = run_study(
        "sobol", tiny, tmp_path, 8, ["discount_rate"], outputs=("middle_share", "stage1"), replications=1
    )
    idx = found["indices"]
    assert set(idx["output"]) == {"middle_share", "stage1"}
    assert not idx[["S1", "S1_conf", "ST", "ST_conf"]].to_numpy().any()
    assert "middle_share: it did not vary over the sample, so every index is zero" in found["warnings"]
    assert (tmp_path / "sobol.png").read_bytes()[:4] == b"\x89PNG" and (tmp_path / "sensitivity.md").exists()


def test_a_study_of_an_unknown_method_is_refused_before_it_runs(tmp_path, tiny):
    with pytest.raises(FactorError, match="method 'sobel' is invalid; allowed: morris, sobol"):
        run_study("sobel", tiny, tmp_path / "s", 8, ["exit_rate"])
    assert not (tmp_path / "s").exists()
    from mittelbau.experiments.discovery import discover

    with pytest.raises(FactorError, match="samples = 0 is invalid; allowed: an integer of 2 or more"):
        discover(tiny, tmp_path / "d", 0, ["exit_rate"])
    assert not (tmp_path / "d").exists()


def test_seed_zero_reproduces_the_sobol_intervals():
    """SALib seeds its bootstrap only with a seed that is true: the study's seed 0 is passed
    as another fixed seed, so the intervals of seed 0 are the same every time."""
    from mittelbau.experiments.sensitivity import analysis_seed

    assert analysis_seed(0) != 0 and analysis_seed(7) == 7
    a, b = (sobol(ISHIGAMI, ishigami, 64, seed=0).indices for _ in range(2))
    assert a.equals(b)
    assert a["ST_conf"].gt(0).all()


def test_a_replicate_without_a_value_leaves_its_point_without_a_mean(tmp_path, tiny, monkeypatch):
    """A point whose replicates are not all defined (an infinite hollowing ratio is no number)
    has no replicate mean: the output gets no indices and is warned about, instead of indices
    from the replicates that happen to have a value."""
    from mittelbau.experiments import sensitivity_study

    real = sensitivity_study.evaluate_points

    def with_a_gap(*args, **kwargs):
        table = real(*args, **kwargs)
        table.loc[table.index[1], "middle_share"] = np.nan  # one replicate of the first point
        return table

    monkeypatch.setattr(sensitivity_study, "evaluate_points", with_a_gap)
    found = run_study(
        "sobol", tiny, tmp_path, 8, ["dt_adoption_factor"], outputs=("middle_share", "stage1"), replications=2
    )
    assert set(found["indices"]["output"]) == {"stage1"}
    assert any(n.startswith("middle_share") for n in found["warnings"]), found["warnings"]
