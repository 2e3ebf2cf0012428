"""Ensemble throughput: runs per minute of the Stuttgart baseline (registry defaults, 20 years)
with 1 and 2 local worker processes and a 2-worker Dask LocalCluster (the Dask rows need the
'dask' extra; without it they are left out, said so). Each configuration starts without the
run-ups an earlier one kept, so that none takes them over. Prints figures.

    .venv/bin/python benchmarks/bench_ensemble.py [replications]
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
import time
from pathlib import Path

from mittelbau.core import runup
from mittelbau.core.scenario import load_scenario
from mittelbau.core.shared_runups import clear_runup_states
from mittelbau.experiments.ensemble import run_ensemble

ROOT = Path(__file__).resolve().parents[1]


def runs_per_minute(executor: str, workers: int, replications: int, scheduler: str | None = None) -> float:
    scenario = load_scenario(ROOT / "scenarios" / "baseline.toml")
    # the run-ups solved and run by a configuration before (forked local workers would take them over)
    runup.clear_cache()
    clear_runup_states()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        run_ensemble([scenario], replications, Path(tmp) / "e", executor, workers, scheduler)
        return 60 * replications / (time.perf_counter() - start)


def dask_without_startup(workers: int, replications: int) -> float:
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        return runs_per_minute("dask", workers, replications, cluster.scheduler_address)


def main() -> None:
    replications = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    one = runs_per_minute("local", 1, replications)
    two = runs_per_minute("local", 2, replications)
    print(f"{replications} runs of the baseline (4,000 firms, 20 years) per configuration")
    print(f"local, 1 worker : {one:7.1f} runs/min")
    print(f"local, 2 workers: {two:7.1f} runs/min  (speed-up {two / one:.2f}x)")
    if importlib.util.find_spec("distributed") is None:
        print("dask: left out, the 'dask' extra is not installed (make dev installs every extra)")
        return
    dask = runs_per_minute("dask", 2, replications)
    warm = dask_without_startup(2, replications)
    print(
        f"dask,  2 workers: {dask:7.1f} runs/min  (overhead against local {two / dask - 1:+.0%},"
        " LocalCluster start-up included)"
    )
    print(
        f"dask,  2 workers: {warm:7.1f} runs/min  (overhead against local {two / warm - 1:+.0%},"
        " on a running cluster)"
    )


if __name__ == "__main__":
    main()
