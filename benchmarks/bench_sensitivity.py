"""Is a Sobol analysis with N = 1024 over all registry factors practical here? Measures the
throughput of the experiment runner on the Stuttgart baseline (one small Sobol sample with 2
local workers) and extrapolates to N = 1024 (Saltelli: N · (k + 2) points, first and total
order). Prints figures.

    .venv/bin/python benchmarks/bench_sensitivity.py [firms]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from mittelbau.core.scenario import load_scenario
from mittelbau.experiments.sensitivity import factors
from mittelbau.experiments.sensitivity_study import run_study

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    firms = int(sys.argv[1]) if len(sys.argv) > 1 else 4000
    scenario = load_scenario(ROOT / "scenarios" / "baseline.toml", [f"firms={firms}"])
    k = len(factors())
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        found = run_study("sobol", scenario, Path(tmp), 16, replications=1, run_kw={"workers": 2})
        elapsed = time.perf_counter() - start
    per_min = 60 * found["runs"] / elapsed
    full = 1024 * (k + 2)
    print(
        f"{k} factors; {found['runs']} runs of {firms} firms × 20 years in {elapsed:.1f} s "
        f"with 2 workers = {per_min:,.0f} runs/min"
    )
    for reps in (1, 4, 13):
        print(
            f"N = 1024: {full:,} points × {reps} replication(s) = {full * reps:,} runs "
            f"≈ {full * reps / per_min:,.0f} min"
        )


if __name__ == "__main__":
    main()
