"""Sensitivity studies of the model: choose replications, run the sample through the
experiment runner, compute indices on replicate means, and write tables, figures and a page."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from SALib.sample import latin

from mittelbau.core.inert_parameters import unread_factors
from mittelbau.core.outcomes import OUTCOMES
from mittelbau.core.runup import miss_note
from mittelbau.core.scenario import Scenario
from mittelbau.experiments.experiment import MANIFEST, check_scenario_of, evaluate_points
from mittelbau.experiments.plots import save_figure
from mittelbau.experiments.sensitivity import (
    MORRIS_LEVELS,
    NOISE_SHARE,
    FactorError,
    check_size,
    design_sample,
    factors,
    held_factors,
    held_line,
    morris,
    noise_replications,
    problem,
    sample_points,
    seed_variance_share,
    sobol,
    to_overrides,
)
from mittelbau.experiments.store import FolderError, empty_folder, folder_lock, staged, write_json


def default_outputs() -> tuple[str, ...]:
    """The outcomes a study analyses unless told otherwise (marked in the outcome registry)."""
    return tuple(o.name for o in OUTCOMES.values() if o.sensitivity)


PILOT_POINTS = 16  # Latin hypercube points over the study's factors
PILOT_SEEDS = 2  # replicates of each, common random numbers
PILOT_RUNS = PILOT_POINTS * PILOT_SEEDS


def pilot_points(chosen: Sequence, seed: int) -> list[dict]:
    """The pilot's points: a Latin hypercube sample over the study's factors and ranges."""
    X = latin.sample(problem(list(chosen)), PILOT_POINTS, seed=seed)
    return [to_overrides(row, list(chosen)) for row in X]


def choose_replications(
    scenario: Scenario, chosen: Sequence, outputs: Sequence[str], out: Path, run_kw: dict
) -> tuple[int, pd.DataFrame]:
    """Run the pilot (PILOT_POINTS points × PILOT_SEEDS replicates) and pick the fewest
    replications with which the seeds make at most NOISE_SHARE of the variance of every
    output's replicate means over the points (`sensitivity.noise_replications`)."""
    points = pilot_points(chosen, scenario.params.seed)
    pilot = evaluate_points(scenario, points, PILOT_SEEDS, out / "pilot", **run_kw)
    return noise_replications(_as_numbers(pilot, outputs), outputs)


def pilot_warnings(table: pd.DataFrame, replications: int) -> list[str]:
    """Outputs the pilot saw no signal in, and those needing more replications than chosen."""
    notes = []
    for o, row in table.iterrows():
        need = row["replications_needed"]
        if not np.isfinite(need):
            notes.append(
                f"{o}: its points did not differ beyond the seeds' noise in the pilot — its "
                "indices may rank noise; it was left out of the choice of replications"
            )
        elif need > replications:
            notes.append(
                f"{o}: needs {need:.0f} replications for the seeds to make at most "
                f"{NOISE_SHARE:.0%} of its variance; {replications} (the most) were run"
            )
    return notes


def _as_numbers(runs: pd.DataFrame, outputs: Sequence[str]) -> pd.DataFrame:
    """Yes/no outcomes as 0/1, so that means and variances are shares of runs."""
    return runs.astype({o: float for o in outputs})


def _model_evaluator(scenario, chosen, replications, out, outputs, run_kw, log):
    def evaluate(X: np.ndarray) -> pd.DataFrame:
        points = [to_overrides(row, chosen) for row in X]
        runs = _as_numbers(evaluate_points(scenario, points, replications, out / "runs", **run_kw), outputs)
        log["runs"] = runs
        log["unread"] = unread_factors(scenario.params, points, [p.name for p in chosen])
        log["distinct"] = json.loads((out / "runs" / MANIFEST).read_text(encoding="utf-8"))["distinct_runs"]
        # a point's replicate mean, undefined where a replicate's outcome is (an infinite
        # hollowing ratio): the output then gets no indices and is warned about, as with one
        # replicate, rather than averaged over the replicates that have a value
        by_point = runs.groupby("point")[list(outputs)]
        complete = by_point.count().eq(by_point.size(), axis=0)
        return by_point.mean().where(complete).reset_index(drop=True)

    return evaluate


