"""Checks against data not used in fitting: validation, kept out of every objective.

Run:  mittelbau calibrate validate [--out FOLDER]  (and a section of `mittelbau calibrate report`)

Three checks, each with its measurement model; none of their figures enters a fit:

1. **The covid-2020 shock** (scenario `covid-2020`, `mittelbau.core.shock`) against sources §6.4:
   about 43 % of German SMEs adapted their business model during the pandemic; very small firms
   were more willing; adapters proved more resilient. KfW asked in 2020, so adaptation is
   counted in that year (the scenario's shock lasts 2020–21): on Germany's firms alive at the
   start of 2020 and still there at its end, *adapted* = introduced a service-based BM in 2020
   (narrow: the model's BM), or introduced a BM or took up DT (broad); per size class; and the
   annual exit rate 2022–2024 of the 2020 BM adapters through the shock against firms through
   it that had no BM at the start of 2020 and introduced none in 2020–21. The same measurement
   on the run without the shock (same seeds) gives what would have happened anyway.
2. **The 2020 size gradient of digital technology use** (sources §6.1): Destatis' ratios of the
   shares of firms with 50–249 and with 10–49 employees using cloud computing, big-data
   analysis and e-commerce, against the model's ratio of the DT shares of its classes 50–99 and
   100–249 (pooled) and 20–49 (the model's smallest class; firms of 10–19 employees are not in
   its population), Germany, at the end of 2020, without the shock. The model's mean ratio,
   ± 2 standard errors, is compared with the range of ratios the rounded published shares
   allow.
3. **The other regions' 2015 stage shares**, predicted from their structure by the
   initial-state fit made on Stuttgart and Germany only (`fit_initial_state.py`): the expected
   shares of the synthesised population against what sources §2.1 and §2.13 say of the
   comparison regions. The record has no numbers for them, only orderings measured in the same
   survey: Stuttgart has the largest stage 3 and the smallest stage 2 of the regions compared,
   and its stage 1 is about level with two of the three (which two is not recorded). Each is
   scored by the probability that a survey of the region's sample size (EMP 2015) shows it,
   given the predicted share and its binomial sampling error; the stage-1 ordering is judged
   only as a count over the three regions.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy.stats import norm

from mittelbau.calibration import fit_initial_state
from mittelbau.core.categories import SIZE_CLASSES, START_YEAR
from mittelbau.core.model import MittelbauModel
from mittelbau.core.parameters import BY_NAME
from mittelbau.core.region_data import load_region, raw_sample_size
from mittelbau.core.scenario import Params, load_scenario
from mittelbau.experiments.ensemble import replicate_seeds
from mittelbau.experiments.plots import STAGE_COLOURS, save_figure

SOURCES_FILE = Path(fit_initial_state.__file__).resolve().parent / "sources.toml"

VALIDATION_REGIONS = ("nord", "muenchen", "rhein-ruhr")
REFERENCE_REGION = "stuttgart"  # the regions' orderings are stated against it (sources §2.1)
COVID_SCENARIO = "covid-2020"
COVID_REGION = "germany"  # sources §6.4 is about German SMEs
SHOCK_YEARS = (2020, 2021)  # the pandemic's years, as in the scenario; the follow-up starts after them
SURVEY_YEAR = 2020  # KfW asked German SMEs in 2020 (sources §6.4): adaptation is counted in that year
FOLLOW_UP_YEARS = 3  # exits counted from the start of 2022 to the end of 2024
DT_YEAR = 2020  # Destatis ICT indicators 2020 (sources §6.1)
LEVEL_PP = 0.03  # "about level" (sources §2.13) read as within 3 percentage points
ORDER_OF_MAGNITUDE = 3.0  # model and observation within a factor of 3: the same order
SHARE_ROUNDING = 0.005  # the published shares are whole percentages: each ± half a point
CONSISTENT = 0.05  # an observed ordering less likely than this under the prediction is a miss
# replicate runs of the command: the follow-up's exits of the adapters are few (about 50 a run
# of 20,000 firms), and the resilience check compares their mean over runs
REPLICATIONS = 40

# size bands of Destatis (sources §6.1) and the model's size classes standing for them
SMALL_BAND = ("20-49",)  # for 10–49 employees
MEDIUM_BAND = ("50-99", "100-249")  # for 50–249 employees (250–499 is beyond the band)
WD_ITEMS = {"cloud computing": "cloud", "big-data analysis": "big_data", "e-commerce": "ecommerce"}


# ---- the record -----------------------------------------------------------------------------
@cache
def _figures() -> dict[str, dict]:
    record = tomllib.loads(SOURCES_FILE.read_text("utf-8"))
    return {f["name"]: f for entry in record["entry"].values() for f in entry["figures"]}


def source_figure(name: str) -> float:
    """A figure of the sources record by its name; percentages as shares (0–1)."""
    fig = _figures()[name]
    value = float(fig["value"])
    return value / 100 if fig["unit"] == "%" else value


def fitted_populations() -> set[str]:
    """The populations whose targets the initial-state fit uses (its objective's regions)."""
    return {t["population"] for t in fit_initial_state.load_targets()}


def check_out_of_objective(regions: Sequence[str] = VALIDATION_REGIONS) -> None:
    """Refuse a validation of regions the initial-state fit has seen: a region in the objective
    is no test of the prediction."""
    seen = sorted(set(regions) & fitted_populations())
    if seen:
        raise ValueError(
            f"validation regions {seen} are targets of the initial-state fit "
            f"({fit_initial_state.TARGET_FILE.name}); allowed: regions outside its objective"
        )


# ---- 1 the covid-2020 shock ----------------------------------------------------------------
@dataclass(frozen=True)
class ShockPanel:
    """What happened to each firm alive at the start of 2020 (one row each), from one run."""

    size: np.ndarray  # size class at the start of 2020
    had_bm: np.ndarray  # BM at the start of 2020
    through_survey: np.ndarray  # still there at the end of 2020
    through_shock: np.ndarray  # still there at the end of 2021
    through_follow_up: np.ndarray  # still there at the end of the follow-up
    bm_gain: np.ndarray  # introduced a BM in 2020 (the survey's year)
    dt_gain: np.ndarray  # took up DT in 2020
    bm_gain_shock: np.ndarray  # introduced a BM in 2020 or 2021
    exits: np.ndarray  # exits per year 2020, 2021 (all firms)
    bm_introductions: np.ndarray  # BM introductions per year 2020, 2021 (all firms)
    firms: int


def shock_panel(params: Params, firms: int, seed: int) -> ShockPanel:
    """Run `params` to the end of the follow-up and follow the firms alive at the start of 2020."""
    first, last = SHOCK_YEARS[0], SHOCK_YEARS[-1] + FOLLOW_UP_YEARS
    model = MittelbauModel(params, firms=firms, seed=seed, years=last - START_YEAR)
    while model.year < first - 1:
        model.step()
    s = model.state
    firm, size, had_bm, dt_then = model.firm_id.copy(), s.size.copy(), s.bm.copy(), s.dt.copy()
    bm_gain = np.zeros(firms, dtype=bool)
    dt_gain = np.zeros(firms, dtype=bool)
    bm_gain_shock = np.zeros(firms, dtype=bool)
    through_survey = np.zeros(firms, dtype=bool)
    for year in SHOCK_YEARS:
        model.step()
        same = model.firm_id == firm
        bm_gain_shock |= same & (model.bm_introduced == year)
        if year == SURVEY_YEAR:
            bm_gain, dt_gain = bm_gain_shock.copy(), same & model.state.dt & ~dt_then
            through_survey = same
    through_shock = model.firm_id == firm
    while model.year < last:
        model.step()
    years = [y - model.first_year - 1 for y in SHOCK_YEARS]  # indices of their yearly records
    return ShockPanel(
        size=size,
        had_bm=had_bm,
        through_survey=through_survey,
        through_shock=through_shock,
        through_follow_up=model.firm_id == firm,
        bm_gain=bm_gain,
        dt_gain=dt_gain,
        bm_gain_shock=bm_gain_shock,
        exits=np.array([model.transitions[i][1:, 0].sum() for i in years]),
        bm_introductions=np.array([model.bm_motives[i].sum() for i in years]),
        firms=firms,
    )


def annual_rate(stayed: int, n: int, years: int) -> float:
    """Annual exit rate of a group of n firms of which `stayed` remain after `years`."""
    return 1.0 - (stayed / n) ** (1.0 / years) if n else math.nan


def adaptation_measures(panel: ShockPanel) -> dict[str, float]:
    """The measurement model of sources §6.4 on one panel: adapted shares (narrow, broad) of the
    firms through the survey's year, per size class, and the follow-up exit rates of that
    year's BM adapters and of firms without a BM that introduced none during the shock, both
    through the shock."""
    alive = panel.through_survey
    narrow, broad = panel.bm_gain & alive, (panel.bm_gain | panel.dt_gain) & alive
    out = {
        "adapted_bm": narrow.sum() / alive.sum(),
        "adapted_any": broad.sum() / alive.sum(),
        "exits_per_year": panel.exits.mean() / panel.firms,
        "bm_introductions_per_year": panel.bm_introductions.mean() / panel.firms,
    }
    for k, label in enumerate(SIZE_CLASSES):
        here = alive & (panel.size == k)
        out[f"adapted_bm_{label}"] = (narrow & here).sum() / here.sum() if here.any() else math.nan
        out[f"adapted_any_{label}"] = (broad & here).sum() / here.sum() if here.any() else math.nan
    through = panel.through_shock
    adapters, others = narrow & through, through & ~panel.had_bm & ~panel.bm_gain_shock
    for name, group in (("adapters", adapters), ("others", others)):
        out[f"exit_rate_{name}"] = annual_rate(
            int((group & panel.through_follow_up).sum()), int(group.sum()), FOLLOW_UP_YEARS
        )
    return out


def covid_check(replications: int, firms: int, seed: int) -> pd.DataFrame:
    """Replicates × measures of the covid-2020 scenario (run `shock`), of the same runs without
    the shock (`none`) and with both shock sizes at the top of their registry ranges (`top`:
    how far a larger shock could go)."""
    params = load_scenario(COVID_SCENARIO).params.with_overrides({"region": COVID_REGION})
    calm = params.with_overrides({"shock_pressure": 0.0, "shock_exit_factor": 0.0})
    top = params.with_overrides({k: BY_NAME[k].high for k in ("shock_pressure", "shock_exit_factor")})
    rows = []
    for r, s in enumerate(replicate_seeds(seed, replications)):
        for label, p in (("shock", params), ("none", calm), ("top", top)):
            rows.append({"replicate": r, "run": label, **adaptation_measures(shock_panel(p, firms, s))})
    return pd.DataFrame(rows)


# ---- 2 the 2020 size gradient of DT use ------------------------------------------------------
def size_ratio(used: np.ndarray, size: np.ndarray) -> float:
    """Share of users among firms of MEDIUM_BAND over that among firms of SMALL_BAND (the
    model's stand-ins for Destatis' 50–249 and 10–49 classes; 250–499 is left out)."""
    small = np.isin(size, [SIZE_CLASSES.index(c) for c in SMALL_BAND])
    medium = np.isin(size, [SIZE_CLASSES.index(c) for c in MEDIUM_BAND])
    return float(used[medium].mean() / used[small].mean())


def observed_size_ratios() -> dict[str, float]:
    """Destatis' 50–249 over 10–49 ratio per technology (sources §6.1)."""
    return {
        item: source_figure(f"wd_{key}_share_50_249") / source_figure(f"wd_{key}_share_10_49")
        for item, key in WD_ITEMS.items()
    }


def dt_ratio_check(replications: int, firms: int, seed: int) -> np.ndarray:
    """The model's 2020 DT size ratio (Germany, no shock), one per replicate."""
    params = load_scenario(COVID_SCENARIO).params.with_overrides(
        {
            "region": COVID_REGION,
            "shock_pressure": 0.0,
            "shock_exit_factor": 0.0,
            "years": DT_YEAR - START_YEAR,
        }
    )
    ratios = []
    for s in replicate_seeds(seed, replications):
        model = MittelbauModel(params, firms=firms, seed=s).run()
        ratios.append(size_ratio(model.state.dt, model.state.size))
    return np.array(ratios)


# ---- 3 the other regions, predicted ------------------------------------------------------------
def expected_stage_shares(region: str, tables: dict | None = None) -> np.ndarray:
    """The 2015 stage shares a large synthesised population of `region` has in expectation:
    the propensities (default: the committed fit) averaged over the region's structure cells."""
    if tables is None:
        tables = tomllib.loads(fit_initial_state.OUTPUT_FILE.read_text("utf-8"))
    cells = fit_initial_state.region_cells(region)
    probs = fit_initial_state.cell_probabilities(tables, cells, load_region(region).innovation_shift)
    return np.array([np.average(probs[f"stage{k}"], weights=cells.weight) for k in (1, 2, 3)])


def ordering_checks(
    predicted: dict[str, np.ndarray], samples: dict[str, int], reference: np.ndarray
) -> pd.DataFrame:
    """Each region's predicted stage shares against the orderings of sources §2.1 and §2.13, as
    the probability that a survey of the region's sample shows them: its stage 3 below the
    reference's observed share, its stage 2 above it, its stage 1 within LEVEL_PP of it.
    `reference` holds the reference region's observed stage 1–3 shares."""
    rows = []
    for region, p in predicted.items():
        se = np.sqrt(p * (1 - p) / samples[region])
        level = norm.cdf((reference[0] + LEVEL_PP - p[0]) / se[0]) - norm.cdf(
            (reference[0] - LEVEL_PP - p[0]) / se[0]
        )
        for check, stage, prob, source in (
            ("stage 1 about level with Stuttgart's", 1, level, "sources §2.13"),
            ("stage 2 above Stuttgart's", 2, norm.cdf((p[1] - reference[1]) / se[1]), "sources §2.1"),
            ("stage 3 below Stuttgart's", 3, norm.cdf((reference[2] - p[2]) / se[2]), "sources §2.1"),
        ):
            rows.append(
                {
                    "region": region,
                    "check": check,
                    "source": source,
                    "stage": stage,
                    "predicted": float(p[stage - 1]),
                    "survey_se": float(se[stage - 1]),
                    "n": samples[region],
                    "reference": float(reference[stage - 1]),
                    "probability": float(prob),
                }
            )
    return pd.DataFrame(rows)


def region_check(replications: int, firms: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The validation regions' predicted 2015 stage shares (expected and simulated) with their
    survey SEs, and the ordering checks against Stuttgart's observed shares."""
    check_out_of_objective()
    reference = np.array([source_figure(f"stage{k}_share_stuttgart") for k in (1, 2, 3)])
    predicted = {r: expected_stage_shares(r) for r in VALIDATION_REGIONS}
    samples = {r: raw_sample_size(r) for r in VALIDATION_REGIONS}
    rows = []
    for region in (REFERENCE_REGION, "germany", *VALIDATION_REGIONS):
        p = predicted.get(region, expected_stage_shares(region))
        sims = np.array(
            [
                MittelbauModel(region=region, firms=firms, seed=s, years=0).shares
                for s in replicate_seeds(seed, replications)
            ]
        )
        n = raw_sample_size(region)
        for k in (1, 2, 3):
            rows.append(
                {
                    "region": region,
                    "role": "predicted" if region in VALIDATION_REGIONS else "fitted",
                    "stage": k,
                    "expected": float(p[k - 1]),
                    "simulated": float(sims[:, k - 1].mean()),
                    "survey_se": float(np.sqrt(p[k - 1] * (1 - p[k - 1]) / n)),
                    "n": n,
                }
            )
    return pd.DataFrame(rows), ordering_checks(predicted, samples, reference)


def at_least(probabilities: Sequence[float], k: int) -> float:
    """Probability that at least k of independent events with these probabilities happen."""
    dist = np.array([1.0])
    for q in probabilities:
        dist = np.convolve(dist, [1 - q, q])
    return float(dist[k:].sum())


# ---- the report ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Validation:
    """Everything the three checks measured, and the table of verdicts built from it."""

    covid: pd.DataFrame  # replicates × measures, runs with and without the shock
    dt_ratios: np.ndarray  # the model's 2020 DT size ratio per replicate
    regions: pd.DataFrame  # expected and simulated 2015 stage shares with survey SEs
    orderings: pd.DataFrame  # the orderings of sources §2.1 and §2.13, scored
    table: pd.DataFrame  # one row per check with its verdict
    replications: int
    firms: int


def _row(group: str, check: str, source: str, relation: str, observed: float, model: float, **extra) -> dict:
    return {
        "group": group,
        "check": check,
        "source": source,
        "relation": relation,
        "observed": observed,
        "model": model,
        "model_sd": extra.get("model_sd", math.nan),
        "without_shock": extra.get("without_shock", math.nan),
        "probability": extra.get("probability", math.nan),
        "verdict": extra["verdict"],
    }


def _magnitude(model: float, observed: float) -> str:
    ratio = observed / model if model > 0 else math.inf
    if 1 / ORDER_OF_MAGNITUDE <= ratio <= ORDER_OF_MAGNITUDE:
        return "same order of magnitude"
    factor = max(ratio, 1 / ratio)  # above ORDER_OF_MAGNITUDE: shown with a decimal where it rounds to it
    shown = f"{factor:.0f}" if round(factor) > ORDER_OF_MAGNITUDE else f"{factor:.1f}"
    return f"{'below' if ratio > 1 else 'above'} by a factor {shown}: not the same order"


def _finite_mean(values: pd.Series | np.ndarray) -> float:
    """Mean of the runs' values that are numbers (NaN where none is)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else math.nan


def _se(values: pd.Series | np.ndarray) -> float:
    """Standard error of the mean of the runs' values that are numbers."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    return float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else math.nan


def _direction(value: float, se: float, wanted: str) -> str:
    """Verdict on the mean of a ratio whose observed direction is `wanted` ('>1' or '<1'):
    two standard errors of the mean away from 1."""
    if not (se >= 0 and math.isfinite(value)):
        return "too few runs to tell"
    if value - 2 * se > 1:
        seen = ">1"
    elif value + 2 * se < 1:
        seen = "<1"
    else:
        return "no difference (within 2 SE of 1)"
    return "direction matches" if seen == wanted else "opposite direction"


def _gradient(value: float, se: float, low: float, high: float) -> str:
    """Verdict on the model's mean size ratio against the range `low`–`high` of the observed
    ratio (its rounded shares): two standard errors of the mean away from it, or from 1."""
    if not (se >= 0 and math.isfinite(value)):
        return "too few runs to tell"
    if value + 2 * se < 1:
        return "opposite direction"
    if value + 2 * se < low:
        return "flatter than observed"
    if value - 2 * se > high:
        return "steeper than observed"
    return "consistent (within 2 SE)"


def observed_ratio_range(item: str) -> tuple[float, float]:
    """The ratios Destatis' rounded shares of `item` allow (sources §6.1: whole percentages)."""
    key = WD_ITEMS[item]
    medium = source_figure(f"wd_{key}_share_50_249")
    small = source_figure(f"wd_{key}_share_10_49")
    return (medium - SHARE_ROUNDING) / (small + SHARE_ROUNDING), (medium + SHARE_ROUNDING) / (
        small - SHARE_ROUNDING
    )


def _ratio_of(runs: pd.DataFrame, top: str, bottom: str) -> pd.Series:
    """The runs' ratio of two measures; a ratio over an empty group (too few firms for it in a
    run) is no number and is left out."""
    return (runs[top] / runs[bottom]).replace([np.inf, -np.inf], np.nan)


def checks_table(covid: pd.DataFrame, dt_ratios: np.ndarray, orderings: pd.DataFrame) -> pd.DataFrame:
    """One row per check: observed (or the observed relation), the model's value, its verdict."""
    shock, calm = covid[covid.run == "shock"], covid[covid.run == "none"]
    observed = source_figure("wd_covid_bm_adapted_share")
    rows = []
    for measure, what in (
        ("adapted_bm", "a BM introduced"),
        ("adapted_any", "a BM introduced or DT taken up"),
    ):
        m = float(shock[measure].mean())
        rows.append(
            _row(
                "covid-2020",
                f"adapted the business model in {SURVEY_YEAR} ({what})",
                "sources §6.4",
                "=",
                observed,
                m,
                model_sd=float(shock[measure].std(ddof=1)),
                without_shock=float(calm[measure].mean()),
                verdict=_magnitude(m, observed),
            )
        )
    small, large = f"adapted_bm_{SIZE_CLASSES[0]}", f"adapted_bm_{SIZE_CLASSES[-1]}"
    ratio, calm_ratio = _ratio_of(shock, small, large), _ratio_of(calm, small, large)
    threshold = source_figure("wd_covid_very_small_size_threshold")
    rows.append(
        _row(
            "covid-2020",
            f"adapted share (BM), size class {SIZE_CLASSES[0]} over {SIZE_CLASSES[-1]}",
            "sources §6.4",
            ">",
            1.0,
            float(ratio.mean()),
            model_sd=float(ratio.std(ddof=1)),
            without_shock=float(calm_ratio.mean()),
            # the survey's more willing firms are smaller than any of the model's
            verdict=f"not testable: the survey's firms are below {threshold:.0f} employees, "
            "the model's 20–499",
        )
    )
    ratio = _ratio_of(shock, "exit_rate_adapters", "exit_rate_others")
    rows.append(
        _row(
            "covid-2020",
            f"exit rate 2022–24 of {SURVEY_YEAR}'s adapters over firms without a BM that did not adapt",
            "sources §6.4",
            "<",
            1.0,
            float(ratio.mean()),
            model_sd=float(ratio.std(ddof=1)),
            without_shock=float(_ratio_of(calm, "exit_rate_adapters", "exit_rate_others").mean()),
            verdict=_direction(_finite_mean(ratio), _se(ratio), "<1"),
        )
    )
    finite = dt_ratios[np.isfinite(dt_ratios)]
    m, sd, se = _finite_mean(finite), float(finite.std(ddof=1)) if len(finite) > 1 else math.nan, _se(finite)
    for item, value in observed_size_ratios().items():
        low, high = observed_ratio_range(item)
        verdict = _gradient(m, se, low, high)
        rows.append(
            _row(
                "DT size gradient 2020",
                f"share 50–249 over 10–49 employees: {item} (model: DT, classes 50–249 over 20–49)",
                "sources §6.1",
                "=",
                value,
                m,
                model_sd=sd,
                verdict=verdict,
            )
        )
    for r in orderings.itertuples():
        if r.stage == 1:  # the record does not say which two regions are level: judged as a count
            verdict = "part of the count below"
        else:
            verdict = "consistent" if r.probability >= CONSISTENT else "**miss**"
        rows.append(
            _row(
                "regions 2015",
                f"{r.region}: {r.check}",
                r.source,
                {1: "≈", 2: ">", 3: "<"}[r.stage],
                r.reference,
                r.predicted,
                model_sd=r.survey_se,
                probability=r.probability,
                verdict=verdict,
            )
        )
    level = orderings[orderings.stage == 1]
    count = int(source_figure("regions_with_stage1_level_with_stuttgart"))
    prob = at_least(level.probability.to_numpy(), count)
    rows.append(
        _row(
            "regions 2015",
            "comparison regions with stage 1 about level with Stuttgart's",
            "sources §2.13",
            "=",
            float(count),
            float(level.probability.sum()),
            probability=prob,
            verdict="consistent" if prob >= CONSISTENT else "**miss**",
        )
    )
    return pd.DataFrame(rows)


def validate(replications: int = REPLICATIONS, firms: int = 20_000, seed: int = 20170501) -> Validation:
    """Run the three checks (replicate seeds from `seed`)."""
    covid = covid_check(replications, firms, seed)
    ratios = dt_ratio_check(replications, firms, seed)
    regions, orderings = region_check(replications, firms, seed)
    return Validation(
        covid, ratios, regions, orderings, checks_table(covid, ratios, orderings), replications, firms
    )


def plot_validation(v: Validation, path: Path) -> Path:
    """One figure, three panels: adapted shares against sources §6.4, the DT size ratio against
    sources §6.1, the regions' predicted stage shares against Stuttgart's observed ones."""
    fig = Figure(figsize=(13, 4.2), layout="constrained")
    ax1, ax2, ax3 = fig.subplots(1, 3)
    runs = v.covid.groupby("run")
    x = np.arange(2)
    for dx, (run, colour) in zip((-0.2, 0.2), (("none", "#b0b7c3"), ("shock", "#e69f00")), strict=True):
        mean = runs.get_group(run)[["adapted_bm", "adapted_any"]].mean()
        sd = runs.get_group(run)[["adapted_bm", "adapted_any"]].std(ddof=1)
        label = "model, covid-2020" if run == "shock" else "model, no shock"
        ax1.bar(x + dx, 100 * mean, 0.4, yerr=200 * sd, color=colour, label=label)
    ax1.axhline(
        100 * source_figure("wd_covid_bm_adapted_share"),
        color="#d55e00",
        ls="--",
        label="observed (sources §6.4)",
    )
    ax1.set_xticks(x, ["BM introduced", "BM or DT"])
    ax1.set(
        ylabel=f"% of firms through {SURVEY_YEAR}",
        title=f"Adapted the business model in {SURVEY_YEAR}",
        ylim=(0, 50),
    )
    ax1.legend(fontsize=7)
    obs = observed_size_ratios()
    ranges = np.array([observed_ratio_range(item) for item in obs]).T
    values = np.array(list(obs.values()))
    ax2.bar(
        np.arange(len(obs)),
        values,
        yerr=np.abs(ranges - values),
        color="#b0b7c3",
        label="observed (sources §6.1; bars: its rounding)",
    )
    mean, se = _finite_mean(v.dt_ratios), _se(v.dt_ratios)
    ax2.axhline(mean, color="#0072b2", label="model: DT share 50–249 / 20–49 (± 2 SE)")
    ax2.axhspan(mean - 2 * se, mean + 2 * se, color="#0072b2", alpha=0.3)
    ax2.axhline(1.0, color="k", lw=0.8)
    ax2.set_xticks(np.arange(len(obs)), list(obs), fontsize=8)
    ax2.set(
        ylabel="ratio of shares, 50–249 over 10–49 employees",
        title="Size gradient of digital use, 2020",
        ylim=(0, 2),
    )
    ax2.legend(fontsize=7, loc="lower center")
    regions = list(dict.fromkeys(v.regions.region))
    for k in (1, 2, 3):
        rows = v.regions[v.regions.stage == k].set_index("region").loc[regions]
        xs = np.arange(len(regions)) + (k - 2) * 0.25
        ax3.errorbar(
            xs,
            100 * rows.expected,
            yerr=200 * rows.survey_se,
            fmt="o",
            color=STAGE_COLOURS[k],
            label=f"stage {k}",
        )
        ax3.axhline(100 * source_figure(f"stage{k}_share_stuttgart"), color=STAGE_COLOURS[k], ls=":", lw=1)
    ax3.set_xticks(
        np.arange(len(regions)),
        [f"{r}\n({'fitted' if r not in VALIDATION_REGIONS else 'predicted'})" for r in regions],
        fontsize=8,
    )
    ax3.set(
        ylabel="% of SMEs, 2015 (± 2 survey SE)",
        title="Stage shares (dotted: Stuttgart observed)",
        ylim=(0, 60),
    )
    ax3.legend(fontsize=7, loc="lower left")
    return save_figure(fig, path)


def section_lines(v: Validation, level: int = 1, figure: str = "validation.png") -> list[str]:
    """The validation as markdown lines, headed at `level`."""
    h = "#" * level
    lines = [
        f"{h} Checks against data not used in fitting",
        "",
        f"{v.replications} replicate runs of {v.firms:,} firms. None of these figures is a target of "
        "any fit (calibration/validation.py says how each is measured).",
        "",
        f"![validation]({figure})",
        "",
        "Verdicts on the model's means use their standard error (sd / √runs); the observed ratios "
        "of sources §6.1 are read as ranges, as their shares are rounded to whole percentages.",
        "",
        "| group | check | source | observed | model (± sd of runs, or survey SE) | without shock "
        "| P(survey shows it) | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in v.table.itertuples():
        sd = "" if math.isnan(r.model_sd) else f" ± {r.model_sd:.3f}"
        calm = "" if math.isnan(r.without_shock) else f"{r.without_shock:.3f}"
        prob = "" if math.isnan(r.probability) else f"{r.probability:.2f}"
        lines.append(
            f"| {r.group} | {r.check} | {r.source} | {r.relation} {r.observed:.3f} | {r.model:.3f}{sd} | "
            f"{calm} | {prob} | {r.verdict} |"
        )
    shock = v.covid[v.covid.run == "shock"].mean(numeric_only=True)
    calm = v.covid[v.covid.run == "none"].mean(numeric_only=True)
    lines += [
        "",
        f"In 2020–21 the shock raises exits from {100 * calm.exits_per_year:.2f} % to "
        f"{100 * shock.exits_per_year:.2f} % of firms a year and BM introductions from "
        f"{100 * calm.bm_introductions_per_year:.2f} % to {100 * shock.bm_introductions_per_year:.2f} %.",
        *_top_lines(v.covid),
        "",
        f"{h}# Predicted 2015 stage shares (Nord, München, Rhein-Ruhr are not in the initial-state fit)",
        "",
        "| region | role | stage | expected | simulated | survey SE (n) |",
        "|---|---|---|---|---|---|",
    ]
    for r in v.regions.itertuples():
        lines.append(
            f"| {r.region} | {r.role} | {r.stage} | {r.expected:.3f} | {r.simulated:.3f} | "
            f"{r.survey_se:.3f} ({r.n}) |"
        )
    return lines


def _top_lines(covid: pd.DataFrame) -> list[str]:
    """How far the largest shock the registry allows moves the adapted shares."""
    top = covid[covid.run == "top"]
    if top.empty:
        return []
    sizes = ", ".join(f"`{k}` {BY_NAME[k].high:g}" for k in ("shock_pressure", "shock_exit_factor"))
    return [
        f"With both shock sizes at the top of their ranges ({sizes}) {100 * top.adapted_bm.mean():.1f} % "
        f"introduce a BM and {100 * top.adapted_any.mean():.1f} % a BM or DT: a larger shock does not "
        "close the gap to sources §6.4."
    ]


def write_validation(
    out: str | Path, replications: int = REPLICATIONS, firms: int = 20_000, seed: int = 20170501
) -> tuple[Path, Validation]:
    """Run the checks and write validation.md, validation.csv, validation_regions.csv and
    validation.png to `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    v = validate(replications, firms, seed)
    _write_files(v, out)
    page = out / "validation.md"
    page.write_text("\n".join(section_lines(v)) + "\n", encoding="utf-8")
    return page, v


def append_to_report(page: Path, replications: int, firms: int, seed: int) -> Validation:
    """The fit report's validation section: run the checks, write their files beside `page`
    and append the section to it."""
    v = validate(replications, firms, seed)
    _write_files(v, page.parent)
    with page.open("a", encoding="utf-8") as f:
        f.write("\n" + "\n".join(section_lines(v, level=2)) + "\n")
    return v


# the files of the checks beside a page of them (validation.md or the fit report)
FILES = ("validation.csv", "validation_regions.csv", "validation.png")


def _write_files(v: Validation, out: Path) -> None:
    table, regions, figure = (out / name for name in FILES)
    v.table.to_csv(table, index=False, float_format="%.6g")
    v.regions.to_csv(regions, index=False, float_format="%.6g")
    plot_validation(v, figure)
