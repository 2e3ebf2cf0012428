"""Is a Sobol analysis with N = 1024 over all registry factors practical here? Measures the
throughput of the experiment runner on the Stuttgart baseline (one small Sobol study with 2
local workers, its pilot choosing the replications) and extrapolates to N = 1024 (Saltelli:
N · (k + 2) points, first and total order). Prints figures.

    .venv/bin/python benchmarks/bench_sensitivity.py [firms]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from mittelbau.core.scenario import load_scenario
from mittelbau.experiments.sensitivity import factors
from mittelbau.experiments.sensitivity_study import PILOT_RUNS, run_study

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    firms = int(sys.argv[1]) if len(sys.argv) > 1 else 4000
    scenario = load_scenario(ROOT / "scenarios" / "baseline.toml", [f"firms={firms}"])
    k = len(factors())
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        found = run_study("sobol", scenario, Path(tmp), 16, run_kw={"workers": 2})
        elapsed = time.perf_counter() - start
    runs = found["runs"] + PILOT_RUNS
    per_min = 60 * runs / elapsed
    reps = found["replications"]
    full = 1024 * (k + 2)
    print(
        f"{k} factors; {runs} runs of {firms} firms × 20 years (the {PILOT_RUNS} of the pilot, which "
        f"chose {reps} replication(s), included) in {elapsed:.1f} s with 2 workers = {per_min:,.0f} runs/min"
    )
    for r in sorted({1, reps, 4}):
        minutes = full * r / per_min
        print(f"N = 1024: {full:,} points × {r} replication(s) = {full * r:,} runs ≈ {minutes:,.0f} min")


if __name__ == "__main__":
    main()