def run_study(
    method: str,
    scenario: Scenario,
    out: str | Path,
    size: int,
    factor_names: Sequence[str] | None = None,
    include_levers: bool = False,
    grouped: bool = False,
    outputs: Sequence[str] | None = None,
    replications: int | None = None,
    run_kw: dict | None = None,
    on_batch: Callable[[int], None] | None = None,
    second_order: bool = False,
    on_total: Callable[[int], None] | None = None,
    overwrite: bool = False,
) -> dict:
    """Morris (`size` trajectories) or Sobol (`size` base samples) on the model; writes
    indices.csv, the sample with its outcomes (samples.parquet, problem.json: what SALib needs
    to analyse it again), figures and sensitivity.md into `out` and returns what it found, with
    warnings where indices are missing or too uncertain to read. Everything is checked before
    anything runs or is written; one process writes into `out` at a time.

    `on_batch(runs)` is called as runs finish, pilot runs included; `on_total(runs)` with
    the number of runs the study takes: pilot and one replication per point at first, the
    exact number once the pilot has chosen the replications. `overwrite` empties `out` first
    (with its lock held)."""
    check_size(method, size)
    out = Path(out)
    outputs = default_outputs() if outputs is None else tuple(outputs)
    unknown = [o for o in outputs if o not in OUTCOMES]
    if unknown:
        raise FactorError(f"unknown output {unknown[0]!r}; allowed: {', '.join(OUTCOMES)}")
    chosen = factors(factor_names, include_levers, held=scenario.overrides, region=scenario.params.region)
    spec = problem(chosen, grouped)
    points = sample_points(method, spec, size, second_order)
    run_kw = dict(run_kw or {})
    if on_batch is not None:
        run_kw["on_batch"] = on_batch
    with folder_lock(out):
        if overwrite:
            empty_folder(out)
        _check_method_of(out, method)
        return _run_study(
            method,
            scenario,
            out,
            size,
            chosen,
            spec,
            points,
            outputs,
            replications,
            run_kw,
            second_order,
            on_total,
            held_factors(scenario.overrides, include_levers, factor_names),
        )


def _check_method_of(out: Path, method: str) -> None:
    """Refuse, before anything runs, a folder holding a study of the other method: its runs
    are another sample (Morris trajectories are no Saltelli sample), not fewer points."""
    try:
        there = json.loads((out / "problem.json").read_text(encoding="utf-8"))["method"]
    except (OSError, ValueError, KeyError, TypeError):
        return  # no study there (or no readable one): the experiment's own check follows
    if there != method:
        raise FolderError(
            f"{out} holds a {there} study, which a {method} study cannot continue; allowed: "
            f"the {there} study's command (to resume or continue it), another --out, or "
            "--overwrite to replace it"
        )


# result files a study writes only with some settings: removed when a study continuing the
# folder's does not write them
OPTIONAL_FILES = ("second_order.csv", "seed_variance.csv", "replications.csv")


