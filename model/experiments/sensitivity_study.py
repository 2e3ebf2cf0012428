"""Sensitivity studies of the model: choose replications, run the sample through the
experiment runner, compute indices on replicate means, and write tables, figures and a page."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from mittelbau.core.scenario import Scenario
from mittelbau.experiments.experiment import OUTPUTS, evaluate_points
from mittelbau.experiments.sensitivity import (
    factors,
    morris,
    problem,
    seed_variance_share,
    sobol,
    stabilised_replications,
    to_overrides,
)

DEFAULT_OUTPUTS = (
    "middle_share",
    "hollowing_ratio",
    "polarisation_index",
    "upward_rate",
    "stuck_share",
    "stuck_share_small",
    "competence_gap",
)
PILOT_REPLICATIONS = 16


def choose_replications(
    scenario: Scenario, outputs: Sequence[str], out: Path, run_kw: dict
) -> tuple[int, pd.DataFrame]:
    """Run PILOT_REPLICATIONS replicates of the scenario's own point and pick the number after
    which the outputs' coefficients of variation have stabilised (Lee et al. 2015)."""
    pilot = evaluate_points(scenario, [{}], PILOT_REPLICATIONS, out / "pilot", **run_kw)
    return stabilised_replications(pilot, outputs)


def _model_evaluator(scenario, chosen, replications, out, outputs, run_kw, log):
    def evaluate(X: np.ndarray) -> pd.DataFrame:
        points = [to_overrides(row, chosen) for row in X]
        runs = evaluate_points(scenario, points, replications, out / "runs", **run_kw)
        log["runs"] = runs
        return runs.groupby("point")[list(outputs)].mean().reset_index(drop=True)

    return evaluate


