"""The comparison report of an ensemble folder: figures and a Markdown page."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from mittelbau.core.categories import SIZE_CLASSES, START_YEAR
from mittelbau.core.outcomes import HORIZONS, OUTCOMES
from mittelbau.core.runup import miss_note
from mittelbau.core.scenario import make_params
from mittelbau.experiments import stakes
from mittelbau.experiments.ensemble import load_ensemble
from mittelbau.experiments.intervals import (
    BAND,
    LEVEL,
    NO_INTERVAL,
    band,
    band_of_unbounded,
    draw_mean_interval,
    interval_text,
    seeds_per_draw,
    wilson_effective,
    wilson_interval,
)
from mittelbau.experiments.plots import STAGE_COLOURS, STAGE_NAMES, THRESHOLD_COLOUR, save_figure, share_axis
from mittelbau.experiments.posterior import spread_table
from mittelbau.levers import BY_LEVER, SPENT_SHARE, planned_lever_cost, underspent_together

REFERENCE_NAMES = ("baseline",)


def _wide(table: pd.DataFrame, scenario: str, value: str) -> pd.DataFrame:
    """Replicates × years of one column of `indicators`."""
    part = table[table["scenario"] == scenario]
    return part.pivot(index="replicate", columns="year", values=value)


def reference_scenario(names: list[str]) -> str:
    """The scenario others are compared with: 'baseline' if present, otherwise the first."""
    return next((n for n in names if n in REFERENCE_NAMES), names[0])


def spread(ens: dict[str, Any]) -> pd.DataFrame:
    """Seed and parameter parts of each registry outcome's spread (posterior ensembles only)."""
    m = seeds_per_draw(ens)
    if m is None or ens["runs"].empty:
        return pd.DataFrame()
    return spread_table(ens["runs"], list(OUTCOMES), m, ens["manifest"]["posterior"]["parameters"])


def design_effect(ens: dict[str, Any], split: pd.DataFrame, scenario: str, outcome: str) -> float:
    """How much more a mean over the runs varies than one over independent runs: 1 in a plain
    ensemble, 1 + (m − 1) · ICC in a posterior one, its bound m where the split is unknown."""
    if not len(split):
        return 1.0
    found = split[(split["scenario"] == scenario) & (split["outcome"] == outcome)]
    effect = float(found["design_effect"].iloc[0]) if len(found) else np.nan
    return effect if np.isfinite(effect) else float(seeds_per_draw(ens) or 1)


def verdicts(ens: dict[str, Any]) -> pd.DataFrame:
    """Per scenario: share of runs whose middle hollows out by the horizon, with its interval,
    the median year of hollowing among those runs and the share of runs still hollowed out at
    the horizon. In a posterior ensemble the share is
    the posterior-predictive probability; its Wilson interval counts the runs at their
    effective number (runs / design effect), since runs at one parameter draw are not
    independent."""
    split = spread(ens)
    ind = ens["indicators"]
    at_end = ind[ind["year"] == ind["year"].max()]
    rows = []
    for name in ens["manifest"]["scenarios"]:
        runs = [r["summary"] for r in ens["summaries"] if r["scenario"] == name]
        years = [s["headline"]["year_hollowed"] for s in runs]
        hollow = [y for y in years if y is not None]
        still = at_end.loc[at_end["scenario"] == name, "hollowed"].astype(bool)
        p, lo, hi = wilson_interval(len(hollow), len(runs))
        effect = design_effect(ens, split, name, "hollowed")
        if len(split):
            lo, hi = wilson_effective(p, len(runs) / effect)
        horizon = runs[0]["years"][1] if runs else None
        rows.append(
            {
                "scenario": name,
                "runs": len(runs),
                "design_effect": effect,
                "horizon": horizon,
                "p_hollowed": p,
                "p_low": lo,
                "p_high": hi,
                "median_year": int(np.median(hollow)) if hollow else None,
                # of all runs, those hollowed out at the horizon (a middle may recover)
                "p_hollowed_end": float(still.mean()) if len(still) else np.nan,
            }
        )
    return pd.DataFrame(rows)


