"""Fit the dynamic parameters to the dynamic targets by ABC-SMC (pyabc).

The targets marked `objective` in `calibration/targets.toml` depend on the dynamics or on the
distributions the fitted parameters shape: Stuttgart's 2015 BM and DT levels and their
within-type association reached by the stochastic run-up, BM introductions 2016–2018 through
the survey's measurement model, their motives, engagement and digital techniques in 2016, BMs
dropped 2017–2019 and the service revenue distribution. The distance of a simulation from the
surveys is Σ z², z = (simulated − observed) / SE_obs over those targets (a bound adds only on
its wrong side). One run per particle: at the fit's 1,000 firms the simulation noise of most
shares (≈ 0.015) stays below the survey standard errors (0.02–0.07), but that of the four motive
shares, counted over three years' introductions, is about as large as theirs (0.8–1.1 ×), so
seed noise alone adds about 7 to Σ z² (final ε 10.4): a particle near ε can pass or fail by its
seed. The run seed is a function of the
particle's parameter values and the fit's seed (`particle_seed`), so a particle's statistics do
not depend on when or beside what it is evaluated. The run-up is solved anew for every particle
(`bm_loss_rate` enters it), which is most of a particle's cost.

The particles are evaluated in batches (`batch_sampler.BatchSampler`): pyabc's proposals of a
round are recorded first without evaluating them, their runs are then stepped together in
batches of up to `batch` runs (`evaluate_particles`: `ModelBatch`, the run-ups of a batch's
points solved together, each run's statistics exactly those of the run alone), `workers`
processes taking one batch each, and pyabc's sampling is replayed from the same generator state
with the model answering from those statistics. The fit is thereby that of pyabc's single-core
sampler draw for draw (same particles, weights, thresholds and number of evaluations), whatever
`batch` and `workers`; `batch` = 0 evaluates one particle per model call with pyabc's own
samplers instead.

pyabc stores every generation in an SQLite history, so an interrupted fit resumes from its last
finished generation. Its samplers draw from NumPy's global generator, which `fit` seeds once:
the same seed reproduces the fit (a resumed fit is reproducible only in distribution; with
`batch` = 0 and several workers, pyabc's multicore sampler, not at all). The last generation's
particles and weights are the posterior sample
(`mittelbau.calibration.posterior.write_posterior`, calibration/posterior.csv).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import tomli_w

from mittelbau.calibration.fit_report import (
    CALIBRATION,
    load_targets,
    points_statistics,
    run_statistics,
    standard_error,
)
from mittelbau.calibration.posterior import effective_sample_size
from mittelbau.core.parameters import BY_NAME
from mittelbau.experiments.extras import needs_extra
from mittelbau.experiments.runs import BATCH_SIZE

PARAMETER_FILE = CALIBRATION / "dynamic_parameters.toml"
# the dynamic parameters the targets inform (targets.toml, `measurement`)
FITTED = (
    "bm_adoption_factor",
    "bm_service_share",
    "bm_loss_rate",
    "competence_learning",
    "engagement_drift_rate",
    "service_revenue_concentration",
)


def dynamic_targets() -> list[dict]:
    """The targets of the fit's distance (`objective = true`)."""
    return [t for t in load_targets() if t.get("objective")]


def simulate(params: dict, seed: int, firms: int, targets: list[dict] | None = None) -> dict[str, float]:
    """The targets' statistics at `params`: one run per population the targets name."""
    targets = targets or dynamic_targets()
    values: dict[str, float] = {}
    for population in sorted({t["population"] for t in targets}):
        values |= run_statistics(population, targets, seed, firms, params)
    return values


def particle_seed(par: dict, seed: int) -> int:
    """A run seed that is a function of the particle's parameter values and the fit's seed, so
    the same particle always gives the same run."""
    words = [seed] + [int(np.float64(par[k]).view(np.uint64) % 2**32) for k in sorted(par)]
    return int(np.random.SeedSequence(words).generate_state(1, dtype=np.uint32)[0])


def evaluate_particles(
    pars: list[dict], seed: int, firms: int, targets: list[dict], batch: int = BATCH_SIZE
) -> list[dict[str, float]]:
    """`simulate` of every particle with its run seed (`particle_seed`), the runs of all
    particles stepped together in batches of up to `batch` runs (`points_statistics`); each
    particle's statistics are exactly those of its evaluation alone."""
    values: list[dict[str, float]] = [{} for _ in pars]
    runs = [(dict(par), particle_seed(par, seed)) for par in pars]
    for population in sorted({t["population"] for t in targets}):
        found = points_statistics(population, targets, runs, firms, batch)
        for value, statistics in zip(values, found, strict=True):
            value |= statistics
    return values


