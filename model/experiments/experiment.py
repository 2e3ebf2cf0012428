"""Many parameter points × replicates of one scenario, keeping only the indicators.

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

from mittelbau.core.scenario import Scenario, make_params
from mittelbau.experiments.ensemble import replicate_seeds
from mittelbau.experiments.executors import ExecutionError, execute, listing
from mittelbau.experiments.runs import simulate

OUTPUTS = {
    "middle_share": "stage-2 share at the horizon",
    "hollowing_ratio": "s2 / min(s1, s3) at the horizon",
    "polarisation_index": "Esteban–Ray polarisation at the horizon",
    "upward_rate": "mean yearly upward-move rate from stage 1",
    "hollowed": "1 if the middle hollows out by the horizon, else 0",
    "cost_per_additional_upward_move": "public € per additional upward move (lever scenarios)",
    "middle_shrinks": "1 if stage 2 at the horizon is middle_shrink_pp or more below 2015, else 0",
    "stuck_share": "share of the 2015 stage-1 firms that never got out of stage 1",
    "stuck_share_small": "stuck_share among the 2015 stage-1 firms with < 100 employees",
    "competence_gap": "mean techniques of stage 3 minus stage 1 at the horizon",
    "gap_widens": "1 if the competence gap is wider at the horizon than in 2015, else 0",
}
MANIFEST = "experiment.json"
BATCH_RUNS = 16  # runs per batch: the unit of persistence and of work sent to a worker


@dataclass(frozen=True)
class Batch:
    index: int
    base: dict[str, Any]
    runs: tuple[tuple[int, int, int, dict[str, Any]], ...]  # point, replicate, seed, overrides


def run_outputs(params) -> dict[str, float]:
    """Run one parameter set and return the indicators of OUTPUTS."""
    result = simulate(Scenario("point", "", params))
    h, policy = result.summary["headline"], result.summary["policy"]
    cost = policy["cost_per_additional_upward_move_eur"] if policy else None
    ratio = h["hollowing_ratio"][1]
    return {
        "middle_share": h["stage_shares_end"]["stage2"],
        "hollowing_ratio": ratio if math.isfinite(ratio) else np.nan,
        "polarisation_index": h["polarisation_index"][1],
        "upward_rate": h["mean_upward_rate"] if h["mean_upward_rate"] is not None else np.nan,
        "hollowed": float(h["hollowed"]),
        "cost_per_additional_upward_move": np.nan if cost is None else cost,
        "middle_shrinks": float(h["middle_shrinks"]),
        "stuck_share": _number(h["stuck_share"]),
        "stuck_share_small": _number(h["stuck_share_small"]),
        "competence_gap": _number(h["competence_gap"][1]),
        "gap_widens": _number(h["competence_gap_widens"]),
    }


def _number(x: float | bool | None) -> float:
    return np.nan if x is None else float(x)


def run_batch(batch: Batch) -> pd.DataFrame:
    rows = []
    for point, replicate, seed, overrides in batch.runs:
        params = make_params({**batch.base, **overrides, "seed": seed}, f"point {point}")
        rows.append({"point": point, "replicate": replicate, "seed": seed, **run_outputs(params)})
    return pd.DataFrame(rows)


def _fingerprint(base: dict, points: Sequence[dict], replications: int) -> str:
    text = json.dumps([base, list(points), replications], sort_keys=True, default=float)
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
    """Indicators of every (point, replicate), one row each, sorted; resumes from `out`."""
    out = Path(out)
    base = {k: v for k, v in scenario.params.model_dump().items() if k != "seed"}
    seeds = replicate_seeds(scenario.params.seed, replications)
    fingerprint = _fingerprint(base, points, replications)
    manifest = out / MANIFEST
    if manifest.exists() and json.loads(manifest.read_text())["fingerprint"] != fingerprint:
        raise ExecutionError(
            f"{out} holds an experiment with other points, parameters or replications; "
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
