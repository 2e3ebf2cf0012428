"""Ensembles: replications of one or more scenarios, run in parallel on this machine or on a
Dask cluster, each finished run persisted at once so that nothing is lost and a rerun resumes.

Layout of an ensemble folder::

    ensemble.json                       scenarios, their parameters and the replication seeds
    runs/<scenario>/rep-0000/           one finished run: the tables of a single run and its
                                        summary.json (written to a temporary folder, then renamed)

Replication seeds are spawned from each scenario's seed (`numpy.random.SeedSequence.spawn`), so
the same command gives identical results whatever the executor and the number of workers, and
scenarios that share a seed share their replication seeds (common random numbers).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mittelbau.core.scenario import Scenario, make_params
from mittelbau.experiments.executors import ExecutionError, check, dask_workers, execute, listing
from mittelbau.experiments.outputs import RunResult, write_run
from mittelbau.experiments.runs import simulate

MANIFEST = "ensemble.json"


class EnsembleError(ExecutionError):
    """An ensemble could not run as asked, or some of its runs failed (those are listed)."""


@dataclass(frozen=True)
class RunSpec:
    """One replicate of one scenario: everything a worker needs, as plain data."""

    scenario: str
    description: str
    overrides: dict[str, Any]
    replicate: int
    seed: int

    @property
    def folder(self) -> str:
        return f"runs/{self.scenario}/rep-{self.replicate:04d}"

    def describe(self) -> str:
        return (
            f"scenario {self.scenario!r}, replicate {self.replicate}, seed {self.seed}, "
            f"overrides {self.overrides}"
        )


def replicate_seeds(seed: int, replications: int) -> list[int]:
    """Seeds of replicates 0..n−1, spawned from `seed`; replicate r's seed does not depend on n."""
    children = np.random.SeedSequence(seed).spawn(replications)
    return [int(c.generate_state(1, dtype=np.uint32)[0]) for c in children]


def plan(scenarios: Sequence[Scenario], replications: int) -> list[RunSpec]:
    names = [s.name for s in scenarios]
    if len(set(names)) != len(names):
        raise EnsembleError(f"scenario names must differ within an ensemble; got {names}")
    if replications < 1:
        raise EnsembleError(f"--replications = {replications} is invalid; allowed: 1 or more")
    specs = []
    for s in scenarios:
        overrides = {k: v for k, v in s.overrides.items() if k != "seed"}
        for r, seed in enumerate(replicate_seeds(s.params.seed, replications)):
            specs.append(RunSpec(s.name, s.description, overrides, r, seed))
    return specs


def run_replicate(spec: RunSpec) -> RunResult:
    """Run one replicate (in a worker process or on a Dask worker)."""
    params = make_params({**spec.overrides, "seed": spec.seed}, f"scenario {spec.scenario!r}")
    scenario = Scenario(spec.scenario, spec.description, params, {**spec.overrides, "seed": spec.seed})
    return simulate(scenario)


def _manifest(scenarios: Sequence[Scenario], replications: int) -> dict[str, Any]:
    return {
        "replications": replications,
        "scenarios": {
            s.name: {
                "description": s.description,
                "parameters": s.params.model_dump(),
                "seeds": replicate_seeds(s.params.seed, replications),
            }
            for s in scenarios
        },
    }


def _check_manifest(out: Path, manifest: dict[str, Any]) -> None:
    """A folder holds one ensemble: rerunning resumes it; other scenarios or parameters are an
    error rather than a silent mix. Adding replications extends it."""
    path = out / MANIFEST
    if not path.exists():
        return
    old = json.loads(path.read_text(encoding="utf-8"))
    for name, spec in manifest["scenarios"].items():
        before = old["scenarios"].get(name)
        if before is not None and before["parameters"] != spec["parameters"]:
            changed = sorted(
                k for k in spec["parameters"] if spec["parameters"][k] != before["parameters"].get(k)
            )
            raise EnsembleError(
                f"{out} already holds scenario {name!r} with other parameters ({', '.join(changed)}); "
                "allowed: the same scenarios and parameters (to resume or extend), or another --out"
            )


def completed(out: Path, spec: RunSpec) -> bool:
    return (out / spec.folder / "summary.json").exists()


def _warm_caches(specs: list[RunSpec]) -> None:
    """Load the region data, traits and fitted propensities each run needs, and solve each
    scenario's run-up, once, here."""
    from mittelbau.core.population import synthesise
    from mittelbau.core.region_data import load_region
    from mittelbau.core.runup import solve_runup

    every = [make_params(s.overrides) for s in specs]
    for region in sorted({p.region for p in every}):
        synthesise(load_region(region), 2, np.random.default_rng(0))
    for params in every:
        solve_runup(params.region, params)  # cached: one solution per region and run-up values