def verdict_probabilities(ens: dict[str, Any]) -> pd.DataFrame:
    """Per scenario: the share of runs in which the middle shrinks and in which the competence
    gap widens (Wilson intervals), and the mean stuck shares at the horizon (t intervals) —
    the verdicts beside 'two worlds' (docs/odd.md, 'Indicators'). In a posterior ensemble the
    shares' intervals are widened by each outcome's design effect (runs at one draw are
    correlated), and the means' are t intervals over the draws' means."""
    split = spread(ens)
    per_draw = seeds_per_draw(ens)
    rows = []
    for name in ens["manifest"]["scenarios"]:
        runs = [r for r in ens["summaries"] if r["scenario"] == name]
        heads = [r["summary"]["headline"] for r in runs]
        row: dict[str, Any] = {"scenario": name, "runs": len(heads)}
        for key in ("middle_shrinks", "competence_gap_widens"):
            known = [h.get(key) for h in heads if h.get(key) is not None]
            p, lo, hi = wilson_interval(sum(bool(k) for k in known), len(known))
            if len(split) and known:
                lo, hi = wilson_effective(p, len(known) / design_effect(ens, split, name, key))
            row |= {f"p_{key}": p, f"p_{key}_low": lo, f"p_{key}_high": hi}
        for key in ("stuck_share", "stuck_closed_share", "stuck_share_small"):
            known = [
                (r["replicate"], h[key]) for r, h in zip(runs, heads, strict=True) if h.get(key) is not None
            ]
            vals = np.array([v for _, v in known], dtype=float)
            reps = np.array([rep for rep, _ in known], dtype=int)
            m, lo, hi = draw_mean_interval(vals, reps, per_draw) if len(vals) else (np.nan,) * 3
            row |= {key: m, f"{key}_low": lo, f"{key}_high": hi}
        rows.append(row)
    return pd.DataFrame(rows)


def verdict_sentence(row: pd.Series, posterior: bool = False) -> str:
    """The report's sentence for a row of `verdicts`: the share of runs (for a posterior
    ensemble, the posterior-predictive probability) in which the middle hollows out by the
    horizon, its interval, the median year, and the share still hollowed out at the horizon."""
    interval = f"{LEVEL:.0%} interval {row.p_low:.0%}–{row.p_high:.0%}"
    # a middle below the threshold in some year may be above it again at the horizon
    still = getattr(row, "p_hollowed_end", np.nan)
    if posterior:  # one decimal: a posterior verdict is read against small probabilities
        interval = f"{LEVEL:.0%} interval {row.p_low:.1%}–{row.p_high:.1%}"
        return (
            f"**{row.scenario}**: posterior-predictive probability that the middle hollows out "
            f"by {row.horizon}: {row.p_hollowed:.1%} ({interval}; {row.runs} runs, design "
            f"effect {row.design_effect:.2f})"
            + ("" if pd.isna(row.median_year) else f"; median year {int(row.median_year)}")
            + (
                "."
                if pd.isna(still) or row.p_hollowed == 0
                else f"; still hollowed out in {row.horizon}: {still:.1%}."
            )
        )
    if row.p_hollowed == 0:
        return (
            f"**{row.scenario}**: the middle does not hollow out by {row.horizon} in any of "
            f"{row.runs} runs ({interval} for the share of runs)."
        )
    return (
        f"**{row.scenario}**: the middle hollows out by {row.horizon} in {row.p_hollowed:.0%} "
        f"of {row.runs} runs ({interval}); median year {int(row.median_year)}"
        + ("." if pd.isna(still) else f"; still hollowed out in {row.horizon} in {still:.0%} of the runs.")
    )


# what makes two scenarios' runs start from the same firms (with the same seed), beside the
# number of the region's firms an agent stands for (`population_scale`, `region_firms` resolved)
POPULATION_KEYS = ("region", "firms")


