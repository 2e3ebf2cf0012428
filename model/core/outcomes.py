"""The outcome registry: every outcome of a run declared once.

An outcome has a name, a definition, a unit, a kind (bool or float), how it is computed each
year from the model's records (a Mesa DataCollector reporter) and how the years are
summarised at the horizon. Outcomes that only exist for a whole run (they need the run's
same-seed counterfactuals) are computed from the run's summary instead of year by year.

Everything that shows outcomes reads this registry: the model's reporters (indicators.csv),
the run summary (summary.json), the ensemble report, sampled experiments, sensitivity
analysis, scenario discovery and the dashboard. A new outcome is one entry in `OUTCOMES`.

A run's yearly records start with the run-up (from `runup_start_year`); the summaries at the
horizon read only the years from 2015 on, the projection. The verdict indicators follow the
2015 firms and have no value in the run-up years.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mittelbau.core import indicators as ind
from mittelbau.core.categories import STAGE_TOLERANCE, START_YEAR
from mittelbau.core.indicators import (
    closed_share,
    gap_widens,
    hollowing_ratio,
    is_hollowed,
    middle_share,
    middle_shrinks,
    polarisation_index,
    stage_shares,
    stuck_share,
    upward_rate,
)


@dataclass(frozen=True)
class Horizon:
    """How an outcome's yearly values (a list, from 2015 to the horizon) are summarised at the
    horizon."""

    text: str
    of: Callable[[Sequence[Any]], Any]


def _missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def _mean(values: Sequence[Any]) -> float | None:
    """The mean of the values that are not missing (None or nan); None when all are."""
    present = [x for x in values if not _missing(x)]
    return float(np.mean(np.asarray(present, dtype=float))) if present else None


HORIZONS = {
    "end": Horizon("the value in the horizon year", lambda v: v[-1]),
    "mean": Horizon(f"the mean over the simulated years after {START_YEAR}", lambda v: _mean(v[1:])),
    "ever": Horizon(
        f"true when it holds in any year from {START_YEAR} to the horizon",
        lambda v: any(bool(x) for x in v if x is not None),
    ),
    "run": Horizon("computed once for the whole run", lambda v: None),
}


@dataclass(frozen=True)
class Outcome:
    """One outcome. `per_year(model)` reads the model's records after each year (None where a
    year has no value); `horizon` names its summary at the horizon (a key of HORIZONS).
    Outcomes of the whole run give `of_run(summary)` instead, reading the run summary."""

    name: str
    label: str
    definition: str
    unit: str
    kind: type
    horizon: str
    per_year: Callable[[Any], Any] | None = None
    of_run: Callable[[Mapping[str, Any]], Any] | None = None
    sensitivity: bool = False  # among the default outputs of a sensitivity study
    # what a run without a value stands for when a condition compares it (a discovery case):
    # None, no value (the run has no say); math.inf for a price at which no move was bought
    undefined: float | None = None
    undefined_note: str = ""  # what such a run is, as tables say it

    def __post_init__(self) -> None:
        if self.kind not in (bool, float):
            raise ValueError(f"outcome {self.name!r}: kind {self.kind!r} is invalid; allowed: bool, float")
        if self.horizon not in HORIZONS:
            raise ValueError(
                f"outcome {self.name!r}: horizon {self.horizon!r} is invalid; allowed: {', '.join(HORIZONS)}"
            )
        run = self.horizon == "run"
        if (self.per_year is None) != run or (self.of_run is None) == run:
            raise ValueError(
                f"outcome {self.name!r}: give per_year with a yearly horizon, or of_run with horizon 'run'"
            )

    @property
    def yearly(self) -> bool:
        return self.per_year is not None

    def describe(self) -> dict[str, str]:
        """The outcome's definition as written into a run's summary."""
        per_year = "computed every year" if self.yearly else "no yearly value"
        return {
            "definition": self.definition,
            "unit": self.unit,
            "kind": self.kind.__name__,
            "per_year": per_year,
            "at_horizon": HORIZONS[self.horizon].text,
        }

    def value(self, raw: Any) -> bool | float | None:
        """A plain Python value of the outcome's kind (None where there is none); floats
        rounded to 6 decimals, as in every written table."""
        if raw is None or (isinstance(raw, float) and math.isnan(raw)):
            return None
        if self.kind is bool:
            return bool(raw)
        return round(float(raw), 6)


def _stage(k: int) -> Callable[[Any], float]:
    return lambda m: float(m.recorded_shares[k])


def _projected(per_year: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A reporter that has no value in the run-up years (the verdict indicators follow the
    2015 firms and compare with the 2015 state)."""
    return lambda m: per_year(m) if m.year >= START_YEAR else None


