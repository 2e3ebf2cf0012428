"""Cost of the run-up's inversion (`mittelbau.core.runup`): milliseconds of processor time per
parameter point, solved alone and 16 together (`solve_runups`, as a batch of runs does), and the
number of mean-field evaluations a solve takes. Prints figures; asserts nothing.

The points differ in `bm_loss_rate` (uniform 0.01–0.1, Stuttgart, the other values at their
defaults), and in a second set of 16 also in `dt_loss_rate` (uniform 0–0.1: the DT keep
probabilities then differ between the points' types, as in a sampled experiment). Every solve
is a fresh one: the cache is cleared before each. An evaluation is one
call of the run-up's yearly update (`advance`, or the BM marginal alone) on the rows asked for;
"type-evaluations per type" counts the rows each evaluation computes, per type and point.

    .venv/bin/python benchmarks/bench_runup.py [repetitions]
"""

from __future__ import annotations

import sys
import time

import numpy as np

from mittelbau.core import runup
from mittelbau.core.scenario import make_params

REGION = "stuttgart"
TOGETHER = 16


def points(k: int, dt_loss: bool = False) -> list:
    rng = np.random.default_rng(0)
    bm = rng.uniform(0.01, 0.1, k)
    dt = rng.uniform(0.0, 0.1, k) if dt_loss else [None] * k
    return [
        make_params({"bm_loss_rate": float(b), "seed": 1, **({"dt_loss_rate": float(d)} if dt_loss else {})})
        for b, d in zip(bm, dt, strict=True)
    ]


def ms_per_point(params: list, repetitions: int) -> tuple[float, float]:
    """Minimum and median over `repetitions` of the processor time per point of one solve."""
    times = []
    for _ in range(repetitions):
        runup.clear_cache()
        t0 = time.process_time()
        runup.solve_runups(REGION, params)
        times.append((time.process_time() - t0) / len(params) * 1e3)
    return min(times), float(np.median(times))


def evaluations(params: list) -> tuple[int, float]:
    """Calls of the yearly update during one solve of `params`, and the rows they computed per
    type and point."""
    calls, rows = [0], [0]
    originals = {name: getattr(runup, name) for name in ("advance", "_bm_end") if hasattr(runup, name)}

    def counted(original):
        def wrapper(q0, *args, **kwargs):
            calls[0] += 1
            rows[0] += len(q0)
            return original(q0, *args, **kwargs)

        return wrapper

    try:
        for name, original in originals.items():
            setattr(runup, name, counted(original))
        runup.clear_cache()
        solved = runup.solve_runups(REGION, params)
    finally:
        for name, original in originals.items():
            setattr(runup, name, original)
    types = sum(len(r.h_bm) for r in solved)
    return calls[0], rows[0] / types


def main() -> None:
    repetitions = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    alone, together, differing = points(1), points(TOGETHER), points(TOGETHER, dt_loss=True)
    ms_per_point(alone, 1)  # warm up (imports, region data)
    print(f"run-up inversion, {REGION}, processor time per point (min / median of the repetitions)")
    for label, params, reps in (
        ("alone", alone, repetitions),
        (f"{TOGETHER} together", together, max(2, repetitions // 3)),
        (f"{TOGETHER}, DT loss", differing, max(2, repetitions // 3)),
    ):
        low, mid = ms_per_point(params, reps)
        calls, per_type = evaluations(params)
        print(
            f"  {label:14s} {low:6.1f} / {mid:6.1f} ms per point ({reps} repetitions); "
            f"{calls} evaluations per solve, {per_type:.0f} type-evaluations per type"
        )


if __name__ == "__main__":
    main()