def paired_differences(ens: dict[str, Any]) -> pd.DataFrame:
    """Each scenario minus the reference, paired by replicate (common random numbers where the
    scenarios share their seed and their firms: region and numbers of firms; `same_firms` says
    whether they do): end stage-2 share (pp) and upward moves after 2015 of the region's firms
    (moves of agents × each scenario's population_scale, the unit the levers' table and its €
    per move use)."""
    ind, trans = ens["indicators"], ens["transitions"]
    names = list(ens["manifest"]["scenarios"])
    ref = reference_scenario(names)
    end = ind[ind["year"] == ind["year"].max()].set_index(["scenario", "replicate"])["stage2"]
    projected = trans[trans.year > START_YEAR]  # the run-up's moves are not the scenario's
    up = projected[
        ((projected.from_stage == 1) & (projected.to_stage >= 2))
        | ((projected.from_stage == 2) & (projected.to_stage == 3))
    ]
    scale = {r["scenario"]: r["summary"]["economics"]["population_scale"] for r in ens["summaries"]}
    # every run, those without a move after 2015 too (none at a horizon of 2015)
    moves = up.groupby(["scenario", "replicate"])["firms"].sum().reindex(end.index, fill_value=0)
    moves = moves * moves.index.get_level_values("scenario").map(scale).to_numpy()
    seeds = {n: s["seeds"] for n, s in ens["manifest"]["scenarios"].items()}
    scenarios = ens["manifest"]["scenarios"]
    firms = {
        n: (*(s["parameters"].get(k) for k in POPULATION_KEYS), scale.get(n)) for n, s in scenarios.items()
    }
    per_draw = seeds_per_draw(ens)
    rows = []
    for name in names:
        if name == ref:
            continue
        d2 = (end.loc[name] - end.loc[ref]).dropna() * 100
        dm = (moves.loc[name] - moves.loc[ref]).dropna()
        m2, l2, h2 = draw_mean_interval(d2.to_numpy(), d2.index.to_numpy(), per_draw)
        mm, lm, hm = draw_mean_interval(dm.to_numpy(), dm.index.to_numpy(), per_draw)
        rows.append(
            {
                "scenario": name,
                "reference": ref,
                "pairs": len(d2),
                "same_firms": firms[name] == firms[ref],
                "common_random_numbers": seeds[name] == seeds[ref] and firms[name] == firms[ref],
                "stage2_end_pp": m2,
                "stage2_low": l2,
                "stage2_high": h2,
                "upward_moves": mm,
                "upward_low": lm,
                "upward_high": hm,
            }
        )
    return pd.DataFrame(rows)


def lever_table(ens: dict[str, Any]) -> pd.DataFrame:
    """Per scenario and lever (each run alone, and for several, a row `TOGETHER` of all of
    them in one run, without a deadweight share): median and 5–95 % band over runs of cost,
    reach, additional upward moves and deadweight share; the planned and the mean cost; and € per additional
    move from the means over runs —
    the mean cost over the mean additional moves, its bounds the mean cost over the bounds of
    the mean's 90 % interval (`stakes.price`: undefined, NaN, where the moves are not above 0),
    so that runs in which the lever added no move count as they are."""
    rows = []
    per_draw = seeds_per_draw(ens)
    for name in ens["manifest"]["scenarios"]:
        mine = [r for r in ens["summaries"] if r["scenario"] == name]
        runs = [r["summary"] for r in mine]
        replicates = np.array([r["replicate"] for r in mine])  # draw r // m of a posterior
        levers = list(runs[0]["levers"]) if runs else []
        for lever in levers:
            records = [r["levers"][lever] for r in runs]
            # the plan of the scenario's parameters (every run's programmes are the same)
            planned = planned_lever_cost(make_params(runs[0]["parameters"]), BY_LEVER[lever])
            row = _lever_row(records, planned, replicates, per_draw)
            rows.append({"scenario": name, "lever": lever} | row)
        if len(levers) > 1:  # all of them in one run: what the mix buys together
            records = [r["policy"] for r in runs]
            planned = float(records[0]["planned_cost_eur"])
            row = _lever_row(records, planned, replicates, per_draw)
            rows.append({"scenario": name, "lever": TOGETHER} | row)
    return pd.DataFrame(rows)


# the levers table's row of a scenario's programmes run together
TOGETHER = "all together"
LEVER_KEYS = ("total_cost_eur", "firms_reached_region", "additional_upward_moves_region", "deadweight_share")