def _run_study(
    method: str,
    scenario: Scenario,
    out: Path,
    size: int,
    chosen: list,
    spec: dict,
    points: int,
    outputs: tuple[str, ...],
    replications: int | None,
    run_kw: dict,
    second_order: bool,
    on_total: Callable[[int], None] | None,
    held: dict[str, object],
) -> dict:
    pilot = 0 if replications is not None else PILOT_RUNS
    if on_total is not None and replications is None:
        on_total(pilot + points)  # at least one replication per point
    cv, pilot_choice = None, None
    if replications is None:
        # before the pilot: a design it could not continue is refused; one with more
        # replications than the pilot chooses keeps them (its runs are there)
        sample = design_sample(method, spec, size, scenario.params.seed, second_order)
        points_asked = [to_overrides(row, chosen) for row in sample]
        held_replications = check_scenario_of(scenario, out / "runs", points_asked)
        replications, cv = choose_replications(scenario, chosen, outputs, out, run_kw)
        pilot_choice = replications
        replications = max(replications, held_replications or 0)
    if on_total is not None:
        on_total(pilot + points * replications)
    log: dict = {}
    evaluate = _model_evaluator(scenario, chosen, replications, out, outputs, run_kw, log)
    seed = scenario.params.seed
    if method == "morris":
        result = morris(spec, evaluate, size, seed)
        convergence = None
    else:
        result = sobol(spec, evaluate, size, seed, second_order)
        convergence = result.convergence
    # one replication per point leaves no within-point variance: the pilot's estimate stands in
    shares = seed_variance_share(log["runs"], outputs) if replications > 1 else None
    if shares is None and cv is not None:
        shares = cv["noise_share_one_run"].rename("seed_variance_share")
    notes = index_warnings(method, result.indices, outputs, shares, size, measured=replications > 1)
    if cv is not None:
        notes = pilot_warnings(cv, replications) + notes
    if (miss := miss_note(log["runs"]["runup_gap"])) is not None:
        notes.append(miss)
    # the result's files are put in place together once all are written; a file this study
    # does not write goes then (one left by the study it continues would not be its)
    with staged(out, gone=OPTIONAL_FILES) as stage:
        if method == "morris":
            figure = plot_morris(result.indices, stage / "morris.png")
        else:
            if second_order:
                result.second_order.to_csv(stage / "second_order.csv", index=False, float_format="%.6g")
            figure = plot_sobol(result.indices, stage / "sobol.png")
            convergence.to_csv(stage / "convergence.csv", index=False, float_format="%.6g")
            plot_convergence(convergence, stage / "convergence.png")
        result.indices.to_csv(stage / "indices.csv", index=False, float_format="%.6g")
        write_sample(stage, method, spec, result.X, result.Y, second_order)
        for name, table in (("seed_variance.csv", shares), ("replications.csv", cv)):
            if table is not None:
                table.to_csv(stage / name, float_format="%.6g")
        page = write_page(
            method,
            scenario,
            stage,
            spec,
            result.indices,
            replications,
            cv,
            shares,
            (len(log["runs"]), log["distinct"]),
            figure,
            convergence is not None,
            notes,
            log["unread"],
            held,
            pilot_choice,
        )
    page = out / page.name
    return {
        "warnings": notes,
        "indices": result.indices,
        "replications": replications,
        "seed_variance": shares,
        "runs": len(log["runs"]),
        "page": page,
        "convergence": convergence,
    }


def write_sample(
    out: Path, method: str, spec: dict, X: np.ndarray, Y: pd.DataFrame, second_order: bool
) -> None:
    """samples.parquet (one row per sample point: the factors as sampled, then the outputs'
    replicate means) and problem.json (the SALib problem and the analysis settings), so that
    `SALib.analyze.morris.analyze(problem, X, Y[output], num_levels=4)` or
    `SALib.analyze.sobol.analyze(problem, Y[output], calc_second_order=...)` can be rerun."""
    table = pd.concat([pd.DataFrame(X, columns=spec["names"]), Y.reset_index(drop=True)], axis=1)
    table.to_parquet(out / "samples.parquet", index=False)
    settings = {"num_levels": MORRIS_LEVELS} if method == "morris" else {"calc_second_order": second_order}
    write_json(
        out / "problem.json",
        {"method": method, "problem": spec, "factors": spec["names"], "outputs": list(Y.columns), **settings},
    )


def _no_indices_figure(path: Path) -> Path:
    """The figure of a study none of whose outputs has indices (each had no value in some run)."""
    fig = Figure(figsize=(6, 1.5), layout="constrained")
    fig.text(0.5, 0.5, "no output has indices: each had no value in some run", ha="center", va="center")
    return save_figure(fig, path)


def plot_morris(indices: pd.DataFrame, path: Path) -> Path:
    outs = list(indices["output"].unique())
    if not outs:
        return _no_indices_figure(path)
    fig = Figure(figsize=(4.5 * len(outs), 4), layout="constrained")
    axes = fig.subplots(1, len(outs), squeeze=False)
    for ax, o in zip(axes[0], outs, strict=True):
        part = indices[indices["output"] == o]
        if part["sigma"].isna().any():  # groups of several factors have no σ: μ* alone, ranked
            part = part.sort_values("mu_star")
            ax.barh(part["factor"], part["mu_star"], xerr=part["mu_star_conf"], capsize=2)
            ax.tick_params(axis="y", labelsize=7)
            ax.set(title=f"{o} (σ undefined for groups)", xlabel="μ* (mean |elementary effect|)")
        else:
            ax.scatter(part["mu_star"], part["sigma"], s=18)
            for _, r in part.nlargest(6, "mu_star").iterrows():
                ax.annotate(r["factor"], (r["mu_star"], r["sigma"]), fontsize=7)
            ax.set(title=o, xlabel="μ* (mean |elementary effect|)", ylabel="σ")
        ax.grid(alpha=0.3)
    return save_figure(fig, path)


