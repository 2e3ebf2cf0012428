"""The `mittelbau` command line."""

from __future__ import annotations

import atexit
import contextlib
import errno
import gc
import importlib.util
import inspect
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from mittelbau.core.scenario import ScenarioError, load_scenario, parse_assignment

OverwriteOpt = Annotated[
    bool, typer.Option("--overwrite", help="Replace the contents of a non-empty --out folder")
]

# plain help (rich_markup_mode=None): the rich panels print every flag as taking a `<bool>`
app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    help="Agent-based simulation of the business-model stages of manufacturing SMEs.",
)


def _write_figures_to_files() -> None:
    """Draw with the file-writing backend: the command line writes figures, shows none."""
    import matplotlib

    matplotlib.use("Agg")


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=code)


# ---- option validation: every command checks all its options here before it computes or
# writes anything; a bad value stops it with one line naming the option, exit code 2 ----------


def _check_write(write: bool) -> None:
    """--write replaces calibration files committed to the project: only from a checkout (an
    installed package's copies are not the project's, and its folder may not be writable)."""
    from mittelbau.experiments.extras import in_checkout

    if write and not in_checkout():
        _fail(
            "--write replaces calibration files committed to the project, and this mittelbau is an "
            "installed package, not a checkout of it; allowed: without --write (the result is "
            "written to --out), or --write in a checkout"
        )


def _count(n: int, thing: str) -> str:
    """`n` things, in words: '1 scenario', '2 scenarios', '1,000 replications'."""
    return f"{n:,} {thing}{'' if n == 1 else 's'}"


# the most of a count an option takes: far beyond any study on one machine or a cluster, and
# refused before a typo builds a design that would not fit in memory or never end
MOST = {
    "--workers": 1024,
    "--replications": 100_000,
    "--seeds-per-draw": 1_000,
    "--samples": 100_000,
    "--population": 100_000,
    "--generations": 1_000,
    "--batch": 4_096,
}


def _at_least(option: str, value: float | None, low: float) -> None:
    """A count of at least `low` and at most its MOST."""
    high = MOST.get(option)
    if value is not None and value < low:
        _fail(
            f"{option} = {value} is invalid; allowed: {low} or more" + (f" (up to {high:,})" if high else "")
        )
    if value is not None and high is not None and value > high:
        _fail(f"{option} = {value:,} is invalid; allowed: {low} to {high:,}")


NAME_MAX = 255  # bytes of one file name on the common file systems
SIBLING_ROOM = 32  # bytes a single run's lock and temporary folder add to its folder's name
SEED_MAX = 2**32 - 1  # numpy's seeds: 32-bit unsigned integers (the registry's range of `seed`)
FIRMS_RANGE = (100, 1_000_000)  # the registry's range of `firms`


def _within(option: str, value: int, low: int, high: int, why: str = "") -> None:
    if not low <= value <= high:
        _fail(f"{option} = {value} is invalid; allowed: {low:,} to {high:,}{why}")


def _assignments(set_: list[str] | None, seed: int | None) -> list[str]:
    """The --set assignments, each key once, and --seed not beside --set seed=."""
    seen: dict[str, str] = {}
    for text in set_ or []:
        try:
            key, _ = parse_assignment(text)
        except ScenarioError as exc:
            _fail(str(exc))
        if key in seen:
            _fail(f"--set {key} is given twice ({seen[key]!r}, {text!r}); allowed: each key once")
        seen[key] = text
    if seed is not None and "seed" in seen:
        _fail(f"--seed {seed} and --set {seen['seed']!r} are both given; allowed: one of them")
    return list(set_ or [])


def _scheduler(executor: str, scheduler: str | None) -> None:
    """A scheduler address goes with the Dask executor and must answer within seconds."""
    import socket
    from urllib.parse import urlsplit

    from mittelbau.experiments.executors import CONNECT_TIMEOUT, ExecutionError, check_scheduler

    if scheduler is None:
        return
    if executor != "dask":
        _fail(f"--scheduler {scheduler!r} goes with --executor dask; allowed: --executor dask")
    try:
        parts = urlsplit(scheduler if "://" in scheduler else f"tcp://{scheduler}")
        valid = parts.scheme in ("tcp", "tls") and bool(parts.hostname) and parts.port is not None
    except ValueError:
        valid = False
    if not valid:
        _fail(
            f"--scheduler {scheduler!r} is invalid; allowed: the address of a running Dask "
            "scheduler, e.g. tcp://host:8786"
        )
    try:  # a refused or unroutable address fails here at once, before Dask is loaded
        socket.create_connection((parts.hostname, parts.port), timeout=CONNECT_TIMEOUT).close()
        check_scheduler(scheduler)
    except OSError as exc:
        _fail(
            f"--scheduler {scheduler!r} did not answer ({exc.strerror or type(exc).__name__}); "
            "allowed: the address of a running Dask scheduler, e.g. tcp://host:8786"
        )
    except ExecutionError as exc:
        _fail(str(exc))


def _executor(
    executor: str | None, workers: int | None, scheduler: str | None, runs: int | None = None
) -> tuple[str, int]:
    """--executor, --workers and --scheduler of commands that run many runs; never more
    workers than `runs` (when known)."""
    from mittelbau.experiments.executors import EXECUTORS

    executor = executor or "local"
    if executor not in EXECUTORS:
        _fail(f"--executor {executor!r} is invalid; allowed: {', '.join(EXECUTORS)}")
    if executor == "dask" and importlib.util.find_spec("distributed") is None:
        from mittelbau.experiments.extras import needs_extra

        _fail(needs_extra("--executor dask", "dask"))
    _at_least("--workers", workers, 1)
    _scheduler(executor, scheduler)
    workers = workers or os.cpu_count() or 1
    return executor, workers if runs is None else min(workers, max(runs, 1))


def _holds_experiment(folder: Path) -> bool:
    """Whether a folder is a study's or a discovery's: its runs or its pilot hold an experiment's
    manifest, or nothing yet but their lock."""
    parts = [folder / part for part in ("runs", "pilot") if (folder / part).is_dir()]
    return any(
        (part / "experiment.json").is_file() or not {e.name for e in part.iterdir()} - {".lock"}
        for part in parts
    )


def _staged(folder: Path, gone: Sequence[str] = ()) -> contextlib.AbstractContextManager[Path]:
    """A temporary folder in `folder` that a report is written into, put in place only once
    all its files are written (`store.staged`; the files named in `gone` that it does not write
    are removed then)."""
    from mittelbau.experiments.store import staged

    return staged(folder, gone)


def _targets_checked() -> None:
    """The calibration targets, read and checked before a command writes or runs anything: a
    file that cannot be read or a target that cannot be measured is a one-line error."""
    from mittelbau.calibration.fit_report import load_targets

    try:
        load_targets()
    except ValueError as exc:
        _fail(str(exc))


@contextlib.contextmanager
def _written_into(out: str, lock: bool = True) -> Iterator[Path]:
    """A calibration command's output folder (`_out`: a folder path, not empty, writable),
    held with its lock while the command writes into it (`lock=False`: for a command whose
    study takes the lock itself): another writer, or a write error, ends the command with one
    line."""
    from mittelbau.experiments.store import FolderError, folder_lock

    folder = _out(out, Path(out), "report", overwrite=False)
    try:
        with folder_lock(folder) if lock else contextlib.nullcontext():
            yield folder
    except FolderError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"cannot write into {folder}: {exc.strerror or exc}", code=1)


