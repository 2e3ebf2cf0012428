"""Posterior-predictive ensembles: the sample's validation, the draws, reproducibility across
executors, the seed/parameter split of the spread, and the verdict's interval."""

import json
import math
import re
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from conftest import footprint, left_behind
from typer.testing import CliRunner

from mittelbau.calibration.posterior import effective_sample_size, write_posterior, write_sample
from mittelbau.cli import app
from mittelbau.core.scenario import load_scenario
from mittelbau.experiments.ensemble import load_ensemble, plan, replicate_seeds, run_ensemble
from mittelbau.experiments.intervals import mean_interval, wilson_effective, wilson_interval
from mittelbau.experiments.posterior import (
    POSTERIOR_FILE,
    PosteriorError,
    load_posterior,
    split_variance,
)
from mittelbau.experiments.report import spread, verdict_probabilities, verdicts, write_report
from mittelbau.experiments.runs import simulate

runner = CliRunner()
TABLES = ("stage_shares", "transitions", "indicators", "levers", "economics")
SAMPLE = (
    "# three parameter sets\n"
    "weight,engagement_drift_rate,competence_learning\n"
    "0.5,0.02,0.3\n"
    "0.3,0.1,0.8\n"
    "0.2,0.2,1.5\n"
)


def sample_file(tmp_path, text=SAMPLE, name="posterior.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def small(root):
    return load_scenario(root / "scenarios" / "baseline.toml", ["firms=600", "years=5"])


# ---- the sample and its validation -------------------------------------------------------
def test_a_sample_that_cannot_be_written_leaves_nothing_behind(tmp_path):
    sample = pd.DataFrame({"weight": [1.0, 1.0], "bm_loss_rate": [0.02, 0.04]})
    target = tmp_path / "posterior.csv"
    target.mkdir()  # a folder where the file should go: the rename fails
    with pytest.raises(OSError):
        write_sample(sample, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["posterior.csv"]
    written = write_sample(sample, tmp_path / "ok.csv")
    assert written.read_text().count("\n") == 4 and not list(tmp_path.glob(".*tmp*"))


def test_a_valid_sample_is_read_with_its_weights_and_values(tmp_path):
    post = load_posterior(sample_file(tmp_path))
    assert post.names == ("engagement_drift_rate", "competence_learning")
    assert post.weights == (0.5, 0.3, 0.2) and len(post) == 3
    assert post.values[1] == {"engagement_drift_rate": 0.1, "competence_learning": 0.8}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("# only a comment\n", "empty"),
        ("weight,engagement_drift_rate\n", "no particles"),
        ("engagement_drift_rate,weight\n0.1,1\n", "first column is 'engagement_drift_rate'"),
        ("weight\n1\n", "no parameter column"),
        ("weight,engagement_drift_rat\n1,0.1\n", "column 'engagement_drift_rat' is unknown"),
        ("weight,seed\n1,3\n", "column 'seed' is a registry parameter no posterior may draw"),
        ("weight,region\n1,3\n", "column 'region' is a registry parameter no posterior"),
        ("weight,hollowing_threshold\n1,0.5\n", "column 'hollowing_threshold' is a registry parameter no"),
        ("weight,exit_rate,exit_rate\n1,0.1,0.1\n", "column 'exit_rate' twice"),
        ("weight,engagement_drift_rate\n1,0.1,2\n", "line 2: 3 fields"),
        ("weight,engagement_drift_rate\n1,fast\n", "column 'engagement_drift_rate' = 'fast' is not a number"),
        ("weight,engagement_drift_rate\n1,nan\n", "not finite"),
        ("weight,engagement_drift_rate\n0.5,0.1\n0.5,0.9\n", "line 3: column 'engagement_drift_rate' = 0.9"),
        ("weight,engagement_drift_rate\n1.2,0.1\n-0.2,0.2\n", "line 3: column 'weight' = -0.2 is negative"),
        ("weight,engagement_drift_rate\n0.5,0.1\n0.4,0.2\n", "column 'weight' sums to 0.9"),
    ],
)
def test_an_invalid_sample_is_an_error_naming_line_column_value_and_what_is_allowed(tmp_path, text, message):
    with pytest.raises(PosteriorError, match="allowed: ") as caught:
        load_posterior(sample_file(tmp_path, text))
    assert message in str(caught.value) and str(tmp_path / "posterior.csv") in str(caught.value)