def run_study(
    method: str,
    scenario: Scenario,
    out: str | Path,
    size: int,
    factor_names: Sequence[str] | None = None,
    include_levers: bool = False,
    grouped: bool = False,
    outputs: Sequence[str] = DEFAULT_OUTPUTS,
    replications: int | None = None,
    run_kw: dict | None = None,
    on_batch: Callable[[int], None] | None = None,
    second_order: bool = False,
) -> dict:
    """Morris (`size` trajectories) or Sobol (`size` base samples) on the model; writes
    indices.csv, figures and sensitivity.md into `out` and returns what it found."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    run_kw = dict(run_kw or {})
    if on_batch is not None:
        run_kw["on_batch"] = on_batch
    unknown = [o for o in outputs if o not in OUTPUTS]
    if unknown:
        from mittelbau.experiments.sensitivity import FactorError

        raise FactorError(f"unknown output {unknown[0]!r}; allowed: {', '.join(OUTPUTS)}")
    chosen = factors(factor_names, include_levers)
    spec = problem(chosen, grouped)
    cv = None
    if replications is None:
        replications, cv = choose_replications(scenario, outputs, out, run_kw)
    log: dict = {}
    evaluate = _model_evaluator(scenario, chosen, replications, out, outputs, run_kw, log)
    seed = scenario.params.seed
    if method == "morris":
        result = morris(spec, evaluate, size, seed)
        figure = plot_morris(result.indices, out / "morris.png")
        convergence = None
    else:
        result = sobol(spec, evaluate, size, seed, second_order)
        if second_order:
            result.second_order.to_csv(out / "second_order.csv", index=False, float_format="%.6g")
        figure = plot_sobol(result.indices, out / "sobol.png")
        convergence = result.convergence
        convergence.to_csv(out / "convergence.csv", index=False, float_format="%.6g")
        plot_convergence(convergence, out / "convergence.png")
    result.indices.to_csv(out / "indices.csv", index=False, float_format="%.6g")
    shares = seed_variance_share(log["runs"], outputs)
    shares.to_csv(out / "seed_variance.csv", float_format="%.6g")
    if cv is not None:
        cv.to_csv(out / "replications_cv.csv", float_format="%.6g")
    page = write_page(
        method,
        scenario,
        out,
        spec,
        result.indices,
        replications,
        cv,
        shares,
        len(log["runs"]),
        figure,
        convergence is not None,
    )
    return {
        "indices": result.indices,
        "replications": replications,
        "seed_variance": shares,
        "runs": len(log["runs"]),
        "page": page,
        "convergence": convergence,
    }


def plot_morris(indices: pd.DataFrame, path: Path) -> Path:
    outs = list(indices["output"].unique())
    fig, axes = plt.subplots(
        1, len(outs), figsize=(4.5 * len(outs), 4), squeeze=False, constrained_layout=True
    )
    for ax, o in zip(axes[0], outs, strict=True):
        part = indices[indices["output"] == o]
        ax.scatter(part["mu_star"], part["sigma"], s=18)
        for _, r in part.nlargest(6, "mu_star").iterrows():
            ax.annotate(r["factor"], (r["mu_star"], r["sigma"]), fontsize=7)
        ax.set(title=o, xlabel="μ* (mean |elementary effect|)", ylabel="σ")
        ax.grid(alpha=0.3)
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)
    return path


def plot_sobol(indices: pd.DataFrame, path: Path) -> Path:
    outs = list(indices["output"].unique())
    fig, axes = plt.subplots(
        len(outs), 1, figsize=(10, 2.8 * len(outs)), squeeze=False, constrained_layout=True
    )
    for ax, o in zip(axes[:, 0], outs, strict=True):
        part = indices[indices["output"] == o].sort_values("ST", ascending=False)
        x = np.arange(len(part))
        ax.bar(x - 0.2, part["S1"], 0.4, yerr=part["S1_conf"], label="S1", capsize=2)
        ax.bar(x + 0.2, part["ST"], 0.4, yerr=part["ST_conf"], label="ST", capsize=2)
        ax.set_xticks(x, part["factor"], rotation=60, ha="right", fontsize=7)
        ax.set(title=o, ylabel="index")
        ax.legend(fontsize=8)
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)
    return path


def plot_convergence(conv: pd.DataFrame, path: Path) -> Path:
    outs = list(conv["output"].unique())
    fig, axes = plt.subplots(
        1, len(outs), figsize=(4.5 * len(outs), 3.6), squeeze=False, constrained_layout=True
    )
    for ax, o in zip(axes[0], outs, strict=True):
        part = conv[conv["output"] == o]
        top = part[part["N"] == part["N"].max()].nlargest(5, "ST")["factor"]
        for f in top:
            line = part[part["factor"] == f]
            ax.plot(line["N"], line["ST"], marker="o", label=f)
        ax.set(title=o, xlabel="base samples N", ylabel="ST", xscale="log")
        ax.legend(fontsize=7)
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)
    return path


def write_page(
    method, scenario, out, spec, indices, replications, cv, shares, runs, figure, has_convergence
) -> Path:
    lines = [
        f"# {method.capitalize()} sensitivity — scenario '{scenario.name}'",
        "",
        f"{spec['num_vars']} factors from the registry, {runs} model runs, "
        f"{replications} replications per point (common random numbers across points); "
        "indices are computed on replicate means.",
        "",
    ]
    if cv is not None:
        lines += [
            f"Replications chosen where the coefficient of variation of every output "
            f"stabilised over {PILOT_REPLICATIONS} pilot runs (Lee et al. 2015): "
            f"{replications} (`replications_cv.csv`).",
            "",
        ]
    lines += [
        "Share of output variance due to the seeds (mean within-point variance / total):",
        "",
        *[f"- {o}: {v:.1%}" for o, v in shares.items()],
        "",
    ]
    key = "mu_star" if method == "morris" else "ST"
    for o in indices["output"].unique():
        top = indices[indices["output"] == o].nlargest(5, key)
        lines += [
            f"## {o}",
            "",
            "| factor | " + " | ".join(c for c in top.columns[2:]) + " |",
            "|---|" + "---|" * (len(top.columns) - 2),
        ]
        for _, r in top.iterrows():
            lines.append(f"| {r['factor']} | " + " | ".join(f"{v:.3g}" for v in r.iloc[2:]) + " |")
        lines.append("")
    lines += [f"![indices]({figure.name})", ""]
    if has_convergence:
        lines += ["![convergence](convergence.png)", ""]
    page = out / "sensitivity.md"
    page.write_text("\n".join(lines), encoding="utf-8")
    return page