def _lever_row(
    records: list[dict[str, Any]], planned: float, replicates: np.ndarray, per_draw: int | None
) -> dict[str, Any]:
    """One row of the levers table from the runs' records of a lever (or of the programmes
    together, which have no deadweight share): bands, the plan and the mean cost, and € per
    additional move with its bounds."""
    row: dict[str, Any] = {}
    for k in LEVER_KEYS:
        vals = np.array([r[k] for r in records if r.get(k) is not None], dtype=float)
        med, lo, hi = band(vals) if len(vals) else (np.nan,) * 3
        row |= {k: med, f"{k}_low": lo, f"{k}_high": hi, f"{k}_runs": len(vals)}
    cost = float(np.mean([r["total_cost_eur"] for r in records]))
    row["reached_any"] = any((r.get("firms_reached_region") or 0) > 0 for r in records)
    row["planned_cost_eur"] = planned
    row["mean_cost_eur"] = cost
    extra = np.array([r["additional_upward_moves_region"] for r in records], dtype=float)
    moves = draw_mean_interval(extra, replicates, per_draw)
    k = "cost_per_additional_upward_move_eur"
    per, lo, hi = (np.nan if v is None else v for v in stakes.price(cost, moves))
    row |= {k: per, f"{k}_low": lo, f"{k}_high": hi, f"{k}_runs": len(records)}
    row[f"{k}_interval"] = bool(np.isfinite(moves[1]))  # none from one run (or draw)
    return row


def unspent_mixes(ens: dict[str, Any]) -> list[str]:
    """The scenarios of several programmes whose runs with all of them spent, on average, under
    SPENT_SHARE of their plan together (each programme's row of the levers table is its run
    alone, which may spend its plan where the mix does not)."""
    notes = []
    for name in ens["manifest"]["scenarios"]:
        # (a run without programmes has no policy block)
        policies = [r["summary"].get("policy") or {} for r in ens["summaries"] if r["scenario"] == name]
        if not policies or len(policies[0].get("levers", [])) < 2:
            continue
        spent = float(np.mean([q["total_cost_eur"] for q in policies]))
        if note := underspent_together(spent, float(policies[0]["planned_cost_eur"])):
            notes.append(f"{name}: {note} on average")
    return notes


def _fan(ax, years, values: np.ndarray, colour: str, label: str, scale: float = 100.0) -> None:
    med, lo, hi = band(values)
    ax.fill_between(years, scale * lo, scale * hi, color=colour, alpha=0.25, lw=0)
    ax.plot(years, scale * med, color=colour, label=label, lw=1.8)


