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
    (exits count in the denominator). `transitions` is the 4 × 4 matrix from/to stage, 0 = outside."""
    start = transitions[1].sum()
    return float(transitions[1, 2:].sum() / start) if start else 0.0
