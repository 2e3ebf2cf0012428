"""Posterior-predictive ensembles: the fit's weighted sample of parameter sets, the parameter
set each replicate draws from it, and the split of an outcome's spread into a seed part and a
parameter part.

The sample (`calibration/posterior.csv`, written by the fit through
`mittelbau.calibration.posterior.write_posterior`) has one row per particle: a column `weight`
(normalised, summing to 1), then one column per fitted registry parameter; lines starting with
`#` are comments.

Draws: draw k of a scenario picks a particle by weight with its own generator, child k of
`SeedSequence([seed, DRAW_STREAM])` (the scenario's seed). Draw k therefore does not depend on
the number of draws, the executor or the number of workers; scenarios that share a seed share
their draws (common parameter sets, as they share replication seeds). Replicate r uses draw
r // seeds_per_draw: a nested design of K draws × m seeds each.

Spread: for each outcome, the one-way random-effects analysis of variance of that design
splits Var(Y) into E[Var(Y | θ)] (seed part: the mean within-draw variance) and
Var(E[Y | θ]) (parameter part: (MSB − MSW) / m, set to 0 when negative) — the law of total
variance, each term estimated without bias for draws that are independent samples of the
posterior. When all runs share one parameter set (one particle drawn, or the scenario holds
every parameter of the sample) the parameter part is 0 by definition.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mittelbau import calibration
from mittelbau.core.parameters import BY_NAME
from mittelbau.core.scenario import ScenarioError, make_params

POSTERIOR_FILE = Path(calibration.__file__).resolve().parent / "posterior.csv"
WEIGHT = "weight"
WEIGHT_TOLERANCE = 1e-6  # |Σ weights − 1| allowed
DRAW_STREAM = 0x504F5354  # second entropy word: the draws' generators differ from the replicate seeds'
# registry groups a posterior may not hold: the run settings (region, firms, years, seed) and
# the verdicts' definitions (hollowing_threshold, middle_shrink_pp), which are not uncertain
NOT_DRAWN = ("run", "indicators")


class PosteriorError(ValueError):
    """A posterior sample that cannot be used; the message names the file, the line, the
    column, the value and what is allowed."""


def drawable() -> list[str]:
    """Registry parameters a posterior sample may hold: the numeric ones outside the run
    settings and the verdicts' definitions."""
    return sorted(n for n, p in BY_NAME.items() if not p.choices and p.group not in NOT_DRAWN)


@dataclass(frozen=True)
class Posterior:
    """A weighted sample of parameter sets (particles)."""

    path: str
    names: tuple[str, ...]
    values: tuple[dict[str, Any], ...]  # one validated parameter set per particle
    weights: tuple[float, ...]
    sha256: str

    def __len__(self) -> int:
        return len(self.values)

    def draws(self, seed: int, count: int) -> list[int]:
        """The particle of draws 0..count−1 for a scenario seed; draw k does not depend on
        `count`."""
        p = np.asarray(self.weights, dtype=float)
        p = p / p.sum()
        children = np.random.SeedSequence([seed, DRAW_STREAM]).spawn(count)
        return [int(np.random.default_rng(c).choice(len(p), p=p)) for c in children]

    def describe(self) -> dict[str, Any]:
        """What binds an ensemble to this sample (written into its manifest)."""
        return {
            "file": Path(self.path).name,
            "sha256": self.sha256,
            "particles": len(self),
            "parameters": list(self.names),
        }


def _fail(where: str, problem: str, allowed: str) -> PosteriorError:
    return PosteriorError(f"{where}: {problem}; allowed: {allowed}")