def figures(ens: dict[str, Any], folder: Path) -> list[Path]:
    ind = ens["indicators"]
    names = list(ens["manifest"]["scenarios"])
    years = sorted(ind["year"].unique())
    colours = colormaps["tab10"].colors
    paths = []

    fig = Figure(figsize=(4.2 * len(names), 3.6), layout="constrained")
    axes = fig.subplots(1, len(names), sharey=True, squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        for k in (1, 2, 3):
            _fan(ax, years, _wide(ind, name, f"stage{k}").to_numpy(), STAGE_COLOURS[k], STAGE_NAMES[k])
        ax.set(title=name, xlabel="year", ylim=(0, 100))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0][0].set_ylabel("share of firms (%)")
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"Stage shares: median and {BAND[0]:g}–{BAND[1]:g} % band over runs")
    paths.append(save_figure(fig, folder / "fan_stage_shares.png"))

    fig = Figure(figsize=(11, 4), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    top_ratio = 0.0
    for i, name in enumerate(names):
        _fan(ax1, years, _wide(ind, name, "stage2").to_numpy(), colours[i % 10], name)
        hr = _wide(ind, name, "hollowing_ratio").to_numpy()
        _fan(ax2, years, hr, colours[i % 10], name, scale=1.0)
        top_ratio = max(top_ratio, float(np.nanmax(np.where(np.isfinite(hr), hr, np.nan), initial=0.0)))
    threshold = ens["summaries"][0]["summary"]["parameters"]["hollowing_threshold"]
    ax2.axhline(threshold, color=THRESHOLD_COLOUR, ls="--", lw=1, label=f"threshold {threshold:g}")
    share_axis(ax1, 100 * ind["stage2"])
    ax2.set_ylim(0, max(2.0, 1.1 * top_ratio))
    ax1.set(title="Middle tier (stage 2)", ylabel="share of firms (%)", xlabel="year")
    ax2.set(title="Hollowing ratio s2 / min(s1, s3)", ylabel="ratio", xlabel="year")
    for ax in (ax1, ax2):
        ax.legend(fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    paths.append(save_figure(fig, folder / "middle_and_hollowing.png"))

    shares = ens["stage_shares"]
    last = shares[(shares["year"] == shares["year"].max()) & (shares["group_by"] == "size")]
    fig = Figure(figsize=(12, 3.8), layout="constrained")
    axes = fig.subplots(1, 3, sharey=True)
    width = 0.8 / len(names)
    for k, ax in zip((1, 2, 3), axes, strict=True):
        for i, name in enumerate(names):
            part = last[(last["scenario"] == name) & (last["stage"] == k)]
            wide = part.pivot(index="replicate", columns="group", values="share")
            wide = wide[list(SIZE_CLASSES)].to_numpy()
            med, lo, hi = band(wide)
            x = np.arange(len(SIZE_CLASSES)) + (i - (len(names) - 1) / 2) * width
            ax.bar(
                x,
                100 * med,
                width,
                yerr=[100 * (med - lo), 100 * (hi - med)],
                color=colours[i % 10],
                label=name,
                capsize=2,
            )
        ax.set_xticks(np.arange(len(SIZE_CLASSES)), SIZE_CLASSES)
        ax.set(title=STAGE_NAMES[k], xlabel="employees")
    share_axis(axes[0], 100 * last["share"])
    axes[0].set_ylabel(f"share at {int(shares['year'].max())} (%)")
    axes[0].legend(fontsize=8)
    fig.suptitle(
        f"Stage shares by size class at {int(shares['year'].max())}: bars the median, whiskers the "
        f"{BAND[0]:g}–{BAND[1]:g} % band over runs",
        fontweight="bold",
    )
    fig.get_layout_engine().set(h_pad=0.1)
    paths.append(save_figure(fig, folder / "size_classes_at_horizon.png"))
    return paths


def horizon_outcomes(ens: dict[str, Any]) -> pd.DataFrame:
    """Every registry outcome at the horizon, one row per run (scenario, replicate, seed)."""
    rows = [
        {
            "scenario": r["scenario"],
            "replicate": r["replicate"],
            "seed": r["seed"],
            **r["summary"]["outcomes"],
        }
        for r in ens["summaries"]
    ]
    return pd.DataFrame(rows, columns=["scenario", "replicate", "seed", *OUTCOMES])


def _number(x: float) -> str:
    if x == np.inf:  # a price at which no move was bought
        return "unbounded"
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3g}"


def outcome_table(ens: dict[str, Any]) -> list[str]:
    """Markdown rows: each registry outcome per scenario — the share of runs with its 90 %
    interval for a yes/no outcome (in a posterior ensemble counting the runs at their
    effective number, runs / design effect, as the verdicts do), the median and 5–95 % band
    over runs for a number."""
    table = horizon_outcomes(ens)
    names = list(ens["manifest"]["scenarios"])
    # a run whose programmes spent money but have no value of an outcome that has an
    # `undefined` value (a price at which no move was bought) counts as that value, as in
    # discovery (the table's rows are the summaries' runs, in order)
    spent = pd.Series(
        [(r["summary"].get("policy") or {}).get("total_cost_eur", 0.0) > 0 for r in ens["summaries"]],
        index=table.index,
    )
    split = spread(ens)
    lines = [
        "| outcome | unit | at the horizon | " + " | ".join(names) + " |",
        "|---|---|---|" + "---|" * len(names),
    ]
    for o in OUTCOMES.values():
        cells = []
        for name in names:
            mine = table["scenario"] == name
            values = table.loc[mine, o.name]
            if o.undefined is not None:
                values = values.astype(float).where(values.notna() | ~spent[mine], o.undefined)
            values = values.dropna()
            if o.kind is bool:
                p, lo, hi = wilson_interval(int(values.astype(bool).sum()), len(values))
                if len(split) and len(values):
                    lo, hi = wilson_effective(p, len(values) / design_effect(ens, split, name, o.name))
                cells.append(f"{p:.0%} of runs [{lo:.0%}–{hi:.0%}]" if len(values) else "–")
            elif len(values):
                x = values.to_numpy(dtype=float)
                med, lo, hi = band_of_unbounded(x)
                total = int((table["scenario"] == name).sum())
                # runs where the outcome has no value, or its undefined value, say so
                defined = "" if len(values) == total else f" ({len(values)} of {total} runs)"
                if undefined := int(np.sum(x == o.undefined)) if o.undefined is not None else 0:
                    defined += f" ({undefined} of {total} runs: {o.undefined_note})"
                cells.append(f"{_number(med)} [{_number(lo)}–{_number(hi)}]{defined}")
            else:
                cells.append("–")
        lines.append(f"| `{o.name}` | {o.unit} | {HORIZONS[o.horizon].text} | " + " | ".join(cells) + " |")
    return lines


def _probability_row(r: pd.Series) -> str:
    def share(key: str) -> str:
        return f"{r[key]:.0%} [{r[key + '_low']:.0%}–{r[key + '_high']:.0%}]"

    def mean(key: str) -> str:
        if not np.isfinite(r[key]):
            return "–"
        if not np.isfinite(r[key + "_low"]):
            return f"{100 * r[key]:.1f} %"
        return f"{100 * r[key]:.1f} % [{100 * r[key + '_low']:.1f}–{100 * r[key + '_high']:.1f}]"

    return (
        f"| {r['scenario']} | {share('p_middle_shrinks')} | {share('p_competence_gap_widens')} | "
        f"{mean('stuck_share')} | {mean('stuck_closed_share')} | {mean('stuck_share_small')} |"
    )


def _fmt_band(row: pd.Series, key: str, scale: float = 1.0, fmt: str = "{:,.0f}") -> str:
    if row[f"{key}_runs"] == 0:
        return "–"
    if not np.isfinite(row[key]):
        return "undefined"
    v, lo, hi = (row[key] * scale, row[f"{key}_low"] * scale, row[f"{key}_high"] * scale)
    if not row.get(f"{key}_interval", True):  # a mean's interval from one unit: none
        return f"{fmt.format(v)} {NO_INTERVAL}"
    low = fmt.format(lo) if np.isfinite(lo) else "–"
    high = fmt.format(hi) if np.isfinite(hi) else "unbounded"
    return f"{fmt.format(v)} [{low}–{high}]"


def posterior_lines(ens: dict[str, Any], split: pd.DataFrame, folder: Path) -> list[str]:
    """The report's section on a posterior ensemble: the sample, the design and each outcome's
    spread split into its seed and parameter parts (also written as spread.csv)."""
    if not len(split):
        return []
    drawn = ens["manifest"]["posterior"]
    split.to_csv(folder / "spread.csv", index=False, float_format="%.6g")
    held: dict[str, set[str]] = {}
    for r in ens["summaries"]:
        held.setdefault(r["scenario"], set()).update(r["summary"].get("posterior", {}).get("held", []))
    held_text = "; ".join(f"{name}: {', '.join(sorted(h))}" for name, h in held.items() if h)
    lines = [
        "## Parameter uncertainty",
        "",
        f"Each replicate drew its parameter set ({', '.join(drawn['parameters'])}) from the "
        f"posterior sample {drawn['file']} ({drawn['particles']} particles, SHA-256 "
        f"{drawn['sha256'][:12]}…), {drawn['seeds_per_draw']} seeds per draw; each run's "
        "summary.json names its draw, particle and parameters."
        + (
            " A scenario that sets one of them itself holds it at its own value instead of "
            f"drawing it (by scenario: {held_text})."
            if held_text
            else ""
        ),
        "",
        "The spread of each outcome over runs splits into a seed part (the mean variance "
        "between seeds at one parameter set, E[Var(Y | θ)]) and a parameter part (the variance "
        "of the mean over parameter sets, Var(E[Y | θ])), estimated by the one-way "
        "random-effects analysis of variance of draws × seeds (docs/odd.md, 'Parameter "
        "uncertainty'). Standard deviations; share = parameter part / total variance.",
        "",
        "| outcome | scenario | draws | mean | sd | seed sd | parameter sd | parameter share |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in split.itertuples():
        if not np.isfinite(r.sd):
            lines.append(f"| `{r.outcome}` | {r.scenario} | – | – | – | – | – | – |")
            continue
        share = f"{r.parameter_share:.0%}" if np.isfinite(r.parameter_share) else "undefined (no spread)"
        lines.append(
            f"| `{r.outcome}` | {r.scenario} | {int(r.draws)} | {_number(r.mean)} | {_number(r.sd)} | "
            f"{_number(r.seed_sd)} | {_number(r.parameter_sd)} | {share} |"
        )
    return [*lines, ""]


def progress(ens: dict[str, Any]) -> tuple[dict[str, int], dict[str, int]]:
    """Per scenario of the ensemble's design: its finished runs and its runs in the design."""
    designed: dict[str, int] = {name: 0 for name in ens["manifest"]["scenarios"]}
    for run in ens["manifest"]["runs"]:
        designed[run.split("/")[1]] += 1
    finished = {name: 0 for name in designed}
    for r in ens["summaries"]:
        finished[r["scenario"]] += 1
    return finished, designed


def unfinished_lines(finished: dict[str, int], designed: dict[str, int]) -> list[str]:
    """The report's warning when runs of the design have not finished (none when all have)."""
    done, total = sum(finished.values()), sum(designed.values())
    if done == total:
        return []
    parts = ", ".join(f"{n} {finished[n]} of {designed[n]}" for n in designed if finished[n] < designed[n])
    return [
        f"**Incomplete:** {done} of {total} runs of the design have finished ({parts}); every figure "
        "below is of the finished runs. Rerun the ensemble's command to finish the others.",
        "",
    ]


def write_report(folder: str | Path, on_note: Callable[[str], None] | None = None) -> Path:
    """Write report.md and its figures into the ensemble folder; return the report's path.
    `on_note` receives the report's warnings: runs of the design that have not finished, runs
    whose run-up misses the 2015 state (`runup.miss_note`)."""
    folder = Path(folder)
    ens = load_ensemble(folder)
    finished, designed = progress(ens)
    empty = [name for name in designed if not finished.get(name)]
    if empty:
        from mittelbau.experiments.ensemble import EnsembleError

        raise EnsembleError(
            f"{folder} has no finished runs of {', '.join(empty)} to report on; allowed: a report "
            "once every scenario has finished runs (rerun the ensemble's command to finish them)"
        )
    if on_note is not None and (note := unfinished_lines(finished, designed)):
        on_note(note[0].replace("**", ""))
    # runs of an earlier version have no value of the outcome: the note counts those that do
    miss = miss_note(ens["runs"].get("runup_gap", []))
    if on_note is not None and miss:
        on_note(miss)
    figs = figures(ens, folder)
    ver = verdicts(ens)
    split = spread(ens)
    posterior = seeds_per_draw(ens) is not None
    probs = verdict_probabilities(ens)
    diffs = paired_differences(ens)
    levers = lever_table(ens)
    ind = ens["indicators"]
    end_year = int(ind["year"].max())
    lines = [
        "# mittelbau ensemble report",
        "",
        *unfinished_lines(finished, designed),
        f"{len(ens['summaries'])} runs; bands are the {BAND[0]:g}–{BAND[1]:g} % range of outcomes "
        f"over runs; intervals for shares of runs, means and differences are {LEVEL:.0%} "
        "intervals (Wilson for shares of runs, t for means).",
        "",
        "## Verdict",
        "",
        "Hollowed = stage 2 below `hollowing_threshold` × the smaller of stages 1 and 3.",
        "",
        *[f"- {verdict_sentence(r, posterior)}" for r in ver.itertuples()],
        "",
        *([miss, ""] if miss else []),
        *posterior_lines(ens, split, folder),
        "The other verdicts (definitions in docs/odd.md, 'Indicators'): the share of runs in which "
        "stage 2 at the horizon is at least `middle_shrink_pp` below 2015 and in which the "
        "competence gap between stages 3 and 1 widens, and the mean share of the 2015 stage-1 "
        "firms still stuck in stage 1 (exits from stage 1 count as stuck: 'of them closed' is that "
        "part, as a share of the 2015 stage-1 firms).",
        "",
        "| scenario | middle shrinks | competence gap widens | stuck (all) | of them closed "
        "| stuck (< 100 employees) |",
        "|---|---|---|---|---|---|",
        *[_probability_row(r) for _, r in probs.iterrows()],
        "",
        f"## Stage shares at {end_year}",
        "",
        f"Median [{BAND[0]:g}–{BAND[1]:g} %] over runs.",
        "",
        "| scenario | stage 1 (%) | stage 2 (%) | stage 3 (%) |",
        "|---|---|---|---|",
    ]
    for name in ens["manifest"]["scenarios"]:
        end = ind[(ind["scenario"] == name) & (ind["year"] == end_year)]
        cells = []
        for k in (1, 2, 3):
            med, lo, hi = band(end[f"stage{k}"].to_numpy())
            cells.append(f"{100 * med:.1f} [{100 * lo:.1f}–{100 * hi:.1f}]")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Outcomes at the horizon",
        "",
        "Every outcome of the outcome registry (definitions in each run's summary.json); "
        f"yes/no outcomes as the share of runs with its {LEVEL:.0%} interval, numbers as the "
        f"median [{BAND[0]:g}–{BAND[1]:g} %] over runs.",
        "",
        *outcome_table(ens),
        "",
        f"![stage shares]({figs[0].name})",
        "",
        f"![middle tier]({figs[1].name})",
        "",
        f"![size classes]({figs[2].name})",
        "",
    ]
    if len(diffs):
        lines += [
            f"## Differences from '{diffs['reference'].iloc[0]}' (paired by replicate)",
            "",
            "| scenario | pairs | common random numbers | stage 2 at horizon (pp) "
            "| upward moves of the region's firms |",
            "|---|---|---|---|---|",
        ]
        for r in diffs.itertuples():
            crn = "yes" if r.common_random_numbers else "no" if r.same_firms else "no: other firms"
            lines.append(
                f"| {r.scenario} | {r.pairs} | {crn} | "
                f"{r.stage2_end_pp:+.2f} {interval_text(r.stage2_low, r.stage2_high, '{:+.2f}', ', ')} | "
                f"{r.upward_moves:+.1f} {interval_text(r.upward_low, r.upward_high, '{:+.1f}', ', ')} |"
            )
        if not diffs["same_firms"].all():
            lines += [
                "",
                "*Other firms*: the scenario's region or number of firms differs from the "
                "reference's, so its difference is mostly that of the two populations, not of its "
                "programmes; compare programmes on the same region and firms.",
            ]
        lines.append("")
    if len(levers):
        lines += [
            "## Levers (median [5–95 %] over runs)",
            "",
            "Additional moves are counted against the same-seed run without any programme, for "
            f"each lever run alone and, for several, for all of them in one run ('{TOGETHER}'). "
            "€ per additional move is the mean cost over the mean "
            "additional moves of all runs [the mean cost over the bounds of the mean's 90 % "
            "interval; unbounded where that interval reaches 0, undefined where the mean is not "
            "above 0]. Firms and moves are the region's (agents × population_scale).",
            "",
            "| scenario | lever | planned (€ M) | public cost (€ M) | firms reached | additional "
            "upward moves | € per additional move | deadweight share |",
            "|---|---|---|---|---|---|---|---|",
        ]
        short, unreached_ = [], []
        for _, r in levers.iterrows():
            alone = r.lever != TOGETHER  # the programmes together: said by unspent_mixes
            if alone and r.planned_cost_eur > 0 and r.mean_cost_eur < SPENT_SHARE * r.planned_cost_eur:
                short.append(
                    f"{r.scenario}: {r.lever} spent €{r.mean_cost_eur / 1e6:.1f} M of its "
                    f"€{r.planned_cost_eur / 1e6:.1f} M on average"
                )
            if alone and r.mean_cost_eur > 0 and not r.reached_any:  # money, and no firm in any run
                unreached_.append(f"{r.scenario}: {r.lever} spent €{r.mean_cost_eur / 1e6:.1f} M on average")
            lines.append(
                f"| {r.scenario} | {r.lever} | {r.planned_cost_eur / 1e6:.1f} | "
                f"{_fmt_band(r, 'total_cost_eur', 1e-6, '{:.1f}')} | "
                f"{_fmt_band(r, 'firms_reached_region')} | "
                f"{_fmt_band(r, 'additional_upward_moves_region')} | "
                f"{_fmt_band(r, 'cost_per_additional_upward_move_eur')} | "
                f"{_fmt_band(r, 'deadweight_share', 100, '{:.0f}%')} |"
            )
        short += unspent_mixes(ens)
        if short:
            lines += [
                "",
                f"*Budget not spent* (below {SPENT_SHARE:.0%} of the plan): {'; '.join(short)}. Too few "
                "firms applied or were eligible (or whole projects and agents rounded the spending "
                "down): compare these programmes at equal cost on what they spent, not on their plans.",
            ]
        if unreached_:
            lines += ["", f"*Money without reach*: {'; '.join(unreached_)} and reached no firm in any run."]
        lines.append("")
    lines += stakes.report_lines(ens, folder)  # € and persons at stake (model/experiments/stakes.py)
    path = folder / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
