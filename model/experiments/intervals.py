"""Uncertainty summaries over replicates, used by the comparison report."""

from __future__ import annotations

import numpy as np
from scipy import stats

BAND = (5.0, 95.0)  # the spread of outcomes shown as bands: 5th–95th percentile
LEVEL = 0.90  # confidence level of intervals for means, differences and probabilities


def band(x: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Median and the 5–95 % band of outcomes across replicates."""
    lo, med, hi = np.percentile(np.asarray(x, dtype=float), [BAND[0], 50.0, BAND[1]], axis=axis)
    return med, lo, hi


def mean_interval(x: np.ndarray, level: float = LEVEL) -> tuple[float, float, float]:
    """Mean and its two-sided t interval (replicates are independent draws)."""
    x = np.asarray(x, dtype=float)
    mean = float(x.mean())
    if len(x) < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)))
    return mean, mean - half, mean + half


def wilson_interval(k: int, n: int, level: float = LEVEL) -> tuple[float, float, float]:
    """Share k/n and its Wilson score interval (sound also at 0 % and 100 %)."""
    if n == 0:
        return float("nan"), float("nan"), float("nan")
    z = float(stats.norm.ppf(0.5 + level / 2))
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    # at k = 0 and k = n the bound is exactly the share (rounding leaves a few 1e-18 otherwise)
    low = 0.0 if k == 0 else max(0.0, centre - half)
    high = 1.0 if k == n else min(1.0, centre + half)
    return p, low, high
