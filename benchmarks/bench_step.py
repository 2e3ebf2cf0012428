"""Build time and stepping speed of the vectorised model (with every switchable mechanism off
and on), and the speed ratio against the per-firm reference step (tests/reference_model.py).
Prints figures; asserts nothing.

    .venv/bin/python benchmarks/bench_step.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from mittelbau.core.mechanisms import NAMES
from mittelbau.core.model import MittelbauModel

TESTS = Path(__file__).resolve().parents[1] / "tests"

YEARS = 20
ALL_ON = {f"mech_{n}": "on" for n in NAMES}


def vectorised(firms: int, **overrides) -> tuple[float, float]:
    t0 = time.perf_counter()
    m = MittelbauModel(firms=firms, seed=1, years=YEARS, **overrides)
    t1 = time.perf_counter()
    m.run()
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1


def reference_step(firms: int, years: int) -> float:
    sys.path.insert(0, str(TESTS))
    from reference_model import ReferenceModel

    r = ReferenceModel(firms=firms, seed=1, years=years)
    t0 = time.perf_counter()
    r.run_for(years)
    return (time.perf_counter() - t0) / years


def main() -> None:
    for label, overrides in (("mechanisms off", {}), ("every mechanism on", ALL_ON)):
        print(f"{label}\n{'firms':>8} {'build s':>8} {'run s':>8} {'total s':>8} {'firm-steps/s':>14}")
        for firms in (4_000, 20_000, 100_000):
            build, run = min((vectorised(firms, **overrides) for _ in range(5)), key=sum)
            rate = firms * YEARS / run
            print(f"{firms:>8} {build:>8.3f} {run:>8.3f} {build + run:>8.3f} {rate:>14,.0f}")
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