def _out(out: str | None, default: Path, kind: str, overwrite: bool) -> Path:
    """The output folder: a path given by the user (or the default), a folder or nothing yet,
    writable, and — unless --overwrite — either new/empty or a resumable folder of `kind`
    ("ensemble" or "experiment"; a single run's folder never resumes; a "report" folder, which
    a command writes its named files into, may hold others)."""
    import tempfile

    if out is not None and not out.strip():
        _fail(f"--out {out!r} is invalid; allowed: a folder path")
    folder = Path(out) if out is not None else default
    shown = str(folder) if len(str(folder)) <= 80 else f"{str(folder)[:77]}..."
    # a single run writes its lock and its temporary folder beside its folder, named after it
    last = NAME_MAX - SIBLING_ROOM if kind == "run" else NAME_MAX
    try:
        sizes = [len(os.fsencode(part)) for part in folder.parts]
        if any(s > NAME_MAX for s in sizes) or (sizes and sizes[-1] > last):  # before any folder is made
            raise OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG))
        folder.exists()
    except OSError as exc:  # a name the file system does not take (too long, say)
        _fail(
            f"--out {shown!r} is not a path the file system takes ({exc.strerror or type(exc).__name__}); "
            f"allowed: a folder path of names up to {NAME_MAX} bytes, its last up to {last}"
        )
    if folder.exists() and not folder.is_dir():
        _fail(f"--out {str(folder)!r} is a file; allowed: a folder path")
    ancestor = folder
    while not ancestor.exists():
        ancestor = ancestor.parent
    try:
        with tempfile.TemporaryFile(dir=ancestor):
            pass
    except OSError as exc:
        _fail(
            f"--out {str(folder)!r} is not writable ({ancestor}: {exc.strerror or type(exc).__name__}); "
            "allowed: a folder you can write to"
        )
    if kind == "report":
        return folder
    cwd = Path.cwd()
    if overwrite and folder.exists() and folder.resolve() in (cwd, *cwd.parents):
        _fail(
            f"--out {str(folder)!r} holds the current folder, which --overwrite cannot replace; "
            "allowed: a folder below it"
        )
    if overwrite or not folder.exists():
        return folder
    entries = {e.name for e in folder.iterdir()} - {".lock"}
    if not entries:
        return folder
    # what a folder of each kind holds from its start: an ensemble's manifest; a study's or a
    # discovery's experiment manifests (of its runs, or of its pilot first), and no ensemble's
    if kind == "ensemble" and "ensemble.json" in entries:
        return folder
    if kind == "experiment" and "ensemble.json" not in entries and _holds_experiment(folder):
        return folder
    if kind == "run":
        _fail(
            f"--out {str(folder)!r} is not empty; allowed: a new or empty folder, or --overwrite "
            "to replace its contents"
        )
    _fail(
        f"--out {str(folder)!r} is not empty and holds no earlier {kind}; allowed: a new or empty "
        f"folder, a folder of the same {kind} (to resume), or --overwrite to replace its contents"
    )


def _other_verdicts(h: dict) -> str:
    """One line for the verdicts beside 'two worlds' (docs/odd.md, 'Indicators')."""

    def pct(x: float | None) -> str:
        return "–" if x is None else f"{x:.1%}"

    stuck, closed = h["stuck_share"], h.get("stuck_closed_share")
    # the stuck firms still in stage 1 and those closed from it (of the 2015 stage-1 firms)
    split = ""
    if stuck is not None and closed is not None:
        split = f"{pct(stuck - closed)} still there, {pct(closed)} closed; "
    g0, g1 = h["competence_gap"]
    # as many decimals as show a change that "widens" or "does not widen" speaks of
    digits = next((d for d in range(1, 7) if g0 is None or g1 is None or round(g0, d) != round(g1, d)), 1)
    gap = "–" if g0 is None or g1 is None else f"{g0:.{digits}f} → {g1:.{digits}f} techniques"
    widens = {True: "widens", False: "does not widen", None: "–"}[h["competence_gap_widens"]]
    return (
        f"middle shrinks: {'yes' if h['middle_shrinks'] else 'no'}; stuck in stage 1: "
        f"{pct(h['stuck_share'])} ({split}< 100 employees {pct(h['stuck_share_small'])}); "
        f"competence gap stage 3 − stage 1: {gap} ({widens})"
    )


