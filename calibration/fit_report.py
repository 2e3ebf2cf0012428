"""How well the model matches every survey target: the fit report.

Targets come from `calibration/initial_state_targets.toml` (the 2015 stage typology, EMP 2015)
and `calibration/targets.toml` (the run-up, firm behaviour, IHK 2016). Each target states its
measurement model: what the model computes for the surveyed figure (`STATISTICS`). An observed
share has the binomial standard error of its survey sample unless the target gives its own
`se`; the model's value is the mean over replicate runs. A target is met when
|simulated mean − observed| ≤ 2 × sqrt(SE_obs² + sd_sim² / runs) (one-sided for bounds).
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from mittelbau import calibration
from mittelbau.core.batch import ModelBatch, batch_groups
from mittelbau.core.categories import (
    DT_ITEMS,
    ENGAGEMENT_LEVELS,
    MARKET_POSITIONS,
    POSITIONS,
    REGIONS,
    START_YEAR,
    group_codes,
)
from mittelbau.core.dynamics import MOTIVES
from mittelbau.core.model import MittelbauModel
from mittelbau.core.region_data import raw_sample_size
from mittelbau.core.scenario import make_params
from mittelbau.experiments.ensemble import replicate_seeds
from mittelbau.experiments.plots import save_figure
from mittelbau.experiments.runs import BATCH_ROWS, BATCH_SIZE

CALIBRATION = Path(calibration.__file__).resolve().parent


def _group(model: MittelbauModel, group: str) -> np.ndarray:
    """The firms of a target's group: 'all', a structural group (`group_codes`) or the
    value-chain positions 'position:<label>+<label>…' of the behaviour targets (sources §4.1)."""
    attr, _, labels = group.partition(":")
    if attr == "position":
        wanted = labels.split("+")
        if not labels or any(lab not in POSITIONS for lab in wanted):
            raise ValueError(f"group {group!r} is invalid; allowed: 'position:' with {', '.join(POSITIONS)}")
        return np.isin(model.state.position, [POSITIONS.index(lab) for lab in wanted])
    chosen = group_codes(group)
    if chosen is None:
        return np.ones(len(model.state), dtype=bool)
    attr, codes = chosen
    return np.isin(getattr(model.state, attr), codes)


def _motive_share(model: MittelbauModel, t: dict) -> float:
    totals = model.motive_totals
    n = sum(totals.values())
    return totals[t["motive"]] / n if n else np.nan


def any_introduction_share(service_share: float, service_based: float) -> float:
    """Share of firms reporting any complementary BM introduction in a period, from the share
    `service_share` with a service-based one (the model's BM) and the share `service_based` of
    all introductions that are service-based: introductions of a firm as a Poisson process
    whose service-based part is a thinning with probability `service_based`, so
    P(none) = (1 − service_share)^(1 / service_based) (measurement model of sources §4.1)."""
    return float(1.0 - (1.0 - service_share) ** (1.0 / service_based))


def _any_bm_introduced(model: MittelbauModel, t: dict) -> float:
    """Measurement model of sources §4.1: the model's service-based introductions in the group
    since `since`, read as the survey's 'any complementary BM'."""
    s = float((model.bm_introduced[_group(model, t["group"])] >= t["since"]).mean())
    return any_introduction_share(s, model.params.bm_service_share)


def mantel_haenszel_log_or(x: np.ndarray, y: np.ndarray, stratum: np.ndarray) -> float:
    """Mantel–Haenszel common log odds ratio of `y` on `x` (booleans) within strata: the
    association of the two within firm types."""
    k = int(stratum.max(initial=0)) + 1
    counts = np.bincount(stratum * 4 + x * 2 + y, minlength=4 * k).reshape(k, 4).astype(float)
    n = counts.sum(axis=1)
    n = np.where(n > 0, n, 1.0)
    a, b, c, d = counts[:, 3], counts[:, 2], counts[:, 1], counts[:, 0]  # (x, y) = 11, 10, 01, 00
    num, den = (a * d / n).sum(), (b * c / n).sum()
    return float(np.log(num / den)) if num > 0 and den > 0 else np.nan


def _bm_dt_association(model: MittelbauModel, t: dict) -> float:
    """Within-type log odds ratio of DT on BM in the simulated state (firm type: the run-up's
    cell of industry × size × batch × complexity × service strategy)."""
    s = model.state
    return mantel_haenszel_log_or(s.bm.astype(np.int64), s.dt.astype(np.int64), model.cell.astype(np.int64))


def _bm_holders(model: MittelbauModel) -> tuple[np.ndarray, np.ndarray]:
    """Snapshot for `_bm_dropped_share`: the firm in each row and whether it holds a BM."""
    return model.firm_id.copy(), model.state.bm.copy()


def _bm_dropped_share(model: MittelbauModel, t: dict, start: tuple[np.ndarray, np.ndarray]) -> float:
    """Share of the firms holding a BM at the end of `from_year` that, still in the market,
    no longer hold it in `year` (the measurement model of an expected revenue decline of
    complementary BMs, sources §4.8)."""
    firm, had = start
    same = (model.firm_id == firm) & had
    return float((~model.state.bm[same]).mean()) if same.any() else np.nan


STATISTICS: dict[str, Callable[[MittelbauModel, dict], float]] = {
    "stage_share": lambda m, t: float((m.state.stage[_group(m, t["group"])] == t["stage"]).mean()),
    "bm_share": lambda m, t: float(m.state.bm[_group(m, t["group"])].mean()),
    "dt_share": lambda m, t: float(m.state.dt[_group(m, t["group"])].mean()),
    "bm_introduced_since": lambda m, t: float((m.bm_introduced >= t["since"]).mean()),
    "bm_motive_share": _motive_share,
    "engagement_share": lambda m, t: float(
        (m.state.engagement == ENGAGEMENT_LEVELS.index(t["level"])).mean()
    ),
    "techniques_share": lambda m, t: float(  # whole techniques (training may add fractions)
        ((np.floor(m.state.techniques) >= t["low"]) & (np.floor(m.state.techniques) <= t["high"])).mean()
    ),
    "bm_introduced_any_since": _any_bm_introduced,
    "bm_dt_log_odds_ratio": _bm_dt_association,
    "service_revenue_mean": lambda m, t: float(m.state.service_revenue.mean()),
    "service_revenue_share_above": lambda m, t: float((m.state.service_revenue > t["threshold"]).mean()),
    "market_share": lambda m, t: float((m.state.market == MARKET_POSITIONS.index(t["position"])).mean()),
    "threatened_share": lambda m, t: float(m.state.threatened.mean()),
    "dt_item_share": lambda m, t: float(m.state.dt_items[:, DT_ITEMS.index(t["item"])].mean()),
    "service_strategy_share": lambda m, t: float(m.state.service_strategy.mean()),
}
# statistics of a change between two years: a snapshot taken at the end of `from_year`, read
# with the state in `year`
Snapshot = Callable[[MittelbauModel], object]
CHANGES: dict[str, tuple[Snapshot, Callable[[MittelbauModel, dict, object], float]]] = {
    "bm_dropped_share": (_bm_holders, _bm_dropped_share),
}


def _read_targets(name: str) -> dict:
    """A targets file, or a ValueError naming it and what is wrong."""
    path = CALIBRATION / name
    try:
        return tomllib.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise ValueError(f"{path} cannot be read ({exc.strerror or type(exc).__name__})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path} is not valid TOML: {exc}") from None


# the values a target's categorical fields may take
TARGET_CHOICES = {
    "population": REGIONS,
    "level": ENGAGEMENT_LEVELS,
    "item": DT_ITEMS,
    "position": MARKET_POSITIONS,
    "motive": MOTIVES,
}


# the fields a statistic reads beside population, year and value
STATISTIC_FIELDS = {
    "stage_share": ("group", "stage"),
    "bm_share": ("group",),
    "dt_share": ("group",),
    "bm_introduced_since": ("since",),
    "bm_motive_share": ("motive",),
    "engagement_share": ("level",),
    "techniques_share": ("low", "high"),
    "bm_introduced_any_since": ("group", "since"),
    "service_revenue_share_above": ("threshold",),
    "market_share": ("position",),
    "dt_item_share": ("item",),
    "bm_dropped_share": ("from_year",),
}


def _check_target(t: dict) -> None:
    """A target's fields, statistic, categorical fields, group, years and sample size,
    checked before any run."""
    name = t.get("id", "?")
    for key in ("population", "statistic", "year", "value"):
        if key not in t:
            raise ValueError(
                f"target {name!r} has no {key}; allowed: a target with {key} (see its file's header)"
            )
    if t["statistic"] not in STATISTICS and t["statistic"] not in CHANGES:
        raise ValueError(
            f"target {name!r}: unknown statistic {t['statistic']!r}; allowed: "
            f"{', '.join(sorted([*STATISTICS, *CHANGES]))}"
        )
    for key in STATISTIC_FIELDS.get(t["statistic"], ()):
        if key not in t:
            raise ValueError(
                f"target {name!r}: statistic {t['statistic']!r} needs {key}; allowed: a target with {key}"
            )
    years = [("year", t["year"])] + ([("from_year", t["from_year"])] if "from_year" in t else [])
    for key, year in years:
        if not isinstance(year, int) or isinstance(year, bool) or year < START_YEAR:
            raise ValueError(
                f"target {name!r}: {key} = {year!r}; allowed: a year from {START_YEAR} (the states a "
                "run keeps for its statistics)"
            )
    if "from_year" in t and not t["from_year"] < t["year"]:
        raise ValueError(f"target {name!r}: from_year = {t['from_year']} is not before year = {t['year']}")
    for key in ("n", "se"):
        if key in t and not (isinstance(t[key], int | float) and not isinstance(t[key], bool) and t[key] > 0):
            raise ValueError(f"target {name!r}: {key} = {t[key]!r}; allowed: a number above 0")
    for key, allowed in TARGET_CHOICES.items():
        if key in t and t[key] not in allowed:
            raise ValueError(f"target {name!r}: {key} = {t[key]!r}; allowed: {', '.join(allowed)}")
    group = str(t.get("group", "all"))
    attr, _, labels = group.partition(":")
    if attr == "position":
        if not labels or not all(lab in POSITIONS for lab in labels.split("+")):
            raise ValueError(
                f"target {name!r}: group = {group!r}; allowed: 'position:' with {', '.join(POSITIONS)}"
            )
    else:
        try:
            group_codes(group)
        except ValueError as exc:
            raise ValueError(f"target {name!r}: {exc}") from None
    if "n" not in t and "se" not in t:
        raise ValueError(f"target {name!r} has neither n nor se; allowed: a survey sample size n or an se")


def load_targets() -> list[dict]:
    """Every target of both files, with id, year and survey sample size n; a file that cannot
    be read or a target that cannot be measured is a ValueError naming it."""
    static = _read_targets("initial_state_targets.toml")
    behaviour = _read_targets("targets.toml")
    for t in behaviour["target"]:
        _check_target(t)
    targets = []
    for t in static["target"]:
        stage = f"{t['stage']}" if "stage" in t else ""
        targets.append(
            {
                **t,
                "id": f"{t['population']}:{t['statistic']}{stage}:{t['group']}",
                "year": START_YEAR,
                "n": raw_sample_size(t["population"]),  # of a group: its part (`subgroup_samples`)
                "subgroup": t["group"] != "all",
            }
        )
    # a 2015 target of targets.toml (the run-up's) takes the place of the same static one
    carried = {_key(t) for t in behaviour["target"]}
    targets = [t for t in targets if _key(t) not in carried] + behaviour["target"]
    for t in targets:
        _check_target(t)
    return targets


def _key(t: dict) -> tuple:
    """What a target measures: population, statistic, group, stage and year."""
    return (t["population"], t["statistic"], t.get("group"), t.get("stage"), t["year"])


def run_statistics(
    population: str, targets: list[dict], seed: int, firms: int, overrides: dict | None = None
) -> dict[str, float]:
    """One run of `population` with `seed`, reading each target's statistic in its year."""
    return runs_statistics(population, targets, [seed], firms, overrides)[0]


def runs_statistics(
    population: str, targets: list[dict], seeds: list[int], firms: int, overrides: dict | None = None
) -> list[dict[str, float]]:
    """`run_statistics` of one run per seed, the runs stepped together (`ModelBatch`)."""
    return points_statistics(population, targets, [(overrides, seed) for seed in seeds], firms)


def points_statistics(
    population: str,
    targets: list[dict],
    runs: Sequence[tuple[dict | None, int]],
    firms: int,
    batch_size: int = BATCH_SIZE,
) -> list[dict[str, float]]:
    """`run_statistics` of every (parameter overrides, seed) pair of `runs`, the runs stepped
    together in batches of up to `batch_size` runs and BATCH_ROWS firms (`ModelBatch`, the
    run-ups of a batch's distinct points solved together); each pair's statistics are exactly
    those of `run_statistics` of that pair alone."""
    mine = [t for t in targets if t["population"] == population]
    last = max(t["year"] for t in mine)
    fixed = {"region": population, "firms": firms, "years": last - START_YEAR}
    params = [make_params({**(overrides or {}), **fixed, "seed": seed}) for overrides, seed in runs]
    values: list[dict[str, float]] = [{} for _ in params]
    for group in batch_groups(params, batch_size, BATCH_ROWS):
        found = _batch_statistics(mine, last, ModelBatch([params[i] for i in group]))
        for i, statistics in zip(group, found, strict=True):
            values[i] = statistics
    return values


def _batch_statistics(mine: list[dict], last: int, batch: ModelBatch) -> list[dict[str, float]]:
    """Each run of `batch` stepped to `last`, reading the targets `mine` in their years."""
    values: list[dict[str, float]] = [{} for _ in batch.runs]
    starts: list[dict[str, object]] = [{} for _ in batch.runs]
    while True:
        year = batch.runs[0].year
        for model, found, start in zip(batch.runs, values, starts, strict=True):
            for t in mine:
                if t["statistic"] in CHANGES:
                    take, read = CHANGES[t["statistic"]]
                    if t["from_year"] == year:
                        start[t["id"]] = take(model)
                    if t["year"] == year:
                        found[t["id"]] = read(model, t, start[t["id"]])
                elif t["year"] == year:
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


def subgroup_samples(targets: list[dict], firms: int, seed: int) -> list[dict]:
    """The targets with a subgroup's survey sample in `n`: a static target of a group (an
    industry, size class, batch type or complexity) counts the group's expected part of its
    population's sample, n × the group's share of the model's 2015 firms (`firms` of them,
    seeded by `seed`), as the study gives no subgroup sizes; other targets as they are."""
    models: dict[str, MittelbauModel] = {}
    out = []
    for t in targets:
        if t.get("subgroup") and "se" not in t:
            if t["population"] not in models:
                models[t["population"]] = MittelbauModel(
                    region=t["population"], firms=firms, years=0, seed=seed
                )
            share = float(_group(models[t["population"]], t["group"]).mean())
            t = {**t, "n": max(1, round(t["n"] * share))}
        out.append(t)
    return out


def standard_error(target: dict) -> float:
    """The target's standard error: its own `se` where it states one (a figure that is not a
    share of a sample), otherwise the binomial standard error of an observed share."""
    if "se" in target:
        return float(target["se"])
    return float(np.sqrt(target["value"] * (1 - target["value"]) / target["n"]))


def met(z: float, bound: str) -> bool:
    """Whether a target's z-score lies within 2: for an upper (lower) bound only above (below)."""
    if bound == "upper":
        return bool(z <= 2)
    if bound == "lower":
        return bool(z >= -2)
    return bool(abs(z) <= 2)


def fit_table(
    replications: int = 10, firms: int = 20_000, seed: int = 20170501, targets: list[dict] | None = None
) -> pd.DataFrame:
    """One row per target (all of them unless `targets` is given): observed ± SE, the
    replicates' mean ± sd, z and whether it is met."""
    targets = load_targets() if targets is None else targets
    sims = simulated(targets, replications, firms, seed)
    targets = subgroup_samples(targets, firms, seed)
    rows = []
    for t in targets:
        obs, n = t["value"], t.get("n", 0)
        se = standard_error(t)
        x = sims[t["id"]].to_numpy(dtype=float)
        x = x[np.isfinite(x)]  # a run whose firms hold no one the target counts (too few firms)
        if len(x):
            mean, sd = float(x.mean()), float(x.std(ddof=1)) if len(x) > 1 else 0.0
            z = (mean - obs) / float(np.sqrt(se**2 + sd**2 / len(x)))
        else:
            mean = sd = z = float("nan")
        bound = t.get("bound", "")
        rows.append(
            {
                "target": t["id"],
                "population": t["population"],
                "year": t["year"],
                "source": t["source"],
                "observed": obs,
                "observed_se": se,
                "n": n,
                "unit": t.get("unit", "share"),
                "bound": bound,
                "fitted": bool(t.get("objective", False)),
                "simulated_mean": mean,
                "simulated_sd": sd,
                "z": z,
                "within_2se": met(z, bound),
                "measurement": " ".join(t.get("measurement", "").split()),
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


def _toml(name: str) -> dict:
    path = CALIBRATION / name
    return tomllib.loads(path.read_text("utf-8")) if path.exists() else {}


def fit_sections() -> list[str]:
    """Report sections of the committed dynamic fit (calibration/dynamic_parameters.toml: cost,
    effective sample size, posterior and recovery per parameter) and of the identifiability
    screen (calibration/identifiability.toml: the parameters that drive the verdicts)."""
    fit = _toml("dynamic_parameters.toml")
    lines: list[str] = []
    fitted = [k for k, v in fit.items() if isinstance(v, dict) and "median" in v]
    if fitted:
        st = fit["settings"]
        lines += [
            "",
            "## Dynamic fit",
            "",
            f"ABC-SMC (pyabc, `calibration/dynamic_fit.py`), version {fit['version']}: "
            f"{fit.get('particles', st.get('population'))} particles, {fit['generations']} "
            f"generations, {st.get('firms', 0):,} firms per run, seed {st.get('seed')}; "
            f"{fit['evaluations']:,} evaluations in {fit.get('wall_seconds', float('nan')):,.0f} s "
            f"on {fit.get('workers', 1)} worker(s); final ε "
            f"{fit['final_epsilon']:.3g}; Kish effective sample size of the posterior "
            f"{fit.get('effective_sample_size', float('nan')):.0f}. Posterior sample: "
            "`calibration/posterior.csv`. sd ratio: posterior sd / prior sd; recovery: the same fit "
            "on synthetic targets made at the truth; identified: both sd ratios below 0.5.",
            "",
            "| parameter | median | 90 % interval | sd ratio | recovery: truth | sd ratio | truth in 90 % "
            "| identified |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name in fitted:
            f = fit[name]
            rec = (
                f"{f['recovery_truth']:.4g} | {f['recovery_sd_ratio']:.2f} | "
                f"{'yes' if f['recovery_covered'] else '**no**'}"
                if "recovery_truth" in f
                else "– | – | –"
            )
            narrow = max(f["sd_ratio"], f.get("recovery_sd_ratio", 1.0)) < 0.5
            rec += f" | {'yes' if narrow else 'no'}"
            lines.append(
                f"| {name} | {f['median']:.4g} | {f['q05']:.4g}–{f['q95']:.4g} | "
                f"{f['sd_ratio']:.2f} | {rec} |"
            )
    ident = _toml("identifiability.toml")
    if ident.get("driver"):
        sc = ident["screen"]
        lines += [
            "",
            "## Parameters that drive the verdicts",
            "",
            f"Total Sobol indices (SALib, N = {sc['n']} base samples, {sc['runs']:,} runs of "
            f"{sc['firms']:,} firms, {sc['factors']} factors, seed {sc['seed']}) on the verdict "
            f"indicators in 2035 ({', '.join(sc['outputs'])}); listed: total index above "
            f"{ident['driver_index']} on at least one, with its 95 % confidence half-width. "
            f"Identified: fitted with sd ratio below {ident['identified_sd_ratio']}; otherwise an "
            "assumption that drives the answer.",
            "",
            "Clear: on at least one indicator the index stays above the threshold at the lower "
            "end of its interval.",
            "",
            "| parameter | indicator | total index ± 95 % | clear | sd ratio | status |",
            "|---|---|---|---|---|---|",
        ]
        for name, d in ident["driver"].items():
            ratio = f"{d['sd_ratio']:.2f}" if "sd_ratio" in d else "not fitted"
            lines.append(
                f"| {name} | {d['output']} | {d['total_index']:.2f} ± {d['ci95_half_width']:.2f} | "
                f"{'yes' if d['clear'] else 'no'} | {ratio} | {d['status']} |"
            )
    return lines


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
        "Targets marked *fitted* enter the distance of the dynamic fit "
        "(calibration/dynamic_fit.py); a bound (≤, ≥) is met on its side.",
        "",
        "| target | source | unit | observed ± SE | simulated mean ± sd | z | within 2 SE | fitted |",
        "|---|---|---|---|---|---|---|---|",
    ]
    signs = {"upper": "≤ ", "lower": "≥ ", "": ""}
    for r in table.itertuples():
        # no simulated value where no run had a firm the target counts (too few firms)
        simulated = "none | –"
        if r.z == r.z:
            simulated = f"{r.simulated_mean:.3f} ± {r.simulated_sd:.3f} | {r.z:+.1f}"
        lines.append(
            f"| {r.target} | {r.source} | {r.unit} | {signs[r.bound]}{r.observed:.3f} ± "
            f"{r.observed_se:.3f} | {simulated} | "
            f"{'yes' if r.within_2se else '**no**'} | {'yes' if r.fitted else ''} |"
        )
    measured = [r for r in table.itertuples() if r.measurement]
    if measured:
        lines += [
            "",
            "## Measurement models",
            "",
            "What the model computes for each surveyed figure that is not a plain share of its "
            "firms in the survey year, and the standard error used.",
            "",
            *[f"- **{r.target}** ({r.source}; SE {r.observed_se:.3g}): {r.measurement}" for r in measured],
        ]
    lines += [
        "",
        "## Initial stage shares of every region, predicted from its structure",
        "",
        "| region | stage 1 | stage 2 | stage 3 |",
        "|---|---|---|---|",
    ]
    for r in regions.itertuples():
        lines.append(f"| {r.region} | {r.stage1:.3f} | {r.stage2:.3f} | {r.stage3:.3f} |")
    lines += fit_sections()
    notes = [r for r in table.itertuples() if r.note]
    if notes:
        lines += ["", "## Readings", "", *[f"- {r.target}: {r.note}" for r in notes]]
    page = out / "fit_report.md"
    page.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return page, table