def test_a_value_outside_the_registry_range_names_the_range(tmp_path):
    text = "weight,engagement_drift_rate\n1,0.9\n"
    with pytest.raises(
        PosteriorError, match=r"line 2: column 'engagement_drift_rate' = 0.9 .*allowed: .*0\.3"
    ):
        load_posterior(sample_file(tmp_path, text))


def test_a_missing_file_is_an_error(tmp_path):
    with pytest.raises(PosteriorError, match="file not found; allowed"):
        load_posterior(tmp_path / "none.csv")


def test_the_committed_sample_is_valid_and_holds_the_fitted_parameters():
    post = load_posterior()
    assert post.path == str(POSTERIOR_FILE) and len(post) >= 50
    assert {"engagement_drift_rate", "competence_learning"} <= set(post.names)
    assert abs(sum(post.weights) - 1) < 1e-9


def test_the_writer_round_trips_exactly_and_states_the_effective_sample_size(tmp_path):
    rng = np.random.default_rng(3)
    sample = pd.DataFrame(
        {
            "weight": rng.random(40),
            "engagement_drift_rate": rng.uniform(0, 0.3, 40),
            "competence_learning": rng.uniform(0, 2, 40),
        }
    )
    result = SimpleNamespace(sample=sample, generations=3, epsilon=1.25, evaluations=900)
    path = write_posterior(result, tmp_path / "p.csv", {"firms": 1000})
    back = load_posterior(path)
    w = sample["weight"].to_numpy() / math.fsum(sample["weight"])
    assert np.array_equal(np.array(back.weights), w)
    assert [v["competence_learning"] for v in back.values] == list(sample["competence_learning"])
    text = path.read_text()
    ess = 1 / np.sum(w**2)
    assert f"effective sample size (1 / sum of squared weights): {ess:.1f}" in text
    assert "# firms: 1000" in text and "# generations done: 3" in text
    assert effective_sample_size(np.ones(10)) == pytest.approx(10.0)
    # a sample the loader would refuse is never written
    bad = sample.assign(engagement_drift_rate=0.5)
    with pytest.raises(PosteriorError):
        write_sample(bad, tmp_path / "q.csv")
    assert not list(tmp_path.glob("*q.csv*"))


# ---- draws ----------------------------------------------------------------------------------
def test_draws_follow_the_weights_and_do_not_depend_on_their_number(tmp_path):
    post = load_posterior(sample_file(tmp_path))
    assert post.draws(11, 5) == post.draws(11, 60)[:5]
    assert post.draws(11, 20) != post.draws(12, 20)
    n = 6000
    counts = Counter(post.draws(5, n))
    for i, w in enumerate(post.weights):
        assert abs(counts[i] / n - w) < 4 * np.sqrt(w * (1 - w) / n)


