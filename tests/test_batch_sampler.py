"""The batched ABC-SMC sampler gives the fit of pyabc's single-core sampler draw for draw."""

import inspect
import math

import numpy as np
import pandas as pd
import pyabc
import pytest
from typer.testing import CliRunner

import mittelbau.calibration.dynamic_fit as dynamic_fit
from mittelbau.calibration.batch_sampler import BatchSampler, ParticleModel, parameter_key
from mittelbau.calibration.dynamic_fit import (
    dynamic_targets,
    evaluate_particles,
    fit,
    particle_seed,
    simulate,
)
from mittelbau.cli import app
from mittelbau.experiments.runs import BATCH_SIZE

OBSERVED = {"y1": 0.5, "y2": 0.2}


def toy(par: dict) -> dict:
    """Statistics that are a fixed (rugged) function of the parameters."""
    a, b = par["a"], par["b"]
    return {"y1": a + 0.3 * math.sin(50 * a * b), "y2": a * b}


def toy_many(pars: list[dict]) -> list[dict]:
    return [toy(p) for p in pars]


def toy_fit(tmp_path, name, sampler, model, generations=3, min_acceptance_rate=0.0):
    """A small ABC-SMC of the toy model: the last generation, per generation ε and
    evaluations, and the total evaluations."""
    np.random.seed(3)  # noqa: NPY002 - pyabc samples from the global generator
    abc = pyabc.ABCSMC(
        pyabc.FunctionModel(model, name="model"),
        pyabc.Distribution(a=pyabc.RV("uniform", 0, 1), b=pyabc.RV("uniform", 0, 1)),
        lambda x, y: (x["y1"] - y["y1"]) ** 2 + (x["y2"] - y["y2"]) ** 2,
        population_size=20,
        sampler=sampler,
    )
    abc.new(f"sqlite:///{tmp_path / name}.db", OBSERVED)
    history = abc.run(max_nr_populations=generations, min_acceptance_rate=min_acceptance_rate)
    frame, weights = history.get_distribution(m=0, t=history.max_t)
    pops = history.get_all_populations()[["t", "epsilon", "samples"]].reset_index(drop=True)
    return frame.reset_index(drop=True), weights, pops, history.total_nr_simulations


def assert_same_fit(a, b):
    pd.testing.assert_frame_equal(a[0], b[0], check_exact=True)
    np.testing.assert_array_equal(a[1], b[1])
    pd.testing.assert_frame_equal(a[2], b[2], check_exact=True)
    assert a[3] == b[3]


@pytest.mark.parametrize(("batch", "workers"), [(1, 1), (5, 1), (64, 1), (3, 2)])
def test_batched_sampler_is_the_single_core_sampler(tmp_path, batch, workers):
    reference = toy_fit(tmp_path, "single", pyabc.sampler.SingleCoreSampler(), toy)
    model = ParticleModel(toy_many)
    with BatchSampler(model, batch, workers) as sampler:
        batched = toy_fit(tmp_path, "batched", sampler, model)
        # one set of worker processes serves every round of the fit
        assert (sampler._pool is not None) == (workers > 1)
    assert sampler._pool is None
    assert_same_fit(reference, batched)
    assert reference[3] > 3 * 20  # rejections happened: the rounds had to continue
    assert model.runs >= reference[3]  # every counted evaluation was run; extras are proposals past the end


def test_batched_sampler_stops_at_the_evaluation_limit_as_the_single_core_one(tmp_path):
    """With check_max_eval a generation stops after population / min_acceptance_rate
    evaluations; the fit ends at the same generation with the same particles."""
    kw = {"generations": 6, "min_acceptance_rate": 0.3}
    reference = toy_fit(tmp_path, "single", pyabc.sampler.SingleCoreSampler(check_max_eval=True), toy, **kw)
    model = ParticleModel(toy_many)
    sampler = BatchSampler(model, 8, 1, check_max_eval=True)
    batched = toy_fit(tmp_path, "batched", sampler, model, **kw)
    assert_same_fit(reference, batched)
    assert reference[2]["t"].max() < 5  # the limit ended the fit early


def test_particle_model_answers_unknown_parameters_on_the_spot():
    calls = []

    def evaluate(pars):
        calls.append(len(pars))
        return toy_many(pars)

    model = ParticleModel(evaluate)
    model.known[parameter_key({"a": 0.5, "b": 0.25})] = {"y1": -1.0, "y2": -1.0}
    assert model({"b": 0.25, "a": 0.5}) == {"y1": -1.0, "y2": -1.0} and calls == []
    assert model({"a": 0.5, "b": 0.2500001}) == toy({"a": 0.5, "b": 0.2500001}) and calls == [1]
    assert model.runs == 1


