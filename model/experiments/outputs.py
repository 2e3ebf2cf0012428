"""Tables, summary and figure of a run, and writing them to a folder all at once."""

from __future__ import annotations

import json
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
from mittelbau.core.model import MittelbauModel
from mittelbau.core.outcomes import at_horizon, definitions
from mittelbau.core.scenario import Scenario
from mittelbau.experiments.plots import plot_stage_shares
from mittelbau.levers import planned_public_cost

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


@dataclass(frozen=True)
class RunResult:
    scenario: Scenario
    stage_shares: pd.DataFrame
    transitions: pd.DataFrame
    indicators: pd.DataFrame
    levers: pd.DataFrame
    summary: dict[str, Any]


def upward_moves(model: MittelbauModel) -> int:
    """All moves to a higher stage (1→2, 1→3, 2→3) over the run."""
    if not model.transitions:
        return 0
    t = np.sum(model.transitions, axis=0)
    return int(t[1, 2] + t[1, 3] + t[2, 3])


def lever_summary(
    model: MittelbauModel,
    levers: pd.DataFrame,
    no_policy: MittelbauModel | None,
    alone: dict[str, MittelbauModel],
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Per lever: cost, reach (by size class and starting stage), upward moves and deadweight
    of reached firms, and additional upward moves against the same-seed run without any
    programme (the lever run alone, so that levers of a mix are credited separately)."""
    if no_policy is None:
        return {}, None
    base_up = upward_moves(no_policy)

    def per_move(cost: float, extra: int) -> float | None:
        return round(cost / extra, 2) if extra > 0 else None

    out: dict[str, Any] = {}
    for lever in model.levers:
        rows = levers[levers["lever"] == lever.name]
        cost = float(rows["spent_eur"].sum())
        ups, dead = int(rows["upward_moves"].sum()), int(rows["deadweight"].sum())
        extra = upward_moves(alone[lever.name]) - base_up
        out[lever.name] = {
            "total_cost_eur": round(cost, 2),
            "firm_cost_eur": round(lever.firm_cost_eur, 2),
            "firms_reached": int(lever.reached_by.sum()),
            "firms_reached_by_size": {
                c: int(v) for c, v in zip(SIZE_CLASSES, lever.reached_by.sum(axis=1), strict=True)
            },
            "firms_reached_by_start_stage": {
                str(k + 1): int(v) for k, v in enumerate(lever.reached_by.sum(axis=0))
            },
            "upward_moves_of_reached": ups,
            "deadweight_moves": dead,
            "deadweight_share": round(dead / ups, 6) if ups else None,
            "additional_upward_moves": extra,
            "cost_per_additional_upward_move_eur": per_move(cost, extra),
        }
    total = float(levers["spent_eur"].sum())
    extra = upward_moves(model) - base_up
    policy = {
        "levers": [lever.name for lever in model.levers],
        "total_cost_eur": round(total, 2),
        "planned_cost_eur": round(planned_public_cost(model.params), 2),
        "upward_moves": upward_moves(model),
        "upward_moves_without_programmes": base_up,
        "additional_upward_moves": extra,
        "cost_per_additional_upward_move_eur": per_move(total, extra),
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
    years = START_YEAR + np.arange(counts.shape[0])
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
                    rows.append((START_YEAR + k + 1, a, b, int(matrix[a, b])))
    transitions = pd.DataFrame(rows, columns=["year", "from_stage", "to_stage", "firms"])
    indicators = model.datacollector.get_model_vars_dataframe().reset_index(drop=True)
    levers = pd.DataFrame(model.lever_records, columns=list(LEVER_COLUMNS)).astype(LEVER_COLUMNS)
    summary = summarise(model, scenario, indicators)
    summary["levers"], summary["policy"] = lever_summary(model, levers, no_policy, alone or {})
    summary["outcomes"] = at_horizon(indicators, summary)
    summary["definitions"] = definitions()
    return RunResult(scenario, stage_shares, transitions, indicators, levers, summary)


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
    return first, f"The middle tier hollows out by {first} ({change}; {rule})."


def summarise(model: MittelbauModel, scenario: Scenario, ind: pd.DataFrame) -> dict[str, Any]:
    p = model.params
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
    }


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
    try:
        result.stage_shares.to_csv(tmp / "stage_shares.csv", index=False, float_format="%.6f")
        result.transitions.to_csv(tmp / "transitions.csv", index=False)
        result.indicators.to_csv(tmp / "indicators.csv", index=False, float_format="%.6f")
        result.levers.to_csv(tmp / "levers.csv", index=False, float_format="%.2f")
        (tmp / "summary.json").write_text(
            json.dumps(result.summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        if figure:
            plot_stage_shares(result.stage_shares, result.summary, tmp / "stage_shares.png")
        if out.exists():
            old = out.with_name(f"{tmp.name}-old")
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old)
        else:
            os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return sorted(out.iterdir())


def remove_orphans(out: Path) -> None:
    """Remove `.<name>.tmp-<pid>-…` folders beside `out` whose writing process has ended."""
    for stale in out.parent.glob(f".{out.name}.tmp-*"):
        pid = stale.name.removeprefix(f".{out.name}.tmp-").split("-")[0]
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(stale, ignore_errors=True)
        except (ValueError, PermissionError):
            continue