def plot_sobol(indices: pd.DataFrame, path: Path) -> Path:
    outs = list(indices["output"].unique())
    if not outs:
        return _no_indices_figure(path)
    fig = Figure(figsize=(10, 2.8 * len(outs)), layout="constrained")
    axes = fig.subplots(len(outs), 1, squeeze=False)
    for ax, o in zip(axes[:, 0], outs, strict=True):
        part = indices[indices["output"] == o].sort_values("ST", ascending=False)
        x = np.arange(len(part))
        ax.bar(x - 0.2, part["S1"], 0.4, yerr=part["S1_conf"], label="S1", capsize=2)
        ax.bar(x + 0.2, part["ST"], 0.4, yerr=part["ST_conf"], label="ST", capsize=2)
        ax.set_xticks(x, part["factor"], rotation=60, ha="right", fontsize=7)
        ax.set(title=o, ylabel="index")
        ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_convergence(conv: pd.DataFrame, path: Path) -> Path:
    outs = list(conv["output"].unique())
    if not outs:
        return _no_indices_figure(path)
    fig = Figure(figsize=(4.5 * len(outs), 3.6), layout="constrained")
    axes = fig.subplots(1, len(outs), squeeze=False)
    for ax, o in zip(axes[0], outs, strict=True):
        part = conv[conv["output"] == o]
        top = part[part["N"] == part["N"].max()].nlargest(5, "ST")["factor"]
        for f in top:
            line = part[part["factor"] == f]
            ax.plot(line["N"], line["ST"], marker="o", label=f)
        ax.set(title=o, xlabel="base samples N", ylabel="ST", xscale="log")
        ax.legend(fontsize=7)
    return save_figure(fig, path)


UNCERTAIN = 0.1  # a Sobol index whose 95 % interval reaches further than ± 0.1 is not read


def index_warnings(
    method: str,
    indices: pd.DataFrame,
    outputs: Sequence[str],
    shares: pd.Series | None,
    size: int,
    measured: bool = False,
) -> list[str]:
    """What a reader must know before reading the indices: outputs without indices (undefined
    in some run), outputs that did not vary (every index zero), undefined seed-variance shares, shares above
    NOISE_SHARE where the study measured them itself (`measured`: its replications, not the
    pilot's estimate, which `pilot_warnings` covers), and Sobol indices with intervals too wide
    to tell factors apart (too few base samples)."""
    notes = []
    done = set(indices["output"]) if len(indices) else set()
    for o in outputs:
        share = np.nan if shares is None else float(shares.get(o, np.nan))
        if o not in done:
            notes.append(f"{o}: no indices — it had no value in some run")
        elif not np.nan_to_num(indices.loc[indices["output"] == o].select_dtypes("number").to_numpy()).any():
            notes.append(f"{o}: it did not vary over the sample, so every index is zero")
        elif shares is not None and not np.isfinite(share):
            why = "no variance" if measured else "the pilot saw no variance in it"
            notes.append(f"{o}: the share of variance due to the seeds is undefined ({why})")
        elif measured and share > 2 * NOISE_SHARE:  # the pilot aims at NOISE_SHARE: twice is beyond its noise
            notes.append(
                f"{o}: the seeds make {share:.1%} of the variance of its replicate means, more than "
                f"twice the {NOISE_SHARE:.0%} aimed at; every "
                f"{'total index' if method == 'sobol' else 'μ*'} carries about that much "
                "noise — use more --replications"
            )
    if method == "sobol" and len(indices):
        for o, part in indices.groupby("output", sort=False):
            values = part[["S1", "ST", "S1_conf", "ST_conf"]].to_numpy(dtype=float)
            wide = int((part[["S1_conf", "ST_conf"]].to_numpy(dtype=float) > UNCERTAIN).any(axis=1).sum())
            if not np.isfinite(values).all():
                notes.append(f"{o}: some Sobol indices are undefined at {size} base samples; use more")
            elif wide:
                notes.append(
                    f"{o}: {wide} of {len(part)} factors {'has' if wide == 1 else 'have'} 95 % "
                    f"intervals wider than ± {UNCERTAIN:g} "
                    f"at {size} base samples — too uncertain to rank; use more --samples"
                )
    return notes


