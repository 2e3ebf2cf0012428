"""Uncertainty summaries over replicates, used by the comparison report."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

BAND = (5.0, 95.0)  # the spread of outcomes shown as bands: 5th–95th percentile
LEVEL = 0.90  # confidence level of intervals for means, differences and probabilities


def seeds_per_draw(ens: dict) -> int | None:
    """Seeds per parameter draw of a posterior-predictive ensemble (`load_ensemble`); None for
    a plain one."""
    drawn = ens["manifest"].get("posterior")
    return None if drawn is None else int(drawn["seeds_per_draw"])


def draw_mean_interval(
    x: np.ndarray, replicates: np.ndarray, seeds_per_draw: int | None
) -> tuple[float, float, float]:
    """`mean_interval` over independent units: the runs of a plain ensemble (`seeds_per_draw`
    None or 1), the means of each parameter draw's runs in a posterior-predictive one (replicate
    r runs draw r // seeds_per_draw; runs of one draw share their parameters, so they are not
    independent, and an interval over runs would be too narrow)."""
    x = np.asarray(x, dtype=float)
    if not seeds_per_draw or seeds_per_draw == 1:
        return mean_interval(x)
    draws = np.asarray(replicates) // seeds_per_draw
    _, at = np.unique(draws, return_inverse=True)
    means = np.bincount(at, weights=x) / np.bincount(at)
    return mean_interval(means)


# said where an interval has too few independent units (one run, one pair, one draw's runs)
NO_INTERVAL = "(no interval from fewer than two independent runs)"


def interval_text(low: float | None, high: float | None, fmt: str, sep: str = "–") -> str:
    """An interval as "[low–high]" in `fmt` (a format string), or NO_INTERVAL where it has
    no bounds (`mean_interval` of fewer than two values)."""
    if low is None or high is None or not (np.isfinite(low) and np.isfinite(high)):
        return NO_INTERVAL
    return f"[{fmt.format(low)}{sep}{fmt.format(high)}]"


def band(x: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Median and the 5–95 % band of outcomes across replicates."""
    lo, med, hi = np.percentile(np.asarray(x, dtype=float), [BAND[0], 50.0, BAND[1]], axis=axis)
    return med, lo, hi


def band_of_unbounded(x: np.ndarray) -> tuple[float, float, float]:
    """`band` of values some of which are +inf (a price at which nothing was bought): a
    percentile that interpolates towards an infinite value is infinite, one at a finite value
    is that value (numpy's percentile gives NaN there, computing inf · 0)."""
    x = np.asarray(x, dtype=float)
    finite = x[np.isfinite(x)]
    top = float(finite.max()) + 1.0 if len(finite) else 1.0
    med, lo, hi = band(np.where(np.isposinf(x), top, x))
    limit = top - 1.0 if len(finite) else 0.0
    return tuple(v if v <= limit else np.inf for v in (med, lo, hi))  # type: ignore[return-value]


def mean_interval(x: np.ndarray, level: float = LEVEL) -> tuple[float, float, float]:
    """Mean and its two-sided t interval (replicates are independent draws); no interval
    from fewer than two values, a point where all values are equal."""
    x = np.asarray(x, dtype=float)
    mean = float(x.mean())
    if len(x) < 2:
        return mean, float("nan"), float("nan")
    if np.ptp(x) == 0:
        return mean, mean, mean
    ci = stats.ttest_1samp(x, 0.0).confidence_interval(level)
    return mean, float(ci.low), float(ci.high)


def wilson_interval(k: int, n: int, level: float = LEVEL) -> tuple[float, float, float]:
    """Share k/n and its Wilson score interval (sound also at 0 % and 100 %); none of 0 runs."""
    if n == 0:
        return float("nan"), float("nan"), float("nan")
    ci = stats.binomtest(k, n).proportion_ci(level, method="wilson")
    # at k = 0 and k = n the bound is exactly the share
    low = 0.0 if k == 0 else float(ci.low)
    high = 1.0 if k == n else float(ci.high)
    return k / n, low, high


def wilson_effective(p: float, n_eff: float, level: float = LEVEL) -> tuple[float, float]:
    """Wilson score interval of a share p estimated from runs worth `n_eff` independent runs
    (the runs' count divided by their design effect, for runs clustered by parameter draw)."""
    if not n_eff > 0 or not math.isfinite(p):
        return float("nan"), float("nan")
    z = float(stats.norm.ppf(0.5 + level / 2))
    centre = (p + z**2 / (2 * n_eff)) / (1 + z**2 / n_eff)
    half = z / (1 + z**2 / n_eff) * math.sqrt(p * (1 - p) / n_eff + z**2 / (4 * n_eff**2))
    low = 0.0 if p == 0 else max(0.0, centre - half)
    high = 1.0 if p == 1 else min(1.0, centre + half)
    return low, high
