"""How well the model matches every survey target: the fit report.

Targets come from `calibration/initial_state_targets.toml` (the 2015 stage typology, EMP 2015)
and `calibration/targets.toml` (firm behaviour, IHK 2016). Each observed share has the binomial
standard error of its survey sample; the model's value is the mean over replicate runs. A
target is met when |simulated mean − observed| ≤ 2 × sqrt(SE_obs² + sd_sim² / runs).
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from mittelbau import calibration
from mittelbau.core.batch import ModelBatch
from mittelbau.core.categories import (
    DT_ITEMS,
    ENGAGEMENT_LEVELS,
    MARKET_POSITIONS,
    REGIONS,
    START_YEAR,
    group_codes,
)
from mittelbau.core.model import MittelbauModel
from mittelbau.core.region_data import raw_sample_size
from mittelbau.core.scenario import make_params
from mittelbau.experiments.ensemble import replicate_seeds
from mittelbau.experiments.plots import save_figure

CALIBRATION = Path(calibration.__file__).resolve().parent


def _group(model: MittelbauModel, group: str) -> np.ndarray:
    chosen = group_codes(group)
    if chosen is None:
        return np.ones(len(model.state), dtype=bool)
    attr, codes = chosen
    return np.isin(getattr(model.state, attr), codes)


def _motive_share(model: MittelbauModel, t: dict) -> float:
    totals = model.motive_totals
    n = sum(totals.values())
    return totals[t["motive"]] / n if n else np.nan


STATISTICS: dict[str, Callable[[MittelbauModel, dict], float]] = {
    "stage_share": lambda m, t: float((m.state.stage[_group(m, t["group"])] == t["stage"]).mean()),
    "bm_share": lambda m, t: float(m.state.bm[_group(m, t["group"])].mean()),
    "dt_share": lambda m, t: float(m.state.dt[_group(m, t["group"])].mean()),
    "bm_introduced_since": lambda m, t: float((m.bm_introduced >= t["since"]).mean()),
    "bm_motive_share": _motive_share,
    "engagement_share": lambda m, t: float(
        (m.state.engagement == ENGAGEMENT_LEVELS.index(t["level"])).mean()
    ),
    "techniques_share": lambda m, t: float(  # whole techniques: learning adds fractions
        ((np.floor(m.state.techniques) >= t["low"]) & (np.floor(m.state.techniques) <= t["high"])).mean()
    ),
    "market_share": lambda m, t: float((m.state.market == MARKET_POSITIONS.index(t["position"])).mean()),
    "threatened_share": lambda m, t: float(m.state.threatened.mean()),
    "dt_item_share": lambda m, t: float(m.state.dt_items[:, DT_ITEMS.index(t["item"])].mean()),
    "service_strategy_share": lambda m, t: float(m.state.service_strategy.mean()),
}


def load_targets() -> list[dict]:
    """Every target of both files, with id, year and survey sample size n."""
    static = tomllib.loads((CALIBRATION / "initial_state_targets.toml").read_text("utf-8"))
    behaviour = tomllib.loads((CALIBRATION / "targets.toml").read_text("utf-8"))
    targets = []
    for t in static["target"]:
        stage = f"{t['stage']}" if "stage" in t else ""
        targets.append(
            {
                **t,
                "id": f"{t['population']}:{t['statistic']}{stage}:{t['group']}",
                "year": START_YEAR,
                "n": raw_sample_size(t["population"]),
            }
        )
    targets += behaviour["target"]
    for t in targets:
        if t["statistic"] not in STATISTICS:
            raise ValueError(f"target {t['id']!r}: unknown statistic {t['statistic']!r}")
    return targets


def run_statistics(
    population: str, targets: list[dict], seed: int, firms: int, overrides: dict | None = None
) -> dict[str, float]:
    """One run of `population` with `seed`, reading each target's statistic in its year."""
    return runs_statistics(population, targets, [seed], firms, overrides)[0]


def runs_statistics(
    population: str, targets: list[dict], seeds: list[int], firms: int, overrides: dict | None = None
) -> list[dict[str, float]]:
    """`run_statistics` of one run per seed, the runs stepped together (`ModelBatch`)."""
    mine = [t for t in targets if t["population"] == population]
    last = max(t["year"] for t in mine)
    common = {**(overrides or {}), "region": population, "firms": firms, "years": last - START_YEAR}
    batch = ModelBatch([make_params({**common, "seed": seed}) for seed in seeds])
    values: list[dict[str, float]] = [{} for _ in seeds]
    while True:
        year = batch.runs[0].year
        for model, found in zip(batch.runs, values, strict=True):
            for t in (t for t in mine if t["year"] == year):
                found[t["id"]] = STATISTICS[t["statistic"]](model, t)
        if year >= last:
            return values
        batch.step()


