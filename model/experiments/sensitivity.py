"""Global sensitivity analysis with SALib: Morris screening and Sobol indices.

Factors and their ranges come from the parameter registry. The mechanism switches ("off"/"on")
are categorical factors: sampled on [0, 1] like any factor and mapped to a choice by
`to_overrides` (below 0.5 "off", from 0.5 "on"), so structural uncertainty is ranked with the
rates. The analysis functions take any evaluator X (n × k, one row per point) → table of outputs
(n rows), so the same pipeline runs on the model (replicate means of its indicators) and on
test functions with known indices.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from SALib.analyze import morris as morris_analyze
from SALib.analyze import sobol as sobol_analyze
from SALib.sample import morris as morris_sample
from SALib.sample import sobol as sobol_sample

from mittelbau.core.inert_parameters import ECONOMICS_PARAMETERS, SCALE_PARAMETER
from mittelbau.core.parameters import BY_NAME, REGISTRY, Parameter
from mittelbau.core.region_data import load_region

MORRIS_LEVELS = 4  # grid levels of the Morris design
# the economics' parameters but the region's number of firms (the programmes spend per firm):
# the runs of a study keep no economics, so none of its outputs reads them
# (`core.inert_parameters`); they are no default factor
UNREAD_BY_STUDIES = ECONOMICS_PARAMETERS - {SCALE_PARAMETER}
Evaluator = Callable[[np.ndarray], pd.DataFrame]


class FactorError(ValueError):
    """A factor selection names no parameter, or one that cannot vary."""


def is_categorical(p: Parameter) -> bool:
    """A mechanism switch: a choice factor, sampled on [0, 1] and mapped by `choice_of`."""
    return bool(p.choices) and p.group == "mechanisms"


def choice_of(p: Parameter, x: float) -> str:
    """The choice a sampled value in [0, 1] stands for: equal parts of [0, 1] in order."""
    assert p.choices is not None
    return p.choices[min(int(float(x) * len(p.choices)), len(p.choices) - 1)]


def factors(
    names: Sequence[str] | None = None,
    include_levers: bool = False,
    held: Collection[str] = (),
    region: str | None = None,
) -> list[Parameter]:
    """Registry parameters to vary: `names` if given, otherwise every numeric uncertainty and
    mechanism switch (categorical) of the registry that a study's outputs can read (not
    UNREAD_BY_STUDIES); with `include_levers` the levers' numeric parameters join either —
    settings never vary; a lever's start and end year stay as the scenario sets them. `held`: the
    parameters the scenario sets (its file or --set), which a study keeps at the scenario's
    values: left out of the default set, and an error when named (the sample would replace
    them). With `region` (the scenario's), the region's number of firms is explored over the
    range its region file states, not the registry's 0 (its file's count) to a million."""
    chosen = _chosen(names, include_levers, held)
    if region is None:
        return chosen
    low, high = load_region(region).firms_range
    return [replace(p, exploration=(low, high)) if p.name == SCALE_PARAMETER else p for p in chosen]


def _chosen(names: Sequence[str] | None, include_levers: bool, held: Collection[str]) -> list[Parameter]:
    if not names:
        return _default_factors(include_levers, held)
    chosen = [_named_factor(name, held) for name in names]
    return chosen + (_levers_beside(names, held) if include_levers else [])


def _levers_beside(names: Sequence[str], held: Collection[str]) -> list[Parameter]:
    """The lever settings `--levers` adds to the named factors (those not named, nor held)."""
    return [p for p in _default_factors(True, held) if p.role == "lever" and p.name not in names]


def _named_factor(name: str, held: Collection[str]) -> Parameter:
    p = BY_NAME.get(name)
    if p is None:
        raise FactorError(
            f"unknown factor {name!r}; allowed: numeric registry parameters and mechanism switches"
        )
    if (p.choices and not is_categorical(p)) or p.group == "run" or (not p.choices and p.low == p.high):
        raise FactorError(
            f"factor {name!r} cannot vary; allowed: numeric registry parameters with a "
            "range and mechanism switches (not region, firms, years, seed)"
        )
    if name in held:
        raise FactorError(
            f"factor {name!r} is set by the scenario (its file or --set), which the sample "
            "would replace; allowed: leave it out of the factors, or drop its setting"
        )
    return p


def _default_factors(include_levers: bool, held: Collection[str]) -> list[Parameter]:
    return [
        p
        for p in REGISTRY
        if (not p.choices or is_categorical(p))
        and (p.role == "uncertainty" or (include_levers and p.role == "lever"))
        and not (p.role == "lever" and p.name.endswith(("_start_year", "_end_year")))
        and p.name not in UNREAD_BY_STUDIES
        and p.name not in held
    ]


def _bounds(p: Parameter) -> list[float]:
    """A factor's sampling interval: [0, 1] for a switch; an integer parameter's range widened
    by half a unit each side, so that rounding (`to_overrides`) gives every integer of its range
    the same share of the sample, the ends included."""
    if is_categorical(p):
        return [0.0, 1.0]
    if p.kind is int:
        return [float(p.explore_low) - 0.5, float(p.explore_high) + 0.5]
    return [float(p.explore_low), float(p.explore_high)]


def held_factors(
    overrides: Mapping[str, object], include_levers: bool = False, names: Sequence[str] | None = None
) -> dict[str, object]:
    """The factors a study would vary but its scenario sets (its file or --set), with their
    values, which the study holds there: of the default factors, or with named factors of the
    lever settings `include_levers` adds to them."""
    if names:
        candidates = _levers_beside(names, ()) if include_levers else []
    else:
        candidates = _default_factors(include_levers, ())
    return {p.name: overrides[p.name] for p in candidates if p.name in overrides}


def held_line(held: Mapping[str, object]) -> str:
    """A study page's line on the default factors its scenario holds."""
    values = ", ".join(f"`{k}` = {v}" for k, v in held.items())
    return f"Held at the scenario's values (its file or --set), not varied: {values}."


