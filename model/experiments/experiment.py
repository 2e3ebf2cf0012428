"""Many parameter points × replicates of one scenario, keeping only the outcomes at the horizon.

Used by sensitivity analysis and scenario discovery. Work is cut into batches of runs in a
fixed order; each finished batch is written at once (`batches/batch-NNNNNN.csv`, written under
a temporary name and renamed), so an interrupted experiment resumes with the missing batches
when the same command is run into the same folder. Replicate r of every point uses the same
seed (spawned from the scenario seed): common random numbers across points.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mittelbau.core.outcomes import OUTCOMES, definitions
from mittelbau.core.scenario import Params, Scenario, make_params
from mittelbau.experiments.ensemble import replicate_seeds
from mittelbau.experiments.executors import ExecutionError, execute, listing
from mittelbau.experiments.runs import simulate

MANIFEST = "experiment.json"
BATCH_RUNS = 16  # runs per batch: the unit of persistence and of work sent to a worker


@dataclass(frozen=True)
class Batch:
    index: int
    base: dict[str, Any]
    runs: tuple[tuple[int, int, int, dict[str, Any]], ...]  # point, replicate, seed, overrides


def run_outputs(params: Params) -> dict[str, bool | float]:
    """Run one parameter set and return every outcome of the outcome registry at the
    horizon; a float outcome without a value (or an infinite one) is NaN."""
    result = simulate(Scenario("point", "", params))
    out: dict[str, bool | float] = {}
    for name, value in result.summary["outcomes"].items():
        if OUTCOMES[name].kind is bool:
            out[name] = bool(value)
        else:
            out[name] = np.nan if value is None or not math.isfinite(value) else value
    return out


def run_batch(batch: Batch) -> pd.DataFrame:
    rows = []
    for point, replicate, seed, overrides in batch.runs:
        params = make_params({**batch.base, **overrides, "seed": seed}, f"point {point}")
        rows.append({"point": point, "replicate": replicate, "seed": seed, **run_outputs(params)})
    return pd.DataFrame(rows)


def _fingerprint(base: dict, points: Sequence[dict], replications: int) -> str:
    text = json.dumps([base, list(points), replications, list(OUTCOMES)], sort_keys=True, default=float)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def evaluate_points(
    scenario: Scenario,
    points: Sequence[dict[str, Any]],
    replications: int,
    out: str | Path,
    executor: str = "local",
    workers: int = 1,
    scheduler: str | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """The outcomes (registry `OUTCOMES`) of every (point, replicate), one row each, sorted;
    resumes from `out`."""
    out = Path(out)
    base = {k: v for k, v in scenario.params.model_dump().items() if k != "seed"}
    seeds = replicate_seeds(scenario.params.seed, replications)
    fingerprint = _fingerprint(base, points, replications)
    manifest = out / MANIFEST
    if manifest.exists() and json.loads(manifest.read_text())["fingerprint"] != fingerprint:
        raise ExecutionError(
            f"{out} holds an experiment with other points, parameters, replications or outcomes; "
            "allowed: the same command (to resume), or another --out"
        )
    (out / "batches").mkdir(parents=True, exist_ok=True)
    manifest.write_text(
        json.dumps(
            {
                "fingerprint": fingerprint,
                "points": len(points),
                "replications": replications,
                "seeds": seeds,
                "base": base,
                "outcomes": definitions(),
            },
            indent=2,
            default=float,
        )
        + "\n"
    )
    runs = [(p, r, seeds[r], dict(point)) for p, point in enumerate(points) for r in range(replications)]
    batches = [
        Batch(i, base, tuple(runs[k : k + BATCH_RUNS])) for i, k in enumerate(range(0, len(runs), BATCH_RUNS))
    ]

    def path(b: Batch) -> Path:
        return out / "batches" / f"batch-{b.index:06d}.csv"

    todo = [b for b in batches if not path(b).exists()]
    failures = []
    for batch, result in execute(run_batch, todo, executor, workers, scheduler):
        if isinstance(result, BaseException):
            first = batch.runs[0]
            failures.append(
                f"batch {batch.index} (points {first[0]}–{batch.runs[-1][0]}, "
                f"seeds {sorted({r[2] for r in batch.runs})}): "
                f"{type(result).__name__}: {result}"
            )
        else:
            tmp = path(batch).with_suffix(".tmp")
            result.to_csv(tmp, index=False)
            os.replace(tmp, path(batch))
        if on_batch is not None:
            on_batch(len(batch.runs))
    if failures:
        raise ExecutionError(
            f"{len(failures)} of {len(todo)} batches failed (the others are "
            "kept; rerun to retry them):\n  " + listing(failures)
        )
    frames = [pd.read_csv(path(b)) for b in batches]
    return pd.concat(frames, ignore_index=True).sort_values(["point", "replicate"]).reset_index(drop=True)
