"""What is at stake in € and persons (docs/odd.md, 'Economics'): a run's `economics.csv`,
its headline figures, and what a programme buys in value added and jobs kept against the
same-seed run without programmes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mittelbau.core.categories import START_YEAR
from mittelbau.core.economics import GROUP_NAMES, STOCKS, column_names
from mittelbau.core.model import MittelbauModel

HORIZON_REFERENCE_YEAR = START_YEAR  # horizon summaries compare with the survey year
DEFINITIONS = {
    "value_added_eur": "gross value added of the region's firms after what platform owners "
    "capture (€ per year, region totals = agent sums × population_scale)",
    "value_added_captured_eur": "value added of platform suppliers that moves to platform owners",
    "value_added_lost_exits_eur": "value added of firms that exited minus that of their entrants "
    "so far (entrants start small): the 2015 firms' value added = in firms + captured + lost",
    "employment_stuck_stage1": "persons in 2015 firms that were in stage 1 then and still are",
    "eur_per_value_added_kept": "programme cost / value added kept in the region's firms, both "
    "discounted at discount_rate to 2015; null (undefined) when nothing is kept",
    "eur_per_job_kept": "programme cost / additional persons employed at the horizon; null "
    "(undefined) when no job is kept",
}


def years_of(model: MittelbauModel) -> np.ndarray:
    """The years of the economics' records: its accounting starts with the 2015 state (the
    run-up has none), so these are the years of indicators.csv from 2015 on."""
    return START_YEAR + np.arange(len(model.economics.records))


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
    """Region totals (firms and the stocks) in the survey year (when recorded, else at the
    start) and at the horizon, the accounting terms at the horizon (value added and jobs lost
    through exits not yet made up, V₀) and cumulative exits (firms, persons, value added); the
    service revenue share of the survey year as the surveys measure it (mean over firms,
    sources §2.12)."""
    table = economics_table(model)
    whole = table[table["group"] == "all"].set_index("year")
    first, last = whole.index[0], whole.index[-1]
    ref = HORIZON_REFERENCE_YEAR if HORIZON_REFERENCE_YEAR in whole.index else first

    def at(year: int, key: str) -> float:
        return round(float(whole.loc[year, key]), 2)

    return {
        "population_scale": round(model.population_scale, 6),
        "region_firms": model.params.region_firms,
        "reference_year": int(ref),
        "at_reference": {k: at(ref, k) for k in ("firms", *STOCKS)},
        "at_horizon": {k: at(last, k) for k in ("firms", *STOCKS)},
        "value_added_lost_exits_eur": at(last, "value_added_lost_exits_eur"),
        "employment_lost_exits": at(last, "employment_lost_exits"),
        "value_added_reference_eur": at(last, "value_added_reference_eur"),
        "exits": round(float(whole.loc[first + 1 :, "exits"].sum()), 2),
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


# ---- ensembles ----------------------------------------------------------------------------
STAKE_KEYS = {  # headline key → label in the report (at the horizon unless said otherwise)
    "value_added_eur": "value added in the region's firms (€ M/year)",
    "value_added_captured_eur": "captured by platforms (€ M/year)",
    "value_added_lost_exits_eur": "lost through exits not replaced (€ M/year)",
    "service_revenue_eur": "service revenue (€ M/year)",
    "employment_exited": "persons in firms that exited (cumulative)",
    "employment_platform_suppliers": "persons in platform suppliers",
    "employment_stuck_stage1": "persons in stage-1 firms still stuck",
}


def _stake(summary: dict[str, Any], key: str) -> float:
    econ = summary["economics"]
    return float(econ[key] if key in econ else econ["at_horizon"][key])


def stakes_table(ens: dict[str, Any]) -> pd.DataFrame:
    """Per scenario and outcome of STAKE_KEYS: median and 5–95 % band over runs (region totals)."""
    from mittelbau.experiments.intervals import band

    rows = []
    for name in ens["manifest"]["scenarios"]:
        runs = [r["summary"] for r in ens["summaries"] if r["scenario"] == name]
        runs = [s for s in runs if "economics" in s]
        for key in STAKE_KEYS:
            vals = np.array([_stake(s, key) for s in runs], dtype=float)
            med, lo, hi = band(vals) if len(vals) else (np.nan,) * 3
            rows.append(
                {"scenario": name, "outcome": key, "median": med, "low": lo, "high": hi, "runs": len(vals)}
            )
    return pd.DataFrame(rows)


def price(cost: float, kept: tuple[float, float, float]) -> tuple[float | None, float | None, float | None]:
    """€ per unit kept from the mean cost and the mean kept with its interval: cost / mean,
    and the bounds cost / high … cost / low; None (undefined) where the kept amount is not
    above 0 — a programme that keeps nothing has no finite price."""

    def ratio(x: float) -> float | None:
        return cost / x if np.isfinite(x) and x > 0 else None

    mean, low, high = kept
    if cost == 0 and ratio(mean) is not None:  # nothing spent: every bound is 0, none unbounded
        return 0.0, 0.0, 0.0
    return ratio(mean), ratio(high), ratio(low)


def kept_table(ens: dict[str, Any]) -> pd.DataFrame:
    """Per scenario with programmes, for the whole programme and each lever: mean value added
    and jobs kept with their 90 % intervals over runs (same-seed pairs; over the draws' means
    in a posterior-predictive ensemble), and € per € kept and per job kept from the mean cost
    (undefined where nothing is kept)."""
    from mittelbau.experiments.intervals import draw_mean_interval, seeds_per_draw

    per_draw = seeds_per_draw(ens)  # runs of one draw are correlated
    rows = []
    for name in ens["manifest"]["scenarios"]:
        mine = [r for r in ens["summaries"] if r["scenario"] == name]
        runs = [r["summary"] for r in mine]
        replicates = np.array([r["replicate"] for r in mine])
        if not runs or not runs[0].get("policy") or "value_added_kept_eur" not in runs[0]["policy"]:
            continue
        parts = {"programme": [s["policy"] for s in runs]}
        for lever in runs[0]["levers"]:
            parts[lever] = [s["levers"][lever] for s in runs]
        for part, records in parts.items():
            va = draw_mean_interval([r["value_added_kept_eur"] for r in records], replicates, per_draw)
            jobs = draw_mean_interval([r["jobs_kept"] for r in records], replicates, per_draw)
            disc = float(np.mean([r["discounted_cost_eur"] for r in records]))
            cost = float(np.mean([r["total_cost_eur"] for r in records]))
            per_va, per_jobs = price(disc, va), price(cost, jobs)
            rows.append(
                {
                    "scenario": name,
                    "lever": part,
                    "runs": len(records),
                    "value_added_kept_eur": va[0],
                    "value_added_kept_low": va[1],
                    "value_added_kept_high": va[2],
                    "jobs_kept": jobs[0],
                    "jobs_kept_low": jobs[1],
                    "jobs_kept_high": jobs[2],
                    "eur_per_value_added_kept": per_va[0],
                    "eur_per_value_added_kept_low": per_va[1],
                    "eur_per_value_added_kept_high": per_va[2],
                    "eur_per_job_kept": per_jobs[0],
                    "eur_per_job_kept_low": per_jobs[1],
                    "eur_per_job_kept_high": per_jobs[2],
                }
            )
    return pd.DataFrame(rows)


def _money(x: float | None, scale: float = 1.0, fmt: str = "{:,.0f}") -> str:
    return "undefined" if x is None or not np.isfinite(x) else fmt.format(x * scale)


def _price_cell(r: pd.Series, key: str, fmt: str, kept: str) -> str:
    """A price with its interval; `kept` names the column of the amount kept, whose interval
    the price's bounds come from (none from one run)."""
    from mittelbau.experiments.intervals import NO_INTERVAL

    mean, low, high = r[key], r[f"{key}_low"], r[f"{key}_high"]
    if mean is None or pd.isna(mean):
        return "undefined (nothing kept on average)"
    if pd.isna(r[f"{kept}_low"]):
        return f"{fmt.format(mean)} {NO_INTERVAL}"
    # the interval of what is kept reaches zero: the price has no upper bound
    upper = "unbounded" if high is None or pd.isna(high) else fmt.format(high)
    return f"{fmt.format(mean)} [{_money(low, fmt=fmt)}–{upper}]"