def write_page(
    method: str,
    scenario: Scenario,
    out: Path,
    spec: dict,
    indices: pd.DataFrame,
    replications: int,
    cv: pd.DataFrame | None,
    shares: pd.Series | None,
    runs: tuple[int, int],
    figure: Path,
    has_convergence: bool,
    notes: Sequence[str] = (),
    unread: Sequence[str] = (),
    held: dict[str, object] | None = None,
    pilot_choice: int | None = None,
) -> Path:
    """The study's page, sensitivity.md, in `out`: its design, the run-up and seed notes, the
    warnings and the five largest indices per output. `runs` are the design's runs and those
    run; `pilot_choice` the replications the pilot chose where the folder's design kept more."""
    lines = [
        f"# {method.capitalize()} sensitivity — scenario '{scenario.name}'",
        "",
        f"{spec['num_vars']} factor{'s' if spec['num_vars'] > 1 else ''} from the registry, "
        f"{runs[0]:,} model runs, "
        f"{replications} replication{'s' if replications > 1 else ''} per point (common random "
        "numbers across points); "
        "indices are computed on replicate means.",
        "",
    ]
    if held:
        lines += [held_line(held), ""]
    if unread:
        what = (
            "their elementary effects, μ* and σ are zero by construction"
            if method == "morris"
            else "their first- and total-order indices are zero by construction (second-order "
            "estimates with them are sampling noise)"
        )
        lines += [
            f"No run's outcomes read {len(unread)} of the factors at any point, so {what}: "
            f"{', '.join(unread)}.",
            "",
        ]
    if runs[1] < runs[0]:
        lines += [
            f"{runs[1]:,} of the runs were run: each of the others differs from one of them only in "
            "parameters its outcomes do not read (a switched-off mechanism's or programme's, the "
            "economics'), and has its outcomes.",
            "",
        ]
    if cv is not None:
        lines += [
            f"Replications chosen from a pilot of {PILOT_POINTS} points (Latin hypercube over the "
            f"factors) × {PILOT_SEEDS} seeds: the fewest with which the seeds make at most "
            f"{NOISE_SHARE:.0%} of the variance of every output's replicate means over the points "
            "(two-way analysis of variance, points × seeds): "
            f"{pilot_choice or replications} (`replications.csv`)"
            + (
                f"; the folder's design has {replications}, which this study keeps."
                if pilot_choice is not None and pilot_choice < replications
                else "."
            ),
            "",
        ]
    if shares is None:
        lines += [
            "Share of output variance due to the seeds: not estimable with one replication per "
            "point (run two or more, or let the pilot choose, to have it).",
            "",
        ]
    else:
        what = (
            f"of the variance of the replicate means over the points, by the two-way analysis of "
            f"variance (points × seeds) of the study's runs: the seed noise differing between "
            f"points, a 1/{replications} of it in a mean of {replications}"
            if replications > 1
            else "from the pilot: the seed noise differing between points / the variance of one "
            "run over the points; the study ran one replication per point"
        )
        lines += [
            f"Share of output variance due to the seeds ({what}):",
            "",
            *[
                f"- {o}: {v:.1%}" if np.isfinite(v) else f"- {o}: undefined (no variance)"
                for o, v in shares.items()
            ],
            "",
        ]
    if notes:
        lines += ["**Warnings**", "", *[f"- {n}" for n in notes], ""]
    key = "mu_star" if method == "morris" else "ST"
    if method == "morris" and indices["sigma"].isna().any():
        lines += [
            "σ (the spread of the elementary effects) is undefined (nan) for a group of several "
            "factors: SALib moves a group's factors together and gives its μ* only; groups are "
            "ranked by μ*.",
            "",
        ]
    for o in indices["output"].unique():
        top = indices[indices["output"] == o].nlargest(5, key)
        lines += [
            f"## {o}",
            "",
            "| factor | " + " | ".join(c for c in top.columns[2:]) + " |",
            "|---|" + "---|" * (len(top.columns) - 2),
        ]
        for _, r in top.iterrows():
            lines.append(f"| {r['factor']} | " + " | ".join(f"{v:.3g}" for v in r.iloc[2:]) + " |")
        lines.append("")
    lines += [f"![indices]({figure.name})", ""]
    if has_convergence:
        lines += ["![convergence](convergence.png)", ""]
    page = out / "sensitivity.md"
    page.write_text("\n".join(lines), encoding="utf-8")
    return page