def simulated(targets: list[dict], replications: int, firms: int, seed: int) -> pd.DataFrame:
    """Replicates × targets: the model's value of each target."""
    seeds = replicate_seeds(seed, replications)
    rows: list[dict] = [{"replicate": r} for r in range(replications)]
    for population in sorted({t["population"] for t in targets}):
        for row, found in zip(rows, runs_statistics(population, targets, seeds, firms), strict=True):
            row |= found
    return pd.DataFrame(rows).set_index("replicate")


def standard_error(target: dict) -> float:
    """Binomial standard error of an observed share."""
    return float(np.sqrt(target["value"] * (1 - target["value"]) / target["n"]))


def fit_table(replications: int = 10, firms: int = 20_000, seed: int = 20170501) -> pd.DataFrame:
    targets = load_targets()
    sims = simulated(targets, replications, firms, seed)
    rows = []
    for t in targets:
        obs, n = t["value"], t["n"]
        se = standard_error(t)
        x = sims[t["id"]].to_numpy(dtype=float)
        mean, sd = float(np.nanmean(x)), float(np.nanstd(x, ddof=1))
        spread = float(np.sqrt(se**2 + sd**2 / len(x)))
        z = (mean - obs) / spread
        upper = t.get("bound") == "upper"
        rows.append(
            {
                "target": t["id"],
                "population": t["population"],
                "year": t["year"],
                "source": t["source"],
                "observed": obs,
                "observed_se": se,
                "n": n,
                "unit": "share",
                "bound": "upper" if upper else "",
                "simulated_mean": mean,
                "simulated_sd": sd,
                "z": z,
                "within_2se": bool(z <= 2 if upper else abs(z) <= 2),
                "note": t.get("note", ""),
            }
        )
    return pd.DataFrame(rows)


def region_predictions(replications: int, firms: int, seed: int) -> pd.DataFrame:
    """Initial stage shares of every region as predicted from its structure (no refitting)."""
    rows = []
    for region in REGIONS:
        shares = np.mean(
            [
                MittelbauModel(region=region, firms=firms, seed=s, years=0).shares
                for s in replicate_seeds(seed, replications)
            ],
            axis=0,
        )
        rows.append({"region": region, "stage1": shares[0], "stage2": shares[1], "stage3": shares[2]})
    return pd.DataFrame(rows)


def write_fit_report(
    out: str | Path, replications: int = 10, firms: int = 20_000, seed: int = 20170501
) -> tuple[Path, pd.DataFrame]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table = fit_table(replications, firms, seed)
    regions = region_predictions(replications, firms, seed)
    table.to_csv(out / "fit_report.csv", index=False, float_format="%.6g")
    regions.to_csv(out / "region_predictions.csv", index=False, float_format="%.6g")

    fig = Figure(figsize=(8, 0.22 * len(table) + 1.2), layout="constrained")
    ax = fig.subplots()
    colours = np.where(table["within_2se"], "#0072b2", "#d55e00")
    ax.barh(np.arange(len(table)), table["z"].clip(-10, 10), color=colours)
    ax.axvline(-2, color="k", ls="--", lw=0.8)
    ax.axvline(2, color="k", ls="--", lw=0.8)
    ax.set_yticks(np.arange(len(table)), table["target"], fontsize=6)
    ax.invert_yaxis()
    ax.set(xlabel="z = (simulated − observed) / SE (clipped at ±10)", title="Fit to every target")
    save_figure(fig, out / "fit_report.png")

    met = int(table["within_2se"].sum())
    lines = [
        "# Fit report",
        "",
        f"**{met} of {len(table)} targets within 2 standard errors** "
        f"({replications} replicate runs of {firms:,} firms per population). SE combines the "
        "survey's binomial standard error with the simulation's standard error.",
        "",
        "![z-scores](fit_report.png)",
        "",
        "| target | source | observed ± SE | simulated mean ± sd | z | within 2 SE |",
        "|---|---|---|---|---|---|",
    ]
    for r in table.itertuples():
        lines.append(
            f"| {r.target} | {r.source} | {r.observed:.3f} ± {r.observed_se:.3f} | "
            f"{r.simulated_mean:.3f} ± {r.simulated_sd:.3f} | {r.z:+.1f} | "
            f"{'yes' if r.within_2se else '**no**'} |"
        )
    lines += [
        "",
        "## Initial stage shares of every region, predicted from its structure",
        "",
        "| region | stage 1 | stage 2 | stage 3 |",
        "|---|---|---|---|",
    ]
    for r in regions.itertuples():
        lines.append(f"| {r.region} | {r.stage1:.3f} | {r.stage2:.3f} | {r.stage3:.3f} |")
    notes = [r for r in table.itertuples() if r.note]
    if notes:
        lines += ["", "## Readings", "", *[f"- {r.target}: {r.note}" for r in notes]]
    page = out / "fit_report.md"
    page.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return page, table