@app.command()
def run(
    scenarios: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Scenario TOML files or names from the scenario library, e.g. baseline "
            "(default: the registry defaults)"
        ),
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override a registry parameter, key=value (repeatable)")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Root seed (same as --set seed=N)")] = None,
    out: Annotated[str | None, typer.Option(help="Output folder (default: results/<name>)")] = None,
    replications: Annotated[
        int, typer.Option(help="Runs per scenario, seeds spawned from the scenario seed")
    ] = 1,
    workers: Annotated[
        int | None, typer.Option(help="Parallel workers for an ensemble (default: all cores)")
    ] = None,
    executor: Annotated[
        str | None, typer.Option(help="local (processes, the default) or dask; for an ensemble")
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option(help="Address of a running Dask scheduler, e.g. tcp://host:8786")
    ] = None,
    posterior: Annotated[
        bool,
        typer.Option(
            "--posterior",
            help="Posterior-predictive ensemble: each replicate draws its parameter set from the "
            "fit's posterior sample (calibration/posterior.csv); a parameter the scenario or --set "
            "fixes keeps that value",
        ),
    ] = False,
    posterior_file: Annotated[
        Path | None,
        typer.Option(help="Posterior sample to draw from instead of the committed one (implies --posterior)"),
    ] = None,
    seeds_per_draw: Annotated[
        int | None,
        typer.Option(help="With --posterior: seeds run at each drawn parameter set (default 2)"),
    ] = None,
    overwrite: OverwriteOpt = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors")] = False,
) -> None:
    """Run scenarios. One scenario once writes stage_shares.csv, transitions.csv,
    indicators.csv, levers.csv, economics.csv, summary.json and stage_shares.png; several scenarios,
    --replications > 1 or --posterior run an ensemble (resumable) and write its comparison
    report."""
    paths: list[Path | None] = list(scenarios) if scenarios else [None]
    assignments = _assignments(set_, seed)
    _at_least("--replications", replications, 1)
    try:
        scens = [load_scenario(path, assignments, seed) for path in paths]
    except ScenarioError as exc:
        _fail(str(exc))
    if not quiet:
        from mittelbau.levers import idle_levers, unused_lever_settings

        for s in scens:
            for note in [*idle_levers(s.params), *unused_lever_settings(s.params, s.overrides)]:
                typer.echo(f"warning: {s.name}: {note}", err=True)
    names = [s.name for s in scens]
    twice = next((n for n in names if names.count(n) > 1), None)
    if twice is not None:
        given = [str(p) for p, n in zip(scenarios, names, strict=True) if n == twice]
        _fail(
            f"scenarios {', '.join(given)} are all named {twice!r}; allowed: scenarios of distinct "
            "names (the `name` in each file), each given once"
        )
    sample, per_draw = _posterior(posterior or posterior_file is not None, posterior_file, seeds_per_draw)
    if sample is not None and replications % per_draw:
        given = seeds_per_draw is not None
        _fail(
            f"--replications {replications} is not a multiple of --seeds-per-draw {per_draw}"
            + ("" if given else " (its default with --posterior)")
            + "; "
            f"allowed: {per_draw}, {2 * per_draw}, {3 * per_draw}, … (every draw runs the same "
            "number of seeds)"
        )
    if len(scens) > 1 or replications != 1 or sample is not None:
        executor, workers = _executor(executor, workers, scheduler, len(scens) * replications)
        folder = _out(out, Path("results") / "-".join(s.name for s in scens), "ensemble", overwrite)
        _run_ensemble(
            scens, replications, folder, workers, executor, scheduler, overwrite, quiet, sample, per_draw
        )
        return
    options = (("--workers", workers), ("--executor", executor), ("--scheduler", scheduler))
    given = [o for o, v in options if v is not None]
    if given:
        _fail(
            f"{', '.join(given)} given for a single run; allowed: only for an ensemble (several "
            "scenarios or --replications above 1)"
        )
    scen = scens[0]
    folder = _out(out, Path("results") / scen.name, "run", overwrite)
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from mittelbau.experiments.outputs import write_run  # the model's modules load after the checks
    from mittelbau.experiments.runs import runs_needed, simulate
    from mittelbau.experiments.store import FolderError, run_lock

    p = scen.params
    try:
        with run_lock(folder):  # one writer per folder, from the first simulated year to the write
            with Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total} simulated years"),
                TimeRemainingColumn(),
                disable=quiet,
                transient=True,
            ) as progress:
                total = p.years * runs_needed(p)
                task = progress.add_task(f"{scen.name}: {p.firms} firms, {p.region}", total=total)
                result = simulate(scen, on_year=lambda _m: progress.advance(task))
            _write_figures_to_files()
            write_run(result, folder)
    except FolderError as exc:
        _fail(str(exc))
    except OSError as exc:  # a full disk, a name the file system refuses
        _fail(f"cannot write into {str(folder)[:80]}: {exc.strerror or exc}", code=1)
    if not quiet:
        h = result.summary["headline"]
        a, b = h["stage_shares_start"], h["stage_shares_end"]
        y0, y1 = result.summary["years"]
        region_firms = result.summary.get("economics", {}).get("region_firms")
        # agents stand for the region's firms (population_scale): say both
        firms = f"{p.firms} agents" + (f" for its {region_firms:,} firms" if region_firms else "")
        typer.echo(f"{scen.name} · {result.summary['region']} · {firms} · seed {p.seed}")
        typer.echo(f"  stage shares {y0}: {a['stage1']:.1%} / {a['stage2']:.1%} / {a['stage3']:.1%}")
        if y1 != y0:
            typer.echo(f"  stage shares {y1}: {b['stage1']:.1%} / {b['stage2']:.1%} / {b['stage3']:.1%}")
        typer.echo(f"  {h['verdict']}")
        if y1 != y0:
            typer.echo(f"  {_other_verdicts(h)}")
        if warning := _runup_warning(result.summary["runup"]):
            typer.echo(f"  {warning}", err=True)
        from mittelbau.levers import underspent, underspent_together, unreached

        levers = result.summary["levers"]
        if len(levers) > 1:  # each lever's figures are those of its run alone (docs/odd.md 7.2)
            typer.echo("  each programme run alone:")
        for name, lv in levers.items():
            cpm = lv["cost_per_additional_upward_move_eur"]
            dws = lv["deadweight_share"]
            typer.echo(
                # the region's firms (agents × population_scale), the unit the € buy
                f"  {name}: €{lv['total_cost_eur'] / 1e6:.1f} M, {lv['firms_reached_region']:,.0f} firms "
                f"reached, {_moves(lv['additional_upward_moves_region'])} upward moves against no programme, "
                + (f"€{cpm:,.0f} per additional move" if cpm is not None else "no additional moves")
                + (f", deadweight {dws:.0%}" if dws is not None else "")
            )
        if policy := result.summary["policy"]:
            cpm = policy["cost_per_additional_upward_move_eur"]
            typer.echo(
                f"  all programmes{' together' if len(levers) > 1 else ''}: "
                f"€{policy['total_cost_eur'] / 1e6:.1f} M, "
                f"{_moves(policy['additional_upward_moves_region'])} upward moves against no programme, "
                + (f"€{cpm:,.0f} per additional move" if cpm is not None else "no additional moves")
            )
        notes = underspent(p, {name: lv["total_cost_eur"] for name, lv in levers.items()})
        notes += unreached(
            {name: lv["total_cost_eur"] for name, lv in levers.items()},
            {name: lv["firms_reached"] for name, lv in levers.items()},
        )
        if len(levers) > 1:  # what each spent in the run with all of them, which may fall short
            together = result.levers.groupby("lever")["spent_eur"].sum()
            spent = {name: float(together.get(name, 0.0)) for name in levers}
            notes += [f"with the other programmes, {note}" for note in underspent(p, spent)]
            policy = result.summary["policy"]
            if together_note := underspent_together(policy["total_cost_eur"], policy["planned_cost_eur"]):
                notes.append(together_note)
        for note in notes:
            typer.echo(f"warning: {scen.name}: {note}", err=True)
        typer.echo(f"  written to {folder}/")


def _moves(x: float) -> str:
    """Moves of the region's firms (agents × population_scale): whole where they are, else
    with the decimal that the € per move is computed from."""
    if float(x).is_integer():
        return f"{x:+,.0f}"
    return f"{x:+,.1f}" if abs(x) >= 0.05 else f"{x:+.2g}"


def _runup_warning(runup: dict) -> str | None:
    """A warning when the run-up's expected 2015 stage shares miss the cross-section's by more
    than its tolerance (summary.json's "runup"); None otherwise."""
    from mittelbau.core.categories import STAGE_TOLERANCE

    gap = runup["stage_share_gap"]
    if gap <= STAGE_TOLERANCE:
        return None
    got, want = (runup[k] for k in ("stage_shares_2015_expected", "stage_shares_2015_cross_section"))
    shares = " / ".join(f"{100 * got[s]:.1f}" for s in ("stage1", "stage2", "stage3"))
    target = " / ".join(f"{100 * want[s]:.1f}" for s in ("stage1", "stage2", "stage3"))
    return (
        f"warning: the run-up's expected state arrives at {shares} % in 2015 (this run's own firms "
        f"differ from it by chance) where the survey's cross-section has "
        f"{target} % ({100 * gap:.1f} points off, more than the {100 * STAGE_TOLERANCE:g} allowed): the "
        "projection starts away from the surveyed state (firms dropping a BM keep their DT: a high "
        "bm_loss_rate or much DT at the wave's start do this; docs/odd.md, 'What the data cannot give')"
    )


def _posterior(wanted: bool, path: Path | None, seeds_per_draw: int | None):
    """The posterior sample of --posterior / --posterior-file, validated, and the seeds per
    draw; (None, 1) without --posterior."""
    from mittelbau.experiments.posterior import PosteriorError, load_posterior

    if not wanted:
        if seeds_per_draw is not None:
            _fail(f"--seeds-per-draw {seeds_per_draw} goes with --posterior; allowed: add --posterior")
        return None, 1
    _at_least("--seeds-per-draw", seeds_per_draw, 1)
    try:
        sample = load_posterior(path)
    except PosteriorError as exc:
        _fail(f"--posterior{'-file' if path is not None else ''}: {exc}")
    return sample, 2 if seeds_per_draw is None else seeds_per_draw


