"""Many parameter points × replicates of one scenario, keeping only the outcomes at the horizon.

Used by sensitivity analysis and scenario discovery. Work is cut into batches of runs in a
fixed order, sent to the workers up to eight batches at a time (`pieces`; their points' run-ups
solved together first); each finished batch is written at once as `batches/batch-NNNNNN/` (a
Parquet file of its runs — scenario, point, replicate, seed and the outcomes — and its
checksums, written last, then renamed into place), and the whole table, every run's parameters
added from the design, as `runs.parquet` when all batches are done, so an interrupted
experiment resumes with the missing batches when the same command is run into the same folder,
and a batch whose file does not match its checksum is recomputed. The folder's manifest binds
it to its design (a hash of every batch's parameters and seeds); one process writes into it at
a time. A design that continues the folder's (more points, the first ones those of the folder's
design: a Sobol or Morris sample grown from the same seed) is run into it too, keeping the runs
it holds, and so is one with more replications (their runs come after the folder's:
`run_order`). Replicate r of every point uses the same seed (spawned from the scenario seed,
the same whatever the number of replications): common random numbers across points.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mittelbau.core.inert_parameters import outcome_key
from mittelbau.core.outcomes import OUTCOMES, definitions
from mittelbau.core.runup import CACHE_SIZE, runup_key, solve_runups
from mittelbau.core.scenario import Params, Scenario, make_params
from mittelbau.experiments.ensemble import headline_outcomes, replicate_seeds
from mittelbau.experiments.executors import ExecutionError, check, dask_workers, execute, failure_report
from mittelbau.experiments.runs import simulate_outcomes, simulate_outcomes_batch
from mittelbau.experiments.store import (
    FolderError,
    damage,
    design_hash,
    folder_lock,
    remove_stale,
    write_file,
    write_json,
    write_unit,
)

MANIFEST = "experiment.json"
RUNS = "runs.parquet"  # every run: scenario, point, replicate, seed, every parameter, the outcomes
FORMAT = 4  # version of the folder layout (Parquet batches of the distinct runs' outcomes, checksums)
# why a folder written by another version cannot be continued, and what it can be used for
OTHER_VERSION = "it was written by another version of mittelbau (other outcomes or layout)"
ALLOWED_OTHER_VERSION = "allowed: another --out, or --overwrite to replace it"
# what a folder holding another experiment design can be used for
ALLOWED_FOLDER = (
    "allowed: the same command (to resume), the same design with more replications, a "
    "sensitivity study with more --samples or --trajectories (each continues the runs the folder "
    "holds), another --out, or --overwrite to replace it"
)
BATCH_RUNS = 16  # runs per batch: the unit of persistence and of runs stepped together
# batches sent to a worker as one piece of work, their points' run-ups solved together first: a
# batch of a Sobol design brings one or two new run-ups, eight batches most of a base sample's
GROUP_BATCHES = 8


@dataclass(frozen=True)
class Batch:
    index: int
    scenario: str
    base: dict[str, Any]
    runs: tuple[tuple[int, int, int, dict[str, Any]], ...]  # point, replicate, seed, overrides


def run_outputs(params: Params) -> dict[str, bool | float]:
    """Run one parameter set and return every outcome of the outcome registry at the horizon."""
    return headline_outcomes({"outcomes": simulate_outcomes(Scenario("point", "", params))})


def run_params(batch: Batch, run: tuple[int, int, int, dict[str, Any]]) -> Params:
    """A run's parameters: the experiment's base, its point's overrides and its seed."""
    point, _replicate, seed, overrides = run
    return make_params({**batch.base, **overrides, "seed": seed}, f"point {point}")


def run_batch(batch: Batch) -> pd.DataFrame:
    """The runs of a batch, stepped together (`runs.simulate_outcomes_batch`): scenario, point,
    replicate, seed, the outcomes (the parameters are the design's: `evaluate_points` adds
    them)."""
    results = simulate_outcomes_batch([Scenario("point", "", run_params(batch, run)) for run in batch.runs])
    return pd.DataFrame(
        [
            {"scenario": batch.scenario, "point": point, "replicate": replicate, "seed": seed}
            | headline_outcomes({"outcomes": result})
            for (point, replicate, seed, _), result in zip(batch.runs, results, strict=True)
        ]
    )