def test_particles_evaluated_together_are_each_evaluated_alone():
    targets = dynamic_targets()
    pars = [
        {"bm_loss_rate": 0.01, "competence_learning": 0.2},
        {"bm_loss_rate": 0.04, "competence_learning": 0.9},
        {"bm_loss_rate": 0.01, "competence_learning": 0.5},
    ]
    together = evaluate_particles(pars, 7, 150, targets, batch=2)
    alone = [simulate(p, particle_seed(p, 7), 150, targets) for p in pars]
    assert together == alone
    assert len({tuple(v.values()) for v in together}) == 3 and len(together[0]) == len(targets)


def test_batched_fit_is_the_single_core_fit(tmp_path):
    """The dynamic fit with particles evaluated in batches (one and two worker processes) has
    the posterior sample, ε and evaluations of pyabc's single-core sampler with the same seed."""
    names = ("competence_learning", "bm_loss_rate")
    kw = dict(population_size=10, generations=2, firms=150, seed=5, resume=False)
    single = fit(tmp_path / "single", names, batch=0, **kw)
    for batch, workers in [(4, 1), (3, 2)]:
        batched = fit(tmp_path / f"b{batch}w{workers}", names, batch=batch, workers=workers, **kw)
        pd.testing.assert_frame_equal(single.sample, batched.sample, check_exact=True)
        assert (batched.epsilon, batched.evaluations, batched.generations) == (
            single.epsilon,
            single.evaluations,
            single.generations,
        )
    assert single.evaluations > 2 * 10 and len(single.sample) == 10


def test_calibrate_fit_passes_batch_and_workers_to_the_fit(tmp_path, monkeypatch):
    """Without --batch the fit's default applies (batches of the ensembles' size)."""
    assert inspect.signature(fit).parameters["batch"].default == BATCH_SIZE > 1
    sample = pd.DataFrame({"weight": [1.0], "competence_learning": [0.4]})
    summary = pd.DataFrame(
        [{"parameter": "competence_learning", "median": 0.4, "mean": 0.4, "sd": 0.1, "q05": 0.3, "q95": 0.5}]
    ).assign(prior_sd=0.577, sd_ratio=0.2)
    asked = []

    def fake_fit(*args, **kwargs):
        asked.append(kwargs)
        return dynamic_fit.FitResult(summary, 2, 1.0, 30, sample)

    monkeypatch.setattr(dynamic_fit, "fit", fake_fit)
    for extra in ([], ["--batch", "0", "--workers", "2"]):
        (tmp_path / "fit").mkdir(exist_ok=True)
        res = CliRunner().invoke(app, ["calibrate", "fit", "--out", str(tmp_path / "fit"), *extra])
        assert res.exit_code == 0, res.output
    assert asked[0]["workers"] == 1 and "batch" not in asked[0]
    assert (asked[1]["batch"], asked[1]["workers"]) == (0, 2)


def test_the_sampler_reports_each_round_and_every_generation_completes(tmp_path):
    """Progress after every round: within a generation the accepted particles only grow, the
    last report of each generation has all of them, and the evaluations reported are those
    pyabc counts."""
    reports = []
    model = ParticleModel(toy_many)
    sampler = BatchSampler(model, 4, 1, progress=lambda *r: reports.append(r))
    _, _, pops, total = toy_fit(tmp_path, "progress", sampler, model)
    by_t: dict[int, list] = {}
    for t, accepted, n, evaluations in reports:
        by_t.setdefault(t, []).append((accepted, n, evaluations))
    assert sorted(by_t) == [-1, 0, 1, 2]  # the sample setting the first threshold, then 3
    for rows in by_t.values():
        assert len(rows) > 1  # several rounds per generation (batch 4, population 20)
        assert [a for a, _, _ in rows] == sorted(a for a, _, _ in rows)
        assert rows[-1][0] == rows[-1][1] == 20
    counted = {t: rows[-1][2] for t, rows in by_t.items()}
    assert [counted[t] for t in (0, 1, 2)] == pops.set_index("t").loc[[0, 1, 2], "samples"].tolist()
    assert sum(counted.values()) == total


def test_calibrate_fit_shows_a_line_per_generation(tmp_path):
    """Off a terminal, the fit prints a line when a generation is complete; the evaluations of
    the lines add up to the simulations of the summary."""
    import re

    args = ["calibrate", "fit", "--out", str(tmp_path / "fit"), "--population", "10"]
    res = CliRunner().invoke(app, [*args, "--generations", "2", "--firms", "150"])
    assert res.exit_code == 0, res.output
    pattern = r"^(initial sample|generation \d/2): 10 particles accepted of (\d+) evaluated"
    lines = re.findall(pattern, res.output, re.M)
    assert [label for label, _ in lines] == ["initial sample", "generation 1/2", "generation 2/2"]
    total = int(re.search(r"(\d+) simulations", res.output).group(1))
    assert sum(int(k) for _, k in lines) == total
    # the folder's fit of 2 generations, asked again for 1: returned whole, and recorded so
    res = CliRunner().invoke(app, [*args, "--generations", "1", "--firms", "150"])
    assert res.exit_code == 0 and "2 generations" in res.output
    header = (tmp_path / "fit" / "posterior_sample.csv").read_text().splitlines()
    assert "# generations: 2" in header and "# generations done: 2" in header