def _run_ensemble(
    scens, replications, folder, workers, executor, scheduler, overwrite, quiet, posterior=None, per_draw=1
) -> None:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from mittelbau.experiments.ensemble import HorizonError, one_horizon, run_ensemble
    from mittelbau.experiments.executors import ExecutionError
    from mittelbau.experiments.report import write_report
    from mittelbau.experiments.store import FolderError, folder_lock

    try:
        one_horizon(scens)
    except HorizonError as exc:
        _fail(str(exc))
    total = len(scens) * replications
    lines = None if quiet or _is_terminal() else ProgressLines("ensemble")
    if lines is not None:
        lines.set_total(total)
    try:
        with Progress(
            TextColumn("[bold]runs"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            disable=quiet or lines is not None,
            transient=True,
        ) as progress:
            task = progress.add_task("runs", total=total, rate="")

            def advance(_spec, _ok) -> None:
                if lines is not None:
                    lines.advance(1)
                progress.advance(task)
                t = progress.tasks[0]
                if t.elapsed:
                    progress.update(task, rate=f"{60 * t.completed / t.elapsed:.1f} runs/min")

            def damaged(message: str) -> None:
                typer.echo(f"warning: {message}", err=True)

            counts = run_ensemble(
                scens,
                replications,
                folder,
                executor,
                workers,
                scheduler,
                advance,
                damaged,
                overwrite,
                posterior,
                per_draw,
            )
            progress.update(task, completed=total)
        _write_figures_to_files()
        with folder_lock(folder):  # no other process writes into the ensemble meanwhile
            report = write_report(
                folder, on_note=None if quiet else lambda n: typer.echo(f"warning: {n}", err=True)
            )
    except FolderError as exc:
        _fail(str(exc))
    except ExecutionError as exc:
        _fail(str(exc), code=1)
    except OSError as exc:
        _fail(f"cannot write into {folder}: {exc.strerror or exc}", code=1)
    except KeyboardInterrupt:
        _interrupted(folder, "--overwrite" if overwrite else None)
    if not quiet:
        typer.echo(
            f"{counts['ran']} runs done, {counts['skipped']} already in {folder}/ "
            f"({_count(len(scens), 'scenario')} × {_count(replications, 'replication')}, {executor}, "
            f"{_count(workers, 'worker')})"
            + (f"; {counts['recomputed']} damaged runs recomputed" if counts["recomputed"] else "")
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
    from mittelbau.experiments.executors import ExecutionError
    from mittelbau.experiments.report import write_report
    from mittelbau.experiments.store import FolderError, folder_lock

    try:
        is_folder = folder.is_dir()
    except OSError as exc:  # a name the file system does not take (too long, say)
        _fail(
            f"{str(folder)[:80]!r} is not a path the file system takes ({exc.strerror}); "
            "allowed: an ensemble folder"
        )
    if not is_folder:
        _fail(f"{str(folder)!r} is not a folder; allowed: an ensemble folder written by mittelbau run")
    if not (folder / "ensemble.json").is_file():  # before its lock is taken: nothing left behind
        _fail(
            f"{folder} holds no ensemble (ensemble.json missing); allowed: an ensemble folder "
            "written by mittelbau run"
        )
    _write_figures_to_files()
    try:
        with folder_lock(folder):  # not while a run is writing into the ensemble
            path = write_report(folder, on_note=lambda note: typer.echo(f"warning: {note}", err=True))
    except FolderError as exc:  # busy: another process writes into the ensemble
        _fail(str(exc).replace("wait until it ends, or another --out", "wait until it ends, then report"))
    except ExecutionError as exc:  # another version's, a damaged run
        _fail(str(exc))
    except OSError as exc:
        _fail(f"cannot write into {folder}: {exc.strerror or exc}", code=1)
    typer.echo(f"report: {path}")


sensitivity_app = typer.Typer(
    no_args_is_help=True, rich_markup_mode=None, help="Global sensitivity analysis (SALib)."
)
app.add_typer(sensitivity_app, name="sensitivity")

SetOpt = Annotated[list[str] | None, typer.Option("--set", help="Override a registry parameter")]
SeedOpt = Annotated[int | None, typer.Option(help="Root seed (same as --set seed=N)")]
FactorsOpt = Annotated[
    str | None,
    typer.Option(
        help="Comma-separated registry parameters to vary (default: every numeric "
        "uncertainty and the six mechanism switches)"
    ),
]
LeversOpt = Annotated[bool, typer.Option("--levers", help="Vary the lever settings too")]
RepsOpt = Annotated[
    int | None,
    typer.Option(
        help="Replications per point (default: the fewest with which the seeds make at most 5 % "
        "of every output's variance over a pilot's points)"
    ),
]
WorkersOpt = Annotated[int | None, typer.Option(help="Parallel workers (default: all cores)")]
ExecOpt = Annotated[str | None, typer.Option(help="local (processes, the default) or dask")]
SchedOpt = Annotated[str | None, typer.Option(help="Address of a running Dask scheduler")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors")]
OutOpt = Annotated[str | None, typer.Option(help="Output folder")]


def _study_setup(scenario, set_, seed, factors, levers, workers, executor, scheduler):
    """Scenario, factor names and executor settings of a sensitivity or discovery command,
    every option checked."""
    from mittelbau.experiments.sensitivity import FactorError
    from mittelbau.experiments.sensitivity import factors as chosen_factors

    assignments = _assignments(set_, seed)
    try:
        scen = load_scenario(scenario, assignments, seed)
    except ScenarioError as exc:
        _fail(str(exc))
    names = None
    if factors is not None:
        names = [f.strip() for f in factors.split(",") if f.strip()]
        if not names:
            _fail(f"--factors {factors!r} names no parameter; allowed: comma-separated registry parameters")
        if len(set(names)) != len(names):
            _fail(f"--factors {factors!r} names a parameter twice; allowed: each parameter once")
    try:
        chosen_factors(names, levers, held=scen.overrides)
    except FactorError as exc:
        _fail(f"--factors: {exc}")
    executor, workers = _executor(executor, workers, scheduler)
    return scen, names, {"executor": executor, "workers": workers, "scheduler": scheduler}


def _is_terminal() -> bool:
    """Whether a live progress bar can be seen (rich's own test)."""
    from rich.console import Console

    return Console().is_terminal


def _clock(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


class ProgressLines:
    """Progress as a plain line every `every` seconds (and at the end), for output that is
    not a terminal (a log file, CI), where a live bar would show nothing."""

    def __init__(self, label: str, every: float = 30.0, echo=None, clock=time.monotonic) -> None:
        self.label, self.every, self.clock = label, every, clock
        self.echo = echo or (lambda line: typer.echo(line, err=True))
        self.total: int | None = None
        self.done = 0
        self.start = self.last = clock()

    def set_total(self, total: int) -> None:
        self.total = total

    def advance(self, n: int) -> None:
        self.done += n
        now = self.clock()
        if now - self.last >= self.every or (self.total is not None and self.done >= self.total):
            self.last = now
            self.echo(self.line(now))

    def line(self, now: float) -> str:
        elapsed = now - self.start
        of = f"/{self.total}" if self.total is not None else ""
        text = f"{self.label}: {self.done}{of} runs, {_clock(elapsed)} elapsed"
        if self.total is not None and self.done:
            text += f", about {_clock(elapsed / self.done * max(self.total - self.done, 0))} left"
        return text


def _interrupted(folder: Path | None = None, restart: str | None = None, kept: str = "runs") -> NoReturn:
    """Ctrl-C during long work: one line saying what is kept and how to resume (`restart`: the
    option given that starts anew, which the resuming command must leave out), exit code 130
    (the shell's for an interrupt)."""
    where = f"in {folder}/" if folder is not None else "in the output folder"
    again = "the same command" if restart is None else f"the same command without {restart}"
    if _RUNNING:  # the command ends here: that line stays its last
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    typer.echo(f"interrupted: the finished {kept} are kept {where}; {again} resumes them", err=True)
    raise typer.Exit(code=130)


def _with_progress(quiet: bool, label: str, job, restart: str | None = None):
    """Run `job(advance, set_total, damaged)` with progress: a live bar with runs done of the
    total and the time left on a terminal, periodic lines otherwise, nothing when quiet;
    `damaged(message)` warns of a damaged result that is recomputed. Bad input exits 2, a
    failed run or an unwritable folder 1."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from mittelbau.experiments.executors import ExecutionError
    from mittelbau.experiments.sensitivity import FactorError
    from mittelbau.experiments.store import FolderError

    def damaged(message: str) -> None:
        typer.echo(f"warning: {message}", err=True)

    def attempt(advance, set_total, stop=lambda: None):
        # runs whose outcomes the folder already holds are not run: the total counts the others
        asked: int | None = None
        held = 0

        def total(runs: int) -> None:
            nonlocal asked
            asked = runs
            set_total(runs - held)

        def kept(runs: int) -> None:
            nonlocal held
            held += runs
            if not quiet:
                typer.echo(f"{label}: {runs} runs kept from the output folder", err=True)
            if asked is not None:
                set_total(asked - held)

        try:
            return job(advance, total, damaged, kept)
        except (FactorError, FolderError, ImportError) as exc:
            stop()
            _fail(str(exc))
        except ExecutionError as exc:
            stop()
            _fail(str(exc), code=1)
        except OSError as exc:
            stop()
            _fail(f"cannot write: {exc.strerror or exc} ({exc.filename or 'the output folder'})", code=1)
        except KeyboardInterrupt:
            stop()
            _interrupted(restart=restart)

    if quiet:
        return attempt(lambda n: None, lambda n: None)
    if not _is_terminal():
        lines = ProgressLines(label)
        return attempt(lines.advance, lines.set_total)
    with Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(pulse_style="cyan"),
        MofNCompleteColumn(),
        TextColumn("runs"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        transient=True,
    ) as progress:
        task = progress.add_task(label, total=None)
        try:
            return attempt(
                lambda n: progress.advance(task, n),
                lambda total: progress.update(task, total=total),
                progress.stop,
            )
        finally:
            progress.stop()


def _study(
    method: str,
    size: int,
    scenario: Path | None = None,
    set_: list[str] | None = None,
    seed: int | None = None,
    factors: str | None = None,
    groups: bool = False,
    levers: bool = False,
    replications: int | None = None,
    out: str | None = None,
    workers: int | None = None,
    executor: str | None = None,
    scheduler: str | None = None,
    overwrite: bool = False,
    quiet: bool = False,
    second_order: bool = False,
) -> None:
    from mittelbau.experiments.sensitivity import FactorError, check_size

    try:
        check_size(method, size)
    except FactorError as exc:
        _fail(str(exc))
    _at_least("--replications", replications, 1)
    scen, names, run_kw = _study_setup(scenario, set_, seed, factors, levers, workers, executor, scheduler)
    folder = _out(out, Path("results") / f"{method}-{scen.name}", "experiment", overwrite)
    from mittelbau.experiments.sensitivity_study import run_study  # loads the model, after the checks

    _write_figures_to_files()
    found = _with_progress(
        quiet,
        method,
        lambda advance, set_total, damaged, kept: run_study(
            method,
            scen,
            folder,
            size,
            names,
            levers,
            groups,
            replications=replications,
            run_kw={**run_kw, "on_damaged": damaged, "on_kept": kept},
            on_batch=advance,
            second_order=second_order,
            on_total=set_total,
            overwrite=overwrite,
        ),
        "--overwrite" if overwrite else None,
    )
    if not quiet:
        key = "mu_star" if method == "morris" else "ST"
        reps = found["replications"]
        typer.echo(f"{method}: {found['runs']:,} runs, {reps} replication{'s' if reps > 1 else ''} per point")
        for o, part in found["indices"].groupby("output", sort=False):
            top = ", ".join(f"{r.factor} {getattr(r, key):.2g}" for r in part.nlargest(3, key).itertuples())
            typer.echo(f"  {o}: {top}")
        for note in found["warnings"]:
            typer.echo(f"warning: {note}", err=True)
        typer.echo(f"  written to {folder}/ (sensitivity.md)")


def _option(name: str, annotation: object, default: object) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


# The options every sensitivity study takes, declared once.
STUDY_OPTIONS = (
    _option("set_", SetOpt, None),
    _option("seed", SeedOpt, None),
    _option("factors", FactorsOpt, None),
    _option(
        "groups", Annotated[bool, typer.Option("--groups", help="Move factors by registry group")], False
    ),
    _option("levers", LeversOpt, False),
    _option("replications", RepsOpt, None),
    _option("out", OutOpt, None),
    _option("workers", WorkersOpt, None),
    _option("executor", ExecOpt, None),
    _option("scheduler", SchedOpt, None),
    _option("overwrite", OverwriteOpt, False),
    _option("quiet", QuietOpt, False),
)


def _study_command(method: str, size: inspect.Parameter, *own: inspect.Parameter, doc: str):
    """A sensitivity subcommand: the scenario, the method's own options, the shared options."""

    def command(**options) -> None:
        _study(method, options.pop(size.name), **options)

    scenario = inspect.Parameter(
        "scenario",
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        default=None,
        annotation=Annotated[Path | None, typer.Argument(help="Scenario TOML file")],
    )
    command.__signature__ = inspect.Signature([scenario, size, *own, *STUDY_OPTIONS])
    command.__doc__ = doc
    command.__name__ = f"sensitivity_{method}"
    return command


sensitivity_app.command("morris")(
    _study_command(
        "morris",
        _option("trajectories", Annotated[int, typer.Option(help="Morris trajectories")], 20),
        doc="Morris screening: μ* and σ of every factor's elementary effects per indicator.",
    )
)
sensitivity_app.command("sobol")(
    _study_command(
        "sobol",
        _option("samples", Annotated[int, typer.Option(help="Base samples N (a power of two)")], 1024),
        _option(
            "second_order",
            Annotated[bool, typer.Option("--second-order", help="Also second-order indices (more runs)")],
            False,
        ),
        doc="Sobol indices (first and total order, bootstrap intervals) and their convergence.",
    )
)


@app.command()
def discover(
    scenario: Annotated[Path | None, typer.Argument(help="Scenario TOML file")] = None,
    samples: Annotated[int, typer.Option(help="Latin-hypercube points (2 or more)")] = 2000,
    set_: SetOpt = None,
    seed: SeedOpt = None,
    factors: FactorsOpt = None,
    levers: LeversOpt = False,
    replications: Annotated[int, typer.Option(help="Replications per point")] = 1,
    min_density: Annotated[
        float, typer.Option(help="Least density of the PRIM box (above 0, at most 1)")
    ] = 0.8,
    case: Annotated[
        str,
        typer.Option(
            help="Case of interest: a yes/no outcome ('hollowed': the middle hollows out, "
            "'middle_shrinks', 'competence_gap_widens') or '<output> <op> <number>', "
            "e.g. 'middle_share < 0.2'"
        ),
    ] = "hollowed",
    out: OutOpt = None,
    workers: WorkersOpt = None,
    executor: ExecOpt = None,
    scheduler: SchedOpt = None,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Scenario discovery: sample the factors, label the points where the case of interest
    occurs (by default: the middle hollows out), and find the boxes of parameter space where it
    does (PRIM)."""
    import math

    from mittelbau.experiments.discovery import discover as run_discovery
    from mittelbau.experiments.discovery import parse_case, require_prim
    from mittelbau.experiments.sensitivity import FactorError

    try:
        require_prim()
    except ImportError as exc:
        _fail(str(exc))
    _at_least("--samples", samples, 2)
    _at_least("--replications", replications, 1)
    if not (math.isfinite(min_density) and 0 < min_density <= 1):
        _fail(f"--min-density = {min_density} is invalid; allowed: a number above 0 and at most 1")
    try:
        chosen_case = parse_case(case)
    except FactorError as exc:
        _fail(f"--case: {exc}")
    scen, names, run_kw = _study_setup(scenario, set_, seed, factors, levers, workers, executor, scheduler)
    folder = _out(out, Path("results") / f"prim-{scen.name}", "experiment", overwrite)
    found = _with_progress(
        quiet,
        "discover",
        lambda advance, set_total, damaged, kept: run_discovery(
            scen,
            folder,
            samples,
            names,
            levers,
            replications,
            {**run_kw, "on_batch": advance, "on_damaged": damaged, "on_kept": kept},
            min_density,
            chosen_case,
            on_total=set_total,
            overwrite=overwrite,
        ),
        "--overwrite" if overwrite else None,
    )
    if not quiet:
        if not found["found"]:
            what = (
                f"{chosen_case.output} has no value at any sampled point"
                if found.get("undefined")
                else f"no sampled point has {chosen_case}"
            )
            typer.echo(f"{what} ({samples} points); see {folder}/prim.md")
            return

        from mittelbau.core.parameters import BY_NAME
        from mittelbau.experiments.sensitivity import is_categorical

        def limits(name: str, lo: float, hi: float) -> str:  # an uncut side is no limit
            low_cut, high_cut = found["cut"][name]
            if is_categorical(BY_NAME[name]):  # a switch (0 off, 1 on) is cut to one of the two
                return f"{name} {'on' if lo > 0 else 'off'}"
            if low_cut and high_cut:
                return f"{name} {lo:.6g}–{hi:.6g}"
            return f"{name} ≥ {lo:.6g}" if low_cut else f"{name} ≤ {hi:.6g}"

        dims = ", ".join(limits(k, lo, hi) for k, (lo, hi) in found["restricted"].items())
        dims = dims or "no factor restricted"
        typer.echo(
            f"{found['cases_of_interest']} of {found['n']} points have {chosen_case}; PRIM box: "
            f"coverage {found['coverage']:.0%}, density {found['density']:.0%}; {dims}"
        )
        typer.echo(f"  written to {folder}/ (prim.md)")


calibrate_app = typer.Typer(
    no_args_is_help=True, rich_markup_mode=None, help="Calibration against the surveys."
)
app.add_typer(calibrate_app, name="calibrate")


@calibrate_app.command("report")
def calibrate_report(
    out: Annotated[str, typer.Option(help="Output folder")] = "results/fit-report",
    replications: Annotated[int, typer.Option(help="Replicate runs per population")] = 10,
    firms: Annotated[int, typer.Option(help="Firms per run")] = 20_000,
    seed: Annotated[int, typer.Option(help="Root seed of the replicate seeds")] = 20170501,
    validation: Annotated[
        bool,
        typer.Option(
            "--validation/--no-validation",
            help="Add the checks against data not used in fitting (as `calibrate validate`, with "
            "at least its 40 runs)",
        ),
    ] = True,
) -> None:
    """Compare the model with every survey target: observed ± SE, simulated mean ± sd, z,
    within 2 SE (fit_report.md, .csv, .png), each region's predicted initial stage shares and
    the checks against data not used in fitting (validation.csv, .png)."""
    from mittelbau.calibration.fit_report import write_fit_report

    _at_least("--replications", replications, 2)
    _within("--firms", firms, *FIRMS_RANGE)
    _within("--seed", seed, 0, SEED_MAX)
    _targets_checked()
    with _written_into(out) as folder:
        _write_figures_to_files()
        from mittelbau.calibration.validation import FILES as VALIDATION_FILES

        # a report without validation leaves none of an earlier report's validation files
        with _staged(folder, gone=VALIDATION_FILES) as staging:
            page, table = write_fit_report(staging, replications, firms, seed)
            if validation:
                from mittelbau.calibration.validation import REPLICATIONS, append_to_report

                # the resilience check needs its runs (`calibrate validate`'s default at least)
                append_to_report(page, max(replications, REPLICATIONS), firms, seed)
        page = folder / page.name
        met = int(table["within_2se"].sum())
        typer.echo(f"{met} of {len(table)} targets within 2 standard errors")
        for r in table[~table["within_2se"]].itertuples():
            typer.echo(
                f"  missed: {r.target} ({r.source}): observed {r.observed:.3f}, "
                + (
                    f"simulated {r.simulated_mean:.3f}, z {r.z:+.1f}"
                    if r.z == r.z  # NaN: no run had a firm the target counts
                    else "no run had a value (too few firms for its group)"
                )
            )
        typer.echo(f"  report: {page}")


@calibrate_app.command("validate")
def calibrate_validate(
    out: Annotated[str, typer.Option(help="Output folder")] = "results/validation",
    replications: Annotated[int, typer.Option(help="Replicate runs per check")] = 40,
    firms: Annotated[int, typer.Option(help="Firms per run")] = 20_000,
    seed: Annotated[int, typer.Option(help="Root seed of the replicate seeds")] = 20170501,
) -> None:
    """Check the model against data not used in fitting: the covid-2020 shock against the
    pandemic's business-model adaptation, the 2020 size gradient of digital use, and the 2015
    stage shares of the regions outside the initial-state fit (validation.md, .csv, .png)."""
    from mittelbau.calibration.validation import write_validation

    _at_least("--replications", replications, 2)
    _within("--firms", firms, *FIRMS_RANGE)
    _within("--seed", seed, 0, SEED_MAX)
    with _written_into(out) as folder:
        _write_figures_to_files()
        with _staged(folder) as staging:
            page, v = write_validation(staging, replications, firms, seed)
        page = folder / page.name
        for r in v.table.itertuples():
            typer.echo(
                f"  {r.group}: {r.check}: observed {r.relation} {r.observed:.3g}, "
                f"model {r.model:.3g}; {r.verdict}"
            )
        typer.echo(f"  report: {page}")


@calibrate_app.command("fit")
def calibrate_fit(
    out: Annotated[str, typer.Option(help="Folder of the fit (pyabc history)")] = "results/calibration",
    population: Annotated[int, typer.Option(help="Particles per generation")] = 150,
    generations: Annotated[int, typer.Option(help="ABC-SMC generations")] = 7,
    firms: Annotated[int, typer.Option(help="Firms per simulation")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the fit")] = 20170501,
    workers: Annotated[
        int,
        typer.Option(help="Processes evaluating batches of particles (the fit is the same for any number)"),
    ] = 1,
    batch: Annotated[
        int | None,
        typer.Option(
            help="Particles whose runs step together (default: 16, as an ensemble's runs; "
            "0: one per model call with pyabc's own samplers, with --workers above 1 not reproducible)"
        ),
    ] = None,
    write: Annotated[
        bool,
        typer.Option(
            "--write",
            help="Commit the result as calibration/dynamic_parameters.toml and calibration/posterior.csv",
        ),
    ] = False,
    fresh: Annotated[bool, typer.Option("--fresh", help="Start anew instead of resuming")] = False,
    recovery: Annotated[
        Path | None,
        typer.Option(help="Folder of a `calibrate identify` run whose recovery --write records"),
    ] = None,
) -> None:
    """Fit the dynamic parameters to the dynamic targets (calibration/targets.toml, objective)
    by ABC-SMC (pyabc); resumes an interrupted fit from its history. The last generation's
    weighted particles are written as posterior_sample.csv (with --write also as
    calibration/posterior.csv, the sample posterior-predictive ensembles draw from)."""
    from mittelbau.calibration.dynamic_fit import IDENTIFIED_SD_RATIO, fit, write_parameter_set
    from mittelbau.calibration.posterior import write_posterior

    _check_write(write)
    _at_least("--population", population, 2)
    _at_least("--generations", generations, 1)
    _within("--firms", firms, *FIRMS_RANGE)
    _within("--seed", seed, 0, SEED_MAX)
    _at_least("--workers", workers, 1)
    _at_least("--batch", batch, 0)
    recovered = _recovery_table(recovery)
    _targets_checked()
    with _written_into(out) as folder:
        try:
            with _fit_progress(generations) as progress:
                result = fit(
                    folder,
                    population_size=population,
                    generations=generations,
                    firms=firms,
                    seed=seed,
                    resume=not fresh,
                    workers=workers,
                    progress=progress,
                    **({} if batch is None else {"batch": batch}),
                )
        except (ImportError, ValueError) as exc:
            _fail(str(exc))
        except KeyboardInterrupt:
            _interrupted(folder, "--fresh" if fresh else None, "generations")
        typer.echo(
            f"{_count(result.generations, 'generation')}, {_count(result.evaluations, 'simulation')} in "
            f"{result.wall_seconds:.0f} s, final epsilon {result.epsilon:.3g}, effective sample size "
            f"{result.ess:.0f} of {population}"
        )
        for r in result.posterior.itertuples():
            flag = "" if r.sd_ratio < IDENTIFIED_SD_RATIO else " (not identified)"
            typer.echo(
                f"  {r.parameter}: median {r.median:.4g} (90 % {r.q05:.4g}–{r.q95:.4g}), "
                f"sd/prior sd {r.sd_ratio:.2f}{flag}"
            )
        result.posterior.to_csv(folder / "posterior_summary.csv", index=False, float_format="%.6g")
        # the generations the fit has (a folder's fit of more than asked is returned whole)
        settings = {"population": population, "generations": result.generations, "firms": firms, "seed": seed}
        write_posterior(result, folder / "posterior_sample.csv", settings)
        if write:
            # the posterior sample first (written whole and read back), the parameter set the
            # registry reads last: a sample that cannot be written leaves both as they were
            write_posterior(result, notes=settings)
            write_parameter_set(result, settings, recovery=recovered)
            typer.echo("  written to calibration/dynamic_parameters.toml and calibration/posterior.csv")


def _generation(t: int, generations: int) -> str:
    """pyabc's generation `t` as shown: -1 is the sample that sets the first threshold."""
    return "initial sample" if t < 0 else f"generation {t + 1}/{generations}"


@contextlib.contextmanager
def _fit_progress(generations: int):
    """Progress of a fit, as `progress(t, accepted, population, evaluations)` for `fit`: on a
    terminal a live bar of the current generation's accepted particles, otherwise a line on
    standard error when a generation is complete."""
    start = time.monotonic()
    if not _is_terminal():

        def line(t: int, accepted: int, n: int, evaluations: int) -> None:
            if accepted >= n:
                typer.echo(
                    f"{_generation(t, generations)}: {n} particles accepted of {evaluations} "
                    f"evaluated, {_clock(time.monotonic() - start)} elapsed",
                    err=True,
                )

        yield line
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(pulse_style="cyan"),
        MofNCompleteColumn(),
        TextColumn("particles accepted of {task.fields[evaluations]} evaluated"),
        TimeElapsedColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task("fit", total=None, evaluations=0)

        def update(t: int, accepted: int, n: int, evaluations: int) -> None:
            bar.update(
                task,
                description=_generation(t, generations),
                completed=accepted,
                total=n,
                evaluations=evaluations,
            )

        yield update


def _recovery_table(folder: Path | None):
    """The recovery table a `calibrate identify` run wrote into `folder` (None: none)."""
    if folder is None:
        return None
    import pandas as pd

    path = folder / "identifiability.csv"
    allowed = "allowed: the --out folder of `calibrate identify`"
    if not path.is_file():
        _fail(f"--recovery {folder} holds no identifiability.csv; {allowed}")
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        _fail(f"--recovery {path} is not a readable table ({type(exc).__name__}); {allowed}")
    missing = [c for c in ("parameter", "truth", "sd_ratio", "recovered") if c not in table.columns]
    if missing or table.empty:
        what = f"has no column {', '.join(missing)}" if missing else "has no rows"
        _fail(f"--recovery {path} {what}; {allowed}")
    return table


@calibrate_app.command("identifiability")
def calibrate_identifiability(
    recovery: Annotated[Path, typer.Option(help="Folder of a `calibrate identify` run")] = Path(
        "results/identifiability"
    ),
    out: Annotated[str, typer.Option(help="Folder of the Sobol screen")] = "results/sobol-verdicts",
    n: Annotated[int, typer.Option(help="Sobol base samples")] = 64,
    firms: Annotated[int, typer.Option(help="Firms per run")] = 1000,
    seed: Annotated[int, typer.Option(help="Root seed")] = 20170501,
    workers: Annotated[int, typer.Option(help="Parallel workers")] = 1,
    write: Annotated[
        bool, typer.Option("--write", help="Commit the result as calibration/identifiability.toml")
    ] = False,
    overwrite: OverwriteOpt = False,
) -> None:
    """Which parameters drive the verdicts in 2035 (total Sobol index above 0.05) and whether the
    targets identify them (the recovery of `calibrate identify`): identified, or an assumption
    that drives the answer."""
    from mittelbau.calibration.identifiability import (
        IDENTIFIABILITY_FILE,
        VERDICT_OUTPUTS,
        classify,
        drivers,
        screened_factors,
        sobol_screen,
        write_identifiability,
    )
    from mittelbau.experiments.sensitivity import FactorError, check_size

    _check_write(write)
    try:
        check_size("sobol", n)
    except FactorError as exc:  # its rule, said of this command's option
        _fail(str(exc).replace("--samples", "--n"))
    _within("--firms", firms, *FIRMS_RANGE)
    _within("--seed", seed, 0, SEED_MAX)
    _at_least("--workers", workers, 1)
    recovered = _recovery_table(recovery)
    with _written_into(out, lock=False) as folder:  # the screen locks its folder
        from mittelbau.calibration.dynamic_fit import load_parameter_set

        fit = load_parameter_set()
        fitted = {k: v["sd_ratio"] for k, v in fit.items() if isinstance(v, dict) and "sd_ratio" in v}

        def screen(advance, set_total, damaged, kept):
            from mittelbau.experiments.experiment import ALLOWED_FOLDER
            from mittelbau.experiments.store import FolderError

            try:
                return sobol_screen(
                    folder,
                    n,
                    firms,
                    seed,
                    workers,
                    run_kw={"on_damaged": damaged, "on_kept": kept},
                    on_batch=advance,
                    on_total=set_total,
                    overwrite=overwrite,
                )
            except FolderError as exc:  # what can be done, in this command's options
                raise FolderError(
                    str(exc).replace(
                        ALLOWED_FOLDER,
                        "allowed: the same command (to resume), a larger --n (it continues the runs "
                        "the folder holds), another --out, or --overwrite to replace it",
                    )
                ) from None

        indices, warnings = _with_progress(
            False, "identifiability", screen, "--overwrite" if overwrite else None
        )
        for warning in warnings:  # the study's advice, in this command's option
            typer.echo(f"warning: {warning.replace('--samples', '--n')}", err=True)
        table = classify(drivers(indices), recovered, fitted)
        for r in table.itertuples():
            typer.echo(f"  {r.parameter}: total index {r.ST:.2f} ± {r.ST_conf:.2f} on {r.output}: {r.status}")
        if write:
            k = len(screened_factors())
            settings = {
                "method": "Sobol (SALib, Saltelli sampling), total indices",
                "n": n,
                "runs": n * (k + 2),
                "firms": firms,
                "replications": 1,
                "years": 20,
                "factors": k,
                "seed": seed,
                "outputs": list(VERDICT_OUTPUTS),
                "region": "stuttgart",
            }
            write_identifiability(table, settings, recovered)
            typer.echo(f"  written to {IDENTIFIABILITY_FILE.name}")


@calibrate_app.command("identify")
def calibrate_identify(
    out: Annotated[str, typer.Option(help="Output folder")] = "results/identifiability",
    population: Annotated[int, typer.Option(help="Particles per generation")] = 100,
    generations: Annotated[int, typer.Option(help="ABC-SMC generations")] = 7,
    firms: Annotated[int, typer.Option(help="Firms per simulation")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed")] = 2,
    truth: Annotated[
        list[str] | None,
        typer.Option(help="A fitted parameter's true value, name=value (default: its registry default)"),
    ] = None,
    fresh: Annotated[bool, typer.Option("--fresh", help="Start anew instead of resuming")] = False,
) -> None:
    """Re-estimate the dynamic parameters from synthetic targets made at known values (the
    registry defaults unless --truth sets them): which are recovered, and which do the targets
    identify at all?"""
    from mittelbau.calibration.dynamic_fit import FITTED, identify
    from mittelbau.core.parameters import BY_NAME

    _at_least("--population", population, 2)
    _at_least("--generations", generations, 1)
    _within("--firms", firms, *FIRMS_RANGE)
    # the synthetic targets are simulated with seed + 1000
    _within("--seed", seed, 0, SEED_MAX - 1000, " (the synthetic targets take --seed + 1000)")
    known = {n: float(BY_NAME[n].default) for n in FITTED}
    given: dict[str, str] = {}
    for item in truth or []:
        name, eq, value = (part.strip() for part in item.partition("="))
        if not eq or name not in FITTED:
            _fail(
                f"--truth {item!r} is invalid; allowed: name=value with a fitted parameter "
                f"({', '.join(FITTED)})"
            )
        if name in given:
            _fail(f"--truth {name} is given twice ({given[name]!r}, {item!r}); allowed: each parameter once")
        given[name] = item
        p = BY_NAME[name]
        try:
            x = float(value)
        except ValueError:
            x = float("nan")
        if not p.low <= x <= p.high:
            _fail(f"--truth {item!r}: {value!r} is invalid; allowed: a number from {p.low:g} to {p.high:g}")
        known[name] = x
    _targets_checked()
    with _written_into(out) as folder:
        truth_values = known
        try:
            table = identify(folder, truth_values, population, generations, firms, seed, resume=not fresh)
        except (ImportError, ValueError) as exc:
            _fail(str(exc))
        except KeyboardInterrupt:
            _interrupted(folder, "--fresh" if fresh else None, "generations")
        for r in table.itertuples():
            typer.echo(
                f"  {r.parameter}: truth {r.truth:.4g}, median {r.median:.4g} "
                f"(90 % {r.q05:.4g}–{r.q95:.4g}); recovered: {'yes' if r.recovered else 'no'}"
                f", identified: {'yes' if r.identified else 'no'}"
            )
        typer.echo(f"  written to {folder}/identifiability.md")


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
    import sys

    from mittelbau.dashboard.app_server import serve, server_command, server_environment

    if not 0 <= port <= 65535:
        _fail(f"--port = {port} is invalid; allowed: 0 to 65535 (0 picks a free port)")
    if scenario is not None:
        try:
            load_scenario(scenario)
        except ScenarioError as exc:
            _fail(str(exc))
    if host not in ("127.0.0.1", "localhost", "::1"):
        typer.echo(
            f"warning: --host {host} makes the dashboard reachable from other machines; it has no "
            "login, so anyone who can reach this address can use it",
            err=True,
        )
    if importlib.util.find_spec("solara") is None:
        from mittelbau.experiments.extras import needs_extra

        _fail(needs_extra("the dashboard", "dashboard"))
    from mittelbau.dashboard import assets

    if absent := assets.missing():
        _fail(
            "the dashboard's page scripts are not installed (" + ", ".join(absent) + "): run "
            "`make dashboard-assets` or `python -m mittelbau.dashboard.assets` once"
        )
    command = server_command(host, port, open_browser)
    typer.echo(f"mittelbau dashboard on {dashboard_address(host, port)} (Ctrl-C stops it)")
    sys.exit(serve(command, server_environment(scenario)))


def dashboard_address(host: str, port: int) -> str:
    """Where the dashboard answers, as a browser takes it (an IPv6 address in brackets); port 0:
    a free one the server names."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}" if port else f"http://{shown} on a free port (named by the server below)"


@app.command()
def params(
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="text (a wrapped listing), md (the table of docs/odd.md), csv or json (numbers as "
            "numbers, with units, roles, validation and exploration ranges)",
        ),
    ] = "text",
) -> None:
    """Print the parameter registry: name, default, unit, group, role, the range a scenario may
    set and the range experiments explore, description and source."""
    from mittelbau.core.registry_table import FORMATS, registry_table

    if fmt not in FORMATS:
        _fail(f"--format {fmt!r} is invalid; allowed: {', '.join(FORMATS)}")
    typer.echo(registry_table(fmt), nl=False)


@app.command("fit-initial-state")
def fit_initial_state(
    out: Annotated[
        str | None,
        typer.Option(help="Folder for the fitted initial_propensities.toml [default: results/initial-state]"),
    ] = None,
    write: Annotated[
        bool,
        typer.Option("--write", help="Replace the committed calibration/initial_propensities.toml instead"),
    ] = False,
) -> None:
    """Refit the initial-state propensities to the EMP 2015 targets (calibration/fit_initial_state.py)
    and write them to --out; only --write replaces the committed file the model reads."""
    from mittelbau.calibration.fit_initial_state import OUTPUT_FILE, main

    _check_write(write)
    if write and out is not None:
        _fail(
            f"--out {out} goes without --write, which replaces the committed file instead; allowed: "
            "--out (a folder of its own) or --write"
        )
    if write:
        written = main(OUTPUT_FILE)
    else:
        with _written_into("results/initial-state" if out is None else out) as folder:
            written = main(folder / OUTPUT_FILE.name)
    typer.echo(f"  written to {written}")


def main() -> None:
    """The console entry point: the command, then every object still alive is frozen
    (`gc.freeze`), so that the interpreter's exit skips collecting the objects of the 1,500
    modules a run loads — about a fifth of a short command's time. Files are written and closed
    by then, and exit handlers run as usual.

    The first Ctrl-C stops the command; further ones within IGNORE_SECONDS are ignored while it
    stops (workers are killed, not waited for), and so are Ctrl-Cs in the processes it forks
    (they end with it) and once it has said it was interrupted. A process started to ignore
    Ctrl-C (a script's job in the background) keeps ignoring it. Whoever called this gets its
    own Ctrl-C handling back when the command returns; the interpreter's exit ignores Ctrl-C
    (`_quiet_exit`)."""
    global _RUNNING, _first_interrupt, _hook_before
    previous = signal.getsignal(signal.SIGINT)
    _hook_before = sys.unraisablehook
    if previous is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, _interrupt_once)
    sys.unraisablehook = _dropped_interrupt_rearms
    _RUNNING, _first_interrupt = True, None
    try:
        app()
    finally:
        _RUNNING = False
        gc.freeze()
        _quiet_at_exit()
        sys.unraisablehook = _hook_before
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)


_RUNNING = False  # whether the console command runs in this process (`main`)
IGNORE_SECONDS = 3.0  # how long after a Ctrl-C further ones are ignored while the command stops
_first_interrupt: float | None = None  # when the Ctrl-C stopping the command came


def _interrupt_once(signum: int, frame: object) -> None:
    """Ctrl-C: stop the command where it is; another within IGNORE_SECONDS is ignored, as it
    would cut short the ending of the workers, or print a traceback after the command's last
    line. Later, a Ctrl-C stops the command again (should the first have been lost)."""
    global _first_interrupt
    now = time.monotonic()
    if _first_interrupt is not None and now - _first_interrupt < IGNORE_SECONDS:
        return
    _first_interrupt = now
    raise KeyboardInterrupt


def _dropped_interrupt_rearms(unraisable: Any) -> None:
    """Python drops an exception raised where it cannot be passed on (in the hooks of a fork,
    say) and calls this: a Ctrl-C dropped so did not stop the command, so the next one does,
    and nothing is printed of it. Anything else is printed as usual."""
    global _first_interrupt
    if isinstance(unraisable.exc_value, KeyboardInterrupt):
        _first_interrupt = None
        return
    _hook_before(unraisable)


_hook_before = sys.unraisablehook


def _quiet_exit() -> None:
    """Ctrl-C ignored from here to the end of the interpreter: a Ctrl-C there prints a
    traceback after the command's last line or, late in the exit, ends the process by the
    signal instead of with the command's exit code."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _quiet_at_exit() -> None:
    """Have `_quiet_exit` run first as the interpreter exits, before it waits for threads (a
    pool's, say); once per process."""
    global _QUIET_REGISTERED
    if _QUIET_REGISTERED:
        return
    _QUIET_REGISTERED = True
    # the hooks run before threads are joined, last registered first; `atexit`'s only after
    register = getattr(threading, "_register_atexit", atexit.register)
    register(_quiet_exit)


_QUIET_REGISTERED = False


def _forked_by_the_command() -> None:
    if _RUNNING:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


# processes the command forks (local workers, pyabc's) leave Ctrl-C to the command, which ends them
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked_by_the_command)


if __name__ == "__main__":  # pragma: no cover - `python -m mittelbau.cli`
    main()