def distance(simulated: dict, observed: dict, targets: list[dict]) -> float:
    """Σ z² over the targets, with the survey's standard errors; an upper (lower) bound adds
    only when the simulation lies above (below) it."""
    total = 0.0
    for t in targets:
        x = simulated[t["id"]]
        if x is None or not math.isfinite(x):
            return 1e6
        z = (x - observed[t["id"]]) / standard_error(t)
        bound = t.get("bound")
        if bound == "upper":
            z = max(z, 0.0)
        elif bound == "lower":
            z = min(z, 0.0)
        total += z**2
    return total


@dataclass
class FitResult:
    posterior: pd.DataFrame  # parameter, median, mean, sd, q05, q95, prior_sd, sd_ratio
    generations: int
    epsilon: float
    evaluations: int
    sample: pd.DataFrame | None = None  # the last generation: weight (sum 1), then one column per parameter
    wall_seconds: float = float("nan")  # wall time of every generation, over resumed runs
    workers: int = 1

    @property
    def ess(self) -> float:
        """Kish effective sample size of the posterior sample's weights."""
        return (
            effective_sample_size(self.sample["weight"].to_numpy())
            if self.sample is not None
            else float("nan")
        )


def _prior(names):
    import pyabc

    return pyabc.Distribution(
        **{n: pyabc.RV("uniform", BY_NAME[n].low, BY_NAME[n].high - BY_NAME[n].low) for n in names}
    )


@contextlib.contextmanager
def _numpy_global_seed(seed: int) -> Iterator[None]:
    """NumPy's global generator seeded with `seed` inside, and as it was before afterwards."""
    before = np.random.get_state()  # noqa: NPY002 - pyabc samples from the global generator
    np.random.seed(seed)  # noqa: NPY002 - the only way to seed pyabc's internal sampling
    try:
        yield
    finally:
        np.random.set_state(before)  # noqa: NPY002