def _number(text: str, where: str, column: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _fail(where, f"column {column!r} = {text!r} is not a number", "a finite number") from None
    if not math.isfinite(value):
        raise _fail(where, f"column {column!r} = {text!r} is not finite", "a finite number")
    return value


def load_posterior(path: str | Path | None = None) -> Posterior:
    """Read and validate a posterior sample (the committed one when `path` is None): known,
    drawable parameter names, each value inside its registry range, weights finite, not
    negative and summing to 1."""
    path = Path(path) if path is not None else POSTERIOR_FILE
    where = str(path)
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise _fail(where, "file not found", "a posterior sample written by the fit (CSV)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(where, f"cannot read ({type(exc).__name__})", "a readable UTF-8 CSV file") from None
    lines = [
        (n, line.strip())
        for n, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not lines:
        raise _fail(where, "empty (no header, no particles)", f"a header '{WEIGHT},<parameter>,…' and rows")
    header_line, header = lines[0]
    columns = [c.strip() for c in header.split(",")]
    names = columns[1:]
    allowed_names = drawable()
    if columns[0] != WEIGHT:
        raise _fail(f"{where} line {header_line}", f"first column is {columns[0]!r}", f"{WEIGHT!r} first")
    if not names:
        raise _fail(f"{where} line {header_line}", "no parameter column", "one column per fitted parameter")
    for name in names:
        if name not in allowed_names:
            kind = "a registry parameter no posterior may draw" if name in BY_NAME else "unknown"
            raise _fail(
                f"{where} line {header_line}",
                f"column {name!r} is {kind}",
                "registry parameters a fit can draw: " + ", ".join(allowed_names),
            )
    if len(set(columns)) != len(columns):
        twice = sorted({c for c in columns if columns.count(c) > 1})
        raise _fail(f"{where} line {header_line}", f"column {twice[0]!r} twice", "each column once")
    if len(lines) == 1:
        raise _fail(where, "no particles (only a header)", "one row per particle")
    weights, values = [], []
    for number, line in lines[1:]:
        at = f"{where} line {number}"
        cells = [c.strip() for c in line.split(",")]
        if len(cells) != len(columns):
            raise _fail(at, f"{len(cells)} fields", f"{len(columns)} fields, as the header")
        weight = _number(cells[0], at, WEIGHT)
        if weight < 0:
            raise _fail(at, f"column {WEIGHT!r} = {cells[0]} is negative", "a weight of 0 or more")
        row = {n: _number(c, at, n) for n, c in zip(names, cells[1:], strict=True)}
        try:
            params = make_params(row, at)
        except ScenarioError as exc:
            raise _fail(at, f"column {exc.key!r} = {exc.value!r} is invalid", exc.allowed or "") from None
        weights.append(weight)
        values.append({n: getattr(params, n) for n in names})
    total = math.fsum(weights)
    if abs(total - 1.0) > WEIGHT_TOLERANCE:
        raise _fail(
            where,
            f"column {WEIGHT!r} sums to {total:.9g}",
            f"normalised weights summing to 1 (within {WEIGHT_TOLERANCE:g})",
        )
    return Posterior(str(path), tuple(names), tuple(values), tuple(weights), hashlib.sha256(raw).hexdigest())


def draws_needed(replications: int, seeds_per_draw: int) -> int:
    """Draws of an ensemble of `replications` runs per scenario."""
    return -(-replications // seeds_per_draw)


@dataclass(frozen=True)
class Split:
    """An outcome's variance over the runs of a posterior ensemble and its two parts."""

    draws: int
    seeds_per_draw: int
    mean: float
    seed: float  # E[Var(Y | θ)]
    parameter: float  # Var(E[Y | θ])

    @property
    def total(self) -> float:
        return self.seed + self.parameter

    @property
    def parameter_share(self) -> float:
        """The parameter part of the variance; NaN where the outcome does not vary at all."""
        return self.parameter / self.total if self.total > 0 else float("nan")

    @property
    def design_effect(self) -> float:
        """Variance of a mean over the runs against independent runs: 1 + (m − 1) · ICC; its
        upper bound m when the runs do not vary at all (the ICC is then unknown)."""
        if self.total == 0:
            return float(self.seeds_per_draw)
        return 1.0 + (self.seeds_per_draw - 1) * self.parameter_share


def split_variance(values: np.ndarray, one_particle: bool = False) -> Split | None:
    """Seed and parameter parts of the variance of `values` (draws × seeds per draw), by the
    one-way random-effects analysis of variance; draws with a missing value are left out.
    None when fewer than two seeds per draw or (unless all draws share one particle) fewer
    than two draws remain."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x).all(axis=1)]
    k, m = x.shape
    if m < 2 or k < 1 or (k < 2 and not one_particle):
        return None
    mean = float(x.mean())
    if one_particle:  # one parameter set: every run is a seed replicate of it
        seed = float(x.var(ddof=1)) if x.size > 1 else 0.0
        return Split(k, m, mean, seed, 0.0)
    within = float(x.var(axis=1, ddof=1).mean())  # MSW
    between = float(m * x.mean(axis=1).var(ddof=1))  # MSB
    return Split(k, m, mean, within, max(0.0, (between - within) / m))


def draw_matrix(runs: Any, outcome: str, seeds_per_draw: int) -> np.ndarray:
    """One scenario's values of `outcome` as draws × seeds per draw, complete draws only (a
    table with columns draw, replicate and the outcome, e.g. runs.parquet's rows)."""
    part = runs[["draw", "replicate", outcome]].copy()
    part["position"] = part["replicate"] % seeds_per_draw
    wide = part.pivot(index="draw", columns="position", values=outcome).reindex(columns=range(seeds_per_draw))
    wide = wide[wide.notna().all(axis=1)]
    return wide.to_numpy(dtype=float)


def spread_table(runs: Any, outcomes: list[str], seeds_per_draw: int, names: list[str]) -> Any:
    """Per scenario and outcome: mean over runs, total, seed and parameter standard deviation,
    the parameter share of the variance and the design effect (NaN where the design cannot
    split the spread). `names` are the sample's parameters: runs that all ran at one set of
    their values (one particle drawn, or every drawn parameter held by the scenario) have no
    parameter part."""
    import pandas as pd

    rows = []
    for scenario, part in runs.groupby("scenario", sort=False):
        one = len(part[list(names)].drop_duplicates()) == 1
        for name in outcomes:
            found = split_variance(draw_matrix(part, name, seeds_per_draw), one)
            row: dict[str, Any] = {"scenario": scenario, "outcome": name}
            if found is None:
                row |= dict.fromkeys(("draws", "mean", "sd", "seed_sd", "parameter_sd"), np.nan)
                row |= {"parameter_share": np.nan, "design_effect": np.nan}
            else:
                row |= {
                    "draws": found.draws,
                    "mean": found.mean,
                    "sd": math.sqrt(found.total),
                    "seed_sd": math.sqrt(found.seed),
                    "parameter_sd": math.sqrt(found.parameter),
                    "parameter_share": found.parameter_share,
                    "design_effect": found.design_effect,
                }
            rows.append(row)
    return pd.DataFrame(rows)
