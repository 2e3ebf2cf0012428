"""Write a fit's posterior sample: the weighted parameter sets of its last ABC-SMC generation,
in the format posterior-predictive ensembles read (`mittelbau.experiments.posterior`).

One row per particle: `weight` (normalised to sum to 1), then one column per fitted registry
parameter; `#` lines before the header say how the sample was made and its effective sample
size (1 / Σ w²). Values are written with full precision (Python's shortest round-trip form),
so reading the file back gives the particles exactly (the committed calibration/posterior.csv
was written by an earlier writer, at six significant digits).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mittelbau.experiments.posterior import POSTERIOR_FILE, WEIGHT, load_posterior


def effective_sample_size(weights: np.ndarray) -> float:
    """Kish's effective sample size of normalised importance weights, 1 / Σ w²."""
    w = np.asarray(weights, dtype=float)
    w = w / w.sum()
    return float(1.0 / np.sum(w**2))


def write_sample(sample: pd.DataFrame, path: Path, notes: Mapping[str, Any] | None = None) -> Path:
    """Write `sample` (a `weight` column and one column per parameter) to `path`, atomically,
    and read it back through the validating loader, so that a file written is a file the
    ensembles accept."""
    if WEIGHT not in sample.columns:
        raise ValueError(f"the sample has no {WEIGHT!r} column; allowed: {WEIGHT!r} and parameter columns")
    names = [c for c in sample.columns if c != WEIGHT]
    weights = sample[WEIGHT].to_numpy(dtype=float)
    if len(weights) == 0 or not np.isfinite(weights).all() or (weights < 0).any() or weights.sum() <= 0:
        raise ValueError("the sample's weights must be finite, not negative and not all 0")
    weights = weights / math.fsum(weights)
    header = [f"# {k}: {v}" for k, v in (notes or {}).items()]
    ess = effective_sample_size(weights)
    header.append(f"# effective sample size (1 / sum of squared weights): {ess:.1f}")
    lines = [*header, ",".join([WEIGHT, *names])]
    for w, row in zip(weights, sample[names].itertuples(index=False), strict=True):
        lines.append(",".join(repr(float(x)) for x in (w, *row)))
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        load_posterior(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)  # nothing left behind when writing or reading back failed
    return path


def write_posterior(result: Any, path: Path = POSTERIOR_FILE, notes: Mapping[str, Any] | None = None) -> Path:
    """Write the final population of a dynamic fit (`dynamic_fit.FitResult`, its `sample`) as
    the posterior sample; `notes` add comment lines (settings of the fit)."""
    if getattr(result, "sample", None) is None:
        raise ValueError("the fit result holds no sample of particles; allowed: a result of dynamic_fit.fit")
    made = {
        "posterior sample of the dynamic fit": "ABC-SMC (pyabc), last generation",
        "generations done": result.generations,
        "final epsilon": f"{result.epsilon:.6g}",
        "evaluations": result.evaluations,
    }
    return write_sample(result.sample, path, made | dict(notes or {}))
