"""Cost of the dynamic fit (calibration/dynamic_fit.py): seconds per evaluation of a particle
(a run to 2019 at a parameter set drawn from the prior, the run-up solved anew), evaluated one
at a time and with the particles' runs stepped together in batches as the fit does
(`evaluate_particles`, processor time), the share of an evaluation spent solving the run-up,
and the projected wall time of an ABC-SMC fit with 1,000 particles per generation on 2 cores.
Prints figures; asserts nothing.

The projection takes the evaluations per accepted particle from the committed fit
(calibration/dynamic_parameters.toml: evaluations / (particles × generations)) and assumes two
workers evaluate twice as fast as one (the workers share nothing). Figures measured on a shared
machine are provisional.

    .venv/bin/python benchmarks/bench_fit.py [--firms 1000] [--evaluations 32] [--batch 16]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from mittelbau.calibration.dynamic_fit import (
    FITTED,
    dynamic_targets,
    evaluate_particles,
    load_parameter_set,
)
from mittelbau.core import runup
from mittelbau.core.parameters import BY_NAME
from mittelbau.core.scenario import make_params
from mittelbau.core.shared_runups import clear_runup_states
from mittelbau.experiments.runs import BATCH_SIZE

PARTICLES = 1000
CORES = 2
GOAL_SECONDS = 3600


def prior_draws(k: int, seed: int) -> list[dict]:
    """`k` parameter sets from the fit's uniform priors."""
    rng = np.random.default_rng(seed)
    return [{n: float(rng.uniform(BY_NAME[n].low, BY_NAME[n].high)) for n in FITTED} for _ in range(k)]


def fresh() -> None:
    """Forget the solved run-ups and the run-ups run (kept for later runs of the same points),
    so that each path solves and runs its own, as the fit's particles, which all differ, do."""
    runup.clear_cache()
    clear_runup_states()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--firms", type=int, default=1000)
    parser.add_argument(
        "--evaluations", type=int, default=32, help="parameter sets (32: two full batches, as in the fit)"
    )
    parser.add_argument("--batch", type=int, default=BATCH_SIZE, help="particles whose runs step together")
    args = parser.parse_args()
    targets = dynamic_targets()
    draws = prior_draws(args.evaluations, 1)
    evaluate_particles(prior_draws(1, 0), 1, args.firms, targets)  # imports and file reads out of the timing
    fresh()
    t0 = time.process_time()
    for par in draws:
        evaluate_particles([par], 1, args.firms, targets)
    per_eval = (time.process_time() - t0) / len(draws)
    fresh()
    t0 = time.process_time()
    evaluate_particles(draws, 1, args.firms, targets, args.batch)
    per_batched = (time.process_time() - t0) / len(draws)
    solve = []
    for par in draws[:5]:
        runup.clear_cache()
        t = time.process_time()
        runup.solve_runup("stuttgart", make_params(par))
        solve.append(time.process_time() - t)
    fit = load_parameter_set()
    generations = int(fit.get("generations", 4))
    particles = int(fit.get("particles", fit.get("settings", {}).get("population", 200)))
    per_particle = fit["evaluations"] / (particles * generations) if fit.get("particles") else 3.0
    evals = PARTICLES * generations * per_particle
    print(
        f"one evaluation ({args.firms:,} firms, {len(targets)} targets, 2000–2019), processor time: "
        f"{per_eval:.3f} s one at a time, {per_batched:.3f} s in batches of up to {args.batch} "
        f"({per_eval / per_batched:.2f}× as fast)"
    )
    print(
        f"  evaluations per second, one core: {1 / per_eval:.2f} one at a time, {1 / per_batched:.2f} batched"
    )
    print(f"  of which the run-up's solution alone: {np.mean(solve):.3f} s ({np.mean(solve) / per_eval:.0%})")
    print(
        f"committed fit: {per_particle:.2f} evaluations per accepted particle and generation "
        f"({generations} generations)"
    )
    for label, seconds in (("one at a time", per_eval), ("batched", per_batched)):
        wall = evals * seconds / CORES
        print(
            f"projection, {PARTICLES:,} particles × {generations} generations on {CORES} cores, {label}: "
            f"{evals:,.0f} evaluations, {wall / 60:.0f} min (goal: {GOAL_SECONDS / 60:.0f} min; "
            f"{'met' if wall <= GOAL_SECONDS else 'not met'})"
        )
    print(
        f"  the goal needs {GOAL_SECONDS * CORES / evals:.3f} s per evaluation; without the run-up's "
        f"solution one takes {per_eval - np.mean(solve):.3f} s"
    )


if __name__ == "__main__":
    main()
