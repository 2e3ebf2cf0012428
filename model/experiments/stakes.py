"""What is at stake in € and persons (docs/odd.md, 'Economics'): a run's `economics.csv`,
its headline figures, and what a programme buys in value added and jobs kept against the
same-seed run without programmes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mittelbau.core.categories import START_YEAR
from mittelbau.core.economics import GROUP_NAMES, column_names
from mittelbau.core.model import MittelbauModel

HORIZON_REFERENCE_YEAR = START_YEAR  # horizon summaries compare with the survey year
UNDEFINED = "undefined: nothing kept"
DEFINITIONS = {
    "value_added_eur": "gross value added of the region's firms after what platform owners "
    "capture (€ per year, region totals = agent sums × population_scale)",
    "value_added_captured_eur": "value added of platform suppliers that moves to platform owners",
    "value_added_lost_exits_eur": "value added of firms that exited minus that of their entrants "
    "so far (entrants start small): the first table's value added = in firms + captured + lost",
    "employment_stuck_stage1": "persons in firms of the first table that were in stage 1 then and still are",
    "eur_per_value_added_kept": "programme cost / value added kept in the region's firms, both "
    "discounted at discount_rate to the first recorded year; null (undefined) when nothing is kept",
    "eur_per_job_kept": "programme cost / additional persons employed at the horizon; null "
    "(undefined) when no job is kept",
}


def years_of(model: MittelbauModel) -> np.ndarray:
    """The recorded years of a run (from its first state)."""
    return int(model.datacollector.get_model_vars_dataframe()["year"].iloc[0]) + np.arange(
        len(model.economics.records)
    )


def economics_table(model: MittelbauModel) -> pd.DataFrame:
    """`economics.csv`: per year and group (all, size class, industry, stage) the region's
    firms, employment and €; the accounting terms on the rows of group 'all'."""
    rec = model.economics.region_records()  # years × groups × columns
    years = years_of(model)
    cols = column_names()
    frame = pd.DataFrame(rec.reshape(-1, len(cols)), columns=cols)
    frame.insert(0, "group", np.tile(GROUP_NAMES, len(years)))
    frame.insert(0, "year", np.repeat(years, len(GROUP_NAMES)))
    return frame


def headline(model: MittelbauModel) -> dict[str, Any]:
    """Region totals at the start, in the survey year (when recorded) and at the horizon, and
    cumulative exits; the service revenue share of the survey year as the surveys measure it
    (mean over firms, sources §2.12)."""
    table = economics_table(model)
    whole = table[table["group"] == "all"].set_index("year")
    first, last = whole.index[0], whole.index[-1]
    ref = HORIZON_REFERENCE_YEAR if HORIZON_REFERENCE_YEAR in whole.index else first

    def at(year: int, key: str) -> float:
        return round(float(whole.loc[year, key]), 2)

    keys = (
        "employment",
        "revenue_eur",
        "service_revenue_eur",
        "value_added_eur",
        "value_added_captured_eur",
        "employment_platform_suppliers",
        "employment_stuck_stage1",
    )
    return {
        "population_scale": round(model.population_scale, 6),
        "region_firms": model.params.region_firms,
        "reference_year": int(ref),
        "at_reference": {k: at(ref, k) for k in keys},
        "at_horizon": {k: at(last, k) for k in keys},
        "value_added_lost_exits_eur": at(last, "value_added_lost_exits_eur"),
        "employment_exited": round(float(whole.loc[first + 1 :, "employment_exited"].sum()), 2),
        "value_added_exited_eur": round(float(whole.loc[first + 1 :, "value_added_exited_eur"].sum()), 2),
        "service_revenue_share_mean": round(float(model.economics.service_share_mean[ref - first]), 6),
    }


def discount(years: np.ndarray, rate: float) -> np.ndarray:
    """Discount factors to the first of `years`."""
    return (1.0 + rate) ** -(years - years[0]).astype(float)


def kept(
    model: MittelbauModel, base: MittelbauModel, spent_by_year: pd.Series | None = None
) -> dict[str, Any]:
    """What the programmes of `model` keep against `base` (same seed, no programmes): value
    added in the region's firms summed over the years and discounted, jobs at the horizon,
    and the € of programme per € kept and per job kept — None (undefined) when nothing is
    kept, never 0. `spent_by_year`: spending per year (default: all of the run's levers)."""
    years = years_of(model)
    col = column_names().index
    mine, theirs = model.economics.region_records()[:, 0], base.economics.region_records()[:, 0]
    d = discount(years, model.params.discount_rate)
    va = float((d * (mine[:, col("value_added_eur")] - theirs[:, col("value_added_eur")])).sum())
    jobs = float(mine[-1, col("employment")] - theirs[-1, col("employment")])
    if spent_by_year is None:
        rec = pd.DataFrame(model.lever_records, columns=["year", "lever", "spent", "r", "u", "d"])
        spent_by_year = rec.groupby("year")["spent"].sum()
    spent = spent_by_year.reindex(years, fill_value=0.0).to_numpy(float)
    cost, cost_disc = float(spent.sum()), float((d * spent).sum())
    return {
        "value_added_kept_eur": round(va, 2),
        "jobs_kept": round(jobs, 2),
        "discounted_cost_eur": round(cost_disc, 2),
        "eur_per_value_added_kept": round(cost_disc / va, 6) if va > 0 else None,
        "eur_per_job_kept": round(cost / jobs, 2) if jobs > 0 else None,
    }
