"""Figures of a run, and the colours and saving shared by every figure the package writes.

Figures are built as `matplotlib.figure.Figure` objects, without pyplot, so building them
needs no backend and leaves a notebook's or a server's figures alone; the command line
selects the file-writing backend where it writes figures.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from mittelbau.core.categories import SIZE_CLASSES

if TYPE_CHECKING:
    from matplotlib.axes import Axes

STAGE_COLOURS = {1: "#b0b7c3", 2: "#e69f00", 3: "#0072b2"}
STAGE_NAMES = {1: "1 product maker", 2: "2 product-service", 3: "3 digital BM"}
THRESHOLD_COLOUR = "#d55e00"


def save_figure(fig: Figure, path: Path, dpi: int = 100) -> Path:
    """Write a figure as PNG without the software stamp (same inputs, same bytes)."""
    fig.savefig(path, dpi=dpi, metadata={"Software": None})
    return Path(path)


def share_axis(ax: Axes, values_pct: np.ndarray | pd.Series, floor: float = 50.0) -> None:
    """A share axis from 0 %, up to at least `floor` % — never cut to the few points the
    values happen to span, which would make small changes look large."""
    top = float(np.nanmax(np.asarray(values_pct, dtype=float), initial=0.0))
    ax.set_ylim(0, min(100.0, max(floor, math.ceil((top + 5) / 10) * 10)))


def plot_stage_shares(shares: pd.DataFrame, summary: dict[str, Any], path: Path) -> Path:
    """Stage shares of all firms over time, the middle tier against its hollowing threshold,
    and the middle tier by size class (with the firms of each class); the verdict on top."""
    fig = Figure(figsize=(11, 4.8), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    threshold = summary["parameters"]["hollowing_threshold"]
    wide = shares[shares["group_by"] == "all"].pivot(index="year", columns="stage", values="share")
    years = wide.index
    for k in (1, 2, 3):
        ax1.plot(
            years,
            100 * wide[k],
            color=STAGE_COLOURS[k],
            lw=3 if k == 2 else 1.5,
            marker="o",
            ms=3,
            label=STAGE_NAMES[k] + (" (middle tier)" if k == 2 else ""),
        )
    # hollowed where stage 2 < threshold × the smaller of stages 1 and 3
    limit = 100 * threshold * np.minimum(wide[1], wide[3])
    ax1.plot(
        years,
        limit,
        color=THRESHOLD_COLOUR,
        ls="--",
        lw=1.2,
        label=f"threshold: {threshold:g} × smaller pole",
    )
    hollow = (wide[2] < threshold * np.minimum(wide[1], wide[3])).to_numpy()
    if hollow.any():
        ax1.fill_between(years, 0, limit, where=hollow, color=THRESHOLD_COLOUR, alpha=0.15, lw=0)
    ax1.set(
        xlim=(years.min(), max(years.max(), years.min() + 1)),
        ylim=(0, 100),
        xlabel="year",
        ylabel="share of firms (%)",
        title="Stage shares, all firms",
    )
    ax1.legend(loc="upper left", fontsize=8, framealpha=0.9)

    by_size = shares[(shares["group_by"] == "size") & (shares["stage"] == 2)]
    counts = summary.get("firms_by_size_class", {})
    for size in SIZE_CLASSES:
        part = by_size[by_size["group"] == size]
        n = f", {counts[size]:,} agents" if size in counts else ""
        ax2.plot(part["year"], 100 * part["share"], marker="o", ms=2.5, label=f"{size} employees{n}")
    share_axis(ax2, 100 * by_size["share"])
    ax2.set(xlabel="year", ylabel="stage-2 share (%)", title="Middle tier by size class (agents at the end)")
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=8)
    for ax in (ax1, ax2):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    scen = summary["scenario"]["name"]
    agents = summary["parameters"]["firms"]
    scale = summary.get("economics", {}).get("population_scale")
    size = f"{agents:,} agents" + ("" if scale is None else f" for its {round(agents * scale):,} firms")
    verdict = textwrap.fill(summary["headline"]["verdict"], 150)
    fig.suptitle(
        f"mittelbau — {summary['region']}, scenario '{scen}', {size}, seed {summary['seed']}\n{verdict}",
        fontsize=9,
    )
    return save_figure(fig, path, dpi=110)