def _gap(m: Any) -> float:
    return float(m.recorded_competence[2] - m.recorded_competence[0])


def _gap_widens(m: Any) -> bool | None:
    """The gap now against the gap of the 2015 state (kept by the model with the other states
    the verdict indicators start from)."""
    gap, start = _gap(m), m.start_gap
    return gap_widens(start, gap) if math.isfinite(start) and math.isfinite(gap) else None


def _runup_gap(summary: Mapping[str, Any]) -> float | None:
    runup = summary.get("runup")
    return runup["stage_share_gap"] if runup else None


def _cost_per_move(summary: Mapping[str, Any]) -> float | None:
    policy = summary.get("policy")
    return policy["cost_per_additional_upward_move_eur"] if policy else None


_ENTRIES = (
    Outcome(
        "stage1",
        "stage-1 share",
        "s1, the share of firms in stage 1 (product makers)",
        "share",
        float,
        "end",
        _stage(0),
    ),
    Outcome(
        "stage2",
        "stage-2 share",
        "s2, the share of firms in stage 2 (product-service providers)",
        "share",
        float,
        "end",
        _stage(1),
    ),
    Outcome(
        "stage3",
        "stage-3 share",
        "s3, the share of firms in stage 3 (digital business models)",
        "share",
        float,
        "end",
        _stage(2),
    ),
    Outcome(
        "middle_share",
        "middle-tier share",
        "s2, the share of firms in the middle tier (stage 2)",
        "share",
        float,
        "end",
        lambda m: middle_share(m.recorded_shares),
        sensitivity=True,
    ),
    Outcome(
        "polarisation_index",
        "polarisation index",
        "2 · Σ_i Σ_j s_i² s_j |i − j| over stages 1–3 (Esteban–Ray, alpha 1, scaled to [0, 1])",
        "index 0–1",
        float,
        "end",
        lambda m: polarisation_index(m.recorded_shares),
        sensitivity=True,
    ),
    Outcome(
        "hollowing_ratio",
        "hollowing ratio",
        "s2 / min(s1, s3): the middle against the smaller pole (inf when a pole is empty)",
        "ratio",
        float,
        "end",
        lambda m: hollowing_ratio(m.recorded_shares),
        sensitivity=True,
    ),
    Outcome(
        "hollowed",
        "middle hollowed",
        "the middle has hollowed out: hollowing_ratio < hollowing_threshold",
        "-",
        bool,
        "ever",
        lambda m: is_hollowed(m.recorded_shares, m.params.hollowing_threshold),
    ),
    Outcome(
        "upward_rate",
        "upward rate",
        "share of the stage-1 firms at the start of a year that are in stage 2 or 3 at its end "
        "(exits count in the denominator; none in a year that starts without stage-1 firms)",
        "share per year",
        float,
        "mean",
        lambda m: upward_rate(m.transitions[-1]) if m.transitions else None,
        sensitivity=True,
    ),
    Outcome(
        "middle_shrinks",
        "middle shrinks",
        ind.MIDDLE_SHRINKS,
        "-",
        bool,
        "end",
        _projected(
            lambda m: middle_shrinks(
                stage_shares(m.start_stage), m.recorded_shares, m.params.middle_shrink_pp
            )
        ),
    ),
    Outcome(
        "stuck_share",
        "stuck in stage 1",
        ind.STUCK_SHARE,
        "share",
        float,
        "end",
        _projected(lambda m: stuck_share(m.start_stage, m.state.stage, m.exit_stage)),
        sensitivity=True,
    ),
    Outcome(
        "stuck_share_small",
        "stuck in stage 1 (< 100 employees)",
        ind.STUCK_SHARE_SMALL,
        "share",
        float,
        "end",
        _projected(lambda m: stuck_share(m.start_stage, m.state.stage, m.exit_stage, m.start_small)),
        sensitivity=True,
    ),
    Outcome(
        "stuck_closed_share",
        "stuck: closed from stage 1",
        ind.CLOSED_SHARE,
        "share",
        float,
        "end",
        _projected(lambda m: closed_share(m.start_stage, m.exit_stage)),
    ),
    Outcome(
        "competence_gap",
        "competence gap",
        ind.COMPETENCE_GAP,
        "digital techniques",
        float,
        "end",
        _projected(_gap),
        sensitivity=True,
    ),
    Outcome(
        "competence_gap_widens",
        "competence gap widens",
        ind.GAP_WIDENS,
        "-",
        bool,
        "end",
        _projected(_gap_widens),
    ),
    Outcome(
        "cost_per_additional_upward_move",
        "€ per additional upward move",
        "public money spent by the programmes over the run per upward move more than in the same-seed "
        "run without any programme (none without programmes or without additional moves)",
        "€ per move",
        float,
        "run",
        of_run=_cost_per_move,
        undefined=math.inf,  # no move bought: no price is low enough
        undefined_note="no additional move bought, counted as unbounded",
    ),
    Outcome(
        "runup_gap",
        "run-up's miss of 2015",
        "largest difference between the stage shares of the run-up's expected 2015 state and "
        "those of the 2015 cross-section it is solved for: how far from the surveyed state the "
        f"projection starts (above {STAGE_TOLERANCE:g}, the cross-section's own tolerance, the run is "
        "reported)",
        "share",
        float,
        "run",
        of_run=_runup_gap,
    ),
)

