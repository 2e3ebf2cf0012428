"""The `mittelbau` command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mittelbau.core.scenario import ScenarioError, load_scenario

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Agent-based simulation of the business-model stages of manufacturing SMEs.",
)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


def _other_verdicts(h: dict) -> str:
    """One line for the verdicts beside 'two worlds' (docs/odd.md, 'Indicators')."""

    def pct(x: float | None) -> str:
        return "–" if x is None else f"{x:.1%}"

    g0, g1 = h["competence_gap"]
    gap = "–" if g0 is None or g1 is None else f"{g0:.1f} → {g1:.1f} techniques"
    widens = {True: "widens", False: "does not widen", None: "–"}[h["competence_gap_widens"]]
    return (
        f"middle shrinks: {'yes' if h['middle_shrinks'] else 'no'}; stuck in stage 1: "
        f"{pct(h['stuck_share'])} (< 100 employees {pct(h['stuck_share_small'])}); "
        f"competence gap stage 3 − stage 1: {gap} ({widens})"
    )


@app.command()
def run(
    scenarios: Annotated[
        list[Path] | None,
        typer.Argument(help="Scenario TOML files (default: the registry defaults)"),
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override a registry parameter, key=value (repeatable)")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Root seed (same as --set seed=N)")] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder (default: results/<name>)")] = None,
    replications: Annotated[
        int, typer.Option(help="Runs per scenario, seeds spawned from the scenario seed")
    ] = 1,
    workers: Annotated[
        int | None, typer.Option(help="Parallel workers for an ensemble (default: all cores)")
    ] = None,
    executor: Annotated[str, typer.Option(help="local (processes) or dask")] = "local",
    scheduler: Annotated[
        str | None, typer.Option(help="Address of a running Dask scheduler, e.g. tcp://host:8786")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors")] = False,
) -> None:
    """Run scenarios. One scenario once writes stage_shares.csv, transitions.csv,
    indicators.csv, levers.csv, summary.json and stage_shares.png; several scenarios or
    --replications > 1 run an ensemble (resumable) and write its comparison report."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from mittelbau.experiments.outputs import write_run
    from mittelbau.experiments.runs import runs_needed, simulate

    paths: list[Path | None] = list(scenarios) if scenarios else [None]
    try:
        scens = [load_scenario(path, set_ or [], seed) for path in paths]
    except ScenarioError as exc:
        _fail(str(exc))
    if len(scens) > 1 or replications != 1:
        _run_ensemble(scens, replications, out, workers, executor, scheduler, quiet)
        return
    scen = scens[0]
    folder = out or Path("results") / scen.name
    p = scen.params
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} simulated years"),
        TimeRemainingColumn(),
        disable=quiet,
        transient=True,
    ) as progress:
        task = progress.add_task(f"{scen.name}: {p.firms} firms, {p.region}", total=p.years * runs_needed(p))
        result = simulate(scen, on_year=lambda _m: progress.advance(task))
    write_run(result, folder)
    if not quiet:
        h = result.summary["headline"]
        a, b = h["stage_shares_start"], h["stage_shares_end"]
        y0, y1 = result.summary["years"]
        typer.echo(f"{scen.name} · {result.summary['region']} · {p.firms} firms · seed {p.seed}")
        typer.echo(f"  stage shares {y0}: {a['stage1']:.1%} / {a['stage2']:.1%} / {a['stage3']:.1%}")
        if y1 != y0:
            typer.echo(f"  stage shares {y1}: {b['stage1']:.1%} / {b['stage2']:.1%} / {b['stage3']:.1%}")
        typer.echo(f"  {h['verdict']}")
        if y1 != y0:
            typer.echo(f"  {_other_verdicts(h)}")
        for name, lv in result.summary["levers"].items():
            cpm = lv["cost_per_additional_upward_move_eur"]
            dws = lv["deadweight_share"]
            typer.echo(
                # the region's firms (agents × population_scale), the unit the € buy
                f"  {name}: €{lv['total_cost_eur'] / 1e6:.1f} M, {lv['firms_reached_region']:,.0f} firms "
                f"reached, {lv['additional_upward_moves_region']:+,.0f} upward moves against no programme, "
                + (f"€{cpm:,.0f} per additional move" if cpm else "no additional moves")
                + (f", deadweight {dws:.0%}" if dws is not None else "")
            )
        typer.echo(f"  written to {folder}/")