def test_each_replicate_takes_its_draw_on_top_of_the_scenario(tmp_path, root):
    post = load_posterior(sample_file(tmp_path))
    scen = load_scenario(root / "scenarios" / "two-worlds.toml", ["firms=600"])
    specs = plan([scen], 6, post, seeds_per_draw=2)
    particles = post.draws(scen.params.seed, 3)
    assert [s.seed for s in specs] == replicate_seeds(scen.params.seed, 6)  # as a plain ensemble
    for s in specs:
        drawn = post.values[particles[s.replicate // 2]]
        assert (
            s.posterior["draw"] == s.replicate // 2 and s.posterior["particle"] == particles[s.replicate // 2]
        )
        # the scenario sets engagement_drift_rate = 0: its value wins, it is not drawn
        assert s.overrides["engagement_drift_rate"] == 0.0 and s.posterior["held"] == [
            "engagement_drift_rate"
        ]
        assert s.overrides["competence_learning"] == drawn["competence_learning"]
        assert s.posterior["parameters"] == {"competence_learning": drawn["competence_learning"]}


# ---- reproducibility ------------------------------------------------------------------------
def run_files(out):
    """Every run's files and the runs table, byte for byte."""
    files = sorted(p for p in out.glob("runs/*/rep-*/*") if p.is_file())
    return {str(p.relative_to(out)): p.read_bytes() for p in [*files, out / "runs.parquet"]}


@pytest.mark.slow
def test_posterior_runs_are_byte_identical_on_one_worker_two_workers_and_dask(tmp_path, small):
    post = load_posterior(sample_file(tmp_path))
    found = {}
    for executor, workers in (("local", 1), ("local", 2), ("dask", 2)):
        out = tmp_path / f"{executor}-{workers}"
        before = footprint()
        run_ensemble([small], 6, out, executor=executor, workers=workers, posterior=post, seeds_per_draw=2)
        assert not left_behind(before), executor
        found[(executor, workers)] = run_files(out)
    first = found[("local", 1)]
    assert len(first) == 6 * 7 + 1
    for key, files in found.items():
        assert files == first, key
    runs = load_ensemble(tmp_path / "local-1")["runs"]
    assert list(runs["draw"]) == [0, 0, 1, 1, 2, 2]
    assert runs.groupby("draw")["competence_learning"].nunique().eq(1).all()


def test_a_posterior_of_one_parameter_set_equals_the_plain_ensemble_there(tmp_path, root, small):
    one = load_posterior(
        sample_file(tmp_path, "weight,engagement_drift_rate,competence_learning\n1,0.1,0.8\n")
    )
    run_ensemble([small], 4, tmp_path / "post", posterior=one, seeds_per_draw=2)
    point = load_scenario(
        root / "scenarios" / "baseline.toml",
        ["firms=600", "years=5", "engagement_drift_rate=0.1", "competence_learning=0.8"],
    )
    run_ensemble([point], 4, tmp_path / "plain")
    a, b = load_ensemble(tmp_path / "post"), load_ensemble(tmp_path / "plain")
    for t in TABLES:
        assert a[t].equals(b[t]), t
    keep = list(b["runs"].columns)
    assert a["runs"][keep].equals(b["runs"]) and set(a["runs"].columns) - set(keep) == {"draw", "particle"}
    # one parameter set: the whole spread is the seeds'
    write_report(tmp_path / "post")
    split = pd.read_csv(tmp_path / "post" / "spread.csv")
    assert (split["parameter_sd"].dropna() == 0).all() and (split["seed_sd"].dropna() > 0).any()


def test_a_posterior_run_can_be_repeated_alone_from_its_summary(tmp_path, small):
    post = load_posterior(sample_file(tmp_path))
    out = tmp_path / "e"
    run_ensemble([small], 4, out, posterior=post, seeds_per_draw=2)
    summary = json.loads((out / "runs" / "baseline" / "rep-0003" / "summary.json").read_text())
    drawn = summary["posterior"]["parameters"]
    assert drawn == post.values[summary["posterior"]["particle"]]
    again = load_scenario(
        None,
        [f"{k}={v}" for k, v in summary["scenario"]["overrides"].items() if k != "seed"],
        summary["seed"],
    )
    alone = simulate(again)
    table = load_ensemble(out)["indicators"]
    rep = (
        table[table["replicate"] == 3].drop(columns=["scenario", "replicate", "seed"]).reset_index(drop=True)
    )
    assert rep.equals(alone.indicators.reset_index(drop=True))


def test_a_folder_of_another_posterior_is_refused(tmp_path, small):
    from mittelbau.experiments.store import FolderError

    post = load_posterior(sample_file(tmp_path))
    run_ensemble([small], 2, tmp_path / "e", posterior=post, seeds_per_draw=2)
    with pytest.raises(FolderError, match="another posterior sample"):
        run_ensemble([small], 2, tmp_path / "e")


# ---- the split of the spread ----------------------------------------------------------------
def test_the_split_recovers_known_seed_and_parameter_variances():
    """Y = μ(θ_k) + ε: parameter variance 0.04, seed variance 0.01 (heteroscedastic across θ,
    mean 0.01); 3,000 draws × 3 seeds."""
    rng = np.random.default_rng(7)
    k, m = 3000, 3
    mu = rng.normal(0.5, 0.2, k)
    sd = np.sqrt(rng.uniform(0.005, 0.015, k))
    y = mu[:, None] + rng.normal(0, 1, (k, m)) * sd[:, None]
    found = split_variance(y)
    assert found.parameter == pytest.approx(0.04, rel=0.08)
    assert found.seed == pytest.approx(0.01, rel=0.1)
    assert found.parameter_share == pytest.approx(0.8, abs=0.03)
    assert found.design_effect == pytest.approx(1 + 2 * found.parameter_share)


def test_the_split_gives_no_parameter_part_when_the_parameters_do_not_matter():
    rng = np.random.default_rng(8)
    y = rng.normal(0.3, 0.1, (2000, 2))  # the same distribution at every draw
    found = split_variance(y)
    assert found.parameter < 0.05 * found.total and found.seed == pytest.approx(0.01, rel=0.1)
    one = split_variance(y, one_particle=True)
    assert one.parameter == 0.0 and one.seed == pytest.approx(np.var(y, ddof=1))


def test_the_split_needs_two_seeds_per_draw_and_two_draws():
    assert split_variance(np.ones((10, 1))) is None
    assert split_variance(np.ones((1, 4))) is None
    assert split_variance(np.array([[1.0, np.nan], [0.0, 1.0], [1.0, 1.0]])).draws == 2


# ---- the verdict's interval -----------------------------------------------------------------
def test_the_effective_wilson_interval_is_wilson_at_whole_runs_and_wider_for_clustered_runs():
    for k, n in ((0, 30), (4, 30), (30, 30), (11, 50)):
        _, lo, hi = wilson_interval(k, n)
        assert wilson_effective(k / n, n) == pytest.approx((lo, hi))
    lo1, hi1 = wilson_effective(0.2, 100)
    lo2, hi2 = wilson_effective(0.2, 100 / 1.8)
    assert lo2 < lo1 and hi2 > hi1


def test_the_interval_covers_a_known_posterior_predictive_probability():
    """θ ~ Beta(2, 8) is the chance of the event at a parameter set; 60 draws × 2 seeds. The
    posterior-predictive probability is 0.2; the design-effect interval covers it at about
    its 90 % level, where a plain Wilson interval over the 120 runs would cover it less."""
    rng = np.random.default_rng(9)
    trials, hits = 1500, 0
    for _ in range(trials):
        theta = rng.beta(2, 8, 60)
        y = (rng.random((60, 2)) < theta[:, None]).astype(float)
        found = split_variance(y)
        lo, hi = wilson_effective(y.mean(), y.size / found.design_effect)
        hits += lo <= 0.2 <= hi
    assert abs(hits / trials - 0.90) < 3 * np.sqrt(0.09 / trials) + 0.01


# ---- the command line -----------------------------------------------------------------------
def test_the_report_states_the_posterior_predictive_probability_and_the_split(tmp_path, small):
    post = load_posterior(sample_file(tmp_path))
    run_ensemble([small], 8, tmp_path / "e", posterior=post, seeds_per_draw=2)
    text = write_report(tmp_path / "e").read_text()
    assert "posterior-predictive probability that the middle hollows out by 2020" in text
    assert "## Parameter uncertainty" in text and "| `middle_share` | baseline | 4 |" in text
    ens = load_ensemble(tmp_path / "e")
    row = verdicts(ens).iloc[0]
    # the design effect of the verdict, by hand: 4 draws × 2 seeds, 1 + ICC by the analysis of
    # variance, or its bound 2 where the runs do not vary
    runs = ens["runs"].sort_values(["draw", "replicate"])
    y = runs["hollowed"].to_numpy(float).reshape(4, 2)
    within = y.var(axis=1, ddof=1).mean()
    between = max(0.0, (2 * y.mean(axis=1).var(ddof=1) - within) / 2)
    expected = 2.0 if y.var() == 0 else 1.0 + between / (between + within)
    assert row.runs == 8 and row.design_effect == pytest.approx(expected)


def test_run_with_posterior_writes_a_posterior_ensemble(tmp_path, root):
    path = sample_file(tmp_path)
    out = tmp_path / "e"
    args = ["run", "baseline", "--set", "firms=400", "--set", "years=3", "--posterior-file", str(path)]
    res = runner.invoke(app, [*args, "--replications", "4", "--workers", "1", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "posterior-predictive probability" in res.output
    manifest = json.loads((out / "ensemble.json").read_text())
    assert manifest["posterior"]["seeds_per_draw"] == 2 and manifest["posterior"]["particles"] == 3
    assert len(list(out.glob("runs/baseline/rep-*/summary.json"))) == 4


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--posterior-file", "{bad}"], "--posterior-file: {bad} line 3: column 'weight' = -0.1 is negative"),
        (["--posterior-file", "{missing}"], "file not found"),
        (["--posterior-file", "{good}", "--replications", "3"], "--replications 3 is not a multiple"),
        # without --replications: the default of 1, against the default seeds per draw, said so
        (["--posterior-file", "{good}"], "--seeds-per-draw 2 (its default with --posterior); allowed: 2, 4"),
        (["--posterior-file", "{good}", "--seeds-per-draw", "0"], "--seeds-per-draw = 0 is invalid"),
        (["--seeds-per-draw", "2", "--replications", "2"], "--seeds-per-draw 2 goes with --posterior"),
    ],
)
def test_bad_posterior_options_exit_2_before_anything_is_written(tmp_path, extra, message):
    files = {
        "bad": sample_file(tmp_path, "weight,competence_learning\n1.1,0.2\n-0.1,0.3\n", "bad.csv"),
        "good": sample_file(tmp_path),
        "missing": tmp_path / "missing.csv",
    }
    extra = [e.format(**{k: str(v) for k, v in files.items()}) for e in extra]
    message = message.format(**{k: str(v) for k, v in files.items()})
    out = tmp_path / "out"
    res = runner.invoke(app, ["run", "baseline", *extra, "--out", str(out)])
    assert res.exit_code == 2 and message in res.output and "allowed: " in res.output
    assert not out.exists()


@pytest.mark.slow
def test_a_fit_writes_its_last_generation_as_a_sample_the_ensembles_read(tmp_path):
    from mittelbau.calibration.dynamic_fit import FITTED, fit

    result = fit(tmp_path / "fit", population_size=20, generations=2, firms=500, seed=4, resume=False)
    path = write_posterior(result, tmp_path / "posterior.csv", {"firms": 500})
    post = load_posterior(path)
    assert len(post) == 20 and post.names == FITTED
    assert sum(post.weights) == pytest.approx(1.0, abs=1e-12)
    for row in result.posterior.itertuples():  # the sample is the one the fit summarises
        x = np.array([v[row.parameter] for v in post.values])
        assert np.average(x, weights=post.weights) == pytest.approx(row.mean, rel=1e-9)


def test_the_other_verdicts_of_a_posterior_ensemble_take_intervals_over_its_draws(tmp_path, small):
    """Shares of runs: Wilson at the runs' effective number (the design effect); means: t
    intervals over the draws' means, as every other mean of the report."""
    post = load_posterior(sample_file(tmp_path))
    run_ensemble([small], 8, tmp_path / "e", posterior=post, seeds_per_draw=2)
    ens = load_ensemble(tmp_path / "e")
    row = verdict_probabilities(ens).iloc[0]
    split = spread(ens).set_index("outcome")
    runs = sorted(ens["summaries"], key=lambda r: r["replicate"])
    heads = [r["summary"]["headline"] for r in runs]
    stuck = np.array([h["stuck_share"] for h in heads])
    draws = stuck.reshape(4, 2).mean(axis=1)  # replicates 2k and 2k + 1 share draw k
    m, lo, hi = mean_interval(draws)
    assert (row.stuck_share, row.stuck_share_low, row.stuck_share_high) == pytest.approx((m, lo, hi))
    assert hi - lo > mean_interval(stuck)[2] - mean_interval(stuck)[1]  # 3 degrees of freedom, not 7
    k = sum(bool(h["middle_shrinks"]) for h in heads)
    effect = split.loc["middle_shrinks", "design_effect"]
    effect = effect if np.isfinite(effect) else 2.0
    assert (row.p_middle_shrinks_low, row.p_middle_shrinks_high) == pytest.approx(
        wilson_effective(k / 8, 8 / effect)
    )


def test_calibrate_fit_writes_its_sample_beside_the_history(tmp_path, monkeypatch):
    import mittelbau.calibration.dynamic_fit as dynamic_fit

    sample = pd.DataFrame(
        {"weight": [0.25, 0.75], "engagement_drift_rate": [0.05, 0.07], "competence_learning": [0.4, 0.6]}
    )
    summary = pd.DataFrame(
        {
            "parameter": ["engagement_drift_rate", "competence_learning"],
            "median": [0.07, 0.6],
            "mean": [0.065, 0.55],
            "sd": [0.01, 0.1],
            "q05": [0.05, 0.4],
            "q95": [0.07, 0.6],
            "prior_sd": [0.0866, 0.577],
            "sd_ratio": [0.1, 0.2],
        }
    )
    result = dynamic_fit.FitResult(summary, 3, 1.5, 600, sample)
    monkeypatch.setattr(dynamic_fit, "fit", lambda *a, **k: result)
    (tmp_path / "fit").mkdir()  # the fit makes its folder
    res = runner.invoke(app, ["calibrate", "fit", "--out", str(tmp_path / "fit")])
    assert res.exit_code == 0, res.output
    back = load_posterior(tmp_path / "fit" / "posterior_sample.csv")
    assert back.weights == (0.25, 0.75) and back.values[1]["competence_learning"] == 0.6
    assert "# generations done: 3" in (tmp_path / "fit" / "posterior_sample.csv").read_text()


def test_runs_that_never_differ_take_the_bound_of_the_design_effect():
    assert split_variance(np.zeros((50, 3))).design_effect == 3.0
    assert split_variance(np.zeros((50, 3)), one_particle=True).design_effect == 3.0
    lo, hi = wilson_effective(0.0, 150 / 3.0)
    assert lo == 0.0 and hi == pytest.approx(wilson_interval(0, 50)[2])


def test_a_scenario_holding_every_drawn_parameter_has_no_parameter_part(tmp_path, root):
    post = load_posterior(sample_file(tmp_path))
    held = load_scenario(
        root / "scenarios" / "baseline.toml",
        ["firms=500", "years=4", "engagement_drift_rate=0.05", "competence_learning=0.5"],
        seed=3,
    )
    drawn = load_scenario(root / "scenarios" / "funding.toml", ["firms=500", "years=4"], seed=3)
    run_ensemble([held, drawn], 6, tmp_path / "e", posterior=post, seeds_per_draw=2)
    ens = load_ensemble(tmp_path / "e")
    mine = ens["runs"][ens["runs"]["scenario"] == "baseline"]
    assert mine["particle"].nunique() > 1  # particles differ, their values are not used
    assert set(mine["competence_learning"]) == {0.5}
    assert ens["runs"].loc[ens["runs"]["scenario"] == "funding", "competence_learning"].nunique() > 1
    split = spread(ens)
    split = split[split["scenario"] == "baseline"]
    assert (split["parameter_sd"].dropna() == 0).all() and (split["seed_sd"].dropna() > 0).any()
    text = write_report(tmp_path / "e").read_text()
    # held by the scenario that holds them, not by the one that draws them
    assert (
        "holds it at its own value instead of drawing it (by scenario: baseline: "
        "competence_learning, engagement_drift_rate)." in text
    )


def test_the_readme_headline_names_the_committed_sample(root):
    """The headline's numbers come from the committed sample: when the sample changes, the
    README's headline must be made again with its command."""
    header = POSTERIOR_FILE.read_text(encoding="utf-8")
    ess = re.search(r"# effective sample size \(1 / sum of squared weights\): ([0-9.]+)", header)
    readme = (root / "README.md").read_text(encoding="utf-8")
    assert f"{len(load_posterior())} particles" in readme
    assert f"effective sample size {ess.group(1)};" in readme
    assert "mittelbau run baseline --posterior --replications 1000" in readme


def test_more_replications_extend_a_posterior_ensemble_and_keep_its_draws(tmp_path, small):
    post = load_posterior(sample_file(tmp_path))
    out = tmp_path / "e"
    run_ensemble([small], 4, out, posterior=post, seeds_per_draw=2)
    before = load_ensemble(out)["runs"][["replicate", "seed", "draw", "particle"]]
    counts = run_ensemble([small], 8, out, posterior=post, seeds_per_draw=2)
    assert counts["skipped"] == 4 and counts["ran"] == 4
    after = load_ensemble(out)["runs"][["replicate", "seed", "draw", "particle"]]
    assert after.iloc[:4].equals(before) and list(after["draw"]) == [0, 0, 1, 1, 2, 2, 3, 3]
    assert list(after["particle"].iloc[::2]) == post.draws(small.params.seed, 4)


def test_run_with_posterior_draws_from_the_committed_sample_by_default(tmp_path):
    out = tmp_path / "e"
    args = ["run", "baseline", "--set", "firms=300", "--set", "years=2", "--posterior"]
    res = runner.invoke(app, [*args, "--replications", "2", "--workers", "1", "--out", str(out), "-q"])
    assert res.exit_code == 0, res.output
    drawn = json.loads((out / "ensemble.json").read_text())["posterior"]
    committed = load_posterior()
    assert drawn["file"] == "posterior.csv" and drawn["sha256"] == committed.sha256
    summary = json.loads((out / "runs" / "baseline" / "rep-0001" / "summary.json").read_text())
    assert summary["posterior"]["parameters"] == committed.values[summary["posterior"]["particle"]]
