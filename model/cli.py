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
    scenario: Annotated[
        Path | None, typer.Argument(help="Scenario TOML file (default: the registry defaults)")
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override a registry parameter, key=value (repeatable)")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Root seed (same as --set seed=N)")] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder (default: results/<name>)")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors")] = False,
) -> None:
    """Run one scenario and write stage_shares.csv, transitions.csv, indicators.csv,
    levers.csv, summary.json and stage_shares.png."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from mittelbau.outputs import write_run
    from mittelbau.simulate import runs_needed, simulate

    try:
        scen = load_scenario(scenario, set_ or [], seed)
    except ScenarioError as exc:
        _fail(str(exc))
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