def fit(
    out: str | Path,
    names: tuple[str, ...] = FITTED,
    observed: dict | None = None,
    population_size: int = 200,
    generations: int = 8,
    firms: int = 1000,
    seed: int = 1,
    resume: bool = True,
    workers: int = 1,
    batch: int = BATCH_SIZE,
    progress: Callable[[int, int, int, int], None] | None = None,
) -> FitResult:
    """ABC-SMC of `names` (uniform priors over their registry ranges) against the survey targets,
    or against `observed` (synthetic data, for identifiability). The particles are evaluated in
    batches of up to `batch` runs stepped together, `workers` processes evaluating one batch
    each (`BatchSampler`); the fit is that of pyabc's single-core sampler draw for draw,
    whatever `batch` and `workers`. `batch` = 0 evaluates one particle per model call with
    pyabc's own samplers: single-core, or with `workers` > 1 its multicore sampler (whose result
    depends on the processes' timing, so it is not reproducible draw for draw).
    `progress(t, accepted, population, evaluations)` is told after every round of particles of
    generation `t` (batched fits only)."""
    if batch < 0:
        raise ValueError(f"batch = {batch} is invalid; allowed: 0 (one particle per model call) or more")
    try:
        import pyabc
    except ImportError:
        raise ImportError(needs_extra("calibration", "calibrate")) from None
    import logging

    logging.getLogger("ABC").setLevel(logging.WARNING)
    logging.getLogger("Sampler").setLevel(logging.WARNING)
    logging.getLogger("Epsilon").setLevel(logging.WARNING)
    logging.getLogger("History").setLevel(logging.WARNING)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    targets = dynamic_targets()
    obs = observed or {t["id"]: t["value"] for t in targets}
    # pyabc's own sampling draws from NumPy's global generator; seeding it is the library's
    # documented way to make a fit reproducible (the model draws only from its own generator).
    # The caller's global state is put back afterwards.
    with _numpy_global_seed(seed):
        if batch > 0:
            from mittelbau.calibration.batch_sampler import BatchSampler, ParticleModel

            evaluate = partial(evaluate_particles, seed=seed, firms=firms, targets=targets, batch=batch)
            model = ParticleModel(evaluate)
            sampler = BatchSampler(model, batch, workers, progress=progress)
        else:

            def model(par: dict) -> dict:
                return simulate(dict(par), particle_seed(par, seed), firms, targets)

            sampler = (
                pyabc.sampler.SingleCoreSampler()
                if workers == 1
                else pyabc.sampler.MulticoreEvalParallelSampler(n_procs=workers)
            )
        abc = pyabc.ABCSMC(
            pyabc.FunctionModel(model, name="model"),
            _prior(names),
            lambda x, y: distance(x, y, targets),
            population_size=population_size,
            sampler=sampler,
        )
        db = f"sqlite:///{(out / 'abc.db').resolve()}"
        design = json.dumps(
            {
                "names": list(names),
                "observed": obs,
                "targets": targets,
                "population_size": population_size,
                "firms": firms,
                "seed": seed,
            },
            sort_keys=True,
            default=str,
        )
        stamp = out / "fit.json"  # the design of the folder's history, written before the history
        if resume and (out / "abc.db").exists():
            if not stamp.exists():
                raise ValueError(
                    f"{out} holds a fit history without a record of its design (fit.json); allowed: "
                    "--fresh to start it anew, or another --out"
                )
            if stamp.read_text() != design:
                raise ValueError(
                    f"{out} holds a fit of another design (parameters, targets or settings); allowed: "
                    "the same command to resume, --fresh, or another --out"
                )
            try:
                history = abc.load(db, 1, obs)
            except Exception as exc:  # a history cut short as it was made, or not pyabc's
                raise ValueError(
                    f"{out}'s fit history cannot be read ({type(exc).__name__}: interrupted as it was "
                    "made?); allowed: --fresh to start it anew, or another --out"
                ) from None
            done = history.max_t + 1
        else:
            done = 0
            (out / "abc.db").unlink(missing_ok=True)
            staged = stamp.with_name(stamp.name + ".partial")
            staged.write_text(design)
            staged.replace(stamp)
            history = abc.new(db, obs)
        # wall time of every session of the fit, an interrupted one's included (its finished
        # generations stay in the history)
        timing = out / "wall_seconds.txt"
        if done == 0 or not timing.exists():  # a history cut off before its first time was kept
            timing.write_text("0")
        if done < generations:
            start = time.monotonic()
            try:
                history = abc.run(max_nr_populations=generations - done)
            finally:
                if batch > 0:
                    sampler.close()  # the batched sampler's worker processes
                timing.write_text(f"{float(timing.read_text()) + time.monotonic() - start:.1f}")
    frame, weights = history.get_distribution(m=0, t=history.max_t)
    rows = []
    for n in names:
        x = frame[n].to_numpy()
        order = np.argsort(x)
        cum = np.cumsum(weights[order]) / weights.sum()
        q05, med, q95 = (float(x[order][np.searchsorted(cum, q)]) for q in (0.05, 0.5, 0.95))
        mean = float(np.average(x, weights=weights))
        sd = float(np.sqrt(np.average((x - mean) ** 2, weights=weights)))
        prior_sd = (BY_NAME[n].high - BY_NAME[n].low) / np.sqrt(12)
        rows.append(
            {
                "parameter": n,
                "median": med,
                "mean": mean,
                "sd": sd,
                "q05": q05,
                "q95": q95,
                "prior_sd": prior_sd,
                "sd_ratio": sd / prior_sd,
            }
        )
    pops = history.get_all_populations()
    sample = pd.DataFrame({"weight": weights / weights.sum()})
    for n in names:
        sample[n] = frame[n].to_numpy()
    return FitResult(
        pd.DataFrame(rows),
        int(history.max_t + 1),
        float(pops["epsilon"].iloc[-1]),
        int(history.total_nr_simulations),
        sample,
        float(timing.read_text()),
        workers,
    )


IDENTIFIED_SD_RATIO = 0.5  # identified: posterior sd below half the prior sd


