"""Figures of a run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.ticker import MaxNLocator

from mittelbau.core.categories import SIZE_CLASSES

STAGE_COLOURS = {1: "#b0b7c3", 2: "#e69f00", 3: "#0072b2"}
STAGE_NAMES = {1: "1 product maker", 2: "2 product-service", 3: "3 digital BM"}


def plot_stage_shares(shares: pd.DataFrame, summary: dict[str, Any], path: Path) -> None:
    """Stage shares of all firms over time, and the middle tier by size class."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    wide = shares[shares["group"] == "all"].pivot(index="year", columns="stage", values="share")
    ax1.stackplot(
        wide.index,
        *(100 * wide[k] for k in (1, 2, 3)),
        labels=[STAGE_NAMES[k] for k in (1, 2, 3)],
        colors=[STAGE_COLOURS[k] for k in (1, 2, 3)],
        alpha=0.9,
    )
    ax1.set(
        xlim=(wide.index.min(), max(wide.index.max(), wide.index.min() + 1)),
        ylim=(0, 100),
        xlabel="year",
        ylabel="share of firms (%)",
        title="Stage shares, all firms",
    )
    ax1.legend(loc="lower left", fontsize=8, framealpha=0.9)

    middle = shares[(shares["stage"] == 2) & shares["group"].str.startswith("size:")]
    for size in SIZE_CLASSES:
        part = middle[middle["group"] == f"size:{size}"]
        ax2.plot(part["year"], 100 * part["share"], marker="o", ms=2.5, label=f"{size} employees")
    ax2.set(xlabel="year", ylabel="stage-2 share (%)", title="Middle tier by size class")
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=8)
    for ax in (ax1, ax2):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    scen = summary["scenario"]["name"]
    fig.suptitle(f"mittelbau — {summary['region']}, scenario '{scen}', seed {summary['seed']}", fontsize=11)
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)