def problem(chosen: Sequence[Parameter], grouped: bool = False) -> dict:
    """The SALib problem; with `grouped`, factors of one registry group move together."""
    spec = {
        "num_vars": len(chosen),
        "names": [p.name for p in chosen],
        "bounds": [_bounds(p) for p in chosen],
    }
    if grouped:
        groups = [p.group for p in chosen]
        if len(set(groups)) < 2:
            # SALib samples factors of a single group one by one, then cannot analyse them as one
            raise FactorError(
                f"--groups with factors of one registry group ({groups[0] if groups else 'none'}); "
                "allowed: factors of two or more groups, or no --groups"
            )
        spec["groups"] = groups
    return spec


def sample_points(method: str, spec: dict, size: int, second_order: bool = False) -> int:
    """How many parameter points SALib's sample has: (D + 1) per Morris trajectory, D + 2 per
    Sobol base sample (2D + 2 with second order), D the factors or groups."""
    groups = spec.get("groups")
    if method == "morris":
        return size * ((len(set(groups)) if groups else spec["num_vars"]) + 1)
    # SALib's Sobol sampling moves factors by group only with two or more groups
    by_group = groups and len(set(groups)) > 1 and groups != spec["names"]
    d = len(set(groups)) if by_group else spec["num_vars"]
    return size * (2 * d + 2 if second_order else d + 2)


def to_overrides(row: np.ndarray, chosen: Sequence[Parameter]) -> dict:
    """One sample row as registry overrides (integer parameters rounded, switches mapped)."""

    def value(p: Parameter, x: float) -> float | int | str:
        if is_categorical(p):
            return choice_of(p, x)
        if p.kind is int:  # the nearest integer, inside the range at the interval's very ends
            return int(min(max(math.floor(float(x) + 0.5), p.explore_low), p.explore_high))
        return float(x)

    return {p.name: value(p, x) for p, x in zip(chosen, row, strict=True)}


