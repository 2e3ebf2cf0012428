"""Experiment throughput of runs stepped together (`core.batch.ModelBatch`, up to 16 runs per
batch) against running them one at a time, at equal settings (one fresh process each). Prints:

1. a Sobol experiment of `base` samples × 2 replications over all default factors at 1,000
   firms on the baseline (runs, seconds, runs/s, firm-steps/s, speed-up), three ways: one run
   at a time, every run of the design; stepped together, every run; stepped together, each
   run whose outcomes another run of the design has given to it instead
   (`experiment.sources`: the runs differing only in parameters their outcomes do not read);
2. at 4,000 firms: 16 replications of the baseline point, batched and one at a time, the
   replications a study's pilot chooses, and a small Sobol design (4 base samples, 1
   replication, batched: its run-ups in the proportion of a Sobol design); from these, the
   projected wall time of Sobol N = 1024 over all default factors with 1 replication and with
   the chosen replications on 2 cores (two workers, each at the measured one-process rate),
   the distinct runs counted in that design itself.

    .venv/bin/python benchmarks/bench_batch.py [base samples, default 8]
"""

from __future__ import annotations

import multiprocessing
import sys
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd
from SALib.sample import sobol as sobol_sample

from mittelbau.core import runup
from mittelbau.core.categories import START_YEAR
from mittelbau.core.scenario import Scenario, load_scenario, make_params
from mittelbau.core.shared_runups import clear_runup_states
from mittelbau.experiments import experiment
from mittelbau.experiments.ensemble import headline_outcomes
from mittelbau.experiments.runs import simulate
from mittelbau.experiments.sensitivity import (
    factors,
    problem,
    sample_points,
    to_overrides,
)
from mittelbau.experiments.sensitivity_study import choose_replications, default_outputs

ROOT = Path(__file__).resolve().parents[1]
# speeds are per processor second of this process, so that other work on the machine
# does not count
CORES = 2
REPLICATES = 16  # replications of one point, batched against one at a time


def one_at_a_time(batch: experiment.Batch) -> pd.DataFrame:
    """The runner of a batch before runs were stepped together: one model after the other,
    each with its tables and whole summary (`runs.simulate`), of which the outcomes are kept."""
    rows = []
    for run in batch.runs:
        point, replicate, seed, _ = run
        result = simulate(Scenario("point", "", experiment.run_params(batch, run)))
        rows.append(
            {"scenario": batch.scenario, "point": point, "replicate": replicate, "seed": seed}
            | headline_outcomes(result.summary)
        )
    return pd.DataFrame(rows)


def timed_points(
    scenario: Scenario, points: list[dict], replications: int, batched: bool, reuse: bool = True
) -> tuple[float, pd.DataFrame]:
    """Seconds and outcomes of the points' runs in one process, batched or one at a time: the
    processor time of that process (robust when other work shares the cores), and the wall
    time beside it. Each measurement runs in a fresh fork of this process, so that no path
    inherits the heap and the garbage collector's load of the one before. (The threads that make
    the fork warn are numpy's math library's, idle here, as in the experiments' local pool.)"""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "This process .* is multi-threaded", DeprecationWarning)
            future = pool.submit(_timed, scenario, points, replications, batched, reuse)
        wall, cpu, table = future.result()
    print(f"    ({wall:.1f} s wall, {cpu:.1f} s processor)")
    return cpu, table


def _timed(
    scenario: Scenario, points: list[dict], replications: int, batched: bool, reuse: bool
) -> tuple[float, float, pd.DataFrame]:
    if not batched:
        experiment.run_batch = one_at_a_time
    runup.clear_cache()  # each path solves its run-ups itself
    clear_runup_states()  # and runs them
    with tempfile.TemporaryDirectory() as tmp:
        wall, cpu = time.perf_counter(), time.process_time()
        table = experiment.evaluate_points(
            scenario, points, replications, Path(tmp), workers=1, reuse_equal_runs=reuse
        )
        return time.perf_counter() - wall, time.process_time() - cpu, table


def firm_steps(scenario: Scenario, runs: int) -> int:
    p = scenario.params
    return runs * p.firms * (START_YEAR - p.runup_start_year + p.years)


