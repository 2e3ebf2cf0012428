"""Tables, summary and figure of a run, and writing them to a folder all at once."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mittelbau import __version__
from mittelbau.core.categories import INDUSTRIES, SIZE_CLASSES, START_YEAR
from mittelbau.core.dynamics import MOTIVES
from mittelbau.core.indicators import hollowing_ratio, polarisation_index
from mittelbau.core.mechanisms import active
from mittelbau.core.model import MittelbauModel
from mittelbau.core.outcomes import at_horizon, definitions, horizon_values
from mittelbau.core.scenario import Scenario
from mittelbau.experiments import stakes
from mittelbau.experiments.store import json_text
from mittelbau.levers import Reach, planned_public_cost

# the groups of stage_shares.csv: (group_by, group), with group_by one of all, size, industry
GROUPS = [("all", "all")] + [("size", c) for c in SIZE_CLASSES] + [("industry", i) for i in INDUSTRIES]


# levers.csv: one row per lever and year, typed also when no lever is switched on
LEVER_COLUMNS = {
    "year": "int64",
    "lever": "string",
    "spent_eur": "float64",
    "firms_reached": "int64",
    "upward_moves": "int64",
    "deadweight": "int64",
}

# version of what a run's files hold (summary.json's fields, the outcomes, the tables' columns):
# raised when they change, so that a folder's runs of an earlier version are not mixed with new
# ones (ensembles refuse to resume them; reading them stays possible)
SUMMARY_SCHEMA = 3

# fields of summary.json beside the outcomes (whose definitions come from the outcome registry)
RUNUP_DEFINITIONS = {
    "runup": "years before 2015: the model's own dynamics from runup_start_year to the 2015 "
    "survey state; verdicts and changes compare the horizon with 2015",
    "implied_coupling": "population-weighted median over firm types of the DT adoption hazard "
    "with a BM over the one without, as the run-up to the 2015 cross-section requires (only a "
    "lower bound when types_at_bracket_end is 0.5 or more)",
    "types_at_bracket_end": "population share of firm types whose DT hazard sits at an end of the "
    "searched bracket: their 2015 state lies beyond the dynamics' reach",
    "stage_shares_2015_expected": "stage shares of the run-up's expected (mean-field) 2015 state",
    "stage_shares_2015_cross_section": "stage shares of the fitted 2015 cross-section the run-up "
    "is solved for",
}


@dataclass(frozen=True)
class RunResult:
    scenario: Scenario
    stage_shares: pd.DataFrame
    transitions: pd.DataFrame
    indicators: pd.DataFrame
    levers: pd.DataFrame
    summary: dict[str, Any]
    economics: pd.DataFrame | None = None  # economics.csv (model/experiments/stakes.py)


def upward_moves(model: MittelbauModel) -> int:
    """All moves to a higher stage (1→2, 1→3, 2→3) after 2015."""
    projected = model.transitions[model.runup_years :]
    if not projected:
        return 0
    t = np.sum(projected, axis=0)
    return int(t[1, 2] + t[1, 3] + t[2, 3])


def cost_per_move(cost: float, extra: int, scale: float) -> float | None:
    """€ per additional upward move of the region's firms (`extra` moves of agents, each
    standing for `scale` firms); None without additional moves."""
    return round(cost / (extra * scale), 2) if extra > 0 else None


def levers_table(model: MittelbauModel) -> pd.DataFrame:
    """levers.csv: one row per lever and year (typed also when there is none)."""
    return pd.DataFrame(model.lever_records, columns=list(LEVER_COLUMNS)).astype(LEVER_COLUMNS)


def lever_summary(
    model: MittelbauModel,
    levers: pd.DataFrame,
    no_policy: MittelbauModel | None,
    alone: dict[str, MittelbauModel],
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Per lever, from its run alone (the scenario's run when it is the only lever; in a mix the
    same-seed run of that lever alone, so that every figure of a lever — what it spent, whom
    it reached, their moves, deadweight, value kept — belongs to one run, and the levers of a
    mix are credited separately): cost, reach (by size class and starting stage), upward moves
    and deadweight of reached firms, and additional upward moves against the same-seed run
    without any programme. `policy`: the same for the scenario's run, all its levers together."""
    if no_policy is None:
        return {}, None
    base_up = upward_moves(no_policy)
    scale = model.population_scale  # moves of agents × scale = moves of the region's firms

    def per_move(cost: float, extra: int) -> float | None:
        return cost_per_move(cost, extra, scale)

    def reach(record: Reach) -> dict[str, Any]:
        return {
            "firms_reached": int(record.reached_by.sum()),
            "firms_reached_region": round(float(record.reached_by.sum()) * scale, 2),
            "firms_reached_by_size": {
                c: int(v) for c, v in zip(SIZE_CLASSES, record.reached_by.sum(axis=1), strict=True)
            },
            "firms_reached_by_start_stage": {
                str(k + 1): int(v) for k, v in enumerate(record.reached_by.sum(axis=0))
            },
        }

    out: dict[str, Any] = {}
    for name in (lever.name for lever in model.levers):
        run = alone[name]
        lever = next(lv for lv in run.levers if lv.name == name)
        rows = levers if run is model else levers_table(run)
        rows = rows[rows["lever"] == name]
        cost = float(rows["spent_eur"].sum())
        ups, dead = int(rows["upward_moves"].sum()), int(rows["deadweight"].sum())
        extra = upward_moves(run) - base_up
        out[name] = {
            "total_cost_eur": round(cost, 2),
            "firm_cost_eur": round(lever.firm_cost_eur, 2),
            **reach(lever.reach),
            "upward_moves_of_reached": ups,
            "deadweight_moves": dead,
            "deadweight_share": round(dead / ups, 6) if ups else None,
            "additional_upward_moves": extra,
            "additional_upward_moves_region": round(extra * scale, 2),
            "cost_per_additional_upward_move_eur": per_move(cost, extra),
            # value added and jobs kept (model/experiments/stakes.py)
            **stakes.kept(run, no_policy, rows.groupby("year")["spent_eur"].sum()),
        }
    total = float(levers["spent_eur"].sum())
    extra = upward_moves(model) - base_up
    policy = {
        "levers": [lever.name for lever in model.levers],
        "total_cost_eur": round(total, 2),
        "planned_cost_eur": round(planned_public_cost(model.params), 2),
        # distinct firms any of the programmes reached in this run (a lever's own reach is
        # counted in its run alone)
        **reach(model.reach),
        "upward_moves": upward_moves(model),
        "upward_moves_without_programmes": base_up,
        "additional_upward_moves": extra,
        "additional_upward_moves_region": round(extra * scale, 2),
        "cost_per_additional_upward_move_eur": per_move(total, extra),
        **stakes.kept(model, no_policy, levers.groupby("year")["spent_eur"].sum()),
        "stage_shares_end_without_programmes": {
            f"stage{k + 1}": round(float(v), 6) for k, v in enumerate(no_policy.shares)
        },
    }
    return out, policy