def fan_figure(ens: dict[str, Any], path: Path) -> Path:
    """Value added in the region's firms, what platforms capture plus what exits have cost, and
    persons in stage-1 firms still stuck, per year: median and 5–95 % band over runs."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    from mittelbau.experiments.intervals import BAND, band
    from mittelbau.experiments.plots import save_figure

    econ = ens["economics"]
    whole = econ[econ["group"] == "all"].assign(
        at_stake_eur=lambda d: d["value_added_captured_eur"] + d["value_added_lost_exits_eur"]
    )
    panels = (
        ("value_added_eur", 1e-9, "value added in the region's firms (€ bn/year)"),
        ("at_stake_eur", 1e-6, "captured by platforms + lost through exits (€ M/year)"),
        ("employment_stuck_stage1", 1.0, "persons in stage-1 firms still stuck"),
    )
    fig = Figure(figsize=(14, 3.8), layout="constrained")
    axes = fig.subplots(1, 3)
    colours = colormaps["tab10"].colors
    for i, name in enumerate(ens["manifest"]["scenarios"]):
        part = whole[whole["scenario"] == name]
        for ax, (key, scale, title) in zip(axes, panels, strict=True):
            wide = part.pivot(index="replicate", columns="year", values=key)
            med, lo, hi = band(wide.to_numpy() * scale)
            ax.fill_between(wide.columns, lo, hi, color=colours[i % 10], alpha=0.2, lw=0)
            ax.plot(wide.columns, med, color=colours[i % 10], label=name, lw=1.6)
            ax.set(title=title, xlabel="year")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].legend(fontsize=8)
    fig.suptitle(f"What is at stake: median and {BAND[0]:g}–{BAND[1]:g} % band over runs", fontweight="bold")
    fig.get_layout_engine().set(h_pad=0.1)  # room between the title and the panels' titles
    return save_figure(fig, path, dpi=100)


def report_lines(ens: dict[str, Any], folder: Path | None = None) -> list[str]:
    """The report's section on what is at stake and what programmes keep (with its figure
    written into `folder` when given)."""
    from mittelbau.experiments.intervals import interval_text

    stakes_ = stakes_table(ens)
    if stakes_.empty or not stakes_["runs"].any():
        return []
    horizon = ens["summaries"][0]["summary"]["years"][1]
    lines = [
        f"## What is at stake (region totals at {horizon}, median [5–95 %] over runs)",
        "",
        "Agent sums × population_scale (firms of the region per agent); value added after what "
        "platform owners capture; 'lost through exits' is value added of exited firms not yet "
        "made up by their entrants (docs/odd.md, 'Economics').",
        "",
        "| scenario | " + " | ".join(STAKE_KEYS.values()) + " |",
        "|---|" + "---|" * len(STAKE_KEYS),
    ]
    for name in ens["manifest"]["scenarios"]:
        part = stakes_[stakes_["scenario"] == name].set_index("outcome")
        cells = []
        for key in STAKE_KEYS:
            r = part.loc[key]
            s = 1e-6 if key.endswith("_eur") else 1.0
            cells.append(f"{r['median'] * s:,.0f} [{r['low'] * s:,.0f}–{r['high'] * s:,.0f}]")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    if folder is not None and len(ens.get("economics", [])):
        lines += [f"![what is at stake]({fan_figure(ens, folder / 'stakes.png').name})", ""]
    kept_ = kept_table(ens)
    if len(kept_):
        lines += [
            "### Value added and jobs kept (mean [90 % interval], against the same seed without programmes)",
            "",
            "Value added kept is summed over the years and discounted at `discount_rate`, as is the "
            "cost it is set against; jobs kept are persons at the horizon. A price is undefined "
            "where the amount kept is not above zero — the programme keeps nothing for its money.",
            "",
            "| scenario | lever | value added kept (€ M) | € per € kept | jobs kept | € per job kept |",
            "|---|---|---|---|---|---|",
        ]
        for _, r in kept_.iterrows():
            va = interval_text(r.value_added_kept_low / 1e6, r.value_added_kept_high / 1e6, "{:,.1f}", ", ")
            lines.append(
                f"| {r.scenario} | {r.lever} | {r.value_added_kept_eur * 1e-6:,.1f} "
                f"{va} | "
                f"{_price_cell(r, 'eur_per_value_added_kept', '{:,.2f}', 'value_added_kept')} | "
                f"{r.jobs_kept:,.0f} {interval_text(r.jobs_kept_low, r.jobs_kept_high, '{:,.0f}', ', ')} | "
                f"{_price_cell(r, 'eur_per_job_kept', '{:,.0f}', 'jobs_kept')} |"
            )
        lines.append("")
    return lines
