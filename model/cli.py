"""The `mittelbau` command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mittelbau.scenario import ScenarioError, load_scenario

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Agent-based simulation of the business-model stages of manufacturing SMEs.",
)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


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

    from mittelbau.outputs import write_run
    from mittelbau.simulate import runs_needed, simulate

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
        for name, lv in result.summary["levers"].items():
            cpm = lv["cost_per_additional_upward_move_eur"]
            dws = lv["deadweight_share"]
            typer.echo(
                f"  {name}: €{lv['total_cost_eur'] / 1e6:.1f} M, {lv['firms_reached']} firms reached, "
                f"{lv['additional_upward_moves']:+d} upward moves against no programme, "
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

    from mittelbau.ensemble import run_ensemble
    from mittelbau.executors import ExecutionError
    from mittelbau.report import write_report

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
    from mittelbau.ensemble import EnsembleError
    from mittelbau.report import write_report

    try:
        path = write_report(folder)
    except EnsembleError as exc:
        _fail(str(exc))
    typer.echo(f"report: {path}")


@app.command()
def params(
    fmt: Annotated[str, typer.Option("--format", help="markdown or csv")] = "markdown",
) -> None:
    """Print the parameter registry (name, unit, default, range, source)."""
    from mittelbau.registry_table import registry_table

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