OUTCOMES: dict[str, Outcome] = {o.name: o for o in _ENTRIES}


def reporters() -> dict[str, Callable[[Any], Any]]:
    """Mesa DataCollector model reporters: one per yearly outcome, in registry order."""
    return {o.name: o.per_year for o in OUTCOMES.values() if o.per_year is not None}


def record_for_horizon(m: Any, rows: dict[str, list], last: bool) -> None:
    """Append the year's values of the yearly outcomes as far as the summaries at the horizon
    read them: outcomes summarised over the years every year, those read in the horizon year
    ("end") only in the `last` year (None before): what a run keeping only its outcomes
    records instead of every reporter every year."""
    rows["year"].append(m.year)
    for o in OUTCOMES.values():
        if o.per_year is not None:
            rows[o.name].append(o.per_year(m) if last or o.horizon != "end" else None)


def at_horizon(yearly: pd.DataFrame, summary: Mapping[str, Any]) -> dict[str, bool | float | None]:
    """Every outcome at the horizon: yearly outcomes summarised from their column of the
    yearly table (indicators.csv) over the years from 2015 on (the run-up's rows before it are
    not the projection), outcomes of the whole run read from the run's summary."""
    projected = yearly[yearly["year"] >= START_YEAR]
    columns = {o.name: projected[o.name].tolist() for o in OUTCOMES.values() if o.yearly}
    return horizon_values(columns, summary)


def horizon_values(
    columns: Mapping[str, Sequence[Any]], summary: Mapping[str, Any]
) -> dict[str, bool | float | None]:
    """`at_horizon` from each yearly outcome's values from 2015 to the horizon (`columns`,
    such as a run keeping only its outcomes records them: `record_for_horizon`)."""
    out = {}
    for o in OUTCOMES.values():
        raw = HORIZONS[o.horizon].of(columns[o.name]) if o.yearly else o.of_run(summary)
        out[o.name] = o.value(raw)
    return out


def definitions() -> dict[str, dict[str, str]]:
    """Every outcome's definition, unit, kind and summary at the horizon."""
    return {o.name: o.describe() for o in OUTCOMES.values()}


def allowed() -> str:
    return ", ".join(OUTCOMES)