def write_parameter_set(
    result: FitResult,
    settings: dict,
    path: Path = PARAMETER_FILE,
    recovery: pd.DataFrame | None = None,
) -> None:
    """Commit a fit as the versioned parameter set the registry defaults read (each fitted
    parameter's posterior median), with its cost (evaluations, wall time, workers), the Kish
    effective sample size of the posterior sample, and per parameter the sd ratio of the fit and,
    given `recovery` (`identify`), of the recovery from synthetic data. not_identified lists the
    parameters whose posterior sd is not below half the prior sd."""
    old = tomllib.loads(path.read_text("utf-8")) if path.exists() else {"version": 0}
    post = result.posterior
    weak = post[post["sd_ratio"] >= IDENTIFIED_SD_RATIO]
    data = {
        "version": int(old["version"]) + 1,
        "method": "ABC-SMC (pyabc), uniform priors over the registry ranges, distance Σ z²",
        "targets": "calibration/targets.toml, objective = true (sources §2.1–2.2, §2.12, §2.14, "
        "§4.1–4.4, §4.8, §7.1), Stuttgart",
        "settings": dict(settings),
        "generations": result.generations,
        "final_epsilon": _digits(result.epsilon, 6),
        "evaluations": result.evaluations,
        "wall_seconds": _digits(result.wall_seconds, 4),
        "workers": result.workers,
        "particles": 0 if result.sample is None else len(result.sample),
        "effective_sample_size": _digits(result.ess, 4),
        "posterior_sample": "calibration/posterior.csv",
        "not_identified": {r.parameter: _digits(r.sd_ratio, 3) for r in weak.itertuples()},
    }
    recovered = {} if recovery is None else {r.parameter: r for r in recovery.itertuples()}
    for r in post.itertuples():
        data[r.parameter] = {
            "median": _digits(r.median, 6),
            "q05": _digits(r.q05, 6),
            "q95": _digits(r.q95, 6),
            "sd_ratio": _digits(r.sd_ratio, 4),
        }
        if r.parameter in recovered:
            rec = recovered[r.parameter]
            data[r.parameter] |= {
                "recovery_truth": _digits(rec.truth, 6),
                "recovery_sd_ratio": _digits(rec.sd_ratio, 4),
                "recovery_covered": bool(rec.recovered),
            }
    header = (
        "# Written by `mittelbau calibrate fit --write` (calibration/dynamic_fit.py). Do not edit by hand.\n"
        "# The registry takes each fitted parameter's posterior median as its default; sd_ratio is\n"
        "# posterior sd / prior sd (identified below 0.5), recovery_* the same fit on synthetic data\n"
        "# made at recovery_truth (covered: the truth lies in the 90 % interval).\n"
    )
    # whole or not at all: the registry reads this file
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(header + tomli_w.dumps(data), encoding="utf-8")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _digits(x: float, n: int) -> float:
    """`x` to `n` significant digits, as the file records it."""
    return float(f"{float(x):.{n}g}")


def load_parameter_set(path: Path = PARAMETER_FILE) -> dict:
    """The committed fit, or {} if there is none."""
    return tomllib.loads(path.read_text("utf-8")) if path.exists() else {}


def identify(
    out: str | Path,
    truth: dict[str, float],
    population_size: int = 100,
    generations: int = 6,
    firms: int = 1000,
    seed: int = 2,
    workers: int = 1,
    batch: int = BATCH_SIZE,
    resume: bool = True,
) -> pd.DataFrame:
    """Identifiability: generate the targets with the model at known parameters `truth`, fit
    them again, and say per parameter whether the fit recovers the truth (inside its 90 %
    interval) and whether the targets identify it at all (posterior sd below half the
    prior's). `resume=False` starts the fit anew in `out`."""
    names = tuple(truth)
    targets = dynamic_targets()
    observed = simulate(truth, seed + 1000, firms, targets)
    result = fit(out, names, observed, population_size, generations, firms, seed, resume, workers, batch)
    table = result.posterior.copy()
    table.insert(1, "truth", [truth[n] for n in table["parameter"]])
    table["recovered"] = (table["q05"] <= table["truth"]) & (table["truth"] <= table["q95"])
    table["identified"] = table["sd_ratio"] < IDENTIFIED_SD_RATIO
    out = Path(out)
    table.to_csv(out / "identifiability.csv", index=False, float_format="%.6g")
    lines = [
        "# Identifiability of the dynamic parameters",
        "",
        "Targets generated by the model at known parameters, then fitted again with the "
        f"same ABC-SMC ({population_size} particles, {generations} generations, {firms:,} "
        "firms). Recovered: the truth lies in the 90 % posterior interval. Identified: the "
        "posterior sd is below half the prior sd.",
        "",
        "| parameter | truth | median | 90 % interval | sd / prior sd | recovered | identified |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in table.itertuples():
        lines.append(
            f"| {r.parameter} | {r.truth:.4g} | {r.median:.4g} | {r.q05:.4g}–{r.q95:.4g} "
            f"| {r.sd_ratio:.2f} | {'yes' if r.recovered else 'no'} | "
            f"{'yes' if r.identified else 'no'} |"
        )
    (out / "identifiability.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return table