def run_group(batches: tuple[Batch, ...]) -> list[pd.DataFrame | Exception]:
    """The batches of a piece of work, one after the other (`run_batch`; a batch that fails
    gives its exception, the others their tables), after the run-ups of all their points are
    solved together (`runup.solve_runups`, which gives each exactly its run-up solved alone):
    one root finder over many points costs less per point than over the one or two new ones
    of a batch."""
    with contextlib.suppress(Exception):  # a point whose run-up fails: its batch reports it
        presolve(batches)
    results: list[pd.DataFrame | Exception] = []
    for batch in batches:
        try:
            results.append(run_batch(batch))
        except Exception as exc:  # reported per batch, the others kept
            results.append(exc)
    return results


def pieces(batches: Sequence[Batch], workers: int) -> list[tuple[Batch, ...]]:
    """The batches cut into pieces of work of up to GROUP_BATCHES consecutive batches, smaller
    where that leaves each of several workers fewer than four pieces (so that they finish
    together)."""
    size = GROUP_BATCHES if workers <= 1 else max(1, min(GROUP_BATCHES, len(batches) // (4 * workers)))
    return [tuple(batches[k : k + size]) for k in range(0, len(batches), size)]


def presolve(batches: Sequence[Batch]) -> None:
    """Solve (and cache) the distinct run-ups of the batches' points together, one solve per
    region and run-up start: as many as the cache keeps (`runup.CACHE_SIZE`), in the order of
    the runs (the batches that come later solve the rest themselves)."""
    distinct: dict[tuple, Params] = {}
    for batch in batches:
        for run in batch.runs:
            params = run_params(batch, run)
            distinct.setdefault(runup_key(params.region, params), params)
    groups: dict[tuple[str, int], list[Params]] = {}
    for params in list(distinct.values())[:CACHE_SIZE]:
        groups.setdefault((params.region, params.runup_start_year), []).append(params)
    for (region, _), params in groups.items():
        solve_runups(region, params)


def sources(params: Sequence[Params]) -> list[int]:
    """Each run's source: the first of `params` with its outcome key
    (`core.inert_parameters.outcome_key`), whose outcomes it has; a run is its own source
    unless it differs from an earlier run only in parameters its outcomes do not read."""
    first: dict[tuple, int] = {}
    return [first.setdefault(outcome_key(p), i) for i, p in enumerate(params)]


def with_parameters(runs: pd.DataFrame, parameters: pd.DataFrame) -> pd.DataFrame:
    """The runs' table (scenario, point, replicate, seed, outcomes) with each run's parameters
    (`parameters`, one row per run, in order, without the seed: the run's) after its seed."""
    ids = ["scenario", "point", "replicate", "seed"]
    return pd.concat(
        [
            runs[ids].reset_index(drop=True),
            parameters.reset_index(drop=True),
            runs.drop(columns=ids).reset_index(drop=True),
        ],
        axis=1,
    )


def _scenario_differences(old: dict[str, Any], new: dict[str, Any]) -> str | None:
    """What keeps a folder's design (`old`) from being continued whatever the points and
    replications asked: another version, other scenario parameters, another scenario seed;
    None when nothing does."""
    if old.get("format") != FORMAT or list(old.get("outcomes", {})) != list(new["outcomes"]):
        return OTHER_VERSION
    if old["base"] != new["base"]:
        keys = sorted(k for k in new["base"] if old["base"].get(k) != new["base"][k])
        return (
            "other scenario parameters ("
            + ", ".join(f"{k} {old['base'].get(k)!r} there, {new['base'][k]!r} asked" for k in keys)
            + ")"
        )
    if old["seeds"][: len(new["seeds"])] != new["seeds"][: len(old["seeds"])]:
        return "other replicate seeds (another scenario seed)"
    return None


def _design_differences(old: dict[str, Any], new: dict[str, Any]) -> str:
    why = _scenario_differences(old, new)
    if why is not None:
        return why
    if "factors" in old and old["factors"] != new["factors"]:
        there, asked = (", ".join(d["factors"]) or "none" for d in (old, new))
        return f"other factors ({there} there; {asked} asked)"
    for key in ("points", "replications"):
        if old[key] > new[key]:
            return f"fewer {key} ({old[key]} there, {new[key]} asked)"
    return f"other factor values at some of the {old['points']} points there"


def _allowed(why: str) -> str:
    return ALLOWED_OTHER_VERSION if why == OTHER_VERSION else ALLOWED_FOLDER


def check_scenario_of(scenario: Scenario, out: str | Path, points: Sequence[dict[str, Any]]) -> int | None:
    """Refuse, before anything runs, a folder holding an experiment that a design of these
    `points` could not continue whatever its replications: another scenario, version, outcome
    list or scenario seed, other factors, more points, or other values at its points
    (`evaluate_points` checks the whole design when it starts; a study checks this before its
    pilot, which chooses the replications). Returns the replications the folder's design has
    (None without one, or with a manifest `evaluate_points` will call unreadable)."""
    path = Path(out) / MANIFEST
    if not path.exists():
        return None
    overrides = [dict(p) for p in points]
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
        base = {k: v for k, v in scenario.params.model_dump().items() if k != "seed"}
        new = {
            "base": base,
            "outcomes": definitions(),
            "seeds": replicate_seeds(scenario.params.seed, 1),
            "factors": sorted({k for o in overrides for k in o}),
            "points": len(overrides),
            "replications": int(old["replications"]),  # any: the pilot chooses them
        }
        why = _scenario_differences(old, new)
        if why is None and (
            ("factors" in old and old["factors"] != new["factors"])
            or old["points"] > new["points"]
            or old.get("points_hash") not in (None, design_hash(overrides[: old["points"]]))
        ):
            why = _design_differences(old, new)
    except (OSError, ValueError, KeyError, TypeError):
        return None  # an unreadable manifest: `evaluate_points` says so
    if why is not None:
        raise FolderError(f"{out} holds an experiment of another design: {why}; {_allowed(why)}")
    return new["replications"]


def _extends(old: dict[str, Any], new: dict[str, Any], overrides: Sequence[dict[str, Any]]) -> bool:
    """Whether the design of `new` (its points' `overrides`) continues that of `old`: the same
    scenario parameters and outcomes, at least its points and replications (more of one or
    both), its points and replicate seeds first, and every batch of `old` but its last (which
    may have been partial) a batch of `new` at the same place: a Sobol or Morris design grown
    from the same sample seed (its first points are those of the smaller design), or any design
    with more replications (`run_order`: the runs they add come after those of `old`)."""
    try:
        same = all(old[k] == new[k] for k in ("format", "base"))
        kept = old["batches"][:-1]
        return (
            same
            and list(old["outcomes"]) == list(new["outcomes"])
            and new["seeds"][: len(old["seeds"])] == old["seeds"]
            and old["points"] <= new["points"]
            and old["replications"] <= new["replications"]
            and (old["points"], old["replications"]) != (new["points"], new["replications"])
            and old.get("points_hash") in (None, design_hash(list(overrides[: old["points"]])))
            and new["batches"][: len(kept)] == kept
        )
    except (KeyError, TypeError):
        return False


def _stands_for(batch: Batch, distinct: list[int], stands_for: Counter) -> int:
    """The runs of the design whose outcomes the batch's runs give (`evaluate_points`)."""
    k = batch.index * BATCH_RUNS
    return sum(stands_for[i] for i in distinct[k : k + len(batch.runs)])


def run_order(segments: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """(point, replicate) of every run of a design grown through `segments`, the (points,
    replications) of the design after each growth, each at least the one before in both: the
    first design's runs point by point, then what each growth adds (its new points with the
    replicates before, point by point, then its new replicates of every point, point by point).
    A design grown in points alone runs in the order of the same design run afresh."""
    order: list[tuple[int, int]] = []
    points = replications = 0
    for more_points, more_replications in segments:
        order += [(p, r) for p in range(points, more_points) for r in range(replications)]
        order += [(p, r) for p in range(more_points) for r in range(replications, more_replications)]
        points, replications = more_points, more_replications
    return order


def _segments(old: dict[str, Any] | None, points: int, replications: int) -> list[tuple[int, int]]:
    """The growths (`run_order`) of a design of `points` × `replications` run into a folder
    holding the design of manifest `old` (None: none): those of the folder's design, then this
    one where it has at least its points and replications (the first design grown where it is
    the only one and the replications stay), or else this design alone."""
    try:
        grown = [(int(p), int(r)) for p, r in old.get("segments", [[old["points"], old["replications"]]])]
    except (AttributeError, KeyError, TypeError, ValueError):
        return [(points, replications)]
    last_points, last_replications = grown[-1]
    if points < last_points or replications < last_replications:
        return [(points, replications)]
    if (points, replications) == grown[-1]:
        return grown  # the folder's design: resumed
    if len(grown) == 1 and replications == last_replications:
        grown[-1] = (points, replications)  # more points alone: in the order of a fresh design
    else:
        grown.append((points, replications))
    return grown


def evaluate_points(
    scenario: Scenario,
    points: Sequence[dict[str, Any]],
    replications: int,
    out: str | Path,
    executor: str = "local",
    workers: int = 1,
    scheduler: str | None = None,
    on_batch: Callable[[int], None] | None = None,
    on_damaged: Callable[[str], None] | None = None,
    reuse_equal_runs: bool = True,
    on_kept: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """The outcomes (registry `OUTCOMES`) of every (point, replicate), one row each, sorted;
    resumes from `out`, or continues the smaller design there (`_extends`: more points, more
    replications or both; its runs are kept, the others run after them, `run_order`). A run
    whose seed and every parameter its outcomes read equal those of an earlier run of the
    design (`core.inert_parameters.outcome_key`: it differs only in parameters that do not act,
    such as a switched-off mechanism's) is not run again but given that run's outcomes, unless
    `reuse_equal_runs` is False; `on_batch` is told the runs a batch stands for, `on_kept` once
    (before any run, when there are such) the runs whose outcomes the folder already holds. A
    batch on disk that does not match its checksum is recomputed (`on_damaged` is told). The work
    is cut for the `workers` given, on a running Dask cluster (`scheduler`) for its workers."""
    check(executor, workers, scheduler)  # before the folder is touched
    if executor == "dask":
        workers = dask_workers(scheduler, workers)
    out = Path(out)
    base = {k: v for k, v in scenario.params.model_dump().items() if k != "seed"}
    seeds = replicate_seeds(scenario.params.seed, replications)
    overrides = [dict(point) for point in points]
    # each point's parameters once (replicate r of every point has seed seeds[r]), its source
    # the first point with its outcome key: all its replicates have that point's outcomes
    seed = scenario.params.seed
    at = [make_params({**base, **o, "seed": seed}, f"point {p}") for p, o in enumerate(overrides)]
    point_source = sources(at) if reuse_equal_runs else list(range(len(at)))
    dumps = [p.model_dump() for p in at]
    path = out / MANIFEST
    points_hash = design_hash(overrides)

    def design(segments: list[tuple[int, int]]) -> tuple[list, list[int], list[int], list[Batch], dict]:
        """The runs in the order of `segments`, each run's source (the run whose outcomes it
        has: the same replicate of its point's source, never later in that order), the distinct
        runs, their batches and the manifest."""
        runs = [(p, r, seeds[r], overrides[p]) for p, r in run_order(segments)]
        place = {(p, r): i for i, (p, r, _, _) in enumerate(runs)}
        source = [place[point_source[p], r] for p, r, _, _ in runs]
        distinct = [i for i, s in enumerate(source) if s == i]
        batches = [
            Batch(b, scenario.name, base, tuple(runs[i] for i in distinct[k : k + BATCH_RUNS]))
            for b, k in enumerate(range(0, len(distinct), BATCH_RUNS))
        ]
        designs = [
            design_hash([{**dumps[run[0]], "seed": run[2]} for run in batch.runs]) for batch in batches
        ]
        manifest = {
            "format": FORMAT,
            # the outcomes recorded belong to the design: another outcome list is another experiment
            "fingerprint": design_hash([designs, source, list(OUTCOMES)]),
            "scenario": scenario.name,
            "points": len(points),
            "replications": replications,
            "distinct_runs": len(distinct),  # the runs run; the others have the outcomes of one of them
            "seeds": seeds,
            "base": base,
            "batches": designs,
            "outcomes": definitions(),
            "points_hash": points_hash,  # of every point's overrides: a continuation starts with them
            "factors": sorted({k for o in overrides for k in o}),  # the parameters the points set
        }
        if len(segments) > 1:  # grown in replications: the order of its runs (`run_order`)
            manifest["segments"] = [list(s) for s in segments]
        return runs, source, distinct, batches, manifest

    def folder(b: Batch) -> Path:
        return out / "batches" / f"batch-{b.index:06d}"

    with folder_lock(out):
        grown = None  # the smaller design this one continues: its batches
        old, why = None, None
        if path.exists():
            try:
                old = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                why = f"its {MANIFEST} is unreadable"
        runs, source, distinct, batches, manifest = design(_segments(old, len(points), replications))
        if old is not None:
            try:
                same = old["fingerprint"] == manifest["fingerprint"] or _extends(old, manifest, overrides)
                why = None if same else _design_differences(old, manifest)
                if old["fingerprint"] != manifest["fingerprint"]:
                    grown = old["batches"]
            except (KeyError, TypeError):
                why = f"its {MANIFEST} is unreadable"
        if why is not None:
            raise FolderError(f"{out} holds an experiment of another design: {why}; {_allowed(why)}")
        designs = manifest["batches"]
        stands_for = Counter(source)  # runs each distinct run gives its outcomes to, itself included
        (out / "batches").mkdir(parents=True, exist_ok=True)
        remove_stale(out)
        if grown is not None:
            # what belongs to the smaller design alone goes before the manifest changes: its
            # table, and its last batch where that was partial (another batch of this design)
            (out / RUNS).unlink(missing_ok=True)
            last = len(grown) - 1  # a design continuing it has at least as many batches
            if grown and designs[last] != grown[last]:
                shutil.rmtree(folder(batches[last]), ignore_errors=True)
        write_json(path, manifest)
        remove_stale(out / "batches")
        todo = []
        for b in batches:
            why = damage(folder(b), designs[b.index])
            if why is None:
                continue
            todo.append(b)
            if why != "missing" and on_damaged is not None:
                on_damaged(f"{folder(b)} is damaged ({why}); it is recomputed")
        if on_kept is not None and len(todo) < len(batches):
            on_kept(len(runs) - sum(_stands_for(b, distinct, stands_for) for b in todo))
        failures = []
        for group, results in execute(run_group, pieces(todo, workers), executor, workers, scheduler):
            if isinstance(results, BaseException):  # the piece of work failed as a whole
                results = [results] * len(group)
            for batch, result in zip(group, results, strict=True):
                if isinstance(result, BaseException):
                    first = batch.runs[0]
                    failures.append(
                        (
                            f"batch {batch.index} (points {first[0]}–{batch.runs[-1][0]}, "
                            f"seeds {sorted({r[2] for r in batch.runs})})",
                            result,
                        )
                    )
                else:
                    write_unit(
                        folder(batch),
                        lambda tmp, table=result: table.to_parquet(tmp / "runs.parquet", index=False),
                        designs[batch.index],
                    )
                if on_batch is not None:
                    on_batch(_stands_for(batch, distinct, stands_for))
        if failures:
            raise ExecutionError(failure_report(failures, len(todo), "batches", "rerun to retry them"))
        frames = [pd.read_parquet(folder(b) / "runs.parquet") for b in batches]
        ran = pd.concat(frames, ignore_index=True)
        row = {i: k for k, i in enumerate(distinct)}
        table = ran.iloc[[row[s] for s in source]].reset_index(drop=True)
        for k, column in enumerate(("point", "replicate", "seed")):
            table[column] = [run[k] for run in runs]
        per_point = pd.DataFrame([{k: v for k, v in d.items() if k != "seed"} for d in dumps])
        table = with_parameters(table, per_point.loc[[run[0] for run in runs]])
        table = table.sort_values(["point", "replicate"]).reset_index(drop=True)
        write_file(out / RUNS, lambda tmp: table.to_parquet(tmp, index=False))
    return table