def collect(
    model: MittelbauModel,
    scenario: Scenario,
    no_policy: MittelbauModel | None = None,
    alone: dict[str, MittelbauModel] | None = None,
) -> RunResult:
    """Turn a finished model (and, with levers, its same-seed counterfactual runs) into its
    tables and summary."""
    counts = np.stack(model.stage_counts)  # years × groups × 3
    years = model.first_year + np.arange(counts.shape[0])
    totals = counts.sum(axis=2, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    y, g, s = np.meshgrid(np.arange(len(years)), np.arange(len(GROUPS)), np.arange(3), indexing="ij")
    stage_shares = pd.DataFrame(
        {
            "year": years[y.ravel()],
            "group_by": np.array([by for by, _ in GROUPS])[g.ravel()],
            "group": np.array([label for _, label in GROUPS])[g.ravel()],
            "stage": s.ravel() + 1,
            "share": shares.ravel(),
        }
    )[np.repeat(totals.ravel() > 0, 3)].reset_index(drop=True)

    rows = []
    for k, matrix in enumerate(model.transitions):
        for a in range(4):
            for b in range(4):
                if a or b:
                    rows.append((model.first_year + k + 1, a, b, int(matrix[a, b])))
    transitions = pd.DataFrame(rows, columns=["year", "from_stage", "to_stage", "firms"])
    indicators = model.datacollector.get_model_vars_dataframe().reset_index(drop=True)
    levers = levers_table(model)
    summary = summarise(model, scenario, indicators)
    summary["levers"], summary["policy"] = lever_summary(model, levers, no_policy, alone or {})
    summary["outcomes"] = at_horizon(indicators, summary)
    summary["headline"] |= verdict_indicators(indicators, summary["outcomes"])
    summary["economics"] = stakes.headline(model)
    summary["definitions"] = definitions() | RUNUP_DEFINITIONS | stakes.DEFINITIONS
    economics = stakes.economics_table(model)
    return RunResult(scenario, stage_shares, transitions, indicators, levers, summary, economics)


def outcomes(model: MittelbauModel, no_policy: MittelbauModel | None = None) -> dict[str, Any]:
    """The run's outcomes at the horizon (summary.json's "outcomes", as `collect` gives them)
    without its tables and the rest of its summary: what sampled experiments keep of a run.
    The one outcome of the whole run, € per additional upward move, needs the levers' spending
    and the same-seed run without any programme."""
    policy = None
    if no_policy is not None:
        extra = upward_moves(model) - upward_moves(no_policy)
        total = float(levers_table(model)["spent_eur"].sum())
        policy = {"cost_per_additional_upward_move_eur": cost_per_move(total, extra, model.population_scale)}
    run = {"policy": policy, "runup": {"stage_share_gap": round(model.runup.stage_gap, 6)}}
    if model.outcomes_only:
        return horizon_values(model.horizon_rows, run)
    return at_horizon(model.yearly_outcomes(), run)


def _stage_dict(shares: np.ndarray) -> dict[str, float]:
    return {f"stage{k}": round(float(x), 6) for k, x in enumerate(shares, start=1)}


def verdict(indicators: pd.DataFrame, threshold: float) -> tuple[int | None, str]:
    """First year the middle is hollowed out, and the sentence that says so."""
    s = indicators[["stage1", "stage2", "stage3"]].to_numpy()
    hollow = indicators["hollowed"].astype(bool)
    first = next((int(y) for y, h in zip(indicators["year"], hollow, strict=True) if h), None)
    start, end = int(indicators["year"].iloc[0]), int(indicators["year"].iloc[-1])
    change = (
        f"stage 2 {100 * s[0, 1]:.1f} % in {start} → {100 * s[-1, 1]:.1f} % in {end}; "
        f"hollowing ratio {hollowing_ratio(s[0]):.2f} → {hollowing_ratio(s[-1]):.2f}"
    )
    rule = f"hollowed = stage 2 below {threshold:g} × the smaller of stages 1 and 3"
    if start == end:
        state = "hollowed out" if first is not None else "not hollowed out"
        return first, (
            f"Initial state {start} only: the middle tier is {state} (stage 2 "
            f"{100 * s[0, 1]:.1f} %, hollowing ratio {hollowing_ratio(s[0]):.2f}; {rule})."
        )
    if first is None:
        return None, f"The middle tier does not hollow out by {end} ({change}; {rule})."
    if first == start:  # a threshold under which the starting state itself counts as hollow
        now = "and still is" if hollow.iloc[-1] else "but is not"
        return first, (
            f"The middle tier is hollowed out already in {start}, the starting state, {now} in "
            f"{end} ({change}; {rule})."
        )
    if not hollow.iloc[-1]:  # below the threshold for a while, above it again at the horizon
        return first, (
            f"The middle tier hollows out in {first} but is no longer hollowed out in {end} "
            f"({change}; {rule})."
        )
    return first, f"The middle tier hollows out by {first} and still is in {end} ({change}; {rule})."


def _rounded(x: float) -> float | None:
    return round(float(x), 6) if np.isfinite(x) else None


def verdict_indicators(indicators: pd.DataFrame, outcomes: dict[str, Any]) -> dict[str, Any]:
    """The verdicts beside 'two worlds' for the headline (docs/odd.md, 'Indicators'): the
    middle shrinks, the stuck shares at the horizon, the competence gap in 2015 and at the
    horizon and whether it widens. The values at the horizon are the registry's outcomes."""
    gap_2015 = float(indicators.loc[indicators["year"] == START_YEAR, "competence_gap"].iloc[0])
    return {
        "middle_shrinks": outcomes["middle_shrinks"],
        "stuck_share": outcomes["stuck_share"],
        "stuck_share_small": outcomes["stuck_share_small"],
        "stuck_closed_share": outcomes["stuck_closed_share"],
        "competence_gap": [_rounded(gap_2015), outcomes["competence_gap"]],
        "competence_gap_widens": outcomes["competence_gap_widens"],
    }


def summarise(model: MittelbauModel, scenario: Scenario, indicators: pd.DataFrame) -> dict[str, Any]:
    """The run's summary; the headline compares the horizon with the 2015 state (the run-up
    years are in the tables)."""
    p = model.params
    ind = indicators[indicators["year"] >= START_YEAR].reset_index(drop=True)
    first, sentence = verdict(ind, p.hollowing_threshold)
    start, end = ind.iloc[0], ind.iloc[-1]
    motives = model.motive_totals
    n_intro = sum(motives.values())

    def shares(row: pd.Series) -> dict[str, float]:
        return {f"stage{k}": round(float(row[f"stage{k}"]), 6) for k in (1, 2, 3)}

    return {
        "scenario": {
            "name": scenario.name,
            "description": scenario.description,
            "file": None if scenario.path is None else Path(scenario.path).name,
            "overrides": scenario.overrides,
        },
        "parameters": p.model_dump(),
        "seed": p.seed,
        "mittelbau_version": __version__,
        "region": model.region.name,
        "years": [int(start["year"]), int(end["year"])],
        "firms_by_size_class": {
            c: int(n)
            for c, n in zip(
                SIZE_CLASSES, model.stage_counts[-1][1 : 1 + len(SIZE_CLASSES)].sum(axis=1), strict=True
            )
        },
        "runup": {
            "years": [model.first_year, START_YEAR],
            "dt_wave_start_year": model.runup.dt_wave_start_year,
            "implied_coupling": round(model.runup.coupling, 4),
            "types_at_bracket_end": round(model.runup.bracketed_share, 4),
            "stage_shares_2015_expected": _stage_dict(model.runup.expected_stage_shares),
            "stage_shares_2015_cross_section": _stage_dict(model.runup.target_stage_shares),
            "stage_share_gap": round(model.runup.stage_gap, 6),
            "stage_shares_first_year": shares(indicators.iloc[0]),
        },
        "headline": {
            "verdict": sentence,
            "hollowed": first is not None,
            "year_hollowed": first,
            "stage_shares_start": shares(start),
            "stage_shares_end": shares(end),
            "middle_share_change_pp": round(100 * float(end["stage2"] - start["stage2"]), 3),
            "polarisation_index": [
                round(polarisation_index(start[["stage1", "stage2", "stage3"]].to_numpy(float)), 6),
                round(polarisation_index(end[["stage1", "stage2", "stage3"]].to_numpy(float)), 6),
            ],
            "hollowing_ratio": [
                round(float(start["hollowing_ratio"]), 6),
                round(float(end["hollowing_ratio"]), 6),
            ],
            "bm_introductions_by_motive": {
                m: round(motives[m] / n_intro, 6) if n_intro else None for m in MOTIVES
            },
        },
        "mechanisms": list(active(p)),
    }


def _folder_mode() -> int:
    """The permissions a new folder gets under the process's umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o777 & ~mask


def write_run(result: RunResult, out: Path, figure: bool = True) -> list[Path]:
    """Write all files into a temporary folder beside `out`, then put that folder in the place
    of `out` (whatever `out` held is replaced, never mixed with the new files), so an
    interrupted or failed write leaves nothing half-written. Temporary folders left by earlier
    writes into `out` whose process has ended are removed. A command holds `store.run_lock(out)`
    from the start of the run to the end of the write: one writer per folder."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_orphans(out)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-{os.getpid()}-", dir=out.parent))
    # the folder as `mkdir` would make it (private temporaries are 0700), or as the one replaced
    tmp.chmod(out.stat().st_mode & 0o7777 if out.is_dir() else _folder_mode())
    old = None
    try:
        result.stage_shares.to_csv(tmp / "stage_shares.csv", index=False, float_format="%.6f")
        result.transitions.to_csv(tmp / "transitions.csv", index=False)
        result.indicators.to_csv(tmp / "indicators.csv", index=False, float_format="%.6f")
        result.levers.to_csv(tmp / "levers.csv", index=False, float_format="%.2f")
        if result.economics is not None:
            result.economics.to_csv(tmp / "economics.csv", index=False, float_format="%.2f")
        (tmp / "summary.json").write_text(json_text(result.summary), encoding="utf-8")
        if figure:
            # matplotlib loads here, when a figure is written: runs in workers write none
            from mittelbau.experiments.plots import plot_stage_shares

            plot_stage_shares(result.stage_shares, result.summary, tmp / "stage_shares.png")
        if out.exists():
            old = out.with_name(f"{tmp.name}-old")
            os.replace(out, old)
        os.replace(tmp, out)
    finally:
        # the old results go once the new are in place, and back if the write stopped between
        if old is not None and old.exists():
            if out.exists():
                shutil.rmtree(old)
            else:
                os.replace(old, out)
        if tmp.exists():
            shutil.rmtree(tmp)
    return sorted(out.iterdir())


def remove_orphans(out: Path) -> None:
    """Remove `.<name>.tmp-<pid>-…` folders beside `out` whose writing process has ended; but
    where `out` is missing, the results a writer had set aside (`…-old`) go back in its place
    (the writer was killed between its two moves)."""
    for stale in sorted(out.parent.glob(f".{out.name}.tmp-*")):
        pid = stale.name.removeprefix(f".{out.name}.tmp-").split("-")[0]
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            if stale.name.endswith("-old") and not out.exists():
                os.replace(stale, out)
            else:
                shutil.rmtree(stale, ignore_errors=True)
        except (ValueError, PermissionError):
            continue
