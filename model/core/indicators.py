"""Headline indicators of polarisation (formulas in docs/odd.md, section 'Observation')."""

from __future__ import annotations

import numpy as np


def stage_shares(stage: np.ndarray) -> np.ndarray:
    """Shares of firms in stages 1, 2, 3."""
    return np.bincount(stage, minlength=4)[1:4] / max(len(stage), 1)


def middle_share(shares: np.ndarray) -> float:
    """Middle-tier share: the stage-2 share s2."""
    return float(shares[1])


def polarisation_index(shares: np.ndarray) -> float:
    """Esteban–Ray polarisation (alpha = 1) over the ordered stages 1–3, scaled to [0, 1]:
    PI = 2 · Σ_i Σ_j s_i² s_j |i − j|. 0 when all firms share one stage; 1 when half are in
    stage 1 and half in stage 3 with an empty middle."""
    s = np.asarray(shares, dtype=float)
    dist = np.abs(np.subtract.outer(np.arange(3), np.arange(3)))
    return float(2.0 * (s**2) @ dist @ s)


def hollowing_ratio(shares: np.ndarray) -> float:
    """HR = s2 / min(s1, s3): the middle against the smaller pole. Low when the middle is thin
    while both poles stay large ('two worlds', sources §2.13); inf when a pole is empty."""
    pole = min(float(shares[0]), float(shares[2]))
    return float(shares[1]) / pole if pole > 0 else float("inf")


def is_hollowed(shares: np.ndarray, threshold: float) -> bool:
    """The middle has hollowed out: HR < threshold."""
    return hollowing_ratio(shares) < threshold


def upward_rate(transitions: np.ndarray) -> float:
    """Share of the firms in stage 1 at the start of a year that are in stage 2 or 3 at its end
    (exits count in the denominator). `transitions` is the 4 × 4 matrix from/to stage, 0 = outside.
    NaN in a year that starts without stage-1 firms: there is no rate then (and the mean over
    the years leaves such a year out, rather than counting it as no move)."""
    start = transitions[1].sum()
    return float(transitions[1, 2:].sum() / start) if start else float("nan")


# ---- verdict indicators (formulas in docs/odd.md, section 'Indicators') -----------------------
MIDDLE_SHRINKS = "s2 at the horizon at least middle_shrink_pp percentage points below s2 in 2015"
CLOSED_SHARE = (
    "share of the 2015 stage-1 firms that left the market from stage 1: the part of the stuck "
    "share that closed rather than stayed in stage 1"
)
STUCK_SHARE = (
    "share of the 2015 stage-1 firms still stuck: in stage 1 at the horizon (whether or not they "
    "left it in between), or left the market from stage 1 (firms that were out of stage 1 when "
    "they exited are not stuck)"
)
STUCK_SHARE_SMALL = "stuck_share among the 2015 stage-1 firms with < 100 employees"
COMPETENCE_GAP = "mean digital techniques of stage-3 firms minus those of stage-1 firms"
GAP_WIDENS = "competence_gap at the horizon larger than in 2015"


def middle_shrinks(start: np.ndarray, end: np.ndarray, pp: float) -> bool:
    """The middle shrinks: s2 at the horizon at least `pp` percentage points below 2015."""
    change_pp = 100.0 * (float(end[1]) - float(start[1]))
    return bool(change_pp <= -pp + 1e-9)  # a fall of exactly `pp` counts despite rounding


def stuck_share(
    start_stage: np.ndarray,
    stage: np.ndarray,
    exit_stage: np.ndarray,
    among: np.ndarray | None = None,
) -> float:
    """Share of the 2015 stage-1 firms (optionally only `among` them) still stuck in stage 1:
    there now, or exited from it (a firm that moved up and fell back counts as stuck). Per row
    of the 2015 population: `start_stage` its stage then, `stage` the row's stage now
    (meaningful while the 2015 firm is still there), `exit_stage` 0 while it is, else the stage
    it exited from. Exits from stage 1 count as stuck; nan when there is no such firm."""
    base = start_stage == 1 if among is None else (start_stage == 1) & among
    stuck = np.where(exit_stage == 0, stage == 1, exit_stage == 1)
    n = int(base.sum())
    return float((stuck & base).sum() / n) if n else float("nan")


def closed_share(start_stage: np.ndarray, exit_stage: np.ndarray) -> float:
    """Share of the 2015 stage-1 firms that left the market from stage 1: the part of
    `stuck_share` that closed rather than stayed (`exit_stage` as there); nan without such
    firms."""
    base = start_stage == 1
    n = int(base.sum())
    return float(((exit_stage == 1) & base).sum() / n) if n else float("nan")


def competence_by_stage(techniques: np.ndarray, stage: np.ndarray) -> np.ndarray:
    """Mean digital techniques of the firms in stages 1, 2, 3 (nan for an empty stage)."""
    sums = np.bincount(stage, weights=techniques, minlength=4)[1:4]
    counts = np.bincount(stage, minlength=4)[1:4]
    return np.divide(sums, counts, out=np.full(3, np.nan), where=counts > 0)


def competence_gap(techniques: np.ndarray, stage: np.ndarray) -> float:
    """Mean techniques of stage 3 minus stage 1."""
    c = competence_by_stage(techniques, stage)
    return float(c[2] - c[0])


def gap_widens(gap_start: float, gap_end: float) -> bool:
    """The competence gap between stage 3 and stage 1 is wider at the horizon than in 2015."""
    return bool(gap_end > gap_start)