@dataclass
class Morris:
    indices: pd.DataFrame  # output, factor, mu_star, mu_star_conf, mu, sigma
    X: np.ndarray
    Y: pd.DataFrame


MOST_TRAJECTORIES = 10_000  # Morris: at 45 factors, 460,000 points
MOST_SAMPLES = 2**16  # Sobol: at 45 factors, 3 million points (N = 1024 is the usual study)


def check_size(method: str, size: int) -> None:
    """Morris needs 2 to MOST_TRAJECTORIES trajectories; Sobol a power of two from 8 to
    MOST_SAMPLES base samples (more would not fit a design in memory)."""
    if method not in ("morris", "sobol"):
        raise FactorError(f"method {method!r} is invalid; allowed: morris, sobol")
    if method == "morris" and not 2 <= size <= MOST_TRAJECTORIES:
        raise FactorError(f"--trajectories = {size} is invalid; allowed: 2 to {MOST_TRAJECTORIES:,}")
    if method == "sobol" and (not 8 <= size <= MOST_SAMPLES or size & (size - 1)):
        raise FactorError(
            f"--samples = {size} is invalid; allowed: a power of two from 8 to {MOST_SAMPLES:,}"
        )


def design_sample(
    method: str, spec: dict, size: int, seed: int, second_order: bool = False, levels: int = MORRIS_LEVELS
) -> np.ndarray:
    """SALib's sample of a study: Morris trajectories or Sobol base samples (Saltelli), the
    same for the same arguments."""
    if method == "morris":
        return morris_sample.sample(spec, size, num_levels=levels, seed=seed)
    return sobol_sample.sample(spec, size, calc_second_order=second_order, seed=seed)


def morris(
    spec: dict, evaluate: Evaluator, trajectories: int, seed: int, levels: int = MORRIS_LEVELS
) -> Morris:
    check_size("morris", trajectories)
    X = design_sample("morris", spec, trajectories, seed, levels=levels)
    Y = evaluate(X)
    rows = []
    for output in Y.columns:
        y = Y[output].to_numpy(dtype=float)
        if not np.isfinite(y).all():
            continue
        si = morris_analyze.analyze(
            spec, X, y, num_levels=levels, num_resamples=1000, conf_level=0.95, seed=seed
        )
        for k, name in enumerate(si["names"]):
            rows.append(
                {
                    "output": output,
                    "factor": name,
                    "mu_star": si["mu_star"][k],
                    "mu_star_conf": si["mu_star_conf"][k],
                    "mu": si["mu"][k],
                    "sigma": si["sigma"][k],
                }
            )
    return Morris(
        pd.DataFrame(rows, columns=["output", "factor", "mu_star", "mu_star_conf", "mu", "sigma"]), X, Y
    )


@dataclass
class Sobol:
    indices: pd.DataFrame  # output, factor, S1, S1_conf, ST, ST_conf
    convergence: pd.DataFrame  # output, factor, N, S1, ST
    second_order: pd.DataFrame  # output, factor, other, S2, S2_conf (empty unless asked for)
    X: np.ndarray
    Y: pd.DataFrame


CONVERGENCE_LEAST = 8  # fewest base samples of a row of the convergence table (as of a study)


def _sobol_table(spec: dict, y: np.ndarray, seed: int, second_order: bool) -> dict:
    """SALib's indices of `y`; where `y` does not vary, every index and interval is zero (no
    factor moves it: as for a factor no run reads, whose indices are zero by construction)."""
    if np.ptp(y) == 0:
        k = len((spec.get("groups") and dict.fromkeys(spec["groups"])) or spec["names"])
        zero, pairs = np.zeros(k), np.zeros((k, k))
        return {"S1": zero, "S1_conf": zero, "ST": zero, "ST_conf": zero, "S2": pairs, "S2_conf": pairs}
    return sobol_analyze.analyze(
        spec, y, calc_second_order=second_order, num_resamples=500, conf_level=0.95, seed=analysis_seed(seed)
    )