def run_batch(specs: list[RunSpec]) -> list[tuple[RunSpec, RunResult | BaseException]]:
    """Run several replicates in one task; a failing run is returned as its exception."""
    out: list[tuple[RunSpec, RunResult | BaseException]] = []
    for spec in specs:
        try:
            out.append((spec, run_replicate(spec)))
        except Exception as exc:  # reported with the run's parameters by run_ensemble
            out.append((spec, exc))
    return out


def _results(
    specs: list[RunSpec], executor: str, workers: int, scheduler: str | None
) -> Iterator[tuple[RunSpec, RunResult | BaseException]]:
    """Each run's result (or exception) as it finishes. On Dask, runs travel in batches of
    about an eighth of a worker's share, so task overhead stays small against runs of a
    fraction of a second; a batch lost with its worker is recomputed by Dask."""
    if executor != "dask":
        yield from execute(
            run_replicate, specs, executor, workers, scheduler, warm=lambda: _warm_caches(specs)
        )
        return
    size = max(1, len(specs) // (8 * dask_workers(scheduler, workers)))
    batches = [specs[i : i + size] for i in range(0, len(specs), size)]
    for batch, result in execute(run_batch, batches, executor, workers, scheduler):
        if isinstance(result, BaseException):
            yield from ((spec, result) for spec in batch)
        else:
            yield from result


def run_ensemble(
    scenarios: Sequence[Scenario],
    replications: int,
    out: Path,
    executor: str = "local",
    workers: int = 1,
    scheduler: str | None = None,
    on_run: Callable[[RunSpec, bool], None] | None = None,
) -> dict[str, int]:
    """Run every replicate of every scenario not yet in `out`, persisting each as it finishes.

    Returns counts {"planned", "skipped", "ran", "failed"}; raises EnsembleError after all runs
    if any failed, naming each failed run's scenario, replicate, seed and overrides.
    `on_run(spec, ok)` is called after each finished run (for progress).
    """
    check(executor, workers, scheduler)
    out = Path(out)
    specs = plan(scenarios, replications)
    manifest = _manifest(scenarios, replications)
    _check_manifest(out, manifest)
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    for stale in (out / "runs").glob("*/.rep-*"):  # temporary folders of interrupted writes
        shutil.rmtree(stale, ignore_errors=True)
    todo = [s for s in specs if not completed(out, s)]
    failures: list[str] = []
    for spec, result in _results(todo, executor, workers, scheduler) if todo else ():
        if isinstance(result, BaseException):
            failures.append(f"{spec.describe()}: {type(result).__name__}: {result}")
        else:
            (out / spec.folder).parent.mkdir(parents=True, exist_ok=True)
            write_run(result, out / spec.folder, figure=False)
        if on_run is not None:
            on_run(spec, not isinstance(result, BaseException))
    counts = {
        "planned": len(specs),
        "skipped": len(specs) - len(todo),
        "ran": len(todo) - len(failures),
        "failed": len(failures),
    }
    if failures:
        raise EnsembleError(
            f"{len(failures)} of {len(todo)} runs failed (the others are kept; "
            "rerun the same command to retry them):\n  " + listing(failures)
        )
    return counts


TABLES = ("stage_shares", "transitions", "indicators", "levers", "economics")


def load_ensemble(out: str | Path) -> dict[str, Any]:
    """All finished runs of an ensemble folder as one table each (columns `scenario`,
    `replicate`, `seed` added), plus `summaries` (one row per run) and the manifest."""
    import pandas as pd

    out = Path(out)
    if not (out / MANIFEST).exists():
        raise EnsembleError(f"{out} holds no ensemble ({MANIFEST} missing)")
    manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    frames: dict[str, list] = {t: [] for t in TABLES}
    summaries = []
    for name in manifest["scenarios"]:
        for folder in sorted((out / "runs" / name).glob("rep-*")):
            summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
            replicate = int(folder.name.removeprefix("rep-"))
            keys = {"scenario": name, "replicate": replicate, "seed": summary["seed"]}
            summaries.append({**keys, "summary": summary})
            for t in TABLES:
                df = pd.read_csv(folder / f"{t}.csv")
                frames[t].append(df.assign(**keys)[["scenario", "replicate", "seed", *df.columns]])
    tables = {t: (pd.concat(v, ignore_index=True) if v else pd.DataFrame()) for t, v in frames.items()}
    return {**tables, "summaries": summaries, "manifest": manifest}


__all__ = ["EnsembleError", "RunSpec", "load_ensemble", "plan", "replicate_seeds", "run_ensemble"]
