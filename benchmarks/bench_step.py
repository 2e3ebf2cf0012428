"""Build time and stepping speed of the vectorised model (with every switchable mechanism off
and on), the run-up's inversion, and the speed ratio against the per-firm reference step
(tests/reference_model.py). Prints figures; asserts nothing.

Building a model runs its run-up (2000–2015 at the defaults) on the same step, so "build"
holds the synthesis, the network and the run-up's years; "run" the 20 projected years. The
inversion of the run-up is solved once per region and parameter set (cached) and timed apart.

    .venv/bin/python benchmarks/bench_step.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from mittelbau.core import runup
from mittelbau.core.mechanisms import NAMES
from mittelbau.core.model import MittelbauModel
from mittelbau.core.scenario import make_params

TESTS = Path(__file__).resolve().parents[1] / "tests"

YEARS = 20
ALL_ON = {f"mech_{n}": "on" for n in NAMES}


def vectorised(firms: int, **overrides) -> tuple[float, float, int]:
    t0 = time.perf_counter()
    m = MittelbauModel(firms=firms, seed=1, years=YEARS, **overrides)
    t1 = time.perf_counter()
    m.run()
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, m.runup_years


def inversion() -> float:
    runup.clear_cache()
    t0 = time.perf_counter()
    runup.solve_runup("stuttgart", make_params({}))
    return time.perf_counter() - t0


def reference_step(firms: int, years: int) -> float:
    sys.path.insert(0, str(TESTS))
    from reference_model import ReferenceModel

    r = ReferenceModel(firms=firms, seed=1, years=years)
    t0 = time.perf_counter()
    r.run_for(years)
    return (time.perf_counter() - t0) / years


def main() -> None:
    print(f"run-up inversion (Stuttgart, defaults, uncached): {min(inversion() for _ in range(3)):.3f} s\n")
    for label, overrides in (("mechanisms off", {}), ("every mechanism on", ALL_ON)):
        head = f"{'firms':>8} {'build s':>8} {'run s':>8} {'total s':>8} {'step s':>8} {'firm-steps/s':>14}"
        print(f"{label}\n{head}   (build: synthesis, network and run-up; run and step: the projected years)")
        for firms in (4_000, 20_000, 100_000):
            build, run, _ = min((vectorised(firms, **overrides) for _ in range(5)), key=lambda t: t[0] + t[1])
            rate = firms * YEARS / run
            row = f"{firms:>8} {build:>8.3f} {run:>8.3f} {build + run:>8.3f}"
            print(f"{row} {run / YEARS:>8.4f} {rate:>14,.0f}")
    firms = 20_000
    run = min(vectorised(firms)[1] for _ in range(5))
    vec_step = run / YEARS
    ref_step = min(reference_step(firms, 3) for _ in range(3))
    print(
        f"\nper-firm reference at {firms} firms: {ref_step:.3f} s/year; vectorised "
        f"{vec_step:.4f} s/year; speed ratio {ref_step / vec_step:.0f}x"
    )


if __name__ == "__main__":
    main()
