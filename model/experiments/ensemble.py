"""Ensembles: replications of one or more scenarios, run in parallel on this machine or on a
Dask cluster, each finished run persisted at once so that nothing is lost and a rerun resumes.

Layout of an ensemble folder::

    ensemble.json                       the design: scenarios, their parameters, the replication
                                        seeds and a hash of every run's parameters and seed
    runs/<scenario>/rep-0000/           one finished run: stage_shares, transitions, indicators,
                                        levers and economics as Parquet (columns scenario, replicate, seed
                                        first), summary.json and _checksums.json (written last)
    runs.parquet                        one row per finished run: scenario, replicate, seed,
                                        every parameter and the headline outcomes

Together the runs' files of one table form one Parquet dataset (`load_ensemble` reads them).
A folder is bound to its design: a rerun resumes it, more replications or more scenarios extend
it, anything else is refused. A run whose files do not match their checksums is recomputed.
One process writes into a folder at a time (an advisory lock).

Replication seeds are spawned from each scenario's seed (`numpy.random.SeedSequence.spawn`), so
the same command gives identical results whatever the executor and the number of workers, and
scenarios that share a seed share their replication seeds (common random numbers).

A posterior-predictive ensemble (`posterior=`) draws each replicate's parameter set from the
fit's weighted sample (`mittelbau.experiments.posterior`), with generators spawned from the
scenario's seed as well; the manifest names the sample (file, SHA-256, particles, seeds per
draw), each run's summary.json and runs.parquet row its draw, particle and drawn parameters.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mittelbau.core.outcomes import OUTCOMES
from mittelbau.core.scenario import Scenario, check_name, make_params
from mittelbau.experiments.executors import ExecutionError, check, dask_workers, execute, failure_report
from mittelbau.experiments.outputs import SUMMARY_SCHEMA, RunResult
from mittelbau.experiments.posterior import Posterior, draws_needed
from mittelbau.experiments.runs import BATCH_SIZE, simulate, simulate_batch
from mittelbau.experiments.store import (
    LOCK,
    FolderError,
    damage,
    design_hash,
    empty_folder,
    folder_lock,
    json_text,
    remove_stale,
    write_json,
    write_unit,
)

MANIFEST = "ensemble.json"
FORMAT = 2  # version of the folder layout (Parquet runs with checksums, design hashes)


class HorizonError(ValueError):
    """The scenarios of one ensemble have different horizons."""


def one_horizon(scenarios: Sequence[Scenario]) -> None:
    """The scenarios of an ensemble are compared at one horizon (its report, figures and
    differences read every scenario's years from 2015 to it): refuse scenarios whose `years`
    differ, naming each."""
    years = {s.name: s.params.years for s in scenarios}
    if len(set(years.values())) > 1:
        said = ", ".join(f"{name} {n}" for name, n in years.items())
        raise HorizonError(
            f"scenarios with years = {said}; allowed: one horizon for all scenarios of an "
            "ensemble (set it with --set years=N, or run them apart)"
        )


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
    # a posterior-predictive run: its draw, particle and the parameters it drew (None: plain)
    posterior: dict[str, Any] | None = None

    @property
    def folder(self) -> str:
        return f"runs/{self.scenario}/rep-{self.replicate:04d}"

    def describe(self) -> str:
        drawn = "" if self.posterior is None else f"posterior draw {self.posterior['draw']}, "
        return (
            f"scenario {self.scenario!r}, replicate {self.replicate}, seed {self.seed}, "
            f"{drawn}overrides {self.overrides}"
        )


def replicate_seeds(seed: int, replications: int) -> list[int]:
    """Seeds of replicates 0..n−1, spawned from `seed`; replicate r's seed does not depend on n."""
    children = np.random.SeedSequence(seed).spawn(replications)
    return [int(c.generate_state(1, dtype=np.uint32)[0]) for c in children]


def plan(
    scenarios: Sequence[Scenario],
    replications: int,
    posterior: Posterior | None = None,
    seeds_per_draw: int = 1,
) -> list[RunSpec]:
    """Every run of the design. With a posterior sample, replicate r takes the parameter set
    of draw r // seeds_per_draw on top of the scenario; a parameter the scenario (or --set)
    sets explicitly keeps the scenario's value and is not drawn."""
    names = [check_name(s.name, "scenario") for s in scenarios]
    if len(set(names)) != len(names):
        raise EnsembleError(f"scenario names must differ within an ensemble; got {names}")
    if replications < 1:
        raise EnsembleError(f"--replications = {replications} is invalid; allowed: 1 or more")
    if seeds_per_draw < 1:
        raise EnsembleError(f"--seeds-per-draw = {seeds_per_draw} is invalid; allowed: 1 or more")
    specs = []
    for s in scenarios:
        overrides = {k: v for k, v in s.overrides.items() if k != "seed"}
        seeds = replicate_seeds(s.params.seed, replications)
        if posterior is None:
            specs += [RunSpec(s.name, s.description, overrides, r, seed) for r, seed in enumerate(seeds)]
            continue
        particles = posterior.draws(s.params.seed, draws_needed(replications, seeds_per_draw))
        held = sorted(set(posterior.names) & set(overrides))
        for r, seed in enumerate(seeds):
            draw = r // seeds_per_draw
            drawn = {k: v for k, v in posterior.values[particles[draw]].items() if k not in held}
            record = {"draw": draw, "particle": particles[draw], "parameters": drawn, "held": held}
            specs.append(RunSpec(s.name, s.description, drawn | overrides, r, seed, record))
    return specs


def _scenario(spec: RunSpec) -> Scenario:
    params = make_params({**spec.overrides, "seed": spec.seed}, f"scenario {spec.scenario!r}")
    return Scenario(spec.scenario, spec.description, params, {**spec.overrides, "seed": spec.seed})


def run_replicate(spec: RunSpec) -> RunResult:
    """Run one replicate (in a worker process or on a Dask worker)."""
    return simulate(_scenario(spec))


TABLES = ("stage_shares", "transitions", "indicators", "levers", "economics")
RUNS_TABLE = "runs.parquet"
# column types of the tables whose rows may be none (a run without levers has no lever rows)
TYPES = {
    "levers": {
        "year": "int64",
        "lever": "str",
        "spent_eur": "float64",
        "firms_reached": "int64",
        "upward_moves": "int64",
        "deadweight": "int64",
    }
}


def run_parameters(spec: RunSpec) -> dict[str, Any]:
    """Every parameter of a run, its seed included."""
    return make_params({**spec.overrides, "seed": spec.seed}, f"scenario {spec.scenario!r}").model_dump()


def run_design(spec: RunSpec) -> str:
    """The hash that binds a run's files to its scenario, full parameters and seed."""
    return design_hash({"scenario": spec.scenario, "parameters": run_parameters(spec)})


def _manifest(
    scenarios: Sequence[Scenario],
    replications: int,
    specs: list[RunSpec],
    posterior: Posterior | None = None,
    seeds_per_draw: int = 1,
) -> dict[str, Any]:
    drawn = {}
    if posterior is not None:  # only a posterior ensemble's manifest has the key
        drawn = {"posterior": posterior.describe() | {"seeds_per_draw": seeds_per_draw}}
    return drawn | {
        "format": FORMAT,
        # what each run's files hold: runs of another version are not resumed beside new ones
        "summary_schema": SUMMARY_SCHEMA,
        "outcomes": list(OUTCOMES),
        "replications": replications,
        "scenarios": {
            s.name: {
                "description": s.description,
                "parameters": s.params.model_dump(),
                "seeds": replicate_seeds(s.params.seed, replications),
            }
            for s in scenarios
        },
        "runs": {spec.folder: run_design(spec) for spec in specs},
    }


def _read_manifest(out: Path) -> dict[str, Any] | None:
    path = out / MANIFEST
    if not path.exists():
        return None
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
        if old.get("format") != FORMAT or not isinstance(old.get("runs"), dict):
            raise ValueError("other format")
    except (OSError, ValueError, AttributeError):
        raise FolderError(
            f"{out} holds an {MANIFEST} this version cannot read (unreadable, or written by "
            "another version); allowed: an ensemble folder of this version (to run into: "
            "another --out, or --overwrite)"
        ) from None
    return old


def _differences(old: dict[str, Any], new: dict[str, Any]) -> str | None:
    """What keeps the new design from resuming or extending the old one, or None."""
    for name, before in old["scenarios"].items():
        now = new["scenarios"].get(name)
        if now is None:
            return f"it holds scenario {name!r}, which this command does not run"
        changed = [
            f"{k} {before['parameters'].get(k)!r} there, {v!r} asked"
            for k, v in now["parameters"].items()
            if before["parameters"].get(k) != v
        ]
        if changed:
            return f"it holds scenario {name!r} with other parameters ({'; '.join(changed)})"
    if old.get("posterior") != new.get("posterior"):
        return "it was run with another posterior sample or design (or none)"
    if new["replications"] < old["replications"]:
        return f"it holds {old['replications']} replications per scenario, {new['replications']} asked"
    differ = [k for k, h in old["runs"].items() if new["runs"].get(k) != h]
    if differ:
        return f"its run {differ[0]} was made with other parameters or seed"
    return None


def _check_folder(out: Path, manifest: dict[str, Any], overwrite: bool) -> None:
    """A folder holds one ensemble design: the same (resume) or a strict extension of it."""
    if overwrite:
        empty_folder(out)
        return
    old = _read_manifest(out)
    if old is None:
        other = sorted(e.name for e in out.iterdir() if e.name != LOCK)
        if other:
            raise FolderError(
                f"{out} holds other files ({', '.join(other[:3])}{', …' if len(other) > 3 else ''}) "
                "and no ensemble; allowed: an empty or new folder, an ensemble folder, or --overwrite"
            )
        return
    if (
        old.get("summary_schema", 1) != manifest["summary_schema"]
        or old.get("outcomes") != manifest["outcomes"]
    ):
        raise FolderError(
            f"{out} holds runs written by another version of mittelbau (their summaries hold other "
            "fields or outcomes than this version writes), so new runs cannot join them; allowed: "
            "another --out, or --overwrite (`mittelbau report` still reads the folder)"
        )
    why = _differences(old, manifest)
    if why is not None:
        raise FolderError(
            f"{out} is bound to another ensemble design: {why}; allowed: the same scenarios, "
            "parameters and seeds (to resume), more replications or more scenarios (to extend), "
            "another --out, or --overwrite"
        )


def headline_outcomes(summary: dict[str, Any]) -> dict[str, Any]:
    """Every outcome of the outcome registry at a run's horizon, from its summary (one row of
    an analysis table); a float outcome without a value (or an infinite one) is NaN."""
    row: dict[str, Any] = {}
    for name, value in summary["outcomes"].items():
        if OUTCOMES[name].kind is bool:
            row[name] = bool(value)
        else:
            row[name] = np.nan if value is None or not math.isfinite(value) else value
    return row


def _table(name: str, table: Any, spec: RunSpec) -> Any:
    """A run's table as an Arrow table: `scenario`, `replicate`, `seed`, then its columns, typed
    even when it has no rows."""
    import pyarrow as pa

    if name in TYPES:
        table = table.astype(TYPES[name])
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    n = arrow.num_rows
    keys = {
        "scenario": pa.array([spec.scenario] * n, pa.string()),
        "replicate": pa.array(np.full(n, spec.replicate, np.int64)),
        "seed": pa.array(np.full(n, spec.seed, np.int64)),
    }
    for k, (column, values) in enumerate(keys.items()):
        arrow = arrow.add_column(k, column, values)
    return arrow


def _summary(result: RunResult, spec: RunSpec) -> dict[str, Any]:
    """A run's summary; a posterior run's also says which draw and particle it took and the
    parameters it drew, so that it can be repeated alone."""
    if spec.posterior is None:
        return result.summary
    return result.summary | {"posterior": spec.posterior}


def _posterior_keys(summary: dict[str, Any]) -> dict[str, int]:
    """The draw and particle columns of a posterior run's row (none for a plain run)."""
    drawn = summary.get("posterior")
    return {} if drawn is None else {"draw": drawn["draw"], "particle": drawn["particle"]}


def write_ensemble_run(result: RunResult, spec: RunSpec, out: Path) -> None:
    """Write one run's tables (Parquet) and summary atomically, its checksums last."""
    import pyarrow.parquet as pq

    def fill(tmp: Path) -> None:
        for name in TABLES:
            pq.write_table(_table(name, getattr(result, name), spec), tmp / f"{name}.parquet")
        (tmp / "summary.json").write_text(json_text(_summary(result, spec)), encoding="utf-8")

    (out / spec.folder).parent.mkdir(parents=True, exist_ok=True)
    write_unit(out / spec.folder, fill, run_design(spec))


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
    """Run several replicates in one task, stepped together (`runs.simulate_batch`); when the
    batch fails, each run is retried alone and a failing run is returned as its exception."""
    scenarios = [_scenario(spec) for spec in specs]
    try:
        return list(zip(specs, simulate_batch(scenarios), strict=True))
    except Exception:  # find the failing runs: the others still count
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
    """Each run's result (or exception) as its batch finishes. Runs travel in batches of up to
    BATCH_SIZE, stepped together, and of at most half a worker's share, so every worker gets
    work; a batch lost with its worker is recomputed by Dask."""
    if executor == "dask":
        workers = dask_workers(scheduler, workers)
    size = min(BATCH_SIZE, max(1, len(specs) // (2 * workers)))
    batches = [specs[i : i + size] for i in range(0, len(specs), size)]
    warm = (lambda: _warm_caches(specs)) if executor != "dask" else None
    for batch, result in execute(run_batch, batches, executor, workers, scheduler, warm=warm):
        if isinstance(result, BaseException):
            yield from ((spec, result) for spec in batch)
        else:
            yield from result


def _write_runs_table(out: Path, specs: list[RunSpec]) -> None:
    """runs.parquet: one row per finished run with its parameters and headline outcomes."""
    import pandas as pd

    rows = []
    for spec in specs:
        path = out / spec.folder / "summary.json"
        if path.exists():
            summary = json.loads(path.read_text(encoding="utf-8"))
            params = {k: v for k, v in summary["parameters"].items() if k != "seed"}
            rows.append(
                {"scenario": spec.scenario, "replicate": spec.replicate, "seed": spec.seed}
                | _posterior_keys(summary)
                | params
                | headline_outcomes(summary)
            )
    if rows:
        tmp = out / f".{RUNS_TABLE}.tmp-{os.getpid()}"
        pd.DataFrame(rows).to_parquet(tmp, index=False)
        tmp.replace(out / RUNS_TABLE)


def run_ensemble(
    scenarios: Sequence[Scenario],
    replications: int,
    out: Path,
    executor: str = "local",
    workers: int = 1,
    scheduler: str | None = None,
    on_run: Callable[[RunSpec, bool], None] | None = None,
    on_damaged: Callable[[str], None] | None = None,
    overwrite: bool = False,
    posterior: Posterior | None = None,
    seeds_per_draw: int = 1,
) -> dict[str, int]:
    """Run every replicate of every scenario not yet in `out`, persisting each as it finishes.

    Returns counts {"planned", "skipped", "ran", "failed", "recomputed"}; raises FolderError
    (before any run) when `out` is locked or bound to another design, and EnsembleError after
    all runs if any failed, naming each failed run's scenario, replicate, seed and overrides.
    A run on disk whose files do not match their checksums is recomputed and reported through
    `on_damaged(message)`. `on_run(spec, ok)` is called after each finished run (for progress).
    With `posterior`, each replicate draws its parameter set from the sample (see `plan`).
    Scenarios of other horizons are refused before anything is written (`one_horizon`).
    """
    if isinstance(scenarios, Scenario) or not all(isinstance(s, Scenario) for s in scenarios):
        raise TypeError(
            "scenarios: allowed: a list of Scenario (load_scenario), one of them for one scenario"
        )
    if isinstance(replications, bool) or not isinstance(replications, int | np.integer):
        raise TypeError(f"replications = {replications!r}; allowed: an integer of 1 or more")
    check(executor, workers, scheduler)
    one_horizon(scenarios)
    out = Path(out)
    specs = plan(scenarios, replications, posterior, seeds_per_draw)
    manifest = _manifest(scenarios, replications, specs, posterior, seeds_per_draw)
    with folder_lock(out):
        _check_folder(out, manifest, overwrite)
        remove_stale(out)
        write_json(out / MANIFEST, manifest)
        for folder in (out / "runs").glob("*"):
            remove_stale(folder)
        todo, damaged = [], []
        for spec in specs:
            why = damage(out / spec.folder, manifest["runs"][spec.folder])
            if why is None:
                continue
            todo.append(spec)
            if why != "missing":
                damaged.append(spec)
                if on_damaged is not None:
                    on_damaged(f"{spec.folder} is damaged ({why}); it is recomputed")
        failures: list[tuple[str, BaseException]] = []
        for spec, result in _results(todo, executor, workers, scheduler) if todo else ():
            if isinstance(result, BaseException):
                failures.append((spec.describe(), result))
            else:
                write_ensemble_run(result, spec, out)
            if on_run is not None:
                on_run(spec, not isinstance(result, BaseException))
        _write_runs_table(out, specs)
    counts = {
        "planned": len(specs),
        "skipped": len(specs) - len(todo),
        "ran": len(todo) - len(failures),
        "failed": len(failures),
        "recomputed": len(damaged),
    }
    if failures:
        raise EnsembleError(
            failure_report(failures, len(todo), "runs", "rerun the same command to retry them")
        )
    return counts


def load_ensemble(out: str | Path) -> dict[str, Any]:
    """All finished runs of an ensemble folder as one table each (columns `scenario`,
    `replicate`, `seed` first), `runs` (one row per run: parameters and headline outcomes),
    `summaries` (one per run) and the manifest. Runs of the design not yet finished are left
    out; a run whose files do not match their checksums is an error, never used."""
    import pandas as pd
    import pyarrow.dataset as ds

    out = Path(out)
    manifest = _read_manifest(out)
    if manifest is None:
        raise EnsembleError(f"{out} holds no ensemble ({MANIFEST} missing)")
    finished, summaries, rows = [], [], []
    for folder, design in manifest["runs"].items():
        why = damage(out / folder, design)
        if why == "missing":
            continue
        if why is not None:
            raise EnsembleError(
                f"run {out / folder} is damaged ({why}); rerun the ensemble's command to recompute it"
            )
        summary = json.loads((out / folder / "summary.json").read_text(encoding="utf-8"))
        name, rep = folder.split("/")[1], int(folder.rsplit("rep-", 1)[1])
        keys = {"scenario": name, "replicate": rep, "seed": summary["seed"]}
        summaries.append({**keys, "summary": summary})
        params = {k: v for k, v in summary["parameters"].items() if k != "seed"}
        rows.append(keys | _posterior_keys(summary) | params | headline_outcomes(summary))
        finished.append(out / folder)
    tables: dict[str, Any] = {}
    for name in TABLES:
        files = [str(f / f"{name}.parquet") for f in finished]
        tables[name] = ds.dataset(files, format="parquet").to_table().to_pandas() if files else pd.DataFrame()
    return {**tables, "runs": pd.DataFrame(rows), "summaries": summaries, "manifest": manifest}


__all__ = [
    "EnsembleError",
    "FolderError",
    "RunSpec",
    "headline_outcomes",
    "load_ensemble",
    "plan",
    "replicate_seeds",
    "run_ensemble",
]