def analysis_seed(seed: int) -> int:
    """The seed of SALib's bootstrap for a study's seed: SALib seeds its resampling only with a
    seed that is true, so 0 would leave its intervals to numpy's global generator; 0 is given
    another fixed seed (every other seed is its own)."""
    return seed if seed else ANALYSIS_SEED_FOR_ZERO


ANALYSIS_SEED_FOR_ZERO = 2**31 - 1


def sobol(spec: dict, evaluate: Evaluator, n: int, seed: int, second_order: bool = False) -> Sobol:
    """Saltelli sampling with N base samples (a power of two), first- and total-order indices
    with bootstrap 95 % intervals, and the indices recomputed on the first N/8, N/4, N/2, N
    base samples (convergence; those of fewer than CONVERGENCE_LEAST base samples left out,
    whose indices say nothing)."""
    check_size("sobol", n)
    X = design_sample("sobol", spec, n, seed, second_order)
    Y = evaluate(X)
    block = len(X) // n  # rows per base sample
    names = (spec.get("groups") and list(dict.fromkeys(spec["groups"]))) or spec["names"]
    rows, conv, pairs = [], [], []
    for output in Y.columns:
        y = Y[output].to_numpy(dtype=float)
        if not np.isfinite(y).all():
            continue
        si = _sobol_table(spec, y, seed, second_order)
        for k, name in enumerate(names):
            rows.append(
                {
                    "output": output,
                    "factor": name,
                    "S1": si["S1"][k],
                    "S1_conf": si["S1_conf"][k],
                    "ST": si["ST"][k],
                    "ST_conf": si["ST_conf"][k],
                }
            )
        if second_order:
            for i, a in enumerate(names):
                for j in range(i + 1, len(names)):
                    pairs.append(
                        {
                            "output": output,
                            "factor": a,
                            "other": names[j],
                            "S2": si["S2"][i, j],
                            "S2_conf": si["S2_conf"][i, j],
                        }
                    )
        for m in (m for m in (n // 8, n // 4, n // 2, n) if m >= CONVERGENCE_LEAST or m == n):
            part = si if m == n else _sobol_table(spec, y[: m * block], seed, second_order)
            for k, name in enumerate(names):
                conv.append(
                    {"output": output, "factor": name, "N": m, "S1": part["S1"][k], "ST": part["ST"][k]}
                )
    return Sobol(
        pd.DataFrame(rows, columns=["output", "factor", "S1", "S1_conf", "ST", "ST_conf"]),
        pd.DataFrame(conv, columns=["output", "factor", "N", "S1", "ST"]),
        pd.DataFrame(pairs, columns=["output", "factor", "other", "S2", "S2_conf"]),
        X,
        Y,
    )


def seed_variance_share(runs: pd.DataFrame, outputs: Sequence[str]) -> pd.Series:
    """Per output: the seeds' share of the variance of the replicate means the indices are
    computed from (`runs`: columns point, replicate and the outputs; R replicates a point):
    the seed noise that differs between points, which a mean over R keeps a 1/R of, over the
    variance of those means over the points, noise / R / (point variance + noise / R)
    (`point_and_noise_variance`: the seeds' common part shifts every point alike and does not
    count). With one replicate this is the noise share of one run, the pilot's
    `noise_share_one_run`; NaN where the means do not vary."""
    shares = {}
    for o in outputs:
        wide = _points_by_replicates(runs, o)
        if wide.shape[0] < 2 or wide.shape[1] < 2:
            shares[o] = np.nan
            continue
        point, noise = point_and_noise_variance(wide)
        share = noise_share(point, noise, wide.shape[1])
        shares[o] = np.nan if share is None else share
    return pd.Series(shares, name="seed_variance_share").rename_axis("output")


def _points_by_replicates(runs: pd.DataFrame, output: str) -> np.ndarray:
    """One output of `runs` (columns point, replicate, the outputs) as points × replicates, the
    points with every replicate."""
    wide = runs.pivot(index="point", columns="replicate", values=output).astype(float)
    # a value that is no number (an infinite hollowing ratio once a pole empties) is missing
    return wide.replace([np.inf, -np.inf], np.nan).dropna().to_numpy(dtype=float)


def noise_share(point: float, noise: float, replications: int) -> float | None:
    """The seeds' share of the variance of means over `replications` replicates (a mean keeps a
    1/R of the seed noise, `point_and_noise_variance`); None where those means do not vary."""
    kept = noise / replications
    return kept / (point + kept) if point + kept > 0 else None


# the seeds' largest share of the variance of an output's replicate means over the points,
# and the most replications a study chooses
NOISE_SHARE = 0.05
MAX_REPLICATIONS = 64


def point_and_noise_variance(values: np.ndarray) -> tuple[float, float]:
    """Points × replicates of one output under common random numbers (replicate r of every
    point has the same seed): the variance of the points' own means and the seed noise that
    differs between points (the points × seeds interaction), by the two-way analysis of
    variance without replication. The seeds' common part shifts every point alike and so does
    not count: it leaves the spread over the points, which the indices decompose, as it is."""
    x = np.asarray(values, dtype=float)
    k, m = x.shape
    if k < 2 or m < 2:
        raise ValueError(f"{k} points × {m} replicates; allowed: at least 2 × 2")
    rows, cols, grand = x.mean(axis=1, keepdims=True), x.mean(axis=0, keepdims=True), x.mean()
    noise = float(((x - rows - cols + grand) ** 2).sum() / ((k - 1) * (m - 1)))
    between = float(m * ((rows - grand) ** 2).sum() / (k - 1))
    return max(0.0, (between - noise) / m), noise


def noise_replications(
    runs: pd.DataFrame, outputs: Sequence[str], share: float = NOISE_SHARE, most: int = MAX_REPLICATIONS
) -> tuple[int, pd.DataFrame]:
    """The fewest replications per point with which the seeds make at most `share` of the
    variance of every output's replicate means over the points, from a pilot of several
    points × replicates (`runs`: columns point, replicate and the outputs). With R replicates
    a mean keeps noise/R of the seed noise (`point_and_noise_variance`), so an output needs
    R ≥ noise · (1 − share) / (share · point variance); at most `most`. An output without
    noise needs 1; one whose points do not differ beyond the noise has no number (the pilot
    sees no signal in it) and is left out of the choice, unless every output is: then `most`.
    Returns the number and a table per output: point and noise variance, the noise share of
    one run, the replications needed."""
    table = {}
    for o in outputs:
        wide = _points_by_replicates(runs, o)
        if wide.shape[0] < 2 or wide.shape[1] < 2:  # too few points with a value in every replicate
            table[o] = dict.fromkeys(
                ("point_variance", "noise_variance", "noise_share_one_run", "replications_needed"), np.nan
            )
            continue
        point, noise = point_and_noise_variance(wide)
        if noise == 0:
            need = 1.0
        elif point == 0:
            need = np.nan
        else:
            need = float(max(1, math.ceil(noise * (1 - share) / (share * point) - 1e-9)))
        table[o] = {
            "point_variance": point,
            "noise_variance": noise,
            # (None: the runs did not vary at all, so no share is defined)
            "noise_share_one_run": np.nan if (one := noise_share(point, noise, 1)) is None else one,
            "replications_needed": need,
        }
    frame = pd.DataFrame.from_dict(table, orient="index")
    frame.index.name = "output"
    needs = frame["replications_needed"].dropna()
    return (int(min(most, needs.max())) if len(needs) else most), frame
