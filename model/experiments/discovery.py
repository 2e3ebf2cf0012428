"""Scenario discovery: where in parameter space a case of interest occurs — by default, the
middle hollowing out — found with PRIM (EMA Workbench)."""

from __future__ import annotations

import importlib.util
import math
import operator
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from SALib.sample import latin

from mittelbau.core.inert_parameters import unread_factors
from mittelbau.core.outcomes import HORIZONS, OUTCOMES
from mittelbau.core.parameters import Parameter
from mittelbau.core.runup import miss_note
from mittelbau.core.scenario import Scenario
from mittelbau.experiments.experiment import evaluate_points
from mittelbau.experiments.extras import needs_extra
from mittelbau.experiments.sensitivity import (
    FactorError,
    factors,
    held_factors,
    held_line,
    is_categorical,
    problem,
    to_overrides,
)
from mittelbau.experiments.store import empty_folder, folder_lock, staged

_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_CASE = re.compile(r"^\s*([a-z_]+)\s*(<=|>=|<|>)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


@dataclass(frozen=True)
class Case:
    """A case of interest: a run counts when `output op value` holds at the horizon (e.g.
    middle_share < 0.2); a yes/no outcome alone counts when it is true — the default,
    `hollowed`, a run whose middle hollows out by the horizon."""

    output: str = "hollowed"
    op: str = ">="
    value: float = 1.0

    @property
    def is_flag(self) -> bool:
        """The case is a yes/no outcome being true."""
        outcome = OUTCOMES.get(self.output)
        return outcome is not None and outcome.kind is bool and (self.op, self.value) == (">=", 1.0)

    def __str__(self) -> str:
        return self.output if self.is_flag else f"{self.output} {self.op} {self.value:g}"

    def explain(self) -> str:
        """What the case means, from the outcome registry."""
        o = OUTCOMES[self.output]
        horizon = HORIZONS[o.horizon].text
        return f"`{self.output}`: {o.definition} ({horizon})" if self.is_flag else f"`{self}` at the horizon"

    def values(self, runs: pd.DataFrame) -> pd.Series:
        """The runs' values of the case's outcome; a run without one stands for the outcome's
        `undefined` value where it has one (a price no move was bought at: infinite)."""
        values = runs[self.output].astype(float)
        undefined = OUTCOMES[self.output].undefined
        return values if undefined is None else values.fillna(undefined)

    def holds(self, runs: pd.DataFrame) -> np.ndarray:
        return _OPS[self.op](self.values(runs).to_numpy(dtype=float), self.value)


def parse_case(text: str) -> Case:
    """A yes/no outcome of the outcome registry (e.g. 'hollowed') or '<output> <op> <number>'
    with a numeric outcome."""
    flags = [n for n, o in OUTCOMES.items() if o.kind is bool]
    numbers = [n for n, o in OUTCOMES.items() if o.kind is float]
    if text.strip() in flags:
        return Case(text.strip())
    m = _CASE.match(text)
    allowed = (
        " or ".join(f"'{f}'" for f in flags)
        + " or '<output> <op> <number>' with op one of <, <=, >, >= and output one of "
        + ", ".join(numbers)
    )
    if not m or m.group(1) not in numbers:
        raise FactorError(f"case of interest {text!r} is invalid; allowed: {allowed}")
    return Case(m.group(1), m.group(2), float(m.group(3)))


PRIM_FILES = ("prim_box.csv", "prim_trajectory.csv")  # written only when a box is found


def require_prim() -> None:
    """Refuse, before anything runs, scenario discovery without the 'discovery' extra (EMA
    Workbench, whose PRIM finds the boxes)."""
    if importlib.util.find_spec("ema_workbench") is None:
        raise ImportError(needs_extra("scenario discovery", "discovery"))


def prim_box(x: pd.DataFrame, y: np.ndarray, min_density: float = 0.8) -> dict:
    """PRIM (EMA Workbench) on a labelled sample: the box on the peeling trajectory with the
    largest coverage among those with density ≥ `min_density` (else the densest), its
    coverage, density, mass and the restricted dimensions with their limits; `dense` says
    whether the box reaches `min_density` (False: the densest box, none reaching it)."""
    if not y.any():
        return {"found": False, "cases_of_interest": 0, "n": len(y)}
    # the library's own notices (optional ipyparallel, pandas deprecations) are not the user's
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            from ema_workbench.analysis import prim
        except ImportError:
            raise ImportError(needs_extra("scenario discovery", "discovery")) from None
        box = prim.Prim(x, y.astype(bool)).find_box()
        traj = box.peeling_trajectory
        dense = traj[traj["density"] >= min_density]
        chosen = int(dense["coverage"].idxmax()) if len(dense) else int(traj["density"].idxmax())
        box.select(chosen)
        limits, full = box.box_lims[chosen], box.box_lims[0]
        qp = box.p_values[chosen]  # per dimension: the quasi-p-values of its lower and upper cut (-1: uncut)
    cut = {
        c: (limits[c].iloc[0] > full[c].iloc[0] + 1e-12, limits[c].iloc[1] < full[c].iloc[1] - 1e-12)
        for c in x.columns
    }
    restricted = [c for c in x.columns if any(cut[c])]
    row = traj.loc[chosen]
    return {
        "found": True,
        "n": len(y),
        "cases_of_interest": int(y.sum()),
        "coverage": float(row["coverage"]),
        "density": float(row["density"]),
        "mass": float(row["mass"]),
        "dense": bool(len(dense)),
        "restricted": {c: [float(limits[c].iloc[0]), float(limits[c].iloc[1])] for c in restricted},
        # which sides PRIM cut (an uncut side is only the sample's extreme, no limit) and the
        # quasi-p-value of each cut (NaN where uncut): a cut above 0.05 may be chance
        "cut": {c: list(cut[c]) for c in restricted},
        "qp_values": {c: [float(v) if v >= 0 else math.nan for v in qp[c]] for c in restricted},
        "trajectory": traj[["coverage", "density", "mass", "res_dim"]],
    }


def _as_run(p: Parameter, low: float, high: float) -> list[float]:
    """A box limit in the values runs have: a switch's as 0 (off) or 1 (on), an integer
    parameter's as the integers inside the limits, a number as it is."""
    if is_categorical(p):
        return [float(low > 0), float(high >= 1)]
    if p.kind is int:
        return [float(math.ceil(low - 1e-9)), float(math.floor(high + 1e-9))]
    return [low, high]


def discover(
    scenario: Scenario,
    out: str | Path,
    samples: int,
    factor_names: Sequence[str] | None = None,
    include_levers: bool = False,
    replications: int = 1,
    run_kw: dict | None = None,
    min_density: float = 0.8,
    case: Case | str = "hollowed",
    on_total: Callable[[int], None] | None = None,
    overwrite: bool = False,
) -> dict:
    """Latin-hypercube sample of the factors, label each point a case of interest when `case`
    holds in a majority of its replicates (default: the middle hollows out by the horizon),
    find the boxes with PRIM, and write prim.md, prim_box.csv and the sample with its outcomes
    (sample.csv and sample.parquet: the factors X, the outputs' replicate means Y and the
    label `case`). One process writes into `out` at a time; `overwrite` empties it first (with
    its lock held)."""
    require_prim()
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 2:
        raise FactorError(f"samples = {samples!r} is invalid; allowed: an integer of 2 or more")
    case = parse_case(case) if isinstance(case, str) else case
    out = Path(out)
    # before the folder exists: nothing half-written
    chosen = factors(factor_names, include_levers, held=scenario.overrides, region=scenario.params.region)
    with folder_lock(out):
        if overwrite:
            empty_folder(out)
        held = held_factors(scenario.overrides, include_levers, factor_names)
        return _discover(
            scenario, out, samples, chosen, replications, run_kw, min_density, case, on_total, held
        )


def _discover(
    scenario, out, samples, chosen, replications, run_kw, min_density, case, on_total, held
) -> dict:
    X = latin.sample(problem(chosen), samples, seed=scenario.params.seed)
    points = [to_overrides(row, chosen) for row in X]
    if on_total is not None:
        on_total(len(points) * replications)
    runs = evaluate_points(scenario, points, replications, out / "runs", **(run_kw or {}))
    # a replicate whose outcome has no value (no additional move to price, say) has no say; a
    # point where no replicate has one is neither a case nor not one: PRIM leaves it out
    said = runs.assign(case=case.holds(runs))[case.values(runs).notna().to_numpy()]
    votes = said.groupby("point")["case"].mean().reindex(range(len(points)))
    defined = votes.notna().to_numpy()
    cases = votes.fillna(0.0).to_numpy() > 0.5
    # the values the runs saw: an integer parameter rounded, a switch as 0 (off) / 1 (on)
    x = pd.DataFrame(
        [
            {
                p.name: float(p.choices.index(v)) if is_categorical(p) else float(v)
                for p, v in zip(chosen, point.values(), strict=True)
            }
            for point in points
        ],
        columns=[p.name for p in chosen],
    )
    numbers = [n for n, o in OUTCOMES.items() if n in runs.columns]
    y = runs.groupby("point")[numbers].mean().reset_index(drop=True)
    sample = pd.concat([x, y], axis=1).assign(case=cases, case_defined=defined)
    # the result's files are put in place together once all are written; a box found by an
    # earlier case of the same runs goes then, as it is not this case's
    with staged(out, gone=PRIM_FILES) as stage:
        sample.to_csv(stage / "sample.csv", index=False, float_format="%.6g")
        sample.to_parquet(stage / "sample.parquet", index=False)
        # factors no run's outcomes read (the economics', a switched-off programme's) cannot
        # bound where the case occurs: PRIM does not see them (while any factor is left)
        unread = unread_factors(scenario.params, points, [p.name for p in chosen])
        if len(unread) == len(chosen):
            unread = []
        found = prim_box(x.drop(columns=unread)[defined].reset_index(drop=True), cases[defined], min_density)
        if found["found"]:
            by_name = {p.name: p for p in chosen}
            found["restricted"] = {
                k: _as_run(by_name[k], lo, hi) for k, (lo, hi) in found["restricted"].items()
            }
        found["unread"] = unread
        verdicts = verdict_shares(runs)
        lines = [
            f"# Scenario discovery — scenario '{scenario.name}'",
            "",
            f"{samples} points (Latin hypercube over {len(chosen)} registry factors), "
            f"{replications} replicate(s) each; a point is a case of interest when `{case}` holds "
            f"in more than half of its replicates (a tie is not a case) — {case.explain()}.",
            "",
            f"Cases of interest: {int(cases.sum())} of {int(defined.sum())} points "
            f"({cases[defined].mean() if defined.any() else 0.0:.0%})"
            + (
                f"; {samples - int(defined.sum())} of the {samples} points have no value of "
                f"`{case.output}` in any replicate and are left out of PRIM."
                if not defined.all()
                else "."
            ),
            "",
            "Verdicts over the sampled points (a binary verdict counts at a point when it holds in "
            "most of its replicates; stuck shares are means over points):",
            "",
            *[f"- {k}: {v:.0%}" for k, v in verdicts.items()],
            "",
        ]
        if held:
            lines += [held_line(held), ""]
        if (miss := miss_note(runs["runup_gap"])) is not None:
            lines += [miss, ""]
        if unread:
            lines += [
                f"Left out of PRIM, as no run's outcomes read them: {', '.join(unread)}.",
                "",
            ]
        if found["found"]:
            found["trajectory"].to_csv(stage / "prim_trajectory.csv", float_format="%.6g")
            pd.DataFrame(
                [
                    {
                        "factor": k,
                        "low": v[0],
                        "high": v[1],
                        "low_cut": found["cut"][k][0],
                        "high_cut": found["cut"][k][1],
                        "qp_low": found["qp_values"][k][0],
                        "qp_high": found["qp_values"][k][1],
                    }
                    for k, v in found["restricted"].items()
                ],
                # a box that restricts nothing has no rows, and its columns still
                columns=["factor", "low", "high", "low_cut", "high_cut", "qp_low", "qp_high"],
            ).to_csv(stage / "prim_box.csv", index=False, float_format="%.6g")
            if not found["dense"]:
                lines += [
                    f"No box on the peeling trajectory reaches the density asked ({min_density:.0%}): "
                    "the densest is shown.",
                    "",
                ]
            if not found["restricted"]:  # the whole space is dense enough: nothing to restrict
                lines += [
                    f"PRIM box: coverage {found['coverage']:.0%}, density {found['density']:.0%}, "
                    f"mass {found['mass']:.0%}; it restricts no factor: "
                    + (
                        f"the whole sampled space already has the density asked ({min_density:.0%}), "
                        "so no factor range singles out the cases."
                        if found["dense"]
                        else "no narrower box is denser than the whole sampled space."
                    ),
                ]
            else:
                lines += [
                    f"PRIM box: coverage {found['coverage']:.0%}, density {found['density']:.0%}, "
                    f"mass {found['mass']:.0%}; restricted dimensions:",
                    "",
                    "A side PRIM did not cut is shown as –: the sample's extreme there is no limit. "
                    "The quasi-p-value of a cut (PRIM's, one-sided binomial) above 0.05 says the cut "
                    "may be chance.",
                    "",
                    "| factor | low | high | full range | quasi-p-value (low, high) |",
                    "|---|---|---|---|---|",
                ]
                for name, (lo, hi) in found["restricted"].items():
                    p = next(q for q in chosen if q.name == name)
                    (low_cut, high_cut), qps = found["cut"][name], found["qp_values"][name]
                    shown = ", ".join("–" if math.isnan(q) else f"{q:.2g}" for q in qps)
                    if is_categorical(p):
                        low, high = ("on" if lo > 0 else "off"), ("on" if hi >= 1 else "off")
                        lines.append(f"| {name} | {low} | {high} | off, on | {shown} |")
                    else:
                        low = f"{lo:.4g}" if low_cut else "–"
                        high = f"{hi:.4g}" if high_cut else "–"
                        span = f"{p.explore_low:g}–{p.explore_high:g}"
                        lines.append(f"| {name} | {low} | {high} | {span} | {shown} |")
        else:
            found["undefined"] = bool(runs[case.output].isna().all())
            if found["undefined"]:
                lines.append(
                    f"`{case.output}` has no value at any sampled point, so no point can have `{case}` "
                    f"and there is no box to find (its definition: {OUTCOMES[case.output].definition})."
                )
            else:
                lines.append(f"No sampled point has `{case}`, so there is no box to find.")
        (stage / "prim.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    found.pop("trajectory", None)
    found["case"] = str(case)
    found["share"] = float(cases[defined].mean()) if defined.any() else 0.0
    found["undefined_points"] = int((~defined).sum())
    found["verdicts"] = verdicts
    return found


def verdict_shares(runs: pd.DataFrame) -> dict[str, float]:
    """Over the sampled points: the share where each yes/no outcome of the outcome registry
    holds in most replicates, and the mean stuck shares."""
    by_point = runs.groupby("point")
    out = {
        name: float((by_point[name].mean() > 0.5).mean())
        for name, o in OUTCOMES.items()
        if o.kind is bool and name in runs.columns
    }
    for name in ("stuck_share", "stuck_share_small"):
        out[f"{name}_mean"] = float(by_point[name].mean().mean())
    return out
