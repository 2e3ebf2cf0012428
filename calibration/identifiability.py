"""Which parameters drive the verdicts, and which of them the targets identify.

Two studies meet here. A Sobol screen (SALib, `mittelbau.experiments.sensitivity_study`) over
the registry's uncertain parameters that act on the stage dynamics (the firm economics feed
nothing back into the stages and are left out) ranks each parameter's total index on the verdict
indicators in 2035: the hollowing ratio, whether the middle shrinks, and the share stuck in
stage 1. Recovery from synthetic data (`dynamic_fit.identify`) says for every fitted parameter
whether the targets narrow it (posterior sd below half the prior sd) and whether the fit finds
a known truth. A parameter whose total index exceeds `DRIVER_INDEX` on any verdict indicator
is either identified or an assumption that drives the answer; `write_identifiability` records
the verdict per parameter in calibration/identifiability.toml, which the README cites.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import tomli_w

from mittelbau.calibration.fit_report import CALIBRATION
from mittelbau.core.scenario import load_scenario
from mittelbau.experiments.sensitivity import factors

IDENTIFIABILITY_FILE = CALIBRATION / "identifiability.toml"
VERDICT_OUTPUTS = ("hollowing_ratio", "middle_shrinks", "stuck_share")
DRIVER_INDEX = 0.05  # a total Sobol index above it: the parameter drives a verdict
IDENTIFIED_SD_RATIO = 0.5  # identified: posterior sd below half the prior sd


def screened_factors() -> list[str]:
    """The uncertain parameters the screen varies: every numeric uncertainty and mechanism
    switch of the registry except the firm economics (they do not act on the stages)."""
    return [p.name for p in factors() if p.group != "economics"]


def sobol_screen(
    out: str | Path,
    n: int = 32,
    firms: int = 1000,
    seed: int = 20170501,
    workers: int = 1,
    run_kw: dict | None = None,
    on_batch: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
    overwrite: bool = False,
) -> tuple[pd.DataFrame, list[str]]:
    """Total Sobol indices (with their 95 % confidence half-widths) of the screened factors on
    the verdict indicators in 2035, from `n` base samples, one run of `firms` firms per point,
    seeded by `seed`, and the study's warnings (indices too uncertain to read). `run_kw`,
    `on_batch`, `on_total` and `overwrite` go to the study (`sensitivity_study.run_study`)."""
    from mittelbau.experiments.sensitivity_study import run_study

    scenario = load_scenario(None, [f"firms={firms}", "years=20"], seed)
    found = run_study(
        "sobol",
        scenario,
        out,
        n,
        screened_factors(),
        outputs=VERDICT_OUTPUTS,
        replications=1,
        run_kw={**(run_kw or {}), "workers": workers},
        on_batch=on_batch,
        on_total=on_total,
        overwrite=overwrite,
    )
    return found["indices"], found["warnings"]


def drivers(indices: pd.DataFrame, threshold: float = DRIVER_INDEX) -> pd.DataFrame:
    """Per factor: its largest total index over the verdict indicators, the indicator and the
    index's confidence half-width there; only factors above `threshold`. `clear`: the index
    stays above the threshold at the lower end of its 95 % interval on some indicator (at a
    small N most do not: the screen cannot rule them out, nor confirm them)."""
    top = indices.loc[indices.groupby("factor")["ST"].idxmax(), ["factor", "output", "ST", "ST_conf"]]
    low = (indices["ST"] - indices["ST_conf"]).groupby(indices["factor"]).max()
    top = top.assign(clear=(low.reindex(top["factor"]) > threshold).to_numpy())
    return top[top["ST"] > threshold].sort_values("ST", ascending=False).reset_index(drop=True)


def classify(
    driving: pd.DataFrame, recovery: pd.DataFrame, fitted: dict[str, float] | None = None
) -> pd.DataFrame:
    """Each driving factor as 'identified' (fitted, sd ratio below IDENTIFIED_SD_RATIO) or
    'assumption' (not fitted, or fitted but not narrowed by the targets). The sd ratio is the
    larger of the recovery's and, where `fitted` gives it, the survey fit's: a parameter the
    targets narrow at one point but not at the posterior is not called identified."""
    ratio = dict(zip(recovery["parameter"], recovery["sd_ratio"], strict=True))
    for name, value in (fitted or {}).items():
        ratio[name] = max(ratio.get(name, value), value)
    rows = []
    for r in driving.itertuples():
        sd_ratio = ratio.get(r.factor)
        identified = sd_ratio is not None and sd_ratio < IDENTIFIED_SD_RATIO
        rows.append(
            {
                "parameter": r.factor,
                "output": r.output,
                "ST": r.ST,
                "ST_conf": r.ST_conf,
                "clear": bool(r.clear),
                "sd_ratio": sd_ratio,
                "status": "identified" if identified else "assumption",
            }
        )
    return pd.DataFrame(rows)


def write_identifiability(
    table: pd.DataFrame, settings: dict, recovery: pd.DataFrame, path: Path = IDENTIFIABILITY_FILE
) -> None:
    """calibration/identifiability.toml: the Sobol screen's settings, the recovery of every
    fitted parameter, and per driving parameter whether it is identified or an assumption that
    drives the answer."""
    data = {
        "screen": dict(settings),
        "driver_index": DRIVER_INDEX,
        "identified_sd_ratio": IDENTIFIED_SD_RATIO,
        "assumptions_that_drive_the_answer": sorted(table.loc[table.status == "assumption", "parameter"]),
        "identified_drivers": sorted(table.loc[table.status == "identified", "parameter"]),
        "driver": {
            r.parameter: {
                "output": r.output,
                "total_index": _round(r.ST),
                "ci95_half_width": _round(r.ST_conf),
                "clear": bool(r.clear),
                "status": r.status,
                **({} if pd.isna(r.sd_ratio) else {"sd_ratio": _round(r.sd_ratio)}),
            }
            for r in table.itertuples()
        },
        "recovery": {
            r.parameter: {
                "truth": _round(r.truth),
                "median": _round(r.median),
                "q05": _round(r.q05),
                "q95": _round(r.q95),
                "sd_ratio": _round(r.sd_ratio),
                "recovered": bool(r.recovered),
                "identified": bool(r.identified),
            }
            for r in recovery.itertuples()
        },
    }
    header = (
        "# Written by `mittelbau calibrate identifiability --write` (calibration/identifiability.py).\n"
        "# Which parameters drive the verdicts (total Sobol index > driver_index on a verdict\n"
        "# indicator in 2035) and whether the calibration targets identify them (posterior sd /\n"
        "# prior sd < identified_sd_ratio, in the recovery from synthetic data and in the fit to\n"
        "# the surveys, calibration/dynamic_parameters.toml).\n"
    )
    path.write_text(header + tomli_w.dumps(data), encoding="utf-8")


def _round(x: float) -> float:
    return float(f"{float(x):.4g}")