def sobol_case(base: int) -> None:
    scenario = load_scenario(ROOT / "scenarios" / "baseline.toml", ["firms=1000"])
    chosen = factors()
    spec = problem(chosen)
    X = sobol_sample.sample(spec, base, calc_second_order=False, seed=1)
    points = [to_overrides(row, chosen) for row in X]
    runs = len(points) * 2
    print(f"Sobol {base} base samples × 2 replications, {len(chosen)} factors, 1,000 firms: {runs} runs")
    paths = {
        "one at a time        ": (False, False),
        "batched, every run   ": (True, False),
        "batched, shared runs ": (True, True),
    }
    times = {}
    for label, (batched, reuse) in paths.items():
        elapsed, table = timed_points(scenario, points, 2, batched, reuse)
        times[label] = (elapsed, table)
        print(
            f"  {label}: {elapsed:6.1f} s  {runs / elapsed:6.1f} runs/s  "
            f"{firm_steps(scenario, runs) / elapsed / 1e6:5.2f} M firm-steps/s"
        )
    (alone, first), (every, _), (shared, _) = times.values()
    params = [make_params({**scenario.params.model_dump(), **p}) for p in points]
    distinct = len(set(experiment.sources(params)))
    same = all(t.equals(first) for _, t in times.values())
    print(
        f"  speed-up {alone / every:.2f}× batched, {alone / shared:.2f}× with shared runs "
        f"({distinct} of {len(points)} points run); identical outcomes: {same}"
    )


def projection(base: int) -> None:
    """At 4,000 firms: 16 replications of the baseline point, batched and one at a time (the
    unbatched rate); the study's pilot (`sensitivity_study.choose_replications`) chooses the
    replications; a small Sobol design (`base` base samples over all default factors, 1
    replication, batched) gives the processor seconds per run run of such a design, its
    run-ups included (a Sobol design has a distinct run-up wherever it moves a run-up
    parameter). Projected: Sobol N = 1024 over all default factors on 2 cores, two workers
    each at the measured one-process rate."""
    scenario = load_scenario(ROOT / "scenarios" / "baseline.toml", ["firms=4000"])
    chosen = factors()
    k = len(chosen)
    pilot = {}
    for batched in (False, True):
        elapsed, _ = timed_points(scenario, [{}], REPLICATES, batched)
        pilot[batched] = elapsed / REPLICATES
    with tempfile.TemporaryDirectory() as tmp:
        replications, _ = choose_replications(scenario, chosen, default_outputs(), Path(tmp), {"workers": 1})
    X = sobol_sample.sample(problem(chosen), base, calc_second_order=False, seed=2)
    points = [to_overrides(row, chosen) for row in X]
    elapsed, _ = timed_points(scenario, points, 1, batched=True, reuse=True)
    small = distinct_share(scenario, points)
    design = elapsed / small / len(points)  # per distinct run
    alone, batched = pilot[False], pilot[True]
    print(
        f"4,000 firms, one process: {1 / alone:.2f} runs/s one at a time, {1 / batched:.2f} runs/s batched "
        f"({alone / batched:.2f}×); a Sobol design of {len(points)} points, batched with shared runs: "
        f"{len(points) / elapsed:.2f} runs/s ({small:.0%} of them run: {1 / design:.2f} distinct runs/s, "
        f"{firm_steps(scenario, 1) / design / 1e6:.2f} M firm-steps/s); the study's pilot chooses "
        f"{replications} replications"
    )
    full = sobol_sample.sample(problem(chosen), 1024, calc_second_order=False, seed=3)
    share = distinct_share(scenario, [to_overrides(row, chosen) for row in full])
    runs_per_rep = sample_points("sobol", problem(chosen), 1024)
    print(f"  Sobol N = 1024: {share:.1%} of its runs are distinct (the others share their outcomes)")
    for reps in sorted({1, replications}):
        runs = runs_per_rep * reps
        print(
            f"  Sobol N = 1024, {k} factors, {reps} replication(s): {runs:,} runs on {CORES} cores ≈ "
            f"{runs * alone / CORES / 60:,.0f} min one at a time, "
            f"{runs * share * design / CORES / 60:,.0f} min batched with shared runs"
        )


def distinct_share(scenario: Scenario, points: list[dict]) -> float:
    """The share of a design's runs (one replication) that are run: the others share the
    outcomes of an earlier run (`experiment.sources`); the same with any replications."""
    base = scenario.params.model_dump()
    return len(set(experiment.sources([make_params({**base, **p}) for p in points]))) / len(points)


def main() -> None:
    base = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    sobol_case(base)
    projection(4)


if __name__ == "__main__":
    main()