def _run_ensemble(scens, replications, out, workers, executor, scheduler, quiet) -> None:
    import os

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from mittelbau.experiments.ensemble import run_ensemble
    from mittelbau.experiments.executors import ExecutionError
    from mittelbau.experiments.report import write_report

    folder = out or Path("results") / "-".join(s.name for s in scens)
    workers = workers or os.cpu_count() or 1
    total = len(scens) * replications
    try:
        with Progress(
            TextColumn("[bold]runs"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            disable=quiet,
            transient=True,
        ) as progress:
            task = progress.add_task("runs", total=total, rate="")

            def advance(_spec, _ok) -> None:
                progress.advance(task)
                t = progress.tasks[0]
                if t.elapsed:
                    progress.update(task, rate=f"{60 * t.completed / t.elapsed:.1f} runs/min")

            counts = run_ensemble(scens, replications, folder, executor, workers, scheduler, advance)
            progress.update(task, completed=total)
        report = write_report(folder)
    except ExecutionError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from None
    if not quiet:
        typer.echo(
            f"{counts['ran']} runs done, {counts['skipped']} already in {folder}/ "
            f"({len(scens)} scenarios × {replications} replications, {executor}, {workers} workers)"
        )
        verdicts = [
            line[2:] for line in report.read_text(encoding="utf-8").splitlines() if line.startswith("- **")
        ]
        for line in verdicts:
            typer.echo("  " + line.replace("**", ""))
        typer.echo(f"  report: {report}")


@app.command()
def report(
    folder: Annotated[Path, typer.Argument(help="An ensemble folder written by mittelbau run")],
) -> None:
    """Write the comparison report (report.md and figures) of an ensemble folder."""
    from mittelbau.experiments.ensemble import EnsembleError
    from mittelbau.experiments.report import write_report

    try:
        path = write_report(folder)
    except EnsembleError as exc:
        _fail(str(exc))
    typer.echo(f"report: {path}")


sensitivity_app = typer.Typer(no_args_is_help=True, help="Global sensitivity analysis (SALib).")
app.add_typer(sensitivity_app, name="sensitivity")

SetOpt = Annotated[list[str] | None, typer.Option("--set", help="Override a registry parameter")]
SeedOpt = Annotated[int | None, typer.Option(help="Root seed (same as --set seed=N)")]
FactorsOpt = Annotated[
    str | None,
    typer.Option(
        help="Comma-separated registry parameters to vary (default: all "
        "numeric dynamics and network parameters)"
    ),
]
LeversOpt = Annotated[bool, typer.Option("--levers", help="Vary the lever settings too")]
RepsOpt = Annotated[
    int | None,
    typer.Option(
        help="Replications per point (default: chosen where output variance stabilises over a pilot)"
    ),
]
WorkersOpt = Annotated[int | None, typer.Option(help="Parallel workers (default: all cores)")]
ExecOpt = Annotated[str, typer.Option(help="local (processes) or dask")]
SchedOpt = Annotated[str | None, typer.Option(help="Address of a running Dask scheduler")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors")]


def _study_setup(scenario, set_, seed, factors, workers, executor, scheduler):
    import os

    try:
        scen = load_scenario(scenario, set_ or [], seed)
    except ScenarioError as exc:
        _fail(str(exc))
    names = [f.strip() for f in factors.split(",") if f.strip()] if factors else None
    run_kw = {"executor": executor, "workers": workers or os.cpu_count() or 1, "scheduler": scheduler}
    return scen, names, run_kw


def _with_progress(quiet: bool, label: str, job):
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from mittelbau.experiments.executors import ExecutionError
    from mittelbau.experiments.sensitivity import FactorError

    with Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(pulse_style="cyan"),
        TextColumn("{task.completed} runs"),
        TimeElapsedColumn(),
        disable=quiet,
        transient=True,
    ) as progress:
        task = progress.add_task(label, total=None)
        try:
            return job(lambda n: progress.advance(task, n))
        except (FactorError, ExecutionError, ImportError) as exc:
            progress.stop()
            _fail(str(exc))


def _study(
    method,
    scenario,
    size,
    set_,
    seed,
    factors,
    groups,
    levers,
    replications,
    out,
    workers,
    executor,
    scheduler,
    quiet,
    second_order=False,
) -> None:
    from mittelbau.experiments.sensitivity_study import run_study

    scen, names, run_kw = _study_setup(scenario, set_, seed, factors, workers, executor, scheduler)
    folder = out or Path("results") / f"{method}-{scen.name}"
    found = _with_progress(
        quiet,
        method,
        lambda cb: run_study(
            method,
            scen,
            folder,
            size,
            names,
            levers,
            groups,
            replications=replications,
            run_kw=run_kw,
            on_batch=cb,
            second_order=second_order,
        ),
    )
    if not quiet:
        key = "mu_star" if method == "morris" else "ST"
        typer.echo(f"{method}: {found['runs']} runs, {found['replications']} replications per point")
        for o, part in found["indices"].groupby("output", sort=False):
            top = ", ".join(f"{r.factor} {getattr(r, key):.2g}" for r in part.nlargest(3, key).itertuples())
            typer.echo(f"  {o}: {top}")
        typer.echo(f"  written to {folder}/ (sensitivity.md)")


@sensitivity_app.command("morris")
def sensitivity_morris(
    scenario: Annotated[Path | None, typer.Argument(help="Scenario TOML file")] = None,
    trajectories: Annotated[int, typer.Option(help="Morris trajectories")] = 20,
    set_: SetOpt = None,
    seed: SeedOpt = None,
    factors: FactorsOpt = None,
    groups: Annotated[bool, typer.Option("--groups", help="Move factors by registry group")] = False,
    levers: LeversOpt = False,
    replications: RepsOpt = None,
    out: Annotated[Path | None, typer.Option(help="Output folder")] = None,
    workers: WorkersOpt = None,
    executor: ExecOpt = "local",
    scheduler: SchedOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Morris screening: μ* and σ of every factor's elementary effects per indicator."""
    _study(
        "morris",
        scenario,
        trajectories,
        set_,
        seed,
        factors,
        groups,
        levers,
        replications,
        out,
        workers,
        executor,
        scheduler,
        quiet,
    )


@sensitivity_app.command("sobol")
def sensitivity_sobol(
    scenario: Annotated[Path | None, typer.Argument(help="Scenario TOML file")] = None,
    samples: Annotated[int, typer.Option(help="Base samples N (a power of two)")] = 1024,
    second_order: Annotated[
        bool, typer.Option("--second-order", help="Also second-order indices (more runs)")
    ] = False,
    set_: SetOpt = None,
    seed: SeedOpt = None,
    factors: FactorsOpt = None,
    groups: Annotated[bool, typer.Option("--groups", help="Move factors by registry group")] = False,
    levers: LeversOpt = False,
    replications: RepsOpt = None,
    out: Annotated[Path | None, typer.Option(help="Output folder")] = None,
    workers: WorkersOpt = None,
    executor: ExecOpt = "local",
    scheduler: SchedOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Sobol indices (first and total order, bootstrap intervals) and their convergence."""
    _study(
        "sobol",
        scenario,
        samples,
        set_,
        seed,
        factors,
        groups,
        levers,
        replications,
        out,
        workers,
        executor,
        scheduler,
        quiet,
        second_order,
    )


@app.command()
def discover(
    scenario: Annotated[Path | None, typer.Argument(help="Scenario TOML file")] = None,
    samples: Annotated[int, typer.Option(help="Latin-hypercube points")] = 2000,
    set_: SetOpt = None,
    seed: SeedOpt = None,
    factors: FactorsOpt = None,
    levers: LeversOpt = False,
    replications: Annotated[int, typer.Option(help="Replications per point")] = 1,
    min_density: Annotated[float, typer.Option(help="Least density of the PRIM box")] = 0.8,
    case: Annotated[
        str,
        typer.Option(
            help="Case of interest: 'hollowed' (the middle hollows out) or '<output> <op> <number>', "
            "e.g. 'middle_share < 0.2'"
        ),
    ] = "hollowed",
    out: Annotated[Path | None, typer.Option(help="Output folder")] = None,
    workers: WorkersOpt = None,
    executor: ExecOpt = "local",
    scheduler: SchedOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Scenario discovery: sample the factors, label the points where the case of interest
    occurs (by default: the middle hollows out), and find the boxes of parameter space where it
    does (PRIM)."""
    from mittelbau.experiments.discovery import discover as run_discovery
    from mittelbau.experiments.discovery import parse_case
    from mittelbau.experiments.sensitivity import FactorError

    try:
        chosen_case = parse_case(case)
    except FactorError as exc:
        _fail(str(exc))
    scen, names, run_kw = _study_setup(scenario, set_, seed, factors, workers, executor, scheduler)
    folder = out or Path("results") / f"prim-{scen.name}"
    found = _with_progress(
        quiet,
        "discover",
        lambda cb: run_discovery(
            scen,
            folder,
            samples,
            names,
            levers,
            replications,
            {**run_kw, "on_batch": cb},
            min_density,
            chosen_case,
        ),
    )
    if not quiet:
        if not found["found"]:
            typer.echo(f"no sampled point has {chosen_case} ({samples} points); see {folder}/prim.md")
            return
        dims = ", ".join(f"{k} {lo:.3g}–{hi:.3g}" for k, (lo, hi) in found["restricted"].items())
        typer.echo(
            f"{found['cases_of_interest']} of {found['n']} points have {chosen_case}; PRIM box: "
            f"coverage {found['coverage']:.0%}, density {found['density']:.0%}; {dims}"
        )
        typer.echo(f"  written to {folder}/ (prim.md)")


calibrate_app = typer.Typer(no_args_is_help=True, help="Calibration against the surveys.")
app.add_typer(calibrate_app, name="calibrate")


@calibrate_app.command("report")
def calibrate_report(
    out: Annotated[Path, typer.Option(help="Output folder")] = Path("results/fit-report"),
    replications: Annotated[int, typer.Option(help="Replicate runs per population")] = 10,
    firms: Annotated[int, typer.Option(help="Firms per run")] = 20_000,
    seed: Annotated[int, typer.Option(help="Root seed of the replicate seeds")] = 20170501,
) -> None:
    """Compare the model with every survey target: observed ± SE, simulated mean ± sd, z,
    within 2 SE (fit_report.md, .csv, .png), and each region's predicted initial stage shares."""
    from mittelbau.calibration.fit_report import write_fit_report

    if replications < 2 or firms < 100:
        _fail(
            f"--replications = {replications}, --firms = {firms} are invalid; allowed: "
            "at least 2 replications and 100 firms"
        )
    page, table = write_fit_report(out, replications, firms, seed)
    met = int(table["within_2se"].sum())
    typer.echo(f"{met} of {len(table)} targets within 2 standard errors")
    for r in table[~table["within_2se"]].itertuples():
        typer.echo(
            f"  missed: {r.target} ({r.source}): observed {r.observed:.3f}, "
            f"simulated {r.simulated_mean:.3f}, z {r.z:+.1f}"
        )
    typer.echo(f"  report: {page}")


@calibrate_app.command("fit")
def calibrate_fit(
    out: Annotated[Path, typer.Option(help="Folder of the fit (pyabc history)")] = Path(
        "results/calibration"
    ),
    population: Annotated[int, typer.Option(help="Particles per generation")] = 200,
    generations: Annotated[int, typer.Option(help="ABC-SMC generations")] = 8,
    firms: Annotated[int, typer.Option(help="Firms per simulation")] = 4000,
    seed: Annotated[int, typer.Option(help="Seed of the fit")] = 20170501,
    write: Annotated[
        bool, typer.Option("--write", help="Commit the result as calibration/dynamic_parameters.toml")
    ] = False,
    fresh: Annotated[bool, typer.Option("--fresh", help="Start anew instead of resuming")] = False,
) -> None:
    """Fit the dynamic parameters to the behavioural survey targets by ABC-SMC (pyabc);
    resumes an interrupted fit from its history."""
    from mittelbau.calibration.dynamic_fit import IDENTIFIED_SD_RATIO, fit, write_parameter_set

    try:
        result = fit(
            out, population_size=population, generations=generations, firms=firms, seed=seed, resume=not fresh
        )
    except (ImportError, ValueError) as exc:
        _fail(str(exc))
    typer.echo(
        f"{result.generations} generations, {result.evaluations} simulations, "
        f"final epsilon {result.epsilon:.3g}"
    )
    for r in result.posterior.itertuples():
        typer.echo(
            f"  {r.parameter}: median {r.median:.4g} (90 % {r.q05:.4g}–{r.q95:.4g}), "
            f"sd/prior sd {r.sd_ratio:.2f}"
        )
    result.posterior.to_csv(out / "posterior.csv", index=False, float_format="%.6g")
    post = result.posterior
    weak = post[post["sd_ratio"] >= IDENTIFIED_SD_RATIO]
    not_identified = dict(zip(weak["parameter"], weak["sd_ratio"], strict=True))
    if not_identified:
        typer.echo(
            f"  not identified by the targets: {', '.join(not_identified)} "
            "(they keep their stated assumptions)"
        )
        keep = tuple(post.loc[post["sd_ratio"] < IDENTIFIED_SD_RATIO, "parameter"])
        if not keep:
            _fail("no parameter is identified by the targets; nothing to commit")
        result = fit(
            out / "identified",
            keep,
            population_size=population,
            generations=generations,
            firms=firms,
            seed=seed,
            resume=not fresh,
        )
        result.posterior.to_csv(out / "posterior_identified.csv", index=False, float_format="%.6g")
        typer.echo(f"  refitted {', '.join(keep)} with the others fixed:")
        for r in result.posterior.itertuples():
            typer.echo(f"    {r.parameter}: median {r.median:.4g} (90 % {r.q05:.4g}–{r.q95:.4g})")
    if write:
        settings = {"population": population, "generations": generations, "firms": firms, "seed": seed}
        write_parameter_set(result, settings, not_identified=not_identified)
        typer.echo("  written to calibration/dynamic_parameters.toml")


@calibrate_app.command("identify")
def calibrate_identify(
    out: Annotated[Path, typer.Option(help="Output folder")] = Path("results/identifiability"),
    population: Annotated[int, typer.Option(help="Particles per generation")] = 100,
    generations: Annotated[int, typer.Option(help="ABC-SMC generations")] = 6,
    firms: Annotated[int, typer.Option(help="Firms per simulation")] = 4000,
    seed: Annotated[int, typer.Option(help="Seed")] = 2,
) -> None:
    """Re-estimate the dynamic parameters from synthetic targets made at the current defaults:
    which are recovered, and which do the targets identify at all?"""
    from mittelbau.calibration.dynamic_fit import FITTED, identify
    from mittelbau.core.parameters import BY_NAME

    truth = {n: float(BY_NAME[n].default) for n in FITTED}
    try:
        table = identify(out, truth, population, generations, firms, seed)
    except ImportError as exc:
        _fail(str(exc))
    for r in table.itertuples():
        typer.echo(
            f"  {r.parameter}: truth {r.truth:.4g}, median {r.median:.4g} "
            f"(90 % {r.q05:.4g}–{r.q95:.4g}); recovered: {'yes' if r.recovered else 'no'}"
            f", identified: {'yes' if r.identified else 'no'}"
        )
    typer.echo(f"  written to {out}/identifiability.md")


@app.command()
def dashboard(
    scenario: Annotated[
        Path | None, typer.Argument(help="Scenario TOML file to start from (default: the registry defaults)")
    ] = None,
    host: Annotated[
        str, typer.Option(help="Address to listen on (localhost unless told otherwise)")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on; 0 picks a free one")] = 8765,
    open_browser: Annotated[
        bool, typer.Option("--open/--no-open", help="Open the page in a web browser")
    ] = True,
) -> None:
    """Open the interactive dashboard: controls for region, size, seed and the levers, live
    charts, the firm network and a comparison with the same seed without programmes."""
    import importlib.util
    import os
    import subprocess
    import sys

    from mittelbau.dashboard.app_server import server_command, server_environment

    if importlib.util.find_spec("solara") is None:
        _fail("the dashboard needs the 'dashboard' extra: pip install -e '.[dashboard]'")
    from mittelbau.dashboard import assets

    if absent := assets.missing():
        _fail(
            "the dashboard's page scripts are not installed (" + ", ".join(absent) + "): run "
            "`make dashboard-assets` or `python -m mittelbau.dashboard.assets` once"
        )
    if scenario is not None:
        try:
            load_scenario(scenario)
        except ScenarioError as exc:
            _fail(str(exc))
    command = server_command(host, port, open_browser)
    typer.echo(f"mittelbau dashboard on http://{host}:{port} (Ctrl-C stops it)")
    try:
        code = subprocess.call(command, env={**os.environ, **server_environment(scenario)})
    except KeyboardInterrupt:
        code = 0
    sys.exit(code)


@app.command()
def params(
    fmt: Annotated[str, typer.Option("--format", help="markdown or csv")] = "markdown",
) -> None:
    """Print the parameter registry (name, unit, default, range, source)."""
    from mittelbau.core.registry_table import registry_table

    if fmt not in ("markdown", "csv"):
        _fail(f"--format {fmt!r} is invalid; allowed: markdown, csv")
    typer.echo(registry_table(fmt), nl=False)


@app.command("fit-initial-state")
def fit_initial_state() -> None:
    """Refit the initial-state propensities (calibration/fit_initial_state.py) and rewrite
    calibration/initial_propensities.toml."""
    from mittelbau.calibration.fit_initial_state import main

    main()


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover - `python -m mittelbau.cli`
    main()
