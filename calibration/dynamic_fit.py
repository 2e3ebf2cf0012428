"""Fit the dynamic parameters to the behavioural targets by ABC-SMC (pyabc).

The targets read after 2015 (`calibration/targets.toml`: BM introductions within three years,
motives, engagement and digital techniques in 2016) depend on the dynamics; the 2015 targets
are met by the initial-state fit and do not. The distance of a simulation from the survey is
Σ z², z = (simulated − observed) / SE_obs over those targets. One run of 4,000 firms per
particle keeps the simulation noise of each share (≈ 0.007) small against the survey's
standard errors (≈ 0.03 at n = 203), so no replications are needed per particle.

pyabc stores every generation in an SQLite history, so an interrupted fit resumes from its last
finished generation. Its samplers draw from NumPy's global generator, which `fit` seeds once:
with the single-core sampler the same seed reproduces the fit (a resumed fit is reproducible
only in distribution).
"""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import tomli_w

from mittelbau.calibration.fit_report import CALIBRATION, load_targets, run_statistics, standard_error
from mittelbau.core.parameters import BY_NAME

PARAMETER_FILE = CALIBRATION / "dynamic_parameters.toml"
FITTED = ("engagement_drift_rate", "competence_learning")
POPULATION = "stuttgart"


def dynamic_targets() -> list[dict]:
    return [t for t in load_targets() if t["population"] == POPULATION and t["year"] > 2015]


def simulate(params: dict, seed: int, firms: int, targets: list[dict] | None = None) -> dict[str, float]:
    """The dynamic targets' statistics for one run at `params`."""
    return run_statistics(POPULATION, targets or dynamic_targets(), seed, firms, params)


def particle_seed(par: dict, seed: int) -> int:
    """A run seed that is a function of the particle's parameter values and the fit's seed, so
    the same particle always gives the same run."""
    words = [seed] + [int(np.float64(par[k]).view(np.uint64) % 2**32) for k in sorted(par)]
    return int(np.random.SeedSequence(words).generate_state(1, dtype=np.uint32)[0])


def distance(simulated: dict, observed: dict, targets: list[dict]) -> float:
    """Σ z² over the targets, with the survey's standard errors; an upper-bound target adds
    only when the simulation exceeds it."""
    total = 0.0
    for t in targets:
        x = simulated[t["id"]]
        if x is None or not math.isfinite(x):
            return 1e6
        z = (x - observed[t["id"]]) / standard_error(t)
        total += max(z, 0.0) ** 2 if t.get("bound") == "upper" else z**2
    return total


@dataclass
class FitResult:
    posterior: pd.DataFrame  # parameter, median, mean, sd, q05, q95, prior_sd, sd_ratio
    generations: int
    epsilon: float
    evaluations: int
    sample: pd.DataFrame | None = None  # the last generation: weight, then one column per parameter


def _prior(names):
    import pyabc

    return pyabc.Distribution(
        **{n: pyabc.RV("uniform", BY_NAME[n].low, BY_NAME[n].high - BY_NAME[n].low) for n in names}
    )


def fit(
    out: str | Path,
    names: tuple[str, ...] = FITTED,
    observed: dict | None = None,
    population_size: int = 200,
    generations: int = 8,
    firms: int = 4000,
    seed: int = 1,
    resume: bool = True,
) -> FitResult:
    """ABC-SMC of `names` (uniform priors over their registry ranges) against the survey targets,
    or against `observed` (synthetic data, for identifiability)."""
    try:
        import pyabc
    except ImportError:
        raise ImportError("calibration needs the 'calibrate' extra: pip install -e '.[calibrate]'") from None
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
    # documented way to make a fit reproducible (the model draws only from its own generator)
    np.random.seed(seed)  # noqa: NPY002 - the only way to seed pyabc's internal sampling

    def model(par: dict) -> dict:
        return simulate(dict(par), particle_seed(par, seed), firms, targets)

    abc = pyabc.ABCSMC(
        model,
        _prior(names),
        lambda x, y: distance(x, y, targets),
        population_size=population_size,
        sampler=pyabc.sampler.SingleCoreSampler(),
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
    stamp = out / "fit.json"
    if resume and (out / "abc.db").exists() and stamp.exists() and stamp.read_text() != design:
        raise ValueError(
            f"{out} holds a fit of another design (parameters, targets or "
            "settings); allowed: the same command to resume, --fresh, or another --out"
        )
    done = 0
    if resume and (out / "abc.db").exists():
        history = abc.load(db, 1, obs)
        done = history.max_t + 1
    else:
        (out / "abc.db").unlink(missing_ok=True)
        history = abc.new(db, obs)
        stamp.write_text(design)
    if done < generations:
        history = abc.run(max_nr_populations=generations - done)
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
    sample = frame[list(names)].reset_index(drop=True)
    sample.insert(0, "weight", weights / weights.sum())
    return FitResult(
        pd.DataFrame(rows),
        int(history.max_t + 1),
        float(pops["epsilon"].iloc[-1]),
        int(history.total_nr_simulations),
        sample,
    )


IDENTIFIED_SD_RATIO = 0.5  # identified: posterior sd below half the prior sd


def write_parameter_set(
    result: FitResult,
    settings: dict,
    path: Path = PARAMETER_FILE,
    not_identified: dict[str, float] | None = None,
) -> None:
    """Commit a fit as the versioned parameter set the registry defaults read; parameters the
    targets did not identify are listed with their sd ratio and keep their assumptions."""
    old = tomllib.loads(path.read_text("utf-8")) if path.exists() else {"version": 0}
    data = {
        "version": int(old["version"]) + 1,
        "method": "ABC-SMC (pyabc), uniform priors over the registry ranges, distance Σ z²",
        "targets": "calibration/targets.toml (sources §4.1–4.4), Stuttgart",
        "settings": dict(settings),
        "generations": result.generations,
        "final_epsilon": _digits(result.epsilon, 6),
        "evaluations": result.evaluations,
        "not_identified": {k: _digits(v, 3) for k, v in (not_identified or {}).items()},
    }
    for r in result.posterior.itertuples():
        data[r.parameter] = {
            "median": _digits(r.median, 6),
            "q05": _digits(r.q05, 6),
            "q95": _digits(r.q95, 6),
            "sd_ratio": _digits(r.sd_ratio, 4),
        }
    header = (
        "# Written by `mittelbau calibrate fit --write` (calibration/dynamic_fit.py). Do not edit by hand.\n"
        "# The registry takes each parameter's posterior median as its default; not_identified lists\n"
        "# the parameters the targets do not identify (posterior sd / prior sd), which keep their\n"
        "# stated assumptions and are left to sensitivity analysis.\n"
    )
    path.write_text(header + tomli_w.dumps(data), encoding="utf-8")


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
    firms: int = 4000,
    seed: int = 2,
) -> pd.DataFrame:
    """Identifiability: generate the targets with the model at known parameters `truth`, fit
    them again, and say per parameter whether the fit recovers the truth (inside its 90 %
    interval) and whether the targets identify it at all (posterior sd below half the
    prior's)."""
    names = tuple(truth)
    targets = dynamic_targets()
    observed = simulate(truth, seed + 1000, firms, targets)
    result = fit(out, names, observed, population_size, generations, firms, seed, resume=True)
    table = result.posterior.copy()
    table.insert(1, "truth", [truth[n] for n in table["parameter"]])
    table["recovered"] = (table["q05"] <= table["truth"]) & (table["truth"] <= table["q95"])
    table["identified"] = table["sd_ratio"] < 0.5
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
